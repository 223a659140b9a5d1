//! The use cases, run against the in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::sync::Arc;
use std::time::Duration;

use calsync_domain::channel::ChannelStatus;
use calsync_domain::event::{
    Attendee, EventChanges, EventStatus, EventTime, NewEvent, NewEventFields, PushState,
};
use calsync_domain::health::{HealthStatus, HealthThresholds};
use calsync_domain::ids::{CalendarId, ChannelId, EntityRef, EventId, ResourceId};
use calsync_domain::outbox::{IdempotencyKey, OutboxRetryPolicy, OutboxState, PushFailure};
use calsync_domain::ports::{
    CalendarStore, ChannelStore, EventQuery, EventStore, JobTickStore, OutboxStore, SyncStateStore,
    Timer,
};
use calsync_domain::services::{
    ChannelService, CleanupService, EventService, HealthService, NotificationOutcome,
    NotificationService, OccurrenceRef, PushOutcome, Services, ServicesConfig, SyncMode,
    SyncService, WriteVerdict,
};
use calsync_domain::sync::{RemoteEvent, SyncOutcome};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::{
    CalendarNotification, CalendarResourceState, PushEnvelope, WebhookSecret,
};
use calsync_domain::{Error, ProviderErrorKind};
use chrono::{DateTime, Utc};
use futures_executor::block_on;

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    google: Arc<FakeCalendar>,
    cal: CalendarId,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::fixed();
        Self {
            google: FakeCalendar::new(clock.clone()),
            store: MemoryStore::new(),
            clock,
            cal: CalendarId::new("team@example.com").unwrap(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        use calsync_domain::ports::Clock;
        self.clock.now()
    }

    fn sync(&self) -> SyncService {
        SyncService::new(
            self.google.clone(),
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
        )
    }

    fn events(&self) -> EventService {
        EventService::new(
            self.google.clone(),
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
        )
        .with_retry_policy(OutboxRetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 4,
            read_only_probe: Duration::from_secs(300),
        })
    }

    /// [`World::events`] that records what refusals say about calendars.
    fn events_with_states(&self) -> EventService {
        self.events().with_calendar_states(self.store.clone())
    }

    fn secret(&self) -> WebhookSecret {
        WebhookSecret::new("test-secret-0123456789").unwrap()
    }

    fn channels(&self) -> ChannelService {
        ChannelService::new(
            self.google.clone(),
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
            self.secret(),
            "https://calsync.example.com/webhooks/calendar".into(),
            Duration::from_secs(7 * 24 * 3600),
        )
    }

    fn notifications(&self) -> NotificationService {
        NotificationService::new(
            self.secret(),
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
        )
    }

    fn remote(&self, id: &str, hour: u32) -> RemoteEvent {
        let start = self.now() + chrono::Duration::hours(i64::from(hour));
        RemoteEvent {
            status: EventStatus::Confirmed,
            summary: Some(format!("event {id}")),
            start: Some(EventTime::at(start, None)),
            end: Some(EventTime::at(start + chrono::Duration::hours(1), None)),
            ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
        }
    }

    fn mirrored(&self, id: &str) -> Option<calsync_domain::event::Event> {
        block_on(
            self.store
                .find_by_google_id(&self.cal, &EventId::new(id).unwrap()),
        )
        .unwrap()
    }

    fn new_event(&self) -> NewEvent {
        let start = self.now() + chrono::Duration::days(1);
        NewEvent::new(
            self.cal.clone(),
            EntityRef::new("deal", "42").unwrap(),
            EventTime::at(start, None),
            EventTime::at(start + chrono::Duration::hours(1), None),
            NewEventFields {
                summary: Some("Kick-off".into()),
                ..NewEventFields::default()
            },
        )
        .unwrap()
    }
}

fn transient() -> Error {
    Error::provider(ProviderErrorKind::Transient, "backendError")
}

#[test]
fn full_then_incremental_sync_mirrors_inserts_updates_and_deletions() {
    let w = World::new();
    for (i, id) in ["a0001", "a0002", "a0003"].iter().enumerate() {
        w.google.put(&w.cal, w.remote(id, i as u32));
    }
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert!(report.full);
    assert_eq!(report.outcome.inserted, 3);
    assert!(
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .sync_token
            .is_some()
    );

    let mut changed = w.remote("a0002", 5);
    changed.summary = Some("moved".into());
    w.google.put(&w.cal, changed);
    w.google.remove(&w.cal, &EventId::new("a0003").unwrap());
    w.google.put(&w.cal, w.remote("a0004", 7));

    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert!(!report.full);
    assert_eq!(
        (
            report.outcome.inserted,
            report.outcome.updated,
            report.outcome.cancelled
        ),
        (1, 1, 1)
    );
    assert_eq!(
        w.mirrored("a0002").unwrap().summary.as_deref(),
        Some("moved")
    );
    assert_eq!(w.mirrored("a0003").unwrap().status, EventStatus::Cancelled);

    // Nothing changed: nothing applied.
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert_eq!(
        report.outcome.inserted + report.outcome.updated + report.outcome.cancelled,
        0
    );
}

#[test]
fn the_sync_token_is_stored_only_after_the_last_page() {
    let w = World::new();
    for i in 0..5 {
        w.google.put(&w.cal, w.remote(&format!("p000{i}"), i));
    }
    let sync = w.sync().with_page_size(2);
    // Page one goes through, page two fails.
    w.google.fail_after(Some("list"), 1, transient());
    assert!(block_on(sync.sync_calendar(&w.cal, SyncMode::Auto, None)).is_err());
    assert_eq!(w.store.all_events().len(), 2, "page one was applied");
    let state = block_on(w.store.sync_state(&w.cal)).unwrap();
    assert!(
        state.and_then(|s| s.sync_token).is_none(),
        "no token before the last page"
    );

    let report = block_on(sync.sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert_eq!(
        (
            report.pages,
            report.outcome.inserted,
            report.outcome.unchanged
        ),
        (3, 3, 2)
    );
    assert!(
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .sync_token
            .is_some()
    );
}

#[test]
fn an_expired_token_triggers_a_full_resync_that_catches_deletions() {
    let w = World::new();
    for id in ["d0001", "d0002", "d0003"] {
        w.google.put(&w.cal, w.remote(id, 1));
    }
    block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    // Deleted without a stub reaching us, then the token expires.
    w.google.purge(&w.cal, &EventId::new("d0002").unwrap());
    w.google.invalidate_sync_tokens();

    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert!(report.full && report.token_expired);
    assert_eq!(report.outcome.swept, 1);
    assert_eq!(w.mirrored("d0002").unwrap().status, EventStatus::Cancelled);
    assert_eq!(w.mirrored("d0001").unwrap().status, EventStatus::Confirmed);
    // The new token works again.
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert!(!report.full);
}

#[test]
fn a_full_resync_never_cancels_local_writes_not_yet_pushed() {
    let w = World::new();
    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Full, None)).unwrap();
    assert_eq!(report.outcome.swept, 0);
    let stored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Confirmed);
    assert_eq!(stored.push_state, PushState::Pending);
}

#[test]
fn notifications_during_a_sync_leave_the_calendar_dirty_for_a_follow_up() {
    let w = World::new();
    block_on(w.store.mark_dirty(&w.cal, false)).unwrap();
    block_on(w.store.mark_dirty(&w.cal, false)).unwrap();
    let now = w.now();
    let lease = block_on(
        w.store
            .lease_dirty("w1", now, now + chrono::Duration::minutes(1)),
    )
    .unwrap()
    .unwrap();
    // A second worker cannot take the same calendar.
    assert!(
        block_on(
            w.store
                .lease_dirty("w2", now, now + chrono::Duration::minutes(1))
        )
        .unwrap()
        .is_none()
    );
    block_on(w.store.mark_dirty(&w.cal, false)).unwrap();
    block_on(w.store.release_lease(
        &lease,
        &SyncOutcome::Succeeded {
            full: false,
            rest_until: None,
        },
        now,
    ))
    .unwrap();
    assert!(
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .is_dirty()
    );

    // The follow-up sync clears it; a burst before it costs one sync, not N.
    let first = block_on(w.sync().sync_next_dirty("w1")).unwrap();
    assert!(first.is_some_and(|r| r.is_ok()));
    assert!(block_on(w.sync().sync_next_dirty("w1")).unwrap().is_none());
    assert_eq!(w.google.calls("list"), 1);
}

