//! [`EventStore`] for [`MemoryStore`].

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros, stored};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventStatus, PushState};
use crate::feed::{Origin, cancellation};
use crate::freebusy::rule::{BusyCandidate, BusyQuery};
use crate::ids::{CalendarId, EventId, LocalEventId};
use crate::outbox::{IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp};
use crate::ports::{EventQuery, EventStore};
use crate::sync::{ApplyDecision, PageOutcome, SyncPage, SyncRun, decide};
use crate::testing::lock;

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

    async fn longest_span(
        &self,
        calendar_id: Option<&CalendarId>,
    ) -> Result<Option<chrono::Duration>> {
        Ok(lock(&self.state)
            .events
            .values()
            .filter(|e| {
                calendar_id.is_none_or(|c| *c == e.calendar_id) && e.kind() != EventKind::Master
            })
            .map(|e| micros(e.end.sort_key()) - micros(e.start.sort_key()))
            .max())
    }

    async fn busy_candidates(&self, query: &BusyQuery) -> Result<Vec<BusyCandidate>> {
        Ok(lock(&self.state)
            .events
            .values()
            .filter(|e| query.matches(e))
            .map(BusyCandidate::of)
            .collect())
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
            .filter(|e| query.event_type.as_ref().is_none_or(|t| *t == e.event_type))
            .filter(|e| query.kind.is_none_or(|k| k == e.kind()))
            .filter(|e| query.push_state.is_none_or(|p| p == e.push_state))
            .filter(|e| {
                query.of_series.is_empty()
                    || e.recurring_event_id
                        .as_ref()
                        .is_some_and(|series| query.of_series.contains(series))
            })
            .filter(|e| {
                query
                    .starts_from
                    .is_none_or(|t| micros(e.start.sort_key()) >= micros(t))
            })
            // A master spans to its last occurrence's end (endless: always).
            .filter(|e| {
                query
                    .ends_after
                    .is_none_or(|t| last_end(e).is_none_or(|last| last > micros(t)))
            })
            .filter(|e| {
                query
                    .starts_before
                    .is_none_or(|t| e.start.sort_key() < micros(t))
            })
            .filter(|e| {
                query
                    .after
                    .is_none_or(|(start, id)| (e.start.sort_key(), e.id) > (micros(start), id))
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
                created_at: micros(event.created_at),
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
            .retain(|_, record| record.created_at >= micros(before));
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
        if current.updated_at != micros(expected_updated_at) {
            return Err(Error::PreconditionFailed {
                reason: "the event was changed concurrently".into(),
            });
        }
        // As the SQL stores: the record of Google's last answer to a push
        // stays as stored (a push may have finished since `event` was read).
        let kept = Event {
            etag: current.etag.clone(),
            google_updated: current.google_updated,
            html_link: current.html_link.clone(),
            pushed_at: current.pushed_at,
            ..stored(event)
        };
        let before = current.clone();
        state.events.insert(event.id, kept);
        state.record_event(Some(&before), event.id, Origin::Api, event.updated_at);
        state.cancel_exceptions_of(event, event.updated_at, Origin::Api);
        Ok(state.push_outbox(event, op))
    }

    async fn apply_sync_page(&self, page: &SyncPage) -> Result<PageOutcome> {
        let mut state = lock(&self.state);
        let mut outcome = PageOutcome::default();
        let mut cancelled_masters = Vec::new();
        let mut originals: Vec<(LocalEventId, Option<Event>)> = Vec::new();
        let mut originals_seen: HashSet<LocalEventId> = HashSet::new();
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
                    // The page's first sight of the row is what its change is against.
                    if originals_seen.insert(id) {
                        originals.push((id, existing.cloned()));
                    }
                    state.by_google_id.insert(key, id);
                    state.events.insert(id, stored(&event));
                    if event.is_master() && event.status == EventStatus::Cancelled {
                        cancelled_masters.push(*event);
                    }
                    Some(id)
                }
                ApplyDecision::Unchanged | ApplyDecision::Skip(_) => existing.map(|e| e.id),
            };
            if let (SyncRun::Full { run_id, .. }, Some(id)) = (&page.run, stored_id) {
                state.seen_in_run.insert(id, run_id.clone());
            }
        }
        for (id, before) in &originals {
            state.record_event(before.as_ref(), *id, Origin::Google, page.now);
        }
        for master in &cancelled_masters {
            state.cancel_exceptions_of(master, page.now, Origin::Google);
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
                            && e.created_at <= micros(*started_at)
                            && e.pushed_at.is_none_or(|at| at <= micros(*started_at))
                            && state.seen_in_run.get(&e.id) != Some(run_id)
                    })
                    .map(|e| e.id)
                    .collect();
                let mut swept = Vec::new();
                for id in unseen {
                    if let Some(event) = state.events.get_mut(&id) {
                        event.status = EventStatus::Cancelled;
                        event.updated_at = micros(page.now);
                        outcome.swept += 1;
                        swept.push(cancellation(event, Origin::Google, page.now));
                    }
                }
                state.record(swept);
            }
            let sync_state = state.state_mut(&page.calendar_id);
            sync_state.sync_token = Some(completion.next_sync_token.clone());
            match page.run {
                SyncRun::Full { .. } => sync_state.last_full_sync_at = Some(micros(page.now)),
                SyncRun::Incremental => {
                    sync_state.last_incremental_sync_at = Some(micros(page.now));
                }
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
        let cutoff = micros(cutoff);
        let mut state = lock(&self.state);
        // Decided on the rows as they stand before any is cancelled, as one
        // SQL statement sees them: an exception whose master goes in this
        // call waits for a later one.
        let active_masters: HashSet<(CalendarId, EventId)> = state
            .events
            .values()
            .filter(|e| e.status != EventStatus::Cancelled)
            .map(|e| (e.calendar_id.clone(), e.google_event_id.clone()))
            .collect();
        let mut due: Vec<(DateTime<Utc>, LocalEventId)> = state
            .events
            .values()
            .filter(|e| e.status != EventStatus::Cancelled && e.push_state != PushState::Pending)
            .filter_map(|e| {
                let last = last_end(e)?;
                let retired = match e.kind() {
                    EventKind::Single => e.ended_before(cutoff),
                    EventKind::Master => last < cutoff,
                    EventKind::Exception => {
                        e.ended_before(cutoff)
                            && e.recurring_event_id.as_ref().is_none_or(|series| {
                                !active_masters.contains(&(e.calendar_id.clone(), series.clone()))
                            })
                    }
                };
                retired.then_some((last, e.id))
            })
            .collect();
        due.sort();
        let mut count = 0;
        let mut retired = Vec::new();
        for (_, id) in due.into_iter().take(limit as usize) {
            if let Some(event) = state.events.get_mut(&id) {
                event.status = EventStatus::Cancelled;
                event.updated_at = micros(now);
                count += 1;
                retired.push(cancellation(event, Origin::Calsync, now));
            }
        }
        state.record(retired);
        Ok(count)
    }
}

/// When the row's last occurrence ends, as the SQL stores keep it
/// (`last_end_at`, to the microsecond): `None` for an endless series.
fn last_end(event: &Event) -> Option<DateTime<Utc>> {
    event.last_end().map(micros)
}
