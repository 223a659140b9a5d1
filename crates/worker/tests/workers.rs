//! Scheduled jobs and the sync worker against the in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{CalendarStore, ChannelStore, Clock, SyncStateStore};
use calsync_domain::services::{Services, ServicesConfig, SyncService};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_worker::{Jobs, Queue, Schedule, spawn_sync_worker};
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
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock.clone(),
        ServicesConfig {
            channel_ttl: Duration::from_secs(3600),
            ..ServicesConfig::new(
                WebhookSecret::new("webhook-secret-0123456789").unwrap(),
                "https://calsync.example.com/webhooks/calendar",
            )
        },
    );
    Jobs {
        channels: services.channels,
        sync: services.sync,
        cleanup: services.cleanup,
        grants: services.grants,
        ticks: store.clone(),
        clock: clock.clone(),
        sync_wakeup: Arc::new(Notify::new()),
        // One slice: each sweep period marks every managed calendar.
        schedule: Schedule {
            sweep_slices: 1,
            ..Schedule::default()
        },
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
    // The sweep covers managed calendars.
    store
        .upsert_calendar(&calsync_domain::calendar::ManagedCalendar {
            calendar_id: calendar.clone(),
            subject: None,
            grant: None,
            created_at: clock.now(),
            updated_at: clock.now(),
        })
        .await
        .unwrap();
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
    // Synced meanwhile (the sweep marks only calendars with no mark).
    while let Some(lease) = store
        .lease_dirty("t", clock.now(), clock.now())
        .await
        .unwrap()
    {
        let synced = calsync_domain::sync::SyncOutcome::Succeeded {
            full: lease.full_sync_requested,
            rest_until: None,
        };
        store
            .release_lease(&lease, &synced, clock.now())
            .await
            .unwrap();
    }
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
        Queue {
            owner: "w".into(),
            wakeup: wakeup.clone(),
            poll: Duration::from_secs(3600),
            metrics: Arc::new(calsync_resilience::Metrics::new()),
            logger: logger(),
        },
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

/// Follows tokio's (paused) clock, so leases expire as tokio time passes.
struct TokioClock {
    start: chrono::DateTime<chrono::Utc>,
    origin: tokio::time::Instant,
}

impl calsync_domain::ports::Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap()
    }
}

/// Google answering each list call only after `delay`.
struct SlowCalendar {
    inner: Arc<FakeCalendar>,
    delay: Duration,
}

