//! In-memory implementations of every port, for unit tests (calsync's own
//! and embedders'). They follow the same contracts as the real adapters:
//! [`MemoryStore`] applies pages atomically and leases like the SQL stores,
//! [`FakeCalendar`] pages, tokens and fails like Google.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::channel::{ChannelStatus, WatchChannel, WatchGrant, WatchRequest};
use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Event, EventStatus, PushState};
use crate::health::{CalendarHealth, HealthStats};
use crate::ids::{CalendarId, ChannelId, Etag, EventId, LocalEventId, ResourceId};
use crate::outbox::{IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp, OutboxState};
use crate::ports::{
    CalendarProvider, ChannelStore, Clock, DriveNotificationStore, EventQuery, EventStore,
    HealthStore, JobTickStore, OutboxStore, PatchCall, PushReceipt, SyncStateStore,
};
use crate::sync::{
    ApplyDecision, ChangePage, ListRequest, PageOutcome, RemoteEvent, SyncLease, SyncOutcome,
    SyncPage, SyncRun, SyncState, decide,
};
use crate::webhook::DriveNotification;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(start)))
    }

    /// Starts at 2026-01-01T00:00:00Z.
    pub fn fixed() -> Arc<Self> {
        Self::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = lock(&self.0);
        *now = crate::later(*now, by);
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.0) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
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
    sync_states: BTreeMap<CalendarId, SyncState>,
    channels: HashMap<ChannelId, WatchChannel>,
    outbox: BTreeMap<i64, StoredOutbox>,
    next_outbox_id: i64,
    ticks: HashSet<(String, DateTime<Utc>)>,
    drive: Vec<(DriveNotification, DateTime<Utc>)>,
    idempotency: HashMap<String, IdempotencyRecord>,
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
        self.events.insert(event.id, event.clone());
        Ok(self.push_outbox(event, op))
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
            next_attempt_at: event.updated_at,
            last_error: None,
            created_at: event.updated_at,
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

#[async_trait]
impl EventStore for MemoryStore {
    async fn get_event(&self, id: LocalEventId) -> Result<Option<Event>> {
        Ok(lock(&self.state).events.get(&id).cloned())
    }

