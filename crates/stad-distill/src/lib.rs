//! Student–teacher feature distillation losses.
//!
//! The loss of STFPM (Wang et al., 2021, "Student-Teacher Feature Pyramid Matching for
//! Anomaly Detection"): at every feature-pyramid layer `k` the teacher and student feature maps
//! (`[B, C_k, h_k, w_k]`) are L2-normalised over channels and the student is trained to match
//! the teacher:
//!
//! ```text
//! t̂ = t / max(‖t‖₂, eps)          ŝ = s / max(‖s‖₂, eps)          (norms over C, per position)
//! L_k = 1/(B·h_k·w_k) · Σ_{b,y,x} ‖t̂[b,:,y,x] − ŝ[b,:,y,x]‖²
//! L   = Σ_k L_k
//! ```
//!
//! # Reduction and learning rate
//!
//! This is exactly the loss of the official STFPM code
//! (`loss += torch.sum((t_feat[i] - s_feat[i]) ** 2, 1).mean()` after `F.normalize(·, dim=1)`):
//! squared error summed over channels, averaged over batch and positions, summed over layers.
//! Eq. 5 of the paper carries an extra factor `0.5`; it is dropped so that the reference
//! hyper-parameters (SGD, lr 0.4, momentum 0.9, weight decay 1e-4) mean here what they mean
//! there.
//!
//! anomalib's `STFPMLoss` instead computes, per layer,
//! `0.5 / (h_k·w_k) · Σ_{b,c,y,x} (t̂ − ŝ)²` (an `MSELoss(reduction="sum")`, i.e. summed over
//! the batch), so
//!
//! ```text
//! L_anomalib = (B / 2) · L        and        ∇L_anomalib = (B / 2) · ∇L
//! ```
//!
//! with `B` the batch size (the factor is the same for every layer). With plain SGD or SGD with
//! momentum, an anomalib learning rate `lr_a` corresponds to `lr = lr_a · B / 2` here; for the
//! update `lr·(∇L + λ·w)` to be identical the weight decay must also be rescaled,
//! `λ = λ_a · 2 / B`. Scale-invariant optimisers (Adam and relatives) need no conversion
//! beyond their `eps`.
//!
//! # Normalisation of zero vectors
//!
//! [`l2_normalize`] divides by `max(‖x‖, eps)` exactly like `torch.nn.functional.normalize`
//! (default `eps = 1e-12`, [`DEFAULT_EPS`]): an all-zero feature vector stays all-zero (no NaN),
//! and a vector shorter than `eps` is scaled by `1/eps` rather than normalised. The norm is
//! computed as `sqrt(max(‖x‖², eps²))`, which has the same value and keeps the gradient finite
//! at `x = 0` (the clamped branch has zero gradient, as in PyTorch). `eps²` must be
//! representable in the float type (`eps ≥ ~1e-19` for `f32`; the default `1e-12` is; for
//! `f16` pick `eps ≥ 1e-3`).

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

/// What can make a distillation loss impossible to compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistillError {
    /// No layers were given.
    #[error("the STFPM loss needs at least one layer")]
    EmptyLayers,
    /// The teacher and the student give different numbers of layers.
    #[error("the teacher gives {teacher} layers, the student {student}")]
    LayerCountMismatch {
        /// Teacher layers.
        teacher: usize,
        /// Student layers.
        student: usize,
    },
    /// A teacher and a student feature map differ in shape.
    #[error("layer {layer}: the teacher's map is {teacher:?}, the student's {student:?}")]
    ShapeMismatch {
        /// The layer (0-based; 0 for [`StfpmLoss::forward_layer`]).
        layer: usize,
        /// The teacher's `[B, C, h, w]`.
        teacher: [usize; 4],
        /// The student's `[B, C, h, w]`.
        student: [usize; 4],
    },
}

/// `eps` of `torch.nn.functional.normalize`, the default of [`StfpmLossConfig::eps`].
pub const DEFAULT_EPS: f64 = 1e-12;

/// L2-normalises a `[B, C, H, W]` feature map over channels (dim 1):
///
/// ```text
/// y[b,:,h,w] = x[b,:,h,w] / max(‖x[b,:,h,w]‖₂, eps)
/// ```
///
/// Same value as `torch.nn.functional.normalize(x, p=2, dim=1, eps=eps)`; an all-zero vector
/// maps to zero and its gradient stays finite (see the [crate docs](crate)).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 4>, eps: f64) -> Tensor<B, 4> {
    let norm = x.clone().square().sum_dim(1).clamp_min(eps * eps).sqrt();
    x / norm
}

