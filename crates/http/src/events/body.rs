//! The events API's body and query types: Google's event shape as the
//! API reads and writes it, and how a mirrored event is shown.

use calsync_domain::event::{Conference, ConferenceStatus, Event, EventTime};
use calsync_domain::services::Listed;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest accepted event body: 500 attendees and an 8 KiB description fit.
pub const MAX_EVENT_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;

/// A start or end, as Google writes it: `dateTime` (RFC 3339, with an
/// optional IANA `timeZone`) or `date` (all-day; an end date is exclusive).
/// Exactly one of `dateTime` and `date`; `null` counts as absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"dateTime": "2026-12-01T10:00:00+01:00", "timeZone": "Europe/Berlin"}))]
pub struct EventTimeBody {
    /// RFC 3339 with an offset and a `T`, e.g. `2026-12-01T10:00:00+01:00`;
    /// no leap second (`:60`); the years 0001 to 9999 in UTC (so
    /// `0001-01-01T00:30:00+01:00` is refused too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub date_time: Option<String>,
    /// `YYYY-MM-DD`, e.g. `2026-12-01`; the years 0001 to 9999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = Date,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
    )]
    pub date: Option<String>,
    /// An IANA zone name such as `Europe/Berlin`, one the IANA time zone
    /// database knows (`Europe/Nowhere` has the shape but is refused).
    /// Checked with `date` too, where it is otherwise ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
    )]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttendeeBody {
    /// At most 254 bytes, one `@`, no spaces.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$",
        example = "guest@example.com"
    )]
    pub email: String,
    /// At most 256 characters, no NUL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = r"^[^\x00]*$")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Google's needsAction | declined | tentative | accepted. Left out on
    /// a PATCH, it stays as Google has it; on an invitation organized from
    /// another calendar only this calendar's own answer may change (its RSVP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ResponseStatusDoc>)]
    pub response_status: Option<String>,
}

/// `POST /calendar/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "entityType": "deal", "entityId": "42", "summary": "Kick-off",
    "start": {"dateTime": "2030-01-15T10:00:00+01:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2030-01-15T11:00:00+01:00", "timeZone": "Europe/Berlin"},
    "attendees": [{"email": "guest@example.com"}]
}))]
pub struct CreateEventBody {
    /// Defaults to the deployment's default calendar
    /// (`CALSYNC_DEFAULT_CALENDAR`); required when none is configured
    /// (else a 400 naming `calendarId`).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<String>,
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub entity_id: String,
    #[schema(max_length = 1024, pattern = r"^[^\x00]*$")]
    pub summary: Option<String>,
    #[schema(max_length = 8192, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    #[schema(max_length = 1024, pattern = r"^[^\x00]*$")]
    pub location: Option<String>,
    /// Both `dateTime` or both `date`; the end not before the start (an
    /// all-day end, exclusive, after it): else a 400 naming `end`. A
    /// recurring timed event names its `timeZone` in both (else a 422).
    pub start: EventTimeBody,
    pub end: EventTimeBody,
    #[serde(default)]
    #[schema(max_items = 500)]
    pub attendees: Vec<AttendeeBody>,
    /// RFC 5545 lines making the event a recurring series whose first
    /// occurrence is `start`..`end`: `RRULE`, `EXRULE`, `RDATE` and
    /// `EXDATE` lines as Google takes them (`TZID=` and `VALUE=DATE`
    /// allowed), at least one `RRULE` or `RDATE`. A line that does not
    /// parse as RFC 5545 is a 422 naming it; a timed series needs
    /// `start.timeZone` and `end.timeZone` (a 422 naming the missing one).
    #[serde(default)]
    #[schema(
        max_items = 50,
        inline,
        value_type = Vec<RecurrenceLineDoc>,
        example = json!(["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10"])
    )]
    pub recurrence: Vec<String>,
    pub reminders: Option<RemindersBody>,
    #[schema(value_type = Option<VisibilityDoc>)]
    pub visibility: Option<String>,
    #[schema(value_type = Option<TransparencyDoc>)]
    pub transparency: Option<String>,
    /// One of Google's event colours.
    #[schema(value_type = Option<ColorIdDoc>)]
    pub color_id: Option<String>,
    /// `{"create": "meet"}` asks Google for a Meet link with the insert;
    /// it appears as `hangoutLink` and `conference` once Google has it.
    pub conference: Option<ConferenceRequestBody>,
}

