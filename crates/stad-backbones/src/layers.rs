//! Small building blocks shared by the backbones.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use stad_kernels::{Activation, conv2d};

/// `act(x)` with burn's operations (ReLU6 as `clamp(x, 0, 6)`).
pub fn activate<B: Backend>(x: Tensor<B, 4>, act: Activation) -> Tensor<B, 4> {
    match act {
        Activation::Identity => x,
        Activation::Relu => relu(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
    }
}

/// `act(a + b)`: a residual connection and its activation, one pass on flex.
pub fn add_activation<B: Backend>(
    a: Tensor<B, 4>,
    b: Tensor<B, 4>,
    act: Activation,
) -> Tensor<B, 4> {
    match stad_kernels::add_activation(a, b, act) {
        Ok(y) => y,
        Err((a, b)) => activate(a + b, act),
    }
}

/// `y = x·scale_c + shift_c` per channel for `x: [B, C, H, W]`, `scale, shift: [C]`.
///
/// Written as a broadcast over the last axis of `[B·C, H·W]`: burn-flex 0.21 broadcasts a
/// `[1, C, 1, 1]` operand over a batch an order of magnitude slower than this
/// (`docs/cpu-kernels.md`), which made BatchNorm the bottleneck of every network.
pub fn channel_affine<B: Backend>(
    x: Tensor<B, 4>,
    scale: Tensor<B, 1>,
    shift: Tensor<B, 1>,
) -> Tensor<B, 4> {
    channel_affine_activation(x, scale, shift, Activation::Identity)
}

/// `act(x·scale_c + shift_c)`: [`channel_affine`] and an activation, one pass on flex.
pub fn channel_affine_activation<B: Backend>(
    x: Tensor<B, 4>,
    scale: Tensor<B, 1>,
    shift: Tensor<B, 1>,
    act: Activation,
) -> Tensor<B, 4> {
    let (x, scale, shift) = match stad_kernels::channel_affine(x, scale, shift, act) {
        Ok(y) => return y,
        Err(operands) => operands,
    };
    let [b, c, h, w] = x.dims();
    let per_row = |v: Tensor<B, 1>| v.reshape([1, c]).repeat_dim(0, b).reshape([b * c, 1]);
    let y = (x.reshape([b * c, h * w]) * per_row(scale) + per_row(shift)).reshape([b, c, h, w]);
    activate(y, act)
}

/// BatchNorm with PyTorch's semantics, computed with [`channel_affine`].
///
/// - Without autodiff (inference, the frozen teacher): `y = (x − μ_run)/√(σ²_run + ε)·γ + β`.
/// - On an autodiff backend (training): batch statistics over `(B, H, W)`,
///   `y = (x − μ_B)/√(σ²_B + ε)·γ + β` with the biased `σ²_B`, and the running statistics
///   move as PyTorch's do: `μ_run ← (1−m)·μ_run + m·μ_B`,
///   `σ²_run ← (1−m)·σ²_run + m·σ²_B·n/(n−1)` (unbiased; burn's own BatchNorm uses the biased
///   variance here).
pub fn batch_norm<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    batch_norm_activation(bn, x, Activation::Identity)
}

