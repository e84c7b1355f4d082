//! MobileNetV2 with the torchvision structure, feature taps, and TensorFlow "same" padding on
//! the stride-2 convolutions for weights ported from TensorFlow.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::error::{BackboneError, Result};
use crate::layers::{ConvBn, ConvBnConfig};
use crate::weights::{KeyTarget, TorchvisionKeys};

/// torchvision's inverted-residual settings `(expansion t, channels c, repeats n, stride s)`.
pub const INVERTED_RESIDUAL_SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Index of the last `features` entry (the 1×1 conv to 1280 channels).
pub const LAST_FEATURE: usize = 18;

/// The largest expansion ratio accepted (torchvision's is 6; 64 already gives 20 480-wide
/// hidden layers in the last blocks). Bounds what a corrupt or hostile config can allocate.
pub const MAX_EXPANSION: usize = 64;

/// The most classes a classifier head may have (ImageNet-21k has 21 841).
pub const MAX_CLASSES: usize = 100_000;

/// Configuration of a [`MobileNetV2`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct MobileNetV2Config {
    /// Indices into torchvision's `features` whose outputs are returned, in this order.
    /// Default: `[3, 6, 13]` (strides 4/8/16, 24/32/96 channels).
    #[config(default = "vec![3, 6, 13]")]
    pub taps: Vec<usize>,
    /// TensorFlow "same" padding on the five stride-2 3×3 convolutions: 0 before, 1 after
    /// (top/left 0, bottom/right 1) instead of torchvision's 1/1. Needed by weights ported from
    /// TensorFlow, such as the embedded teacher. Default: false.
    #[config(default = false)]
    pub tf_padding: bool,
    /// Expansion ratio of the blocks that torchvision expands (×6). `None` (default) keeps 6;
    /// a smaller value gives the Simple Student (block outputs unchanged).
    #[config(default = "None")]
    pub expansion: Option<usize>,
    /// Build `features[18]` and the classifier too. Default: false.
    #[config(default = false)]
    pub classifier: bool,
    /// Classes of the classifier. Default: 1000.
    #[config(default = 1000)]
    pub num_classes: usize,
}

/// An inverted-residual block: optional 1×1 expansion (ReLU6), 3×3 depthwise (ReLU6),
/// linear 1×1 projection, residual when the stride is 1 and the width is unchanged.
#[derive(Module, Debug)]
pub struct InvertedResidual<B: Backend> {
    /// 1×1 expansion to the hidden width (absent when the ratio is 1).
    pub expand: Option<ConvBn<B>>,
    /// 3×3 depthwise convolution.
    pub depthwise: ConvBn<B>,
    /// Linear 1×1 projection to the output width.
    pub project: ConvBn<B>,
    #[module(skip)]
    residual: bool,
}

impl<B: Backend> InvertedResidual<B> {
    /// The block's output.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut y = match &self.expand {
            Some(e) => e.forward_relu6(x.clone()),
            None => x.clone(),
        };
        y = self.depthwise.forward_relu6(y);
        y = self.project.forward(y);
        if self.residual { y + x } else { y }
    }
}

/// A torchvision MobileNetV2 (width 1.0), built up to its deepest tap.
#[derive(Module, Debug)]
pub struct MobileNetV2<B: Backend> {
    /// `features[0]`: 3×3 stride-2 conv to 32 channels, ReLU6.
    pub stem: ConvBn<B>,
    /// `features[1..=17]`: inverted-residual blocks (`blocks[i - 1]` is `features[i]`).
    pub blocks: Vec<InvertedResidual<B>>,
    /// `features[18]`: 1×1 conv to 1280 channels, ReLU6 (only when built).
    pub head: Option<ConvBn<B>>,
    /// `classifier[1]` (only with `classifier: true`).
    pub classifier: Option<Linear<B>>,
    #[module(skip)]
    taps: Vec<usize>,
}

/// Output channels of each `features[i]`, `i = 0..=18`.
pub fn feature_channels() -> [usize; LAST_FEATURE + 1] {
    let mut out = [0; LAST_FEATURE + 1];
    out[0] = 32;
    let mut i = 1;
    for (_, c, n, _) in INVERTED_RESIDUAL_SETTINGS {
        for _ in 0..n {
            out[i] = c;
            i += 1;
        }
    }
    out[LAST_FEATURE] = 1280;
    out
}

