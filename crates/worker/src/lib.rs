//! calsync's background work, each piece a [`Worker`] on one shared loop
//! ([`spawn`]): the sync worker (dirty calendars to the mirror), the outbox
//! worker (queued writes to Google), the channel stopper (unwanted
//! channels stopped at Google), the scheduler (channel renewal, safety
//! sweep, retention cleanup) and, with the webhook routes, the pruning of
//! the webhook limiter's idle sources, and the delivery of the change feed
//! to the application's webhooks. [`Workers`] starts them all; each
//! runs until the shutdown signal flips, finishing what it is doing first.

mod deliveries;
mod outbox;
mod run_loop;
mod schedule;
mod stopper;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::{CalendarProvider, Clock, JobTickStore};
use calsync_domain::services::Services;
use calsync_resilience::{Metrics, RateLimiter};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub use deliveries::{DELIVERY_POLL, DeliveryWorker, spawn_delivery_worker};
pub use outbox::{OUTBOX_BATCH, OutboxWorker, spawn_outbox_worker};
pub use run_loop::{Backlog, Queue, Shutdown, Worker, spawn, spawn_periodic};
pub use schedule::{Jobs, Schedule, cleanup_slot, period_start};
pub use stopper::{ChannelStopper, spawn_channel_stopper};
pub use sync::{SyncWorker, spawn_sync_worker};

/// tokio's timer, for the domain's lease heartbeats.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

#[async_trait::async_trait]
impl calsync_domain::ports::Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// How often the queue workers look for work nobody woke them for, and when
/// the scheduled jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The sync worker's look at the dirty queue without a webhook.
    pub sync_poll: Duration,
    /// The outbox worker's look for retries that fell due.
    pub outbox_poll: Duration,
    pub schedule: Schedule,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            sync_poll: Duration::from_secs(5),
            outbox_poll: Duration::from_secs(1),
            schedule: Schedule::default(),
        }
    }
}

/// The wake-ups shared with the routes: a webhook wakes the sync worker, a
/// write wakes the outbox worker.
#[derive(Debug, Clone, Default)]
pub struct Wakeups {
    pub sync: Arc<Notify>,
    pub outbox: Arc<Notify>,
}

/// How often the webhook limiter forgets sources it has not seen lately,
/// so a flood of distinct sources cannot grow its memory for good.
pub const IDLE_KEY_PRUNING: Duration = Duration::from_secs(60);

/// Everything the workers need; [`Workers::spawn`] starts them.
pub struct Workers {
    pub services: Services,
    /// For the channel stopper's `channels.stop` calls.
    pub provider: Arc<dyn CalendarProvider>,
    pub ticks: Arc<dyn JobTickStore>,
    pub clock: Arc<dyn Clock>,
    pub wakeups: Wakeups,
    /// The routes' queue of channels to stop at Google.
    pub channel_stops: mpsc::UnboundedReceiver<(CalendarId, ChannelId, ResourceId)>,
    /// This replica's name on leases and job ticks.
    pub owner: String,
    pub config: WorkerConfig,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
    /// The routes' webhook limiter (`AppState::webhook_limiter`): it
    /// remembers every source it has seen until told to forget the idle
    /// ones, which a worker does every [`IDLE_KEY_PRUNING`]. `None` when
    /// no webhook route is mounted.
    pub webhook_limiter: Option<RateLimiter>,
}

impl Workers {
    /// Starts every worker; the handles end once `shutdown` flips.
    pub fn spawn(self, shutdown: Shutdown) -> Vec<JoinHandle<()>> {
        let Self {
            services,
            provider,
            ticks,
            clock,
            wakeups,
            channel_stops,
            owner,
            config,
            metrics,
            logger,
            webhook_limiter,
        } = self;
        let pruning = webhook_limiter.map(|limiter| {
            spawn_periodic(
                IDLE_KEY_PRUNING,
                move || limiter.forget_idle_keys(),
                shutdown.clone(),
            )
        });
        let deliveries = services.webhooks.clone().map(|webhooks| {
            spawn_delivery_worker(
                webhooks,
                owner.clone(),
                metrics.clone(),
                logger.clone(),
                shutdown.clone(),
            )
        });
        let mut workers = vec![
            spawn_sync_worker(
                services.sync.clone(),
                Queue {
                    owner: owner.clone(),
                    wakeup: wakeups.sync.clone(),
                    poll: config.sync_poll,
                    metrics: metrics.clone(),
                    logger: logger.clone(),
                },
                shutdown.clone(),
            ),
            spawn_outbox_worker(
                services.events,
                Queue {
                    owner: owner.clone(),
                    wakeup: wakeups.outbox,
                    poll: config.outbox_poll,
                    metrics: metrics.clone(),
                    logger: logger.clone(),
                },
                shutdown.clone(),
            ),
            spawn_channel_stopper(provider, channel_stops, logger.clone(), shutdown.clone()),
            Jobs {
                channels: services.channels,
                sync: services.sync,
                cleanup: services.cleanup,
                grants: services.grants,
                ticks,
                clock,
                sync_wakeup: wakeups.sync,
                schedule: config.schedule,
                owner,
                metrics,
                logger,
            }
            .spawn(shutdown),
        ];
        workers.extend(pruning);
        workers.extend(deliveries);
        workers
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
