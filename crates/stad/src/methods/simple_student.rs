//! The Simple Student (the thesis' Sol 2): STFPM with a bottlenecked student.
//!
//! - **Students**: one, the teacher's architecture with reduced inner widths and unchanged
//!   tap outputs (for ResNet18: blocks of `layer1..layer4` `[32, 64, 128, 256]` wide inside,
//!   outputs 64/128/256; for MobileNetV2: expansion ratio 2 instead of 6).
//! - **Loss**: STFPM's, `L = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²`.
//! - **Map**: STFPM's, `Π_k up(0.5·‖t̂_k − ŝ_k‖²)`.

use burn::prelude::*;
use stad_backbones::BackboneConfig;
use stad_backbones::mobilenet::MAX_EXPANSION;
use stad_backbones::resnet::MAX_INNER_WIDTH;
use stad_scoring::AnomalyMapConfig;

use crate::error::{ConfigError, Result};

/// Default inner widths of a ResNet student's `layer1..layer4` blocks (half of ResNet18's).
pub const DEFAULT_RESNET_WIDTHS: [usize; 4] = [32, 64, 128, 256];
/// Default expansion ratio of a MobileNetV2 student's inverted residuals (torchvision: 6).
pub const DEFAULT_MOBILENET_EXPANSION: usize = 2;

/// Checks the widths: all positive, widths at most [`MAX_INNER_WIDTH`] and the expansion at
/// most [`MAX_EXPANSION`].
///
/// # Errors
/// [`ConfigError::ZeroWidth`] for a zero width or expansion, [`ConfigError::WidthTooLarge`]
/// for one above its bound.
pub fn check(widths: &[usize; 4], expansion: usize) -> Result<(), ConfigError> {
    if widths.contains(&0) || expansion == 0 {
        return Err(ConfigError::ZeroWidth);
    }
    if let Some(&got) = widths.iter().find(|&&w| w > MAX_INNER_WIDTH) {
        return Err(ConfigError::WidthTooLarge {
            what: "width",
            got,
            max: MAX_INNER_WIDTH,
        });
    }
    if expansion > MAX_EXPANSION {
        return Err(ConfigError::WidthTooLarge {
            what: "expansion",
            got: expansion,
            max: MAX_EXPANSION,
        });
    }
    Ok(())
}

/// The teacher's architecture with the reduced inner `widths` (ResNet) or `expansion`
/// (MobileNetV2); tap channels and strides unchanged.
pub fn student_backbone(
    teacher: &BackboneConfig,
    widths: [usize; 4],
    expansion: usize,
) -> BackboneConfig {
    teacher.with_reduced_width(widths, expansion)
}

/// STFPM's loss ([`crate::methods::stfpm::loss`]).
///
/// # Errors
/// [`crate::StadError::Distill`] when the layer lists or shapes differ.
pub fn loss<B: Backend>(
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 1>> {
    crate::methods::stfpm::loss(teacher, student)
}

/// STFPM's map ([`crate::methods::stfpm::anomaly_map`]).
///
/// # Errors
/// [`crate::StadError::Scoring`] when the layers do not fit.
pub fn anomaly_map<B: Backend>(
    map: &AnomalyMapConfig,
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 4>> {
    crate::methods::stfpm::anomaly_map(map, teacher, student)
}
