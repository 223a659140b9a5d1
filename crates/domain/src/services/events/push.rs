//! The outbox worker's side: claimed rows pushed to Google, each outcome
//! recorded with its kind, and the callers awaiting the event woken.

use serde::Serialize;

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::Event;
use crate::ids::CalendarId;
use crate::outbox::{OutboxEntry, PushFailure};
use crate::ports::PushReceipt;
use crate::sync::RemoteEvent;

use super::EventService;
use super::google::Answer;

/// What happened to one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// Google had deleted the event: it is cancelled here too.
    GoneAtGoogle,
    /// Google's copy changed the same fields: it is kept, the write is not applied.
    Conflict,
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
    pub gone: u32,
    pub conflicts: u32,
}

impl DrainReport {
    pub fn total(&self) -> u32 {
        self.pushed + self.retrying + self.dead_lettered + self.gone + self.conflicts
    }
}

fn receipt(
    remote: Option<Box<RemoteEvent>>,
    pushed_at: chrono::DateTime<chrono::Utc>,
) -> PushReceipt {
    let fields = remote
        .as_ref()
        .map(|r| (r.etag.clone(), r.updated, r.html_link.clone()));
    let (etag, updated, html_link) = fields.unwrap_or((None, None, None));
    PushReceipt {
        etag,
        updated,
        html_link,
        pushed_at,
        remote,
    }
}

/// Whether Google's refusal of a write shows the principal may write the
/// calendar: Google judged the write itself (412, 409, 410, 400, 403
/// `forbiddenForNonOrganizer`, ...) rather than refusing access (403
/// `requiredAccessLevel`), failing to answer (transient, transport), or
/// answering for its quota or the calendar's reachability.
fn judged_with_write_access(error: &Error) -> bool {
    error.provider_kind().is_some_and(|kind| {
        !matches!(
            kind,
            ProviderErrorKind::ReadOnly
                | ProviderErrorKind::Transient
                | ProviderErrorKind::RateLimited
                | ProviderErrorKind::QuotaExhausted
                | ProviderErrorKind::ReconnectRequired
        )
    })
}

impl EventService {
    /// Pushes up to `limit` due outbox rows.
    pub async fn drain_outbox(&self, owner: &str, limit: u32) -> Result<DrainReport> {
        let now = self.clock.now();
        let until = crate::later(now, self.lease);
        let entries = self.outbox.claim_outbox(owner, now, until, limit).await?;
        let ids: Vec<i64> = entries.iter().map(|entry| entry.id).collect();
        // Claimed rows belong to distinct events, so they may go concurrently:
        // one slow or retried call does not hold up the batch.
        let pushes = async {
            Ok(futures_util::future::join_all(entries.iter().map(|entry| self.push(entry))).await)
        };
        // A lost row lease is not a reason to abandon a push in flight (it
        // may already have reached Google); the beat only keeps the rows.
        let outcomes = crate::heartbeat::run(
            self.timer.as_ref(),
            crate::heartbeat::interval(self.lease),
            pushes,
            || async {
                let until = crate::later(self.clock.now(), self.lease);
                self.outbox
                    .extend_outbox_leases(owner, &ids, until)
                    .await
                    .map(|_| true)
            },
        )
        .await?;
        let mut report = DrainReport::default();
        for outcome in outcomes {
            match outcome? {
                PushOutcome::Pushed => report.pushed += 1,
                PushOutcome::Retrying { .. } => report.retrying += 1,
                PushOutcome::DeadLettered { .. } => report.dead_lettered += 1,
                PushOutcome::GoneAtGoogle => report.gone += 1,
                PushOutcome::Conflict => report.conflicts += 1,
            }
        }
        Ok(report)
    }

    /// Pushes one claimed row and records the result. Only storage failures
    /// are returned as errors; provider failures become the outcome. A row
    /// finished (pushed, settled or given up) wakes the callers awaiting a
    /// verdict on its event in this process.
    pub async fn push(&self, entry: &OutboxEntry) -> Result<PushOutcome> {
        let outcome = self.push_row(entry).await?;
        if !matches!(outcome, PushOutcome::Retrying { .. }) {
            self.waiters.wake(entry.event_id);
        }
        Ok(outcome)
    }

