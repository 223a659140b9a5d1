use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Event, EventChanges, EventStatus, NewEvent, PushState};
use crate::ids::{Etag, LocalEventId};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxOp, OutboxRetryPolicy};
use crate::ports::{CalendarProvider, Clock, EventStore, OutboxStore, PushReceipt};
use crate::sync::RemoteEvent;

/// What happened to one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// Failed for now; tried again at the scheduled time.
    Retrying {
        error: String,
    },
    /// Given up: the event is marked `failed`.
    DeadLettered {
        error: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub pushed: u32,
    pub retrying: u32,
    pub dead_lettered: u32,
}

/// The result of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The event as it is now (for a replay, it may have been pushed since).
    pub event: Event,
    /// True when an earlier request with the same key created it.
    pub replayed: bool,
}

/// The application's writes: each goes to the mirror and the outbox in one
/// transaction, and the outbox worker pushes it to Google.
#[derive(Clone)]
pub struct EventService {
    provider: Arc<dyn CalendarProvider>,
    events: Arc<dyn EventStore>,
    outbox: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    retry: OutboxRetryPolicy,
    lease: std::time::Duration,
}

impl EventService {
    pub fn new(
        provider: Arc<dyn CalendarProvider>,
        events: Arc<dyn EventStore>,
        outbox: Arc<dyn OutboxStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider,
            events,
            outbox,
            clock,
            retry: OutboxRetryPolicy::default(),
            lease: std::time::Duration::from_secs(60),
        }
    }

    pub fn with_retry_policy(mut self, retry: OutboxRetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Creates the event locally (push pending) and queues its insert.
    pub async fn create(&self, new: NewEvent) -> Result<(Event, OutboxEntry)> {
        let event = new.into_event(self.clock.now());
        let entry = self
            .events
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await?;
        Ok((event, entry))
    }

    /// [`EventService::create`] under an idempotency key: the first request
    /// with the key creates the event; a retry with the same request gets
    /// that event back (`replayed`), and another request is refused.
    pub async fn create_idempotent(&self, new: NewEvent, key: &IdempotencyKey) -> Result<Created> {
        if let Some(replayed) = self.replay(key).await? {
            return Ok(replayed);
        }
        let event = new.into_event(self.clock.now());
        match self
            .events
            .insert_idempotent(&event, OutboxOp::Insert, key)
            .await
        {
            Ok(_) => Ok(Created {
                event,
                replayed: false,
            }),
            // A concurrent request with the same key won the race.
            Err(Error::Duplicate {
                what: "idempotency key",
            }) => self.replay(key).await?.ok_or(Error::NotFound {
                what: "idempotency key",
            }),
            Err(error) => Err(error),
        }
    }

    async fn replay(&self, key: &IdempotencyKey) -> Result<Option<Created>> {
        let Some(record) = self.events.find_idempotency_key(key.key()).await? else {
            return Ok(None);
        };
        if record.fingerprint != key.fingerprint() {
            return Err(Error::IdempotencyKeyReused);
        }
        let event = self.load(record.event_id).await?;
        Ok(Some(Created {
            event,
            replayed: true,
        }))
    }

    async fn load(&self, id: LocalEventId) -> Result<Event> {
        self.events
            .get_event(id)
            .await?
            .ok_or(Error::NotFound { what: "event" })
    }

    fn check_etag(event: &Event, if_match: Option<&Etag>) -> Result<()> {
        match if_match {
            Some(expected) if event.etag.as_ref() != Some(expected) => {
                Err(Error::PreconditionFailed {
                    reason: "the event changed since that etag was read".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Changes an event and queues the patch. With `if_match`, the change
    /// applies only if the event's etag is still that one, here and at Google.
    pub async fn update(
        &self,
        id: LocalEventId,
        changes: &EventChanges,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let current = self.load(id).await?;
        if current.status == EventStatus::Cancelled {
            return Err(Error::invalid(
                "status",
                "a cancelled event cannot be changed",
            ));
        }
        Self::check_etag(&current, if_match.as_ref())?;
        let next = changes.apply_to(&current, self.clock.now())?;
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, OutboxOp::Patch { if_match })
            .await?;
        Ok((next, entry))
    }

    /// Cancels an event locally and queues its deletion at Google.
    pub async fn cancel(
        &self,
        id: LocalEventId,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let current = self.load(id).await?;
        Self::check_etag(&current, if_match.as_ref())?;
        let mut next = current.clone();
        next.status = EventStatus::Cancelled;
        next.push_state = PushState::Pending;
        next.updated_at = self.clock.now();
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, OutboxOp::Delete)
            .await?;
        Ok((next, entry))
    }

    /// Pushes up to `limit` due outbox rows.
    pub async fn drain_outbox(&self, owner: &str, limit: u32) -> Result<DrainReport> {
        let now = self.clock.now();
        let until = crate::later(now, self.lease);
        let entries = self.outbox.claim_outbox(owner, now, until, limit).await?;
        // Claimed rows belong to distinct events, so they may go concurrently:
        // one slow or retried call does not hold up the batch.
        let outcomes =
            futures_util::future::join_all(entries.iter().map(|entry| self.push(entry))).await;
        let mut report = DrainReport::default();
        for outcome in outcomes {
            match outcome? {
                PushOutcome::Pushed => report.pushed += 1,
                PushOutcome::Retrying { .. } => report.retrying += 1,
                PushOutcome::DeadLettered { .. } => report.dead_lettered += 1,
            }
        }
        Ok(report)
    }

    /// Pushes one claimed row and records the result. Only storage failures
    /// are returned as errors; provider failures become the outcome.
    pub async fn push(&self, entry: &OutboxEntry) -> Result<PushOutcome> {
        let Some(event) = self.events.get_event(entry.event_id).await? else {
            let error = "the event no longer exists";
            self.outbox.dead_letter_outbox(entry, error).await?;
            return Ok(PushOutcome::DeadLettered {
                error: error.into(),
            });
        };
        match self.call_provider(entry, &event).await {
            Ok(receipt) => {
                self.outbox.complete_outbox(entry, &receipt).await?;
                Ok(PushOutcome::Pushed)
            }
            Err(error) => self.record_failure(entry, &error).await,
        }
    }

    async fn call_provider(&self, entry: &OutboxEntry, event: &Event) -> Result<PushReceipt> {
        let receipt = |remote: RemoteEvent| PushReceipt {
            etag: remote.etag,
            updated: remote.updated,
            html_link: remote.html_link,
        };
        match &entry.op {
            OutboxOp::Insert => match self.provider.insert_event(event).await {
                Ok(remote) => Ok(receipt(remote)),
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::Duplicate) => {
                    // An earlier try may have reached Google before failing
                    // here. Deleted ids stay reserved too, so only an event
                    // carrying our entity link proves the insert happened.
                    let remote = self
                        .provider
                        .get_event(&event.calendar_id, &event.google_event_id)
                        .await?;
                    if remote.entity.is_some() && remote.entity == event.entity {
                        Ok(receipt(remote))
                    } else {
                        Err(Error::provider(
                            ProviderErrorKind::Permanent,
                            "the Google event id is taken by an event that is not ours",
                        ))
                    }
                }
                Err(error) => Err(error),
            },
            OutboxOp::Patch { if_match } => self
                .provider
                .patch_event(event, if_match.as_ref())
                .await
                .map(receipt),
            OutboxOp::Delete => match self
                .provider
                .delete_event(&event.calendar_id, &event.google_event_id)
                .await
            {
                Ok(()) => Ok(PushReceipt {
                    etag: None,
                    updated: None,
                    html_link: None,
                }),
                // Already gone at Google: the deletion holds.
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {
                    Ok(PushReceipt {
                        etag: None,
                        updated: None,
                        html_link: None,
                    })
                }
                Err(error) => Err(error),
            },
        }
    }

    async fn record_failure(&self, entry: &OutboxEntry, error: &Error) -> Result<PushOutcome> {
        let message = error.to_string();
        let attempts = entry.attempts + 1;
        let retry_after = match error {
            Error::Provider { retry_after, .. } => *retry_after,
            _ => None,
        };
        let retryable = error
            .provider_kind()
            .is_some_and(ProviderErrorKind::is_retryable);
        if retryable && !self.retry.exhausted(attempts) {
            let delay = self.retry.delay(attempts, retry_after);
            let next = crate::later(self.clock.now(), delay);
            self.outbox.retry_outbox(entry, &message, next).await?;
            Ok(PushOutcome::Retrying { error: message })
        } else {
            self.outbox.dead_letter_outbox(entry, &message).await?;
            Ok(PushOutcome::DeadLettered { error: message })
        }
    }
}
