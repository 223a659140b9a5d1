//! `POST /calendar/sync`: queues a sync of a calendar.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use slog::info;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::openapi::responses::{BodyTooLarge, StoreUnavailable, Unauthorized};
use crate::{AppState, HttpError, context};

use crate::request::{calendar_or_default, parse_optional_body};

/// `POST /calendar/sync`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequestBody {
    /// Defaults to the deployment's default calendar
    /// (`CALSYNC_DEFAULT_CALENDAR`); required when none is configured
    /// (else a 400 naming `calendarId`).
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
        Unauthorized, BodyTooLarge, StoreUnavailable,
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
    // A calendar synced on request is a managed one (swept from now on).
    state
        .calendars
        .request_sync(&calendar_id, input.full)
        .await?;
    state.sync_wakeup.notify_one();
    info!(context::logger(&request, &state), "sync requested";
        "action" => "sync_request", "status" => "queued", "calendar_id" => calendar_id.to_string(), "full" => input.full);
    Ok(HttpResponse::Accepted().json(SyncQueued {
        calendar_id: calendar_id.to_string(),
        full: input.full,
        status: "queued",
    }))
}
