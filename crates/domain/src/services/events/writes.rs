//! The application's writes: each goes to the mirror and the outbox in one
//! transaction, refused up front where Google would refuse it.

use crate::error::{Error, Result};
use crate::event::{Event, EventChanges, EventStatus, NewEvent, PushState};
use crate::ids::{CalendarId, Etag, LocalEventId};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxOp, PatchIntent};

use super::EventService;

/// The result of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The event as it is now (for a replay, it may have been pushed since).
    pub event: Event,
    /// True when an earlier request with the same key created it.
    pub replayed: bool,
}

impl EventService {
    async fn check_attendees_allowed(
        &self,
        calendar_id: &CalendarId,
        attendees: &[crate::event::Attendee],
    ) -> Result<()> {
        if !self.attendees_need_delegation || attendees.is_empty() {
            return Ok(());
        }
        if let Some(calendars) = &self.calendars
            && calendars
                .get_calendar(calendar_id)
                .await?
                .is_some_and(|c| c.subject.is_some())
        {
            return Ok(());
        }
        Err(Error::unprocessable(
            "attendees",
            "Google does not let a service account invite attendees without domain-wide delegation: give the calendar a subject (PATCH /calendar/calendars/{id}) or set CALSYNC_GOOGLE_SUBJECT, or send no attendees",
        ))
    }

    /// Creates the event locally (push pending) and queues its insert.
    pub async fn create(&self, new: NewEvent) -> Result<(Event, OutboxEntry)> {
        let event = new.into_event(self.clock.now());
        self.check_attendees_allowed(&event.calendar_id, &event.attendees)
            .await?;
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
        self.check_attendees_allowed(&event.calendar_id, &event.attendees)
            .await?;
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
        let event = self.get(record.event_id).await?;
        Ok(Some(Created {
            event,
            replayed: true,
        }))
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
        let current = self.get(id).await?;
        if current.status == EventStatus::Cancelled {
            let why = current.push_note.as_deref().unwrap_or("cancelled");
            return Err(Error::Conflict {
                reason: format!("the event is cancelled ({why}); it cannot be changed"),
            });
        }
        current.event_type.check_writable()?;
        // What the caller leaves out of an attendee it sends (an answer, a
        // display name) stays as the mirror has it, RSVPs made in Google
        // included: the patch replaces the list whole.
        let mut changes = changes.clone();
        changes.fill_attendees_from(&current.attendees);
        let changes = &changes;
        if let Some(attendees) = &changes.attendees {
            self.check_attendees_allowed(&current.calendar_id, attendees)
                .await?;
        }
        Self::check_etag(&current, if_match.as_ref())?;
        self.check_exception_copy(&current, changes).await?;
        let next = changes.apply_to(&current, self.clock.now())?;
        let intent = PatchIntent {
            changes: changes.clone(),
            base: changes.base_in(&current),
        };
        let op = OutboxOp::Patch {
            if_match,
            intent: Some(Box::new(intent)),
        };
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, op)
            .await?;
        Ok((next, entry))
    }

    /// An exception calsync made has no Google copy of its own until its
    /// first push lands, so what Google lets this calendar change in it is
    /// judged on the master's copy (an occurrence of an invitation is an
    /// invitation too), as [`EventService::update_occurrence`] judges the
    /// write that made it. With a copy of its own, `apply_to` judges it.
    async fn check_exception_copy(&self, event: &Event, changes: &EventChanges) -> Result<()> {
        let (None, Some(master_id)) = (&event.google, &event.recurring_event_id) else {
            return Ok(());
        };
        let Some(master) = self
            .events
            .find_by_google_id(&event.calendar_id, master_id)
            .await?
        else {
            return Ok(());
        };
        let judged = Event {
            google: master.google,
            ..event.clone()
        };
        crate::event::check_copy_change(&judged, changes)
    }

    /// Cancels an event locally and queues its deletion at Google.
    pub async fn cancel(
        &self,
        id: LocalEventId,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let current = self.get(id).await?;
        current.event_type.check_writable()?;
        Self::check_etag(&current, if_match.as_ref())?;
        let mut next = current.clone();
        next.status = EventStatus::Cancelled;
        next.push_state = PushState::Pending;
        next.push_note = None;
        next.updated_at = self.clock.now();
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, OutboxOp::Delete)
            .await?;
        Ok((next, entry))
    }
}
