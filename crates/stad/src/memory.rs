//! How much memory a training configuration needs, estimated before it starts, so that an
//! impossible one (`--image-size 100000`, a thousand students) is refused with a clear message
//! instead of aborting half-way on a failed allocation.
//!
//! The estimate, in bytes, for `n` training images of side `s`, batch `b` and `m` students:
//!
//! ```text
//! base + m·P·12 + b·A·s² + n·12·s² + min(cache, n·F·s²)
//! ```
//! - `base`: the program, the teacher's weights and the allocator's slack (0.3 GB; measured
//!   0.2 GB);
//! - `P·12`: each student's parameters, their gradients and SGD momentum (f32);
//! - `A·s²`: one image's activations that a student keeps for its backward pass, the gradients
//!   that flow back through them and the teacher's forward pass, per pixel of input
//!   ([`activation_bytes_per_pixel`]); the students step one after the other, so only one
//!   student's activations are alive at a time;
//! - `12·s²`: one decoded, resized image kept in memory (3 channels of f32);
//! - `F·s²`: one image's cached teacher features (f32; `F` = Σ channels / stride² over the
//!   taps), up to the teacher cache's budget.
//!
//! It is an estimate, rounded up: it is meant to refuse what cannot fit, not to plan to the
//! last megabyte.

use stad_backbones::{BackboneConfig, ResNetArch};

use crate::model::ModelConfig;
use crate::trainer::TrainConfig;

/// Program, teacher weights and allocator slack, bytes.
const BASE_BYTES: f64 = 0.3e9;

/// Bytes of activations (forward values kept for the backward pass, their gradients, and the
/// teacher's forward pass) per training image and per pixel of input, for a student of
/// architecture `backbone` built to its deepest tap. Measured as the growth of peak memory with
/// the batch (`/usr/bin/time -f %M stad train`, batch 4 → 16 at 224², CPU backend: ResNet18
/// 30 MB an image, 610 B/px; MobileNetV2 55 MB, 1,100 B/px; docs/measurements.md) and
/// rounded up; ResNets deeper than 18 are scaled by their blocks' activation count.
pub fn activation_bytes_per_pixel(backbone: &BackboneConfig) -> f64 {
    match backbone {
        BackboneConfig::ResNet(c) => {
            let r18 = RESNET18_BYTES_PER_PIXEL;
            let scale = match c.arch {
                ResNetArch::ResNet18 => 1.0,
                // Blocks to layer3: 3+4+6 against 2+2+2.
                ResNetArch::ResNet34 => 13.0 / 6.0,
                // Bottlenecks: 4× wider outputs and three convolutions a block.
                ResNetArch::ResNet50 => 13.0 / 6.0 * 3.0,
                ResNetArch::WideResNet50_2 => 13.0 / 6.0 * 4.5,
            };
            // A Simple Student has narrower inner convolutions: never more than the full one.
            r18 * scale
        }
        BackboneConfig::MobileNetV2(_) => MOBILENET_V2_BYTES_PER_PIXEL,
    }
}

/// Measured, see [`activation_bytes_per_pixel`].
const RESNET18_BYTES_PER_PIXEL: f64 = 650.0;
/// Measured, see [`activation_bytes_per_pixel`].
const MOBILENET_V2_BYTES_PER_PIXEL: f64 = 1_150.0;

/// The estimated peak memory of training `model` with `config` on `n_images` images, bytes
/// (formula in the module docs).
pub fn training_bytes(model: &ModelConfig, config: &TrainConfig, n_images: usize) -> f64 {
    let s2 = (model.image_size as f64).powi(2);
    let m = model.method.num_students() as f64;
    let b = config.batch_size.min(n_images.max(1)) as f64;
    let n = n_images as f64;
    let student = model.student_backbone();
    let a = activation_bytes_per_pixel(&student);
    let params = parameter_count(&student) as f64;
    let features: f64 = model
        .teacher
        .tap_channels()
        .iter()
        .zip(model.teacher.tap_strides())
        .map(|(&c, stride)| c as f64 / (stride * stride) as f64)
        .sum::<f64>()
        * 4.0;
    let cache = (config.teacher_cache_mb as f64 * (1u64 << 20) as f64).min(n * features * s2);
    let images = if config.cache_images {
        n * 12.0 * s2
    } else {
        b * 12.0 * s2
    };
    BASE_BYTES + m * params * 12.0 + b * a * s2 + images + cache
}

/// Parameters of `backbone` (to its deepest tap), counted from a module built on a backend that
/// allocates nothing.
fn parameter_count(backbone: &BackboneConfig) -> usize {
    use burn::module::Module;
    type Meta = burn::backend::Flex;
    backbone
        .init::<Meta>(&Default::default())
        .map(|b| b.num_params())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{MethodConfig, MethodKind};
    use crate::model::TeacherWeights;

    fn resnet18(kind: MethodKind, size: usize) -> ModelConfig {
        ModelConfig::new(
            BackboneConfig::resnet18(),
            TeacherWeights::Random(1),
            kind.default_config(),
        )
        .with_image_size(size)
    }

    /// The estimate brackets what was measured (peak resident memory of `stad train` on 60
    /// synthetic images, teacher cache off): ResNet18 STFPM at 224², batch 4: 0.34 GB, batch 16:
    /// 0.70 GB; at 448², batch 4: 0.80 GB; a 3-student ensemble at 224², batch 8: 0.58 GB. It
    /// must not be below (it would let through what cannot fit) nor far above (it would
    /// refuse what fits).
    #[test]
    fn the_estimate_is_above_the_measured_peaks_and_within_twice_them() {
        let no_cache = TrainConfig::new().with_teacher_cache_mb(0);
        for (model, batch, measured_gb) in [
            (resnet18(MethodKind::Stfpm, 224), 4, 0.34),
            (resnet18(MethodKind::Stfpm, 224), 16, 0.70),
            (resnet18(MethodKind::Stfpm, 448), 4, 0.80),
            (resnet18(MethodKind::Ensemble, 224), 8, 0.58),
        ] {
            let config = no_cache.clone().with_batch_size(batch);
            let estimate = training_bytes(&model, &config, 60) / 1e9;
            assert!(
                estimate >= measured_gb && estimate <= 2.0 * measured_gb,
                "{} at {}, batch {batch}: estimate {estimate:.2} GB, measured {measured_gb} GB",
                model.method.name(),
                model.image_size
            );
        }
    }

    #[test]
    fn the_estimate_grows_with_students_batch_and_the_square_of_the_size() {
        let config = TrainConfig::new()
            .with_batch_size(8)
            .with_teacher_cache_mb(0);
        let small = training_bytes(&resnet18(MethodKind::Stfpm, 224), &config, 10);
        let large = training_bytes(&resnet18(MethodKind::Stfpm, 2048), &config, 10);
        // (2048/224)² ≈ 84 on the pixel terms (a linear growth would give 9×); the fixed part
        // (program, weights) does not grow.
        assert!(large > 30.0 * small, "{small} → {large}");
        let students = training_bytes(
            &ModelConfig::new(
                BackboneConfig::resnet18(),
                TeacherWeights::Random(1),
                MethodConfig::ensemble(64),
            ),
            &config,
            10,
        );
        assert!(students > small + 63.0 * 1e6 * 12.0, "{small} → {students}");
    }
}
