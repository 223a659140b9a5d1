//! Retry with exponential backoff, jitter and `Retry-After`. The schedule
//! and the loop are `backon`'s; which errors are worth retrying (Google's
//! rules, [`http_decision`]), `Retry-After` and the elapsed budget are ours.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable as _};
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
    /// No single backoff wait is longer than this (a `Retry-After` hint above
    /// it is honoured only if the elapsed budget allows).
    pub cap: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Give up rather than start a wait that would end past this budget.
    pub max_elapsed: Option<Duration>,
    /// Jitter: each wait is uniform in `[backoff / 2, backoff)` rather than
    /// `backoff` itself, so clients failing together do not retry together.
    /// Off only in tests that check the exact schedule.
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

    /// The backoff schedule, as `backon` builds it: `max_retries` waits of
    /// base × factor^n, capped at `cap`. backon's jitter adds up to 100 % of
    /// each wait, so with jitter the schedule runs on half the base and half
    /// the cap: every wait then stays within `[backoff / 2, backoff)`.
    pub fn backoff(&self) -> ExponentialBuilder {
        let halve = |d: Duration| if self.jitter { d / 2 } else { d };
        let builder = ExponentialBuilder::new()
            .with_min_delay(halve(self.base.min(self.cap)))
            .with_max_delay(halve(self.cap))
            // validate() keeps the factor in [1, f64::MAX]; f32 saturates to
            // infinity, which backon caps at the max delay.
            .with_factor(self.factor as f32)
            .with_max_times(usize::try_from(self.max_retries).unwrap_or(usize::MAX));
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }

    /// The waits before each retry, ignoring `Retry-After` and the budget.
    pub fn schedule(&self) -> impl Iterator<Item = Duration> + use<> {
        self.backoff().build()
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
/// is returned. Each wait is the policy's backoff, but never less than the
/// server's `Retry-After`. `observe` sees each retry before its wait (for
/// logs and metrics). Waits use tokio's clock, so tests run them instantly
/// with paused time.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    op: F,
    mut observe: impl FnMut(&RetryAttempt<'_, E>),
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let budget = policy.max_elapsed;
    let mut retries = 0;
    op.retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|error: &E| matches!(error.retry_decision(), RetryDecision::Retry { .. }))
        .adjust(move |error: &E, backoff: Option<Duration>| {
            // `None`: backon's retries are used up.
            let backoff = backoff?;
            let delay = match error.retry_decision() {
                RetryDecision::Retry { after: Some(hint) } => backoff.max(hint),
                _ => backoff,
            };
            match budget {
                Some(budget) if started.elapsed() + delay > budget => None,
                _ => Some(delay),
            }
        })
        .notify(|error: &E, delay: Duration| {
            retries += 1;
            observe(&RetryAttempt {
                retry: retries,
                delay,
                error,
            });
        })
        .await
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

    /// Fails with `errors` in turn, then succeeds; counts calls and checks
    /// that the observer numbers the retries 1, 2, ...
    async fn run(
        policy: &RetryPolicy,
        errors: Vec<HttpError>,
    ) -> (Result<u32, HttpError>, u32, Vec<Duration>) {
        let calls = Arc::new(AtomicU32::new(0));
        let mut delays = Vec::new();
        let mut numbers = Vec::new();
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
            |attempt| {
                numbers.push(attempt.retry);
                delays.push(attempt.delay);
            },
        )
        .await;
        let calls = calls.load(Ordering::SeqCst);
        assert_eq!(
            numbers,
            (1..calls).collect::<Vec<_>>(),
            "one retry per call after the first"
        );
        (result, calls, delays)
    }

    /// The unjittered wait before retry `n` (0-based): base × factor^n, capped.
    fn ceiling(policy: &RetryPolicy, n: usize) -> Duration {
        let seconds = policy.base.as_secs_f64() * policy.factor.powi(n as i32);
        Duration::from_secs_f64(seconds.min(policy.cap.as_secs_f64()))
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
        let limited = |seconds| HttpError {
            status: 429,
            reason: None,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        let start = Instant::now();
        let (result, _, delays) = run(&exact(), vec![limited(10)]).await;
        assert!(result.is_ok());
        assert_eq!(delays, vec![Duration::from_secs(10)]);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        // A hint shorter than the backoff does not shorten it (1 s, 2 s, 4 s).
        let (_, _, delays) = run(&exact(), vec![status(503), status(503), limited(1)]).await;
        assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
        // A hint above the cap is waited for when the budget allows it...
        let capped = RetryPolicy {
            cap: Duration::from_secs(2),
            ..exact()
        };
        assert_eq!(
            run(&capped, vec![limited(60)]).await.2,
            vec![Duration::from_secs(60)]
        );
        // ...and with jitter on, too: the hint is a floor.
        let (result, _, delays) = run(&RetryPolicy::default(), vec![limited(30)]).await;
        assert!(result.is_ok());
        assert_eq!(delays, vec![Duration::from_secs(30)]);
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
    async fn jittered_waits_stay_between_half_the_backoff_and_the_backoff() {
        let policy = RetryPolicy {
            max_retries: 6,
            cap: Duration::from_secs(8),
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let (result, calls, delays) = run(&policy, vec![status(500); 6]).await;
            assert!(result.is_ok());
            assert_eq!(calls, 7);
            for (i, delay) in delays.iter().enumerate() {
                let ceiling = ceiling(&policy, i);
                assert!(
                    ceiling / 2 <= *delay && *delay < ceiling,
                    "retry {i}: {delay:?} outside [{:?}, {ceiling:?})",
                    ceiling / 2
                );
            }
            seen.insert(delays[3]);
        }
        assert!(seen.len() > 1, "jitter varies the waits");
    }

    /// Over many shapes of policy: as many waits as retries, each within
    /// `[0, cap]`, the exact ones following base × factor^n.
    #[test]
    fn every_schedule_is_bounded_by_the_cap_and_the_retry_count() {
        for jitter in [false, true] {
            for base_ms in [1, 7, 250, 1000, 40_000] {
                for cap_ms in [0, 5, 1000, 32_000] {
                    for factor in [1.0, 1.5, 2.0, 10.0, 1e300] {
                        for max_retries in [0, 1, 3, 12] {
                            let policy = RetryPolicy {
                                base: Duration::from_millis(base_ms),
                                cap: Duration::from_millis(cap_ms),
                                factor,
                                max_retries,
                                max_elapsed: None,
                                jitter,
                            };
                            let waits: Vec<Duration> = policy.schedule().collect();
                            assert_eq!(waits.len(), max_retries as usize, "{policy:?}");
                            for (n, wait) in waits.iter().enumerate() {
                                assert!(*wait <= policy.cap, "{policy:?}: wait {n} is {wait:?}");
                                if !jitter {
                                    let expected = ceiling(&policy, n);
                                    let off = wait.abs_diff(expected);
                                    // backon computes in f32.
                                    assert!(
                                        off <= expected / 10_000 + Duration::from_micros(1),
                                        "{policy:?}: wait {n} is {wait:?}, not {expected:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_retries_means_one_attempt() {
        let policy = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        let (result, calls, delays) = run(&policy, vec![status(503); 3]).await;
        assert_eq!(result, Err(status(503)));
        assert_eq!((calls, delays.len()), (1, 0));
    }

    #[test]
    fn backoff_is_capped_and_policies_are_validated() {
        let policy = RetryPolicy {
            cap: Duration::from_secs(5),
            max_retries: 40,
            ..exact()
        };
        let waits: Vec<u64> = policy.schedule().map(|d| d.as_secs()).collect();
        assert_eq!(waits[..5], [1, 2, 4, 5, 5]);
        assert!(waits.iter().all(|&s| s <= 5));
        let huge = RetryPolicy {
            factor: f64::MAX,
            ..policy
        };
        assert!(huge.schedule().skip(1).all(|d| d == Duration::from_secs(5)));
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
        assert!(
            RetryPolicy {
                base: Duration::ZERO,
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
