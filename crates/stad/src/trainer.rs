//! Training: the only code of stad that touches an optimizer.
//!
//! Per batch the teacher runs once (on the inner, non-autodiff backend), then every student
//! computes its features, its STFPM loss `Σ_k mean_{b,i,j} ‖t̂ − ŝ‖²` and takes one step of its
//! own SGD optimizer (PyTorch semantics: momentum 0.9 with dampening 0, weight decay added to
//! the gradient). After each epoch the mean image score on the held-out nominal split decides
//! the best epoch (as the official STFPM code does; the test set is never used). With a run
//! folder, `last.ckpt` (students, optimizer states, epoch, history) and `best.ckpt` (the best
//! students) are written atomically after each epoch, and a run resumes from them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use serde::{Deserialize, Serialize};
use stad_backbones::Backbone;
use stad_data::{BatchLoader, LoaderConfig, Sample, holdout_split};

use crate::checkpoint::CheckpointFile;
use crate::error::{Result, StadError};
use crate::fingerprint::{self, DataFingerprint, FileFingerprint};
use crate::model::{ModelConfig, StudentTeacher};
use crate::run_dir::RunDir;
use crate::teacher_cache::{TeacherCache, TeacherCacheStatus};

/// Hyper-parameters of training (defaults: the official STFPM code's).
#[derive(Config, Debug)]
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
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(StadError::InvalidConfig(what));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if self.batch_size == 0 || self.epochs == 0 {
            return bad("batch size and epochs must be positive".into());
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return bad(format!(
                "hold-out fraction must be in [0, 1), got {}",
                self.holdout_fraction
            ));
        }
        Ok(())
    }

    /// The same configuration with another number of epochs (resuming may extend a run).
    fn same_run_as(&self, other: &Self) -> bool {
        let mut a = self.clone();
        a.epochs = other.epochs;
        a.cache_images = other.cache_images;
        a.teacher_cache_mb = other.teacher_cache_mb;
        serde_json::to_string(&a).ok() == serde_json::to_string(other).ok()
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

/// The best epoch so far: its index, its validation score (NaN without a hold-out) and its
/// students.
type Best<B> = (usize, f64, Vec<Backbone<B>>);

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

fn header_of(file: &CheckpointFile, path: &Path) -> Result<TrainHeader> {
    serde_json::from_str(&file.header).map_err(|e| StadError::CheckpointMismatch {
        path: path.to_path_buf(),
        reason: format!("not a stad training checkpoint ({e})"),
    })
}

fn check_same_model(
    header: &TrainHeader,
    model: &ModelConfig,
    train: &TrainConfig,
    path: &Path,
) -> Result<()> {
    let a = serde_json::to_string(&header.model).unwrap_or_default();
    let b = serde_json::to_string(model).unwrap_or_default();
    if a != b {
        return Err(StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!("it was trained with another model configuration: {a} (this run: {b})"),
        });
    }
    if !header.train.same_run_as(train) {
        return Err(StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason:
                "it was trained with other hyper-parameters (only `epochs` may change on resume)"
                    .into(),
        });
    }
    Ok(())
}