#[async_trait::async_trait]
impl calsync_domain::ports::CalendarProvider for SlowCalendar {
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &calsync_domain::sync::ListRequest,
    ) -> calsync_domain::Result<calsync_domain::sync::ChangePage> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_events(calendar_id, request).await
    }
    async fn get_event(
        &self,
        calendar_id: &CalendarId,
        id: &calsync_domain::ids::EventId,
    ) -> calsync_domain::Result<calsync_domain::sync::RemoteEvent> {
        self.inner.get_event(calendar_id, id).await
    }
    async fn insert_event(
        &self,
        event: &calsync_domain::event::Event,
    ) -> calsync_domain::Result<calsync_domain::sync::RemoteEvent> {
        self.inner.insert_event(event).await
    }
    async fn patch_event(
        &self,
        call: &calsync_domain::ports::PatchCall,
    ) -> calsync_domain::Result<calsync_domain::sync::RemoteEvent> {
        self.inner.patch_event(call).await
    }
    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &calsync_domain::ids::EventId,
        if_match: Option<&calsync_domain::ids::Etag>,
    ) -> calsync_domain::Result<()> {
        self.inner.delete_event(calendar_id, id, if_match).await
    }
    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> calsync_domain::Result<bool> {
        self.inner.calendar_accessible(calendar_id).await
    }
    async fn watch(
        &self,
        calendar_id: &CalendarId,
        request: &calsync_domain::channel::WatchRequest,
    ) -> calsync_domain::Result<calsync_domain::channel::WatchGrant> {
        self.inner.watch(calendar_id, request).await
    }
    async fn free_busy(
        &self,
        query: &calsync_domain::freebusy::RemoteFreeBusyQuery,
    ) -> calsync_domain::Result<Vec<calsync_domain::freebusy::RemoteCalendarBusy>> {
        self.inner.free_busy(query).await
    }
    async fn stop_channel(
        &self,
        calendar_id: &CalendarId,
        id: &calsync_domain::ids::ChannelId,
        resource_id: &calsync_domain::ids::ResourceId,
    ) -> calsync_domain::Result<()> {
        self.inner.stop_channel(calendar_id, id, resource_id).await
    }
    async fn account_calendars(
        &self,
        grant: &calsync_domain::grant::GrantId,
    ) -> calsync_domain::Result<Vec<calsync_domain::grant::AccountCalendar>> {
        self.inner.account_calendars(grant).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_keeps_a_short_lease_through_a_slow_sync_and_a_dead_holders_lapses() {
    let clock: Arc<TokioClock> = Arc::new(TokioClock {
        start: chrono::Utc::now(),
        origin: tokio::time::Instant::now(),
    });
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let slow = Arc::new(SlowCalendar {
        inner: google,
        delay: Duration::from_secs(40),
    });
    let ttl = Duration::from_secs(15);
    let calendar = CalendarId::new("team@example.com").unwrap();
    store.mark_dirty(&calendar, false).await.unwrap();
    let sync = SyncService::new(slow, store.clone(), store.clone(), clock.clone())
        .with_lease(ttl, Some(Arc::new(calsync_worker::TokioTimer)));
    let running = tokio::spawn({
        let sync = sync.clone();
        async move { sync.sync_next_dirty("alive").await }
    });
    // Well past the lease's own length, the slow sync still holds it.
    tokio::time::sleep(Duration::from_secs(30)).await;
    use calsync_domain::ports::Clock;
    let now = clock.now();
    assert!(
        store
            .lease_calendar(&calendar, "other", now, now + chrono::Duration::seconds(15))
            .await
            .unwrap()
            .is_none(),
        "the heartbeat kept the lease"
    );
    let report = running.await.unwrap().unwrap().unwrap().unwrap();
    assert_eq!(report.calendar_id, calendar);

    // A holder that died (no heartbeat) loses its lease after the TTL.
    store.mark_dirty(&calendar, false).await.unwrap();
    let now = clock.now();
    let dead = store
        .lease_dirty("dead", now, now + chrono::Duration::seconds(15))
        .await
        .unwrap();
    assert!(dead.is_some());
    tokio::time::sleep(Duration::from_secs(16)).await;
    let now = clock.now();
    assert!(
        store
            .lease_dirty("restarted", now, now + chrono::Duration::seconds(15))
            .await
            .unwrap()
            .is_some(),
        "another worker resumes the calendar within the TTL"
    );
}

#[tokio::test]
async fn the_channel_stopper_stops_every_queued_channel_and_ends_with_its_queue() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock.clone(),
        ServicesConfig::new(
            WebhookSecret::new("webhook-secret-0123456789").unwrap(),
            "https://calsync.example.com/webhooks/calendar",
        ),
    );
    let calendar = CalendarId::new("team@example.com").unwrap();
    let mut queued = Vec::new();
    for _ in 0..3 {
        let channel = services.channels.create(&calendar).await.unwrap();
        queued.push((
            calendar.clone(),
            channel.id.clone(),
            channel.resource_id.clone().unwrap(),
        ));
    }
    assert_eq!(google.active_channels().len(), 3);
    let (sender, queue) = tokio::sync::mpsc::unbounded_channel();
    let (_stop, shutdown) = watch::channel(false);
    let stopper = calsync_worker::spawn_channel_stopper(google.clone(), queue, logger(), shutdown);
    for stop in queued {
        sender.send(stop).unwrap();
    }
    // Every sender gone: the stopper finishes what is queued, then ends.
    drop(sender);
    tokio::time::timeout(Duration::from_secs(5), stopper)
        .await
        .unwrap()
        .unwrap();
    assert!(
        google.active_channels().is_empty(),
        "{:?}",
        google.active_channels()
    );
}

#[tokio::test(start_paused = true)]
async fn the_workers_forget_the_webhook_limiters_idle_sources() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock.clone(),
        ServicesConfig::new(
            WebhookSecret::new("webhook-secret-0123456789").unwrap(),
            "https://calsync.example.com/webhooks/calendar",
        ),
    );
    let limiter =
        calsync_resilience::RateLimiter::per_source(std::num::NonZeroU32::new(60_000).unwrap());
    let (_stops, channel_stops) = tokio::sync::mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(false);
    let workers = calsync_worker::Workers {
        services,
        provider: google,
        ticks: store,
        clock,
        wakeups: calsync_worker::Wakeups::default(),
        channel_stops,
        owner: "replica".into(),
        config: calsync_worker::WorkerConfig::default(),
        metrics: Arc::new(calsync_resilience::Metrics::new()),
        logger: logger(),
        webhook_limiter: Some(limiter.clone()),
    }
    .spawn(shutdown);
    assert!(limiter.try_acquire("203.0.113.7", 1));
    assert_eq!(limiter.tracked_keys(), 1);
    // The limiter's own clock is real: a thousand a second refill the
    // source's one request within a millisecond.
    std::thread::sleep(Duration::from_millis(20));
    tokio::time::sleep(calsync_worker::IDLE_KEY_PRUNING + Duration::from_secs(1)).await;
    assert_eq!(limiter.tracked_keys(), 0, "the idle source is forgotten");
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
}
