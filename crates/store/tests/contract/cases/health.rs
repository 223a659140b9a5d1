//! Health figures, watch channels, Drive notifications and readiness.

use super::*;

pub async fn health_aggregates_match_the_data(store: &Arc<dyn Store>) {
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
    store
        .dead_letter_outbox(&entry, PushFailure::Refused, "nope")
        .await
        .unwrap();
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

pub async fn the_active_event_count_follows_every_write_path(store: &Arc<dyn Store>) {
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

pub async fn channels_keep_state_and_the_highest_message_number(store: &Arc<dyn Store>) {
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

pub async fn drive_notifications_are_kept_newest_first(store: &Arc<dyn Store>) {
    use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};
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
                channel_expiration: Some(now() + Duration::days(1)),
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
    assert_eq!(
        latest.envelope.channel_expiration, None,
        "only what identifies and describes the change is kept"
    );
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

pub async fn a_migrated_database_is_ready(store: &Arc<dyn Store>) {
    store.check_ready().await.unwrap();
}

/// Each calendar's count of live series whose recurrence calsync cannot
/// expand, as the health report gives it (every calendar listed is counted).
async fn unreadable_counts(store: &Arc<dyn Store>) -> Vec<(String, u64)> {
    let stats = store.health_stats(now(), now()).await.unwrap();
    let mut counts: Vec<(String, u64)> = stats
        .calendars
        .iter()
        .map(|c| {
            let count = c
                .unreadable_series
                .unwrap_or_else(|| panic!("{} is not counted", c.calendar_id));
            (c.calendar_id.to_string(), count)
        })
        .collect();
    counts.sort();
    counts
}

pub async fn unreadable_series_are_counted_per_calendar_while_live(store: &Arc<dyn Store>) {
    let team = || cal().to_string();
    // "FORTNIGHTLY" is no RFC 5545 frequency: the rule cannot be parsed.
    let odd = "RRULE:FREQ=FORTNIGHTLY";
    let weekly = "RRULE:FREQ=WEEKLY;COUNT=3";
    store
        .apply_sync_page(&page(
            vec![
                series("unread01", 0, odd),
                series("readbl01", 0, weekly),
                remote("single01", "\"1\"", 2),
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let stored = mirrored(store, "unread01").await.unwrap();
    assert!(stored.is_master() && stored.series_unreadable().is_some());
    let readable = mirrored(store, "readbl01").await.unwrap();
    assert!(readable.is_master() && readable.series_unreadable().is_none());
    assert_eq!(unreadable_counts(store).await, [(team(), 1)]);

    // A sync upsert over an existing row sets the flag, and clears it.
    let mut changed = series("readbl01", 0, odd);
    changed.etag = Some(Etag::new("\"2\"").unwrap());
    changed.updated = Some(now());
    store
        .apply_sync_page(&page(vec![changed], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    assert_eq!(unreadable_counts(store).await, [(team(), 2)]);
    let mut fixed = series("readbl01", 0, weekly);
    fixed.etag = Some(Etag::new("\"3\"").unwrap());
    fixed.updated = Some(now() + Duration::seconds(1));
    store
        .apply_sync_page(&page(vec![fixed], SyncRun::Incremental, Some("t3")))
        .await
        .unwrap();
    assert_eq!(unreadable_counts(store).await, [(team(), 1)]);

    // Cancelled in Google: no longer live, no longer counted.
    let mut gone = RemoteEvent::cancelled_stub(EventId::new("unread01").unwrap());
    gone.updated = Some(now());
    store
        .apply_sync_page(&page(vec![gone], SyncRun::Incremental, Some("t4")))
        .await
        .unwrap();
    assert_eq!(
        mirrored(store, "unread01").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(unreadable_counts(store).await, [(team(), 0)]);

    // A local write, in a calendar no sync has reached yet: it is listed
    // for its count; its cancellation (a local update) clears it.
    let solo = CalendarId::new("solo@example.com").unwrap();
    let mut local = local_event("odd", now());
    local.calendar_id = solo.clone();
    local.recurrence = vec![odd.into()];
    assert!(local.series_unreadable().is_some());
    store
        .insert_with_outbox(&local, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!(
        unreadable_counts(store).await,
        [(solo.to_string(), 1), (team(), 0)]
    );
    let mut cancelled = local.clone();
    cancelled.status = EventStatus::Cancelled;
    cancelled.updated_at = local.updated_at + Duration::seconds(1);
    store
        .update_with_outbox(&cancelled, local.updated_at, OutboxOp::Delete)
        .await
        .unwrap();
    assert_eq!(unreadable_counts(store).await, [(team(), 0)]);
}
