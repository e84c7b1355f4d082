//! stad's max pooling against burn's `MaxPool2d` (flex forward, burn's autodiff backward) on
//! random shapes and paddings: identical values, identical input gradients.

use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use proptest::prelude::*;
use stad_kernels::max_pool2d;

type A = Autodiff<Flex>;

/// Values rounded to a coarse grid, so that windows hold ties (the gradient must go to the
/// same tap as burn's).
fn coarse<B: Backend>(dims: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
    Tensor::<B, 4>::random(dims, Distribution::Uniform(0.0, 4.0), device).floor()
}

fn check(dims: [usize; 4], pool: &MaxPool2d) {
    let device = Default::default();
    let x = coarse::<Flex>(dims, &device);
    // Inference: the same values, bit for bit.
    let ours = max_pool2d(pool, x.clone()).into_data();
    let burns = pool.forward(x.clone()).into_data();
    assert_eq!(ours, burns, "forward {dims:?} {pool:?}");
    // Training: the same values and the same input gradient.
    let xa = Tensor::<A, 4>::from_inner(x).require_grad();
    let dy = Tensor::<A, 4>::random(
        pool.forward(xa.clone()).dims(),
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let ya = max_pool2d(pool, xa.clone());
    let grads = (ya.clone() * dy.clone()).sum().backward();
    let ours_grad = xa.grad(&grads).expect("gradient").into_data();
    let yb = pool.forward(xa.clone());
    let grads = (yb.clone() * dy).sum().backward();
    let burns_grad = xa.grad(&grads).expect("gradient").into_data();
    assert_eq!(ya.into_data(), yb.into_data(), "autodiff forward {dims:?}");
    assert_eq!(ours_grad, burns_grad, "gradient {dims:?} {pool:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn values_and_gradients_equal_burns(
        b in 1usize..=2, c in 1usize..=3, h in 3usize..=12, w in 3usize..=12,
        kh in 1usize..=3, kw in 1usize..=3, sh in 1usize..=3, sw in 1usize..=2,
        pad in 0usize..=1, same in any::<bool>(),
    ) {
        let padding = if same {
            PaddingConfig2d::Same
        } else {
            PaddingConfig2d::Explicit(pad.min(kh / 2), pad.min(kw / 2), pad.min(kh / 2), pad.min(kw / 2))
        };
        let pool = MaxPool2dConfig::new([kh, kw]).with_strides([sh, sw]).with_padding(padding).init();
        check([b, c, h, w], &pool);
    }
}

#[test]
fn the_resnet_stem_pooling_equals_burns() {
    let pool = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    check([2, 4, 112, 112], &pool);
    check([1, 2, 57, 31], &pool);
}
