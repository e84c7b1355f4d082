//! The command-line tool's error: the library's typed errors, plus what the tool itself checks,
//! each with a hint on how to fix it.

use std::path::{Path, PathBuf};

use stad::StadError;
use stad::backbones::BackboneError;
use stad::data::DataError;
use stad_viz::VizError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Training, loading, scoring or evaluating failed.
    #[error(transparent)]
    Stad(#[from] StadError),
    /// Opening or reading a data set failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Writing a report, plot or overlay failed.
    #[error(transparent)]
    Viz(#[from] VizError),
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A file or folder of the tool's own could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A run folder that is missing, incomplete, or holds another run.
    #[error("{path}: {reason}")]
    Run {
        /// The run folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A training configuration that needs more memory than the machine has available.
    #[error(
        "this training needs about {needed_gb:.1} GB of memory ({configuration}), and {available_gb:.1} GB are available"
    )]
    TooLarge {
        /// The estimate, GB.
        needed_gb: f64,
        /// What the machine has available, GB.
        available_gb: f64,
        /// The configuration, in words.
        configuration: String,
    },
    /// `--device cuda` on a build without the CUDA backend.
    #[error("this stad was built without CUDA support")]
    NoCuda,
    /// `stad benchmark`: some (category, method) pairs failed; the others were reported.
    #[error("benchmark: {} pair(s) failed:\n  {}", failed.len(), failed.join("\n  "))]
    BenchmarkFailed {
        /// `CATEGORY/METHOD: error` of each pair that failed.
        failed: Vec<String>,
    },
    /// `stad selftest`: the device computes something else than the CPU reference.
    #[error("selftest of {backend}: {} check(s) failed: {}", failed.len(), failed.join(", "))]
    SelftestFailed {
        /// The backend checked.
        backend: String,
        /// The checks that failed.
        failed: Vec<String>,
    },
}

/// The tool's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// An I/O error about `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.to_path_buf();
        move |source| CliError::Io { path, source }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Stad(StadError::Data(e)) | CliError::Data(e) => data_hint(e),
            CliError::Stad(StadError::Backbone(e)) => backbone_hint(e),
            CliError::Stad(StadError::Diverged { .. }) => Some(
                "rerun with a smaller --lr (e.g. --lr 0.04), or a larger --batch-size".into(),
            ),
            CliError::Stad(StadError::CheckpointMismatch { .. }) => Some(
                "a run folder belongs to one configuration, one training set and one teacher file: \
                 resume with the same settings, data and --weights (and at least as many \
                 --epochs as done), or choose a new --out"
                    .into(),
            ),
            CliError::Stad(StadError::Checkpoint(_)) => Some(
                "the file is damaged or was not written by stad: train again with `stad train --out RUN_DIR`"
                    .into(),
            ),
            CliError::Stad(StadError::Metrics(stad::metrics::MetricsError::EmptyMasks { .. })) => {
                Some(
                    "masks must be non-zero where the defect is: check ground_truth/<defect> (or \
                     --masks)"
                        .into(),
                )
            }
            CliError::Stad(StadError::Metrics(_)) => Some(
                "eval needs both good and defective test images (test/good and test/<defect>), \
                 and finite scores"
                    .into(),
            ),
            CliError::BenchmarkFailed { .. } => Some(
                "the other pairs are in the report; fix what the errors say and rerun the same \
                 command: finished pairs are skipped and interrupted ones resume"
                    .into(),
            ),
            CliError::TooLarge { .. } => Some(
                "lower --batch-size, --image-size or --students (memory grows with batch × \
                 students × image size²), or --teacher-cache-mb"
                    .into(),
            ),
            CliError::NoCuda => Some(
                "rebuild with CUDA (`cargo build --release -p stad-cli --features cuda`) or use --device cpu"
                    .into(),
            ),
            CliError::SelftestFailed { .. } => Some(
                "the FAIL rows of the table give the largest differences from the CPU; do not \
                 trust this device's results until they pass (train with --device cpu meanwhile), \
                 and report the --json file with the device's name"
                    .into(),
            ),
            CliError::Viz(VizError::Json { .. } | VizError::InvalidRecord { .. }) => {
                Some("pass the files written by `stad eval --json FILE`".into())
            }
            _ => None,
        }
    }
}

