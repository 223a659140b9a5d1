//! `/calendar/freebusy` and `/calendar/availability`: scheduling questions
//! answered from the mirror (docs/FREEBUSY.md), in Google's `freeBusy`
//! shape, with Google itself as the fallback for stale calendars.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::event::TimeZoneName;
use calsync_domain::freebusy::{Interval, ParticipantGroup, Required};
use calsync_domain::ids::CalendarId;
use calsync_domain::services::{AvailabilityQuery, BusySource, CalendarBusy, FreeBusyRequest};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::events::instant;
use crate::openapi::responses::{BodyTooLarge, StoreUnavailable, Unauthorized};
use crate::request::parse_body;
use crate::{AppState, HttpError};

/// Google's `freeBusy.query` request, as calsync takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "timeMin": "2030-03-04T00:00:00Z", "timeMax": "2030-03-09T00:00:00Z",
    "timeZone": "Europe/Berlin", "items": [{"id": "ana@example.com"}, {"id": "team@example.com"}]
}))]
pub struct FreeBusyBody {
    /// The window's start: RFC 3339 with an offset and a `T`, no leap
    /// second, the years 0001 to 9999 in UTC.
    #[schema(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub time_min: String,
    /// The window's end, written as `timeMin` is: after it, and at most 90
    /// days later (else a 400 naming `timeMax`).
    #[schema(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub time_max: String,
    /// The IANA zone all-day events are read in (an all-day event is busy
    /// from midnight to midnight there); default UTC. A name the IANA
    /// database does not know is a 400 naming `timeZone`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
    )]
    pub time_zone: Option<String>,
    /// Google's; accepted for compatibility (calsync answers for
    /// calendars, not groups).
    #[schema(minimum = 1, maximum = 100)]
    pub group_expansion_max: Option<u32>,
    /// Google's; accepted for compatibility.
    #[schema(minimum = 1, maximum = 50)]
    pub calendar_expansion_max: Option<u32>,
    /// The calendars, at most 50.
    #[schema(max_items = 50)]
    pub items: Vec<FreeBusyItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreeBusyItem {
    /// A calendar id.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FreeBusyParams {
    /// `google`: calendars the mirror cannot vouch for (`stale`) are
    /// answered by Google's `freeBusy.query` instead (chunked by 50), at
    /// the cost of Google quota; the others still come from the mirror.
    #[param(pattern = "^google$")]
    pub fallback: Option<String>,
}

/// A busy span, half-open `[start, end)`, RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusyResource {
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
}

/// Why a calendar has no answer, in Google's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusyErrorResource {
    /// `global` for Google's reasons, `calsync` for a fallback that failed.
    pub domain: String,
    /// `notFound`: calsync does not manage the calendar (or, with the
    /// fallback, Google cannot reach it); `fallbackFailed: ...`.
    pub reason: String,
}

/// One calendar's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarBusyResource {
    /// Merged and sorted, clipped to the window.
    pub busy: Vec<BusyResource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<BusyErrorResource>,
    /// When the calendar last synced successfully; absent if it never did
    /// or calsync does not manage it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub synced_at: Option<String>,
    /// Not synced successfully within `CALSYNC_FREEBUSY_STALE_SECS`, or
    /// waiting for its access to be reconnected: the mirror may miss
    /// recent changes (ask with `fallback=google`).
    pub stale: bool,
    /// `mirror`, or `google` when the fallback answered.
    #[schema(inline, value_type = SourceDoc)]
    pub source: &'static str,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub enum SourceDoc {
    #[schema(rename = "mirror")]
    Mirror,
    #[schema(rename = "google")]
    Google,
}

/// Google's `calendar#freeBusy` answer, each calendar with `syncedAt`,
/// `stale` and `source` beside Google's fields.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreeBusyResource {
    /// `calendar#freeBusy`.
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub time_min: String,
    #[schema(format = DateTime)]
    pub time_max: String,
    /// By calendar id.
    pub calendars: BTreeMap<String, CalendarBusyResource>,
}

/// When free time is sought.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodBody {
    /// Written as `timeMin` is.
    #[schema(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub start: String,
    /// After `start` (else a 400 naming `periods`).
    #[schema(
        format = DateTime,
        pattern = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub end: String,
}

