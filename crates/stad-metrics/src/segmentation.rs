//! Overlap of thresholded maps with the ground truth: Dice and IoU.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, MapShape, Score, non_finite};

/// One overlap measure (Dice or IoU), globally and per anomalous image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Over all pixels of all images pooled together.
    pub global: f64,
    /// The mean of the per-image values over the anomalous images (those whose mask has at
    /// least one anomalous pixel). Defect-free images are left out: their overlap is undefined
    /// (or trivially 0 at any false positive).
    pub mean_over_anomalous: f64,
}

/// Dice and IoU of `map ≥ threshold` against the masks, with the pooled pixel counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentationScores {
    /// The threshold used (a pixel is predicted anomalous when its score is `≥ threshold`).
    pub threshold: f64,
    /// Dice `2·TP / (2·TP + FP + FN)` (= pixel F1).
    pub dice: Overlap,
    /// IoU (Jaccard) `TP / (TP + FP + FN)`.
    pub iou: Overlap,
    /// Pixels predicted and truly anomalous, over all images.
    pub true_positives: u64,
    /// Pixels predicted anomalous but defect-free, over all images.
    pub false_positives: u64,
    /// Anomalous pixels not predicted, over all images.
    pub false_negatives: u64,
    /// Number of anomalous images (the `mean_over_anomalous` denominators).
    pub n_anomalous_images: usize,
}

/// Dice and IoU of the binarised maps `map ≥ threshold` against the masks.
///
/// `maps`/`masks`: `shape.count` maps flattened in C order (see [`MapShape`]). Scores are
/// compared with the threshold in `f64` (an `f32` score is widened exactly). With
/// `TP, FP, FN` counted per image `i`:
/// * global: `Dice = 2·ΣTP / (2·ΣTP + ΣFP + ΣFN)`, `IoU = ΣTP / (ΣTP + ΣFP + ΣFN)`;
/// * mean over anomalous images: `(1/|A|) Σ_{i ∈ A} Dice_i` (and `IoU_i`), `A` = the images
///   with at least one anomalous mask pixel.
///
/// # Errors
/// [`MetricsError::InvalidThreshold`] (NaN), [`MetricsError::ShapeMismatch`],
/// [`MetricsError::Empty`], [`MetricsError::NonFinite`]; [`MetricsError::EmptyMasks`] when no
/// mask has an anomalous pixel (both measures are undefined).
pub fn segmentation_scores<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    threshold: f64,
) -> Result<SegmentationScores> {
    if threshold.is_nan() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    let hw = shape.into().check(maps.len(), masks.len())?;
    let per_image: Vec<[u64; 3]> = maps
        .par_chunks(hw)
        .zip(masks.par_chunks(hw))
        .enumerate()
        .map(|(i, (map, mask))| {
            let mut c = [0u64; 3]; // tp, fp, fn
            for (&v, &m) in map.iter().zip(mask) {
                if v.key().is_none() {
                    return Err(non_finite(map, i * hw));
                }
                let pred = v.to_f64() >= threshold;
                let truth = m.is_anomalous();
                c[0] += u64::from(pred && truth);
                c[1] += u64::from(pred && !truth);
                c[2] += u64::from(!pred && truth);
            }
            Ok(c)
        })
        .collect::<Result<_>>()?;
    let dice = |[tp, fp, fn_]: [u64; 3]| (2 * tp) as f64 / (2 * tp + fp + fn_) as f64;
    let iou = |[tp, fp, fn_]: [u64; 3]| tp as f64 / (tp + fp + fn_) as f64;
    let anomalous: Vec<[u64; 3]> = per_image
        .iter()
        .copied()
        .filter(|&[tp, _, fn_]| tp + fn_ > 0)
        .collect();
    if anomalous.is_empty() {
        return Err(MetricsError::EmptyMasks {
            pixels: masks.len(),
        });
    }
    let total = per_image
        .iter()
        .fold([0u64; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
    let n = anomalous.len() as f64;
    Ok(SegmentationScores {
        threshold,
        dice: Overlap {
            global: dice(total),
            mean_over_anomalous: anomalous.iter().map(|&c| dice(c)).sum::<f64>() / n,
        },
        iou: Overlap {
            global: iou(total),
            mean_over_anomalous: anomalous.iter().map(|&c| iou(c)).sum::<f64>() / n,
        },
        true_positives: total[0],
        false_positives: total[1],
        false_negatives: total[2],
        n_anomalous_images: anomalous.len(),
    })
}

/// Dice of `map ≥ threshold` against the masks, global and mean over anomalous images
/// (see [`segmentation_scores`]).
///
/// # Errors
/// As [`segmentation_scores`].
pub fn dice<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    threshold: f64,
) -> Result<Overlap> {
    segmentation_scores(maps, masks, shape, threshold).map(|s| s.dice)
}

/// IoU of `map ≥ threshold` against the masks, global and mean over anomalous images
/// (see [`segmentation_scores`]).
///
/// # Errors
/// As [`segmentation_scores`].
pub fn iou<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    threshold: f64,
) -> Result<Overlap> {
    segmentation_scores(maps, masks, shape, threshold).map(|s| s.iou)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_and_iou_by_hand() {
        // Image 0: truth 1 1 0 0, pred (≥ .5) 1 0 1 0 -> tp1 fp1 fn1: Dice 2/4, IoU 1/3.
        // Image 1: truth 0 0 0 0, pred 0 0 0 1 -> fp1 (not anomalous: left out of the mean).
        // Image 2: truth 1 1 1 1, pred 1 1 1 1 -> tp4: Dice 1, IoU 1.
        let maps = [
            0.9f32, 0.1, 0.7, 0.2, //
            0.1, 0.1, 0.1, 0.5, //
            0.6, 0.8, 0.9, 0.5,
        ];
        let masks = [1u8, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
        let s = segmentation_scores(&maps, &masks, (3, 2, 2), 0.5).unwrap();
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (5, 2, 1)
        );
        assert_eq!(s.n_anomalous_images, 2);
        assert_eq!(s.dice.global, 10.0 / 13.0);
        assert_eq!(s.iou.global, 5.0 / 8.0);
        assert_eq!(s.dice.mean_over_anomalous, 0.75);
        assert_eq!(s.iou.mean_over_anomalous, (1.0 / 3.0 + 1.0) / 2.0);
        assert_eq!(dice(&maps, &masks, (3, 2, 2), 0.5), Ok(s.dice));
        assert_eq!(iou(&maps, &masks, (3, 2, 2), 0.5), Ok(s.iou));
    }

    #[test]
    fn errors() {
        let maps = [0.5f64, 0.2];
        assert_eq!(
            dice(&maps, &[false, false], (1, 1, 2), 0.3),
            Err(MetricsError::EmptyMasks { pixels: 2 })
        );
        assert!(matches!(
            dice(&maps, &[true, false], (1, 1, 2), f64::NAN),
            Err(MetricsError::InvalidThreshold(_))
        ));
        assert!(matches!(
            dice(&maps, &[true, false], (2, 1, 2), 0.3),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            iou(&[0.5f64, f64::NAN], &[true, false], (1, 1, 2), 0.3),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
    }
}
