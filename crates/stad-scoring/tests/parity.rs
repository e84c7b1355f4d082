//! Parity with the PyTorch reference fixtures (`$STAD_SHARED/fixtures`, see its README).
//!
//! Tolerance: `max |ours − ref| ≤ 1e-5 · max |ref|` over each array (a relative tolerance
//! scaled by the array's maximum, so tiny entries are judged in absolute terms).

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use stad_scoring::{
    AnomalyMapConfig, EnsembleMode, ensemble_layer_maps, image_scores, reference, stfpm_layer_map,
};
use stad_testutil::{NpyArray, manifest, max_abs_diff, read_fixture};

type B = Flex;

const REL_TOL: f32 = 1e-5;

fn tensor(a: NpyArray) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(a.data, a.shape), &Default::default())
}

fn fixture(name: &str) -> Tensor<B, 4> {
    tensor(read_fixture(name))
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Checks `max |got − expected| ≤ REL_TOL · max |expected|`; returns `(abs, rel)` errors.
fn assert_close(what: &str, got: &[f32], expected: &[f32]) -> (f32, f32) {
    let abs = max_abs_diff(got, expected);
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let rel = abs / scale;
    println!("{what}: max |diff| = {abs:.3e}, / max |ref| ({scale:.4}) = {rel:.3e}");
    assert!(
        rel <= REL_TOL,
        "{what}: max |diff| {abs:e} > {REL_TOL:e} · {scale}"
    );
    (abs, rel)
}

fn stfpm_pyramids() -> (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>) {
    let teacher = (1..=3)
        .map(|k| fixture(&format!("teacher_layer{k}.npy")))
        .collect();
    let student = (1..=3)
        .map(|k| fixture(&format!("student_layer{k}.npy")))
        .collect();
    (teacher, student)
}

#[test]
fn stfpm_map_and_image_score() {
    let (teacher, student) = stfpm_pyramids();
    let expected = read_fixture("stfpm_map.npy");
    assert_eq!(expected.shape, [1, 1, 224, 224]);

    let map = AnomalyMapConfig::new([224, 224])
        .stfpm_map(&teacher, &student)
        .unwrap();
    assert_eq!(map.dims(), [1, 1, 224, 224]);
    assert_close("stfpm_map (fused)", &values(map.clone()), &expected.data);

    // The reference formulation agrees too.
    let reference_map = teacher
        .iter()
        .zip(&student)
        .map(|(t, s)| reference::stfpm_layer_map(t.clone(), s.clone()).unwrap())
        .map(|m| reference::upsample_bilinear(m, [224, 224]))
        .reduce(|a, b| a * b)
        .unwrap();
    assert_close(
        "stfpm_map (reference)",
        &values(reference_map),
        &expected.data,
    );

    let score = values(image_scores(map))[0];
    let expected_score = manifest()["stfpm_image_score"].as_f64().unwrap() as f32;
    let rel = (score - expected_score).abs() / expected_score;
    println!("stfpm_image_score: {score} vs {expected_score} (rel {rel:.3e})");
    assert!(rel <= REL_TOL, "image score {score} vs {expected_score}");
}

#[test]
fn stfpm_layer_maps_fused_vs_reference() {
    let (teacher, student) = stfpm_pyramids();
    for (k, (t, s)) in teacher.into_iter().zip(student).enumerate() {
        let fused = values(stfpm_layer_map(t.clone(), s.clone()).unwrap());
        let reference = values(reference::stfpm_layer_map(t, s).unwrap());
        assert_close(&format!("stfpm layer {}", k + 1), &fused, &reference);
    }
}

fn ensemble_pyramids() -> (Vec<Tensor<B, 4>>, Vec<Vec<Tensor<B, 4>>>) {
    let teacher = (1..=3)
        .map(|k| fixture(&format!("ens_teacher_l{k}.npy")))
        .collect();
    let students = (0..3)
        .map(|s| {
            (1..=3)
                .map(|k| fixture(&format!("ens_student{s}_l{k}.npy")))
                .collect()
        })
        .collect();
    (teacher, students)
}

#[test]
fn ensemble_layer_maps_match_fixtures() {
    let (teacher, students) = ensemble_pyramids();
    for k in 0..3 {
        let layer: Vec<_> = students.iter().map(|s| s[k].clone()).collect();
        let error_ref = read_fixture(&format!("ens_error_l{}.npy", k + 1));
        let variance_ref = read_fixture(&format!("ens_variance_l{}.npy", k + 1));
        let [b, _, h, w] = teacher[k].dims();
        assert_eq!(error_ref.shape, [b, h, w]);

        let (error, variance) = ensemble_layer_maps(teacher[k].clone(), &layer).unwrap();
        assert_close(
            &format!("ens_error_l{} (fused)", k + 1),
            &values(error),
            &error_ref.data,
        );
        assert_close(
            &format!("ens_variance_l{} (fused)", k + 1),
            &values(variance),
            &variance_ref.data,
        );

        let (error, variance) = reference::ensemble_layer_maps(teacher[k].clone(), &layer).unwrap();
        assert_close(
            &format!("ens_error_l{} (reference)", k + 1),
            &values(error),
            &error_ref.data,
        );
        assert_close(
            &format!("ens_variance_l{} (reference)", k + 1),
            &values(variance),
            &variance_ref.data,
        );
    }
}

#[test]
fn ensemble_map_matches_fixture() {
    let (teacher, students) = ensemble_pyramids();
    let expected = read_fixture("ens_map.npy");
    assert_eq!(expected.shape, [2, 128, 128]);
    let config = AnomalyMapConfig::new([128, 128]);
    assert_eq!(config.ensemble_mode, EnsembleMode::Sum);
    let map = config.ensemble_map(&teacher, &students).unwrap();
    assert_eq!(map.dims(), [2, 1, 128, 128]);
    assert_close("ens_map", &values(map), &expected.data);
}
