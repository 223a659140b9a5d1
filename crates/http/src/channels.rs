//! `/calendar/channels`: watch a calendar, list and stop channels.

use actix_web::{HttpResponse, web};
use calsync_domain::channel::ChannelStatus;
use calsync_domain::ids::{CalendarId, ChannelId};
use serde::Deserialize;
use slog::info;

use crate::auth::Authenticated;
use crate::{AppState, HttpError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannel {
    /// Defaults to the configured calendar.
    calendar_id: Option<String>,
}

pub async fn create(
    _: Authenticated,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    // An empty body means "the default calendar"; anything else must be valid JSON.
    let requested = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<CreateChannel>(&body)
            .map_err(|error| calsync_domain::Error::invalid("body", error.to_string()))?
            .calendar_id
    };
    let calendar_id = match (requested, &state.default_calendar) {
        (Some(id), _) => CalendarId::new(id)?,
        (None, Some(default)) => default.clone(),
        (None, None) => {
            return Err(calsync_domain::Error::invalid(
                "calendarId",
                "is required (no default calendar is configured)",
            )
            .into());
        }
    };
    let channel = state.channels.create(&calendar_id).await?;
    // The initial sync should not wait for the worker's next poll.
    state.sync_wakeup.notify_one();
    info!(state.logger, "watch channel created";
        "action" => "channel_create", "status" => "success", "calendar_id" => calendar_id.to_string(),
        "channel_id" => channel.id.to_string(), "expiration" => channel.expiration.to_rfc3339());
    Ok(HttpResponse::Created().json(channel))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
}

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
    let channels = state.channel_store.list_channels(status).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": channels })))
}

pub async fn stop(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = ChannelId::new(path.into_inner())?;
    let channel = state.channels.stop(&id).await?;
    info!(state.logger, "watch channel stopped";
        "action" => "channel_stop", "status" => "success", "calendar_id" => channel.calendar_id.to_string(),
        "channel_id" => id.to_string());
    Ok(HttpResponse::Ok().json(channel))
}
