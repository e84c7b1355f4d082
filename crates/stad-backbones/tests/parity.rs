//! Parity with torchvision: the fixtures in `$STAD_SHARED/fixtures` were computed by PyTorch.

use burn::backend::Flex;
use burn::prelude::*;
use stad_backbones::{
    BackboneConfig, MobileNetV2Config, ResNetArch, ResNetConfig, ResNetStage, StateDict,
};
use stad_testutil::{NpyArray, fixture, max_abs_diff, read_fixture};

type B = Flex;

fn input(device: &burn::backend::flex::FlexDevice) -> Tensor<B, 4> {
    let NpyArray { shape, data } = read_fixture("input.npy");
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn assert_close(name: &str, got: Tensor<B, 4>, tol: f32) {
    let want = read_fixture(name);
    assert_eq!(got.dims().to_vec(), want.shape, "{name}: shape");
    let got: Vec<f32> = got.into_data().convert::<f32>().to_vec().unwrap();
    let diff = max_abs_diff(&got, &want.data);
    assert!(diff <= tol, "{name}: max |diff| {diff} > {tol}");
}

#[test]
fn resnet18_teacher_matches_torchvision_safetensors() {
    let device = Default::default();
    let config = BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet18).with_taps(vec![
        ResNetStage::Stem,
        ResNetStage::Layer1,
        ResNetStage::Layer2,
        ResNetStage::Layer3,
    ]));
    let mut net = config.init::<B>(&device).unwrap();
    let report = net
        .load_torchvision_file(fixture("resnet18_teacher.safetensors"))
        .unwrap();
    // layer4 and fc of the full file are skipped, not applied.
    assert!(
        report
            .skipped_not_built
            .iter()
            .any(|k| k.starts_with("layer4."))
    );
    assert!(
        report
            .skipped_not_built
            .iter()
            .any(|k| k.starts_with("fc."))
    );
    let maps = net.forward_features(input(&device));
    for (map, name) in maps.into_iter().zip([
        "teacher_stem.npy",
        "teacher_layer1.npy",
        "teacher_layer2.npy",
        "teacher_layer3.npy",
    ]) {
        assert_close(name, map, 1e-4);
    }
}

/// The thesis' teacher: torchvision's ImageNet ResNet18 to layer3 (BatchNorm folded), a
/// partial state dict, gives PyTorch's layer1/2/3 features (issue 11, part 1).
#[test]
fn resnet18_imagenet_teacher_matches_torchvision() {
    let device = Default::default();
    let mut net = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    let weights = stad_testutil::shared_dir()
        .join("weights/resnet18_imagenet_to_layer3_bnfolded.safetensors");
    let report = net.load_torchvision_file(weights).unwrap();
    // int64 num_batches_tracked is the only thing the file has that is not applied.
    assert!(
        report
            .skipped_not_built
            .iter()
            .all(|k| k.ends_with("num_batches_tracked")),
        "{:?}",
        report.skipped_not_built
    );
    let maps = net.forward_features(input(&device));
    for (map, name) in maps.into_iter().zip([
        "resnet18_imagenet_layer1.npy",
        "resnet18_imagenet_layer2.npy",
        "resnet18_imagenet_layer3.npy",
    ]) {
        assert_close(name, map, 1e-4);
    }
}

#[test]
fn resnet18_student_matches_torchvision_pth() {
    let device = Default::default();
    let mut net = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    net.load_torchvision_file(fixture("resnet18_student_to_layer3.pth"))
        .unwrap();
    let maps = net.forward_features(input(&device));
    for (map, name) in maps.into_iter().zip([
        "student_layer1.npy",
        "student_layer2.npy",
        "student_layer3.npy",
    ]) {
        assert_close(name, map, 1e-4);
    }
}

#[test]
fn mobilenet_v2_tf_padding_matches_pytorch() {
    let device = Default::default();
    let path = stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors");
    let mut net = BackboneConfig::mobilenet_v2_tf()
        .init::<B>(&device)
        .unwrap();
    net.load_torchvision_file(&path).unwrap();
    let maps = net.forward_features(input(&device));
    for (map, name) in maps.into_iter().zip([
        "mobilenet_features3.npy",
        "mobilenet_features6.npy",
        "mobilenet_features13.npy",
    ]) {
        assert_close(name, map, 1e-4);
    }
}

#[test]
fn mobilenet_v2_without_tf_padding_drifts() {
    // The control of the test above: torchvision's symmetric padding must NOT match, so the
    // TF padding is what makes the parity.
    let device = Default::default();
    let path = stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors");
    let mut net = BackboneConfig::MobileNetV2(MobileNetV2Config::new())
        .init::<B>(&device)
        .unwrap();
    net.load_torchvision(&StateDict::from_file(&path).unwrap())
        .unwrap();
    let map = net.forward_features(input(&device)).remove(2);
    let got: Vec<f32> = map.into_data().convert::<f32>().to_vec().unwrap();
    let want = read_fixture("mobilenet_features13.npy");
    assert!(max_abs_diff(&got, &want.data) > 1e-2);
}

#[cfg(feature = "embedded-teacher")]
#[test]
fn embedded_teacher_equals_shared_weights() {
    let device = Default::default();
    let net = stad_backbones::embedded::mobilenet_v2_imagenet::<B>(
        &BackboneConfig::mobilenet_v2_tf(),
        &device,
    )
    .unwrap();
    let maps = net.forward_features(input(&device));
    assert_close("mobilenet_features6.npy", maps[1].clone(), 1e-4);
}
