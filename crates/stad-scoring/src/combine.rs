//! From layer maps to the image-sized anomaly map and the image score.

use burn::tensor::{ElementConversion, Tensor, TensorData, backend::Backend};

use crate::ScoringError;

/// Bilinear upsampling (or downsampling) of a `[B, C, h, w]` map to `[B, C, H, W]` with
/// `align_corners = false`, i.e. PyTorch's
/// `F.interpolate(x, size, mode="bilinear", align_corners=False)`: output pixel `o` samples
/// the input at `max((o + 0.5)·h/H − 0.5, 0)`, interpolating between the two neighbouring
/// pixels (the last pixel is repeated at the far border). A map already of size `[H, W]` is
/// returned as is.
///
/// The interpolation is separable and linear, so it is computed as two matrix products with
/// the (sparse, two taps per row) interpolation matrices of [`interpolation_matrix`]:
/// `out[n] = A_H · x[n] · A_Wᵀ`. On CPU backends this is several times faster than burn's
/// `interpolate` and gives the same values (each output is the same two-term weighted sum; the
/// zero weights add exact zeros); [`reference::upsample_bilinear`](crate::reference::upsample_bilinear)
/// is the `interpolate`-based version it is tested against.
pub fn upsample_bilinear<B: Backend>(map: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    let [b, c, h, w] = map.dims();
    let [out_h, out_w] = size;
    if [h, w] == size {
        return map;
    }
    let device = map.device();
    let mut x = map.reshape([b * c, h, w]);
    if out_h != h {
        let a_h = Tensor::<B, 3>::from_data(
            TensorData::new(interpolation_matrix(h, out_h), [1, out_h, h]),
            &device,
        );
        x = a_h.matmul(x); // [1, H, h] @ [N, h, w] -> [N, H, w]
    }
    let x = if out_w != w {
        let a_w = interpolation_matrix(w, out_w);
        // Transposed to [w, W].
        let a_w_t: Vec<f32> = (0..w)
            .flat_map(|i| (0..out_w).map(move |o| (i, o)))
            .map(|(i, o)| a_w[o * w + i])
            .collect();
        let a_w_t = Tensor::<B, 2>::from_data(TensorData::new(a_w_t, [w, out_w]), &device);
        x.reshape([b * c * out_h, w]).matmul(a_w_t) // [N·H, w] @ [w, W]
    } else {
        x.reshape([b * c * out_h, w])
    };
    x.reshape([b, c, out_h, out_w])
}

/// The `[out, in]` matrix (row-major) of 1-D linear interpolation with
/// `align_corners = false`, as PyTorch computes it: row `o` has weight `1 − λ` at `i₀` and `λ`
/// at `i₀ + 1` (both at `i₀` on the last pixel), where `x = max((o + 0.5)·in/out − 0.5, 0)`,
/// `i₀ = ⌊x⌋`, `λ = x − i₀`. Weights are computed in `f64`.
pub fn interpolation_matrix(in_size: usize, out_size: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; out_size * in_size];
    if in_size == 0 {
        return m;
    }
    let scale = in_size as f64 / out_size as f64;
    for o in 0..out_size {
        let x = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (x.floor() as usize).min(in_size - 1);
        let i1 = (i0 + 1).min(in_size - 1);
        let lambda = x - i0 as f64;
        m[o * in_size + i0] += (1.0 - lambda) as f32;
        m[o * in_size + i1] += lambda as f32;
    }
    m
}

/// Combines per-layer maps (each `[B, C, h_k, w_k]`, usually `C = 1`) into one
/// `[B, C, H, W]` map: each is upsampled to `output_size = [H, W]` by
/// [`upsample_bilinear`] and the layers are multiplied,
///
/// ```text
/// map = Π_k upsample(e_k, [H, W])
/// ```
///
/// # Errors
/// [`ScoringError::EmptyLayers`] for no maps, [`ScoringError::InvalidOutputSize`] for a zero
/// side, [`ScoringError::LayerMapMismatch`] when the maps differ in batch size or channels.
pub fn combine_layer_maps<B: Backend>(
    maps: Vec<Tensor<B, 4>>,
    output_size: [usize; 2],
) -> Result<Tensor<B, 4>, ScoringError> {
    if output_size.contains(&0) {
        return Err(ScoringError::InvalidOutputSize(output_size));
    }
    let first = maps.first().ok_or(ScoringError::EmptyLayers)?.dims();
    for (k, map) in maps.iter().enumerate().skip(1) {
        let dims = map.dims();
        if dims[..2] != first[..2] {
            return Err(ScoringError::LayerMapMismatch {
                layer: k,
                expected: [first[0], first[1]],
                found: [dims[0], dims[1]],
            });
        }
    }
    Ok(maps
        .into_iter()
        .map(|m| upsample_bilinear(m, output_size))
        .reduce(|a, b| a * b)
        .expect("at least one map"))
}

/// Image scores: the maximum of each image's map, `[B]` from `[B, C, H, W]`
/// (`score[b] = max_{c,y,x} map[b,c,y,x]`).
pub fn image_scores<B: Backend>(map: Tensor<B, 4>) -> Tensor<B, 1> {
    let [batch, ..] = map.dims();
    map.flatten::<2>(1, 3).max_dim(1).reshape([batch])
}

