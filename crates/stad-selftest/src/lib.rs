//! # stad-selftest — is a backend right, and how fast is it?
//!
//! One call answers both for any burn backend stad runs on, before a long run on a new
//! machine (a GPU in particular):
//!
//! - [`correctness`]: the teachers, the three methods' maps and image scores, and one
//!   training step of each (loss and weight update) on the device, against the same
//!   computation on the CPU reference backend in the same process, each within a stated
//!   tolerance ([`Tolerances`]);
//! - [`speed`]: teacher forward, inference and training step in images per second at several
//!   batch sizes, the device's peak memory where it reports it ([`DeviceMemory`]), and the
//!   largest batch that fits.
//!
//! [`run`] does both and returns a [`SelftestReport`] (serialisable as JSON, printable as a
//! table with [`SelftestReport::table`]); `stad selftest` is its command line.

pub mod compare;
pub mod correctness;
pub mod error;
pub mod speed;

use std::fmt::Write as _;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

pub use compare::Diff;
pub use correctness::{Check, CheckConfig, Criterion, Tolerances};
pub use error::{Result, SelftestError};
pub use speed::{DeviceMemory, LargestBatch, Outcome, SpeedConfig, SpeedRow, Work};

/// The machine and build a report was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// The device, e.g. the CPU's or GPU's model name.
    pub device_name: String,
    /// The backend measured, e.g. `CPU (burn flex)`.
    pub backend: String,
    /// The reference backend of the correctness checks.
    pub reference_backend: String,
    /// Threads of the CPU thread pool.
    pub threads: usize,
    /// stad's version.
    pub stad_version: String,
    /// burn's version.
    pub burn_version: String,
    /// The burn features the build has.
    pub burn_features: Vec<String>,
    /// The stad features the build has.
    pub stad_features: Vec<String>,
    /// Operating system and CPU architecture.
    pub platform: String,
}

/// What [`run`] does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestConfig {
    /// The correctness checks.
    pub checks: CheckConfig,
    /// The speed measurements (`None`: none).
    pub speed: Option<SpeedConfig>,
}

impl SelftestConfig {
    /// Checks at 128², speed at 224² and batches 8, 32, 128.
    pub fn standard() -> Self {
        Self {
            checks: CheckConfig::standard(),
            speed: Some(SpeedConfig::standard()),
        }
    }

