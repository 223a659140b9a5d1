//! Google's side of a push: each queued op as Google's calls, and what a
//! refusal means (deleted at Google, changed there meanwhile, a calendar
//! this principal cannot reach).

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Event, EventChanges, EventStatus, PushState};
use crate::outbox::{OutboxEntry, OutboxOp, PatchIntent, PushFailure};
use crate::ports::PatchCall;
use crate::sync::RemoteEvent;

use super::EventService;

/// The note on an event whose write found it deleted at Google.
pub const DELETED_AT_GOOGLE: &str =
    "deleted at Google: the change was not applied and the event is cancelled here too";

/// The start of the note on an event whose write lost a conflict.
pub const CONFLICT_NOTE: &str = "conflict: the same fields changed in Google since this write was made; Google's version is kept";

/// Google's copy once deleted: the details it had, cancelled. (The delete
/// answers no body, so the etag stays the one of the version deleted.)
fn deleted_copy(mut remote: RemoteEvent) -> RemoteEvent {
    remote.status = EventStatus::Cancelled;
    if let Some(serde_json::Value::Object(google)) = &mut remote.google {
        google.insert("status".into(), "cancelled".into());
    }
    remote
}

/// How Google answered a push.
pub(super) enum Answer {
    /// Applied; Google's copy when the call returned one.
    Applied(Option<Box<RemoteEvent>>),
    /// Not applied (`Conflict` or `Gone`); the mirror takes this row
    /// instead, with this note.
    Settled(Box<Event>, PushFailure, &'static str),
}

impl EventService {
    /// The mirror row of an event Google deleted: cancelled, with the note.
    fn gone(&self, event: &Event) -> Answer {
        let mut gone = event.clone();
        gone.status = EventStatus::Cancelled;
        gone.push_state = PushState::Synced;
        gone.push_note = Some(DELETED_AT_GOOGLE.into());
        gone.updated_at = self.clock.now();
        Answer::Settled(Box::new(gone), PushFailure::Gone, DELETED_AT_GOOGLE)
    }

    /// A 404 on an event means it is gone only if the calendar itself is
    /// readable: Google answers 404 for calendars it won't show us, too.
    async fn gone_unless_unreachable(&self, event: &Event, error: Error) -> Result<Answer> {
        if self
            .provider
            .calendar_accessible(&event.calendar_id)
            .await?
        {
            return Ok(self.gone(event));
        }
        let why = format!("the calendar is not reachable by this principal (404): {error}");
        if let Some(states) = &self.states {
            states
                .mark_reconnect_required(&event.calendar_id, &why, self.clock.now())
                .await?;
        }
        // The write stays queued (`waits`) until the calendar is back.
        Err(Error::provider(ProviderErrorKind::ReconnectRequired, why))
    }

    pub(super) async fn call_provider(&self, entry: &OutboxEntry, event: &Event) -> Result<Answer> {
        match &entry.op {
            OutboxOp::Insert => match self.provider.insert_event(event).await {
                Ok(remote) => Ok(Answer::Applied(Some(Box::new(remote)))),
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::Duplicate) => {
                    // An earlier try may have reached Google before failing
                    // here. Deleted ids stay reserved too, so only an event
                    // carrying our entity link proves the insert happened.
                    let remote = self
                        .provider
                        .get_event(&event.calendar_id, &event.google_event_id)
                        .await?;
                    if remote.entity.is_some() && remote.entity == event.entity {
                        if remote.status == EventStatus::Cancelled {
                            // Ours, and deleted in Google since.
                            return Ok(self.gone(event));
                        }
                        Ok(Answer::Applied(Some(Box::new(remote))))
                    } else {
                        Err(Error::provider(
                            ProviderErrorKind::Permanent,
                            "the Google event id is taken by an event that is not ours",
                        ))
                    }
                }
                Err(error) => Err(error),
            },
            OutboxOp::Patch { if_match, intent } => {
                // Rows queued before intents were recorded send the content.
                let intent = intent.as_deref().cloned().unwrap_or_else(|| PatchIntent {
                    changes: EventChanges::content_of(event),
                    base: EventChanges::default(),
                });
                self.patch(event, &intent, if_match.is_some()).await
            }
            OutboxOp::Delete => self.delete(event).await,
        }
    }