    async fn find_by_google_id(
        &self,
        calendar_id: &CalendarId,
        google_event_id: &EventId,
    ) -> Result<Option<Event>> {
        let state = lock(&self.state);
        Ok(state
            .by_google_id
            .get(&(calendar_id.clone(), google_event_id.clone()))
            .and_then(|id| state.events.get(id))
            .cloned())
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let state = lock(&self.state);
        let mut events: Vec<&Event> = state
            .events
            .values()
            .filter(|e| {
                query
                    .calendar_id
                    .as_ref()
                    .is_none_or(|c| *c == e.calendar_id)
            })
            .filter(|e| {
                query
                    .entity
                    .as_ref()
                    .is_none_or(|x| e.entity.as_ref() == Some(x))
            })
            .filter(|e| query.status.is_none_or(|s| s == e.status))
            .filter(|e| query.ends_after.is_none_or(|t| e.end.sort_key() > t))
            .filter(|e| query.starts_before.is_none_or(|t| e.start.sort_key() < t))
            .filter(|e| {
                query
                    .after
                    .is_none_or(|after| (e.start.sort_key(), e.id) > after)
            })
            .collect();
        events.sort_by_key(|e| (e.start.sort_key(), e.id));
        Ok(events
            .into_iter()
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn insert_with_outbox(&self, event: &Event, op: OutboxOp) -> Result<OutboxEntry> {
        lock(&self.state).insert_with_outbox(event, op)
    }

    async fn insert_idempotent(
        &self,
        event: &Event,
        op: OutboxOp,
        key: &IdempotencyKey,
    ) -> Result<OutboxEntry> {
        let mut state = lock(&self.state);
        if state.idempotency.contains_key(key.key()) {
            return Err(Error::Duplicate {
                what: "idempotency key",
            });
        }
        let entry = state.insert_with_outbox(event, op)?;
        state.idempotency.insert(
            key.key().to_owned(),
            IdempotencyRecord {
                fingerprint: key.fingerprint().to_owned(),
                event_id: event.id,
                created_at: event.created_at,
            },
        );
        Ok(entry)
    }

    async fn find_idempotency_key(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(lock(&self.state).idempotency.get(key).cloned())
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let count = state.idempotency.len();
        state
            .idempotency
            .retain(|_, record| record.created_at >= before);
        Ok((count - state.idempotency.len()) as u64)
    }

    async fn update_with_outbox(
        &self,
        event: &Event,
        expected_updated_at: DateTime<Utc>,
        op: OutboxOp,
    ) -> Result<OutboxEntry> {
        let mut state = lock(&self.state);
        let current = state
            .events
            .get(&event.id)
            .ok_or(Error::NotFound { what: "event" })?;
        if current.updated_at != expected_updated_at {
            return Err(Error::PreconditionFailed {
                reason: "the event was changed concurrently".into(),
            });
        }
        state.events.insert(event.id, event.clone());
        Ok(state.push_outbox(event, op))
    }

    async fn apply_sync_page(&self, page: &SyncPage) -> Result<PageOutcome> {
        let mut state = lock(&self.state);
        let mut outcome = PageOutcome::default();
        for incoming in &page.events {
            let key = (page.calendar_id.clone(), incoming.id.clone());
            let existing = state
                .by_google_id
                .get(&key)
                .and_then(|id| state.events.get(id));
            let decision = decide(
                existing,
                incoming,
                &page.calendar_id,
                page.retention_cutoff,
                page.now,
            );
            outcome.count(&decision);
            let stored_id = match decision {
                ApplyDecision::Insert(event)
                | ApplyDecision::Update(event)
                | ApplyDecision::Cancel(event) => {
                    let id = event.id;
                    state.by_google_id.insert(key, id);
                    state.events.insert(id, *event);
                    Some(id)
                }
                ApplyDecision::Unchanged | ApplyDecision::Skip(_) => existing.map(|e| e.id),
            };
            if let (SyncRun::Full { run_id, .. }, Some(id)) = (&page.run, stored_id) {
                state.seen_in_run.insert(id, run_id.clone());
            }
        }
        if let Some(completion) = &page.completion {
            if let SyncRun::Full { run_id, started_at } = &page.run {
                let unseen: Vec<LocalEventId> = state
                    .events
                    .values()
                    .filter(|e| {
                        e.calendar_id == page.calendar_id
                            && e.status != EventStatus::Cancelled
                            && e.push_state != PushState::Pending
                            && e.created_at <= *started_at
                            && e.pushed_at.is_none_or(|at| at <= *started_at)
                            && state.seen_in_run.get(&e.id) != Some(run_id)
                    })
                    .map(|e| e.id)
                    .collect();
                for id in unseen {
                    if let Some(event) = state.events.get_mut(&id) {
                        event.status = EventStatus::Cancelled;
                        event.updated_at = page.now;
                        outcome.swept += 1;
                    }
                }
            }
            let sync_state = state.state_mut(&page.calendar_id);
            sync_state.sync_token = Some(completion.next_sync_token.clone());
            match page.run {
                SyncRun::Full { .. } => sync_state.last_full_sync_at = Some(page.now),
                SyncRun::Incremental => sync_state.last_incremental_sync_at = Some(page.now),
            }
        }
        Ok(outcome)
    }

    async fn cancel_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut state = lock(&self.state);
        let mut due: Vec<&mut Event> = state
            .events
            .values_mut()
            .filter(|e| {
                e.status != EventStatus::Cancelled
                    && e.push_state != PushState::Pending
                    && e.ended_before(cutoff)
            })
            .collect();
        due.sort_by_key(|e| e.end.sort_key());
        let mut count = 0;
        for event in due.into_iter().take(limit as usize) {
            event.status = EventStatus::Cancelled;
            event.updated_at = now;
            count += 1;
        }
        Ok(count)
    }
}

#[async_trait]
impl SyncStateStore for MemoryStore {
    async fn sync_state(&self, calendar_id: &CalendarId) -> Result<Option<SyncState>> {
        Ok(lock(&self.state).sync_states.get(calendar_id).cloned())
    }

    async fn list_sync_states(&self) -> Result<Vec<SyncState>> {
        Ok(lock(&self.state).sync_states.values().cloned().collect())
    }

    async fn mark_dirty(&self, calendar_id: &CalendarId, full: bool) -> Result<()> {
        let mut state = lock(&self.state);
        let sync_state = state.state_mut(calendar_id);
        sync_state.dirty_seq += 1;
        sync_state.full_sync_requested |= full;
        Ok(())
    }

