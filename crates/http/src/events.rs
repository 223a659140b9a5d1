//! `/calendar/events`: the application's events API. Writes land in the
//! mirror and the outbox in one transaction and are answered with 202; the
//! outbox worker pushes them to Google. Bodies use Google's event shape.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::event::{
    Attendee, Event, EventChanges, EventStatus, EventTime, NewEvent, NewEventFields, PushState,
    TimeZoneName,
};
use calsync_domain::ids::{CalendarId, EntityRef, Etag, LocalEventId};
use calsync_domain::outbox::{IdempotencyKey, OutboxState};
use calsync_domain::ports::EventQuery;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use slog::info;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::{AppState, HttpError, context};

/// Largest accepted event body: 500 attendees and an 8 KiB description fit.
pub const MAX_EVENT_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
/// How often `?wait=true` looks at the event's push state.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// A start or end, as Google writes it: `dateTime` (RFC 3339, with an
/// optional IANA `timeZone`) or `date` (all-day; an end date is exclusive).
/// Exactly one of `dateTime` and `date`; `null` counts as absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"dateTime": "2026-12-01T10:00:00+01:00", "timeZone": "Europe/Berlin"}))]
pub struct EventTimeBody {
    /// RFC 3339 with an offset, e.g. `2026-12-01T10:00:00+01:00`; the
    /// years 0001 to 9999 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub date_time: Option<String>,
    /// `YYYY-MM-DD`, e.g. `2026-12-01`; the years 0001 to 9999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Date)]
    pub date: Option<String>,
    /// An IANA zone name such as `Europe/Berlin` (ignored with `date`).
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Read-only: Google's needsAction | declined | tentative | accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Defaults to the configured calendar.
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
    #[schema(max_length = 1024)]
    pub summary: Option<String>,
    #[schema(max_length = 8192)]
    pub description: Option<String>,
    #[schema(max_length = 1024)]
    pub location: Option<String>,
    /// Both `dateTime` or both `date`; the end not before the start (an
    /// all-day end, exclusive, after it).
    pub start: EventTimeBody,
    pub end: EventTimeBody,
    #[serde(default)]
    #[schema(max_items = 500)]
    pub attendees: Vec<AttendeeBody>,
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
/// the others. At least one field must change something.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"summary": "Moved", "location": null}))]
pub struct PatchEventBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub summary: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 8192)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub location: Option<Option<String>>,
    pub start: Option<EventTimeBody>,
    pub end: Option<EventTimeBody>,
    /// Replaces the whole list.
    #[schema(max_items = 500)]
    pub attendees: Option<Vec<AttendeeBody>>,
    /// Cancel with DELETE, not with `cancelled`.
    #[schema(value_type = Option<crate::openapi::PatchStatusDoc>)]
    pub status: Option<String>,
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
    #[schema(value_type = crate::openapi::EventStatusDoc)]
    pub status: String,
    #[schema(value_type = crate::openapi::PushStateDoc)]
    pub push_state: String,
    /// The last push error, while pending after a failure or once failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
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
            created: event.created_at.to_rfc3339(),
            updated: event.updated_at.to_rfc3339(),
        }
    }
}

/// Parses a JSON body, naming the offending field (`start.dateTime`) in the error.
pub(crate) fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::InvalidBody {
            field: "body".into(),
            message: "a JSON object is required".into(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        HttpError::InvalidBody {
            field: if path == "." || path == "?" {
                "body".into()
            } else {
                path
            },
            message: error.into_inner().to_string(),
        }
    })
}

/// [`parse_body`] for bodies that may be left empty (meaning "defaults").
pub(crate) fn parse_optional_body<T: for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<Option<T>, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        parse_body(body).map(Some)
    }
}

