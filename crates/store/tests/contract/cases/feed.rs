//! The change feed's write side: every write path records what it changed,
//! once, with the right type, origin and event, in the transaction that
//! makes the change.

use super::*;
use calsync_domain::feed::{Change, ChangeQuery, ChangeType, Cursor, MAX_READ, Origin};
use calsync_domain::sync::SyncLease;
use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};

use ChangeType::{
    AttendeeResponded, CalendarReconnectRequired, CalendarRecovered, DriveChanged, EventCancelled,
    EventConflict, EventCreated, EventPushFailed, EventUpdated,
};

/// Every change after `after` (`None`: from the oldest kept), in cursor
/// order, read a full page at a time.
pub async fn changes_after(store: &Arc<dyn Store>, after: Option<Cursor>) -> Vec<Change> {
    let mut query = ChangeQuery {
        after,
        limit: MAX_READ,
        ..ChangeQuery::default()
    };
    let mut all = Vec::new();
    loop {
        let batch = store.read_changes(&query).await.unwrap();
        let full = batch.items.len() == MAX_READ as usize;
        all.extend(batch.items);
        if !full {
            return all;
        }
        query.after = Some(batch.next_cursor);
    }
}

/// The changes recorded since `mark` (a cursor read before the write).
pub async fn since(store: &Arc<dyn Store>, mark: Cursor) -> Vec<Change> {
    changes_after(store, Some(mark)).await
}

pub async fn mark(store: &Arc<dyn Store>) -> Cursor {
    store.latest_cursor().await.unwrap()
}

/// Each change's type and origin.
pub fn kinds(changes: &[Change]) -> Vec<(ChangeType, Origin)> {
    changes
        .iter()
        .map(|c| (c.change.kind, c.change.origin))
        .collect()
}

/// The Google id of each change's event.
fn google_ids(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| c.change.google_event_id().unwrap().to_string())
        .collect()
}

/// The change carries the event as the store now has it.
async fn carries_the_stored_event(store: &Arc<dyn Store>, change: &Change) {
    let id = change.change.event_id().expect("an event change");
    let stored = store.get_event(id).await.unwrap().unwrap();
    assert_eq!(change.change.event.as_deref(), Some(&stored));
}

pub async fn api_writes_record_created_updated_and_cancelled(store: &Arc<dyn Store>) {
    assert_eq!(mark(store).await, Cursor::START, "an empty feed");
    let event = local_event("f1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let created = changes_after(store, None).await;
    assert_eq!(kinds(&created), [(EventCreated, Origin::Api)]);
    let change = &created[0].change;
    assert_eq!(change.occurred_at, event.updated_at);
    assert_eq!(change.calendar_id, Some(cal()));
    assert_eq!(change.entity(), event.entity.as_ref());
    assert!(change.changed_fields.is_empty());
    assert!(change.detail.is_empty());
    carries_the_stored_event(store, &created[0]).await;
    assert_eq!(mark(store).await, created[0].cursor);

    let keyed = local_event("f2", now());
    let key = IdempotencyKey::new("feed-key-1", "fp").unwrap();
    let before = mark(store).await;
    store
        .insert_idempotent(&keyed, OutboxOp::Insert, &key)
        .await
        .unwrap();
    // A replay of the key writes nothing, so records nothing.
    assert!(
        store
            .insert_idempotent(&local_event("f3", now()), OutboxOp::Insert, &key)
            .await
            .is_err()
    );
    let keyed_changes = since(store, before).await;
    assert_eq!(kinds(&keyed_changes), [(EventCreated, Origin::Api)]);
    assert_eq!(keyed_changes[0].change.event_id(), Some(keyed.id));

    // An update names the fields it changed.
    let mut edited = event.clone();
    edited.summary = Some("moved".into());
    edited.location = Some("Room 2".into());
    edited.updated_at = now() + Duration::seconds(1);
    let before = mark(store).await;
    let patch = OutboxOp::Patch {
        if_match: None,
        intent: None,
    };
    store
        .update_with_outbox(&edited, event.updated_at, patch.clone())
        .await
        .unwrap();
    // A stale write is refused and records nothing.
    assert!(
        store
            .update_with_outbox(&edited, event.updated_at, patch.clone())
            .await
            .is_err()
    );
    let updated = since(store, before).await;
    assert_eq!(kinds(&updated), [(EventUpdated, Origin::Api)]);
    assert_eq!(updated[0].change.changed_fields, ["summary", "location"]);
    assert_eq!(updated[0].change.occurred_at, edited.updated_at);
    carries_the_stored_event(store, &updated[0]).await;

    // Writing the same content again changes nothing the feed shows.
    let mut same = edited.clone();
    same.updated_at = now() + Duration::seconds(2);
    let before = mark(store).await;
    store
        .update_with_outbox(&same, edited.updated_at, patch)
        .await
        .unwrap();
    assert!(since(store, before).await.is_empty());

    // A delete is a cancellation.
    let mut deleted = same.clone();
    deleted.status = EventStatus::Cancelled;
    deleted.updated_at = now() + Duration::seconds(3);
    let before = mark(store).await;
    store
        .update_with_outbox(&deleted, same.updated_at, OutboxOp::Delete)
        .await
        .unwrap();
    let cancelled = since(store, before).await;
    assert_eq!(kinds(&cancelled), [(EventCancelled, Origin::Api)]);
    assert_eq!(cancelled[0].change.changed_fields, ["status"]);
    carries_the_stored_event(store, &cancelled[0]).await;

    // Cursors only grow, one per change.
    let all = changes_after(store, None).await;
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].cursor < w[1].cursor));
}

