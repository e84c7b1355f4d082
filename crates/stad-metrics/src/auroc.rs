//! Exact area under the ROC curve, for images and for pixels, and per defect type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, Score, check_lengths};
use crate::sweep::Split;

/// Exact AUROC of image scores against image labels (`true`/non-zero = anomalous).
///
/// Computes the Mann–Whitney statistic
/// `AUROC = (1 / (P·N)) · Σ_{p ∈ pos} Σ_{n ∈ neg} [s_p > s_n] + ½·[s_p = s_n]`,
/// i.e. a tied positive/negative pair counts ½. This equals the trapezoidal area under the ROC
/// curve with ties merged, and scikit-learn's `roc_auc_score`. Counts are accumulated as exact
/// integers; the single division is done in `f64`.
///
/// Cost: one (radix) sort of each class and one merged sweep, `O(n)` memory.
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`], [`MetricsError::NonFinite`],
/// [`MetricsError::NoPositives`], [`MetricsError::NoNegatives`].
pub fn image_auroc<S: Score, L: Label>(scores: &[S], labels: &[L]) -> Result<f64> {
    Ok(Split::new(scores, labels)?.require_both()?.auroc())
}

/// Exact pixel AUROC of anomaly maps against ground-truth masks, both flattened
/// (any layout, as long as pixel `i` of `maps` and of `masks` is the same pixel).
///
/// Every pixel of every map is one sample; the formula is that of [`image_auroc`]
/// (Mann–Whitney, ties counting ½, equal to scikit-learn's `roc_auc_score` on the flattened
/// arrays).
///
/// # Errors
/// As [`image_auroc`], with [`MetricsError::EmptyMasks`] in place of
/// [`MetricsError::NoPositives`] (no mask pixel is anomalous).
pub fn pixel_auroc<S: Score, L: Label>(maps: &[S], masks: &[L]) -> Result<f64> {
    image_auroc(maps, masks).map_err(|e| crate::error::empty_masks(e, masks.len()))
}

/// The image AUROC of one defect type against the good images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefectAuroc {
    /// The defect type (e.g. `"crack"`).
    pub defect_type: String,
    /// AUROC of this type's images (positives) against the good images (negatives).
    pub auroc: f64,
    /// Number of images of this type.
    pub n_anomalous: usize,
    /// Number of good images.
    pub n_good: usize,
}

/// Image AUROC of each defect type against the good images (the per-type breakdown of a
/// category's test set).
///
/// `defect_types[i]` names image `i`'s defect type; images whose type equals `good` (MVTec AD
/// calls it `"good"`) are the negatives. For every other type `d`,
/// `AUROC_d = image_auroc(scores of d ∪ good, labels d = 1, good = 0)`; images of the other
/// types are left out. Results are sorted by defect type.
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`], [`MetricsError::NonFinite`];
/// [`MetricsError::NoNegatives`] when no image is `good`, [`MetricsError::NoPositives`] when
/// every image is.
pub fn per_defect_image_auroc<S: Score, T: AsRef<str>>(
    scores: &[S],
    defect_types: &[T],
    good: &str,
) -> Result<Vec<DefectAuroc>> {
    check_lengths(scores.len(), defect_types.len())?;
    if let Some(i) = scores.iter().position(|s| s.key().is_none()) {
        return Err(MetricsError::NonFinite {
            index: i,
            value: scores[i].to_f64(),
        });
    }
    let mut good_scores = Vec::new();
    let mut by_type: BTreeMap<&str, Vec<S>> = BTreeMap::new();
    for (&s, t) in scores.iter().zip(defect_types) {
        let t = t.as_ref();
        if t == good {
            good_scores.push(s);
        } else {
            by_type.entry(t).or_default().push(s);
        }
    }
    if good_scores.is_empty() {
        return Err(MetricsError::NoNegatives);
    }
    if by_type.is_empty() {
        return Err(MetricsError::NoPositives);
    }
    by_type
        .into_iter()
        .map(|(t, pos)| {
            let labels: Vec<bool> = pos
                .iter()
                .map(|_| true)
                .chain(good_scores.iter().map(|_| false))
                .collect();
            let all: Vec<S> = pos.iter().chain(&good_scores).copied().collect();
            Ok(DefectAuroc {
                defect_type: t.to_owned(),
                auroc: image_auroc(&all, &labels)?,
                n_anomalous: pos.len(),
                n_good: good_scores.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_reversed_and_tied() {
        let labels = [false, false, true, true];
        assert_eq!(image_auroc(&[0.1f32, 0.2, 0.8, 0.9], &labels), Ok(1.0));
        assert_eq!(image_auroc(&[0.9f64, 0.8, 0.2, 0.1], &labels), Ok(0.0));
        assert_eq!(image_auroc(&[0.5f32; 4], &labels), Ok(0.5));
    }

    #[test]
    fn ties_count_half() {
        // pos {1, 2}, neg {1, 0}: pairs (1,1)=½, (1,0)=1, (2,1)=1, (2,0)=1 -> 3.5/4.
        let s = [1.0f64, 2.0, 1.0, 0.0];
        let l = [1u8, 1, 0, 0];
        assert_eq!(image_auroc(&s, &l), Ok(0.875));
        // sklearn.metrics.roc_auc_score([1,1,0,0,1,0], [0.3,0.3,0.3,0.1,0.7,0.5]) == 0.6666666666666667
        // (by hand: each 0.3 positive scores ½ + 1 + 0, the 0.7 positive 3: 6 of 9 pairs).
        let s = [0.3f32, 0.3, 0.3, 0.1, 0.7, 0.5];
        let l = [true, true, false, false, true, false];
        assert_eq!(image_auroc(&s, &l), Ok(6.0 / 9.0));
    }

    #[test]
    fn errors() {
        assert_eq!(image_auroc::<f32, bool>(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(
            image_auroc(&[0.1f32, 0.2], &[true]),
            Err(MetricsError::LengthMismatch {
                scores: 2,
                labels: 1
            })
        );
        assert_eq!(
            image_auroc(&[0.1f32, 0.2], &[true, true]),
            Err(MetricsError::NoNegatives)
        );
        assert_eq!(
            image_auroc(&[0.1f32, 0.2], &[false, false]),
            Err(MetricsError::NoPositives)
        );
        assert_eq!(
            image_auroc(&[0.1f32, f32::INFINITY], &[false, true]),
            Err(MetricsError::NonFinite {
                index: 1,
                value: f64::INFINITY
            })
        );
        assert!(matches!(
            pixel_auroc(&[f64::NAN, 0.0], &[false, true]),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
    }

    #[test]
    fn pixel_metrics_name_empty_masks() {
        // Labels with no positive: the image metric says so, the pixel metrics say that the
        // masks are empty.
        let (maps, masks) = ([0.1f32, 0.2, 0.3, 0.4], [0u8; 4]);
        assert_eq!(image_auroc(&maps, &masks), Err(MetricsError::NoPositives));
        let e = pixel_auroc(&maps, &masks).unwrap_err();
        assert_eq!(e, MetricsError::EmptyMasks { pixels: 4 });
        assert_eq!(
            e.to_string(),
            "the ground-truth masks are all empty (none of their 4 pixels is anomalous): \
             pixel metrics need masks with defect pixels"
        );
        assert_eq!(
            crate::pixel_f1_optimal_threshold(&maps, &masks),
            Err(MetricsError::EmptyMasks { pixels: 4 })
        );
        assert_eq!(
            crate::au_pro(&maps, &masks, (1, 2, 2), 0.3),
            Err(MetricsError::EmptyMasks { pixels: 4 })
        );
        assert!(matches!(
            crate::segmentation_scores(&maps, &masks, (1, 2, 2), 0.3),
            Err(MetricsError::EmptyMasks { pixels: 4 })
        ));
        // The other errors pass through unchanged.
        assert_eq!(
            pixel_auroc(&maps, &[1u8; 4]),
            Err(MetricsError::NoNegatives)
        );
    }

    #[test]
    fn per_defect_breakdown() {
        let scores = [0.1f32, 0.2, 0.9, 0.15, 0.8, 0.05];
        let types = ["good", "good", "crack", "scratch", "crack", "scratch"];
        let r = per_defect_image_auroc(&scores, &types, "good").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].defect_type, "crack");
        assert_eq!(r[0].auroc, 1.0);
        assert_eq!(r[0].n_anomalous, 2);
        assert_eq!(r[0].n_good, 2);
        assert_eq!(r[1].defect_type, "scratch");
        // 0.15 beats 0.1 only; 0.05 beats none: 1/4.
        assert_eq!(r[1].auroc, 0.25);
        assert_eq!(
            per_defect_image_auroc(&scores, &["crack"; 6], "good"),
            Err(MetricsError::NoNegatives)
        );
        assert_eq!(
            per_defect_image_auroc(&scores, &["good"; 6], "good"),
            Err(MetricsError::NoPositives)
        );
    }
}
