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
            // As Google answers them (see `event_types::restricted`; the
            // service-account refusal as quoted in
            // https://github.com/spatie/laravel-google-calendar/discussions/294;
            // `forbiddenForNonOrganizer` as quoted in
            // https://github.com/kewisch/gdata-provider/issues/426;
            // `requiredAccessLevel` as apps quote Google's answer to a write
            // on a calendar shared read-only).
            "eventTypeRestriction"
            | "forbiddenForServiceAccounts"
            | "forbiddenForNonOrganizer"
            | "requiredAccessLevel" => "calendar",
            _ => "global",
        }
    }

    /// The refusal of a write that adds attendees, made by a service
    /// account without domain-wide delegation.
    pub fn forbidden_for_service_accounts() -> Self {
        Self::new(
            403,
            "forbiddenForServiceAccounts",
            google_message("forbiddenForServiceAccounts").unwrap_or_default(),
        )
    }

    /// The refusal of a write by a principal that may only read the
    /// calendar (`reader` or `freeBusyReader` access role).
    pub fn required_access_level() -> Self {
        Self::new(
            403,
            "requiredAccessLevel",
            google_message("requiredAccessLevel").unwrap_or_default(),
        )
    }

    /// The refusal of a change an attendee may not make to their copy of
    /// an event organized elsewhere (or to a locked event's main fields).
    pub fn forbidden_for_non_organizer() -> Self {
        Self::new(
            403,
            "forbiddenForNonOrganizer",
            google_message("forbiddenForNonOrganizer").unwrap_or_default(),
        )
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

/// Google's message for a reason, where the errors guide
/// (<https://developers.google.com/workspace/calendar/api/guides/errors>)
/// or Google's observed answers give one.
pub fn google_message(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "rateLimitExceeded" => "Rate Limit Exceeded",
        "userRateLimitExceeded" => "User Rate Limit Exceeded",
        "quotaExceeded" => "Calendar usage limits exceeded.",
        "forbiddenForServiceAccounts" => {
            "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority."
        }
        // Google's answer to a change on an attendee's copy, as quoted in
        // kewisch/gdata-provider issue 426.
        "forbiddenForNonOrganizer" => {
            "Shared properties can only be changed by the organizer of the event."
        }
        // Google's answer to a write on a calendar shared read-only, as
        // apps quote it (e.g. phw198/OutlookGoogleCalendarSync matches on
        // it); calendarList reference, accessRole `reader`: "Provides read
        // access to the calendar".
        "requiredAccessLevel" => "You need to have writer access to this calendar.",
        "backendError" => "Backend Error",
        "authError" => "Invalid Credentials",
        "notFound" => "Not Found",
        _ => return None,
    })
}