    async fn lease_dirty(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        let mut state = lock(&self.state);
        let candidate = state
            .sync_states
            .values_mut()
            .find(|s| s.is_dirty() && !s.reconnect_required && s.lease_available(now));
        Ok(candidate.map(|s| take_lease(s, owner, until)))
    }

    async fn lease_calendar(
        &self,
        calendar_id: &CalendarId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        let mut state = lock(&self.state);
        let sync_state = state.state_mut(calendar_id);
        Ok(sync_state
            .lease_available(now)
            .then(|| take_lease(sync_state, owner, until)))
    }

    async fn extend_lease(&self, lease: &SyncLease, until: DateTime<Utc>) -> Result<bool> {
        let mut state = lock(&self.state);
        let sync_state = state.state_mut(&lease.calendar_id);
        if sync_state.lease_owner.as_deref() != Some(lease.owner.as_str()) {
            return Ok(false);
        }
        sync_state.lease_until = Some(until);
        Ok(true)
    }

    async fn release_lease(
        &self,
        lease: &SyncLease,
        outcome: &SyncOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let s = state.state_mut(&lease.calendar_id);
        if s.lease_owner.as_deref() != Some(lease.owner.as_str()) {
            return Ok(());
        }
        s.lease_owner = None;
        s.lease_until = None;
        s.lease_seen_seq = None;
        match outcome {
            SyncOutcome::Succeeded { full } => {
                s.clean_seq = s.clean_seq.max(lease.seen_seq);
                if *full {
                    s.full_sync_requested = false;
                }
                s.last_status = Some("ok".into());
                s.error_count = 0;
            }
            SyncOutcome::Failed {
                error,
                reconnect_required,
            } => {
                s.last_status = Some("error".into());
                s.last_error = Some(error.clone());
                s.last_error_at = Some(now);
                s.error_count += 1;
                s.reconnect_required |= reconnect_required;
                s.lease_until = Some(crate::later(now, SyncState::retry_delay(s.error_count)));
            }
            SyncOutcome::Abandoned => {}
        }
        Ok(())
    }

    async fn mark_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let s = state.state_mut(calendar_id);
        s.reconnect_required = true;
        s.last_status = Some("error".into());
        s.last_error = Some(error.to_owned());
        s.last_error_at = Some(now);
        s.error_count += 1;
        Ok(())
    }

    async fn clear_reconnect_required(&self, calendar_id: &CalendarId) -> Result<()> {
        let mut state = lock(&self.state);
        let s = state.state_mut(calendar_id);
        s.reconnect_required = false;
        s.error_count = 0;
        s.full_sync_requested = true;
        Ok(())
    }
}

