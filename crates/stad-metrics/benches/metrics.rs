//! Pixel AUROC and AU-PRO on synthetic data of two sizes:
//! (a) one MVTec category, 83 maps of 224² (4.2 M pixels);
//! (b) 1 000 maps of 256² (65.5 M pixels).
//!
//! Run with `cargo bench -p stad-metrics`. Set `STAD_METRICS_BENCH_DUMP=<folder>` to also
//! write the data as raw little-endian files (`maps_<n>x<h>x<w>.f32`, `masks_<n>x<h>x<w>.u8`)
//! so that other implementations (scikit-learn) can be timed on exactly the same pixels.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use stad_metrics::{au_pro, pixel_auroc};

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f32 {
    (splitmix(x) >> 40) as f32 / (1u64 << 24) as f32
}

/// Deterministic maps and masks: every other image has 1–3 elliptic defects; the map is a
/// smooth nominal background plus noise, raised (imperfectly) on and around the defects.
fn synthetic(n: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u8>) {
    let hw = h * w;
    let mut maps = vec![0f32; n * hw];
    let mut masks = vec![0u8; n * hw];
    maps.par_chunks_mut(hw)
        .zip(masks.par_chunks_mut(hw))
        .enumerate()
        .for_each(|(i, (map, mask))| {
            let seed = (i as u64) << 32;
            let defects: Vec<(f32, f32, f32, f32, f32)> = if i % 2 == 1 {
                (0..1 + (splitmix(seed) % 3))
                    .map(|d| {
                        let r = |k: u64| unit(seed ^ (d << 8) ^ k);
                        (
                            r(1) * h as f32,
                            r(2) * w as f32,
                            2.0 + r(3) * h as f32 / 8.0,
                            2.0 + r(4) * w as f32 / 8.0,
                            0.2 + 0.6 * r(5),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            for y in 0..h {
                for x in 0..w {
                    let p = y * w + x;
                    let (fy, fx) = (y as f32, x as f32);
                    let mut v = 0.25
                        + 0.1 * (fy * 0.05 + i as f32).sin() * (fx * 0.07).cos()
                        + 0.15 * unit(seed | p as u64);
                    for &(cy, cx, ry, rx, strength) in &defects {
                        let d2 = ((fy - cy) / ry).powi(2) + ((fx - cx) / rx).powi(2);
                        if d2 <= 1.0 {
                            mask[p] = 1;
                        }
                        v += strength * (-d2).exp();
                    }
                    map[p] = v;
                }
            }
        });
    (maps, masks)
}

fn dump(maps: &[f32], masks: &[u8], (n, h, w): (usize, usize, usize)) {
    let Some(dir) = std::env::var_os("STAD_METRICS_BENCH_DUMP") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the dump folder");
    let bytes: Vec<u8> = maps.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join(format!("maps_{n}x{h}x{w}.f32")), bytes).expect("write maps");
    std::fs::write(dir.join(format!("masks_{n}x{h}x{w}.u8")), masks).expect("write masks");
}

fn bench(c: &mut Criterion) {
    for (label, shape) in [
        ("a_83x224x224", (83, 224, 224)),
        ("b_1000x256x256", (1000, 256, 256)),
    ] {
        let (maps, masks) = synthetic(shape.0, shape.1, shape.2);
        dump(&maps, &masks, shape);
        let mut g = c.benchmark_group(label);
        g.sample_size(10).warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(if shape.0 > 100 { 20 } else { 5 }));
        g.throughput(Throughput::Elements(maps.len() as u64));
        g.bench_function("pixel_auroc", |b| {
            b.iter(|| pixel_auroc(&maps, &masks).unwrap())
        });
        for limit in [0.3, 1.0] {
            g.bench_with_input(BenchmarkId::new("au_pro", limit), &limit, |b, &limit| {
                b.iter(|| au_pro(&maps, &masks, shape, limit).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
