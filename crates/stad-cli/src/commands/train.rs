//! `stad train`: train a method, calibrate its threshold on held-out nominal images, save the
//! detector and `run.json`.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use stad::DEFAULT_NOMINAL_QUANTILE;
use stad::backbones::{BackboneConfig, MobileNetV2Config, ResNetArch, ResNetConfig};
use stad::data::Sample;
use stad::{Detector, MethodConfig, MethodKind, ModelConfig, RunDir, TeacherWeights, TrainConfig};

use crate::args::{BackboneArg, MethodArg, TrainArgs};
use crate::backend::{BackendJob, describe, run_on};
use crate::data::DataSpec;
use crate::error::{CliError, Result};
use crate::progress::{Console, TrainProgress};
use crate::run_dir::{RunInfo, RunPaths};

/// The method of `arg`.
pub fn method_kind(arg: MethodArg) -> MethodKind {
    match arg {
        MethodArg::Stfpm => MethodKind::Stfpm,
        MethodArg::Ensemble => MethodKind::Ensemble,
        MethodArg::Simple => MethodKind::SimpleStudent,
        MethodArg::Decoupled => MethodKind::Decoupled,
    }
}

fn backbone(arg: BackboneArg, tf_padding: bool) -> Result<BackboneConfig> {
    let resnet = |arch| {
        if tf_padding {
            return Err(CliError::Usage(
                "--tf-padding applies to --backbone mobilenet_v2 only".into(),
            ));
        }
        Ok(BackboneConfig::ResNet(ResNetConfig::new(arch)))
    };
    match arg {
        BackboneArg::Resnet18 => resnet(ResNetArch::ResNet18),
        BackboneArg::Resnet34 => resnet(ResNetArch::ResNet34),
        BackboneArg::Resnet50 => resnet(ResNetArch::ResNet50),
        BackboneArg::WideResnet50_2 => resnet(ResNetArch::WideResNet50_2),
        BackboneArg::MobilenetV2 => Ok(BackboneConfig::MobileNetV2(
            MobileNetV2Config::new().with_tf_padding(tf_padding),
        )),
    }
}

/// The model the arguments describe, and the teacher in words.
///
/// Without `--weights` the teacher is the embedded ImageNet MobileNetV2; `--random-teacher`
/// (a control) and `--weights` default to ResNet18, the thesis' teacher.
pub fn model_config(args: &TrainArgs) -> Result<(ModelConfig, String)> {
    let kind = method_kind(args.method);
    let mut method = kind.default_config();
    if let Some(n) = args.options.students {
        if kind != MethodKind::Ensemble {
            return Err(CliError::Usage(
                "--students applies to --method ensemble only".into(),
            ));
        }
        method = MethodConfig::ensemble(n);
    }
    if let Some(student) = args.options.student {
        if kind != MethodKind::Decoupled {
            return Err(CliError::Usage(
                "--student applies to --method decoupled only".into(),
            ));
        }
        method = MethodConfig::Decoupled {
            student: backbone(student, false)?,
        };
    }
    let (teacher, weights, described) = match (&args.options.weights, args.options.random_teacher) {
        (Some(path), _) => {
            let b = backbone(
                args.options.backbone.unwrap_or(BackboneArg::Resnet18),
                args.options.tf_padding,
            )?;
            let described = format!("{} (weights {})", b.name(), path.display());
            (
                b,
                TeacherWeights::File(path.to_string_lossy().into_owned()),
                described,
            )
        }
        (None, true) => {
            let b = backbone(
                args.options.backbone.unwrap_or(BackboneArg::Resnet18),
                args.options.tf_padding,
            )?;
            let described = format!(
                "{} (RANDOM weights, seed {}: a control)",
                b.name(),
                args.options.seed
            );
            (b, TeacherWeights::Random(args.options.seed), described)
        }
        (None, false) => match args.options.backbone {
            None | Some(BackboneArg::MobilenetV2) => (
                BackboneConfig::mobilenet_v2_tf(),
                TeacherWeights::Embedded,
                "mobilenet_v2 (embedded ImageNet weights)".to_string(),
            ),
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "no ImageNet weights are embedded for {}: pass --weights FILE (a torchvision \
                     state dict of that network), or leave out --backbone to use the embedded \
                     ImageNet MobileNetV2",
                    backbone(other, false)?.name()
                )));
            }
        },
    };
    let model = ModelConfig::new(teacher, weights, method).with_image_size(args.options.image_size);
    model.check().map_err(stad::StadError::from)?;
    Ok((model, described))
}

/// The hyper-parameters the arguments describe (SGD momentum 0.9 and weight decay 1e-4,
/// 20 % of the nominal training images held out).
pub fn train_config(args: &TrainArgs) -> Result<TrainConfig> {
    let config = TrainConfig::new()
        .with_epochs(args.options.epochs)
        .with_batch_size(args.options.batch_size)
        .with_learning_rate(args.options.lr)
        .with_seed(args.options.seed)
        .with_teacher_cache_mb(args.options.teacher_cache_mb);
    config.check().map_err(stad::StadError::from)?;
    Ok(config)
}

