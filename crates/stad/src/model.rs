//! The student–teacher model: a frozen teacher, one or more students, and the anomaly map
//! their disagreement gives.

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use stad_backbones::{Backbone, BackboneConfig, FrozenTeacher, Normalization, StateDict};
use stad_data::{PreprocessConfig, SplitMix64};

use crate::error::{Result, StadError};
use crate::method::{MethodConfig, MethodKind};

/// Where the teacher's weights come from.
#[derive(Config, Debug, PartialEq)]
pub enum TeacherWeights {
    /// The ImageNet MobileNetV2 compiled into stad (the default teacher). Needs a TF-padded
    /// MobileNetV2 configuration.
    Embedded,
    /// A torchvision state dict (`.pth` or `.safetensors`).
    File(String),
    /// Random initialisation from a seed. **A control only**: a random teacher is at chance
    /// on real data.
    Random(u64),
}

/// The largest network input side [`ModelConfig::validate`] accepts. Memory grows with its
/// square: [`crate::memory`] estimates what a configuration needs.
pub const MAX_IMAGE_SIZE: usize = 2048;

/// Everything that defines a model's architecture and inputs.
#[derive(Config, Debug)]
pub struct ModelConfig {
    /// The teacher's architecture and taps.
    pub teacher: BackboneConfig,
    /// Where the teacher's weights come from.
    pub teacher_weights: TeacherWeights,
    /// The method.
    pub method: MethodConfig,
    /// Side of the square network input. Default: 224.
    #[config(default = 224)]
    pub image_size: usize,
}

