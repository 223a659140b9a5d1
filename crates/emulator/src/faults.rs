//! Fault injection: scheduled or random errors, latency, dropped connections.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One injected failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// HTTP status to answer (ignored when `drop` is set).
    #[serde(default = "default_status")]
    pub status: u16,
    /// Google error reason; a sensible one for the status when absent.
    #[serde(default)]
    pub reason: Option<String>,
    /// Seconds for a `Retry-After` header.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Close the connection without an answer instead.
    #[serde(default)]
    pub drop: bool,
    /// For writes (insert, patch, update, delete): carry the write out in
    /// full, notifications included, then close the connection without an
    /// answer: Google took it, the client never heard. Other operations are
    /// dropped as with `drop`. Takes precedence over `drop` and `status`.
    #[serde(default)]
    pub apply_then_drop: bool,
}

fn default_status() -> u16 {
    503
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            reason: None,
            retry_after: None,
            drop: false,
            apply_then_drop: false,
        }
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn dropped() -> Self {
        Self {
            drop: true,
            ..Self::status(503)
        }
    }

    /// Applies a write, then drops its answer (see the `apply_then_drop` field).
    pub fn apply_then_drop() -> Self {
        Self {
            apply_then_drop: true,
            ..Self::status(503)
        }
    }

    /// The reason answered: the configured one, or Google's usual one for the status.
    pub fn reason(&self) -> String {
        self.reason.clone().unwrap_or_else(|| {
            match self.status {
                429 | 403 => "rateLimitExceeded",
                500 | 503 => "backendError",
                401 => "authError",
                404 => "notFound",
                _ => "invalid",
            }
            .to_owned()
        })
    }

    /// What `/emulator/stats` counts this fault under when it fires as an
    /// error answer: `"<status>:<reason>"`.
    pub fn kind(&self) -> String {
        format!("{}:{}", self.status, self.reason())
    }

    /// The error answered: Google's message for the reason where known
    /// (`quotaExceeded`, `forbiddenForServiceAccounts`, `requiredAccessLevel`,
    /// `forbiddenForNonOrganizer`, the rate limits, ...),
    /// else `injected fault: <reason>`.
    pub fn to_error(&self) -> ApiError {
        let reason = self.reason();
        let message = crate::error::google_message(&reason)
            .map_or_else(|| format!("injected fault: {reason}"), str::to_owned);
        let mut error = ApiError::new(self.status, &reason, message);
        error.retry_after = self.retry_after;
        error
    }
}

/// A scheduled fault: the next `count` calls of `op` (or any op) fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledFault {
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(flatten)]
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

/// The fault plan for a run, set through the admin API or in-process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    #[serde(default)]
    pub schedule: VecDeque<ScheduledFault>,
    /// Chance (0..1) that any API call fails with one of `random`.
    #[serde(default)]
    pub probability: f64,
    #[serde(default)]
    pub random: Vec<Fault>,
    /// Added to every API call.
    #[serde(default)]
    pub latency_ms: u64,
}

impl FaultPlan {
    /// The fault for this call of `op`, if any (consuming the schedule).
    pub fn next(&mut self, op: &str) -> Option<Fault> {
        if let Some(index) = self
            .schedule
            .iter()
            .position(|s| s.op.as_deref().is_none_or(|o| o == op))
        {
            let scheduled = &mut self.schedule[index];
            let fault = scheduled.fault.clone();
            scheduled.count = scheduled.count.saturating_sub(1);
            if scheduled.count == 0 {
                self.schedule.remove(index);
            }
            return Some(fault);
        }
        if self.probability > 0.0
            && !self.random.is_empty()
            && rand::rng().random_bool(self.probability.clamp(0.0, 1.0))
        {
            let pick = rand::rng().random_range(0..self.random.len());
            return self.random.get(pick).cloned();
        }
        None
    }
}

