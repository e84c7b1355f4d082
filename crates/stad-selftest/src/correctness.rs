//! The correctness checks: the same networks, weights and inputs on the device and on the
//! reference backend, in one process, and the largest differences of what they compute.
//!
//! Every check builds its networks on both backends from the same values: the embedded
//! ImageNet MobileNetV2 teacher (and a seeded random ResNet18, the thesis' architecture),
//! students from [`stad::seeded_init`] moved value by value to the device, and seeded
//! random images. What is compared:
//!
//! | check | values |
//! |---|---|
//! | teacher features | the three taps of each teacher |
//! | `<method>` maps, image scores | [`StudentTeacher::score`] |
//! | `<method>` training loss | the loss before one step ([`StudentOptimizers::step`], the trainer's) |
//! | `<method>` weight update | `θ' − θ` of every student tensor after that step |

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use stad::Student;
use stad::StudentOptimizers;
use stad::backbones::BackboneConfig;
use stad::data::SplitMix64;
use stad::{MethodConfig, MethodKind, ModelConfig, StudentTeacher, TeacherWeights, TrainConfig};

use crate::compare::{self, Diff};
use crate::error::Result;

/// Tolerances of the checks, on the difference each check's [`Criterion`] names.
///
/// float32 has `ε = 6·10⁻⁸`. Two correct backends differ in the order of their sums (im2col +
/// GEMM against direct loops, blocked against sequential reductions): a sum of `K` terms then
/// differs by up to `K·ε` of the terms' magnitude, `K` up to 576·9 in a convolution, grown
/// over ~20 layers. Measured (README "Backends"), ndarray's float32 against flex: forward
/// values within 2·10⁻⁴ of their scale (a random ResNet18's deepest tap), losses within
/// 3·10⁻⁶. GPUs may multiply float32 through TF32 tensor cores (10-bit mantissa, `~5·10⁻⁴` a
/// product); the forward tolerance leaves room for that, and stays far below what a wrong
/// kernel gives (a wrong padding, stride or transposed weight moves values by 10–100 % of
/// their scale).
///
/// A weight update is the worst-conditioned value of all: the first layers' gradients are
/// small differences of large terms after some 17 BatchNorm backward passes, and a ReLU(6)
/// mask that rounding flips moves one position's contribution. ndarray's float32 update
/// differs from flex's by 3–5 % in L2 (MobileNetV2's stem, 64² and 128²), while flex is within
/// 10⁻⁵ of the same step computed in float64 (ndarray in f64): the tolerance is 10 %, twice
/// the largest correct difference measured; a wrong gradient kernel is uncorrelated with the
/// right one in the layers it touches and gives 30–140 %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Teacher features, maps and image scores (max relative). Default: 2·10⁻³.
    pub forward: f64,
    /// The training loss, a mean over every position (max relative). Default: 10⁻³.
    pub loss: f64,
    /// The weight update of one SGD step (L2 relative). Default: 0.1.
    pub update: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            forward: 2e-3,
            loss: 1e-3,
            update: 0.1,
        }
    }
}

/// Which relative difference a check's tolerance applies to ([`crate::compare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// `max |a − r| / max |r|`: every value (features, maps, scores, losses).
    MaxRelative,
    /// `‖a − r‖₂ / ‖r‖₂`: the vector as a whole (a weight update).
    L2Relative,
}

/// One correctness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was compared, e.g. `stfpm maps`.
    pub name: String,
    /// The differences.
    pub diff: Diff,
    /// Where the difference is largest (a tap, a tensor's path).
    pub worst: String,
    /// The difference the tolerance applies to.
    pub criterion: Criterion,
    /// The tolerance.
    pub tolerance: f64,
    /// The difference is within the tolerance (NaN is not).
    pub passed: bool,
}

impl Check {
    fn new(
        name: impl Into<String>,
        diff: Diff,
        worst: impl Into<String>,
        criterion: Criterion,
        tolerance: f64,
    ) -> Self {
        let value = match criterion {
            Criterion::MaxRelative => diff.max_rel,
            Criterion::L2Relative => diff.l2_rel,
        };
        Self {
            name: name.into(),
            diff,
            worst: worst.into(),
            criterion,
            tolerance,
            passed: value <= tolerance,
        }
    }

    /// The difference the tolerance applies to.
    pub fn value(&self) -> f64 {
        match self.criterion {
            Criterion::MaxRelative => self.diff.max_rel,
            Criterion::L2Relative => self.diff.l2_rel,
        }
    }
}

/// What the correctness checks run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckConfig {
    /// Side of the square random images.
    pub image_size: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Seed of the images and the students.
    pub seed: u64,
    /// The tolerances.
    pub tolerances: Tolerances,
}

