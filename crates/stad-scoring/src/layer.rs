//! Per-layer anomaly maps: the STFPM error and the ensemble error / predictive variance.
//!
//! These are the fast ("fused") formulations: only channel dot products of the raw features
//! (`‖t‖²`, `‖s‖²`, `t·s`, ...) are reduced at full size, and the normalisation is applied
//! afterwards on the small `[B, 1, h, w]` maps, instead of materialising the normalised
//! feature maps. The
//! straightforward formulations live in [`reference`](crate::reference); the two are
//! cross-checked in the tests and benchmarked in `benches/scoring.rs`.
//!
//!
//! Accuracy: see the [crate docs](crate#accuracy).

use burn::tensor::{Tensor, backend::Backend};

use crate::ScoringError;

/// Lower bound of a feature norm in the channel-wise L2 normalisation,
/// `x̂ = x / max(‖x‖, NORM_EPS)`: `1e-12`, the `eps` of `torch.nn.functional.normalize`. An
/// all-zero feature vector thus normalises to zero.
pub const NORM_EPS: f64 = stad_distill::DEFAULT_EPS;

/// `NORM_EPS²`, the clamp applied to squared norms: `sqrt(max(‖x‖², eps²)) = max(‖x‖, eps)`.
const NORM_EPS_SQ: f64 = NORM_EPS * NORM_EPS;

pub(crate) fn check_same_shape<B: Backend>(
    teacher: &Tensor<B, 4>,
    student: &Tensor<B, 4>,
    index: Option<usize>,
) -> Result<(), ScoringError> {
    let (expected, found) = (teacher.dims(), student.dims());
    if expected == found {
        Ok(())
    } else {
        Err(ScoringError::ShapeMismatch {
            layer: None,
            student: index,
            expected,
            found,
        })
    }
}

/// Sum over channels of a `[B, C, h, w]` tensor, `[B, 1, h, w]`.
fn channel_sum<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.sum_dim(1)
}

/// STFPM anomaly map of one layer, `[B, 1, h, w]` from two `[B, C, h, w]` feature maps:
///
/// ```text
/// e[b,0,y,x] = 0.5 · ‖t̂[b,:,y,x] − ŝ[b,:,y,x]‖²,      x̂ = x / max(‖x‖₂, NORM_EPS)
/// ```
///
/// computed as `0.5·(‖t‖²/n_t² + ‖s‖²/n_s² − 2·t·s/(n_t·n_s))` with `n = max(‖x‖, eps)`
/// (clamped at 0; see the [crate docs](crate#accuracy) on accuracy). For unit-norm features this is
/// `1 − cos(t, s)`.
///
/// # Errors
/// [`ScoringError::ShapeMismatch`] when the shapes differ.
pub fn stfpm_layer_map<B: Backend>(
    teacher: Tensor<B, 4>,
    student: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, ScoringError> {
    check_same_shape(&teacher, &student, None)?;
    let tt = channel_sum(teacher.clone().square());
    let ss = channel_sum(student.clone().square());
    let ts = channel_sum(teacher * student);
    let nt2 = tt.clone().clamp_min(NORM_EPS_SQ);
    let ns2 = ss.clone().clamp_min(NORM_EPS_SQ);
    // sqrt each before multiplying: eps² · eps² would underflow in f32.
    let cos = ts / (nt2.clone().sqrt() * ns2.clone().sqrt());
    let dist = tt / nt2 + ss / ns2 - cos * 2.0;
    Ok((dist * 0.5).clamp_min(0.0))
}

/// Ensemble maps of one layer: the regression error and the predictive variance of `S`
/// students, each `[B, 1, h, w]`, from the teacher's and the students' `[B, C, h, w]`
/// features (`x̂` = L2-normalised over channels as in [`stfpm_layer_map`],
/// `m = mean_s ŝ_s`):
///
/// ```text
/// error    = 0.5 · ‖t̂ − m‖²
/// variance = ‖std_s ŝ_s‖² = Σ_c var_s(ŝ_s,c) = (1/S)·Σ_s ‖ŝ_s‖² − ‖m‖²
/// ```
///
/// with the population (biased, `1/S`) variance over students. The last form is eq. 4 of
/// Bergmann et al., 2020 ("Uninformed Students"), the predictive variance of the ensemble,
/// applied to the normalised features; since `‖ŝ_s‖ = 1` (for every feature vector with norm
/// `≥ NORM_EPS`) it is `1 − ‖m‖²` here. The paper applies eq. 4 to un-normalised student
/// outputs; that is [`predictive_variance_unnormalized`].
///
/// # Computation
/// Only channel dot products of the raw features are reduced at full size: `‖t‖²`, `‖s_i‖²`,
/// `t·s_i` and `s_i·s_j` (`i < j`), i.e. `(S + 1)(S + 2)/2` of them (10 for 3 students), each
/// one element-wise product and one channel sum of same-shaped tensors. Everything else happens
/// on the `[B, 1, h, w]` maps, with `n = max(‖x‖, eps)` and cosines `c_ti = t·s_i/(n_t·n_i)`,
/// `c_ij = s_i·s_j/(n_i·n_j)`, `a_i = ‖ŝ_i‖² = ‖s_i‖²/n_i²`:
///
/// ```text
/// ‖m‖²     = (Σ_i a_i + 2·Σ_{i<j} c_ij) / S²
/// error    = 0.5 · (‖t̂‖² − (2/S)·Σ_i c_ti + ‖m‖²)
/// variance = (1/S)·Σ_i a_i − ‖m‖²
/// ```
///
/// both clamped at 0. No normalised feature map is materialised, and no full-size tensor is
/// multiplied by a per-position (channel-broadcast) factor, which is the costly part of the
/// straightforward formulation on CPU backends. The work grows as `S²`; for the usual
/// ensembles (`S ≤ 5`) it stays below the reference's. The maps carry the absolute error
/// discussed in the [crate docs](crate#accuracy).
///
/// # Errors
/// [`ScoringError::NoStudents`] for an empty `students`, [`ScoringError::ShapeMismatch`] when a
/// student's shape differs from the teacher's.
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
    let count = students.len() as f64;
    let dot = |a: &Tensor<B, 4>, b: &Tensor<B, 4>| channel_sum(a.clone() * b.clone());
    let sum = |maps: Vec<Tensor<B, 4>>| maps.into_iter().reduce(|a, b| a + b);

    let tt = channel_sum(teacher.clone().square());
    let nt2 = tt.clone().clamp_min(NORM_EPS_SQ);
    let nt = nt2.clone().sqrt();
    let t_self = tt / nt2;

    let mut norms = Vec::with_capacity(students.len());
    let mut selfs = Vec::with_capacity(students.len());
    let mut teacher_cos = Vec::with_capacity(students.len());
    for s in students {
        let ss = channel_sum(s.clone().square());
        let ns2 = ss.clone().clamp_min(NORM_EPS_SQ);
        let ns = ns2.clone().sqrt();
        selfs.push(ss / ns2);
        teacher_cos.push(dot(&teacher, s) / (nt.clone() * ns.clone()));
        norms.push(ns);
    }
    let mut pair_cos = Vec::new();
    for i in 0..students.len() {
        for j in i + 1..students.len() {
            let g = dot(&students[i], &students[j]);
            pair_cos.push(g / (norms[i].clone() * norms[j].clone()));
        }
    }
    let self_sum = sum(selfs).expect("at least one student");
    let teacher_cos = sum(teacher_cos).expect("at least one student") / count;
    let mm = match sum(pair_cos) {
        Some(pairs) => self_sum.clone() + pairs * 2.0,
        None => self_sum.clone(),
    } / (count * count);
    let error = (t_self - teacher_cos * 2.0 + mm.clone()) * 0.5;
    let variance = self_sum / count - mm;
    Ok((error.clamp_min(0.0), variance.clamp_min(0.0)))
}