/// Trains `model` on the nominal `train` samples.
///
/// The nominal images are split into a fitting part and a held-out part
/// (`holdout_fraction`, seeded). Students are seeded with `seed + i`; the shuffle of epoch
/// `e` is seeded from `(seed, e)`. On the CPU backends a run is bit-for-bit reproducible,
/// and a resumed run equals an uninterrupted one.
///
/// With a run folder, the checkpoints record fingerprints of the training images and of the
/// teacher's weight file ([`crate::fingerprint`]). A resume refuses
/// ([`StadError::CheckpointMismatch`], naming what differs) another model or other
/// hyper-parameters than `epochs`, other training data, a changed teacher file, and fewer
/// `epochs` than the run has done (as many finishes it without training more).
pub fn train<A: AutodiffBackend>(
    model: &ModelConfig,
    config: &TrainConfig,
    train: Vec<Sample>,
    run_dir: Option<&RunDir>,
    device: &A::Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome<A::InnerBackend>> {
    model.validate()?;
    config.validate()?;
    if train.is_empty() {
        return Err(stad_data::DataError::EmptyTrainSet {
            dir: PathBuf::from("<training samples>"),
        }
        .into());
    }
    // Fingerprints are only needed to check a resume against its checkpoints.
    let fingerprints = match run_dir {
        Some(_) => Some((
            DataFingerprint::of_samples(&train)?,
            fingerprint::teacher_fingerprint(&model.teacher_weights)?,
        )),
        None => None,
    };
    let (fit, holdout) = if config.holdout_fraction > 0.0 {
        holdout_split(train, config.holdout_fraction, config.seed)?
    } else {
        (train, Vec::new())
    };
    let preprocess = model.preprocess();
    let fit_loader = BatchLoader::new(
        fit,
        preprocess,
        LoaderConfig {
            batch_size: config.batch_size,
            shuffle: true,
            seed: config.seed,
            cache: config.cache_images,
            ..LoaderConfig::default()
        },
    )?;
    let holdout_loader = (!holdout.is_empty())
        .then(|| {
            BatchLoader::new(
                holdout.clone(),
                preprocess,
                LoaderConfig {
                    batch_size: config.batch_size,
                    cache: config.cache_images,
                    ..LoaderConfig::default()
                },
            )
        })
        .transpose()?;

    let teacher = model.build_teacher::<A::InnerBackend>(device)?;
    let mut students = model.init_students::<A>(config.seed, device)?;
    let mut optimizers = StudentOptimizers::<A>::new(config, students.len());

    let mut start_epoch = 0;
    let mut history = Vec::new();
    let mut best: Option<Best<A::InnerBackend>> = None;

    if let Some(dir) = run_dir.filter(|d| d.resume() && d.last().exists()) {
        let path = dir.last();
        let file = CheckpointFile::read(&path)?;
        let header = header_of(&file, &path)?;
        check_same_model(&header, model, config, &path)?;
        let (data_now, teacher_now) = fingerprints.as_ref().expect("computed with a run folder");
        fingerprint::check_unchanged(
            (&header.data_fingerprint, &header.teacher_fingerprint),
            (data_now, teacher_now),
            &path,
        )?;
        if config.epochs < header.epochs_done {
            return Err(StadError::CheckpointMismatch {
                path,
                reason: format!(
                    "the run has done {} epochs, more than the {} asked for: resume with at least \
                     {} epochs ({} finishes it without training more)",
                    header.epochs_done, config.epochs, header.epochs_done, header.epochs_done
                ),
            });
        }
        students = file.load_students(students, device, &path)?;
        optimizers.load_records(
            |i| {
                let name = format!("optimizer{i}");
                let record = file.record::<A, _>(&name, device, &path)?;
                Ok((name, record))
            },
            &path,
        )?;
        start_epoch = header.epochs_done;
        history = header.history.clone();
        if let Some(score) = header.best_score {
            let best_path = dir.best();
            let best_file = CheckpointFile::read(&best_path)?;
            let fresh = model.init_students::<A::InnerBackend>(config.seed, device)?;
            best = Some((
                header.best_epoch,
                score,
                best_file.load_students(fresh, device, &best_path)?,
            ));
        }
    }

    // One cache for both splits: hold-out sample `i` is entry `fit_loader.len() + i`.
    let holdout_offset = fit_loader.len();
    let mut teacher_cache = TeacherCache::<A::InnerBackend>::new(
        holdout_offset + holdout.len(),
        config.teacher_cache_mb.saturating_mul(1 << 20),
    );
    let batches = fit_loader.num_batches();
    for epoch in start_epoch..config.epochs {
        let started = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut seen = 0usize;
        for (b, batch) in fit_loader.batches::<A>(epoch as u64, device).enumerate() {
            let batch = batch?;
            seen += batch.len();
            let targets: Vec<_> = teacher_cache
                .features(&teacher, batch.images.clone().inner(), &batch.indices)
                .into_iter()
                .map(Tensor::from_inner)
                .collect();
            let (stepped, losses) = optimizers.step(students, batch.images, &targets);
            if let Some(&loss) = losses.iter().find(|l| !l.is_finite()) {
                return Err(StadError::Diverged { epoch, loss });
            }
            students = stepped;
            let batch_loss: f32 = losses.iter().sum();
            let mean = batch_loss / students.len() as f32;
            loss_sum += f64::from(mean);
            observer.on_batch(epoch, b, batches, mean);
        }
        let train_loss = loss_sum / batches.max(1) as f64;
        let inner: Vec<Backbone<A::InnerBackend>> = students.iter().map(|s| s.valid()).collect();
        let validation_score = match &holdout_loader {
            Some(loader) => {
                let candidate = StudentTeacher {
                    config: model.clone(),
                    teacher: teacher.clone(),
                    students: inner.clone(),
                };
                let scores = cached_image_scores(
                    &candidate,
                    loader,
                    &mut teacher_cache,
                    holdout_offset,
                    device,
                )?;
                Some(mean(&scores))
            }
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
        if epoch == start_epoch {
            observer.on_teacher_cache(&teacher_cache.status());
        }
        history.push(summary);

        // Lower validation score is better; without a hold-out the last epoch is kept.
        let improved = match (&best, validation_score) {
            (None, _) | (_, None) => true,
            (Some((_, s, _)), Some(v)) => v < *s,
        };
        if improved {
            best = Some((epoch, validation_score.unwrap_or(f64::NAN), inner));
        }
        if let Some(dir) = run_dir {
            let (best_epoch, best_score, best_students) = best.as_ref().expect("set above");
            let header = TrainHeader {
                kind: "stad-train".into(),
                model: model.clone(),
                train: config.clone(),
                epochs_done: epoch + 1,
                best_epoch: *best_epoch,
                best_score: best_score.is_finite().then_some(*best_score),
                history: history.clone(),
                data_fingerprint: fingerprints.as_ref().map(|(d, _)| d.clone()),
                teacher_fingerprint: fingerprints.as_ref().and_then(|(_, t)| t.clone()),
            };
            let header = serde_json::to_string(&header).expect("headers serialise");
            if improved {
                let mut file = CheckpointFile {
                    header: header.clone(),
                    blobs: Vec::new(),
                };
                for (i, s) in best_students.iter().enumerate() {
                    file.push_record::<A::InnerBackend, _>(
                        format!("student{i}"),
                        s.clone().into_record(),
                    )?;
                }
                file.write_atomic(&dir.best())?;
            }
            let mut file = CheckpointFile {
                header,
                blobs: Vec::new(),
            };
            for (i, s) in students.iter().enumerate() {
                file.push_record::<A, _>(format!("student{i}"), s.clone().into_record())?;
            }
            for (i, record) in optimizers.records().into_iter().enumerate() {
                file.push_record::<A, _>(format!("optimizer{i}"), record)?;
            }
            file.write_atomic(&dir.last())?;
        }
    }

    let (best_epoch, _, best_students) = best.unwrap_or_else(|| {
        let last = config.epochs.saturating_sub(1);
        (last, f64::NAN, students.iter().map(|s| s.valid()).collect())
    });
    Ok(TrainOutcome {
        model: StudentTeacher {
            config: model.clone(),
            teacher,
            students: best_students,
        },
        best_epoch,
        history,
        holdout,
    })
}

/// One student's SGD optimizer.
type StudentOptimizer<A> =
    OptimizerAdaptor<Sgd<<A as AutodiffBackend>::InnerBackend>, Backbone<A>, A>;
/// Its state (momentum buffers), as a checkpoint holds it.
type OptimizerRecord<A> = <StudentOptimizer<A> as Optimizer<Backbone<A>, A>>::Record;

/// The students' SGD optimizers (PyTorch semantics: momentum with dampening 0, weight decay
/// added to the gradient) and the distillation step [`train`] takes per batch.
///
/// For every student `s`: its loss `L_s = Σ_k mean_{b,i,j} ‖t̂_k − ŝ_k‖²` against the teacher's
/// features, the gradient `g = ∂L_s/∂θ + λ·θ`, the momentum `v ← μ·v + g` and the update
/// `θ ← θ − η·v` (on the first step `v = g`).
pub struct StudentOptimizers<A: AutodiffBackend> {
    optimizers: Vec<StudentOptimizer<A>>,
    learning_rate: f64,
}

impl<A: AutodiffBackend> StudentOptimizers<A> {
    /// Fresh optimizers (no momentum yet) for `students` students, with `config`'s learning
    /// rate `η`, momentum `μ` and weight decay `λ`.
    pub fn new(config: &TrainConfig, students: usize) -> Self {
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
            optimizers: (0..students)
                .map(|_| sgd.init::<A, Backbone<A>>())
                .collect(),
            learning_rate: config.learning_rate,
        }
    }

    /// One distillation step of every student on `images` against the teacher's `targets`
    /// (its features of `images`): the stepped students and their losses before the step, in
    /// the students' order. A non-finite loss is returned as it is (the caller decides).
    ///
    /// # Panics
    /// When `students` are not as many as the optimizers.
    pub fn step(
        &mut self,
        students: Vec<Backbone<A>>,
        images: Tensor<A, 4>,
        targets: &[Tensor<A, 4>],
    ) -> (Vec<Backbone<A>>, Vec<f32>) {
        assert_eq!(
            students.len(),
            self.optimizers.len(),
            "one optimizer a student"
        );
        let mut stepped = Vec::with_capacity(students.len());
        let mut losses = Vec::with_capacity(students.len());
        for (student, optim) in students.into_iter().zip(self.optimizers.iter_mut()) {
            let preds = student.forward_features(images.clone());
            let loss = stad_distill::stfpm_loss(targets, &preds);
            losses.push(loss.clone().into_scalar().elem::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &student);
            stepped.push(optim.step(self.learning_rate, student, grads));
        }
        (stepped, losses)
    }

    /// The optimizers' states (momentum buffers), for a checkpoint.
    fn records(&self) -> Vec<OptimizerRecord<A>> {
        self.optimizers.iter().map(|o| o.to_record()).collect()
    }

    /// Loads every optimizer's state from `record(i)` (its name and record), a checkpoint's.
    fn load_records(
        &mut self,
        mut record: impl FnMut(usize) -> Result<(String, OptimizerRecord<A>)>,
        path: &Path,
    ) -> Result<()> {
        let optimizers = std::mem::take(&mut self.optimizers);
        self.optimizers = optimizers
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let (name, r) = record(i)?;
                crate::checkpoint::guard(path, &name, || o.load_record(r))
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
}

/// Mean image score of `model` over the samples of `loader`.
pub fn mean_image_score<B: burn::prelude::Backend>(
    model: &StudentTeacher<B>,
    loader: &BatchLoader,
    device: &B::Device,
) -> Result<f64> {
    Ok(mean(&image_scores(model, loader, device)?))
}

fn mean(scores: &[f32]) -> f64 {
    scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len().max(1) as f64
}

/// [`image_scores`] with the teacher's features from `cache` (sample `i` of `loader` is entry
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
        let teacher = cache.features(&model.teacher, images.clone(), &indices);
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
pub fn image_scores<B: burn::prelude::Backend>(
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
