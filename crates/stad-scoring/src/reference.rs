//! Straightforward reference formulations of the layer maps and of the upsampling.
//!
//! They spell the formulas out as PyTorch code would (normalise, subtract, square, sum) and
//! keep the relative accuracy of `f32` everywhere. The public kernels in the crate root
//! ([`stfpm_layer_map`](crate::stfpm_layer_map), [`ensemble_layer_maps`](crate::ensemble_layer_maps))
//! compute the same values faster; the tests check the two against each other and the
//! benchmark (`cargo bench -p stad-scoring`) times both.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, backend::Backend};

use crate::ScoringError;
use crate::layer::{NORM_EPS, check_same_shape};

/// `x / max(‖x‖₂, NORM_EPS)` over channels (dim 1), as `torch.nn.functional.normalize(x,
/// dim=1)`: the workspace's one L2-normalisation, [`stad_distill::l2_normalize`] (the norm
/// computed as `sqrt(max(‖x‖², eps²))`, the convention of the fused kernels too).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    stad_distill::l2_normalize(x, NORM_EPS)
}

/// Reference for [`stfpm_layer_map`](crate::stfpm_layer_map):
/// `e = 0.5 · ‖t̂ − ŝ‖²` over channels, `[B, 1, h, w]`.
///
/// # Errors
/// [`ScoringError::ShapeMismatch`] when the shapes differ.
pub fn stfpm_layer_map<B: Backend>(
    teacher: Tensor<B, 4>,
    student: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, ScoringError> {
    check_same_shape(&teacher, &student, None)?;
    let diff = l2_normalize(teacher) - l2_normalize(student);
    Ok(diff.square().sum_dim(1) * 0.5)
}

/// Reference for [`ensemble_layer_maps`](crate::ensemble_layer_maps): stacks the normalised
/// students to `[S, B, C, h, w]` and takes the population mean and variance over `S`;
/// returns `(0.5·‖t̂ − mean_s ŝ_s‖², Σ_c var_s ŝ_s)`, each `[B, 1, h, w]`.
///
/// # Errors
/// As [`ensemble_layer_maps`](crate::ensemble_layer_maps).
pub fn ensemble_layer_maps<B: Backend>(
    teacher: Tensor<B, 4>,
    students: &[Tensor<B, 4>],
) -> Result<(Tensor<B, 4>, Tensor<B, 4>), ScoringError> {
    if students.is_empty() {
        return Err(ScoringError::NoStudents);
    }
    for (i, s) in students.iter().enumerate() {
        check_same_shape(&teacher, s, Some(i))?;
    }
    let normalised: Vec<Tensor<B, 4>> = students.iter().cloned().map(l2_normalize).collect();
    let stacked: Tensor<B, 5> = Tensor::stack(normalised, 0);
    let (var, mean) = stacked.var_mean_bias(0);
    let mean: Tensor<B, 4> = mean.squeeze_dim(0);
    let var: Tensor<B, 4> = var.squeeze_dim(0);
    let error = (l2_normalize(teacher) - mean).square().sum_dim(1) * 0.5;
    Ok((error, var.sum_dim(1)))
}

/// Reference for [`upsample_bilinear`](crate::upsample_bilinear): burn's
/// `interpolate(x, size, Bilinear)` with `align_corners = false` (burn's
/// `InterpolateOptions::new` defaults to `true`, PyTorch to `false`).
pub fn upsample_bilinear<B: Backend>(map: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    interpolate(
        map,
        size,
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false),
    )
}