fn take_lease(state: &mut SyncState, owner: &str, until: DateTime<Utc>) -> SyncLease {
    state.lease_owner = Some(owner.to_owned());
    state.lease_until = Some(until);
    state.lease_seen_seq = Some(state.dirty_seq);
    SyncLease {
        calendar_id: state.calendar_id.clone(),
        owner: owner.to_owned(),
        until,
        seen_seq: state.dirty_seq,
        full_sync_requested: state.full_sync_requested,
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn insert_channel(&self, channel: &WatchChannel) -> Result<()> {
        let mut state = lock(&self.state);
        if state.channels.contains_key(&channel.id) {
            return Err(Error::Duplicate { what: "channel" });
        }
        state.channels.insert(channel.id.clone(), channel.clone());
        Ok(())
    }

    async fn get_channel(&self, id: &ChannelId) -> Result<Option<WatchChannel>> {
        Ok(lock(&self.state).channels.get(id).cloned())
    }

    async fn list_channels(&self, status: Option<ChannelStatus>) -> Result<Vec<WatchChannel>> {
        let mut channels: Vec<WatchChannel> = lock(&self.state)
            .channels
            .values()
            .filter(|c| status.is_none_or(|s| s == c.status))
            .cloned()
            .collect();
        channels.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(channels)
    }

    async fn activate_channel(&self, id: &ChannelId, grant: &WatchGrant) -> Result<()> {
        let mut state = lock(&self.state);
        let channel = state
            .channels
            .get_mut(id)
            .ok_or(Error::NotFound { what: "channel" })?;
        channel.resource_id = Some(grant.resource_id.clone());
        channel.expiration = grant.expiration;
        channel.status = ChannelStatus::Active;
        Ok(())
    }

    async fn set_channel_status(&self, id: &ChannelId, status: ChannelStatus) -> Result<()> {
        let mut state = lock(&self.state);
        let channel = state
            .channels
            .get_mut(id)
            .ok_or(Error::NotFound { what: "channel" })?;
        channel.status = status;
        Ok(())
    }

    async fn record_notification(
        &self,
        id: &ChannelId,
        message_number: u64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let channel = state
            .channels
            .get_mut(id)
            .ok_or(Error::NotFound { what: "channel" })?;
        channel.last_notification_at = Some(at);
        channel.last_message_number = Some(
            channel
                .last_message_number
                .map_or(message_number, |n| n.max(message_number)),
        );
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let mut state = lock(&self.state);
        let mut blocked: HashSet<LocalEventId> = HashSet::new();
        let mut claimed = Vec::new();
        for row in state.outbox.values_mut() {
            if row.entry.state != OutboxState::Pending {
                continue;
            }
            // Only the oldest pending row of an event may go.
            if !blocked.insert(row.entry.event_id) {
                continue;
            }
            let lease_free = row.lease_until.is_none_or(|until| until <= now);
            if claimed.len() < limit as usize && row.entry.next_attempt_at <= now && lease_free {
                row.lease_owner = Some(owner.to_owned());
                row.lease_until = Some(lease_until);
                claimed.push(row.entry.clone());
            }
        }
        Ok(claimed)
    }

    async fn complete_outbox(&self, entry: &OutboxEntry, receipt: &PushReceipt) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.state = OutboxState::Done;
        row.entry.attempts += 1;
        row.lease_owner = None;
        row.lease_until = None;
        let more_pending = state.has_pending_outbox(entry.event_id, entry.id);
        if let Some(event) = state.events.get_mut(&entry.event_id) {
            if !more_pending
                && let Some(taken) = receipt
                    .remote
                    .as_ref()
                    .and_then(|remote| remote.onto(event, event.updated_at))
            {
                *event = taken;
            }
            if receipt.etag.is_some() {
                event.etag.clone_from(&receipt.etag);
            }
            if receipt.updated.is_some() {
                event.google_updated = receipt.updated;
            }
            if receipt.html_link.is_some() {
                event.html_link.clone_from(&receipt.html_link);
            }
            event.pushed_at = Some(receipt.pushed_at);
            event.push_note = None;
            if !more_pending {
                event.push_state = PushState::Synced;
            }
        }
        Ok(())
    }

    async fn settle_outbox(&self, entry: &OutboxEntry, event: &Event, note: &str) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.state = OutboxState::Done;
        row.entry.attempts += 1;
        row.entry.last_error = Some(note.to_owned());
        row.lease_owner = None;
        row.lease_until = None;
        let more_pending = state.has_pending_outbox(entry.event_id, entry.id);
        let mut settled = event.clone();
        if more_pending {
            settled.push_state = PushState::Pending;
        }
        state.events.insert(settled.id, settled);
        Ok(())
    }

    async fn extend_outbox_leases(
        &self,
        owner: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<u64> {
        let mut state = lock(&self.state);
        let mut held = 0;
        for id in ids {
            if let Some(row) = state.outbox.get_mut(id)
                && row.entry.state == OutboxState::Pending
                && row.lease_owner.as_deref() == Some(owner)
            {
                row.lease_until = Some(until);
                held += 1;
            }
        }
        Ok(held)
    }

    async fn retry_outbox(
        &self,
        entry: &OutboxEntry,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.attempts += 1;
        row.entry.last_error = Some(error.to_owned());
        row.entry.next_attempt_at = next_attempt_at;
        row.lease_owner = None;
        row.lease_until = None;
        Ok(())
    }

    async fn dead_letter_outbox(&self, entry: &OutboxEntry, error: &str) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.attempts += 1;
        row.entry.state = OutboxState::DeadLetter;
        row.entry.last_error = Some(error.to_owned());
        row.lease_owner = None;
        row.lease_until = None;
        if let Some(event) = state.events.get_mut(&entry.event_id) {
            event.push_state = PushState::Failed;
        }
        Ok(())
    }

    async fn outbox_for_event(&self, event_id: LocalEventId) -> Result<Vec<OutboxEntry>> {
        Ok(lock(&self.state)
            .outbox
            .values()
            .filter(|row| row.entry.event_id == event_id)
            .map(|row| row.entry.clone())
            .collect())
    }
}