    /// Everything at a small size, seconds on a CPU: that every path runs and agrees (CI).
    pub fn quick() -> Self {
        Self {
            checks: CheckConfig::quick(),
            speed: Some(SpeedConfig::quick()),
        }
    }
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestReport {
    /// The machine and build.
    pub machine: MachineInfo,
    /// What ran.
    pub config: SelftestConfig,
    /// The correctness checks.
    pub checks: Vec<Check>,
    /// The speed measurements.
    pub speed: Vec<SpeedRow>,
    /// Per backbone, the largest batch that fits.
    pub largest_batch: Vec<LargestBatch>,
    /// Every correctness check passed.
    pub passed: bool,
    /// Wall time of the selftest, seconds.
    pub seconds: f64,
}

/// What [`run`] is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The correctness checks are done.
    Checked(&'a [Check]),
    /// One speed measurement is done.
    Measured(&'a SpeedRow),
}

/// Runs the correctness checks of `D` (on `device`) against `R` (on `reference`), then the
/// speed measurements on `device`.
///
/// # Errors
/// When a model cannot be built, or the configuration is invalid. Failed checks are not
/// errors: see [`SelftestReport::passed`].
pub fn run<R: AutodiffBackend, D: AutodiffBackend>(
    config: &SelftestConfig,
    machine: MachineInfo,
    reference: &R::Device,
    device: &D::Device,
    memory: &dyn DeviceMemory,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<SelftestReport> {
    if let Some(speed) = &config.speed {
        speed.validate()?;
    }
    let started = Instant::now();
    let checks = correctness::run::<R, D>(&config.checks, reference, device)?;
    progress(Progress::Checked(&checks));
    let (speed, largest_batch) = match &config.speed {
        Some(speed) => speed::run::<D>(speed, device, memory, |row| {
            progress(Progress::Measured(row))
        })?,
        None => (Vec::new(), Vec::new()),
    };
    Ok(SelftestReport {
        machine,
        config: config.clone(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        speed,
        largest_batch,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl SelftestReport {
    /// The report as Markdown tables: the machine, the checks, the speed.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stad {} selftest on {} — {} ({} threads), reference {}; burn {} [{}], stad [{}], {}\n",
            m.stad_version,
            m.backend,
            m.device_name,
            m.threads,
            m.reference_backend,
            m.burn_version,
            m.burn_features.join(", "),
            m.stad_features.join(", "),
            m.platform,
        );
        let c = &self.config.checks;
        let _ = writeln!(
            out,
            "Correctness: {} random images of {}², seed {}; max rel = max|device − reference| / max|reference|, \
             L2 rel = ‖device − reference‖₂ / ‖reference‖₂; the tolerance applies to the one marked *\n",
            c.batch_size, c.image_size, c.seed
        );
        out.push_str(
            "| check | values | max abs diff | max rel | L2 rel | tolerance | result | worst at |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
        for check in &self.checks {
            let mark = |c: Criterion| if check.criterion == c { "*" } else { "" };
            let _ = writeln!(
                out,
                "| {} | {} | {:.2e} | {:.2e}{} | {:.2e}{} | {:.0e} | {} | {} |",
                check.name,
                check.diff.values,
                check.diff.max_abs,
                check.diff.max_rel,
                mark(Criterion::MaxRelative),
                check.diff.l2_rel,
                mark(Criterion::L2Relative),
                check.tolerance,
                if check.passed { "pass" } else { "FAIL" },
                check.worst,
            );
        }
        if !self.speed.is_empty() {
            let size = self.speed[0].image_size;
            let _ = writeln!(
                out,
                "\nSpeed at {size}², images/s (best of the timed runs):\n"
            );
            out.push_str("| backbone | work | batch | images/s | s/batch | peak memory |\n");
            out.push_str("|---|---|---:|---:|---:|---:|\n");
            for row in &self.speed {
                let (ips, spb, mem) = match &row.outcome {
                    Outcome::Measured {
                        images_per_second,
                        seconds_per_batch,
                        peak_memory_bytes,
                    } => (
                        format!("{images_per_second:.1}"),
                        format!("{seconds_per_batch:.3}"),
                        peak_memory_bytes
                            .map(|b| format!("{:.2} GB", b as f64 / 1e9))
                            .unwrap_or_else(|| "n/a".into()),
                    ),
                    Outcome::DoesNotFit { reason } => {
                        (format!("does not fit: {reason}"), "".into(), "".into())
                    }
                    Outcome::Skipped => (
                        "skipped (a smaller batch did not fit)".into(),
                        "".into(),
                        "".into(),
                    ),
                    Outcome::Failed { reason } => {
                        (format!("FAILED: {reason}"), "".into(), "".into())
                    }
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {ips} | {spb} | {mem} |",
                    row.backbone,
                    row.work.name(),
                    row.batch_size,
                );
            }
            out.push('\n');
            for l in &self.largest_batch {
                let _ = writeln!(
                    out,
                    "Largest batch that fits, {}: {}",
                    l.backbone,
                    match (l.batch_size, l.limited_by_memory) {
                        (Some(b), true) => format!("{b} (the next size tried does not fit)"),
                        (Some(b), false) => format!("{b} or more (the largest tried)"),
                        (None, _) => "none of the sizes tried".into(),
                    }
                );
            }
        }
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            out,
            "\n{} ({} of {} checks passed) in {:.0} s",
            if self.passed { "PASSED" } else { "FAILED" },
            self.checks.len() - failed,
            self.checks.len(),
            self.seconds
        );
        out
    }
}
