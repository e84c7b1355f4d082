//! Runs a job on the backend `--device` names: every command is written once, generic over
//! burn's `AutodiffBackend` (inference uses its inner backend).

use burn::tensor::backend::AutodiffBackend;

use crate::args::DeviceArg;
use crate::error::{CliError, Result};

/// A job that can run on any backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on `A` (and `A::InnerBackend` for inference).
    fn run<A: AutodiffBackend>(self, device: A::Device) -> Result<Self::Output>;
}

/// Runs `job` on the backend of `device`.
///
/// # Errors
/// [`CliError::NoCuda`] for `--device cuda` in a build without the `cuda` feature, else the
/// job's error.
pub fn run_on<J: BackendJob>(device: DeviceArg, job: J) -> Result<J::Output> {
    match device {
        DeviceArg::Cpu => job.run::<stad::backend::CpuAutodiff>(Default::default()),
        DeviceArg::Ndarray => {
            job.run::<burn::backend::Autodiff<stad::backend::CpuNdArray>>(Default::default())
        }
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda => job.run::<stad::backend::CudaAutodiff>(Default::default()),
        #[cfg(not(feature = "cuda"))]
        DeviceArg::Cuda => Err(CliError::NoCuda),
    }
}

/// Checks that this build can run on `device` (before any data is read).
///
/// # Errors
/// [`CliError::NoCuda`] for `--device cuda` in a build without the `cuda` feature.
pub fn check_available(device: DeviceArg) -> Result<()> {
    check_built_for(device, cfg!(feature = "cuda"))
}

/// [`check_available`] for a build with (`cuda_built`) or without the `cuda` feature: both
/// answers are tested in either build.
fn check_built_for(device: DeviceArg, cuda_built: bool) -> Result<()> {
    if device == DeviceArg::Cuda && !cuda_built {
        return Err(CliError::NoCuda);
    }
    Ok(())
}

/// The name of the backend behind `device`, for logs.
pub fn describe(device: DeviceArg) -> &'static str {
    match device {
        DeviceArg::Cpu => "CPU (burn flex)",
        DeviceArg::Ndarray => "CPU (burn ndarray)",
        DeviceArg::Cuda => "CUDA GPU 0",
    }
}

/// The memory this machine has available now, bytes (the container's limit included); `None`
/// when the platform does not say.
pub fn available_memory_bytes() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let mut available = system.available_memory();
    if let Some(limits) = system.cgroup_limits() {
        available = available.min(limits.free_memory);
    }
    (available > 0).then_some(available)
}

/// The CPU backends' memory for `stad selftest`: the process's peak resident memory (Linux
/// `VmHWM`, reset through `/proc/self/clear_refs`), and a measurement admitted when its
/// estimate fits in the available memory (an allocation failure would abort the process, so
/// a batch that cannot fit is not tried).
///
/// stad's allocator keeps freed memory (stad-alloc), so the peak includes what earlier,
/// smaller measurements left mapped: the selftest measures batch sizes in increasing order,
/// which makes each peak that of the largest measurement so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuMemory;

impl stad_selftest::DeviceMemory for CpuMemory {
    fn reset_peak(&self) {
        // "5" resets the peak resident set size (Linux ≥ 4.0); elsewhere nothing happens and
        // the peak is the process's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    fn peak_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    fn admit(&self, needed_bytes: f64) -> std::result::Result<(), String> {
        match available_memory_bytes() {
            Some(available) if needed_bytes > available as f64 => Err(format!(
                "needs about {:.1} GB (estimate), {:.1} GB available",
                needed_bytes / 1e9,
                available as f64 / 1e9
            )),
            _ => Ok(()),
        }
    }
}

/// The CUDA device's memory for `stad selftest`: the pool memory cubecl has reserved after a
/// measurement (it keeps its pools at their high-water mark; they are emptied before each
/// measurement). Every batch is tried: an out-of-memory error is reported as "does not fit".
#[cfg(feature = "cuda")]
#[derive(Debug, Default, Clone)]
pub struct CudaMemory {
    /// The device.
    pub device: burn::backend::cuda::CudaDevice,
}

#[cfg(feature = "cuda")]
impl stad_selftest::DeviceMemory for CudaMemory {
    fn reset_peak(&self) {
        <stad::backend::Cuda as burn::tensor::backend::Backend>::memory_cleanup(&self.device);
    }

    fn peak_bytes(&self) -> Option<u64> {
        use cubecl::Runtime;
        let client = cubecl::cuda::CudaRuntime::client(&self.device);
        client.memory_usage().ok().map(|u| u.bytes_reserved)
    }
}

/// The name of the device behind `device`: the CPU's model (`/proc/cpuinfo`), or the GPU's
/// (`/proc/driver/nvidia/gpus/*/information`, the driver's own record); `unknown` where the
/// platform does not say.
pub fn device_name(device: DeviceArg) -> String {
    let found = match device {
        DeviceArg::Cpu | DeviceArg::Ndarray => std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| field(&s, "model name")),
        DeviceArg::Cuda => std::fs::read_dir("/proc/driver/nvidia/gpus")
            .ok()
            .and_then(|dirs| {
                let mut names: Vec<String> = dirs
                    .flatten()
                    .filter_map(|d| std::fs::read_to_string(d.path().join("information")).ok())
                    .filter_map(|s| field(&s, "Model"))
                    .collect();
                names.sort();
                names.into_iter().next()
            }),
    };
    found.unwrap_or_else(|| format!("unknown {}", std::env::consts::ARCH))
}

/// The value of the first `key: value` line of `text` whose key is `key`.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_without_the_feature_is_refused_with_the_fix_and_everything_else_runs() {
        let err = check_built_for(DeviceArg::Cuda, false).unwrap_err();
        assert!(matches!(err, CliError::NoCuda), "{err:?}");
        let hint = err.hint().expect("NoCuda has a hint");
        assert!(hint.contains("--features cuda"), "{hint}");
        assert!(check_built_for(DeviceArg::Cuda, true).is_ok());
        for device in [DeviceArg::Cpu, DeviceArg::Ndarray] {
            assert!(check_built_for(device, false).is_ok());
            assert!(check_built_for(device, true).is_ok());
        }
        assert_eq!(
            check_available(DeviceArg::Cuda).is_ok(),
            cfg!(feature = "cuda")
        );
    }

    #[test]
    fn fields_are_read_from_proc_style_text() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\nflags\t: x\n";
        assert_eq!(
            field(cpuinfo, "model name").as_deref(),
            Some("AMD EPYC 9654 96-Core Processor")
        );
        let gpu = "Model: \t\t NVIDIA H200\nIRQ:   42\n";
        assert_eq!(field(gpu, "Model").as_deref(), Some("NVIDIA H200"));
        assert_eq!(field(gpu, "Bus Type"), None);
    }

    #[test]
    fn the_cpu_memory_reports_a_peak_that_covers_an_allocation() {
        use stad_selftest::DeviceMemory;
        let memory = CpuMemory;
        memory.reset_peak();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        if let Some(peak) = memory.peak_bytes() {
            assert!(peak >= 64 << 20, "{peak}");
        }
        assert!(memory.admit(1e3).is_ok());
        assert!(memory.admit(1e18).unwrap_err().contains("GB available"));
    }
}
