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
    if device == DeviceArg::Cuda && !cfg!(feature = "cuda") {
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
