//! # stad — student–teacher anomaly detection
//!
//! Given only defect-free images of a product, train students that reproduce a frozen,
//! ImageNet-pretrained teacher's feature maps; where they disagree on a new image, it is
//! anomalous. This crate gathers the methods (STFPM, a students ensemble with feature
//! variance, the Simple Student), their training and inference, and re-exports the building
//! blocks:
//!
//! - [`backbones`]: ResNet / MobileNetV2 with torchvision weights, the frozen teacher and the
//!   embedded ImageNet MobileNetV2 default teacher;
//! - [`distill`]: distillation losses;
//! - [`scoring`]: anomaly-map kernels;
//! - [`metrics`]: AUROC, AU-PRO, F1-optimal thresholds, Dice;
//! - [`data`]: MVTec AD, folder and synthetic data sets.
//!
//! Everything is generic over burn's `Backend`; [`backend`] names the ones stad is built with.

pub mod checkpoint;
mod detector;
mod error;
mod evaluate;
mod fingerprint;
pub mod memory;
pub mod methods;
mod model;
mod run_dir;
mod teacher_cache;
mod tensor_guard;
mod trainer;

pub use checkpoint::{CheckpointError, CheckpointFile};
pub use detector::{
    DEFAULT_BATCH_SIZE, DEFAULT_NOMINAL_QUANTILE, Detector, Prediction, ThresholdSource,
};
pub use error::{ConfigError, Result, StadError};
pub use evaluate::{
    AU_PRO_LIMIT, Evaluation, TestOutputs, evaluate, run_test_set, run_test_set_observed,
};
pub use fingerprint::{DataFingerprint, FileFingerprint};
pub use methods::{MethodConfig, MethodKind};
pub use model::{
    DEFAULT_SEED, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, ModelConfig, Student, StudentTeacher,
    TeacherWeights, seeded_init,
};
pub use run_dir::RunDir;
pub use teacher_cache::TeacherCacheStatus;
pub use trainer::{
    BestEpoch, Checkpointer, EpochSummary, Silent, StudentOptimizers, TrainConfig, TrainObserver,
    TrainOutcome, train,
};

pub use stad_backbones as backbones;
pub use stad_data as data;
pub use stad_distill as distill;
pub use stad_metrics as metrics;
pub use stad_scoring as scoring;

/// The features this build of the library has (`embedded-teacher`).
pub fn build_features() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "embedded-teacher") {
        out.push("embedded-teacher");
    }
    out
}

/// The burn backends stad is built and tested with.
pub mod backend {
    /// The fast pure-Rust CPU backend (the default on CPU, and the tests' backend).
    pub type Cpu = burn::backend::Flex;
    /// The ndarray CPU backend (selectable; slower than [`Cpu`]).
    pub type CpuNdArray = burn::backend::NdArray;
    /// [`Cpu`] with automatic differentiation, for training.
    pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;
    /// NVIDIA GPUs through CUDA. burn's CUDA backend is always compiled (the driver is loaded
    /// at run time, so a machine without a GPU builds and runs the rest); the CLI's
    /// `--device cuda` is behind stad-cli's `cuda` feature.
    pub type Cuda = burn::backend::Cuda;
    /// [`Cuda`] with automatic differentiation.
    pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;
}
