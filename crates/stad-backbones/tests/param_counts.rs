//! Trainable parameter counts equal torchvision's (classifier included, BatchNorm running
//! statistics excluded, as `sum(p.numel() for p in model.parameters())`).

use burn::backend::Flex;
use stad_backbones::{BackboneConfig, MobileNetV2Config, ResNetArch, ResNetConfig};

fn resnet_params(arch: ResNetArch) -> usize {
    BackboneConfig::ResNet(ResNetConfig::new(arch).with_classifier(true))
        .init::<Flex>(&Default::default())
        .unwrap()
        .num_trainable_params()
}

#[test]
fn resnet18() {
    assert_eq!(resnet_params(ResNetArch::ResNet18), 11_689_512);
}

#[test]
fn resnet34() {
    assert_eq!(resnet_params(ResNetArch::ResNet34), 21_797_672);
}

#[test]
fn resnet50() {
    assert_eq!(resnet_params(ResNetArch::ResNet50), 25_557_032);
}

#[test]
fn wide_resnet50_2() {
    assert_eq!(resnet_params(ResNetArch::WideResNet50_2), 68_883_240);
}

#[test]
fn mobilenet_v2() {
    let n = BackboneConfig::MobileNetV2(MobileNetV2Config::new().with_classifier(true))
        .init::<Flex>(&Default::default())
        .unwrap()
        .num_trainable_params();
    assert_eq!(n, 3_504_872);
}
