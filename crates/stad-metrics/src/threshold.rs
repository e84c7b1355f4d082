//! Decision thresholds: F1-optimal (needs labelled anomalies) and nominal-only (does not).

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, Score, check_lengths};
use crate::sweep::Split;

/// The threshold maximising F1, with the scores it achieves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct F1Threshold {
    /// The threshold: a sample is anomalous when its score is `≥ threshold`. It is one of the
    /// observed scores (widened to `f64` exactly).
    pub threshold: f64,
    /// `TP / (TP + FP)` at the threshold.
    pub precision: f64,
    /// `TP / (TP + FN)` at the threshold.
    pub recall: f64,
    /// `2·TP / (2·TP + FP + FN)`, the harmonic mean of precision and recall.
    pub f1: f64,
}

/// The F1-optimal threshold over image scores.
///
/// Searches every observed score `t` (rule: anomalous when `score ≥ t`) and returns the one
/// with the largest `F1 = 2·TP / (2·TP + FP + FN)`; among equal F1 the lowest such `t` is
/// returned (as `argmax` over scikit-learn's `precision_recall_curve` does). One sort and one
/// sweep.
///
/// It needs labelled anomalies: with none, every threshold has F1 = 0 and the "optimum" would
/// be meaningless, so [`MetricsError::NoPositives`] is returned — use [`nominal_threshold`]
/// for validation sets without anomalies. Negatives are not required.
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`], [`MetricsError::NonFinite`],
/// [`MetricsError::NoPositives`].
pub fn f1_optimal_threshold<S: Score, L: Label>(scores: &[S], labels: &[L]) -> Result<F1Threshold> {
    let split = Split::new(scores, labels)?;
    if split.pos.is_empty() {
        return Err(MetricsError::NoPositives);
    }
    let p = split.n_pos();
    let mut best: Option<(f64, S::Key, u64, u64)> = None;
    for s in split.steps() {
        // 2TP / (2TP + FP + FN) with FN = P - TP: exact integers, one rounding, so equal
        // ratios compare equal.
        let f1 = (2 * s.tp) as f64 / (s.tp + s.fp + p) as f64;
        if best.is_none_or(|b| f1 >= b.0) {
            best = Some((f1, s.key, s.tp, s.fp));
        }
    }
    let (f1, key, tp, fp) = best.ok_or(MetricsError::Empty)?;
    Ok(F1Threshold {
        threshold: S::key_to_f64(key),
        precision: tp as f64 / (tp + fp) as f64,
        recall: tp as f64 / p as f64,
        f1,
    })
}

/// The F1-optimal threshold over pixels: [`f1_optimal_threshold`] on the flattened maps and
/// masks (every pixel is a sample).
///
/// # Errors
/// As [`f1_optimal_threshold`], with [`MetricsError::EmptyMasks`] in place of
/// [`MetricsError::NoPositives`] (no mask pixel is anomalous).
pub fn pixel_f1_optimal_threshold<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
) -> Result<F1Threshold> {
    f1_optimal_threshold(maps, masks).map_err(|e| crate::error::empty_masks(e, masks.len()))
}

/// How to set a threshold from nominal (defect-free) scores only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NominalThreshold {
    /// The `q`-quantile of the nominal scores, `q ∈ [0, 1]` (e.g. `0.99`): about a fraction
    /// `1 − q` of nominal samples is flagged.
    Quantile(f64),
    /// The largest nominal score: no held-out nominal sample scores above it.
    Max,
}

/// A threshold from held-out nominal scores only, for deployments without labelled defects.
///
/// An F1-optimal threshold needs anomalies in the validation data; on a validation set of good
/// images only it is meaningless. This sets the threshold from the nominal score distribution
/// instead:
/// * [`NominalThreshold::Quantile`]`(q)`: with the scores sorted `x₀ ≤ … ≤ x_{n−1}`,
///   `h = (n − 1)·q`, `i = ⌊h⌋`, `γ = h − i`, the threshold is `x_i + γ·(x_{i+1} − x_i)`
///   (linear interpolation: `numpy.quantile(scores.astype(float64), q)`, computed the same
///   way), found by selection in `O(n)`;
/// * [`NominalThreshold::Max`]: `max xᵢ` (the quantile at `q = 1`).
///
/// # Errors
/// [`MetricsError::Empty`], [`MetricsError::NonFinite`], [`MetricsError::InvalidQuantile`]
/// (`q` outside `[0, 1]` or NaN).
pub fn nominal_threshold<S: Score>(scores: &[S], method: NominalThreshold) -> Result<f64> {
    let q = match method {
        NominalThreshold::Quantile(q) if (0.0..=1.0).contains(&q) => q,
        NominalThreshold::Quantile(q) => return Err(MetricsError::InvalidQuantile(q)),
        NominalThreshold::Max => 1.0,
    };
    check_lengths(scores.len(), scores.len())?;
    if let Some(i) = scores.iter().position(|s| s.key().is_none()) {
        return Err(MetricsError::NonFinite {
            index: i,
            value: scores[i].to_f64(),
        });
    }
    let mut x: Vec<f64> = scores.iter().map(|s| s.to_f64()).collect();
    let h = (x.len() - 1) as f64 * q;
    let i = (h.floor() as usize).min(x.len() - 1);
    let gamma = h - i as f64;
    let (_, &mut a, upper) = x.select_nth_unstable_by(i, f64::total_cmp);
    let b = upper.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    // numpy's `_lerp`: a + (b−a)·γ, or b − (b−a)·(1−γ) when γ ≥ ½ (exact at both ends).
    let d = b - a;
    Ok(if gamma >= 0.5 {
        b - d * (1.0 - gamma)
    } else {
        a + d * gamma
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_threshold_by_hand() {
        // pos 0.9 0.6 0.3, neg 0.7 0.2 0.1.
        // t=.9: tp1 fp0 F1 2/(2+0+2)=.5; t=.7: tp1 fp1 2/5; t=.6: tp2 fp1 4/6; t=.3: tp3 fp1 6/7;
        // t=.2: tp3 fp2 6/8; t=.1: 6/9.
        let s = [0.9f32, 0.7, 0.6, 0.3, 0.2, 0.1];
        let l = [true, false, true, true, false, false];
        let r = f1_optimal_threshold(&s, &l).unwrap();
        assert_eq!(r.threshold, f64::from(0.3f32));
        assert_eq!(r.f1, 6.0 / 7.0);
        assert_eq!(r.precision, 0.75);
        assert_eq!(r.recall, 1.0);
    }

    #[test]
    fn f1_ties_pick_the_lowest_threshold() {
        // P = 2. t=.9: tp1 fp0 -> 2/(2+0+1) = 2/3; t=.4: tp2 fp2 -> 4/(4+2+0) = 2/3 (equal:
        // the lower threshold wins); t=.1: tp2 fp3 -> 4/7.
        let s = [0.9f64, 0.4, 0.4, 0.4, 0.1];
        let l = [1u8, 1, 0, 0, 0];
        let r = f1_optimal_threshold(&s, &l).unwrap();
        assert_eq!(r.f1, 2.0 / 3.0);
        assert_eq!(r.threshold, 0.4);
        assert_eq!((r.precision, r.recall), (0.5, 1.0));
    }

    #[test]
    fn f1_needs_positives_only() {
        assert_eq!(
            f1_optimal_threshold(&[0.1f32, 0.2], &[false, false]),
            Err(MetricsError::NoPositives)
        );
        let r = pixel_f1_optimal_threshold(&[0.1f32, 0.2], &[true, true]).unwrap();
        assert_eq!((r.threshold, r.f1), (f64::from(0.1f32), 1.0));
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let s = [3.0f64, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        // numpy.quantile([3,1,4,1,5,9,2,6], [0, .5, .9, .99, 1]) = [1, 3.5, 6.9, 8.79, 9]
        let q = |q| nominal_threshold(&s, NominalThreshold::Quantile(q)).unwrap();
        assert_eq!(q(0.0), 1.0);
        assert_eq!(q(0.5), 3.5);
        assert!((q(0.9) - 6.9).abs() < 1e-12);
        assert!((q(0.99) - 8.79).abs() < 1e-12);
        assert_eq!(q(1.0), 9.0);
        assert_eq!(nominal_threshold(&s, NominalThreshold::Max), Ok(9.0));
        assert_eq!(
            nominal_threshold(&[0.25f32], NominalThreshold::Quantile(0.99)),
            Ok(0.25)
        );
    }

    #[test]
    fn nominal_errors() {
        assert_eq!(
            nominal_threshold(&[1.0f32], NominalThreshold::Quantile(1.5)),
            Err(MetricsError::InvalidQuantile(1.5))
        );
        assert!(matches!(
            nominal_threshold(&[1.0f32], NominalThreshold::Quantile(f64::NAN)),
            Err(MetricsError::InvalidQuantile(_))
        ));
        assert_eq!(
            nominal_threshold::<f64>(&[], NominalThreshold::Max),
            Err(MetricsError::Empty)
        );
        assert!(matches!(
            nominal_threshold(&[1.0f32, f32::NAN], NominalThreshold::Max),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
    }
}