    /// A conditional patch of the changed fields. On 412 Google's copy is
    /// read again: if the fields this write changed still hold the values
    /// it was based on, it is re-applied on the new etag (someone changed
    /// other fields); if they already hold the new values, an earlier try
    /// landed; otherwise it is a conflict and Google's version is kept. A
    /// caller who demanded an etag (`If-Match`) gets no re-apply.
    async fn patch(&self, event: &Event, intent: &PatchIntent, demanded: bool) -> Result<Answer> {
        let call = PatchCall {
            calendar_id: event.calendar_id.clone(),
            event_id: event.google_event_id.clone(),
            changes: intent.changes.clone(),
            if_match: event.etag.clone(),
        };
        let refused = match self.provider.patch_event(&call).await {
            Ok(remote) => return Ok(Answer::Applied(Some(Box::new(remote)))),
            Err(error) => error,
        };
        match refused.provider_kind() {
            Some(ProviderErrorKind::Gone) => return Ok(self.gone(event)),
            Some(ProviderErrorKind::NotFound) => {
                return self.gone_unless_unreachable(event, refused).await;
            }
            Some(ProviderErrorKind::PreconditionFailed) => {}
            _ => return Err(refused),
        }
        let remote = match self
            .provider
            .get_event(&event.calendar_id, &event.google_event_id)
            .await
        {
            Ok(remote) => remote,
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::Gone) => {
                return Ok(self.gone(event));
            }
            Err(error) => return Err(error),
        };
        if remote.status == EventStatus::Cancelled && intent.changes.status.is_none() {
            return Ok(self.gone(event));
        }
        let current = remote.fields();
        // The RSVPs this write gives count as fields it changes; answers it
        // only carried over are Google's to keep.
        let answered = intent.changes.answered(&intent.base);
        if intent.changes.holds_in(&current, &answered) {
            return Ok(Answer::Applied(Some(Box::new(remote))));
        }
        if demanded || !intent.base.holds_in(&current, &answered) {
            let now = self.clock.now();
            let Some(mut kept) = remote.onto(event, now) else {
                return Err(Error::provider(
                    ProviderErrorKind::Transient,
                    "Google's copy of a conflicting event has no start or end",
                ));
            };
            kept.push_state = PushState::Conflict;
            kept.push_note = Some(CONFLICT_NOTE.into());
            return Ok(Answer::Settled(
                Box::new(kept),
                PushFailure::Conflict,
                CONFLICT_NOTE,
            ));
        }
        let mut changes = intent.changes.clone();
        changes.keep_responses_from(&remote.attendees, &answered);
        let again = PatchCall {
            changes,
            if_match: remote.etag.clone(),
            ..call
        };
        match self.provider.patch_event(&again).await {
            Ok(remote) => Ok(Answer::Applied(Some(Box::new(remote)))),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::Gone) => {
                Ok(self.gone(event))
            }
            // Changed yet again in between: look again on the next attempt.
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {
                Err(Error::provider(
                    ProviderErrorKind::Transient,
                    format!("the event keeps changing in Google: {error}"),
                ))
            }
            Err(error) => Err(error),
        }
    }

    /// A delete conditional on the etag the mirror holds. If Google's copy
    /// changed meanwhile the delete still wins (the caller asked for the
    /// event to go), but only after reading what it deletes, so an already
    /// deleted event is not an error. The copy read is what Google keeps
    /// as the deleted event (on the organizer's calendar a deleted event
    /// keeps its details, events reference, `status`:
    /// https://developers.google.com/workspace/calendar/api/v3/reference/events),
    /// so the mirror takes it: sync listings bring deleted events as bare
    /// stubs, and nothing else would show it the change it deleted.
    async fn delete(&self, event: &Event) -> Result<Answer> {
        let (calendar, id) = (&event.calendar_id, &event.google_event_id);
        let gone = |error: &Error| {
            matches!(
                error.provider_kind(),
                Some(ProviderErrorKind::NotFound | ProviderErrorKind::Gone)
            )
        };
        match self
            .provider
            .delete_event(calendar, id, event.etag.as_ref())
            .await
        {
            Ok(()) => return Ok(Answer::Applied(None)),
            // A 404 is "gone" only if the calendar itself is readable: an
            // unshared calendar answers 404 while the event lives on.
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {
                return match self.gone_unless_unreachable(event, error).await? {
                    Answer::Settled(..) => Ok(Answer::Applied(None)),
                    applied => Ok(applied),
                };
            }
            // Already gone at Google: the deletion holds.
            Err(error) if gone(&error) => return Ok(Answer::Applied(None)),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {}
            Err(error) => return Err(error),
        }
        let remote = match self.provider.get_event(calendar, id).await {
            Ok(remote) => remote,
            Err(error) if gone(&error) => return Ok(Answer::Applied(None)),
            Err(error) => return Err(error),
        };
        if remote.status == EventStatus::Cancelled {
            return Ok(Answer::Applied(Some(Box::new(remote))));
        }
        match self
            .provider
            .delete_event(calendar, id, remote.etag.as_ref())
            .await
        {
            Ok(()) => Ok(Answer::Applied(Some(Box::new(deleted_copy(remote))))),
            Err(error) if gone(&error) => Ok(Answer::Applied(None)),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {
                Err(Error::provider(
                    ProviderErrorKind::Transient,
                    format!("the event keeps changing in Google: {error}"),
                ))
            }
            Err(error) => Err(error),
        }
    }
}
