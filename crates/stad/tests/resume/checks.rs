//! A resume refuses what would silently give a wrong run: other training data, a changed teacher
//! file, fewer epochs than done (issue 14, cases 5–7).

use super::common;

use stad::backbones::BackboneConfig;
use stad::backbones::embedded::MOBILENET_V2_IMAGENET;
use stad::{MethodKind, ModelConfig, RunDir, StadError, TeacherWeights};

fn mismatch_reason(err: StadError) -> String {
    match err {
        StadError::CheckpointMismatch { reason, .. } => reason,
        other => panic!("expected CheckpointMismatch, got {other}"),
    }
}

#[test]
fn resume_with_other_training_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::model(MethodKind::Stfpm, 64);
    let data = common::tiny_data(4).train;
    let fresh = RunDir::open(dir.path(), false).unwrap();
    common::fit(&model, &common::quick(1), data.clone(), Some(&fresh)).unwrap();
    drop(fresh);
    let resume = RunDir::open(dir.path(), true).unwrap();

    let other = common::tiny_data(5).train;
    let reason =
        mismatch_reason(common::fit(&model, &common::quick(2), other, Some(&resume)).unwrap_err());
    assert!(reason.contains("training data"), "{reason}");
    assert!(reason.contains("differ in name or content"), "{reason}");

    let fewer = data[..data.len() - 1].to_vec();
    let reason =
        mismatch_reason(common::fit(&model, &common::quick(2), fewer, Some(&resume)).unwrap_err());
    assert!(
        reason.contains(&format!(
            "{} image(s) then, {} now",
            data.len(),
            data.len() - 1
        )),
        "{reason}"
    );

    // The same data resume.
    let resumed = common::fit(&model, &common::quick(2), data, Some(&resume)).unwrap();
    assert_eq!(resumed.history.len(), 2);
}

#[test]
fn resume_with_a_changed_teacher_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("teacher.safetensors");
    std::fs::write(&weights, MOBILENET_V2_IMAGENET).unwrap();
    let model = ModelConfig::new(
        BackboneConfig::mobilenet_v2_tf(),
        TeacherWeights::File(weights.to_string_lossy().into_owned()),
        MethodKind::Stfpm.default_config(),
    )
    .with_image_size(64);
    let data = common::tiny_data(4).train;
    let run = dir.path().join("run");
    let fresh = RunDir::open(&run, false).unwrap();
    common::fit(&model, &common::quick(1), data.clone(), Some(&fresh)).unwrap();
    drop(fresh);

    // Same shapes, other values: the lowest mantissa bit of the first stored float.
    let mut bytes = MOBILENET_V2_IMAGENET.to_vec();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header_len] ^= 1;
    std::fs::write(&weights, &bytes).unwrap();

    let resume = RunDir::open(&run, true).unwrap();
    let reason = mismatch_reason(
        common::fit(&model, &common::quick(2), data.clone(), Some(&resume)).unwrap_err(),
    );
    assert!(reason.contains("teacher's weight file changed"), "{reason}");
    assert!(reason.contains("teacher.safetensors"), "{reason}");

    std::fs::write(&weights, MOBILENET_V2_IMAGENET).unwrap();
    common::fit(&model, &common::quick(2), data, Some(&resume)).unwrap();
}

#[test]
fn resume_with_fewer_epochs_than_done_is_refused_and_as_many_trains_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::model(MethodKind::Stfpm, 64);
    let data = common::tiny_data(4).train;
    let fresh = RunDir::open(dir.path(), false).unwrap();
    let done = common::fit(&model, &common::quick(2), data.clone(), Some(&fresh)).unwrap();
    drop(fresh);
    let last_before = std::fs::read(dir.path().join("last.ckpt")).unwrap();

    let resume = RunDir::open(dir.path(), true).unwrap();
    let reason = mismatch_reason(
        common::fit(&model, &common::quick(1), data.clone(), Some(&resume)).unwrap_err(),
    );
    assert!(
        reason.contains("done 2 epochs, more than the 1 asked for"),
        "{reason}"
    );

    let again = common::fit(&model, &common::quick(2), data, Some(&resume)).unwrap();
    // The history comes back from the checkpoint's JSON (timings to its float precision).
    let losses = |h: &[stad::EpochSummary]| {
        h.iter()
            .map(|e| (e.epoch, e.train_loss, e.validation_score))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&again.history), losses(&done.history));
    assert_eq!(again.best_epoch, done.best_epoch);
    // Nothing was trained, so nothing was rewritten.
    assert_eq!(
        std::fs::read(dir.path().join("last.ckpt")).unwrap(),
        last_before
    );
}
