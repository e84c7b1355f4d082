//! The speed measurements: teacher forward, STFPM inference and STFPM training step, per
//! backbone and batch size, in images per second.
//!
//! Each measurement runs once to warm up (allocations, a GPU's kernel compilation and
//! autotuning), then `repeats` times; the best time counts (the machine's noise only ever
//! slows a run down). The backend is synchronised before the clock stops, with the outputs
//! still alive, so lazy and asynchronous backends are timed for the work done. A training
//! step is the trainer's ([`StudentOptimizers::step`]) with the teacher's features computed
//! in the step (no teacher cache), at the thesis' settings.
//!
//! Batch sizes run in increasing order. One that the device's memory cannot hold is reported
//! as [`Outcome::DoesNotFit`]: before it is tried when the [`DeviceMemory`] refuses it (a CPU
//! allocation failure would abort the process), or when the backend panics with an
//! out-of-memory error (a GPU); the larger batch sizes of that backbone are then skipped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use stad::StudentOptimizers;
use stad::backbones::BackboneConfig;
use stad::{MethodKind, ModelConfig, TeacherWeights, TrainConfig};

use crate::correctness::seeded_images;
use crate::error::{Result, SelftestError};

/// What the selftest asks of a device beyond burn's `Backend`: its memory.
pub trait DeviceMemory {
    /// Starts a measurement: forgets the peak so far, where the device allows it.
    fn reset_peak(&self) {}
    /// The peak memory since [`Self::reset_peak`], bytes, where the device reports it.
    fn peak_bytes(&self) -> Option<u64> {
        None
    }
    /// Whether a measurement that needs an estimated `needed_bytes` may run; `Err` says why
    /// not (e.g. "needs 9.1 GB, 6.0 GB available").
    fn admit(&self, _needed_bytes: f64) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// What is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedConfig {
    /// Side of the square random images. Default: 224.
    pub image_size: usize,
    /// Batch sizes, tried in increasing order. Default: 8, 32, 128.
    pub batch_sizes: Vec<usize>,
    /// Timed runs after the warm-up; the best counts. Default: 2.
    pub repeats: usize,
}

impl SpeedConfig {
    /// 224², batches 8, 32 and 128, best of 2.
    pub fn standard() -> Self {
        Self {
            image_size: 224,
            batch_sizes: vec![8, 32, 128],
            repeats: 2,
        }
    }

    /// 64², batch 2, one timed run: that the measurements run (CI), not how fast.
    pub fn quick() -> Self {
        Self {
            image_size: 64,
            batch_sizes: vec![2],
            repeats: 1,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`SelftestError::InvalidConfig`] for no or a zero batch size, no repeats, or an image
    /// size the models refuse.
    pub fn validate(&self) -> Result<()> {
        if self.batch_sizes.is_empty() || self.batch_sizes.contains(&0) {
            return Err(SelftestError::InvalidConfig(format!(
                "batch sizes must be positive, got {:?}",
                self.batch_sizes
            )));
        }
        if self.repeats == 0 {
            return Err(SelftestError::InvalidConfig(
                "at least one timed run".into(),
            ));
        }
        for (_, model) in models(self.image_size) {
            model.check().map_err(stad::StadError::from)?;
        }
        Ok(())
    }
}

/// The work measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// The teacher's three taps.
    TeacherForward,
    /// STFPM maps and image scores (teacher and student forward, the map).
    Inference,
    /// One STFPM training step: teacher forward, student forward and backward, SGD.
    TrainingStep,
}

impl Work {
    /// Every work, in the order measured.
    pub const ALL: [Work; 3] = [Work::TeacherForward, Work::Inference, Work::TrainingStep];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Work::TeacherForward => "teacher forward",
            Work::Inference => "STFPM inference",
            Work::TrainingStep => "STFPM training step",
        }
    }
}

/// How a measurement went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    /// It ran.
    Measured {
        /// `batch / seconds_per_batch`.
        images_per_second: f64,
        /// The best time of one batch, seconds.
        seconds_per_batch: f64,
        /// The device's peak memory during the measurement, bytes, where it reports it.
        peak_memory_bytes: Option<u64>,
    },
    /// The device's memory cannot hold it.
    DoesNotFit {
        /// Why.
        reason: String,
    },
    /// Not tried: a smaller batch did not fit.
    Skipped,
    /// It failed otherwise (a backend error).
    Failed {
        /// The error.
        reason: String,
    },
}