#[async_trait]
impl JobTickStore for MemoryStore {
    async fn claim_tick(
        &self,
        job: &str,
        scheduled_for: DateTime<Utc>,
        _owner: &str,
    ) -> Result<bool> {
        Ok(lock(&self.state)
            .ticks
            .insert((job.to_owned(), scheduled_for)))
    }
}

#[async_trait]
impl DriveNotificationStore for MemoryStore {
    async fn record_drive_notification(
        &self,
        notification: &DriveNotification,
        received_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut recorded = notification.clone();
        recorded.envelope.token = None; // never stored
        let mut state = lock(&self.state);
        let seen = state.drive.iter().any(|(n, _)| {
            n.envelope.channel_id == recorded.envelope.channel_id
                && n.envelope.message_number == recorded.envelope.message_number
        });
        if !seen {
            state.drive.push((recorded, received_at));
        }
        Ok(!seen)
    }

    async fn purge_drive_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let kept_before = state.drive.len();
        state.drive.retain(|(_, at)| *at >= before);
        Ok((kept_before - state.drive.len()) as u64)
    }

    async fn recent_drive_notifications(
        &self,
        limit: u32,
    ) -> Result<Vec<(DriveNotification, DateTime<Utc>)>> {
        Ok(lock(&self.state)
            .drive
            .iter()
            .rev()
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl HealthStore for MemoryStore {
    async fn check_ready(&self) -> Result<()> {
        Ok(())
    }

    async fn health_stats(
        &self,
        now: DateTime<Utc>,
        expiring_before: DateTime<Utc>,
    ) -> Result<HealthStats> {
        let state = lock(&self.state);
        let lapsed = state
            .channels
            .values()
            .filter(|c| c.status == ChannelStatus::Active && c.expiration <= now)
            .count() as u64;
        let active: Vec<&WatchChannel> = state
            .channels
            .values()
            .filter(|c| c.status == ChannelStatus::Active && c.expiration > now)
            .collect();
        let live_events: Vec<&Event> = state
            .events
            .values()
            .filter(|e| e.status != EventStatus::Cancelled)
            .collect();
        let pending: Vec<&StoredOutbox> = state
            .outbox
            .values()
            .filter(|r| r.entry.state == OutboxState::Pending)
            .collect();
        Ok(HealthStats {
            active_channels: active.len() as u64,
            channels_expiring_soon: active
                .iter()
                .filter(|c| c.expiration < expiring_before)
                .count() as u64,
            channels_lapsed: lapsed,
            next_channel_expiry: active.iter().map(|c| c.expiration).min(),
            last_sync_at: state
                .sync_states
                .values()
                .filter_map(SyncState::last_sync_at)
                .max(),
            calendars: state
                .sync_states
                .values()
                .map(|s| {
                    let channels = active
                        .iter()
                        .filter(|c| c.calendar_id == s.calendar_id)
                        .count();
                    CalendarHealth::new(s, channels as u64)
                })
                .collect(),
            active_events: live_events.len() as u64,
            oldest_event_start: live_events.iter().map(|e| e.start.sort_key()).min(),
            newest_event_start: live_events.iter().map(|e| e.start.sort_key()).max(),
            outbox_pending: pending.len() as u64,
            oldest_pending_outbox_at: pending.iter().map(|r| r.entry.created_at).min(),
            outbox_dead_letters: state
                .outbox
                .values()
                .filter(|r| r.entry.state == OutboxState::DeadLetter)
                .count() as u64,
            events_push_failed: state
                .events
                .values()
                .filter(|e| e.push_state == PushState::Failed)
                .count() as u64,
            events_push_conflicts: state
                .events
                .values()
                .filter(|e| e.push_state == PushState::Conflict)
                .count() as u64,
        })
    }
}

// ---------------------------------------------------------------------------
// A fake Google Calendar.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FakeEvent {
    event: RemoteEvent,
    seq: u64,
}

#[derive(Debug)]
struct Fault {
    op: Option<&'static str>,
    /// Matching calls to let through before failing.
    skip: u32,
    error: Error,
}

#[derive(Debug, Default)]
struct FakeState {
    calendars: HashMap<CalendarId, BTreeMap<EventId, FakeEvent>>,
    seq: u64,
    token_generation: u64,
    channels: HashMap<ChannelId, (CalendarId, ResourceId, WatchRequest)>,
    faults: VecDeque<Fault>,
    calls: HashMap<&'static str, u32>,
    max_ttl: Option<std::time::Duration>,
    /// Calendars this principal cannot reach: every call on them is a 404.
    unreachable: HashSet<CalendarId>,
}

/// Google Calendar in memory: sync tokens, paging, cancelled stubs, reserved
/// ids of deleted events, etags, `If-Match`, and injectable failures.
pub struct FakeCalendar {
    state: Mutex<FakeState>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FakeCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCalendar").finish_non_exhaustive()
    }
}

