//! Shared glue of the method examples: data from the command line, training, evaluation.

use std::time::Instant;

use stad::backend::{Cpu, CpuAutodiff};
use stad::data::{Dataset, MvtecOptions, SyntheticConfig, SyntheticKind};
use stad::{MethodKind, ModelConfig, TrainConfig, TrainObserver};

struct Print;
impl TrainObserver for Print {
    fn on_epoch(&mut self, s: &stad::EpochSummary) {
        println!(
            "epoch {:>3}: loss {:.4}, validation score {}, {:.1} s ({:.1} img/s)",
            s.epoch,
            s.train_loss,
            s.validation_score.map_or("-".into(), |v| format!("{v:.5}")),
            s.seconds,
            s.images_per_second
        );
    }
}

/// Trains `kind` on the data named by the first argument (synthetic when absent) and prints
/// the metrics.
pub fn run_example(kind: MethodKind) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let epochs: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let size: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(128);
    let data = match args.first().filter(|a| !a.is_empty() && *a != "-") {
        Some(dir) => Dataset::mvtec(dir, &MvtecOptions::default())?,
        None => Dataset::synthetic(&SyntheticConfig {
            seed: 7,
            kind: SyntheticKind::Object,
            size: 256,
            n_train: 48,
            n_test_good: 16,
            n_test_per_defect: 6,
            ..SyntheticConfig::default()
        }),
    };
    println!(
        "data: {} ({} train, {} test); teacher: embedded ImageNet MobileNetV2",
        data.name,
        data.train.len(),
        data.test.len()
    );
    let model = ModelConfig::embedded(kind.default_config()).with_image_size(size);
    let config = TrainConfig::new().with_epochs(epochs).with_batch_size(16);
    let device = Default::default();
    let started = Instant::now();
    let outcome =
        stad::train::<CpuAutodiff>(&model, &config, data.train, None, &device, &mut Print)?;
    println!(
        "trained {} epochs in {:.1} s; best epoch {}",
        epochs,
        started.elapsed().as_secs_f64(),
        outcome.best_epoch
    );
    let eval = stad::evaluate::<Cpu>(&outcome.model, data.test, 16, &device)?;
    println!(
        "{}: image AUROC {:.3}, pixel AUROC {:.3}, AU-PRO {:.3}, image F1 {:.3}, Dice {:.3} ({:.1} img/s)",
        kind.name(),
        eval.image_auroc,
        eval.pixel_auroc,
        eval.au_pro,
        eval.image_f1.f1,
        eval.dice,
        eval.images_per_second
    );
    Ok(())
}
