//! Differences between a device's values and the reference's, and moving a module's values
//! from one backend to another.
//!
//! The relative difference is taken against the reference's scale, not element by element:
//! `rel = max_i |a_i − r_i| / max_i |r_i|`. An element-wise ratio explodes where the reference
//! crosses zero (a feature after ReLU, a map where teacher and student agree), which says
//! nothing about the kernels; the scale-relative one is what float32 rounding bounds (a sum
//! of `K` products computed in another order differs by about `√K · ε · Σ|terms|`).
//!
//! The L2 one, `‖a − r‖₂ / ‖r‖₂`, judges a vector as a whole: it is what a weight update is
//! checked with. A training step's gradient passes ReLU masks and pooling choices, and where
//! rounding flips one (a value within 10⁻⁶ of 0), one position's contribution moves to
//! another: a few per cent of a small tensor's update, little of the whole.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The largest differences of a device's values from the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Values compared.
    pub values: usize,
    /// `max |a − r|` (infinite when a value is NaN or infinite on either side, or the shapes
    /// differ).
    pub max_abs: f64,
    /// The reference's scale, `max |r|`.
    pub scale: f64,
    /// `max |a − r| / max |r|` (0 when both are exactly 0).
    pub max_rel: f64,
    /// `‖a − r‖₂ / ‖r‖₂` (0 when both are exactly 0).
    pub l2_rel: f64,
    /// `Σ (a − r)²`, to combine differences.
    pub sum_sq_diff: f64,
    /// `Σ r²`, to combine differences.
    pub sum_sq_reference: f64,
}

impl Diff {
    /// The differences of `actual` from `reference` (values in the same order).
    pub fn of(actual: &[f32], reference: &[f32]) -> Self {
        if actual.len() != reference.len() {
            return Self::mismatch(reference.len());
        }
        let mut max_abs = 0.0f64;
        let mut scale = 0.0f64;
        let (mut sum_sq_diff, mut sum_sq_reference) = (0.0f64, 0.0f64);
        for (&a, &r) in actual.iter().zip(reference) {
            let (a, r) = (f64::from(a), f64::from(r));
            let d = if a.is_finite() && r.is_finite() {
                (a - r).abs()
            } else {
                f64::INFINITY
            };
            max_abs = max_abs.max(d);
            scale = scale.max(r.abs());
            sum_sq_diff += d * d;
            sum_sq_reference += r * r;
        }
        Self::from_sums(
            reference.len(),
            max_abs,
            scale,
            sum_sq_diff,
            sum_sq_reference,
        )
    }

    /// The relative differences derived from the maxima and the sums of squares.
    fn from_sums(
        values: usize,
        max_abs: f64,
        scale: f64,
        sum_sq_diff: f64,
        sum_sq_reference: f64,
    ) -> Self {
        Self {
            values,
            max_abs,
            scale,
            max_rel: relative(max_abs, scale),
            l2_rel: relative(sum_sq_diff.sqrt(), sum_sq_reference.sqrt()),
            sum_sq_diff,
            sum_sq_reference,
        }
    }

    /// Shapes that differ: an infinite difference.
    pub fn mismatch(values: usize) -> Self {
        Self {
            values,
            max_abs: f64::INFINITY,
            scale: 0.0,
            max_rel: f64::INFINITY,
            l2_rel: f64::INFINITY,
            sum_sq_diff: f64::INFINITY,
            sum_sq_reference: 0.0,
        }
    }

    /// The differences of two sets of values taken together.
    pub fn combine(self, other: Self) -> Self {
        Self::from_sums(
            self.values + other.values,
            self.max_abs.max(other.max_abs),
            self.scale.max(other.scale),
            self.sum_sq_diff + other.sum_sq_diff,
            self.sum_sq_reference + other.sum_sq_reference,
        )
    }
}

/// `d / scale`, 0 for `0 / 0`.
pub fn relative(d: f64, scale: f64) -> f64 {
    if d == 0.0 {
        0.0
    } else if scale > 0.0 {
        d / scale
    } else {
        f64::INFINITY
    }
}

/// A tensor's values on the host, as f32.
pub fn host<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float data converts to f32")
}

