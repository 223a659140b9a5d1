//! Calendar API usage quotas, per principal and per project, and who
//! called what.
//!
//! Google enforces two per-minute quotas, "per minute per project" and
//! "per minute per user per project" (defaults 10,000 and 600), computed
//! over a sliding window; over either, calls are answered 403 (or 429)
//! `usageLimits` (<https://developers.google.com/workspace/calendar/api/guides/quota>).
//! The "user" is the principal making the call (the impersonated subject, or
//! the service account itself), not the calendar's owner.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Who makes a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The impersonated user (`sub`), the service account (`iss`), or with
    /// open auth a bearer token the emulator did not issue.
    pub name: String,
    /// The service account acting as itself (an assertion without `sub`):
    /// no domain-wide delegation.
    pub service_account: bool,
    /// A Google account acting through a per-user OAuth grant: it reaches
    /// only its own calendars and those shared with it.
    pub user: bool,
}

/// What a call costs in quota units: 1, except `events.patch`, which
/// "consumes three quota units"
/// (<https://developers.google.com/calendar/api/v3/reference/events/patch>).
pub(crate) fn cost(op: &str) -> u32 {
    if op == "patch" { 3 } else { 1 }
}

/// The units spent in the last window, oldest first.
#[derive(Debug, Default)]
struct Window {
    spent: VecDeque<(Instant, u32)>,
    total: u64,
}

impl Window {
    fn prune(&mut self, now: Instant, length: Duration) {
        while let Some(&(at, units)) = self.spent.front() {
            if now.saturating_duration_since(at) < length {
                break;
            }
            self.spent.pop_front();
            self.total -= u64::from(units);
        }
    }

    fn fits(&self, units: u32, limit: Option<u32>) -> bool {
        limit.is_none_or(|limit| self.total + u64::from(units) <= u64::from(limit))
    }

    fn spend(&mut self, now: Instant, units: u32) {
        self.spent.push_back((now, units));
        self.total += u64::from(units);
    }
}

/// Quota limits and windows, and per-principal statistics.
#[derive(Debug)]
pub(crate) struct Usage {
    pub per_principal: Option<u32>,
    pub per_project: Option<u32>,
    pub window: Duration,
    project: Window,
    principals: BTreeMap<String, Window>,
    /// Authenticated Calendar API calls per principal, refused ones included.
    pub calls: BTreeMap<String, u64>,
    pub refusals: u64,
    /// The principals whose admitted calls named each calendar.
    pub callers: BTreeMap<String, BTreeSet<String>>,
    /// The principal of the latest write carried out on each calendar.
    pub last_writer: BTreeMap<String, String>,
}

impl Usage {
    pub fn new(per_principal: Option<u32>, per_project: Option<u32>, window: Duration) -> Self {
        Self {
            per_principal,
            per_project,
            window,
            project: Window::default(),
            principals: BTreeMap::new(),
            calls: BTreeMap::new(),
            refusals: 0,
            callers: BTreeMap::new(),
            last_writer: BTreeMap::new(),
        }
    }

    /// Counts a call of `op` by `principal` and admits it if both quotas
    /// have room for its cost. A refused call spends no units.
    pub fn admit(
        &mut self,
        principal: &str,
        op: &str,
        calendar: Option<&str>,
        now: Instant,
    ) -> Result<(), ApiError> {
        *self.calls.entry(principal.to_owned()).or_default() += 1;
        let units = cost(op);
        let window = self.window;
        self.project.prune(now, window);
        let own = self.principals.entry(principal.to_owned()).or_default();
        own.prune(now, window);
        // Errors guide: https://developers.google.com/workspace/calendar/api/guides/errors
        let refusal = if !own.fits(units, self.per_principal) {
            Some(ApiError::new(
                403,
                "userRateLimitExceeded",
                "User Rate Limit Exceeded",
            ))
        } else if !self.project.fits(units, self.per_project) {
            Some(ApiError::new(
                403,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
            ))
        } else {
            None
        };
        if let Some(error) = refusal {
            self.refusals += 1;
            return Err(error);
        }
        own.spend(now, units);
        self.project.spend(now, units);
        if let Some(calendar) = calendar {
            self.called(principal, calendar);
        }
        Ok(())
    }

    /// Records an admitted call by `principal` on `calendar`.
    pub fn called(&mut self, principal: &str, calendar: &str) {
        self.callers
            .entry(calendar.to_owned())
            .or_default()
            .insert(principal.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_slide_and_patches_cost_three() {
        let start = Instant::now();
        let mut usage = Usage::new(Some(5), None, Duration::from_secs(60));
        usage.admit("a", "patch", Some("cal"), start).unwrap();
        usage.admit("a", "get", Some("cal"), start).unwrap();
        usage.admit("a", "list", None, start).unwrap();
        let refused = usage.admit("a", "get", None, start).unwrap_err();
        assert_eq!(
            (refused.status, refused.reason.as_str()),
            (403, "userRateLimitExceeded")
        );
        usage.admit("b", "get", None, start).unwrap();
        let later = start + Duration::from_secs(60);
        usage.admit("a", "patch", None, later).unwrap();
        assert_eq!(usage.refusals, 1);
        assert_eq!(usage.calls.get("a"), Some(&5));
        assert_eq!(
            usage.callers.get("cal").map(|c| c.len()),
            Some(1),
            "refused and calendar-less calls are not callers"
        );
    }

    #[test]
    fn the_project_limit_spans_principals() {
        let now = Instant::now();
        let mut usage = Usage::new(Some(2), Some(3), Duration::from_secs(60));
        usage.admit("a", "get", None, now).unwrap();
        usage.admit("a", "get", None, now).unwrap();
        usage.admit("b", "get", None, now).unwrap();
        let refused = usage.admit("b", "get", None, now).unwrap_err();
        assert_eq!(refused.reason, "rateLimitExceeded");
        assert_eq!(refused.message, "Rate Limit Exceeded");
    }
}