/// Checks that a map holds only finite values.
///
/// Fast path: one reduction to a scalar (`sum`), read back; a finite sum proves every element
/// finite. Only when the sum is not finite (a NaN or ±inf, or, rarely, an overflow of the sum
/// of huge finite values) are the non-finite elements counted, again on the device; no full
/// copy of the map to the host is ever made.
///
/// # Errors
/// [`ScoringError::NonFinite`] with the number of NaN or infinite elements.
pub fn check_finite<B: Backend, const D: usize>(map: &Tensor<B, D>) -> Result<(), ScoringError> {
    let total = map.shape().num_elements();
    if total == 0 {
        return Ok(());
    }
    let sum: f64 = map.clone().sum().into_scalar().elem();
    if sum.is_finite() {
        return Ok(());
    }
    let count: i64 = map
        .clone()
        .is_finite()
        .bool_not()
        .int()
        .sum()
        .into_scalar()
        .elem();
    match usize::try_from(count).unwrap_or(usize::MAX) {
        0 => Ok(()),
        count => Err(ScoringError::NonFinite { count, total }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{TensorData, Tolerance};

    type B = Flex;

    #[test]
    fn upsample_matches_pytorch_half_pixel() {
        // torch: F.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear",
        // align_corners=False) = [0, 0.25, 0.75, 1].
        let device = Default::default();
        let x = Tensor::<B, 4>::from_data([[[[0.0f32, 1.0]]]], &device);
        upsample_bilinear(x, [1, 4])
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[[[0.0f32, 0.25, 0.75, 1.0]]]]),
                Tolerance::absolute(1e-6),
            );
    }

    #[test]
    fn matmul_upsampling_matches_interpolate() {
        let device = Default::default();
        for (from, to) in [
            ([56, 56], [224, 224]),
            ([14, 14], [224, 224]),
            ([7, 10], [10, 7]),
            ([5, 9], [13, 9]),
            ([3, 1], [8, 5]),
        ] {
            let x = Tensor::<B, 4>::random(
                [2, 3, from[0], from[1]],
                burn::tensor::Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let ours = upsample_bilinear(x.clone(), to);
            assert_eq!(ours.dims(), [2, 3, to[0], to[1]]);
            let reference = crate::reference::upsample_bilinear(x, to);
            ours.into_data()
                .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn interpolation_matrix_rows_sum_to_one() {
        let m = interpolation_matrix(14, 224);
        for row in m.chunks(14) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row.iter().filter(|&&v| v != 0.0).count() <= 2);
        }
    }

    #[test]
    fn combine_multiplies_upsampled_maps() {
        let device = Default::default();
        let a = Tensor::<B, 4>::from_data([[[[2.0f32, 2.0], [2.0, 2.0]]]], &device);
        let b = Tensor::<B, 4>::from_data([[[[3.0f32]]]], &device);
        let map = combine_layer_maps(vec![a, b], [4, 4]).unwrap();
        assert_eq!(map.dims(), [1, 1, 4, 4]);
        map.into_data().assert_approx_eq::<f32>(
            &TensorData::new(vec![6.0f32; 16], [1, 1, 4, 4]),
            Tolerance::absolute(1e-6),
        );
    }

    #[test]
    fn combine_errors() {
        let device = Default::default();
        assert_eq!(
            combine_layer_maps::<B>(vec![], [4, 4]).unwrap_err(),
            ScoringError::EmptyLayers
        );
        let a = Tensor::<B, 4>::zeros([2, 1, 2, 2], &device);
        let b = Tensor::<B, 4>::zeros([1, 1, 2, 2], &device);
        assert_eq!(
            combine_layer_maps(vec![a.clone()], [0, 4]).unwrap_err(),
            ScoringError::InvalidOutputSize([0, 4])
        );
        assert_eq!(
            combine_layer_maps(vec![a, b], [4, 4]).unwrap_err(),
            ScoringError::LayerMapMismatch {
                layer: 1,
                expected: [2, 1],
                found: [1, 1]
            }
        );
    }

    #[test]
    fn image_scores_are_per_image_maxima() {
        let device = Default::default();
        let map = Tensor::<B, 4>::from_data(
            [
                [[[0.1f32, 0.9], [0.2, 0.3]]],
                [[[-1.0, -2.0], [-0.5, -3.0]]],
            ],
            &device,
        );
        image_scores(map)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([0.9f32, -0.5]), Tolerance::absolute(1e-7));
    }

    #[test]
    fn check_finite_counts_bad_values() {
        let device = Default::default();
        let ok = Tensor::<B, 4>::from_data([[[[0.1f32, f32::MAX], [f32::MAX, 0.3]]]], &device);
        assert_eq!(
            check_finite(&ok),
            Ok(()),
            "an overflowing sum is not an error"
        );
        let bad = Tensor::<B, 4>::from_data(
            [[[[f32::NAN, 1.0], [f32::INFINITY, f32::NEG_INFINITY]]]],
            &device,
        );
        assert_eq!(
            check_finite(&bad),
            Err(ScoringError::NonFinite { count: 3, total: 4 })
        );
        let nan_only = Tensor::<B, 1>::from_data([0.0f32, f32::NAN], &device);
        assert!(matches!(
            check_finite(&nan_only),
            Err(ScoringError::NonFinite { count: 1, total: 2 })
        ));
    }
}
