//! Free/busy and availability answered from the mirror: which events
//! block time ([`rule`]), busy intervals merged ([`intervals`]), and the
//! slots a group of calendars can meet in ([`availability`]). Pure: the
//! service in `services::freebusy` reads the mirror and calls these.

use chrono::{DateTime, Utc};

use crate::ids::CalendarId;

pub mod availability;
pub mod intervals;
pub mod rule;

pub use availability::{AvailabilityRequest, ParticipantGroup, Required, Slot, slots};
pub use intervals::{busy_interval, clip, merge};
pub use rule::BusyRule;

/// Most calendars one free/busy request names (Google's
/// `calendarExpansionMax` limit, freebusy.query reference).
pub const MAX_CALENDARS: usize = 50;
/// Longest window one free/busy request covers, in days.
pub const MAX_WINDOW_DAYS: i64 = 90;

/// A half-open span of time `[start, end)`, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    /// `None` unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// One `freeBusy.query` call to Google: at most [`MAX_CALENDARS`]
/// calendars; the adapter does not chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFreeBusyQuery {
    pub time_min: DateTime<Utc>,
    pub time_max: DateTime<Utc>,
    /// Google's `timeZone`: the zone all-day events are read in.
    pub time_zone: Option<String>,
    pub calendars: Vec<CalendarId>,
}

/// Google's answer for one calendar of a `freeBusy.query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCalendarBusy {
    pub calendar_id: CalendarId,
    /// As Google sends them (merged and sorted by Google).
    pub busy: Vec<Interval>,
    /// Google's per-calendar `errors[].reason` (`notFound`, ...); busy is
    /// empty when there is one.
    pub errors: Vec<String>,
}