impl Outcome {
    /// Images per second, when measured.
    pub fn images_per_second(&self) -> Option<f64> {
        match self {
            Outcome::Measured {
                images_per_second, ..
            } => Some(*images_per_second),
            _ => None,
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedRow {
    /// `mobilenet_v2` (the embedded ImageNet weights) or `resnet18` (random weights: speed
    /// does not depend on them).
    pub backbone: String,
    /// What ran.
    pub work: Work,
    /// Images per batch.
    pub batch_size: usize,
    /// Side of the square images.
    pub image_size: usize,
    /// The result.
    pub outcome: Outcome,
}

/// The largest batch size of a backbone whose every measurement ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargestBatch {
    /// The backbone.
    pub backbone: String,
    /// The largest batch size tried that fits (`None`: not even the smallest).
    pub batch_size: Option<usize>,
    /// Whether a larger one was tried and did not fit (otherwise the device may hold more).
    pub limited_by_memory: bool,
}

/// The two backbones measured, as STFPM models at `image_size`.
fn models(image_size: usize) -> [(&'static str, ModelConfig); 2] {
    let stfpm = || MethodKind::Stfpm.default_config();
    [
        (
            "mobilenet_v2",
            ModelConfig::embedded(stfpm()).with_image_size(image_size),
        ),
        (
            "resnet18",
            ModelConfig::new(
                BackboneConfig::resnet18(),
                TeacherWeights::Random(0),
                stfpm(),
            )
            .with_image_size(image_size),
        ),
    ]
}

/// Measures every work of both backbones at every batch size of `config` on `device`.
///
/// # Errors
/// An invalid configuration, or a model that cannot be built. What fails at a batch size is
/// reported in its row.
pub fn run<A: AutodiffBackend>(
    config: &SpeedConfig,
    device: &A::Device,
    memory: &dyn DeviceMemory,
    mut progress: impl FnMut(&SpeedRow),
) -> Result<(Vec<SpeedRow>, Vec<LargestBatch>)> {
    config.validate()?;
    let mut batches = config.batch_sizes.clone();
    batches.sort_unstable();
    batches.dedup();
    let mut rows = Vec::new();
    let mut largest = Vec::new();
    for (backbone, model) in models(config.image_size) {
        let base = model.init_seeded::<A::InnerBackend>(42, device)?;
        let teacher = base.teacher().clone();
        let mut students = Some(model.init_students::<A>(42, device)?);
        let train = TrainConfig::new();
        let mut optimizers = StudentOptimizers::<A>::new(&train, &model.method);
        let mut fits = None;
        let mut limited = false;
        for &batch in &batches {
            let row = |work, outcome| SpeedRow {
                backbone: backbone.to_string(),
                work,
                batch_size: batch,
                image_size: config.image_size,
                outcome,
            };
            if limited {
                for work in Work::ALL {
                    rows.push(row(work, Outcome::Skipped));
                    progress(rows.last().expect("pushed"));
                }
                continue;
            }
            let needed = stad::memory::training_bytes(
                &model,
                &train
                    .clone()
                    .with_batch_size(batch)
                    .with_cache_images(false)
                    .with_teacher_cache_mb(0),
                batch,
            );
            if let Err(reason) = memory.admit(needed) {
                limited = true;
                for work in Work::ALL {
                    rows.push(row(
                        work,
                        Outcome::DoesNotFit {
                            reason: reason.clone(),
                        },
                    ));
                    progress(rows.last().expect("pushed"));
                }
                continue;
            }
            let images = seeded_images::<A::InnerBackend>(batch, config.image_size, 5, device);
            let mut all_ran = true;
            for work in Work::ALL {
                let sync = || <A::InnerBackend as Backend>::sync(device).map_err(|e| e.to_string());
                memory.reset_peak();
                let outcome = match work {
                    Work::TeacherForward => measure(batch, config.repeats, || {
                        let features = teacher.features(images.clone());
                        sync()?;
                        drop(features);
                        Ok(())
                    }),
                    Work::Inference => {
                        let st = base.clone().with_students(
                            students
                                .as_ref()
                                .expect("students are back after each step")
                                .iter()
                                .map(|s| s.valid())
                                .collect(),
                        )?;
                        measure(batch, config.repeats, || {
                            let scored = st.score(images.clone()).map_err(|e| e.to_string())?;
                            sync()?;
                            drop(scored);
                            Ok(())
                        })
                    }
                    Work::TrainingStep => measure(batch, config.repeats, || {
                        let targets: Vec<Tensor<A, 4>> = teacher
                            .features(images.clone())
                            .into_iter()
                            .map(Tensor::from_inner)
                            .collect();
                        let current = students.take().ok_or("a previous step failed")?;
                        let (stepped, _) = optimizers
                            .step(current, Tensor::from_inner(images.clone()), &targets)
                            .map_err(|e| e.to_string())?;
                        students = Some(stepped);
                        sync()?;
                        Ok(())
                    }),
                };
                let outcome = match outcome {
                    Outcome::Measured {
                        images_per_second,
                        seconds_per_batch,
                        ..
                    } => Outcome::Measured {
                        images_per_second,
                        seconds_per_batch,
                        peak_memory_bytes: memory.peak_bytes(),
                    },
                    other => other,
                };
                match &outcome {
                    Outcome::Measured { .. } => {}
                    Outcome::DoesNotFit { .. } => {
                        limited = true;
                        all_ran = false;
                    }
                    _ => all_ran = false,
                }
                rows.push(row(work, outcome));
                progress(rows.last().expect("pushed"));
                if students.is_none() {
                    // A failed step consumed them: later rows need fresh ones.
                    students = Some(model.init_students::<A>(42, device)?);
                    optimizers = StudentOptimizers::<A>::new(&train, &model.method);
                }
                if limited {
                    <A::InnerBackend as Backend>::memory_cleanup(device);
                    break;
                }
            }
            if limited {
                for work in Work::ALL.into_iter().skip(rows_of(&rows, backbone, batch)) {
                    rows.push(row(work, Outcome::Skipped));
                    progress(rows.last().expect("pushed"));
                }
            } else if all_ran {
                fits = Some(batch);
            }
        }
        largest.push(LargestBatch {
            backbone: backbone.to_string(),
            batch_size: fits,
            limited_by_memory: limited,
        });
    }
    Ok((rows, largest))
}

/// Rows of `backbone` at `batch` so far.
fn rows_of(rows: &[SpeedRow], backbone: &str, batch: usize) -> usize {
    rows.iter()
        .filter(|r| r.backbone == backbone && r.batch_size == batch)
        .count()
}

/// Runs `step` once to warm up and `repeats` times timed; a panic becomes
/// [`Outcome::DoesNotFit`] when it is an out-of-memory error, else [`Outcome::Failed`].
fn measure(
    batch: usize,
    repeats: usize,
    mut step: impl FnMut() -> std::result::Result<(), String>,
) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        step()?;
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let started = Instant::now();
            step()?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        Ok::<f64, String>(best)
    }));
    match result {
        Ok(Ok(seconds)) => Outcome::Measured {
            images_per_second: batch as f64 / seconds.max(1e-12),
            seconds_per_batch: seconds,
            peak_memory_bytes: None,
        },
        Ok(Err(reason)) => classify(reason),
        Err(payload) => {
            let reason = stad::data::panic_message(payload.as_ref())
                .unwrap_or_else(|| "the backend panicked".to_string());
            classify(reason)
        }
    }
}

