//! [`OutboxStore`] for [`MemoryStore`].

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros, stored};
use crate::error::Result;
use crate::event::{Event, PushState};
use crate::feed::{Origin, conflict, push_discarded, push_failed, push_retried};
use crate::ids::{CalendarId, LocalEventId};
use crate::outbox::{OutboxEntry, OutboxState, PushFailure};
use crate::ports::{OutboxStore, PushReceipt};
use crate::testing::lock;

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let (now, lease_until) = (micros(now), micros(lease_until));
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
        if let Some(sync) = state.sync_states.get_mut(&entry.calendar_id) {
            sync.read_only_since = None;
            sync.read_only_reason = None;
        }
        let before = state.events.get(&entry.event_id).cloned();
        if let Some(event) = state.events.get_mut(&entry.event_id) {
            if !more_pending
                && let Some(taken) = receipt
                    .remote
                    .as_ref()
                    .and_then(|remote| remote.onto(event, event.updated_at))
            {
                *event = stored(&taken);
            }
            if receipt.etag.is_some() {
                event.etag.clone_from(&receipt.etag);
            }
            if receipt.updated.is_some() {
                event.google_updated = receipt.updated.map(micros);
            }
            if receipt.html_link.is_some() {
                event.html_link.clone_from(&receipt.html_link);
            }
            event.pushed_at = Some(micros(receipt.pushed_at));
            event.push_note = None;
            if !more_pending {
                event.push_state = PushState::Synced;
            }
        }
        if let Some(before) = before {
            state.record_event(
                Some(&before),
                entry.event_id,
                Origin::Calsync,
                receipt.pushed_at,
            );
        }
        Ok(())
    }

    async fn settle_outbox(
        &self,
        entry: &OutboxEntry,
        event: &Event,
        failure: PushFailure,
        note: &str,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.state = OutboxState::Done;
        row.entry.attempts += 1;
        row.entry.last_error = Some(note.to_owned());
        row.entry.last_failure = Some(failure);
        row.lease_owner = None;
        row.lease_until = None;
        let more_pending = state.has_pending_outbox(entry.event_id, entry.id);
        let mut settled = stored(event);
        if more_pending {
            settled.push_state = PushState::Pending;
        }
        let before = state.events.get(&settled.id).cloned();
        state.events.insert(settled.id, settled.clone());
        let now = event.updated_at;
        match (failure, before) {
            (PushFailure::Conflict, Some(before)) => {
                state.record(vec![conflict(&before, &settled, note, now)]);
            }
            (_, before) => state.record_event(before.as_ref(), settled.id, Origin::Google, now),
        }
        state.cancel_exceptions_of(event, event.updated_at, Origin::Google);
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
                row.lease_until = Some(micros(until));
                held += 1;
            }
        }
        Ok(held)
    }

    async fn retry_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.attempts += 1;
        row.entry.last_error = Some(error.to_owned());
        row.entry.last_failure = Some(failure);
        row.entry.next_attempt_at = micros(next_attempt_at);
        row.lease_owner = None;
        row.lease_until = None;
        Ok(())
    }

    async fn wait_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        others_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.last_error = Some(error.to_owned());
        row.entry.last_failure = Some(failure);
        row.entry.next_attempt_at = micros(next_attempt_at);
        row.lease_owner = None;
        row.lease_until = None;
        let now = micros(Utc::now());
        let others_until = micros(others_until);
        for other in state.outbox.values_mut() {
            let held = other.lease_until.is_some_and(|until| until > now);
            if other.entry.id != entry.id
                && other.entry.calendar_id == entry.calendar_id
                && other.entry.state == OutboxState::Pending
                && !held
                && other.entry.next_attempt_at < others_until
            {
                other.entry.next_attempt_at = others_until;
            }
        }
        Ok(())
    }

    async fn dead_letter_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let row = state.leased_outbox(entry)?;
        row.entry.attempts += 1;
        row.entry.state = OutboxState::DeadLetter;
        row.entry.last_error = Some(error.to_owned());
        row.entry.last_failure = Some(failure);
        row.lease_owner = None;
        row.lease_until = None;
        let before = state.events.get(&entry.event_id).cloned();
        if let Some(event) = state.events.get_mut(&entry.event_id) {
            event.push_state = PushState::Failed;
        }
        if let (Some(before), Some(after)) = (before, state.events.get(&entry.event_id)) {
            let failed = push_failed(&before, after, error, chrono::Utc::now());
            state.record(vec![failed]);
        }
        Ok(())
    }

    async fn requeue_dead_letters(
        &self,
        event_id: LocalEventId,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxEntry>> {
        let mut state = lock(&self.state);
        let Some(before) = state.events.get(&event_id).cloned() else {
            return Ok(Vec::new());
        };
        if before.push_state != PushState::Failed {
            return Ok(Vec::new());
        }
        let rows = state.unresolved_dead_letters(event_id);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut requeued = Vec::new();
        for id in rows {
            if let Some(row) = state.outbox.get_mut(&id) {
                row.entry.state = OutboxState::Pending;
                row.entry.attempts = 0;
                row.entry.next_attempt_at = micros(now);
                row.entry.last_error = None;
                row.entry.last_failure = None;
                row.lease_owner = None;
                row.lease_until = None;
                requeued.push(row.entry.clone());
            }
        }
        let mut after = before.clone();
        after.push_state = PushState::Pending;
        state.events.insert(event_id, after.clone());
        state.record(vec![push_retried(&before, &after, micros(now))]);
        Ok(requeued)
    }

    async fn discard_dead_letters(&self, event: &Event, note: &str) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(before) = state.events.get(&event.id).cloned() else {
            return Ok(false);
        };
        if before.push_state != PushState::Failed {
            return Ok(false);
        }
        for id in state.unresolved_dead_letters(event.id) {
            if let Some(row) = state.outbox.get_mut(&id) {
                row.entry.state = OutboxState::Done;
                row.entry.last_error = Some(note.to_owned());
            }
        }
        let after = stored(event);
        state.events.insert(after.id, after.clone());
        let now = micros(Utc::now());
        state.record(vec![push_discarded(&before, &after, note, now)]);
        state.cancel_exceptions_of(event, now, Origin::Api);
        Ok(true)
    }

    async fn outbox_for_event(&self, event_id: LocalEventId) -> Result<Vec<OutboxEntry>> {
        Ok(lock(&self.state)
            .outbox
            .values()
            .filter(|row| row.entry.event_id == event_id)
            .map(|row| row.entry.clone())
            .collect())
    }

    async fn wake_outbox(&self, calendar_ids: &[CalendarId], now: DateTime<Utc>) -> Result<u64> {
        let now = micros(now);
        let mut state = lock(&self.state);
        let mut woken = 0;
        for row in state.outbox.values_mut() {
            if row.entry.state == OutboxState::Pending
                && calendar_ids.contains(&row.entry.calendar_id)
                && row.entry.next_attempt_at > now
                && row.lease_until.is_none_or(|until| until <= now)
            {
                row.entry.next_attempt_at = now;
                woken += 1;
            }
        }
        Ok(woken)
    }
}
