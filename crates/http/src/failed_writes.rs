//! Writes Google refused for good (`pushState: failed`): list them, retry
//! one as it was, or discard it and keep Google's version. The operator
//! console's "Failed writes" page does the same through these services.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::ids::LocalEventId;
use calsync_domain::outbox::OutboxEntry;
use calsync_domain::services::FailedWrite;
use serde::{Deserialize, Serialize};
use slog::info;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::events::EventResource;
use crate::openapi::responses::{EventNotFound, StoreUnavailable, Unauthorized};
use crate::request::rules;
use crate::{AppState, HttpError, context};

/// The request Google refused.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedRequest {
    /// `insert`, `patch` or `delete`.
    #[schema(pattern = "^(insert|patch|delete)$")]
    pub op: &'static str,
    /// A patch's changed fields (empty for insert and delete: they send
    /// the whole event, or nothing).
    pub fields: Vec<String>,
    /// Attempts made before it was given up.
    pub attempts: u32,
    /// When the write was queued.
    #[schema(format = DateTime)]
    pub queued_at: String,
}

/// One failed write.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedWriteResource {
    /// The event as the mirror holds it (`pushState: failed`).
    pub event: EventResource,
    /// Absent if the outbox row was purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<FailedRequest>,
    /// Google's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its kind (`refused`, `not_organizer`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'static str>,
}

/// A patch intent's changed fields, by their API names.
fn changed_fields(entry: &OutboxEntry) -> Vec<String> {
    let Some(intent) = entry.op.intent() else {
        return Vec::new();
    };
    match serde_json::to_value(&intent.changes) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, _)| name)
            .collect(),
        _ => Vec::new(),
    }
}

impl FailedWriteResource {
    pub fn new(failed: &FailedWrite) -> Self {
        let entry = failed.entry.as_ref();
        let error = entry.and_then(|e| e.last_error.clone());
        Self {
            event: EventResource::new(&failed.event, error.clone()),
            request: entry.map(|entry| FailedRequest {
                op: entry.op.kind(),
                fields: changed_fields(entry),
                attempts: entry.attempts,
                queued_at: crate::changes::instant(entry.created_at),
            }),
            error,
            failure: entry.and_then(|e| e.last_failure).map(|f| f.as_str()),
        }
    }
}

/// `GET /calendar/failed-writes`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FailedWritesQuery {
    /// At most this many (1 to 500; default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Every event whose push Google refused for good, in start order, with
/// the request that failed and Google's error.
#[utoipa::path(
    get, path = "/calendar/failed-writes", tag = "events", operation_id = "listFailedWrites",
    params(FailedWritesQuery),
    responses(
        (status = 200, description = "The failed writes (`items`)", body = FailedWriteList),
        (status = 400, description = "An invalid or unknown query parameter; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<FailedWritesQuery>,
) -> Result<HttpResponse, HttpError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1 to 500").into());
    }
    let items: Vec<FailedWriteResource> = state
        .events
        .failed_writes(limit)
        .await?
        .iter()
        .map(FailedWriteResource::new)
        .collect();
    Ok(HttpResponse::Ok().json(FailedWriteList { items }))
}

/// The answer of `GET /calendar/failed-writes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedWriteList {
    pub items: Vec<FailedWriteResource>,
}

fn event_id(path: &str) -> Result<LocalEventId, HttpError> {
    if !rules::is_event_id(path) {
        return Err(DomainError::NotFound { what: "event" }.into());
    }
    LocalEventId::parse(path).map_err(|_| DomainError::NotFound { what: "event" }.into())
}

/// Puts a failed write back in the queue as it was (attempts reset, due
/// now): the event is `pending` again and `event.push_retried` goes in the
/// change feed. The outbox worker pushes it at once; follow it with
/// `GET /calendar/events/{id}` (or the feed).
#[utoipa::path(
    post, path = "/calendar/events/{id}/retry", tag = "events", operation_id = "retryFailedWrite",
    params(("id" = String, Path, description = "calsync's event id (a hyphenated UUID); anything else is a 404", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 202, description = "Requeued: the event (`pushState: pending`) and the request", body = FailedWriteResource),
        (status = 409, description = "The event's push has not failed (or its outbox row was purged)", body = crate::error::ErrorBody),
        Unauthorized, EventNotFound, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = event_id(&path)?;
    let requeued = state.events.retry_failed_write(id).await?;
    state.outbox_wakeup.notify_one();
    info!(context::logger(&request, &state), "failed write requeued";
        "action" => "failed_write_retry", "status" => "queued", "event_id" => id.to_string());
    let mut answer = FailedWriteResource::new(&requeued);
    // Requeued rows carry no error any more.
    answer.event.push_error = None;
    Ok(HttpResponse::Accepted().json(answer))
}

/// Gives up on a failed write and keeps Google's version: the mirror takes
/// Google's copy of the event (`pushState: synced`), or cancels it if
/// Google never had it (a refused insert); `event.push_discarded` goes in
/// the change feed. The write is lost: make it again to retry it changed.
#[utoipa::path(
    post, path = "/calendar/events/{id}/discard", tag = "events", operation_id = "discardFailedWrite",
    params(("id" = String, Path, description = "calsync's event id (a hyphenated UUID); anything else is a 404", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The event as Google has it", body = EventResource),
        (status = 409, description = "The event's push has not failed", body = crate::error::ErrorBody),
        (status = 502, description = "Google could not be asked for its version (the calendar is unreachable, or another error); nothing changed", body = crate::error::ErrorBody),
        Unauthorized, EventNotFound, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn discard(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = event_id(&path)?;
    let event = state.events.discard_failed_write(id).await?;
    info!(context::logger(&request, &state), "failed write discarded";
        "action" => "failed_write_discard", "status" => "success", "event_id" => id.to_string());
    Ok(HttpResponse::Ok().json(EventResource::new(&event, None)))
}
