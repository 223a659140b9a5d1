//! The contract's cases, written once. All but those in [`sql`] see the
//! store only through the domain's port traits (`&Arc<dyn Store>`), so they
//! run on every backend, the domain's `MemoryStore` included.
#![allow(unused_imports)] // each case module takes what it needs from here

mod busy_reads;
mod calendars;
mod events;
mod failed_writes;
mod feed;
mod feed_reads;
mod grants;
mod health;
mod health_counters;
mod leases;
mod outbox;
mod secrets;
mod series;
mod sql;
mod sweep;
mod sync_pages;
mod webhooks;

pub use busy_reads::*;
pub use calendars::*;
pub use events::*;
pub use failed_writes::*;
pub use feed::*;
pub use feed_reads::*;
pub use grants::*;
pub use health::*;
pub use health_counters::*;
pub use leases::*;
pub use outbox::*;
pub use secrets::*;
pub use series::*;
pub use sql::*;
pub use sweep::*;
pub use sync_pages::*;
pub use webhooks::*;

use std::collections::HashSet;
use std::sync::Arc;

use calsync_domain::Error;
use calsync_domain::channel::{ChannelStatus, WatchChannel, WatchGrant};
use calsync_domain::event::{
    Attendee, Conference, ConferenceStatus, EntryPoint, Event, EventChanges, EventDetails,
    EventKind, EventStatus, EventTime, EventType, NewEvent, NewEventFields, Organizer, PushState,
    ReminderOverride, Reminders, TimeZoneName,
};
use calsync_domain::ids::{
    CalendarId, ChannelId, EntityRef, Etag, EventId, LocalEventId, ResourceId,
};
use calsync_domain::outbox::{IdempotencyKey, OutboxOp, OutboxState, PatchIntent, PushFailure};
use calsync_domain::ports::{EventQuery, PushReceipt, Store};
use calsync_domain::sync::{RemoteEvent, SyncCompletion, SyncOutcome, SyncPage, SyncRun};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

pub fn cal() -> CalendarId {
    CalendarId::new("team@example.com").unwrap()
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub fn remote(id: &str, etag: &str, hours_from_now: i64) -> RemoteEvent {
    let start = now() + Duration::hours(hours_from_now);
    RemoteEvent {
        status: EventStatus::Confirmed,
        summary: Some(format!("event {id}")),
        start: Some(EventTime::at(start, None)),
        end: Some(EventTime::at(start + Duration::hours(1), None)),
        etag: Some(Etag::new(etag).unwrap()),
        updated: Some(now() - Duration::hours(1)),
        ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
    }
}

pub fn page(events: Vec<RemoteEvent>, run: SyncRun, token: Option<&str>) -> SyncPage {
    SyncPage {
        calendar_id: cal(),
        run,
        events,
        completion: token.map(|t| SyncCompletion {
            next_sync_token: t.into(),
        }),
        retention_cutoff: None,
        now: now(),
    }
}

pub fn full(run: &str) -> SyncRun {
    SyncRun::Full {
        run_id: run.into(),
        started_at: now(),
    }
}

pub fn local_event(entity_id: &str, start: DateTime<Utc>) -> Event {
    NewEvent::new(
        cal(),
        EntityRef::new("deal", entity_id).unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + Duration::hours(1), None),
        NewEventFields {
            summary: Some("local".into()),
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(now())
}

pub async fn mirrored(store: &Arc<dyn Store>, id: &str) -> Option<Event> {
    store
        .find_by_google_id(&cal(), &EventId::new(id).unwrap())
        .await
        .unwrap()
}

pub async fn all_events(store: &Arc<dyn Store>) -> Vec<Event> {
    store
        .list_events(&EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

pub async fn token(store: &Arc<dyn Store>) -> Option<String> {
    store
        .sync_state(&cal())
        .await
        .unwrap()
        .and_then(|s| s.sync_token)
}
