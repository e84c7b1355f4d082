//! Parity with the reference values of `../shared/fixtures/manifest.json → metrics`
//! (computed with scikit-learn / scipy / MVTec AD's evaluation code), within 1e-9.

use stad_metrics::{
    Connectivity, MapShape, au_pro, dice, f1_optimal_threshold, image_auroc, pixel_auroc,
    pro_curve, segmentation_scores,
};

const TOL: f64 = 1e-9;

struct Fixture {
    maps: Vec<f32>,
    masks: Vec<u8>,
    shape: MapShape,
    image_scores: Vec<f32>,
    image_labels: Vec<bool>,
    expected: serde_json::Value,
}

fn fixture() -> Fixture {
    let maps = stad_testutil::read_fixture("metrics_maps.npy");
    let masks = stad_testutil::read_fixture("metrics_masks.npy");
    assert_eq!(maps.shape.len(), 3, "metrics_maps.npy is N x H x W");
    let shape = MapShape::new(maps.shape[0], maps.shape[1], maps.shape[2]);
    assert_eq!(
        masks.data.len(),
        maps.data.len(),
        "masks and maps have as many pixels"
    );
    let masks: Vec<u8> = masks.data.iter().map(|&v| u8::from(v != 0.0)).collect();
    let hw = shape.pixels_per_map();
    let image_scores: Vec<f32> = maps
        .data
        .chunks(hw)
        .map(|m| m.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let image_labels: Vec<bool> = masks
        .chunks(hw)
        .map(|m| m.iter().any(|&v| v != 0))
        .collect();
    let expected = stad_testutil::manifest()["metrics"].clone();
    assert!(expected.is_object(), "manifest.json has a `metrics` object");
    Fixture {
        maps: maps.data,
        masks,
        shape,
        image_scores,
        image_labels,
        expected,
    }
}

fn expected(f: &Fixture, key: &str) -> f64 {
    f.expected[key]
        .as_f64()
        .unwrap_or_else(|| panic!("manifest metrics.{key} is a number"))
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got:.17}, manifest {want:.17}"
    );
}

#[test]
fn fixture_layout() {
    let f = fixture();
    assert_eq!(f.expected["image_scores_are"], "max of each map");
    // The README: the first 12 images are defect-free.
    assert!(f.image_labels[..12].iter().all(|&l| !l));
}

#[test]
fn image_auroc_matches_manifest() {
    let f = fixture();
    let got = image_auroc(&f.image_scores, &f.image_labels).unwrap();
    assert_close(got, expected(&f, "image_auroc"), "image AUROC");
    // f64 input gives the same.
    let s64: Vec<f64> = f.image_scores.iter().map(|&v| f64::from(v)).collect();
    assert_close(
        image_auroc(&s64, &f.image_labels).unwrap(),
        got,
        "image AUROC (f64)",
    );
}

#[test]
fn pixel_auroc_matches_manifest() {
    let f = fixture();
    let got = pixel_auroc(&f.maps, &f.masks).unwrap();
    assert_close(got, expected(&f, "pixel_auroc"), "pixel AUROC");
}

#[test]
fn au_pro_matches_manifest() {
    let f = fixture();
    for (limit, key) in [(0.3, "au_pro_0.3"), (1.0, "au_pro_1.0")] {
        let got = au_pro(&f.maps, &f.masks, f.shape, limit).unwrap();
        assert_close(got, expected(&f, key), key);
    }
    // The stored curve integrates to the same numbers.
    let curve = pro_curve(&f.maps, &f.masks, f.shape, Connectivity::Eight).unwrap();
    assert_close(
        curve.au_pro(0.3).unwrap(),
        expected(&f, "au_pro_0.3"),
        "curve 0.3",
    );
    assert_close(
        curve.au_pro(1.0).unwrap(),
        expected(&f, "au_pro_1.0"),
        "curve 1.0",
    );
}

#[test]
fn f1_threshold_matches_manifest() {
    let f = fixture();
    let got = f1_optimal_threshold(&f.image_scores, &f.image_labels).unwrap();
    assert_close(got.f1, expected(&f, "image_f1_max"), "image F1 max");
    // The threshold is an f32 score; the manifest prints it as a (shortest) f64.
    let want = expected(&f, "image_f1_threshold");
    assert_eq!(
        got.threshold as f32, want as f32,
        "threshold {} vs {want}",
        got.threshold
    );
    assert!(
        f.image_scores
            .iter()
            .any(|&s| f64::from(s) == got.threshold),
        "an observed score"
    );
    assert_close(
        2.0 * got.precision * got.recall / (got.precision + got.recall),
        got.f1,
        "F1",
    );
}

#[test]
fn dice_matches_manifest() {
    let f = fixture();
    let t = f1_optimal_threshold(&f.image_scores, &f.image_labels)
        .unwrap()
        .threshold;
    let d = dice(&f.maps, &f.masks, f.shape, t).unwrap();
    assert_close(
        d.global,
        expected(&f, "pixel_dice_global_at_threshold"),
        "Dice global",
    );
    assert_close(
        d.mean_over_anomalous,
        expected(&f, "pixel_dice_mean_over_anomalous_images_at_threshold"),
        "Dice mean over anomalous images",
    );
    // The manifest's threshold, rounded to the maps' f32, gives the same binarisation.
    let t_manifest = f64::from(expected(&f, "image_f1_threshold") as f32);
    let s = segmentation_scores(&f.maps, &f.masks, f.shape, t_manifest).unwrap();
    assert_eq!(s.dice, d);
    assert_eq!(s.n_anomalous_images, 12);
}