    async fn push_row(&self, entry: &OutboxEntry) -> Result<PushOutcome> {
        let Some(event) = self.events.get_event(entry.event_id).await? else {
            let error = "the event no longer exists";
            self.outbox
                .dead_letter_outbox(entry, PushFailure::Refused, error)
                .await?;
            return Ok(PushOutcome::DeadLettered {
                error: error.into(),
            });
        };
        match self.call_provider(entry, &event).await {
            Ok(Answer::Applied(remote)) => {
                let receipt = receipt(remote, self.clock.now());
                // Clears the calendar's read-only mark, if any, too.
                self.outbox.complete_outbox(entry, &receipt).await?;
                Ok(PushOutcome::Pushed)
            }
            Ok(Answer::Settled(settled, failure, note)) => {
                self.outbox
                    .settle_outbox(entry, &settled, failure, note)
                    .await?;
                // Google judged the write (gone, or changed meanwhile),
                // which it does only for a principal that may write.
                self.writable_again(&event.calendar_id).await?;
                Ok(if failure == PushFailure::Conflict {
                    PushOutcome::Conflict
                } else {
                    PushOutcome::GoneAtGoogle
                })
            }
            Err(error) => {
                let error = self.note_refusal(&event, error).await?;
                if judged_with_write_access(&error) {
                    self.writable_again(&event.calendar_id).await?;
                }
                self.record_failure(entry, &error).await
            }
        }
    }

    /// What a refusal says about the calendar or the mirror, recorded
    /// before the row's fate is decided; returns the error to record.
    async fn note_refusal(&self, event: &Event, error: Error) -> Result<Error> {
        match error.provider_kind() {
            // The principal may read but not write the calendar (403
            // `requiredAccessLevel`): health names it until a write lands.
            Some(ProviderErrorKind::ReadOnly) => {
                if let Some(states) = &self.states {
                    states
                        .mark_read_only(&event.calendar_id, &error.to_string(), self.clock.now())
                        .await?;
                }
                Ok(error)
            }
            // 403 `forbiddenForNonOrganizer`: the mirror did not yet know
            // the event is an invitation (or a locked copy) when the write
            // was accepted. Retrying cannot help, so the row is given up
            // with a message saying why, and the calendar is synced so
            // the next such write is refused up front.
            Some(ProviderErrorKind::NotOrganizer) => {
                if let Some(states) = &self.states {
                    states.mark_dirty(&event.calendar_id, false).await?;
                }
                Ok(Error::provider(
                    ProviderErrorKind::NotOrganizer,
                    format!(
                        "Google refused the change: the event is an invitation organized from another calendar (or a locked copy), and only its organizer can change these fields; retrying cannot help. Change it in the organizer's calendar, or change only what an attendee may (its own responseStatus). Google said: {error}"
                    ),
                ))
            }
            _ => Ok(error),
        }
    }

    /// Google judged a write to the calendar on its merits (settled, or
    /// refused for another reason than access): if it was marked read-only,
    /// it is writable again. A landed write clears the mark inside
    /// `complete_outbox` instead. Read first: these paths are rare and the
    /// mark usually absent, so no write transaction is spent on them. The
    /// calendar's held writes keep their next try, at most one probe
    /// interval away.
    async fn writable_again(&self, calendar_id: &CalendarId) -> Result<()> {
        let Some(states) = &self.states else {
            return Ok(());
        };
        if states
            .sync_state(calendar_id)
            .await?
            .is_some_and(|state| state.is_read_only())
        {
            states.clear_read_only(calendar_id).await?;
        }
        Ok(())
    }

    /// Records a failed push with its kind: it waits, is retried, or is
    /// given up, by the error's kind and the row's attempts.
    async fn record_failure(&self, entry: &OutboxEntry, error: &Error) -> Result<PushOutcome> {
        let message = error.to_string();
        let failure = PushFailure::of(error);
        let attempts = entry.attempts + 1;
        let retry_after = match error {
            Error::Provider { retry_after, .. } => *retry_after,
            _ => None,
        };
        let kind = error.provider_kind();
        let seed = u64::try_from(entry.id).unwrap_or_default();
        if kind == Some(ProviderErrorKind::ReadOnly) {
            // Write access comes back when someone changes the sharing:
            // the write waits, tried again every probe interval (the try
            // is the probe), and the wait is not an attempt. The
            // calendar's other queued writes wait one interval behind it,
            // so Google is asked once per interval, not once per write.
            let probe = self.retry.read_only_probe;
            let next = crate::later(self.clock.now(), probe);
            self.outbox
                .wait_outbox(entry, failure, &message, next, crate::later(next, probe))
                .await?;
            return Ok(PushOutcome::Retrying { error: message });
        }
        let delay = match kind {
            // Spent quota and unreachable calendars come back, in hours or
            // when a person reconnects: the write waits, never given up.
            Some(kind) if kind.waits() => Some(self.retry.long_wait(attempts, retry_after, seed)),
            Some(kind) if kind.is_retryable() && !self.retry.exhausted(attempts) => {
                Some(self.retry.jittered(attempts, retry_after, seed))
            }
            _ => None,
        };
        if let Some(delay) = delay {
            let next = crate::later(self.clock.now(), delay);
            self.outbox
                .retry_outbox(entry, failure, &message, next)
                .await?;
            Ok(PushOutcome::Retrying { error: message })
        } else {
            self.outbox
                .dead_letter_outbox(entry, failure, &message)
                .await?;
            Ok(PushOutcome::DeadLettered { error: message })
        }
    }
}