#[test]
fn a_burst_of_notifications_costs_one_mark_and_still_ends_in_a_follow_up_sync() {
    let w = World::new();
    let channel = block_on(w.channels().create(&w.cal)).unwrap();
    let resource = channel.resource_id.clone().unwrap();
    block_on(w.sync().sync_next_dirty("w")).unwrap();
    let token = w.secret().channel_token(&channel.id);
    let service = w.notifications();
    // How many of the burst's notifications asked for a worker.
    let burst = |n: usize| {
        let mut wakes = 0;
        for _ in 0..n {
            let change = notification(
                &channel.id,
                Some(token.clone()),
                &resource,
                CalendarResourceState::Exists,
            );
            match block_on(service.handle_calendar(&change)).unwrap() {
                NotificationOutcome::CalendarMarked { wake_worker, .. } => {
                    wakes += usize::from(wake_worker);
                }
                other => panic!("{other:?}"),
            }
        }
        wakes
    };
    let seq = || {
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .dirty_seq
    };
    let before = seq();
    assert_eq!(
        burst(5),
        5,
        "dirty and nobody syncing it: each makes sure a worker knows"
    );
    assert_eq!(seq(), before + 1, "dirty and not syncing: one mark");

    // A sync starts; notifications during it mark once more, then stop.
    let now = w.now();
    let lease = block_on(
        w.store
            .lease_dirty("w1", now, now + chrono::Duration::minutes(1)),
    )
    .unwrap()
    .unwrap();
    assert_eq!(burst(5), 1, "the live sync follows up the rest itself");
    assert_eq!(seq(), before + 2);
    block_on(w.store.release_lease(
        &lease,
        &SyncOutcome::Succeeded {
            full: false,
            rest_until: None,
        },
        now,
    ))
    .unwrap();
    let state = block_on(w.store.sync_state(&w.cal)).unwrap().unwrap();
    assert!(
        state.is_dirty(),
        "the changes during the sync get a follow-up"
    );
    assert_eq!(state.lease_seen_seq, None);
}

#[test]
fn an_expired_lease_can_be_taken_over() {
    let w = World::new();
    block_on(w.store.mark_dirty(&w.cal, false)).unwrap();
    let now = w.now();
    let until = now + chrono::Duration::seconds(30);
    assert!(
        block_on(w.store.lease_dirty("w1", now, until))
            .unwrap()
            .is_some()
    );
    assert!(
        block_on(w.store.lease_dirty("w2", now, until))
            .unwrap()
            .is_none()
    );
    let later = until + chrono::Duration::seconds(1);
    assert!(
        block_on(
            w.store
                .lease_dirty("w2", later, later + chrono::Duration::seconds(30))
        )
        .unwrap()
        .is_some()
    );
}

#[test]
fn a_failed_sync_backs_off_and_a_revoked_grant_needs_reconnecting() {
    let w = World::new();
    block_on(w.store.mark_dirty(&w.cal, false)).unwrap();
    w.google.fail_next(Some("list"), transient());
    let result = block_on(w.sync().sync_next_dirty("w1")).unwrap().unwrap();
    assert!(result.is_err());
    assert!(
        block_on(w.sync().sync_next_dirty("w1")).unwrap().is_none(),
        "resting after a failure"
    );
    w.clock.advance(Duration::from_secs(6));
    w.google.fail_next(
        Some("list"),
        Error::provider(ProviderErrorKind::ReconnectRequired, "invalid_grant"),
    );
    assert!(
        block_on(w.sync().sync_next_dirty("w1"))
            .unwrap()
            .unwrap()
            .is_err()
    );
    let state = block_on(w.store.sync_state(&w.cal)).unwrap().unwrap();
    assert!(state.reconnect_required);
    assert_eq!(state.error_count, 2);
    w.clock.advance(Duration::from_secs(3600));
    assert!(
        block_on(w.sync().sync_next_dirty("w1")).unwrap().is_none(),
        "not retried until reconnected"
    );
}

/// Message numbers grow, as Google's do (a repeated one is a replay).
static MESSAGE_NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2);

fn notification(
    channel: &ChannelId,
    token: Option<String>,
    resource: &ResourceId,
    state: CalendarResourceState,
) -> CalendarNotification {
    CalendarNotification {
        envelope: PushEnvelope {
            channel_id: channel.clone(),
            token,
            message_number: MESSAGE_NUMBER.fetch_add(2, std::sync::atomic::Ordering::SeqCst),
            resource_id: resource.clone(),
            resource_uri:
                "https://www.googleapis.com/calendar/v3/calendars/team%40example.com/events".into(),
            channel_expiration: None,
        },
        state,
    }
}

#[test]
fn notifications_are_authenticated_and_mark_the_calendar_dirty() {
    let w = World::new();
    let channel = block_on(w.channels().create(&w.cal)).unwrap();
    let resource = channel.resource_id.clone().unwrap();
    // The creation asked for a full sync; take that out of the way.
    block_on(w.sync().sync_next_dirty("w")).unwrap();
    let dirty = || {
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .is_dirty()
    };
    assert!(!dirty());
    let token = w.secret().channel_token(&channel.id);
    let service = w.notifications();

    let wrong = notification(
        &channel.id,
        Some("0".repeat(64)),
        &resource,
        CalendarResourceState::Exists,
    );
    assert_eq!(
        block_on(service.handle_calendar(&wrong)),
        Err(Error::Forbidden)
    );
    let missing = notification(&channel.id, None, &resource, CalendarResourceState::Exists);
    assert_eq!(
        block_on(service.handle_calendar(&missing)),
        Err(Error::Forbidden)
    );
    let other_resource = ResourceId::new("someone-elses").unwrap();
    let mismatch = notification(
        &channel.id,
        Some(token.clone()),
        &other_resource,
        CalendarResourceState::Exists,
    );
    assert_eq!(
        block_on(service.handle_calendar(&mismatch)),
        Err(Error::Forbidden)
    );
    assert!(!dirty(), "rejected notifications change nothing");

    let sync = notification(
        &channel.id,
        Some(token.clone()),
        &resource,
        CalendarResourceState::Sync,
    );
    assert!(matches!(
        block_on(service.handle_calendar(&sync)),
        Ok(NotificationOutcome::ChannelConfirmed { .. })
    ));
    assert!(!dirty(), "a sync message carries no change");

    // The last number is written at most once a second in a burst.
    w.clock.advance(Duration::from_secs(2));
    let good = notification(
        &channel.id,
        Some(token),
        &resource,
        CalendarResourceState::Exists,
    );
    assert!(matches!(
        block_on(service.handle_calendar(&good)),
        Ok(NotificationOutcome::CalendarMarked { .. })
    ));
    assert!(dirty());
    let stored = block_on(w.store.get_channel(&channel.id)).unwrap().unwrap();
    assert_eq!(
        stored.last_message_number,
        Some(good.envelope.message_number)
    );
    assert_eq!(stored.last_notification_at, Some(w.now()));

    // The same message again (a retry or a replay) marks nothing.
    block_on(w.sync().sync_next_dirty("w")).unwrap();
    assert!(!dirty());
    assert!(matches!(
        block_on(service.handle_calendar(&good)),
        Ok(NotificationOutcome::Replayed { .. })
    ));
    let mut older = good.clone();
    older.envelope.message_number -= 1;
    assert!(matches!(
        block_on(service.handle_calendar(&older)),
        Ok(NotificationOutcome::Replayed { .. })
    ));
    assert!(!dirty(), "a replay is not a change");
}

