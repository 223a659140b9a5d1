use std::sync::Arc;

use super::channel_cache::ChannelCache;
use super::marks::{Mark, MarkBatch};
use crate::channel::ChannelStatus;
use crate::error::{Error, Result};
use crate::ids::{CalendarId, ChannelId, ResourceId};
use crate::ports::{ChannelStore, Clock, DriveNotificationStore, SyncStateStore};
use crate::webhook::{
    CalendarNotification, CalendarResourceState, DriveNotification, WebhookSecret,
};

/// What a Calendar push notification led to. Every variant is answered 2xx:
/// Google only needs to retry when calsync failed to record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// A change: the calendar is marked dirty for the sync worker.
    /// `wake_worker` is `false` when the syncs already coming need no
    /// worker woken: one is running and will follow up, or the calendar
    /// rests and a worker here was already woken to wait for its end.
    CalendarMarked {
        calendar_id: CalendarId,
        wake_worker: bool,
    },
    /// The channel's opening `sync` message; nothing changed.
    ChannelConfirmed { calendar_id: CalendarId },
    /// A message number not above the channel's last: Google retried or
    /// someone replayed a message already handled. Nothing is marked.
    Replayed { calendar_id: CalendarId },
    /// A validly signed message for a channel calsync no longer wants (stopped,
    /// replaced, or unknown): the caller should stop it at Google, as the
    /// principal of `calendar_id`: the stored channel's calendar, else the
    /// one its resource URI names (`None`: neither, so it cannot tell whom
    /// to stop it as; the channel lapses at its expiry).
    UnwantedChannel {
        calendar_id: Option<CalendarId>,
        channel_id: ChannelId,
        resource_id: ResourceId,
    },
}

/// Validates push notifications and turns them into dirty marks. It never
/// calls Google, so the webhook can answer at once.
#[derive(Clone)]
pub struct NotificationService {
    secret: WebhookSecret,
    channels: Arc<dyn ChannelStore>,
    drive: Arc<dyn DriveNotificationStore>,
    clock: Arc<dyn Clock>,
    /// Channels served from memory; `None` reads the store every time.
    cache: Option<Arc<ChannelCache>>,
    marks: Arc<MarkBatch>,
}

impl NotificationService {
    pub fn new(
        secret: WebhookSecret,
        channels: Arc<dyn ChannelStore>,
        states: Arc<dyn SyncStateStore>,
        drive: Arc<dyn DriveNotificationStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            marks: Arc::new(MarkBatch::new(states, channels.clone(), clock.clone())),
            secret,
            channels,
            drive,
            clock,
            cache: None,
        }
    }

    /// Serves channel look-ups from `cache`. Every other writer of channels
    /// in this process must go through [`crate::services::EvictingChannelStore`] on the same
    /// cache, so its changes are seen at once (other replicas' within
    /// [`super::channel_cache::CHANNEL_CACHE_TTL`]).
    pub fn with_channel_cache(mut self, cache: Arc<ChannelCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The token check alone: `Error::Forbidden` when missing or wrong.
    pub fn authenticate(&self, channel_id: &ChannelId, token: Option<&str>) -> Result<()> {
        match token {
            Some(token) if self.secret.verify(channel_id, token) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }

    /// Authenticates and records a Drive notification; `true` if it is new
    /// and the caller should hand it to its
    /// [`crate::ports::DriveNotificationSink`], `false` for a retry or replay
    /// of one already recorded (same channel and message number).
    pub async fn handle_drive(&self, notification: &DriveNotification) -> Result<bool> {
        let envelope = &notification.envelope;
        self.authenticate(&envelope.channel_id, envelope.token.as_deref())?;
        self.drive
            .record_drive_notification(notification, self.clock.now())
            .await
    }

    pub async fn handle_calendar(
        &self,
        notification: &CalendarNotification,
    ) -> Result<NotificationOutcome> {
        let envelope = &notification.envelope;
        self.authenticate(&envelope.channel_id, envelope.token.as_deref())?;
        let unwanted = |calendar_id: Option<CalendarId>| NotificationOutcome::UnwantedChannel {
            calendar_id: calendar_id.or_else(|| envelope.calendar_id()),
            channel_id: envelope.channel_id.clone(),
            resource_id: envelope.resource_id.clone(),
        };
        let now = self.clock.now();
        let cached = self
            .cache
            .as_ref()
            .and_then(|cache| cache.get(&envelope.channel_id, now));
        let channel = match cached {
            Some(channel) => channel,
            None => {
                let evictions = self.cache.as_ref().map(|cache| cache.evictions());
                let Some(channel) = self.channels.get_channel(&envelope.channel_id).await? else {
                    return Ok(unwanted(None));
                };
                if let (Some(cache), Some(evictions)) = (&self.cache, evictions) {
                    cache.put(&channel, now, evictions);
                }
                channel
            }
        };
        // A pending channel has no resource id yet: its `sync` may beat the
        // watch call's answer.
        if let Some(expected) = &channel.resource_id
            && *expected != envelope.resource_id
        {
            return Err(Error::Forbidden);
        }
        let calendar_id = channel.calendar_id.clone();
        match channel.status {
            ChannelStatus::Stopped => return Ok(unwanted(Some(calendar_id))),
            ChannelStatus::Pending | ChannelStatus::Active => {}
        }
        // Message numbers only grow (not sequentially): one not above the
        // last recorded is a retry or a replay of a handled message.
        if channel
            .last_message_number
            .is_some_and(|last| envelope.message_number <= last)
        {
            return Ok(NotificationOutcome::Replayed { calendar_id });
        }
        let dirty = match notification.state {
            CalendarResourceState::Sync => false,
            CalendarResourceState::Exists | CalendarResourceState::NotExists => true,
        };
        // Committed together with the other notifications waiting now;
        // answered only once committed (or covered by a sync due anyway).
        let wake_worker = self
            .marks
            .submit(Mark {
                calendar_id: calendar_id.clone(),
                channel_id: channel.id.clone(),
                message_number: envelope.message_number,
                dirty,
            })
            .await?;
        // Acknowledged only once marked: if the mark fails, Google's retry
        // of this message number must not look like a replay.
        if let Some(cache) = &self.cache {
            cache.acknowledged(&channel.id, envelope.message_number);
        }
        let outcome = if dirty {
            NotificationOutcome::CalendarMarked {
                calendar_id,
                wake_worker,
            }
        } else {
            NotificationOutcome::ChannelConfirmed { calendar_id }
        };
        Ok(outcome)
    }
}
