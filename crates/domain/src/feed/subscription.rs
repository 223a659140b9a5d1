//! The application's webhook subscriptions: what each receives, where it
//! stands in the feed, and when its next attempt is due.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ChangeQuery, ChangeType, Cursor};
use crate::error::{Error, Result};
use crate::ids::CalendarId;

/// A subscription's id: `wh_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(String);

impl WebhookId {
    pub fn random() -> Self {
        Self(format!("wh_{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn parse(value: &str) -> Result<Self> {
        let hex = value
            .strip_prefix("wh_")
            .filter(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(Error::NotFound { what: "webhook" })?;
        Ok(Self(format!("wh_{}", hex.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most characters of a subscription's URL and description.
pub const URL_CHARS: usize = 2048;
pub const DESCRIPTION_CHARS: usize = 512;

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// A subscription failing this long is disabled.
pub const DISABLE_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// A subscription failing this long is reported by `/health/calendar`.
pub const REPORT_FAILING_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Longest wait for a receiver's answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait before retry `failures` (1 for the first retry), before
/// jitter: 5 s, 30 s, 2 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, then
/// every 6 h until the subscription is disabled after three days of
/// failing. The fourth retry comes 7.6 minutes after the first failure.
const RETRY_DELAYS_SECS: [u64; 10] = [5, 30, 120, 300, 900, 1800, 3600, 7200, 14_400, 21_600];

/// The wait before retry `failures` (>= 1), with `jitter` in `[0, 1)`
/// spreading it by -20% to +20% so many failing subscriptions do not come
/// back in step.
pub fn retry_delay(failures: u32, jitter: f64) -> Duration {
    let index = (failures.max(1) as usize - 1).min(RETRY_DELAYS_SECS.len() - 1);
    let base = RETRY_DELAYS_SECS[index] as f64;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Duration::from_millis((base * factor * 1000.0) as u64)
}

/// A secret as the store keeps it: sealed by the [`crate::ports::SecretKeeper`].
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: WebhookId,
    pub url: String,
    /// Empty: every type.
    pub types: Vec<ChangeType>,
    pub entity_type: Option<String>,
    pub calendar_id: Option<CalendarId>,
    pub description: Option<String>,
    pub secret: SealedSecret,
    /// The secret before the last rotation, signing beside the new one until
    /// `previous_secret_until`.
    pub previous_secret: Option<SealedSecret>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Delivered (or passed over by the filters) up to here.
    pub cursor: Cursor,
    /// Failed attempts since the last delivery.
    pub failures: u32,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookSubscription {
    /// The feed read that finds its next deliveries.
    pub fn query(&self, limit: u32) -> ChangeQuery {
        ChangeQuery {
            after: Some(self.cursor),
            limit,
            calendar_id: self.calendar_id.clone(),
            entity_type: self.entity_type.clone(),
            entity_id: None,
            types: self.types.clone(),
        }
    }

    /// The secrets that sign a delivery at `now`: the current one, and the
    /// previous one during its overlap.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> Vec<&SealedSecret> {
        let mut secrets = vec![&self.secret];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Anything else: another status, a timeout, a refused connection.
    Failed,
    /// The receiver answered 410 Gone: the subscription is disabled.
    Gone,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            "gone" => Ok(Self::Gone),
            _ => Err(Error::invalid(
                "outcome",
                "must be delivered, failed or gone",
            )),
        }
    }

    /// How a receiver's HTTP status counts.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Delivered,
            410 => Self::Gone,
            _ => Self::Failed,
        }
    }
}

/// One attempt to deliver a change (or a test) to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub webhook_id: WebhookId,
    /// The change's cursor (its `webhook-id`); `None` for a test.
    pub cursor: Option<Cursor>,
    pub kind: ChangeType,
    pub attempted_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
}

/// Where a subscription's deliveries stand after a round of attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryProgress {
    pub cursor: Cursor,
    pub failures: u32,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// `Some(reason)`: the subscription is disabled with this reason.
    pub disabled: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

impl DeliveryProgress {
    /// No change yet: where `subscription` stood when claimed.
    pub fn of(subscription: &WebhookSubscription) -> Self {
        Self {
            cursor: subscription.cursor,
            failures: subscription.failures,
            failing_since: subscription.failing_since,
            next_attempt_at: subscription.next_attempt_at,
            last_delivered_at: subscription.last_delivered_at,
            disabled: None,
            attempts: Vec::new(),
        }
    }
}

/// A request to deliver: what the sender posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_keeps_its_promises() {
        // First retry within 10 s, the fourth within 10 minutes of the
        // first failure, whatever the jitter.
        for jitter in [0.0, 0.5, 0.999] {
            assert!(retry_delay(1, jitter) <= Duration::from_secs(10));
            let fourth: Duration = (1..=4).map(|n| retry_delay(n, jitter)).sum();
            assert!(fourth <= Duration::from_secs(600), "{fourth:?}");
            assert!(retry_delay(50, jitter) <= Duration::from_secs(6 * 3600 * 6 / 5));
        }
        assert!(retry_delay(2, 0.0) < retry_delay(2, 0.99));
    }

    #[test]
    fn ids_parse_their_own_form_only() {
        let id = WebhookId::random();
        assert_eq!(WebhookId::parse(id.as_str()).ok(), Some(id));
        for bad in ["", "wh_", "wh_xyz", "00000000000000000000000000000000"] {
            assert!(WebhookId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_count_as_the_specification_says() {
        assert_eq!(AttemptOutcome::of_status(204), AttemptOutcome::Delivered);
        assert_eq!(AttemptOutcome::of_status(410), AttemptOutcome::Gone);
        assert_eq!(AttemptOutcome::of_status(301), AttemptOutcome::Failed);
        assert_eq!(AttemptOutcome::of_status(500), AttemptOutcome::Failed);
    }
}
