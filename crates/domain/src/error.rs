//! The domain's one error type.

use std::time::Duration;

/// How a calendar provider failure should be treated. Adapters classify their
/// transport and API errors into these kinds; services decide on the kind alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorKind {
    /// 5xx, connection errors, timeouts: worth retrying.
    Transient,
    /// 429 or 403 rate-limit reasons: retry after backing off.
    RateLimited,
    /// 403 `quotaExceeded`: Google's usage limits for the calendar are
    /// spent, for hours. Retrying soon cannot help; a write waits with a
    /// long backoff instead of being given up.
    QuotaExhausted,
    /// 410 on a sync token: the next sync must be a full one.
    SyncTokenExpired,
    /// 409: the id is taken (on an insert retry, usually by our own earlier try).
    Duplicate,
    /// 412: the etag no longer matches.
    PreconditionFailed,
    /// 404: the event does not exist, or the calendar is not reachable by
    /// this principal (Google answers both alike).
    NotFound,
    /// 410 on an event: Google deleted it.
    Gone,
    /// A revoked grant or a deleted calendar: a person must reconnect it.
    ReconnectRequired,
    /// 403 `requiredAccessLevel` ("You need to have writer access to this
    /// calendar"): this principal may read the calendar but not write it,
    /// until someone changes its sharing. A write waits, probed now and
    /// then, and is never given up.
    ReadOnly,
    /// 403 `forbiddenForNonOrganizer`: the event is an invited copy whose
    /// shared fields only its organizer may change. Retrying cannot help.
    NotOrganizer,
    /// Anything else: retrying will not help.
    Permanent,
}

impl ProviderErrorKind {
    /// Whether waiting (seconds to minutes) and trying again can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Transient | Self::RateLimited)
    }

    /// Whether a queued write waits for this instead of being given up,
    /// however long it takes: spent quota comes back, a calendar that
    /// needs reconnecting gets its writes once a person reconnects it, and
    /// a read-only one once someone grants write access.
    pub fn waits(self) -> bool {
        matches!(
            self,
            Self::QuotaExhausted | Self::ReconnectRequired | Self::ReadOnly
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::SyncTokenExpired => "sync_token_expired",
            Self::Duplicate => "duplicate",
            Self::PreconditionFailed => "precondition_failed",
            Self::NotFound => "not_found",
            Self::Gone => "gone",
            Self::ReconnectRequired => "reconnect_required",
            Self::ReadOnly => "calendar_read_only",
            Self::NotOrganizer => "forbidden_for_non_organizer",
            Self::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every failure the domain can report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value failed validation at construction; `field` names it as a user would.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// Well-formed but not acceptable: a recurrence rule that does not
    /// parse, a write to an event type calsync does not write.
    #[error("unprocessable {field}: {reason}")]
    Unprocessable { field: &'static str, reason: String },

    /// A required push-notification header is absent.
    #[error("missing header {header}")]
    MissingHeader { header: &'static str },

    /// A push-notification header is present but malformed.
    #[error("invalid header {header}: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: String,
    },

    /// A webhook's channel token is missing or wrong.
    #[error("channel token missing or invalid")]
    Forbidden,

    /// The addressed record does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },

    /// A uniqueness rule was violated (e.g. a Google event id already mirrored).
    #[error("{what} already exists")]
    Duplicate { what: &'static str },

    /// An `Idempotency-Key` was reused with a different request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,

    /// The request conflicts with the record's state (a change to an event
    /// that is cancelled).
    #[error("conflict: {reason}")]
    Conflict { reason: String },

    /// An optimistic-concurrency check failed (If-Match etag mismatch).
    #[error("precondition failed: {reason}")]
    PreconditionFailed { reason: String },

    /// The calendar provider (Google) failed; `kind` says how to react.
    #[error("calendar provider error ({kind}): {message}")]
    Provider {
        kind: ProviderErrorKind,
        message: String,
        retry_after: Option<Duration>,
    },

    /// A change-feed cursor from before the oldest change kept.
    #[error("cursor expired: {reason}")]
    CursorExpired { reason: String },

    /// The storage adapter failed (connection, query, pool).
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn unprocessable(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Unprocessable {
            field,
            reason: reason.into(),
        }
    }

    pub fn provider(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self::Provider {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The provider kind, when this is a provider failure.
    pub fn provider_kind(&self) -> Option<ProviderErrorKind> {
        match self {
            Self::Provider { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// A short machine-readable name, used as `error_type` in logs.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::Unprocessable { .. } => "unprocessable",
            Self::MissingHeader { .. } => "missing_header",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::Forbidden => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Duplicate { .. } => "duplicate",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::Conflict { .. } => "conflict",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Provider { kind, .. } => kind.as_str(),
            Self::CursorExpired { .. } => "cursor_expired",
            Self::Storage(_) => "storage",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
