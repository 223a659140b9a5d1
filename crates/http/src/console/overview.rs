//! `GET /console`: the health report's verdict and issues, the mirror's and
//! outbox's figures, sync lag, failing webhooks, and the last hour's charts.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::health::{HealthReport, HealthStatus};
use calsync_resilience::metrics::ActivityKind;
use maud::{Markup, html};
use slog::warn;

use super::layout::{self, Flash, Nav, Page};
use super::{charts, error_text, flashes, mask_keeping, require_session};
use crate::{AppState, context};

/// How far behind the least recently synced healthy calendar is, in whole
/// seconds: healthy meaning no sync error outstanding and no reconnect
/// needed. `None` when no healthy calendar has synced.
pub fn sync_lag_secs(report: &HealthReport) -> Option<i64> {
    report
        .stats
        .calendars
        .iter()
        .filter(|c| !c.reconnect_required && c.error_count == 0)
        .filter_map(|c| c.last_sync_at)
        .min()
        .map(|oldest| (report.checked_at - oldest).num_seconds().max(0))
}

fn status_word(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Degraded => "degraded",
    }
}

fn figure(name: &str, label: &str, value: impl std::fmt::Display, unit: &str) -> Markup {
    html! {
        div.figure {
            div.label { (label) }
            div.value {
                span data-figure=(name) { (value) }
                @if !unit.is_empty() { span.unit { (unit) } }
            }
        }
    }
}

/// `GET /console`.
pub async fn page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let session = match require_session(&request, &state) {
        Ok(session) => session,
        Err(redirect) => return *redirect,
    };
    let logger = context::logger(&request, &state);
    let mut flashes = flashes(&request);
    let (report, error) = state.health.report().await;
    if let Some(error) = error {
        warn!(logger, "health figures unavailable";
            "action" => "console_overview", "status" => "database_unreachable",
            "error_type" => error.error_type(), "error_message" => error.to_string());
        flashes.push(Flash::error(
            "The health figures could not all be read (see the issues below).",
        ));
    }
    let calendars = match state.calendars.list().await {
        Ok(list) => Some(list.len()),
        Err(error) => {
            flashes.push(Flash::error(format!(
                "Calendars could not be read: {}",
                error_text(error)
            )));
            None
        }
    };
    let webhooks_failing = match &state.webhooks {
        None => Some(0),
        Some(webhooks) => match webhooks.list().await {
            Ok(list) => Some(list.iter().filter(|s| s.failures > 0 || !s.enabled).count()),
            Err(error) => {
                flashes.push(Flash::error(format!(
                    "Webhook subscriptions could not be read: {}",
                    error_text(error)
                )));
                None
            }
        },
    };
    let stats = &report.stats;
    let lag = sync_lag_secs(&report);
    let calendar_ids: Vec<&str> = stats
        .calendars
        .iter()
        .map(|c| c.calendar_id.as_str())
        .collect();
    let status = status_word(report.status);
    let dash = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let body = html! {
        div.figures {
            div.figure {
                div.label { "Status" }
                div.value { span data-figure="status" class=(format!("status-{status}")) { (status) } }
            }
            (figure("calendars", "Managed calendars", dash(calendars), ""))
            (figure("active-events", "Events mirrored", stats.active_events, ""))
            (figure("outbox-pending", "Outbox pending", stats.outbox_pending, ""))
            (figure("outbox-quota-waiting", "Waiting for quota", stats.outbox_quota_waiting, ""))
            (figure("outbox-dead-letters", "Dead letters", stats.outbox_dead_letters, ""))
            (figure("sync-lag-secs", "Sync lag", lag.map_or_else(|| "-".to_owned(), |l| l.to_string()), if lag.is_some() { "s" } else { "" }))
            (figure("webhooks-failing", "Webhooks failing", dash(webhooks_failing), ""))
        }
        p.note {
            "Checked at " (super::when(report.checked_at)) ". Sync lag: now minus the oldest last sync of a calendar without errors. "
            @if state.webhooks.is_none() { "Outbound webhooks are not configured. " }
            "Writes Google refused for good: " (stats.events_push_failed) " (see " a href="/console/failed-writes" { "failed writes" } ")."
        }
        h2 { "Issues" }
        @if report.issues.is_empty() {
            p { "None: nothing needs attention." }
        } @else {
            ul.issues {
                @for issue in &report.issues {
                    li data-issue=(issue.code) { code { (issue.code) } (mask_keeping(&issue.message, &calendar_ids)) }
                }
            }
        }
        h2 { "Last hour" }
        p.note { "Counted by this replica only (each replica keeps its own last hour in memory; it starts empty after a restart)." }
        div.charts {
            @for kind in ActivityKind::ALL {
                (charts::chart(kind, &state.metrics.activity.last_hour(kind)))
            }
        }
    };
    let page = Page {
        title: "Overview",
        nav: Nav::Overview,
        session: Some(&session),
        flashes,
        refresh: Some("/console"),
    };
    layout::ok(page.render(body))
}