impl FakeCalendar {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            clock,
        })
    }

    /// Makes the next call (of operation `op`, or any if `None`) fail with `error`.
    /// Operations: list, get, insert, patch, delete, watch, stop.
    pub fn fail_next(&self, op: Option<&'static str>, error: Error) {
        self.fail_after(op, 0, error);
    }

    /// Lets `successes` matching calls through, then fails the next one.
    pub fn fail_after(&self, op: Option<&'static str>, successes: u32, error: Error) {
        lock(&self.state).faults.push_back(Fault {
            op,
            skip: successes,
            error,
        });
    }

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: &str) -> u32 {
        lock(&self.state).calls.get(op).copied().unwrap_or(0)
    }

    /// Caps granted channel lifetimes, as Google may.
    pub fn set_max_ttl(&self, ttl: std::time::Duration) {
        lock(&self.state).max_ttl = Some(ttl);
    }

    /// Makes the calendar unreachable for this principal (or reachable
    /// again): Google then answers 404 to every call on it.
    pub fn set_unreachable(&self, calendar_id: &CalendarId, unreachable: bool) {
        let mut state = lock(&self.state);
        if unreachable {
            state.unreachable.insert(calendar_id.clone());
        } else {
            state.unreachable.remove(calendar_id);
        }
    }

    /// Makes every outstanding sync token expire (the next use gets 410).
    pub fn invalidate_sync_tokens(&self) {
        lock(&self.state).token_generation += 1;
    }

    /// Creates or replaces an event as another Google user would.
    pub fn put(&self, calendar_id: &CalendarId, mut event: RemoteEvent) -> RemoteEvent {
        let mut state = lock(&self.state);
        state.seq += 1;
        let seq = state.seq;
        event.etag = Etag::new(format!("\"{seq}\"")).ok();
        event.updated = Some(self.clock.now());
        state
            .calendars
            .entry(calendar_id.clone())
            .or_default()
            .insert(
                event.id.clone(),
                FakeEvent {
                    event: event.clone(),
                    seq,
                },
            );
        event
    }

    /// Deletes an event as another Google user would.
    pub fn remove(&self, calendar_id: &CalendarId, id: &EventId) {
        let mut state = lock(&self.state);
        state.seq += 1;
        let seq = state.seq;
        let now = self.clock.now();
        if let Some(stored) = state
            .calendars
            .get_mut(calendar_id)
            .and_then(|c| c.get_mut(id))
        {
            stored.event.status = EventStatus::Cancelled;
            stored.event.updated = Some(now);
            stored.event.etag = Etag::new(format!("\"{seq}\"")).ok();
            stored.seq = seq;
        }
    }

    /// Deletes an event without leaving a cancelled stub behind (as if it
    /// fell out of Google's retention of deletions): only a full resync notices.
    pub fn purge(&self, calendar_id: &CalendarId, id: &EventId) {
        if let Some(calendar) = lock(&self.state).calendars.get_mut(calendar_id) {
            calendar.remove(id);
        }
    }

    /// The events Google holds, cancelled ones included.
    pub fn events(&self, calendar_id: &CalendarId) -> Vec<RemoteEvent> {
        lock(&self.state)
            .calendars
            .get(calendar_id)
            .map(|c| c.values().map(|f| f.event.clone()).collect())
            .unwrap_or_default()
    }

    pub fn active_channels(&self) -> Vec<ChannelId> {
        lock(&self.state).channels.keys().cloned().collect()
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, FakeState>> {
        let mut state = lock(&self.state);
        *state.calls.entry(op).or_default() += 1;
        let position = state
            .faults
            .iter()
            .position(|f| f.op.is_none_or(|t| t == op));
        if let Some(index) = position {
            if let Some(fault) = state.faults.get_mut(index)
                && fault.skip > 0
            {
                fault.skip -= 1;
                return Ok(state);
            }
            if let Some(fault) = state.faults.remove(index) {
                return Err(fault.error);
            }
        }
        Ok(state)
    }
}

