//! Evaluation of a model on a labelled test set with stad-metrics.
//!
//! Image AUROC from image scores (max of each map); pixel AUROC and AU-PRO (to FPR 0.3) over
//! the maps of the images that have masks; the image-level F1-optimal threshold (the thesis'
//! choice when labelled data exists) and, at that threshold, Dice and IoU of `map ≥ t`.

use std::time::Instant;

use burn::prelude::*;
use stad_data::{BatchLoader, HostBatch, Label, LoaderConfig, Sample};

use crate::error::{Result, StadError};
use crate::model::StudentTeacher;

pub use stad_metrics::{AU_PRO_LIMIT, Evaluation};

/// Maps and scores of a test set, kept on the host.
#[derive(Debug, Clone, Default)]
pub struct TestOutputs {
    /// Image scores, in sample order.
    pub scores: Vec<f32>,
    /// `true` for anomalous images.
    pub labels: Vec<bool>,
    /// Defect types (`good` for nominal).
    pub defects: Vec<String>,
    /// Image names (paths), in sample order.
    pub names: Vec<String>,
    /// Maps of the images with masks, `[n, h, w]` flattened.
    pub maps: Vec<f32>,
    /// Their masks (0/1), same layout.
    pub masks: Vec<u8>,
    /// `(n, h, w)` of `maps`.
    pub shape: (usize, usize, usize),
    /// Seconds spent.
    pub seconds: f64,
}

/// Runs `model` over `samples` and keeps scores, maps and masks on the host.
pub fn run_test_set<B: Backend>(
    model: &StudentTeacher<B>,
    samples: Vec<Sample>,
    batch_size: usize,
    device: &B::Device,
) -> Result<TestOutputs> {
    run_test_set_observed(model, samples, batch_size, device, &mut |_, _| {})
}

/// [`run_test_set`], calling `on_batch(images_done, images_total)` after each batch
/// (progress bars).
pub fn run_test_set_observed<B: Backend>(
    model: &StudentTeacher<B>,
    samples: Vec<Sample>,
    batch_size: usize,
    device: &B::Device,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<TestOutputs> {
    let total = samples.len();
    let loader = BatchLoader::new(
        samples,
        model.config().preprocess(),
        LoaderConfig::new().with_batch_size(batch_size),
    )?;
    let started = Instant::now();
    let mut out = TestOutputs::default();
    let (mut h, mut w) = (0, 0);
    // Host batches: masks and labels stay on the host; only the images go to the device.
    for batch in loader.host_batches(0) {
        let mut batch = batch?;
        let images = batch.take_images::<B>(device);
        let HostBatch {
            masks,
            height,
            width,
            labels,
            defects,
            has_mask,
            names,
            ..
        } = batch;
        let n = labels.len();
        (h, w) = (height, width);
        let (scores, maps) = model.score(images)?;
        out.scores.extend(
            scores
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("f32"),
        );
        let maps: Vec<f32> = maps.into_data().convert::<f32>().to_vec().expect("f32");
        out.names.extend(names);
        for i in 0..n {
            out.labels.push(labels[i] == Label::Anomalous);
            out.defects.push(defects[i].clone());
            if has_mask[i] {
                out.maps
                    .extend_from_slice(&maps[i * h * w..(i + 1) * h * w]);
                out.masks.extend(
                    masks[i * h * w..(i + 1) * h * w]
                        .iter()
                        .map(|&m| u8::from(m > 0.5)),
                );
                out.shape.0 += 1;
            }
        }
        on_batch(out.scores.len(), total);
    }
    out.shape.1 = h;
    out.shape.2 = w;
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

impl TestOutputs {
    /// The metrics of these outputs.
    pub fn evaluate(&self) -> Result<Evaluation> {
        if self.scores.is_empty() {
            return Err(StadError::EmptyTestSet);
        }
        let image_auroc = stad_metrics::image_auroc(&self.scores, &self.labels)?;
        let pixel_auroc = stad_metrics::pixel_auroc(&self.maps, &self.masks)?;
        let au_pro = stad_metrics::au_pro(&self.maps, &self.masks, self.shape, AU_PRO_LIMIT)?;
        let image_f1 = stad_metrics::f1_optimal_threshold(&self.scores, &self.labels)?;
        let seg = stad_metrics::segmentation_scores(
            &self.maps,
            &self.masks,
            self.shape,
            image_f1.threshold,
        )?;
        let per_defect = stad_metrics::per_defect_image_auroc(&self.scores, &self.defects, "good")?;
        Ok(Evaluation {
            n_test: self.scores.len(),
            image_auroc,
            pixel_auroc,
            au_pro,
            image_f1,
            dice: seg.dice.global,
            dice_mean_anomalous: seg.dice.mean_over_anomalous,
            iou: seg.iou.global,
            per_defect,
            images_per_second: self.scores.len() as f64 / self.seconds.max(1e-9),
        })
    }
}

/// Runs and evaluates `model` on a labelled test set.
pub fn evaluate<B: Backend>(
    model: &StudentTeacher<B>,
    test: Vec<Sample>,
    batch_size: usize,
    device: &B::Device,
) -> Result<Evaluation> {
    run_test_set(model, test, batch_size, device)?.evaluate()
}
