//! The adapter's one error type.

/// The adapter's errors, all from construction (calls report domain errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Google configuration: {0}")]
    Config(String),
    #[error("cannot read the service account key: {0}")]
    Credentials(String),
    #[error("invalid rate limit or retry settings: {0}")]
    Resilience(#[from] calsync_resilience::Error),
}
