//! Training: the only code of stad that touches an optimizer.
//!
//! [`train`] is a loop over epochs. Per batch, [`StudentOptimizers::step`]: the teacher's
//! features (computed once per image and cached, on the inner, non-autodiff backend), then for
//! every student its features, the method's loss ([`MethodConfig::student_loss`]) and one step
//! of its own SGD optimizer (PyTorch semantics: momentum 0.9 with dampening 0, weight decay
//! added to the gradient). After each epoch the mean image score on the held-out nominal split
//! decides the best epoch ([`BestEpoch::improves_on`]; as the official STFPM code does, the
//! test set is never used). With a run folder, a [`Checkpointer`] writes `last.ckpt`
//! (students, optimizer states, epoch, history) and `best.ckpt` (the best students)
//! atomically after each epoch, and a run resumes from them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use serde::{Deserialize, Serialize};
use stad_backbones::FrozenTeacher;
use stad_data::{BatchLoader, LoaderConfig, Sample, holdout_split};

use crate::checkpoint::CheckpointFile;
use crate::error::{ConfigError, Result, StadError};
use crate::fingerprint::{self, DataFingerprint, FileFingerprint};
use crate::methods::MethodConfig;
use crate::model::{ModelConfig, Student, StudentTeacher, load_students, push_students};
use crate::run_dir::RunDir;
use crate::teacher_cache::{TeacherCache, TeacherCacheStatus};

/// Hyper-parameters of training (defaults: the official STFPM code's).
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// SGD learning rate. Default: 0.4.
    #[config(default = 0.4)]
    pub learning_rate: f64,
    /// SGD momentum (dampening 0, as PyTorch). Default: 0.9.
    #[config(default = 0.9)]
    pub momentum: f64,
    /// L2 weight decay added to the gradient. Default: 1e-4.
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// Images per batch. Default: 32.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Epochs. Default: 100.
    #[config(default = 100)]
    pub epochs: usize,
    /// Seed of the students' initialisation, the shuffles and the hold-out split. Default: 42.
    #[config(default = 42)]
    pub seed: u64,
    /// Fraction of the nominal training images held out for model selection. Default: 0.2.
    #[config(default = 0.2)]
    pub holdout_fraction: f64,
    /// Keep decoded, resized images in memory across epochs. Default: true.
    #[config(default = true)]
    pub cache_images: bool,
    /// Memory for the teacher's features, MiB: each training and hold-out image's features
    /// are computed once and reused every epoch while they fit (ResNet18 layers 1–3 at 224²:
    /// 1.4 MB an image; MobileNetV2: 0.5 MB); images beyond it are recomputed each epoch.
    /// 0 turns the cache off. Results are bit-identical either way. Default: 4096.
    #[config(default = 4096)]
    pub teacher_cache_mb: usize,
}

