//! `stad benchmark`: every method on every MVTec AD category under a root, trained with the
//! thesis' hyper-parameters by default, evaluated, reported, and compared with the thesis'
//! published table.
//!
//! ```text
//! OUT/
//!   runs/CATEGORY/METHOD/     `stad train` run folders (checkpoints, detector, run.json)
//!   eval/CATEGORY/METHOD.json `stad eval` records
//!   report/                   `stad report` over every record (tables, ROC and score plots)
//!   benchmark.md              the published values beside stad's (image AUROC, Dice)
//!   benchmark.json, .csv      the same rows, machine-readable
//! ```
//!
//! A (category, method) pair is **done** when its evaluation record exists, is valid, and its
//! run was trained with the settings asked for; a rerun skips it. A finished run without a
//! record is evaluated; an interrupted training resumes from its `last.ckpt` (`stad train
//! --resume`, which refuses a run of other settings, naming what changed). A pair that fails
//! is reported and the benchmark goes on with the others; the command then exits with an
//! error listing them, and a rerun retries only them. It goes through the same code as the
//! `train`, `eval` and `report` commands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use stad_viz::{EvalRecord, PairOutcome, PairStatus};

use crate::args::{
    BenchmarkArgs, DataArgs, EvalArgs, FormatArg, MethodArg, TrainArgs, TrainOptions,
};
use crate::error::{CliError, Result};
use crate::progress::Console;
use crate::run_dir::{RunInfo, RunPaths};

/// What a benchmark did.
#[derive(Debug, Clone)]
pub struct BenchmarkOutcome {
    /// Every planned pair, in plan order.
    pub pairs: Vec<PairOutcome>,
    /// The comparison files (`benchmark.md`, `.json`, `.csv`).
    pub comparison: stad_viz::ComparisonFiles,
    /// The report (`report/report.md`), when at least one pair is done.
    pub report: Option<PathBuf>,
}

/// One (category, method) pair of the plan and its files.
struct Pair {
    category: String,
    method: MethodArg,
    run_dir: PathBuf,
    eval_json: PathBuf,
}

impl Pair {
    fn name(&self) -> String {
        format!("{}/{}", self.category, method_name(self.method))
    }
}

fn method_name(method: MethodArg) -> &'static str {
    crate::commands::train::method_kind(method).name()
}

/// The `stad train` arguments of one pair.
fn train_args(args: &BenchmarkArgs, category: &str, method: MethodArg, out: &Path) -> TrainArgs {
    TrainArgs {
        method,
        data: DataArgs {
            data: Some(args.root.join(category)),
            format: Some(FormatArg::Mvtec),
            ..DataArgs::default()
        },
        out: out.to_path_buf(),
        resume: false,
        options: TrainOptions {
            students: args
                .options
                .students
                .filter(|_| method == MethodArg::Ensemble),
            student: args
                .options
                .student
                .filter(|_| method == MethodArg::Decoupled),
            ..args.options.clone()
        },
    }
}

/// The categories to run, and every category under the root.
fn categories(args: &BenchmarkArgs) -> Result<(Vec<String>, Vec<String>)> {
    let under_root = stad::data::list_categories(&args.root)?;
    if under_root.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no MVTec AD category (a folder with a train/ folder): pass the folder \
             that holds bottle/, cable/, …",
            args.root.display()
        )));
    }
    if args.categories.is_empty() {
        return Ok((under_root.clone(), under_root));
    }
    let mut selected = Vec::new();
    for c in &args.categories {
        if !under_root.contains(c) {
            return Err(CliError::Usage(format!(
                "--categories {c}: no such category under {} (it has {})",
                args.root.display(),
                under_root.join(", ")
            )));
        }
        if !selected.contains(c) {
            selected.push(c.clone());
        }
    }
    Ok((selected, under_root))
}

/// The run's `run.json` when it is finished with exactly `train`'s settings.
fn finished_run(pair: &Pair, train: &TrainArgs) -> Option<RunInfo> {
    let info = RunPaths::new(&pair.run_dir).load().ok()?;
    let (model, _) = crate::commands::train::model_config(train).ok()?;
    let config = crate::commands::train::train_config(train).ok()?;
    (info.model == model && info.train == config).then_some(info)
}

/// The pair's record, when it exists, is valid and belongs to the pair.
fn existing_record(pair: &Pair) -> Option<EvalRecord> {
    if !pair.eval_json.is_file() {
        return None;
    }
    let record = stad_viz::read_records(std::slice::from_ref(&pair.eval_json))
        .ok()?
        .pop()?;
    (record.category == pair.category && record.method == method_name(pair.method))
        .then_some(record)
}

