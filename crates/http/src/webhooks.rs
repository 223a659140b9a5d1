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

use crate::{AppState, HttpError};

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

fn admit(state: &AppState, source: &str) -> Result<(), HttpError> {
    if state.webhook_limiter.try_acquire(source, 1) {
        Ok(())
    } else {
        Err(HttpError::TooManyRequests)
    }
}

/// Logs a rejected notification as a security event: who sent it and for
/// which channel, never the token it carried.
fn log_rejection(state: &AppState, action: &str, envelope: &PushEnvelope, source: &str) {
    warn!(state.logger, "webhook rejected: channel token missing or invalid";
        "action" => action.to_owned(), "status" => "forbidden", "security_event" => true,
        "channel_id" => envelope.channel_id.to_string(), "resource_id" => envelope.resource_id.to_string(),
        "source" => source.to_owned(), "token_present" => envelope.token.is_some());
}

pub async fn calendar(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&request);
    admit(&state, &source)?;
    let notification = parse_calendar_notification(header(&request))?;
    let envelope = &notification.envelope;
    match state.notifications.handle_calendar(&notification).await {
        Ok(NotificationOutcome::CalendarMarked { calendar_id }) => {
            info!(state.logger, "calendar change announced";
                "action" => "webhook_calendar", "status" => "accepted", "calendar_id" => calendar_id.to_string(),
                "channel_id" => envelope.channel_id.to_string(), "message_number" => envelope.message_number);
            state.sync_wakeup.notify_one();
        }
        Ok(NotificationOutcome::ChannelConfirmed { calendar_id }) => {
            info!(state.logger, "watch channel confirmed";
                "action" => "webhook_calendar", "status" => "sync", "calendar_id" => calendar_id.to_string(),
                "channel_id" => envelope.channel_id.to_string());
        }
        Ok(NotificationOutcome::UnwantedChannel {
            channel_id,
            resource_id,
        }) => {
            info!(state.logger, "notification for a channel no longer wanted; stopping it";
                "action" => "webhook_calendar", "status" => "unwanted_channel", "channel_id" => channel_id.to_string());
            // The stopper may be gone during shutdown; the channel then lapses at its expiry.
            let _ = state.channel_stops.send((channel_id, resource_id));
        }
        Err(DomainError::Forbidden) => {
            log_rejection(&state, "webhook_calendar", envelope, &source);
            return Err(DomainError::Forbidden.into());
        }
        Err(error) => return Err(error.into()),
    }
    Ok(HttpResponse::Ok().finish())
}

pub async fn drive(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&request);
    admit(&state, &source)?;
    let notification = parse_drive_notification(header(&request))?;
    match state.notifications.handle_drive(&notification).await {
        Ok(()) => {}
        Err(DomainError::Forbidden) => {
            log_rejection(&state, "webhook_drive", &notification.envelope, &source);
            return Err(DomainError::Forbidden.into());
        }
        Err(error) => return Err(error.into()),
    }
    // Recorded: a failing sink must not make Google resend it.
    if let Err(error) = state.drive_sink.drive_changed(&notification).await {
        warn!(state.logger, "drive notification handler failed";
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
