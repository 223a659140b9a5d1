//! The event's parts and the event as the mirror holds it, with the checks
//! every write path shares.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{CalendarId, EntityRef, Etag, EventId, LocalEventId};
use crate::recurrence::Series;
// Event times are defined below series (which are anchored at them and
// yield them), so that recurrence needs nothing of this module.
pub use crate::recurrence::time::{EventTime, TimeZoneName};

use super::details::{EventDetails, EventType};

/// Limits on what callers may write through calsync. Events read from Google
/// are mirrored as Google has them, so these apply to input, not to sync.
pub mod limits {
    pub const SUMMARY_CHARS: usize = 1024;
    pub const DESCRIPTION_CHARS: usize = 8192;
    pub const LOCATION_CHARS: usize = 1024;
    pub const ATTENDEES: usize = 500;
    pub const EMAIL_CHARS: usize = 254;
    pub use crate::recurrence::time::TIME_ZONE_CHARS;
    pub const DISPLAY_NAME_CHARS: usize = 256;
}

/// Instants calsync stores: years 1 to 9999 in UTC. RFC 3339 has four-digit
/// years, and both databases order and store exactly this range.
pub fn in_supported_range(at: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&at.year())
}

/// The error for an instant outside [`in_supported_range`].
pub fn out_of_range(field: &'static str) -> Error {
    Error::invalid(field, "must fall in the years 0001 to 9999 (UTC)")
}

/// Checks that start and end are of one kind and in order. Timed events may
/// last zero minutes; all-day events last at least one day (exclusive end).
pub fn check_span(start: &EventTime, end: &EventTime) -> Result<()> {
    for (field, time) in [("start", start), ("end", end)] {
        let at = match time {
            EventTime::At { at, .. } => *at,
            EventTime::AllDay { .. } => time.sort_key(),
        };
        if !in_supported_range(at) {
            return Err(out_of_range(field));
        }
    }
    match (start, end) {
        (EventTime::AllDay { date: s }, EventTime::AllDay { date: e }) => {
            if e <= s {
                return Err(Error::invalid(
                    "end",
                    "an all-day end date is exclusive and must be after the start date",
                ));
            }
        }
        (EventTime::At { at: s, .. }, EventTime::At { at: e, .. }) => {
            if e < s {
                return Err(Error::invalid("end", "must not be before start"));
            }
        }
        _ => {
            return Err(Error::invalid(
                "end",
                "start and end must both be dates or both be dateTimes",
            ));
        }
    }
    Ok(())
}

