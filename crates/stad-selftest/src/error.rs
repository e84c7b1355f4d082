//! The selftest's error.

use stad::StadError;

/// What can stop a selftest (a failed check is not an error: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// A model could not be built (e.g. a build without the embedded teacher).
    #[error(transparent)]
    Stad(#[from] StadError),
    /// A selftest configuration that cannot run.
    #[error("invalid selftest configuration: {0}")]
    InvalidConfig(String),
}

/// The selftest's result type.
pub type Result<T, E = SelftestError> = std::result::Result<T, E>;