/// Configuration of the STFPM distillation loss ([`StfpmLoss`], [`stfpm_loss`]).
#[derive(Config, Debug)]
pub struct StfpmLossConfig {
    /// Lower bound of the feature norm in [`l2_normalize`]; `1e-12` as in
    /// `torch.nn.functional.normalize`.
    #[config(default = 1e-12)]
    pub eps: f64,
}

impl StfpmLossConfig {
    /// Builds the loss.
    pub fn init(&self) -> StfpmLoss {
        StfpmLoss { eps: self.eps }
    }
}

/// The STFPM distillation loss, `L = Σ_k mean_{b,y,x} ‖t̂_k − ŝ_k‖²` (see the
/// [crate docs](crate) for the reduction). Built by [`StfpmLossConfig::init`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StfpmLoss {
    eps: f64,
}

impl Default for StfpmLoss {
    fn default() -> Self {
        StfpmLossConfig::new().init()
    }
}

impl StfpmLoss {
    /// The normalisation `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Loss of one layer, a one-element tensor:
    ///
    /// ```text
    /// L_k = 1/(B·h·w) · Σ_{b,y,x} Σ_c (t̂ − ŝ)²[b,c,y,x]
    /// ```
    ///
    /// The teacher is detached: no gradient flows into it.
    ///
    /// # Errors
    /// [`DistillError::ShapeMismatch`] (layer 0) when the two shapes differ.
    pub fn forward_layer<B: Backend>(
        &self,
        teacher: Tensor<B, 4>,
        student: Tensor<B, 4>,
    ) -> Result<Tensor<B, 1>, DistillError> {
        self.layer(0, teacher, student)
    }

    fn layer<B: Backend>(
        &self,
        layer: usize,
        teacher: Tensor<B, 4>,
        student: Tensor<B, 4>,
    ) -> Result<Tensor<B, 1>, DistillError> {
        if teacher.dims() != student.dims() {
            return Err(DistillError::ShapeMismatch {
                layer,
                teacher: teacher.dims(),
                student: student.dims(),
            });
        }
        // One fused pass on flex (see `stad_kernels::norm::stfpm_layer_loss`).
        let (teacher, student) =
            match stad_kernels::stfpm_layer_loss(teacher.detach(), student, self.eps) {
                Ok(loss) => return Ok(loss),
                Err(maps) => maps,
            };
        let t = l2_normalize(teacher, self.eps);
        let s = l2_normalize(student, self.eps);
        Ok((t - s).square().sum_dim(1).mean())
    }

    /// Loss over all layers, `L = Σ_k L_k` (a one-element tensor); see
    /// [`forward_layer`](Self::forward_layer).
    ///
    /// # Errors
    /// [`DistillError::EmptyLayers`], [`DistillError::LayerCountMismatch`] and
    /// [`DistillError::ShapeMismatch`] (naming the layer).
    pub fn forward<B: Backend>(
        &self,
        teacher: &[Tensor<B, 4>],
        student: &[Tensor<B, 4>],
    ) -> Result<Tensor<B, 1>, DistillError> {
        if teacher.is_empty() {
            return Err(DistillError::EmptyLayers);
        }
        if teacher.len() != student.len() {
            return Err(DistillError::LayerCountMismatch {
                teacher: teacher.len(),
                student: student.len(),
            });
        }
        let mut total: Option<Tensor<B, 1>> = None;
        for (k, (t, s)) in teacher.iter().zip(student).enumerate() {
            let layer = self.layer(k, t.clone(), s.clone())?;
            total = Some(match total {
                None => layer,
                Some(sum) => sum + layer,
            });
        }
        Ok(total.expect("at least one layer"))
    }
}

/// [`StfpmLoss::forward_layer`] with the default `eps` ([`DEFAULT_EPS`]):
/// `L_k = mean_{b,y,x} ‖t̂ − ŝ‖²`, the teacher detached.
///
/// # Errors
/// As [`StfpmLoss::forward_layer`].
pub fn layer_distillation_loss<B: Backend>(
    teacher: Tensor<B, 4>,
    student: Tensor<B, 4>,
) -> Result<Tensor<B, 1>, DistillError> {
    StfpmLoss::default().forward_layer(teacher, student)
}

