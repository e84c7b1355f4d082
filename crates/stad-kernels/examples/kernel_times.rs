//! Milliseconds per call of each kernel at MobileNetV2 / ResNet18 shapes (batch 8, 224² input),
//! best of 5: for finding which kernel a training step spends its time in.
//!
//! `cargo run --release -p stad-kernels --example kernel_times [FILTER]`: with `FILTER`, only the
//! convolution rows whose name contains it (and no norm or elementwise rows).
use std::time::Instant;

use stad_kernels::norm::{self, Activation};
use stad_kernels::{ConvGeometry, kernels};

// The binaries' allocator: freed outputs stay mapped, so the timings hold no page faults.
#[global_allocator]
static ALLOCATOR: stad_alloc::StadAllocator = stad_alloc::StadAllocator;

fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * 0.37).sin()).collect()
}

fn main() {
    let conv = |x: [usize; 4], w: [usize; 4], s: usize, p: [usize; 2], groups: usize| {
        ConvGeometry::new(x, w, [s; 2], [1; 2], [p[0]; 2], [p[1]; 2], groups).expect("shape")
    };
    let cases = [
        (
            "dw 32@112 s1",
            conv([8, 32, 112, 112], [32, 1, 3, 3], 1, [1, 1], 32),
        ),
        (
            "dw 96@112 s2",
            conv([8, 96, 112, 112], [96, 1, 3, 3], 2, [0, 1], 96),
        ),
        (
            "dw 144@56 s1",
            conv([8, 144, 56, 56], [144, 1, 3, 3], 1, [1, 1], 144),
        ),
        (
            "dw 144@56 s2",
            conv([8, 144, 56, 56], [144, 1, 3, 3], 2, [0, 1], 144),
        ),
        (
            "dw 576@14 s1",
            conv([8, 576, 14, 14], [576, 1, 3, 3], 1, [1, 1], 576),
        ),
        (
            "pw 24->144@56",
            conv([8, 24, 56, 56], [144, 24, 1, 1], 1, [0, 0], 1),
        ),
        (
            "pw 144->24@56",
            conv([8, 144, 56, 56], [24, 144, 1, 1], 1, [0, 0], 1),
        ),
        (
            "pw 16->96@112",
            conv([8, 16, 112, 112], [96, 16, 1, 1], 1, [0, 0], 1),
        ),
        (
            "3x3 64@56",
            conv([8, 64, 56, 56], [64, 64, 3, 3], 1, [1, 1], 1),
        ),
        (
            "3x3 128@28",
            conv([8, 128, 28, 28], [128, 128, 3, 3], 1, [1, 1], 1),
        ),
        (
            "3x3 256@14",
            conv([8, 256, 14, 14], [256, 256, 3, 3], 1, [1, 1], 1),
        ),
        (
            "3x3 64>128 s2",
            conv([8, 64, 56, 56], [128, 64, 3, 3], 2, [1, 1], 1),
        ),
        (
            "7x7 stem s2",
            conv([8, 3, 224, 224], [64, 3, 7, 7], 2, [3, 3], 1),
        ),
    ];
    let filter = std::env::args().nth(1);
    println!("{:16} {:>8} {:>8} {:>8}", "conv", "fwd", "dx", "dw");
    for (name, g) in cases {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let x = values(g.x_dims().iter().product());
        let w = values(g.weight_dims().iter().product());
        let dy = values(g.y_dims().iter().product());
        let f = best(|| drop(kernels::forward(&g, &x, &w, None)));
        let dx = best(|| drop(kernels::input_grad(&g, &w, &dy)));
        let dw = best(|| drop(kernels::weight_grad(&g, &x, &dy)));
        let gmac = (g.batch * g.out_channels * g.out_plane() * g.patch_len()) as f64 / 1e9;
        println!(
            "{name:16} {f:8.2} {dx:8.2} {dw:8.2}   GFLOP/s {:5.0} {:5.0} {:5.0}",
            2.0 * gmac / f * 1e3,
            2.0 * gmac / dx * 1e3,
            2.0 * gmac / dw * 1e3
        );
    }
    if filter.is_some() {
        return;
    }
    println!("{:16} {:>8} {:>8}", "batch norm", "fwd", "bwd");
    for dims in [[8, 96, 112 * 112], [8, 144, 56 * 56], [8, 64, 112 * 112]] {
        let x = values(dims.iter().product());
        let c = dims[1];
        let (gamma, beta) = (vec![1.0f32; c], vec![0.1f32; c]);
        let fwd = best(|| {
            drop(norm::batch_norm_train(
                dims,
                &x,
                &gamma,
                &beta,
                1e-5,
                Activation::Relu6,
            ))
        });
        let (y, stats) = norm::batch_norm_train(dims, &x, &gamma, &beta, 1e-5, Activation::Relu6);
        let bwd = best(|| {
            drop(norm::batch_norm_train_backward(
                dims,
                &x,
                &gamma,
                &stats,
                &x,
                (Activation::Relu6, Some(&y)),
            ))
        });
        println!("{:16} {fwd:8.2} {bwd:8.2}", format!("{dims:?}"));
    }
    println!("{:16} {:>8} {:>8}", "elementwise", "affine", "add+act");
    for dims in [[8, 96, 112 * 112], [8, 144, 56 * 56]] {
        let x = values(dims.iter().product());
        let c = dims[1];
        let (scale, shift) = (vec![1.1f32; c], vec![0.1f32; c]);
        let affine = best(|| {
            drop(norm::channel_affine(
                dims,
                &x,
                &scale,
                &shift,
                Activation::Relu6,
            ))
        });
        let add = best(|| drop(norm::add_activation(&x, &x, Activation::Relu)));
        println!("{:16} {affine:8.2} {add:8.2}", format!("{dims:?}"));
    }
}
