//! The one place domain errors become HTTP answers. Bodies are JSON:
//! `{"error": {"code": "...", "message": "...", "field"?: "...", "header"?: "..."}}`.
//! A server-side failure's cause is logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use serde_json::json;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub enum HttpError {
    Domain(DomainError),
    /// Missing or unknown API token.
    Unauthorized,
    /// A source sent more webhooks than it may.
    TooManyRequests,
    /// A request body that does not parse; `field` is its JSON path.
    InvalidBody {
        field: String,
        message: String,
    },
    /// With `?wait=true`: Google refused the write for good.
    PushFailed {
        reason: String,
        /// Google refused because the event changed there (a stale `If-Match`).
        conflict: bool,
        event: Box<crate::events::body::EventResource>,
    },
    /// With `?wait=true`: the write found the event deleted at Google; it is
    /// cancelled here too.
    DeletedAtGoogle {
        event: Box<crate::events::body::EventResource>,
    },
    /// Readiness failed: the database is unreachable or behind.
    NotReady(String),
    /// A known path asked with a method it does not serve; `allow` lists the
    /// ones it does (sent as the `Allow` header).
    MethodNotAllowed {
        allow: Vec<String>,
    },
    /// The application's webhooks were asked for, and this server was built
    /// without the adapters that deliver them (`Services::webhooks` is `None`).
    WebhooksNotConfigured,
    /// Grant routes were asked for, and this server has no OAuth client
    /// configured (`Services::grants` is `None`).
    GrantsNotConfigured,
}

/// The JSON body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An error answer to a write that also carries the event as it now stands
/// (`?wait=true` refusals: `google_refused`, `precondition_failed` after a
/// conflict, `deleted_at_google`). Other errors of the same status have no
/// `event`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the body is built in `error_response`
pub struct WriteErrorBody {
    pub error: ErrorDetail,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<crate::events::body::EventResource>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid`, `unauthorized`, `precondition_failed`.
    pub code: String,
    pub message: String,
    /// The offending body field or query parameter, as a JSON path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The offending header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

impl From<DomainError> for HttpError {
    fn from(error: DomainError) -> Self {
        Self::Domain(error)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Domain(error) => error.fmt(f),
            Self::Unauthorized => f.write_str("missing or invalid API token"),
            Self::TooManyRequests => f.write_str("too many requests"),
            Self::InvalidBody { field, message } => write!(f, "invalid {field}: {message}"),
            Self::PushFailed { reason, .. } => write!(f, "Google refused the change: {reason}"),
            Self::DeletedAtGoogle { .. } => f.write_str(
                "the event was deleted in Google: the change was not applied and the event is cancelled here too",
            ),
            Self::NotReady(_) => f.write_str("not ready"),
            Self::MethodNotAllowed { allow } => {
                write!(f, "method not allowed; this path serves {}", allow.join(", "))
            }
            Self::WebhooksNotConfigured => f.write_str(
                "webhook delivery is not configured on this server; the change feed (GET /calendar/changes) is",
            ),
            Self::GrantsNotConfigured => f.write_str(
                "connecting user accounts is not configured on this server (CALSYNC_GOOGLE_OAUTH_CLIENT_ID)",
            ),
        }
    }
}

impl HttpError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ProviderErrorKind as K;
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            // Google retries webhooks only on 5xx, so a throttled but genuine
            // notification is delayed, not lost.
            Self::TooManyRequests => (StatusCode::SERVICE_UNAVAILABLE, "rate_limited"),
            Self::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            Self::PushFailed { conflict: true, .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            Self::PushFailed { .. } => (StatusCode::BAD_GATEWAY, "google_refused"),
            Self::DeletedAtGoogle { .. } => (StatusCode::CONFLICT, "deleted_at_google"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::WebhooksNotConfigured => {
                (StatusCode::SERVICE_UNAVAILABLE, "webhooks_not_configured")
            }
            Self::GrantsNotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "grants_not_configured"),
            Self::Domain(error) => match error {
                DomainError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
                DomainError::Unprocessable { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable")
                }
                DomainError::MissingHeader { .. } => (StatusCode::BAD_REQUEST, "missing_header"),
                DomainError::InvalidHeader { .. } => (StatusCode::BAD_REQUEST, "invalid_header"),
                DomainError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
                DomainError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
                DomainError::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate"),
                DomainError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
                DomainError::PreconditionFailed { .. } => {
                    (StatusCode::PRECONDITION_FAILED, "precondition_failed")
                }
                DomainError::IdempotencyKeyReused => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
                }
                // The changes after it were purged: the reader resynchronises
                // (docs/CHANGE-FEED.md), so it is gone, not missing.
                DomainError::CursorExpired { .. } => (StatusCode::GONE, "cursor_expired"),
                // Worth retrying: the client (or Google, for webhooks) should come back.
                DomainError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                DomainError::Provider { kind, .. } => match kind {
                    K::Transient | K::RateLimited => {
                        (StatusCode::SERVICE_UNAVAILABLE, "google_unavailable")
                    }
                    K::QuotaExhausted => {
                        (StatusCode::SERVICE_UNAVAILABLE, "google_quota_exhausted")
                    }
                    K::NotFound | K::Gone => (StatusCode::NOT_FOUND, "not_found_in_google"),
                    K::PreconditionFailed => {
                        (StatusCode::PRECONDITION_FAILED, "precondition_failed")
                    }
                    K::Duplicate => (StatusCode::CONFLICT, "duplicate_in_google"),
                    K::ReconnectRequired => (StatusCode::CONFLICT, "reconnect_required"),
                    // Both are about the calendar's sharing or the event's
                    // organizer, which the caller cannot fix by retrying.
                    K::ReadOnly => (StatusCode::CONFLICT, "calendar_read_only"),
                    K::NotOrganizer => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "forbidden_for_non_organizer",
                    ),
                    K::SyncTokenExpired | K::Permanent => {
                        (StatusCode::BAD_GATEWAY, "google_refused")
                    }
                },
            },
        }
    }

    /// Whether the cause stays in the logs (server-side failures).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Domain(DomainError::Storage(_)) | Self::NotReady(_)
        )
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.status_and_code();
        let message = if self.is_internal() {
            "the service is temporarily unavailable; try again".to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({"error": {"code": code, "message": message}});
        match self {
            Self::Domain(
                DomainError::Invalid { field, .. } | DomainError::Unprocessable { field, .. },
            ) => body["error"]["field"] = json!(field),
            Self::InvalidBody { field, .. } => body["error"]["field"] = json!(field),
            Self::PushFailed { event, .. } | Self::DeletedAtGoogle { event } => {
                body["event"] = json!(event)
            }
            Self::Domain(
                DomainError::MissingHeader { header } | DomainError::InvalidHeader { header, .. },
            ) => {
                body["error"]["header"] = json!(header);
            }
            _ => {}
        }
        let mut response = HttpResponse::build(status);
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((actix_web::http::header::ALLOW, allow.join(", ")));
        }
        if matches!(self, Self::TooManyRequests) {
            response.insert_header(("Retry-After", "1"));
        }
        if let Self::Domain(DomainError::Provider {
            retry_after: Some(after),
            ..
        }) = self
        {
            response.insert_header(("Retry-After", after.as_secs().max(1).to_string()));
        }
        response.json(body)
    }
}