#[test]
fn a_drive_notification_is_recorded_once_and_purged_with_retention() {
    use calsync_domain::ports::DriveNotificationStore;
    use calsync_domain::webhook::{DriveNotification, DriveResourceState};
    let w = World::new();
    let channel = ChannelId::new("drive-channel").unwrap();
    let drive = DriveNotification {
        envelope: PushEnvelope {
            channel_id: channel.clone(),
            token: Some(w.secret().channel_token(&channel)),
            message_number: 7,
            resource_id: ResourceId::new("file-1").unwrap(),
            resource_uri: "https://www.googleapis.com/drive/v3/files/1".into(),
            channel_expiration: None,
        },
        state: DriveResourceState::Update,
        changed: vec!["content".into()],
    };
    let service = w.notifications();
    assert_eq!(block_on(service.handle_drive(&drive)), Ok(true));
    for _ in 0..49 {
        assert_eq!(block_on(service.handle_drive(&drive)), Ok(false));
    }
    assert_eq!(
        block_on(w.store.recent_drive_notifications(100))
            .unwrap()
            .len(),
        1
    );
    w.clock.advance(Duration::from_secs(181 * 86_400));
    let report = block_on(
        CleanupService::new(w.store.clone(), w.clock.clone(), 180)
            .with_drive_notifications(w.store.clone())
            .run(),
    )
    .unwrap();
    assert_eq!(report.drive_notifications_purged, 1);
    assert!(
        block_on(w.store.recent_drive_notifications(100))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn validly_signed_notifications_for_unknown_or_stopped_channels_ask_for_a_stop() {
    let w = World::new();
    let stranger = ChannelId::new("not-ours").unwrap();
    let resource = ResourceId::new("r").unwrap();
    let n = notification(
        &stranger,
        Some(w.secret().channel_token(&stranger)),
        &resource,
        CalendarResourceState::Exists,
    );
    assert!(
        matches!(
            block_on(w.notifications().handle_calendar(&n)),
            Ok(NotificationOutcome::UnwantedChannel { calendar_id: Some(ref c), .. }) if *c == w.cal
        ),
        "an unknown channel's calendar is the one its resource URI names"
    );

    let channel = block_on(w.channels().create(&w.cal)).unwrap();
    block_on(w.channels().stop(&channel.id)).unwrap();
    let n = notification(
        &channel.id,
        Some(w.secret().channel_token(&channel.id)),
        channel.resource_id.as_ref().unwrap(),
        CalendarResourceState::Exists,
    );
    assert!(matches!(
        block_on(w.notifications().handle_calendar(&n)),
        Ok(NotificationOutcome::UnwantedChannel { calendar_id: Some(ref c), .. }) if *c == w.cal
    ));
}

#[test]
fn channels_store_the_granted_expiry_and_renew_before_it_without_a_gap() {
    let w = World::new();
    w.google.set_max_ttl(Duration::from_secs(3600));
    let channel = block_on(w.channels().create(&w.cal)).unwrap();
    assert_eq!(
        channel.expiration,
        w.now() + chrono::Duration::hours(1),
        "granted, not requested"
    );
    assert_eq!(channel.status, ChannelStatus::Active);

    // Not due yet: half of a one-hour TTL is 30 minutes.
    w.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        block_on(w.channels().renew_due(Duration::from_secs(24 * 3600)))
            .unwrap()
            .renewed,
        0
    );

    // A failed re-watch keeps the old channel.
    w.clock.advance(Duration::from_secs(2 * 60));
    w.google.fail_next(Some("watch"), transient());
    let report = block_on(w.channels().renew_due(Duration::from_secs(24 * 3600))).unwrap();
    assert_eq!((report.renewed, report.failed), (0, 1));
    let active = block_on(w.store.list_channels(Some(ChannelStatus::Active))).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, channel.id);

    let report = block_on(w.channels().renew_due(Duration::from_secs(24 * 3600))).unwrap();
    assert_eq!(report.renewed, 1);
    let active = block_on(w.store.list_channels(Some(ChannelStatus::Active))).unwrap();
    assert_eq!(active.len(), 1);
    assert_ne!(active[0].id, channel.id, "a new channel id");
    assert_eq!(
        w.google.active_channels(),
        vec![active[0].id.clone()],
        "the old one is stopped at Google"
    );
    assert_eq!(
        block_on(w.store.get_channel(&channel.id))
            .unwrap()
            .unwrap()
            .status,
        ChannelStatus::Stopped
    );
}

#[test]
fn a_revoked_grant_during_renewal_marks_the_calendar_and_skips_it_next_time() {
    let w = World::new();
    block_on(w.channels().create(&w.cal)).unwrap();
    w.clock.advance(Duration::from_secs(7 * 24 * 3600 - 3600));
    w.google.fail_next(
        Some("watch"),
        Error::provider(ProviderErrorKind::ReconnectRequired, "invalid_grant"),
    );
    let report = block_on(w.channels().renew_due(Duration::from_secs(24 * 3600))).unwrap();
    assert_eq!(report.failed, 1);
    assert!(
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .reconnect_required
    );
    let report = block_on(w.channels().renew_due(Duration::from_secs(24 * 3600))).unwrap();
    assert_eq!((report.skipped, w.google.calls("watch")), (1, 2));

    // A person watches the calendar again once access is restored: reconnected.
    block_on(w.channels().create(&w.cal)).unwrap();
    assert!(
        !block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .reconnect_required
    );
}

#[test]
fn writes_are_queued_then_pushed_with_the_entity_link() {
    let w = World::new();
    let (event, entry) = block_on(w.events().create(w.new_event())).unwrap();
    assert_eq!(event.push_state, PushState::Pending);
    assert_eq!(entry.event_id, event.id);

    let report = block_on(w.events().drain_outbox("w", 10)).unwrap();
    assert_eq!(report.pushed, 1);
    let remote = w.google.events(&w.cal);
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].id, event.google_event_id);
    assert_eq!(
        remote[0].entity,
        Some(EntityRef::new("deal", "42").unwrap())
    );
    let stored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(stored.push_state, PushState::Synced);
    assert_eq!(stored.etag, remote[0].etag, "Google's etag is recorded");

    // The echo through sync is not a change.
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    assert_eq!((report.outcome.unchanged, report.outcome.updated), (1, 0));
}

#[test]
fn an_idempotency_key_creates_one_event_and_refuses_a_different_request() {
    let w = World::new();
    let key = IdempotencyKey::new("order-17-create", "fingerprint-a").unwrap();
    let first = block_on(w.events().create_idempotent(w.new_event(), &key)).unwrap();
    assert!(!first.replayed);
    let again = block_on(w.events().create_idempotent(w.new_event(), &key)).unwrap();
    assert!(again.replayed);
    assert_eq!(again.event.id, first.event.id, "the first event comes back");
    assert_eq!(w.store.all_events().len(), 1, "one event, one outbox row");
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );

    let other = IdempotencyKey::new("order-17-create", "fingerprint-b").unwrap();
    assert_eq!(
        block_on(w.events().create_idempotent(w.new_event(), &other)),
        Err(Error::IdempotencyKeyReused)
    );

    // Keys are forgotten a day later, by the cleanup job.
    w.clock.advance(Duration::from_secs(25 * 3600));
    let report =
        block_on(CleanupService::new(w.store.clone(), w.clock.clone(), 180).run()).unwrap();
    assert_eq!(report.idempotency_keys_purged, 1);
    assert!(
        block_on(w.store.find_idempotency_key("order-17-create"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn google_down_means_pending_and_everything_arrives_once_when_it_is_back() {
    let w = World::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(block_on(w.events().create(w.new_event())).unwrap().0.id);
    }
    for _ in 0..3 {
        w.google.fail_next(
            Some("insert"),
            Error::provider(ProviderErrorKind::Transient, "503"),
        );
    }
    let report = block_on(w.events().drain_outbox("w", 10)).unwrap();
    assert_eq!(report.retrying, 3);
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        0,
        "not due yet"
    );
    w.clock.advance(Duration::from_secs(2));
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        3
    );
    assert_eq!(w.google.events(&w.cal).len(), 3, "exactly once");
    for id in ids {
        let entries = block_on(w.store.outbox_for_event(id)).unwrap();
        assert_eq!(entries[0].state, OutboxState::Done);
        assert_eq!(entries[0].attempts, 2);
    }
}

#[test]
fn a_duplicate_on_insert_is_success_only_if_the_event_is_ours() {
    let w = World::new();
    // The first try reached Google but its answer was lost.
    let (ours, _) = block_on(w.events().create(w.new_event())).unwrap();
    w.google.put(
        &w.cal,
        RemoteEvent {
            entity: ours.entity.clone(),
            ..w.remote(ours.google_event_id.as_str(), 24)
        },
    );
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    assert_eq!(w.google.events(&w.cal).len(), 1);

    // Someone else's event under that id (or a deleted one) is not ours.
    let (theirs, _) = block_on(w.events().create(w.new_event())).unwrap();
    w.google
        .put(&w.cal, w.remote(theirs.google_event_id.as_str(), 24));
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10))
            .unwrap()
            .dead_lettered,
        1
    );
    assert_eq!(
        block_on(w.store.get_event(theirs.id))
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Failed
    );
}

#[test]
fn permanent_errors_and_exhausted_retries_dead_letter() {
    let w = World::new();
    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    w.google.fail_next(
        Some("insert"),
        Error::provider(ProviderErrorKind::Permanent, "forbidden"),
    );
    let entry =
        block_on(
            w.store
                .claim_outbox("w", w.now(), w.now() + chrono::Duration::minutes(1), 10),
        )
        .unwrap()
        .remove(0);
    assert!(matches!(
        block_on(w.events().push(&entry)).unwrap(),
        PushOutcome::DeadLettered { .. }
    ));
    assert_eq!(
        block_on(w.store.get_event(event.id))
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Failed
    );

    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    for _ in 0..4 {
        w.google.fail_next(
            Some("insert"),
            Error::provider(ProviderErrorKind::RateLimited, "rateLimitExceeded"),
        );
    }
    for _ in 0..4 {
        block_on(w.events().drain_outbox("w", 10)).unwrap();
        w.clock.advance(Duration::from_secs(120));
    }
    let entries = block_on(w.store.outbox_for_event(event.id)).unwrap();
    assert_eq!(entries[0].state, OutboxState::DeadLetter);
    assert_eq!(entries[0].attempts, 4);
}

