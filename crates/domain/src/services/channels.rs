use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::channel::{ChannelStatus, WatchChannel, WatchRequest};
use crate::error::{Error, ProviderErrorKind, Result};
use crate::ids::{CalendarId, ChannelId};
use crate::ports::{CalendarProvider, ChannelStore, Clock, SyncStateStore};
use crate::webhook::WebhookSecret;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenewalReport {
    pub renewed: u32,
    pub failed: u32,
    /// Calendars skipped because they need reconnecting.
    pub skipped: u32,
}

/// Creates, renews and stops watch channels.
#[derive(Clone)]
pub struct ChannelService {
    provider: Arc<dyn CalendarProvider>,
    channels: Arc<dyn ChannelStore>,
    states: Arc<dyn SyncStateStore>,
    clock: Arc<dyn Clock>,
    secret: WebhookSecret,
    address: String,
    ttl: Duration,
}

impl ChannelService {
    /// `address`: the public URL of the Calendar webhook (`WEBHOOK_BASE_URL` +
    /// path). `ttl`: the lifetime to request for each channel.
    pub fn new(
        provider: Arc<dyn CalendarProvider>,
        channels: Arc<dyn ChannelStore>,
        states: Arc<dyn SyncStateStore>,
        clock: Arc<dyn Clock>,
        secret: WebhookSecret,
        address: String,
        ttl: Duration,
    ) -> Self {
        Self {
            provider,
            channels,
            states,
            clock,
            secret,
            address,
            ttl,
        }
    }

    /// Every channel, or only those in `status`, oldest first.
    pub async fn list(&self, status: Option<ChannelStatus>) -> Result<Vec<WatchChannel>> {
        self.channels.list_channels(status).await
    }

    /// Watches a calendar. The channel is stored (pending) before the watch
    /// call, so an early `sync` message finds it; the calendar is marked
    /// dirty (for a full sync if it was never synced) so the mirror starts
    /// complete.
    pub async fn create(&self, calendar_id: &CalendarId) -> Result<WatchChannel> {
        let now = self.clock.now();
        let id = ChannelId::random();
        let mut channel = WatchChannel {
            id: id.clone(),
            calendar_id: calendar_id.clone(),
            resource_id: None,
            expiration: crate::later(now, self.ttl),
            status: ChannelStatus::Pending,
            created_at: now,
            last_notification_at: None,
            last_message_number: None,
        };
        self.channels.insert_channel(&channel).await?;
        let request = WatchRequest {
            token: self.secret.channel_token(&id),
            channel_id: id.clone(),
            address: self.address.clone(),
            ttl: self.ttl,
        };
        let grant = match self.provider.watch(calendar_id, &request).await {
            Ok(grant) => grant,
            Err(error) => {
                self.channels
                    .set_channel_status(&id, ChannelStatus::Stopped)
                    .await?;
                return Err(error);
            }
        };
        self.channels.activate_channel(&id, &grant).await?;
        let state = self.states.sync_state(calendar_id).await?;
        // Google accepted a watch, so access works again: a person watching
        // the calendar anew is how a calendar is reconnected.
        if state.as_ref().is_some_and(|s| s.reconnect_required) {
            self.states
                .clear_reconnect_required(calendar_id, true)
                .await?;
        }
        // A calendar seen for the first time starts with a full sync.
        let never_synced = state.is_none_or(|state| state.sync_token.is_none());
        self.states.mark_dirty(calendar_id, never_synced).await?;
        channel.resource_id = Some(grant.resource_id);
        channel.expiration = grant.expiration;
        channel.status = ChannelStatus::Active;
        Ok(channel)
    }

    /// Stops a channel at Google and locally. A channel Google no longer
    /// knows counts as stopped.
    pub async fn stop(&self, id: &ChannelId) -> Result<WatchChannel> {
        let mut channel = self
            .channels
            .get_channel(id)
            .await?
            .ok_or(Error::NotFound { what: "channel" })?;
        if let Some(resource_id) = &channel.resource_id {
            match self
                .provider
                .stop_channel(&channel.calendar_id, id, resource_id)
                .await
            {
                Ok(()) => {}
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        self.channels
            .set_channel_status(id, ChannelStatus::Stopped)
            .await?;
        channel.status = ChannelStatus::Stopped;
        Ok(channel)
    }

    /// Replaces every active channel due for renewal (see
    /// [`WatchChannel::needs_renewal`]): the new channel is created first, the
    /// old one stopped after, so no change goes unannounced. A failed re-watch
    /// keeps the old channel.
    pub async fn renew_due(&self, window: Duration) -> Result<RenewalReport> {
        let now = self.clock.now();
        let mut report = RenewalReport::default();
        let due: Vec<WatchChannel> = self
            .channels
            .list_channels(Some(ChannelStatus::Active))
            .await?
            .into_iter()
            .filter(|channel| channel.needs_renewal(now, window))
            .collect();
        for old in due {
            let state = self.states.sync_state(&old.calendar_id).await?;
            if state.as_ref().is_some_and(|s| s.reconnect_required) {
                report.skipped += 1;
                continue;
            }
            match self.create(&old.calendar_id).await {
                Ok(_) => {
                    report.renewed += 1;
                    // The old channel may keep delivering until stopped; that is harmless.
                    if self.stop(&old.id).await.is_err() {
                        // Stopping failed at Google; it lapses at its expiry anyway.
                        self.channels
                            .set_channel_status(&old.id, ChannelStatus::Stopped)
                            .await?;
                    }
                }
                Err(error) => {
                    report.failed += 1;
                    if error.provider_kind() == Some(ProviderErrorKind::ReconnectRequired) {
                        self.states
                            .mark_reconnect_required(&old.calendar_id, &error.to_string(), now)
                            .await?;
                    }
                }
            }
        }
        Ok(report)
    }
}