/// Spatial stride of the output of `features[i]`.
pub fn feature_stride(index: usize) -> usize {
    let mut stride = 2;
    let mut i = 1;
    for (_, _, n, s) in INVERTED_RESIDUAL_SETTINGS {
        for r in 0..n {
            if r == 0 {
                stride *= s;
            }
            if i == index {
                return stride;
            }
            i += 1;
        }
    }
    stride
}

impl MobileNetV2Config {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.taps.is_empty() && !self.classifier {
            return Err(BackboneError::InvalidConfig(
                "a MobileNetV2 needs at least one tap".into(),
            ));
        }
        if let Some(&t) = self.taps.iter().find(|&&t| t > LAST_FEATURE) {
            return Err(BackboneError::InvalidConfig(format!(
                "MobileNetV2 tap {t} out of range: features has indices 0..={LAST_FEATURE}"
            )));
        }
        if let Some(e) = self.expansion
            && !(1..=MAX_EXPANSION).contains(&e)
        {
            return Err(BackboneError::InvalidConfig(format!(
                "expansion ratio must be in 1..={MAX_EXPANSION}, got {e}"
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

    /// Index of the last `features` entry that is built.
    pub fn last_built(&self) -> usize {
        if self.classifier {
            LAST_FEATURE
        } else {
            self.taps.iter().copied().max().unwrap_or(0)
        }
    }

    /// Output channels of each tap, in tap order.
    pub fn tap_channels(&self) -> Vec<usize> {
        let c = feature_channels();
        self.taps.iter().map(|&t| c[t]).collect()
    }

    fn stride2_padding(&self) -> PaddingConfig2d {
        if self.tf_padding {
            PaddingConfig2d::Explicit(0, 0, 1, 1)
        } else {
            PaddingConfig2d::Explicit(1, 1, 1, 1)
        }
    }

    /// Builds the network (Kaiming-normal fan-out convs, BatchNorm 1/0, as torchvision).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<MobileNetV2<B>> {
        self.validate()?;
        let last = self.last_built();
        let stem = ConvBnConfig::new(3, 32, 3)
            .with_stride(2)
            .with_padding(Some(self.stride2_padding()))
            .init(device);
        let mut blocks = Vec::new();
        let mut in_ch = 32;
        let mut index = 1;
        'outer: for (t, c, n, s) in INVERTED_RESIDUAL_SETTINGS {
            for r in 0..n {
                if index > last.min(LAST_FEATURE - 1) {
                    break 'outer;
                }
                let stride = if r == 0 { s } else { 1 };
                let ratio = if t == 1 {
                    1
                } else {
                    self.expansion.unwrap_or(t)
                };
                let hidden = in_ch * ratio;
                let expand = (ratio != 1).then(|| ConvBnConfig::new(in_ch, hidden, 1).init(device));
                let padding = if stride == 2 {
                    self.stride2_padding()
                } else {
                    PaddingConfig2d::Explicit(1, 1, 1, 1)
                };
                let depthwise = ConvBnConfig::new(hidden, hidden, 3)
                    .with_stride(stride)
                    .with_groups(hidden)
                    .with_padding(Some(padding))
                    .init(device);
                let project = ConvBnConfig::new(hidden, c, 1).init(device);
                blocks.push(InvertedResidual {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && in_ch == c,
                });
                in_ch = c;
                index += 1;
            }
        }
        let head = (last == LAST_FEATURE).then(|| ConvBnConfig::new(320, 1280, 1).init(device));
        let classifier = self
            .classifier
            .then(|| LinearConfig::new(1280, self.num_classes).init(device));
        Ok(MobileNetV2 {
            stem,
            blocks,
            head,
            classifier,
            taps: self.taps.clone(),
        })
    }
}

impl<B: Backend> MobileNetV2<B> {
    /// The `features` indices returned by [`Self::forward_features`], in order.
    pub fn taps(&self) -> &[usize] {
        &self.taps
    }

    /// Output channels of each tap.
    pub fn tap_channels(&self) -> Vec<usize> {
        let c = feature_channels();
        self.taps.iter().map(|&t| c[t]).collect()
    }

    fn last_built(&self) -> usize {
        if self.head.is_some() {
            LAST_FEATURE
        } else {
            self.blocks.len()
        }
    }

    /// The outputs of the tapped `features[i]`, in tap order. Nothing deeper than the deepest
    /// tap is computed.
    pub fn forward_features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let deepest = self.taps.iter().copied().max().unwrap_or(0);
        let mut outputs: Vec<Option<Tensor<B, 4>>> = vec![None; LAST_FEATURE + 1];
        let mut x = self.stem.forward_relu6(x);
        let keep = |i: usize, x: &Tensor<B, 4>, outputs: &mut Vec<Option<Tensor<B, 4>>>| {
            if self.taps.contains(&i) {
                outputs[i] = Some(x.clone());
            }
        };
        keep(0, &x, &mut outputs);
        for (i, block) in self.blocks.iter().enumerate().take(deepest) {
            x = block.forward(x);
            keep(i + 1, &x, &mut outputs);
        }
        if deepest == LAST_FEATURE
            && let Some(head) = &self.head
        {
            x = head.forward_relu6(x);
            keep(LAST_FEATURE, &x, &mut outputs);
        }
        self.taps
            .iter()
            .map(|&t| outputs[t].clone().expect("every tap was computed"))
            .collect()
    }
}

impl<B: Backend> TorchvisionKeys for MobileNetV2<B> {
    fn map_key(&self, key: &str) -> Option<KeyTarget> {
        if let Some(rest) = key.strip_prefix("classifier.1.") {
            return Some(if self.classifier.is_some() {
                KeyTarget::Module(format!("classifier.{rest}"))
            } else {
                KeyTarget::NotBuilt
            });
        }
        let rest = key.strip_prefix("features.")?;
        let (index, rest) = rest.split_once('.')?;
        let index: usize = index.parse().ok()?;
        if index > self.last_built() {
            return Some(KeyTarget::NotBuilt);
        }
        let conv_bn = |prefix: &str, rest: &str| -> Option<String> {
            if let Some(r) = rest.strip_prefix("0.") {
                Some(format!("{prefix}.conv.{r}"))
            } else {
                rest.strip_prefix("1.").map(|r| format!("{prefix}.bn.{r}"))
            }
        };
        let path = match index {
            0 => conv_bn("stem", rest)?,
            LAST_FEATURE => conv_bn("head", rest)?,
            _ => {
                let b = format!("blocks.{}", index - 1);
                let rest = rest.strip_prefix("conv.")?;
                // torchvision: features.1 has no expansion conv; the others do.
                let parts: &[(&str, &str)] = if index == 1 {
                    &[
                        ("0.0.", "depthwise.conv."),
                        ("0.1.", "depthwise.bn."),
                        ("1.", "project.conv."),
                        ("2.", "project.bn."),
                    ]
                } else {
                    &[
                        ("0.0.", "expand.conv."),
                        ("0.1.", "expand.bn."),
                        ("1.0.", "depthwise.conv."),
                        ("1.1.", "depthwise.bn."),
                        ("2.", "project.conv."),
                        ("3.", "project.bn."),
                    ]
                };
                let (from, to) = parts.iter().find(|(from, _)| rest.starts_with(from))?;
                format!("{b}.{to}{}", &rest[from.len()..])
            }
        };
        Some(KeyTarget::Module(path))
    }

