//! ROC and precision–recall curves (for plots) and the area under the PR curve.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, Score};
use crate::sweep::Split;

/// A ROC curve: one point per distinct score, from the highest threshold down.
///
/// Point `k` is `(fpr[k], tpr[k])` for the rule "anomalous when score ≥ `thresholds[k]`":
/// `fpr = FP / N`, `tpr = TP / P`. The first point is `(0, 0)` with threshold `+∞`
/// (scikit-learn's convention; JSON writes it as `null`); the last is `(1, 1)` at the lowest
/// score. All points are kept (scikit-learn's `drop_intermediate=False`); see
/// [`RocCurve::simplified`] for a lighter curve of the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rates, non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rates, non-decreasing.
    pub tpr: Vec<f64>,
    /// Thresholds, decreasing.
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Trapezoidal area under the curve, `Σ_k (fpr[k+1] − fpr[k]) · (tpr[k+1] + tpr[k]) / 2`
    /// (equal to [`crate::image_auroc`] up to `f64` rounding).
    pub fn area(&self) -> f64 {
        trapezoid(&self.fpr, &self.tpr)
    }

    /// The same curve without the points that lie on the straight segment between their
    /// neighbours (runs of only-positive or only-negative steps), as scikit-learn's
    /// `drop_intermediate=True`. The area and the drawn shape do not change.
    pub fn simplified(&self) -> RocCurve {
        let n = self.fpr.len();
        let mut out = RocCurve {
            fpr: Vec::new(),
            tpr: Vec::new(),
            thresholds: Vec::new(),
        };
        for k in 0..n {
            let keep = k == 0 || k + 1 == n || {
                // Collinear with both neighbours along an axis: only fpr or only tpr moves.
                let (a, b, c) = (k - 1, k, k + 1);
                let fpr_flat = self.fpr[a] == self.fpr[b] && self.fpr[b] == self.fpr[c];
                let tpr_flat = self.tpr[a] == self.tpr[b] && self.tpr[b] == self.tpr[c];
                !(fpr_flat || tpr_flat)
            };
            if keep {
                out.fpr.push(self.fpr[k]);
                out.tpr.push(self.tpr[k]);
                out.thresholds.push(self.thresholds[k]);
            }
        }
        out
    }
}

/// A precision–recall curve: one point per distinct score, from the highest threshold down
/// (recall non-decreasing).
///
/// Point `k` is for "anomalous when score ≥ `thresholds[k]`": `precision = TP / (TP + FP)`,
/// `recall = TP / P`. The first point is `(recall 0, precision 1)` with threshold `+∞`
/// (scikit-learn's end point, here put first; JSON writes `+∞` as `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    /// Precision at each point.
    pub precision: Vec<f64>,
    /// Recall at each point, non-decreasing.
    pub recall: Vec<f64>,
    /// Thresholds, decreasing.
    pub thresholds: Vec<f64>,
}

impl PrCurve {
    /// Average precision `AP = Σ_k (recall[k] − recall[k−1]) · precision[k]` (the step-wise
    /// area under the curve; see [`aupr`]).
    pub fn average_precision(&self) -> f64 {
        self.recall
            .windows(2)
            .zip(&self.precision[1..])
            .map(|(r, &p)| (r[1] - r[0]) * p)
            .sum()
    }
}

