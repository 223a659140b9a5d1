//! The outbox worker: pushes queued writes to Google. It claims due rows by
//! lease (so replicas share the work and a crashed worker's rows come
//! back), pushes them, and records each outcome; it runs until the queue is
//! empty, then waits for a write's wake-up or the poll interval (retries
//! fall due on their own schedule).

use calsync_domain::services::EventService;
use calsync_resilience::metrics::OutboxOutcome;
use slog::{info, warn};
use tokio::task::JoinHandle;

use crate::run_loop::{Backlog, Queue, Shutdown, Worker, spawn};

/// Rows the outbox worker claims per round; they are pushed concurrently.
pub const OUTBOX_BATCH: u32 = 32;

pub struct OutboxWorker {
    pub events: EventService,
    pub queue: Queue,
}

#[async_trait::async_trait]
impl Worker for OutboxWorker {
    async fn round(&mut self) -> Backlog {
        let logger = &self.queue.logger;
        let report = match self
            .events
            .drain_outbox(&self.queue.owner, OUTBOX_BATCH)
            .await
        {
            Ok(report) => report,
            Err(error) => {
                warn!(logger, "outbox worker cannot read its queue";
                    "action" => "outbox_push", "status" => "failed", "error_type" => error.error_type(),
                    "error_message" => error.to_string());
                return Backlog::Empty;
            }
        };
        for (outcome, n) in [
            (OutboxOutcome::Pushed, report.pushed),
            (OutboxOutcome::Retrying, report.retrying),
            (OutboxOutcome::DeadLettered, report.dead_lettered),
            (OutboxOutcome::DeletedAtGoogle, report.gone),
            (OutboxOutcome::Conflict, report.conflicts),
        ] {
            self.queue
                .metrics
                .count_outbox_pushes(outcome, u64::from(n));
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
            Backlog::More
        } else {
            Backlog::Empty
        }
    }

    async fn wait(&mut self) {
        self.queue.wait().await;
    }
}

/// Starts an [`OutboxWorker`].
pub fn spawn_outbox_worker(
    events: EventService,
    queue: Queue,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    spawn(OutboxWorker { events, queue }, shutdown)
}
