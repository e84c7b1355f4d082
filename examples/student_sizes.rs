//! Parameters of each method's student(s) for a teacher (default: ResNet18 to layer3, the
//! thesis' teacher), and a decoupled student's share in its 1×1 adapters:
//!
//! ```sh
//! cargo run --release --example student_sizes            # ResNet18 teacher
//! cargo run --release --example student_sizes -- mnv2    # the embedded MobileNetV2 teacher
//! ```

use burn::module::Module;
use stad::backbones::BackboneConfig;
use stad::backend::Cpu;
use stad::{MethodKind, ModelConfig, TeacherWeights};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let teacher = match std::env::args().nth(1).as_deref() {
        Some("mnv2") => BackboneConfig::mobilenet_v2_tf(),
        _ => BackboneConfig::resnet18(),
    };
    let device = Default::default();
    println!(
        "teacher: {} (taps {:?})",
        teacher.name(),
        teacher.tap_channels()
    );
    println!("| method | students | parameters (all students) | of which adapters |");
    println!("|---|---:|---:|---:|");
    for kind in [
        MethodKind::Stfpm,
        MethodKind::Ensemble,
        MethodKind::SimpleStudent,
        MethodKind::Decoupled,
    ] {
        let model = ModelConfig::new(
            teacher.clone(),
            TeacherWeights::Random(0),
            kind.default_config(),
        );
        let students = model.init_students::<Cpu>(0, &device)?;
        let total: usize = students.iter().map(|s| s.num_params()).sum();
        let adapters: usize = students
            .iter()
            .flat_map(|s| s.adapters().iter().map(|a| a.num_params()))
            .sum();
        println!(
            "| {} | {} | {total} | {adapters} |",
            kind.name(),
            students.len()
        );
    }
    Ok(())
}