impl CheckConfig {
    /// 2 images of 128² (the three taps are then 32², 16² and 8²).
    pub fn standard() -> Self {
        Self {
            image_size: 128,
            batch_size: 2,
            seed: 17,
            tolerances: Tolerances::default(),
        }
    }

    /// 2 images of 64²: the same checks in a fraction of the time (CI).
    pub fn quick() -> Self {
        Self {
            image_size: 64,
            ..Self::standard()
        }
    }
}

/// `n` values of a standard normal distribution (SplitMix64 + Box–Muller), the same on every
/// machine: normalised images have mean 0 and standard deviation 1.
pub fn seeded_normal(n: usize, seed: u64) -> Vec<f32> {
    SplitMix64::new(seed).normals(n, 1.0)
}

/// Seeded random images `[batch, 3, size, size]` on `device`.
pub fn seeded_images<B: Backend>(
    batch: usize,
    size: usize,
    seed: u64,
    device: &B::Device,
) -> Tensor<B, 4> {
    let data = TensorData::new(
        seeded_normal(batch * 3 * size * size, seed),
        [batch, 3, size, size],
    );
    Tensor::from_data(data, device)
}

/// Runs every correctness check of `D` (on `device`) against `R` (on `reference`).
///
/// # Errors
/// When a model cannot be built (a build without the embedded teacher).
pub fn run<R: AutodiffBackend, D: AutodiffBackend>(
    config: &CheckConfig,
    reference: &R::Device,
    device: &D::Device,
) -> Result<Vec<Check>> {
    let tol = config.tolerances;
    let (b, s) = (config.batch_size, config.image_size);
    let images_r = seeded_images::<R::InnerBackend>(b, s, config.seed, reference);
    let images_d = seeded_images::<D::InnerBackend>(b, s, config.seed, device);
    let mut checks = Vec::new();

    // The ResNet18 teacher with random weights: the thesis' architecture.
    let resnet = ModelConfig::new(
        BackboneConfig::resnet18(),
        TeacherWeights::Random(config.seed),
        MethodKind::Stfpm.default_config(),
    )
    .with_image_size(s);
    let teacher_r = resnet.build_teacher::<R::InnerBackend>(reference)?;
    let teacher_d = resnet.build_teacher::<D::InnerBackend>(device)?;
    checks.push(features_check(
        "teacher features (ResNet18, random)",
        &teacher_r.features(images_r.clone()),
        &teacher_d.features(images_d.clone()),
        tol.forward,
    ));

    let embedded =
        |kind: MethodKind| ModelConfig::embedded(kind.default_config()).with_image_size(s);
    let teacher_r = embedded(MethodKind::Stfpm).build_teacher::<R::InnerBackend>(reference)?;
    let teacher_d = embedded(MethodKind::Stfpm).build_teacher::<D::InnerBackend>(device)?;
    let targets_r = teacher_r.features(images_r.clone());
    let targets_d = teacher_d.features(images_d.clone());
    checks.push(features_check(
        "teacher features (MobileNetV2, ImageNet)",
        &targets_r,
        &targets_d,
        tol.forward,
    ));

    for kind in [
        MethodKind::Stfpm,
        MethodKind::Ensemble,
        MethodKind::SimpleStudent,
    ] {
        let model = embedded(kind);
        let students_r = model.init_students::<R>(config.seed, reference)?;
        let students_d: Vec<Student<D>> = students_r
            .iter()
            .zip(model.init_students::<D>(config.seed.wrapping_add(1000), device)?)
            .map(|(r, d)| compare::load_values(d, &compare::module_values(r), device))
            .collect();
        let name = kind.name();
        checks.extend(map_checks(
            name,
            &scored(
                model.init_seeded::<R::InnerBackend>(config.seed, reference)?,
                &students_r,
                images_r.clone(),
            )?,
            &scored(
                model.init_seeded::<D::InnerBackend>(config.seed, device)?,
                &students_d,
                images_d.clone(),
            )?,
            tol.forward,
        ));
        let step_r = training_step(&model.method, students_r, images_r.clone(), &targets_r)?;
        let step_d = training_step(&model.method, students_d, images_d.clone(), &targets_d)?;
        let loss = Diff::of(&step_d.losses, &step_r.losses);
        checks.push(Check::new(
            format!("{name} training loss"),
            loss,
            "",
            Criterion::MaxRelative,
            tol.loss,
        ));
        let mut update: Option<(Diff, String)> = None;
        for (i, (d, r)) in step_d.students.iter().zip(&step_r.students).enumerate() {
            let (diff, path) = compare::updates(&d.0, &d.1, &r.0, &r.1);
            let path = if step_r.students.len() > 1 {
                format!("student {i}: {path}")
            } else {
                path
            };
            update = Some(match update {
                None => (diff, path),
                Some((w, p)) => {
                    let worse = diff.sum_sq_diff > w.sum_sq_diff;
                    (w.combine(diff), if worse { path } else { p })
                }
            });
        }
        let (diff, worst) = update.unwrap_or((Diff::mismatch(0), String::new()));
        checks.push(Check::new(
            format!("{name} weight update"),
            diff,
            worst,
            Criterion::L2Relative,
            tol.update,
        ));
    }
    Ok(checks)
}