fn data_hint(e: &DataError) -> Option<String> {
    match e {
        DataError::MissingDir { .. } | DataError::EmptyTrainSet { .. } => Some(
            "--data must be one MVTec AD category (DIR/train/good, DIR/test/<defect>, \
             DIR/ground_truth/<defect>); for a plain folder of good images use --format folder, \
             for generated data --format synthetic"
                .into(),
        ),
        DataError::MaskSizeMismatch { .. } => {
            Some("every mask must have its image's width and height".into())
        }
        DataError::MissingMask { .. } | DataError::OrphanMask { .. } => Some(
            "MVTec AD masks are ground_truth/<defect>/<image stem>_mask.<ext>; with --format \
             folder, pass --masks DIR holding <image stem>.<ext> for every anomalous image"
                .into(),
        ),
        DataError::Decode { .. } | DataError::UnsupportedFormat { .. } => {
            Some("replace or remove the file: stad reads PNG, JPEG, BMP and TIFF images".into())
        }
        _ => None,
    }
}

fn backbone_hint(e: &BackboneError) -> Option<String> {
    match e {
        BackboneError::WeightMismatch {
            network,
            missing,
            shape_mismatches,
            ..
        } => {
            // Name a convolution's weight when one is missing: it says more about the
            // architecture than a BatchNorm statistic does.
            let key = missing
                .iter()
                .find(|k| k.ends_with("conv1.weight"))
                .or(missing.first());
            let what = if let Some(key) = key {
                format!("the weights file has no key {key}")
            } else if let Some(shape) = shape_mismatches.first() {
                format!("the weights file has {shape}")
            } else {
                "the weights file has keys the network does not know".into()
            };
            let arch = network.split_whitespace().next().unwrap_or(network);
            Some(format!(
                "{what}: is it a torchvision {arch} state dict? Pass --backbone with the file's \
                 architecture (resnet18, resnet34, resnet50, wide_resnet50_2, mobilenet_v2)"
            ))
        }
        BackboneError::WeightFile { .. } | BackboneError::UnsupportedFormat(_) => Some(
            "--weights takes a torchvision state dict saved with torch.save (.pth/.pt) or \
             safetensors (.safetensors)"
                .into(),
        ),
        BackboneError::WeightDtype { .. } => Some(
            "save the state dict with float tensors (in PyTorch: \
             `{k: v.float() for k, v in sd.items()}`); float16, bfloat16 and float64 are \
             converted on load"
                .into(),
        ),
        BackboneError::WeightValues { .. } => Some(
            "the weights file is damaged or comes from a diverged training: export the teacher \
             again from a good checkpoint"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_mismatch_hint_names_the_first_missing_key_and_the_network() {
        let e = CliError::Stad(StadError::Backbone(BackboneError::WeightMismatch {
            network: "resnet34 to layer3".into(),
            missing: vec!["layer1.2.bn1.bias".into(), "layer1.2.conv1.weight".into()],
            unexpected: vec![],
            shape_mismatches: vec![],
        }));
        let hint = e.hint().unwrap();
        assert!(hint.starts_with("the weights file has no key layer1.2.conv1.weight: is it a torchvision resnet34 state dict?"), "{hint}");
    }

    #[test]
    fn missing_folder_hint_explains_the_layout() {
        let e = CliError::Data(DataError::MissingDir {
            path: "x/train/good".into(),
            what: "train/good",
        });
        assert!(e.to_string().contains("x/train/good"));
        assert!(e.hint().unwrap().contains("--format folder"));
    }
}
