//! The typed errors of every metric.

use thiserror::Error;

/// Result of a metric computation.
pub type Result<T> = std::result::Result<T, MetricsError>;

/// A pixel metric's [`MetricsError::NoPositives`] as [`MetricsError::EmptyMasks`] over
/// `pixels` mask pixels; other errors unchanged.
pub(crate) fn empty_masks(e: MetricsError, pixels: usize) -> MetricsError {
    match e {
        MetricsError::NoPositives => MetricsError::EmptyMasks { pixels },
        e => e,
    }
}

/// Why a metric could not be computed.
///
/// No function of this crate panics on bad data: every undefined case is one of these.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// No scores (or no maps) were given.
    #[error("empty input: no scores")]
    Empty,
    /// There is no positive (anomalous) sample: the metric is undefined (AUROC and F1 need at
    /// least one anomaly). The pixel metrics report [`MetricsError::EmptyMasks`] instead.
    #[error("no positive (anomalous) samples: the metric is undefined")]
    NoPositives,
    /// A pixel metric's ground-truth masks have no anomalous pixel at all (pixel AUROC,
    /// AU-PRO, pixel F1, Dice and IoU are undefined): the masks are empty, which for a test
    /// set with anomalous images means their masks are missing their defects.
    #[error(
        "the ground-truth masks are all empty (none of their {pixels} pixels is anomalous): \
         pixel metrics need masks with defect pixels"
    )]
    EmptyMasks {
        /// Number of mask pixels given.
        pixels: usize,
    },
    /// There is no negative (nominal) sample or pixel: the metric is undefined
    /// (AUROC needs both classes, AU-PRO needs defect-free pixels for its FPR).
    #[error("no negative (nominal) samples: the metric is undefined")]
    NoNegatives,
    /// A score is NaN or infinite.
    #[error("score {index} is not finite ({value})")]
    NonFinite {
        /// Position of the first offending score in the (flattened) input.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The scores and the labels (or maps and masks) have different lengths.
    #[error("length mismatch: {scores} scores but {labels} labels")]
    LengthMismatch {
        /// Number of scores (or map pixels).
        scores: usize,
        /// Number of labels (or mask pixels).
        labels: usize,
    },
    /// The maps or masks do not hold `count × height × width` values.
    #[error(
        "shape mismatch: shape {count}x{height}x{width} but {maps} map values and {masks} mask values"
    )]
    ShapeMismatch {
        /// Number of maps of the stated shape.
        count: usize,
        /// Height of the stated shape.
        height: usize,
        /// Width of the stated shape.
        width: usize,
        /// Number of map values given.
        maps: usize,
        /// Number of mask values given.
        masks: usize,
    },
    /// The AU-PRO integration limit is outside `(0, 1]`.
    #[error("integration limit {0} is outside (0, 1]")]
    InvalidLimit(f64),
    /// A quantile is outside `[0, 1]`.
    #[error("quantile {0} is outside [0, 1]")]
    InvalidQuantile(f64),
    /// A threshold is NaN.
    #[error("threshold {0} is NaN")]
    InvalidThreshold(f64),
    /// One map has more than `u32::MAX` pixels (region sizes are stored as `u32`).
    #[error("a single map of {0} pixels is too large (at most u32::MAX pixels)")]
    MapTooLarge(usize),
}
