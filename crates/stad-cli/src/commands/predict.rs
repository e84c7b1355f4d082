//! `stad predict`: score images with a trained run.
//!
//! One JSON line per image on stdout:
//! `{"path", "score", "threshold", "verdict": "anomalous"|"good", "anomalous", "flagged_fraction", "overlay", "mask"}`;
//! in `--out`, `<name>_overlay.png` (heat-map over the image, predicted region outlined) and
//! `<name>_mask.png` (0/255), both at the image's original size.
//!
//! Before anything is scored, every output path is computed: predict refuses to write over
//! an input image (always) and over files that exist already (unless `--overwrite`).

use std::io::Write;
use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use stad::Detector;
use stad::data::Sample;

use crate::args::PredictArgs;
use crate::backend::{BackendJob, run_on};
use crate::error::{CliError, Result};
use crate::progress::Console;
use crate::render::{output_paths, score_and_render, unique_stems};
use crate::run_dir::RunPaths;

/// One line of predict's output.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PredictionLine {
    /// The image, as given.
    pub path: String,
    /// Image score (max of the anomaly map).
    pub score: f64,
    /// The detector's threshold.
    pub threshold: f64,
    /// `"anomalous"` (score ≥ threshold) or `"good"`.
    pub verdict: String,
    /// `score ≥ threshold`.
    pub anomalous: bool,
    /// Fraction of the image's pixels at or above the threshold.
    pub flagged_fraction: f64,
    /// The heat-map overlay PNG.
    pub overlay: String,
    /// The mask PNG.
    pub mask: String,
}

/// Runs `stad predict`, writing JSON lines to `out`; returns them too.
pub fn run(
    args: &PredictArgs,
    console: Console,
    out: &mut dyn Write,
) -> Result<Vec<PredictionLine>> {
    crate::backend::check_available(args.device)?;
    let paths = RunPaths::new(&args.run);
    paths.load()?;
    for image in &args.images {
        if !image.is_file() {
            return Err(CliError::Usage(format!(
                "no such image file: {}",
                image.display()
            )));
        }
    }
    let names: Vec<String> = args
        .images
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let stems = unique_stems(&names);
    crate::paths::check_outputs(
        "predict",
        "--out",
        &args.out,
        &output_paths(&args.out, &stems, true),
        &args.images,
        args.overwrite,
    )?;
    let samples: Vec<Sample> = args.images.iter().map(Sample::nominal_file).collect();
    crate::data::warn_small_images(&samples, console);
    console.info(format!(
        "scoring {} image(s) with {}",
        args.images.len(),
        args.run.display()
    ));
    run_on(
        args.device,
        PredictJob {
            detector: paths.detector(),
            samples,
            stems,
            out_dir: &args.out,
            out,
        },
    )
}

struct PredictJob<'a> {
    detector: PathBuf,
    samples: Vec<Sample>,
    stems: Vec<String>,
    out_dir: &'a std::path::Path,
    out: &'a mut dyn Write,
}

impl BackendJob for PredictJob<'_> {
    type Output = Vec<PredictionLine>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Result<Vec<PredictionLine>> {
        let detector = Detector::<A::InnerBackend>::load(&self.detector, &device)?;
        let mut lines = Vec::with_capacity(self.samples.len());
        let out = self.out;
        score_and_render(
            &detector,
            &self.samples,
            &self.stems,
            self.out_dir,
            true,
            false,
            &device,
            &mut |prediction, rendered| {
                let line = PredictionLine {
                    path: prediction.name.clone(),
                    score: f64::from(prediction.score),
                    threshold: detector.threshold,
                    verdict: if prediction.is_anomalous {
                        "anomalous"
                    } else {
                        "good"
                    }
                    .into(),
                    anomalous: prediction.is_anomalous,
                    flagged_fraction: rendered.flagged_fraction,
                    overlay: rendered.overlay.display().to_string(),
                    mask: rendered
                        .mask
                        .as_ref()
                        .map(|m| m.display().to_string())
                        .unwrap_or_default(),
                };
                let json = serde_json::to_string(&line).expect("lines serialise");
                writeln!(out, "{json}")
                    .and_then(|()| out.flush())
                    .map_err(CliError::io(std::path::Path::new("<stdout>")))?;
                lines.push(line);
                Ok(())
            },
        )?;
        Ok(lines)
    }
}