/// Google's `reminders`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemindersBody {
    /// The calendar's default reminders.
    #[serde(default)]
    pub use_default: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 5)]
    pub overrides: Vec<ReminderBody>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReminderBody {
    #[schema(value_type = ReminderMethodDoc)]
    pub method: String,
    #[schema(maximum = 40320)]
    pub minutes: u32,
}

/// A conference to create with the event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConferenceRequestBody {
    /// Only `meet` (Google Meet).
    #[schema(value_type = ConferenceKindDoc)]
    pub create: String,
}

/// The event's conference, as Google reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceResource {
    /// requested (not yet at Google) | pending | success | failure
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
    /// e.g. hangoutsMeet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    pub entry_points: Vec<EntryPointResource>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryPointResource {
    /// video | phone | sip | more
    pub entry_point_type: String,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /calendar/events/{id}`: absent fields stay; `null` clears
/// `summary`, `description` and `location`, and is the same as absent for
/// the others. At least one field must change something: a body with
/// none, or only `null`s where `null` means absent, is a 400 naming `body`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"summary": "Moved", "location": null}))]
pub struct PatchEventBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024, pattern = r"^[^\x00]*$")]
    pub summary: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 8192, pattern = r"^[^\x00]*$")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024, pattern = r"^[^\x00]*$")]
    pub location: Option<Option<String>>,
    /// With `end`, or against the stored end: both `dateTime` or both
    /// `date`, the end not before the start (else a 400 naming `end`).
    pub start: Option<EventTimeBody>,
    pub end: Option<EventTimeBody>,
    /// Replaces the whole list.
    #[schema(max_items = 500)]
    pub attendees: Option<Vec<AttendeeBody>>,
    /// Cancel with DELETE, not with `cancelled`.
    #[schema(value_type = Option<PatchStatusDoc>)]
    pub status: Option<String>,
    /// A series' new rule lines (the whole series changes); `[]` ends the
    /// recurrence. As on create (a 422 for a line that does not parse or a
    /// timed series without its zones); not on an occurrence (a 422).
    #[schema(max_items = 50, inline, value_type = Option<Vec<RecurrenceLineDoc>>)]
    pub recurrence: Option<Vec<String>>,
}

/// An event as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResource {
    /// calsync's id, used in this API's URLs.
    pub id: String,
    /// The id at Google (chosen by calsync for events created here).
    pub google_event_id: String,
    pub calendar_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub start: EventTimeBody,
    pub end: EventTimeBody,
    pub attendees: Vec<AttendeeBody>,
    #[schema(value_type = EventStatusDoc)]
    pub status: String,
    #[schema(value_type = PushStateDoc)]
    pub push_state: String,
    /// The last push error, while pending after a failure or once failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    /// On an occurrence: the series' Google id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
    /// On an occurrence: when it was scheduled to start (which names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<EventTimeBody>,
    /// On a series' master: its RRULE/EXRULE/RDATE/EXDATE lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recurrence: Vec<String>,
    /// default | birthday | focusTime | fromGmail | outOfOffice |
    /// workingLocation (calsync changes only `default` events).
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_id: Option<String>,
    /// The Meet link, once Google has created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangout_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference: Option<ConferenceResource>,
    /// Google's event resource verbatim (only with `include=google`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub google: Option<serde_json::Value>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created: String,
    /// RFC 3339: when the local row last changed.
    #[schema(format = DateTime)]
    pub updated: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<EventResource>,
    /// Pass as `pageToken` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

fn time_body(time: &EventTime) -> EventTimeBody {
    match time {
        EventTime::AllDay { date } => EventTimeBody {
            date: Some(date.to_string()),
            ..EventTimeBody::default()
        },
        EventTime::At { at, time_zone } => EventTimeBody {
            date_time: Some(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            time_zone: time_zone.as_ref().map(|tz| tz.as_str().to_owned()),
            date: None,
        },
    }
}

impl EventResource {
    pub fn new(event: &Event, push_error: Option<String>) -> Self {
        Self {
            id: event.id.to_string(),
            google_event_id: event.google_event_id.to_string(),
            calendar_id: event.calendar_id.to_string(),
            entity_type: event.entity.as_ref().map(|e| e.entity_type().to_owned()),
            entity_id: event.entity.as_ref().map(|e| e.entity_id().to_owned()),
            summary: event.summary.clone(),
            description: event.description.clone(),
            location: event.location.clone(),
            start: time_body(&event.start),
            end: time_body(&event.end),
            attendees: event
                .attendees
                .iter()
                .map(|a| AttendeeBody {
                    email: a.email.clone(),
                    display_name: a.display_name.clone(),
                    optional: a.optional.then_some(true),
                    response_status: a.response_status.clone(),
                })
                .collect(),
            status: event.status.as_str().to_owned(),
            push_state: event.push_state.as_str().to_owned(),
            push_error,
            etag: event.etag.as_ref().map(|e| e.as_str().to_owned()),
            html_link: event.html_link.clone(),
            recurring_event_id: event
                .recurring_event_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            original_start_time: event.original_start.as_ref().map(time_body),
            recurrence: event.recurrence.clone(),
            event_type: event.event_type.as_str().to_owned(),
            reminders: event.details.reminders.as_ref().map(|r| RemindersBody {
                use_default: r.use_default,
                overrides: r
                    .overrides
                    .iter()
                    .map(|o| ReminderBody {
                        method: o.method.clone(),
                        minutes: o.minutes,
                    })
                    .collect(),
            }),
            visibility: event.details.visibility.clone(),
            transparency: event.details.transparency.clone(),
            color_id: event.details.color_id.clone(),
            hangout_link: event.details.hangout_link.clone(),
            conference: event.details.conference.as_ref().map(conference),
            google: None,
            created: event.created_at.to_rfc3339(),
            updated: event.updated_at.to_rfc3339(),
        }
    }

    /// An entry of a window listing: an occurrence has the id
    /// `{masterId}_{suffix}`, which the event endpoints accept.
    pub fn listed(listed: &Listed) -> Self {
        let mut resource = Self::new(listed.event(), None);
        resource.id = listed.id();
        resource
    }

    /// Adds Google's verbatim resource (`include=google`).
    pub fn with_google(mut self, event: &Event) -> Self {
        self.google = event.google.clone();
        self
    }
}

fn conference(conference: &Conference) -> ConferenceResource {
    ConferenceResource {
        status: match conference.status {
            ConferenceStatus::Requested => "requested",
            ConferenceStatus::Pending => "pending",
            ConferenceStatus::Success => "success",
            ConferenceStatus::Failure => "failure",
        }
        .to_owned(),
        conference_id: conference.conference_id.clone(),
        solution: conference.solution.clone(),
        entry_points: conference
            .entry_points
            .iter()
            .map(|e| EntryPointResource {
                entry_point_type: e.entry_point_type.clone(),
                uri: e.uri.clone(),
                label: e.label.clone(),
            })
            .collect(),
    }
}

/// `GET /calendar/events/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// `google` adds Google's event resource verbatim as `google`.
    #[param(value_type = Option<IncludeDoc>, inline)]
    pub include: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait (bounded) for Google's answer: 201/200 once pushed, the error if
    /// Google refused, 202 if still pending when the wait ends. `true` or
    /// `false`; other query parameters are refused.
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this calendar's events.
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<String>,
    /// Only this entity's events. Requires `entityId` (else a 400 naming
    /// `entityId`).
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: Option<String>,
    /// Requires `entityType` (else a 400 naming `entityType`).
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub entity_id: Option<String>,
    /// Only events in this status; not `cancelled` with `singleEvents=true`
    /// (a 400 naming `status`: a window lists live events only).
    #[param(value_type = Option<EventStatusDoc>)]
    pub status: Option<String>,
    /// Events ending after this instant: RFC 3339 with an offset and a
    /// `T`, no leap second, the years 0001 to 9999 in UTC.
    #[param(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub time_min: Option<String>,
    /// Events starting before this instant, written as `timeMin` is.
    /// Required with `singleEvents=true` (else a 400 naming `timeMax`).
    #[param(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub time_max: Option<String>,
    /// Page size, 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `nextPageToken`, unchanged: `{start}.{id}` as
    /// the API writes it. A token with an occurrence suffix (`_...`) comes
    /// from, and is taken by, `singleEvents=true` listings only (else a
    /// 400 naming `pageToken`).
    pub page_token: Option<String>,
    /// `true` expands recurring series into their occurrences in the
    /// window, as Google's `singleEvents=true` does: exceptions replace
    /// their occurrence, cancelled occurrences are left out, occurrences
    /// have ids `{masterId}_{YYYYMMDDTHHMMSSZ}` (all-day: `_{YYYYMMDD}`).
    /// Needs `timeMax`. Without it, series are listed as their masters
    /// (with `recurrence`) and exceptions.
    pub single_events: Option<bool>,
    /// Only events of this `eventType` (e.g. `default`, `outOfOffice`):
    /// 1 to 64 letters.
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z]+$")]
    pub event_type: Option<String>,
    /// `google` adds each event's Google resource verbatim as `google`.
    #[param(value_type = Option<IncludeDoc>, inline)]
    pub include: Option<String>,
}