/// [`StfpmLoss::forward`] with the default `eps` ([`DEFAULT_EPS`]):
/// `L = Σ_k mean_{b,y,x} ‖t̂_k − ŝ_k‖²`, the teacher detached.
///
/// # Errors
/// As [`StfpmLoss::forward`].
pub fn stfpm_loss<B: Backend>(
    teacher: &[Tensor<B, 4>],
    student: &[Tensor<B, 4>],
) -> Result<Tensor<B, 1>, DistillError> {
    StfpmLoss::default().forward(teacher, student)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, TensorData, Tolerance};

    type B = Flex;
    type AB = Autodiff<Flex>;

    fn scalar<Bk: Backend>(x: Tensor<Bk, 1>) -> f32 {
        x.into_data().to_vec::<f32>().unwrap()[0]
    }

    /// `[1, 2, 1, 2]`: two positions with hand-computable distances.
    /// Position 0: t = (3, 4) → (0.6, 0.8), s = (1, 0) → (1, 0): ‖·‖² = 0.16 + 0.64 = 0.8.
    /// Position 1: t = (0, 2) → (0, 1),     s = (0, −5) → (0, −1): ‖·‖² = 4.
    fn tiny<Bk: Backend>() -> (Tensor<Bk, 4>, Tensor<Bk, 4>) {
        let device = Default::default();
        let t = Tensor::from_data([[[[3.0f32, 0.0]], [[4.0, 2.0]]]], &device);
        let s = Tensor::from_data([[[[1.0f32, 0.0]], [[0.0, -5.0]]]], &device);
        (t, s)
    }

    #[test]
    fn normalize_matches_hand_values_and_keeps_zero_vectors() {
        let device = Default::default();
        let x = Tensor::<B, 4>::from_data([[[[3.0f32, 0.0]], [[4.0, 0.0]]]], &device);
        let y = l2_normalize(x, DEFAULT_EPS);
        y.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[[[0.6f32, 0.0]], [[0.8, 0.0]]]]),
            Tolerance::absolute(1e-7),
        );
    }

    #[test]
    fn tiny_tensor_value() {
        let (t, s) = tiny::<B>();
        let loss = scalar(layer_distillation_loss(t.clone(), s.clone()).unwrap());
        assert!((loss - 2.4).abs() < 1e-6, "loss {loss}");
        // Two identical layers sum.
        let total = scalar(stfpm_loss(&[t.clone(), t], &[s.clone(), s]).unwrap());
        assert!((total - 4.8).abs() < 1e-6, "total {total}");
    }

    #[test]
    fn zero_when_student_equals_teacher() {
        let device = Default::default();
        let t = Tensor::<B, 4>::random([2, 8, 5, 3], Distribution::Normal(0.0, 1.0), &device);
        let loss = scalar(stfpm_loss(std::slice::from_ref(&t), std::slice::from_ref(&t)).unwrap());
        assert!(loss.abs() < 1e-10, "loss {loss}");
        // Positive scaling does not change a normalised feature.
        let t = Tensor::<B, 4>::random([2, 8, 5, 3], Distribution::Normal(0.0, 1.0), &device);
        let loss = scalar(layer_distillation_loss(t.clone(), t * 3.5).unwrap());
        assert!(loss.abs() < 1e-10, "loss {loss}");
    }

    #[test]
    fn gradient_flows_to_student_only_and_matches_closed_form() {
        let (t, s) = tiny::<AB>();
        let t = t.require_grad();
        let s = s.require_grad();
        let loss = layer_distillation_loss(t.clone(), s.clone()).unwrap();
        let grads = loss.backward();
        assert!(t.grad(&grads).is_none(), "the teacher is detached");
        let g = s.grad(&grads).expect("the student gets a gradient");
        // d/ds of (1/N)‖t̂ − s/‖s‖‖² = −(2/N)/‖s‖ · (t̂ − (ŝ·t̂) ŝ), N = 2 positions.
        // Position 0: ‖s‖ = 1, ŝ = (1,0), t̂ = (0.6,0.8): t̂ − 0.6·ŝ = (0, 0.8) → (0, −0.8).
        // Position 1: ‖s‖ = 5, ŝ = (0,−1), t̂ = (0,1): t̂ − (−1)·ŝ = (0, 0) → (0, 0).
        g.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[[[0.0f32, 0.0]], [[-0.8, 0.0]]]]),
            Tolerance::absolute(1e-6),
        );
    }

    #[test]
    fn zero_student_vector_gives_finite_gradient() {
        let device = Default::default();
        let t = Tensor::<AB, 4>::from_data([[[[1.0f32]], [[1.0]]]], &device);
        let s = Tensor::<AB, 4>::from_data([[[[0.0f32]], [[0.0]]]], &device).require_grad();
        let loss = layer_distillation_loss(t, s.clone()).unwrap();
        assert!((scalar(loss.clone()) - 1.0).abs() < 1e-6);
        let g = s
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
    }

    #[test]
    fn mismatches_are_typed_errors_naming_the_layer() {
        let device = Default::default();
        let a = Tensor::<B, 4>::zeros([1, 4, 3, 3], &device);
        let b = Tensor::<B, 4>::zeros([1, 4, 2, 3], &device);
        assert_eq!(
            stfpm_loss::<B>(&[], &[]).unwrap_err(),
            DistillError::EmptyLayers
        );
        assert_eq!(
            stfpm_loss(std::slice::from_ref(&a), &[a.clone(), a.clone()]).unwrap_err(),
            DistillError::LayerCountMismatch {
                teacher: 1,
                student: 2
            }
        );
        assert_eq!(
            stfpm_loss(&[a.clone(), a.clone()], &[a.clone(), b]).unwrap_err(),
            DistillError::ShapeMismatch {
                layer: 1,
                teacher: [1, 4, 3, 3],
                student: [1, 4, 2, 3]
            }
        );
    }

    #[test]
    fn config_default_and_custom_eps() {
        let config = StfpmLossConfig::new();
        assert_eq!(config.eps, DEFAULT_EPS);
        let loss = StfpmLossConfig::new().with_eps(1.0).init();
        assert_eq!(loss.eps(), 1.0);
        // With eps = 1, a vector of norm 0.5 is divided by 1, not by 0.5.
        let device = Default::default();
        let t = Tensor::<B, 4>::from_data([[[[0.3f32]], [[0.4]]]], &device);
        let s = Tensor::<B, 4>::from_data([[[[0.0f32]], [[0.0]]]], &device);
        let v = scalar(loss.forward_layer(t, s).unwrap());
        assert!((v - 0.25).abs() < 1e-6, "{v}");
    }

    /// Independent host-side f64 computation of the loss on the reference fixtures.
    #[test]
    fn fixture_loss_matches_host_f64() {
        let device = Default::default();
        let mut teacher = Vec::new();
        let mut student = Vec::new();
        let mut expected = 0.0f64;
        for k in 1..=3 {
            let t = stad_testutil::read_fixture(&format!("teacher_layer{k}.npy"));
            let s = stad_testutil::read_fixture(&format!("student_layer{k}.npy"));
            assert_eq!(t.shape, s.shape);
            let [b, c, h, w]: [usize; 4] = t.shape.clone().try_into().unwrap();
            let hw = h * w;
            let mut layer = 0.0f64;
            for bi in 0..b {
                for p in 0..hw {
                    let at = |data: &[f32], ci: usize| f64::from(data[(bi * c + ci) * hw + p]);
                    let nt = (0..c).map(|ci| at(&t.data, ci).powi(2)).sum::<f64>().sqrt();
                    let ns = (0..c).map(|ci| at(&s.data, ci).powi(2)).sum::<f64>().sqrt();
                    let (nt, ns) = (nt.max(DEFAULT_EPS), ns.max(DEFAULT_EPS));
                    layer += (0..c)
                        .map(|ci| (at(&t.data, ci) / nt - at(&s.data, ci) / ns).powi(2))
                        .sum::<f64>();
                }
            }
            expected += layer / (b * hw) as f64;
            teacher.push(Tensor::<B, 4>::from_data(
                TensorData::new(t.data, t.shape),
                &device,
            ));
            student.push(Tensor::<B, 4>::from_data(
                TensorData::new(s.data, s.shape),
                &device,
            ));
        }
        let got = f64::from(scalar(stfpm_loss(&teacher, &student).unwrap()));
        let rel = (got - expected).abs() / expected;
        assert!(rel < 1e-5, "loss {got} vs host {expected} (rel {rel:e})");
    }
}