fn mean_epoch_seconds(info: &RunInfo) -> Option<f64> {
    (!info.history.is_empty())
        .then(|| info.history.iter().map(|e| e.seconds).sum::<f64>() / info.history.len() as f64)
}

/// Where a pair stands before the benchmark works on it (read once per pair).
enum PairState {
    /// Its record exists and its run has the asked settings.
    Done(Box<(EvalRecord, RunInfo)>),
    /// Its run is finished with the asked settings; the record is missing.
    Trained(Box<RunInfo>),
    /// It needs training (from scratch, or resumed from `last.ckpt`).
    Untrained,
}

impl PairState {
    fn of(pair: &Pair, train: &TrainArgs) -> Self {
        match (finished_run(pair, train), existing_record(pair)) {
            (Some(info), Some(record)) => Self::Done(Box::new((record, info))),
            (Some(info), None) => Self::Trained(Box::new(info)),
            (None, _) => Self::Untrained,
        }
    }
}

/// Trains (or resumes) and evaluates one pair; `finished` is its run when it needs no
/// training.
fn run_pair(
    pair: &Pair,
    train: &TrainArgs,
    finished: Option<RunInfo>,
    console: Console,
) -> Result<(EvalRecord, RunInfo)> {
    let info = match finished {
        Some(info) => info,
        None => {
            // A record of an earlier training of this folder no longer describes it.
            if pair.eval_json.is_file() {
                std::fs::remove_file(&pair.eval_json).map_err(CliError::io(&pair.eval_json))?;
            }
            let resume = pair.run_dir.join("last.ckpt").is_file();
            if resume {
                console.info(format!(
                    "{}: resuming from {}",
                    pair.name(),
                    pair.run_dir.join("last.ckpt").display()
                ));
            }
            crate::commands::train::run(
                &TrainArgs {
                    resume,
                    ..train.clone()
                },
                console,
            )?
        }
    };
    if let Some(parent) = pair.eval_json.parent() {
        std::fs::create_dir_all(parent).map_err(CliError::io(parent))?;
    }
    let record = crate::commands::eval::run(
        &EvalArgs {
            run: pair.run_dir.clone(),
            data: DataArgs::default(),
            json: pair.eval_json.clone(),
            heatmaps: None,
            overwrite: false,
            batch_size: 16,
            device: train.options.device,
        },
        console,
    )?;
    Ok((record, info))
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// Runs `stad benchmark`.
///
/// # Errors
/// Before anything runs: an unusable root, an unknown `--categories` name, settings `stad
/// train` refuses, `--out` inside the root. After the plan ran:
/// [`CliError::BenchmarkFailed`] naming the pairs that failed (the others are reported).
pub fn run(args: &BenchmarkArgs, console: Console) -> Result<BenchmarkOutcome> {
    crate::backend::check_available(args.options.device)?;
    if args.methods.is_empty() {
        return Err(CliError::Usage("--methods names no method".into()));
    }
    if crate::paths::out_inside_data(&args.out, &args.root) {
        return Err(CliError::Usage(format!(
            "--out {} is inside --root {}: choose a folder outside the data",
            args.out.display(),
            args.root.display()
        )));
    }
    let (selected, under_root) = categories(args)?;
    let mut methods: Vec<MethodArg> = Vec::new();
    for &m in &args.methods {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    // Settings are checked once, before any training: every pair would refuse them alike.
    let mut teacher = String::new();
    for &m in &methods {
        let train = train_args(args, &selected[0], m, &args.out);
        teacher = crate::commands::train::model_config(&train)?.1;
        crate::commands::train::train_config(&train)?;
    }
    if args.options.weights.is_none()
        && !args.options.random_teacher
        && args.options.backbone.is_none()
    {
        console.warn(
            "the teacher is the embedded ImageNet MobileNetV2; the thesis' table is for an \
             ImageNet ResNet18 teacher (--backbone resnet18 --weights FILE)",
        );
    }

    let plan: Vec<Pair> = selected
        .iter()
        .flat_map(|c| {
            methods.iter().map(move |&m| Pair {
                category: c.clone(),
                method: m,
                run_dir: args.out.join("runs").join(c).join(method_name(m)),
                eval_json: args
                    .out
                    .join("eval")
                    .join(c)
                    .join(format!("{}.json", method_name(m))),
            })
        })
        .collect();
    let total = plan.len();
    let mut outcomes: Vec<PairOutcome> = Vec::with_capacity(total);
    let mut failed: Vec<String> = Vec::new();
    let mut worked_seconds = 0.0;
    let mut worked = 0usize;
    let mut states: Vec<Option<PairState>> = plan
        .iter()
        .map(|p| {
            Some(PairState::of(
                p,
                &train_args(args, &p.category, p.method, &p.run_dir),
            ))
        })
        .collect();
    let is_done = |s: &Option<PairState>| matches!(s, Some(PairState::Done(..)));
    let already_done = states.iter().filter(|s| is_done(s)).count();
    console.info(format!(
        "benchmark: {} categor{} × {} method(s) = {total} pair(s), {already_done} done already; \
         teacher {teacher}; {} epochs, batch {}, {}², lr {}",
        selected.len(),
        if selected.len() == 1 { "y" } else { "ies" },
        methods.len(),
        args.options.epochs,
        args.options.batch_size,
        args.options.image_size,
        args.options.lr
    ));
    for (i, pair) in plan.iter().enumerate() {
        let to_do = states[i..].iter().filter(|s| !is_done(s)).count();
        let finished = match states[i].take().expect("each pair's state is taken once") {
            PairState::Done(done) => {
                let (record, info) = *done;
                console.info(format!("[{}/{total}] {}: done", i + 1, pair.name()));
                outcomes.push(PairOutcome {
                    category: pair.category.clone(),
                    method: method_name(pair.method).into(),
                    status: PairStatus::Done,
                    record: Some(record),
                    seconds_per_epoch: mean_epoch_seconds(&info),
                });
                continue;
            }
            PairState::Trained(info) => Some(*info),
            PairState::Untrained => None,
        };
        let train = train_args(args, &pair.category, pair.method, &pair.run_dir);
        let eta = (worked > 0).then(|| duration(worked_seconds / worked as f64 * to_do as f64));
        console.info(format!(
            "\n[{}/{total}] {}: {} ({} done, {to_do} to do{})",
            i + 1,
            pair.name(),
            if finished.is_some() {
                "evaluating"
            } else {
                "training and evaluating"
            },
            outcomes
                .iter()
                .filter(|o| o.status == PairStatus::Done)
                .count(),
            eta.map_or_else(String::new, |e| format!(", about {e} left"))
        ));
        let started = Instant::now();
        let result = run_pair(pair, &train, finished, console);
        worked_seconds += started.elapsed().as_secs_f64();
        worked += 1;
        match result {
            Ok((record, info)) => outcomes.push(PairOutcome {
                category: pair.category.clone(),
                method: method_name(pair.method).into(),
                status: PairStatus::Done,
                record: Some(record),
                seconds_per_epoch: mean_epoch_seconds(&info),
            }),
            Err(e) => {
                let hint = e
                    .hint()
                    .map_or_else(String::new, |h| format!(" (hint: {h})"));
                console.warn(format!("{} failed: {e}{hint}", pair.name()));
                failed.push(format!("{}: {e}", pair.name()));
                outcomes.push(PairOutcome {
                    category: pair.category.clone(),
                    method: method_name(pair.method).into(),
                    status: PairStatus::Failed,
                    record: None,
                    seconds_per_epoch: None,
                });
            }
        }
    }

    let records: Vec<EvalRecord> = outcomes.iter().filter_map(|o| o.record.clone()).collect();
    let report = if records.is_empty() {
        None
    } else {
        Some(stad_viz::write_report(&records, &args.out.join("report"))?.markdown)
    };
    let rows = stad_viz::comparison_rows(&outcomes, &stad_viz::published_results(), &under_root);
    let setup = format!(
        "teacher {teacher}; {} epochs, batch {}, input {}², SGD lr {} (momentum 0.9, weight \
         decay 1e-4), seed {}{}",
        args.options.epochs,
        args.options.batch_size,
        args.options.image_size,
        args.options.lr,
        args.options.seed,
        if methods.contains(&MethodArg::Ensemble) {
            format!(
                ", {} ensemble students",
                args.options
                    .students
                    .unwrap_or(stad::methods::ensemble::DEFAULT_STUDENTS)
            )
        } else {
            String::new()
        }
    );
    let comparison = stad_viz::write_comparison(&rows, &setup, &args.out)?;
    console.info(format!(
        "\ncomparison with the thesis: {}{}",
        comparison.markdown.display(),
        report
            .as_ref()
            .map_or_else(String::new, |r| format!("; report: {}", r.display()))
    ));
    if !failed.is_empty() {
        return Err(CliError::BenchmarkFailed { failed });
    }
    Ok(BenchmarkOutcome {
        pairs: outcomes,
        comparison,
        report,
    })
}
