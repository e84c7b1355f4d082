//! The three methods, one file each, and the configuration that chooses one.
//!
//! Every method has a frozen teacher `T` and one or more students `S_s` that learn to
//! reproduce the teacher's feature maps `t_k = T(x)_k` (taps `k = 1..K`) on defect-free images.
//! What tells the methods apart:
//!
//! | method | students | training loss (each student) | layer map `m_k` |
//! |---|---|---|---|
//! | [`stfpm`] | 1, the teacher's architecture | `Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²` | `0.5·‖t̂_k − ŝ_k‖²` |
//! | [`ensemble`] | `N ≥ 2` (default 3), own seeds | the same, per student | `0.5·‖t̂_k − mean_s ŝ_s,k‖² + ‖std_s ŝ_s,k‖²` |
//! | [`simple_student`] | 1, narrower inner widths | the same | as STFPM |
//! | [`decoupled`] | 1, any architecture with the teacher's tap strides, 1×1 adapters to the teacher's widths | the same, on the adapted features | as STFPM |
//!
//! (`t̂`, `ŝ`: L2-normalised over channels.) All share the image map
//! `map = Π_k up(m_k)` (bilinear, `align_corners = false`, to the input size) and the image
//! score `max map`.

pub mod decoupled;
pub mod ensemble;
pub mod simple_student;
pub mod stfpm;

use burn::config::Config;
use burn::prelude::*;
use stad_backbones::BackboneConfig;
use stad_scoring::{AnomalyMapConfig, EnsembleMode};

use crate::error::{ConfigError, Result};

/// Which method, without its settings (for names and command lines).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// [`stfpm`]: one student with the teacher's architecture.
    Stfpm,
    /// [`ensemble`] (Sol 1): students from different seeds, error plus variance.
    Ensemble,
    /// [`simple_student`] (Sol 2): STFPM with a narrower student.
    SimpleStudent,
    /// [`decoupled`]: STFPM with a student of another architecture and 1×1 adapters.
    Decoupled,
}

impl MethodKind {
    /// Short name: `stfpm`, `ensemble`, `simple`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stfpm => "stfpm",
            Self::Ensemble => "ensemble",
            Self::SimpleStudent => "simple",
            Self::Decoupled => "decoupled",
        }
    }

    /// The method with its default settings (the thesis').
    pub fn default_config(self) -> MethodConfig {
        match self {
            Self::Stfpm => MethodConfig::Stfpm,
            Self::Ensemble => MethodConfig::ensemble(ensemble::DEFAULT_STUDENTS),
            Self::SimpleStudent => MethodConfig::simple_student(),
            Self::Decoupled => MethodConfig::Decoupled {
                student: decoupled::default_student(),
            },
        }
    }
}

/// A method and its own settings: each variant carries only what applies to it.
///
/// ```
/// use stad::{MethodConfig, MethodKind};
/// let ensemble = MethodConfig::ensemble(5);
/// assert_eq!(ensemble.num_students(), 5);
/// assert_eq!(MethodKind::Stfpm.default_config(), MethodConfig::Stfpm);
/// ```
#[derive(Config, Debug, PartialEq)]
pub enum MethodConfig {
    /// STFPM ([`stfpm`]).
    Stfpm,
    /// A students ensemble with feature variance ([`ensemble`]).
    Ensemble {
        /// Students, `2..=`[`ensemble::MAX_STUDENTS`]; the thesis uses 3.
        students: usize,
        /// What the layer map is made of (default: error + variance).
        mode: EnsembleMode,
    },
    /// The Simple Student ([`simple_student`]).
    SimpleStudent {
        /// On a ResNet teacher: the inner width of the blocks of `layer1..layer4`
        /// (default `[32, 64, 128, 256]`, half of ResNet18's).
        widths: [usize; 4],
        /// On a MobileNetV2 teacher: the expansion ratio of the inverted residuals
        /// (default 2; torchvision's is 6).
        expansion: usize,
    },
    /// A decoupled student ([`decoupled`]).
    Decoupled {
        /// The student's architecture and taps (default [`decoupled::default_student`]); its
        /// taps must have the teacher's strides.
        student: BackboneConfig,
    },
}

impl MethodConfig {
    /// An ensemble of `students` students with the default map (error + variance).
    pub fn ensemble(students: usize) -> Self {
        Self::Ensemble {
            students,
            mode: EnsembleMode::Sum,
        }
    }

    /// The Simple Student with the default widths
    /// ([`simple_student::DEFAULT_RESNET_WIDTHS`], [`simple_student::DEFAULT_MOBILENET_EXPANSION`]).
    pub fn simple_student() -> Self {
        Self::SimpleStudent {
            widths: simple_student::DEFAULT_RESNET_WIDTHS,
            expansion: simple_student::DEFAULT_MOBILENET_EXPANSION,
        }
    }

    /// Which method this is.
    pub fn kind(&self) -> MethodKind {
        match self {
            Self::Stfpm => MethodKind::Stfpm,
            Self::Ensemble { .. } => MethodKind::Ensemble,
            Self::SimpleStudent { .. } => MethodKind::SimpleStudent,
            Self::Decoupled { .. } => MethodKind::Decoupled,
        }
    }

    /// Short name: `stfpm`, `ensemble`, `simple`.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Checks the method's own settings.
    ///
    /// # Errors
    /// [`ConfigError::TooFewStudents`] / [`ConfigError::TooManyStudents`] for fewer than 2 or
    /// more than [`ensemble::MAX_STUDENTS`] students; [`ConfigError::ZeroWidth`] / [`ConfigError::WidthTooLarge`] for a zero or
    /// too large Simple-Student width or expansion.
    pub fn check(&self) -> Result<(), ConfigError> {
        match self {
            Self::Stfpm => Ok(()),
            Self::Ensemble { students, .. } => ensemble::check(*students),
            Self::SimpleStudent { widths, expansion } => simple_student::check(widths, *expansion),
            Self::Decoupled { student } => decoupled::check_student(student),
        }
    }

