//! Trains one method on an MVTec AD category and prints one JSON line of metrics and timings
//! (used for the measurements reported in the project notes).
//!
//! `cargo run --release --example bottle_report -- DIR METHOD TEACHER EPOCHS [IMAGE_SIZE]`
//! - METHOD: `stfpm`, `ensemble` or `simple`
//! - TEACHER: `embedded` (ImageNet MobileNetV2, TF padding, taps at strides 4/8/16),
//!   `random-resnet18` (a control: torchvision-style random init, seed 0) or
//!   `fixture-resnet18` (the control of the issue: `$STAD_SHARED/fixtures/resnet18_teacher.safetensors`,
//!   random weights and random BatchNorm statistics)

use std::time::Instant;

use stad::backbones::BackboneConfig;
use stad::backend::{Cpu, CpuAutodiff};
use stad::data::{Dataset, MvtecOptions};
use stad::{EpochSummary, MethodKind, ModelConfig, TeacherWeights, TrainConfig, TrainObserver};

struct Log;
impl TrainObserver for Log {
    fn on_epoch(&mut self, s: &EpochSummary) {
        eprintln!(
            "epoch {} loss {:.4} val {:?} {:.1}s",
            s.epoch, s.train_loss, s.validation_score, s.seconds
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, method, teacher, epochs, rest @ ..] = args.as_slice() else {
        return Err("usage: bottle_report DIR METHOD TEACHER EPOCHS [IMAGE_SIZE]".into());
    };
    let epochs: usize = epochs.parse()?;
    let size: usize = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(224);
    let kind = match method.as_str() {
        "stfpm" => MethodKind::Stfpm,
        "ensemble" => MethodKind::Ensemble,
        "simple" => MethodKind::SimpleStudent,
        other => return Err(format!("unknown method {other}").into()),
    };
    let model = match teacher.as_str() {
        "embedded" => ModelConfig::embedded(kind.default_config()),
        "random-resnet18" => ModelConfig::new(
            BackboneConfig::resnet18(),
            TeacherWeights::Random(0),
            kind.default_config(),
        ),
        "fixture-resnet18" => {
            let shared = std::env::var("STAD_SHARED").unwrap_or_else(|_| "../shared".into());
            let path = format!("{shared}/fixtures/resnet18_teacher.safetensors");
            ModelConfig::new(
                BackboneConfig::resnet18(),
                TeacherWeights::File(path),
                kind.default_config(),
            )
        }
        other => return Err(format!("unknown teacher {other}").into()),
    }
    .with_image_size(size);
    let data = Dataset::mvtec(dir, &MvtecOptions::default())?;
    let config = TrainConfig::new().with_epochs(epochs).with_batch_size(16);
    let device = Default::default();
    let started = Instant::now();
    let outcome = stad::train::<CpuAutodiff>(&model, &config, data.train, None, &device, &mut Log)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let eval = stad::evaluate::<Cpu>(&outcome.model, data.test, 16, &device)?;
    let per_epoch: Vec<f64> = outcome.history.iter().map(|e| e.seconds).collect();
    println!(
        "{}",
        serde_json::json!({
            "category": data.name, "method": kind.name(), "teacher": teacher, "image_size": size,
            "epochs": epochs, "best_epoch": outcome.best_epoch, "train_seconds": train_seconds,
            "seconds_per_epoch": per_epoch.iter().sum::<f64>() / per_epoch.len() as f64,
            "image_auroc": eval.image_auroc, "pixel_auroc": eval.pixel_auroc, "au_pro": eval.au_pro,
            "image_f1": eval.image_f1.f1, "dice": eval.dice, "iou": eval.iou,
            "eval_images_per_second": eval.images_per_second,
        })
    );
    Ok(())
}