impl TrainConfig {
    /// Checks the hyper-parameters.
    ///
    /// # Errors
    /// The [`ConfigError`] of the first one out of range.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ConfigError::LearningRate(self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(ConfigError::Momentum(self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ConfigError::WeightDecay(self.weight_decay));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::ZeroBatchSize);
        }
        if self.epochs == 0 {
            return Err(ConfigError::ZeroEpochs);
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return Err(ConfigError::HoldoutFraction(self.holdout_fraction));
        }
        Ok(())
    }

    /// Whether a run with `other` continues a run with `self`: equal but for the epochs and
    /// the two caches (which change speed, not results).
    fn same_run_as(&self, other: &Self) -> bool {
        let mut a = self.clone();
        a.epochs = other.epochs;
        a.cache_images = other.cache_images;
        a.teacher_cache_mb = other.teacher_cache_mb;
        a == *other
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    /// Epoch index, from 0.
    pub epoch: usize,
    /// Mean training loss over the batches (averaged over students).
    pub train_loss: f64,
    /// Mean image score on the held-out nominal images (`None` without a hold-out).
    pub validation_score: Option<f64>,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Progress callbacks (progress bars, logging). All methods default to doing nothing.
pub trait TrainObserver {
    /// After each batch: epoch, batch index, batches per epoch, mean loss of the students.
    fn on_batch(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f32) {}
    /// After each epoch.
    fn on_epoch(&mut self, _summary: &EpochSummary) {}
    /// After the first epoch of a session: how many images' teacher features are cached (the
    /// others are recomputed every epoch).
    fn on_teacher_cache(&mut self, _status: &TeacherCacheStatus) {}
}

/// An observer that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;
impl TrainObserver for Silent {}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome<B: burn::prelude::Backend> {
    /// The model with the best students (lowest validation score), on the inner backend.
    pub model: StudentTeacher<B>,
    /// The epoch whose students were kept.
    pub best_epoch: usize,
    /// Every epoch's summary, from the first (including epochs before a resume).
    pub history: Vec<EpochSummary>,
    /// The held-out nominal samples (for threshold calibration).
    pub holdout: Vec<Sample>,
}

/// The best epoch so far and its students.
#[derive(Debug, Clone)]
pub struct BestEpoch<B: burn::prelude::Backend> {
    /// Its index, from 0.
    pub epoch: usize,
    /// Its mean hold-out image score (`None` without a hold-out).
    pub score: Option<f64>,
    /// Its students (on the inner backend).
    pub students: Vec<Student<B>>,
}

impl<B: burn::prelude::Backend> BestEpoch<B> {
    /// The selection rule: an epoch with hold-out score `score` replaces `best` when there is
    /// none yet, when either has no score (without a hold-out the last epoch is kept), or when
    /// its score is lower (a lower mean nominal score is better).
    pub fn improves_on(score: Option<f64>, best: Option<&Self>) -> bool {
        match (best.and_then(|b| b.score), score) {
            (Some(best), Some(now)) => now < best,
            _ => true,
        }
    }
}

/// Header of `last.ckpt` / `best.ckpt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainHeader {
    kind: String,
    model: ModelConfig,
    train: TrainConfig,
    epochs_done: usize,
    best_epoch: usize,
    best_score: Option<f64>,
    history: Vec<EpochSummary>,
    /// The training images (resume refuses other data).
    #[serde(default)]
    data_fingerprint: Option<DataFingerprint>,
    /// The teacher's weight file, when it is one (resume refuses a changed file).
    #[serde(default)]
    teacher_fingerprint: Option<FileFingerprint>,
}

const TRAIN_KIND: &str = "stad-train";

/// Where a run stands: the epochs done, their summaries and the best epoch.
struct RunState<B: burn::prelude::Backend> {
    epochs_done: usize,
    history: Vec<EpochSummary>,
    best: Option<BestEpoch<B>>,
}

/// Writes a run's checkpoints and resumes from them: `last.ckpt` (the students being
/// trained, their optimizers' states, the epochs done and their history) and `best.ckpt` (the
/// best epoch's students), each one [`CheckpointFile`] written atomically.
///
/// The headers record the model, the hyper-parameters and fingerprints of the training
/// images and of the teacher's weight file; a resume refuses
/// ([`StadError::CheckpointMismatch`], naming what differs) another model, other
/// hyper-parameters than `epochs`, other data, a changed teacher file, and fewer `epochs` than
/// the run has done.
pub struct Checkpointer<'a> {
    dir: &'a RunDir,
    model: &'a ModelConfig,
    train: &'a TrainConfig,
    data: DataFingerprint,
    teacher: Option<FileFingerprint>,
}

impl<'a> Checkpointer<'a> {
    /// A checkpointer of `dir` for a run of `model` with `train` on `samples` (fingerprinted
    /// now).
    ///
    /// # Errors
    /// When the samples or the teacher's weight file cannot be read.
    pub fn new(
        dir: &'a RunDir,
        model: &'a ModelConfig,
        train: &'a TrainConfig,
        samples: &[Sample],
    ) -> Result<Self> {
        Ok(Self {
            dir,
            model,
            train,
            data: DataFingerprint::of_samples(samples)?,
            teacher: fingerprint::teacher_fingerprint(&model.teacher_weights)?,
        })
    }

