//! The push queue: order, leases, retries, dead letters, settling and completion.

use super::*;

pub async fn outbox_rows_go_in_order_one_worker_at_a_time(store: &Arc<dyn Store>) {
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

pub async fn outbox_records_attempts_retries_and_dead_letters(store: &Arc<dyn Store>) {
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
        .retry_outbox(
            &claimed,
            PushFailure::Temporary,
            "503 backendError",
            retry_at,
        )
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
        .dead_letter_outbox(&again, PushFailure::Refused, "403 forbidden")
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

pub async fn settled_writes_and_heartbeats_and_patch_intents_are_kept(store: &Arc<dyn Store>) {
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
        .settle_outbox(&rows[0], &gone, PushFailure::Gone, "deleted at Google")
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
        .settle_outbox(&rows[0], &kept, PushFailure::Conflict, "conflict")
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

pub async fn a_completed_push_takes_googles_whole_event(store: &Arc<dyn Store>) {
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

/// A local write reads the event, a push of an earlier write finishes,
/// then the local write is stored: the receipt the push recorded stays
/// (the chaos battery caught a stale etag written back, so the next push's
/// `If-Match` failed at Google and a conditional write was lost).
pub async fn a_local_write_keeps_the_receipt_of_a_push_that_finished_after_its_read(
    store: &Arc<dyn Store>,
) {
    let event = local_event("6", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let rows = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap();
    let pushed_at = now() + Duration::seconds(2);
    let updated = now() + Duration::seconds(1);
    // The local write's read, before the push's answer is recorded.
    let read = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(read.etag, None);
    store
        .complete_outbox(
            &rows[0],
            &PushReceipt {
                pushed_at,
                remote: None,
                etag: Some(Etag::new("\"g2\"").unwrap()),
                updated: Some(updated),
                html_link: Some("https://calendar.example/e6".into()),
            },
        )
        .await
        .unwrap();
    let mut edited = read.clone();
    edited.summary = Some("edited".into());
    edited.push_state = PushState::Pending;
    edited.updated_at = now() + Duration::seconds(3);
    store
        .update_with_outbox(
            &edited,
            read.updated_at,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(stored.summary.as_deref(), Some("edited"));
    assert_eq!(stored.push_state, PushState::Pending);
    assert_eq!(stored.updated_at, edited.updated_at);
    assert_eq!(
        (
            stored.etag.as_ref().map(Etag::as_str),
            stored.google_updated,
            stored.html_link.as_deref(),
            stored.pushed_at,
        ),
        (
            Some("\"g2\""),
            Some(updated),
            Some("https://calendar.example/e6"),
            Some(pushed_at),
        ),
        "the push's receipt is kept"
    );
}

pub async fn a_wait_is_no_attempt(store: &Arc<dyn Store>) {
    let event = local_event("1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let claim = |at: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .claim_outbox("w", at, at + Duration::seconds(30), 10)
                .await
                .unwrap()
        }
    };
    let first = claim(now()).await.remove(0);
    store
        .retry_outbox(&first, PushFailure::Temporary, "503 backendError", now())
        .await
        .unwrap();
    let mut row = claim(now()).await.remove(0);
    assert_eq!(row.attempts, 1);
    let mut probe_at = now();
    for _ in 0..3 {
        probe_at += Duration::minutes(5);
        store
            .wait_outbox(
                &row,
                PushFailure::Temporary,
                "403 requiredAccessLevel",
                probe_at,
                probe_at,
            )
            .await
            .unwrap();
        assert!(
            claim(probe_at - Duration::seconds(1)).await.is_empty(),
            "not due before the probe"
        );
        row = claim(probe_at).await.remove(0);
    }
    let probed = row;
    assert_eq!(
        (probed.attempts, probed.last_error.as_deref()),
        (1, Some("403 requiredAccessLevel")),
        "three waits, still one attempt"
    );
    assert_eq!(probed.next_attempt_at, probe_at);
    assert_eq!(probed.state, OutboxState::Pending);
    assert_eq!(
        store.get_event(event.id).await.unwrap().unwrap().push_state,
        PushState::Pending
    );
}

/// A read-only calendar is probed by one write: the refused row waits for
/// the probe, the calendar's other queued rows one interval behind it;
/// another calendar's rows and a row someone holds are left alone.
pub async fn a_waiting_probe_holds_its_calendars_other_writes(store: &Arc<dyn Store>) {
    let mut other_calendar = local_event("3", now());
    other_calendar.calendar_id = CalendarId::new("elsewhere@example.com").unwrap();
    for event in [
        local_event("1", now()),
        local_event("2", now()),
        other_calendar.clone(),
    ] {
        store
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await
            .unwrap();
    }
    let lease_end = now() + Duration::seconds(30);
    let mut rows = store.claim_outbox("w", now(), lease_end, 1).await.unwrap();
    let probe = rows.remove(0);
    let probe_at = now() + Duration::minutes(5);
    let others_at = probe_at + Duration::minutes(5);
    store
        .wait_outbox(
            &probe,
            PushFailure::Temporary,
            "403 requiredAccessLevel",
            probe_at,
            others_at,
        )
        .await
        .unwrap();
    let due_now = store.claim_outbox("w", now(), lease_end, 10).await.unwrap();
    assert_eq!(
        due_now
            .iter()
            .map(|r| r.calendar_id.clone())
            .collect::<Vec<_>>(),
        vec![other_calendar.calendar_id.clone()],
        "only the other calendar's write is due"
    );
    store
        .retry_outbox(
            &due_now[0],
            PushFailure::Temporary,
            "out of the way",
            now() + Duration::days(1),
        )
        .await
        .unwrap();
    let at_probe = store
        .claim_outbox("w", probe_at, probe_at + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(
        at_probe.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![probe.id],
        "the probe goes alone"
    );
    // (The probe's own lease has lapsed by then too; only the held row matters.)
    let behind: Vec<_> = store
        .claim_outbox("w", others_at, others_at + Duration::seconds(30), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.id != probe.id)
        .collect();
    assert_eq!(behind.len(), 1, "the held write comes after: {behind:?}");
    assert_eq!(behind[0].attempts, 0);
}

/// Each way a row records its last error records the error's kind too, so
/// a reader (a write's verdict) tells a conflict from another refusal
/// without reading the text; a row pushed at last keeps its history.
pub async fn outbox_rows_keep_the_kind_of_their_last_failure(store: &Arc<dyn Store>) {
    let claim = |at: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .claim_outbox("w", at, at + Duration::seconds(30), 10)
                .await
                .unwrap()
        }
    };
    let kinds = |event: &Event| {
        let store = store.clone();
        let id = event.id;
        async move {
            store
                .outbox_for_event(id)
                .await
                .unwrap()
                .into_iter()
                .map(|row| (row.state, row.last_failure))
                .collect::<Vec<_>>()
        }
    };
    let refused = local_event("1", now());
    store
        .insert_with_outbox(&refused, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!(
        kinds(&refused).await,
        vec![(OutboxState::Pending, None)],
        "a fresh row has failed at nothing"
    );

    // Waits and retries are temporary; the dead letter says why it ended.
    let row = claim(now()).await.remove(0);
    store
        .wait_outbox(
            &row,
            PushFailure::Temporary,
            "403 requiredAccessLevel",
            now(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&refused).await,
        vec![(OutboxState::Pending, Some(PushFailure::Temporary))]
    );
    let row = claim(now()).await.remove(0);
    store
        .retry_outbox(&row, PushFailure::Temporary, "503 backendError", now())
        .await
        .unwrap();
    let row = claim(now()).await.remove(0);
    assert_eq!(row.last_failure, Some(PushFailure::Temporary));
    store
        .dead_letter_outbox(&row, PushFailure::Conflict, "412 conditionNotMet")
        .await
        .unwrap();
    let rows = store.outbox_for_event(refused.id).await.unwrap();
    assert_eq!(
        (
            rows[0].state,
            rows[0].last_failure,
            rows[0].last_error.as_deref()
        ),
        (
            OutboxState::DeadLetter,
            Some(PushFailure::Conflict),
            Some("412 conditionNotMet")
        )
    );

    // A settled row records its kind beside its note.
    let gone = local_event("2", now());
    store
        .insert_with_outbox(&gone, OutboxOp::Insert)
        .await
        .unwrap();
    let row = claim(now()).await.remove(0);
    let mut cancelled = gone.clone();
    cancelled.status = EventStatus::Cancelled;
    cancelled.push_state = PushState::Synced;
    cancelled.push_note = Some("deleted at Google".into());
    store
        .settle_outbox(&row, &cancelled, PushFailure::Gone, "deleted at Google")
        .await
        .unwrap();
    assert_eq!(
        kinds(&gone).await,
        vec![(OutboxState::Done, Some(PushFailure::Gone))]
    );

    // A row that lands after a refusal keeps the kind of its last failure.
    let landed = local_event("3", now());
    store
        .insert_with_outbox(&landed, OutboxOp::Insert)
        .await
        .unwrap();
    let row = claim(now()).await.remove(0);
    store
        .retry_outbox(&row, PushFailure::Refused, "400 invalid", now())
        .await
        .unwrap();
    let row = claim(now()).await.remove(0);
    store
        .complete_outbox(
            &row,
            &PushReceipt {
                pushed_at: now(),
                remote: None,
                etag: Some(Etag::new("\"g1\"").unwrap()),
                updated: None,
                html_link: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&landed).await,
        vec![(OutboxState::Done, Some(PushFailure::Refused))]
    );
}
