//! Writes racing other changes to the same event, as the chaos battery
//! met them.
//!
//! A local write racing the push of an earlier write: the write reads the
//! event, the push lands and records Google's new etag, then the write is
//! stored. The battery caught the mirror losing that etag, so the next
//! push's `If-Match` named one Google had already replaced, and a write
//! its caller had conditioned on the mirror's etag was settled as a
//! conflict: lost at both ends although nobody else had touched the event.
//!
//! A local delete racing an edit in Google: the edit is skipped by the
//! sync while the delete waits, the delete goes through on Google's new
//! etag, and the mirror must then take Google's copy of the deleted event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use calsync_domain::Result;
use calsync_domain::event::{
    Event, EventChanges, EventStatus, EventTime, NewEvent, NewEventFields, PushState,
};
use calsync_domain::ids::{CalendarId, EntityRef, EventId, LocalEventId};
use calsync_domain::outbox::{IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp};
use calsync_domain::ports::{Clock, EventQuery, EventStore};
use calsync_domain::services::{EventService, SyncMode, SyncService};
use calsync_domain::sync::{PageOutcome, SyncPage};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use chrono::{DateTime, Utc};
use futures_executor::block_on;

/// The in-memory store, except that one armed `update_with_outbox` first
/// lets the outbox worker push what is queued: the write has read the
/// event, and its transaction begins only after the push finished.
struct PushBeforeWrite {
    inner: Arc<MemoryStore>,
    worker: OnceLock<EventService>,
    armed: AtomicBool,
}

#[async_trait]
impl EventStore for PushBeforeWrite {
    async fn get_event(&self, id: LocalEventId) -> Result<Option<Event>> {
        self.inner.get_event(id).await
    }
    async fn find_by_google_id(
        &self,
        calendar_id: &CalendarId,
        google_event_id: &EventId,
    ) -> Result<Option<Event>> {
        self.inner
            .find_by_google_id(calendar_id, google_event_id)
            .await
    }
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        self.inner.list_events(query).await
    }
    async fn longest_span(
        &self,
        calendar_id: Option<&CalendarId>,
    ) -> Result<Option<chrono::Duration>> {
        self.inner.longest_span(calendar_id).await
    }
    async fn busy_candidates(
        &self,
        query: &calsync_domain::freebusy::rule::BusyQuery,
    ) -> Result<Vec<calsync_domain::freebusy::rule::BusyCandidate>> {
        self.inner.busy_candidates(query).await
    }
    async fn insert_with_outbox(&self, event: &Event, op: OutboxOp) -> Result<OutboxEntry> {
        self.inner.insert_with_outbox(event, op).await
    }
    async fn insert_idempotent(
        &self,
        event: &Event,
        op: OutboxOp,
        key: &IdempotencyKey,
    ) -> Result<OutboxEntry> {
        self.inner.insert_idempotent(event, op, key).await
    }
    async fn find_idempotency_key(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        self.inner.find_idempotency_key(key).await
    }
    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.purge_idempotency_keys(before).await
    }
    async fn update_with_outbox(
        &self,
        event: &Event,
        expected_updated_at: DateTime<Utc>,
        op: OutboxOp,
    ) -> Result<OutboxEntry> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let report = self.worker.get().unwrap().drain_outbox("racer", 10).await?;
            assert_eq!(report.pushed, 1, "the earlier write lands mid-write");
        }
        self.inner
            .update_with_outbox(event, expected_updated_at, op)
            .await
    }
    async fn apply_sync_page(&self, page: &SyncPage) -> Result<PageOutcome> {
        self.inner.apply_sync_page(page).await
    }
    async fn cancel_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner.cancel_ended_before(cutoff, limit, now).await
    }
}

struct World {
    clock: Arc<ManualClock>,
    google: Arc<FakeCalendar>,
    store: Arc<MemoryStore>,
    racing: Arc<PushBeforeWrite>,
    cal: CalendarId,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::fixed();
        let google = FakeCalendar::new(clock.clone());
        let store = MemoryStore::new();
        let racing = Arc::new(PushBeforeWrite {
            inner: store.clone(),
            worker: OnceLock::new(),
            armed: AtomicBool::new(false),
        });
        let world = Self {
            clock,
            google,
            store,
            racing,
            cal: CalendarId::new("team@example.com").unwrap(),
        };
        let worker = world.service(world.store.clone());
        assert!(world.racing.worker.set(worker).is_ok());
        world
    }

    fn service(&self, events: Arc<dyn EventStore>) -> EventService {
        EventService::new(
            self.google.clone(),
            events,
            self.store.clone(),
            self.clock.clone(),
        )
    }

    /// The service the application's writes go through.
    fn api(&self) -> EventService {
        self.service(self.racing.clone())
    }

    fn google_copy(&self, event: &Event) -> calsync_domain::sync::RemoteEvent {
        self.google
            .events(&self.cal)
            .into_iter()
            .find(|e| e.id == event.google_event_id)
            .unwrap()
    }

    fn sync(&self) {
        let sync = SyncService::new(
            self.google.clone(),
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
        );
        block_on(sync.sync_calendar(&self.cal, SyncMode::Auto, None)).unwrap();
    }

    fn mirrored(&self, id: LocalEventId) -> Event {
        block_on(self.store.get_event(id)).unwrap().unwrap()
    }

    /// An event created and pushed.
    fn pushed(&self) -> Event {
        let start = self.clock.now() + chrono::Duration::days(1);
        let new = NewEvent::new(
            self.cal.clone(),
            EntityRef::new("deal", "race").unwrap(),
            EventTime::at(start, None),
            EventTime::at(start + chrono::Duration::hours(1), None),
            NewEventFields {
                summary: Some("created".into()),
                ..NewEventFields::default()
            },
        )
        .unwrap();
        let (event, _) = block_on(self.api().create(new)).unwrap();
        assert_eq!(
            block_on(self.api().drain_outbox("w", 10)).unwrap().pushed,
            1
        );
        self.mirrored(event.id)
    }
}

