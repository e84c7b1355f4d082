//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// Student–teacher anomaly detection: train on defect-free images, then score every pixel of
/// new ones.
#[derive(Debug, Parser)]
#[command(
    name = "stad",
    version,
    about,
    after_help = "Start with `stad demo`: it trains all three methods on synthetic data in a few minutes \
                  and writes a report. Every command has its own --help."
)]
pub struct Cli {
    /// No progress bars or status lines (errors and requested output only): for scripts and CI.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a method on the defect-free training images and calibrate its threshold.
    Train(TrainArgs),
    /// Evaluate a trained run on a labelled test set and write the metrics as JSON.
    Eval(EvalArgs),
    /// Score images with a trained run: a JSON line per image, heat-map overlays and masks.
    Predict(PredictArgs),
    /// Turn evaluation JSON files into Markdown tables and PNG plots.
    Report(ReportArgs),
    /// Synthetic data, all three methods trained briefly, evaluated and reported.
    Demo(DemoArgs),
    /// Check a backend against the CPU reference and measure its speed (a new machine, a GPU).
    Selftest(crate::commands::selftest::SelftestArgs),
    /// Train and evaluate every method on every MVTec AD category under a root, resumably,
    /// and compare with the thesis' published table.
    Benchmark(BenchmarkArgs),
}

/// The student–teacher method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// STFPM: one student with the teacher's architecture.
    Stfpm,
    /// Students ensemble: error of the mean student plus the students' variance.
    Ensemble,
    /// Simple Student: STFPM with a bottlenecked (narrower) student.
    Simple,
    /// Decoupled student: STFPM with a student of another architecture (--student) and
    /// learned 1×1 adapters to the teacher's widths.
    Decoupled,
}

/// How the data folder is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatArg {
    /// One MVTec AD category: train/good, test/DEFECT, ground_truth/DEFECT.
    Mvtec,
    /// A folder of defect-free images (+ optional --abnormal and --masks folders).
    Folder,
    /// stad's synthetic data set, written into DIR in MVTec's layout when DIR does not exist.
    Synthetic,
}

/// Teacher (and student) architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackboneArg {
    /// ResNet18, taps layer1/2/3 (the thesis' teacher).
    Resnet18,
    /// ResNet34, taps layer1/2/3.
    Resnet34,
    /// ResNet50, taps layer1/2/3.
    Resnet50,
    /// Wide ResNet50-2, taps layer1/2/3.
    #[value(name = "wide_resnet50_2")]
    WideResnet50_2,
    /// MobileNetV2, taps features 3/6/13 (the embedded ImageNet teacher).
    #[value(name = "mobilenet_v2")]
    MobilenetV2,
}

/// Where the networks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CPU, burn's flex backend (the fast CPU backend).
    Cpu,
    /// CPU, burn's ndarray backend.
    Ndarray,
    /// NVIDIA GPU 0 through CUDA (a build with `--features cuda`).
    Cuda,
}

/// The synthetic scene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyntheticKindArg {
    /// A bottle mouth seen from above.
    #[default]
    Object,
    /// A wood surface.
    Texture,
}

/// Where the images come from.
#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// The data folder (an MVTec AD category such as mvtec_ad/bottle, see --format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Layout of --data.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// --format folder: folder of anomalous test images (defect types may be sub-folders).
    #[arg(long, value_name = "DIR")]
    pub abnormal: Option<PathBuf>,
    /// --format folder: folder of the anomalous images' masks (same file stem).
    #[arg(long, value_name = "DIR")]
    pub masks: Option<PathBuf>,
    /// --format synthetic: the scene to generate.
    #[arg(long, value_enum, default_value = "object")]
    pub synthetic_kind: SyntheticKindArg,
}

/// `stad train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The method.
    #[arg(long, value_enum)]
    pub method: MethodArg,
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// The run folder: checkpoints, the trained detector and run.json go there.
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint (same settings; --epochs may grow).
    #[arg(long)]
    pub resume: bool,
    /// The teacher, the students and the hyper-parameters.
    #[command(flatten)]
    pub options: TrainOptions,
}

