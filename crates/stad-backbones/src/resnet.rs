//! ResNet18/34 (basic blocks), ResNet50 and Wide-ResNet50-2 (bottleneck blocks) with the
//! torchvision structure, returning intermediate feature maps.
//!
//! The network is built only up to the deepest stage it is asked for: a ResNet18 tapped at
//! `layer1..layer3` has no `layer4` (its weights are skipped when a full torchvision file is
//! loaded) and never computes it.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use stad_kernels::{Activation, conv2d, max_pool2d};

use crate::error::{BackboneError, Result};
use crate::layers::{
    ConvBn, ConvBnConfig, add_activation, batch_norm, batch_norm_activation, kaiming_fan_out,
};
use crate::mobilenet::MAX_CLASSES;
use crate::weights::{KeyTarget, TorchvisionKeys};

/// The widest inner width accepted for a block (ResNet-50's widest is 512, its outputs
/// 2048). Bounds what a corrupt or hostile config can allocate.
pub const MAX_INNER_WIDTH: usize = 4096;

/// The ResNet variants of torchvision that this crate builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResNetArch {
    /// `resnet18`: basic blocks `[2, 2, 2, 2]`.
    ResNet18,
    /// `resnet34`: basic blocks `[3, 4, 6, 3]`.
    ResNet34,
    /// `resnet50`: bottleneck blocks `[3, 4, 6, 3]`, inner width = planes.
    ResNet50,
    /// `wide_resnet50_2`: bottleneck blocks `[3, 4, 6, 3]`, inner width = 2 × planes.
    WideResNet50_2,
}

impl ResNetArch {
    /// Blocks per stage (`layer1..layer4`).
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Self::ResNet18 => [2, 2, 2, 2],
            _ => [3, 4, 6, 3],
        }
    }

    /// True for the bottleneck variants.
    pub fn is_bottleneck(self) -> bool {
        matches!(self, Self::ResNet50 | Self::WideResNet50_2)
    }

    /// Output channels of each stage: `[stem, layer1, layer2, layer3, layer4]`.
    pub fn stage_channels(self) -> [usize; 5] {
        let e = if self.is_bottleneck() { 4 } else { 1 };
        [64, 64 * e, 128 * e, 256 * e, 512 * e]
    }

    /// torchvision's inner width of each stage's blocks (`planes × width factor`).
    pub fn default_inner_widths(self) -> [usize; 4] {
        let f = if self == Self::WideResNet50_2 { 2 } else { 1 };
        [64 * f, 128 * f, 256 * f, 512 * f]
    }

    /// torchvision's name (`resnet18`, `wide_resnet50_2`…).
    pub fn name(self) -> &'static str {
        match self {
            Self::ResNet18 => "resnet18",
            Self::ResNet34 => "resnet34",
            Self::ResNet50 => "resnet50",
            Self::WideResNet50_2 => "wide_resnet50_2",
        }
    }
}

/// A place in a ResNet whose output can be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResNetStage {
    /// After `conv1 → bn1 → relu → maxpool` (stride 4).
    Stem,
    /// Output of `layer1` (stride 4).
    Layer1,
    /// Output of `layer2` (stride 8).
    Layer2,
    /// Output of `layer3` (stride 16).
    Layer3,
    /// Output of `layer4` (stride 32).
    Layer4,
}

impl ResNetStage {
    fn index(self) -> usize {
        self as usize
    }

    /// Spatial stride of this stage's output relative to the input.
    pub fn stride(self) -> usize {
        [4, 4, 8, 16, 32][self.index()]
    }
}

/// Configuration of a [`ResNet`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Which torchvision ResNet.
    pub arch: ResNetArch,
    /// The stages whose outputs [`ResNet::forward_features`] returns, in this order.
    /// Default: `layer1, layer2, layer3` (STFPM's choice).
    #[config(default = "vec![ResNetStage::Layer1, ResNetStage::Layer2, ResNetStage::Layer3]")]
    pub taps: Vec<ResNetStage>,
    /// Inner width of the blocks of each stage (`layer1..layer4`): the first 3×3 conv's output
    /// in a basic block, the 1×1/3×3 convs' width in a bottleneck. `None` (default) is
    /// torchvision's width. Smaller values give the Simple Student: each stage still outputs the
    /// teacher's channels, so the distillation targets match.
    #[config(default = "None")]
    pub inner_widths: Option<[usize; 4]>,
    /// Build `layer4`, average pooling and the `fc` classifier too (default: false). Only
    /// needed to load or count a complete torchvision network.
    #[config(default = false)]
    pub classifier: bool,
    /// Classes of the `fc` layer when `classifier` is set. Default: 1000 (ImageNet).
    #[config(default = 1000)]
    pub num_classes: usize,
}