/// Predictive variance of an ensemble on **un-normalised** features, eq. 4 of Bergmann et al.,
/// 2020, `[B, 1, h, w]` from `S` students' `[B, C, h, w]` outputs:
///
/// ```text
/// v = (1/S)·Σ_s ‖s_s‖² − ‖(1/S)·Σ_s s_s‖²  =  (1/S)·Σ_s ‖s_s − m‖² = Σ_c var_s(s_s,c)
/// ```
///
/// It is computed in the centred form (the right-hand side), which has the same value without
/// the cancellation of the left-hand side.
///
/// # Errors
/// [`ScoringError::NoStudents`] for an empty `students`, [`ScoringError::ShapeMismatch`] when
/// the students' shapes differ (compared with student 0, reported as the expected shape).
pub fn predictive_variance_unnormalized<B: Backend>(
    students: &[Tensor<B, 4>],
) -> Result<Tensor<B, 4>, ScoringError> {
    let first = students.first().ok_or(ScoringError::NoStudents)?;
    for (i, s) in students.iter().enumerate().skip(1) {
        check_same_shape(first, s, Some(i))?;
    }
    let count = students.len() as f64;
    let mean = students
        .iter()
        .cloned()
        .reduce(|a, b| a + b)
        .expect("at least one student")
        / count;
    let spread = students
        .iter()
        .map(|s| channel_sum((s.clone() - mean.clone()).square()))
        .reduce(|a, b| a + b)
        .expect("at least one student");
    Ok(spread / count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tolerance};

    type B = Flex;

    fn randn(shape: [usize; 4], seed_shift: f64) -> Tensor<B, 4> {
        Tensor::random(
            shape,
            Distribution::Normal(seed_shift, 1.0),
            &Default::default(),
        )
    }

    #[test]
    fn stfpm_matches_hand_values() {
        let device = Default::default();
        // Position 0: t̂ = (0.6, 0.8), ŝ = (1, 0) → 0.5·0.8 = 0.4.
        // Position 1: t̂ = (0, 1), ŝ = (0, −1) → 0.5·4 = 2.
        // Position 2: zero student: ŝ = 0 → 0.5·‖t̂‖² = 0.5.
        let t = Tensor::<B, 4>::from_data([[[[3.0f32, 0.0, 1.0]], [[4.0, 2.0, 0.0]]]], &device);
        let s = Tensor::<B, 4>::from_data([[[[1.0f32, 0.0, 0.0]], [[0.0, -5.0, 0.0]]]], &device);
        let e = stfpm_layer_map(t, s).unwrap();
        assert_eq!(e.dims(), [1, 1, 1, 3]);
        e.into_data().assert_approx_eq::<f32>(
            &burn::tensor::TensorData::from([[[[0.4f32, 2.0, 0.5]]]]),
            Tolerance::absolute(1e-6),
        );
    }

    #[test]
    fn stfpm_fused_matches_reference() {
        let t = randn([2, 16, 5, 7], 0.3);
        let s = randn([2, 16, 5, 7], -0.2);
        let a = stfpm_layer_map(t.clone(), s.clone()).unwrap();
        let b = reference::stfpm_layer_map(t, s).unwrap();
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn ensemble_fused_matches_reference() {
        let t = randn([2, 16, 5, 7], 0.0);
        let students: Vec<_> = (0..3)
            .map(|i| randn([2, 16, 5, 7], f64::from(i) * 0.1))
            .collect();
        let (e, v) = ensemble_layer_maps(t.clone(), &students).unwrap();
        let (re, rv) = reference::ensemble_layer_maps(t, &students).unwrap();
        e.into_data()
            .assert_approx_eq::<f32>(&re.into_data(), Tolerance::absolute(1e-6));
        v.into_data()
            .assert_approx_eq::<f32>(&rv.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn single_student_ensemble_is_stfpm_with_zero_variance() {
        let t = randn([1, 8, 4, 4], 0.0);
        let s = randn([1, 8, 4, 4], 0.0);
        let (e, v) = ensemble_layer_maps(t.clone(), std::slice::from_ref(&s)).unwrap();
        let stfpm = stfpm_layer_map(t, s).unwrap();
        e.into_data()
            .assert_approx_eq::<f32>(&stfpm.into_data(), Tolerance::absolute(1e-6));
        assert!(v.abs().max().into_scalar() < 1e-6);
    }

    #[test]
    fn variance_is_eq4_on_normalised_features() {
        // On unit vectors, Σ_c var_s = 1 − ‖mean‖².
        let device = Default::default();
        let t = Tensor::<B, 4>::from_data([[[[1.0f32]], [[0.0]]]], &device);
        let s0 = Tensor::<B, 4>::from_data([[[[2.0f32]], [[0.0]]]], &device); // (1, 0)
        let s1 = Tensor::<B, 4>::from_data([[[[0.0f32]], [[0.5]]]], &device); // (0, 1)
        let (e, v) = ensemble_layer_maps(t, &[s0, s1]).unwrap();
        // m = (0.5, 0.5): variance = 1 − 0.5 = 0.5; error = 0.5·‖(0.5, −0.5)‖² = 0.25.
        assert!((v.into_scalar() - 0.5).abs() < 1e-6);
        assert!((e.into_scalar() - 0.25).abs() < 1e-6);
    }

    #[test]
    fn unnormalized_variance_matches_eq4() {
        let students: Vec<_> = (0..4).map(|i| randn([2, 6, 3, 3], f64::from(i))).collect();
        let v = predictive_variance_unnormalized(&students).unwrap();
        // Eq. 4 literally: (1/S) Σ ‖s‖² − ‖mean‖².
        let mean = students.iter().cloned().reduce(|a, b| a + b).unwrap() / 4.0;
        let eq4 = students
            .iter()
            .map(|s| s.clone().square().sum_dim(1))
            .reduce(|a, b| a + b)
            .unwrap()
            / 4.0
            - mean.square().sum_dim(1);
        v.into_data()
            .assert_approx_eq::<f32>(&eq4.into_data(), Tolerance::absolute(1e-4));
    }

    #[test]
    fn errors() {
        let t = randn([1, 4, 3, 3], 0.0);
        let s = randn([1, 4, 3, 2], 0.0);
        assert_eq!(
            stfpm_layer_map(t.clone(), s.clone()).unwrap_err(),
            ScoringError::ShapeMismatch {
                layer: None,
                student: None,
                expected: [1, 4, 3, 3],
                found: [1, 4, 3, 2]
            }
        );
        assert_eq!(
            ensemble_layer_maps(t.clone(), &[]).unwrap_err(),
            ScoringError::NoStudents
        );
        let err = ensemble_layer_maps(t.clone(), &[t.clone(), s]).unwrap_err();
        assert!(matches!(
            err,
            ScoringError::ShapeMismatch {
                student: Some(1),
                ..
            }
        ));
        assert!(err.to_string().contains("student 1"), "{err}");
        assert_eq!(
            predictive_variance_unnormalized::<B>(&[]).unwrap_err(),
            ScoringError::NoStudents
        );
    }
}