fn not_found() -> Error {
    Error::provider(ProviderErrorKind::NotFound, "Not Found")
}

fn stub(event: &RemoteEvent) -> RemoteEvent {
    RemoteEvent {
        recurring_event_id: event.recurring_event_id.clone(),
        original_start: event.original_start.clone(),
        etag: event.etag.clone(),
        ..RemoteEvent::cancelled_stub(event.id.clone())
    }
}

fn content_from(event: &Event, id: EventId) -> RemoteEvent {
    RemoteEvent {
        id,
        status: event.status,
        ical_uid: event.ical_uid.clone(),
        summary: event.summary.clone(),
        description: event.description.clone(),
        location: event.location.clone(),
        start: Some(event.start.clone()),
        end: Some(event.end.clone()),
        attendees: event.attendees.clone(),
        organizer: event.organizer.clone(),
        recurrence: event.recurrence.clone(),
        recurring_event_id: event.recurring_event_id.clone(),
        original_start: event.original_start.clone(),
        etag: None,
        updated: None,
        html_link: None,
        entity: event.entity.clone(),
    }
}

#[async_trait]
impl CalendarProvider for FakeCalendar {
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &ListRequest,
    ) -> Result<ChangePage> {
        let state = self.enter("list")?;
        // Page tokens carry the listing's upper bound and offset; sync tokens
        // the generation and the sequence number they cover.
        let (high, offset) = match &request.page_token {
            Some(token) => {
                let (high, offset) = token
                    .split_once(':')
                    .and_then(|(h, o)| Some((h.parse::<u64>().ok()?, o.parse::<usize>().ok()?)))
                    .ok_or_else(|| {
                        Error::provider(ProviderErrorKind::Permanent, "invalid page token")
                    })?;
                (high, offset)
            }
            None => (state.seq, 0),
        };
        let since = match &request.sync_token {
            Some(token) => {
                let (generation, seq) = token
                    .split_once('-')
                    .and_then(|(g, s)| Some((g.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
                    .ok_or_else(|| {
                        Error::provider(ProviderErrorKind::SyncTokenExpired, "invalid sync token")
                    })?;
                if generation != state.token_generation {
                    return Err(Error::provider(
                        ProviderErrorKind::SyncTokenExpired,
                        "fullSyncRequired",
                    ));
                }
                Some(seq)
            }
            None => None,
        };
        let mut matching: Vec<&FakeEvent> = state
            .calendars
            .get(calendar_id)
            .into_iter()
            .flat_map(|c| c.values())
            .filter(|f| f.seq <= high)
            .filter(|f| match since {
                Some(since) => f.seq > since,
                None => f.event.status != EventStatus::Cancelled,
            })
            .collect();
        matching.sort_by_key(|f| f.seq);
        let page_size = request.max_results.clamp(1, 2500) as usize;
        let events: Vec<RemoteEvent> = matching
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|f| {
                if f.event.status == EventStatus::Cancelled {
                    stub(&f.event)
                } else {
                    f.event.clone()
                }
            })
            .collect();
        let more = matching.len() > offset + page_size;
        Ok(ChangePage {
            events,
            next_page_token: more.then(|| format!("{high}:{}", offset + page_size)),
            next_sync_token: (!more).then(|| format!("{}-{high}", state.token_generation)),
        })
    }

    async fn get_event(&self, calendar_id: &CalendarId, id: &EventId) -> Result<RemoteEvent> {
        let state = self.enter("get")?;
        if state.unreachable.contains(calendar_id) {
            return Err(not_found());
        }
        state
            .calendars
            .get(calendar_id)
            .and_then(|c| c.get(id))
            .map(|f| f.event.clone())
            .ok_or_else(not_found)
    }

    async fn insert_event(&self, event: &Event) -> Result<RemoteEvent> {
        let taken = {
            let state = self.enter("insert")?;
            state
                .calendars
                .get(&event.calendar_id)
                .is_some_and(|c| c.contains_key(&event.google_event_id))
        };
        if taken {
            // Deleted ids stay reserved, as at Google.
            return Err(Error::provider(
                ProviderErrorKind::Duplicate,
                "The requested identifier already exists.",
            ));
        }
        Ok(self.put(
            &event.calendar_id,
            content_from(event, event.google_event_id.clone()),
        ))
    }

    async fn patch_event(&self, call: &PatchCall) -> Result<RemoteEvent> {
        let mut next = {
            let state = self.enter("patch")?;
            if state.unreachable.contains(&call.calendar_id) {
                return Err(not_found());
            }
            let current = state
                .calendars
                .get(&call.calendar_id)
                .and_then(|c| c.get(&call.event_id))
                .ok_or_else(not_found)?;
            // As Google: a patch that sets a live status restores a deleted
            // event; any other patch of one is refused with 410.
            let restores = call
                .changes
                .status
                .is_some_and(|s| s != EventStatus::Cancelled);
            if current.event.status == EventStatus::Cancelled && !restores {
                return Err(Error::provider(ProviderErrorKind::Gone, "deleted"));
            }
            if call
                .if_match
                .as_ref()
                .is_some_and(|etag| current.event.etag.as_ref() != Some(etag))
            {
                return Err(Error::provider(
                    ProviderErrorKind::PreconditionFailed,
                    "conditionNotMet",
                ));
            }
            current.event.clone()
        };
        let changes = &call.changes;
        if let Some(summary) = &changes.summary {
            next.summary.clone_from(summary);
        }
        if let Some(description) = &changes.description {
            next.description.clone_from(description);
        }
        if let Some(location) = &changes.location {
            next.location.clone_from(location);
        }
        if let Some(start) = &changes.start {
            next.start = Some(start.clone());
        }
        if let Some(end) = &changes.end {
            next.end = Some(end.clone());
        }
        if let Some(attendees) = &changes.attendees {
            next.attendees.clone_from(attendees);
        }
        if let Some(status) = changes.status {
            next.status = status;
        }
        Ok(self.put(&call.calendar_id, next))
    }

    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
        if_match: Option<&Etag>,
    ) -> Result<()> {
        {
            let state = self.enter("delete")?;
            if state.unreachable.contains(calendar_id) {
                return Err(not_found());
            }
            let current = state
                .calendars
                .get(calendar_id)
                .and_then(|c| c.get(id))
                .ok_or_else(not_found)?;
            if current.event.status == EventStatus::Cancelled {
                return Err(Error::provider(ProviderErrorKind::Gone, "deleted"));
            }
            if if_match.is_some_and(|etag| current.event.etag.as_ref() != Some(etag)) {
                return Err(Error::provider(
                    ProviderErrorKind::PreconditionFailed,
                    "conditionNotMet",
                ));
            }
        }
        self.remove(calendar_id, id);
        Ok(())
    }

    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> Result<bool> {
        let state = self.enter("calendar_get")?;
        Ok(!state.unreachable.contains(calendar_id))
    }

    async fn watch(&self, calendar_id: &CalendarId, request: &WatchRequest) -> Result<WatchGrant> {
        let mut state = self.enter("watch")?;
        let ttl = state
            .max_ttl
            .map_or(request.ttl, |max| request.ttl.min(max));
        let resource_id = ResourceId::new(format!(
            "res-{}",
            calendar_id.as_str().len() + state.channels.len()
        ))?;
        state.channels.insert(
            request.channel_id.clone(),
            (calendar_id.clone(), resource_id.clone(), request.clone()),
        );
        Ok(WatchGrant {
            resource_id,
            expiration: crate::later(self.clock.now(), ttl),
        })
    }

    async fn stop_channel(&self, id: &ChannelId, resource_id: &ResourceId) -> Result<()> {
        let mut state = self.enter("stop")?;
        match state.channels.get(id) {
            Some((_, known, _)) if known == resource_id => {
                state.channels.remove(id);
                Ok(())
            }
            _ => Err(not_found()),
        }
    }
}