/// What the fault machinery actually did, for `/emulator/stats`. Kept
/// apart from the plan so that replacing the plan keeps the counts.
#[derive(Debug, Default)]
pub(crate) struct FaultStats {
    /// By kind: `drop`, `applyThenDrop` or `"<status>:<reason>"`.
    pub fired: BTreeMap<String, u64>,
    /// Calls that were delayed by `latency_ms`.
    pub latency_applied: u64,
    pub sync_token_invalidations: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_consumed_in_order_and_by_op() {
        let mut plan = FaultPlan::default();
        plan.schedule.push_back(ScheduledFault {
            op: Some("insert".into()),
            count: 2,
            fault: Fault::status(500),
        });
        plan.schedule.push_back(ScheduledFault {
            op: None,
            count: 1,
            fault: Fault::status(429),
        });
        assert_eq!(
            plan.next("list").map(|f| f.status),
            Some(429),
            "the any-op fault applies to list"
        );
        assert_eq!(plan.next("insert").map(|f| f.status), Some(500));
        assert_eq!(plan.next("insert").map(|f| f.status), Some(500));
        assert_eq!(plan.next("insert"), None);
    }

    #[test]
    fn default_reasons_follow_google() {
        assert_eq!(Fault::status(403).to_error().reason, "rateLimitExceeded");
        assert_eq!(Fault::status(503).to_error().reason, "backendError");
        assert_eq!(
            Fault::status(403)
                .with_reason("quotaExceeded")
                .to_error()
                .reason,
            "quotaExceeded"
        );
        let plan: FaultPlan =
            serde_json::from_str(r#"{"schedule":[{"op":"list","status":429,"retryAfter":3}]}"#)
                .unwrap();
        assert_eq!(plan.schedule[0].fault.retry_after, Some(3));
    }

    #[test]
    fn usage_and_service_account_faults_answer_googles_bodies() {
        assert_eq!(
            Fault::status(403)
                .with_reason("quotaExceeded")
                .to_error()
                .body(),
            serde_json::json!({"error": {
                "errors": [{"domain": "usageLimits", "reason": "quotaExceeded",
                    "message": "Calendar usage limits exceeded."}],
                "code": 403, "message": "Calendar usage limits exceeded."}})
        );
        let message =
            "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.";
        assert_eq!(
            Fault::status(403)
                .with_reason("forbiddenForServiceAccounts")
                .to_error()
                .body(),
            serde_json::json!({"error": {
                "errors": [{"domain": "calendar", "reason": "forbiddenForServiceAccounts",
                    "message": message}],
                "code": 403, "message": message}})
        );
        for (reason, message) in [
            (
                "requiredAccessLevel",
                "You need to have writer access to this calendar.",
            ),
            (
                "forbiddenForNonOrganizer",
                "Shared properties can only be changed by the organizer of the event.",
            ),
        ] {
            assert_eq!(
                Fault::status(403).with_reason(reason).to_error().body(),
                serde_json::json!({"error": {
                    "errors": [{"domain": "calendar", "reason": reason, "message": message}],
                    "code": 403, "message": message}})
            );
        }
        assert_eq!(Fault::status(429).to_error().message, "Rate Limit Exceeded");
        assert_eq!(
            Fault::status(409)
                .with_reason("duplicate")
                .to_error()
                .message,
            "injected fault: duplicate"
        );
    }

    #[test]
    fn apply_then_drop_reads_from_json_and_kinds_name_status_and_reason() {
        let plan: FaultPlan =
            serde_json::from_str(r#"{"random":[{"applyThenDrop":true}],"probability":1.0}"#)
                .unwrap();
        assert_eq!(plan.random[0], Fault::apply_then_drop());
        assert_eq!(Fault::status(429).kind(), "429:rateLimitExceeded");
        assert_eq!(
            Fault::status(403)
                .with_reason("userRateLimitExceeded")
                .kind(),
            "403:userRateLimitExceeded"
        );
    }
}
