//! `GET /console/failed-writes`: every write Google refused for good, with
//! the request that failed and Google's error; retry requeues it as it was,
//! discard takes Google's version.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::ids::LocalEventId;
use calsync_domain::outbox::OutboxOp;
use calsync_domain::services::FailedWrite;
use maud::{Markup, html};
use slog::warn;

use super::layout::{self, Flash, Nav, Page};
use super::{
    after_action, authorize_post, error_text, finish_action, flashes, mask, mask_keeping,
    require_session, when,
};
use crate::{AppState, context};

const PAGE: &str = "/console/failed-writes";
/// Most failed writes the page lists.
const LIMIT: u32 = 200;

/// What the failed request was: its kind and, for a patch, the fields it
/// changed (names only: values may hold addresses).
fn request_of(op: &OutboxOp) -> String {
    match op {
        OutboxOp::Insert => "insert (create the event)".to_owned(),
        OutboxOp::Delete => "delete (cancel the event)".to_owned(),
        OutboxOp::Patch { intent, if_match } => {
            let fields: Vec<String> = intent
                .as_deref()
                .and_then(|intent| serde_json::to_value(&intent.changes).ok())
                .and_then(|changes| {
                    changes
                        .as_object()
                        .map(|fields| fields.keys().cloned().collect())
                })
                .unwrap_or_default();
            let mut text = if fields.is_empty() {
                "patch (the event's content)".to_owned()
            } else {
                format!("patch: {}", fields.join(", "))
            };
            if if_match.is_some() {
                text.push_str(" (conditional on the caller's etag)");
            }
            text
        }
    }
}

fn row(failed: &FailedWrite, csrf: &str) -> Markup {
    let event = &failed.event;
    let id = event.id.to_string();
    let calendar = event.calendar_id.as_str();
    let entry = failed.entry.as_ref();
    html! {
        tr data-event-id=(id) {
            td.mono data-field="event" { (id) br; span.muted { "Google id " (event.google_event_id.as_str()) } }
            td.mono data-field="calendar" { (calendar) }
            td data-field="summary" {
                (event.summary.as_deref().map(mask).unwrap_or_default())
                @if let Some(organizer) = event.organizer.as_ref().and_then(|o| o.email.as_deref()) {
                    br; span.muted { "organizer " (mask_keeping(organizer, &[calendar])) }
                }
                @if !event.attendees.is_empty() {
                    br; span.muted { (event.attendees.len()) " attendee(s)" }
                }
            }
            td data-field="request" {
                @match entry {
                    Some(entry) => (request_of(&entry.op)),
                    None => span.muted { "(the outbox row was purged)" },
                }
            }
            td data-field="error" {
                @match entry.and_then(|e| e.last_error.as_deref()).or(event.push_note.as_deref()) {
                    Some(error) => (mask_keeping(error, &[calendar])),
                    None => "-",
                }
            }
            td data-field="when" {
                @match entry {
                    Some(entry) => { "queued " (when(entry.created_at)) br; span.muted { (entry.attempts) " attempt(s)" } }
                    None => { "changed " (when(event.updated_at)) }
                }
            }
            td.actions {
                form method="post" action="/console/failed-writes/retry" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="event" value=(id);
                    button type="submit" data-action="retry" { "Retry" }
                }
                form method="post" action="/console/failed-writes/discard" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="event" value=(id);
                    button.danger type="submit" data-action="discard" { "Discard" }
                }
            }
        }
    }
}

/// `GET /console/failed-writes`.
pub async fn page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let session = match require_session(&request, &state) {
        Ok(session) => session,
        Err(redirect) => return *redirect,
    };
    let mut flashes = flashes(&request);
    let failed = match state.events.failed_writes(LIMIT).await {
        Ok(failed) => Some(failed),
        Err(error) => {
            warn!(context::logger(&request, &state), "failed writes unavailable";
                "action" => "console_failed_writes", "status" => "failed",
                "error_type" => error.error_type(), "error_message" => error.to_string());
            flashes.push(Flash::error(format!(
                "Failed writes could not be read: {}",
                error_text(error)
            )));
            None
        }
    };
    let csrf = session.csrf();
    let body = html! {
        p.note {
            "Writes Google refused for good (" code { "pushState: failed" } "), in start order, at most " (LIMIT) ". "
            strong { "Retry" } " queues the same request again (the outbox worker pushes it at once). "
            strong { "Discard" } " gives the write up: the mirror takes Google's version of the event (or cancels it, if Google never had it)."
        }
        @match &failed {
            Some(failed) if failed.is_empty() => p { "No failed writes." },
            Some(failed) => {
                table {
                    thead { tr {
                        th { "Event" } th { "Calendar" } th { "Summary" } th { "Request" }
                        th { "Google's error" } th { "When" } th { "Actions" }
                    } }
                    tbody { @for write in failed { (row(write, &csrf)) } }
                }
            }
            None => {}
        }
    };
    let page = Page {
        title: "Failed writes",
        nav: Nav::FailedWrites,
        session: Some(&session),
        flashes,
        refresh: Some(PAGE),
    };
    layout::ok(page.render(body))
}

fn event_of(form: &super::ActionForm) -> Result<LocalEventId, String> {
    LocalEventId::parse(form.event.as_deref().unwrap_or_default()).map_err(error_text)
}

/// `POST /console/failed-writes/retry`.
pub async fn retry(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let logger = context::logger(&request, &state);
    let id = match event_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    let outcome = state.events.retry_failed_write(id).await;
    if outcome.is_ok() {
        state.outbox_wakeup.notify_one();
    }
    finish_action(
        &logger,
        PAGE,
        ("failed_write_retry", "event_id", id.to_string()),
        outcome,
        "retried",
    )
}

/// `POST /console/failed-writes/discard`.
pub async fn discard(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let logger = context::logger(&request, &state);
    let id = match event_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    let outcome = state.events.discard_failed_write(id).await;
    finish_action(
        &logger,
        PAGE,
        ("failed_write_discard", "event_id", id.to_string()),
        outcome,
        "discarded",
    )
}
