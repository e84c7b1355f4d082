//! End-to-end throughput, images per second: one STFPM / ensemble training step (teacher,
//! students, loss, backward, SGD) and inference (teacher + students + anomaly map), batch 8 at
//! 224², on the CPU backend (flex), for the embedded MobileNetV2 teacher and a ResNet18 one
//! (the ensemble rows are the 3-student steps). For the side-by-side comparison with PyTorch
//! use `examples/ab_throughput.rs`, which mirrors `$STAD_SHARED/bench/ab_pytorch.py`.
//!
//! `cargo bench --bench throughput` (criterion reports `thrpt` in elements = images per second)
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::Duration;

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stad::backbones::BackboneConfig;
use stad::backend::{Cpu, CpuAutodiff};
use stad::{MethodKind, ModelConfig, StudentOptimizers, TeacherWeights, TrainConfig};

/// The allocator `stad` (the CLI) runs with.
#[global_allocator]
static ALLOCATOR: stad_alloc::StadAllocator = stad_alloc::StadAllocator;

const BATCH: usize = 8;
const SIZE: usize = 224;

fn bench(c: &mut Criterion) {
    let device = Default::default();
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BATCH as u64));
    let teachers = [
        (
            "mnv2",
            BackboneConfig::mobilenet_v2_tf(),
            TeacherWeights::Embedded,
        ),
        // Random weights: the speed does not depend on the values.
        ("r18", BackboneConfig::resnet18(), TeacherWeights::Random(0)),
    ];
    for (teacher_name, teacher, weights) in teachers {
        for kind in [
            MethodKind::Stfpm,
            MethodKind::Ensemble,
            MethodKind::SimpleStudent,
        ] {
            let model = ModelConfig::new(teacher.clone(), weights.clone(), kind.default_config())
                .with_image_size(SIZE);
            let label = format!("{teacher_name}_{}", kind.name());

            // Inference.
            let st = model.init::<Cpu>(&device).unwrap();
            let x = Tensor::<Cpu, 4>::random(
                [BATCH, 3, SIZE, SIZE],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            group.bench_with_input(BenchmarkId::new("inference", &label), &kind, |b, _| {
                b.iter(|| st.score(x.clone()).unwrap().0.into_data())
            });

            // One training step per student: the trainer's.
            let teacher = st.teacher().clone();
            let mut students = Some(model.init_students::<CpuAutodiff>(42, &device).unwrap());
            let mut optimizers =
                StudentOptimizers::<CpuAutodiff>::new(&TrainConfig::new(), &model.method);
            let xa = Tensor::<CpuAutodiff, 4>::random(
                [BATCH, 3, SIZE, SIZE],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            group.bench_with_input(BenchmarkId::new("train_step", &label), &kind, |b, _| {
                b.iter(|| {
                    let targets = teacher.features_for::<CpuAutodiff>(xa.clone());
                    let current = students.take().expect("stepped students are put back");
                    let (stepped, _) = optimizers.step(current, xa.clone(), &targets).unwrap();
                    students = Some(stepped);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(throughput, bench);
criterion_main!(throughput);
