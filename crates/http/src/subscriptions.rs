//! `/calendar/webhooks`: the application's webhook subscriptions, which
//! receive the change feed signed to the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>). A subscription's signing secret
//! is shown when it is made and when it is rotated, never otherwise.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::feed::ChangeType;
use calsync_domain::feed::signature::SigningSecret;
use calsync_domain::feed::subscription::{DeliveryAttempt, WebhookId, WebhookSubscription};
use calsync_domain::ids::CalendarId;
use calsync_domain::services::{NewWebhook, WebhookPatch, WebhookService};
use serde::{Deserialize, Deserializer, Serialize};
use slog::info;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::changes::{ChangeTypeDoc, instant};
use crate::openapi::responses::{BodyTooLarge, Unauthorized, WebhookNotFound, WebhooksUnavailable};
use crate::request::{parse_body, rules};
use crate::{AppState, HttpError, context};

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /calendar/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://app.example.com/hooks/calendar",
    "types": ["event.created", "event.updated", "event.cancelled", "attendee.responded"],
    "entityType": "deal",
    "description": "CRM deals"
}))]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: `https://` (plain `http://` only to a
    /// loopback address, in development), then visible ASCII (an IDN host
    /// in its `xn--` form), at most 2048 characters. The host must resolve,
    /// and only to public addresses unless the operator lists it in
    /// `CALSYNC_WEBHOOK_ALLOWED_HOSTS`; else a 400 naming `url`.
    // Its pattern is `rules::WEBHOOK_URL`, set by the document's corrections.
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://app.example.com/hooks/calendar"
    )]
    pub url: String,
    /// Only changes of these types; absent, `null` or `[]`: every type.
    #[schema(inline, value_type = Option<Vec<ChangeTypeDoc>>)]
    pub types: Option<Vec<String>>,
    /// Only changes to events of this entity type.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: Option<String>,
    /// Only this calendar's changes.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<String>,
    /// For people: what the subscription is for.
    #[schema(max_length = 512, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
}

