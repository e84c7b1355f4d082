//! stad's convolution against burn's own (flex forward, burn-backend's generic gradients) on
//! random shapes: values, input, weight and bias gradients.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use proptest::prelude::*;
use stad_kernels::{ConvGeometry, ConvSpec, convolve};

type A = Autodiff<Flex>;

#[derive(Debug, Clone)]
struct Case {
    x: [usize; 4],
    w: [usize; 4],
    spec: ConvSpec,
    bias: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=3,                                       // batch
        1usize..=4,                                       // in channels per group
        1usize..=3,                                       // out channels per group
        prop_oneof![Just(1usize), Just(2), Just(3)], // groups (× per-group → depthwise when 1/1)
        1usize..=5,                                  // kernel h
        1usize..=5,                                  // kernel w
        (1usize..=2, 1usize..=2),                    // stride
        (1usize..=2, 1usize..=2),                    // dilation
        (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2), // padding
        (4usize..=12, 4usize..=12),                  // input size
        any::<bool>(),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |(b, ipg, opg, groups, kh, kw, s, d, p, hw, bias)| {
                let spec = ConvSpec {
                    stride: [s.0, s.1],
                    dilation: [d.0, d.1],
                    pad_begin: [p.0, p.1],
                    pad_end: [p.2, p.3],
                    groups,
                };
                let x = [b, ipg * groups, hw.0, hw.1];
                let w = [opg * groups, ipg, kh, kw];
                ConvGeometry::new(
                    x,
                    w,
                    spec.stride,
                    spec.dilation,
                    spec.pad_begin,
                    spec.pad_end,
                    groups,
                )
                .ok()
                .map(|_| Case { x, w, spec, bias })
            },
        )
}

fn close(ours: TensorData, theirs: TensorData, what: &str) -> Result<(), TestCaseError> {
    let (a, b) = (
        ours.to_vec::<f32>().unwrap(),
        theirs.to_vec::<f32>().unwrap(),
    );
    prop_assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        prop_assert!(
            (x - y).abs() <= 2e-5 * scale,
            "{} [{}]: {} vs {} (scale {})",
            what,
            i,
            x,
            y,
            scale
        );
    }
    Ok(())
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let device = Default::default();
    let x = Tensor::<A, 4>::random(case.x, Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<A, 4>::random(case.w, Distribution::Normal(0.0, 1.0), &device);
    let bias = case
        .bias
        .then(|| Tensor::<A, 1>::random([case.w[0]], Distribution::Normal(0.0, 1.0), &device));
    let forward = |ours: bool| {
        let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
        let bias = bias.clone().map(|b| b.require_grad());
        let y = if ours {
            convolve(x.clone(), w.clone(), bias.clone(), case.spec)
        } else {
            let s = case.spec;
            let options = burn::tensor::ops::PaddedConvOptions::asymmetric(
                s.stride,
                s.pad_begin,
                s.pad_end,
                s.dilation,
                s.groups,
            );
            burn::tensor::module::conv2d(x.clone(), w.clone(), bias.clone(), options)
        };
        // A loss whose gradient w.r.t. y is not uniform.
        let r = Tensor::<A, 4>::from_data(
            TensorData::new(
                (0..y.shape().num_elements())
                    .map(|i| ((i * 7919) % 13) as f32 - 6.0)
                    .collect::<Vec<_>>(),
                y.dims(),
            ),
            &device,
        );
        let grads = (y.clone() * r).sum().backward();
        (
            y.into_data(),
            x.grad(&grads).unwrap().into_data(),
            w.grad(&grads).unwrap().into_data(),
            bias.map(|b| b.grad(&grads).unwrap().into_data()),
        )
    };
    let (y1, dx1, dw1, db1) = forward(true);
    let (y0, dx0, dw0, db0) = forward(false);
    close(y1, y0, "y")?;
    close(dx1, dx0, "dx")?;
    close(dw1, dw0, "dw")?;
    if let (Some(a), Some(b)) = (db1, db0) {
        close(a, b, "db")?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn values_and_gradients_equal_burns(case in case()) {
        run(&case)?;
    }
}

/// The shapes stad's backbones use, at a reduced size: ResNet's stem, 3×3 (Winograd, the
/// stride-1 ones with 16 channels and more) and strided 1×1 convolutions, MobileNetV2's 1×1 and depthwise stride-1/2 (TF "same") convolutions.
#[test]
fn backbone_shapes_equal_burns() {
    let spec = |s: usize, pb: usize, pe: usize, groups: usize| ConvSpec {
        stride: [s; 2],
        dilation: [1; 2],
        pad_begin: [pb; 2],
        pad_end: [pe; 2],
        groups,
    };
    for case in [
        Case {
            x: [2, 3, 32, 32],
            w: [16, 3, 7, 7],
            spec: spec(2, 3, 3, 1),
            bias: false,
        },
        Case {
            x: [2, 16, 16, 16],
            w: [16, 16, 3, 3],
            spec: spec(1, 1, 1, 1),
            bias: false,
        },
        // Winograd with a bias and odd sizes (a last tile half outside the image).
        Case {
            x: [1, 16, 9, 7],
            w: [20, 16, 3, 3],
            spec: spec(1, 1, 1, 1),
            bias: true,
        },
        Case {
            x: [2, 16, 16, 16],
            w: [32, 16, 3, 3],
            spec: spec(2, 1, 1, 1),
            bias: true,
        },
        Case {
            x: [2, 16, 16, 16],
            w: [32, 16, 1, 1],
            spec: spec(2, 0, 0, 1),
            bias: false,
        },
        Case {
            x: [2, 24, 16, 16],
            w: [24, 1, 3, 3],
            spec: spec(1, 1, 1, 24),
            bias: false,
        },
        Case {
            x: [2, 24, 16, 16],
            w: [24, 1, 3, 3],
            spec: spec(2, 0, 1, 24),
            bias: true,
        },
        Case {
            x: [2, 24, 16, 16],
            w: [8, 24, 1, 1],
            spec: spec(1, 0, 0, 1),
            bias: false,
        },
    ] {
        run(&case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
}
