//! The sync worker: syncs dirty calendars until none is left, then waits for
//! a wake-up (a webhook), the poll interval, or the end of the nearest rest
//! or lease of a dirty calendar, whichever is first. A burst of
//! notifications therefore costs one or two syncs, not one each, and a
//! storm one per rest.

use std::time::{Duration, Instant};

use calsync_domain::services::SyncService;
use calsync_resilience::metrics::{SyncMode, SyncModeLabels};
use slog::{info, warn};
use tokio::task::JoinHandle;

use crate::millis;
use crate::run_loop::{Backlog, Queue, Shutdown, Worker, spawn};

pub struct SyncWorker {
    sync: SyncService,
    queue: Queue,
    /// When the last round found nothing: how soon a dirty calendar that
    /// was resting or leased elsewhere can be taken.
    next_lease_in: Option<Duration>,
}

#[async_trait::async_trait]
impl Worker for SyncWorker {
    async fn round(&mut self) -> Backlog {
        let started = Instant::now();
        let logger = &self.queue.logger;
        match self.sync.sync_next_dirty(&self.queue.owner).await {
            Ok(Some(Ok(report))) => {
                let mode = if report.full {
                    SyncMode::Full
                } else {
                    SyncMode::Incremental
                };
                self.queue.metrics.count_sync(mode, "success");
                if report.swept {
                    self.queue
                        .metrics
                        .sweep_list_calls
                        .get_or_create(&[])
                        .inc_by(u64::from(report.pages));
                }
                self.queue
                    .metrics
                    .sync_duration
                    .get_or_create(&SyncModeLabels { mode })
                    .observe(started.elapsed().as_secs_f64());
                info!(logger, "calendar synced";
                    "action" => "sync", "status" => "success", "calendar_id" => report.calendar_id.to_string(),
                    "full" => report.full, "resync_after_410" => report.token_expired, "pages" => report.pages,
                    "swept" => report.swept,
                    "inserted" => report.outcome.inserted, "updated" => report.outcome.updated,
                    "cancelled" => report.outcome.cancelled + report.outcome.swept,
                    "duration_ms" => millis(started.elapsed()));
                Backlog::More
            }
            Ok(Some(Err(error))) => {
                self.queue
                    .metrics
                    .count_sync(SyncMode::Any, error.error_type());
                warn!(logger, "calendar sync failed";
                    "action" => "sync", "status" => "failed", "error_type" => error.error_type(),
                    "error_message" => error.to_string(), "duration_ms" => millis(started.elapsed()));
                Backlog::More
            }
            Ok(None) => {
                self.next_lease_in = match self.sync.next_lease_in().await {
                    Ok(next) => next,
                    Err(error) => {
                        warn!(logger, "sync worker cannot read when its next calendar is due";
                            "action" => "sync", "status" => "failed", "error_type" => error.error_type(),
                            "error_message" => error.to_string());
                        None
                    }
                };
                Backlog::Empty
            }
            Err(error) => {
                warn!(logger, "sync worker cannot read its queue";
                    "action" => "sync", "status" => "failed", "error_type" => error.error_type(),
                    "error_message" => error.to_string());
                Backlog::Empty
            }
        }
    }

    async fn wait(&mut self) {
        match self.next_lease_in.take() {
            Some(next) if next < self.queue.poll => {
                tokio::select! {
                    () = self.queue.wait() => {}
                    () = tokio::time::sleep(next) => {}
                }
            }
            _ => self.queue.wait().await,
        }
    }
}

/// Starts a [`SyncWorker`].
pub fn spawn_sync_worker(sync: SyncService, queue: Queue, shutdown: Shutdown) -> JoinHandle<()> {
    spawn(
        SyncWorker {
            sync,
            queue,
            next_lease_in: None,
        },
        shutdown,
    )
}
