//! Background work: the sync worker, the channel stopper, and the scheduled
//! jobs (channel renewal, safety sweep, retention cleanup). Each runs until
//! the shutdown signal flips, finishing what it is doing first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_domain::ids::{ChannelId, ResourceId};
use calsync_domain::ports::{CalendarProvider, Clock, JobTickStore};
use calsync_domain::services::{ChannelService, CleanupService, EventService, SyncService};
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_resilience::Metrics;
use chrono::{DateTime, Timelike, Utc};
use slog::{info, warn};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

/// tokio's timer, for the domain's lease heartbeats.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

#[async_trait::async_trait]
impl calsync_domain::ports::Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Flips to `true` once: time to stop.
pub type Shutdown = watch::Receiver<bool>;

async fn stopped(shutdown: &mut Shutdown) {
    // An error means the sender is gone: treat as shutdown too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits for a wake-up or the poll interval; false once it is time to stop.
async fn idle(wakeup: &Notify, poll: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        () = wakeup.notified() => true,
        () = tokio::time::sleep(poll) => true,
        () = stopped(shutdown) => false,
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Syncs dirty calendars until none is left, then waits for a wake-up (a
/// webhook) or the poll interval. A burst of notifications therefore costs
/// one or two syncs, not one each.
pub fn spawn_sync_worker(
    sync: SyncService,
    owner: String,
    wakeup: Arc<Notify>,
    poll: Duration,
    metrics: Arc<Metrics>,
    logger: slog::Logger,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = Instant::now();
            match sync.sync_next_dirty(&owner).await {
                Ok(Some(Ok(report))) => {
                    let mode = if report.full { "full" } else { "incremental" };
                    metrics.increment(
                        "calsync_syncs_total",
                        &[("mode", mode), ("outcome", "success")],
                    );
                    metrics.observe(
                        "calsync_sync_duration_seconds",
                        &[("mode", mode)],
                        started.elapsed(),
                    );
                    info!(logger, "calendar synced";
                        "action" => "sync", "status" => "success", "calendar_id" => report.calendar_id.to_string(),
                        "full" => report.full, "resync_after_410" => report.token_expired, "pages" => report.pages,
                        "inserted" => report.outcome.inserted, "updated" => report.outcome.updated,
                        "cancelled" => report.outcome.cancelled + report.outcome.swept,
                        "duration_ms" => millis(started.elapsed()));
                    continue;
                }
                Ok(Some(Err(error))) => {
                    metrics.increment(
                        "calsync_syncs_total",
                        &[("mode", "any"), ("outcome", error.error_type())],
                    );
                    warn!(logger, "calendar sync failed";
                        "action" => "sync", "status" => "failed", "error_type" => error.error_type(),
                        "error_message" => error.to_string(), "duration_ms" => millis(started.elapsed()));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(logger, "sync worker cannot read its queue";
                        "action" => "sync", "status" => "failed", "error_type" => error.error_type(),
                        "error_message" => error.to_string());
                }
            }
            if !idle(&wakeup, poll, &mut shutdown).await {
                return;
            }
        }
    })
}

/// Rows the outbox worker claims per round; they are pushed concurrently.
pub const OUTBOX_BATCH: u32 = 32;

/// Pushes the outbox to Google: claims due rows by lease (so replicas share
/// the work and a crashed worker's rows come back), pushes them, and records
/// each outcome. Runs until the queue is empty, then waits for a write's
/// wake-up or the poll interval (retries fall due on their own schedule).
pub fn spawn_outbox_worker(
    events: EventService,
    owner: String,
    wakeup: Arc<Notify>,
    poll: Duration,
    metrics: Arc<Metrics>,
    logger: slog::Logger,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match events.drain_outbox(&owner, OUTBOX_BATCH).await {
                Ok(report) => {
                    for (outcome, n) in [
                        ("pushed", report.pushed),
                        ("retrying", report.retrying),
                        ("dead_lettered", report.dead_lettered),
                        ("deleted_at_google", report.gone),
                        ("conflict", report.conflicts),
                    ] {
                        metrics.add(
                            "calsync_outbox_pushes_total",
                            &[("outcome", outcome)],
                            u64::from(n),
                        );
                    }
                    if report.retrying + report.dead_lettered + report.conflicts + report.gone > 0 {
                        warn!(logger, "outbox pushes not applied as written";
                            "action" => "outbox_push", "status" => "failed", "pushed" => report.pushed,
                            "retrying" => report.retrying, "dead_lettered" => report.dead_lettered,
                            "deleted_at_google" => report.gone, "conflicts" => report.conflicts);
                    } else if report.pushed > 0 {
                        info!(logger, "outbox pushed";
                            "action" => "outbox_push", "status" => "success", "pushed" => report.pushed);
                    }
                    // A full batch means more may be waiting.
                    if report.total() >= OUTBOX_BATCH {
                        continue;
                    }
                }
                Err(error) => {
                    warn!(logger, "outbox worker cannot read its queue";
                        "action" => "outbox_push", "status" => "failed", "error_type" => error.error_type(),
                        "error_message" => error.to_string());
                }
            }
            if !idle(&wakeup, poll, &mut shutdown).await {
                return;
            }
        }
    })
}

/// Forgets the webhook limiter's idle keys now and then, so a flood of
/// distinct sources cannot grow memory for good.
pub fn spawn_idle_key_pruner(
    state: actix_web::web::Data<crate::AppState>,
    every: Duration,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => state.webhook_limiter.forget_idle_keys(),
                () = stopped(&mut shutdown) => return,
            }
        }
    })
}

