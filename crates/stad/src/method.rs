//! The three methods and what distinguishes them: the number of students, their
//! architecture, and how their disagreement with the teacher becomes an anomaly map.

use burn::config::Config;
use stad_backbones::BackboneConfig;
use stad_scoring::{AnomalyMapConfig, EnsembleMode};

use crate::error::{Result, StadError};

/// Which student–teacher method.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// STFPM: one student with the teacher's architecture;
    /// `map = Π_k up(0.5·‖t̂_k − ŝ_k‖²)`.
    Stfpm,
    /// Students ensemble (Sol 1): N students from different seeds;
    /// `map = Π_k up(0.5·‖t̂_k − mean_s ŝ_s,k‖² + ‖std_s ŝ_s,k‖²)`.
    Ensemble,
    /// Simple Student (Sol 2): STFPM with a bottlenecked student (reduced inner widths,
    /// unchanged stage outputs).
    SimpleStudent,
}

impl MethodKind {
    /// Short name: `stfpm`, `ensemble`, `simple`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stfpm => "stfpm",
            Self::Ensemble => "ensemble",
            Self::SimpleStudent => "simple",
        }
    }
}

/// The most students an ensemble may have ([`MethodConfig::validate`]).
pub const MAX_ENSEMBLE_SIZE: usize = 64;

/// Configuration of a method.
#[derive(Config, Debug)]
pub struct MethodConfig {
    /// The method.
    pub kind: MethodKind,
    /// Students of the ensemble (ignored by the single-student methods). Default: 3.
    #[config(default = 3)]
    pub ensemble_size: usize,
    /// Simple Student on a ResNet: inner width of the blocks of `layer1..layer4`.
    /// Default: `[32, 64, 128, 256]` (half of ResNet18's).
    #[config(default = "[32, 64, 128, 256]")]
    pub simple_resnet_inner_widths: [usize; 4],
    /// Simple Student on a MobileNetV2: expansion ratio of the inverted residuals.
    /// Default: 2 (torchvision: 6).
    #[config(default = 2)]
    pub simple_mobilenet_expansion: usize,
    /// What an ensemble's layer map is made of. Default: error + variance.
    #[config(default = "EnsembleMode::Sum")]
    pub ensemble_mode: EnsembleMode,
    /// σ of the Gaussian smoothing of the final map, in pixels. Default: none.
    #[config(default = "None")]
    pub smoothing_sigma: Option<f64>,
}

impl MethodConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.kind == MethodKind::Ensemble && self.ensemble_size < 2 {
            return Err(StadError::InvalidConfig(format!(
                "an ensemble needs at least 2 students, got {}",
                self.ensemble_size
            )));
        }
        if self.kind == MethodKind::Ensemble && self.ensemble_size > MAX_ENSEMBLE_SIZE {
            return Err(StadError::InvalidConfig(format!(
                "an ensemble has at most {MAX_ENSEMBLE_SIZE} students (the thesis uses 3), got {}",
                self.ensemble_size
            )));
        }
        if self.simple_resnet_inner_widths.contains(&0) || self.simple_mobilenet_expansion == 0 {
            return Err(StadError::InvalidConfig(
                "Simple Student widths must be positive".into(),
            ));
        }
        if let Some(s) = self.smoothing_sigma
            && !(s.is_finite() && s > 0.0)
        {
            return Err(StadError::InvalidConfig(format!(
                "smoothing sigma must be positive, got {s}"
            )));
        }
        Ok(())
    }

    /// Number of students.
    pub fn num_students(&self) -> usize {
        match self.kind {
            MethodKind::Ensemble => self.ensemble_size,
            _ => 1,
        }
    }

    /// The students' architecture for a teacher of architecture `teacher`.
    pub fn student_backbone(&self, teacher: &BackboneConfig) -> BackboneConfig {
        match self.kind {
            MethodKind::SimpleStudent => teacher.with_reduced_width(
                self.simple_resnet_inner_widths,
                self.simple_mobilenet_expansion,
            ),
            _ => teacher.clone(),
        }
    }

    /// The anomaly-map configuration for inputs of `size`.
    pub fn map_config(&self, size: [usize; 2]) -> AnomalyMapConfig {
        AnomalyMapConfig::new(size)
            .with_smoothing_sigma(self.smoothing_sigma)
            .with_ensemble_mode(self.ensemble_mode)
    }
}
