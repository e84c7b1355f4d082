//! One convolution's forward + backward (input and weight gradients) on `Autodiff<Flex>`,
//! batch 8, at the shapes of stad's backbones (224² input): stad's kernels against burn's own
//! (flex forward, burn-backend's generic gradients), side by side in the same run.
//!
//! `cargo bench -p stad-kernels --bench conv_backward`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::Duration;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::PaddedConvOptions;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stad_kernels::{ConvSpec, convolve};

type A = Autodiff<Flex>;

fn bench(c: &mut Criterion) {
    let device = Default::default();
    let spec = |s: usize, pb: usize, pe: usize, groups: usize| ConvSpec {
        stride: [s; 2],
        dilation: [1; 2],
        pad_begin: [pb; 2],
        pad_end: [pe; 2],
        groups,
    };
    let cases = [
        (
            "r18_stem_7x7s2",
            [8, 3, 224, 224],
            [64, 3, 7, 7],
            spec(2, 3, 3, 1),
        ),
        (
            "r18_layer1_3x3",
            [8, 64, 56, 56],
            [64, 64, 3, 3],
            spec(1, 1, 1, 1),
        ),
        (
            "r18_layer2_3x3s2",
            [8, 64, 56, 56],
            [128, 64, 3, 3],
            spec(2, 1, 1, 1),
        ),
        (
            "r18_layer3_3x3",
            [8, 256, 14, 14],
            [256, 256, 3, 3],
            spec(1, 1, 1, 1),
        ),
        (
            "r18_downsample_1x1s2",
            [8, 128, 28, 28],
            [256, 128, 1, 1],
            spec(2, 0, 0, 1),
        ),
        (
            "mnv2_expand_1x1",
            [8, 24, 56, 56],
            [144, 24, 1, 1],
            spec(1, 0, 0, 1),
        ),
        (
            "mnv2_depthwise_3x3",
            [8, 144, 56, 56],
            [144, 1, 3, 3],
            spec(1, 1, 1, 144),
        ),
        (
            "mnv2_depthwise_3x3s2_tf",
            [8, 144, 56, 56],
            [144, 1, 3, 3],
            spec(2, 0, 1, 144),
        ),
    ];
    let mut group = c.benchmark_group("conv_fwd_bwd");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for (name, xd, wd, s) in cases {
        let x = Tensor::<A, 4>::random(xd, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let w = Tensor::<A, 4>::random(wd, Distribution::Normal(0.0, 0.1), &device).require_grad();
        for ours in [true, false] {
            let label = if ours { "stad" } else { "burn" };
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    let y = if ours {
                        convolve(x.clone(), w.clone(), None, s)
                    } else {
                        let o = PaddedConvOptions::asymmetric(
                            s.stride,
                            s.pad_begin,
                            s.pad_end,
                            s.dilation,
                            s.groups,
                        );
                        burn::tensor::module::conv2d(x.clone(), w.clone(), None, o)
                    };
                    let grads = y.sum().backward();
                    (
                        x.grad(&grads).map(|g| g.into_data()),
                        w.grad(&grads).map(|g| g.into_data()),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