    fn torchvision_name_of(&self, path: &str) -> String {
        let path = path.replace(".gamma", ".weight").replace(".beta", ".bias");
        if let Some(r) = path.strip_prefix("stem.") {
            return format!(
                "features.0.{}",
                r.replacen("conv.", "0.", 1).replacen("bn.", "1.", 1)
            );
        }
        if let Some(r) = path.strip_prefix("head.") {
            return format!(
                "features.{LAST_FEATURE}.{}",
                r.replacen("conv.", "0.", 1).replacen("bn.", "1.", 1)
            );
        }
        if let Some(r) = path.strip_prefix("classifier.") {
            return format!("classifier.1.{r}");
        }
        if let Some(r) = path.strip_prefix("blocks.")
            && let Some((b, r)) = r.split_once('.')
            && let Ok(b) = b.parse::<usize>()
        {
            let index = b + 1;
            let parts: &[(&str, &str)] = if index == 1 {
                &[
                    ("depthwise.conv.", "0.0."),
                    ("depthwise.bn.", "0.1."),
                    ("project.conv.", "1."),
                    ("project.bn.", "2."),
                ]
            } else {
                &[
                    ("expand.conv.", "0.0."),
                    ("expand.bn.", "0.1."),
                    ("depthwise.conv.", "1.0."),
                    ("depthwise.bn.", "1.1."),
                    ("project.conv.", "2."),
                    ("project.bn.", "3."),
                ]
            };
            if let Some((from, to)) = parts.iter().find(|(from, _)| r.starts_with(from)) {
                return format!("features.{index}.conv.{to}{}", &r[from.len()..]);
            }
        }
        path
    }

