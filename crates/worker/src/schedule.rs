//! The scheduler: channel renewal, the safety sweep, connected accounts'
//! calendar lists and retention cleanup,
//! each run by exactly one replica per period (a job-tick claim), checked
//! every [`Schedule::tick`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_domain::Error as DomainError;
use calsync_domain::ports::{Clock, JobTickStore};
use calsync_domain::services::{ChannelService, CleanupService, GrantService, SyncService};
use calsync_resilience::Metrics;
use calsync_resilience::metrics::JobLabels;
use chrono::{DateTime, Timelike, Utc};
use slog::{info, warn};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::millis;
use crate::run_loop::{Backlog, Shutdown, Worker, spawn};

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
    /// The sweep's slices: calendars are split by a hash of their id, and
    /// one slice is marked every `sweep_every / sweep_slices`.
    pub sweep_slices: u32,
    /// Connected accounts' calendar lists are read this often (in
    /// [`CALENDAR_LIST_SLICES`] slices over the interval), so a calendar
    /// removed from an account in Google stops being managed.
    pub calendar_lists_every: Duration,
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
            sweep_slices: 15,
            calendar_lists_every: Duration::from_secs(3600),
            cleanup_hour: 3,
            tick: Duration::from_secs(30),
        }
    }
}

/// The calendar list pass is spread over its interval in this many
/// slices, by a hash of the grant id.
pub const CALENDAR_LIST_SLICES: u32 = 12;

/// The slot of the slice of `every / slices` that `now` falls in, and
/// which of the `slices` slices it is: the same on every replica.
pub fn slice_slot(now: DateTime<Utc>, every: Duration, slices: u32) -> (DateTime<Utc>, u32) {
    let slices = slices.max(1);
    let slice_every = (every / slices).max(Duration::from_secs(1));
    let slot = period_start(now, slice_every);
    let slice_secs = i64::try_from(slice_every.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    let slice = u32::try_from(
        slot.timestamp()
            .div_euclid(slice_secs)
            .rem_euclid(i64::from(slices)),
    )
    .unwrap_or(0);
    (slot, slice)
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

/// The scheduled jobs and what they run on.
pub struct Jobs {
    pub channels: ChannelService,
    pub sync: SyncService,
    pub cleanup: CleanupService,
    /// Connected accounts, when grants are configured.
    pub grants: Option<GrantService>,
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
        self.metrics
            .job_runs
            .get_or_create(&JobLabels { job, outcome })
            .inc();
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
        // The sweep runs in slices, one per `sweep_every / sweep_slices`:
        // each calendar is still swept once per `sweep_every`, but a fleet's
        // syncs spread over the interval instead of starting at one instant.
        let slices = schedule.sweep_slices.max(1);
        let (slot, slice) = slice_slot(now, schedule.sweep_every, slices);
        self.run_once("safety_sweep", slot, || async {
            let marked = self.sync.mark_slice_dirty(slice, slices).await?;
            self.sync_wakeup.notify_one();
            Ok(marked)
        })
        .await;
        if let Some(grants) = &self.grants {
            let (slot, slice) =
                slice_slot(now, schedule.calendar_lists_every, CALENDAR_LIST_SLICES);
            self.run_once("grant_calendar_lists", slot, || {
                grants.reconcile_calendar_lists(slice, CALENDAR_LIST_SLICES)
            })
            .await;
        }
        self.run_once(
            "retention_cleanup",
            cleanup_slot(now, schedule.cleanup_hour),
            || self.cleanup.run(),
        )
        .await;
    }

    pub fn spawn(self, shutdown: Shutdown) -> JoinHandle<()> {
        spawn(self, shutdown)
    }
}

#[async_trait::async_trait]
impl Worker for Jobs {
    async fn round(&mut self) -> Backlog {
        self.tick().await;
        Backlog::Empty
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.schedule.tick).await;
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