fn invalid_at(field: &str, message: impl Into<String>) -> HttpError {
    HttpError::InvalidBody {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn event_time(field: &str, body: &EventTimeBody) -> Result<EventTime, HttpError> {
    match (&body.date_time, &body.date) {
        (Some(at), None) => {
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|_| {
                    invalid_at(
                        &format!("{field}.dateTime"),
                        "must be an RFC 3339 date-time with an offset, such as 2026-12-01T10:00:00Z",
                    )
                })?
                .with_timezone(&Utc);
            if !calsync_domain::event::in_supported_range(at) {
                return Err(invalid_at(
                    &format!("{field}.dateTime"),
                    "must fall in the years 0001 to 9999 (UTC)",
                ));
            }
            // chrono keeps a `:60` second as a leap second, which it then
            // writes back as `:60`: not a time Google or RFC 3339 readers take.
            if chrono::Timelike::nanosecond(&at) >= 1_000_000_000 {
                return Err(invalid_at(
                    &format!("{field}.dateTime"),
                    "must not name a leap second (:60)",
                ));
            }
            let time_zone = body
                .time_zone
                .as_deref()
                .map(TimeZoneName::new)
                .transpose()
                .map_err(|error| invalid_at(&format!("{field}.timeZone"), error.to_string()))?;
            Ok(EventTime::at(at, time_zone))
        }
        (None, Some(date)) => {
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                invalid_at(
                    &format!("{field}.date"),
                    "must be a date such as 2026-12-01",
                )
            })?;
            if !(1..=9999).contains(&chrono::Datelike::year(&date)) {
                return Err(invalid_at(
                    &format!("{field}.date"),
                    "must fall in the years 0001 to 9999",
                ));
            }
            Ok(EventTime::date(date))
        }
        _ => Err(invalid_at(
            field,
            "must have exactly one of dateTime and date",
        )),
    }
}

fn attendees(list: &[AttendeeBody]) -> Result<Vec<Attendee>, HttpError> {
    list.iter()
        .enumerate()
        .map(|(i, body)| {
            let mut attendee = Attendee::new(body.email.clone())
                .map_err(|error| invalid_at(&format!("attendees[{i}].email"), error.to_string()))?;
            if body.display_name.as_ref().is_some_and(|name| {
                name.chars().count() > calsync_domain::event::limits::DISPLAY_NAME_CHARS
            }) {
                return Err(invalid_at(
                    &format!("attendees[{i}].displayName"),
                    format!(
                        "must be at most {} characters",
                        calsync_domain::event::limits::DISPLAY_NAME_CHARS
                    ),
                ));
            }
            attendee.display_name = body.display_name.clone();
            attendee.optional = body.optional.unwrap_or(false);
            Ok(attendee)
        })
        .collect()
}

/// Decodes a create body into the domain's `NewEvent`, `default_calendar`
/// standing in when the body names none. The handler and the fuzz targets
/// in `fuzz/` share it.
pub fn decode_create_body(
    body: &[u8],
    default_calendar: Option<&CalendarId>,
) -> Result<NewEvent, HttpError> {
    let input: CreateEventBody = parse_body(body)?;
    let calendar_id = match (input.calendar_id.as_deref(), default_calendar) {
        (Some(id), _) => CalendarId::new(id)?,
        (None, Some(default)) => default.clone(),
        (None, None) => {
            return Err(DomainError::invalid(
                "calendarId",
                "is required (no default calendar is configured)",
            )
            .into());
        }
    };
    let entity = EntityRef::new(input.entity_type, input.entity_id)?;
    let start = event_time("start", &input.start)?;
    let end = event_time("end", &input.end)?;
    let fields = NewEventFields {
        summary: input.summary,
        description: input.description,
        location: input.location,
        attendees: attendees(&input.attendees)?,
    };
    Ok(NewEvent::new(calendar_id, entity, start, end, fields)?)
}

/// Decodes a patch body into the domain's `EventChanges`. The handler and
/// the fuzz targets in `fuzz/` share it.
pub fn decode_patch_body(body: &[u8]) -> Result<EventChanges, HttpError> {
    let input: PatchEventBody = parse_body(body)?;
    let status = match input
        .status
        .as_deref()
        .map(EventStatus::parse)
        .transpose()?
    {
        Some(EventStatus::Cancelled) => {
            return Err(DomainError::invalid("status", "cancel an event with DELETE").into());
        }
        other => other,
    };
    let changes = EventChanges {
        summary: input.summary,
        description: input.description,
        location: input.location,
        start: input
            .start
            .as_ref()
            .map(|t| event_time("start", t))
            .transpose()?,
        end: input
            .end
            .as_ref()
            .map(|t| event_time("end", t))
            .transpose()?,
        attendees: input.attendees.as_deref().map(attendees).transpose()?,
        status,
    };
    if changes.is_empty() {
        return Err(DomainError::invalid("body", "names no field to change").into());
    }
    Ok(changes)
}

