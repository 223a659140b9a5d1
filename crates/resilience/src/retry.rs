//! Retry with exponential backoff, full jitter and `Retry-After`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::Error;

/// What the classification of an error says about retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Transient: try again, no sooner than `after` when the server said so.
    Retry { after: Option<Duration> },
    /// Retrying cannot help.
    Fail,
}

/// Errors that know whether they are worth retrying.
pub trait Retryable {
    fn retry_decision(&self) -> RetryDecision;
}

/// The rule for HTTP failures from Google: 5xx, 429, and 403 with reason
/// `rateLimitExceeded` or `userRateLimitExceeded` are transient; every other
/// 4xx fails fast (including 403 `quotaExceeded`, a daily limit).
pub fn http_decision(
    status: u16,
    reason: Option<&str>,
    retry_after: Option<Duration>,
) -> RetryDecision {
    let transient = match status {
        429 | 500..=599 => true,
        403 => matches!(reason, Some("rateLimitExceeded" | "userRateLimitExceeded")),
        _ => false,
    };
    if transient {
        RetryDecision::Retry { after: retry_after }
    } else {
        RetryDecision::Fail
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// How to space retries. The defaults follow the original backend: a 1 s
/// base doubling per attempt, 3 retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub factor: f64,
    /// No single wait is longer than this (a `Retry-After` hint above it is
    /// honoured only if the elapsed budget allows).
    pub cap: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Give up rather than start a wait that would end past this budget.
    pub max_elapsed: Option<Duration>,
    /// Full jitter: each wait is uniform in `[0, backoff]`. Off only in tests
    /// that check the exact schedule.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            factor: 2.0,
            cap: Duration::from_secs(32),
            max_retries: 3,
            max_elapsed: Some(Duration::from_secs(120)),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.factor >= 1.0 && self.factor.is_finite()) {
            return Err(Error::Config {
                setting: "retry factor",
                reason: "must be a finite number of at least 1".into(),
            });
        }
        if self.base.is_zero() && self.max_retries > 0 {
            return Err(Error::Config {
                setting: "retry base delay",
                reason: "must be more than zero".into(),
            });
        }
        Ok(())
    }

    /// The backoff ceiling before retry number `retry` (0-based): base ×
    /// factor^retry, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let seconds = self.base.as_secs_f64() * self.factor.powi(exponent);
        if !seconds.is_finite() || seconds >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(seconds)
        }
    }

    /// The wait before retry number `retry`: jittered backoff, but never less
    /// than the server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.backoff(retry);
        let backoff = if self.jitter && !ceiling.is_zero() {
            Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling.as_secs_f64()))
        } else {
            ceiling
        };
        retry_after.map_or(backoff, |hint| backoff.max(hint))
    }
}

/// Reported to the observer before each wait.
#[derive(Debug)]
pub struct RetryAttempt<'a, E> {
    /// 1 for the first retry.
    pub retry: u32,
    pub delay: Duration,
    pub error: &'a E,
}