/// Runs `stad train`.
pub fn run(args: &TrainArgs, console: Console) -> Result<RunInfo> {
    crate::backend::check_available(args.options.device)?;
    let (model, teacher) = model_config(args)?;
    let config = train_config(args)?;
    let paths = RunPaths::new(&args.out);
    let spec = DataSpec::from_args(&args.data, None)?;
    if crate::paths::out_inside_data(&args.out, &spec.dir) {
        return Err(CliError::Usage(format!(
            "--out {} is inside the data set {}: its files would mix with the data; choose a \
             folder outside it",
            args.out.display(),
            spec.dir.display()
        )));
    }
    let data = spec.open(console)?;
    check_memory(&model, &config, data.train.len(), args)?;
    // The folder is locked from here until this command ends: a second `stad train` into it
    // fails at once, and the checks for an existing run are made under the lock.
    let created = !args.out.exists();
    let run_dir = RunDir::open(&args.out, args.resume)?;

    console.info(format!(
        "data: {} from {} ({} training images)",
        data.name,
        spec.dir.display(),
        data.train.len()
    ));
    console.info(format!(
        "method: {}; teacher: {teacher}; input {}x{}; {} epochs, batch {}, lr {}; on {}",
        model.method.name(),
        model.image_size,
        model.image_size,
        config.epochs,
        config.batch_size,
        config.learning_rate,
        describe(args.options.device)
    ));
    if args.options.random_teacher {
        console.warn(
            "--random-teacher: the teacher has random weights. This is a control: its anomaly \
             scores are meaningless (near chance on real data).",
        );
    }

    let started = Instant::now();
    let trained = run_on(
        args.options.device,
        TrainJob {
            model: &model,
            config: &config,
            samples: data.train,
            run_dir: &run_dir,
            detector_path: paths.detector(),
            console,
        },
    );
    let trained = match trained {
        Ok(trained) => trained,
        Err(e) => {
            // A run that failed before its first checkpoint leaves no empty folder behind.
            if created {
                run_dir.remove_if_empty();
            }
            return Err(e);
        }
    };
    let info = RunInfo {
        stad_version: env!("CARGO_PKG_VERSION").into(),
        method: model.method.name().into(),
        category: data.name,
        data: spec,
        teacher,
        model,
        train: config,
        device: describe(args.options.device).into(),
        n_fit: trained.n_fit,
        n_holdout: trained.n_holdout,
        best_epoch: trained.best_epoch,
        history: trained.history,
        train_seconds: started.elapsed().as_secs_f64(),
        threshold: trained.threshold,
        threshold_source: trained.threshold_source,
    };
    paths.save(&info)?;
    console.info(format!(
        "trained in {:.1} s; best epoch {} of {}; threshold {:.6} ({}); run in {}",
        info.train_seconds,
        info.best_epoch + 1,
        info.train.epochs,
        info.threshold,
        threshold_words(info.threshold_source, info.n_holdout),
        args.out.display()
    ));
    Ok(info)
}

/// Refuses a configuration whose estimated peak memory ([`stad::memory::training_bytes`])
/// exceeds what the machine has available, on the CPU backends (a GPU's memory is its own).
fn check_memory(
    model: &ModelConfig,
    config: &TrainConfig,
    n_images: usize,
    args: &TrainArgs,
) -> Result<()> {
    if args.options.device == crate::args::DeviceArg::Cuda {
        return Ok(());
    }
    let needed = stad::memory::training_bytes(model, config, n_images);
    let Some(available) = crate::backend::available_memory_bytes() else {
        // The platform does not say: train and let the allocator decide.
        return Ok(());
    };
    if needed <= available as f64 {
        return Ok(());
    }
    Err(CliError::TooLarge {
        needed_gb: needed / 1e9,
        available_gb: available as f64 / 1e9,
        configuration: format!(
            "{} image(s) at {}², batch {}, {} student(s) of {}",
            n_images,
            model.image_size,
            config.batch_size,
            model.method.num_students(),
            model.student_backbone().name()
        ),
    })
}

/// How a threshold was chosen, in words.
pub fn threshold_words(source: stad::ThresholdSource, n_holdout: usize) -> String {
    match source {
        stad::ThresholdSource::NominalQuantile(q) => format!(
            "{:.0}th percentile of {n_holdout} held-out good images' scores",
            q * 100.0
        ),
        stad::ThresholdSource::F1Optimal => "F1-optimal on labelled validation images".into(),
        stad::ThresholdSource::Manual => "set by hand".into(),
    }
}

struct TrainJob<'a> {
    model: &'a ModelConfig,
    config: &'a TrainConfig,
    samples: Vec<Sample>,
    run_dir: &'a RunDir,
    detector_path: std::path::PathBuf,
    console: Console,
}

struct Trained {
    n_fit: usize,
    n_holdout: usize,
    best_epoch: usize,
    history: Vec<stad::EpochSummary>,
    threshold: f64,
    threshold_source: stad::ThresholdSource,
}

impl BackendJob for TrainJob<'_> {
    type Output = Trained;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Result<Trained> {
        let n_train = self.samples.len();
        // Nothing is held out of a single image (`holdout_count`): it then calibrates itself.
        let single = (n_train == 1).then(|| self.samples.clone());
        let mut progress =
            TrainProgress::new(self.console, self.config.epochs, self.config.batch_size);
        let outcome = stad::train::<A>(
            self.model,
            self.config,
            self.samples,
            Some(self.run_dir),
            &device,
            &mut progress,
        );
        progress.finish();
        let outcome = outcome?;
        let n_holdout = outcome.holdout.len();
        // The threshold: a quantile of the held-out good images' scores (no labelled defects
        // are needed, and the test set is never touched).
        let calibration = match single {
            Some(image) => {
                self.console.warn(
                    "a single training image cannot be held out: the threshold is calibrated \
                     on that image itself and will be too low",
                );
                image
            }
            None => outcome.holdout,
        };
        let detector = Detector::calibrate_nominal(
            outcome.model,
            calibration,
            DEFAULT_NOMINAL_QUANTILE,
            &device,
        )?;
        detector.save(&self.detector_path)?;
        Ok(Trained {
            n_fit: n_train - n_holdout,
            n_holdout,
            best_epoch: outcome.best_epoch,
            history: outcome.history,
            threshold: detector.threshold,
            threshold_source: detector.threshold_source,
        })
    }
}
