//! The typed errors of every fallible function of this crate.

use std::path::PathBuf;

/// Why a table, plot, overlay or report could not be made.
///
/// Nothing in this crate panics on bad input (malformed JSON, inconsistent records, buffers of
/// the wrong size, degenerate score ranges): every such case is one of these.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// A file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file (or folder) concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid evaluation JSON.
    #[error("{path} is not a stad evaluation JSON (as written by `stad eval --json`): {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The underlying parse error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The JSON parses but is inconsistent (NaN or out-of-range metric, `scores.len() !=
    /// n_test`, empty scores, ...): see [`crate::EvalRecord::validate`].
    #[error("{path}: {reason}")]
    InvalidRecord {
        /// The file concerned.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// There is nothing to report or plot.
    #[error("no evaluation files given")]
    NoRecords,
    /// Drawing failed (the plotters error, as text).
    #[error("plotting failed: {0}")]
    Plot(String),
    /// PNG encoding failed.
    #[error("cannot write image {path}: {source}")]
    Encode {
        /// The image file concerned.
        path: PathBuf,
        /// The underlying encoder error.
        #[source]
        source: image::ImageError,
    },
    /// A map or mask buffer does not hold one value per pixel of the image.
    #[error("{what} has {len} values, expected {expected} ({width}x{height})")]
    SizeMismatch {
        /// Which buffer (`"map"`, `"mask"`).
        what: &'static str,
        /// Number of values given.
        len: usize,
        /// Number of values expected (`width * height`).
        expected: usize,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
}

/// Result of this crate's functions.
pub type Result<T> = std::result::Result<T, VizError>;
