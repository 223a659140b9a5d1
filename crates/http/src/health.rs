//! Health and metrics: `/health/calendar` (the report), `/health/live`,
//! `/health/ready` and `/metrics`. The probes and the scrape need no token
//! (probes and scrapers hold no secrets). The full calendar report names
//! calendars (usually email addresses) and carries Google's error text, so
//! it needs an API token; anonymous callers get the verdict and the issue
//! codes only.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use calsync_domain::health::{HealthReport, HealthStatus};
use serde::Serialize;
use slog::warn;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::{AppState, HttpError, context};

/// healthy | degraded
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub enum HealthStatusDoc {
    Healthy,
    Degraded,
}

/// The full report (with an API token). The body is the domain's
/// `HealthReport`, serialized as is; this mirrors its shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct HealthReportDoc {
    status: HealthStatusDoc,
    /// One entry per problem.
    issues: Vec<HealthIssueDoc>,
    database_reachable: bool,
    #[schema(format = DateTime)]
    checked_at: String,
    active_channels: u64,
    channels_expiring_soon: u64,
    /// Channels past their expiry that were never renewed.
    channels_lapsed: u64,
    #[schema(format = DateTime)]
    next_channel_expiry: Option<String>,
    /// The latest successful sync of any calendar.
    #[schema(format = DateTime)]
    last_sync_at: Option<String>,
    calendars: Vec<CalendarHealthDoc>,
    active_events: u64,
    #[schema(format = DateTime)]
    oldest_event_start: Option<String>,
    #[schema(format = DateTime)]
    newest_event_start: Option<String>,
    outbox_pending: u64,
    #[schema(format = DateTime)]
    oldest_pending_outbox_at: Option<String>,
    outbox_dead_letters: u64,
    /// Pending writes waiting for Google's spent quota to come back.
    outbox_quota_waiting: u64,
    events_push_failed: u64,
    /// Events whose last write lost a conflict with a change made in Google.
    events_push_conflicts: u64,
}

/// One calendar's figures: in the full health report, and in the
/// managed-calendar listing (there without `unreadableSeries`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct CalendarHealthDoc {
    calendar_id: String,
    #[schema(format = DateTime)]
    last_sync_at: Option<String>,
    /// The last sync error, as Google or the store reported it.
    last_error: Option<String>,
    #[schema(format = DateTime)]
    last_error_at: Option<String>,
    error_count: u32,
    reconnect_required: bool,
    /// Google refuses calsync's writes to this calendar (403
    /// `requiredAccessLevel`: the principal may only read it). Writes
    /// wait, tried again every `CALSYNC_READ_ONLY_PROBE_SECS`, and the
    /// mark clears once Google answers a write with access.
    read_only: bool,
    /// Since the first refusal.
    #[schema(format = DateTime)]
    read_only_since: Option<String>,
    /// Google's words for the refusal.
    read_only_reason: Option<String>,
    active_channels: u64,
    /// Live recurring series whose recurrence calsync cannot expand (issue
    /// `series_unreadable`): each is listed as its master row, not as
    /// occurrences, and its occurrences cannot be read or written by id.
    /// In the health report only (`GET /calendar/calendars` leaves it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable_series: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct HealthIssueDoc {
    /// e.g. database_unreachable, no_active_channels, channels_lapsed,
    /// channels_expiring, never_synced, sync_stale, reconnect_required,
    /// calendar_read_only, series_unreadable, google_quota_exhausted,
    /// push_failures, push_conflicts, outbox_backlog
    code: String,
    message: String,
}

/// What an anonymous caller gets: the verdict and the issue codes, nothing
/// that names a calendar, quotes an error or gives a figure.
#[derive(Serialize, ToSchema)]
// Only for the schema's `additionalProperties: false`, which tells the
// summary from the full report in `HealthAnswer`'s oneOf.
#[serde(deny_unknown_fields)]
pub struct HealthSummary {
    #[schema(value_type = HealthStatusDoc)]
    status: HealthStatus,
    issues: Vec<IssueCode>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCode {
    /// As in the full report.
    code: &'static str,
}

impl HealthSummary {
    fn of(report: &HealthReport) -> Self {
        Self {
            status: report.status,
            issues: report
                .issues
                .iter()
                .map(|issue| IssueCode { code: issue.code })
                .collect(),
        }
    }
}

/// `/health/calendar`'s body: the full report with a token, else the summary.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only
pub enum HealthAnswer {
    Report(Box<HealthReportDoc>),
    Summary(HealthSummary),
}

/// The outbox depth gauges, from a report just computed.
fn record_outbox_gauges(state: &AppState, report: &HealthReport) {
    state.metrics.set_outbox_depth(
        report.stats.outbox_pending,
        report.stats.outbox_dead_letters,
    );
}

#[derive(Serialize, ToSchema)]
pub struct Probe {
    /// Always `ok`: failures are error answers.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// The calendar sync's health, computed live from indexed queries. Degraded
/// is still 200 (the service works; something needs attention, see
/// `issues`); 503 only when the database cannot be read. With a valid API
/// token the answer is the full report; without an `Authorization` header
/// it is the summary (`status` and the issue codes); an invalid token is a
/// 401.
#[utoipa::path(
    get, path = "/health/calendar", tag = "health", operation_id = "getCalendarHealth",
    responses(
        (status = 200, description = "healthy or degraded: see `status` and `issues`. The full report with a token, the summary without one", body = HealthAnswer),
        (status = 401, description = "An `Authorization` header with an unknown token", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable (`status` degraded, issue `database_unreachable`)", body = HealthAnswer),
    ),
    security((), ("bearer" = []))
)]
pub async fn calendar(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    // A presented credential must be valid: a mistyped token should fail
    // loudly, not quietly get the summary.
    let full = request.headers().contains_key(AUTHORIZATION);
    if full {
        Authenticated::extract(&request).await?;
    }
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
    let mut response = HttpResponse::build(status);
    Ok(if full {
        response.json(report)
    } else {
        response.json(HealthSummary::of(&report))
    })
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get, path = "/health/live", tag = "health", operation_id = "getLiveness",
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`", body = Probe))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "ok" })
}

/// The database answers and holds every migration this build needs.
#[utoipa::path(
    get, path = "/health/ready", tag = "health", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ok\"}`", body = Probe),
        (status = 503, description = "The database is unreachable or misses migrations (`not_ready`)", body = crate::error::ErrorBody),
    )
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
    get, path = "/metrics", tag = "health", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Depth gauges are read at scrape time; a failed read keeps the last value.
    if let (report, None) = state.health.report().await {
        record_outbox_gauges(&state, &report);
    }
    HttpResponse::Ok()
        .content_type(calsync_resilience::metrics::CONTENT_TYPE)
        .body(state.metrics.render())
}
