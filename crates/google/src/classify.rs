//! Turning google-calendar3 failures into the domain's error kinds.

use std::time::Duration;

use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_resilience::{RetryDecision, Retryable};
use google_calendar3::common::{self, Retry};

/// Which call failed: a status means different things on different calls
/// (410 is an expired sync token on a list, an already deleted event on a delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Get,
    Insert,
    Patch,
    Delete,
    Watch,
    Stop,
    CalendarGet,
    FreeBusy,
    CalendarList,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Get => "get",
            Self::Insert => "insert",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::Watch => "watch",
            Self::Stop => "stop",
            Self::CalendarGet => "calendar_get",
            Self::FreeBusy => "free_busy",
            Self::CalendarList => "calendar_list",
        }
    }

    /// Quota units the call costs (Google counts a patch as three).
    pub fn cost(self) -> u32 {
        match self {
            Self::Patch => 3,
            _ => 1,
        }
    }
}

/// Records what google-calendar3 drops when it turns a JSON error body into
/// `Error::BadRequest`: the status and the `Retry-After` header. It answers
/// `Abort` so the resilience crate alone decides on retries.
#[derive(Debug, Default)]
pub struct Capture {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl common::Delegate for Capture {
    fn http_failure(
        &mut self,
        response: &common::Response,
        _body: Option<&serde_json::Value>,
    ) -> Retry {
        self.status = Some(response.status().as_u16());
        self.retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| calsync_resilience::parse_retry_after(value, chrono::Utc::now()));
        Retry::Abort
    }
}

/// A classified failure; wraps the domain error so retries can be decided.
/// `unauthorized` marks a 401, which the adapter answers by refreshing the
/// access token once.
#[derive(Debug)]
pub struct Failure(pub DomainError, pub bool);

impl Failure {
    pub fn new(error: DomainError) -> Self {
        Self(error, false)
    }
}

impl Retryable for Failure {
    fn retry_decision(&self) -> RetryDecision {
        match &self.0 {
            DomainError::Provider {
                kind: ProviderErrorKind::Transient | ProviderErrorKind::RateLimited,
                retry_after,
                ..
            } => RetryDecision::Retry {
                after: *retry_after,
            },
            _ => RetryDecision::Fail,
        }
    }
}

fn failure(kind: ProviderErrorKind, message: String, retry_after: Option<Duration>) -> Failure {
    Failure::new(DomainError::Provider {
        kind,
        message,
        retry_after,
    })
}

/// The kind for an HTTP status and Google error reason on a given call.
pub fn kind_for(op: Op, status: u16, reason: Option<&str>) -> ProviderErrorKind {
    use ProviderErrorKind as K;
    match (status, reason) {
        (429, _) => K::RateLimited,
        (403, Some("rateLimitExceeded" | "userRateLimitExceeded")) => K::RateLimited,
        // Usage limits spent ("Calendar usage limits exceeded", errors
        // guide): retrying within minutes cannot help, but it comes back.
        (403, Some("quotaExceeded" | "dailyLimitExceeded")) => K::QuotaExhausted,
        // "You need to have writer access to this calendar": the principal
        // may read but not write (its calendarList `accessRole` is
        // `reader`), until someone changes the sharing. Not soon, but not
        // for good either: writes wait.
        (403, Some("requiredAccessLevel")) => K::ReadOnly,
        // The event is an invited copy ("Shared properties can only be
        // changed by the organizer of the event"), or a locked one: no
        // retry of the same change can succeed.
        (403, Some("forbiddenForNonOrganizer")) => K::NotOrganizer,
        (500..=599, _) => K::Transient,
        (409, _) => K::Duplicate,
        (412, _) => K::PreconditionFailed,
        (410, _) if op == Op::List => K::SyncTokenExpired,
        // 410 `deleted` on an event: Google deleted it (it is kept as cancelled).
        (410, _) => K::Gone,
        // The calendar itself is gone or no longer shared with us.
        (404, _) if matches!(op, Op::List | Op::Watch) => K::ReconnectRequired,
        (404, _) => K::NotFound,
        // A rejected token: worth one more try with a fresh one.
        (401, _) => K::Transient,
        _ => K::Permanent,
    }
}

