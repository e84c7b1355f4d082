//! The student–teacher model: a frozen teacher, one or more students, and the anomaly map
//! their disagreement gives.

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use stad_backbones::{Backbone, BackboneConfig, FrozenTeacher, Normalization, StateDict};
use stad_data::{PreprocessConfig, SplitMix64};
use stad_scoring::AnomalyMapConfig;

use crate::error::{ConfigError, Result, StadError};
use crate::methods::MethodConfig;

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

/// The largest network input side [`ModelConfig::check`] accepts. Memory grows with its
/// square: [`crate::memory`] estimates what a configuration needs.
pub const MAX_IMAGE_SIZE: usize = 2048;

/// The smallest network input side [`ModelConfig::check`] accepts: the deepest taps have
/// stride 16, so 32 leaves them 2×2.
pub const MIN_IMAGE_SIZE: usize = 32;

/// The students' seed of [`ModelConfig::init`] (the thesis' seed; [`crate::TrainConfig::seed`]
/// is the same by default).
pub const DEFAULT_SEED: u64 = 42;

/// Everything that defines a model's architecture and inputs: a teacher, a method and the
/// input size. [`ModelConfig::init`] builds the [`StudentTeacher`] it describes.
///
/// ```no_run
/// use stad::{MethodConfig, ModelConfig, backend::Cpu};
/// let model = ModelConfig::embedded(MethodConfig::ensemble(3))
///     .with_image_size(224)
///     .init::<Cpu>(&Default::default())?;
/// assert_eq!(model.students().len(), 3);
/// # Ok::<(), stad::StadError>(())
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// The teacher's architecture and taps.
    pub teacher: BackboneConfig,
    /// Where the teacher's weights come from.
    pub teacher_weights: TeacherWeights,
    /// The method and its own settings.
    pub method: MethodConfig,
    /// Side of the square network input. Default: 224.
    #[config(default = 224)]
    pub image_size: usize,
    /// σ of the Gaussian smoothing of the final map, in pixels. Default: none.
    #[config(default = "None")]
    pub smoothing_sigma: Option<f64>,
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

    /// Checks the configuration: the method's settings ([`MethodConfig::check`]), the image
    /// size, the smoothing σ, and that the embedded teacher is asked for with its architecture.
    ///
    /// # Errors
    /// The [`ConfigError`] of the first setting out of range.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.method.check_with_teacher(&self.teacher)?;
        if self.image_size < MIN_IMAGE_SIZE {
            return Err(ConfigError::ImageTooSmall {
                got: self.image_size,
                min: MIN_IMAGE_SIZE,
            });
        }
        if self.image_size > MAX_IMAGE_SIZE {
            return Err(ConfigError::ImageTooLarge {
                got: self.image_size,
                max: MAX_IMAGE_SIZE,
            });
        }
        if let Some(s) = self.smoothing_sigma
            && !(s.is_finite() && s > 0.0)
        {
            return Err(ConfigError::SmoothingSigma(s));
        }
        if self.teacher_weights == TeacherWeights::Embedded
            && !matches!(&self.teacher, BackboneConfig::MobileNetV2(c) if c.tf_padding && c.expansion.is_none())
        {
            return Err(ConfigError::EmbeddedNeedsMobileNetV2Tf);
        }
        Ok(())
    }

    /// The input normalisation of the teacher's weights.
    pub fn normalization(&self) -> Normalization {
        self.teacher.default_normalization()
    }

    /// Preprocessing of images for this model (size and the teacher's normalisation).
    pub fn preprocess(&self) -> PreprocessConfig {
        PreprocessConfig::square(self.image_size).with_normalization(self.normalization())
    }

    /// The students' architecture.
    pub fn student_backbone(&self) -> BackboneConfig {
        self.method.student_backbone(&self.teacher)
    }

    /// The anomaly map's size and smoothing for inputs of `size`.
    pub fn map_config(&self, size: [usize; 2]) -> AnomalyMapConfig {
        AnomalyMapConfig::new(size).with_smoothing_sigma(self.smoothing_sigma)
    }

    /// Builds the model: the teacher with its weights, frozen, and the students seeded with
    /// [`DEFAULT_SEED`] ([`Self::init_seeded`]).
    ///
    /// # Errors
    /// [`StadError::InvalidConfig`] for a configuration [`Self::check`] refuses; a backbone
    /// error when the teacher's weights cannot be read or do not fit.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<StudentTeacher<B>> {
        self.init_seeded(DEFAULT_SEED, device)
    }

    /// [`Self::init`] with the students seeded from `seed` (student `i` from `seed + i`, see
    /// [`Self::init_students`]).
    ///
    /// # Errors
    /// As [`Self::init`].
    pub fn init_seeded<B: Backend>(
        &self,
        seed: u64,
        device: &B::Device,
    ) -> Result<StudentTeacher<B>> {
        Ok(StudentTeacher {
            teacher: self.build_teacher(device)?,
            students: self.init_students(seed, device)?,
            config: self.clone(),
        })
    }

    /// Builds the teacher with its weights, frozen (on a backend without autodiff).
    ///
    /// # Errors
    /// As [`Self::init`].
    pub fn build_teacher<B: Backend>(&self, device: &B::Device) -> Result<FrozenTeacher<B>> {
        self.check()?;
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
    /// identical. A decoupled student also gets its 1×1 adapters ([`Student`]), drawn from the
    /// same seed after its backbone, biases zero. On an autodiff backend they are ready to
    /// train.
    ///
    /// # Errors
    /// [`StadError::InvalidConfig`] for a configuration [`Self::check`] refuses.
    pub fn init_students<B: Backend>(
        &self,
        seed: u64,
        device: &B::Device,
    ) -> Result<Vec<Student<B>>> {
        self.check()?;
        (0..self.method.num_students())
            .map(|i| {
                let seed = seed.wrapping_add(i as u64);
                let student = self.fresh_student(device)?;
                Ok(Student {
                    backbone: seeded_init(student.backbone, seed, device),
                    // Another stream than the backbone's, so adding adapters leaves it as it was.
                    adapters: seeded_init(student.adapters, seed ^ ADAPTER_SEED, device),
                })
            })
            .collect()
    }

    /// One student of this model's architecture with burn's initialisation (loading a saved
    /// one overwrites every value); adapter biases zero.
    ///
    /// # Errors
    /// A backbone error for an invalid student architecture.
    pub(crate) fn fresh_student<B: Backend>(&self, device: &B::Device) -> Result<Student<B>> {
        let backbone = self.student_backbone().init(device)?;
        let adapters = match self.method.adapter_widths(&self.teacher) {
            Some(widths) => widths
                .into_iter()
                .map(|(from, to)| {
                    let conv = Conv2dConfig::new([from, to], [1, 1]).init(device);
                    Conv2d {
                        bias: conv.bias.map(|b| b.map(|t| t.zeros_like())),
                        ..conv
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Student { backbone, adapters })
    }
}

/// Mixed into a student's seed for its adapters (any fixed odd constant).
const ADAPTER_SEED: u64 = 0xA0A7_7E45_0000_0001;

/// A student: a backbone and, for a decoupled student ([`crate::methods::decoupled`]), one
/// learned 1×1 convolution per tap that maps the backbone's channels to the teacher's:
/// `ŝ_k = W_k · S(x)_k + b_k`. For the other methods `adapters` is empty and `ŝ_k = S(x)_k`.
#[derive(Module, Debug)]
pub struct Student<B: Backend> {
    backbone: Backbone<B>,
    adapters: Vec<Conv2d<B>>,
}

impl<B: Backend> Student<B> {
    /// The student's backbone.
    pub fn backbone(&self) -> &Backbone<B> {
        &self.backbone
    }

    /// The 1×1 adapters, one per tap (empty unless decoupled).
    pub fn adapters(&self) -> &[Conv2d<B>] {
        &self.adapters
    }

    /// The features the student offers the teacher, one per tap: the backbone's, through the
    /// adapters when there are any.
    pub fn forward_features(&self, images: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let features = self.backbone.forward_features(images);
        if self.adapters.is_empty() {
            return features;
        }
        features
            .into_iter()
            .zip(&self.adapters)
            .map(|(f, adapter)| stad_kernels::conv2d(adapter, f))
            .collect()
    }
}

/// Writes `students` into `file`: their backbones as blob `students` (the layout files had
/// before adapters existed, so those still load) and, when they have adapters, those as blob
/// `adapters`.
pub(crate) fn push_students<B: Backend>(
    file: &mut crate::CheckpointFile,
    students: &[Student<B>],
) -> Result<()> {
    let backbones: Vec<Backbone<B>> = students.iter().map(|s| s.backbone.clone()).collect();
    file.push_record::<B, _>("students", backbones.into_record())?;
    if students.iter().any(|s| !s.adapters.is_empty()) {
        let adapters: Vec<Vec<Conv2d<B>>> = students.iter().map(|s| s.adapters.clone()).collect();
        file.push_record::<B, _>("adapters", adapters.into_record())?;
    }
    Ok(())
}

/// Reads the students of `config` that [`push_students`] wrote into `file` (read from
/// `path`).
///
/// # Errors
/// [`StadError::CheckpointMismatch`] when the blobs are missing, do not decode, do not fit
/// the architecture, or hold another number of students.
pub(crate) fn load_students<B: Backend>(
    file: &crate::CheckpointFile,
    config: &ModelConfig,
    device: &B::Device,
    path: &std::path::Path,
) -> Result<Vec<Student<B>>> {
    let n = config.method.num_students();
    let fresh = (0..n)
        .map(|_| config.fresh_student::<B>(device))
        .collect::<Result<Vec<_>>>()?;
    let (backbones, adapters): (Vec<_>, Vec<_>) =
        fresh.into_iter().map(|s| (s.backbone, s.adapters)).unzip();
    let backbones = file.load_module("students", backbones, device, path)?;
    let adapters = if adapters.iter().any(|a| !a.is_empty()) {
        file.load_module("adapters", adapters, device, path)?
    } else {
        adapters
    };
    if backbones.len() != n || adapters.len() != n {
        return Err(StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!(
                "it holds {} students, its method {n}",
                backbones.len().min(adapters.len())
            ),
        });
    }
    Ok(backbones
        .into_iter()
        .zip(adapters)
        .map(|(backbone, adapters)| Student { backbone, adapters })
        .collect())
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
    Err(ConfigError::NoEmbeddedTeacher.into())
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

/// A student–teacher model on a backend without autodiff: the frozen teacher, the students
/// (one, or the ensemble), and the configuration they were built from. A burn [`Module`]:
/// its record holds the teacher's and the students' weights. Built by [`ModelConfig::init`];
/// the trainer replaces the students as they learn ([`Self::with_students`]).
#[derive(Module, Debug)]
pub struct StudentTeacher<B: Backend> {
    #[module(skip)]
    config: ModelConfig,
    teacher: FrozenTeacher<B>,
    students: Vec<Student<B>>,
}

impl<B: Backend> StudentTeacher<B> {
    /// The configuration it was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The frozen teacher.
    pub fn teacher(&self) -> &FrozenTeacher<B> {
        &self.teacher
    }

    /// The students, in seed order.
    pub fn students(&self) -> &[Student<B>] {
        &self.students
    }

    /// Assembles a model from its parts (the trainer's and the detector's loading; public code
    /// builds models with [`ModelConfig::init`]).
    pub(crate) fn from_parts(
        config: ModelConfig,
        teacher: FrozenTeacher<B>,
        students: Vec<Student<B>>,
    ) -> Self {
        debug_assert_eq!(students.len(), config.method.num_students());
        Self {
            config,
            teacher,
            students,
        }
    }

    /// The students, taking them out of the model.
    pub fn into_students(self) -> Vec<Student<B>> {
        self.students
    }

    /// The same model with other students (trained ones; e.g. `students.valid()` of an
    /// autodiff copy).
    ///
    /// # Errors
    /// [`StadError::StudentCount`] when they are not as many as the method has.
    pub fn with_students(self, students: Vec<Student<B>>) -> Result<Self> {
        let expected = self.config.method.num_students();
        if students.len() != expected {
            return Err(StadError::StudentCount {
                expected,
                found: students.len(),
            });
        }
        Ok(Self { students, ..self })
    }

    /// Pixel anomaly maps `[N, 1, H, W]` at the input size for normalised images
    /// `[N, 3, H, W]`: the method's map ([`MethodConfig::anomaly_map`]).
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
    /// A scoring error as [`Self::anomaly_maps`].
    pub fn anomaly_maps_with_teacher(
        &self,
        images: Tensor<B, 4>,
        teacher: Vec<Tensor<B, 4>>,
    ) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = images.dims();
        let students: Vec<Vec<Tensor<B, 4>>> = self
            .students
            .iter()
            .map(|s| s.forward_features(images.clone()))
            .collect();
        let map =
            self.config
                .method
                .anomaly_map(&self.config.map_config([h, w]), &teacher, &students)?;
        stad_scoring::check_finite(&map)?;
        Ok(map)
    }

    /// Image scores `[N]` (max of each map) and the maps.
    ///
    /// # Errors
    /// As [`Self::anomaly_maps`].
    pub fn score(&self, images: Tensor<B, 4>) -> Result<(Tensor<B, 1>, Tensor<B, 4>)> {
        let map = self.anomaly_maps(images)?;
        Ok((stad_scoring::image_scores(map.clone()), map))
    }
}
