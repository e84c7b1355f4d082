//! Builds the embedded ImageNet teacher and prints its feature maps for one image.
//!
//! `cargo run --release --example teacher [IMAGE_SIZE]`
//! (add `--cuda` to run on the GPU: burn's CUDA backend is always compiled)
//!
//! The input is a deterministic gradient image (no data needed); the example prints each
//! tapped map's shape and mean activation, its stride and the forward time.

use std::time::Instant;

use burn::prelude::*;
use stad::backbones::{BackboneConfig, FrozenTeacher, embedded};

fn run<B: Backend>(
    size: usize,
    device: &B::Device,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = BackboneConfig::mobilenet_v2_tf();
    let backbone = embedded::mobilenet_v2_imagenet::<B>(&config, device)?;
    let teacher = FrozenTeacher::new(backbone, device)?;
    let norm = config.default_normalization();

    // A smooth RGB gradient in [0, 1], normalised as the teacher expects.
    let mut pixels = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let v = match c {
                    0 => x as f32 / size as f32,
                    1 => y as f32 / size as f32,
                    _ => 0.5,
                };
                pixels.push(norm.apply(c, v));
            }
        }
    }
    let x = Tensor::<B, 4>::from_data(TensorData::new(pixels, [1, 3, size, size]), device);

    let start = Instant::now();
    let maps = teacher.features(x);
    let shapes: Vec<[usize; 4]> = maps.iter().map(|m| m.dims()).collect();
    let means: Vec<f32> = maps
        .into_iter()
        .map(|m| m.mean().into_scalar().elem())
        .collect();
    let elapsed = start.elapsed();

    println!("teacher: embedded ImageNet MobileNetV2 (TF padding), input 1x3x{size}x{size}");
    for ((shape, stride), mean) in shapes.iter().zip(config.tap_strides()).zip(means) {
        println!("  tap stride {stride:>2}: {shape:?}  mean activation {mean:.4}");
    }
    println!(
        "forward on {label}: {:.1} ms (first call)",
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(224);
    if args.iter().any(|a| a == "--cuda") {
        return run::<stad::backend::Cuda>(size, &Default::default(), "CUDA");
    }
    run::<stad::backend::Cpu>(size, &Default::default(), "CPU (flex)")
}
