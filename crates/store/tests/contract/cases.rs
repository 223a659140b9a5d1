use std::collections::HashSet;
use std::sync::Arc;

use calsync_domain::Error;
use calsync_domain::channel::{ChannelStatus, WatchChannel, WatchGrant};
use calsync_domain::event::{
    Attendee, Event, EventChanges, EventStatus, EventTime, NewEvent, NewEventFields, Organizer,
    PushState, TimeZoneName,
};
use calsync_domain::ids::{
    CalendarId, ChannelId, EntityRef, Etag, EventId, LocalEventId, ResourceId,
};
use calsync_domain::outbox::{IdempotencyKey, OutboxOp, OutboxState, PatchIntent};
use calsync_domain::ports::{EventQuery, PushReceipt, Store};
use calsync_domain::sync::{RemoteEvent, SyncCompletion, SyncOutcome, SyncPage, SyncRun};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::helpers::TestDb;

fn cal() -> CalendarId {
    CalendarId::new("team@example.com").unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn remote(id: &str, etag: &str, hours_from_now: i64) -> RemoteEvent {
    let start = now() + Duration::hours(hours_from_now);
    RemoteEvent {
        status: EventStatus::Confirmed,
        summary: Some(format!("event {id}")),
        start: Some(EventTime::at(start, None)),
        end: Some(EventTime::at(start + Duration::hours(1), None)),
        etag: Some(Etag::new(etag).unwrap()),
        updated: Some(now() - Duration::hours(1)),
        ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
    }
}

fn page(events: Vec<RemoteEvent>, run: SyncRun, token: Option<&str>) -> SyncPage {
    SyncPage {
        calendar_id: cal(),
        run,
        events,
        completion: token.map(|t| SyncCompletion {
            next_sync_token: t.into(),
        }),
        retention_cutoff: None,
        now: now(),
    }
}

fn full(run: &str) -> SyncRun {
    SyncRun::Full {
        run_id: run.into(),
        started_at: now(),
    }
}

fn local_event(entity_id: &str, start: DateTime<Utc>) -> Event {
    NewEvent::new(
        cal(),
        EntityRef::new("deal", entity_id).unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + Duration::hours(1), None),
        NewEventFields {
            summary: Some("local".into()),
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(now())
}

async fn mirrored(store: &Arc<dyn Store>, id: &str) -> Option<Event> {
    store
        .find_by_google_id(&cal(), &EventId::new(id).unwrap())
        .await
        .unwrap()
}

async fn all_events(store: &Arc<dyn Store>) -> Vec<Event> {
    store
        .list_events(&EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

async fn token(store: &Arc<dyn Store>) -> Option<String> {
    store
        .sync_state(&cal())
        .await
        .unwrap()
        .and_then(|s| s.sync_token)
}

pub async fn events_round_trip_every_field(db: &TestDb) {
    let store = &db.store;
    let mut rich = remote("rich0001", "\"7\"", 2);
    rich.ical_uid = Some("rich0001@google.com".into());
    rich.description = Some("Agenda: 1. ✓ unicode".into());
    rich.location = Some("Room 4".into());
    rich.start = Some(EventTime::at(
        now(),
        Some(TimeZoneName::new("Europe/Berlin").unwrap()),
    ));
    rich.end = Some(EventTime::at(
        now() + Duration::minutes(30),
        Some(TimeZoneName::new("America/New_York").unwrap()),
    ));
    rich.attendees = vec![Attendee {
        display_name: Some("Ann".into()),
        response_status: Some("accepted".into()),
        optional: true,
        ..Attendee::new("ann@example.com").unwrap()
    }];
    rich.organizer = Some(Organizer {
        email: Some("boss@example.com".into()),
        display_name: None,
    });
    rich.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=3".into()];
    rich.html_link = Some("https://calendar.google.com/event?eid=x".into());
    rich.entity = Some(EntityRef::new("deal", "4711").unwrap());
    let mut all_day = remote("allday01", "\"8\"", 0);
    all_day.start = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2026, 6, 3).unwrap(),
    ));
    all_day.end = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2026, 6, 4).unwrap(),
    ));
    let mut instance = remote("series01_20260601T120000Z", "\"9\"", 0);
    instance.recurring_event_id = Some(EventId::new("series01").unwrap());
    instance.original_start = Some(EventTime::at(now(), None));

    store
        .apply_sync_page(&page(
            vec![rich.clone(), all_day.clone(), instance.clone()],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();

    let got = mirrored(store, "rich0001").await.unwrap();
    assert_eq!(got.ical_uid, rich.ical_uid);
    assert_eq!(got.description, rich.description);
    assert_eq!(got.location, rich.location);
    assert_eq!(got.start, rich.start.unwrap());
    assert_eq!(got.end, rich.end.unwrap());
    assert_eq!(got.attendees, rich.attendees);
    assert_eq!(got.organizer, rich.organizer);
    assert_eq!(got.recurrence, rich.recurrence);
    assert_eq!(got.html_link, rich.html_link);
    assert_eq!(got.entity, rich.entity);
    assert_eq!(got.etag, rich.etag);
    assert_eq!(got.google_updated, rich.updated);
    assert_eq!(got.push_state, PushState::Synced);
    assert_eq!(store.get_event(got.id).await.unwrap().unwrap(), got);

    let day = mirrored(store, "allday01").await.unwrap();
    assert_eq!(
        day.start,
        EventTime::date(NaiveDate::from_ymd_opt(2026, 6, 3).unwrap()),
        "dates stay dates"
    );
    assert_eq!(
        day.end,
        EventTime::date(NaiveDate::from_ymd_opt(2026, 6, 4).unwrap())
    );
    let inst = mirrored(store, "series01_20260601T120000Z").await.unwrap();
    assert_eq!(inst.recurring_event_id, instance.recurring_event_id);
    assert_eq!(inst.original_start, instance.original_start);
}

pub async fn duplicate_google_ids_and_stale_updates_are_refused(db: &TestDb) {
    let store = &db.store;
    let event = local_event("1", now());
    let entry = store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!(entry.event_id, event.id);
    assert_eq!(entry.state, OutboxState::Pending);
    let mut twin = local_event("2", now());
    twin.google_event_id = event.google_event_id.clone();
    assert!(matches!(
        store.insert_with_outbox(&twin, OutboxOp::Insert).await,
        Err(Error::Duplicate { .. })
    ));

    let stored = store.get_event(event.id).await.unwrap().unwrap();
    let mut edited = stored.clone();
    edited.summary = Some("edited".into());
    edited.updated_at = stored.updated_at + Duration::seconds(1);
    store
        .update_with_outbox(
            &edited,
            stored.updated_at,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    // A second writer that read the same version loses.
    let mut late = stored.clone();
    late.summary = Some("late".into());
    assert!(matches!(
        store
            .update_with_outbox(
                &late,
                stored.updated_at,
                OutboxOp::Patch {
                    if_match: None,
                    intent: None,
                }
            )
            .await,
        Err(Error::PreconditionFailed { .. })
    ));
    let missing = local_event("3", now());
    assert!(matches!(
        store
            .update_with_outbox(&missing, missing.updated_at, OutboxOp::Delete)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store
            .get_event(event.id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .as_deref(),
        Some("edited")
    );
    assert_eq!(store.outbox_for_event(event.id).await.unwrap().len(), 2);
}

pub async fn pages_apply_atomically_and_store_the_token_last(db: &TestDb) {
    let store = &db.store;
    let first = store
        .apply_sync_page(&page(
            vec![remote("a0001", "\"1\"", 1), remote("a0002", "\"1\"", 2)],
            full("r1"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(first.inserted, 2);
    assert_eq!(token(store).await, None, "no token before the last page");
    let last = store
        .apply_sync_page(&page(
            vec![remote("a0003", "\"1\"", 3)],
            full("r1"),
            Some("tok-1"),
        ))
        .await
        .unwrap();
    assert_eq!((last.inserted, last.swept), (1, 0));
    assert_eq!(token(store).await.as_deref(), Some("tok-1"));
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(state.last_full_sync_at, Some(now()));

    let mut changed = remote("a0002", "\"2\"", 5);
    changed.updated = Some(now());
    let mut gone = RemoteEvent::cancelled_stub(EventId::new("a0001").unwrap());
    gone.updated = Some(now());
    let outcome = store
        .apply_sync_page(&page(
            vec![changed, gone, remote("a0004", "\"1\"", 4)],
            SyncRun::Incremental,
            Some("tok-2"),
        ))
        .await
        .unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.cancelled),
        (1, 1, 1)
    );
    assert_eq!(token(store).await.as_deref(), Some("tok-2"));
    assert_eq!(
        mirrored(store, "a0001").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        mirrored(store, "a0002")
            .await
            .unwrap()
            .etag
            .unwrap()
            .as_str(),
        "\"2\""
    );
    assert!(
        store
            .sync_state(&cal())
            .await
            .unwrap()
            .unwrap()
            .last_incremental_sync_at
            .is_some()
    );
}

pub async fn a_failure_mid_page_leaves_the_previous_state_intact(db: &TestDb) {
    let store = &db.store;
    store
        .apply_sync_page(&page(
            vec![remote("b0001", "\"1\"", 1), remote("b0002", "\"1\"", 2)],
            full("r1"),
            Some("tok-1"),
        ))
        .await
        .unwrap();
    let before = all_events(store).await;
    db.exec(
        "CREATE TRIGGER poison BEFORE INSERT ON calendar_events WHEN NEW.google_event_id = 'poison01' \
         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
           IF NEW.google_event_id = 'poison01' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; \
         END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER poison BEFORE INSERT ON calendar_events FOR EACH ROW EXECUTE FUNCTION poison();",
    )
    .await;
    let mut changed = remote("b0001", "\"2\"", 9);
    changed.updated = Some(now());
    let result = store
        .apply_sync_page(&page(
            vec![
                changed,
                remote("poison01", "\"1\"", 3),
                remote("b0003", "\"1\"", 4),
            ],
            SyncRun::Incremental,
            Some("tok-2"),
        ))
        .await;
    assert!(matches!(result, Err(Error::Storage(_))), "{result:?}");
    assert_eq!(
        all_events(store).await,
        before,
        "nothing of the page was applied"
    );
    assert_eq!(token(store).await.as_deref(), Some("tok-1"));
    // The store still works afterwards (no dangling transaction).
    store
        .apply_sync_page(&page(
            vec![remote("b0004", "\"1\"", 5)],
            SyncRun::Incremental,
            Some("tok-3"),
        ))
        .await
        .unwrap();
    assert_eq!(token(store).await.as_deref(), Some("tok-3"));
}

pub async fn replaying_a_page_changes_nothing(db: &TestDb) {
    let store = &db.store;
    let events = vec![remote("c0001", "\"1\"", 1), remote("c0002", "\"1\"", 2)];
    store
        .apply_sync_page(&page(events.clone(), SyncRun::Incremental, Some("tok")))
        .await
        .unwrap();
    let before = all_events(store).await;
    let again = store
        .apply_sync_page(&page(events, SyncRun::Incremental, Some("tok")))
        .await
        .unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(all_events(store).await, before);
}

pub async fn a_full_run_cancels_what_google_no_longer_has(db: &TestDb) {
    let store = &db.store;
    let events = vec![
        remote("d0001", "\"1\"", 1),
        remote("d0002", "\"1\"", 2),
        remote("d0003", "\"1\"", 3),
    ];
    store
        .apply_sync_page(&page(events, full("r1"), Some("t1")))
        .await
        .unwrap();
    // A local write not yet pushed is not Google's to delete.
    let pending = local_event("9", now());
    store
        .insert_with_outbox(&pending, OutboxOp::Insert)
        .await
        .unwrap();
    let first = store
        .apply_sync_page(&page(vec![remote("d0001", "\"1\"", 1)], full("r2"), None))
        .await
        .unwrap();
    assert_eq!(first.swept, 0, "nothing is swept before the last page");
    let last = store
        .apply_sync_page(&page(
            vec![remote("d0003", "\"1\"", 3)],
            full("r2"),
            Some("t2"),
        ))
        .await
        .unwrap();
    assert_eq!(last.swept, 1);
    assert_eq!(
        mirrored(store, "d0002").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        mirrored(store, "d0001").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        mirrored(store, "d0003").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        store.get_event(pending.id).await.unwrap().unwrap().status,
        EventStatus::Confirmed
    );
}

pub async fn sync_leases_are_exclusive_and_expire(db: &TestDb) {
    let store = &db.store;
    store.mark_dirty(&cal(), false).await.unwrap();
    let until = now() + Duration::seconds(60);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .lease_dirty(&format!("w{worker}"), now(), until)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(winners, 1, "one worker at a time");
    assert!(
        store
            .lease_calendar(&cal(), "x", now(), until)
            .await
            .unwrap()
            .is_none()
    );
    let later = until + Duration::seconds(1);
    let taken = store
        .lease_dirty("late", later, later + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.owner, "late", "an expired lease can be taken over");
    assert!(
        store
            .extend_lease(&taken, later + Duration::seconds(120))
            .await
            .unwrap()
    );
    let mut stolen = taken.clone();
    stolen.owner = "someone-else".into();
    assert!(
        !store
            .extend_lease(&stolen, later + Duration::seconds(120))
            .await
            .unwrap()
    );
}

pub async fn dirty_marks_made_during_a_sync_survive_it(db: &TestDb) {
    let store = &db.store;
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store
        .lease_dirty("w", now(), now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    store.mark_dirty(&cal(), false).await.unwrap();
    store
        .release_lease(&lease, &SyncOutcome::Succeeded { full: false }, now())
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(state.is_dirty(), "the mid-sync mark needs a follow-up");
    assert_eq!(state.lease_owner, None);
    let lease = store
        .lease_dirty("w", now(), now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    store
        .release_lease(&lease, &SyncOutcome::Succeeded { full: false }, now())
        .await
        .unwrap();
    assert!(!store.sync_state(&cal()).await.unwrap().unwrap().is_dirty());

    // A failure keeps it dirty, rests it, and can flag reconnecting.
    store.mark_dirty(&cal(), true).await.unwrap();
    let lease = store
        .lease_dirty("w", now(), now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert!(lease.full_sync_requested);
    let failed = SyncOutcome::Failed {
        error: "invalid_grant".into(),
        reconnect_required: true,
    };
    store.release_lease(&lease, &failed, now()).await.unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(state.is_dirty() && state.reconnect_required);
    assert_eq!(
        (state.error_count, state.last_error.as_deref()),
        (1, Some("invalid_grant"))
    );
    let far = now() + Duration::days(1);
    assert!(
        store
            .lease_dirty("w", far, far + Duration::seconds(60))
            .await
            .unwrap()
            .is_none(),
        "skipped until reconnected"
    );
    store.clear_reconnect_required(&cal()).await.unwrap();
    assert!(
        store
            .lease_dirty("w", far, far + Duration::seconds(60))
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn outbox_rows_go_in_order_one_worker_at_a_time(db: &TestDb) {
    let store = &db.store;
    let event = local_event("1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let mut edited = event.clone();
    edited.summary = Some("v2".into());
    edited.updated_at = now() + Duration::seconds(1);
    store
        .update_with_outbox(
            &edited,
            now(),
            OutboxOp::Patch {
                if_match: Some(Etag::new("\"e\"").unwrap()),
                intent: None,
            },
        )
        .await
        .unwrap();
    let other = local_event("2", now());
    store
        .insert_with_outbox(&other, OutboxOp::Insert)
        .await
        .unwrap();

    let due = now() + Duration::seconds(5);
    let lease = due + Duration::seconds(30);
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_outbox(&format!("w{worker}"), due, lease, 10)
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    assert_eq!(claimed.len(), 2, "each eligible row once: {claimed:?}");
    let mine = claimed.iter().find(|e| e.event_id == event.id).unwrap();
    assert_eq!(mine.op, OutboxOp::Insert, "the patch waits for the insert");

    store
        .complete_outbox(
            mine,
            &PushReceipt {
                pushed_at: now(),
                remote: None,
                etag: Some(Etag::new("\"g1\"").unwrap()),
                updated: Some(now()),
                html_link: None,
            },
        )
        .await
        .unwrap();
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(stored.etag.unwrap().as_str(), "\"g1\"");
    assert_eq!(
        stored.push_state,
        PushState::Pending,
        "the patch is still queued"
    );
    let next = store.claim_outbox("w", due, lease, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].op,
        OutboxOp::Patch {
            if_match: Some(Etag::new("\"e\"").unwrap()),
            intent: None,
        }
    );
    store
        .complete_outbox(
            &next[0],
            &PushReceipt {
                pushed_at: now(),
                remote: None,
                etag: Some(Etag::new("\"g2\"").unwrap()),
                updated: None,
                html_link: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_event(event.id).await.unwrap().unwrap().push_state,
        PushState::Synced
    );

    // An expired outbox lease can be taken over.
    let taken_over = store
        .claim_outbox(
            "late",
            lease + Duration::seconds(1),
            lease + Duration::seconds(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 1);
    assert_eq!(taken_over[0].event_id, other.id);
}

pub async fn outbox_records_attempts_retries_and_dead_letters(db: &TestDb) {
    let store = &db.store;
    let event = local_event("1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let claimed = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    let retry_at = now() + Duration::minutes(5);
    store
        .retry_outbox(&claimed, "503 backendError", retry_at)
        .await
        .unwrap();
    assert!(
        store
            .claim_outbox(
                "w",
                now() + Duration::minutes(1),
                now() + Duration::minutes(2),
                10
            )
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let again = store
        .claim_outbox("w", retry_at, retry_at + Duration::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (again.attempts, again.last_error.as_deref()),
        (1, Some("503 backendError"))
    );
    assert_eq!(again.next_attempt_at, retry_at);
    store
        .dead_letter_outbox(&again, "403 forbidden")
        .await
        .unwrap();
    let rows = store.outbox_for_event(event.id).await.unwrap();
    assert_eq!(
        (rows[0].state, rows[0].attempts),
        (OutboxState::DeadLetter, 2)
    );
    assert_eq!(
        store.get_event(event.id).await.unwrap().unwrap().push_state,
        PushState::Failed
    );
    assert!(
        store
            .claim_outbox(
                "w",
                retry_at + Duration::days(1),
                retry_at + Duration::days(2),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn job_ticks_are_claimed_exactly_once_under_contention(db: &TestDb) {
    let store = &db.store;
    let tick = now();
    let mut tasks = Vec::new();
    for replica in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_tick("cleanup", tick, &format!("r{replica}"))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(
        store
            .claim_tick("cleanup", tick + Duration::days(1), "r0")
            .await
            .unwrap()
    );
    assert!(store.claim_tick("renewal", tick, "r0").await.unwrap());
}

pub async fn cleanup_cancels_in_bounded_batches(db: &TestDb) {
    let store = &db.store;
    let cutoff = now() - Duration::days(180);
    let mut events = Vec::new();
    for i in 0..5 {
        let mut old = remote(&format!("old0{i}"), "\"1\"", 0);
        old.start = Some(EventTime::at(cutoff - Duration::days(10 + i), None));
        old.end = Some(EventTime::at(cutoff - Duration::days(9 + i), None));
        events.push(old);
    }
    // All-day, ending (exclusively) on the cutoff's date: over.
    let mut edge = remote("edge0001", "\"1\"", 0);
    edge.start = Some(EventTime::date(cutoff.date_naive() - Duration::days(1)));
    edge.end = Some(EventTime::date(cutoff.date_naive()));
    // All-day, ending the day after: not over.
    let mut spans = remote("spans001", "\"1\"", 0);
    spans.start = Some(EventTime::date(cutoff.date_naive()));
    spans.end = Some(EventTime::date(cutoff.date_naive() + Duration::days(1)));
    events.extend([edge, spans, remote("fresh001", "\"1\"", 1)]);
    store
        .apply_sync_page(&page(events, full("r1"), Some("t")))
        .await
        .unwrap();
    // A write not yet confirmed by Google is never touched.
    let mut pending = local_event("p", cutoff - Duration::days(30));
    pending.created_at = now();
    store
        .insert_with_outbox(&pending, OutboxOp::Insert)
        .await
        .unwrap();

    let first = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    let second = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    let third = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    assert_eq!((first, second, third), (4, 2, 0));
    assert_eq!(
        mirrored(store, "edge0001").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        mirrored(store, "spans001").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        mirrored(store, "fresh001").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        store.get_event(pending.id).await.unwrap().unwrap().status,
        EventStatus::Confirmed
    );
}

pub async fn health_aggregates_match_the_data(db: &TestDb) {
    let store = &db.store;
    let empty = store.health_stats(now(), now()).await.unwrap();
    assert_eq!(
        (
            empty.active_channels,
            empty.active_events,
            empty.outbox_pending
        ),
        (0, 0, 0)
    );
    assert_eq!(empty.oldest_event_start, None);

    let events = vec![
        remote("h0001", "\"1\"", -48),
        remote("h0002", "\"1\"", 24),
        remote("h0003", "\"1\"", 72),
    ];
    store
        .apply_sync_page(&page(events, full("r1"), Some("t")))
        .await
        .unwrap();
    let mut gone = RemoteEvent::cancelled_stub(EventId::new("h0003").unwrap());
    gone.updated = Some(now());
    store
        .apply_sync_page(&page(vec![gone], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    for (i, hours) in [(0, 2), (1, 200)] {
        let channel = WatchChannel {
            id: ChannelId::new(format!("chan-{i}")).unwrap(),
            calendar_id: cal(),
            resource_id: None,
            expiration: now(),
            status: ChannelStatus::Pending,
            created_at: now(),
            last_notification_at: None,
            last_message_number: None,
        };
        store.insert_channel(&channel).await.unwrap();
        let grant = WatchGrant {
            resource_id: ResourceId::new("r").unwrap(),
            expiration: now() + Duration::hours(hours),
        };
        store.activate_channel(&channel.id, &grant).await.unwrap();
    }
    let failed = local_event("f", now());
    store
        .insert_with_outbox(&failed, OutboxOp::Insert)
        .await
        .unwrap();
    let entry = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    store.dead_letter_outbox(&entry, "nope").await.unwrap();
    let pending = local_event("p", now() + Duration::hours(5));
    store
        .insert_with_outbox(&pending, OutboxOp::Insert)
        .await
        .unwrap();

    let stats = store
        .health_stats(now(), now() + Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(stats.active_channels, 2);
    assert_eq!(stats.channels_expiring_soon, 1);
    assert_eq!(stats.next_channel_expiry, Some(now() + Duration::hours(2)));
    assert_eq!(stats.last_sync_at, Some(now()));
    assert_eq!(
        stats.active_events, 4,
        "h0001, h0002, and the two local events"
    );
    assert_eq!(stats.oldest_event_start, Some(now() - Duration::hours(48)));
    assert_eq!(stats.newest_event_start, Some(now() + Duration::hours(24)));
    assert_eq!(
        (
            stats.outbox_pending,
            stats.outbox_dead_letters,
            stats.events_push_failed
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.oldest_pending_outbox_at, Some(now()));
    assert_eq!(stats.calendars.len(), 1);
    assert_eq!(stats.calendars[0].active_channels, 2);
    assert_eq!(stats.channels_lapsed, 0);

    // Three hours later the first channel has lapsed: no longer active.
    let later = now() + Duration::hours(3);
    let stats = store
        .health_stats(later, later + Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(
        (
            stats.active_channels,
            stats.channels_lapsed,
            stats.channels_expiring_soon
        ),
        (1, 1, 0)
    );
    assert_eq!(
        stats.next_channel_expiry,
        Some(now() + Duration::hours(200))
    );
    assert_eq!(stats.calendars[0].active_channels, 1);
}

pub async fn channels_keep_state_and_the_highest_message_number(db: &TestDb) {
    let store = &db.store;
    let channel = WatchChannel {
        id: ChannelId::random(),
        calendar_id: cal(),
        resource_id: None,
        expiration: now() + Duration::days(7),
        status: ChannelStatus::Pending,
        created_at: now(),
        last_notification_at: None,
        last_message_number: None,
    };
    store.insert_channel(&channel).await.unwrap();
    assert!(matches!(
        store.insert_channel(&channel).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(
        store.get_channel(&channel.id).await.unwrap().unwrap(),
        channel
    );
    let grant = WatchGrant {
        resource_id: ResourceId::new("res-1").unwrap(),
        expiration: now() + Duration::days(6),
    };
    store.activate_channel(&channel.id, &grant).await.unwrap();
    store
        .record_notification(&channel.id, 5, now())
        .await
        .unwrap();
    store
        .record_notification(&channel.id, 3, now() + Duration::seconds(1))
        .await
        .unwrap();
    let got = store.get_channel(&channel.id).await.unwrap().unwrap();
    assert_eq!(got.status, ChannelStatus::Active);
    assert_eq!(got.resource_id, Some(grant.resource_id.clone()));
    assert_eq!(got.expiration, grant.expiration);
    assert_eq!(
        got.last_message_number,
        Some(5),
        "out-of-order delivery keeps the highest"
    );
    assert_eq!(got.last_notification_at, Some(now() + Duration::seconds(1)));
    assert_eq!(
        store
            .list_channels(Some(ChannelStatus::Active))
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .set_channel_status(&channel.id, ChannelStatus::Stopped)
        .await
        .unwrap();
    assert!(
        store
            .list_channels(Some(ChannelStatus::Active))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_channels(None).await.unwrap().len(), 1);
    let unknown = ChannelId::new("nope").unwrap();
    assert!(matches!(
        store.record_notification(&unknown, 1, now()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store
            .set_channel_status(&unknown, ChannelStatus::Stopped)
            .await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn listing_filters_and_pages(db: &TestDb) {
    let store = &db.store;
    for i in 0..7 {
        let mut event = local_event(
            if i % 2 == 0 { "even" } else { "odd" },
            now() + Duration::hours(i),
        );
        event.id = LocalEventId::new();
        event.google_event_id = EventId::for_local(event.id);
        store
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await
            .unwrap();
    }
    let even = EntityRef::new("deal", "even").unwrap();
    let mut query = EventQuery {
        entity: Some(even.clone()),
        limit: 2,
        ..EventQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list_events(&query).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        query.after = Some((last.start.sort_key(), last.id));
        seen.extend(page);
    }
    assert_eq!(seen.len(), 4);
    assert!(
        seen.windows(2)
            .all(|w| w[0].start.sort_key() <= w[1].start.sort_key()),
        "ordered by start"
    );
    assert!(seen.iter().all(|e| e.entity.as_ref() == Some(&even)));
    let windowed = store
        .list_events(&EventQuery {
            ends_after: Some(now() + Duration::hours(2)),
            starts_before: Some(now() + Duration::hours(4)),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    // Events start hourly from now and last an hour: those starting at +2h
    // and +3h overlap (+2h, +4h); the one ending exactly at +2h does not.
    let starts: Vec<_> = windowed
        .iter()
        .map(|e| e.start.sort_key() - now())
        .collect();
    assert_eq!(starts, vec![Duration::hours(2), Duration::hours(3)]);
    let none = store
        .list_events(&EventQuery {
            status: Some(EventStatus::Cancelled),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn concurrent_writers_lose_nothing(db: &TestDb) {
    let store = &db.store;
    let mut tasks = Vec::new();
    for writer in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut event = local_event(&format!("w{writer}"), now() + Duration::minutes(i));
                event.id = LocalEventId::new();
                event.google_event_id = EventId::for_local(event.id);
                store
                    .insert_with_outbox(&event, OutboxOp::Insert)
                    .await
                    .unwrap();
                store.mark_dirty(&cal(), false).await.unwrap();
                let page = page(
                    vec![remote(&format!("x{writer}x{i}x"), "\"1\"", i)],
                    SyncRun::Incremental,
                    None,
                );
                store.apply_sync_page(&page).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = all_events(store).await;
    assert_eq!(events.len(), 24 * 10 * 2);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len());
    assert_eq!(
        store.sync_state(&cal()).await.unwrap().unwrap().dirty_seq,
        240,
        "no increment lost"
    );
    let claimed = store
        .claim_outbox(
            "w",
            now() + Duration::hours(1),
            now() + Duration::hours(2),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 240);
}

pub async fn drive_notifications_are_kept_newest_first(db: &TestDb) {
    use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};
    let store = &db.store;
    for (n, state) in [
        (1, DriveResourceState::Sync),
        (2, DriveResourceState::Trash),
    ] {
        let notification = DriveNotification {
            envelope: PushEnvelope {
                channel_id: ChannelId::new("drive-chan").unwrap(),
                token: Some("never-stored".into()),
                message_number: n,
                resource_id: ResourceId::new("res-9").unwrap(),
                resource_uri: "https://www.googleapis.com/drive/v3/files/9".into(),
                channel_expiration: None,
            },
            state,
            changed: if n == 2 {
                vec!["content".into(), "parents".into()]
            } else {
                vec![]
            },
        };
        store
            .record_drive_notification(&notification, now() + Duration::seconds(n as i64))
            .await
            .unwrap();
    }
    let recent = store.recent_drive_notifications(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    let (latest, at) = &recent[0];
    assert_eq!(
        (latest.state, latest.envelope.message_number),
        (DriveResourceState::Trash, 2)
    );
    assert_eq!(
        latest.changed,
        vec!["content".to_owned(), "parents".to_owned()]
    );
    assert_eq!(latest.envelope.token, None);
    assert_eq!(*at, now() + Duration::seconds(2));
    assert!(recent[1].0.changed.is_empty());
    // A replay of message 2 is not recorded again.
    let replay = recent[0].0.clone();
    assert!(
        !store
            .record_drive_notification(&replay, now() + Duration::hours(1))
            .await
            .unwrap()
    );
    assert_eq!(store.recent_drive_notifications(10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .purge_drive_notifications(now() + Duration::milliseconds(1500))
            .await
            .unwrap(),
        1,
        "the older one"
    );
    let left = store.recent_drive_notifications(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0.envelope.message_number, 2);
}

pub async fn idempotency_keys_admit_one_insert_even_when_racing(db: &TestDb) {
    let store = &db.store;
    let key = IdempotencyKey::new("create-deal-42", "fp-1").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut event = local_event("42", now());
            event.id = LocalEventId::new();
            event.google_event_id = EventId::for_local(event.id);
            store
                .insert_idempotent(&event, OutboxOp::Insert, &key)
                .await
                .map(|_| event.id)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => winners.push(id),
            Err(Error::Duplicate {
                what: "idempotency key",
            }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one request wins the key");
    assert_eq!(all_events(store).await.len(), 1, "the losers wrote nothing");
    let record = store
        .find_idempotency_key("create-deal-42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.event_id, winners[0]);
    assert_eq!(record.fingerprint, "fp-1");
    assert!(store.find_idempotency_key("other").await.unwrap().is_none());

    assert_eq!(
        store
            .purge_idempotency_keys(now() - Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_idempotency_keys(now() + Duration::hours(1))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .find_idempotency_key("create-deal-42")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn a_migrated_database_is_ready(db: &TestDb) {
    db.store.check_ready().await.unwrap();
}

pub async fn leases_record_the_seq_they_saw_until_released(db: &TestDb) {
    let store = &db.store;
    store.mark_dirty(&cal(), false).await.unwrap();
    store.mark_dirty(&cal(), false).await.unwrap();
    let until = now() + Duration::seconds(60);
    let lease = store.lease_dirty("w", now(), until).await.unwrap().unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(state.lease_seen_seq, Some(lease.seen_seq));
    assert_eq!(lease.seen_seq, 2);
    assert!(
        !state.covers_new_change(now()),
        "nothing marked since the lease"
    );
    store.mark_dirty(&cal(), false).await.unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(state.covers_new_change(now()));
    store
        .release_lease(&lease, &SyncOutcome::Succeeded { full: false }, now())
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(
        (state.lease_seen_seq, state.lease_owner.as_deref()),
        (None, None)
    );
    assert!(state.is_dirty() && state.covers_new_change(now()));
}

pub async fn the_active_event_count_follows_every_write_path(db: &TestDb) {
    let store = &db.store;
    let counted = || async {
        let events = all_events(store).await;
        let live = events
            .iter()
            .filter(|e| e.status != EventStatus::Cancelled)
            .count() as u64;
        let reported = store
            .health_stats(now(), now())
            .await
            .unwrap()
            .active_events;
        assert_eq!(reported, live, "maintained count vs rows");
        live
    };
    assert_eq!(counted().await, 0);
    // Sync inserts, then an update that cancels one and one that does not.
    let events: Vec<_> = (0..6)
        .map(|i| remote(&format!("cnt{i:04}"), "\"1\"", i))
        .collect();
    store
        .apply_sync_page(&page(events, SyncRun::Incremental, None))
        .await
        .unwrap();
    assert_eq!(counted().await, 6);
    let mut edited = remote("cnt0001", "\"2\"", 1);
    edited.updated = Some(now());
    let mut gone = RemoteEvent::cancelled_stub(EventId::new("cnt0002").unwrap());
    gone.updated = Some(now());
    store
        .apply_sync_page(&page(vec![edited, gone], SyncRun::Incremental, None))
        .await
        .unwrap();
    assert_eq!(counted().await, 5);
    // A local write, then its cancellation.
    let local = local_event("cnt", now() + Duration::hours(3));
    store
        .insert_with_outbox(&local, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!(counted().await, 6);
    let mut cancelled = local.clone();
    cancelled.status = EventStatus::Cancelled;
    cancelled.updated_at = local.updated_at + Duration::seconds(1);
    store
        .update_with_outbox(&cancelled, local.updated_at, OutboxOp::Delete)
        .await
        .unwrap();
    assert_eq!(counted().await, 5);
    // A full run that no longer sees two events sweeps them; cleanup cancels more.
    let kept: Vec<_> = (3..6)
        .map(|i| remote(&format!("cnt{i:04}"), "\"1\"", i))
        .collect();
    store
        .apply_sync_page(&page(kept, full("count-run"), Some("t")))
        .await
        .unwrap();
    assert_eq!(counted().await, 3);
    let swept = store
        .cancel_ended_before(now() + Duration::days(1), 100, now())
        .await
        .unwrap();
    assert_eq!(swept, 3);
    assert_eq!(counted().await, 0);
}

pub async fn the_full_sweep_spares_only_pending_rows_and_rows_pushed_after_it_began(db: &TestDb) {
    let store = &db.store;
    let synced = remote("d0001", "\"1\"", 1);
    store
        .apply_sync_page(&page(vec![synced], full("r1"), Some("t1")))
        .await
        .unwrap();
    // A local event pushed before the run, then failed for good on a patch.
    let failed = local_event("1", now() - Duration::hours(2));
    store
        .insert_with_outbox(&failed, OutboxOp::Insert)
        .await
        .unwrap();
    let claim = |owner: &'static str| async move {
        store
            .claim_outbox(owner, now(), now() + Duration::seconds(30), 10)
            .await
            .unwrap()
    };
    let rows = claim("w").await;
    let receipt = |at| PushReceipt {
        pushed_at: at,
        remote: None,
        etag: Some(Etag::new("\"p\"").unwrap()),
        updated: None,
        html_link: None,
    };
    store
        .complete_outbox(&rows[0], &receipt(now() - Duration::hours(1)))
        .await
        .unwrap();
    let mut changed = store.get_event(failed.id).await.unwrap().unwrap();
    let before = changed.updated_at;
    changed.summary = Some("x".into());
    store
        .update_with_outbox(
            &changed,
            before,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    let rows = claim("w").await;
    store.dead_letter_outbox(&rows[0], "refused").await.unwrap();
    // A local event created before the run but pushed while it ran.
    let late = local_event("2", now() - Duration::hours(2));
    store
        .insert_with_outbox(&late, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = claim("w").await;
    store
        .complete_outbox(&rows[0], &receipt(now() + Duration::minutes(1)))
        .await
        .unwrap();

    let done = store
        .apply_sync_page(&page(vec![], full("r2"), Some("t2")))
        .await
        .unwrap();
    assert_eq!(done.swept, 2, "the synced and the failed row");
    assert_eq!(
        store.get_event(failed.id).await.unwrap().unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        mirrored(store, "d0001").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        store.get_event(late.id).await.unwrap().unwrap().status,
        EventStatus::Confirmed,
        "pushed after the run began: the listing may have missed it"
    );
}

pub async fn settled_writes_and_heartbeats_and_patch_intents_are_kept(db: &TestDb) {
    let store = &db.store;
    let event = local_event("3", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let lease_end = now() + Duration::seconds(10);
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    // The heartbeat keeps the lease: another worker cannot take the row.
    let later = now() + Duration::seconds(60);
    assert_eq!(
        store
            .extend_outbox_leases("w", &[rows[0].id], later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .extend_outbox_leases("other", &[rows[0].id], later)
            .await
            .unwrap(),
        0,
        "only the holder extends"
    );
    assert!(
        store
            .claim_outbox("v", lease_end + Duration::seconds(1), later, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Google had deleted it: the row is done, the event cancelled with a note.
    let mut gone = event.clone();
    gone.status = EventStatus::Cancelled;
    gone.push_state = PushState::Synced;
    gone.push_note = Some("deleted at Google".into());
    store
        .settle_outbox(&rows[0], &gone, "deleted at Google")
        .await
        .unwrap();
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.status,
            stored.push_state,
            stored.push_note.as_deref()
        ),
        (
            EventStatus::Cancelled,
            PushState::Synced,
            Some("deleted at Google")
        )
    );
    let history = store.outbox_for_event(event.id).await.unwrap();
    assert_eq!(history[0].state, OutboxState::Done);
    assert_eq!(history[0].last_error.as_deref(), Some("deleted at Google"));

    // A conflict round-trips as its own push state; a patch's intent too.
    let other = local_event("4", now());
    store
        .insert_with_outbox(&other, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    let mut kept = other.clone();
    kept.push_state = PushState::Conflict;
    kept.summary = Some("Google's".into());
    store
        .settle_outbox(&rows[0], &kept, "conflict")
        .await
        .unwrap();
    let stored = store.get_event(other.id).await.unwrap().unwrap();
    assert_eq!(stored.push_state, PushState::Conflict);
    let stats = store.health_stats(now(), now()).await.unwrap();
    assert_eq!(stats.events_push_conflicts, 1);
    let changes = EventChanges {
        summary: Some(None),
        attendees: Some(vec![]),
        ..EventChanges::default()
    };
    let op = OutboxOp::Patch {
        if_match: None,
        intent: Some(Box::new(PatchIntent {
            base: changes.base_in(&stored),
            changes,
        })),
    };
    store
        .update_with_outbox(&stored, stored.updated_at, op.clone())
        .await
        .unwrap();
    let rows = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    assert_eq!(rows[0].op, op);
}

pub async fn a_completed_push_takes_googles_whole_event(db: &TestDb) {
    let store = &db.store;
    let event = local_event("5", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap();
    let mut at_google = remote(event.google_event_id.as_str(), "\"g9\"", 5);
    at_google.location = Some("Room 9".into());
    at_google.entity = event.entity.clone();
    store
        .complete_outbox(
            &rows[0],
            &PushReceipt {
                pushed_at: now(),
                remote: Some(Box::new(at_google.clone())),
                etag: at_google.etag.clone(),
                updated: at_google.updated,
                html_link: None,
            },
        )
        .await
        .unwrap();
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(stored.location.as_deref(), Some("Room 9"));
    assert_eq!(stored.summary, at_google.summary);
    assert_eq!(stored.etag, at_google.etag);
    assert_eq!(stored.push_state, PushState::Synced);
    assert_eq!(stored.entity, event.entity);
    assert_eq!(
        stored.updated_at, event.updated_at,
        "local writers are not disturbed"
    );
}
