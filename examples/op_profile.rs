//! Times the non-convolution pieces of a ResNet18 training step on flex (batch 8, 224²).
//!
//! `cargo run --release --example op_profile`
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::nn::BatchNormConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use stad::backbones::batch_norm;

type A = Autodiff<Flex>;

fn t(label: &str, mut f: impl FnMut()) {
    f();
    let start = Instant::now();
    for _ in 0..5 {
        f();
    }
    println!(
        "{label:40} {:8.2} ms",
        start.elapsed().as_secs_f64() * 200.0
    );
}

fn main() {
    let device = Default::default();
    for dims in [[8, 64, 112, 112], [8, 64, 56, 56], [8, 256, 14, 14]] {
        let bn = BatchNormConfig::new(dims[1]).init::<A>(&device);
        let x =
            Tensor::<A, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        t(&format!("bn train fwd+bwd {dims:?}"), || {
            let g = batch_norm(&bn, x.clone()).sum().backward();
            drop(x.grad(&g));
        });
        t(&format!("relu fwd+bwd {dims:?}"), || {
            let g = burn::tensor::activation::relu(x.clone()).sum().backward();
            drop(x.grad(&g));
        });
        t(&format!("sum fwd+bwd {dims:?}"), || {
            let g = x.clone().sum().backward();
            drop(x.grad(&g));
        });
        let bni = BatchNormConfig::new(dims[1]).init::<Flex>(&device);
        let xi = x.clone().inner();
        t(&format!("bn eval {dims:?}"), || {
            drop(batch_norm(&bni, xi.clone()))
        });
        let t2 = Tensor::<A, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        t(&format!("stfpm loss fwd+bwd {dims:?}"), || {
            let g = stad::distill::stfpm_loss(std::slice::from_ref(&t2), std::slice::from_ref(&x))
                .expect("same shapes")
                .backward();
            drop(x.grad(&g));
        });
    }
    let pool = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    let x = Tensor::<A, 4>::random([8, 64, 112, 112], Distribution::Normal(0.0, 1.0), &device)
        .require_grad();
    t("maxpool fwd+bwd", || {
        let g = pool.forward(x.clone()).sum().backward();
        drop(x.grad(&g));
    });
}
