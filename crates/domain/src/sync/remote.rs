//! What Google sends: events as listed or read, and the pages of a listing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    Attendee, Event, EventChanges, EventDetails, EventStatus, EventTime, EventType, Organizer,
    PushState, check_span,
};
use crate::ids::{CalendarId, EntityRef, Etag, EventId, LocalEventId};

/// An event as the provider reports it in a list or get. A cancelled event in
/// an incremental sync may be a bare stub: only `id` and `status`, or `id`,
/// `recurring_event_id` and `original_start` for a cancelled instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteEvent {
    pub id: EventId,
    pub status: EventStatus,
    pub ical_uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<EventTime>,
    pub end: Option<EventTime>,
    pub attendees: Vec<Attendee>,
    pub organizer: Option<Organizer>,
    pub recurrence: Vec<String>,
    pub recurring_event_id: Option<EventId>,
    pub original_start: Option<EventTime>,
    pub etag: Option<Etag>,
    pub updated: Option<DateTime<Utc>>,
    pub html_link: Option<String>,
    pub event_type: EventType,
    pub details: EventDetails,
    /// Google's event resource verbatim, when the adapter has it.
    pub google: Option<serde_json::Value>,
    /// The entity link read back from `extendedProperties.private`.
    pub entity: Option<EntityRef>,
}

impl RemoteEvent {
    /// Every writable field as Google holds it, to compare with a write's
    /// changes and the values they were based on.
    pub fn fields(&self) -> EventChanges {
        EventChanges {
            summary: Some(self.summary.clone()),
            description: Some(self.description.clone()),
            location: Some(self.location.clone()),
            start: self.start.clone(),
            end: self.end.clone(),
            attendees: Some(self.attendees.clone()),
            status: Some(self.status),
            recurrence: Some(self.recurrence.clone()),
        }
    }

    /// The mirror row `existing` becomes when it takes Google's copy (a
    /// write lost a conflict), or `None` if this is a bare or malformed stub.
    pub fn onto(&self, existing: &Event, now: DateTime<Utc>) -> Option<Event> {
        let (Some(start), Some(end)) = (&self.start, &self.end) else {
            return None;
        };
        check_span(start, end).ok()?;
        let mut next = from_remote(
            self,
            (start, end),
            existing.id,
            &existing.calendar_id,
            existing.created_at,
            now,
        );
        next.entity = self.entity.clone().or_else(|| existing.entity.clone());
        if next.ical_uid.is_none() {
            next.ical_uid.clone_from(&existing.ical_uid);
        }
        next.pushed_at = existing.pushed_at;
        Some(next)
    }

    /// A bare cancelled stub as incremental sync delivers it.
    pub fn cancelled_stub(id: EventId) -> Self {
        Self {
            id,
            status: EventStatus::Cancelled,
            ical_uid: None,
            summary: None,
            description: None,
            location: None,
            start: None,
            end: None,
            attendees: Vec::new(),
            organizer: None,
            recurrence: Vec::new(),
            recurring_event_id: None,
            original_start: None,
            etag: None,
            updated: None,
            html_link: None,
            event_type: EventType::Default,
            details: EventDetails::default(),
            google: None,
            entity: None,
        }
    }
}

/// One `events.list` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Present for an incremental sync; absent for a full one.
    pub sync_token: Option<String>,
    pub page_token: Option<String>,
    /// At most 2500, Google's cap.
    pub max_results: u32,
}

/// One page of `events.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    pub events: Vec<RemoteEvent>,
    /// Non-empty means more pages follow (a page may be empty while more remain).
    pub next_page_token: Option<String>,
    /// Only on the last page.
    pub next_sync_token: Option<String>,
}

/// Builds a mirror row from a complete remote event and its checked span.
pub(super) fn from_remote(
    incoming: &RemoteEvent,
    (start, end): (&EventTime, &EventTime),
    id: LocalEventId,
    calendar_id: &CalendarId,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Event {
    Event {
        id,
        calendar_id: calendar_id.clone(),
        google_event_id: incoming.id.clone(),
        ical_uid: incoming.ical_uid.clone(),
        summary: incoming.summary.clone(),
        description: incoming.description.clone(),
        location: incoming.location.clone(),
        start: start.clone(),
        end: end.clone(),
        status: incoming.status,
        attendees: incoming.attendees.clone(),
        organizer: incoming.organizer.clone(),
        recurrence: incoming.recurrence.clone(),
        recurring_event_id: incoming.recurring_event_id.clone(),
        original_start: incoming.original_start.clone(),
        etag: incoming.etag.clone(),
        google_updated: incoming.updated,
        html_link: incoming.html_link.clone(),
        event_type: incoming.event_type.clone(),
        details: incoming.details.clone(),
        google: incoming.google.clone(),
        entity: incoming.entity.clone(),
        push_state: PushState::Synced,
        push_note: None,
        pushed_at: None,
        created_at,
        updated_at: now,
    }
}