pub(crate) fn calendar_or_default(
    state: &AppState,
    requested: Option<&str>,
) -> Result<CalendarId, HttpError> {
    match (requested, &state.default_calendar) {
        (Some(id), _) => Ok(CalendarId::new(id)?),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(DomainError::invalid(
            "calendarId",
            "is required (no default calendar is configured)",
        )
        .into()),
    }
}

fn if_match(request: &HttpRequest) -> Result<Option<Etag>, HttpError> {
    let Some(value) = request.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| DomainError::InvalidHeader {
        header: "If-Match",
        reason: "must be visible ASCII".into(),
    })?;
    // `*` matches any current representation: no precondition.
    if value.trim() == "*" {
        return Ok(None);
    }
    Etag::new(value.trim()).map(Some).map_err(|error| {
        DomainError::InvalidHeader {
            header: "If-Match",
            reason: error.to_string(),
        }
        .into()
    })
}

fn event_id(path: &str) -> Result<LocalEventId, HttpError> {
    LocalEventId::parse(path).map_err(|_| DomainError::NotFound { what: "event" }.into())
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

/// The last push error recorded for the event, if any.
async fn push_error(state: &AppState, event: &Event) -> Result<Option<String>, HttpError> {
    // Why the last write did not apply: deleted at Google, or a conflict.
    if let Some(note) = &event.push_note {
        return Ok(Some(note.clone()));
    }
    if event.push_state == PushState::Synced {
        return Ok(None);
    }
    let rows = state.store.outbox_for_event(event.id).await?;
    Ok(rows
        .iter()
        .rev()
        .filter(|row| row.state != OutboxState::Done)
        .find_map(|row| row.last_error.clone()))
}

/// Answers a write: 202 at once, or with `wait`, Google's verdict.
async fn answer_write(
    state: &AppState,
    event: Event,
    done: StatusCode,
    wait: bool,
) -> Result<HttpResponse, HttpError> {
    state.outbox_wakeup.notify_one();
    if !wait {
        return Ok(HttpResponse::Accepted().json(EventResource::new(&event, None)));
    }
    let deadline = Instant::now() + state.write_wait;
    loop {
        let current = state
            .store
            .get_event(event.id)
            .await?
            .ok_or(DomainError::NotFound { what: "event" })?;
        match current.push_state {
            PushState::Synced if current.push_note.is_some() => {
                let note = current.push_note.clone();
                return Err(HttpError::DeletedAtGoogle {
                    event: Box::new(EventResource::new(&current, note)),
                });
            }
            PushState::Conflict => {
                let reason = current.push_note.clone().unwrap_or_default();
                return Err(HttpError::PushFailed {
                    conflict: true,
                    event: Box::new(EventResource::new(&current, Some(reason.clone()))),
                    reason,
                });
            }
            PushState::Synced => {
                return Ok(HttpResponse::build(done).json(EventResource::new(&current, None)));
            }
            PushState::Failed => {
                let reason = push_error(state, &current)
                    .await?
                    .unwrap_or_else(|| "Google refused the change".into());
                // The outbox records the domain error's text; a precondition
                // failure reads as the domain formats that kind.
                let conflict_prefix = DomainError::provider(
                    calsync_domain::ProviderErrorKind::PreconditionFailed,
                    "",
                )
                .to_string();
                return Err(HttpError::PushFailed {
                    conflict: reason.starts_with(&conflict_prefix),
                    event: Box::new(EventResource::new(&current, Some(reason.clone()))),
                    reason,
                });
            }
            PushState::Pending if Instant::now() >= deadline => {
                let error = push_error(state, &current).await?;
                return Ok(HttpResponse::Accepted().json(EventResource::new(&current, error)));
            }
            PushState::Pending => tokio::time::sleep(WAIT_POLL).await,
        }
    }
}

fn idempotency_key(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, HttpError> {
    let Some(value) = request.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| DomainError::InvalidHeader {
        header: "Idempotency-Key",
        reason: "must be visible ASCII".into(),
    })?;
    // The caller's credential is part of the fingerprint: another API client
    // reusing the key is refused, never handed this client's event.
    let credential = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(Sha256::digest(credential));
    hasher.update(body);
    let fingerprint = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok(Some(IdempotencyKey::new(key, fingerprint)?))
}

/// Creates an event for an entity and queues it for Google.
#[utoipa::path(
    post, path = "/calendar/events", tag = "events", operation_id = "createEvent",
    params(WaitQuery, ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST (same body, same credential) return the first result, with `Idempotent-Replayed: true`; 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$")),
    request_body = CreateEventBody,
    responses(
        (status = 202, description = "Stored and queued for Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 201, description = "With wait=true: Google has it", body = EventResource),
        (status = 400, description = "Invalid body, query parameter or `Idempotency-Key`; `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 409, description = "With wait=true: the event was deleted in Google (`deleted_at_google`); it is cancelled here too", body = crate::error::WriteErrorBody),
        (status = 413, description = "The body exceeds 256 KiB", body = crate::error::ErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different body or credential", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the event (`google_refused`)", body = crate::error::WriteErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<WaitQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let key = idempotency_key(&request, &body)?;
    let new = decode_create_body(&body, state.default_calendar.as_ref())?;
    let (event, replayed) = match &key {
        Some(key) => {
            let created = state.events.create_idempotent(new, key).await?;
            (created.event, created.replayed)
        }
        None => (state.events.create(new).await?.0, false),
    };
    let log = context::logger(&request, &state);
    if replayed {
        info!(log, "event create replayed for its idempotency key";
            "action" => "event_create", "status" => "replayed", "event_id" => event.id.to_string());
    } else {
        info!(log, "event created";
            "action" => "event_create", "status" => "queued", "event_id" => event.id.to_string(),
            "calendar_id" => event.calendar_id.to_string(), "google_event_id" => event.google_event_id.to_string());
    }
    let mut response = answer_write(&state, event, StatusCode::CREATED, query.wait).await?;
    if replayed {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<String>,
    /// With `entityId`: only this entity's events.
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: Option<String>,
    /// With `entityType`.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub entity_id: Option<String>,
    #[param(value_type = Option<crate::openapi::EventStatusDoc>)]
    pub status: Option<String>,
    /// RFC 3339 with an offset: events ending after this instant.
    #[param(format = DateTime)]
    pub time_min: Option<String>,
    /// RFC 3339 with an offset: events starting before this instant.
    #[param(format = DateTime)]
    pub time_max: Option<String>,
    /// Page size, 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `nextPageToken` (opaque).
    pub page_token: Option<String>,
}

fn instant(field: &'static str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, HttpError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    DomainError::invalid(field, "must be an RFC 3339 date-time with an offset")
                        .into()
                })
                .and_then(|at| {
                    if calsync_domain::event::in_supported_range(at) {
                        Ok(at)
                    } else {
                        Err(calsync_domain::event::out_of_range(field).into())
                    }
                })
        })
        .transpose()
}

fn page_token(event: &Event) -> String {
    format!("{}.{}", event.start.sort_key().timestamp_micros(), event.id)
}

/// Decodes a `pageToken`. Only what [`page_token`] writes is accepted (it
/// must read back as the same text) and only a start an event can have: a
/// cursor beyond the stored range would reach the database as a timestamp
/// Postgres cannot hold (a 503 instead of this 400).
pub fn parse_page_token(token: &str) -> Result<(DateTime<Utc>, LocalEventId), HttpError> {
    let invalid = || DomainError::invalid("pageToken", "is not a token this API returned");
    let (micros, id) = token.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let id = LocalEventId::parse(id).map_err(|_| invalid())?;
    if format!("{micros}.{id}") != token {
        return Err(invalid().into());
    }
    let start = DateTime::from_timestamp_micros(micros)
        .filter(|start| calsync_domain::event::in_supported_range(*start))
        .ok_or_else(invalid)?;
    Ok((start, id))
}

/// Lists mirrored events, ordered by start, with cursor pagination.
#[utoipa::path(
    get, path = "/calendar/events", tag = "events", operation_id = "listEvents", params(ListQuery),
    responses(
        (status = 200, description = "One page, ordered by start", body = EventPage),
        (status = 400, description = "An invalid or unknown query parameter; `error.field` names it", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let entity = match (&query.entity_type, &query.entity_id) {
        (Some(kind), Some(id)) => Some(EntityRef::new(kind.clone(), id.clone())?),
        (None, None) => None,
        (Some(_), None) => {
            return Err(DomainError::invalid("entityId", "is required with entityType").into());
        }
        (None, Some(_)) => {
            return Err(DomainError::invalid("entityType", "is required with entityId").into());
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(DomainError::invalid("limit", format!("must be 1 to {MAX_PAGE_SIZE}")).into());
    }
    let filter = EventQuery {
        calendar_id: query
            .calendar_id
            .as_deref()
            .map(CalendarId::new)
            .transpose()?,
        entity,
        status: query
            .status
            .as_deref()
            .map(EventStatus::parse)
            .transpose()?,
        ends_after: instant("timeMin", query.time_min.as_deref())?,
        starts_before: instant("timeMax", query.time_max.as_deref())?,
        after: query
            .page_token
            .as_deref()
            .map(parse_page_token)
            .transpose()?,
        // One more than asked tells whether another page exists.
        limit: limit + 1,
    };
    let mut events = state.store.list_events(&filter).await?;
    let next_page_token = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(page_token)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(EventPage {
        items: events.iter().map(|e| EventResource::new(e, None)).collect(),
        next_page_token,
    }))
}

/// One event, with its last push error if it is not synced.
#[utoipa::path(
    get, path = "/calendar/events/{id}", tag = "events", operation_id = "getEvent",
    params(("id" = String, Path, description = "calsync's event id (a UUID); anything else is a 404")),
    responses(
        (status = 200, description = "The event", body = EventResource, headers(("ETag" = String, description = "Google's etag, for If-Match (absent until Google has the event)"))),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 404, description = "No such event", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = event_id(&path)?;
    let event = state
        .store
        .get_event(id)
        .await?
        .ok_or(DomainError::NotFound { what: "event" })?;
    let error = push_error(&state, &event).await?;
    let mut response = HttpResponse::Ok();
    if let Some(etag) = &event.etag {
        response.insert_header((actix_web::http::header::ETAG, etag.as_str()));
    }
    Ok(response.json(EventResource::new(&event, error)))
}

/// Changes an event; with `If-Match`, only if its etag is still that one.
#[utoipa::path(
    patch, path = "/calendar/events/{id}", tag = "events", operation_id = "updateEvent",
    params(("id" = String, Path, description = "calsync's event id (a UUID); anything else is a 404"), WaitQuery, ("If-Match" = Option<String>, Header, description = "`*`, or the etag the change is based on (the `ETag` header or the event's `etag`); visible ASCII, at most 256 characters", min_length = 1, max_length = 256, pattern = r"^[\x20-\x7E]+$")),
    request_body = PatchEventBody,
    responses(
        (status = 202, description = "Stored and queued for Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 200, description = "With wait=true: Google has it", body = EventResource),
        (status = 400, description = "Invalid body, query parameter or `If-Match`, or a body that changes nothing; `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 404, description = "No such event", body = crate::error::ErrorBody),
        (status = 409, description = "The event is cancelled (`conflict`); with wait=true, it was found deleted in Google (`deleted_at_google`, with `event`) and is cancelled here too", body = crate::error::WriteErrorBody),
        (status = 412, description = "`If-Match` no longer matches (`precondition_failed`); with wait=true, also when the same fields changed in Google meanwhile (the event, `pushState: conflict`, keeps Google's version)", body = crate::error::WriteErrorBody),
        (status = 413, description = "The body exceeds 256 KiB", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the change (`google_refused`)", body = crate::error::WriteErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<WaitQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let id = event_id(&path)?;
    let if_match = if_match(&request)?;
    let changes = decode_patch_body(&body)?;
    if changes.is_empty() {
        return Err(DomainError::invalid("body", "names no field to change").into());
    }
    let (event, _) = state.events.update(id, &changes, if_match).await?;
    info!(context::logger(&request, &state), "event changed";
        "action" => "event_update", "status" => "queued", "event_id" => event.id.to_string());
    answer_write(&state, event, StatusCode::OK, query.wait).await
}

/// Cancels an event here and deletes it at Google.
#[utoipa::path(
    delete, path = "/calendar/events/{id}", tag = "events", operation_id = "deleteEvent",
    params(("id" = String, Path, description = "calsync's event id (a UUID); anything else is a 404"), WaitQuery, ("If-Match" = Option<String>, Header, description = "`*`, or the etag the change is based on (the `ETag` header or the event's `etag`); visible ASCII, at most 256 characters", min_length = 1, max_length = 256, pattern = r"^[\x20-\x7E]+$")),
    responses(
        (status = 202, description = "Cancelled and queued for deletion at Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 200, description = "Already cancelled, or with wait=true: deleted at Google", body = EventResource),
        (status = 400, description = "An invalid query parameter or `If-Match`; `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 404, description = "No such event", body = crate::error::ErrorBody),
        (status = 412, description = "`If-Match` no longer matches (`precondition_failed`)", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the deletion (`google_refused`)", body = crate::error::WriteErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, HttpError> {
    let id = event_id(&path)?;
    let if_match = if_match(&request)?;
    let current = state
        .store
        .get_event(id)
        .await?
        .ok_or(DomainError::NotFound { what: "event" })?;
    if current.status == EventStatus::Cancelled {
        // Already cancelled: deleting again changes nothing.
        return Ok(HttpResponse::Ok().json(EventResource::new(&current, None)));
    }
    let (event, _) = state.events.cancel(id, if_match).await?;
    info!(context::logger(&request, &state), "event cancelled";
        "action" => "event_delete", "status" => "queued", "event_id" => event.id.to_string());
    answer_write(&state, event, StatusCode::OK, query.wait).await
}

/// `POST /calendar/sync`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequestBody {
    /// Defaults to the configured calendar.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$",
        example = "primary"
    )]
    pub calendar_id: Option<String>,
    /// A full sync (re-reads everything, catches deletions) instead of an incremental one.
    #[serde(default)]
    pub full: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncQueued {
    pub calendar_id: String,
    pub full: bool,
    /// Always `queued`: the sync worker runs it next.
    pub status: &'static str,
}

/// Queues a sync of a calendar; the sync worker starts it at once.
#[utoipa::path(
    post, path = "/calendar/sync", tag = "sync", operation_id = "requestSync",
    request_body(content = SyncRequestBody, description = "Optional: an empty body means the default calendar, incremental. `null` is refused."),
    responses(
        (status = 202, description = "Queued", body = SyncQueued),
        (status = 400, description = "Invalid body or calendarId; `error.field` names it", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = crate::error::ErrorBody),
        (status = 413, description = "The body exceeds 256 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable: retry", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn request_sync(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let input: SyncRequestBody = parse_optional_body(&body)?.unwrap_or_default();
    let calendar_id = calendar_or_default(&state, input.calendar_id.as_deref())?;
    state.store.mark_dirty(&calendar_id, input.full).await?;
    state.sync_wakeup.notify_one();
    info!(context::logger(&request, &state), "sync requested";
        "action" => "sync_request", "status" => "queued", "calendar_id" => calendar_id.to_string(), "full" => input.full);
    Ok(HttpResponse::Accepted().json(SyncQueued {
        calendar_id: calendar_id.to_string(),
        full: input.full,
        status: "queued",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_bad_field() {
        let error = parse_body::<CreateEventBody>(
            br#"{"entityType":"deal","entityId":"1","start":{"dateTime":5},"end":{}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&error, HttpError::InvalidBody { field, .. } if field == "start.dateTime"),
            "{error:?}"
        );
        let error = parse_body::<CreateEventBody>(br#"{"entityType":"deal"}"#).unwrap_err();
        assert!(
            matches!(&error, HttpError::InvalidBody { message, .. } if message.contains("entityId")),
            "{error:?}"
        );
        assert!(parse_body::<CreateEventBody>(b"  ").is_err());
    }

    #[test]
    fn times_are_dates_or_instants_never_both() {
        let both = EventTimeBody {
            date_time: Some("2026-12-01T10:00:00Z".into()),
            date: Some("2026-12-01".into()),
            time_zone: None,
        };
        assert!(event_time("start", &both).is_err());
        let bad_zone = EventTimeBody {
            date_time: Some("2026-12-01T10:00:00+01:00".into()),
            time_zone: Some("not a zone".into()),
            date: None,
        };
        assert!(
            matches!(event_time("end", &bad_zone), Err(HttpError::InvalidBody { field, .. }) if field == "end.timeZone")
        );
        let at = event_time(
            "start",
            &EventTimeBody {
                date_time: Some("2026-12-01T10:00:00+01:00".into()),
                ..EventTimeBody::default()
            },
        )
        .unwrap();
        assert_eq!(at.sort_key().to_rfc3339(), "2026-12-01T09:00:00+00:00");
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = LocalEventId::new();
        let start = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        let token = format!("{}.{}", start.timestamp_micros(), id);
        assert_eq!(parse_page_token(&token).unwrap(), (start, id));
        for bad in ["", "x", "1.2", "abc.def"] {
            assert!(parse_page_token(bad).is_err(), "{bad}");
        }
    }
}
