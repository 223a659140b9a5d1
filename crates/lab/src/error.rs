//! The one error a lab command reports, on its one line of stderr.

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Store(#[from] calsync_store::Error),
    #[error(transparent)]
    Domain(#[from] calsync_domain::Error),
    #[error("emulator: {0}")]
    Emulator(#[from] calsync_emulator::ApiError),
    /// Anything else, already worded for the operator.
    #[error("{0}")]
    Failed(String),
}

impl From<&str> for LabError {
    fn from(message: &str) -> Self {
        Self::Failed(message.to_owned())
    }
}

impl From<String> for LabError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}
