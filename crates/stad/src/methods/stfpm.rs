//! STFPM (Wang et al., 2021): one student with the teacher's architecture.
//!
//! - **Students**: one, the teacher's architecture, randomly initialised.
//! - **Loss** (the official code's reduction, [`stad_distill`]):
//!   `L = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²`, `t̂`/`ŝ` L2-normalised over channels.
//! - **Map**: per layer `m_k = 0.5·‖t̂_k − ŝ_k‖²`, upsampled to the input and multiplied,
//!   `map = Π_k up(m_k)` ([`stad_scoring::stfpm_layer_map`]).

use burn::prelude::*;
use stad_backbones::BackboneConfig;
use stad_scoring::AnomalyMapConfig;

use crate::error::Result;

/// The student has the teacher's architecture.
pub fn student_backbone(teacher: &BackboneConfig) -> BackboneConfig {
    teacher.clone()
}

/// The STFPM loss `L = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²` of one student (the teacher detached).
///
/// # Errors
/// [`crate::StadError::Distill`] when the layer lists or shapes differ.
pub fn loss<B: Backend>(
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 1>> {
    Ok(stad_distill::stfpm_loss(teacher, student)?)
}

/// The STFPM map `Π_k up(0.5·‖t̂_k − ŝ_k‖²)` (then `map`'s smoothing, if any).
///
/// # Errors
/// [`crate::StadError::Scoring`] when the layers do not fit.
pub fn anomaly_map<B: Backend>(
    map: &AnomalyMapConfig,
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 4>> {
    Ok(map.stfpm_map(teacher, student)?)
}
