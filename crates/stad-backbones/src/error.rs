//! Typed errors of the backbone crate.

use std::path::PathBuf;

/// Everything that can go wrong when building a backbone or loading weights into it.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// A configuration that cannot describe a network (no tap, a tap out of range, a zero width…).
    #[error("invalid backbone configuration: {0}")]
    InvalidConfig(String),

    /// The weight file could not be read or parsed.
    #[error("cannot read weights from {path}: {message}")]
    WeightFile {
        /// The file (or `<embedded>` / `<memory>`).
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },

    /// The file's extension says neither `.pth`/`.pt` nor `.safetensors`.
    #[error("unsupported weight file {0}: expected .pth, .pt or .safetensors")]
    UnsupportedFormat(PathBuf),

    /// The weights do not fit the network: keys it needs are absent, keys it does not know are
    /// present, or shapes differ. This is what a file for another architecture gives.
    #[error(
        "weights do not fit {network}: {}",
        mismatch_summary(missing, unexpected, shape_mismatches)
    )]
    WeightMismatch {
        /// The network the weights were loaded into (e.g. `resnet18 to layer3`).
        network: String,
        /// torchvision keys the network needs but the file lacks.
        missing: Vec<String>,
        /// torchvision keys in the file that the network has no place for (keys of stages
        /// deeper than the network's deepest one, and `num_batches_tracked`, are not counted).
        unexpected: Vec<String>,
        /// `key: expected [..], found [..]` for each tensor of the wrong shape (such a key is
        /// not also listed in `missing`).
        shape_mismatches: Vec<String>,
    },

    /// A tensor the network takes is not floating point (e.g. an int32 convolution weight).
    /// float16, bfloat16 and float64 tensors are converted to float32; `num_batches_tracked`
    /// (int64) is ignored.
    #[error(
        "weights tensor {key} has dtype {dtype}: the network's parameters need float16, \
         bfloat16, float32 or float64 tensors"
    )]
    WeightDtype {
        /// The torchvision key of the tensor (e.g. `layer1.0.conv1.weight`).
        key: String,
        /// Its dtype in PyTorch naming (`int32`, `uint8`, `bool`…).
        dtype: String,
    },

    /// A tensor holds values no trained network has: NaN or infinite values, or a BatchNorm
    /// `running_var` below zero.
    #[error("weights tensor {key} is invalid: {problem}")]
    WeightValues {
        /// The torchvision key of the tensor (e.g. `layer1.0.bn1.running_var`).
        key: String,
        /// What is wrong (`12 of 36864 values are NaN or infinite`).
        problem: String,
    },
}

/// `N missing key(s) [...], N unexpected key(s) [...], N shape mismatch(es) [...]`, leaving out
/// the empty parts.
fn mismatch_summary(missing: &[String], unexpected: &[String], shapes: &[String]) -> String {
    [
        (missing, "missing key(s)"),
        (unexpected, "unexpected key(s)"),
        (shapes, "shape mismatch(es)"),
    ]
    .iter()
    .filter(|(keys, _)| !keys.is_empty())
    .map(|(keys, what)| format!("{} {what} {}", keys.len(), preview(keys)))
    .collect::<Vec<_>>()
    .join(", ")
}

fn preview(keys: &[String]) -> String {
    const SHOWN: usize = 6;
    if keys.is_empty() {
        return String::new();
    }
    let mut s = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", keys.len() - SHOWN));
    }
    format!("[{s}]")
}

/// Result alias of this crate.
pub type Result<T, E = BackboneError> = std::result::Result<T, E>;
