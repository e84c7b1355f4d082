//! Property tests: AUROC is invariant to strictly increasing transforms of the scores and is
//! `1 − AUROC` of the negated scores; it agrees with the quadratic pair count; the streamed
//! AU-PRO equals the integral of the stored curve.

use proptest::prelude::*;
use stad_metrics::{Connectivity, au_pro, image_auroc, pro_curve, roc_curve};

/// Scores drawn from a few values (to force ties) and labels with both classes.
fn scores_and_labels() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    (2usize..200)
        .prop_flat_map(|n| {
            (
                prop::collection::vec((0i32..20).prop_map(|v| f64::from(v) / 4.0 - 2.0), n),
                prop::collection::vec(any::<bool>(), n),
            )
        })
        .prop_filter("both classes", |(_, l)| {
            l.iter().any(|&b| b) && l.iter().any(|&b| !b)
        })
}

/// The O(P·N) definition: a tied pair counts ½.
fn pair_count_auroc(s: &[f64], l: &[bool]) -> f64 {
    let (mut u, mut pairs) = (0.0, 0.0);
    for (i, &a) in s.iter().enumerate() {
        for (j, &b) in s.iter().enumerate() {
            if l[i] && !l[j] {
                pairs += 1.0;
                u += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    u / pairs
}

proptest! {
    #[test]
    fn invariant_to_strictly_increasing_transforms((s, l) in scores_and_labels()) {
        let base = image_auroc(&s, &l).unwrap();
        // The scores lie in [-2, 2.75] on a 0.25 grid: all three transforms stay strictly
        // increasing in f64 there.
        let transforms: [fn(f64) -> f64; 3] =
            [|x| x.exp(), |x| 3.0 * x + 7.0, |x| x * x * x + x];
        for t in transforms {
            let st: Vec<f64> = s.iter().map(|&x| t(x)).collect();
            prop_assert_eq!(image_auroc(&st, &l).unwrap(), base);
        }
        // ... and so does narrowing to f32 (the grid is exact in f32).
        let s32: Vec<f32> = s.iter().map(|&x| x as f32).collect();
        prop_assert_eq!(image_auroc(&s32, &l).unwrap(), base);
    }

    #[test]
    fn negated_scores_give_one_minus((s, l) in scores_and_labels()) {
        let neg: Vec<f64> = s.iter().map(|&x| -x).collect();
        let a = image_auroc(&s, &l).unwrap();
        let b = image_auroc(&neg, &l).unwrap();
        prop_assert!((a + b - 1.0).abs() < 1e-12, "{} + {} != 1", a, b);
    }

    #[test]
    fn equals_pair_count_and_roc_area((s, l) in scores_and_labels()) {
        let a = image_auroc(&s, &l).unwrap();
        prop_assert!((a - pair_count_auroc(&s, &l)).abs() < 1e-12);
        prop_assert!((a - roc_curve(&s, &l).unwrap().area()).abs() < 1e-12);
    }

    #[test]
    fn streamed_au_pro_equals_curve_integral(
        (maps, masks, limit) in (1usize..4, 2usize..9, 2usize..9).prop_flat_map(|(n, h, w)| {
            let len = n * h * w;
            (
                prop::collection::vec((0u8..12).prop_map(|v| f32::from(v) / 11.0), len),
                prop::collection::vec(prop::bool::weighted(0.3), len),
                0.01f64..=1.0,
            ).prop_map(move |(m, k, lim)| ((m, (n, h, w)), k, lim))
        }).prop_filter("regions and background", |((_, _), k, _)| {
            k.iter().any(|&b| b) && k.iter().any(|&b| !b)
        })
    ) {
        let ((maps, shape), masks) = (maps, masks);
        let streamed = au_pro(&maps, &masks, shape, limit).unwrap();
        let curve = pro_curve(&maps, &masks, shape, Connectivity::Eight).unwrap();
        prop_assert!((streamed - curve.au_pro(limit).unwrap()).abs() < 1e-12);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&streamed));
    }
}