#[test]
fn writes_to_one_event_are_pushed_in_order() {
    let w = World::new();
    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    let changes = EventChanges {
        summary: Some(Some("renamed".into())),
        ..EventChanges::default()
    };
    block_on(w.events().update(event.id, &changes, None)).unwrap();
    let claimed =
        block_on(
            w.store
                .claim_outbox("w", w.now(), w.now() + chrono::Duration::minutes(1), 10),
        )
        .unwrap();
    assert_eq!(claimed.len(), 1, "the patch waits for the insert");
    assert_eq!(claimed[0].op.kind(), "insert");
    block_on(w.events().push(&claimed[0])).unwrap();
    assert_eq!(
        block_on(w.store.get_event(event.id))
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Pending,
        "still pending while the patch waits"
    );
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    assert_eq!(
        w.google.events(&w.cal)[0].summary.as_deref(),
        Some("renamed")
    );
    assert_eq!(
        block_on(w.store.get_event(event.id))
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Synced
    );
}

#[test]
fn stale_etags_are_refused_locally_and_at_google() {
    let w = World::new();
    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    block_on(w.events().drain_outbox("w", 10)).unwrap();
    let pushed = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    let etag = pushed.etag.clone().unwrap();
    let changes = EventChanges {
        summary: Some(Some("x".into())),
        ..EventChanges::default()
    };
    let stale = calsync_domain::ids::Etag::new("\"stale\"").unwrap();
    assert!(matches!(
        block_on(w.events().update(event.id, &changes, Some(stale))),
        Err(Error::PreconditionFailed { .. })
    ));
    // Someone edits in Google after we read the etag: Google answers 412.
    block_on(w.events().update(event.id, &changes, Some(etag))).unwrap();
    w.google.put(
        &w.cal,
        RemoteEvent {
            entity: pushed.entity.clone(),
            ..w.remote(event.google_event_id.as_str(), 30)
        },
    );
    // The caller demanded that etag, so Google's version is kept and the
    // write is marked a conflict, not retried and not dead-lettered.
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10))
            .unwrap()
            .conflicts,
        1
    );
    let kept = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(kept.push_state, PushState::Conflict);
    assert_eq!(
        kept.summary.as_deref(),
        Some("event ".to_owned() + event.google_event_id.as_str()).as_deref()
    );
    assert!(kept.push_note.is_some_and(|n| n.starts_with("conflict")));
}

