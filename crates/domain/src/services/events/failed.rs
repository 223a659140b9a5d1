//! Writes Google refused for good (`pushState: failed`) and what an
//! operator does about them: retry the write as it was, or discard it and
//! take Google's version.

use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::LocalEventId;
use crate::outbox::OutboxEntry;

use super::EventService;

/// A write Google refused for good: the event as the mirror holds it and
/// the dead-lettered outbox row (its request and Google's error).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedWrite {
    pub event: Event,
    /// The dead-lettered row; `None` if it was purged.
    pub entry: Option<OutboxEntry>,
}

impl EventService {
    /// The events whose push failed for good, oldest first, at most `limit`.
    pub async fn failed_writes(&self, limit: u32) -> Result<Vec<FailedWrite>> {
        let _ = limit;
        Err(Error::Storage("not built yet".into()))
    }

    /// Requeues a failed write as it was: its dead-lettered row goes back to
    /// the outbox with its attempts reset, and the event is `pending` again.
    pub async fn retry_failed_write(&self, id: LocalEventId) -> Result<FailedWrite> {
        let _ = id;
        Err(Error::Storage("not built yet".into()))
    }

    /// Gives up on a failed write: Google's copy of the event becomes the
    /// mirror's (or, if Google never had it, the event is cancelled) and
    /// the row is resolved.
    pub async fn discard_failed_write(&self, id: LocalEventId) -> Result<Event> {
        let _ = id;
        Err(Error::Storage("not built yet".into()))
    }
}