/// An out-of-memory error is [`Outcome::DoesNotFit`], anything else [`Outcome::Failed`].
fn classify(reason: String) -> Outcome {
    let lower = reason.to_lowercase();
    let oom = [
        "out of memory",
        "outofmemory",
        "out_of_memory",
        "oom",
        "cannot allocate",
    ]
    .iter()
    .any(|k| lower.contains(k));
    if oom {
        Outcome::DoesNotFit { reason }
    } else {
        Outcome::Failed { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_memory_panic_is_does_not_fit_and_other_errors_fail() {
        let o = measure(4, 1, || {
            panic!("CUDA_ERROR_OUT_OF_MEMORY while allocating 4 GB")
        });
        assert!(matches!(o, Outcome::DoesNotFit { .. }), "{o:?}");
        let o = measure(4, 1, || Err("kernel launch failed".into()));
        assert!(matches!(o, Outcome::Failed { .. }), "{o:?}");
        let o = measure(4, 2, || Ok(()));
        assert!(o.images_per_second().is_some_and(|v| v > 0.0), "{o:?}");
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let mut c = SpeedConfig::quick();
        c.batch_sizes = vec![0];
        assert!(matches!(c.validate(), Err(SelftestError::InvalidConfig(_))));
        let mut c = SpeedConfig::quick();
        c.repeats = 0;
        assert!(c.validate().is_err());
        let mut c = SpeedConfig::quick();
        c.image_size = 8;
        assert!(c.validate().is_err(), "too small for stride 16");
    }

    /// A device that refuses the larger batch reports it as not fitting, skips what is
    /// beyond, and names the smaller one as the largest.
    #[test]
    fn a_refused_batch_does_not_fit_and_larger_ones_are_skipped() {
        struct Small;
        impl DeviceMemory for Small {
            fn admit(&self, needed: f64) -> std::result::Result<(), String> {
                if needed > 0.5e9 {
                    Err(format!("needs {:.2} GB", needed / 1e9))
                } else {
                    Ok(())
                }
            }
        }
        type A = burn::backend::Autodiff<stad::backend::Cpu>;
        let config = SpeedConfig {
            image_size: 32,
            batch_sizes: vec![64, 1, 4096, 2048],
            repeats: 1,
        };
        let mut seen = 0;
        let (rows, largest) =
            run::<A>(&config, &Default::default(), &Small, |_| seen += 1).unwrap();
        assert_eq!(rows.len(), 2 * 3 * 4);
        assert_eq!(seen, rows.len());
        for l in &largest {
            assert_eq!(l.batch_size, Some(64), "{l:?}");
            assert!(l.limited_by_memory);
        }
        let at = |b: usize| rows.iter().filter(move |r| r.batch_size == b);
        assert!(
            at(1)
                .chain(at(64))
                .all(|r| r.outcome.images_per_second().is_some())
        );
        assert!(
            at(2048).all(|r| matches!(r.outcome, Outcome::DoesNotFit { .. })),
            "{rows:?}"
        );
        // Sizes run in increasing order: past the first refusal nothing is tried.
        assert!(at(4096).all(|r| r.outcome == Outcome::Skipped), "{rows:?}");
    }
}
