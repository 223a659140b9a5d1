//! Health and metrics: `/health/calendar` (the full report), `/health/live`,
//! `/health/ready` and `/metrics`. None needs a token: they carry counts and
//! timestamps, never event content, and probes and scrapers hold no secrets.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::health::HealthReport;
use serde::Serialize;
use slog::warn;
use utoipa::ToSchema;

use crate::{AppState, HttpError, context};

/// The report's shape, for the OpenAPI document (the body is the domain's
/// `HealthReport`, serialized as is).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct HealthReportDoc {
    /// healthy | degraded
    status: String,
    /// One entry per problem: `{code, message}`.
    issues: Vec<HealthIssueDoc>,
    database_reachable: bool,
    checked_at: String,
    active_channels: u64,
    channels_expiring_soon: u64,
    /// Channels past their expiry that were never renewed.
    channels_lapsed: u64,
    next_channel_expiry: Option<String>,
    /// The latest successful sync of any calendar.
    last_sync_at: Option<String>,
    /// Per calendar: lastSyncAt, lastError, errorCount, reconnectRequired, activeChannels.
    calendars: Vec<serde_json::Value>,
    active_events: u64,
    oldest_event_start: Option<String>,
    newest_event_start: Option<String>,
    outbox_pending: u64,
    oldest_pending_outbox_at: Option<String>,
    outbox_dead_letters: u64,
    events_push_failed: u64,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct HealthIssueDoc {
    /// e.g. no_active_channels, channels_lapsed, channels_expiring, sync_stale, push_failures
    code: String,
    message: String,
}

/// The outbox depth gauges, from a report just computed.
fn record_outbox_gauges(state: &AppState, report: &HealthReport) {
    for (name, value) in [
        ("calsync_outbox_pending", report.stats.outbox_pending),
        (
            "calsync_outbox_dead_letters",
            report.stats.outbox_dead_letters,
        ),
    ] {
        state.metrics.set_gauge(name, &[], value as f64);
    }
}

#[derive(Serialize, ToSchema)]
pub struct Probe {
    /// ok | not_ready
    pub status: &'static str,
}

/// The calendar sync's health, computed live from indexed queries. Degraded
/// is still 200 (the service works; something needs attention, see
/// `issues`); 503 only when the database cannot be read.
#[utoipa::path(
    get, path = "/health/calendar", tag = "health",
    responses(
        (status = 200, description = "healthy or degraded: see `status` and `issues`", body = HealthReportDoc),
        (status = 503, description = "the database is unreachable", body = HealthReportDoc),
    )
)]
pub async fn calendar(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let (report, error) = state.health.report().await;
    if let Some(error) = error {
        warn!(context::logger(&request, &state), "health figures unavailable";
            "action" => "health", "status" => "database_unreachable",
            "error_type" => error.error_type(), "error_message" => error.to_string());
    }
    record_outbox_gauges(&state, &report);
    let status = if report.database_reachable {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(report)
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Probe)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "ok" })
}

/// The database answers and holds every migration this build needs.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Probe), (status = 503, body = crate::error::ErrorBody))
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    state
        .health
        .ready()
        .await
        .map_err(|error| HttpError::NotReady(error.to_string()))?;
    Ok(HttpResponse::Ok().json(Probe { status: "ok" }))
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Depth gauges are read at scrape time; a failed read keeps the last value.
    if let (report, None) = state.health.report().await {
        record_outbox_gauges(&state, &report);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