/// `PATCH /calendar/webhooks/{id}`: absent fields stay; `null` clears
/// `entityType`, `calendarId` and `description`, makes `types` every type,
/// and is the same as absent for `url` and `enabled`. At least one field
/// must be given (a `null` where it means absent does not count); else a
/// 400 naming `body`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"types": ["event.cancelled"], "description": null}))]
pub struct PatchWebhook {
    /// As on create.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    /// `null` or `[]`: every type.
    #[serde(default, deserialize_with = "present")]
    #[schema(inline, value_type = Option<Vec<ChangeTypeDoc>>)]
    pub types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(
        value_type = Option<String>,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 512, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub description: Option<Option<String>>,
    /// `false` pauses deliveries (changes wait in the feed, within its
    /// retention); `true` resumes a paused or disabled subscription from
    /// where it stopped, its failures forgotten.
    pub enabled: Option<bool>,
}

fn invalid_at(field: String, message: impl Into<String>) -> HttpError {
    HttpError::InvalidBody {
        field,
        message: message.into(),
    }
}

fn url(value: String) -> Result<String, HttpError> {
    if rules::is_webhook_url(&value) {
        Ok(value)
    } else {
        Err(invalid_at(
            "url".into(),
            "must be an http(s):// URL of visible ASCII characters",
        ))
    }
}

fn types(list: Option<Vec<String>>) -> Result<Vec<ChangeType>, HttpError> {
    let mut types = Vec::new();
    for (i, name) in list.into_iter().flatten().enumerate() {
        let kind = ChangeType::parse(&name)
            .map_err(|error| invalid_at(format!("types[{i}]"), error.to_string()))?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

fn calendar(value: Option<String>) -> Result<Option<CalendarId>, HttpError> {
    Ok(value.map(CalendarId::new).transpose()?)
}

/// A webhook subscription (its secret is shown only by create and
/// rotate-secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResource {
    #[schema(pattern = "^wh_[0-9a-f]{32}$")]
    pub id: String,
    pub url: String,
    /// Empty: every type.
    #[schema(inline, value_type = Vec<ChangeTypeDoc>)]
    pub types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `false` when paused through the API or disabled by calsync (see
    /// `disabledReason`); `PATCH {"enabled": true}` resumes it.
    pub enabled: bool,
    /// Why it is disabled: through the API, the receiver answered 410, or
    /// every delivery failed for three days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last delivery.
    pub failures: u32,
    /// When the current run of failures began.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    /// When the next delivery (or retry) is due.
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_delivered_at: Option<String>,
    /// Delivered (or passed over by its filters) up to this change.
    pub cursor: String,
    /// After a rotation: until when the previous secret still signs,
    /// beside the new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl WebhookResource {
    pub fn new(subscription: &WebhookSubscription) -> Self {
        Self {
            id: subscription.id.to_string(),
            url: subscription.url.clone(),
            types: subscription.types.iter().map(|t| t.as_str()).collect(),
            entity_type: subscription.entity_type.clone(),
            calendar_id: subscription.calendar_id.as_ref().map(ToString::to_string),
            description: subscription.description.clone(),
            enabled: subscription.enabled,
            disabled_reason: subscription.disabled_reason.clone(),
            failures: subscription.failures,
            failing_since: subscription.failing_since.map(instant),
            next_attempt_at: instant(subscription.next_attempt_at),
            last_delivered_at: subscription.last_delivered_at.map(instant),
            cursor: subscription.cursor.encode(),
            previous_secret_expires_at: subscription
                .previous_secret
                .as_ref()
                .and(subscription.previous_secret_until)
                .map(instant),
            created_at: instant(subscription.created_at),
            updated_at: instant(subscription.updated_at),
        }
    }
}

/// A subscription with its signing secret: the answer of create and of
/// rotate-secret, the only times the secret is shown.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only: the body is built in `with_secret`
pub struct WebhookWithSecret {
    #[schema(pattern = "^wh_[0-9a-f]{32}$")]
    id: String,
    url: String,
    #[schema(inline, value_type = Vec<ChangeTypeDoc>)]
    types: Vec<String>,
    entity_type: Option<String>,
    calendar_id: Option<String>,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    failures: u32,
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    #[schema(format = DateTime)]
    next_attempt_at: String,
    #[schema(format = DateTime)]
    last_delivered_at: Option<String>,
    cursor: String,
    #[schema(format = DateTime)]
    previous_secret_expires_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// The signing secret, `whsec_` and the base64 of 32 random bytes:
    /// deliveries' `webhook-signature` is `v1,` and the base64
    /// HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with
    /// the decoded bytes. Shown this once: keep it.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]{43}=$")]
    secret: String,
}

fn with_secret(subscription: &WebhookSubscription, secret: &SigningSecret) -> serde_json::Value {
    let mut answer = serde_json::to_value(WebhookResource::new(subscription)).unwrap_or_default();
    answer["secret"] = serde_json::Value::String(secret.expose());
    answer
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct WebhookList {
    items: Vec<WebhookResource>,
}

/// delivered (the receiver answered 2xx) | failed (another status, no
/// answer within 10 s, or no connection) | gone (the receiver answered
/// 410: the subscription is disabled)
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum AttemptOutcomeDoc {
    Delivered,
    Failed,
    Gone,
}

/// One attempt to deliver to the receiver.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptResource {
    #[schema(inline, value_type = AttemptOutcomeDoc)]
    pub outcome: &'static str,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u32,
    /// What went wrong, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub attempted_at: String,
}

impl AttemptResource {
    fn new(attempt: &DeliveryAttempt) -> Self {
        Self {
            outcome: attempt.outcome.as_str(),
            status: attempt.status,
            latency_ms: attempt.latency_ms,
            error: attempt.error.clone(),
            attempted_at: instant(attempt.attempted_at),
        }
    }
}

/// `webhook.test` or a change type.
pub(crate) struct AttemptTypeDoc;

impl utoipa::PartialSchema for AttemptTypeDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names = ChangeType::FEED
            .iter()
            .chain([&ChangeType::WebhookTest])
            .map(|kind| kind.as_str());
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names))
            .into()
    }
}

impl ToSchema for AttemptTypeDoc {}

/// A recorded attempt: what was sent, and how it went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptEntry {
    /// The change's cursor (its `webhook-id`); absent for a test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(rename = "type")]
    #[schema(inline, value_type = AttemptTypeDoc)]
    pub kind: &'static str,
    #[schema(inline, value_type = AttemptOutcomeDoc)]
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub attempted_at: String,
}

