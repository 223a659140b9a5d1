//! Reading the change feed, with an optional long poll.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::feed::{ChangeBatch, ChangeQuery, Cursor, MAX_READ};
use crate::ports::{ChangeFeedStore, Clock, Timer};

/// The longest long poll (`waitSecs`).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often a long poll looks again. The store is the only place every
/// replica's changes meet, so a waiting read asks it; the query is an
/// index range read that answers nothing in microseconds.
pub const WAIT_POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct FeedService {
    store: Arc<dyn ChangeFeedStore>,
    clock: Arc<dyn Clock>,
    timer: Option<Arc<dyn Timer>>,
    poll: Duration,
}

impl FeedService {
    pub fn new(store: Arc<dyn ChangeFeedStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            timer: None,
            poll: WAIT_POLL,
        }
    }

    /// Long polls wait on `timer`; without one a read answers at once.
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = Some(timer);
        self
    }

    /// Changes after `query.after`; with `wait`, holds the answer until
    /// there is at least one change or `wait` has passed (then empty).
    pub async fn read(&self, query: &ChangeQuery, wait: Duration) -> Result<ChangeBatch> {
        if query.limit == 0 || query.limit > MAX_READ {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_READ}"),
            ));
        }
        if wait > MAX_WAIT {
            return Err(Error::invalid(
                "waitSecs",
                format!("must be at most {}", MAX_WAIT.as_secs()),
            ));
        }
        let deadline = crate::later(self.clock.now(), wait);
        let mut query = query.clone();
        loop {
            let batch = self.store.read_changes(&query).await?;
            let Some(timer) = &self.timer else {
                return Ok(batch);
            };
            if !batch.items.is_empty() || self.clock.now() >= deadline {
                return Ok(batch);
            }
            // Filtered-out changes are passed for good; look on from there.
            query.after = Some(batch.next_cursor);
            let left = (deadline - self.clock.now()).to_std().unwrap_or_default();
            timer.sleep(self.poll.min(left)).await;
        }
    }

    /// The newest change's cursor: where a reader that has just listed the
    /// events starts.
    pub async fn latest(&self) -> Result<Cursor> {
        self.store.latest_cursor().await
    }
}
