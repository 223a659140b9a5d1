//! The outbox: local writes waiting to be pushed to Google.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::EventChanges;
use crate::ids::{CalendarId, Etag, EventId, LocalEventId};

/// What a queued patch sends: only the fields its caller changed, and the
/// values they had before, so a refused conditional write (412) can tell a
/// concurrent edit of other fields (re-apply) from one of the same fields
/// (conflict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchIntent {
    pub changes: EventChanges,
    pub base: EventChanges,
}

/// What to do at Google.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum OutboxOp {
    Insert,
    /// Patch the changed fields, conditional on the etag the mirror holds at
    /// push time. `if_match` is set when the caller demanded that etag: a
    /// refusal is then a conflict, never re-applied. `intent` is `None` only
    /// for rows queued before intents were recorded (the content is sent).
    Patch {
        if_match: Option<Etag>,
        intent: Option<Box<PatchIntent>>,
    },
    Delete,
}

impl OutboxOp {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Patch { .. } => "patch",
            Self::Delete => "delete",
        }
    }

    /// Rebuilds an op from its stored kind, etag and intent.
    pub fn from_parts(
        kind: &str,
        if_match: Option<Etag>,
        intent: Option<PatchIntent>,
    ) -> Result<Self> {
        match kind {
            "insert" => Ok(Self::Insert),
            "patch" => Ok(Self::Patch {
                if_match,
                intent: intent.map(Box::new),
            }),
            "delete" => Ok(Self::Delete),
            _ => Err(Error::invalid("op", "must be insert, patch or delete")),
        }
    }

    pub fn if_match(&self) -> Option<&Etag> {
        match self {
            Self::Patch { if_match, .. } => if_match.as_ref(),
            _ => None,
        }
    }

    pub fn intent(&self) -> Option<&PatchIntent> {
        match self {
            Self::Patch { intent, .. } => intent.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Done,
    /// Given up on: a permanent error, or too many attempts.
    DeadLetter,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::DeadLetter => "dead_letter",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "pending" => Ok(Self::Pending),
            "done" => Ok(Self::Done),
            "dead_letter" => Ok(Self::DeadLetter),
            _ => Err(Error::invalid(
                "state",
                "must be pending, done or dead_letter",
            )),
        }
    }
}

/// What kind of failure a row's `last_error` records, so readers decide on
/// the kind instead of matching the text. Rows written before kinds were
/// stored have none (`None`), and `None` is read as no conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushFailure {
    /// Google's copy changed under the write: a 412 the write could not get
    /// past, or the same fields changed there. Google's version stands.
    Conflict,
    /// Google had deleted the event; the write was not applied.
    Gone,
    /// Refused on its merits (invalid, not the organizer's to change, an id
    /// taken by another event, the event gone here): trying again cannot help.
    Refused,
    /// Failed for now (Google down or slowing us down, quota spent, the
    /// calendar read-only or unreachable): tried again later. A row given
    /// up after too many such tries keeps this kind.
    Temporary,
}

impl PushFailure {
    /// The kind of a provider (or storage) error a push ended with.
    pub fn of(error: &Error) -> Self {
        match error.provider_kind() {
            Some(ProviderErrorKind::PreconditionFailed) => Self::Conflict,
            Some(ProviderErrorKind::Gone) => Self::Gone,
            Some(kind) if kind.is_retryable() || kind.waits() => Self::Temporary,
            Some(_) => Self::Refused,
            // Not Google's answer: storage trouble passes.
            None if matches!(error, Error::Storage(_)) => Self::Temporary,
            None => Self::Refused,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Gone => "gone",
            Self::Refused => "refused",
            Self::Temporary => "temporary",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "conflict" => Ok(Self::Conflict),
            "gone" => Ok(Self::Gone),
            "refused" => Ok(Self::Refused),
            "temporary" => Ok(Self::Temporary),
            _ => Err(Error::invalid(
                "last_failure",
                "must be conflict, gone, refused or temporary",
            )),
        }
    }
}

/// An outbox row. Rows of one event are pushed in `id` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub id: i64,
    pub event_id: LocalEventId,
    pub calendar_id: CalendarId,
    pub google_event_id: EventId,
    pub op: OutboxOp,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The kind of `last_error` (see [`PushFailure`]).
    pub last_failure: Option<PushFailure>,
    pub created_at: DateTime<Utc>,
}

/// A client's `Idempotency-Key` and a fingerprint of the request it came
/// with: a retry with the same key and fingerprint gets the first result; the
/// same key with another fingerprint is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    pub const MAX_CHARS: usize = 255;

    /// Keys are 1 to 255 visible ASCII characters (UUIDs, ULIDs, ...).
    pub fn new(key: impl Into<String>, fingerprint: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let well_formed = !key.is_empty()
            && key.len() <= Self::MAX_CHARS
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !well_formed {
            return Err(Error::InvalidHeader {
                header: "Idempotency-Key",
                reason: "must be 1 to 255 visible ASCII characters".into(),
            });
        }
        Ok(Self {
            key,
            fingerprint: fingerprint.into(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// What an idempotency key recorded: the request's fingerprint and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub event_id: LocalEventId,
    pub created_at: DateTime<Utc>,
}

/// How the outbox worker spaces retries of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts after which a still-failing row is dead-lettered.
    pub max_attempts: u32,
    /// How often a write to a calendar this principal may only read (403
    /// `requiredAccessLevel`) is tried again. The retry is the probe: no
    /// other call asks whether access came back. Such waits are not
    /// attempts and never dead-letter the write.
    pub read_only_probe: Duration,
}

/// The default [`OutboxRetryPolicy::read_only_probe`]: sharing changes are
/// made by people, so minutes are soon enough, and each probe costs a
/// write call against the per-user quota.
pub const DEFAULT_READ_ONLY_PROBE: Duration = Duration::from_secs(5 * 60);

/// How long a write waits after Google said its quota is spent, or that
/// the calendar is unreachable (before jitter): quota comes back over
/// hours, so trying every few seconds only spends what is left.
pub const LONG_WAIT: Duration = Duration::from_secs(30 * 60);

impl Default for OutboxRetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
            max_attempts: 20,
            read_only_probe: DEFAULT_READ_ONLY_PROBE,
        }
    }
}

