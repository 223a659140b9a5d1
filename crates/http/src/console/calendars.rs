//! `GET /console/calendars`: each managed calendar, and its actions (sync
//! now, full resync, stop managing), the same service calls as
//! `POST /calendar/sync` and `DELETE /calendar/calendars/{id}`.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::channel::ChannelStatus;
use calsync_domain::ids::CalendarId;
use chrono::{DateTime, Utc};
use maud::html;

use super::layout::{self, Flash, Nav, Page};
use super::{
    after_action, authorize_post, error_text, finish_action, flashes, mask, mask_keeping,
    require_session, when, when_opt,
};
use crate::{AppState, context};

const PAGE: &str = "/console/calendars";

/// `GET /console/calendars`.
pub async fn page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let session = match require_session(&request, &state) {
        Ok(session) => session,
        Err(redirect) => return *redirect,
    };
    let mut flashes = flashes(&request);
    let calendars = match state.calendars.list().await {
        Ok(list) => list,
        Err(error) => {
            flashes.push(Flash::error(format!(
                "Calendars could not be read: {}",
                error_text(error)
            )));
            Vec::new()
        }
    };
    // The latest expiry of each calendar's active channels.
    let mut expiries: BTreeMap<CalendarId, DateTime<Utc>> = BTreeMap::new();
    match state.channels.list(Some(ChannelStatus::Active)).await {
        Ok(channels) => {
            for channel in channels {
                let entry = expiries
                    .entry(channel.calendar_id.clone())
                    .or_insert(channel.expiration);
                *entry = (*entry).max(channel.expiration);
            }
        }
        Err(error) => flashes.push(Flash::error(format!(
            "Channels could not be read: {}",
            error_text(error)
        ))),
    }
    let csrf = session.csrf();
    let body = html! {
        @if calendars.is_empty() {
            p { "No calendar is managed yet (add one with " code { "POST /calendar/calendars" } ")." }
        } @else {
            table {
                thead { tr {
                    th { "Calendar" } th { "Principal" } th { "Channel expires" } th { "Last sync" }
                    th { "Last error" } th { "Reconnect required" } th { "Read-only" } th { "Actions" }
                } }
                tbody {
                    @for view in &calendars {
                        @let id = view.calendar.calendar_id.as_str();
                        @let health = view.health.as_ref();
                        tr data-calendar-id=(id) {
                            td.mono data-field="calendar" { (id) }
                            td data-field="principal" {
                                @match &view.calendar.subject {
                                    Some(subject) => (mask(subject.as_str())),
                                    None => span.muted { "deployment default" },
                                }
                            }
                            td data-field="channel-expiry" {
                                @match expiries.get(&view.calendar.calendar_id) {
                                    Some(at) => (when(*at)),
                                    None => span.muted { "no active channel" },
                                }
                            }
                            td data-field="last-sync" { (when_opt(health.and_then(|h| h.last_sync_at))) }
                            td data-field="error" {
                                @match health.and_then(|h| h.last_error.as_deref()) {
                                    Some(error) => {
                                        (mask_keeping(error, &[id]))
                                        br;
                                        span.muted { (health.map_or(0, |h| h.error_count)) " error(s), last at " (when_opt(health.and_then(|h| h.last_error_at))) }
                                    }
                                    None => span.muted { "-" },
                                }
                            }
                            td data-field="reconnect-required" {
                                @if health.is_some_and(|h| h.reconnect_required) { span.flag-on { "true" } } @else { "false" }
                            }
                            td data-field="read-only" {
                                @if health.is_some_and(|h| h.read_only) {
                                    span.flag-on { "true" }
                                    " since " (when_opt(health.and_then(|h| h.read_only_since)))
                                } @else { "false" }
                            }
                            td.actions {
                                form method="post" action="/console/calendars/sync" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="calendar" value=(id);
                                    button type="submit" data-action="sync" { "Sync now" }
                                }
                                form method="post" action="/console/calendars/resync" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="calendar" value=(id);
                                    button.secondary type="submit" data-action="resync" { "Full resync" }
                                }
                                form method="post" action="/console/calendars/stop" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="calendar" value=(id);
                                    button.danger type="submit" data-action="stop" { "Stop managing" }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.note { "Sync now and full resync queue a sync the sync worker starts at once (a full one re-reads everything and catches deletions). Stop managing stops the calendar's channels and its syncs; its mirrored events stay until retention." }
    };
    let page = Page {
        title: "Calendars",
        nav: Nav::Calendars,
        session: Some(&session),
        flashes,
        refresh: Some(PAGE),
    };
    layout::ok(page.render(body))
}

fn calendar_of(form: &super::ActionForm) -> Result<CalendarId, String> {
    CalendarId::new(form.calendar.clone().unwrap_or_default()).map_err(error_text)
}

async fn queue_sync(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
    full: bool,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let logger = context::logger(&request, &state);
    let id = match calendar_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    // As `POST /calendar/sync` does.
    let outcome = state.calendars.request_sync(&id, full).await;
    if outcome.is_ok() {
        state.sync_wakeup.notify_one();
    }
    finish_action(
        &logger,
        PAGE,
        ("sync_request", "calendar_id", id.to_string()),
        outcome,
        if full { "resynced" } else { "synced" },
    )
}

/// `POST /console/calendars/sync`.
pub async fn sync(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    queue_sync(state, request, body, false).await
}

/// `POST /console/calendars/resync`.
pub async fn resync(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    queue_sync(state, request, body, true).await
}

/// `POST /console/calendars/stop`: what `DELETE /calendar/calendars/{id}` does.
pub async fn stop(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let logger = context::logger(&request, &state);
    let id = match calendar_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    let outcome = state.calendars.remove(&id).await;
    finish_action(
        &logger,
        PAGE,
        ("calendar_remove", "calendar_id", id.to_string()),
        outcome,
        "stopped",
    )
}
