//! What a caller supplies to create an event, validated on construction.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::ids::{CalendarId, EntityRef, EventId, LocalEventId};

use super::types::{
    Attendee, Event, EventStatus, EventTime, PushState, check_email, check_optional_text,
    check_span, limits,
};

/// What a caller supplies to create an event; validated on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    calendar_id: CalendarId,
    entity: EntityRef,
    summary: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start: EventTime,
    end: EventTime,
    attendees: Vec<Attendee>,
}

/// The unvalidated fields of a [`NewEvent`].
#[derive(Debug, Clone, Default)]
pub struct NewEventFields {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub attendees: Vec<Attendee>,
}

impl NewEvent {
    pub fn new(
        calendar_id: CalendarId,
        entity: EntityRef,
        start: EventTime,
        end: EventTime,
        fields: NewEventFields,
    ) -> Result<Self> {
        check_span(&start, &end)?;
        check_optional_text("summary", fields.summary.as_deref(), limits::SUMMARY_CHARS)?;
        check_optional_text(
            "description",
            fields.description.as_deref(),
            limits::DESCRIPTION_CHARS,
        )?;
        check_optional_text(
            "location",
            fields.location.as_deref(),
            limits::LOCATION_CHARS,
        )?;
        check_attendees(&fields.attendees)?;
        Ok(Self {
            calendar_id,
            entity,
            summary: fields.summary,
            description: fields.description,
            location: fields.location,
            start,
            end,
            attendees: fields.attendees,
        })
    }

    pub fn calendar_id(&self) -> &CalendarId {
        &self.calendar_id
    }

    /// The mirror row for this new event: pending push, with a Google id
    /// derived from the fresh local id.
    pub fn into_event(self, now: DateTime<Utc>) -> Event {
        let id = LocalEventId::new();
        Event {
            id,
            calendar_id: self.calendar_id,
            google_event_id: EventId::for_local(id),
            ical_uid: None,
            summary: self.summary,
            description: self.description,
            location: self.location,
            start: self.start,
            end: self.end,
            status: EventStatus::Confirmed,
            attendees: self.attendees,
            organizer: None,
            recurrence: Vec::new(),
            recurring_event_id: None,
            original_start: None,
            etag: None,
            google_updated: None,
            html_link: None,
            entity: Some(self.entity),
            push_state: PushState::Pending,
            push_note: None,
            pushed_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

pub(crate) fn check_attendees(attendees: &[Attendee]) -> Result<()> {
    if attendees.len() > limits::ATTENDEES {
        return Err(Error::invalid(
            "attendees",
            format!("at most {} attendees", limits::ATTENDEES),
        ));
    }
    for attendee in attendees {
        check_email("attendees.email", &attendee.email)?;
        check_optional_text(
            "attendees.displayName",
            attendee.display_name.as_deref(),
            limits::DISPLAY_NAME_CHARS,
        )?;
    }
    Ok(())
}
