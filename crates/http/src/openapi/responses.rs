//! Answers many operations give alike, declared once: an operation lists
//! them by name in its `responses(...)`.
#![allow(dead_code)] // documentation only: the bodies are built in `error.rs`

use utoipa::IntoResponses;

use crate::error::ErrorBody;

#[derive(IntoResponses)]
#[response(status = 401, description = "Missing or invalid API token")]
pub struct Unauthorized(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 503, description = "The database is unavailable: retry")]
pub struct StoreUnavailable(ErrorBody);

#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Google or the database is unavailable: retry"
)]
pub struct GoogleOrStoreUnavailable(ErrorBody);

/// `crate::MAX_EVENT_BODY_BYTES`, the `/calendar` routes' body limit.
#[derive(IntoResponses)]
#[response(status = 413, description = "The body exceeds 256 KiB")]
pub struct BodyTooLarge(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 404, description = "No such event")]
pub struct EventNotFound(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 404, description = "Not a managed calendar")]
pub struct CalendarNotManaged(ErrorBody);

#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "Google refused access for good (`reconnect_required`)"
)]
pub struct ReconnectRequired(ErrorBody);

/// What a push notification is refused with. Google retries a 5xx only.
#[derive(IntoResponses)]
pub enum NotificationRefusals {
    #[response(
        status = 400,
        description = "A missing or malformed `X-Goog-*` header (`missing_header`, `invalid_header`; `error.header` names it)"
    )]
    Malformed(ErrorBody),
    #[response(
        status = 403,
        description = "A wrong or missing channel token (`forbidden`)"
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 503,
        description = "Throttled (`rate_limited`, with `Retry-After`) or the database is unavailable: Google retries"
    )]
    Unavailable(ErrorBody),
}

#[derive(IntoResponses)]
#[response(status = 404, description = "No such webhook subscription")]
pub struct WebhookNotFound(ErrorBody);

/// The webhook routes' 503: the store, or a server built without delivery.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "The database is unavailable (`unavailable`: retry), or this server was started without webhook delivery (`webhooks_not_configured`)"
)]
pub struct WebhooksUnavailable(ErrorBody);

#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "The database or Google is unavailable (`unavailable`, `google_unavailable`: retry), or this server has no OAuth client configured (`grants_not_configured`)"
)]
pub struct GrantsUnavailable(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 404, description = "No such grant")]
pub struct GrantNotFound(ErrorBody);
