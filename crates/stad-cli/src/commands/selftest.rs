//! `stad selftest`: checks the chosen device against the CPU reference (flex) in one process
//! and measures its speed ([`stad_selftest`]); prints the tables, writes the JSON, and fails
//! (exit code 1) when a correctness check does.

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use stad_selftest::{DeviceMemory, MachineInfo, Outcome, Progress, SelftestConfig, SelftestReport};

use crate::args::DeviceArg;
use crate::backend::{self, BackendJob};
use crate::error::{CliError, Result};
use crate::progress::Console;

/// The burn features of the workspace's burn dependency (`Cargo.toml`; a unit test keeps the
/// two the same).
pub const BURN_FEATURES: &[&str] = &[
    "std",
    "flex",
    "ndarray",
    "autodiff",
    "cuda",
    "record-item-custom-serde",
];

/// `stad selftest`.
#[derive(Debug, Clone, Args)]
pub struct SelftestArgs {
    /// The backend to check against the CPU reference (flex) and to measure.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Small images and one small batch: every check and measurement in seconds on a CPU
    /// (CI). The speed figures then say nothing about real sizes.
    #[arg(long)]
    pub quick: bool,
    /// Batch sizes of the speed measurements [default: 8,32,128; --quick: 2].
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub batch_sizes: Option<Vec<usize>>,
    /// Side of the speed measurements' images [default: 224; --quick: 64].
    #[arg(long, value_name = "PIXELS")]
    pub image_size: Option<usize>,
    /// The correctness checks only.
    #[arg(long)]
    pub no_speed: bool,
}

impl SelftestArgs {
    /// What to run.
    pub fn config(&self) -> SelftestConfig {
        let mut config = if self.quick {
            SelftestConfig::quick()
        } else {
            SelftestConfig::standard()
        };
        if self.no_speed {
            config.speed = None;
        }
        if let Some(speed) = &mut config.speed {
            if let Some(b) = &self.batch_sizes {
                speed.batch_sizes.clone_from(b);
            }
            if let Some(s) = self.image_size {
                speed.image_size = s;
            }
        }
        config
    }
}

/// Runs `stad selftest`: the report, or [`CliError::SelftestFailed`] (after printing and
/// writing it) when a check fails.
///
/// # Errors
/// [`CliError::NoCuda`] for `--device cuda` in a build without CUDA; invalid sizes; an
/// unwritable `--json`; failed checks.
pub fn run(args: &SelftestArgs, console: Console) -> Result<SelftestReport> {
    backend::check_available(args.device)?;
    let config = args.config();
    if let Some(speed) = &config.speed {
        speed
            .validate()
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let machine = MachineInfo {
        device_name: backend::device_name(args.device),
        backend: backend::describe(args.device).to_string(),
        reference_backend: backend::describe(DeviceArg::Cpu).to_string(),
        threads: rayon::current_num_threads(),
        stad_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: "0.21.0".to_string(),
        burn_features: BURN_FEATURES.iter().map(|s| s.to_string()).collect(),
        stad_features: stad::build_features()
            .into_iter()
            .chain(cfg!(feature = "cuda").then_some("cuda"))
            .map(str::to_string)
            .collect(),
        platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    };
    console.info(format!(
        "selftest of {} ({}) against {}…",
        machine.backend, machine.device_name, machine.reference_backend
    ));
    let memory: Box<dyn DeviceMemory> = match args.device {
        DeviceArg::Cpu | DeviceArg::Ndarray => Box::new(backend::CpuMemory),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => Box::new(backend::CudaMemory::default()),
        #[cfg(not(feature = "cuda"))]
        DeviceArg::Cuda => return Err(CliError::NoCuda),
    };
    let report = quiet_panics(|| {
        backend::run_on(
            args.device,
            Job {
                config: &config,
                machine,
                memory: memory.as_ref(),
                console,
            },
        )
    })?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("reports serialise");
        crate::run_dir::write_atomic(path, json.as_bytes())?;
        console.info(format!("wrote {}", path.display()));
    }
    if !report.passed {
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect();
        return Err(CliError::SelftestFailed {
            backend: report.machine.backend.clone(),
            failed,
        });
    }
    Ok(report)
}

/// Runs `f` with the panic message hook off: a measurement that runs out of device memory
/// panics inside the backend, and the selftest reports it as "does not fit" instead.
fn quiet_panics<T>(f: impl FnOnce() -> T) -> T {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = f();
    std::panic::set_hook(hook);
    out
}

struct Job<'a> {
    config: &'a SelftestConfig,
    machine: MachineInfo,
    memory: &'a dyn DeviceMemory,
    console: Console,
}

impl BackendJob for Job<'_> {
    type Output = SelftestReport;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Result<SelftestReport> {
        let mut machine = self.machine;
        machine.backend = format!(
            "{} = {}",
            machine.backend,
            <A::InnerBackend as Backend>::name(&device)
        );
        let console = self.console;
        let report = stad_selftest::run::<stad::backend::CpuAutodiff, A>(
            self.config,
            machine,
            &Default::default(),
            &device,
            self.memory,
            |progress| match progress {
                Progress::Checked(checks) => {
                    let failed = checks.iter().filter(|c| !c.passed).count();
                    console.info(format!(
                        "{} correctness checks, {} failed; measuring speed…",
                        checks.len(),
                        failed
                    ));
                }
                Progress::Measured(row) => {
                    let what = match &row.outcome {
                        Outcome::Measured {
                            images_per_second, ..
                        } => format!("{images_per_second:.1} images/s"),
                        Outcome::DoesNotFit { .. } => "does not fit".into(),
                        Outcome::Skipped => "skipped".into(),
                        Outcome::Failed { reason } => format!("failed: {reason}"),
                    };
                    console.info(format!(
                        "  {} {} batch {}: {what}",
                        row.backbone,
                        row.work.name(),
                        row.batch_size
                    ));
                }
            },
        )
        .map_err(|e| match e {
            stad_selftest::SelftestError::Stad(e) => CliError::Stad(e),
            stad_selftest::SelftestError::InvalidConfig(m) => CliError::Usage(m),
        })?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burn_features_are_the_workspace_manifests() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
                .unwrap();
        let line = manifest
            .lines()
            .find(|l| l.starts_with("burn = {"))
            .expect("the workspace's burn dependency");
        let list = line.split("features = [").nth(1).unwrap();
        let list = &list[..list.find(']').unwrap()];
        let features: Vec<&str> = list
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(features, BURN_FEATURES);
        assert!(line.contains("version = \"=0.21.0\""), "{line}");
    }

    #[test]
    fn quick_and_overrides_shape_the_configuration() {
        let args = SelftestArgs {
            device: DeviceArg::Cpu,
            json: None,
            quick: true,
            batch_sizes: Some(vec![4, 1]),
            image_size: None,
            no_speed: false,
        };
        let speed = args.config().speed.unwrap();
        assert_eq!((speed.batch_sizes, speed.image_size), (vec![4, 1], 64));
        let args = SelftestArgs {
            no_speed: true,
            quick: false,
            ..args
        };
        let config = args.config();
        assert!(config.speed.is_none());
        assert_eq!(config.checks.image_size, 128);
    }
}
