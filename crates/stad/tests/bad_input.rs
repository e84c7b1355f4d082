//! Bad input gives typed errors, never a panic.

mod common;
// The resume refusals (other data, a changed teacher, fewer epochs), in this test binary.
#[path = "resume/checks.rs"]
mod resume_checks;

use burn::prelude::*;
use stad::backend::Cpu;
use stad::checkpoint::CheckpointError;
use stad::{Detector, MethodConfig, MethodKind, RunDir, StadError, TrainConfig};

#[test]
fn checkpoint_of_another_method_is_refused() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let data = common::tiny_data(4).train;
    common::fit(
        &common::model(MethodKind::Stfpm, 64),
        &common::quick(1),
        data.clone(),
        Some(&RunDir::open(dir.path(), false).unwrap()),
    )
    .unwrap();
    let run_dir = RunDir::open(dir.path(), true).unwrap();
    for other in [MethodKind::SimpleStudent, MethodKind::Ensemble] {
        let err = common::fit(
            &common::model(other, 64),
            &common::quick(2),
            data.clone(),
            Some(&run_dir),
        )
        .unwrap_err();
        assert!(
            matches!(err, StadError::CheckpointMismatch { .. }),
            "{other:?}: {err}"
        );
    }
    // Other hyper-parameters than `epochs` are refused too.
    let err = common::fit(
        &common::model(MethodKind::Stfpm, 64),
        &common::quick(2).with_learning_rate(0.1),
        data,
        Some(&run_dir),
    )
    .unwrap_err();
    assert!(matches!(err, StadError::CheckpointMismatch { .. }), "{err}");
    // A training checkpoint is not a detector.
    let err = Detector::<Cpu>::load(&run_dir.last(), &device).unwrap_err();
    assert!(matches!(err, StadError::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn corrupt_checkpoint_is_a_typed_error() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let model = common::model(MethodKind::Stfpm, 64);
    let data = common::tiny_data(5).train;
    let fresh = RunDir::open(dir.path(), false).unwrap();
    common::fit(&model, &common::quick(1), data.clone(), Some(&fresh)).unwrap();
    drop(fresh);
    let run_dir = RunDir::open(dir.path(), true).unwrap();
    let mut bytes = std::fs::read(run_dir.last()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(run_dir.last(), &bytes).unwrap();
    let err = common::fit(&model, &common::quick(2), data.clone(), Some(&run_dir)).unwrap_err();
    assert!(
        matches!(err, StadError::Checkpoint(CheckpointError::Corrupt { .. })),
        "{err}"
    );
    std::fs::write(run_dir.last(), &bytes[..100]).unwrap();
    let err = common::fit(&model, &common::quick(2), data, Some(&run_dir)).unwrap_err();
    assert!(
        matches!(err, StadError::Checkpoint(CheckpointError::Corrupt { .. })),
        "{err}"
    );
    let err = Detector::<Cpu>::load(&dir.path().join("missing.stad"), &device).unwrap_err();
    assert!(
        matches!(err, StadError::Checkpoint(CheckpointError::Io { .. })),
        "{err}"
    );
}

#[test]
fn nan_in_the_input_is_a_scoring_error_not_a_score() {
    let device = Default::default();
    let model = common::model(MethodKind::Stfpm, 64);
    let st = model.init_seeded::<Cpu>(1, &device).unwrap();
    let mut pixels = vec![0.1f32; 3 * 64 * 64];
    pixels[100] = f32::NAN;
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(pixels, [1, 3, 64, 64]), &device);
    let err = st.anomaly_maps(x).unwrap_err();
    assert!(
        matches!(err, StadError::NonFiniteInput { count: 1, .. }),
        "{err}"
    );

    // All-zero features (a black image through a zero-initialised student) stay finite.
    let zeros = Tensor::<Cpu, 4>::zeros([1, 3, 64, 64], &device);
    assert!(st.anomaly_maps(zeros).is_ok());
}

#[test]
fn empty_training_set_and_bad_hyper_parameters_are_refused() {
    let model = common::model(MethodKind::Stfpm, 64);
    let err = common::fit(&model, &common::quick(1), Vec::new(), None).unwrap_err();
    assert!(
        matches!(
            err,
            StadError::Data(stad::data::DataError::EmptyTrainSet { .. })
        ),
        "{err}"
    );
    let data = common::tiny_data(6).train;
    for bad in [
        TrainConfig::new().with_learning_rate(-1.0),
        TrainConfig::new().with_batch_size(0),
        TrainConfig::new().with_holdout_fraction(1.0),
        TrainConfig::new().with_momentum(1.5),
    ] {
        let err = common::fit(&model, &bad, data.clone(), None).unwrap_err();
        assert!(matches!(err, StadError::InvalidConfig(_)), "{err}");
    }
    let one_student = common::model_with(MethodConfig::ensemble(1), 64);
    assert!(matches!(
        one_student.init::<Cpu>(&Default::default()),
        Err(StadError::InvalidConfig(_))
    ));
}
