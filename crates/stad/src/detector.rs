//! Inference: everything needed to score new images, saved and loaded as one file.
//!
//! A [`Detector`] holds the model (teacher reference, students, preprocessing) and the
//! decision threshold. The threshold comes from held-out **nominal** scores by default (a
//! quantile, 0.99 unless told otherwise: deployments rarely have labelled defects), or is the
//! image-level F1-optimal one when labelled validation data is given (the thesis' choice).
//! Never from the test set.

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use stad_backbones::FrozenTeacher;
use stad_data::{BatchLoader, LoaderConfig, Sample};
use stad_metrics::NominalThreshold;

use crate::checkpoint::CheckpointFile;
use crate::error::{Result, StadError};
use crate::evaluate::run_test_set;
use crate::model::{ModelConfig, StudentTeacher, TeacherWeights};

/// Default quantile of held-out nominal image scores used as the threshold.
pub const DEFAULT_NOMINAL_QUANTILE: f64 = 0.99;

/// Images a [`Detector`] scores at once unless told otherwise ([`Detector::with_batch_size`]).
pub const DEFAULT_BATCH_SIZE: usize = 8;

/// How the threshold was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ThresholdSource {
    /// Quantile `q` of held-out nominal image scores.
    NominalQuantile(f64),
    /// The image-level F1-optimal threshold on labelled validation data.
    F1Optimal,
    /// Set by the user ([`Detector::with_threshold`]).
    Manual,
}

/// The decision for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Readable identifier of the image (its path).
    pub name: String,
    /// Image score (max of the map).
    pub score: f32,
    /// `score ≥ threshold`.
    pub is_anomalous: bool,
    /// Anomaly map at the model's input size, `[height · width]`, row-major.
    pub map: Vec<f32>,
    /// `(width, height)` of `map`.
    pub map_size: (usize, usize),
    /// `map ≥ threshold`, same layout.
    pub mask: Vec<bool>,
    /// The map bilinearly resized to the original image size (when asked for), with that size.
    pub original_map: Option<(Vec<f32>, (usize, usize))>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DetectorHeader {
    kind: String,
    model: ModelConfig,
    threshold: f64,
    threshold_source: ThresholdSource,
}

const DETECTOR_KIND: &str = "stad-detector";

/// A trained model with its threshold.
#[derive(Debug, Clone)]
pub struct Detector<B: Backend> {
    /// The model.
    pub model: StudentTeacher<B>,
    /// Images scoring at or above it are anomalous; map pixels at or above it are flagged.
    pub threshold: f64,
    /// Where the threshold came from.
    pub threshold_source: ThresholdSource,
    /// Images scored at once by [`Self::predict`] (not saved; [`DEFAULT_BATCH_SIZE`]).
    batch_size: usize,
}

impl<B: Backend> Detector<B> {
    /// The same detector with a threshold set by hand ([`ThresholdSource::Manual`]).
    ///
    /// # Errors
    /// [`crate::ConfigError::Threshold`] for a NaN or infinite threshold.
    pub fn with_threshold(self, threshold: f64) -> Result<Self> {
        if !threshold.is_finite() {
            return Err(crate::ConfigError::Threshold(threshold).into());
        }
        Ok(Self {
            threshold,
            threshold_source: ThresholdSource::Manual,
            ..self
        })
    }