/// `act(batch_norm(bn, x))`, fused into the BatchNorm's pass (and, in training, its backward
/// pass) on flex.
pub fn batch_norm_activation<B: Backend>(
    bn: &BatchNorm<B>,
    x: Tensor<B, 4>,
    act: Activation,
) -> Tensor<B, 4> {
    let device = x.device();
    let gamma = bn.gamma.val();
    let beta = bn.beta.val();
    if !B::ad_enabled(&device) {
        let inv_std = bn.running_var.value().add_scalar(bn.epsilon).sqrt().recip();
        let scale = gamma * inv_std;
        let shift = beta - bn.running_mean.value() * scale.clone();
        return channel_affine_activation(x, scale, shift, act);
    }
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let m = bn.momentum;
    let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    let update_running = |mean: Tensor<B, 1>, var: Tensor<B, 1>| {
        let running_mean = bn.running_mean.value_sync().mul_scalar(1.0 - m) + mean.mul_scalar(m);
        let running_var =
            bn.running_var.value_sync().mul_scalar(1.0 - m) + var.mul_scalar(m * unbiased);
        bn.running_mean.update(running_mean.detach());
        bn.running_var.update(running_var.detach());
    };
    // One fused pass forward and backward on flex (see `stad_kernels::norm`).
    let (x, gamma, beta) = match stad_kernels::batch_norm_train(x, gamma, beta, bn.epsilon, act) {
        Ok((y, mean, var)) => {
            update_running(mean, var);
            return y;
        }
        Err(operands) => operands,
    };
    let channel_mean = |t: Tensor<B, 4>| t.mean_dim(0).mean_dim(2).mean_dim(3).reshape([c]);
    let mean = channel_mean(x.clone());
    let centered = channel_affine(x, Tensor::ones([c], &device), mean.clone().neg());
    let var = channel_mean(centered.clone().square());
    update_running(mean.detach(), var.clone().detach());
    let scale = gamma * var.add_scalar(bn.epsilon).sqrt().recip();
    channel_affine_activation(centered, scale, beta, act)
}

/// torchvision's convolution init: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
pub(crate) fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// Configuration of a bias-free convolution followed by BatchNorm.
#[derive(Config, Debug)]
pub struct ConvBnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel_size: usize,
    /// Stride. Default: 1.
    #[config(default = 1)]
    pub stride: usize,
    /// Padding. Default: `(kernel_size - 1) / 2` on every side (torchvision's choice).
    #[config(default = "None")]
    pub padding: Option<PaddingConfig2d>,
    /// Convolution groups (depthwise when equal to the channels). Default: 1.
    #[config(default = 1)]
    pub groups: usize,
}

/// A bias-free convolution followed by BatchNorm (no activation: the caller applies it).
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// The convolution (no bias).
    pub conv: Conv2d<B>,
    /// The BatchNorm (eps 1e-5, momentum 0.1, as PyTorch).
    pub bn: BatchNorm<B>,
}

impl ConvBnConfig {
    /// Builds the block with torchvision's initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvBn<B> {
        let pad = (self.kernel_size - 1) / 2;
        let padding = self
            .padding
            .clone()
            .unwrap_or(PaddingConfig2d::Explicit(pad, pad, pad, pad));
        let conv = Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel_size; 2])
            .with_stride([self.stride; 2])
            .with_padding(padding)
            .with_groups(self.groups)
            .with_bias(false)
            .with_initializer(kaiming_fan_out())
            .init(device);
        let bn = BatchNormConfig::new(self.out_channels).init(device);
        ConvBn { conv, bn }
    }
}

impl<B: Backend> ConvBn<B> {
    /// `bn(conv(x))`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm(&self.bn, conv2d(&self.conv, x))
    }

    /// `act(bn(conv(x)))`, the activation fused into the BatchNorm.
    pub fn forward_activation(&self, x: Tensor<B, 4>, act: Activation) -> Tensor<B, 4> {
        batch_norm_activation(&self.bn, conv2d(&self.conv, x), act)
    }

    /// `relu(bn(conv(x)))`.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_activation(x, Activation::Relu)
    }

    /// `clamp(bn(conv(x)), 0, 6)` (ReLU6).
    pub fn forward_relu6(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_activation(x, Activation::Relu6)
    }
}

