//! What a listing of mirrored events asks for.

use chrono::{DateTime, Utc};

use super::{EventKind, EventStatus, EventType, PushState};
use crate::ids::{CalendarId, EntityRef, EventId, LocalEventId};

/// Filters for listing mirrored events. Times compare against each event's
/// [`super::EventTime::sort_key`]; a series master spans from its first
/// occurrence's start to its last occurrence's end
/// ([`super::Event::last_end`]; endless when that is `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub calendar_id: Option<CalendarId>,
    pub entity: Option<EntityRef>,
    pub status: Option<EventStatus>,
    pub event_type: Option<EventType>,
    /// Only rows of this kind.
    pub kind: Option<EventKind>,
    /// Only events whose push stands so (`failed`: the failed writes).
    pub push_state: Option<PushState>,
    /// Only exceptions whose `recurring_event_id` is one of these (any
    /// calendar: callers match them to their masters' calendars). Long
    /// lists are fine: stores query them in chunks.
    pub of_series: Vec<EventId>,
    /// Events (or series) ending after this instant.
    pub ends_after: Option<DateTime<Utc>>,
    /// Events starting before this instant.
    pub starts_before: Option<DateTime<Utc>>,
    /// Events starting at or after this instant (a window's lower bound
    /// on starts, when the longest event is known).
    pub starts_from: Option<DateTime<Utc>>,
    /// Resume after this `(start sort key, id)` position.
    pub after: Option<(DateTime<Utc>, LocalEventId)>,
    pub limit: u32,
}
