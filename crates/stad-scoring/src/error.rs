//! The error type of the scoring kernels.

use thiserror::Error;

/// What can go wrong when computing an anomaly map.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScoringError {
    /// No feature layers (or no layer maps) were given.
    #[error("no feature layers were given")]
    EmptyLayers,

    /// An ensemble was given no students.
    #[error("an ensemble needs at least one student, got none")]
    NoStudents,

    /// A student (`student: Some(i)`) or the single STFPM student (`None`) gives a different
    /// number of layers than the teacher.
    #[error("{} gives {found} feature layers, the teacher {expected}", student_name(*.student))]
    LayerCountMismatch {
        /// Index of the student in the ensemble (`None` for a single student).
        student: Option<usize>,
        /// Number of teacher layers.
        expected: usize,
        /// Number of student layers.
        found: usize,
    },

    /// A student feature map does not have the shape of the teacher's.
    #[error(
        "{} has shape {found:?}{}, the teacher {expected:?}",
        student_name(*.student),
        layer_name(*.layer)
    )]
    ShapeMismatch {
        /// Index of the layer, when known (the layer-level kernels do not know it).
        layer: Option<usize>,
        /// Index of the student in the ensemble (`None` for a single student).
        student: Option<usize>,
        /// Teacher shape `[B, C, h, w]`.
        expected: [usize; 4],
        /// Student shape.
        found: [usize; 4],
    },

    /// Layer maps to be combined differ in batch size or channel count.
    #[error("layer map {layer} has batch/channels {found:?}, layer map 0 {expected:?}")]
    LayerMapMismatch {
        /// Index of the offending map.
        layer: usize,
        /// `[B, C]` of the first map.
        expected: [usize; 2],
        /// `[B, C]` of the offending map.
        found: [usize; 2],
    },

    /// The requested output size has a zero side.
    #[error("output size {0:?} has a zero side")]
    InvalidOutputSize([usize; 2]),

    /// The Gaussian smoothing `sigma` is not finite and positive.
    #[error("Gaussian sigma must be finite and > 0, got {0}")]
    InvalidSigma(f64),

    /// An anomaly map holds NaN or infinite values.
    #[error("anomaly map holds {count} non-finite values (NaN or ±inf) out of {total}")]
    NonFinite {
        /// Number of NaN or infinite elements.
        count: usize,
        /// Number of elements of the map.
        total: usize,
    },
}

fn student_name(student: Option<usize>) -> String {
    match student {
        Some(i) => format!("student {i}"),
        None => "the student".to_string(),
    }
}

fn layer_name(layer: Option<usize>) -> String {
    match layer {
        Some(k) => format!(" at layer {k}"),
        None => String::new(),
    }
}

impl ScoringError {
    /// Sets the layer index of a [`ShapeMismatch`](Self::ShapeMismatch) (other variants are
    /// returned unchanged).
    pub fn at_layer(self, k: usize) -> Self {
        match self {
            Self::ShapeMismatch {
                student,
                expected,
                found,
                ..
            } => Self::ShapeMismatch {
                layer: Some(k),
                student,
                expected,
                found,
            },
            other => other,
        }
    }
}
