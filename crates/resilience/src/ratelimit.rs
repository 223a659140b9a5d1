//! Rate limits for Google calls: one limiter for the project's quota and one
//! per key (per user or calendar), both awaited before a call.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::Error;

/// Quotas in units per minute (Google counts a patch as 3 units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Google's default: 10,000 per minute per project.
    pub project_per_minute: u32,
    /// Google's default: 600 per minute per user.
    pub per_key_per_minute: u32,
    /// Units the project may spend at once after a quiet spell.
    pub project_burst: u32,
    /// Units one key may spend at once after a quiet spell.
    pub per_key_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            project_per_minute: 10_000,
            per_key_per_minute: 600,
            project_burst: 100,
            per_key_burst: 20,
        }
    }
}

fn non_zero(value: u32, setting: &'static str) -> Result<NonZeroU32, Error> {
    NonZeroU32::new(value).ok_or(Error::Config {
        setting,
        reason: "must be more than zero".into(),
    })
}

/// The longest rate-limit key kept; longer keys are cut.
pub const MAX_KEY_CHARS: usize = 64;

/// A cheap-to-clone handle to the limiters.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    project: Arc<DefaultDirectRateLimiter>,
    per_key: Arc<DefaultKeyedRateLimiter<String>>,
    burst: NonZeroU32,
}

impl RateLimiter {
    /// Limits that keep under Google's quotas: a bucket refilling at `r`
    /// a minute with room for `b` can spend `r + b` in one minute, so the
    /// refill rate is the quota less the burst, and no sliding minute ever
    /// exceeds the quota Google counts (for a burst below the quota; a
    /// larger one keeps a refill of one unit a minute).
    pub fn new(config: RateLimitConfig) -> Result<Self, Error> {
        let project = non_zero(config.project_per_minute, "project rate limit")?;
        let per_key = non_zero(config.per_key_per_minute, "per-user rate limit")?;
        let project_burst = non_zero(config.project_burst, "project rate limit burst")?;
        let per_key_burst = non_zero(config.per_key_burst, "per-user rate limit burst")?;
        let less = |quota: NonZeroU32, burst: NonZeroU32| {
            NonZeroU32::new(quota.get().saturating_sub(burst.get())).unwrap_or(NonZeroU32::MIN)
        };
        Ok(Self::from_quotas(
            less(project, project_burst),
            project_burst,
            less(per_key, per_key_burst),
            per_key_burst,
        ))
    }

    /// A limiter for requests keyed by their source: `per_minute` for each
    /// source with bursts of a tenth of it, and a hundred sources' worth in
    /// all, so a flood from one sender cannot starve the rest.
    pub fn per_source(per_minute: NonZeroU32) -> Self {
        let hundred = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
        let ten = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN);
        Self::from_quotas(
            per_minute.saturating_mul(hundred),
            per_minute.saturating_mul(ten),
            per_minute,
            NonZeroU32::new(per_minute.get() / 10).unwrap_or(NonZeroU32::MIN),
        )
    }

    fn from_quotas(
        project_per_minute: NonZeroU32,
        project_burst: NonZeroU32,
        per_key_per_minute: NonZeroU32,
        per_key_burst: NonZeroU32,
    ) -> Self {
        let project = Quota::per_minute(project_per_minute).allow_burst(project_burst);
        let per_key = Quota::per_minute(per_key_per_minute).allow_burst(per_key_burst);
        Self {
            project: Arc::new(governor::RateLimiter::direct(project)),
            per_key: Arc::new(governor::RateLimiter::keyed(per_key)),
            burst: project_burst.min(per_key_burst),
        }
    }

    /// Waits until `cost` units are available for `key` and for the project.
    pub async fn acquire(&self, key: &str, cost: u32) -> Result<(), Error> {
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        let exceeded = || Error::CostExceedsBurst {
            cost: cost.get(),
            burst: self.burst.get(),
        };
        self.per_key
            .until_key_n_ready(&key.to_owned(), cost)
            .await
            .map_err(|_| exceeded())?;
        self.project
            .until_n_ready(cost)
            .await
            .map_err(|_| exceeded())
    }

    /// Takes `cost` units now if both limiters have them; never waits.
    /// Keys are cut to [`MAX_KEY_CHARS`] so no caller can make the key map
    /// hold large strings.
    pub fn try_acquire(&self, key: &str, cost: u32) -> bool {
        let Some(cost) = NonZeroU32::new(cost) else {
            return true;
        };
        let key = match key.char_indices().nth(MAX_KEY_CHARS) {
            Some((end, _)) => &key[..end],
            None => key,
        };
        // Check the key first: a refused key must not spend project quota.
        matches!(self.per_key.check_key_n(&key.to_owned(), cost), Ok(Ok(())))
            && matches!(self.project.check_n(cost), Ok(Ok(())))
    }

    /// Drops the state of keys whose quota is back to full, and gives the
    /// memory back; call now and then so the key map stays small.
    pub fn forget_idle_keys(&self) {
        self.per_key.retain_recent();
        self.per_key.shrink_to_fit();
    }

    /// How many keys the per-key limiter tracks.
    pub fn tracked_keys(&self) -> usize {
        self.per_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_key: u32, project: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            project_per_minute: project,
            per_key_per_minute: per_key,
            project_burst: burst * 2,
            per_key_burst: burst,
        })
        .unwrap()
    }

    #[test]
    fn keys_are_limited_separately() {
        let limits = limiter(60, 10_000, 3);
        assert!(limits.try_acquire("alice", 3));
        assert!(!limits.try_acquire("alice", 1), "alice spent her burst");
        assert!(limits.try_acquire("bob", 1), "bob is unaffected");
    }

    #[test]
    fn the_project_limit_caps_all_keys_together() {
        let limits = limiter(600, 60, 1);
        assert!(limits.try_acquire("a", 1));
        assert!(limits.try_acquire("b", 1));
        assert!(!limits.try_acquire("c", 1), "project burst of 2 used up");
    }

    #[tokio::test]
    async fn acquire_waits_for_capacity_and_refuses_impossible_costs() {
        // 6000 per minute = one unit every 10 ms.
        let limits = limiter(6000, 60_000, 1);
        assert!(limits.try_acquire("other", 1), "project burst is 2");
        limits.acquire("k", 1).await.unwrap();
        assert!(!limits.try_acquire("k", 1));
        let started = std::time::Instant::now();
        limits.acquire("k", 1).await.unwrap();
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(5),
            "it waited for a unit"
        );
        assert_eq!(
            limits.acquire("k", 3).await,
            Err(Error::CostExceedsBurst { cost: 3, burst: 1 })
        );
    }

    #[test]
    fn keys_are_bounded_and_idle_ones_are_forgotten() {
        let limits = limiter(6_000_000, 6_000_000, 1000);
        let long = "x".repeat(4096);
        assert!(limits.try_acquire(&long, 1));
        assert!(limits.try_acquire(&format!("{long}y"), 1));
        assert_eq!(limits.tracked_keys(), 1, "both cut to the same key");
        for i in 0..100 {
            assert!(limits.try_acquire(&format!("k{i}"), 1));
        }
        assert_eq!(limits.tracked_keys(), 101);
        // 100,000 units a second refill a single unit at once.
        std::thread::sleep(std::time::Duration::from_millis(20));
        limits.forget_idle_keys();
        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn zero_quotas_are_configuration_errors() {
        let config = RateLimitConfig {
            per_key_per_minute: 0,
            ..RateLimitConfig::default()
        };
        assert!(matches!(
            RateLimiter::new(config),
            Err(Error::Config { .. })
        ));
    }
}
