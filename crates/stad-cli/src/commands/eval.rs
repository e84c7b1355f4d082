//! `stad eval`: metrics of a trained run on a labelled test set, as JSON.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use stad::Detector;
use stad::data::Sample;
use stad::evaluate::run_test_set_observed;
use stad_viz::{EvalRecord, ImageScore};

use crate::args::EvalArgs;
use crate::backend::{BackendJob, run_on};
use crate::data::DataSpec;
use crate::error::{CliError, Result};
use crate::progress::Console;
use crate::render::{score_and_render, unique_stems};
use crate::run_dir::{RunInfo, RunPaths};

/// Runs `stad eval`: writes the metrics to `--json` and returns them.
pub fn run(args: &EvalArgs, console: Console) -> Result<EvalRecord> {
    crate::backend::check_available(args.device)?;
    let paths = RunPaths::new(&args.run);
    let info = paths.load()?;
    let spec = DataSpec::from_args(&args.data, Some(&info.data))?;
    let data = spec.open(console)?;
    if data.test.is_empty() {
        return Err(CliError::Usage(format!(
            "{} has no test images to evaluate on",
            spec.dir.display()
        )));
    }
    if args.batch_size == 0 {
        return Err(CliError::Usage("--batch-size must be at least 1".into()));
    }
    console.info(format!(
        "evaluating the {} run {} on {} test images of {}",
        info.method,
        args.run.display(),
        data.test.len(),
        data.name
    ));
    let record = run_on(
        args.device,
        EvalJob {
            info: &info,
            category: data.name.clone(),
            detector: paths.detector(),
            test: data.test,
            batch_size: args.batch_size,
            heatmaps: args.heatmaps.clone(),
            console,
        },
    )?;
    stad_viz::write_record(&record, &args.json)?;
    console.info(format!(
        "{} on {}: image AUROC {:.3}, pixel AUROC {:.3}, AU-PRO {:.3}, image F1 {:.3}, Dice {:.3} \
         ({:.1} img/s) -> {}",
        record.method,
        record.category,
        record.image_auroc,
        record.pixel_auroc,
        record.au_pro,
        record.image_f1,
        record.dice,
        record.images_per_second,
        args.json.display()
    ));
    if let Some(dir) = &args.heatmaps {
        console.info(format!("heat-maps in {}", dir.display()));
    }
    Ok(record)
}

struct EvalJob<'a> {
    info: &'a RunInfo,
    category: String,
    detector: PathBuf,
    test: Vec<Sample>,
    batch_size: usize,
    heatmaps: Option<PathBuf>,
    console: Console,
}

impl BackendJob for EvalJob<'_> {
    type Output = EvalRecord;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Result<EvalRecord> {
        let detector = Detector::<A::InnerBackend>::load(&self.detector, &device)?;
        let bar = self.console.image_bar(self.test.len(), "eval");
        let outputs = run_test_set_observed(
            &detector.model,
            self.test.clone(),
            self.batch_size,
            &device,
            &mut |done, _| bar.set_position(done as u64),
        );
        bar.finish_and_clear();
        let outputs = outputs?;
        let eval = outputs.evaluate()?;
        let scores = outputs
            .names
            .iter()
            .zip(&outputs.defects)
            .zip(&outputs.labels)
            .zip(&outputs.scores)
            .map(|(((name, defect), &anomalous), &score)| ImageScore {
                name: name.clone(),
                defect: defect.clone(),
                anomalous,
                score: f64::from(score),
            })
            .collect();
        let record = EvalRecord {
            method: self.info.method.clone(),
            category: self.category,
            teacher: self.info.teacher.clone(),
            n_test: eval.n_test,
            image_auroc: eval.image_auroc,
            pixel_auroc: eval.pixel_auroc,
            au_pro: eval.au_pro,
            image_f1: eval.image_f1.f1,
            image_precision: eval.image_f1.precision,
            image_recall: eval.image_f1.recall,
            image_threshold: eval.image_f1.threshold,
            dice: eval.dice,
            dice_mean_anomalous: eval.dice_mean_anomalous,
            iou: eval.iou,
            per_defect: eval.per_defect,
            images_per_second: eval.images_per_second,
            detector_threshold: detector.threshold,
            detector_threshold_source: crate::commands::train::threshold_words(
                detector.threshold_source,
                self.info.n_holdout,
            ),
            scores,
        };
        if let Some(dir) = &self.heatmaps {
            let names: Vec<String> = self.test.iter().map(Sample::name).collect();
            let stems = unique_stems(&names);
            let bar = self.console.image_bar(self.test.len(), "heat-maps");
            let result = score_and_render(
                &detector,
                &self.test,
                &stems,
                dir,
                false,
                true,
                &device,
                &mut |_, _| {
                    bar.inc(1);
                    Ok(())
                },
            );
            bar.finish_and_clear();
            result?;
        }
        Ok(record)
    }
}
