//! The gradients of the STFPM training loss against PyTorch (`$STAD_SHARED/fixtures/grad_*.npy`,
//! `grad_manifest.json`): a ResNet18 and a MobileNetV2 (TF padding, depthwise stride 1 and 2)
//! student in training mode, BatchNorm on batch statistics, batch = [input, input mirrored].
//! These run through stad's CPU kernels (convolution, BatchNorm and loss backward on flex).

use burn::backend::{Autodiff, Flex};
use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn_store::ModuleSnapshot;
use stad::backbones::{
    Backbone, BackboneConfig, FrozenTeacher, ResNetArch, ResNetConfig, TorchvisionKeys,
};
use stad_testutil::{NpyArray, fixture, read_fixture};

type A = Autodiff<Flex>;

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("grad_manifest.json")).unwrap()).unwrap()
}

fn input(device: &burn::backend::flex::FlexDevice) -> Tensor<Flex, 4> {
    let NpyArray { shape, data } = read_fixture("input.npy");
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Replaces every parameter by its gradient (zeros where there is none).
struct ToGradients<'a> {
    grads: &'a <A as burn::tensor::backend::AutodiffBackend>::Gradients,
}

impl ModuleMapper<A> for ToGradients<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<A, D>>) -> Param<Tensor<A, D>> {
        param.map(|t| {
            let g = t
                .grad(self.grads)
                .unwrap_or_else(|| t.clone().inner().zeros_like());
            Tensor::from_inner(g)
        })
    }
}

/// Loss and gradients of `student` against the teacher features `targets`, compared with the
/// fixture case `case`.
fn check(case: &str, student: Backbone<A>, targets: Vec<Tensor<A, 4>>, x: Tensor<A, 4>) {
    let manifest = manifest();
    let case_json = &manifest["cases"][case];
    let loss = stad::distill::stfpm_loss(&targets, &student.forward_features(x)).unwrap();
    let value: f32 = loss.clone().into_scalar();
    let want = case_json["loss"].as_f64().unwrap();
    assert!(
        (value as f64 - want).abs() <= 1e-6 * want.abs(),
        "{case}: loss {value} vs PyTorch {want}"
    );
    let grads = loss.backward();
    let names = student.clone();
    let as_grads = student.map(&mut ToGradients { grads: &grads });
    let snapshots = as_grads.collect(None, None, false);
    for (name, info) in case_json["grads"].as_object().unwrap() {
        // Paths start with the backbone's variant (`ResNet.`, `MobileNetV2.`).
        let torchvision = |path: String| {
            let inner = path
                .split_once('.')
                .map_or(path.clone(), |(_, rest)| rest.to_string());
            names.torchvision_name_of(&inner)
        };
        let snap = snapshots
            .iter()
            .find(|s| {
                let tv = torchvision(s.full_path());
                tv == *name || tv == format!("features.{name}")
            })
            .unwrap_or_else(|| panic!("{case}: no parameter {name}"));
        let got: Vec<f32> = snap.to_data().unwrap().convert::<f32>().to_vec().unwrap();
        let want = read_fixture(info["file"].as_str().unwrap());
        assert_eq!(snap.shape.to_vec(), want.shape, "{case} {name}: shape");
        let scale = info["max_abs"].as_f64().unwrap() as f32;
        let diff = got
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        // Measured: the deepest stage within 1e-5 of max |grad|, the first layers within
        // 2e-3 (ResNet18) / 7e-3 (MobileNetV2). burn's own generic path is within 1e-5 on
        // ResNet18 but 1e-2 on MobileNetV2's first layers: their gradients pass through
        // ~15 BatchNorm backward steps and many ReLU(6) masks, where float rounding grows. A
        // wrong formula gives errors of the order of the gradient itself.
        let deepest = name.starts_with("layer3.") || name.starts_with("13.");
        assert!(
            diff <= if deepest { 2e-5 } else { 1e-2 } * scale,
            "{case} {name}: max |diff| {diff} vs max |grad| {scale}"
        );
    }
}

#[test]
fn resnet18_student_gradients_match_pytorch() {
    let device = Default::default();
    let config = BackboneConfig::ResNet(ResNetConfig::new(ResNetArch::ResNet18));
    let mut teacher = config.init::<Flex>(&device).unwrap();
    teacher
        .load_torchvision_file(fixture("resnet18_teacher.safetensors"))
        .unwrap();
    let teacher = FrozenTeacher::new(teacher, &device).unwrap();
    let mut student = config.init::<A>(&device).unwrap();
    student
        .load_torchvision_file(fixture("resnet18_student_to_layer3.pth"))
        .unwrap();
    let x = input(&device);
    let batch = Tensor::cat(vec![x.clone(), x.flip([3])], 0);
    let xa = Tensor::<A, 4>::from_inner(batch.clone());
    check("r18", student, teacher.features_for::<A>(xa.clone()), xa);
}

#[test]
fn mobilenet_v2_student_gradients_match_pytorch() {
    let device = Default::default();
    let config = BackboneConfig::mobilenet_v2_tf();
    let weights =
        stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors");
    let mut teacher = config.init::<Flex>(&device).unwrap();
    teacher.load_torchvision_file(&weights).unwrap();
    let teacher = FrozenTeacher::new(teacher, &device).unwrap();
    let mut student = config.init::<A>(&device).unwrap();
    student.load_torchvision_file(&weights).unwrap();
    let x = input(&device);
    let batch = Tensor::cat(vec![x.clone(), x.flip([3])], 0);
    // Targets: the same network in eval mode on the batch flipped upside down.
    let targets = teacher
        .features(batch.clone().flip([2]))
        .into_iter()
        .map(Tensor::<A, 4>::from_inner)
        .collect();
    check("mnv2", student, targets, Tensor::from_inner(batch));
}
