//! Many calendars under many principals, on the in-memory ports: managed
//! calendars, Google's quota and reachability errors on writes, the
//! attendee rule for service accounts, and the spread-out sweep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use calsync_domain::calendar::Subject;
use calsync_domain::event::{Attendee, EventTime, NewEvent, NewEventFields, PushState};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::outbox::{OutboxRetryPolicy, OutboxState};
use calsync_domain::ports::{CalendarStore, EventStore, OutboxStore, SyncStateStore};
use calsync_domain::services::{ActingAs, PushOutcome, Services, ServicesConfig};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_domain::{Error, ProviderErrorKind};
use chrono::Utc;
use futures_executor::block_on;

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    google: Arc<FakeCalendar>,
    services: Services,
}

fn world(attendees_need_delegation: bool) -> World {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let config = ServicesConfig {
        attendees_need_delegation,
        outbox_retry: OutboxRetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 2,
            ..OutboxRetryPolicy::default()
        },
        ..ServicesConfig::new(
            WebhookSecret::new("test-secret-0123456789").unwrap(),
            "https://calsync.example.com/webhooks/calendar",
        )
    };
    let services = Services::new(store.clone(), google.clone(), clock.clone(), config);
    World {
        clock,
        store,
        google,
        services,
    }
}

fn cal(id: &str) -> CalendarId {
    CalendarId::new(id).unwrap()
}

fn meeting(calendar: &CalendarId, attendees: Vec<Attendee>) -> NewEvent {
    let start = Utc::now() + chrono::Duration::days(2);
    NewEvent::new(
        calendar.clone(),
        EntityRef::new("deal", "7").unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        NewEventFields {
            attendees,
            ..NewEventFields::default()
        },
    )
    .unwrap()
}

impl World {
    fn push_once(&self) -> Vec<PushOutcome> {
        let entries = block_on(self.store.claim_outbox(
            "test",
            self.clock_now(),
            self.clock_now() + chrono::Duration::minutes(1),
            10,
        ))
        .unwrap();
        entries
            .iter()
            .map(|entry| block_on(self.services.events.push(entry)).unwrap())
            .collect()
    }

    fn clock_now(&self) -> chrono::DateTime<Utc> {
        use calsync_domain::ports::Clock;
        self.clock.now()
    }
}

#[test]
fn spent_quota_makes_a_write_wait_long_and_never_dead_letter() {
    let w = world(false);
    let calendar = cal("team@example.com");
    let (event, _) = block_on(w.services.events.create(meeting(&calendar, vec![]))).unwrap();
    for attempt in 0..4 {
        w.google.fail_next(
            Some("insert"),
            Error::provider(
                ProviderErrorKind::QuotaExhausted,
                "403 quotaExceeded: Calendar usage limits exceeded.",
            ),
        );
        let outcomes = w.push_once();
        assert!(
            matches!(outcomes.as_slice(), [PushOutcome::Retrying { .. }]),
            "attempt {attempt}: {outcomes:?}"
        );
        let rows = block_on(w.store.outbox_for_event(event.id)).unwrap();
        let wait = rows[0].next_attempt_at - w.clock_now();
        assert!(
            wait >= chrono::Duration::minutes(15) && wait <= chrono::Duration::minutes(30),
            "a long, jittered wait, not the 1 s base: {wait}"
        );
        w.clock.advance(Duration::from_secs(31 * 60));
    }
    // Past max_attempts (2), still pending: quota comes back.
    let rows = block_on(w.store.outbox_for_event(event.id)).unwrap();
    assert_eq!(rows[0].state, OutboxState::Pending);
    let (health, _) = block_on(w.services.health.report());
    assert!(
        health
            .issues
            .iter()
            .any(|i| i.code == "google_quota_exhausted"),
        "{:?}",
        health.issues
    );
    assert_eq!(w.push_once().len(), 1, "quota back: the write lands");
    let stored = block_on(w.store.get_event(event.id)).unwrap().unwrap();
    assert_eq!(stored.push_state, PushState::Synced);
}