/// One residual block: a basic block (`conv3` absent) or a bottleneck.
#[derive(Module, Debug)]
pub struct ResidualBlock<B: Backend> {
    /// Basic: 3×3 (stride) to the inner width. Bottleneck: 1×1 to the inner width.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// Basic: 3×3 to the output width. Bottleneck: 3×3 (stride) at the inner width.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// Bottleneck only: 1×1 to the output width.
    pub conv3: Option<Conv2d<B>>,
    /// Bottleneck only: BatchNorm after `conv3`.
    pub bn3: Option<BatchNorm<B>>,
    /// 1×1 projection of the identity when the stride or the width changes.
    pub downsample: Option<ConvBn<B>>,
}

impl<B: Backend> ResidualBlock<B> {
    fn new(
        bottleneck: bool,
        in_ch: usize,
        inner: usize,
        out_ch: usize,
        stride: usize,
        device: &B::Device,
    ) -> Self {
        let conv = |i: usize, o: usize, k: usize, s: usize| -> Conv2d<B> {
            let p = (k - 1) / 2;
            Conv2dConfig::new([i, o], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .with_initializer(kaiming_fan_out())
                .init(device)
        };
        let bn = |c: usize| BatchNormConfig::new(c).init(device);
        let downsample = (stride != 1 || in_ch != out_ch).then(|| {
            ConvBnConfig::new(in_ch, out_ch, 1)
                .with_stride(stride)
                .init(device)
        });
        if bottleneck {
            Self {
                conv1: conv(in_ch, inner, 1, 1),
                bn1: bn(inner),
                conv2: conv(inner, inner, 3, stride),
                bn2: bn(inner),
                conv3: Some(conv(inner, out_ch, 1, 1)),
                bn3: Some(bn(out_ch)),
                downsample,
            }
        } else {
            Self {
                conv1: conv(in_ch, inner, 3, stride),
                bn1: bn(inner),
                conv2: conv(inner, out_ch, 3, 1),
                bn2: bn(out_ch),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    /// `relu(F(x) + shortcut(x))`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(ds) => ds.forward(x.clone()),
            None => x.clone(),
        };
        let inner = if self.conv3.is_some() {
            Activation::Relu
        } else {
            Activation::Identity
        };
        let mut y = batch_norm_activation(&self.bn1, conv2d(&self.conv1, x), Activation::Relu);
        y = batch_norm_activation(&self.bn2, conv2d(&self.conv2, y), inner);
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            y = batch_norm(bn3, conv2d(conv3, y));
        }
        add_activation(y, identity, Activation::Relu)
    }
}

/// A torchvision ResNet, built up to its deepest requested stage.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// Stem convolution, 7×7 stride 2 pad 3.
    pub conv1: Conv2d<B>,
    /// Stem BatchNorm.
    pub bn1: BatchNorm<B>,
    /// Stem max pooling, 3×3 stride 2 pad 1.
    pub maxpool: MaxPool2d,
    /// Stage 1 (empty when not built).
    pub layer1: Vec<ResidualBlock<B>>,
    /// Stage 2 (empty when not built).
    pub layer2: Vec<ResidualBlock<B>>,
    /// Stage 3 (empty when not built).
    pub layer3: Vec<ResidualBlock<B>>,
    /// Stage 4 (empty when not built).
    pub layer4: Vec<ResidualBlock<B>>,
    /// ImageNet classifier (only with `classifier: true`).
    pub fc: Option<Linear<B>>,
    #[module(skip)]
    arch: ResNetArch,
    #[module(skip)]
    taps: Vec<ResNetStage>,
    #[module(skip)]
    built_stages: usize,
}

