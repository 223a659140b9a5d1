//! The `/calendar/events` handlers. Writes land in the mirror and the
//! outbox in one transaction and are answered with 202 (or, with `wait`,
//! Google's verdict); the outbox worker pushes them to Google.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::event::{Event, EventQuery, EventStatus, EventType};
use calsync_domain::ids::{CalendarId, EntityRef, LocalEventId};
use calsync_domain::outbox::IdempotencyKey;
use calsync_domain::services::{OccurrenceQuery, OccurrenceRef, WriteVerdict};
use sha2::{Digest, Sha256};
use slog::info;

use crate::auth::Authenticated;
use crate::openapi::responses::{BodyTooLarge, EventNotFound, StoreUnavailable, Unauthorized};
use crate::request::rules;
use crate::{AppState, HttpError, context};

use super::body::*;
use super::decode::*;
use crate::request::if_match;

fn event_id(path: &str) -> Result<LocalEventId, HttpError> {
    LocalEventId::parse(path).map_err(|_| DomainError::NotFound { what: "event" }.into())
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
    match state.events.verdict(&event, state.write_wait).await? {
        WriteVerdict::Applied(current) => {
            Ok(HttpResponse::build(done).json(EventResource::new(&current, None)))
        }
        WriteVerdict::DeletedAtGoogle(current) => {
            let note = current.push_note.clone();
            Err(HttpError::DeletedAtGoogle {
                event: Box::new(EventResource::new(&current, note)),
            })
        }
        WriteVerdict::Refused {
            event,
            reason,
            conflict,
        } => Err(HttpError::PushFailed {
            conflict,
            event: Box::new(EventResource::new(&event, Some(reason.clone()))),
            reason,
        }),
        WriteVerdict::Pending { event, last_error } => {
            Ok(HttpResponse::Accepted().json(EventResource::new(&event, last_error)))
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
    params(WaitQuery, ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST (same body, same credential) return the first result, with `Idempotent-Replayed: true`; 1 to 255 visible ASCII characters. Reused with another body or credential: a 422 (`idempotency_key_reused`)", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$")),
    request_body = CreateEventBody,
    responses(
        (status = 202, description = "Stored and queued for Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 201, description = "With wait=true: Google has it", body = EventResource),
        (status = 400, description = "Invalid body, query parameter or `Idempotency-Key`, an unknown query parameter, or an `end` before its `start`; `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 409, description = "With wait=true: the event was deleted in Google (`deleted_at_google`); it is cancelled here too", body = crate::error::WriteErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different body or credential (`idempotency_key_reused`), a `recurrence` line that does not parse (`unprocessable`, the message names the line), a timed series without its zone (`error.field` is `start.timeZone` or `end.timeZone`: Google requires it for recurring events), or attendees on a calendar acted on as the service account itself, without domain-wide delegation (`error.field` is `attendees`)", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the event (`google_refused`)", body = crate::error::WriteErrorBody),
        Unauthorized, BodyTooLarge, StoreUnavailable,
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

/// Lists mirrored events, ordered by start, with cursor pagination.
#[utoipa::path(
    get, path = "/calendar/events", tag = "events", operation_id = "listEvents", params(ListQuery),
    responses(
        (status = 200, description = "One page, ordered by start", body = EventPage),
        (status = 400, description = "An invalid or unknown query parameter, or one without the parameter it needs (`entityType` and `entityId` go together; `singleEvents=true` needs `timeMax`, takes no `status=cancelled`, and is the only listing that takes a `pageToken` with an occurrence suffix); `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, StoreUnavailable,
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
    let with_google = include_google(query.include.as_deref())?;
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
        event_type: query
            .event_type
            .as_deref()
            .map(|name| {
                if rules::is_event_type(name) {
                    Ok(EventType::parse(name))
                } else {
                    Err(DomainError::invalid("eventType", "must be 1 to 64 letters"))
                }
            })
            .transpose()?,
        ends_after: instant("timeMin", query.time_min.as_deref())?,
        starts_before: instant("timeMax", query.time_max.as_deref())?,
        // One more than asked tells whether another page exists.
        limit: limit + 1,
        ..EventQuery::default()
    };
    let show = |event: &Event, resource: EventResource| {
        if with_google {
            resource.with_google(event)
        } else {
            resource
        }
    };
    if query.single_events == Some(true) {
        let until = filter.starts_before.ok_or_else(|| {
            DomainError::invalid(
                "timeMax",
                "is required with singleEvents=true (a series may have no end)",
            )
        })?;
        let occurrences = OccurrenceQuery {
            from: filter.ends_after,
            until,
            after: query
                .page_token
                .as_deref()
                .map(parse_listed_page_token)
                .transpose()?,
            limit: limit + 1,
            filter,
        };
        let mut listed = state.events.list_occurrences(&occurrences).await?;
        let next_page_token = if listed.len() > limit as usize {
            listed.truncate(limit as usize);
            listed.last().map(listed_page_token)
        } else {
            None
        };
        return Ok(HttpResponse::Ok().json(EventPage {
            items: listed
                .iter()
                .map(|l| show(l.event(), EventResource::listed(l)))
                .collect(),
            next_page_token,
        }));
    }
    let filter = EventQuery {
        after: query
            .page_token
            .as_deref()
            .map(parse_page_token)
            .transpose()?,
        ..filter
    };
    let mut events = state.events.list(&filter).await?;
    let next_page_token = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(page_token)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(EventPage {
        items: events
            .iter()
            .map(|e| show(e, EventResource::new(e, None)))
            .collect(),
        next_page_token,
    }))
}

fn include_google(include: Option<&str>) -> Result<bool, HttpError> {
    match include {
        None => Ok(false),
        Some("google") => Ok(true),
        Some(_) => Err(DomainError::invalid("include", "must be google").into()),
    }
}

/// What an event path names: a row, or one occurrence of a series.
enum Target {
    Row(LocalEventId),
    Occurrence(OccurrenceRef),
}

fn target(path: &str) -> Result<Target, HttpError> {
    // Only the documented forms: `uuid` alone also reads braced,
    // `urn:uuid:` and unhyphenated ids.
    if !rules::is_event_id(path) {
        return Err(DomainError::NotFound { what: "event" }.into());
    }
    if let Some(reference) = OccurrenceRef::parse(path) {
        return Ok(Target::Occurrence(reference));
    }
    event_id(path).map(Target::Row)
}

/// One event, with its last push error if it is not synced. A deleted
/// event is cancelled, not gone: it is answered (`status: cancelled`)
/// until retention removes it, as Google shows deleted events.
#[utoipa::path(
    get, path = "/calendar/events/{id}", tag = "events", operation_id = "getEvent",
    params(("id" = String, Path, description = "calsync's event id (a hyphenated UUID), or an occurrence's as listed with singleEvents=true (`{id}_{YYYYMMDDTHHMMSSZ}`, all-day `{id}_{YYYYMMDD}`); anything else is a 404", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(_[0-9]{8}(T[0-9]{6}Z)?)?$"), GetQuery),
    responses(
        (status = 200, description = "The event", body = EventResource, headers(("ETag" = String, description = "Google's etag, for If-Match (absent until Google has the event)"))),
        (status = 400, description = "An invalid or unknown query parameter; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, EventNotFound, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, HttpError> {
    let with_google = include_google(query.include.as_deref())?;
    let (event, mut resource) = match target(&path)? {
        Target::Row(id) => {
            let event = state.events.get(id).await?;
            let resource = EventResource::new(&event, state.events.last_push_error(&event).await?);
            (event, resource)
        }
        Target::Occurrence(reference) => {
            let listed = state.events.occurrence(&reference).await?;
            let event = listed.event().clone();
            let mut resource = EventResource::listed(&listed);
            resource.push_error = state.events.last_push_error(&event).await?;
            (event, resource)
        }
    };
    if with_google {
        resource = resource.with_google(&event);
    }
    let mut response = HttpResponse::Ok();
    if let Some(etag) = &event.etag {
        response.insert_header((actix_web::http::header::ETAG, etag.as_str()));
    }
    Ok(response.json(resource))
}

/// Changes an event; with `If-Match`, only if its etag is still that one.
#[utoipa::path(
    patch, path = "/calendar/events/{id}", tag = "events", operation_id = "updateEvent",
    params(("id" = String, Path, description = "calsync's event id (a hyphenated UUID), or an occurrence's as listed with singleEvents=true: a change to one occurrence makes it an exception at Google; anything else is a 404", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(_[0-9]{8}(T[0-9]{6}Z)?)?$"), WaitQuery, ("If-Match" = Option<String>, Header, description = "`*`, or the etag the change is based on (the `ETag` header or the event's `etag`); visible ASCII, at most 256 characters", min_length = 1, max_length = 256, pattern = r"^[\x20-\x7E]*[\x21-\x7E][\x20-\x7E]*$")),
    request_body = PatchEventBody,
    responses(
        (status = 202, description = "Stored and queued for Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 200, description = "With wait=true: Google has it", body = EventResource),
        (status = 400, description = "Invalid body, query parameter or `If-Match`, an unknown query parameter, a body that changes nothing, or a start or end that does not fit the other (`end`); `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 409, description = "The event is cancelled (`conflict`), or an occurrence changed concurrently (`conflict`: try again); with wait=true, it was found deleted in Google (`deleted_at_google`, with `event`) and is cancelled here too", body = crate::error::WriteErrorBody),
        (status = 412, description = "`If-Match` no longer matches (`precondition_failed`), or names an occurrence with no etag of its own yet; with wait=true, also when the same fields changed in Google meanwhile (the event, `pushState: conflict`, keeps Google's version)", body = crate::error::WriteErrorBody),
        (status = 422, description = "The event is of a type calsync does not change (birthday, fromGmail, focusTime, outOfOffice, workingLocation); a `recurrence` line does not parse; the series would be left without its zone (`start.timeZone` / `end.timeZone`); or the event is an invitation organized from another calendar, or a locked copy, and the change touches a field only its organizer may change (the message says what an attendee may change). `error.field` names it", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the change (`google_refused`)", body = crate::error::WriteErrorBody),
        Unauthorized, EventNotFound, BodyTooLarge, StoreUnavailable,
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
    let target = target(&path)?;
    let if_match = if_match(&request)?;
    let changes = decode_patch_body(&body)?;
    if changes.is_empty() {
        return Err(DomainError::invalid("body", "names no field to change").into());
    }
    let (event, _) = match target {
        Target::Row(id) => state.events.update(id, &changes, if_match).await?,
        Target::Occurrence(reference) => {
            state
                .events
                .update_occurrence(&reference, &changes, if_match)
                .await?
        }
    };
    info!(context::logger(&request, &state), "event changed";
        "action" => "event_update", "status" => "queued", "event_id" => event.id.to_string());
    answer_write(&state, event, StatusCode::OK, query.wait).await
}

/// Cancels an event here and deletes it at Google.
#[utoipa::path(
    delete, path = "/calendar/events/{id}", tag = "events", operation_id = "deleteEvent",
    params(("id" = String, Path, description = "calsync's event id (a hyphenated UUID), or an occurrence's as listed with singleEvents=true: cancelling one occurrence makes it a cancelled exception at Google; anything else is a 404", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(_[0-9]{8}(T[0-9]{6}Z)?)?$"), WaitQuery, ("If-Match" = Option<String>, Header, description = "`*`, or the etag the change is based on (the `ETag` header or the event's `etag`); visible ASCII, at most 256 characters", min_length = 1, max_length = 256, pattern = r"^[\x20-\x7E]*[\x21-\x7E][\x20-\x7E]*$")),
    responses(
        (status = 202, description = "Cancelled and queued for deletion at Google (with wait=true: still pending when the wait ended)", body = EventResource),
        (status = 200, description = "Already cancelled, or with wait=true: deleted at Google", body = EventResource),
        (status = 400, description = "An invalid or unknown query parameter or `If-Match`; `error.field` or `error.header` names it", body = crate::error::ErrorBody),
        (status = 409, description = "An occurrence changed concurrently (`conflict`): try again; with wait=true, the event was found deleted in Google (`deleted_at_google`)", body = crate::error::WriteErrorBody),
        (status = 412, description = "`If-Match` no longer matches (`precondition_failed`), or names an occurrence with no etag of its own yet; with wait=true, also when the event changed in Google meanwhile", body = crate::error::WriteErrorBody),
        (status = 422, description = "The event is of a type calsync does not change (birthday, fromGmail, focusTime, outOfOffice, workingLocation); `error.field` is `eventType`", body = crate::error::ErrorBody),
        (status = 502, description = "With wait=true: Google refused the deletion (`google_refused`)", body = crate::error::WriteErrorBody),
        Unauthorized, EventNotFound, StoreUnavailable,
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
    let if_match = if_match(&request)?;
    let id = match target(&path)? {
        Target::Row(id) => id,
        Target::Occurrence(reference) => {
            return match state.events.cancel_occurrence(&reference, if_match).await? {
                // Already cancelled: deleting again changes nothing.
                (event, None) => Ok(HttpResponse::Ok().json(EventResource::new(&event, None))),
                (event, Some(_)) => {
                    info!(context::logger(&request, &state), "occurrence cancelled";
                        "action" => "event_delete", "status" => "queued", "event_id" => event.id.to_string());
                    answer_write(&state, event, StatusCode::OK, query.wait).await
                }
            };
        }
    };
    let current = state.events.get(id).await?;
    if current.status == EventStatus::Cancelled {
        // Already cancelled: deleting again changes nothing.
        return Ok(HttpResponse::Ok().json(EventResource::new(&current, None)));
    }
    let (event, _) = state.events.cancel(id, if_match).await?;
    info!(context::logger(&request, &state), "event cancelled";
        "action" => "event_delete", "status" => "queued", "event_id" => event.id.to_string());
    answer_write(&state, event, StatusCode::OK, query.wait).await
}