/// The differences of each pair of tensors (the same shapes), taken together, and the index
/// of the pair with the largest scale-relative difference (its own scale).
pub fn tensors<A: Backend, R: Backend, const D: usize>(
    actual: &[Tensor<A, D>],
    reference: &[Tensor<R, D>],
) -> (Diff, usize) {
    if actual.len() != reference.len() || reference.is_empty() {
        return (Diff::mismatch(0), 0);
    }
    let diffs: Vec<Diff> = actual
        .iter()
        .zip(reference)
        .map(|(a, r)| {
            if a.dims() == r.dims() {
                Diff::of(&host(a.clone()), &host(r.clone()))
            } else {
                Diff::mismatch(r.shape().num_elements())
            }
        })
        .collect();
    let worst = (0..diffs.len())
        .max_by(|&i, &j| diffs[i].max_rel.total_cmp(&diffs[j].max_rel))
        .unwrap_or(0);
    let all = diffs
        .into_iter()
        .reduce(Diff::combine)
        .expect("at least one pair");
    (all, worst)
}

/// One float tensor of a module: its path (`layer1.0.conv1.weight`), shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValues {
    /// The path of the tensor in the module.
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// Every float tensor of `module` (parameters and BatchNorm running statistics), in the
/// module's visiting order.
pub fn module_values<B: Backend, M: Module<B>>(module: &M) -> Vec<NamedValues> {
    struct Collect {
        path: Vec<String>,
        out: Vec<NamedValues>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let tensor = param.val();
            self.out.push(NamedValues {
                path: self.path.join("."),
                shape: tensor.dims().to_vec(),
                values: host(tensor),
            });
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// `module` with every float tensor replaced, in visiting order, by `values` (as
/// [`module_values`] gives them, possibly from another backend), on `device`. Which
/// tensors require a gradient is kept.
///
/// # Panics
/// When `values` do not fit `module` (another architecture): a programming error.
pub fn load_values<B: Backend, M: Module<B>>(
    module: M,
    values: &[NamedValues],
    device: &B::Device,
) -> M {
    struct Load<'a, B: Backend> {
        values: std::slice::Iter<'a, NamedValues>,
        device: &'a B::Device,
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let next = self
                .values
                .next()
                .expect("as many tensors as the module has");
            param.map(|t| {
                assert_eq!(t.dims().as_slice(), next.shape.as_slice(), "{}", next.path);
                let data = TensorData::new(next.values.clone(), next.shape.clone());
                Tensor::<B, D>::from_data(data, self.device).set_require_grad(t.is_require_grad())
            })
        }
    }
    let mut load = Load {
        values: values.iter(),
        device,
    };
    let module = module.map(&mut load);
    assert!(
        load.values.next().is_none(),
        "as many tensors as the module has"
    );
    module
}

