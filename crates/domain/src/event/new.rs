//! What a caller supplies to create an event, validated on construction.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::ids::{CalendarId, EntityRef, EventId, LocalEventId};

use super::details::{Conference, EventDetails, EventType};
use super::types::{
    Attendee, Event, EventStatus, EventTime, PushState, check_email, check_optional_text,
    check_series_zones, check_span, limits,
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
    recurrence: Vec<String>,
    details: EventDetails,
    meet: bool,
}

/// The unvalidated fields of a [`NewEvent`].
#[derive(Debug, Clone, Default)]
pub struct NewEventFields {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub attendees: Vec<Attendee>,
    /// RRULE/EXRULE/RDATE/EXDATE lines: the event becomes a recurring series
    /// whose first occurrence is `start`..`end`.
    pub recurrence: Vec<String>,
    /// Reminders, visibility, transparency and colour. Its `hangout_link`
    /// and `conference` are Google's to set and are ignored here.
    pub details: EventDetails,
    /// Ask Google for a Meet link with the insert.
    pub meet: bool,
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
        if !fields.recurrence.is_empty() {
            crate::recurrence::Series::new(&fields.recurrence, &start, &end)?;
            check_series_zones(&start, &end)?;
        }
        fields.details.check()?;
        let details = EventDetails {
            hangout_link: None,
            conference: None,
            ..fields.details
        };
        Ok(Self {
            calendar_id,
            entity,
            summary: fields.summary,
            description: fields.description,
            location: fields.location,
            start,
            end,
            attendees: fields.attendees,
            recurrence: fields.recurrence,
            details,
            meet: fields.meet,
        })
    }

    pub fn calendar_id(&self) -> &CalendarId {
        &self.calendar_id
    }

    /// The mirror row for this new event: pending push, with a Google id
    /// derived from the fresh local id.
    pub fn into_event(self, now: DateTime<Utc>) -> Event {
        let id = LocalEventId::new();
        let mut details = self.details;
        if self.meet {
            // One request id per event: a retried insert asks again for the
            // same conference, which Google creates once.
            details.conference = Some(Conference::meet_request(format!("calsync-{id}")));
        }
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
            recurrence: self.recurrence,
            recurring_event_id: None,
            original_start: None,
            etag: None,
            google_updated: None,
            html_link: None,
            event_type: EventType::Default,
            details,
            google: None,
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
