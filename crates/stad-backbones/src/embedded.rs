//! The embedded default teacher: an ImageNet-pretrained MobileNetV2.
//!
//! `weights/mobilenet_v2_imagenet_tflite.safetensors` (14 MB, Apache-2.0, see
//! `weights/NOTICE.md`) is Google's `mobilenet_v2_1.0_224_quant.tflite` dequantised and
//! mapped onto torchvision's `mobilenet_v2` layout. It is the only pretrained backbone that
//! can be had offline, so stad ships it: a fresh clone gives meaningful anomaly maps with no
//! network. It needs TF "same" padding on its stride-2 convolutions and the TF input scaling
//! ([`crate::Normalization::TF_MOBILENET`]). The bytes are compiled in with the default `embedded-teacher`
//! feature.

use burn::prelude::*;

use crate::backbone::{Backbone, BackboneConfig};
use crate::error::Result;
use crate::weights::StateDict;

/// The safetensors bytes of the embedded teacher.
pub const MOBILENET_V2_IMAGENET: &[u8] =
    include_bytes!("../weights/mobilenet_v2_imagenet_tflite.safetensors");

/// Label used in error messages for the embedded file.
pub const EMBEDDED_LABEL: &str = "<embedded mobilenet_v2_imagenet_tflite.safetensors>";

/// The embedded teacher's state dict.
pub fn mobilenet_v2_imagenet_state_dict() -> Result<StateDict> {
    StateDict::from_safetensors_bytes(MOBILENET_V2_IMAGENET.to_vec(), EMBEDDED_LABEL)
}

/// The embedded ImageNet MobileNetV2, built with `config` (which must be a MobileNetV2 with
/// `tf_padding`; [`BackboneConfig::mobilenet_v2_tf`] is the default) and loaded.
pub fn mobilenet_v2_imagenet<B: Backend>(
    config: &BackboneConfig,
    device: &B::Device,
) -> Result<Backbone<B>> {
    let mut backbone = config.init(device)?;
    backbone.load_torchvision(&mobilenet_v2_imagenet_state_dict()?)?;
    Ok(backbone)
}
