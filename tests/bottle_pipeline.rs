//! Cross-crate integration on real data: MVTec AD `bottle` (from `$STAD_SHARED`) goes
//! through loading (900² PNGs, masks), the embedded teacher, a briefly trained STFPM student,
//! the detector (save, load, predict at the original size) and the metrics.

use stad::backend::{Cpu, CpuAutodiff};
use stad::data::{Dataset, MvtecOptions};
use stad::{Detector, MethodKind, ModelConfig, Silent, TrainConfig, train};

#[test]
fn bottle_trains_evaluates_and_predicts_end_to_end() {
    let root = stad_testutil::shared_dir().join("data/mvtec_ad/bottle");
    let data = Dataset::mvtec(&root, &MvtecOptions::default()).unwrap();
    let device = Default::default();
    let model = ModelConfig::embedded(MethodKind::Stfpm.default_config()).with_image_size(64);
    let train_subset = data.train.iter().take(20).cloned().collect();
    let config = TrainConfig::new().with_epochs(1).with_batch_size(10);
    let outcome =
        train::<CpuAutodiff>(&model, &config, train_subset, None, &device, &mut Silent).unwrap();
    assert_eq!(outcome.holdout.len(), 4);

    let eval = stad::evaluate::<Cpu>(&outcome.model, data.test.clone(), 16, &device).unwrap();
    assert_eq!(eval.n_test, 83);
    let mut defects: Vec<_> = eval
        .per_defect
        .iter()
        .map(|d| (d.defect_type.as_str(), d.n_anomalous))
        .collect();
    defects.sort();
    assert_eq!(
        defects,
        vec![
            ("broken_large", 20),
            ("broken_small", 22),
            ("contamination", 21)
        ]
    );
    for v in [
        eval.image_auroc,
        eval.pixel_auroc,
        eval.au_pro,
        eval.dice,
        eval.iou,
    ] {
        assert!((0.0..=1.0).contains(&v), "metric out of range: {eval:?}");
    }

    let detector = Detector::calibrate(outcome.model, outcome.holdout, None, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bottle.stad");
    detector.save(&path).unwrap();
    let detector = Detector::<Cpu>::load(&path, &device).unwrap();
    let sample = data
        .test
        .iter()
        .find(|s| s.defect == "broken_large")
        .unwrap()
        .clone();
    let prediction = detector
        .predict(vec![sample], true, &device)
        .unwrap()
        .remove(0);
    let (map, size) = prediction.original_map.unwrap();
    assert_eq!(size, (900, 900));
    assert_eq!(map.len(), 900 * 900);
    assert!(map.iter().all(|v| v.is_finite() && *v >= 0.0));
}

/// Image AUROC on bottle's test set of STFPM with a ResNet18 teacher of `weights`, trained
/// briefly (128², 6 epochs, batch 16, every training image).
///
/// Six epochs, not fewer: after two (26 steps at lr 0.4) the ImageNet teacher's figure
/// ranged from 0.58 to 0.98 over seeds 42–47 (this function, with and without the Winograd
/// convolution kernels alike), so a pass or fail said more about the seed than about the
/// model. After six (`stad train` at the same settings, which holds 42 images out), seeds
/// 42–45 gave 0.987–0.993, the random teacher 0.58–0.75.
fn resnet18_stfpm_image_auroc(weights: stad::TeacherWeights) -> f64 {
    let root = stad_testutil::shared_dir().join("data/mvtec_ad/bottle");
    let data = Dataset::mvtec(&root, &MvtecOptions::default()).unwrap();
    let device = Default::default();
    let model = ModelConfig::new(
        stad::backbones::BackboneConfig::resnet18(),
        weights,
        MethodKind::Stfpm.default_config(),
    )
    .with_image_size(128);
    let config = TrainConfig::new().with_epochs(6).with_batch_size(16);
    let outcome =
        train::<CpuAutodiff>(&model, &config, data.train, None, &device, &mut Silent).unwrap();
    stad::evaluate::<Cpu>(&outcome.model, data.test, 16, &device)
        .unwrap()
        .image_auroc
}

/// The thesis' teacher on real data (issue 11): torchvision's ImageNet ResNet18 (to layer3,
/// BatchNorm folded) makes STFPM find bottle's defects; a random ResNet18 teacher, the
/// control, does not (PyTorch's reference: 0.999 against 0.53 after 40 epochs at 224²).
#[test]
fn imagenet_resnet18_teacher_finds_bottle_defects_and_a_random_teacher_does_not() {
    let weights = stad_testutil::shared_dir()
        .join("weights/resnet18_imagenet_to_layer3_bnfolded.safetensors");
    let imagenet = resnet18_stfpm_image_auroc(stad::TeacherWeights::File(
        weights.to_string_lossy().into_owned(),
    ));
    let random = resnet18_stfpm_image_auroc(stad::TeacherWeights::Random(42));
    eprintln!("bottle image AUROC: ImageNet ResNet18 teacher {imagenet:.3}, random {random:.3}");
    assert!(
        imagenet >= 0.93,
        "ImageNet teacher: image AUROC {imagenet:.3}"
    );
    assert!(
        imagenet - random >= 0.2,
        "ImageNet {imagenet:.3} is not clearly above the random control {random:.3}"
    );
}
