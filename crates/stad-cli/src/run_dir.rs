//! The run folder written by `stad train`:
//!
//! ```text
//! RUN_DIR/
//!   run.json       what was trained on what, with which settings, per-epoch history, threshold
//!   detector.stad  the trained detector (students, teacher reference, threshold): eval/predict load it
//!   last.ckpt      students + optimizer state after the last epoch (for --resume)
//!   best.ckpt      students of the best epoch (lowest mean hold-out score)
//! ```
//! Every file is written atomically (temp file + rename): an interrupted run never leaves a
//! half-written file behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stad::{EpochSummary, ModelConfig, ThresholdSource, TrainConfig};

use crate::data::DataSpec;
use crate::error::{CliError, Result};

/// `run.json`.
pub const RUN_FILE: &str = "run.json";
/// `detector.stad`.
pub const DETECTOR_FILE: &str = "detector.stad";

/// What `run.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Version of stad that trained the run.
    pub stad_version: String,
    /// `stfpm`, `ensemble` or `simple`.
    pub method: String,
    /// The data set's name (MVTec category, synthetic kind, folder name).
    pub category: String,
    /// Where the training data came from.
    pub data: DataSpec,
    /// The teacher, in words (architecture and weights).
    pub teacher: String,
    /// The model configuration.
    pub model: ModelConfig,
    /// The training hyper-parameters.
    pub train: TrainConfig,
    /// The backend it was trained on.
    pub device: String,
    /// Training images used for fitting.
    pub n_fit: usize,
    /// Nominal training images held out for model selection and the threshold.
    pub n_holdout: usize,
    /// The epoch whose students were kept (0-based).
    pub best_epoch: usize,
    /// Every epoch's summary.
    pub history: Vec<EpochSummary>,
    /// Wall time of training in this session, seconds.
    pub train_seconds: f64,
    /// The detector's threshold.
    pub threshold: f64,
    /// How it was chosen.
    pub threshold_source: ThresholdSource,
}

/// The files of a run folder.
#[derive(Debug, Clone)]
pub struct RunPaths {
    /// The folder.
    pub dir: PathBuf,
}

impl RunPaths {
    /// The run folder `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }
    /// `run.json`.
    pub fn info(&self) -> PathBuf {
        self.dir.join(RUN_FILE)
    }
    /// `detector.stad`.
    pub fn detector(&self) -> PathBuf {
        self.dir.join(DETECTOR_FILE)
    }

    /// Reads `run.json` and checks that the detector is there.
    ///
    /// # Errors
    /// [`CliError::Run`] when the folder, `run.json` or `detector.stad` is missing (with what
    /// to do), or `run.json` does not parse.
    pub fn load(&self) -> Result<RunInfo> {
        let missing = |reason: &str| CliError::Run {
            path: self.dir.clone(),
            reason: reason.into(),
        };
        if !self.dir.is_dir() {
            return Err(missing(
                "no such run folder: train one with `stad train --out RUN_DIR`",
            ));
        }
        let info = self.info();
        if !info.is_file() {
            return Err(missing(
                "not a finished stad run (no run.json): train it with `stad train --out RUN_DIR`, \
                 or finish an interrupted run with `stad train --resume`",
            ));
        }
        if !self.detector().is_file() {
            return Err(missing(
                "the run has no detector.stad: finish it with `stad train --resume`",
            ));
        }
        let bytes = std::fs::read(&info).map_err(CliError::io(&info))?;
        serde_json::from_slice(&bytes).map_err(|e| CliError::Run {
            path: info,
            reason: format!("not a stad run.json ({e})"),
        })
    }

    /// Writes `run.json` atomically.
    pub fn save(&self, run: &RunInfo) -> Result<()> {
        let json = serde_json::to_vec_pretty(run).expect("run info serialises");
        write_atomic(&self.info(), &json)
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stad::checkpoint::write_atomic(path, bytes)
        .map_err(|e| CliError::Stad(stad::StadError::Checkpoint(e)))
}
