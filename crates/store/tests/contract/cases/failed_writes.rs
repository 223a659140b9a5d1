use super::*;
use calsync_domain::feed::{ChangeQuery, ChangeType};

fn receipt() -> PushReceipt {
    PushReceipt {
        pushed_at: now(),
        remote: None,
        etag: Some(Etag::new("\"g1\"").unwrap()),
        updated: Some(now()),
        html_link: None,
    }
}

async fn kinds_of(store: &Arc<dyn Store>, kind: ChangeType) -> Vec<LocalEventId> {
    store
        .read_changes(&ChangeQuery {
            after: None,
            limit: 1000,
            calendar_id: None,
            entity_type: None,
            entity_id: None,
            types: vec![kind],
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.change.event.map(|e| e.id))
        .collect()
}

async fn failed(store: &Arc<dyn Store>) -> Vec<LocalEventId> {
    store
        .list_events(&EventQuery {
            push_state: Some(PushState::Failed),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Claims the event's next row and gives it up.
async fn dead_letter(store: &Arc<dyn Store>, at: DateTime<Utc>) -> i64 {
    let row = store
        .claim_outbox("w", at, at + Duration::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    store
        .dead_letter_outbox(&row, PushFailure::Refused, "400 invalid")
        .await
        .unwrap();
    row.id
}

pub async fn failed_writes_are_requeued_as_they_were_or_discarded(store: &Arc<dyn Store>) {
    // A write that went through, then one Google refused: only the refused
    // one is the failed write.
    let event = local_event("fw1", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let row = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    store.complete_outbox(&row, &receipt()).await.unwrap();
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    let mut edited = stored.clone();
    edited.summary = Some("Refused rename".into());
    edited.updated_at = now() + Duration::seconds(1);
    let patch = OutboxOp::Patch {
        if_match: None,
        intent: None,
    };
    store
        .update_with_outbox(&edited, stored.updated_at, patch.clone())
        .await
        .unwrap();
    let refused = dead_letter(store, now() + Duration::seconds(2)).await;
    assert_eq!(failed(store).await, [event.id]);

    // Requeued as it was: the refused row only, due now, errors cleared.
    let at = now() + Duration::minutes(1);
    let requeued = store.requeue_dead_letters(event.id, at).await.unwrap();
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    let row = &requeued[0];
    assert_eq!(
        (row.id, row.state, row.attempts, row.next_attempt_at),
        (refused, OutboxState::Pending, 0, at)
    );
    assert_eq!((row.last_error.as_deref(), row.last_failure), (None, None));
    assert_eq!(row.op, patch);
    let pending = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(pending.push_state, PushState::Pending);
    assert_eq!(pending.summary.as_deref(), Some("Refused rename"));
    assert!(failed(store).await.is_empty());
    assert_eq!(
        kinds_of(store, ChangeType::EventPushRetried).await,
        [event.id]
    );
    // Nothing failed now: a second retry or a discard changes nothing.
    assert!(
        store
            .requeue_dead_letters(event.id, at)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.discard_dead_letters(&pending, "n").await.unwrap());
    let claimed = store
        .claim_outbox("w", at, at + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [refused]);

    // Refused again, then discarded: Google's version becomes the row.
    store
        .dead_letter_outbox(&claimed[0], PushFailure::Refused, "400 invalid")
        .await
        .unwrap();
    let mut googles = store.get_event(event.id).await.unwrap().unwrap();
    googles.summary = Some("Kick-off".into());
    googles.push_state = PushState::Synced;
    googles.updated_at = at + Duration::seconds(5);
    assert!(
        store
            .discard_dead_letters(&googles, "discarded")
            .await
            .unwrap()
    );
    let kept = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(
        (kept.summary.as_deref(), kept.push_state),
        (Some("Kick-off"), PushState::Synced)
    );
    let rows = store.outbox_for_event(event.id).await.unwrap();
    assert!(
        rows.iter().all(|r| r.state == OutboxState::Done),
        "{rows:?}"
    );
    let discarded = rows.iter().find(|r| r.id == refused).unwrap();
    assert_eq!(discarded.last_error.as_deref(), Some("discarded"));
    assert!(failed(store).await.is_empty());
    assert_eq!(
        kinds_of(store, ChangeType::EventPushDiscarded).await,
        [event.id]
    );
    assert!(!store.discard_dead_letters(&kept, "again").await.unwrap());
    // Health counts no dead letter and no failed event any more.
    let health = store.health_stats(at, at).await.unwrap();
    assert_eq!(
        (health.outbox_dead_letters, health.events_push_failed),
        (0, 0)
    );

    // An unknown event: nothing to do.
    let unknown = LocalEventId::new();
    assert!(
        store
            .requeue_dead_letters(unknown, at)
            .await
            .unwrap()
            .is_empty()
    );
}