/// A group of calendars and how many of them must be free.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParticipantBody {
    /// Calendar ids (1 to 1024 characters, no whitespace).
    #[schema(min_items = 1, max_items = 50)]
    pub calendar_ids: Vec<String>,
    /// `"all"` (the default) or how many must be free, from 1 to the
    /// group's size (above it, a 400 naming `participants.required`).
    #[schema(value_type = Option<Value>)]
    pub required: Option<serde_json::Value>,
}

/// An availability question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "participants": [{"calendarIds": ["ana@example.com", "bo@example.com"], "required": "all"},
                     {"calendarIds": ["room-1@example.com", "room-2@example.com"], "required": 1}],
    "durationMinutes": 30, "intervalMinutes": 15, "bufferMinutes": 5,
    "periods": [{"start": "2030-03-04T09:00:00+01:00", "end": "2030-03-04T17:00:00+01:00"}],
    "timeZone": "Europe/Berlin"
}))]
pub struct AvailabilityBody {
    /// At most 50 calendars in all (else a 400 naming `participants`).
    #[schema(min_items = 1, max_items = 50)]
    pub participants: Vec<ParticipantBody>,
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_minutes: u32,
    /// Slots start on this grid from local midnight; default
    /// `durationMinutes`.
    #[schema(minimum = 1, maximum = 1440)]
    pub interval_minutes: Option<u32>,
    /// Free time kept before and after each slot; default 0.
    #[schema(minimum = 0, maximum = 1440)]
    pub buffer_minutes: Option<u32>,
    /// Where slots may lie; together spanning at most 90 days (else a 400
    /// naming `periods`).
    #[schema(min_items = 1, max_items = 100)]
    pub periods: Vec<PeriodBody>,
    /// The zone of the slot grid and of all-day events; default UTC.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
    )]
    pub time_zone: Option<String>,
}

/// A slot every group can meet in.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotResource {
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// Every participant calendar free for the slot.
    pub calendar_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityResource {
    /// In time order, at most 1000.
    pub slots: Vec<SlotResource>,
    /// Participant calendars whose mirror is stale (see `freebusy`).
    pub stale_calendars: Vec<String>,
}

/// RFC 3339 in UTC, as Google writes it: seconds unless there is a fraction.
fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn zone(value: Option<&str>) -> Result<Tz, HttpError> {
    let Some(value) = value else {
        return Ok(Tz::UTC);
    };
    let name = TimeZoneName::new(value)?;
    name.as_str()
        .parse::<Tz>()
        .map_err(|_| DomainError::invalid("timeZone", "must be an IANA time zone name").into())
}

fn bad_required() -> HttpError {
    DomainError::invalid(
        "participants.required",
        "must be \"all\" or a number from 1 to 50",
    )
    .into()
}

fn required_instant(field: &'static str, value: &str) -> Result<DateTime<Utc>, HttpError> {
    instant(field, Some(value))?.ok_or_else(|| DomainError::invalid(field, "is required").into())
}

fn calendar_busy(answer: &CalendarBusy) -> CalendarBusyResource {
    CalendarBusyResource {
        busy: answer
            .busy
            .iter()
            .map(|b| BusyResource {
                start: utc(b.start),
                end: utc(b.end),
            })
            .collect(),
        errors: answer
            .errors
            .iter()
            .map(|e| BusyErrorResource {
                domain: e.domain.to_owned(),
                reason: e.reason.clone(),
            })
            .collect(),
        synced_at: answer.synced_at.map(utc),
        stale: answer.stale,
        source: match answer.source {
            BusySource::Mirror => "mirror",
            BusySource::Google => "google",
        },
    }
}

