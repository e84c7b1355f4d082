//! `stad eval`: metrics of a trained run on a labelled test set, as JSON.
//!
//! `--json` is always (re)written, but never over one of eval's inputs (the run's files, the
//! test images and masks). `--heatmaps DIR` must lie outside the data set, and heat-maps that
//! exist there already are refused unless `--overwrite`; both are checked before scoring.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use stad::Detector;
use stad::TestOutputs;
use stad::data::{ImageSource, Label, MaskSource, Sample};
use stad::run_test_set_observed;
use stad_viz::{EvalRecord, ImageScore};

use crate::args::EvalArgs;
use crate::backend::{BackendJob, run_on};
use crate::data::DataSpec;
use crate::error::{CliError, Result};
use crate::progress::Console;
use crate::render::{output_paths, score_and_render, unique_stems};
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
    let inputs = input_files(&paths, &data.test);
    if let Some((_, input)) =
        crate::paths::outputs_that_are_inputs(std::slice::from_ref(&args.json), &inputs).first()
    {
        let also = if *input == args.json.as_path() {
            String::new()
        } else {
            format!(" ({})", input.display())
        };
        return Err(CliError::Usage(format!(
            "--json {} is one of eval's inputs{also}: choose another file for the metrics",
            args.json.display(),
        )));
    }
    let heatmap_stems = match &args.heatmaps {
        Some(dir) => {
            check_outside_data(dir, &spec)?;
            let names: Vec<String> = data.test.iter().map(Sample::name).collect();
            let stems = unique_stems(&names);
            crate::paths::check_outputs(
                "eval",
                "--heatmaps",
                dir,
                &output_paths(dir, &stems, false),
                &inputs,
                args.overwrite,
            )?;
            stems
        }
        None => Vec::new(),
    };
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
            heatmap_stems,
            console,
        },
    )?;
    stad_viz::write_record(&record, &args.json)?;
    console.info(format!(
        "{} on {}: image AUROC {:.3}, pixel AUROC {:.3}, AU-PRO {:.3}, image F1 {:.3}, Dice {:.3} \
         ({:.1} img/s) -> {}",
        record.method,
        record.category,
        record.evaluation.image_auroc,
        record.evaluation.pixel_auroc,
        record.evaluation.au_pro,
        record.evaluation.image_f1.f1,
        record.evaluation.dice,
        record.evaluation.images_per_second,
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
    heatmap_stems: Vec<String>,
    console: Console,
}

/// The files eval reads: the run's `run.json` and `detector.stad`, the test images and masks.
fn input_files(run: &RunPaths, test: &[Sample]) -> Vec<PathBuf> {
    let mut files = vec![run.info(), run.detector()];
    for sample in test {
        if let ImageSource::File(p) = &sample.image {
            files.push(p.clone());
        }
        if let MaskSource::File(p) = &sample.mask {
            files.push(p.clone());
        }
    }
    files
}

/// Refuses a `--heatmaps` folder inside one of the data set's folders (the data folder, and
/// for `--format folder` the `--abnormal` and `--masks` folders): the overlays would be
/// scanned as images of the data set on the next run.
fn check_outside_data(heatmaps: &Path, spec: &DataSpec) -> Result<()> {
    let folders = std::iter::once(&spec.dir)
        .chain(spec.abnormal.as_ref())
        .chain(spec.masks.as_ref());
    for folder in folders {
        if crate::paths::out_inside_data(heatmaps, folder) {
            return Err(CliError::Usage(format!(
                "--heatmaps {} lies inside the data set's folder {}: the overlays would become \
                 part of the data set; choose a folder outside it",
                heatmaps.display(),
                folder.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a test set whose anomalous images have no defect pixel in their masks with that
/// cause (the metrics alone would only see "no anomalous pixel").
fn check_masks(outputs: &TestOutputs, test: &[Sample]) -> Result<()> {
    let anomalous = test.iter().filter(|s| s.label == Label::Anomalous);
    let n_anomalous = anomalous.clone().count();
    if n_anomalous == 0 || outputs.masks.iter().any(|&m| m > 0) {
        // No anomalous image is the image metrics' error; defect pixels: nothing to say.
        return Ok(());
    }
    let with_mask = anomalous.filter(|s| s.has_mask()).count();
    let (_, h, w) = outputs.shape;
    Err(CliError::Usage(if with_mask == 0 {
        format!(
            "none of the {n_anomalous} anomalous test images has a ground-truth mask: pixel \
             metrics need masks with defect pixels (--format folder: --masks DIR)"
        )
    } else {
        format!(
            "the {with_mask} anomalous images' ground-truth masks are all empty (no defect pixel \
             at the network's {w}×{h} input size): pixel metrics need masks with defect pixels \
             (non-zero where the defect is)"
        )
    }))
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
        check_masks(&outputs, &self.test)?;
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
            evaluation: eval,
            detector_threshold: detector.threshold,
            detector_threshold_source: crate::commands::train::threshold_words(
                detector.threshold_source,
                self.info.n_holdout,
            ),
            scores,
        };
        if let Some(dir) = &self.heatmaps {
            let bar = self.console.image_bar(self.test.len(), "heat-maps");
            let result = score_and_render(
                &detector,
                &self.test,
                &self.heatmap_stems,
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
