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
//! [`reference`] holds the straightforward formulations of step 1 that the (faster) public
//! kernels are checked against.
//!
//! # Parity
//! The tests compare with PyTorch fixtures (`tests/parity.rs`): the maps agree to better than
//! `1e-5` of the map's maximum.

mod combine;
mod error;
mod layer;
mod map;
pub mod reference;
mod smoothing;

pub use combine::{check_finite, combine_layer_maps, image_scores, upsample_bilinear};
pub use error::ScoringError;
pub use layer::{NORM_EPS, ensemble_layer_maps, predictive_variance_unnormalized, stfpm_layer_map};
pub use map::{AnomalyMapConfig, EnsembleMode};
pub use smoothing::{gaussian_kernel_1d, gaussian_kernel_radius, gaussian_smooth};
