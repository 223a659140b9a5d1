//! `POST /webhooks/calendar` and `POST /webhooks/drive`: Google's push
//! notifications. They are validated, recorded, and answered at once; no
//! Google call happens on this path.

use std::net::IpAddr;

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

/// Proxies whose `X-Forwarded-For` is believed (`CALSYNC_TRUSTED_PROXIES`):
/// addresses or CIDR ranges. Forwarded headers from anyone else are ignored,
/// since any client can write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Comma-separated addresses and CIDR ranges; empty trusts no one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid =
                || format!("'{entry}' is not an IP address or CIDR range (such as 10.0.0.0/8)");
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(invalid)?,
                None => max,
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// The client's address: the connection's peer, or, when the peer is a
    /// trusted proxy, the nearest address in `X-Forwarded-For` that is not
    /// one (read from the right: the proxies append to it).
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for hop in forwarded_for.unwrap_or_default().rsplit(',').take(16) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => break,
            }
        }
        Some(client)
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(Some(ip("203.0.113.7")), Some("1.2.3.4")),
            Some(ip("203.0.113.7")),
            "an untrusted peer's header is ignored"
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1, ::1").unwrap();
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("198.51.100.9, 10.9.9.9")),
            Some(ip("198.51.100.9")),
            "the nearest untrusted hop"
        );
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("spoofed, 198.51.100.9")),
            Some(ip("198.51.100.9")),
            "a client's own prefix is not believed"
        );
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("not-an-ip")),
            Some(ip("10.1.2.3"))
        );
        assert_eq!(
            proxies.client_ip(Some(ip("192.168.1.2")), Some("1.2.3.4")),
            Some(ip("192.168.1.2")),
            "a /32 entry is one address"
        );
        assert!(proxies.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nonsense", "::1/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
    }
}