#[cfg(test)]
/// Deterministic conv weights for the tests (`w[i] = cos(0.7 i) / 4`).
fn model_seeded<B: Backend>(mut block: ConvBn<B>) -> ConvBn<B> {
    block.conv.weight = block.conv.weight.map(|w| {
        let dims = w.dims();
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).cos() * 0.25).collect();
        Tensor::from_data(TensorData::new(v, dims), &w.device()).require_grad()
    });
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, Tolerance};

    /// A BatchNorm with non-trivial gamma/beta; its running statistics are its own.
    fn random_bn<Bk: Backend>(device: &Bk::Device) -> BatchNorm<Bk> {
        let mut bn = BatchNormConfig::new(5).init::<Bk>(device);
        let gamma = [0.5f32, 1.5, 2.0, 0.8, 1.1];
        let beta = [0.1f32, -0.3, 0.0, 1.0, -2.0];
        bn.gamma = bn
            .gamma
            .map(|_| Tensor::from_floats(gamma, device).require_grad());
        bn.beta = bn.beta.map(|_| Tensor::from_floats(beta, device));
        bn
    }

    /// The fused training-mode kernel on flex against the generic formulation on ndarray
    /// (burn's own ReLU and clamp after it): outputs and the gradients of the input and γ, and
    /// the running variance, for each fused activation.
    #[test]
    fn training_gradients_equal_the_generic_formulation() {
        for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
            training_gradients_equal_the_generic_formulation_with(act);
        }
    }

    fn training_gradients_equal_the_generic_formulation_with(act: Activation) {
        fn run<Bk: burn::tensor::backend::AutodiffBackend>(
            x: &[f32],
            r: &[f32],
            dims: [usize; 4],
            act: Activation,
        ) -> Vec<Vec<f32>> {
            let device = Default::default();
            let bn = random_bn::<Bk>(&device);
            let x = Tensor::<Bk, 4>::from_data(TensorData::new(x.to_vec(), dims), &device)
                .require_grad();
            let r = Tensor::<Bk, 4>::from_data(TensorData::new(r.to_vec(), dims), &device);
            let y = batch_norm_activation(&bn, x.clone(), act);
            let grads = (y.clone() * r).sum().backward();
            let v = |t: Tensor<Bk::InnerBackend, 4>| t.into_data().to_vec::<f32>().unwrap();
            let v1 = |t: Tensor<Bk::InnerBackend, 1>| t.into_data().to_vec::<f32>().unwrap();
            vec![
                v(y.inner()),
                v(x.grad(&grads).unwrap()),
                v1(bn.gamma.grad(&grads).unwrap()),
                v1(bn.running_var.value_sync().inner()),
            ]
        }
        let dims = [4, 5, 9, 7];
        let n = dims.iter().product::<usize>();
        let wave = |k: f32| {
            (0..n)
                .map(|i| (i as f32 * k).sin() * 3.0 + 1.5)
                .collect::<Vec<_>>()
        };
        let (x, r) = (wave(0.37), wave(1.91));
        let fast = run::<Autodiff<Flex>>(&x, &r, dims, act);
        let generic = run::<Autodiff<burn::backend::NdArray>>(&x, &r, dims, act);
        // ndarray sums in f32, the kernel in f64 lanes (checked against an f64 reference in
        // stad-kernels): γ's gradient, a sum of 1260 products, differs by ~1.3e-5 of its scale.
        for (k, (a, b)) in fast.iter().zip(&generic).enumerate() {
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (u, v) in a.iter().zip(b) {
                assert!(
                    (u - v).abs() <= 5e-5 * scale,
                    "{act:?} output {k}: {u} vs {v} (scale {scale})"
                );
            }
        }
    }

    #[test]
    fn conv_bn_gradients_equal_the_generic_path() {
        fn run<Bk: burn::tensor::backend::AutodiffBackend>(
            x: &[f32],
            dims: [usize; 4],
        ) -> Vec<Vec<f32>> {
            let device = Default::default();
            let block = super::model_seeded(ConvBnConfig::new(dims[1], 8, 3).init::<Bk>(&device));
            let x = Tensor::<Bk, 4>::from_data(TensorData::new(x.to_vec(), dims), &device)
                .require_grad();
            let y = block.forward_relu(x.clone());
            let r = y.clone().detach().sin();
            let grads = (y * r).sum().backward();
            vec![
                x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap(),
                block
                    .conv
                    .weight
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap(),
            ]
        }
        let dims = [2, 4, 12, 12];
        let n = dims.iter().product::<usize>();
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let fast = run::<Autodiff<Flex>>(&x, dims);
        let generic = run::<Autodiff<burn::backend::NdArray>>(&x, dims);
        for (k, (a, b)) in fast.iter().zip(&generic).enumerate() {
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let d = a
                .iter()
                .zip(b)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0f32, f32::max);
            assert!(
                d <= 1e-5 * scale,
                "output {k}: max diff {d} (scale {scale})"
            );
        }
    }

    /// `act(a + b)` on flex against burn's addition and activation on ndarray: the output and
    /// both operands' gradients, bit for bit (one addition, one comparison per element).
    #[test]
    fn fused_residual_activation_equals_burns() {
        fn run<Bk: burn::tensor::backend::AutodiffBackend>(act: Activation) -> Vec<Vec<f32>> {
            let device = Default::default();
            let dims = [2, 3, 5, 7];
            let n = dims.iter().product::<usize>();
            let wave = |k: f32| {
                let v = (0..n)
                    .map(|i| (i as f32 * k).sin() * 4.0)
                    .collect::<Vec<_>>();
                Tensor::<Bk, 4>::from_data(TensorData::new(v, dims), &device).require_grad()
            };
            let (a, b, r) = (wave(0.37), wave(1.3), wave(2.9).detach());
            let y = add_activation(a.clone(), b.clone(), act);
            let grads = (y.clone() * r).sum().backward();
            let v = |t: Tensor<Bk::InnerBackend, 4>| t.into_data().to_vec::<f32>().unwrap();
            vec![
                v(y.inner()),
                v(a.grad(&grads).unwrap()),
                v(b.grad(&grads).unwrap()),
            ]
        }
        for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
            assert_eq!(
                run::<Autodiff<Flex>>(act),
                run::<Autodiff<burn::backend::NdArray>>(act),
                "{act:?}"
            );
        }
    }

    #[test]
    fn inference_with_an_activation_equals_burns_batch_norm_and_clamp() {
        let device = Default::default();
        let bn = random_bn::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([3, 5, 4, 6], Distribution::Normal(1.0, 4.0), &device);
        for (act, lo, hi) in [
            (Activation::Relu, 0.0, f32::MAX),
            (Activation::Relu6, 0.0, 6.0),
        ] {
            batch_norm_activation(&bn, x.clone(), act)
                .into_data()
                .assert_approx_eq::<f32>(
                    &bn.forward(x.clone()).clamp(lo, hi).into_data(),
                    Tolerance::default(),
                );
        }
    }

    #[test]
    fn inference_equals_burns_batch_norm() {
        let device = Default::default();
        let bn = random_bn::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([3, 5, 4, 6], Distribution::Normal(1.0, 2.0), &device);
        batch_norm(&bn, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&bn.forward(x).into_data(), Tolerance::default());
    }

    #[test]
    fn training_equals_burns_batch_norm_and_uses_unbiased_running_variance() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let ours = random_bn::<A>(&device);
        let theirs = random_bn::<A>(&device);
        let x = Tensor::<A, 4>::random([3, 5, 4, 6], Distribution::Normal(1.0, 2.0), &device)
            .require_grad();
        let y = batch_norm(&ours, x.clone());
        y.clone()
            .into_data()
            .assert_approx_eq::<f32>(&theirs.forward(x.clone()).into_data(), Tolerance::default());
        ours.running_mean
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(
                &theirs.running_mean.value_sync().into_data(),
                Tolerance::default(),
            );
        // burn: 0.9 + 0.1·σ²_biased; PyTorch (ours): 0.9 + 0.1·σ²_biased·n/(n−1).
        let n = 3.0 * 4.0 * 6.0;
        let theirs_var = theirs
            .running_var
            .value_sync()
            .sub_scalar(0.9)
            .mul_scalar(n / (n - 1.0))
            .add_scalar(0.9);
        ours.running_var
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(&theirs_var.into_data(), Tolerance::default());
        // Gradients flow to the input and to gamma/beta.
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some(), "no gradient for the input");
        assert!(ours.gamma.grad(&grads).is_some(), "no gradient for gamma");
    }
}