    /// Whether the run folder asks for a resume and has a `last.ckpt` to resume from.
    fn can_resume(&self) -> bool {
        self.dir.resume() && self.dir.last().exists()
    }

    fn header(&self, state: &RunState<impl burn::prelude::Backend>) -> String {
        let header = TrainHeader {
            kind: TRAIN_KIND.into(),
            model: self.model.clone(),
            train: self.train.clone(),
            epochs_done: state.epochs_done,
            best_epoch: state.best.as_ref().map_or(0, |b| b.epoch),
            best_score: state.best.as_ref().and_then(|b| b.score),
            history: state.history.clone(),
            data_fingerprint: Some(self.data.clone()),
            teacher_fingerprint: self.teacher.clone(),
        };
        serde_json::to_string(&header).expect("headers serialise")
    }

    /// Writes `best.ckpt` (when `improved`) and `last.ckpt` for the state after an epoch.
    fn save<A: AutodiffBackend>(
        &self,
        state: &RunState<A::InnerBackend>,
        improved: bool,
        students: &[Student<A>],
        optimizers: &StudentOptimizers<A>,
    ) -> Result<()> {
        let header = self.header(state);
        if improved && let Some(best) = &state.best {
            let mut file = CheckpointFile::new(header.clone());
            push_students(&mut file, &best.students)?;
            file.write_atomic(&self.dir.best())?;
        }
        let mut file = CheckpointFile::new(header);
        push_students(&mut file, students)?;
        file.push_record::<A, _>("optimizers", optimizers.records())?;
        file.write_atomic(&self.dir.last())?;
        Ok(())
    }

    /// Resumes: loads the students and optimizer states of `last.ckpt` into `students` and
    /// `optimizers` and returns where the run stands (with `best.ckpt`'s students).
    fn resume<A: AutodiffBackend>(
        &self,
        students: &mut Vec<Student<A>>,
        optimizers: &mut StudentOptimizers<A>,
        device: &A::Device,
    ) -> Result<RunState<A::InnerBackend>> {
        let path = self.dir.last();
        let file = CheckpointFile::read(&path)?;
        let header: TrainHeader =
            serde_json::from_str(&file.header).map_err(|e| StadError::CheckpointMismatch {
                path: path.clone(),
                reason: format!("not a stad training checkpoint ({e})"),
            })?;
        let mismatch = |reason: String| StadError::CheckpointMismatch {
            path: path.clone(),
            reason,
        };
        if header.kind != TRAIN_KIND {
            return Err(mismatch(format!(
                "it is a `{}` file, not a training checkpoint",
                header.kind
            )));
        }
        if header.model != *self.model {
            return Err(mismatch(format!(
                "it was trained with another model configuration: {:?} (this run: {:?})",
                header.model, self.model
            )));
        }
        if !header.train.same_run_as(self.train) {
            return Err(mismatch(
                "it was trained with other hyper-parameters (only `epochs` may change on resume)"
                    .into(),
            ));
        }
        fingerprint::check_unchanged(
            (&header.data_fingerprint, &header.teacher_fingerprint),
            (&self.data, &self.teacher),
            &path,
        )?;
        if self.train.epochs < header.epochs_done {
            return Err(mismatch(format!(
                "the run has done {} epochs, more than the {} asked for: resume with at least \
                 {} epochs ({} finishes it without training more)",
                header.epochs_done, self.train.epochs, header.epochs_done, header.epochs_done
            )));
        }
        *students = load_students(&file, self.model, device, &path)?;
        let records = file.record::<A, _>("optimizers", device, &path)?;
        optimizers.load_records(records, &path)?;
        let best = match header.best_score {
            Some(score) => {
                let best_path = self.dir.best();
                let best_file = CheckpointFile::read(&best_path)?;
                Some(BestEpoch {
                    epoch: header.best_epoch,
                    score: Some(score),
                    students: load_students::<A::InnerBackend>(
                        &best_file, self.model, device, &best_path,
                    )?,
                })
            }
            None => None,
        };
        Ok(RunState {
            epochs_done: header.epochs_done,
            history: header.history,
            best,
        })
    }
}

