//! `/calendar/channels`: watch a calendar, list and stop channels.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::channel::ChannelStatus;
use calsync_domain::ids::ChannelId;
use serde::Deserialize;
use slog::info;

use crate::auth::Authenticated;
use crate::openapi::responses::{
    BodyTooLarge, GoogleOrStoreUnavailable, ReconnectRequired, StoreUnavailable, Unauthorized,
};
use crate::{AppState, HttpError, context};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannel {
    /// Defaults to the deployment's default calendar
    /// (`CALSYNC_DEFAULT_CALENDAR`); required when none is configured
    /// (else a 400 naming `calendarId`).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$",
        example = "primary"
    )]
    calendar_id: Option<String>,
}

/// pending | active | stopped
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub enum ChannelStatusDoc {
    /// Stored; Google has not granted the watch yet.
    Pending,
    Active,
    /// Stopped at Google, replaced by a renewal, or never granted.
    Stopped,
}

/// A watch channel (the body is the domain's `WatchChannel`, as is).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct ChannelDoc {
    id: String,
    calendar_id: String,
    /// Known once Google grants the watch.
    resource_id: Option<String>,
    /// The expiry Google granted (or, while pending, the one requested).
    #[schema(format = DateTime)]
    expiration: String,
    status: ChannelStatusDoc,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_notification_at: Option<String>,
    last_message_number: Option<u64>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ChannelList {
    items: Vec<ChannelDoc>,
}

/// Watches a calendar: Google will post its changes to `/webhooks/calendar`.
#[utoipa::path(
    post, path = "/calendar/channels", tag = "channels", operation_id = "createChannel",
    request_body(content = CreateChannel, description = "Optional: an empty body means the default calendar. `null` is refused."),
    responses(
        (status = 201, description = "The channel, active", body = ChannelDoc),
        (status = 400, description = "Invalid body or calendarId; `error.field` names it", body = crate::error::ErrorBody),
        (status = 404, description = "Google does not know the calendar or does not show it to calsync (`not_found_in_google`)", body = crate::error::ErrorBody),
        (status = 409, description = "Google refused access for good (`reconnect_required`) or the channel id is taken (`duplicate_in_google`)", body = crate::error::ErrorBody),
        (status = 412, description = "Google answered 412 (`precondition_failed`)", body = crate::error::ErrorBody),
        (status = 502, description = "Google refused the watch (`google_refused`)", body = crate::error::ErrorBody),
        (status = 503, description = "Google or the database is unavailable: retry (`Retry-After` when Google gave one)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge,
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
    let requested = crate::request::parse_optional_body::<CreateChannel>(&body)?
        .and_then(|input| input.calendar_id);
    let calendar_id = crate::request::calendar_or_default(&state, requested.as_deref())?;
    // A watched calendar is a managed one (swept, and listed).
    state.calendars.ensure(&calendar_id).await?;
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
    /// Only channels in this state. A channel past its expiry that was never
    /// renewed is still `active` (health reports it as lapsed).
    #[param(value_type = Option<ChannelStatusDoc>)]
    status: Option<String>,
}

/// Lists watch channels. Unknown query parameters are refused.
#[utoipa::path(
    get, path = "/calendar/channels", tag = "channels", operation_id = "listChannels", params(ListQuery),
    responses(
        (status = 200, description = "The channels, oldest first", body = ChannelList),
        (status = 400, description = "An unknown `status` or query parameter; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, StoreUnavailable,
    ),
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
    let channels = state.channels.list(status).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": channels })))
}

/// Stops a channel at Google and here.
#[utoipa::path(
    delete, path = "/calendar/channels/{id}", tag = "channels", operation_id = "stopChannel",
    params(("id" = String, Path, description = "The channel's id", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_+/=-]+$")),
    responses(
        (status = 200, description = "The channel, stopped", body = ChannelDoc),
        (status = 400, description = "Not a channel id (`error.field` is `channelId`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such channel (`not_found`), or Google answered 410 (`not_found_in_google`)", body = crate::error::ErrorBody),
        (status = 502, description = "Google refused the stop (`google_refused`)", body = crate::error::ErrorBody),
        Unauthorized, ReconnectRequired, GoogleOrStoreUnavailable,
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
