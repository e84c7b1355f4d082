//! The decoupled student (the thesis' §7 future work, beyond the thesis): STFPM with a
//! student of any architecture, decoupled from the teacher by learned 1×1 adapters.
//!
//! The thesis concludes that its Simple Student was over-simplified (it keeps the teacher's
//! architecture with narrower insides) and proposes to decouple student and teacher. Here:
//!
//! - **Students**: one, any backbone of stad-backbones whose taps have the teacher's strides
//!   (e.g. a MobileNetV2, taps 3/6/13 at strides 4/8/16, for the ResNet18 teacher's
//!   layer1/2/3), randomly initialised, plus per tap `k` a learned 1×1 convolution with bias
//!   `A_k` from the student's `c_k^S` channels to the teacher's `c_k^T`:
//!   `ŝ_k = A_k(S(x)_k)` ([`crate::Student`]).
//! - **Loss**: STFPM's on the adapted features, `L = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²`; the
//!   adapters learn with the backbone.
//! - **Map**: STFPM's, `Π_k up(0.5·‖t̂_k − ŝ_k‖²)`.

use burn::prelude::*;
use stad_backbones::BackboneConfig;
use stad_scoring::AnomalyMapConfig;

use crate::error::{ConfigError, Result};

/// The default decoupled student: a torchvision MobileNetV2 (symmetric padding), taps
/// `features[3, 6, 13]` (strides 4/8/16, 24/32/96 channels).
pub fn default_student() -> BackboneConfig {
    BackboneConfig::MobileNetV2(stad_backbones::MobileNetV2Config::new())
}

/// Checks the student's own architecture (its backbone's `validate`).
///
/// # Errors
/// [`ConfigError::InvalidStudent`] for an architecture its backbone refuses.
pub fn check_student(student: &BackboneConfig) -> Result<(), ConfigError> {
    student
        .validate()
        .map_err(|e| ConfigError::InvalidStudent(e.to_string()))
}

/// Checks that `student` is a valid architecture ([`check_student`]) whose taps have
/// `teacher`'s strides, in order.
///
/// # Errors
/// [`ConfigError::InvalidStudent`] for an architecture its backbone refuses,
/// [`ConfigError::StudentStrides`] for taps at other strides than the teacher's.
pub fn check(student: &BackboneConfig, teacher: &BackboneConfig) -> Result<(), ConfigError> {
    check_student(student)?;
    let (s, t) = (student.tap_strides(), teacher.tap_strides());
    if s != t {
        return Err(ConfigError::StudentStrides {
            student: s,
            teacher: t,
        });
    }
    Ok(())
}

/// The adapters' `(from, to)` channels, one per tap: the student's tap channels to the
/// teacher's.
pub fn adapter_widths(student: &BackboneConfig, teacher: &BackboneConfig) -> Vec<(usize, usize)> {
    student
        .tap_channels()
        .into_iter()
        .zip(teacher.tap_channels())
        .collect()
}

/// STFPM's loss ([`crate::methods::stfpm::loss`]) on the adapted features.
///
/// # Errors
/// [`crate::StadError::Distill`] when the layer lists or shapes differ.
pub fn loss<B: Backend>(
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 1>> {
    crate::methods::stfpm::loss(teacher, student)
}

/// STFPM's map ([`crate::methods::stfpm::anomaly_map`]) on the adapted features.
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

#[cfg(test)]
mod tests {
    use super::*;
    use stad_backbones::{ResNetArch, ResNetConfig, ResNetStage};

    #[test]
    fn a_mobilenet_student_fits_the_resnet18_teacher_through_adapters() {
        let teacher = BackboneConfig::resnet18();
        assert_eq!(check(&default_student(), &teacher), Ok(()));
        assert_eq!(
            adapter_widths(&default_student(), &teacher),
            vec![(24, 64), (32, 128), (96, 256)]
        );
    }

    #[test]
    fn taps_at_other_strides_are_refused() {
        let teacher = BackboneConfig::resnet18();
        let shallow =
            BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet18).with_taps(vec![
                ResNetStage::Stem,
                ResNetStage::Layer1,
                ResNetStage::Layer2,
            ]));
        assert!(matches!(
            check(&shallow, &teacher),
            Err(ConfigError::StudentStrides { .. })
        ));
        let broken =
            BackboneConfig::MobileNetV2(stad_backbones::MobileNetV2Config::new().with_taps(vec![]));
        assert!(matches!(
            check(&broken, &teacher),
            Err(ConfigError::InvalidStudent(_))
        ));
    }
}
