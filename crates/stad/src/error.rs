//! The error type of the methods crate.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;

/// A setting out of its valid range, found by a `check()` before anything is built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// An ensemble with fewer than 2 students.
    #[error("an ensemble needs at least 2 students, got {0}")]
    TooFewStudents(usize),
    /// An ensemble with more than `max` students ([`crate::methods::ensemble::MAX_STUDENTS`]).
    #[error("an ensemble has at most {max} students (the thesis uses 3), got {got}")]
    TooManyStudents {
        /// Asked for.
        got: usize,
        /// The most allowed.
        max: usize,
    },
    /// A Simple-Student width or expansion of zero.
    #[error("Simple Student widths must be positive")]
    ZeroWidth,
    /// A Simple-Student width above [`stad_backbones::resnet::MAX_INNER_WIDTH`] or an
    /// expansion above [`stad_backbones::mobilenet::MAX_EXPANSION`].
    #[error("a Simple Student {what} is at most {max}, got {got}")]
    WidthTooLarge {
        /// `"width"` or `"expansion"`.
        what: &'static str,
        /// Asked for.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A decoupled student whose architecture its backbone refuses.
    #[error("invalid decoupled student: {0}")]
    InvalidStudent(String),
    /// A decoupled student whose taps are not at the teacher's strides.
    #[error(
        "a decoupled student's taps must have the teacher's strides: the student's are {student:?}, the teacher's {teacher:?}"
    )]
    StudentStrides {
        /// The student's tap strides.
        student: Vec<usize>,
        /// The teacher's tap strides.
        teacher: Vec<usize>,
    },
    /// A smoothing σ that is not a positive finite number.
    #[error("smoothing sigma must be positive, got {0}")]
    SmoothingSigma(f64),
    /// A network input side below `min` (32: the deepest taps have stride 16).
    #[error("image size must be at least {min} (the deepest taps have stride 16), got {got}")]
    ImageTooSmall {
        /// Asked for.
        got: usize,
        /// The smallest allowed.
        min: usize,
    },
    /// A network input side above `max` ([`crate::MAX_IMAGE_SIZE`]).
    #[error(
        "image size must be at most {max} (MVTec AD's largest images are 1024²; the thesis \
         trains at 224), got {got}"
    )]
    ImageTooLarge {
        /// Asked for.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The embedded teacher asked for with another architecture than the TF-padded
    /// MobileNetV2.
    #[error(
        "the embedded teacher is a MobileNetV2 with TF padding: use BackboneConfig::mobilenet_v2_tf()"
    )]
    EmbeddedNeedsMobileNetV2Tf,
    /// The embedded teacher asked for in a build without it.
    #[error(
        "this build has no embedded teacher (feature `embedded-teacher` is off): pass a weights file"
    )]
    NoEmbeddedTeacher,
    /// A learning rate that is not a positive finite number.
    #[error("learning rate must be positive, got {0}")]
    LearningRate(f64),
    /// A momentum outside `[0, 1)`.
    #[error("momentum must be in [0, 1), got {0}")]
    Momentum(f64),
    /// A negative or non-finite weight decay.
    #[error("weight decay must be ≥ 0, got {0}")]
    WeightDecay(f64),
    /// A batch size of zero.
    #[error("batch size must be positive")]
    ZeroBatchSize,
    /// Zero epochs.
    #[error("epochs must be positive")]
    ZeroEpochs,
    /// A NaN or infinite decision threshold.
    #[error("the threshold must be a finite number, got {0}")]
    Threshold(f64),
    /// A hold-out fraction outside `[0, 1)`.
    #[error("hold-out fraction must be in [0, 1), got {0}")]
    HoldoutFraction(f64),
}

/// Everything that can go wrong when training, saving, loading or running a detector.
#[derive(Debug, thiserror::Error)]
pub enum StadError {
    /// A hyper-parameter or setting out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// A model given another number of students than its method has.
    #[error("the method has {expected} students, got {found}")]
    StudentCount {
        /// The method's.
        expected: usize,
        /// Given.
        found: usize,
    },
    /// The test set has no images.
    #[error("the test set is empty")]
    EmptyTestSet,
    /// A model's record could not be serialised for a checkpoint.
    #[error("cannot serialise `{name}` for a checkpoint: {reason}")]
    Serialise {
        /// The blob.
        name: String,
        /// burn's recorder's message.
        reason: String,
    },
    /// A distillation loss could not be computed (layers that do not fit).
    #[error(transparent)]
    Distill(#[from] stad_distill::DistillError),
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