// The API spells these enums in lower case; documented here, where the
// bodies that use them are.

/// `google`: Google's resource verbatim, as `google`
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum IncludeDoc {
    Google,
}

/// An event's push state: pending (queued for Google) | synced | failed
/// (Google refused for good; see `pushError`) | conflict (the same fields
/// changed in Google after the write was made; Google's version is kept).
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum PushStateDoc {
    Pending,
    Synced,
    Failed,
    Conflict,
}

/// confirmed | tentative | cancelled
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum EventStatusDoc {
    Confirmed,
    Tentative,
    Cancelled,
}

/// confirmed | tentative (cancel with DELETE)
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum PatchStatusDoc {
    Confirmed,
    Tentative,
}

/// needsAction | declined | tentative | accepted (Google's attendee answers)
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub(crate) enum ResponseStatusDoc {
    NeedsAction,
    Declined,
    Tentative,
    Accepted,
}

/// default | public | private | confidential
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum VisibilityDoc {
    Default,
    Public,
    Private,
    Confidential,
}

/// opaque (busy) | transparent (free)
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum TransparencyDoc {
    Opaque,
    Transparent,
}

/// email | popup
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum ReminderMethodDoc {
    Email,
    Popup,
}

/// meet (Google Meet)
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum ConferenceKindDoc {
    Meet,
}

/// Google's event colour ids, "1" to "11" (colors reference:
/// <https://developers.google.com/workspace/calendar/api/v3/reference/colors>).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub(crate) enum ColorIdDoc {
    #[serde(rename = "1")]
    C1,
    #[serde(rename = "2")]
    C2,
    #[serde(rename = "3")]
    C3,
    #[serde(rename = "4")]
    C4,
    #[serde(rename = "5")]
    C5,
    #[serde(rename = "6")]
    C6,
    #[serde(rename = "7")]
    C7,
    #[serde(rename = "8")]
    C8,
    #[serde(rename = "9")]
    C9,
    #[serde(rename = "10")]
    C10,
    #[serde(rename = "11")]
    C11,
}

/// One `recurrence` line: `RRULE`, `EXRULE`, `RDATE` or `EXDATE` (any
/// case), then `:` or `;` and the rest of an RFC 5545 line.
pub(crate) struct RecurrenceLineDoc;

impl utoipa::PartialSchema for RecurrenceLineDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(crate::request::rules::RECURRENCE_LINE))
            .into()
    }
}

impl ToSchema for RecurrenceLineDoc {}
