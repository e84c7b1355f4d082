//! One type for every backbone, so that methods are written once.

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;

use crate::error::Result;
use crate::mobilenet::{MobileNetV2, MobileNetV2Config, feature_stride};
use crate::resnet::{ResNet, ResNetArch, ResNetConfig};
use crate::weights::{KeyTarget, LoadReport, StateDict, TorchvisionKeys, load_torchvision};
use stad_data::Normalization;

/// Configuration of any backbone of this crate.
#[derive(Config, Debug, PartialEq, Eq)]
pub enum BackboneConfig {
    /// A torchvision ResNet.
    ResNet(ResNetConfig),
    /// A torchvision MobileNetV2.
    MobileNetV2(MobileNetV2Config),
}

impl BackboneConfig {
    /// ResNet18 tapped at `layer1..layer3` (the thesis' teacher).
    pub fn resnet18() -> Self {
        Self::ResNet(ResNetConfig::new(ResNetArch::ResNet18))
    }

    /// MobileNetV2 with TF padding, tapped at `features[3, 6, 13]` (strides 4/8/16): the
    /// configuration of the embedded ImageNet teacher.
    pub fn mobilenet_v2_tf() -> Self {
        Self::MobileNetV2(MobileNetV2Config::new().with_tf_padding(true))
    }

    /// Builds the network with random (torchvision-style) initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>> {
        Ok(match self {
            Self::ResNet(c) => Backbone::ResNet(c.init(device)?),
            Self::MobileNetV2(c) => Backbone::MobileNetV2(c.init(device)?),
        })
    }

    /// Checks the configuration (its network's `validate`).
    ///
    /// # Errors
    /// [`crate::BackboneError::InvalidConfig`] saying what is wrong.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Self::ResNet(c) => c.validate(),
            Self::MobileNetV2(c) => c.validate(),
        }
    }

    /// Output channels of each tap, in tap order.
    pub fn tap_channels(&self) -> Vec<usize> {
        match self {
            Self::ResNet(c) => c.tap_channels(),
            Self::MobileNetV2(c) => c.tap_channels(),
        }
    }

    /// Spatial stride of each tap relative to the input.
    pub fn tap_strides(&self) -> Vec<usize> {
        match self {
            Self::ResNet(c) => c.taps.iter().map(|t| t.stride()).collect(),
            Self::MobileNetV2(c) => c.taps.iter().map(|&t| feature_stride(t)).collect(),
        }
    }

    /// The input normalisation the weights were trained with: ImageNet statistics for
    /// torchvision backbones, `(x − 0.5) / 0.5`-like TF scaling for a TF-padded MobileNetV2.
    pub fn default_normalization(&self) -> Normalization {
        match self {
            Self::MobileNetV2(c) if c.tf_padding => Normalization::TF_MOBILENET,
            _ => Normalization::IMAGENET,
        }
    }

    /// A short name (`resnet18`, `mobilenet_v2`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ResNet(c) => c.arch.name(),
            Self::MobileNetV2(_) => "mobilenet_v2",
        }
    }

    /// The same backbone with the Simple Student's reduced inner widths: for a ResNet,
    /// `inner_widths` per stage; for MobileNetV2, the expansion ratio.
    pub fn with_reduced_width(&self, resnet_inner: [usize; 4], mobilenet_expansion: usize) -> Self {
        match self {
            Self::ResNet(c) => Self::ResNet(c.clone().with_inner_widths(Some(resnet_inner))),
            Self::MobileNetV2(c) => {
                Self::MobileNetV2(c.clone().with_expansion(Some(mobilenet_expansion)))
            }
        }
    }
}

/// Any backbone of this crate.
// A model holds one or two backbones, so the size gap between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone<B: Backend> {
    /// A torchvision ResNet.
    ResNet(ResNet<B>),
    /// A torchvision MobileNetV2.
    MobileNetV2(MobileNetV2<B>),
}

impl<B: Backend> Backbone<B> {
    /// The tapped feature maps, in tap order.
    pub fn forward_features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        match self {
            Self::ResNet(m) => m.forward_features(x),
            Self::MobileNetV2(m) => m.forward_features(x),
        }
    }

    /// Output channels of each tap.
    pub fn tap_channels(&self) -> Vec<usize> {
        match self {
            Self::ResNet(m) => m.tap_channels(),
            Self::MobileNetV2(m) => m.tap_channels(),
        }
    }

    /// Loads a torchvision state dict (all or nothing; see [`crate::weights`]).
    pub fn load_torchvision(&mut self, dict: &StateDict) -> Result<LoadReport> {
        match self {
            Self::ResNet(m) => load_torchvision(m, dict),
            Self::MobileNetV2(m) => load_torchvision(m, dict),
        }
    }

    /// Reads a `.pth` or `.safetensors` torchvision file and loads it.
    pub fn load_torchvision_file(&mut self, path: impl AsRef<Path>) -> Result<LoadReport> {
        self.load_torchvision(&StateDict::from_file(path)?)
    }

    /// Number of trainable parameters, as torchvision counts `model.parameters()`: burn's
    /// `num_params` also counts BatchNorm running statistics, which are excluded here.
    pub fn num_trainable_params(&self) -> usize {
        let mut counter = TrainableCounter::default();
        self.visit(&mut counter);
        counter.count
    }
}

/// Counts float parameters whose field name is not a BatchNorm running statistic.
#[derive(Default)]
struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl<B: Backend> burn::module::ModuleVisitor<B> for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let running = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !running {
            self.count += param.shape().num_elements();
        }
    }
}

impl<B: Backend> TorchvisionKeys for Backbone<B> {
    fn map_key(&self, key: &str) -> Option<KeyTarget> {
        match self {
            Self::ResNet(m) => m.map_key(key),
            Self::MobileNetV2(m) => m.map_key(key),
        }
    }

    fn torchvision_name_of(&self, path: &str) -> String {
        match self {
            Self::ResNet(m) => m.torchvision_name_of(path),
            Self::MobileNetV2(m) => m.torchvision_name_of(path),
        }
    }

    fn network_name(&self) -> String {
        match self {
            Self::ResNet(m) => m.network_name(),
            Self::MobileNetV2(m) => m.network_name(),
        }
    }
}
