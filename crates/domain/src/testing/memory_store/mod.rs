//! [`MemoryStore`]: every storage port in memory, one module per port.

mod calendars;
mod channels;
mod events;
mod feed;
mod grants;
mod health;
mod outbox;
mod records;
mod secrets;
mod sync_state;
mod webhooks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

use super::lock;
use crate::calendar::ManagedCalendar;
use crate::channel::WatchChannel;
use crate::error::{Error, Result};
use crate::event::{Event, EventTime};
use crate::ids::{CalendarId, ChannelId, EventId, LocalEventId};
use crate::outbox::{IdempotencyRecord, OutboxEntry, OutboxOp, OutboxState};
use crate::sync::SyncState;
use crate::webhook::DriveNotification;

/// Both SQL stores keep microseconds, and so does this one: what is read
/// back is what was written rounded down to them, and times given to
/// compare with are rounded alike (optimistic locking relies on it).
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

fn stored_time(time: &EventTime) -> EventTime {
    match time {
        EventTime::At { at, time_zone } => EventTime::At {
            at: micros(*at),
            time_zone: time_zone.clone(),
        },
        all_day @ EventTime::AllDay { .. } => all_day.clone(),
    }
}

/// The event as a SQL row holds it. (`original_start` is kept whole: the
/// SQL stores keep it as JSON.)
fn stored(event: &Event) -> Event {
    Event {
        start: stored_time(&event.start),
        end: stored_time(&event.end),
        google_updated: event.google_updated.map(micros),
        pushed_at: event.pushed_at.map(micros),
        created_at: micros(event.created_at),
        updated_at: micros(event.updated_at),
        ..event.clone()
    }
}

#[derive(Debug, Clone)]
struct StoredOutbox {
    entry: OutboxEntry,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct StoreState {
    events: HashMap<LocalEventId, Event>,
    seen_in_run: HashMap<LocalEventId, String>,
    by_google_id: HashMap<(CalendarId, EventId), LocalEventId>,
    calendars: BTreeMap<CalendarId, ManagedCalendar>,
    sync_states: BTreeMap<CalendarId, SyncState>,
    /// Calendars whose dirty mark is the safety sweep's (leased last).
    swept: HashSet<CalendarId>,
    channels: HashMap<ChannelId, WatchChannel>,
    outbox: BTreeMap<i64, StoredOutbox>,
    next_outbox_id: i64,
    ticks: HashSet<(String, DateTime<Utc>)>,
    drive: Vec<(DriveNotification, DateTime<Utc>)>,
    idempotency: HashMap<String, IdempotencyRecord>,
    /// The change feed, oldest first (`seq` increasing, never reused).
    changes: Vec<crate::feed::Change>,
    last_change_seq: u64,
    purged_through: u64,
    webhooks: BTreeMap<String, webhooks::StoredWebhook>,
    webhook_attempts: Vec<crate::feed::subscription::DeliveryAttempt>,
    grants: BTreeMap<String, crate::grant::Grant>,
    /// Refresh claims by grant id: `(holder, until)`.
    grant_refreshes: HashMap<String, (String, DateTime<Utc>)>,
    /// Pending authorizations by `state`.
    authorizations: HashMap<String, crate::grant::PendingAuthorization>,
}

impl StoreState {
    fn state_mut(&mut self, calendar_id: &CalendarId) -> &mut SyncState {
        self.sync_states
            .entry(calendar_id.clone())
            .or_insert_with(|| SyncState::new(calendar_id.clone()))
    }

    fn insert_with_outbox(&mut self, event: &Event, op: OutboxOp) -> Result<OutboxEntry> {
        let key = (event.calendar_id.clone(), event.google_event_id.clone());
        if self.by_google_id.contains_key(&key) || self.events.contains_key(&event.id) {
            return Err(Error::Duplicate { what: "event" });
        }
        self.by_google_id.insert(key, event.id);
        self.events.insert(event.id, stored(event));
        self.record_event(None, event.id, crate::feed::Origin::Api, event.updated_at);
        Ok(self.push_outbox(event, op))
    }