impl ResNetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.taps.is_empty() && !self.classifier {
            return Err(BackboneError::InvalidConfig(
                "a ResNet needs at least one tap".into(),
            ));
        }
        if let Some(w) = self.inner_widths
            && w.iter().any(|w| !(1..=MAX_INNER_WIDTH).contains(w))
        {
            return Err(BackboneError::InvalidConfig(format!(
                "inner widths must be in 1..={MAX_INNER_WIDTH}, got {w:?}"
            )));
        }
        if self.classifier && !(1..=MAX_CLASSES).contains(&self.num_classes) {
            return Err(BackboneError::InvalidConfig(format!(
                "num_classes must be in 1..={MAX_CLASSES}, got {}",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// Number of stages (`layer1..`) that are built: up to the deepest tap, or all four with
    /// the classifier.
    pub fn built_stages(&self) -> usize {
        if self.classifier {
            return 4;
        }
        self.taps.iter().map(|t| t.index()).max().unwrap_or(0)
    }

    /// Output channels of each tap, in tap order.
    pub fn tap_channels(&self) -> Vec<usize> {
        let c = self.arch.stage_channels();
        self.taps.iter().map(|t| c[t.index()]).collect()
    }

    /// Builds the network with torchvision's initialisation (Kaiming-normal fan-out convs,
    /// BatchNorm weight 1 / bias 0).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ResNet<B>> {
        self.validate()?;
        let arch = self.arch;
        let bottleneck = arch.is_bottleneck();
        let channels = arch.stage_channels();
        let inner = self.inner_widths.unwrap_or(arch.default_inner_widths());
        let built = self.built_stages();
        let mut stages: Vec<Vec<ResidualBlock<B>>> = Vec::with_capacity(4);
        for (s, &n_blocks) in arch.blocks().iter().enumerate() {
            if s >= built {
                stages.push(Vec::new());
                continue;
            }
            let (in_ch, out_ch) = (channels[s], channels[s + 1]);
            let stride = if s == 0 { 1 } else { 2 };
            let blocks = (0..n_blocks)
                .map(|b| {
                    let (i, st) = if b == 0 { (in_ch, stride) } else { (out_ch, 1) };
                    ResidualBlock::new(bottleneck, i, inner[s], out_ch, st, device)
                })
                .collect();
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        Ok(ResNet {
            conv1: Conv2dConfig::new([3, 64], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .with_initializer(kaiming_fan_out())
                .init(device),
            bn1: BatchNormConfig::new(64).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: stages.next().unwrap_or_default(),
            layer2: stages.next().unwrap_or_default(),
            layer3: stages.next().unwrap_or_default(),
            layer4: stages.next().unwrap_or_default(),
            fc: self
                .classifier
                .then(|| LinearConfig::new(channels[4], self.num_classes).init(device)),
            arch,
            taps: self.taps.clone(),
            built_stages: built,
        })
    }
}

impl<B: Backend> ResNet<B> {
    /// The architecture.
    pub fn arch(&self) -> ResNetArch {
        self.arch
    }

    /// The stages [`Self::forward_features`] returns, in order.
    pub fn taps(&self) -> &[ResNetStage] {
        &self.taps
    }

    /// Output channels of each tap.
    pub fn tap_channels(&self) -> Vec<usize> {
        let c = self.arch.stage_channels();
        self.taps.iter().map(|t| c[t.index()]).collect()
    }

    /// `maxpool(relu(bn1(conv1(x))))`.
    fn stem(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        max_pool2d(
            &self.maxpool,
            batch_norm_activation(&self.bn1, conv2d(&self.conv1, x), Activation::Relu),
        )
    }

    fn stages(&self) -> [&Vec<ResidualBlock<B>>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// The feature maps of the taps, in tap order, for an input `[N, 3, H, W]`.
    /// Stages deeper than the deepest tap are not computed.
    pub fn forward_features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let deepest = self.taps.iter().map(|t| t.index()).max().unwrap_or(0);
        let mut outputs: [Option<Tensor<B, 4>>; 5] = Default::default();
        let mut x = self.stem(x);
        if self.taps.contains(&ResNetStage::Stem) {
            outputs[0] = Some(x.clone());
        }
        for (s, blocks) in self.stages().into_iter().enumerate().take(deepest) {
            for block in blocks {
                x = block.forward(x);
            }
            if self.taps.iter().any(|t| t.index() == s + 1) {
                outputs[s + 1] = Some(x.clone());
            }
        }
        self.taps
            .iter()
            .map(|t| outputs[t.index()].clone().expect("every tap was computed"))
            .collect()
    }
}

impl<B: Backend> TorchvisionKeys for ResNet<B> {
    fn map_key(&self, key: &str) -> Option<KeyTarget> {
        if let Some(rest) = key.strip_prefix("layer")
            && let Some(stage) = rest.chars().next().and_then(|c| c.to_digit(10))
            && stage as usize > self.built_stages
        {
            return Some(KeyTarget::NotBuilt);
        }
        if key.starts_with("fc.") && self.fc.is_none() {
            return Some(KeyTarget::NotBuilt);
        }
        let path = key
            .replace(".downsample.0.", ".downsample.conv.")
            .replace(".downsample.1.", ".downsample.bn.");
        Some(KeyTarget::Module(path))
    }

    fn torchvision_name_of(&self, path: &str) -> String {
        let key = path
            .replace(".downsample.conv.", ".downsample.0.")
            .replace(".downsample.bn.", ".downsample.1.");
        if let Some(stem) = key.strip_suffix(".gamma") {
            format!("{stem}.weight")
        } else if let Some(stem) = key.strip_suffix(".beta") {
            format!("{stem}.bias")
        } else {
            key
        }
    }

    fn network_name(&self) -> String {
        let deepest = if self.fc.is_some() {
            "fc".to_string()
        } else {
            format!("layer{}", self.built_stages)
        };
        format!("{} to {deepest}", self.arch.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn shapes(maps: &[Tensor<Flex, 4>]) -> Vec<[usize; 4]> {
        maps.iter().map(|m| m.dims()).collect()
    }

    #[test]
    fn builds_only_up_to_the_deepest_tap() {
        let device = Default::default();
        let net = ResNetConfig::new(ResNetArch::ResNet18)
            .with_taps(vec![ResNetStage::Layer2, ResNetStage::Stem])
            .init::<Flex>(&device)
            .unwrap();
        assert_eq!(net.layer2.len(), 2);
        assert!(net.layer3.is_empty() && net.layer4.is_empty() && net.fc.is_none());
        let maps = net.forward_features(Tensor::zeros([2, 3, 64, 64], &device));
        // Tap order is kept.
        assert_eq!(shapes(&maps), vec![[2, 128, 8, 8], [2, 64, 16, 16]]);
    }

    #[test]
    fn bottleneck_variants_output_four_times_the_planes() {
        let device = Default::default();
        let net = ResNetConfig::new(ResNetArch::WideResNet50_2)
            .with_taps(vec![ResNetStage::Layer1])
            .init::<Flex>(&device)
            .unwrap();
        assert_eq!(net.layer1[0].conv1.weight.dims(), [128, 64, 1, 1]);
        let maps = net.forward_features(Tensor::zeros([1, 3, 32, 32], &device));
        assert_eq!(shapes(&maps), vec![[1, 256, 8, 8]]);
    }

    #[test]
    fn reduced_inner_widths_keep_stage_outputs_and_shrink_the_network() {
        let device = Default::default();
        let full = ResNetConfig::new(ResNetArch::ResNet18)
            .init::<Flex>(&device)
            .unwrap();
        let simple = ResNetConfig::new(ResNetArch::ResNet18)
            .with_inner_widths(Some([16, 32, 64, 128]))
            .init::<Flex>(&device)
            .unwrap();
        assert_eq!(simple.layer2[0].conv1.weight.dims(), [32, 64, 3, 3]);
        assert_eq!(simple.layer2[0].conv2.weight.dims(), [128, 32, 3, 3]);
        assert!(simple.num_params() < full.num_params() / 3);
        let x = Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device);
        assert_eq!(
            shapes(&simple.forward_features(x.clone())),
            shapes(&full.forward_features(x))
        );
    }

    #[test]
    fn invalid_configs_are_errors() {
        let device = Default::default();
        let no_taps = ResNetConfig::new(ResNetArch::ResNet18).with_taps(vec![]);
        assert!(matches!(
            no_taps.init::<Flex>(&device),
            Err(BackboneError::InvalidConfig(_))
        ));
        let zero = ResNetConfig::new(ResNetArch::ResNet18).with_inner_widths(Some([0, 1, 1, 1]));
        assert!(matches!(
            zero.init::<Flex>(&device),
            Err(BackboneError::InvalidConfig(_))
        ));
        // Upper bounds: a corrupt header's huge width is refused before anything is allocated.
        let huge = ResNetConfig::new(ResNetArch::ResNet18).with_inner_widths(Some([
            1,
            1,
            MAX_INNER_WIDTH + 1,
            1,
        ]));
        assert!(matches!(
            huge.validate(),
            Err(BackboneError::InvalidConfig(_))
        ));
        let classes = ResNetConfig::new(ResNetArch::ResNet18)
            .with_classifier(true)
            .with_num_classes(MAX_CLASSES + 1);
        assert!(matches!(
            classes.validate(),
            Err(BackboneError::InvalidConfig(_))
        ));
    }
}