/// The training data of a run: the fitting split's loader and the held-out nominal samples
/// with theirs.
struct Splits {
    fit: BatchLoader,
    holdout: Vec<Sample>,
    holdout_loader: Option<BatchLoader>,
}

impl Splits {
    /// Splits `train` (`holdout_fraction`, seeded) and builds the loaders.
    fn new(model: &ModelConfig, config: &TrainConfig, train: Vec<Sample>) -> Result<Self> {
        let (fit, holdout) = if config.holdout_fraction > 0.0 {
            holdout_split(train, config.holdout_fraction, config.seed)?
        } else {
            (train, Vec::new())
        };
        let preprocess = model.preprocess();
        let loader = |samples: Vec<Sample>, shuffle: bool| {
            BatchLoader::new(
                samples,
                preprocess,
                LoaderConfig {
                    batch_size: config.batch_size,
                    shuffle,
                    seed: config.seed,
                    cache: config.cache_images,
                    ..LoaderConfig::default()
                },
            )
        };
        let holdout_loader = (!holdout.is_empty())
            .then(|| loader(holdout.clone(), false))
            .transpose()?;
        Ok(Self {
            fit: loader(fit, true)?,
            holdout,
            holdout_loader,
        })
    }
}

/// Trains `model` on the nominal `train` samples.
///
/// The nominal images are split into a fitting part and a held-out part
/// (`holdout_fraction`, seeded). Students are seeded with `seed + i`; the shuffle of epoch
/// `e` is seeded from `(seed, e)`. On the CPU backends a run is bit-for-bit reproducible,
/// and a resumed run equals an uninterrupted one. With a run folder, checkpoints are written
/// and resumed as [`Checkpointer`] says.
///
/// # Errors
/// [`StadError::InvalidConfig`] for settings out of range, a data error for an empty or
/// unreadable training set, [`StadError::Diverged`] for a non-finite loss, and the
/// checkpoint errors of [`Checkpointer`].
pub fn train<A: AutodiffBackend>(
    model: &ModelConfig,
    config: &TrainConfig,
    train: Vec<Sample>,
    run_dir: Option<&RunDir>,
    device: &A::Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome<A::InnerBackend>> {
    model.check()?;
    config.check()?;
    if train.is_empty() {
        return Err(stad_data::DataError::EmptyTrainSet {
            dir: PathBuf::from("<training samples>"),
        }
        .into());
    }
    let checkpointer = run_dir
        .map(|dir| Checkpointer::new(dir, model, config, &train))
        .transpose()?;
    let splits = Splits::new(model, config, train)?;
    let teacher = model.build_teacher::<A::InnerBackend>(device)?;
    let mut students = model.init_students::<A>(config.seed, device)?;
    let mut optimizers = StudentOptimizers::<A>::new(config, &model.method);
    let mut state = match checkpointer.as_ref().filter(|c| c.can_resume()) {
        Some(c) => c.resume(&mut students, &mut optimizers, device)?,
        None => RunState {
            epochs_done: 0,
            history: Vec::new(),
            best: None,
        },
    };

    // One cache for both splits: hold-out sample `i` is entry `fit.len() + i`.
    let holdout_offset = splits.fit.len();
    let mut teacher_cache = TeacherCache::<A::InnerBackend>::new(
        holdout_offset + splits.holdout.len(),
        config.teacher_cache_mb.saturating_mul(1 << 20),
    );
    let first_epoch = state.epochs_done;
    for epoch in first_epoch..config.epochs {
        let started = Instant::now();
        let (train_loss, seen) = train_epoch(
            epoch,
            &mut students,
            &mut optimizers,
            &splits.fit,
            &teacher,
            &mut teacher_cache,
            device,
            observer,
        )?;
        let candidate = StudentTeacher::from_parts(
            model.clone(),
            teacher.clone(),
            students.iter().map(|s| s.valid()).collect(),
        );
        let validation_score = match &splits.holdout_loader {
            Some(loader) => Some(mean(&cached_image_scores(
                &candidate,
                loader,
                &mut teacher_cache,
                holdout_offset,
                device,
            )?)),
            None => None,
        };
        let seconds = started.elapsed().as_secs_f64();
        let summary = EpochSummary {
            epoch,
            train_loss,
            validation_score,
            seconds,
            images_per_second: seen as f64 / seconds.max(1e-9),
        };
        observer.on_epoch(&summary);
        if epoch == first_epoch {
            observer.on_teacher_cache(&teacher_cache.status());
        }
        state.history.push(summary);
        state.epochs_done = epoch + 1;
        let improved = BestEpoch::improves_on(validation_score, state.best.as_ref());
        if improved {
            state.best = Some(BestEpoch {
                epoch,
                score: validation_score,
                students: candidate.into_students(),
            });
        }
        if let Some(c) = &checkpointer {
            c.save(&state, improved, &students, &optimizers)?;
        }
    }

    let (best_epoch, best_students) = match state.best {
        Some(best) => (best.epoch, best.students),
        None => (
            config.epochs.saturating_sub(1),
            students.iter().map(|s| s.valid()).collect(),
        ),
    };
    Ok(TrainOutcome {
        model: StudentTeacher::from_parts(model.clone(), teacher, best_students),
        best_epoch,
        history: state.history,
        holdout: splits.holdout,
    })
}

/// One epoch over `loader`: a [`StudentOptimizers::step`] per batch; the mean over batches of
/// the students' mean loss, and the images seen.
#[allow(clippy::too_many_arguments)]
fn train_epoch<A: AutodiffBackend>(
    epoch: usize,
    students: &mut Vec<Student<A>>,
    optimizers: &mut StudentOptimizers<A>,
    loader: &BatchLoader,
    teacher: &FrozenTeacher<A::InnerBackend>,
    cache: &mut TeacherCache<A::InnerBackend>,
    device: &A::Device,
    observer: &mut dyn TrainObserver,
) -> Result<(f64, usize)> {
    let batches = loader.num_batches();
    let mut loss_sum = 0.0f64;
    let mut seen = 0usize;
    for (b, batch) in loader.batches::<A>(epoch as u64, device).enumerate() {
        let batch = batch?;
        let targets: Vec<_> = cache
            .features(teacher, batch.images.clone().inner(), &batch.indices)
            .into_iter()
            .map(Tensor::from_inner)
            .collect();
        seen += batch.len();
        let (stepped, losses) =
            optimizers.step(std::mem::take(students), batch.images, &targets)?;
        if let Some(&loss) = losses.iter().find(|l| !l.is_finite()) {
            return Err(StadError::Diverged { epoch, loss });
        }
        *students = stepped;
        let mean = losses.iter().sum::<f32>() / losses.len() as f32;
        loss_sum += f64::from(mean);
        observer.on_batch(epoch, b, batches, mean);
    }
    Ok((loss_sum / batches.max(1) as f64, seen))
}

/// One student's SGD optimizer.
type StudentOptimizer<A> =
    OptimizerAdaptor<Sgd<<A as AutodiffBackend>::InnerBackend>, Student<A>, A>;
/// Its state (momentum buffers), as a checkpoint holds it.
type OptimizerRecord<A> = <StudentOptimizer<A> as Optimizer<Student<A>, A>>::Record;

/// The students' SGD optimizers (PyTorch semantics: momentum with dampening 0, weight decay
/// added to the gradient) and the distillation step [`train`] takes per batch.
///
/// For every student `s`: its loss `L_s` ([`MethodConfig::student_loss`]) against the
/// teacher's features, the gradient `g = ∂L_s/∂θ + λ·θ`, the momentum `v ← μ·v + g` and the
/// update `θ ← θ − η·v` (on the first step `v = g`).
pub struct StudentOptimizers<A: AutodiffBackend> {
    optimizers: Vec<StudentOptimizer<A>>,
    learning_rate: f64,
    method: MethodConfig,
}

impl<A: AutodiffBackend> StudentOptimizers<A> {
    /// Fresh optimizers (no momentum yet), one for each of `method`'s students, with
    /// `config`'s learning rate `η`, momentum `μ` and weight decay `λ`.
    pub fn new(config: &TrainConfig, method: &MethodConfig) -> Self {
        let sgd = SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: config.momentum,
                dampening: 0.0,
                nesterov: false,
            }))
            .with_weight_decay(
                (config.weight_decay > 0.0)
                    .then(|| WeightDecayConfig::new(config.weight_decay as f32)),
            );
        Self {
            optimizers: (0..method.num_students())
                .map(|_| sgd.init::<A, Student<A>>())
                .collect(),
            learning_rate: config.learning_rate,
            method: method.clone(),
        }
    }

    /// One distillation step of every student on `images` against the teacher's `targets`
    /// (its features of `images`): the stepped students and their losses before the step, in
    /// the students' order. A non-finite loss is returned as it is (the caller decides).
    ///
    /// # Errors
    /// [`StadError::StudentCount`] when `students` are not as many as the optimizers; a
    /// distillation error when the features do not fit the targets.
    pub fn step(
        &mut self,
        students: Vec<Student<A>>,
        images: Tensor<A, 4>,
        targets: &[Tensor<A, 4>],
    ) -> Result<(Vec<Student<A>>, Vec<f32>)> {
        if students.len() != self.optimizers.len() {
            return Err(StadError::StudentCount {
                expected: self.optimizers.len(),
                found: students.len(),
            });
        }
        let mut stepped = Vec::with_capacity(students.len());
        let mut losses = Vec::with_capacity(students.len());
        for (student, optim) in students.into_iter().zip(self.optimizers.iter_mut()) {
            let preds = student.forward_features(images.clone());
            let loss = self.method.student_loss(targets, &preds)?;
            losses.push(loss.clone().into_scalar().elem::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &student);
            stepped.push(optim.step(self.learning_rate, student, grads));
        }
        Ok((stepped, losses))
    }

    /// The optimizers' states (momentum buffers), for a checkpoint.
    fn records(&self) -> Vec<OptimizerRecord<A>> {
        self.optimizers.iter().map(|o| o.to_record()).collect()
    }

    /// Loads every optimizer's state from `records` (a checkpoint's, read from `path`).
    fn load_records(&mut self, records: Vec<OptimizerRecord<A>>, path: &Path) -> Result<()> {
        if records.len() != self.optimizers.len() {
            return Err(StadError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "it holds {} optimizer states for {} students",
                    records.len(),
                    self.optimizers.len()
                ),
            });
        }
        let optimizers = std::mem::take(&mut self.optimizers);
        self.optimizers = optimizers
            .into_iter()
            .zip(records)
            .map(|(o, r)| crate::checkpoint::guard(path, "optimizers", || o.load_record(r)))
            .collect::<Result<_>>()?;
        Ok(())
    }
}

