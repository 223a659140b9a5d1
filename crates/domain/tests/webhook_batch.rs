//! The webhook's hot path: notifications waiting at one moment share one
//! commit of their dirty marks, and channel look-ups come from memory with
//! this process's own channel writes evicting at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use calsync_domain::channel::{ChannelStatus, WatchChannel};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{ChannelStore, Clock, SyncStateStore};
use calsync_domain::services::{
    ChannelCache, ChannelService, EvictingChannelStore, NotificationOutcome, NotificationService,
};
use calsync_domain::sync::SyncOutcome;
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::{
    CalendarNotification, CalendarResourceState, PushEnvelope, WebhookSecret,
};
use support::GatedStates;

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    states: Arc<GatedStates>,
    cache: Arc<ChannelCache>,
    channels: Arc<dyn ChannelStore>,
    calendar: CalendarId,
    channel: WatchChannel,
    numbers: AtomicU64,
}

fn secret() -> WebhookSecret {
    WebhookSecret::new("test-secret-0123456789").unwrap()
}

impl World {
    async fn new() -> Self {
        let clock = ManualClock::fixed();
        let store = MemoryStore::new();
        let cache = ChannelCache::new();
        let channels: Arc<dyn ChannelStore> =
            EvictingChannelStore::new(store.clone(), cache.clone());
        let calendar = CalendarId::new("team@example.com").unwrap();
        let service = ChannelService::new(
            FakeCalendar::new(clock.clone()),
            channels.clone(),
            store.clone(),
            clock.clone(),
            secret(),
            "https://calsync.example.com/webhooks/calendar".into(),
            Duration::from_secs(7 * 24 * 3600),
        );
        let channel = service.create(&calendar).await.unwrap();
        Self {
            states: GatedStates::new(store.clone()),
            clock,
            store,
            cache,
            channels,
            calendar,
            channel,
            numbers: AtomicU64::new(10),
        }
    }

    fn service(&self) -> NotificationService {
        NotificationService::new(
            secret(),
            self.channels.clone(),
            self.states.clone(),
            self.store.clone(),
            self.clock.clone(),
        )
        .with_channel_cache(self.cache.clone())
    }

    fn notification(&self) -> CalendarNotification {
        CalendarNotification {
            envelope: PushEnvelope {
                channel_id: self.channel.id.clone(),
                token: Some(secret().channel_token(&self.channel.id)),
                message_number: self.numbers.fetch_add(1, Ordering::SeqCst),
                resource_id: self.channel.resource_id.clone().unwrap(),
                resource_uri:
                    "https://www.googleapis.com/calendar/v3/calendars/team%40example.com/events"
                        .into(),
                channel_expiration: None,
            },
            state: CalendarResourceState::Exists,
        }
    }