/// How a device's update of a module compares with the reference's: the update
/// `Δ = after − before` of every tensor on each side, the differences of all of them taken
/// together (the check is on their `l2_rel`), and the path of the tensor that holds most of
/// the difference (the largest `Σ (Δ_a − Δ_r)²`).
///
/// Comparing updates rather than the weights after the step is what makes this a check of
/// the gradients: `θ' = θ − η·v`, and the weights alone would hide an error in `v` under the
/// larger `θ`.
pub fn updates(
    before: &[NamedValues],
    after: &[NamedValues],
    reference_before: &[NamedValues],
    reference_after: &[NamedValues],
) -> (Diff, String) {
    let delta = |a: &NamedValues, b: &NamedValues| -> Vec<f32> {
        a.values.iter().zip(&b.values).map(|(x, y)| x - y).collect()
    };
    if before.is_empty()
        || before.len() != after.len()
        || reference_before.len() != reference_after.len()
        || before.len() != reference_before.len()
    {
        return (Diff::mismatch(0), "the modules' tensors differ".into());
    }
    let mut all: Option<Diff> = None;
    let mut worst = (f64::NEG_INFINITY, String::new());
    for ((a, b), (ra, rb)) in after
        .iter()
        .zip(before)
        .zip(reference_after.iter().zip(reference_before))
    {
        let d = if a.shape == ra.shape && b.shape == ra.shape && rb.shape == ra.shape {
            Diff::of(&delta(a, b), &delta(ra, rb))
        } else {
            Diff::mismatch(ra.values.len())
        };
        if d.sum_sq_diff > worst.0 || d.sum_sq_diff.is_nan() {
            worst = (d.sum_sq_diff, ra.path.clone());
        }
        all = Some(match all {
            None => d,
            Some(w) => w.combine(d),
        });
    }
    (all.expect("at least one tensor"), worst.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = stad::backend::Cpu;

    #[test]
    fn the_difference_is_relative_to_the_reference_scale() {
        let d = Diff::of(&[1.0, 0.0, -2.0], &[1.0, 0.001, -4.0]);
        assert_eq!(d.values, 3);
        assert_eq!(d.max_abs, 2.0);
        assert_eq!(d.scale, 4.0);
        assert_eq!(d.max_rel, 0.5);
        // An element-wise ratio would be 1 at the near-zero element; against the scale it is
        // 0.001 / 4.
        let d = Diff::of(&[1.0, 0.0], &[1.0, 0.001]);
        assert!((d.max_rel - 0.001).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn non_finite_values_and_other_lengths_are_infinitely_different() {
        assert_eq!(Diff::of(&[f32::NAN], &[1.0]).max_rel, f64::INFINITY);
        assert_eq!(Diff::of(&[1.0], &[f32::INFINITY]).max_abs, f64::INFINITY);
        assert_eq!(Diff::of(&[1.0], &[1.0, 2.0]).max_rel, f64::INFINITY);
        assert_eq!(Diff::of(&[0.0], &[0.0]).max_rel, 0.0);
    }

    #[test]
    fn module_values_round_trip_through_another_backend() {
        use burn::backend::NdArray;
        let config = stad::backbones::BackboneConfig::resnet18();
        let device = Default::default();
        let source = stad::seeded_init(config.init::<B>(&device).unwrap(), 3, &device);
        let values = module_values(&source);
        assert!(
            values.iter().any(|v| v.path.ends_with("conv1.weight")),
            "{:?}",
            values[0].path
        );
        let target = config.init::<NdArray>(&Default::default()).unwrap();
        let loaded = load_values(target, &values, &Default::default());
        assert_eq!(module_values(&loaded), values);
    }

    #[test]
    fn an_update_error_is_found_even_when_the_weights_hide_it() {
        // Two tensors: `a` moves by 0.1 on both sides, `b` by 0.1 on the reference only half.
        let t = |path: &str, values: Vec<f32>| NamedValues {
            path: path.into(),
            shape: vec![values.len()],
            values,
        };
        let before = vec![t("a", vec![10.0, 10.0]), t("b", vec![1.0])];
        let reference_after = vec![t("a", vec![9.9, 10.0]), t("b", vec![0.9])];
        // The device moves `b` by 0.05 instead of 0.1: 0.5 % of the weight, 50 % of the update.
        let after = vec![t("a", vec![9.9, 10.0]), t("b", vec![0.95])];
        let (d, worst) = updates(&before, &after, &before, &reference_after);
        assert_eq!(worst, "b");
        // ‖(0, 0, 0.05)‖ / ‖(0.1, 0, 0.1)‖ = 0.05 / 0.1414.
        assert!((d.l2_rel - 0.05 / 0.02f64.sqrt()).abs() < 1e-4, "{d:?}");
        assert!((d.max_rel - 0.5).abs() < 1e-4, "{d:?}");
        assert_eq!(d.values, 3);
        let (same, _) = updates(&before, &reference_after, &before, &reference_after);
        assert_eq!(same.max_rel, 0.0);
    }

    #[test]
    fn tensors_name_the_worst_pair() {
        let device = Default::default();
        let r = [
            Tensor::<B, 1>::from_floats([1.0, 2.0], &device),
            Tensor::<B, 1>::from_floats([1.0], &device),
        ];
        let a = [
            Tensor::<B, 1>::from_floats([1.0, 2.0], &device),
            Tensor::<B, 1>::from_floats([1.5], &device),
        ];
        let (d, i) = tensors(&a, &r);
        assert_eq!(i, 1, "0.5 of its own scale");
        assert_eq!(d.max_rel, 0.25, "0.5 of the scale of all");
        assert_eq!(d.values, 3);
        let (d, _) = tensors(&a[..1], &r);
        assert_eq!(d.max_rel, f64::INFINITY, "a missing tensor fails");
    }
}