/// Checks that a recurring event's timed start and end name their time
/// zone. Google's events reference says `start.timeZone` and
/// `end.timeZone` are "required for recurring events" (it expands the
/// series in that zone, across daylight-saving changes) and answers a
/// series without one with 400 `required` "Missing time zone definition
/// for start time"
/// (<https://developers.google.com/workspace/calendar/api/v3/reference/events>).
/// All-day series need none.
pub fn check_series_zones(start: &EventTime, end: &EventTime) -> Result<()> {
    for (field, time) in [("start.timeZone", start), ("end.timeZone", end)] {
        if let EventTime::At {
            time_zone: None, ..
        } = time
        {
            return Err(Error::unprocessable(
                field,
                format!(
                    "a recurring event's timed {} needs a timeZone (an IANA name such as Europe/Berlin): Google requires start.timeZone and end.timeZone for recurring events, to repeat them at the same wall-clock time across daylight-saving changes, and refuses the series without them",
                    field.trim_end_matches(".timeZone")
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Tentative => "tentative",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "confirmed" => Ok(Self::Confirmed),
            "tentative" => Ok(Self::Tentative),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(Error::invalid(
                "status",
                "must be confirmed, tentative or cancelled",
            )),
        }
    }
}

/// Where a local write stands with Google.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushState {
    /// Written locally; an outbox row will push it.
    Pending,
    /// Google has it (or it came from Google).
    Synced,
    /// Google refused it for good; see the outbox row's last error.
    Failed,
    /// Google's copy changed the same fields since the write was based on
    /// it: Google's version is kept (the mirror shows it) and the write was
    /// not applied. See `push_note`.
    Conflict,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "pending" => Ok(Self::Pending),
            "synced" => Ok(Self::Synced),
            "failed" => Ok(Self::Failed),
            "conflict" => Ok(Self::Conflict),
            _ => Err(Error::invalid(
                "pushState",
                "must be pending, synced, failed or conflict",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// needsAction | declined | tentative | accepted, as Google reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Attendee {
    pub fn new(email: impl Into<String>) -> Result<Self> {
        let email = email.into();
        check_email("attendees.email", &email)?;
        Ok(Self {
            email,
            display_name: None,
            response_status: None,
            optional: false,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organizer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A plausibility check, not RFC 5322: one `@`, something on both sides, no spaces.
pub fn check_email(field: &'static str, email: &str) -> Result<()> {
    let valid = email.len() <= limits::EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be an email address"))
    }
}

pub(crate) fn check_optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<()> {
    match value {
        Some(text) if text.chars().count() > max => Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        // Postgres text cannot hold NUL; refusing it keeps both backends alike.
        Some(text) if text.contains('\0') => {
            Err(Error::invalid(field, "must not contain NUL characters"))
        }
        _ => Ok(()),
    }
}

/// An event in the local mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: LocalEventId,
    pub calendar_id: CalendarId,
    pub google_event_id: EventId,
    pub ical_uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub status: EventStatus,
    pub attendees: Vec<Attendee>,
    pub organizer: Option<Organizer>,
    /// RRULE/EXRULE/RDATE/EXDATE lines of a recurring series' master event.
    pub recurrence: Vec<String>,
    /// Set on an instance of a recurring series.
    pub recurring_event_id: Option<EventId>,
    pub original_start: Option<EventTime>,
    pub etag: Option<Etag>,
    /// Google's `updated`: when Google last changed the event.
    pub google_updated: Option<DateTime<Utc>>,
    pub html_link: Option<String>,
    /// Google's `eventType`; calsync writes only `default` events.
    pub event_type: EventType,
    /// Reminders, visibility, transparency, colour, conference.
    pub details: EventDetails,
    /// Google's event resource as last read, verbatim, so nothing Google
    /// sends is lost; `None` until Google has answered for the event.
    pub google: Option<serde_json::Value>,
    pub entity: Option<EntityRef>,
    pub push_state: PushState,
    /// Why the last local write did not apply as written: the event was
    /// deleted at Google, or Google's copy conflicted with it.
    pub push_note: Option<String>,
    /// When a local write last reached Google (a full sync's deletion
    /// sweep spares rows pushed after the sweep's run began).
    pub pushed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When the local row last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a row is to recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Not recurring.
    Single,
    /// A recurring series (its `recurrence` lines and first occurrence).
    Master,
    /// One changed or cancelled occurrence of a series.
    Exception,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Master => "master",
            Self::Exception => "exception",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "single" => Ok(Self::Single),
            "master" => Ok(Self::Master),
            "exception" => Ok(Self::Exception),
            _ => Err(Error::invalid(
                "kind",
                "must be single, master or exception",
            )),
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        if self.is_exception() {
            EventKind::Exception
        } else if self.is_master() {
            EventKind::Master
        } else {
            EventKind::Single
        }
    }

    /// Whether this row is a recurring series' master.
    pub fn is_master(&self) -> bool {
        !self.recurrence.is_empty() && self.recurring_event_id.is_none()
    }

    /// Whether this row is one changed (or cancelled) occurrence of a series.
    pub fn is_exception(&self) -> bool {
        self.recurring_event_id.is_some()
    }

    /// The series a master defines; `None` for other rows. A rule Google
    /// holds but calsync cannot read is an error here, and callers treat
    /// the series as endless, so nothing is retired on a misreading.
    pub fn series(&self) -> Option<Result<Series>> {
        self.is_master()
            .then(|| Series::new(&self.recurrence, &self.start, &self.end))
    }

    /// Why this master's `recurrence` cannot be expanded, or `None` when it
    /// can (or the row is not a master). Such a series is listed as its
    /// master row in `singleEvents` windows and never retired, never
    /// dropped; this says so to whoever reports on the mirror's health.
    pub fn series_unreadable(&self) -> Option<Error> {
        self.series().and_then(Result::err)
    }

    /// When the row's last occurrence ends: its own end, a bounded series'
    /// last occurrence's, or `None` for an endless (or unreadable) series.
    pub fn last_end(&self) -> Option<DateTime<Utc>> {
        match self.series() {
            None => Some(self.end.sort_key()),
            Some(Ok(series)) => series.last_end(),
            Some(Err(_)) => None,
        }
    }

    /// Whether the event ended before `cutoff`. All-day ends are exclusive, so
    /// an all-day event ending (exclusively) on the cutoff's date has ended.
    pub fn ended_before(&self, cutoff: DateTime<Utc>) -> bool {
        ends_before(&self.end, cutoff)
    }
}

pub(crate) fn ends_before(end: &EventTime, cutoff: DateTime<Utc>) -> bool {
    match end {
        EventTime::AllDay { date } => *date <= cutoff.date_naive(),
        EventTime::At { at, .. } => *at < cutoff,
    }
}
