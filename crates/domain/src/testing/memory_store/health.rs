//! [`HealthStore`] for [`MemoryStore`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, StoredOutbox, micros};
use crate::channel::{ChannelStatus, WatchChannel};
use crate::error::Result;
use crate::event::{Event, EventStatus, PushState};
use crate::health::{CalendarHealth, HealthStats, count_unreadable_series};
use crate::ids::CalendarId;
use crate::outbox::OutboxState;
use crate::ports::HealthStore;
use crate::sync::SyncState;
use crate::testing::lock;

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
        let (now, expiring_before) = (micros(now), micros(expiring_before));
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
        let mut calendars: Vec<CalendarHealth> = state
            .sync_states
            .values()
            .map(|s| {
                let channels = active
                    .iter()
                    .filter(|c| c.calendar_id == s.calendar_id)
                    .count();
                CalendarHealth::new(s, channels as u64)
            })
            .collect();
        // The SQL stores read a flag set on write; parsing here is the same rule.
        let mut unreadable: BTreeMap<CalendarId, u64> = BTreeMap::new();
        for event in live_events
            .iter()
            .filter(|e| e.series_unreadable().is_some())
        {
            *unreadable.entry(event.calendar_id.clone()).or_default() += 1;
        }
        count_unreadable_series(&mut calendars, unreadable);
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
            calendars,
            active_events: live_events.len() as u64,
            oldest_event_start: live_events.iter().map(|e| e.start.sort_key()).min(),
            newest_event_start: live_events.iter().map(|e| e.start.sort_key()).max(),
            outbox_pending: pending.len() as u64,
            outbox_quota_waiting: pending
                .iter()
                .filter(|r| {
                    r.entry.last_error.as_deref().is_some_and(|e| {
                        e.contains(&format!("({})", crate::ProviderErrorKind::QuotaExhausted))
                    })
                })
                .count() as u64,
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