/// Classifies a google-calendar3 error from call `op`, using what `capture` saw.
pub fn classify(op: Op, error: common::Error, capture: &Capture) -> Failure {
    use ProviderErrorKind as K;
    let prefix = op.name();
    match error {
        common::Error::BadRequest(body) => {
            let status = capture
                .status
                .or_else(|| {
                    body.pointer("/error/code")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|c| u16::try_from(c).ok())
                })
                .unwrap_or(400);
            let reason = body
                .pointer("/error/errors/0/reason")
                .and_then(serde_json::Value::as_str);
            let message = body
                .pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no message");
            let mut classified = failure(
                kind_for(op, status, reason),
                format!(
                    "{prefix}: {status} {}: {message}",
                    reason.unwrap_or("unknown")
                ),
                capture.retry_after,
            );
            classified.1 = status == 401;
            classified
        }
        common::Error::Failure(response) => {
            let status = response.status().as_u16();
            let mut classified = failure(
                kind_for(op, status, None),
                format!("{prefix}: HTTP {status}"),
                capture.retry_after,
            );
            classified.1 = status == 401;
            classified
        }
        common::Error::HttpError(error) => failure(
            K::Transient,
            format!("{prefix}: connection failed: {error}"),
            None,
        ),
        common::Error::Io(error) => {
            failure(K::Transient, format!("{prefix}: I/O error: {error}"), None)
        }
        // A connected account's token source answers the domain's own
        // error (a grant needing reconnecting, say): kept as it is.
        common::Error::MissingToken(error) if error.is::<DomainError>() => {
            let error = error.downcast::<DomainError>().map_or_else(
                |other| DomainError::provider(K::Transient, other.to_string()),
                |e| *e,
            );
            Failure::new(error)
        }
        common::Error::MissingToken(error) => {
            let text = error.to_string();
            // A revoked or invalid grant needs a person; anything else (the
            // token endpoint unreachable, say) may pass.
            let kind = if text.contains("invalid_grant") || text.contains("unauthorized_client") {
                K::ReconnectRequired
            } else {
                K::Transient
            };
            failure(kind, format!("{prefix}: no access token: {text}"), None)
        }
        common::Error::JsonDecodeError(_, error) => failure(
            K::Permanent,
            format!("{prefix}: unreadable response: {error}"),
            None,
        ),
        other => failure(K::Permanent, format!("{prefix}: {other}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProviderErrorKind as K;

    #[test]
    fn statuses_and_reasons_map_to_kinds() {
        assert_eq!(
            kind_for(Op::List, 410, Some("fullSyncRequired")),
            K::SyncTokenExpired
        );
        assert_eq!(
            kind_for(Op::Delete, 410, Some("deleted")),
            K::Gone,
            "deleted at Google"
        );
        assert_eq!(kind_for(Op::Patch, 410, Some("deleted")), K::Gone);
        assert_eq!(kind_for(Op::Insert, 409, Some("duplicate")), K::Duplicate);
        assert_eq!(
            kind_for(Op::Patch, 412, Some("conditionNotMet")),
            K::PreconditionFailed
        );
        assert_eq!(kind_for(Op::Get, 404, None), K::NotFound);
        assert_eq!(
            kind_for(Op::List, 404, None),
            K::ReconnectRequired,
            "a deleted calendar"
        );
        assert_eq!(
            kind_for(Op::List, 403, Some("rateLimitExceeded")),
            K::RateLimited
        );
        assert_eq!(
            kind_for(Op::List, 403, Some("userRateLimitExceeded")),
            K::RateLimited
        );
        assert_eq!(
            kind_for(Op::Insert, 403, Some("quotaExceeded")),
            K::QuotaExhausted
        );
        assert_eq!(
            kind_for(Op::Insert, 403, Some("forbiddenForServiceAccounts")),
            K::Permanent
        );
        assert_eq!(kind_for(Op::List, 403, Some("forbidden")), K::Permanent);
        assert_eq!(
            kind_for(Op::Patch, 403, Some("requiredAccessLevel")),
            K::ReadOnly
        );
        assert_eq!(
            kind_for(Op::Insert, 403, Some("requiredAccessLevel")),
            K::ReadOnly
        );
        assert_eq!(
            kind_for(Op::Patch, 403, Some("forbiddenForNonOrganizer")),
            K::NotOrganizer
        );
        assert_eq!(
            kind_for(Op::Delete, 403, Some("forbiddenForNonOrganizer")),
            K::NotOrganizer
        );
        assert_eq!(kind_for(Op::List, 429, None), K::RateLimited);
        assert_eq!(kind_for(Op::List, 503, Some("backendError")), K::Transient);
        assert_eq!(kind_for(Op::List, 400, Some("invalid")), K::Permanent);
    }

    #[test]
    fn json_error_bodies_are_read_for_code_and_reason() {
        let body = serde_json::json!({"error": {"code": 403, "message": "Rate Limit Exceeded",
            "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "Rate Limit Exceeded"}]}});
        let capture = Capture {
            status: None,
            retry_after: Some(Duration::from_secs(3)),
        };
        let Failure(error, _) = classify(Op::List, common::Error::BadRequest(body), &capture);
        match error {
            DomainError::Provider {
                kind,
                retry_after,
                message,
            } => {
                assert_eq!(kind, K::RateLimited);
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
                assert!(message.contains("userRateLimitExceeded"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn revoked_grants_need_a_person() {
        let error =
            common::Error::MissingToken("server error: invalid_grant: account deleted".into());
        let Failure(error, _) = classify(Op::List, error, &Capture::default());
        assert_eq!(error.provider_kind(), Some(K::ReconnectRequired));
    }
}