fn features_check<A: Backend, R: Backend>(
    name: &str,
    reference: &[Tensor<R, 4>],
    actual: &[Tensor<A, 4>],
    tolerance: f64,
) -> Check {
    let (diff, tap) = compare::tensors(actual, reference);
    Check::new(
        name,
        diff,
        format!("tap {}", tap + 1),
        Criterion::MaxRelative,
        tolerance,
    )
}

/// Maps and image scores on the host.
struct Scored {
    maps: Vec<f32>,
    scores: Vec<f32>,
}

fn scored<A: AutodiffBackend>(
    base: StudentTeacher<A::InnerBackend>,
    students: &[Student<A>],
    images: Tensor<A::InnerBackend, 4>,
) -> Result<Scored> {
    use burn::module::AutodiffModule;
    let st = base.with_students(students.iter().map(|s| s.valid()).collect())?;
    let (scores, maps) = st.score(images)?;
    Ok(Scored {
        maps: compare::host(maps),
        scores: compare::host(scores),
    })
}

fn map_checks(name: &str, reference: &Scored, actual: &Scored, tolerance: f64) -> [Check; 2] {
    [
        Check::new(
            format!("{name} maps"),
            Diff::of(&actual.maps, &reference.maps),
            "",
            Criterion::MaxRelative,
            tolerance,
        ),
        Check::new(
            format!("{name} image scores"),
            Diff::of(&actual.scores, &reference.scores),
            "",
            Criterion::MaxRelative,
            tolerance,
        ),
    ]
}

/// The losses of one step, and each student's values before and after it.
struct Stepped {
    losses: Vec<f32>,
    students: Vec<(Vec<compare::NamedValues>, Vec<compare::NamedValues>)>,
}

/// One step of the trainer's optimizers (thesis settings: lr 0.4, momentum 0.9, weight decay
/// 10⁻⁴) on fresh students.
fn training_step<A: AutodiffBackend>(
    method: &MethodConfig,
    students: Vec<Student<A>>,
    images: Tensor<A::InnerBackend, 4>,
    targets: &[Tensor<A::InnerBackend, 4>],
) -> Result<Stepped> {
    let before: Vec<_> = students.iter().map(compare::module_values).collect();
    let targets: Vec<Tensor<A, 4>> = targets.iter().cloned().map(Tensor::from_inner).collect();
    let mut optimizers = StudentOptimizers::<A>::new(&TrainConfig::new(), method);
    let (stepped, losses) = optimizers.step(students, Tensor::from_inner(images), &targets)?;
    Ok(Stepped {
        losses,
        students: before
            .into_iter()
            .zip(stepped.iter().map(compare::module_values))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_normal_is_standard_and_reproducible() {
        let v = seeded_normal(20_001, 3);
        assert_eq!(v.len(), 20_001);
        assert_eq!(v, seeded_normal(20_001, 3));
        assert_ne!(v[..10], seeded_normal(10, 4)[..]);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        // Standard errors: 1/√n = 0.007 for the mean, √(2/n) = 0.01 for the variance.
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn a_failed_check_is_reported_as_failed() {
        let max = Criterion::MaxRelative;
        let c = Check::new("x", Diff::of(&[1.1], &[1.0]), "", max, 1e-3);
        assert!(!c.passed);
        let c = Check::new("x", Diff::of(&[1.0], &[1.0]), "", max, 1e-3);
        assert!(c.passed);
        let c = Check::new("x", Diff::of(&[f32::NAN], &[1.0]), "", max, 1e-3);
        assert!(!c.passed, "NaN fails");
        // One value in a hundred off by 5 %: 5 % of the scale, 0.5 % in L2.
        let mut actual = vec![1.0f32; 100];
        actual[0] = 1.05;
        let d = Diff::of(&actual, &[1.0; 100]);
        assert!(!Check::new("x", d, "", max, 1e-2).passed);
        assert!(Check::new("x", d, "", Criterion::L2Relative, 1e-2).passed);
    }
}
