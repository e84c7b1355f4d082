//! Exact anomaly-detection metrics for stad: image and pixel AUROC, ROC and PR curves, AUPR,
//! AU-PRO as MVTec AD defines it, F1-optimal and nominal-only thresholds, Dice and IoU.
//!
//! Every claim of the project is judged with these functions, so they are exact and fast:
//! scores are `f32` or `f64` ([`Score`]), labels `bool` or `u8` ([`Label`]), counts are exact
//! integers and everything else is accumulated in `f64`. Each metric sorts its scores once
//! (a parallel radix sort) and sweeps them once; connected components are labelled per image
//! in parallel (rayon). Nothing panics on bad input: NaN or infinite scores, length or shape
//! mismatches, empty input, a missing class and an integration limit outside `(0, 1]` are
//! [`MetricsError`]s.
//!
//! | metric | function | definition |
//! |---|---|---|
//! | image AUROC | [`image_auroc`] | Mann–Whitney, a tied positive/negative pair counts ½ (= scikit-learn `roc_auc_score`) |
//! | pixel AUROC | [`pixel_auroc`] | the same over all pixels of all maps |
//! | curves | [`roc_curve`], [`precision_recall_curve`] | one point per distinct score, ties merged |
//! | AUPR | [`aupr`] | average precision `Σ ΔR·P` (= scikit-learn `average_precision_score`) |
//! | AU-PRO | [`au_pro`], [`pro_curve`] | MVTec AD's, see [`pro`] |
//! | F1-optimal threshold | [`f1_optimal_threshold`], [`pixel_f1_optimal_threshold`] | anomalous when `score ≥ t`, `t` over the observed scores |
//! | nominal-only threshold | [`nominal_threshold`] | a quantile or the max of nominal scores |
//! | Dice / IoU | [`segmentation_scores`], [`dice`], [`iou`] | of `map ≥ t`, global and mean over anomalous images |
//! | per defect type | [`per_defect_image_auroc`] | image AUROC of each type vs the good images |
//!
//! # Where stad differs from the most used Python library (anomalib)
//! * **AU-PRO is divided by the integration limit** (e.g. 0.3), as MVTec AD's evaluation does,
//!   with the point at the limit interpolated. anomalib's `AUPRO` divides by the last FPR it
//!   kept instead, which is not the published definition and gives a different number.
//! * **A threshold without anomalies.** An F1-optimal threshold needs anomalous samples: on a
//!   validation set of good images only, every threshold has F1 = 0, so the "optimal" one is
//!   meaningless (anomalib then picks one anyway). [`f1_optimal_threshold`] refuses with
//!   [`MetricsError::NoPositives`], and [`nominal_threshold`] sets a threshold from nominal
//!   scores alone (a quantile such as 99 %, or the max) for deployments without labelled
//!   defects.
//!
//! # Speed
//! `benches/metrics.rs` (criterion) times pixel AUROC and AU-PRO on one category (83 maps of
//! 224², 4.2 M pixels: tens of milliseconds) and on 1 000 maps of 256² (65 M pixels: about a
//! second on two cores).
//!
//! # Layout
//! Stacks of maps are flattened in C order with a [`MapShape`] `(count, height, width)`;
//! masks have the same layout and are anomalous where `true`/non-zero.
//!
//! ```
//! use stad_metrics::{au_pro, image_auroc, pixel_auroc};
//!
//! // Two 2x2 maps; the second image has a one-pixel defect.
//! let maps = [0.1f32, 0.2, 0.1, 0.3, 0.2, 0.9, 0.1, 0.2];
//! let masks = [0u8, 0, 0, 0, 0, 1, 0, 0];
//! assert_eq!(pixel_auroc(&maps, &masks)?, 1.0);
//! assert_eq!(au_pro(&maps, &masks, (2, 2, 2), 0.3)?, 1.0);
//! assert_eq!(image_auroc(&[0.3f32, 0.9], &[false, true])?, 1.0);
//! # Ok::<(), stad_metrics::MetricsError>(())
//! ```

mod auroc;
mod curves;
mod error;
mod evaluation;
mod input;
pub mod pro;
mod segmentation;
mod sort;
mod sweep;
mod threshold;

pub use auroc::{DefectAuroc, image_auroc, per_defect_image_auroc, pixel_auroc};
pub use curves::{PrCurve, RocCurve, aupr, precision_recall_curve, roc_curve};
pub use error::{MetricsError, Result};
pub use evaluation::{AU_PRO_LIMIT, Evaluation};
pub use input::{Label, MapShape, Score};
pub use pro::{Connectivity, ProCurve, Regions, au_pro, au_pro_with, label_regions, pro_curve};
pub use segmentation::{Overlap, SegmentationScores, dice, iou, segmentation_scores};
pub use threshold::{
    F1Threshold, NominalThreshold, f1_optimal_threshold, nominal_threshold,
    pixel_f1_optimal_threshold,
};
