//! Applying Google's pages: atomicity, tokens, replays and the full run's sweep.

use super::*;

pub async fn pages_apply_atomically_and_store_the_token_last(store: &Arc<dyn Store>) {
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

pub async fn replaying_a_page_changes_nothing(store: &Arc<dyn Store>) {
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

pub async fn a_page_naming_an_event_twice_keeps_its_last_state(store: &Arc<dyn Store>) {
    // Google may list an event twice within a sync (changed while being
    // listed); the later entry is decided against the earlier one.
    let mut renamed = remote("d0001", "\"2\"", 1);
    renamed.summary = Some("renamed".into());
    let cancelled = RemoteEvent::cancelled_stub(EventId::new("d0002").unwrap());
    let outcome = store
        .apply_sync_page(&page(
            vec![
                remote("d0001", "\"1\"", 1),
                remote("d0002", "\"1\"", 2),
                renamed,
                cancelled,
            ],
            SyncRun::Incremental,
            Some("tok"),
        ))
        .await
        .unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.cancelled),
        (2, 1, 1)
    );
    let first = mirrored(store, "d0001").await.unwrap();
    assert_eq!(first.etag.unwrap().as_str(), "\"2\"");
    assert_eq!(first.summary.as_deref(), Some("renamed"));
    assert_eq!(
        mirrored(store, "d0002").await.unwrap().status,
        EventStatus::Cancelled
    );
    let rows = all_events(store).await;
    assert_eq!(rows.len(), 2, "one row per Google id: {rows:?}");
}

pub async fn a_full_run_cancels_what_google_no_longer_has(store: &Arc<dyn Store>) {
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

pub async fn the_full_sweep_spares_only_pending_rows_and_rows_pushed_after_it_began(
    store: &Arc<dyn Store>,
) {
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
    store
        .dead_letter_outbox(&rows[0], PushFailure::Refused, "refused")
        .await
        .unwrap();
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

pub async fn a_full_run_keeps_what_it_saw_when_a_push_settles_meanwhile(store: &Arc<dyn Store>) {
    store
        .apply_sync_page(&page(
            vec![remote("k0001", "\"1\"", 1)],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let synced = mirrored(store, "k0001").await.unwrap();
    let mut edited = synced.clone();
    edited.summary = Some("ours".into());
    edited.push_state = PushState::Pending;
    edited.updated_at = synced.updated_at + Duration::seconds(1);
    store
        .update_with_outbox(
            &edited,
            synced.updated_at,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    // A full run sees the event on its first page (the local write is
    // pending, so the page leaves it alone) ...
    store
        .apply_sync_page(&page(vec![remote("k0001", "\"2\"", 1)], full("r2"), None))
        .await
        .unwrap();
    // ... then the push conflicts and settles on Google's copy ...
    let rows = store
        .claim_outbox(
            "w",
            now() + Duration::seconds(2),
            now() + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    let mut theirs = edited.clone();
    theirs.summary = Some("theirs".into());
    theirs.push_state = PushState::Conflict;
    store
        .settle_outbox(&rows[0], &theirs, PushFailure::Conflict, "conflict")
        .await
        .unwrap();
    // ... and the run's last page does not name it again: the run saw it.
    let done = store
        .apply_sync_page(&page(vec![], full("r2"), Some("t2")))
        .await
        .unwrap();
    assert_eq!(done.swept, 0, "seen by the run");
    assert_eq!(
        mirrored(store, "k0001").await.unwrap().status,
        EventStatus::Confirmed
    );
}
