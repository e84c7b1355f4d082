//! The frozen teacher: a pretrained backbone that never trains.
//!
//! A [`FrozenTeacher`] lives on a backend **without** autodiff. That is what freezes it:
//! - no gradient can reach its weights (its tensors are not tracked);
//! - BatchNorm runs in inference mode (running statistics, never updated), because burn's
//!   BatchNorm only uses batch statistics and updates its running ones on an autodiff backend.
//!
//! Training code on an autodiff backend `A` holds a `FrozenTeacher<A::InnerBackend>` and calls
//! [`FrozenTeacher::features_for`], which runs the teacher on the inner backend and hands the
//! maps back as constants of `A`. Constructing a teacher on an autodiff backend is refused.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::backbone::Backbone;
use crate::error::{BackboneError, Result};

/// A backbone frozen for use as the teacher (see the module docs).
#[derive(Module, Debug)]
pub struct FrozenTeacher<B: Backend> {
    backbone: Backbone<B>,
}

impl<B: Backend> FrozenTeacher<B> {
    /// Freezes `backbone` (parameters marked as not requiring gradients).
    ///
    /// # Errors
    /// [`BackboneError::InvalidConfig`] when `B` is an autodiff backend: there, BatchNorm would
    /// run in training mode and move its running statistics.
    pub fn new(backbone: Backbone<B>, device: &B::Device) -> Result<Self> {
        if B::ad_enabled(device) {
            return Err(BackboneError::InvalidConfig(
                "a frozen teacher must live on a backend without autodiff: use `A::InnerBackend` \
                 and `FrozenTeacher::features_for`"
                    .into(),
            ));
        }
        Ok(Self {
            backbone: backbone.no_grad(),
        })
    }

    /// The teacher's tapped feature maps for an input `[N, 3, H, W]`.
    pub fn features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        self.backbone.forward_features(x)
    }

    /// The teacher's feature maps for an input of the autodiff backend `A` whose inner backend
    /// is `B`: computed on `B`, returned as constants of `A` (no graph is recorded).
    pub fn features_for<A>(&self, x: Tensor<A, 4>) -> Vec<Tensor<A, 4>>
    where
        A: AutodiffBackend<InnerBackend = B>,
    {
        self.features(x.inner())
            .into_iter()
            .map(Tensor::from_inner)
            .collect()
    }

    /// Output channels of each tap.
    pub fn tap_channels(&self) -> Vec<usize> {
        self.backbone.tap_channels()
    }

    /// The frozen backbone (read-only).
    pub fn backbone(&self) -> &Backbone<B> {
        &self.backbone
    }
}
