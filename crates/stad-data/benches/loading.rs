//! Load + decode + resize + normalise throughput (images/s) on MVTec AD `bottle`
//! (900×900 PNG → 224²), with one thread and with all threads.
//!
//! `cargo bench -p stad-data --bench loading` (needs `$STAD_SHARED`, default
//! `<workspace>/../shared`). Each iteration loads `N` training images as batches of 8 through
//! a [`BatchLoader`] without cache; criterion reports the throughput in elements (images)
//! per second.

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stad_data::{
    BatchLoader, Dataset, LoaderConfig, MvtecOptions, PreprocessConfig, SyntheticConfig,
};

const N: usize = 32;

fn bench(c: &mut Criterion) {
    let root = stad_testutil::shared_dir().join("data/mvtec_ad/bottle");
    let ds = Dataset::mvtec(&root, &MvtecOptions::default()).expect("bottle opens");
    let samples: Vec<_> = ds.train.into_iter().take(N).collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);

    let mut group = c.benchmark_group("bottle_900_to_224");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(8));
    group.throughput(Throughput::Elements(N as u64));
    for (name, n) in [("1_thread", 1), ("all_threads", threads)] {
        let cfg = LoaderConfig {
            batch_size: 8,
            num_threads: Some(n),
            prefetch: 0,
            ..LoaderConfig::default()
        };
        let loader = BatchLoader::new(samples.clone(), PreprocessConfig::default(), cfg).unwrap();
        group.bench_function(format!("{name}_{n}"), |b| {
            b.iter(|| {
                for batch in loader.host_batches(0) {
                    std::hint::black_box(batch.unwrap());
                }
            })
        });
    }
    group.finish();

    // The two stages of one image, single-threaded: PNG decoding, then resize + normalise.
    let path = samples[0].path().unwrap().to_path_buf();
    let mut group = c.benchmark_group("bottle_stages");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_png_900", |b| {
        b.iter(|| std::hint::black_box(stad_data::preprocess::decode_file(&path).unwrap()))
    });
    let decoded = stad_data::preprocess::decode_file(&path).unwrap();
    let cfg = PreprocessConfig::default();
    group.bench_function("resize_normalise_900_to_224", |b| {
        b.iter(|| std::hint::black_box(stad_data::preprocess::image_to_chw(&decoded, &cfg)))
    });
    group.finish();

    // The synthetic data set's preprocessing (in-memory 256² → 224²), for comparison.
    let syn = Dataset::synthetic(&SyntheticConfig::default());
    let n = syn.train.len();
    let mut group = c.benchmark_group("synthetic_256_to_224");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    let loader = BatchLoader::new(
        syn.train,
        PreprocessConfig::default(),
        LoaderConfig::default(),
    )
    .unwrap();
    group.bench_function(format!("all_threads_{threads}"), |b| {
        b.iter(|| {
            for batch in loader.host_batches(0) {
                std::hint::black_box(batch.unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