fn mean(scores: &[f32]) -> f64 {
    scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len().max(1) as f64
}

/// [`loader_image_scores`] with the teacher's features from `cache` (sample `i` of `loader` is entry
/// `offset + i`).
fn cached_image_scores<B: burn::prelude::Backend>(
    model: &StudentTeacher<B>,
    loader: &BatchLoader,
    cache: &mut TeacherCache<B>,
    offset: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(loader.len());
    for batch in loader.host_batches(0) {
        let mut batch = batch?;
        let indices: Vec<usize> = batch.indices.iter().map(|i| offset + i).collect();
        let images = batch.take_images::<B>(device);
        let teacher = cache.features(model.teacher(), images.clone(), &indices);
        let map = model.anomaly_maps_with_teacher(images, teacher)?;
        out.extend(host_scores(stad_scoring::image_scores(map)));
    }
    Ok(out)
}

fn host_scores<B: burn::prelude::Backend>(scores: burn::prelude::Tensor<B, 1>) -> Vec<f32> {
    scores
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data")
}

/// Image scores of `model` for every sample of `loader`, in loader order.
pub(crate) fn loader_image_scores<B: burn::prelude::Backend>(
    model: &StudentTeacher<B>,
    loader: &BatchLoader,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(loader.len());
    for batch in loader.host_batches(0) {
        let (scores, _) = model.score(batch?.take_images::<B>(device))?;
        out.extend(host_scores(scores));
    }
    Ok(out)
}
