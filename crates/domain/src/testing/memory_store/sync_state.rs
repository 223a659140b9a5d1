//! [`SyncStateStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::Result;
use crate::feed::{ChangeType, calendar_change};
use crate::ids::CalendarId;
use crate::ports::SyncStateStore;
use crate::sync::{SyncLease, SyncOutcome, SyncState};
use crate::testing::lock;

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
        state.swept.remove(calendar_id);
        Ok(())
    }

    async fn mark_swept(&self, calendar_ids: &[CalendarId]) -> Result<u64> {
        let mut state = lock(&self.state);
        let mut marked = 0;
        for calendar_id in calendar_ids {
            let Some(sync_state) = state.sync_states.get_mut(calendar_id) else {
                continue;
            };
            if sync_state.is_dirty() {
                continue;
            }
            sync_state.dirty_seq += 1;
            state.swept.insert(calendar_id.clone());
            marked += 1;
        }
        Ok(marked)
    }

    async fn lease_dirty(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        let mut state = lock(&self.state);
        let now = micros(now);
        let leasable =
            |s: &SyncState| s.is_dirty() && !s.reconnect_required && s.lease_available(now);
        // The sweep's marks go after every other.
        let chosen = state
            .sync_states
            .values()
            .filter(|s| leasable(s))
            .min_by_key(|s| state.swept.contains(&s.calendar_id))
            .map(|s| s.calendar_id.clone());
        let Some(id) = chosen else {
            return Ok(None);
        };
        let swept = state.swept.contains(&id);
        Ok(state
            .sync_states
            .get_mut(&id)
            .map(|s| take_lease(s, owner, until, swept)))
    }

    async fn next_lease_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let now = micros(now);
        Ok(lock(&self.state)
            .sync_states
            .values()
            .filter(|s| s.is_dirty() && !s.reconnect_required)
            .filter_map(|s| s.lease_until.filter(|until| *until > now))
            .min())
    }

    async fn lease_calendar(
        &self,
        calendar_id: &CalendarId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        let mut state = lock(&self.state);
        let swept = state.swept.contains(calendar_id);
        let sync_state = state.state_mut(calendar_id);
        Ok(sync_state
            .lease_available(micros(now))
            .then(|| take_lease(sync_state, owner, until, swept)))
    }

    async fn extend_lease(&self, lease: &SyncLease, until: DateTime<Utc>) -> Result<bool> {
        let mut state = lock(&self.state);
        let sync_state = state.state_mut(&lease.calendar_id);
        if sync_state.lease_owner.as_deref() != Some(lease.owner.as_str()) {
            return Ok(false);
        }
        sync_state.lease_until = Some(micros(until));
        Ok(true)
    }

    async fn release_lease(
        &self,
        lease: &SyncLease,
        outcome: &SyncOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = micros(now);
        let mut state = lock(&self.state);
        let mut reconnect = None;
        let s = state.state_mut(&lease.calendar_id);
        if s.lease_owner.as_deref() != Some(lease.owner.as_str()) {
            return Ok(());
        }
        s.lease_owner = None;
        s.lease_until = None;
        s.lease_seen_seq = None;
        match outcome {
            SyncOutcome::Succeeded { full, rest_until } => {
                if s.dirty_seq > lease.seen_seq {
                    s.lease_until = rest_until.map(micros);
                }
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
                let newly = *reconnect_required && !s.reconnect_required;
                s.reconnect_required |= reconnect_required;
                if newly {
                    reconnect = Some(calendar_change(
                        ChangeType::CalendarReconnectRequired,
                        &lease.calendar_id,
                        Some(error),
                        now,
                    ));
                }
                s.lease_until = Some(micros(crate::later(
                    now,
                    SyncState::retry_delay(s.error_count),
                )));
            }
            SyncOutcome::Abandoned => {}
        }
        state.record(reconnect.into_iter().collect());
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
        let newly = !s.reconnect_required;
        s.reconnect_required = true;
        s.last_status = Some("error".into());
        s.last_error = Some(error.to_owned());
        s.last_error_at = Some(micros(now));
        s.error_count += 1;
        if newly {
            let change = calendar_change(
                ChangeType::CalendarReconnectRequired,
                calendar_id,
                Some(error),
                now,
            );
            state.record(vec![change]);
        }
        Ok(())
    }

    async fn clear_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        full_sync: bool,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let s = state.state_mut(calendar_id);
        let was = s.reconnect_required;
        s.reconnect_required = false;
        s.error_count = 0;
        if full_sync {
            s.full_sync_requested = true;
        }
        if was {
            let change = calendar_change(
                ChangeType::CalendarRecovered,
                calendar_id,
                None,
                chrono::Utc::now(),
            );
            state.record(vec![change]);
        }
        Ok(())
    }

    async fn mark_read_only(
        &self,
        calendar_id: &CalendarId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let s = state.state_mut(calendar_id);
        s.read_only_since.get_or_insert(micros(now));
        s.read_only_reason = Some(reason.to_owned());
        Ok(())
    }

    async fn clear_read_only(&self, calendar_id: &CalendarId) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(s) = state.sync_states.get_mut(calendar_id) else {
            return Ok(false);
        };
        s.read_only_reason = None;
        Ok(s.read_only_since.take().is_some())
    }
}

fn take_lease(state: &mut SyncState, owner: &str, until: DateTime<Utc>, swept: bool) -> SyncLease {
    let until = micros(until);
    state.lease_owner = Some(owner.to_owned());
    state.lease_until = Some(until);
    state.lease_seen_seq = Some(state.dirty_seq);
    SyncLease {
        calendar_id: state.calendar_id.clone(),
        owner: owner.to_owned(),
        until,
        seen_seq: state.dirty_seq,
        full_sync_requested: state.full_sync_requested,
        swept,
    }
}
