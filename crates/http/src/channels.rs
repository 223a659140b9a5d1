//! `/calendar/channels`: watch a calendar, list and stop channels.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::channel::ChannelStatus;
use calsync_domain::ids::ChannelId;
use serde::Deserialize;
use slog::info;

use crate::auth::Authenticated;
use crate::{AppState, HttpError, context};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannel {
    /// Defaults to the configured calendar.
    calendar_id: Option<String>,
}

/// Watches a calendar: Google will post its changes to `/webhooks/calendar`.
#[utoipa::path(
    post, path = "/calendar/channels", tag = "channels",
    request_body(content = Option<CreateChannel>, description = "Empty means the default calendar"),
    responses(
        (status = 201, description = "The channel, active", body = serde_json::Value),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 502, description = "Google refused the watch", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    // An empty body means "the default calendar"; anything else must be valid JSON.
    let requested = crate::events::parse_optional_body::<CreateChannel>(&body)?
        .and_then(|input| input.calendar_id);
    let calendar_id = crate::events::calendar_or_default(&state, requested.as_deref())?;
    let channel = state.channels.create(&calendar_id).await?;
    // The initial sync should not wait for the worker's next poll.
    state.sync_wakeup.notify_one();
    info!(context::logger(&request, &state), "watch channel created";
        "action" => "channel_create", "status" => "success", "calendar_id" => calendar_id.to_string(),
        "channel_id" => channel.id.to_string(), "expiration" => channel.expiration.to_rfc3339());
    Ok(HttpResponse::Created().json(channel))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// pending | active | stopped | expired
    status: Option<String>,
}

/// Lists watch channels.
#[utoipa::path(
    get, path = "/calendar/channels", tag = "channels", params(ListQuery),
    responses((status = 200, body = serde_json::Value), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HttpError> {
    let status = query
        .status
        .as_deref()
        .map(ChannelStatus::parse)
        .transpose()?;
    let channels = state.store.list_channels(status).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": channels })))
}

/// Stops a channel at Google and here.
#[utoipa::path(
    delete, path = "/calendar/channels/{id}", tag = "channels",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = serde_json::Value),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn stop(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = ChannelId::new(path.into_inner())?;
    let channel = state.channels.stop(&id).await?;
    info!(context::logger(&request, &state), "watch channel stopped";
        "action" => "channel_stop", "status" => "success", "calendar_id" => channel.calendar_id.to_string(),
        "channel_id" => id.to_string());
    Ok(HttpResponse::Ok().json(channel))
}
