//! `POST /webhooks/calendar` and `POST /webhooks/drive`: Google's push
//! notifications. They are validated, recorded, and answered at once; no
//! Google call happens on this path.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::services::NotificationOutcome;
use calsync_domain::webhook::{
    PushEnvelope, parse_calendar_notification, parse_drive_notification,
};
use calsync_resilience::metrics::WebhookLabels;
use slog::{Drain, debug, info, warn};

use crate::openapi::responses::NotificationRefusals;
use crate::request::rules;
use crate::{AppState, HttpError, context};

/// Bodies are ignored (Google sends none); anything larger is refused.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The headers as the domain's parsers read them: as sent, except that
/// `X-Goog-Channel-Expiration` is checked against the documented
/// IMF-fixdate here and handed on without its day name (see
/// [`rules::http_date_without_day_name`]), and `X-Goog-Changed` is checked
/// as sent (the domain's parser trims and drops empty values). Google's
/// header reference: <https://developers.google.com/workspace/calendar/api/guides/push>.
fn push_headers<'a>(
    request: &'a HttpRequest,
    drive: bool,
) -> Result<impl Fn(&str) -> Option<&'a str> + 'a, DomainError> {
    use calsync_domain::webhook::headers::{CHANGED, CHANNEL_EXPIRATION};
    let expiration = match request.headers().get(CHANNEL_EXPIRATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| rules::http_date_without_day_name(text))
                .ok_or_else(|| DomainError::InvalidHeader {
                    header: CHANNEL_EXPIRATION,
                    reason: "must be an HTTP date such as 'Tue, 19 Nov 2013 01:13:52 GMT'".into(),
                })?,
        ),
    };
    if drive
        && let Some(value) = request.headers().get(CHANGED)
        && !rules::is_changed_list(value.as_bytes())
    {
        return Err(DomainError::InvalidHeader {
            header: CHANGED,
            reason: "must be at most 16 comma-separated values of at most 64 visible characters"
                .into(),
        });
    }
    Ok(move |name: &str| {
        if name.eq_ignore_ascii_case(CHANNEL_EXPIRATION) {
            return expiration;
        }
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    })
}

/// The rate-limit key: the client's IP, never a header value a client
/// chooses freely (that would let a flood pick a new key per request).
fn source(state: &AppState, request: &HttpRequest) -> String {
    let forwarded = request
        .headers()
        .get("X-Forwarded-For")
        .and_then(|v| v.to_str().ok());
    state
        .trusted_proxies
        .client_ip(request.peer_addr().map(|a| a.ip()), forwarded)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

fn admit(state: &AppState, kind: &'static str, source: &str) -> Result<(), HttpError> {
    if state.webhook_limiter.try_acquire(source, 1) {
        Ok(())
    } else {
        count(state, kind, "throttled");
        Err(HttpError::TooManyRequests)
    }
}

fn count(state: &AppState, kind: &'static str, outcome: &'static str) {
    state
        .metrics
        .webhook_notifications
        .get_or_create(&WebhookLabels {
            source: kind,
            outcome,
        })
        .inc();
}

/// Counts the outcome of a handled notification by its error kind.
fn count_error(state: &AppState, kind: &'static str, error: &DomainError) {
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

/// Logs a handled notification: at info once a second per channel (with
/// how many it stands for), each one at debug.
fn log_sampled(
    sampler: &calsync_resilience::LogSampler,
    log: &slog::Logger,
    status: &'static str,
    calendar_id: &calsync_domain::ids::CalendarId,
    envelope: &PushEnvelope,
    message: &'static str,
) {
    let held_back = sampler.admit(envelope.channel_id.as_str());
    if held_back.is_none() && !log.is_debug_enabled() {
        return;
    }
    let log = log.new(slog::o!("action" => "webhook_calendar", "status" => status,
        "calendar_id" => calendar_id.to_string(), "channel_id" => envelope.channel_id.to_string(),
        "message_number" => envelope.message_number));
    match held_back {
        Some(held_back) => info!(log, "{}", message; "similar_since_last_line" => held_back),
        None => debug!(log, "{}", message),
    }
}

/// Google Calendar push notifications (`X-Goog-*` headers; the channel
/// token authenticates them).
#[utoipa::path(
    post, path = "/webhooks/calendar", tag = "webhooks", operation_id = "receiveCalendarNotification",
    responses(
        (status = 200, description = "Accepted (also for channels no longer wanted, which are stopped)"),
        NotificationRefusals,
    )
)]
pub async fn calendar(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&state, &request);
    admit(&state, "calendar", &source)?;
    let log = context::logger(&request, &state);
    let notification = push_headers(&request, false)
        .and_then(parse_calendar_notification)
        .inspect_err(|error| count_error(&state, "calendar", error))?;
    let envelope = &notification.envelope;
    match state.notifications.handle_calendar(&notification).await {
        Ok(NotificationOutcome::CalendarMarked {
            calendar_id,
            wake_worker,
        }) => {
            count(&state, "calendar", "accepted");
            if wake_worker {
                state.sync_wakeup.notify_one();
            }
            log_sampled(
                &state.notification_log,
                &log,
                "accepted",
                &calendar_id,
                envelope,
                "calendar change announced",
            );
        }
        Ok(NotificationOutcome::Replayed { calendar_id }) => {
            count(&state, "calendar", "replayed");
            log_sampled(
                &state.replay_log,
                &log,
                "replayed",
                &calendar_id,
                envelope,
                "notification already handled (a retry or a replay); nothing marked",
            );
        }
        Ok(NotificationOutcome::ChannelConfirmed { calendar_id }) => {
            count(&state, "calendar", "sync_confirmation");
            info!(log, "watch channel confirmed";
                "action" => "webhook_calendar", "status" => "sync", "calendar_id" => calendar_id.to_string(),
                "channel_id" => envelope.channel_id.to_string());
        }
        Ok(NotificationOutcome::UnwantedChannel {
            calendar_id,
            channel_id,
            resource_id,
        }) => {
            count(&state, "calendar", "unwanted_channel");
            match calendar_id {
                Some(calendar_id) => {
                    info!(log, "notification for a channel no longer wanted; stopping it";
                        "action" => "webhook_calendar", "status" => "unwanted_channel", "calendar_id" => calendar_id.to_string(),
                        "channel_id" => channel_id.to_string());
                    // The stopper may be gone during shutdown; the channel then lapses at its expiry.
                    let _ = state
                        .channel_stops
                        .send((calendar_id, channel_id, resource_id));
                }
                None => {
                    info!(log, "notification for a channel no longer wanted, of no known calendar; it lapses at its expiry";
                        "action" => "webhook_calendar", "status" => "unwanted_channel", "channel_id" => channel_id.to_string());
                }
            }
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
    post, path = "/webhooks/drive", tag = "webhooks", operation_id = "receiveDriveNotification",
    responses(
        (status = 200, description = "Accepted"),
        NotificationRefusals,
    )
)]
pub async fn drive(
    state: web::Data<AppState>,
    request: HttpRequest,
    _body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let source = source(&state, &request);
    admit(&state, "drive", &source)?;
    let log = context::logger(&request, &state);
    let notification = push_headers(&request, true)
        .and_then(parse_drive_notification)
        .inspect_err(|error| count_error(&state, "drive", error))?;
    match state.notifications.handle_drive(&notification).await {
        Ok(true) => count(&state, "drive", "accepted"),
        // Already recorded and handed on: answered 200 so Google stops.
        Ok(false) => {
            count(&state, "drive", "replayed");
            return Ok(HttpResponse::Ok().finish());
        }
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
