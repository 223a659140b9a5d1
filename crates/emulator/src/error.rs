use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// An error answered in Google's JSON error shape:
/// `{"error":{"errors":[{"domain","reason","message"}],"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub reason: String,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(reason: &str, message: impl Into<String>) -> Self {
        Self::new(400, reason, message)
    }

    pub fn not_found() -> Self {
        Self::new(404, "notFound", "Not Found")
    }

    fn domain(&self) -> &'static str {
        match self.reason.as_str() {
            "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded" => "usageLimits",
            // As Google answers it (see `event_types::restricted`).
            "eventTypeRestriction" => "calendar",
            _ => "global",
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "errors": [{"domain": self.domain(), "reason": self.reason, "message": self.message}],
                "code": self.status,
                "message": self.message,
            }
        })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(self.body())
    }
}