pub async fn sync_pages_record_googles_changes_once(store: &Arc<dyn Store>) {
    let mut rsvp = remote("fp0002", "\"1\"", 2);
    rsvp.attendees = vec![
        Attendee::new("ana@example.com").unwrap(),
        Attendee::new("bo@example.com").unwrap(),
    ];
    let first = page(
        vec![remote("fp0001", "\"1\"", 1), rsvp.clone()],
        SyncRun::Incremental,
        Some("t1"),
    );
    store.apply_sync_page(&first).await.unwrap();
    let created = changes_after(store, None).await;
    assert_eq!(
        kinds(&created),
        [
            (EventCreated, Origin::Google),
            (EventCreated, Origin::Google)
        ]
    );
    assert_eq!(google_ids(&created), ["fp0001", "fp0002"]);
    assert!(created.iter().all(|c| c.change.occurred_at == now()));
    carries_the_stored_event(store, &created[1]).await;

    // The same etags again (a replay): nothing changed, nothing recorded.
    let before = mark(store).await;
    store.apply_sync_page(&first).await.unwrap();
    assert!(since(store, before).await.is_empty());

    // An edit at Google, an answer alone, a deletion.
    let mut edited = remote("fp0001", "\"2\"", 1);
    edited.summary = Some("renamed at Google".into());
    let mut answered = rsvp.clone();
    answered.etag = Some(Etag::new("\"2\"").unwrap());
    answered.attendees[1].response_status = Some("accepted".into());
    let mut third = remote("fp0003", "\"1\"", 3);
    third.summary = Some("to be deleted".into());
    store
        .apply_sync_page(&page(vec![third], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    let before = mark(store).await;
    let stub = RemoteEvent::cancelled_stub(EventId::new("fp0003").unwrap());
    store
        .apply_sync_page(&page(
            vec![edited, answered, stub],
            SyncRun::Incremental,
            Some("t3"),
        ))
        .await
        .unwrap();
    let changes = since(store, before).await;
    assert_eq!(
        kinds(&changes),
        [
            (EventUpdated, Origin::Google),
            (AttendeeResponded, Origin::Google),
            (EventCancelled, Origin::Google),
        ]
    );
    assert_eq!(google_ids(&changes), ["fp0001", "fp0002", "fp0003"]);
    assert_eq!(changes[0].change.changed_fields, ["summary", "etag"]);
    let respondents = &changes[1].change.detail.respondents;
    assert_eq!(respondents.len(), 1, "only the one who answered");
    assert_eq!(respondents[0].email, "bo@example.com");
    assert_eq!(respondents[0].previous, None);
    assert_eq!(respondents[0].response_status.as_deref(), Some("accepted"));
    for change in &changes {
        carries_the_stored_event(store, change).await;
    }
    assert_eq!(changes[0].change.etag().unwrap().as_str(), "\"2\"");
    assert_eq!(
        changes[2].change.event.as_ref().unwrap().status,
        EventStatus::Cancelled
    );
}

pub async fn a_full_run_records_each_row_it_sweeps(store: &Arc<dyn Store>) {
    let events = vec![
        remote("fs0001", "\"1\"", 1),
        remote("fs0002", "\"1\"", 2),
        remote("fs0003", "\"1\"", 3),
    ];
    store
        .apply_sync_page(&page(events, full("r1"), Some("t1")))
        .await
        .unwrap();
    let before = mark(store).await;
    store
        .apply_sync_page(&page(vec![remote("fs0001", "\"1\"", 1)], full("r2"), None))
        .await
        .unwrap();
    assert!(
        since(store, before).await.is_empty(),
        "a page Google had already sent changes nothing"
    );
    store
        .apply_sync_page(&page(
            vec![remote("fs0003", "\"1\"", 3)],
            full("r2"),
            Some("t2"),
        ))
        .await
        .unwrap();
    let swept = since(store, before).await;
    assert_eq!(kinds(&swept), [(EventCancelled, Origin::Google)]);
    assert_eq!(google_ids(&swept), ["fs0002"]);
    assert_eq!(swept[0].change.changed_fields, ["status"]);
    assert_eq!(swept[0].change.occurred_at, now());
    carries_the_stored_event(store, &swept[0]).await;
}

pub async fn a_cancelled_master_records_each_exception_it_cancels(store: &Arc<dyn Store>) {
    use super::series::{exception, series};
    let day = |n| now() + Duration::days(n);
    let (one, two) = (exception("fseries1", day(2)), exception("fseries1", day(3)));
    let other = exception("fseries2", day(2));
    store
        .apply_sync_page(&page(
            vec![
                series("fseries1", 0, "RRULE:FREQ=DAILY"),
                one.clone(),
                two.clone(),
                series("fseries2", 0, "RRULE:FREQ=DAILY"),
                other.clone(),
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let before = mark(store).await;
    let stub = RemoteEvent::cancelled_stub(EventId::new("fseries1").unwrap());
    store
        .apply_sync_page(&page(vec![stub], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    let changes = since(store, before).await;
    assert_eq!(kinds(&changes), [(EventCancelled, Origin::Google); 3]);
    assert_eq!(google_ids(&changes)[0], "fseries1");
    let mut occurrences = google_ids(&changes)[1..].to_vec();
    occurrences.sort();
    assert_eq!(occurrences, [one.id.to_string(), two.id.to_string()]);
    for change in &changes[1..] {
        // Each carries its occurrence's row, not the master's.
        let event = change.change.event.as_ref().unwrap();
        assert_eq!(
            event.recurring_event_id.as_ref().unwrap().as_str(),
            "fseries1"
        );
        assert_eq!(event.status, EventStatus::Cancelled);
        assert_eq!(change.change.changed_fields, ["status"]);
        carries_the_stored_event(store, change).await;
    }

    // Deleted through the API: the exception goes with it, by the API.
    let mut master = mirrored(store, "fseries2").await.unwrap();
    let base = master.updated_at;
    master.status = EventStatus::Cancelled;
    master.updated_at = now() + Duration::seconds(1);
    let before = mark(store).await;
    store
        .update_with_outbox(&master, base, OutboxOp::Delete)
        .await
        .unwrap();
    let changes = since(store, before).await;
    assert_eq!(kinds(&changes), [(EventCancelled, Origin::Api); 2]);
    assert_eq!(
        google_ids(&changes),
        ["fseries2".to_owned(), other.id.to_string()]
    );
    carries_the_stored_event(store, &changes[1]).await;
}

pub async fn retention_records_each_event_it_retires(store: &Arc<dyn Store>) {
    store
        .apply_sync_page(&page(
            vec![
                remote("fr0001", "\"1\"", -48),
                remote("fr0002", "\"1\"", -30),
                remote("fr0003", "\"1\"", 5),
            ],
            SyncRun::Incremental,
            Some("t1"),
        ))
        .await
        .unwrap();
    let before = mark(store).await;
    let at = now() + Duration::minutes(1);
    let retired = store
        .cancel_ended_before(now() - Duration::hours(24), 10, at)
        .await
        .unwrap();
    assert_eq!(retired, 2);
    let changes = since(store, before).await;
    assert_eq!(kinds(&changes), [(EventCancelled, Origin::Calsync); 2]);
    let mut ids = google_ids(&changes);
    ids.sort();
    assert_eq!(ids, ["fr0001", "fr0002"]);
    for change in &changes {
        assert_eq!(change.change.occurred_at, at);
        assert_eq!(change.change.changed_fields, ["status"]);
        carries_the_stored_event(store, change).await;
    }
    // Nothing left to retire: nothing recorded.
    let before = mark(store).await;
    store
        .cancel_ended_before(now() - Duration::hours(24), 10, at)
        .await
        .unwrap();
    assert!(since(store, before).await.is_empty());
}

pub async fn push_outcomes_record_settling_conflicts_and_dead_letters(store: &Arc<dyn Store>) {
    let lease_end = now() + Duration::minutes(1);
    let event = local_event("fo1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    let before = mark(store).await;
    // Retries and waits change no event: nothing recorded.
    store
        .retry_outbox(&rows[0], PushFailure::Temporary, "503", now())
        .await
        .unwrap();
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    store
        .wait_outbox(&rows[0], PushFailure::Refused, "read-only", now(), now())
        .await
        .unwrap();
    store
        .mark_read_only(&cal(), "requiredAccessLevel", now())
        .await
        .unwrap();
    assert!(store.clear_read_only(&cal()).await.unwrap());
    assert!(since(store, before).await.is_empty());

    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    let pushed_at = now() + Duration::seconds(7);
    store
        .complete_outbox(
            &rows[0],
            &PushReceipt {
                pushed_at,
                remote: None,
                etag: Some(Etag::new("\"g1\"").unwrap()),
                updated: Some(now()),
                html_link: Some("https://calendar.google.com/e/1".into()),
            },
        )
        .await
        .unwrap();
    let settled = since(store, before).await;
    assert_eq!(kinds(&settled), [(EventUpdated, Origin::Calsync)]);
    assert_eq!(
        settled[0].change.changed_fields,
        ["pushState", "etag", "htmlLink"]
    );
    assert_eq!(settled[0].change.occurred_at, pushed_at);
    assert_eq!(settled[0].change.etag().unwrap().as_str(), "\"g1\"");
    carries_the_stored_event(store, &settled[0]).await;

    // A write that lost to an edit at Google: the conflict, Google's side.
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    let mut mine = stored.clone();
    mine.summary = Some("mine".into());
    mine.push_state = PushState::Pending;
    mine.updated_at = now() + Duration::seconds(10);
    let patch = OutboxOp::Patch {
        if_match: stored.etag.clone(),
        intent: None,
    };
    store
        .update_with_outbox(&mine, stored.updated_at, patch)
        .await
        .unwrap();
    let rows = store
        .claim_outbox("w", mine.updated_at, lease_end, 10)
        .await
        .unwrap();
    let mut theirs = mine.clone();
    theirs.summary = Some("theirs".into());
    theirs.push_state = PushState::Conflict;
    theirs.push_note = Some("edited at Google meanwhile".into());
    let before = mark(store).await;
    store
        .settle_outbox(
            &rows[0],
            &theirs,
            PushFailure::Conflict,
            "edited at Google meanwhile",
        )
        .await
        .unwrap();
    let conflict = since(store, before).await;
    assert_eq!(kinds(&conflict), [(EventConflict, Origin::Google)]);
    assert_eq!(
        conflict[0].change.detail.error.as_deref(),
        Some("edited at Google meanwhile")
    );
    assert!(
        conflict[0]
            .change
            .changed_fields
            .contains(&"summary".to_owned())
    );
    carries_the_stored_event(store, &conflict[0]).await;

    // A write Google refuses for good.
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    let mut again = stored.clone();
    again.location = Some("Room 5".into());
    again.push_state = PushState::Pending;
    again.updated_at = now() + Duration::seconds(20);
    let patch = OutboxOp::Patch {
        if_match: None,
        intent: None,
    };
    store
        .update_with_outbox(&again, stored.updated_at, patch)
        .await
        .unwrap();
    let rows = store
        .claim_outbox("w", again.updated_at, lease_end, 10)
        .await
        .unwrap();
    let before = mark(store).await;
    store
        .dead_letter_outbox(&rows[0], PushFailure::Refused, "403 forbidden")
        .await
        .unwrap();
    let failed = since(store, before).await;
    assert_eq!(kinds(&failed), [(EventPushFailed, Origin::Calsync)]);
    assert_eq!(
        failed[0].change.detail.error.as_deref(),
        Some("403 forbidden")
    );
    assert_eq!(failed[0].change.changed_fields, ["pushState"]);
    carries_the_stored_event(store, &failed[0]).await;

    // A write that finds the event deleted at Google settles it cancelled.
    let other = local_event("fo2", now());
    store
        .insert_with_outbox(&other, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    let mut gone = other.clone();
    gone.status = EventStatus::Cancelled;
    gone.push_state = PushState::Synced;
    gone.push_note = Some("deleted at Google".into());
    let before = mark(store).await;
    store
        .settle_outbox(&rows[0], &gone, PushFailure::Gone, "deleted at Google")
        .await
        .unwrap();
    let gone_changes = since(store, before).await;
    assert_eq!(kinds(&gone_changes), [(EventCancelled, Origin::Google)]);
    carries_the_stored_event(store, &gone_changes[0]).await;
}

pub async fn calendar_states_are_recorded_only_when_they_turn(store: &Arc<dyn Store>) {
    let other = CalendarId::new("other@example.com").unwrap();
    // Recovering a calendar that needed nothing records nothing.
    store.clear_reconnect_required(&cal(), true).await.unwrap();
    assert!(changes_after(store, None).await.is_empty());

    store
        .mark_reconnect_required(&cal(), "invalid_grant", now())
        .await
        .unwrap();
    store
        .mark_reconnect_required(&cal(), "invalid_grant again", now())
        .await
        .unwrap();
    let required = changes_after(store, None).await;
    assert_eq!(
        kinds(&required),
        [(CalendarReconnectRequired, Origin::Calsync)]
    );
    let change = &required[0].change;
    assert_eq!(change.calendar_id, Some(cal()));
    assert_eq!(change.event, None);
    assert_eq!(change.detail.error.as_deref(), Some("invalid_grant"));
    assert_eq!(change.occurred_at, now());

    let before = mark(store).await;
    store.clear_reconnect_required(&cal(), true).await.unwrap();
    store.clear_reconnect_required(&cal(), true).await.unwrap();
    let recovered = since(store, before).await;
    assert_eq!(kinds(&recovered), [(CalendarRecovered, Origin::Calsync)]);
    assert_eq!(recovered[0].change.calendar_id, Some(cal()));
    assert!(recovered[0].change.detail.error.is_none());

    // A sync that finds the grant revoked turns it on too, once.
    let fail = |error: &str| SyncOutcome::Failed {
        error: error.into(),
        reconnect_required: true,
    };
    let before = mark(store).await;
    for round in 0..2 {
        let at = now() + Duration::hours(round);
        let lease: SyncLease = store
            .lease_calendar(&other, "w", at, at + Duration::minutes(1))
            .await
            .unwrap()
            .unwrap();
        store
            .release_lease(&lease, &fail("calendar deleted"), at)
            .await
            .unwrap();
    }
    let revoked = since(store, before).await;
    assert_eq!(
        kinds(&revoked),
        [(CalendarReconnectRequired, Origin::Calsync)]
    );
    assert_eq!(revoked[0].change.calendar_id, Some(other.clone()));
    assert_eq!(
        revoked[0].change.detail.error.as_deref(),
        Some("calendar deleted")
    );
    assert!(
        store
            .sync_state(&other)
            .await
            .unwrap()
            .unwrap()
            .reconnect_required
    );
}

pub async fn a_drive_notification_is_recorded_once(store: &Arc<dyn Store>) {
    let notification = DriveNotification {
        envelope: PushEnvelope {
            channel_id: ChannelId::new("drive-feed").unwrap(),
            token: Some("secret-token".into()),
            message_number: 7,
            resource_id: ResourceId::new("res-7").unwrap(),
            resource_uri: "https://www.googleapis.com/drive/v3/files/7".into(),
            channel_expiration: None,
        },
        state: DriveResourceState::Update,
        changed: vec!["content".into()],
    };
    let at = now() + Duration::seconds(3);
    assert!(
        store
            .record_drive_notification(&notification, at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_drive_notification(&notification, at + Duration::seconds(1))
            .await
            .unwrap(),
        "a replay"
    );
    let changes = changes_after(store, None).await;
    assert_eq!(kinds(&changes), [(DriveChanged, Origin::Google)]);
    let change = &changes[0].change;
    assert_eq!(change.occurred_at, at);
    assert_eq!(change.calendar_id, None);
    assert_eq!(change.event, None);
    assert_eq!(change.detail.drive, Some(notification.feed_detail()));
    assert!(
        !change
            .detail
            .drive
            .as_ref()
            .unwrap()
            .to_string()
            .contains("secret-token"),
        "the channel's token is not in the feed"
    );
}
