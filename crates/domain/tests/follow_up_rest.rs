//! The rest after a sync that found nothing while notifications kept
//! coming: when it applies, and that it is over when it says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use calsync_domain::event::{EventStatus, EventTime};
use calsync_domain::ids::{CalendarId, EventId};
use calsync_domain::ports::{Clock, SyncStateStore};
use calsync_domain::services::{DEFAULT_FOLLOW_UP_REST, SyncService};
use calsync_domain::sync::RemoteEvent;
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use chrono::{DateTime, Utc};
use futures_executor::block_on;
use support::GatedStates;
use tokio::sync::Semaphore;

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    states: Arc<GatedStates>,
    google: Arc<FakeCalendar>,
    cal: CalendarId,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::fixed();
        let store = MemoryStore::new();
        Self {
            google: FakeCalendar::new(clock.clone()),
            states: {
                let states = GatedStates::new(store.clone());
                states.gate.add_permits(Semaphore::MAX_PERMITS);
                states
            },
            store,
            clock,
            cal: CalendarId::new("team@example.com").unwrap(),
        }
    }

    fn sync(&self) -> SyncService {
        SyncService::new(
            self.google.clone(),
            self.store.clone(),
            self.states.clone(),
            self.clock.clone(),
        )
    }

    fn put_remote(&self, id: &str) {
        let start = self.clock.now() + chrono::Duration::hours(1);
        let event = RemoteEvent {
            status: EventStatus::Confirmed,
            summary: Some(format!("event {id}")),
            start: Some(EventTime::at(start, None)),
            end: Some(EventTime::at(start + chrono::Duration::hours(1), None)),
            ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
        };
        self.google.put(&self.cal, event);
    }

    /// Marks the calendar and runs the worker's round: `true` if it synced.
    fn notify_and_sync(&self, sync: &SyncService) -> bool {
        block_on(self.store.mark_dirty(&self.cal, false)).unwrap();
        let synced = block_on(sync.sync_next_dirty("w")).unwrap();
        synced.map(|report| report.unwrap()).is_some()
    }

    fn rest_until(&self) -> Option<DateTime<Utc>> {
        block_on(self.store.sync_state(&self.cal))
            .unwrap()
            .unwrap()
            .lease_until
    }
}

#[test]
fn a_sync_that_found_nothing_while_marked_again_rests_the_follow_up() {
    let w = World::new();
    let sync = w.sync();
    w.put_remote("first");
    w.states.mark_during_sync.store(true, Ordering::SeqCst);
    assert!(w.notify_and_sync(&sync), "the full sync");
    assert_eq!(w.rest_until(), None, "a full sync is followed up at once");
    assert!(w.notify_and_sync(&sync), "the follow-up, incremental");
    let rest_ends = w.clock.now() + chrono::Duration::from_std(DEFAULT_FOLLOW_UP_REST).unwrap();
    assert_eq!(
        w.rest_until(),
        Some(rest_ends),
        "found nothing, marked meanwhile: rests"
    );
    assert!(
        block_on(sync.sync_next_dirty("w")).unwrap().is_none(),
        "no worker takes it during the rest"
    );
    assert_eq!(
        block_on(sync.next_lease_in()).unwrap(),
        Some(DEFAULT_FOLLOW_UP_REST),
        "a worker with nothing to do waits exactly the rest"
    );

    w.clock.advance(DEFAULT_FOLLOW_UP_REST);
    w.put_remote("second");
    let lists = w.google.calls("list");
    assert!(block_on(sync.sync_next_dirty("w")).unwrap().is_some());
    assert_eq!(w.google.calls("list"), lists + 1);
    assert_eq!(w.rest_until(), None, "it found something: no rest");

    // Quiet: nothing marked during the sync, so no rest either.
    w.states.mark_during_sync.store(false, Ordering::SeqCst);
    assert!(w.notify_and_sync(&sync));
    assert!(
        !block_on(w.store.sync_state(&w.cal))
            .unwrap()
            .unwrap()
            .is_dirty()
    );
    assert_eq!(w.rest_until(), None);
    assert!(
        w.notify_and_sync(&sync),
        "the first notification after a quiet spell syncs at once"
    );
}

#[test]
fn no_rest_when_it_is_set_to_zero() {
    let w = World::new();
    let sync = w.sync().with_follow_up_rest(Duration::ZERO);
    w.put_remote("first");
    w.states.mark_during_sync.store(true, Ordering::SeqCst);
    assert!(w.notify_and_sync(&sync));
    assert!(w.notify_and_sync(&sync));
    assert_eq!(w.rest_until(), None);
    assert!(
        block_on(sync.sync_next_dirty("w")).unwrap().is_some(),
        "the follow-up runs at once"
    );
}