/// Busy time of up to 50 calendars, from the mirror: no Google call
/// unless `fallback=google` and a calendar is stale.
#[utoipa::path(
    post, path = "/calendar/freebusy", tag = "scheduling", operation_id = "queryFreeBusy",
    params(FreeBusyParams),
    request_body = FreeBusyBody,
    responses(
        (status = 200, description = "Each calendar's busy time; a calendar calsync does not manage answers `errors: [{domain: global, reason: notFound}]`", body = FreeBusyResource),
        (status = 400, description = "Invalid body or query: `error.field` names it (`timeMax` before `timeMin` or more than 90 days after it, more than 50 `items`, an unknown `timeZone`)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn free_busy(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<FreeBusyParams>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let fallback = match query.fallback.as_deref() {
        None => false,
        Some("google") => true,
        Some(_) => return Err(DomainError::invalid("fallback", "must be google").into()),
    };
    let input: FreeBusyBody = parse_body(&body)?;
    let time_min = required_instant("timeMin", &input.time_min)?;
    let time_max = required_instant("timeMax", &input.time_max)?;
    let zone = zone(input.time_zone.as_deref())?;
    // Google's limits on its own fields hold even though calsync ignores them.
    if input
        .group_expansion_max
        .is_some_and(|n| !(1..=100).contains(&n))
    {
        return Err(DomainError::invalid("groupExpansionMax", "must be 1 to 100").into());
    }
    if input
        .calendar_expansion_max
        .is_some_and(|n| !(1..=50).contains(&n))
    {
        return Err(DomainError::invalid("calendarExpansionMax", "must be 1 to 50").into());
    }
    if input.items.len() > calsync_domain::freebusy::MAX_CALENDARS {
        return Err(DomainError::invalid("items", "at most 50 calendars").into());
    }
    let calendars = input
        .items
        .into_iter()
        .map(|item| CalendarId::new(item.id))
        .collect::<Result<Vec<_>, _>>()?;
    let answers = state
        .freebusy
        .free_busy(&FreeBusyRequest {
            time_min,
            time_max,
            zone,
            calendars,
            fallback,
        })
        .await?;
    Ok(HttpResponse::Ok().json(FreeBusyResource {
        kind: "calendar#freeBusy",
        time_min: utc(time_min),
        time_max: utc(time_max),
        calendars: answers
            .iter()
            .map(|a| (a.calendar_id.to_string(), calendar_busy(a)))
            .collect(),
    }))
}

/// Slots of `durationMinutes` on the interval grid, inside the periods,
/// free for every group, from the mirror.
#[utoipa::path(
    post, path = "/calendar/availability", tag = "scheduling", operation_id = "findAvailability",
    request_body = AvailabilityBody,
    responses(
        (status = 200, description = "The free slots", body = AvailabilityResource),
        (status = 400, description = "Invalid body: `error.field` names it (a period ending before it starts, periods spanning more than 90 days, more than 50 calendars, `required` above its group's size, an unknown `timeZone`)", body = crate::error::ErrorBody),
        (status = 422, description = "A participant calendar calsync does not manage (`participants`)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn availability(
    _: Authenticated,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let input: AvailabilityBody = parse_body(&body)?;
    let zone = zone(input.time_zone.as_deref())?;
    let mut groups = Vec::with_capacity(input.participants.len());
    for participant in input.participants {
        let required = match &participant.required {
            None => Required::All,
            Some(serde_json::Value::String(word)) if word == "all" => Required::All,
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(n @ 1..=50) => Required::AtLeast(n as usize),
                _ => return Err(bad_required()),
            },
            Some(_) => return Err(bad_required()),
        };
        let calendar_ids = participant
            .calendar_ids
            .into_iter()
            .map(CalendarId::new)
            .collect::<Result<Vec<_>, _>>()?;
        groups.push(ParticipantGroup {
            calendar_ids,
            required,
        });
    }
    let mut periods = Vec::with_capacity(input.periods.len());
    for period in &input.periods {
        let start = required_instant("periods.start", &period.start)?;
        let end = required_instant("periods.end", &period.end)?;
        periods.push(Interval::new(start, end).ok_or_else(|| {
            DomainError::invalid("periods", "each period's end must be after its start")
        })?);
    }
    let duration = Duration::minutes(i64::from(input.duration_minutes));
    let availability = state
        .freebusy
        .availability(&AvailabilityQuery {
            groups,
            duration,
            interval: input
                .interval_minutes
                .map_or(duration, |m| Duration::minutes(i64::from(m))),
            buffer: Duration::minutes(i64::from(input.buffer_minutes.unwrap_or(0))),
            periods,
            zone,
        })
        .await?;
    Ok(HttpResponse::Ok().json(AvailabilityResource {
        slots: availability
            .slots
            .iter()
            .map(|slot| SlotResource {
                start: utc(slot.interval.start),
                end: utc(slot.interval.end),
                calendar_ids: slot.calendar_ids.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        stale_calendars: availability.stale.iter().map(ToString::to_string).collect(),
    }))
}