#[test]
fn cancelling_deletes_at_google_and_an_already_deleted_event_is_fine() {
    let w = World::new();
    let (event, _) = block_on(w.events().create(w.new_event())).unwrap();
    block_on(w.events().drain_outbox("w", 10)).unwrap();
    let (cancelled, _) = block_on(w.events().cancel(event.id, None)).unwrap();
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    assert_eq!(w.google.events(&w.cal)[0].status, EventStatus::Cancelled);
    // Already deleted in Google by someone else: still a success.
    let (second, _) = block_on(w.events().create(w.new_event())).unwrap();
    block_on(w.events().drain_outbox("w", 10)).unwrap();
    w.google.remove(&w.cal, &second.google_event_id);
    block_on(w.events().cancel(second.id, None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
}

#[test]
fn cleanup_cancels_old_events_in_batches_and_spares_pending_ones() {
    let w = World::new();
    for i in 0..5 {
        let mut old = w.remote(&format!("o000{i}"), 0);
        old.start = Some(EventTime::at(w.now() - chrono::Duration::days(400), None));
        old.end = Some(EventTime::at(w.now() - chrono::Duration::days(399), None));
        w.google.put(&w.cal, old);
    }
    w.google.put(&w.cal, w.remote("recent1", 1));
    block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    // A local write to an old event that is not yet confirmed by Google.
    let pending = w.mirrored("o0000").unwrap();
    let changes = EventChanges {
        summary: Some(Some("edit".into())),
        ..EventChanges::default()
    };
    block_on(w.events().update(pending.id, &changes, None)).unwrap();

    let report = block_on(
        CleanupService::new(w.store.clone(), w.clock.clone(), 180)
            .with_batch_size(2)
            .run(),
    )
    .unwrap();
    assert_eq!(report.cancelled, 4);
    assert_eq!(report.batches, 3);
    assert_eq!(
        w.mirrored("o0000").unwrap().status,
        EventStatus::Confirmed,
        "pending push spared"
    );
    assert_eq!(w.mirrored("o0001").unwrap().status, EventStatus::Cancelled);
    assert_eq!(
        w.mirrored("recent1").unwrap().status,
        EventStatus::Confirmed
    );
    assert!(
        w.google
            .events(&w.cal)
            .iter()
            .all(|e| e.status != EventStatus::Cancelled),
        "never deleted at Google"
    );
    let again = block_on(CleanupService::new(w.store.clone(), w.clock.clone(), 180).run()).unwrap();
    assert_eq!(again.cancelled, 0, "already cancelled events are skipped");
}

#[test]
fn health_turns_degraded_and_back() {
    let w = World::new();
    let health = HealthService::new(
        w.store.clone(),
        w.clock.clone(),
        HealthThresholds::default(),
    );
    let (report, _) = block_on(health.report());
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(report.issues.iter().any(|i| i.code == "no_active_channels"));

    block_on(w.channels().create(&w.cal)).unwrap();
    block_on(w.sync().sync_next_dirty("w")).unwrap();
    let (report, _) = block_on(health.report());
    assert_eq!(report.status, HealthStatus::Healthy, "{:?}", report.issues);
    assert_eq!(report.stats.active_channels, 1);

    w.clock.advance(Duration::from_secs(2 * 3600));
    let (report, _) = block_on(health.report());
    assert!(report.issues.iter().any(|i| i.code == "sync_stale"));
}

#[test]
fn a_lapsed_channel_degrades_health_until_a_new_one_watches() {
    let w = World::new();
    let health = HealthService::new(
        w.store.clone(),
        w.clock.clone(),
        HealthThresholds::default(),
    );
    block_on(w.channels().create(&w.cal)).unwrap();
    block_on(w.sync().sync_next_dirty("w")).unwrap();
    assert_eq!(block_on(health.report()).0.status, HealthStatus::Healthy);

    // Nothing renews it: a week later it has lapsed.
    w.clock.advance(Duration::from_secs(7 * 24 * 3600 + 60));
    block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    let (report, _) = block_on(health.report());
    assert_eq!(report.status, HealthStatus::Degraded);
    let codes: Vec<_> = report.issues.iter().map(|i| i.code).collect();
    assert!(
        codes.contains(&"channels_lapsed") && codes.contains(&"no_active_channels"),
        "{codes:?}"
    );
    assert_eq!(
        (report.stats.active_channels, report.stats.channels_lapsed),
        (0, 1)
    );

    // The renewal job (or a person) watches again: healthy.
    let renewed = block_on(w.channels().renew_due(Duration::from_secs(24 * 3600))).unwrap();
    assert_eq!(renewed.renewed, 1, "{renewed:?}");
    let (report, _) = block_on(health.report());
    assert_eq!(report.status, HealthStatus::Healthy, "{:?}", report.issues);
}

#[test]
fn job_ticks_are_claimed_once() {
    let w = World::new();
    let tick = w.now();
    assert!(block_on(w.store.claim_tick("cleanup", tick, "a")).unwrap());
    assert!(!block_on(w.store.claim_tick("cleanup", tick, "b")).unwrap());
    assert!(block_on(w.store.claim_tick("renewal", tick, "b")).unwrap());
}

#[test]
fn listing_filters_by_entity_and_pages_by_cursor() {
    let w = World::new();
    for _ in 0..5 {
        block_on(w.events().create(w.new_event())).unwrap();
    }
    let mut query = EventQuery {
        entity: Some(EntityRef::new("deal", "42").unwrap()),
        limit: 2,
        ..EventQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = block_on(w.store.list_events(&query)).unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        query.after = Some((last.start.sort_key(), last.id));
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);
    query.entity = Some(EntityRef::new("deal", "other").unwrap());
    query.after = None;
    assert!(block_on(w.store.list_events(&query)).unwrap().is_empty());
}

#[test]
fn drive_notifications_are_authenticated_and_recorded_without_their_token() {
    use calsync_domain::ports::DriveNotificationStore;
    use calsync_domain::webhook::{DriveNotification, DriveResourceState};
    let w = World::new();
    let channel = ChannelId::new("drive-1").unwrap();
    let drive = |token: Option<String>| DriveNotification {
        envelope: PushEnvelope {
            channel_id: channel.clone(),
            token,
            message_number: 4,
            resource_id: ResourceId::new("file-res").unwrap(),
            resource_uri: "https://www.googleapis.com/drive/v3/files/abc".into(),
            channel_expiration: None,
        },
        state: DriveResourceState::Update,
        changed: vec!["content".into()],
    };
    let service = w.notifications();
    assert_eq!(
        block_on(service.handle_drive(&drive(Some("f".repeat(64))))),
        Err(Error::Forbidden)
    );
    assert_eq!(
        block_on(service.handle_drive(&drive(None))),
        Err(Error::Forbidden)
    );
    assert!(
        block_on(w.store.recent_drive_notifications(10))
            .unwrap()
            .is_empty()
    );
    block_on(service.handle_drive(&drive(Some(w.secret().channel_token(&channel))))).unwrap();
    let recorded = block_on(w.store.recent_drive_notifications(10)).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0.state, DriveResourceState::Update);
    assert_eq!(
        recorded[0].0.envelope.token, None,
        "tokens are never stored"
    );
}

// ---------------------------------------------------------------------------
// The mirror never diverges: deletions and concurrent edits at Google.
// ---------------------------------------------------------------------------

/// Creates an event, pushes it and returns it as the mirror holds it.
fn pushed_event(w: &World, fields: NewEventFields) -> calsync_domain::event::Event {
    let start = w.now() + chrono::Duration::days(1);
    let new = NewEvent::new(
        w.cal.clone(),
        EntityRef::new("deal", "7").unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        fields,
    )
    .unwrap();
    let (event, _) = block_on(w.events().create(new)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    block_on(w.store.get_event(event.id)).unwrap().unwrap()
}

fn google_copy(w: &World, event: &calsync_domain::event::Event) -> RemoteEvent {
    w.google
        .events(&w.cal)
        .into_iter()
        .find(|e| e.id == event.google_event_id)
        .unwrap()
}

fn rename(summary: &str) -> EventChanges {
    EventChanges {
        summary: Some(Some(summary.into())),
        ..EventChanges::default()
    }
}

#[test]
fn a_patch_of_an_event_deleted_at_google_cancels_it_here_and_is_not_a_dead_letter() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    w.google.remove(&w.cal, &event.google_event_id);
    block_on(w.events().update(event.id, &rename("too late"), None)).unwrap();
    let report = block_on(w.events().drain_outbox("w", 10)).unwrap();
    assert_eq!((report.gone, report.dead_lettered), (1, 0));
    let mirrored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(mirrored.status, EventStatus::Cancelled);
    assert_eq!(mirrored.push_state, PushState::Synced);
    assert!(mirrored.push_note.unwrap().starts_with("deleted at Google"));
    // The queued patch carried no status, so Google did not undelete it.
    assert_eq!(google_copy(&w, &event).status, EventStatus::Cancelled);
    assert!(matches!(
        block_on(w.events().update(event.id, &rename("again"), None)),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn a_404_is_a_deletion_only_while_the_calendar_is_reachable() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    w.google.set_unreachable(&w.cal, true);
    block_on(w.events().update(event.id, &rename("x"), None)).unwrap();
    let report = block_on(w.events().drain_outbox("w", 10)).unwrap();
    // Neither gone nor given up: the write waits for the calendar.
    assert_eq!(
        (report.gone, report.dead_lettered, report.retrying),
        (0, 0, 1)
    );
    let mirrored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(
        mirrored.status,
        EventStatus::Confirmed,
        "not called deleted"
    );
    assert_eq!(mirrored.push_state, PushState::Pending);
}

#[test]
fn a_google_edit_of_another_field_survives_a_patch_and_the_patch_is_reapplied() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let mut edited = google_copy(&w, &event);
    edited.location = Some("Room 4".into());
    w.google.put(&w.cal, edited);
    block_on(w.events().update(event.id, &rename("Renamed here"), None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let at_google = google_copy(&w, &event);
    assert_eq!(at_google.summary.as_deref(), Some("Renamed here"));
    assert_eq!(at_google.location.as_deref(), Some("Room 4"));
    // Re-applied on Google's new etag, after one refusal and one read.
    assert_eq!((w.google.calls("patch"), w.google.calls("get")), (2, 1));
}

#[test]
fn a_google_edit_of_the_same_field_is_a_conflict_and_googles_value_is_kept() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let mut edited = google_copy(&w, &event);
    edited.summary = Some("Renamed in Google".into());
    w.google.put(&w.cal, edited);
    block_on(w.events().update(event.id, &rename("Renamed here"), None)).unwrap();
    let report = block_on(w.events().drain_outbox("w", 10)).unwrap();
    assert_eq!((report.conflicts, report.pushed), (1, 0));
    assert_eq!(
        google_copy(&w, &event).summary.as_deref(),
        Some("Renamed in Google")
    );
    let mirrored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(mirrored.push_state, PushState::Conflict);
    assert_eq!(mirrored.summary.as_deref(), Some("Renamed in Google"));
    let (health, _) = block_on(
        HealthService::new(
            w.store.clone(),
            w.clock.clone(),
            HealthThresholds::default(),
        )
        .report(),
    );
    assert!(health.issues.iter().any(|i| i.code == "push_conflicts"));
}

#[test]
fn a_patch_keeps_rsvps_made_in_google() {
    let w = World::new();
    let guest = calsync_domain::event::Attendee::new("guest@example.com").unwrap();
    let event = pushed_event(
        &w,
        NewEventFields {
            attendees: vec![guest],
            ..NewEventFields::default()
        },
    );
    // The guest accepts in Google; the mirror has not synced since.
    let mut answered = google_copy(&w, &event);
    answered.attendees[0].response_status = Some("accepted".into());
    w.google.put(&w.cal, answered);
    block_on(w.events().update(event.id, &rename("Agenda"), None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let at_google = google_copy(&w, &event);
    assert_eq!(at_google.summary.as_deref(), Some("Agenda"));
    assert_eq!(
        at_google.attendees[0].response_status.as_deref(),
        Some("accepted")
    );
}

#[test]
fn the_full_sync_sweep_cancels_failed_rows_and_spares_rows_pushed_after_it_began() {
    let w = World::new();
    // A row that failed for good (Google refused it) and is gone at Google.
    let failed = pushed_event(&w, NewEventFields::default());
    w.google.purge(&w.cal, &failed.google_event_id);
    w.google.fail_next(
        Some("patch"),
        Error::provider(ProviderErrorKind::Permanent, "refused"),
    );
    block_on(w.events().update(failed.id, &rename("x"), None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10))
            .unwrap()
            .dead_lettered,
        1
    );
    w.clock.advance(Duration::from_secs(1));
    let report = block_on(w.sync().sync_calendar(&w.cal, SyncMode::Full, None)).unwrap();
    assert_eq!(report.outcome.swept, 1);
    assert_eq!(
        block_on(w.store.get_event(failed.id))
            .unwrap()
            .unwrap()
            .status,
        EventStatus::Cancelled,
        "a failed row Google does not have is not kept alive"
    );
}

#[test]
fn after_a_partial_patch_the_mirror_holds_googles_whole_event() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    // Queued while Google is briefly down; meanwhile someone edits another
    // field in Google.
    w.google.fail_next(Some("patch"), transient());
    block_on(w.events().update(event.id, &rename("Renamed here"), None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().retrying,
        1
    );
    let mut edited = google_copy(&w, &event);
    edited.location = Some("Room 9".into());
    w.google.put(&w.cal, edited);
    w.clock.advance(Duration::from_secs(5));
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let at_google = google_copy(&w, &event);
    let mirrored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(mirrored.etag, at_google.etag);
    assert_eq!(
        (mirrored.summary.as_deref(), mirrored.location.as_deref()),
        (Some("Renamed here"), Some("Room 9")),
        "the etag vouches for exactly this content"
    );
}

// ---------------------------------------------------------------------------
// Refusals Google keeps giving: read-only calendars and invitations.
// ---------------------------------------------------------------------------

fn read_only() -> Error {
    Error::provider(
        ProviderErrorKind::ReadOnly,
        "patch: 403 requiredAccessLevel: You need to have writer access to this calendar.",
    )
}

fn health(w: &World) -> calsync_domain::health::HealthReport {
    block_on(
        HealthService::new(
            w.store.clone(),
            w.clock.clone(),
            HealthThresholds::default(),
        )
        .report(),
    )
    .0
}

#[test]
fn a_read_only_calendar_makes_writes_wait_uncounted_and_a_landed_write_clears_it() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let events = w.events_with_states();
    block_on(events.update(event.id, &rename("shared"), None)).unwrap();
    let first_refusal = w.now();
    // Many more refusals than max_attempts (4): never a dead letter.
    for probe in 0..6 {
        w.google.fail_next(Some("patch"), read_only());
        let report = block_on(events.drain_outbox("w", 10)).unwrap();
        assert_eq!(
            (report.retrying, report.dead_lettered),
            (1, 0),
            "probe {probe}"
        );
        let row = block_on(w.store.outbox_for_event(event.id))
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(row.attempts, 0, "a wait is not an attempt");
        assert_eq!(row.state, OutboxState::Pending);
        assert_eq!(
            row.next_attempt_at,
            w.now() + chrono::Duration::seconds(300),
            "tried again after the probe interval"
        );
        assert_eq!(
            block_on(events.drain_outbox("w", 10)).unwrap().total(),
            0,
            "nothing due before the probe"
        );
        let state = block_on(w.store.sync_state(&w.cal)).unwrap().unwrap();
        assert_eq!(
            state.read_only_since,
            Some(first_refusal),
            "the first refusal's time"
        );
        assert!(state.read_only_reason.unwrap().contains("writer access"));
        w.clock.advance(Duration::from_secs(300));
    }
    let report = health(&w);
    let issue = report
        .issues
        .iter()
        .find(|i| i.code == "calendar_read_only")
        .expect("health names the read-only calendar");
    assert!(issue.message.contains(w.cal.as_str()), "{}", issue.message);
    assert!(report.stats.calendars.iter().any(|c| c.read_only));
    // Access is back: the probe lands and the mark goes.
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().pushed, 1);
    assert_eq!(google_copy(&w, &event).summary.as_deref(), Some("shared"));
    assert!(
        !block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .is_read_only()
    );
    assert!(
        !health(&w)
            .issues
            .iter()
            .any(|i| i.code == "calendar_read_only"),
        "the issue clears"
    );
}

#[test]
fn a_transient_failure_after_long_read_only_waits_still_has_all_its_attempts() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let events = w.events_with_states();
    block_on(events.update(event.id, &rename("later"), None)).unwrap();
    for _ in 0..10 {
        w.google.fail_next(Some("patch"), read_only());
        block_on(events.drain_outbox("w", 10)).unwrap();
        w.clock.advance(Duration::from_secs(300));
    }
    w.google.fail_next(Some("patch"), transient());
    let report = block_on(events.drain_outbox("w", 10)).unwrap();
    assert_eq!((report.retrying, report.dead_lettered), (1, 0));
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().pushed, 1);
}

