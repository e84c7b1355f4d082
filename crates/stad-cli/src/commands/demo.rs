//! `stad demo`: the whole workflow on synthetic data, in a few minutes on a laptop CPU.
//!
//! 1. writes a synthetic "bottle" data set (MVTec AD layout) to `OUT/data/synthetic_object`;
//! 2. trains STFPM, the students ensemble and the Simple Student on it with the embedded
//!    ImageNet teacher (`OUT/runs/<method>`);
//! 3. evaluates each (`OUT/eval/<method>.json`);
//! 4. scores one good and one image per defect type with each (`OUT/predictions/<method>`:
//!    overlays, masks, `predictions.jsonl`);
//! 5. writes the report (`OUT/report/report.md` and plots).
//!
//! It goes through the same code as the `train`, `eval`, `predict` and `report` commands. The
//! demo owns `OUT/data`, `OUT/runs`, `OUT/eval`, `OUT/predictions` and `OUT/report`: a rerun
//! replaces them.

use std::path::{Path, PathBuf};

use stad::data::{DefectKind, SyntheticConfig, SyntheticKind, read_synthetic_marker};

use crate::args::{
    DataArgs, DemoArgs, EvalArgs, FormatArg, MethodArg, PredictArgs, ReportArgs, TrainArgs,
    TrainOptions,
};
use crate::data::open_synthetic;
use crate::error::{CliError, Result};
use crate::progress::Console;

/// The demo's data set: 40 training images, 12 good and 4 per defect type to test, 256².
pub fn demo_data_config() -> SyntheticConfig {
    SyntheticConfig {
        seed: 11,
        kind: SyntheticKind::Object,
        size: 256,
        n_train: 40,
        n_test_good: 12,
        n_test_per_defect: 4,
        defects: DefectKind::ALL.to_vec(),
    }
}

/// What the demo wrote.
#[derive(Debug, Clone)]
pub struct DemoOutputs {
    /// The evaluation JSONs, one per method.
    pub evaluations: Vec<PathBuf>,
    /// The report.
    pub report: PathBuf,
    /// The prediction folders, one per method.
    pub predictions: Vec<PathBuf>,
}

fn replace_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(CliError::io(dir))?;
    }
    Ok(())
}

/// Runs `stad demo`.
pub fn run(args: &DemoArgs, console: Console) -> Result<DemoOutputs> {
    let out = &args.out;
    let data_dir = out.join("data").join("synthetic_object");
    let config = demo_data_config();
    // Reuse the data of an earlier demo only when it is complete and identical.
    if read_synthetic_marker(&data_dir)?.as_ref() != Some(&config) {
        replace_dir(&data_dir)?;
    }
    let data = open_synthetic(&data_dir, &config, console)?;
    // One good test image and the first image of each defect type.
    let mut picks: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for sample in &data.test {
        if seen.insert(sample.defect.clone()) {
            picks.extend(sample.path().map(Path::to_path_buf));
        }
    }

    let mut evaluations = Vec::new();
    let mut predictions = Vec::new();
    let mut summary = Vec::new();
    for method in [MethodArg::Stfpm, MethodArg::Ensemble, MethodArg::Simple] {
        let name = crate::commands::train::method_kind(method).name();
        console.info(format!("\n== {name} =="));
        let run_dir = out.join("runs").join(name);
        replace_dir(&run_dir)?;
        let info = crate::commands::train::run(
            &TrainArgs {
                method,
                data: DataArgs {
                    data: Some(data_dir.clone()),
                    format: Some(FormatArg::Mvtec),
                    ..DataArgs::default()
                },
                out: run_dir.clone(),
                resume: false,
                options: TrainOptions {
                    backbone: None,
                    tf_padding: false,
                    weights: None,
                    random_teacher: false,
                    epochs: args.epochs,
                    batch_size: 8,
                    lr: 0.4,
                    seed: 42,
                    students: None,
                    student: None,
                    image_size: args.image_size,
                    device: args.device,
                    teacher_cache_mb: 4096,
                },
            },
            console,
        )?;
        let json = out.join("eval").join(format!("{name}.json"));
        std::fs::create_dir_all(out.join("eval")).map_err(CliError::io(&out.join("eval")))?;
        let record = crate::commands::eval::run(
            &EvalArgs {
                run: run_dir.clone(),
                // The run's own data.
                data: DataArgs::default(),
                json: json.clone(),
                heatmaps: None,
                overwrite: false,
                batch_size: 16,
                device: args.device,
            },
            console,
        )?;
        let predict_dir = out.join("predictions").join(name);
        replace_dir(&predict_dir)?;
        std::fs::create_dir_all(&predict_dir).map_err(CliError::io(&predict_dir))?;
        let lines_path = predict_dir.join("predictions.jsonl");
        let mut lines = Vec::new();
        crate::commands::predict::run(
            &PredictArgs {
                run: run_dir,
                images: picks.clone(),
                out: predict_dir.clone(),
                overwrite: false,
                device: args.device,
            },
            console,
            &mut lines,
        )?;
        crate::run_dir::write_atomic(&lines_path, &lines)?;
        summary.push((name, info.train_seconds, record));
        evaluations.push(json);
        predictions.push(predict_dir);
    }
    let report_dir = out.join("report");
    let files = crate::commands::report::run(
        &ReportArgs {
            json: evaluations.clone(),
            out: report_dir,
        },
        console,
    )?;

    console.info(format!(
        "\n{:<10} {:>11} {:>11} {:>7} {:>6} {:>9}",
        "method", "image AUROC", "pixel AUROC", "AU-PRO", "Dice", "train (s)"
    ));
    for (name, seconds, r) in &summary {
        console.info(format!(
            "{name:<10} {:>11.3} {:>11.3} {:>7.3} {:>6.3} {seconds:>9.1}",
            r.evaluation.image_auroc,
            r.evaluation.pixel_auroc,
            r.evaluation.au_pro,
            r.evaluation.dice
        ));
    }
    console.info(format!(
        "\nreport:      {}\noverlays:    {}/<method>/*_overlay.png\nruns:        {}/<method> \
         (try: stad predict --run {}/stfpm IMAGE... --out DIR)",
        files.markdown.display(),
        out.join("predictions").display(),
        out.join("runs").display(),
        out.join("runs").display(),
    ));
    Ok(DemoOutputs {
        evaluations,
        report: files.markdown,
        predictions,
    })
}
