//! [`ChannelStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::channel::{ChannelStatus, WatchChannel, WatchGrant};
use crate::error::{Error, Result};
use crate::ids::ChannelId;
use crate::ports::ChannelStore;
use crate::testing::lock;

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn insert_channel(&self, channel: &WatchChannel) -> Result<()> {
        let mut state = lock(&self.state);
        if state.channels.contains_key(&channel.id) {
            return Err(Error::Duplicate { what: "channel" });
        }
        let stored = WatchChannel {
            expiration: micros(channel.expiration),
            created_at: micros(channel.created_at),
            last_notification_at: channel.last_notification_at.map(micros),
            ..channel.clone()
        };
        state.channels.insert(channel.id.clone(), stored);
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
        channel.expiration = micros(grant.expiration);
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
        channel.last_notification_at = Some(micros(at));
        channel.last_message_number = Some(
            channel
                .last_message_number
                .map_or(message_number, |n| n.max(message_number)),
        );
        Ok(())
    }
}