/// An event mirrored from Google as an invitation organized elsewhere:
/// this calendar has not answered, the organizer ("The Boss") accepted.
fn invitation(w: &World, extra: serde_json::Value) -> calsync_domain::event::Event {
    invitation_as(w, "inv01", 24, extra)
}

fn invitation_as(
    w: &World,
    id: &str,
    hour: u32,
    extra: serde_json::Value,
) -> calsync_domain::event::Event {
    let mut remote = w.remote(id, hour);
    let mut me = Attendee::new(w.cal.as_str()).unwrap();
    me.response_status = Some("needsAction".into());
    let mut boss = Attendee::new("boss@example.org").unwrap();
    boss.response_status = Some("accepted".into());
    boss.display_name = Some("The Boss".into());
    remote.attendees = vec![me, boss];
    let mut google = serde_json::json!({
        "id": id,
        "organizer": {"email": "boss@example.org"},
        "attendees": [
            {"email": w.cal.as_str(), "self": true, "responseStatus": "needsAction"},
            {"email": "boss@example.org", "displayName": "The Boss", "organizer": true, "responseStatus": "accepted"},
        ],
    });
    if let (Some(google), serde_json::Value::Object(extra)) = (google.as_object_mut(), extra) {
        google.extend(extra);
    }
    if let Some(lines) = google["recurrence"].as_array() {
        remote.recurrence = lines
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
    }
    remote.google = Some(google);
    w.google.put(&w.cal, remote);
    block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    w.mirrored(id).unwrap()
}

/// The answer of `email` in `attendees`.
fn answer<'a>(attendees: &'a [Attendee], email: &str) -> Option<&'a str> {
    attendees
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(email))
        .and_then(|a| a.response_status.as_deref())
}

/// This calendar's RSVP on an invitation, as a client sends it: its own
/// answer, the organizer's entry with neither answer nor display name.
fn rsvp(w: &World, own: &str) -> EventChanges {
    let mut me = Attendee::new(w.cal.as_str()).unwrap();
    me.response_status = Some(own.into());
    EventChanges {
        attendees: Some(vec![me, Attendee::new("BOSS@example.org").unwrap()]),
        ..EventChanges::default()
    }
}

#[test]
fn an_rsvp_leaving_out_the_others_answers_keeps_them_and_lands() {
    let w = World::new();
    let event = invitation(&w, serde_json::json!({}));
    let events = w.events_with_states();
    let (next, _) = block_on(events.update(event.id, &rsvp(&w, "accepted"), None))
        .expect("an RSVP is the attendee's to give");
    assert_eq!(answer(&next.attendees, w.cal.as_str()), Some("accepted"));
    assert_eq!(
        answer(&next.attendees, "boss@example.org"),
        Some("accepted")
    );
    assert_eq!(next.attendees[1].display_name.as_deref(), Some("The Boss"));
    let row = block_on(w.store.outbox_for_event(event.id))
        .unwrap()
        .pop()
        .unwrap();
    let sent = row.op.intent().unwrap().changes.attendees.clone().unwrap();
    assert_eq!(
        answer(&sent, "boss@example.org"),
        Some("accepted"),
        "the organizer's answer travels as Google has it, not as needsAction"
    );
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().pushed, 1);
    let at_google = google_copy(&w, &event);
    assert_eq!(
        answer(&at_google.attendees, w.cal.as_str()),
        Some("accepted")
    );
    assert_eq!(
        answer(&at_google.attendees, "boss@example.org"),
        Some("accepted")
    );
    // Another attendee's answer is still not this calendar's to give.
    let mut for_the_boss = rsvp(&w, "accepted");
    for_the_boss.attendees.as_mut().unwrap()[1].response_status = Some("declined".into());
    assert!(matches!(
        block_on(events.update(event.id, &for_the_boss, None)),
        Err(Error::Unprocessable {
            field: "attendees",
            ..
        })
    ));
}

#[test]
fn a_guest_list_edit_without_answers_keeps_the_answers_the_mirror_knows() {
    let w = World::new();
    let guest = Attendee::new("guest@example.com").unwrap();
    let event = pushed_event(
        &w,
        NewEventFields {
            attendees: vec![guest.clone()],
            ..NewEventFields::default()
        },
    );
    // The guest accepts in Google, and the mirror syncs it.
    let mut answered = google_copy(&w, &event);
    answered.attendees[0].response_status = Some("accepted".into());
    w.google.put(&w.cal, answered);
    block_on(w.sync().sync_calendar(&w.cal, SyncMode::Auto, None)).unwrap();
    let more = EventChanges {
        attendees: Some(vec![guest, Attendee::new("new@example.com").unwrap()]),
        ..EventChanges::default()
    };
    block_on(w.events().update(event.id, &more, None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let at_google = google_copy(&w, &event);
    assert_eq!(at_google.attendees.len(), 2);
    assert_eq!(
        answer(&at_google.attendees, "guest@example.com"),
        Some("accepted")
    );
    assert_eq!(
        answer(&at_google.attendees, "new@example.com"),
        Some("needsAction")
    );
}

#[test]
fn an_rsvp_refused_with_412_is_reapplied_not_taken_as_landed() {
    let w = World::new();
    let event = invitation(&w, serde_json::json!({}));
    let events = w.events_with_states();
    block_on(events.update(event.id, &rsvp(&w, "accepted"), None)).unwrap();
    // Meanwhile the organizer moves the room and changes their answer in
    // Google: the RSVP's etag is stale.
    let mut moved = google_copy(&w, &event);
    moved.location = Some("Room 7".into());
    moved.attendees[1].response_status = Some("tentative".into());
    w.google.put(&w.cal, moved);
    let report = block_on(events.drain_outbox("w", 10)).unwrap();
    assert_eq!((report.pushed, report.conflicts), (1, 0));
    assert_eq!(
        (w.google.calls("patch"), w.google.calls("get")),
        (2, 1),
        "re-applied on the new etag, not taken as landed"
    );
    let at_google = google_copy(&w, &event);
    assert_eq!(
        answer(&at_google.attendees, w.cal.as_str()),
        Some("accepted"),
        "the answer given is the one sent again"
    );
    assert_eq!(
        answer(&at_google.attendees, "boss@example.org"),
        Some("tentative"),
        "an answer only carried over is Google's"
    );
    assert_eq!(at_google.location.as_deref(), Some("Room 7"));
    let mirrored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(mirrored.push_state, PushState::Synced);
    assert_eq!(
        answer(&mirrored.attendees, w.cal.as_str()),
        Some("accepted")
    );
}

#[test]
fn a_read_only_mark_clears_once_google_judges_a_write_of_the_calendar() {
    let w = World::new();
    let events = w.events_with_states();
    let read_only_now = |w: &World| {
        block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .is_some_and(|s| s.is_read_only())
    };
    let first = pushed_event(&w, NewEventFields::default());
    let second = pushed_event(&w, NewEventFields::default());
    // A waiting write, then Google found the event deleted (410): settled.
    block_on(events.update(first.id, &rename("gone"), None)).unwrap();
    w.google.fail_next(Some("patch"), read_only());
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().retrying, 1);
    assert!(read_only_now(&w));
    w.google.remove(&w.cal, &first.google_event_id);
    w.clock.advance(Duration::from_secs(300));
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().gone, 1);
    assert!(
        !read_only_now(&w),
        "Google judged the write: access is back"
    );
    // A transient failure says nothing of access: the mark stays.
    block_on(events.update(second.id, &rename("later"), None)).unwrap();
    w.google.fail_next(Some("patch"), read_only());
    block_on(events.drain_outbox("w", 10)).unwrap();
    w.clock.advance(Duration::from_secs(300));
    w.google.fail_next(Some("patch"), transient());
    assert_eq!(block_on(events.drain_outbox("w", 10)).unwrap().retrying, 1);
    assert!(read_only_now(&w));
    // Then refused for what it says (400): dead-lettered, but access is back.
    w.google.fail_next(
        Some("patch"),
        Error::provider(ProviderErrorKind::Permanent, "patch: 400 invalid"),
    );
    w.clock.advance(Duration::from_secs(300));
    let report = block_on(events.drain_outbox("w", 10)).unwrap();
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    assert!(
        !read_only_now(&w),
        "a dead letter for another reason clears it"
    );
}