#[test]
fn a_write_to_an_unreachable_calendar_marks_it_and_stays_queued() {
    let w = world(false);
    let calendar = cal("unshared@example.com");
    let (event, _) = block_on(w.services.events.create(meeting(&calendar, vec![]))).unwrap();
    assert_eq!(w.push_once().len(), 1);
    w.google.set_unreachable(&calendar, true);
    let (_, _) = block_on(w.services.events.cancel(event.id, None)).unwrap();
    let outcomes = w.push_once();
    assert!(
        matches!(outcomes.as_slice(), [PushOutcome::Retrying { .. }]),
        "the delete waits instead of counting the event gone: {outcomes:?}"
    );
    let state = block_on(w.store.sync_state(&calendar)).unwrap().unwrap();
    assert!(state.reconnect_required, "{state:?}");
    let rows = block_on(w.store.outbox_for_event(event.id)).unwrap();
    assert_eq!(rows.last().unwrap().state, OutboxState::Pending);
    assert_eq!(
        w.google.events(&calendar).len(),
        1,
        "the event still lives at Google"
    );
    // Reachable again: the queued delete goes through.
    w.google.set_unreachable(&calendar, false);
    w.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(w.push_once().len(), 1);
    let remote = &w.google.events(&calendar)[0];
    assert_eq!(remote.status, calsync_domain::event::EventStatus::Cancelled);
}

#[test]
fn attendees_need_a_subject_when_calsync_is_a_service_account() {
    let w = world(true);
    let plain = cal("room@example.com");
    let guest = vec![Attendee::new("guest@example.com").unwrap()];
    let err = block_on(w.services.events.create(meeting(&plain, guest.clone()))).unwrap_err();
    assert!(
        matches!(&err, Error::Unprocessable { field: "attendees", reason } if reason.contains("CALSYNC_GOOGLE_SUBJECT")),
        "{err}"
    );
    assert!(block_on(w.services.events.create(meeting(&plain, vec![]))).is_ok());
    let delegated = cal("ann@example.com");
    block_on(w.services.calendars.add(
        &delegated,
        ActingAs::Subject(Subject::new("ann@example.com").unwrap()),
    ))
    .unwrap();
    assert!(block_on(w.services.events.create(meeting(&delegated, guest))).is_ok());
}

#[test]
fn calendars_are_added_watched_listed_changed_and_removed() {
    let w = world(false);
    let a = cal("a@example.com");
    let (added, channel) = block_on(w.services.calendars.add(
        &a,
        ActingAs::Subject(Subject::new("a@example.com").unwrap()),
    ))
    .unwrap();
    assert_eq!(
        added.subject.as_ref().map(Subject::as_str),
        Some("a@example.com")
    );
    assert_eq!(channel.calendar_id, a);
    let state = block_on(w.store.sync_state(&a)).unwrap().unwrap();
    assert!(state.full_sync_requested, "its first sync is a full one");
    let listed = block_on(w.services.calendars.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].health.as_ref().unwrap().active_channels, 1);

    let changed = block_on(w.services.calendars.set_subject(&a, ActingAs::Default)).unwrap();
    assert_eq!(changed.subject, None);

    // Google does not show this one: nothing is kept.
    let hidden = cal("hidden@example.com");
    w.google.set_unreachable(&hidden, true);
    assert!(block_on(w.services.calendars.add(&hidden, ActingAs::Default)).is_err());
    assert!(block_on(w.store.get_calendar(&hidden)).unwrap().is_none());

    block_on(w.services.calendars.remove(&a)).unwrap();
    assert!(block_on(w.store.list_calendars()).unwrap().is_empty());
    assert!(
        w.google.active_channels().is_empty(),
        "its channel is stopped"
    );
    // No longer swept.
    assert_eq!(block_on(w.services.sync.mark_all_dirty()).unwrap(), 0);
}

#[test]
fn the_sweep_covers_every_calendar_once_across_its_slices() {
    let w = world(false);
    let calendars: Vec<CalendarId> = (0..60).map(|i| cal(&format!("c{i}@example.com"))).collect();
    for calendar in &calendars {
        block_on(w.services.calendars.ensure(calendar)).unwrap();
        block_on(w.store.mark_dirty(calendar, false)).unwrap();
    }
    // Synced (clean): the sweep marks only calendars with no mark.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    while let Some(lease) = block_on(w.store.lease_dirty("t", later, later)).unwrap() {
        let synced = calsync_domain::sync::SyncOutcome::Succeeded {
            full: lease.full_sync_requested,
            rest_until: None,
        };
        block_on(w.store.release_lease(&lease, &synced, later)).unwrap();
    }
    let slices = 15;
    let mut total = 0;
    let mut busiest = 0;
    for slice in 0..slices {
        let marked = block_on(w.services.sync.mark_slice_dirty(slice, slices)).unwrap();
        total += marked;
        busiest = busiest.max(marked);
    }
    assert_eq!(total, calendars.len(), "each calendar in exactly one slice");
    assert!(
        busiest < calendars.len() / 2,
        "spread, not lumped: {busiest}"
    );
    let slices_seen: HashSet<u32> = calendars
        .iter()
        .map(|c| calsync_domain::services::sweep_slice(c, slices))
        .collect();
    assert!(slices_seen.len() > 5);
}