/// Runs `op` until it succeeds, fails with an error classified as not
/// retryable, or the policy's retries or time budget run out; the last error
/// is returned. `observe` sees each retry before its wait (for logs and metrics).
/// Waits use tokio's clock, so tests run them instantly with paused time.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    mut op: F,
    mut observe: impl FnMut(&RetryAttempt<'_, E>),
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut retries = 0;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let RetryDecision::Retry { after } = error.retry_decision() else {
            return Err(error);
        };
        if retries >= policy.max_retries {
            return Err(error);
        }
        let delay = policy.delay(retries, after);
        if let Some(budget) = policy.max_elapsed
            && started.elapsed() + delay > budget
        {
            return Err(error);
        }
        retries += 1;
        observe(&RetryAttempt {
            retry: retries,
            delay,
            error: &error,
        });
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, Clone, PartialEq)]
    struct HttpError {
        status: u16,
        reason: Option<&'static str>,
        retry_after: Option<Duration>,
    }

    impl Retryable for HttpError {
        fn retry_decision(&self) -> RetryDecision {
            http_decision(self.status, self.reason, self.retry_after)
        }
    }

    fn status(status: u16) -> HttpError {
        HttpError {
            status,
            reason: None,
            retry_after: None,
        }
    }

    fn exact() -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    /// Fails with `errors` in turn, then succeeds; counts calls.
    async fn run(
        policy: &RetryPolicy,
        errors: Vec<HttpError>,
    ) -> (Result<u32, HttpError>, u32, Vec<Duration>) {
        let calls = Arc::new(AtomicU32::new(0));
        let mut delays = Vec::new();
        let result = retry(
            policy,
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let next = errors.get(n as usize).cloned();
                async move {
                    match next {
                        Some(error) => Err(error),
                        None => Ok(n),
                    }
                }
            },
            |attempt| delays.push(attempt.delay),
        )
        .await;
        (result, calls.load(Ordering::SeqCst), delays)
    }

    #[test]
    fn classification_follows_googles_rules() {
        assert!(matches!(
            http_decision(500, None, None),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            http_decision(503, Some("backendError"), None),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            http_decision(429, None, None),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            http_decision(403, Some("rateLimitExceeded"), None),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            http_decision(403, Some("userRateLimitExceeded"), None),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            http_decision(403, Some("quotaExceeded"), None),
            RetryDecision::Fail
        );
        assert_eq!(
            http_decision(403, Some("forbidden"), None),
            RetryDecision::Fail
        );
        for fast in [400, 401, 404, 409, 410, 412] {
            assert_eq!(
                http_decision(fast, None, None),
                RetryDecision::Fail,
                "{fast}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_doubling_delays() {
        let start = Instant::now();
        let (result, calls, delays) =
            run(&exact(), vec![status(503), status(500), status(429)]).await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls, 4);
        assert_eq!(
            delays,
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4)
            ]
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(7),
            "waited on tokio's (paused) clock"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_after_the_configured_count() {
        let (result, calls, _) = run(&exact(), vec![status(503); 10]).await;
        assert_eq!(result, Err(status(503)));
        assert_eq!(calls, 4, "one attempt and three retries");
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_fail_fast() {
        for code in [400, 404, 409, 412] {
            let (result, calls, _) = run(&exact(), vec![status(code)]).await;
            assert_eq!(result, Err(status(code)));
            assert_eq!(calls, 1, "{code} is not retried");
        }
        let quota = HttpError {
            status: 403,
            reason: Some("quotaExceeded"),
            retry_after: None,
        };
        assert_eq!(run(&exact(), vec![quota]).await.1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let limited = HttpError {
            status: 429,
            reason: None,
            retry_after: Some(Duration::from_secs(10)),
        };
        let start = Instant::now();
        let (result, _, delays) = run(&exact(), vec![limited]).await;
        assert!(result.is_ok());
        assert_eq!(delays, vec![Duration::from_secs(10)]);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_elapsed_budget_ends_retrying_early() {
        let policy = RetryPolicy {
            max_elapsed: Some(Duration::from_secs(5)),
            max_retries: 10,
            ..exact()
        };
        // 1 + 2 = 3 s spent; the next 4 s wait would end at 7 s > 5 s.
        let (result, calls, _) = run(&policy, vec![status(500); 10]).await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
        let far = HttpError {
            status: 503,
            reason: None,
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(
            run(&policy, vec![far]).await.1,
            1,
            "a hint past the budget is not waited for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_jitter_stays_within_the_backoff() {
        let policy = RetryPolicy {
            max_retries: 6,
            cap: Duration::from_secs(8),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let (_, _, delays) = run(&policy, vec![status(500); 6]).await;
            for (i, delay) in delays.iter().enumerate() {
                assert!(*delay <= policy.backoff(i as u32), "retry {i}: {delay:?}");
            }
        }
        // Jitter actually varies the waits.
        let samples: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.delay(3, None)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn backoff_is_capped_and_policies_are_validated() {
        let policy = RetryPolicy {
            cap: Duration::from_secs(5),
            ..exact()
        };
        assert_eq!(policy.backoff(0), Duration::from_secs(1));
        assert_eq!(policy.backoff(10), Duration::from_secs(5));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(5));
        assert!(
            RetryPolicy {
                factor: 0.5,
                ..exact()
            }
            .validate()
            .is_err()
        );
        assert!(
            RetryPolicy {
                factor: f64::NAN,
                ..exact()
            }
            .validate()
            .is_err()
        );
        assert!(RetryPolicy::default().validate().is_ok());
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