    fn network_name(&self) -> String {
        format!("mobilenet_v2 to features.{}", self.last_built())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn taps_have_the_documented_strides_and_channels() {
        assert_eq!(feature_stride(3), 4);
        assert_eq!(feature_stride(6), 8);
        assert_eq!(feature_stride(13), 16);
        assert_eq!(feature_stride(17), 32);
        let c = feature_channels();
        assert_eq!((c[3], c[6], c[13], c[18]), (24, 32, 96, 1280));
    }

    #[test]
    fn builds_only_up_to_the_deepest_tap_and_tf_padding_keeps_sizes() {
        let device = Default::default();
        for tf in [false, true] {
            let net = MobileNetV2Config::new()
                .with_tf_padding(tf)
                .init::<Flex>(&device)
                .unwrap();
            assert_eq!(net.blocks.len(), 13);
            assert!(net.head.is_none());
            let maps = net.forward_features(Tensor::zeros([1, 3, 224, 224], &device));
            let shapes: Vec<_> = maps.iter().map(|m| m.dims()).collect();
            assert_eq!(
                shapes,
                vec![[1, 24, 56, 56], [1, 32, 28, 28], [1, 96, 14, 14]]
            );
        }
    }

    #[test]
    fn reduced_expansion_keeps_outputs() {
        let device = Default::default();
        let full = MobileNetV2Config::new().init::<Flex>(&device).unwrap();
        let simple = MobileNetV2Config::new()
            .with_expansion(Some(2))
            .init::<Flex>(&device)
            .unwrap();
        assert!(simple.num_params() < full.num_params() / 2);
        let x = Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device);
        let a: Vec<_> = full
            .forward_features(x.clone())
            .iter()
            .map(|m| m.dims())
            .collect();
        let b: Vec<_> = simple
            .forward_features(x)
            .iter()
            .map(|m| m.dims())
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn tap_out_of_range_is_an_error() {
        let config = MobileNetV2Config::new().with_taps(vec![19]);
        assert!(matches!(
            config.init::<Flex>(&Default::default()),
            Err(BackboneError::InvalidConfig(_))
        ));
    }

    #[test]
    fn expansion_and_classes_are_bounded() {
        for expansion in [0, MAX_EXPANSION + 1, usize::MAX] {
            let config = MobileNetV2Config::new().with_expansion(Some(expansion));
            assert!(
                matches!(config.validate(), Err(BackboneError::InvalidConfig(_))),
                "expansion {expansion}"
            );
        }
        let largest = MobileNetV2Config::new().with_expansion(Some(MAX_EXPANSION));
        assert!(largest.validate().is_ok());
        let classes = MobileNetV2Config::new()
            .with_classifier(true)
            .with_num_classes(0);
        assert!(matches!(
            classes.validate(),
            Err(BackboneError::InvalidConfig(_))
        ));
    }

    #[test]
    fn key_mapping_round_trips() {
        let net = MobileNetV2Config::new()
            .with_classifier(true)
            .init::<Flex>(&Default::default())
            .unwrap();
        for key in [
            "features.0.0.weight",
            "features.1.conv.0.1.running_mean",
            "features.1.conv.1.weight",
            "features.5.conv.1.0.weight",
            "features.5.conv.3.bias",
            "features.18.1.weight",
            "classifier.1.weight",
        ] {
            let Some(KeyTarget::Module(path)) = net.map_key(key) else {
                panic!("{key} not mapped")
            };
            assert_eq!(net.torchvision_name_of(&path), key, "{path}");
        }
    }
}
