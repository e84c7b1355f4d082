//! Input normalisation constants: `x_norm = (x − mean) / std` per channel, on RGB in `[0, 1]`.

use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation of a backbone's expected input (RGB, `[0, 1]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Channel means (R, G, B).
    pub mean: [f32; 3],
    /// Channel standard deviations (R, G, B).
    pub std: [f32; 3],
}

/// torchvision's ImageNet statistics, used by every torchvision-trained backbone.
pub const IMAGENET: Normalization = Normalization {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

/// TensorFlow / TFLite MobileNet input scaling `(x·255 − 128) / 128`, i.e. mean = std = 128/255.
/// Used by the embedded MobileNetV2 teacher.
pub const TF_MOBILENET: Normalization = Normalization {
    mean: [128.0 / 255.0; 3],
    std: [128.0 / 255.0; 3],
};

impl Default for Normalization {
    fn default() -> Self {
        IMAGENET
    }
}

impl Normalization {
    /// Normalises one value of channel `c`.
    pub fn apply(&self, c: usize, value: f32) -> f32 {
        (value - self.mean[c]) / self.std[c]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_scaling_maps_0_and_1_to_about_minus_1_and_1() {
        assert!((TF_MOBILENET.apply(0, 0.0) + 1.0).abs() < 1e-6);
        assert!((TF_MOBILENET.apply(0, 1.0) - 127.0 / 128.0).abs() < 1e-6);
    }

    #[test]
    fn imagenet_mean_maps_to_zero() {
        for c in 0..3 {
            assert_eq!(IMAGENET.apply(c, IMAGENET.mean[c]), 0.0);
        }
    }
}
