//! Device-generic anomaly-map kernels for student–teacher anomaly detection.
//!
//! Everything here is written with burn tensor ops, generic over `B: Backend`, so the maps are
//! computed where the features are (CPU or GPU) and only the final scores need to leave the
//! device.
//!
//! # Pipeline
//! For a feature pyramid of layers `k` (`[B, C_k, h_k, w_k]`), with `x̂ = x / max(‖x‖₂, eps)`
//! the channel-wise L2 normalisation ([`NORM_EPS`] = `1e-12`, as `torch.nn.functional.normalize`):
//!
//! 1. a layer map `[B, 1, h_k, w_k]`:
//!    - STFPM ([`stfpm_layer_map`]): `e_k = 0.5·‖t̂ − ŝ‖²`;
//!    - student ensemble ([`ensemble_layer_maps`]): `e_k = 0.5·‖t̂ − mean_s ŝ_s‖²` and
//!      `v_k = ‖std_s ŝ_s‖² = Σ_c var_s ŝ_s` (population variance over students), combined as
//!      selected by [`EnsembleMode`] (`e_k + v_k` by default);
//! 2. each layer map is upsampled bilinearly to the input size (`align_corners = false`,
//!    [`upsample_bilinear`]) and the layers are multiplied ([`combine_layer_maps`]);
//! 3. optionally the map is smoothed with a Gaussian ([`gaussian_smooth`], off by default);
//! 4. the image score is the maximum of the map ([`image_scores`]).
//!
//! [`AnomalyMapConfig`] runs steps 1–3; [`check_finite`] guards a map against NaN / ±inf.
//! [`reference`](mod@reference) holds the straightforward formulations of step 1 that the (faster) public
//! kernels are checked against.
//!
//! # Performance
//! The public kernels avoid what is slow on CPU backends: the layer maps reduce only channel
//! dot products of same-shaped tensors (no normalised feature map, no multiplication of a
//! full-size tensor by a per-position factor), and the upsampling is two small matrix
//! products. `cargo bench -p stad-scoring` times them against the reference formulation
//! (figures in `docs/measurements.md`).
//!
//! # Accuracy
//! Expanding a squared distance, e.g. `‖t̂ − ŝ‖² = ‖t̂‖² + ‖ŝ‖² − 2 t̂·ŝ` (STFPM) or
//! `Σ_c var_s ŝ_s = mean_s ‖ŝ_s‖² − ‖m‖²` (ensemble variance), trades a relative error for an
//! absolute one: in `f32` the layer maps carry an absolute error of a few `1e-7` (a few ulps
//! of `1`, from the channel sums), whatever their size, where the reference formulations have
//! a relative error. Such results are clamped at `0`. For ranking anomaly scores this is
//! immaterial.
//!
//! # Parity
//! The tests compare with PyTorch fixtures (`tests/parity.rs`), requiring
//! `max |ours − torch| ≤ 1e-5 · max |torch|` per array. Measured: STFPM map `1.3e-7` absolute
//! (`5e-7` relative to its maximum), image score `1.1e-7` relative; ensemble error / variance
//! layer maps at most `3.7e-7` absolute (`4.3e-6` relative), ensemble map `6e-8`
//! (`1.3e-6`).

mod combine;
mod error;
mod layer;
mod map;
pub mod reference;
mod smoothing;

pub use combine::{
    check_finite, combine_layer_maps, image_scores, interpolation_matrix, upsample_bilinear,
};
pub use error::ScoringError;
pub use layer::{NORM_EPS, ensemble_layer_maps, predictive_variance_unnormalized, stfpm_layer_map};
pub use map::{AnomalyMapConfig, EnsembleMode};
pub use smoothing::{gaussian_kernel_1d, gaussian_kernel_radius, gaussian_smooth};