    /// The same detector scoring `batch_size` images at once in [`Self::predict`] (memory
    /// grows with it; results do not change).
    ///
    /// # Errors
    /// [`crate::ConfigError::ZeroBatchSize`] for 0.
    pub fn with_batch_size(self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(crate::ConfigError::ZeroBatchSize.into());
        }
        Ok(Self { batch_size, ..self })
    }

    /// The default calibration: the image-level F1-optimal threshold when labelled validation
    /// samples are given, else the [`DEFAULT_NOMINAL_QUANTILE`] of the held-out nominal scores.
    pub fn calibrate(
        model: StudentTeacher<B>,
        nominal_holdout: Vec<Sample>,
        labelled: Option<Vec<Sample>>,
        device: &B::Device,
    ) -> Result<Self> {
        match labelled {
            Some(labelled) => Self::calibrate_f1(model, labelled, device),
            None => {
                Self::calibrate_nominal(model, nominal_holdout, DEFAULT_NOMINAL_QUANTILE, device)
            }
        }
    }

    /// Threshold = `quantile` of the image scores of held-out nominal samples.
    pub fn calibrate_nominal(
        model: StudentTeacher<B>,
        nominal: Vec<Sample>,
        quantile: f64,
        device: &B::Device,
    ) -> Result<Self> {
        let loader = BatchLoader::new(
            nominal,
            model.config().preprocess(),
            LoaderConfig::new().with_batch_size(DEFAULT_BATCH_SIZE),
        )?;
        let scores = crate::trainer::loader_image_scores(&model, &loader, device)?;
        let threshold =
            stad_metrics::nominal_threshold(&scores, NominalThreshold::Quantile(quantile))?;
        Ok(Self {
            model,
            threshold,
            threshold_source: ThresholdSource::NominalQuantile(quantile),
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Threshold = the image-level F1-optimal one on labelled validation samples (needs both
    /// nominal and anomalous samples).
    pub fn calibrate_f1(
        model: StudentTeacher<B>,
        labelled: Vec<Sample>,
        device: &B::Device,
    ) -> Result<Self> {
        let outputs = run_test_set(&model, labelled, DEFAULT_BATCH_SIZE, device)?;
        let f1 = stad_metrics::f1_optimal_threshold(&outputs.scores, &outputs.labels)?;
        Ok(Self {
            model,
            threshold: f1.threshold,
            threshold_source: ThresholdSource::F1Optimal,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Scores `samples`; with `original_size`, also returns each map resized to its image's
    /// original size.
    pub fn predict(
        &self,
        samples: Vec<Sample>,
        original_size: bool,
        device: &B::Device,
    ) -> Result<Vec<Prediction>> {
        let loader = BatchLoader::new(
            samples,
            self.model.config().preprocess(),
            LoaderConfig::new().with_batch_size(self.batch_size),
        )?;
        let mut out = Vec::with_capacity(loader.len());
        for batch in loader.host_batches(0) {
            let mut batch = batch?;
            let images = batch.take_images::<B>(device);
            let (sizes, names) = (&batch.original_sizes, &batch.names);
            let [n, _, h, w] = images.dims();
            let (scores, maps) = self.model.score(images)?;
            let scores: Vec<f32> = scores.into_data().convert::<f32>().to_vec().expect("f32");
            // One transfer for the batch's maps; only the original-size upsampling stays on
            // the device.
            let host_maps: Vec<f32> = maps
                .clone()
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32");
            for i in 0..n {
                let original_map = if original_size {
                    let (ow, oh) = (sizes[i].0 as usize, sizes[i].1 as usize);
                    let map_i = maps.clone().slice([i..i + 1, 0..1, 0..h, 0..w]);
                    let up = stad_scoring::upsample_bilinear(map_i, [oh, ow]);
                    Some((
                        up.into_data().convert::<f32>().to_vec().expect("f32"),
                        (ow, oh),
                    ))
                } else {
                    None
                };
                let map = host_maps[i * h * w..(i + 1) * h * w].to_vec();
                let mask = map
                    .iter()
                    .map(|&v| f64::from(v) >= self.threshold)
                    .collect();
                out.push(Prediction {
                    name: names[i].clone(),
                    score: scores[i],
                    is_anomalous: f64::from(scores[i]) >= self.threshold,
                    map,
                    map_size: (w, h),
                    mask,
                    original_map,
                });
            }
        }
        Ok(out)
    }

    /// Saves model and threshold in one file, atomically. The teacher's weights are stored
    /// unless it is the embedded one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = DetectorHeader {
            kind: DETECTOR_KIND.into(),
            model: self.model.config().clone(),
            threshold: self.threshold,
            threshold_source: self.threshold_source,
        };
        let mut file =
            CheckpointFile::new(serde_json::to_string(&header).expect("headers serialise"));
        if self.model.config().teacher_weights != TeacherWeights::Embedded {
            file.push_record::<B, _>("teacher", self.model.teacher().clone().into_record())?;
        }
        crate::model::push_students(&mut file, self.model.students())?;
        file.write_atomic(path)?;
        Ok(())
    }
    /// Loads a detector saved by [`Self::save`].
    ///
    /// # Errors
    /// [`StadError::Checkpoint`] for an unreadable or corrupt file;
    /// [`StadError::CheckpointMismatch`] for a file that is not a detector (e.g. a training
    /// checkpoint) or whose weights do not fit the architecture it names.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        let file = CheckpointFile::read(path)?;
        let mismatch = |reason: String| StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason,
        };
        let header: DetectorHeader = serde_json::from_str(&file.header)
            .map_err(|e| mismatch(format!("not a stad detector ({e})")))?;
        if header.kind != DETECTOR_KIND {
            return Err(mismatch(format!(
                "it is a `{}` file, not a detector",
                header.kind
            )));
        }
        let config = header.model;
        config.check()?;
        let teacher = match &config.teacher_weights {
            TeacherWeights::Embedded => config.build_teacher::<B>(device)?,
            _ => file.load_module(
                "teacher",
                FrozenTeacher::new(config.teacher.init(device)?, device)?,
                device,
                path,
            )?,
        };
        let students = crate::model::load_students(&file, &config, device, path)?;
        Ok(Self {
            model: StudentTeacher::from_parts(config, teacher, students),
            threshold: header.threshold,
            threshold_source: header.threshold_source,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }
}
