//! The sync fetches page n+1 while page n is written, one page ahead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::{Arc, Mutex};

use calsync_domain::event::{EventStatus, EventTime};
use calsync_domain::ids::{CalendarId, EventId};
use calsync_domain::ports::Clock;
use calsync_domain::services::{SyncMode, SyncService};
use calsync_domain::sync::RemoteEvent;
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::{Error, ProviderErrorKind};
use futures_executor::block_on;

fn calendar_with(events: u32) -> (Arc<ManualClock>, Arc<FakeCalendar>, CalendarId) {
    let clock = ManualClock::fixed();
    let google = FakeCalendar::new(clock.clone());
    let calendar = CalendarId::new("pipeline@example.com").unwrap();
    for i in 0..events {
        let start = clock.now() + chrono::Duration::hours(i64::from(i));
        google.put(
            &calendar,
            RemoteEvent {
                status: EventStatus::Confirmed,
                start: Some(EventTime::at(start, None)),
                end: Some(EventTime::at(start + chrono::Duration::hours(1), None)),
                ..RemoteEvent::cancelled_stub(EventId::new(format!("pipe{i:04}")).unwrap())
            },
        );
    }
    (clock, google, calendar)
}

#[test]
fn the_next_page_is_fetched_while_a_page_is_applied_and_never_two_ahead() {
    let (clock, google, calendar) = calendar_with(7);
    let store = MemoryStore::new();
    // After page n is applied, how many pages had been listed.
    let listed_when_applied = Arc::new(Mutex::new(Vec::new()));
    let seen = listed_when_applied.clone();
    let probe = google.clone();
    let sync = SyncService::new(google.clone(), store.clone(), store.clone(), clock)
        .with_page_size(2)
        .with_progress(Arc::new(move |_| {
            seen.lock().unwrap().push(probe.calls("list"));
        }));
    let report = block_on(sync.sync_calendar(&calendar, SyncMode::Auto, None)).unwrap();
    assert_eq!((report.pages, report.outcome.inserted), (4, 7));
    // Pages 1-3 each had the following page listed by the time they were
    // written (sequential would be 1, 2, 3); the last has none to fetch.
    assert_eq!(*listed_when_applied.lock().unwrap(), vec![2, 3, 4, 4]);
    assert_eq!(store.all_events().len(), 7);
}

#[test]
fn a_failed_fetch_ahead_fails_the_run_after_the_page_before_it_is_written() {
    let (clock, google, calendar) = calendar_with(5);
    let store = MemoryStore::new();
    let sync =
        SyncService::new(google.clone(), store.clone(), store.clone(), clock).with_page_size(2);
    // Page one arrives; fetching page two (alongside writing page one) fails.
    google.fail_after(
        Some("list"),
        1,
        Error::provider(ProviderErrorKind::Transient, "backendError"),
    );
    assert!(block_on(sync.sync_calendar(&calendar, SyncMode::Auto, None)).is_err());
    assert_eq!(store.all_events().len(), 2, "page one was written");
    use calsync_domain::ports::SyncStateStore;
    let state = block_on(store.sync_state(&calendar)).unwrap();
    assert!(
        state.and_then(|s| s.sync_token).is_none(),
        "no token without the last page"
    );
}
