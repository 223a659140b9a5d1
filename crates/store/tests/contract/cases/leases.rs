//! Sync leases, dirty marks and job ticks.

use super::*;

pub async fn sync_leases_are_exclusive_and_expire(store: &Arc<dyn Store>) {
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

pub async fn dirty_marks_made_during_a_sync_survive_it(store: &Arc<dyn Store>) {
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store
        .lease_dirty("w", now(), now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    store.mark_dirty(&cal(), false).await.unwrap();
    store
        .release_lease(
            &lease,
            &SyncOutcome::Succeeded {
                full: false,
                rest_until: None,
            },
            now(),
        )
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
        .release_lease(
            &lease,
            &SyncOutcome::Succeeded {
                full: false,
                rest_until: None,
            },
            now(),
        )
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
    store.clear_reconnect_required(&cal(), true).await.unwrap();
    assert!(
        store
            .lease_dirty("w", far, far + Duration::seconds(60))
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn leases_record_the_seq_they_saw_until_released(store: &Arc<dyn Store>) {
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
        .release_lease(
            &lease,
            &SyncOutcome::Succeeded {
                full: false,
                rest_until: None,
            },
            now(),
        )
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(
        (state.lease_seen_seq, state.lease_owner.as_deref()),
        (None, None)
    );
    assert!(state.is_dirty() && state.covers_new_change(now()));
}

pub async fn job_ticks_are_claimed_exactly_once_under_contention(store: &Arc<dyn Store>) {
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

/// A rest on release holds the follow-up sync only when the calendar was
/// marked during the sync; `next_lease_at` names when it ends, and when a
/// held lease does.
pub async fn a_rest_holds_only_a_follow_up_and_says_when_it_ends(store: &Arc<dyn Store>) {
    let rest = |at: DateTime<Utc>| SyncOutcome::Succeeded {
        full: false,
        rest_until: Some(at + Duration::seconds(10)),
    };
    let lease_for = Duration::seconds(60);
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store
        .lease_dirty("w", now(), now() + lease_for)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.next_lease_at(now()).await.unwrap(),
        Some(now() + lease_for),
        "a held lease of a dirty calendar ends at its expiry"
    );
    store
        .release_lease(&lease, &rest(now()), now())
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(
        state.lease_until, None,
        "not marked during the sync: no rest"
    );
    assert_eq!(store.next_lease_at(now()).await.unwrap(), None);
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store
        .lease_dirty("w", now(), now() + lease_for)
        .await
        .unwrap()
        .expect("the first mark after a quiet spell is taken at once");

    // Marked while syncing: the follow-up waits out the rest.
    store.mark_dirty(&cal(), false).await.unwrap();
    store
        .release_lease(&lease, &rest(now()), now())
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(state.is_dirty() && state.lease_owner.is_none());
    assert!(
        state.covers_new_change(now()),
        "a notification during the rest is covered by the follow-up"
    );
    let ends = now() + Duration::seconds(10);
    assert_eq!(state.resting_until(now()), Some(ends));
    assert_eq!(state.resting_until(ends), None, "over");
    for at in [now(), ends - Duration::microseconds(1)] {
        assert!(
            store
                .lease_dirty("w", at, at + lease_for)
                .await
                .unwrap()
                .is_none(),
            "resting at {at}"
        );
        assert_eq!(store.next_lease_at(at).await.unwrap(), Some(ends));
    }
    assert_eq!(store.next_lease_at(ends).await.unwrap(), None);
    let lease = store
        .lease_dirty("w", ends, ends + lease_for)
        .await
        .unwrap()
        .expect("taken once the rest is over");
    store
        .release_lease(&lease, &rest(ends), ends)
        .await
        .unwrap();
    assert!(!store.sync_state(&cal()).await.unwrap().unwrap().is_dirty());
    assert_eq!(store.next_lease_at(ends).await.unwrap(), None);

    // A calendar waiting for a reconnect is never due, rest or not.
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store
        .lease_dirty("w", ends, ends + lease_for)
        .await
        .unwrap()
        .unwrap();
    store
        .mark_reconnect_required(&cal(), "invalid_grant", ends)
        .await
        .unwrap();
    assert_eq!(store.next_lease_at(ends).await.unwrap(), None);
    store
        .release_lease(&lease, &SyncOutcome::Abandoned, ends)
        .await
        .unwrap();
}

pub async fn a_read_only_mark_keeps_its_first_time_until_cleared(store: &Arc<dyn Store>) {
    let other = CalendarId::new("other@example.com").unwrap();
    assert!(
        !store.clear_read_only(&cal()).await.unwrap(),
        "nothing to clear on an unknown calendar"
    );
    store
        .mark_read_only(&cal(), "You need to have writer access", now())
        .await
        .unwrap();
    store.mark_dirty(&other, false).await.unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(state.is_read_only());
    assert_eq!(state.read_only_since, Some(now()));
    assert_eq!(
        state.read_only_reason.as_deref(),
        Some("You need to have writer access")
    );
    // A later refusal keeps when writing stopped, and Google's latest words.
    store
        .mark_read_only(&cal(), "still read-only", now() + Duration::minutes(5))
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert_eq!(state.read_only_since, Some(now()));
    assert_eq!(state.read_only_reason.as_deref(), Some("still read-only"));
    assert!(
        !store
            .sync_state(&other)
            .await
            .unwrap()
            .unwrap()
            .is_read_only()
    );
    // Syncing is not affected: the calendar is still leased when dirty.
    store.mark_dirty(&cal(), false).await.unwrap();
    let leased: Vec<CalendarId> = [
        store
            .lease_dirty("a", now(), now() + Duration::seconds(30))
            .await
            .unwrap(),
        store
            .lease_dirty("b", now(), now() + Duration::seconds(30))
            .await
            .unwrap(),
    ]
    .into_iter()
    .flatten()
    .map(|lease| lease.calendar_id)
    .collect();
    assert!(leased.contains(&cal()), "{leased:?}");
    // Health shows it per calendar.
    let stats = store
        .health_stats(now(), now() + Duration::hours(1))
        .await
        .unwrap();
    let health = stats
        .calendars
        .iter()
        .find(|c| c.calendar_id == cal())
        .unwrap();
    assert!(health.read_only);
    assert_eq!(health.read_only_since, Some(now()));
    assert!(
        !stats
            .calendars
            .iter()
            .find(|c| c.calendar_id == other)
            .unwrap()
            .read_only
    );
    assert!(store.clear_read_only(&cal()).await.unwrap());
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(!state.is_read_only());
    assert_eq!(state.read_only_reason, None);
    assert!(
        !store.clear_read_only(&cal()).await.unwrap(),
        "cleared once"
    );

    // A write Google took clears the mark with the push's own record.
    store
        .mark_read_only(&cal(), "read-only again", now())
        .await
        .unwrap();
    let event = local_event("landed", now());
    store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    let row = store
        .claim_outbox("w", now(), now() + Duration::seconds(30), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.event_id == event.id)
        .unwrap();
    store
        .complete_outbox(
            &row,
            &PushReceipt {
                etag: Some(Etag::new("\"9\"").unwrap()),
                updated: None,
                html_link: None,
                pushed_at: now(),
                remote: None,
            },
        )
        .await
        .unwrap();
    let state = store.sync_state(&cal()).await.unwrap().unwrap();
    assert!(!state.is_read_only(), "a landed write clears the mark");
}