impl OutboxRetryPolicy {
    /// Delay before the next try after `attempts` failed ones (1-based), never
    /// shorter than the provider's `Retry-After` hint. The upper bound of
    /// [`OutboxRetryPolicy::jittered`].
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let backoff = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        retry_after.map_or(backoff, |hint| backoff.max(hint))
    }

    /// [`OutboxRetryPolicy::delay`] spread over its upper half, so rows that
    /// failed together (an outage) do not all come back at one instant.
    /// `seed` (the row id) picks the point: pure and repeatable, no RNG.
    /// A `Retry-After` hint stays the floor.
    pub fn jittered(&self, attempts: u32, retry_after: Option<Duration>, seed: u64) -> Duration {
        spread(self.delay(attempts, None), seed, attempts)
            .max(retry_after.unwrap_or(Duration::ZERO))
    }

    /// The wait after quota ran out or the calendar became unreachable:
    /// [`LONG_WAIT`], jittered the same way.
    pub fn long_wait(&self, attempts: u32, retry_after: Option<Duration>, seed: u64) -> Duration {
        spread(LONG_WAIT, seed, attempts).max(retry_after.unwrap_or(Duration::ZERO))
    }

    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// A point in `[full / 2, full]` picked by hashing `seed` and `salt`.
fn spread(full: Duration, seed: u64, salt: u32) -> Duration {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(salt.to_le_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    let fraction = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    full.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_delays_spread_over_the_upper_half_and_keep_retry_after() {
        let policy = OutboxRetryPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(100),
            max_attempts: 5,
            ..OutboxRetryPolicy::default()
        };
        let delays: Vec<Duration> = (0..200).map(|row| policy.jittered(3, None, row)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(20) && *d <= Duration::from_secs(40))
        );
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 150,
            "rows failing together come back apart"
        );
        assert_eq!(policy.jittered(3, None, 7), policy.jittered(3, None, 7));
        assert!(policy.jittered(1, Some(Duration::from_secs(90)), 1) >= Duration::from_secs(90));
        let long = policy.long_wait(1, None, 3);
        assert!(long >= LONG_WAIT / 2 && long <= LONG_WAIT);
    }

    #[test]
    fn retry_delays_double_up_to_the_cap_and_honour_retry_after() {
        let policy = OutboxRetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 5,
            ..OutboxRetryPolicy::default()
        };
        let secs: Vec<u64> = (1..=6).map(|n| policy.delay(n, None).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            policy.delay(100, None),
            Duration::from_secs(10),
            "no overflow"
        );
        assert!(!policy.exhausted(4));
        assert!(policy.exhausted(5));
    }

    #[test]
    fn push_failures_round_trip_and_only_a_412_is_a_conflict() {
        for failure in [
            PushFailure::Conflict,
            PushFailure::Gone,
            PushFailure::Refused,
            PushFailure::Temporary,
        ] {
            assert_eq!(PushFailure::parse(failure.as_str()).unwrap(), failure);
        }
        assert!(PushFailure::parse("conflicted").is_err());
        let of = |kind| PushFailure::of(&Error::provider(kind, "x"));
        assert_eq!(
            of(ProviderErrorKind::PreconditionFailed),
            PushFailure::Conflict
        );
        assert_eq!(of(ProviderErrorKind::Gone), PushFailure::Gone);
        assert_eq!(of(ProviderErrorKind::Transient), PushFailure::Temporary);
        assert_eq!(
            of(ProviderErrorKind::QuotaExhausted),
            PushFailure::Temporary
        );
        assert_eq!(of(ProviderErrorKind::ReadOnly), PushFailure::Temporary);
        assert_eq!(of(ProviderErrorKind::NotOrganizer), PushFailure::Refused);
        assert_eq!(of(ProviderErrorKind::Permanent), PushFailure::Refused);
        assert_eq!(
            PushFailure::of(&Error::Storage("down".into())),
            PushFailure::Temporary
        );
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::new("7f1c2a9e-0b4d-4c59-9d1e-1f2a3b4c5d6e", "fp").is_ok());
        for bad in ["", "has space", "tab\t", "ünï", &"k".repeat(256)] {
            assert!(
                matches!(
                    IdempotencyKey::new(bad, "fp"),
                    Err(Error::InvalidHeader {
                        header: "Idempotency-Key",
                        ..
                    })
                ),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn ops_round_trip_through_their_stored_parts() {
        for op in [
            OutboxOp::Insert,
            OutboxOp::Patch {
                if_match: Some(Etag::new("\"1\"").unwrap()),
                intent: Some(Box::new(PatchIntent {
                    changes: EventChanges {
                        summary: Some(None),
                        ..EventChanges::default()
                    },
                    base: EventChanges {
                        summary: Some(Some("old".into())),
                        ..EventChanges::default()
                    },
                })),
            },
            OutboxOp::Delete,
        ] {
            assert_eq!(
                OutboxOp::from_parts(op.kind(), op.if_match().cloned(), op.intent().cloned())
                    .unwrap(),
                op
            );
        }
        assert!(OutboxOp::from_parts("upsert", None, None).is_err());
    }
}