impl AttemptEntry {
    fn new(attempt: &DeliveryAttempt) -> Self {
        let AttemptResource {
            outcome,
            status,
            latency_ms,
            error,
            attempted_at,
        } = AttemptResource::new(attempt);
        Self {
            cursor: attempt.cursor.map(|c| c.encode()),
            kind: attempt.kind.as_str(),
            outcome,
            status,
            latency_ms,
            error,
            attempted_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct AttemptList {
    /// Newest first.
    items: Vec<AttemptEntry>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// How many of the newest attempts, 1 to 100; default 20. Attempts are
    /// kept as long as changes (`CALSYNC_CHANGES_RETENTION_DAYS`).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

fn service(state: &AppState) -> Result<&WebhookService, HttpError> {
    state
        .webhooks
        .as_ref()
        .ok_or(HttpError::WebhooksNotConfigured)
}

fn webhook_id(path: &str) -> Result<WebhookId, HttpError> {
    Ok(WebhookId::parse(path)?)
}

/// Subscribes a receiver to the change feed, from the newest change on.
#[utoipa::path(
    post, path = "/calendar/webhooks", tag = "subscriptions", operation_id = "createWebhook",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Subscribed; `secret` is shown this once", body = WebhookWithSecret),
        (status = 400, description = "Invalid body, or a URL calsync will not deliver to (not https, a host that does not resolve or resolves to an internal address); `error.field` names it", body = crate::error::ErrorBody),
        (status = 409, description = "100 subscriptions exist already (`conflict`)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let input: CreateWebhook = parse_body(&body)?;
    let new = NewWebhook {
        url: url(input.url)?,
        types: types(input.types)?,
        entity_type: input.entity_type,
        calendar_id: calendar(input.calendar_id)?,
        description: input.description,
    };
    let (subscription, secret) = webhooks.create(new).await?;
    info!(context::logger(&request, &state), "webhook subscription created";
        "action" => "webhook_create", "status" => "success", "webhook_id" => subscription.id.to_string());
    Ok(HttpResponse::Created().json(with_secret(&subscription, &secret)))
}

#[utoipa::path(
    get, path = "/calendar/webhooks", tag = "subscriptions", operation_id = "listWebhooks",
    responses(
        (status = 200, description = "The subscriptions, oldest first", body = WebhookList),
        Unauthorized, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(_: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let items: Vec<WebhookResource> = service(&state)?
        .list()
        .await?
        .iter()
        .map(WebhookResource::new)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[utoipa::path(
    get, path = "/calendar/webhooks/{id}", tag = "subscriptions", operation_id = "getWebhook",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "The subscription and its delivery state", body = WebhookResource),
        Unauthorized, WebhookNotFound, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let subscription = webhooks.get(&webhook_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(WebhookResource::new(&subscription)))
}

#[utoipa::path(
    patch, path = "/calendar/webhooks/{id}", tag = "subscriptions", operation_id = "updateWebhook",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "Changed; a new filter applies from the next delivery on", body = WebhookResource),
        (status = 400, description = "Invalid body, a body that names nothing to change, or a URL calsync will not deliver to; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, WebhookNotFound, BodyTooLarge, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn update(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    let input: PatchWebhook = parse_body(&body)?;
    let patch = WebhookPatch {
        url: input.url.map(url).transpose()?,
        types: input.types.map(types).transpose()?,
        entity_type: input.entity_type,
        calendar_id: input.calendar_id.map(calendar).transpose()?,
        description: input.description,
        enabled: input.enabled,
    };
    if patch == WebhookPatch::default() {
        return Err(invalid_at("body".into(), "names no field to change"));
    }
    let subscription = webhooks.update(&id, patch).await?;
    info!(context::logger(&request, &state), "webhook subscription changed";
        "action" => "webhook_update", "status" => "success", "webhook_id" => id.to_string(),
        "enabled" => subscription.enabled);
    Ok(HttpResponse::Ok().json(WebhookResource::new(&subscription)))
}

#[utoipa::path(
    delete, path = "/calendar/webhooks/{id}", tag = "subscriptions", operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    responses(
        (status = 204, description = "Deleted, with its attempts; nothing more is delivered to it"),
        Unauthorized, WebhookNotFound, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    webhooks.delete(&id).await?;
    info!(context::logger(&request, &state), "webhook subscription deleted";
        "action" => "webhook_delete", "status" => "success", "webhook_id" => id.to_string());
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret. The old one keeps signing beside it (two
/// signatures in `webhook-signature`) for 24 hours, so the receiver can
/// switch without missing a delivery.
#[utoipa::path(
    post, path = "/calendar/webhooks/{id}/rotate-secret", tag = "subscriptions", operation_id = "rotateWebhookSecret",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "The subscription with its new `secret`, shown this once; `previousSecretExpiresAt` says until when the old one signs too", body = WebhookWithSecret),
        Unauthorized, WebhookNotFound, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    let (subscription, secret) = webhooks.rotate_secret(&id).await?;
    info!(context::logger(&request, &state), "webhook secret rotated";
        "action" => "webhook_rotate_secret", "status" => "success", "webhook_id" => id.to_string());
    Ok(HttpResponse::Ok().json(with_secret(&subscription, &secret)))
}

/// Sends a `webhook.test` now (`{"type": "webhook.test", "webhookId",
/// "occurredAt"}`, signed like every delivery; its `webhook-id` starts
/// with `test_`) and answers how it went. It does not touch the
/// subscription's deliveries.
#[utoipa::path(
    post, path = "/calendar/webhooks/{id}/test", tag = "subscriptions", operation_id = "testWebhook",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "The attempt, whatever the receiver answered (`outcome`)", body = AttemptResource),
        Unauthorized, WebhookNotFound, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn test(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    let attempt = webhooks.test(&id).await?;
    info!(context::logger(&request, &state), "webhook test sent";
        "action" => "webhook_test", "status" => attempt.outcome.as_str(), "webhook_id" => id.to_string());
    Ok(HttpResponse::Ok().json(AttemptResource::new(&attempt)))
}

/// `POST /calendar/webhooks/{id}/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cursor": "c2n"}))]
pub struct ReplayDelivery {
    /// The change to send again: an attempt's `cursor` (or any feed cursor
    /// the subscription's filters let through).
    #[schema(pattern = "^c[0-9a-z]{1,12}$")]
    pub cursor: String,
}

/// Sends one change to the subscription again now, signed, with the same
/// `webhook-id` as its first delivery (so a receiver that keeps ids can
/// drop a duplicate), and records the attempt. The subscription's cursor
/// and retry schedule do not move: a replay is an extra delivery, for a
/// receiver that lost one.
#[utoipa::path(
    post, path = "/calendar/webhooks/{id}/replay", tag = "subscriptions", operation_id = "replayWebhookDelivery",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$")),
    request_body = ReplayDelivery,
    responses(
        (status = 200, description = "The attempt, whatever the receiver answered (`outcome`)", body = AttemptResource),
        (status = 400, description = "Invalid body or a malformed cursor; `error.field` names it", body = crate::error::ErrorBody),
        (status = 404, description = "No such subscription, or the feed holds no change at that cursor", body = crate::error::ErrorBody),
        (status = 410, description = "The change is older than the feed keeps (`cursor_expired`)", body = crate::error::ErrorBody),
        (status = 422, description = "The change is not one this subscription receives (its filters)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    let input: ReplayDelivery = parse_body(&body)?;
    let cursor = calsync_domain::feed::Cursor::decode(&input.cursor)
        .map_err(|_| invalid_at("cursor".into(), "is not a cursor this feed issued"))?;
    let attempt = webhooks.replay(&id, cursor).await?;
    info!(context::logger(&request, &state), "webhook delivery replayed";
        "action" => "webhook_replay", "status" => attempt.outcome.as_str(),
        "webhook_id" => id.to_string(), "cursor" => input.cursor);
    Ok(HttpResponse::Ok().json(AttemptResource::new(&attempt)))
}

#[utoipa::path(
    get, path = "/calendar/webhooks/{id}/attempts", tag = "subscriptions", operation_id = "listWebhookAttempts",
    params(("id" = String, Path, description = "The subscription's id (`wh_` and 32 hex digits); anything else is a 404", pattern = "^wh_[0-9a-fA-F]{32}$"), AttemptsQuery),
    responses(
        (status = 200, description = "Its newest delivery attempts, newest first", body = AttemptList),
        (status = 400, description = "An invalid or unknown query parameter; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, WebhookNotFound, WebhooksUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn attempts(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<AttemptsQuery>,
) -> Result<HttpResponse, HttpError> {
    let webhooks = service(&state)?;
    let id = webhook_id(&path)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(calsync_domain::Error::invalid("limit", "must be 1 to 100").into());
    }
    let items: Vec<AttemptEntry> = webhooks
        .attempts(&id, limit)
        .await?
        .iter()
        .map(AttemptEntry::new)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
