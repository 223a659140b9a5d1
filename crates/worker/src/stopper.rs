//! The channel stopper: stops, at Google, channels that notified calsync
//! but are no longer wanted (the routes queue them; a webhook never waits
//! for Google).

use std::sync::Arc;

use calsync_domain::ProviderErrorKind;
use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::CalendarProvider;
use slog::{info, warn};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::run_loop::{Backlog, Shutdown, Worker, spawn};

pub struct ChannelStopper {
    provider: Arc<dyn CalendarProvider>,
    /// Each channel with the calendar it watches: the stop is made as that
    /// calendar's principal, the one that made the watch.
    queue: mpsc::UnboundedReceiver<(CalendarId, ChannelId, ResourceId)>,
    logger: slog::Logger,
    /// What `wait` received, for the next round.
    next: Option<(CalendarId, ChannelId, ResourceId)>,
}

impl ChannelStopper {
    async fn stop(&self, calendar: CalendarId, id: ChannelId, resource: ResourceId) {
        let logger = &self.logger;
        match self.provider.stop_channel(&calendar, &id, &resource).await {
            Ok(()) => info!(logger, "unwanted channel stopped";
                "action" => "channel_stop", "status" => "success", "calendar_id" => calendar.to_string(),
                "channel_id" => id.to_string()),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {}
            Err(error) => {
                warn!(logger, "could not stop an unwanted channel; it lapses at its expiry";
                "action" => "channel_stop", "status" => "failed", "calendar_id" => calendar.to_string(),
                "channel_id" => id.to_string(),
                "error_type" => error.error_type(), "error_message" => error.to_string())
            }
        }
    }
}

#[async_trait::async_trait]
impl Worker for ChannelStopper {
    async fn round(&mut self) -> Backlog {
        if let Some((calendar, id, resource)) = self.next.take() {
            self.stop(calendar, id, resource).await;
        }
        match self.queue.try_recv() {
            Ok(next) => {
                self.next = Some(next);
                Backlog::More
            }
            Err(mpsc::error::TryRecvError::Empty) => Backlog::Empty,
            Err(mpsc::error::TryRecvError::Disconnected) => Backlog::Closed,
        }
    }

    async fn wait(&mut self) {
        // `None` (every sender gone) shows in the next round as `Closed`.
        self.next = self.queue.recv().await;
    }
}

/// Starts a [`ChannelStopper`] draining `queue`; it ends when the queue's
/// senders are all gone or at shutdown.
pub fn spawn_channel_stopper(
    provider: Arc<dyn CalendarProvider>,
    queue: mpsc::UnboundedReceiver<(CalendarId, ChannelId, ResourceId)>,
    logger: slog::Logger,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    spawn(
        ChannelStopper {
            provider,
            queue,
            logger,
            next: None,
        },
        shutdown,
    )
}
