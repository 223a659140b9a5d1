//! Writes Google refused for good (`pushState: failed`) and what an
//! operator does about them: retry the write as it was, or discard it and
//! take Google's version.

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Event, EventQuery, EventStatus, PushState};
use crate::ids::LocalEventId;
use crate::outbox::{OutboxEntry, OutboxState};

use super::EventService;

/// What a discarded write's rows are resolved with.
pub const DISCARDED: &str = "discarded by an operator: the mirror took Google's version";

/// A write Google refused for good: the event as the mirror holds it and
/// the dead-lettered outbox row (its request and Google's error).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedWrite {
    pub event: Event,
    /// The latest dead-lettered row; `None` if it was purged.
    pub entry: Option<OutboxEntry>,
}

impl EventService {
    /// The events whose push failed for good, in start order, at most
    /// `limit` (1 to 500), each with its latest dead-lettered row.
    pub async fn failed_writes(&self, limit: u32) -> Result<Vec<FailedWrite>> {
        let query = EventQuery {
            push_state: Some(PushState::Failed),
            limit: limit.clamp(1, 500),
            ..EventQuery::default()
        };
        let mut failed = Vec::new();
        for event in self.events.list_events(&query).await? {
            let entry = self.dead_letter_of(event.id).await?;
            failed.push(FailedWrite { event, entry });
        }
        Ok(failed)
    }

    async fn dead_letter_of(&self, id: LocalEventId) -> Result<Option<OutboxEntry>> {
        Ok(self
            .outbox
            .outbox_for_event(id)
            .await?
            .into_iter()
            .rfind(|entry| entry.state == OutboxState::DeadLetter))
    }

    /// The event, if its push failed; a conflict (409) otherwise.
    async fn failed_event(&self, id: LocalEventId) -> Result<Event> {
        let event = self.get(id).await?;
        if event.push_state != PushState::Failed {
            return Err(not_failed(&event));
        }
        Ok(event)
    }

    /// Requeues a failed write as it was: its dead-lettered rows go back to
    /// the outbox with their attempts reset, due now, and the event is
    /// `pending` again (`event.push_retried` in the feed). The outbox
    /// worker pushes it on its next round.
    pub async fn retry_failed_write(&self, id: LocalEventId) -> Result<FailedWrite> {
        self.failed_event(id).await?;
        let requeued = self
            .outbox
            .requeue_dead_letters(id, self.clock.now())
            .await?;
        let event = self.get(id).await?;
        match requeued.last() {
            Some(entry) => Ok(FailedWrite {
                event,
                entry: Some(entry.clone()),
            }),
            // Resolved meanwhile (another operator, a later write), or its
            // rows were purged: nothing to send again.
            None if event.push_state != PushState::Failed => Err(not_failed(&event)),
            None => Err(Error::Conflict {
                reason: "the failed write's outbox row is gone (purged): write the event again \
                         (PATCH) or discard the failed write"
                    .into(),
            }),
        }
    }

    /// Gives up on a failed write: Google's copy of the event becomes the
    /// mirror's (if Google never had it, the event is cancelled), the rows
    /// are resolved, and `event.push_discarded` goes in the feed.
    pub async fn discard_failed_write(&self, id: LocalEventId) -> Result<Event> {
        let event = self.failed_event(id).await?;
        let now = self.clock.now();
        let mut kept = match self
            .provider
            .get_event(&event.calendar_id, &event.google_event_id)
            .await
        {
            Ok(remote) => remote.onto(&event, now).ok_or_else(|| {
                Error::provider(
                    ProviderErrorKind::Permanent,
                    "Google's copy of the event has no start or end",
                )
            })?,
            // A 404 means "no such event" only when the calendar itself is
            // readable: an unreachable calendar answers 404 too (see
            // FIELD-NOTES), and then Google's version is unknown.
            Err(error)
                if matches!(
                    error.provider_kind(),
                    Some(ProviderErrorKind::NotFound | ProviderErrorKind::Gone)
                ) =>
            {
                if error.provider_kind() == Some(ProviderErrorKind::NotFound)
                    && !self
                        .provider
                        .calendar_accessible(&event.calendar_id)
                        .await?
                {
                    return Err(error);
                }
                let mut cancelled = event.clone();
                cancelled.status = EventStatus::Cancelled;
                cancelled.updated_at = now;
                cancelled
            }
            Err(error) => return Err(error),
        };
        kept.push_state = PushState::Synced;
        kept.push_note = Some(DISCARDED.into());
        if !self.outbox.discard_dead_letters(&kept, DISCARDED).await? {
            let now_held = self.get(id).await?;
            return Err(not_failed(&now_held));
        }
        self.get(id).await
    }
}

fn not_failed(event: &Event) -> Error {
    Error::Conflict {
        reason: format!(
            "the event's push has not failed (pushState is {})",
            event.push_state.as_str()
        ),
    }
}
