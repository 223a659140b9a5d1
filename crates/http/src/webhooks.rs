//! `POST /webhooks/calendar` and `POST /webhooks/drive`: Google's push
//! notifications. They are validated, recorded, and answered at once; no
//! Google call happens on this path.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::services::NotificationOutcome;
use calsync_domain::webhook::{
    PushEnvelope, parse_calendar_notification, parse_drive_notification,
};
use slog::{info, warn};

use crate::{AppState, HttpError, context};

/// Bodies are ignored (Google sends none); anything larger is refused.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

fn header<'a>(request: &'a HttpRequest) -> impl Fn(&str) -> Option<&'a str> {
    |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }
}

fn source(request: &HttpRequest) -> String {
    request
        .connection_info()
        .realip_remote_addr()
        .unwrap_or("unknown")
        .to_owned()
}

fn admit(state: &AppState, kind: &str, source: &str) -> Result<(), HttpError> {
    if state.webhook_limiter.try_acquire(source, 1) {
        Ok(())
    } else {
        count(state, kind, "throttled");
        Err(HttpError::TooManyRequests)
    }
}

fn count(state: &AppState, kind: &str, outcome: &str) {
    state.metrics.increment(
        "calsync_webhook_notifications_total",
        &[("source", kind), ("outcome", outcome)],
    );
}

/// Counts the outcome of a handled notification by its error kind.
fn count_error(state: &AppState, kind: &str, error: &DomainError) {
    count(state, kind, error.error_type());
}

/// Logs a rejected notification as a security event: who sent it and for
/// which channel, never the token it carried.
fn log_rejection(log: &slog::Logger, action: &str, envelope: &PushEnvelope, source: &str) {
    warn!(log, "webhook rejected: channel token missing or invalid";
        "action" => action.to_owned(), "status" => "forbidden", "security_event" => true,
        "channel_id" => envelope.channel_id.to_string(), "resource_id" => envelope.resource_id.to_string(),
        "source" => source.to_owned(), "token_present" => envelope.token.is_some());
}

/// Google Calendar push notifications (`X-Goog-*` headers; the channel
/// token authenticates them).
#[utoipa::path(
    post, path = "/webhooks/calendar", tag = "webhooks",
    params(
        ("X-Goog-Channel-ID" = String, Header), ("X-Goog-Channel-Token" = String, Header),
        ("X-Goog-Resource-ID" = String, Header), ("X-Goog-Resource-State" = String, Header),
        ("X-Goog-Message-Number" = String, Header),
    ),
    responses(
        (status = 200, description = "Accepted (also for channels no longer wanted, which are stopped)"),
        (status = 400, description = "Malformed headers", body = crate::error::ErrorBody),
        (status = 403, description = "Wrong or missing channel token", body = crate::error::ErrorBody),
        (status = 503, description = "Throttled or storage unavailable: Google retries", body = crate::error::ErrorBody),
    )
)]
pub async fn calendar(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&request);
    admit(&state, "calendar", &source)?;
    let log = context::logger(&request, &state);
    let notification = parse_calendar_notification(header(&request)).inspect_err(|error| {
        count_error(&state, "calendar", error);
    })?;
    let envelope = &notification.envelope;
    match state.notifications.handle_calendar(&notification).await {
        Ok(NotificationOutcome::CalendarMarked { calendar_id }) => {
            count(&state, "calendar", "accepted");
            info!(log, "calendar change announced";
                "action" => "webhook_calendar", "status" => "accepted", "calendar_id" => calendar_id.to_string(),
                "channel_id" => envelope.channel_id.to_string(), "message_number" => envelope.message_number);
            state.sync_wakeup.notify_one();
        }
        Ok(NotificationOutcome::ChannelConfirmed { calendar_id }) => {
            count(&state, "calendar", "sync_confirmation");
            info!(log, "watch channel confirmed";
                "action" => "webhook_calendar", "status" => "sync", "calendar_id" => calendar_id.to_string(),
                "channel_id" => envelope.channel_id.to_string());
        }
        Ok(NotificationOutcome::UnwantedChannel {
            channel_id,
            resource_id,
        }) => {
            count(&state, "calendar", "unwanted_channel");
            info!(log, "notification for a channel no longer wanted; stopping it";
                "action" => "webhook_calendar", "status" => "unwanted_channel", "channel_id" => channel_id.to_string());
            // The stopper may be gone during shutdown; the channel then lapses at its expiry.
            let _ = state.channel_stops.send((channel_id, resource_id));
        }
        Err(DomainError::Forbidden) => {
            count(&state, "calendar", "forbidden");
            log_rejection(&log, "webhook_calendar", envelope, &source);
            return Err(DomainError::Forbidden.into());
        }
        Err(error) => {
            count_error(&state, "calendar", &error);
            return Err(error.into());
        }
    }
    Ok(HttpResponse::Ok().finish())
}

/// Google Drive push notifications, recorded and handed to the Drive sink.
#[utoipa::path(
    post, path = "/webhooks/drive", tag = "webhooks",
    params(
        ("X-Goog-Channel-ID" = String, Header), ("X-Goog-Channel-Token" = String, Header),
        ("X-Goog-Resource-ID" = String, Header), ("X-Goog-Resource-State" = String, Header),
        ("X-Goog-Message-Number" = String, Header), ("X-Goog-Changed" = Option<String>, Header),
    ),
    responses(
        (status = 200, description = "Accepted"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    )
)]
pub async fn drive(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&request);
    admit(&state, "drive", &source)?;
    let log = context::logger(&request, &state);
    let notification = parse_drive_notification(header(&request)).inspect_err(|error| {
        count_error(&state, "drive", error);
    })?;
    match state.notifications.handle_drive(&notification).await {
        Ok(()) => count(&state, "drive", "accepted"),
        Err(DomainError::Forbidden) => {
            count(&state, "drive", "forbidden");
            log_rejection(&log, "webhook_drive", &notification.envelope, &source);
            return Err(DomainError::Forbidden.into());
        }
        Err(error) => {
            count_error(&state, "drive", &error);
            return Err(error.into());
        }
    }
    // Recorded: a failing sink must not make Google resend it.
    if let Err(error) = state.drive_sink.drive_changed(&notification).await {
        warn!(log, "drive notification handler failed";
            "action" => "webhook_drive", "status" => "handler_failed",
            "error_type" => error.error_type(), "error_message" => error.to_string());
    }
    Ok(HttpResponse::Ok().finish())
}

/// The default Drive sink: logs each notification.
pub struct LoggingDriveSink(pub slog::Logger);

#[async_trait::async_trait]
impl calsync_domain::ports::DriveNotificationSink for LoggingDriveSink {
    async fn drive_changed(
        &self,
        notification: &calsync_domain::webhook::DriveNotification,
    ) -> calsync_domain::Result<()> {
        info!(self.0, "drive change notified";
            "action" => "webhook_drive", "status" => notification.state.as_str(),
            "channel_id" => notification.envelope.channel_id.to_string(),
            "resource_id" => notification.envelope.resource_id.to_string(),
            "changed" => notification.changed.join(","));
        Ok(())
    }
}