    /// As the Diesel store: a cancelled master cancels its live exceptions
    /// (each recorded in the feed as cancelled by `origin`).
    fn cancel_exceptions_of(
        &mut self,
        master: &Event,
        now: DateTime<Utc>,
        origin: crate::feed::Origin,
    ) {
        if !master.is_master() || master.status != crate::event::EventStatus::Cancelled {
            return;
        }
        let mut cancelled = Vec::new();
        for event in self.events.values_mut() {
            if event.calendar_id == master.calendar_id
                && event.recurring_event_id.as_ref() == Some(&master.google_event_id)
                && event.status != crate::event::EventStatus::Cancelled
            {
                event.status = crate::event::EventStatus::Cancelled;
                event.updated_at = micros(now);
                cancelled.push(crate::feed::cancellation(event, origin, now));
            }
        }
        self.record(cancelled);
    }

    /// Appends changes to the feed, as the SQL stores do at the end of the
    /// transaction that makes them.
    /// The event's dead-lettered rows after its last row that went
    /// through, oldest first (as the SQL stores pick them).
    fn unresolved_dead_letters(&self, event_id: LocalEventId) -> Vec<i64> {
        let rows = || {
            self.outbox
                .values()
                .filter(|r| r.entry.event_id == event_id)
        };
        let last_done = rows()
            .filter(|r| r.entry.state == OutboxState::Done)
            .map(|r| r.entry.id)
            .max()
            .unwrap_or(0);
        rows()
            .filter(|r| r.entry.state == OutboxState::DeadLetter && r.entry.id > last_done)
            .map(|r| r.entry.id)
            .collect()
    }

    fn record(&mut self, changes: Vec<crate::feed::NewChange>) {
        for mut change in changes {
            change.occurred_at = micros(change.occurred_at);
            if let Some(event) = change.event.as_mut() {
                **event = stored(event);
            }
            self.last_change_seq += 1;
            self.changes.push(crate::feed::Change {
                cursor: crate::feed::Cursor::from_seq(self.last_change_seq),
                change,
            });
        }
    }

    /// Records what writing the event `id` changed since `before`.
    fn record_event(
        &mut self,
        before: Option<&Event>,
        id: LocalEventId,
        origin: crate::feed::Origin,
        at: DateTime<Utc>,
    ) {
        if let Some(after) = self.events.get(&id) {
            let changes = crate::feed::event_changes(before, after, origin, at);
            self.record(changes);
        }
    }

    fn push_outbox(&mut self, event: &Event, op: OutboxOp) -> OutboxEntry {
        self.next_outbox_id += 1;
        let entry = OutboxEntry {
            id: self.next_outbox_id,
            event_id: event.id,
            calendar_id: event.calendar_id.clone(),
            google_event_id: event.google_event_id.clone(),
            op,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt_at: micros(event.updated_at),
            last_error: None,
            last_failure: None,
            created_at: micros(event.updated_at),
        };
        self.outbox.insert(
            entry.id,
            StoredOutbox {
                entry: entry.clone(),
                lease_owner: None,
                lease_until: None,
            },
        );
        entry
    }

    fn has_pending_outbox(&self, event_id: LocalEventId, except: i64) -> bool {
        self.outbox.values().any(|row| {
            row.entry.event_id == event_id
                && row.entry.id != except
                && row.entry.state == OutboxState::Pending
        })
    }

    fn leased_outbox(&mut self, entry: &OutboxEntry) -> Result<&mut StoredOutbox> {
        self.outbox.get_mut(&entry.id).ok_or(Error::NotFound {
            what: "outbox entry",
        })
    }
}

/// Every storage port in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// All events, for assertions.
    pub fn all_events(&self) -> Vec<Event> {
        let mut events: Vec<Event> = lock(&self.state).events.values().cloned().collect();
        events.sort_by_key(|e| (e.start.sort_key(), e.id));
        events
    }
}
