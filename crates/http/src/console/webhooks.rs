//! `GET /console/webhooks`: the application's webhook subscriptions and
//! their last attempts; replay a delivery, re-enable a disabled
//! subscription. Signing secrets are never shown.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::feed::Cursor;
use calsync_domain::feed::subscription::{
    AttemptOutcome, DeliveryAttempt, WebhookId, WebhookSubscription,
};
use calsync_domain::services::WebhookPatch;
use maud::{Markup, html};
use slog::{info, warn};

use super::layout::{self, Flash, Nav, Page};
use super::{
    after_action, authorize_post, error_text, finish_action, flashes, mask, require_session,
    when_opt,
};
use crate::{AppState, context};

const PAGE: &str = "/console/webhooks";
/// Attempts listed per subscription.
const ATTEMPTS: u32 = 20;

fn section(
    subscription: &WebhookSubscription,
    attempts: Result<Vec<DeliveryAttempt>, String>,
    csrf: &str,
) -> Markup {
    let id = subscription.id.as_str();
    let types = if subscription.types.is_empty() {
        "all".to_owned()
    } else {
        subscription
            .types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        section.webhook data-webhook-id=(id) {
            h2 { code { (id) } }
            dl.props {
                dt { "URL" } dd.mono data-field="url" { (mask(&subscription.url)) }
                @if let Some(description) = &subscription.description {
                    dt { "Description" } dd { (mask(description)) }
                }
                dt { "Types" } dd data-field="types" { (types) }
                @if let Some(calendar) = &subscription.calendar_id {
                    dt { "Calendar" } dd.mono { (calendar.as_str()) }
                }
                @if let Some(entity) = &subscription.entity_type {
                    dt { "Entity type" } dd { (entity) }
                }
                dt { "Enabled" } dd {
                    span data-field="enabled" class=(if subscription.enabled { "" } else { "flag-on" }) { (subscription.enabled) }
                }
                @if let Some(reason) = &subscription.disabled_reason {
                    dt { "Disabled because" } dd data-field="disabled-reason" { (mask(reason)) }
                }
                dt { "Failures" } dd { span data-field="failures" { (subscription.failures) } " since " (when_opt(subscription.failing_since)) }
                dt { "Cursor" } dd.mono data-field="cursor" { (subscription.cursor.encode()) }
                dt { "Next attempt" } dd { (when_opt(Some(subscription.next_attempt_at))) }
                dt { "Last delivered" } dd { (when_opt(subscription.last_delivered_at)) }
            }
            @if !subscription.enabled {
                form method="post" action="/console/webhooks/enable" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="webhook" value=(id);
                    button type="submit" data-action="enable" { "Enable again" }
                }
            }
            h3 { "Last attempts" }
            @match attempts {
                Err(error) => p.flash data-flash="error" { "Attempts could not be read: " (error) },
                Ok(attempts) if attempts.is_empty() => p.muted { "No attempt yet." },
                Ok(attempts) => {
                    table {
                        thead { tr {
                            th { "Time" } th { "Type" } th { "Change" } th { "Outcome" } th { "Status" }
                            th { "Latency" } th { "Error" } th { "Actions" }
                        } }
                        tbody {
                            @for attempt in &attempts {
                                @let cursor = attempt.cursor.map(Cursor::encode);
                                tr data-cursor=[cursor.as_deref()] {
                                    td { (when_opt(Some(attempt.attempted_at))) }
                                    td { (attempt.kind.as_str()) }
                                    td.mono { (cursor.as_deref().unwrap_or("-")) }
                                    td data-field="outcome" { (attempt.outcome.as_str()) }
                                    td data-field="status" { (attempt.status.map_or_else(|| "-".to_owned(), |s| s.to_string())) }
                                    td data-field="latency-ms" { (attempt.latency_ms) " ms" }
                                    td data-field="error" { (attempt.error.as_deref().map(mask).unwrap_or_default()) }
                                    td.actions {
                                        @if let Some(cursor) = &cursor {
                                            form method="post" action="/console/webhooks/replay" {
                                                input type="hidden" name="csrf" value=(csrf);
                                                input type="hidden" name="webhook" value=(id);
                                                input type="hidden" name="cursor" value=(cursor);
                                                button.secondary type="submit" data-action="replay" { "Replay" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/webhooks`.
pub async fn page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let session = match require_session(&request, &state) {
        Ok(session) => session,
        Err(redirect) => return *redirect,
    };
    let mut flashes = flashes(&request);
    let csrf = session.csrf();
    let mut sections = Vec::new();
    if let Some(webhooks) = &state.webhooks {
        match webhooks.list().await {
            Ok(subscriptions) => {
                for subscription in &subscriptions {
                    let attempts = webhooks
                        .attempts(&subscription.id, ATTEMPTS)
                        .await
                        .map_err(error_text);
                    sections.push(section(subscription, attempts, &csrf));
                }
            }
            Err(error) => flashes.push(Flash::error(format!(
                "Webhook subscriptions could not be read: {}",
                error_text(error)
            ))),
        }
    }
    let body = html! {
        @if state.webhooks.is_none() {
            p { "Outbound webhooks are not configured on this server." }
        } @else {
            p.note {
                strong { "Replay" } " sends that change to the subscription again now, with its " code { "webhook-id" } " unchanged (receivers that keep ids drop a copy they had); the subscription's cursor does not move. "
                strong { "Enable again" } " resumes deliveries of a disabled subscription from its cursor."
            }
            @if sections.is_empty() {
                p { "No subscription (create one with " code { "POST /calendar/webhooks" } ")." }
            }
            @for section in sections { (section) }
        }
    };
    let page = Page {
        title: "Webhooks",
        nav: Nav::Webhooks,
        session: Some(&session),
        flashes,
        refresh: Some(PAGE),
    };
    layout::ok(page.render(body))
}

fn webhook_of(form: &super::ActionForm) -> Result<WebhookId, String> {
    WebhookId::parse(form.webhook.as_deref().unwrap_or_default()).map_err(error_text)
}

/// `POST /console/webhooks/enable`.
pub async fn enable(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let Some(webhooks) = &state.webhooks else {
        return after_action(PAGE, Err("outbound webhooks are not configured".into()));
    };
    let logger = context::logger(&request, &state);
    let id = match webhook_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    let patch = WebhookPatch {
        enabled: Some(true),
        ..WebhookPatch::default()
    };
    let outcome = webhooks.update(&id, patch).await;
    finish_action(
        &logger,
        PAGE,
        ("webhook_update", "webhook_id", id.to_string()),
        outcome,
        "enabled",
    )
}

/// `POST /console/webhooks/replay`.
pub async fn replay(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match authorize_post(&request, &state, &body) {
        Ok((_, form)) => form,
        Err(refusal) => return *refusal,
    };
    let Some(webhooks) = &state.webhooks else {
        return after_action(PAGE, Err("outbound webhooks are not configured".into()));
    };
    let logger = context::logger(&request, &state);
    let id = match webhook_of(&form) {
        Ok(id) => id,
        Err(error) => return after_action(PAGE, Err(error)),
    };
    let cursor = match Cursor::decode(form.cursor.as_deref().unwrap_or_default()) {
        Ok(cursor) => cursor,
        Err(error) => return after_action(PAGE, Err(error_text(error))),
    };
    match webhooks.replay(&id, cursor).await {
        Ok(attempt) => {
            info!(logger, "webhook delivery replayed";
                "action" => "webhook_replay", "via" => "console", "status" => "success",
                "webhook_id" => id.to_string(), "cursor" => cursor.encode(),
                "outcome" => attempt.outcome.as_str());
            if attempt.outcome == AttemptOutcome::Delivered {
                after_action(PAGE, Ok("replayed"))
            } else {
                let why = attempt.error.as_deref().map(mask).unwrap_or_default();
                after_action(
                    PAGE,
                    Err(format!(
                        "Replayed, but the delivery failed ({}): {why}",
                        attempt.outcome.as_str()
                    )),
                )
            }
        }
        Err(error) => {
            warn!(logger, "webhook delivery not replayed";
                "action" => "webhook_replay", "via" => "console", "status" => "failed",
                "webhook_id" => id.to_string(), "cursor" => cursor.encode(),
                "error_type" => error.error_type(), "error_message" => error.to_string());
            after_action(PAGE, Err(error_text(error)))
        }
    }
}