/// What `stad train` and `stad benchmark` share: the teacher, the students and the
/// hyper-parameters (defaults: the thesis').
#[derive(Debug, Clone, Args)]
pub struct TrainOptions {
    /// Teacher architecture. Default: mobilenet_v2 with the embedded ImageNet weights, or
    /// resnet18 with --weights / --random-teacher.
    #[arg(long, value_enum)]
    pub backbone: Option<BackboneArg>,
    /// MobileNetV2 weights ported from TensorFlow need TF "same" padding on stride-2 convs.
    #[arg(long)]
    pub tf_padding: bool,
    /// Teacher weights: a torchvision state dict (.pth, .pt or .safetensors) of --backbone.
    #[arg(long, value_name = "FILE", conflicts_with = "random_teacher")]
    pub weights: Option<PathBuf>,
    /// A randomly initialised teacher. A control only: its results are meaningless.
    #[arg(long)]
    pub random_teacher: bool,
    /// Training epochs (the official STFPM code: 100).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// SGD learning rate (momentum 0.9, weight decay 1e-4).
    #[arg(long, default_value_t = 0.4)]
    pub lr: f64,
    /// Seed of the students' initialisation, the shuffles and the hold-out split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Students of the ensemble (method ensemble only). Default: 3.
    #[arg(long)]
    pub students: Option<usize>,
    /// The decoupled student's architecture (method decoupled only; its taps must have the
    /// teacher's strides). Default: mobilenet_v2.
    #[arg(long, value_enum)]
    pub student: Option<BackboneArg>,
    /// Side of the square network input, in pixels.
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Where the networks run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Memory for the teacher's features, MiB: computed once per image and reused every epoch
    /// while they fit (ResNet18 at 224²: 1.4 MB an image); 0 recomputes them every epoch.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    pub teacher_cache_mb: usize,
}

/// `stad eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The run folder written by `stad train`.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The data (default: the data the run was trained on; its test split is used).
    #[command(flatten)]
    pub data: DataArgs,
    /// Where the metrics go (JSON).
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Also write a heat-map overlay of every test image (NAME_overlay.png) into this folder,
    /// which must lie outside the data set. Files there of the same names are refused unless
    /// --overwrite.
    #[arg(long, value_name = "DIR")]
    pub heatmaps: Option<PathBuf>,
    /// Replace heat-maps that exist in --heatmaps already (--json is always rewritten).
    #[arg(long, requires = "heatmaps")]
    pub overwrite: bool,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Where the networks run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// `stad predict`.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The run folder written by `stad train`.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Images to score (PNG, JPEG, BMP, TIFF).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// Folder for the overlays (NAME_overlay.png) and masks (NAME_mask.png). Files there of
    /// the same names are refused unless --overwrite; an input image never is overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace overlays and masks that exist in --out already (never an input image).
    #[arg(long)]
    pub overwrite: bool,
    /// Where the networks run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// `stad report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Evaluation files written by `stad eval --json`.
    #[arg(value_name = "JSON", required = true)]
    pub json: Vec<PathBuf>,
    /// Folder for report.md and the plots.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `stad demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, value_name = "DIR", default_value = "stad-demo")]
    pub out: PathBuf,
    /// Training epochs of each method.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Side of the square network input, in pixels.
    #[arg(long, default_value_t = 96)]
    pub image_size: usize,
    /// Where the networks run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// `stad benchmark`.
#[derive(Debug, Clone, Args)]
pub struct BenchmarkArgs {
    /// The MVTec AD root: every sub-folder with a train/ folder is a category.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Where the runs (runs/CATEGORY/METHOD), evaluations (eval/CATEGORY/METHOD.json), the
    /// report (report/) and the comparison (benchmark.md, .json, .csv) go. A rerun into the
    /// same folder skips finished pairs and resumes an interrupted training.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The methods, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stfpm,ensemble,simple"
    )]
    pub methods: Vec<MethodArg>,
    /// The categories, comma-separated (default: every category under --root).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub categories: Vec<String>,
    /// The teacher, the students and the hyper-parameters (as `stad train`; the thesis:
    /// --backbone resnet18 --weights FILE). --students and --student apply to the ensemble
    /// and the decoupled student.
    #[command(flatten)]
    pub options: TrainOptions,
}
