//! The students ensemble with feature variance (the thesis' Sol 1).
//!
//! - **Students**: `N` (default [`DEFAULT_STUDENTS`]) with the teacher's architecture, student
//!   `s` initialised from seed `seed + s`, so that they differ.
//! - **Loss**: every student is trained on its own with the STFPM loss
//!   `L_s = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_s,k‖²` and its own optimizer.
//! - **Map**: per layer the regression error of the mean student plus the students' variance,
//!
//!   ```text
//!   e_k = 0.5·‖t̂_k − mean_s ŝ_s,k‖²      v_k = ‖std_s ŝ_s,k‖²  (population std)
//!   m_k = e_k + v_k                      map = Π_k up(m_k)
//!   ```
//!
//!   ([`stad_scoring::ensemble_layer_maps`]); [`EnsembleMode`] keeps one of the two terms.

use burn::prelude::*;
use stad_scoring::{AnomalyMapConfig, EnsembleMode};

use crate::error::{ConfigError, Result};

/// Students of the default ensemble (the thesis').
pub const DEFAULT_STUDENTS: usize = 3;
/// The most students an ensemble may have.
pub const MAX_STUDENTS: usize = 64;

/// Checks the number of students, `2..=MAX_STUDENTS`.
///
/// # Errors
/// [`ConfigError::TooFewStudents`] / [`ConfigError::TooManyStudents`] outside that range.
pub fn check(students: usize) -> Result<(), ConfigError> {
    if students < 2 {
        Err(ConfigError::TooFewStudents(students))
    } else if students > MAX_STUDENTS {
        Err(ConfigError::TooManyStudents {
            got: students,
            max: MAX_STUDENTS,
        })
    } else {
        Ok(())
    }
}

/// One member's loss: STFPM's, `L_s = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_s,k‖²`.
///
/// # Errors
/// [`crate::StadError::Distill`] when the layer lists or shapes differ.
pub fn student_loss<B: Backend>(
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 1>> {
    crate::methods::stfpm::loss(teacher, student)
}

/// The ensemble map `Π_k up(m_k)` with `m_k` as `mode` says (`e_k + v_k` by default).
///
/// # Errors
/// [`crate::StadError::Scoring`] when the layers do not fit or there are no students.
pub fn anomaly_map<B: Backend>(
    map: &AnomalyMapConfig,
    mode: EnsembleMode,
    teacher: &[Tensor<B, 4>],
    students: &[Vec<Tensor<B, 4>>],
) -> Result<Tensor<B, 4>> {
    Ok(map
        .clone()
        .with_ensemble_mode(mode)
        .ensemble_map(teacher, students)?)
}
