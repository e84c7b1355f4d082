//! Weight files that do not fit the network give typed errors naming the keys.

use burn::backend::Flex;
use stad_backbones::{BackboneConfig, BackboneError, ResNetArch, ResNetConfig, ResNetStage};
use stad_testutil::fixture;

// The dtype and value checks of loaded weights, in this test binary.
#[path = "weights/validation.rs"]
mod validation;

type B = Flex;

fn mismatch(err: BackboneError) -> (Vec<String>, Vec<String>, Vec<String>) {
    match err {
        BackboneError::WeightMismatch {
            missing,
            unexpected,
            shape_mismatches,
            ..
        } => (missing, unexpected, shape_mismatches),
        other => panic!("expected WeightMismatch, got {other:?}"),
    }
}

#[test]
fn layer3_file_into_network_needing_layer4_names_missing_layer4_keys() {
    let device = Default::default();
    let config = BackboneConfig::ResNet(
        ResNetConfig::new(ResNetArch::ResNet18).with_taps(vec![ResNetStage::Layer4]),
    );
    let mut net = config.init::<B>(&device).unwrap();
    let err = net
        .load_torchvision_file(fixture("resnet18_student_to_layer3.pth"))
        .unwrap_err();
    let msg = err.to_string();
    let (missing, unexpected, shapes) = mismatch(err);
    assert!(
        missing.contains(&"layer4.0.conv1.weight".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"layer4.1.bn2.weight".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"layer4.0.downsample.0.weight".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.iter().all(|k| k.starts_with("layer4.")),
        "{missing:?}"
    );
    assert!(unexpected.is_empty() && shapes.is_empty());
    assert!(msg.contains("resnet18 to layer4"), "{msg}");
}

#[test]
fn resnet18_file_into_resnet34_names_missing_blocks() {
    let device = Default::default();
    let mut net = BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet34))
        .init::<B>(&device)
        .unwrap();
    let err = net
        .load_torchvision_file(fixture("resnet18_student_to_layer3.pth"))
        .unwrap_err();
    let (missing, _, _) = mismatch(err);
    assert!(
        missing.contains(&"layer1.2.conv1.weight".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"layer3.5.bn2.running_var".to_string()),
        "{missing:?}"
    );
    assert!(
        !missing.iter().any(|k| k.starts_with("layer1.0.")),
        "{missing:?}"
    );
}

#[test]
fn resnet18_file_into_resnet50_reports_shape_mismatches() {
    let device = Default::default();
    let mut net = BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet50))
        .init::<B>(&device)
        .unwrap();
    let err = net
        .load_torchvision_file(fixture("resnet18_teacher.safetensors"))
        .unwrap_err();
    let (missing, _, shapes) = mismatch(err);
    assert!(missing.iter().any(|k| k.contains(".conv3.")), "{missing:?}");
    assert!(
        shapes
            .iter()
            .any(|s| s.starts_with("layer1.0.conv1.weight")),
        "{shapes:?}"
    );
}

#[test]
fn mobilenet_file_into_resnet_names_unexpected_keys() {
    let device = Default::default();
    let mut net = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    let path = stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors");
    let err = net.load_torchvision_file(path).unwrap_err();
    let (missing, unexpected, _) = mismatch(err);
    assert!(missing.contains(&"conv1.weight".to_string()));
    assert!(
        unexpected.contains(&"features.0.0.weight".to_string()),
        "{unexpected:?}"
    );
}

#[test]
fn failed_load_leaves_the_network_untouched() {
    use burn::prelude::*;
    let device = Default::default();
    let mut net = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    net.load_torchvision_file(fixture("resnet18_teacher.safetensors"))
        .unwrap();
    let x = Tensor::<B, 4>::ones([1, 3, 32, 32], &device);
    let before: Vec<f32> = net.forward_features(x.clone())[0]
        .clone()
        .into_data()
        .to_vec()
        .unwrap();
    // A ResNet34 file would fit layer1's first blocks but not the rest: nothing may be applied.
    let mut wrong = BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet34))
        .init::<B>(&device)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet34.safetensors");
    {
        use burn_store::{ModuleSnapshot, SafetensorsStore};
        // Save a ResNet34 in burn naming, then load it into the ResNet18: conv1/bn1/layer1.0
        // match, layer1.2 etc. are unexpected.
        let mut store = SafetensorsStore::from_file(&path);
        if let stad_backbones::Backbone::ResNet(r) = &mut wrong {
            r.save_into(&mut store).unwrap();
        }
    }
    assert!(net.load_torchvision_file(&path).is_err());
    let after: Vec<f32> = net.forward_features(x)[0]
        .clone()
        .into_data()
        .to_vec()
        .unwrap();
    assert!(before == after, "a failed load changed the network");
}

#[test]
fn unreadable_and_unknown_files_are_typed_errors() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let mut net = BackboneConfig::resnet18().init::<B>(&device).unwrap();

    let missing = dir.path().join("nope.pth");
    assert!(matches!(
        net.load_torchvision_file(&missing),
        Err(BackboneError::WeightFile { .. })
    ));

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    assert!(matches!(
        net.load_torchvision_file(&garbage),
        Err(BackboneError::WeightFile { .. })
    ));

    let garbage_pth = dir.path().join("garbage.pth");
    std::fs::write(&garbage_pth, b"PK\x03\x04 truncated zip").unwrap();
    assert!(matches!(
        net.load_torchvision_file(&garbage_pth),
        Err(BackboneError::WeightFile { .. })
    ));

    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, b"x").unwrap();
    assert!(matches!(
        net.load_torchvision_file(&onnx),
        Err(BackboneError::UnsupportedFormat(_))
    ));
}
