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
    /// Another process trains into the run folder (it holds the folder's lock).
    #[error(
        "run folder {path} is in use by {holder}: wait for that run to finish, or choose another folder"
    )]
    RunLocked {
        /// The run folder.
        path: PathBuf,
        /// Who holds it, as its lock file says (`stad process PID (since unix time T)`).
        holder: String,
    },
    /// A new run was asked for in a folder that holds one already.
    #[error(
        "{path} holds a run already ({}): resume it (`stad train --resume`), or choose another folder",
        files.join(", ")
    )]
    RunExists {
        /// The run folder.
        path: PathBuf,
        /// The run files found in it.
        files: Vec<String>,
    },
    /// A resume was asked for in a folder without `last.ckpt`.
    #[error("nothing to resume in {path} (no last.ckpt): start a new run without resuming")]
    NothingToResume {
        /// The run folder.
        path: PathBuf,
    },
    /// The run folder or its lock file could not be created or written.
    #[error("run folder {path}: {source}")]
    RunIo {
        /// The run folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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
