//! The metrics of one model on one labelled test set: the one evaluation type of the
//! workspace (stad computes it, stad-viz's record carries it to JSON and reports).

use serde::{Deserialize, Serialize};

use crate::{DefectAuroc, F1Threshold};

/// AU-PRO integration limit (MVTec AD's evaluation): the FPR up to which the PRO curve is
/// integrated.
pub const AU_PRO_LIMIT: f64 = 0.3;

/// Metrics of one model on one test set.
///
/// - image AUROC from the image scores (the max of each map);
/// - pixel AUROC and AU-PRO (to FPR [`AU_PRO_LIMIT`], divided by it) over the maps of the
///   images that have masks;
/// - the image-level F1-optimal threshold `t` (the thesis' choice when labelled data exists)
///   and, at `t`, Dice `2|P∩G| / (|P|+|G|)` and IoU `|P∩G| / |P∪G|` of `P = {map ≥ t}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Test images.
    pub n_test: usize,
    /// Image AUROC.
    pub image_auroc: f64,
    /// Pixel AUROC over the images with masks.
    pub pixel_auroc: f64,
    /// AU-PRO to FPR 0.3, divided by 0.3.
    pub au_pro: f64,
    /// Image-level F1-optimal threshold, with its precision, recall and F1.
    pub image_f1: F1Threshold,
    /// Dice of `map ≥ image threshold`: global over all pixels.
    pub dice: f64,
    /// Dice, mean over the anomalous images.
    pub dice_mean_anomalous: f64,
    /// IoU of `map ≥ image threshold`, global.
    pub iou: f64,
    /// Image AUROC of each defect type against the good images.
    pub per_defect: Vec<DefectAuroc>,
    /// Inference throughput over the test set (decode + forward + maps), images/s.
    pub images_per_second: f64,
}
