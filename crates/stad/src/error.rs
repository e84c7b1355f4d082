//! The error type of the methods crate.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;

/// Everything that can go wrong when training, saving, loading or running a detector.
#[derive(Debug, thiserror::Error)]
pub enum StadError {
    /// A hyper-parameter or setting out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Building a backbone or loading weights failed.
    #[error(transparent)]
    Backbone(#[from] stad_backbones::BackboneError),
    /// Reading or preparing data failed.
    #[error(transparent)]
    Data(#[from] stad_data::DataError),
    /// An anomaly map could not be computed, or holds NaN/inf.
    #[error(transparent)]
    Scoring(#[from] stad_scoring::ScoringError),
    /// A metric could not be computed (no anomalies in the test set, NaN scores…).
    #[error(transparent)]
    Metrics(#[from] stad_metrics::MetricsError),
    /// A checkpoint or detector file could not be read or written, or is corrupt.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint or detector made for another method, backbone or configuration.
    #[error("{path} does not fit: {reason}")]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Input images hold NaN or infinite values (a network can silently turn them into
    /// ordinary numbers, e.g. ReLU6 clamps NaN, so they are refused at the door).
    #[error("{count} of {total} input values are NaN or infinite")]
    NonFiniteInput {
        /// Non-finite values.
        count: usize,
        /// Values checked.
        total: usize,
    },
    /// The training loss became NaN or infinite (diverged: lower the learning rate).
    #[error("training diverged at epoch {epoch}: the loss is {loss}; lower the learning rate")]
    Diverged {
        /// The epoch (0-based).
        epoch: usize,
        /// The offending loss value.
        loss: f32,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StadError> = std::result::Result<T, E>;
