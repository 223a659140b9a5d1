use super::*;

fn calendar(n: usize) -> CalendarId {
    CalendarId::new(format!("sweep{n}@example.com")).unwrap()
}

/// Leases every dirty calendar in turn and releases each clean; answers
/// the order they were leased in.
async fn drain(store: &Arc<dyn Store>) -> Vec<CalendarId> {
    let mut order = Vec::new();
    while let Some(lease) = store
        .lease_dirty("w", now(), now() + Duration::seconds(60))
        .await
        .unwrap()
    {
        store
            .release_lease(
                &lease,
                &SyncOutcome::Succeeded {
                    full: lease.full_sync_requested,
                    rest_until: None,
                },
                now(),
            )
            .await
            .unwrap();
        order.push(lease.calendar_id);
        assert!(order.len() < 100, "{order:?}");
    }
    order
}

pub async fn the_sweeps_marks_are_leased_after_every_other(store: &Arc<dyn Store>) {
    let all: Vec<CalendarId> = (0..12).map(calendar).collect();
    for id in &all {
        store.mark_dirty(id, false).await.unwrap();
    }
    assert_eq!(drain(store).await.len(), all.len());

    // The sweep marks every calendar but one that is dirty already; then
    // two change (a notification marks them).
    store.mark_dirty(&all[0], false).await.unwrap();
    assert_eq!(store.mark_swept(&all).await.unwrap(), 11);
    store.mark_dirty(&all[7], false).await.unwrap();
    store.mark_dirty(&all[11], true).await.unwrap();
    let order = drain(store).await;
    assert_eq!(order.len(), all.len(), "{order:?}");
    let mut first: Vec<&CalendarId> = order[..3].iter().collect();
    first.sort();
    assert_eq!(first, [&all[0], &all[11], &all[7]], "{order:?}");

    // A sweep of clean calendars marks them all, and marks nothing twice.
    assert_eq!(store.mark_swept(&all[..4]).await.unwrap(), 4);
    assert_eq!(store.mark_swept(&all[..4]).await.unwrap(), 0);
    assert_eq!(store.mark_swept(&[]).await.unwrap(), 0);
    // A calendar without a sync state is not one the sweep knows.
    assert_eq!(store.mark_swept(&[calendar(99)]).await.unwrap(), 0);
    assert!(store.sync_state(&calendar(99)).await.unwrap().is_none());
    assert_eq!(drain(store).await.len(), 4);
}
