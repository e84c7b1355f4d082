//! # stad-backbones
//!
//! CNN backbones for student–teacher anomaly detection, with the torchvision structure so that
//! torchvision weights load unchanged:
//!
//! - [`ResNet`]: ResNet18/34 (basic blocks), ResNet50 and Wide-ResNet50-2 (bottlenecks),
//!   tapped at the stem and `layer1..layer4`; configurable inner widths for the Simple Student.
//! - [`MobileNetV2`]: tapped at any `features[i]`, with optional TensorFlow "same" padding for
//!   weights ported from TensorFlow, and a configurable expansion ratio.
//! - [`Backbone`] / [`BackboneConfig`]: either of them behind one type.
//! - [`weights`]: `.pth` and `.safetensors` torchvision state dicts, all-or-nothing loading with
//!   typed errors naming missing, unexpected and mis-shaped keys; float16, bfloat16 and float64
//!   tensors are converted to float32, and non-float tensors, NaN/infinite values and negative
//!   BatchNorm variances are refused naming the tensor.
//! - [`FrozenTeacher`]: the teacher on a non-autodiff backend (no gradients, BatchNorm
//!   statistics that cannot move).
//! - [`embedded`] (feature `embedded-teacher`, default): the ImageNet MobileNetV2 that ships
//!   with stad, the default teacher.
//!
//! Networks are built only up to their deepest tap and never compute deeper stages. All code
//! is generic over burn's `Backend`.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::prelude::*;
//! use stad_backbones::BackboneConfig;
//!
//! let device = Default::default();
//! let net = BackboneConfig::resnet18().init::<Flex>(&device).unwrap();
//! let x = Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device);
//! let maps = net.forward_features(x);
//! let shapes: Vec<_> = maps.iter().map(|m| m.dims()).collect();
//! assert_eq!(shapes, vec![[1, 64, 16, 16], [1, 128, 8, 8], [1, 256, 4, 4]]);
//! ```

pub mod backbone;
#[cfg(feature = "embedded-teacher")]
pub mod embedded;
pub mod error;
mod layers;
pub mod mobilenet;
pub mod resnet;
pub mod teacher;
pub mod weights;

pub use backbone::{Backbone, BackboneConfig};
pub use error::{BackboneError, Result};
pub use layers::{
    ConvBn, ConvBnConfig, activate, add_activation, batch_norm, batch_norm_activation,
    channel_affine, channel_affine_activation,
};
pub use mobilenet::{InvertedResidual, MobileNetV2, MobileNetV2Config};
pub use resnet::{ResNet, ResNetArch, ResNetConfig, ResNetStage, ResidualBlock};
/// The input normalisation type, shared with the data pipeline (stad-data owns it).
pub use stad_data::Normalization;
pub use teacher::FrozenTeacher;
pub use weights::{KeyTarget, LoadReport, StateDict, TorchvisionKeys, load_torchvision};
