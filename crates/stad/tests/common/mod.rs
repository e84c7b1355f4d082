//! Shared set-up of the stad integration tests.
#![allow(dead_code)]

use stad::backend::{Cpu, CpuAutodiff};
use stad::data::{Dataset, Sample, SyntheticConfig, SyntheticKind};
use stad::{MethodConfig, MethodKind, ModelConfig, RunDir, Silent, TrainConfig, TrainOutcome};

/// A small synthetic data set (64² source images).
pub fn tiny_data(seed: u64) -> Dataset {
    Dataset::synthetic(&SyntheticConfig::tiny(seed, SyntheticKind::Object))
}

/// A model on the embedded teacher at a small input size.
pub fn model(kind: MethodKind, image_size: usize) -> ModelConfig {
    ModelConfig::embedded(kind.default_config()).with_image_size(image_size)
}

/// Fast hyper-parameters: few epochs, small batches, no cache.
pub fn quick(epochs: usize) -> TrainConfig {
    TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(4)
        .with_seed(42)
}

/// A model on the embedded teacher with a full method configuration.
pub fn model_with(method: MethodConfig, image_size: usize) -> ModelConfig {
    ModelConfig::embedded(method).with_image_size(image_size)
}

/// `stad::train` on the CPU autodiff backend, silently, on the default device.
pub fn fit(
    model: &ModelConfig,
    config: &TrainConfig,
    train: Vec<Sample>,
    run_dir: Option<&RunDir>,
) -> stad::Result<TrainOutcome<Cpu>> {
    stad::train::<CpuAutodiff>(
        model,
        config,
        train,
        run_dir,
        &Default::default(),
        &mut Silent,
    )
}