impl ModelConfig {
    /// The method on the embedded ImageNet MobileNetV2 teacher (TF padding, taps at strides
    /// 4/8/16), input 224.
    pub fn embedded(method: MethodConfig) -> Self {
        Self::new(
            BackboneConfig::mobilenet_v2_tf(),
            TeacherWeights::Embedded,
            method,
        )
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        self.method.validate()?;
        if self.image_size < 32 {
            return Err(StadError::InvalidConfig(format!(
                "image size must be at least 32 (the deepest taps have stride 16), got {}",
                self.image_size
            )));
        }
        if self.image_size > MAX_IMAGE_SIZE {
            return Err(StadError::InvalidConfig(format!(
                "image size must be at most {MAX_IMAGE_SIZE} (MVTec AD's largest images are \
                 1024²; the thesis trains at 224), got {}",
                self.image_size
            )));
        }
        if self.teacher_weights == TeacherWeights::Embedded
            && !matches!(&self.teacher, BackboneConfig::MobileNetV2(c) if c.tf_padding && c.expansion.is_none())
        {
            return Err(StadError::InvalidConfig(
                "the embedded teacher is a MobileNetV2 with TF padding: use BackboneConfig::mobilenet_v2_tf()"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The input normalisation of the teacher's weights.
    pub fn normalization(&self) -> Normalization {
        self.teacher.default_normalization()
    }

    /// Preprocessing of images for this model (size and the teacher's normalisation).
    pub fn preprocess(&self) -> PreprocessConfig {
        let n = self.normalization();
        PreprocessConfig::square(self.image_size)
            .with_normalization(stad_data::Normalization::new(n.mean, n.std))
    }

    /// The students' architecture.
    pub fn student_backbone(&self) -> BackboneConfig {
        self.method.student_backbone(&self.teacher)
    }

    /// Builds the teacher with its weights, frozen.
    pub fn build_teacher<B: Backend>(&self, device: &B::Device) -> Result<FrozenTeacher<B>> {
        self.validate()?;
        let backbone = match &self.teacher_weights {
            TeacherWeights::Embedded => embedded_teacher(&self.teacher, device)?,
            TeacherWeights::File(path) => {
                let mut b = self.teacher.init(device)?;
                b.load_torchvision(&StateDict::from_file(path)?)?;
                b
            }
            TeacherWeights::Random(seed) => seeded_init(self.teacher.init(device)?, *seed, device),
        };
        Ok(FrozenTeacher::new(backbone, device)?)
    }

    /// Builds the students with random initialisation ([`seeded_init`]); student `i` is
    /// seeded with `seed + i`, so ensemble members differ and every run with the same seed is
    /// identical.
    pub fn init_students<B: Backend>(
        &self,
        seed: u64,
        device: &B::Device,
    ) -> Result<Vec<Backbone<B>>> {
        self.validate()?;
        let config = self.student_backbone();
        (0..self.method.num_students())
            .map(|i| {
                Ok(seeded_init(
                    config.init(device)?,
                    seed.wrapping_add(i as u64),
                    device,
                ))
            })
            .collect()
    }
}

#[cfg(feature = "embedded-teacher")]
fn embedded_teacher<B: Backend>(
    config: &BackboneConfig,
    device: &B::Device,
) -> Result<Backbone<B>> {
    Ok(stad_backbones::embedded::mobilenet_v2_imagenet(
        config, device,
    )?)
}

#[cfg(not(feature = "embedded-teacher"))]
fn embedded_teacher<B: Backend>(
    _config: &BackboneConfig,
    _device: &B::Device,
) -> Result<Backbone<B>> {
    Err(StadError::InvalidConfig(
        "this build has no embedded teacher (feature `embedded-teacher` is off): pass a weights file".into(),
    ))
}

/// Re-draws every convolution weight from a private generator seeded with `seed`:
/// `w ~ N(0, 2 / fan_out)`, `fan_out = out_channels · kh · kw`, i.e. torchvision's
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`; BatchNorm keeps its 1/0 start.
///
/// The generator is private (SplitMix64 + Box–Muller) rather than the backend's global one,
/// so that the same seed gives the same students whatever else runs in the process (other
/// threads drawing from burn's global generator made "seeded" runs differ).
pub fn seeded_init<B: Backend, M: Module<B>>(module: M, seed: u64, device: &B::Device) -> M {
    struct Redraw<'a, B: Backend> {
        rng: SplitMix64,
        device: &'a B::Device,
    }
    impl<B: Backend> ModuleMapper<B> for Redraw<'_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if D != 4 {
                return param;
            }
            param.map(|t| {
                let dims = t.dims();
                let fan_out = dims[0] * dims[2] * dims[3];
                let std = (2.0 / fan_out as f64).sqrt();
                let values = self.rng.normals(dims.iter().product(), std);
                let fresh = Tensor::<B, D>::from_data(TensorData::new(values, dims), self.device);
                fresh.set_require_grad(t.is_require_grad())
            })
        }
    }
    module.map(&mut Redraw {
        rng: SplitMix64::new(seed),
        device,
    })
}

/// A trained (or training) student–teacher model on a backend without autodiff.
#[derive(Debug, Clone)]
pub struct StudentTeacher<B: Backend> {
    /// The configuration it was built from.
    pub config: ModelConfig,
    /// The frozen teacher.
    pub teacher: FrozenTeacher<B>,
    /// The students (one, or the ensemble).
    pub students: Vec<Backbone<B>>,
}

impl<B: Backend> StudentTeacher<B> {
    /// Pixel anomaly maps `[N, 1, H, W]` at the input size for normalised images
    /// `[N, 3, H, W]`.
    ///
    /// # Errors
    /// [`StadError::NonFiniteInput`] when the images hold NaN or infinite values;
    /// [`StadError::Scoring`] when the map holds NaN or infinite values (e.g. a diverged
    /// student), or shapes do not fit.
    pub fn anomaly_maps(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        if let Err(stad_scoring::ScoringError::NonFinite { count, total }) =
            stad_scoring::check_finite(&images)
        {
            return Err(StadError::NonFiniteInput { count, total });
        }
        let teacher = self.teacher.features(images.clone());
        self.anomaly_maps_with_teacher(images, teacher)
    }

    /// [`Self::anomaly_maps`] with the teacher's features of `images` already at hand (the
    /// trainer's hold-out scoring reuses cached ones).
    ///
    /// # Errors
    /// [`StadError::NonFiniteInput`] / a scoring error as [`Self::anomaly_maps`].
    pub fn anomaly_maps_with_teacher(
        &self,
        images: Tensor<B, 4>,
        teacher: Vec<Tensor<B, 4>>,
    ) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = images.dims();
        let map_config = self.config.method.map_config([h, w]);
        let map = match self.config.method.kind {
            MethodKind::Ensemble => {
                let students: Vec<Vec<Tensor<B, 4>>> = self
                    .students
                    .iter()
                    .map(|s| s.forward_features(images.clone()))
                    .collect();
                map_config.ensemble_map(&teacher, &students)?
            }
            MethodKind::Stfpm | MethodKind::SimpleStudent => {
                let student = self.students[0].forward_features(images);
                map_config.stfpm_map(&teacher, &student)?
            }
        };
        stad_scoring::check_finite(&map)?;
        Ok(map)
    }

    /// Image scores `[N]` (max of each map) and the maps.
    pub fn score(&self, images: Tensor<B, 4>) -> Result<(Tensor<B, 1>, Tensor<B, 4>)> {
        let map = self.anomaly_maps(images)?;
        Ok((stad_scoring::image_scores(map.clone()), map))
    }
}
