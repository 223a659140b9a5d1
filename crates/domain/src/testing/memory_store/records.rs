//! [`JobTickStore`] and [`DriveNotificationStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::Result;
use crate::ports::{DriveNotificationStore, JobTickStore};
use crate::testing::lock;
use crate::webhook::DriveNotification;

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
            .insert((job.to_owned(), micros(scheduled_for))))
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
        // Kept as the SQL stores keep it: never the token, and not the
        // channel's expiry (the channel row has it).
        recorded.envelope.token = None;
        recorded.envelope.channel_expiration = None;
        let mut state = lock(&self.state);
        let seen = state.drive.iter().any(|(n, _)| {
            n.envelope.channel_id == recorded.envelope.channel_id
                && n.envelope.message_number == recorded.envelope.message_number
        });
        if !seen {
            let change = crate::feed::drive_change(recorded.feed_detail(), received_at);
            state.drive.push((recorded, micros(received_at)));
            state.record(vec![change]);
        }
        Ok(!seen)
    }

    async fn purge_drive_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let kept_before = state.drive.len();
        state.drive.retain(|(_, at)| *at >= micros(before));
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