/// The ROC curve of scores against labels (`true`/non-zero = anomalous).
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`], [`MetricsError::NonFinite`],
/// [`MetricsError::NoPositives`], [`MetricsError::NoNegatives`].
pub fn roc_curve<S: Score, L: Label>(scores: &[S], labels: &[L]) -> Result<RocCurve> {
    let split = Split::new(scores, labels)?.require_both()?;
    let (p, n) = (split.n_pos() as f64, split.n_neg() as f64);
    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for s in split.steps() {
        curve.fpr.push(s.fp as f64 / n);
        curve.tpr.push(s.tp as f64 / p);
        curve.thresholds.push(S::key_to_f64(s.key));
    }
    Ok(curve)
}

/// The precision–recall curve of scores against labels (`true`/non-zero = anomalous).
///
/// # Errors
/// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`], [`MetricsError::NonFinite`],
/// [`MetricsError::NoPositives`] (recall is undefined without positives).
pub fn precision_recall_curve<S: Score, L: Label>(scores: &[S], labels: &[L]) -> Result<PrCurve> {
    let split = Split::new(scores, labels)?;
    if split.pos.is_empty() {
        return Err(MetricsError::NoPositives);
    }
    let p = split.n_pos() as f64;
    let mut curve = PrCurve {
        precision: vec![1.0],
        recall: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for s in split.steps() {
        curve.precision.push(s.tp as f64 / (s.tp + s.fp) as f64);
        curve.recall.push(s.tp as f64 / p);
        curve.thresholds.push(S::key_to_f64(s.key));
    }
    Ok(curve)
}

/// Area under the precision–recall curve, as average precision:
/// `AUPR = Σ_t (R_t − R_{t−1}) · P_t` over the distinct thresholds `t` from the highest down
/// (`R_0 = 0`), with ties merged.
///
/// This is scikit-learn's `average_precision_score`. It is the step-wise area: linear
/// interpolation between PR points (a trapezoid) is over-optimistic, because precision does
/// not vary linearly with recall (Davis & Goadrich, 2006).
///
/// # Errors
/// As [`precision_recall_curve`].
pub fn aupr<S: Score, L: Label>(scores: &[S], labels: &[L]) -> Result<f64> {
    let split = Split::new(scores, labels)?;
    if split.pos.is_empty() {
        return Err(MetricsError::NoPositives);
    }
    let p = split.n_pos() as f64;
    let mut ap = 0.0;
    let mut tp_prev = 0;
    for s in split.steps() {
        ap += (s.tp - tp_prev) as f64 / p * (s.tp as f64 / (s.tp + s.fp) as f64);
        tp_prev = s.tp;
    }
    Ok(ap)
}

/// `Σ_k (x[k+1] − x[k]) · (y[k+1] + y[k]) / 2`.
pub(crate) fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) * 0.5)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_auroc;

    const S: [f32; 8] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.1, 0.7, 0.2];
    const L: [bool; 8] = [false, false, true, true, true, false, false, true];

    #[test]
    fn roc_points_and_area() {
        let c = roc_curve(&S, &L).unwrap();
        assert_eq!(c.thresholds[0], f64::INFINITY);
        assert_eq!((c.fpr[0], c.tpr[0]), (0.0, 0.0));
        assert_eq!((*c.fpr.last().unwrap(), *c.tpr.last().unwrap()), (1.0, 1.0));
        // distinct scores 0.8 0.7 0.4 0.35 0.2 0.1 -> 7 points
        assert_eq!(c.fpr.len(), 7);
        assert_eq!(c.thresholds[1], f64::from(0.8f32));
        assert_eq!((c.fpr[3], c.tpr[3]), (0.5, 0.5)); // >= 0.4: tp 2 (0.8, 0.4), fp 2 (0.7, 0.4)
        let auc = image_auroc(&S, &L).unwrap();
        assert!((c.area() - auc).abs() < 1e-15);
        let s = c.simplified();
        assert!(s.fpr.len() <= c.fpr.len());
        assert!((s.area() - auc).abs() < 1e-15);
    }

    #[test]
    fn simplified_drops_collinear_runs() {
        // Perfect separation: (0,0) (0,.5) (0,1) (.5,1) (1,1) -> (0,0) (0,1) (1,1).
        let c = roc_curve(&[0.9f32, 0.8, 0.2, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!(c.fpr.len(), 5);
        let s = c.simplified();
        assert_eq!(s.fpr, vec![0.0, 0.0, 1.0]);
        assert_eq!(s.tpr, vec![0.0, 1.0, 1.0]);
        assert_eq!(s.area(), 1.0);
    }

    #[test]
    fn pr_curve_and_average_precision() {
        let c = precision_recall_curve(&S, &L).unwrap();
        assert_eq!((c.precision[0], c.recall[0]), (1.0, 0.0));
        assert_eq!(c.precision[1], 1.0); // >= 0.8
        assert_eq!(c.precision[2], 0.5); // >= 0.7
        // sklearn.metrics.average_precision_score(L, S) == 0.6916666666666667; by hand:
        // ΔR·P = .25·1 (0.8) + 0 (0.7) + .25·2/4 (0.4) + .25·3/5 (0.35) + .25·4/6 (0.2).
        let ap = aupr(&S, &L).unwrap();
        let want = 0.25 + 0.25 * 0.5 + 0.25 * 0.6 + 0.25 * 4.0 / 6.0;
        assert!((ap - want).abs() < 1e-15, "{ap}");
        assert!((ap - 0.691_666_666_666_666_7).abs() < 1e-15, "{ap}");
        assert!((c.average_precision() - ap).abs() < 1e-15);
        assert_eq!(
            aupr(&[0.1f64, 0.2], &[false, false]),
            Err(MetricsError::NoPositives)
        );
        assert_eq!(aupr(&[0.1f64, 0.2], &[true, true]), Ok(1.0));
    }
}
