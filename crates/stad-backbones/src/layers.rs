//! Small building blocks shared by the backbones.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

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
        self.bn.forward(self.conv.forward(x))
    }

    /// `relu(bn(conv(x)))`.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.forward(x))
    }

    /// `clamp(bn(conv(x)), 0, 6)` (ReLU6).
    pub fn forward_relu6(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward(x).clamp(0.0, 6.0)
    }
}
