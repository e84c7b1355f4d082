//! Scoring kernels on the Flex CPU backend: the public kernels (fused layer maps, matmul
//! upsampling) against the straightforward reference formulations (normalise-then-subtract
//! layer maps, burn's `interpolate`).
//!
//! Batch 8, input 224², a ResNet-18-like pyramid: 64×56², 128×28², 256×14²; STFPM (one
//! student) and a 3-student ensemble, each as the full map (layer maps, bilinear upsampling
//! to 224², product). Run with `cargo bench -p stad-scoring`.

use std::hint::black_box;
use std::time::Duration;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_main};
use stad_scoring::{AnomalyMapConfig, reference};

type B = Flex;

const BATCH: usize = 8;
const SIZE: [usize; 2] = [224, 224];
const LAYERS: [(usize, usize); 3] = [(64, 56), (128, 28), (256, 14)];

fn pyramid(device: &Device<B>, shift: f64) -> Vec<Tensor<B, 4>> {
    LAYERS
        .iter()
        .map(|&(c, hw)| {
            Tensor::random([BATCH, c, hw, hw], Distribution::Normal(shift, 1.0), device)
        })
        .collect()
}

fn reference_stfpm(teacher: &[Tensor<B, 4>], student: &[Tensor<B, 4>]) -> Tensor<B, 4> {
    let maps = teacher
        .iter()
        .zip(student)
        .map(|(t, s)| reference::stfpm_layer_map(t.clone(), s.clone()).unwrap())
        .collect();
    reference_combine(maps)
}

fn reference_ensemble(teacher: &[Tensor<B, 4>], students: &[Vec<Tensor<B, 4>>]) -> Tensor<B, 4> {
    let maps = (0..teacher.len())
        .map(|k| {
            let layer: Vec<_> = students.iter().map(|s| s[k].clone()).collect();
            let (e, v) = reference::ensemble_layer_maps(teacher[k].clone(), &layer).unwrap();
            e + v
        })
        .collect();
    reference_combine(maps)
}

/// Upsampling with burn's `interpolate`, then the product.
fn reference_combine(maps: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
    maps.into_iter()
        .map(|m| reference::upsample_bilinear(m, SIZE))
        .reduce(|a, b| a * b)
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let device = Default::default();
    let teacher = pyramid(&device, 0.0);
    let student = pyramid(&device, 0.3);
    let students: Vec<_> = (0..3)
        .map(|i| pyramid(&device, 0.1 * f64::from(i)))
        .collect();
    let config = AnomalyMapConfig::new(SIZE);

    let mut group = c.benchmark_group("stfpm_map_b8_224");
    group.bench_function("fused", |b| {
        b.iter(|| {
            let map = config.stfpm_map(&teacher, &student).unwrap();
            B::sync(&device).unwrap();
            black_box(map)
        })
    });
    group.bench_function("reference", |b| {
        b.iter(|| {
            let map = reference_stfpm(&teacher, &student);
            B::sync(&device).unwrap();
            black_box(map)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ensemble3_map_b8_224");
    group.bench_function("fused", |b| {
        b.iter(|| {
            let map = config.ensemble_map(&teacher, &students).unwrap();
            B::sync(&device).unwrap();
            black_box(map)
        })
    });
    group.bench_function("reference", |b| {
        b.iter(|| {
            let map = reference_ensemble(&teacher, &students);
            B::sync(&device).unwrap();
            black_box(map)
        })
    });
    group.finish();
}

/// The benchmark group, with small samples so that it runs in a few minutes on 2 cores.
/// (Written out rather than by `criterion_group!`, whose `pub fn` has no doc comment.)
pub fn benches() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