#[test]
fn a_second_change_of_an_exception_made_here_is_judged_on_the_masters_copy() {
    let w = World::new();
    let master = invitation_as(
        &w,
        "invser01",
        24,
        serde_json::json!({"recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}),
    );
    assert!(master.is_master(), "{master:?}");
    let second = master.start.sort_key() + chrono::Duration::days(1);
    let reference = OccurrenceRef {
        master: master.id,
        suffix: second.format("%Y%m%dT%H%M%SZ").to_string(),
    };
    let events = w.events_with_states();
    // The RSVP for one occurrence makes an exception row, not yet pushed.
    let (exception, _) =
        block_on(events.update_occurrence(&reference, &rsvp(&w, "accepted"), None)).unwrap();
    assert!(exception.google.is_none() && exception.is_exception());
    let err = block_on(events.update(exception.id, &rename("mine"), None)).unwrap_err();
    assert!(
        matches!(&err, Error::Unprocessable { field: "summary", reason } if reason.contains("boss@example.org")),
        "{err:?}"
    );
    // What the attendee may change still goes.
    block_on(events.update(exception.id, &rsvp(&w, "declined"), None)).unwrap();
}

#[test]
fn an_invitation_takes_only_an_attendees_changes_up_front() {
    let w = World::new();
    let event = invitation(&w, serde_json::json!({}));
    let events = w.events_with_states();
    let err = block_on(events.update(event.id, &rename("mine"), None)).unwrap_err();
    let Error::Unprocessable { field, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*field, "summary");
    assert!(
        reason.contains("responseStatus") && reason.contains("reminders"),
        "{reason}"
    );
    assert!(
        block_on(w.store.outbox_for_event(event.id))
            .unwrap()
            .is_empty(),
        "nothing queued"
    );
    // Its own RSVP is the attendee's to give.
    let mut answered = event.attendees.clone();
    answered[0].response_status = Some("accepted".into());
    let rsvp = EventChanges {
        attendees: Some(answered),
        ..EventChanges::default()
    };
    block_on(events.update(event.id, &rsvp, None)).unwrap();
    // A locked copy whose guests may modify: still not its main fields.
    let w = World::new();
    let event = invitation(
        &w,
        serde_json::json!({"guestsCanModify": true, "locked": true}),
    );
    let err = block_on(w.events().update(event.id, &rename("mine"), None)).unwrap_err();
    assert!(
        matches!(&err, Error::Unprocessable { field: "summary", reason } if reason.contains("locked")),
        "{err:?}"
    );
}

#[test]
fn a_refusal_for_a_non_organizer_is_a_dead_letter_that_says_why_and_resyncs() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let events = w.events_with_states();
    block_on(events.update(event.id, &rename("stale mirror"), None)).unwrap();
    let clean = block_on(w.store.sync_state(&w.cal))
        .unwrap()
        .unwrap_or_else(|| calsync_domain::sync::SyncState::new(w.cal.clone()));
    w.google.fail_next(
        Some("patch"),
        Error::provider(
            ProviderErrorKind::NotOrganizer,
            "patch: 403 forbiddenForNonOrganizer: Shared properties can only be changed by the organizer of the event.",
        ),
    );
    let report = block_on(events.drain_outbox("w", 10)).unwrap();
    assert_eq!(
        (report.dead_lettered, report.retrying),
        (1, 0),
        "retrying cannot help"
    );
    let row = block_on(w.store.outbox_for_event(event.id))
        .unwrap()
        .pop()
        .unwrap();
    let error = row.last_error.unwrap();
    assert!(
        error.contains("organizer") && error.contains("retrying cannot help"),
        "{error}"
    );
    assert_eq!(
        block_on(w.store.get_event(event.id))
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Failed
    );
    let state = block_on(w.store.sync_state(&w.cal)).unwrap().unwrap();
    assert!(
        state.dirty_seq > clean.dirty_seq,
        "the mirror is synced again"
    );
}

#[test]
fn a_patch_switching_kinds_lands_and_records_what_it_was_based_on() {
    let w = World::new();
    let event = pushed_event(&w, NewEventFields::default());
    let day = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
    let all_day = EventChanges {
        start: Some(EventTime::date(day)),
        end: Some(EventTime::date(day.succ_opt().unwrap())),
        ..EventChanges::default()
    };
    block_on(w.events().update(event.id, &all_day, None)).unwrap();
    let row = block_on(w.store.outbox_for_event(event.id))
        .unwrap()
        .pop()
        .unwrap();
    let intent = row.op.intent().unwrap();
    assert_eq!(intent.base.start, Some(event.start.clone()), "timed before");
    assert!(!intent.base.start.as_ref().unwrap().is_all_day());
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let sent = w.google.patches().pop().unwrap();
    assert_eq!(sent.changes.start, all_day.start);
    assert!(google_copy(&w, &event).start.unwrap().is_all_day());
    // After a 412 for another field, the switch back is re-applied.
    let pushed = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    let mut edited = google_copy(&w, &pushed);
    edited.location = Some("Room 9".into());
    w.google.put(&w.cal, edited);
    let timed = EventChanges {
        start: Some(event.start.clone()),
        end: Some(event.end.clone()),
        ..EventChanges::default()
    };
    block_on(w.events().update(event.id, &timed, None)).unwrap();
    assert_eq!(
        block_on(w.events().drain_outbox("w", 10)).unwrap().pushed,
        1
    );
    let at_google = google_copy(&w, &event);
    assert_eq!(at_google.start, Some(event.start.clone()));
    assert_eq!(at_google.location.as_deref(), Some("Room 9"));
}

// ---------------------------------------------------------------------------
// What the routes read through the services: the mirror, a write's verdict,
// channels, sync requests.
// ---------------------------------------------------------------------------

/// tokio's timer, as the server passes it.
struct TokioTimer;

#[async_trait::async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A timer that never fires: no re-read, no deadline. A verdict awaited
/// with it can only be answered by a push waking it.
struct NeverTimer;

#[async_trait::async_trait]
impl Timer for NeverTimer {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await;
    }
}

fn timed(events: EventService, timer: impl Timer + 'static) -> EventService {
    events.with_lease(Duration::from_secs(15), Some(Arc::new(timer)))
}

/// Waits on `event`'s verdict in a task of its own.
fn await_verdict(
    events: &EventService,
    event: &calsync_domain::event::Event,
    wait: Duration,
) -> tokio::task::JoinHandle<calsync_domain::Result<WriteVerdict>> {
    let (events, event) = (events.clone(), event.clone());
    tokio::spawn(async move { events.verdict(&event, wait).await })
}