fn rename(to: &str) -> EventChanges {
    EventChanges {
        summary: Some(Some(to.into())),
        ..EventChanges::default()
    }
}

#[test]
fn a_write_racing_an_earlier_push_keeps_the_etag_that_push_recorded() {
    let w = World::new();
    let event = w.pushed();
    let read_etag = event.etag.clone().unwrap();
    block_on(w.api().update(event.id, &rename("first"), None)).unwrap();

    // The caller read the etag before the first rename reached Google and
    // makes its write conditional on it; the mirror still holds that etag,
    // so the write is accepted. Meanwhile the first rename lands.
    w.racing.armed.store(true, Ordering::SeqCst);
    block_on(w.api().update(event.id, &rename("second"), Some(read_etag))).unwrap();
    assert!(!w.racing.armed.load(Ordering::SeqCst), "the race was run");

    let at_google = w.google_copy(&event);
    assert_eq!(at_google.summary.as_deref(), Some("first"));
    let mirrored = w.mirrored(event.id);
    assert_eq!(
        mirrored.etag, at_google.etag,
        "the mirror keeps the etag the landed push recorded"
    );
    assert_eq!(mirrored.summary.as_deref(), Some("second"));
    assert_eq!(mirrored.push_state, PushState::Pending);

    // The second rename goes out conditional on Google's current etag: it
    // lands, and is not settled as a conflict nobody caused.
    let report = block_on(w.api().drain_outbox("w", 10)).unwrap();
    assert_eq!((report.pushed, report.conflicts), (1, 0), "{report:?}");
    let at_google = w.google_copy(&event);
    assert_eq!(at_google.summary.as_deref(), Some("second"));
    let mirrored = w.mirrored(event.id);
    assert_eq!(mirrored.push_state, PushState::Synced);
    assert_eq!(mirrored.etag, at_google.etag);
}

#[test]
fn a_delete_racing_an_earlier_push_keeps_the_etag_that_push_recorded() {
    let w = World::new();
    let event = w.pushed();
    block_on(w.api().update(event.id, &rename("first"), None)).unwrap();
    w.racing.armed.store(true, Ordering::SeqCst);
    block_on(w.api().cancel(event.id, None)).unwrap();
    assert!(!w.racing.armed.load(Ordering::SeqCst), "the race was run");
    let at_google = w.google_copy(&event);
    assert_eq!(w.mirrored(event.id).etag, at_google.etag);

    // Deleted on the etag Google holds: one call, no 412 to recover from.
    let deletes_before = w.google.calls("delete");
    let gets_before = w.google.calls("get");
    assert_eq!(block_on(w.api().drain_outbox("w", 10)).unwrap().pushed, 1);
    assert_eq!(w.google.calls("delete") - deletes_before, 1);
    assert_eq!(w.google.calls("get"), gets_before);
    assert_eq!(w.google_copy(&event).status, EventStatus::Cancelled);
}

#[test]
fn a_delete_racing_an_edit_in_google_leaves_the_mirror_with_googles_deleted_copy() {
    let w = World::new();
    let event = w.pushed();
    w.sync();
    block_on(w.api().cancel(event.id, None)).unwrap();

    // Someone renames the event in Google; the sync leaves the row alone
    // while the local delete waits to be pushed.
    let mut renamed = w.google_copy(&event);
    renamed.summary = Some("renamed in Google".into());
    w.google.put(&w.cal, renamed);
    w.sync();
    assert_eq!(w.mirrored(event.id).summary.as_deref(), Some("created"));

    // The delete meets a 412, reads Google's copy and deletes it anyway.
    assert_eq!(block_on(w.api().drain_outbox("w", 10)).unwrap().pushed, 1);
    let at_google = w.google_copy(&event);
    assert_eq!(at_google.status, EventStatus::Cancelled);
    assert_eq!(at_google.summary.as_deref(), Some("renamed in Google"));

    // The mirror holds what Google keeps as the deleted event (listings
    // bring it only as a bare stub, so the delete's read is the one look).
    let check = |when: &str| {
        let mirrored = w.mirrored(event.id);
        assert_eq!(mirrored.status, EventStatus::Cancelled, "{when}");
        assert_eq!(mirrored.summary, at_google.summary, "{when}");
        assert_eq!(mirrored.push_state, PushState::Synced, "{when}");
        assert_eq!(mirrored.entity, event.entity, "{when}");
    };
    check("after the delete");
    w.sync();
    check("after the next sync");
}