    /// Takes the calendar's dirty marks out of the way (a sync ran).
    async fn clean(&self) {
        let now = self.clock.now();
        let lease = self
            .store
            .lease_dirty("w", now, now + chrono::Duration::minutes(1))
            .await
            .unwrap()
            .unwrap();
        self.store
            .release_lease(
                &lease,
                &SyncOutcome::Succeeded {
                    full: true,
                    rest_until: None,
                },
                now,
            )
            .await
            .unwrap();
    }
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_waiting_on_a_commit_share_the_next_one() {
    let w = Arc::new(World::new().await);
    w.clean().await;
    let service = w.service();
    // The first leads; its mark is held open.
    let first = tokio::spawn({
        let (service, n) = (service.clone(), w.notification());
        async move { service.handle_calendar(&n).await }
    });
    until("the first commit", || {
        w.states.reads.load(Ordering::SeqCst) == 1
    })
    .await;
    // Twenty arrive meanwhile and wait.
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let (service, n) = (service.clone(), w.notification());
            tokio::spawn(async move { service.handle_calendar(&n).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        waiting.iter().all(|t| !t.is_finished()),
        "none answered before its commit"
    );
    // The first commit ends; it made the calendar dirty with no sync
    // running, so the twenty are covered by one read and no write.
    w.states.gate.add_permits(100);
    assert!(matches!(
        first.await.unwrap().unwrap(),
        NotificationOutcome::CalendarMarked { .. }
    ));
    for task in waiting {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            NotificationOutcome::CalendarMarked { .. }
        ));
    }
    // Two batches run at once: the first two arrivals lead one each (and,
    // both reading before either marked, both mark); the other nineteen
    // share what follows.
    assert!(w.states.marks.load(Ordering::SeqCst) <= 2);
    let reads = w.states.reads.load(Ordering::SeqCst);
    assert!(
        reads <= 4,
        "one read per batch, not per notification: {reads} reads for 21"
    );
    assert!(
        w.store
            .sync_state(&w.calendar)
            .await
            .unwrap()
            .unwrap()
            .is_dirty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_goes_away_mid_commit_requeues_its_batch_and_hands_the_lead_on() {
    let w = Arc::new(World::new().await);
    w.clean().await;
    let service = w.service();
    let spawn = |w: &Arc<World>| {
        let (service, n) = (service.clone(), w.notification());
        tokio::spawn(async move { service.handle_calendar(&n).await })
    };
    let reads = |n: u32| {
        let w = w.clone();
        move || w.states.reads.load(Ordering::SeqCst) == n
    };
    // Both leader slots are taken, each held in its read.
    let first = spawn(&w);
    until("the first commit", reads(1)).await;
    let second = spawn(&w);
    until("the second commit", reads(2)).await;
    // Two more wait.
    let third = spawn(&w);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fourth = spawn(&w);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The first commit ends and hands the third and fourth, as one batch,
    // to the third, which is held in it.
    w.states.gate.add_permits(1);
    first.await.unwrap().unwrap();
    until("the third's commit", reads(3)).await;
    // The third's request goes away mid-commit.
    third.abort();
    let _ = third.await;
    w.states.gate.add_permits(100);
    let answered = tokio::time::timeout(Duration::from_secs(5), fourth)
        .await
        .expect("the fourth was answered, not stranded")
        .unwrap();
    assert!(
        matches!(answered, Ok(NotificationOutcome::CalendarMarked { .. })),
        "its batch was committed again, not failed: {answered:?}"
    );
    second.await.unwrap().unwrap();
}

#[test]
fn a_waiter_that_goes_away_after_being_handed_the_lead_passes_it_on() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let w = futures_executor::block_on(World::new());
    futures_executor::block_on(w.clean());
    let service = w.service();
    let mut context = Context::from_waker(std::task::Waker::noop());
    let n: Vec<_> = (0..4).map(|_| w.notification()).collect();
    // Two leaders held in their reads, two waiting.
    let mut first = Box::pin(service.handle_calendar(&n[0]));
    assert!(first.as_mut().poll(&mut context).is_pending());
    let mut second = Box::pin(service.handle_calendar(&n[1]));
    assert!(second.as_mut().poll(&mut context).is_pending());
    let mut third = Box::pin(service.handle_calendar(&n[2]));
    assert!(third.as_mut().poll(&mut context).is_pending());
    let mut fourth = Box::pin(service.handle_calendar(&n[3]));
    assert!(fourth.as_mut().poll(&mut context).is_pending());
    // The first finishes and hands the waiting two to the third, which is
    // dropped before it ever runs again.
    w.states.gate.add_permits(100);
    assert!(matches!(
        first.as_mut().poll(&mut context),
        Poll::Ready(Ok(_))
    ));
    drop(third);
    // The fourth must not wait for a leader that is gone.
    assert!(
        matches!(fourth.as_mut().poll(&mut context), Poll::Ready(Ok(_))),
        "the fourth led the batch the third left"
    );
    assert!(matches!(
        second.as_mut().poll(&mut context),
        Poll::Ready(Ok(_))
    ));
}

#[tokio::test]
async fn cached_channels_see_this_processs_stop_at_once_and_replays_in_memory() {
    let w = World::new().await;
    w.states.gate.add_permits(100);
    let service = w.service();
    let n = w.notification();
    service.handle_calendar(&n).await.unwrap();
    // The same message again is a replay, caught from memory (the store
    // records a channel's last number at most once a second).
    assert!(matches!(
        service.handle_calendar(&n).await.unwrap(),
        NotificationOutcome::Replayed { .. }
    ));
    // Stopped through the evicting store: the next notification asks for
    // a stop instead of being served from the cached, active channel.
    w.channels
        .set_channel_status(&w.channel.id, ChannelStatus::Stopped)
        .await
        .unwrap();
    assert!(matches!(
        service.handle_calendar(&w.notification()).await.unwrap(),
        NotificationOutcome::UnwantedChannel { .. }
    ));
}

#[tokio::test]
async fn another_replicas_stop_is_seen_once_the_cache_ttl_passes() {
    let w = World::new().await;
    w.states.gate.add_permits(100);
    let service = w.service();
    service.handle_calendar(&w.notification()).await.unwrap();
    // Another replica stops it: straight in the shared store, no eviction here.
    w.store
        .set_channel_status(&w.channel.id, ChannelStatus::Stopped)
        .await
        .unwrap();
    assert!(matches!(
        service.handle_calendar(&w.notification()).await.unwrap(),
        NotificationOutcome::CalendarMarked { .. }
    ));
    w.clock.advance(
        calsync_domain::services::CHANNEL_CACHE_TTL
            .to_std()
            .unwrap(),
    );
    assert!(matches!(
        service.handle_calendar(&w.notification()).await.unwrap(),
        NotificationOutcome::UnwantedChannel { .. }
    ));
}

#[tokio::test]
async fn a_resting_calendar_is_read_once_per_rest_not_per_notification() {
    let w = World::new().await;
    w.states.gate.add_permits(1000);
    let service = w.service();
    let now = w.clock.now();
    // A sync that found nothing while marked again: its follow-up rests.
    w.store.mark_dirty(&w.calendar, false).await.unwrap();
    let lease = w
        .store
        .lease_dirty("w", now, now + chrono::Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    w.store.mark_dirty(&w.calendar, false).await.unwrap();
    let rest = chrono::Duration::seconds(2);
    w.store
        .release_lease(
            &lease,
            &SyncOutcome::Succeeded {
                full: false,
                rest_until: Some(now + rest),
            },
            now,
        )
        .await
        .unwrap();

    let mut woken = 0;
    for _ in 0..20 {
        match service.handle_calendar(&w.notification()).await.unwrap() {
            NotificationOutcome::CalendarMarked { wake_worker, .. } => {
                woken += usize::from(wake_worker);
            }
            other => panic!("{other:?}"),
        }
        w.clock.advance(Duration::from_millis(50));
    }
    assert_eq!(
        woken, 1,
        "one worker is woken to wait for the rest's end, once"
    );
    assert_eq!(w.states.marks.load(Ordering::SeqCst), 0);
    assert_eq!(
        w.states.reads.load(Ordering::SeqCst),
        1,
        "the rest read once covers the notifications during it"
    );

    // Near its end (another replica's clock may be ahead) it is read again.
    w.clock.advance(Duration::from_millis(950));
    assert!(matches!(
        service.handle_calendar(&w.notification()).await.unwrap(),
        NotificationOutcome::CalendarMarked {
            wake_worker: false,
            ..
        }
    ));
    assert_eq!(w.states.reads.load(Ordering::SeqCst), 2);
}
