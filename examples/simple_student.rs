//! Trains the SimpleStudent method and evaluates it.
//!
//! `cargo run --release --example simple_student -- [MVTEC_CATEGORY_DIR] [EPOCHS] [IMAGE_SIZE]`
//!
//! Without a folder, a synthetic inspection data set is generated (seeded). The teacher is
//! the embedded ImageNet MobileNetV2.

#[path = "common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::run_example(stad::MethodKind::SimpleStudent)
}
