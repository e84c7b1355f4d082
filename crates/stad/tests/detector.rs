//! A detector saved and loaded gives the same predictions; thresholds come from nominal data
//! or labelled validation data.

mod common;

use stad::backend::Cpu;
use stad::{Detector, MethodKind, ThresholdSource};

/// A decoupled student's adapters travel with the detector: the loaded one scores alike, and
/// its adapters are the trained ones (not freshly drawn).
#[test]
fn decoupled_student_round_trips_with_its_adapters() {
    let device = Default::default();
    let data = common::tiny_data(9);
    let outcome = common::fit(
        &common::model(MethodKind::Decoupled, 64),
        &common::quick(1),
        data.train,
        None,
    )
    .unwrap();
    let student = &outcome.model.students()[0];
    // MobileNetV2 taps (24/32/96 channels) to the embedded teacher's (24/32/96): 1×1 each.
    let widths: Vec<[usize; 4]> = student
        .adapters()
        .iter()
        .map(|a| a.weight.val().dims())
        .collect();
    assert_eq!(widths, vec![[24, 24, 1, 1], [32, 32, 1, 1], [96, 96, 1, 1]]);
    let detector =
        Detector::calibrate_nominal(outcome.model, outcome.holdout, 0.99, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoupled.stad");
    detector.save(&path).unwrap();
    let loaded = Detector::<Cpu>::load(&path, &device).unwrap();
    let values = |d: &Detector<Cpu>| -> Vec<f32> {
        d.model.students()[0].adapters()[2]
            .weight
            .val()
            .into_data()
            .to_vec()
            .unwrap()
    };
    assert_eq!(values(&loaded), values(&detector));
    let a = detector.predict(data.test.clone(), false, &device).unwrap();
    let b = loaded.predict(data.test, false, &device).unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert_eq!(p.score, q.score);
        assert_eq!(p.map, q.map);
    }
}

#[test]
fn save_load_round_trip_and_prediction_shapes() {
    let device = Default::default();
    let data = common::tiny_data(8);
    let outcome = common::fit(
        &common::model(MethodKind::SimpleStudent, 64),
        &common::quick(1),
        data.train,
        None,
    )
    .unwrap();
    let detector =
        Detector::calibrate_nominal(outcome.model, outcome.holdout, 0.99, &device).unwrap();
    assert_eq!(
        detector.threshold_source,
        ThresholdSource::NominalQuantile(0.99)
    );
    assert!(detector.threshold.is_finite());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.stad");
    detector.save(&path).unwrap();
    let loaded = Detector::<Cpu>::load(&path, &device).unwrap();
    assert_eq!(loaded.threshold, detector.threshold);

    let a = detector.predict(data.test.clone(), true, &device).unwrap();
    let b = loaded.predict(data.test.clone(), false, &device).unwrap();
    assert_eq!(a.len(), data.test.len());
    for (p, q) in a.iter().zip(&b) {
        assert_eq!(p.score, q.score);
        assert_eq!(p.map, q.map);
        assert_eq!(p.map_size, (64, 64));
        assert_eq!(p.mask.len(), 64 * 64);
        assert_eq!(p.is_anomalous, f64::from(p.score) >= detector.threshold);
        let (orig, size) = p.original_map.as_ref().unwrap();
        assert_eq!(*size, (64, 64)); // tiny synthetic images are 64² originals
        assert_eq!(orig.len(), 64 * 64);
        assert!(q.original_map.is_none());
    }

    // A threshold set by hand: the median test score flags the upper half; the batch size changes
    // nothing but memory.
    let mut scores: Vec<f32> = a.iter().map(|p| p.score).collect();
    scores.sort_by(f32::total_cmp);
    let median = f64::from(scores[scores.len() / 2]);
    let manual = loaded
        .with_threshold(median)
        .unwrap()
        .with_batch_size(3)
        .unwrap();
    assert_eq!(manual.threshold_source, ThresholdSource::Manual);
    let c = manual.predict(data.test.clone(), false, &device).unwrap();
    for (p, q) in a.iter().zip(&c) {
        assert_eq!(p.score, q.score);
        assert_eq!(q.is_anomalous, f64::from(q.score) >= median);
    }
    let flagged = c.iter().filter(|q| q.is_anomalous).count();
    assert!(flagged >= scores.len() - scores.len() / 2, "{flagged}");
    assert!(manual.clone().with_threshold(f64::NAN).is_err());
    assert!(manual.with_batch_size(0).is_err());
}

#[test]
fn f1_threshold_needs_anomalies_and_uses_them() {
    let device = Default::default();
    let data = common::tiny_data(9);
    let outcome = common::fit(
        &common::model(MethodKind::Stfpm, 64),
        &common::quick(1),
        data.train,
        None,
    )
    .unwrap();
    let nominal_only = outcome.holdout.clone();
    assert!(Detector::calibrate_f1(outcome.model.clone(), nominal_only, &device).is_err());
    let detector = Detector::calibrate(
        outcome.model.clone(),
        outcome.holdout.clone(),
        Some(data.test),
        &device,
    )
    .unwrap();
    assert_eq!(detector.threshold_source, ThresholdSource::F1Optimal);
    let default = Detector::calibrate(outcome.model, outcome.holdout, None, &device).unwrap();
    assert_eq!(
        default.threshold_source,
        ThresholdSource::NominalQuantile(stad::DEFAULT_NOMINAL_QUANTILE)
    );
}