/// Stops, at Google, channels that notified calsync but are no longer wanted.
pub fn spawn_channel_stopper(
    provider: Arc<dyn CalendarProvider>,
    mut queue: mpsc::UnboundedReceiver<(ChannelId, ResourceId)>,
    logger: slog::Logger,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (id, resource) = tokio::select! {
                next = queue.recv() => match next { Some(next) => next, None => return },
                () = stopped(&mut shutdown) => return,
            };
            match provider.stop_channel(&id, &resource).await {
                Ok(()) => info!(logger, "unwanted channel stopped";
                    "action" => "channel_stop", "status" => "success", "channel_id" => id.to_string()),
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {}
                Err(error) => {
                    warn!(logger, "could not stop an unwanted channel; it lapses at its expiry";
                    "action" => "channel_stop", "status" => "failed", "channel_id" => id.to_string(),
                    "error_type" => error.error_type(), "error_message" => error.to_string())
                }
            }
        }
    })
}

/// When each scheduled job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Channel renewal: every 6 h by default, as the original backend.
    pub renewal_every: Duration,
    /// Channels expiring within this window (or half their lifetime) are replaced.
    pub renewal_window: Duration,
    /// Safety sweep: every watched calendar is synced this often, since
    /// push delivery is not guaranteed.
    pub sweep_every: Duration,
    /// Retention cleanup: daily at this UTC hour.
    pub cleanup_hour: u32,
    /// How often the scheduler looks at the clock.
    pub tick: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            renewal_every: Duration::from_secs(6 * 3600),
            renewal_window: Duration::from_secs(24 * 3600),
            sweep_every: Duration::from_secs(15 * 60),
            cleanup_hour: 3,
            tick: Duration::from_secs(30),
        }
    }
}

/// The start of the period of length `every` that `now` falls in: every
/// replica computes the same value, so a job-tick claim makes one of them
/// run it.
pub fn period_start(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
    let start = now.timestamp().div_euclid(every) * every;
    DateTime::from_timestamp(start, 0).unwrap_or(now)
}

/// Today's cleanup slot if its hour has come, else yesterday's.
pub fn cleanup_slot(now: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let today = now
        .date_naive()
        .and_hms_opt(hour.min(23), 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    if now.hour() >= hour.min(23) {
        today
    } else {
        today - chrono::Duration::days(1)
    }
}

pub struct Jobs {
    pub channels: ChannelService,
    pub sync: SyncService,
    pub cleanup: CleanupService,
    pub ticks: Arc<dyn JobTickStore>,
    pub clock: Arc<dyn Clock>,
    pub sync_wakeup: Arc<Notify>,
    pub schedule: Schedule,
    pub owner: String,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
}

impl Jobs {
    /// Claims `(job, slot)` and, if this replica won it, runs `job`.
    async fn run_once<F, Fut, R>(&self, job: &'static str, slot: DateTime<Utc>, work: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<R, DomainError>>,
        R: serde::Serialize,
    {
        match self.ticks.claim_tick(job, slot, &self.owner).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                warn!(self.logger, "cannot claim a job tick"; "action" => job, "status" => "failed",
                    "error_type" => error.error_type(), "error_message" => error.to_string());
                return;
            }
        }
        let started = Instant::now();
        info!(self.logger, "job started"; "action" => job, "status" => "started", "scheduled_for" => slot.to_rfc3339());
        let result = work().await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) => error.error_type(),
        };
        self.metrics.increment(
            "calsync_job_runs_total",
            &[("job", job), ("outcome", outcome)],
        );
        match result {
            Ok(report) => info!(self.logger, "job finished";
                "action" => job, "status" => "success", "scheduled_for" => slot.to_rfc3339(),
                "report" => serde_json::to_string(&report).unwrap_or_default(),
                "duration_ms" => millis(started.elapsed())),
            Err(error) => warn!(self.logger, "job failed";
                "action" => job, "status" => "failed", "scheduled_for" => slot.to_rfc3339(),
                "error_type" => error.error_type(), "error_message" => error.to_string(),
                "duration_ms" => millis(started.elapsed())),
        }
    }

    /// One look at the clock: runs whatever is due and not yet claimed.
    pub async fn tick(&self) {
        let now = self.clock.now();
        let schedule = self.schedule;
        self.run_once(
            "channel_renewal",
            period_start(now, schedule.renewal_every),
            || self.channels.renew_due(schedule.renewal_window),
        )
        .await;
        self.run_once(
            "safety_sweep",
            period_start(now, schedule.sweep_every),
            || async {
                let marked = self.sync.mark_all_dirty().await?;
                self.sync_wakeup.notify_one();
                Ok(marked)
            },
        )
        .await;
        self.run_once(
            "retention_cleanup",
            cleanup_slot(now, schedule.cleanup_hour),
            || self.cleanup.run(),
        )
        .await;
    }

    pub fn spawn(self, mut shutdown: Shutdown) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.tick().await;
                tokio::select! {
                    () = tokio::time::sleep(self.schedule.tick) => {}
                    () = stopped(&mut shutdown) => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn periods_and_cleanup_slots_are_the_same_for_every_replica() {
        let at = Utc.with_ymd_and_hms(2026, 5, 1, 13, 47, 12).unwrap();
        assert_eq!(
            period_start(at, Duration::from_secs(6 * 3600)),
            Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
        );
        assert_eq!(
            period_start(at, Duration::from_secs(15 * 60)),
            Utc.with_ymd_and_hms(2026, 5, 1, 13, 45, 0).unwrap()
        );
        assert_eq!(
            cleanup_slot(at, 3),
            Utc.with_ymd_and_hms(2026, 5, 1, 3, 0, 0).unwrap()
        );
        assert_eq!(
            cleanup_slot(at, 20),
            Utc.with_ymd_and_hms(2026, 4, 30, 20, 0, 0).unwrap()
        );
    }
}