#[tokio::test]
async fn a_verdict_is_answered_by_the_push_that_lands_the_write() {
    let w = World::new();
    // No re-read and no deadline: only the worker's wake-up can answer.
    let events = timed(w.events(), NeverTimer);
    let (event, _) = events.create(w.new_event()).await.unwrap();
    let waiting = await_verdict(&events, &event, Duration::from_secs(3600));
    // Let it read the event (pending) and start waiting.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished(), "nothing has decided the write yet");
    // The worker holds a clone of the same service, as the server wires it.
    let worker = events.clone();
    assert_eq!(worker.drain_outbox("w", 10).await.unwrap().pushed, 1);
    let verdict = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the push wakes the waiting caller")
        .unwrap()
        .unwrap();
    let WriteVerdict::Applied(applied) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(applied.push_state, PushState::Synced);
    assert!(applied.etag.is_some(), "Google's etag comes with it");
}

#[tokio::test]
async fn a_verdict_sees_a_push_made_by_another_replica() {
    let w = World::new();
    // Two replicas over one store: their services share no waiters.
    let here = timed(w.events(), TokioTimer);
    let elsewhere = timed(w.events(), TokioTimer);
    let (event, _) = here.create(w.new_event()).await.unwrap();
    let started = std::time::Instant::now();
    let waiting = await_verdict(&here, &event, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(elsewhere.drain_outbox("b", 10).await.unwrap().pushed, 1);
    let verdict = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the re-read finds the other replica's push")
        .unwrap()
        .unwrap();
    assert!(matches!(verdict, WriteVerdict::Applied(_)), "{verdict:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "found on a re-read, long before the wait ends: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_verdict_still_queued_when_the_wait_ends_is_pending_with_the_last_error() {
    let w = World::new();
    // A timer for the wait alone, as the routes give one.
    let events = w.events().with_wait_timer(Arc::new(TokioTimer));
    let (event, _) = events.create(w.new_event()).await.unwrap();
    let started = std::time::Instant::now();
    let verdict = events
        .verdict(&event, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        matches!(&verdict, WriteVerdict::Pending { last_error: None, event: e } if e.id == event.id),
        "{verdict:?}"
    );

    // Google failed the first try: still pending, and saying why.
    w.google.fail_next(Some("insert"), transient());
    assert_eq!(events.drain_outbox("w", 10).await.unwrap().retrying, 1);
    let verdict = events
        .verdict(&event, Duration::from_millis(50))
        .await
        .unwrap();
    let WriteVerdict::Pending { last_error, .. } = verdict else {
        panic!("{verdict:?}");
    };
    assert!(last_error.unwrap().contains("backendError"));
    assert_eq!(
        events.last_push_error(&event).await.unwrap().as_deref(),
        Some("calendar provider error (transient): backendError")
    );
}

#[tokio::test]
async fn a_refused_write_is_a_conflict_by_the_kind_its_row_recorded() {
    let w = World::new();
    let events = timed(w.events(), TokioTimer);
    // A 412 Google would not let the write past: a conflict.
    let (conflicted, _) = events.create(w.new_event()).await.unwrap();
    w.google.fail_next(
        Some("insert"),
        Error::provider(ProviderErrorKind::PreconditionFailed, "conditionNotMet"),
    );
    assert_eq!(events.drain_outbox("w", 10).await.unwrap().dead_lettered, 1);
    let rows = w.store.outbox_for_event(conflicted.id).await.unwrap();
    assert_eq!(rows[0].last_failure, Some(PushFailure::Conflict));
    let verdict = events
        .verdict(&conflicted, Duration::from_secs(5))
        .await
        .unwrap();
    let WriteVerdict::Refused {
        conflict, reason, ..
    } = verdict
    else {
        panic!("{verdict:?}");
    };
    assert!(conflict, "{reason}");
    assert!(reason.contains("conditionNotMet"));

    // Refused for another reason, even one whose words mention a 412: not one.
    let (refused, _) = events.create(w.new_event()).await.unwrap();
    w.google.fail_next(
        Some("insert"),
        Error::provider(
            ProviderErrorKind::Permanent,
            "calendar provider error (precondition_failed): quoted",
        ),
    );
    assert_eq!(events.drain_outbox("w", 10).await.unwrap().dead_lettered, 1);
    let verdict = events
        .verdict(&refused, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        matches!(
            &verdict,
            WriteVerdict::Refused {
                conflict: false,
                ..
            }
        ),
        "{verdict:?}"
    );
}

#[test]
fn a_verdict_without_a_timer_is_where_the_write_stands() {
    let w = World::new();
    let events = w.events();
    let (event, _) = block_on(events.create(w.new_event())).unwrap();
    let verdict = block_on(events.verdict(&event, Duration::from_secs(3600))).unwrap();
    assert!(
        matches!(verdict, WriteVerdict::Pending { .. }),
        "{verdict:?}"
    );
    block_on(events.drain_outbox("w", 10)).unwrap();
    let verdict = block_on(events.verdict(&event, Duration::from_secs(3600))).unwrap();
    assert!(matches!(verdict, WriteVerdict::Applied(_)), "{verdict:?}");

    // Changed in Google meanwhile: refused as a conflict, with the note.
    let mut edited = google_copy(&w, &event);
    edited.summary = Some("Renamed in Google".into());
    w.google.put(&w.cal, edited);
    let (renamed, _) = block_on(events.update(event.id, &rename("Renamed here"), None)).unwrap();
    block_on(events.drain_outbox("w", 10)).unwrap();
    let verdict = block_on(events.verdict(&renamed, Duration::ZERO)).unwrap();
    let WriteVerdict::Refused {
        conflict, reason, ..
    } = &verdict
    else {
        panic!("{verdict:?}");
    };
    assert!(*conflict);
    assert!(reason.starts_with("conflict:"), "{reason}");

    // Deleted at Google: said so, not applied.
    w.google.remove(&w.cal, &event.google_event_id);
    let (again, _) = block_on(events.update(event.id, &rename("too late"), None)).unwrap();
    block_on(events.drain_outbox("w", 10)).unwrap();
    let verdict = block_on(events.verdict(&again, Duration::ZERO)).unwrap();
    let WriteVerdict::DeletedAtGoogle(gone) = &verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(gone.status, EventStatus::Cancelled);
    assert_eq!(
        block_on(events.last_push_error(gone)).unwrap(),
        gone.push_note
    );
    let rows = block_on(w.store.outbox_for_event(event.id)).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.last_failure).collect::<Vec<_>>(),
        vec![None, Some(PushFailure::Conflict), Some(PushFailure::Gone)],
        "settled rows record their kind too"
    );
}

#[test]
fn events_are_read_and_listed_through_the_service() {
    let w = World::new();
    let events = w.events();
    let (event, _) = block_on(events.create(w.new_event())).unwrap();
    assert_eq!(block_on(events.get(event.id)).unwrap(), event);
    assert_eq!(
        block_on(events.get(calsync_domain::ids::LocalEventId::new())),
        Err(Error::NotFound { what: "event" })
    );
    let listed = block_on(events.list(&EventQuery {
        entity: Some(EntityRef::new("deal", "42").unwrap()),
        limit: 10,
        ..EventQuery::default()
    }))
    .unwrap();
    assert_eq!(listed, vec![event.clone()]);
    assert!(
        block_on(events.list(&EventQuery {
            entity: Some(EntityRef::new("deal", "43").unwrap()),
            limit: 10,
            ..EventQuery::default()
        }))
        .unwrap()
        .is_empty()
    );
    assert_eq!(block_on(events.last_push_error(&event)).unwrap(), None);
}

#[test]
fn channels_are_listed_and_syncs_requested_through_the_services() {
    let w = World::new();
    let services = Services::new(
        w.store.clone(),
        w.google.clone(),
        w.clock.clone(),
        ServicesConfig::new(w.secret(), "https://calsync.example.com/webhooks/calendar"),
    );
    let first = block_on(services.channels.create(&w.cal)).unwrap();
    w.clock.advance(Duration::from_secs(1));
    let second = block_on(services.channels.create(&w.cal)).unwrap();
    block_on(services.channels.stop(&first.id)).unwrap();
    let all = block_on(services.channels.list(None)).unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![first.id.clone(), second.id.clone()]
    );
    let active = block_on(services.channels.list(Some(ChannelStatus::Active))).unwrap();
    assert_eq!(
        active.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![second.id]
    );

    // A sync request manages the calendar and marks it dirty, full if asked.
    let other = CalendarId::new("other@example.com").unwrap();
    block_on(services.calendars.request_sync(&other, true)).unwrap();
    assert!(block_on(w.store.get_calendar(&other)).unwrap().is_some());
    let state = block_on(w.store.sync_state(&other)).unwrap().unwrap();
    assert!(state.is_dirty() && state.full_sync_requested, "{state:?}");
}