    /// Checks what depends on the teacher too: a decoupled student's tap strides
    /// ([`decoupled::check`]).
    ///
    /// # Errors
    /// As [`Self::check`], and [`ConfigError::StudentStrides`].
    pub fn check_with_teacher(&self, teacher: &BackboneConfig) -> Result<(), ConfigError> {
        match self {
            Self::Decoupled { student } => decoupled::check(student, teacher),
            _ => self.check(),
        }
    }

    /// The `(from, to)` channels of a decoupled student's 1×1 adapters, one per tap; `None`
    /// for the methods whose students match the teacher's widths.
    pub fn adapter_widths(&self, teacher: &BackboneConfig) -> Option<Vec<(usize, usize)>> {
        match self {
            Self::Decoupled { student } => Some(decoupled::adapter_widths(student, teacher)),
            _ => None,
        }
    }

    /// Number of students.
    pub fn num_students(&self) -> usize {
        match self {
            Self::Ensemble { students, .. } => *students,
            Self::Stfpm | Self::SimpleStudent { .. } | Self::Decoupled { .. } => 1,
        }
    }

    /// The students' architecture for a teacher of architecture `teacher`.
    pub fn student_backbone(&self, teacher: &BackboneConfig) -> BackboneConfig {
        match self {
            Self::Stfpm | Self::Ensemble { .. } => stfpm::student_backbone(teacher),
            Self::SimpleStudent { widths, expansion } => {
                simple_student::student_backbone(teacher, *widths, *expansion)
            }
            Self::Decoupled { student } => student.clone(),
        }
    }

    /// One student's training loss against the teacher's features of the same images
    /// (every method trains each student with the STFPM loss, see the [module docs](self)).
    ///
    /// # Errors
    /// [`crate::StadError::Distill`] when the layer lists or shapes differ.
    pub fn student_loss<B: Backend>(
        &self,
        teacher: &[Tensor<B, 4>],
        student: &[Tensor<B, 4>],
    ) -> Result<Tensor<B, 1>> {
        match self {
            Self::Stfpm => stfpm::loss(teacher, student),
            Self::Ensemble { .. } => ensemble::student_loss(teacher, student),
            Self::SimpleStudent { .. } => simple_student::loss(teacher, student),
            Self::Decoupled { .. } => decoupled::loss(teacher, student),
        }
    }

    /// The anomaly map `[N, 1, H, W]` of `map` (its size and smoothing) from the teacher's
    /// features and every student's (`students[s][k]`, in the students' order).
    ///
    /// # Errors
    /// [`crate::StadError::Scoring`] when the layers do not fit or the map is not finite.
    pub fn anomaly_map<B: Backend>(
        &self,
        map: &AnomalyMapConfig,
        teacher: &[Tensor<B, 4>],
        students: &[Vec<Tensor<B, 4>>],
    ) -> Result<Tensor<B, 4>> {
        match self {
            Self::Stfpm => stfpm::anomaly_map(map, teacher, &students[0]),
            Self::Ensemble { mode, .. } => ensemble::anomaly_map(map, *mode, teacher, students),
            Self::SimpleStudent { .. } => simple_student::anomaly_map(map, teacher, &students[0]),
            Self::Decoupled { .. } => decoupled::anomaly_map(map, teacher, &students[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_default_configs() {
        for kind in [
            MethodKind::Stfpm,
            MethodKind::Ensemble,
            MethodKind::SimpleStudent,
            MethodKind::Decoupled,
        ] {
            let config = kind.default_config();
            assert_eq!(config.kind(), kind);
            assert_eq!(config.check(), Ok(()));
            let json = serde_json::to_string(&config).unwrap();
            let back: MethodConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, config, "{json}");
        }
        assert_eq!(MethodKind::Ensemble.default_config().num_students(), 3);
        assert_eq!(MethodConfig::simple_student().num_students(), 1);
    }

    #[test]
    fn impossible_settings_are_typed_errors() {
        assert_eq!(
            MethodConfig::ensemble(1).check(),
            Err(ConfigError::TooFewStudents(1))
        );
        assert_eq!(
            MethodConfig::ensemble(ensemble::MAX_STUDENTS + 1).check(),
            Err(ConfigError::TooManyStudents {
                got: ensemble::MAX_STUDENTS + 1,
                max: ensemble::MAX_STUDENTS
            })
        );
        let zero = MethodConfig::SimpleStudent {
            widths: [32, 0, 128, 256],
            expansion: 2,
        };
        assert_eq!(zero.check(), Err(ConfigError::ZeroWidth));
        // The bounds stop a corrupt detector header from asking for an impossible network.
        let wide = MethodConfig::SimpleStudent {
            widths: [32, 64, usize::MAX, 256],
            expansion: 2,
        };
        assert!(matches!(
            wide.check(),
            Err(ConfigError::WidthTooLarge {
                what: "width",
                got: usize::MAX,
                ..
            })
        ));
        let expanded = MethodConfig::SimpleStudent {
            widths: simple_student::DEFAULT_RESNET_WIDTHS,
            expansion: stad_backbones::mobilenet::MAX_EXPANSION + 1,
        };
        assert!(matches!(
            expanded.check(),
            Err(ConfigError::WidthTooLarge {
                what: "expansion",
                ..
            })
        ));
    }
}
