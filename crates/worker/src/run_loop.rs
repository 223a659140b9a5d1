//! The loop every worker runs: rounds of work while work is left, then a
//! wait (a wake-up, a poll interval, a queued item), until shutdown.

use std::sync::Arc;
use std::time::Duration;

use calsync_resilience::Metrics;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Flips to `true` once: time to stop.
pub type Shutdown = watch::Receiver<bool>;

/// What a round of work left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// More may be waiting: run another round at once.
    More,
    /// Nothing left: wait before the next round.
    Empty,
    /// The worker's source is gone (its queue closed): stop.
    Closed,
}

/// A background worker: rounds of work, and a wait between them.
#[async_trait::async_trait]
pub trait Worker: Send + 'static {
    /// One round: as much work as fits, reporting what is left.
    async fn round(&mut self) -> Backlog;
    /// Waits until there may be work again. Shutdown interrupts it.
    async fn wait(&mut self);
}

/// Runs `worker` on its own task until `shutdown` flips (or its source
/// closes). A round in progress is finished, never cut off.
pub fn spawn<W: Worker>(mut worker: W, mut shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match worker.round().await {
                Backlog::More => continue,
                Backlog::Closed => return,
                Backlog::Empty => {}
            }
            tokio::select! {
                () = worker.wait() => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    })
}

/// Calls `tick` every `every` until shutdown: housekeeping with no queue.
pub fn spawn_periodic<F>(every: Duration, tick: F, shutdown: Shutdown) -> JoinHandle<()>
where
    F: FnMut() + Send + 'static,
{
    struct Periodic<F>(Duration, F);

    #[async_trait::async_trait]
    impl<F: FnMut() + Send + 'static> Worker for Periodic<F> {
        async fn round(&mut self) -> Backlog {
            (self.1)();
            Backlog::Empty
        }
        async fn wait(&mut self) {
            tokio::time::sleep(self.0).await;
        }
    }

    spawn(Periodic(every, tick), shutdown)
}

pub(crate) async fn stopped(shutdown: &mut Shutdown) {
    // An error means the sender is gone: treat as shutdown too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What a queue worker (sync, outbox) runs with besides its service: its
/// name on leases, when it looks for work, where it reports.
pub struct Queue {
    /// This replica's name on the queue's leases.
    pub owner: String,
    /// Woken when work is queued (a webhook, a write).
    pub wakeup: Arc<Notify>,
    /// How often it looks for work nobody woke it for.
    pub poll: Duration,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
}

impl Queue {
    /// A wake-up or the poll interval, whichever is first.
    pub(crate) async fn wait(&self) {
        tokio::select! {
            () = self.wakeup.notified() => {}
            () = tokio::time::sleep(self.poll) => {}
        }
    }
}
