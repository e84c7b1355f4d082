//! The frozen teacher cannot train: its BatchNorm statistics stay bit-identical through a
//! student's training step, while the student's own statistics do move.

use burn::backend::{Autodiff, Flex};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use stad_backbones::{Backbone, BackboneConfig, FrozenTeacher, ResNet};
use stad_testutil::fixture;

type B = Flex;
type A = Autodiff<Flex>;

/// Every BatchNorm running mean and variance of a ResNet, flattened, in a fixed order.
fn bn_stats<Bk: Backend>(net: &ResNet<Bk>) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut push = |bn: &burn::nn::BatchNorm<Bk>| {
        out.push(
            bn.running_mean
                .value_sync()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
        );
        out.push(
            bn.running_var
                .value_sync()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
        );
    };
    push(&net.bn1);
    for block in net.layer1.iter().chain(&net.layer2).chain(&net.layer3) {
        push(&block.bn1);
        push(&block.bn2);
        if let Some(ds) = &block.downsample {
            push(&ds.bn);
        }
    }
    out
}

fn resnet<Bk: Backend>(b: &Backbone<Bk>) -> &ResNet<Bk> {
    match b {
        Backbone::ResNet(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn teacher_statistics_do_not_move_during_student_training() {
    let device = Default::default();
    let mut backbone = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    backbone
        .load_torchvision_file(fixture("resnet18_teacher.safetensors"))
        .unwrap();
    let teacher = FrozenTeacher::new(backbone, &device).unwrap();
    let teacher_before = bn_stats(resnet(teacher.backbone()));

    let student = BackboneConfig::resnet18().init::<A>(&device).unwrap();
    let student_before = bn_stats(resnet(&student));
    let mut optim = SgdConfig::new().init::<A, Backbone<A>>();

    let x = Tensor::<A, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let targets = teacher.features_for::<A>(x.clone());
    let preds = student.forward_features(x);
    let loss = targets
        .into_iter()
        .zip(preds)
        .map(|(t, s)| (t - s).powi_scalar(2).mean())
        .reduce(|a, b| a + b)
        .unwrap();
    let grads = GradientsParams::from_grads(loss.backward(), &student);
    let student = optim.step(0.1, student, grads);

    assert!(
        bn_stats(resnet(teacher.backbone())) == teacher_before,
        "teacher BatchNorm moved"
    );
    // The control: the same step does move a trainable network's statistics.
    assert!(
        bn_stats(resnet(&student)) != student_before,
        "student BatchNorm did not move"
    );
}

#[test]
fn teacher_parameters_require_no_gradient() {
    let device = Default::default();
    let backbone = BackboneConfig::resnet18().init::<B>(&device).unwrap();
    let teacher = FrozenTeacher::new(backbone, &device).unwrap();
    let r = resnet(teacher.backbone());
    assert!(!r.conv1.weight.is_require_grad());
    assert!(!r.layer3[1].conv2.weight.is_require_grad());
    let x = Tensor::<A, 4>::zeros([1, 3, 32, 32], &device);
    for map in teacher.features_for::<A>(x) {
        assert!(!map.is_require_grad());
    }
}

#[test]
fn teacher_on_an_autodiff_backend_is_refused() {
    let device = Default::default();
    let backbone = BackboneConfig::resnet18().init::<A>(&device).unwrap();
    assert!(FrozenTeacher::new(backbone, &device).is_err());
}
