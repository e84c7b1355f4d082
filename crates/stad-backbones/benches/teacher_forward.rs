//! Teacher forward time (layers to stride 16), batch 1 and 8 at 224², on flex and ndarray.
//!
//! `cargo bench -p stad-backbones --bench teacher_forward`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use burn::backend::{Flex, NdArray};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stad_backbones::{BackboneConfig, FrozenTeacher};
use std::time::Duration;

fn bench_backend<B: Backend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("teacher_forward/{backend}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for (name, config) in [
        ("resnet18_l1-3", BackboneConfig::resnet18()),
        ("mobilenet_v2_f3-6-13", BackboneConfig::mobilenet_v2_tf()),
    ] {
        let teacher = FrozenTeacher::new(config.init::<B>(&device).unwrap(), &device).unwrap();
        for batch in [1usize, 8] {
            let x = Tensor::<B, 4>::random(
                [batch, 3, 224, 224],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, _| {
                b.iter(|| {
                    let maps = teacher.features(x.clone());
                    // Synchronise: read one value back so the work is really done.
                    maps.last()
                        .unwrap()
                        .clone()
                        .slice([0..1, 0..1, 0..1, 0..1])
                        .into_data()
                })
            });
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_backend::<Flex>(c, "flex");
    bench_backend::<NdArray>(c, "ndarray");
}

criterion_group!(teacher, benches);
criterion_main!(teacher);
