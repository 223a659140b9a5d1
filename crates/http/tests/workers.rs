//! Scheduled jobs and the sync worker against the in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{ChannelStore, SyncStateStore};
use calsync_domain::services::{ChannelService, CleanupService, SyncService};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_http::workers::{Jobs, Schedule, spawn_sync_worker};
use tokio::sync::{Notify, watch};

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn jobs(
    store: &Arc<MemoryStore>,
    google: &Arc<FakeCalendar>,
    clock: &Arc<ManualClock>,
    owner: &str,
) -> Jobs {
    let channels = ChannelService::new(
        google.clone(),
        store.clone(),
        store.clone(),
        clock.clone(),
        WebhookSecret::new("webhook-secret-0123456789").unwrap(),
        "https://calsync.example.com/webhooks/calendar".into(),
        Duration::from_secs(3600),
    );
    Jobs {
        channels,
        sync: SyncService::new(google.clone(), store.clone(), store.clone(), clock.clone()),
        cleanup: CleanupService::new(store.clone(), clock.clone(), 180),
        ticks: store.clone(),
        clock: clock.clone(),
        sync_wakeup: Arc::new(Notify::new()),
        schedule: Schedule::default(),
        owner: owner.into(),
        metrics: Arc::new(calsync_resilience::Metrics::new()),
        logger: logger(),
    }
}

#[tokio::test]
async fn two_replicas_run_each_tick_once_and_renewal_replaces_expiring_channels() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let (a, b) = (
        jobs(&store, &google, &clock, "replica-a"),
        jobs(&store, &google, &clock, "replica-b"),
    );
    let calendar = CalendarId::new("team@example.com").unwrap();
    let first = a.channels.create(&calendar).await.unwrap();
    // The channel lives an hour; half of it has passed; both replicas tick.
    clock.advance(Duration::from_secs(31 * 60));
    a.tick().await;
    b.tick().await;
    assert_eq!(google.calls("watch"), 2, "one renewal, by one replica");
    let active = store
        .list_channels(Some(calsync_domain::channel::ChannelStatus::Active))
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_ne!(active[0].id, first.id);
    // The same slot again does nothing; the next sweep period runs once more.
    let marks = store
        .sync_state(&calendar)
        .await
        .unwrap()
        .unwrap()
        .dirty_seq;
    a.tick().await;
    b.tick().await;
    assert_eq!(
        store
            .sync_state(&calendar)
            .await
            .unwrap()
            .unwrap()
            .dirty_seq,
        marks
    );
    clock.advance(Duration::from_secs(15 * 60));
    b.tick().await;
    a.tick().await;
    assert_eq!(
        store
            .sync_state(&calendar)
            .await
            .unwrap()
            .unwrap()
            .dirty_seq,
        marks + 1,
        "one sweep"
    );
}

#[tokio::test]
async fn the_sync_worker_drains_dirty_calendars_and_stops_on_shutdown() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let calendar = CalendarId::new("team@example.com").unwrap();
    for _ in 0..5 {
        store.mark_dirty(&calendar, false).await.unwrap();
    }
    let (stop, shutdown) = watch::channel(false);
    let wakeup = Arc::new(Notify::new());
    let sync = SyncService::new(google.clone(), store.clone(), store.clone(), clock.clone());
    let worker = spawn_sync_worker(
        sync,
        "w".into(),
        wakeup.clone(),
        Duration::from_secs(3600),
        Arc::new(calsync_resilience::Metrics::new()),
        logger(),
        shutdown,
    );
    for _ in 0..100 {
        if store
            .sync_state(&calendar)
            .await
            .unwrap()
            .is_some_and(|s| !s.is_dirty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !store
            .sync_state(&calendar)
            .await
            .unwrap()
            .unwrap()
            .is_dirty()
    );
    assert_eq!(google.calls("list"), 1, "five marks, one sync");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
}
