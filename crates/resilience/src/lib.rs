//! Resilience for calls to Google: retry with exponential backoff and jitter
//! on `backon` ([`retry`]), quota-aware rate limiting on `governor`
//! ([`ratelimit`]), structured JSON logs on `slog` that never carry raw
//! emails or secrets ([`logging`], [`mask`]), and typed Prometheus metrics on
//! `prometheus-client` ([`metrics`]).

pub mod logging;
pub mod mask;
pub mod metrics;
pub mod ratelimit;
pub mod retry;

/// The crate's one error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A configuration value is unusable (zero quota, factor below 1, ...).
    #[error("invalid {setting}: {reason}")]
    Config {
        setting: &'static str,
        reason: String,
    },
    /// A single call costs more than the limiter can ever admit at once.
    #[error("a call costing {cost} units exceeds the rate limiter's burst of {burst}")]
    CostExceedsBurst { cost: u32, burst: u32 },
}

pub use logging::{LogConfig, LogGuard, LogSampler, json_logger};
pub use mask::{mask_emails, mask_json};
pub use metrics::Metrics;
pub use ratelimit::{RateLimitConfig, RateLimiter};
pub use retry::{RetryDecision, RetryPolicy, Retryable, http_decision, parse_retry_after, retry};
