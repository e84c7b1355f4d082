//! Gaussian smoothing of anomaly maps.

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::ScoringError;

/// Radius of the Gaussian kernel for `sigma`: `r = ⌊4σ + 0.5⌋`, so the kernel has
/// `2r + 1` taps (`truncate = 4` of `scipy.ndimage.gaussian_filter`, and anomalib's
/// `kernel_size = 2·int(4σ + 0.5) + 1`; σ = 4 gives 33 taps).
pub fn gaussian_kernel_radius(sigma: f64) -> usize {
    (4.0 * sigma + 0.5).floor() as usize
}

/// The normalised 1-D Gaussian kernel, `w_i ∝ exp(−i² / (2σ²))` for `i = −r..=r`
/// ([`gaussian_kernel_radius`]), summing to 1 (computed in `f64`).
///
/// # Errors
/// [`ScoringError::InvalidSigma`] unless `sigma` is finite and `> 0`.
pub fn gaussian_kernel_1d(sigma: f64) -> Result<Vec<f64>, ScoringError> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(ScoringError::InvalidSigma(sigma));
    }
    let r = gaussian_kernel_radius(sigma) as i64;
    let raw: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = raw.iter().sum();
    Ok(raw.into_iter().map(|w| w / total).collect())
}

/// Gaussian smoothing of a `[B, C, H, W]` map, each channel separately, as two 1-D
/// convolutions (rows, then columns) with the kernel of [`gaussian_kernel_1d`]:
///
/// ```text
/// out[y, x] = Σ_{i,j} w_i · w_j · pad(map)[y + i, x + j]
/// ```
///
/// Borders use **reflect** padding (`d c b | a b c d | c b a`, PyTorch/kornia `"reflect"`,
/// scipy `"mirror"`), the border mode of anomalib's `GaussianBlur2d`; along a side shorter
/// than `r + 1` pixels, where reflection is undefined, the edge value is repeated instead
/// (`"replicate"`). The output has the input's shape; a constant map stays constant.
///
/// # Errors
/// [`ScoringError::InvalidSigma`] unless `sigma` is finite and `> 0`.
pub fn gaussian_smooth<B: Backend>(
    map: Tensor<B, 4>,
    sigma: f64,
) -> Result<Tensor<B, 4>, ScoringError> {
    let kernel = gaussian_kernel_1d(sigma)?;
    let radius = kernel.len() / 2;
    if radius == 0 {
        return Ok(map);
    }
    let [b, c, h, w] = map.dims();
    let device = map.device();
    let taps: Vec<f32> = kernel.iter().map(|&v| v as f32).collect();
    let row_kernel = Tensor::<B, 4>::from_data(
        TensorData::new(taps.clone(), [1, 1, 1, taps.len()]),
        &device,
    );
    let col_kernel = Tensor::<B, 4>::from_data(
        TensorData::new(taps.clone(), [1, 1, taps.len(), 1]),
        &device,
    );
    let mode = |side: usize| {
        if radius < side {
            PadMode::Reflect
        } else {
            PadMode::Edge
        }
    };
    let no_pad = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let x = map.reshape([b * c, 1, h, w]);
    let x = x.pad([(0, 0), (radius, radius)], mode(w));
    let x = conv2d(x, row_kernel, None, no_pad.clone());
    let x = x.pad([(radius, radius), (0, 0)], mode(h));
    let x = conv2d(x, col_kernel, None, no_pad);
    Ok(x.reshape([b, c, h, w]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tolerance};

    type B = Flex;

    /// Host 2-D convolution with reflect padding, the reference.
    fn host_smooth(data: &[f32], h: usize, w: usize, sigma: f64) -> Vec<f32> {
        let k = gaussian_kernel_1d(sigma).unwrap();
        let r = (k.len() / 2) as isize;
        let reflect = |i: isize, n: isize| {
            let i = if i < 0 { -i } else { i };
            if i >= n { 2 * (n - 1) - i } else { i }
        };
        let mut out = vec![0.0f32; h * w];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut acc = 0.0f64;
                for (i, wi) in k.iter().enumerate() {
                    for (j, wj) in k.iter().enumerate() {
                        let yy = reflect(y + i as isize - r, h as isize) as usize;
                        let xx = reflect(x + j as isize - r, w as isize) as usize;
                        acc += wi * wj * f64::from(data[yy * w + xx]);
                    }
                }
                out[y as usize * w + x as usize] = acc as f32;
            }
        }
        out
    }

    #[test]
    fn kernel_size_sum_and_symmetry() {
        let k = gaussian_kernel_1d(4.0).unwrap();
        assert_eq!(k.len(), 33);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(k.iter().zip(k.iter().rev()).all(|(a, b)| a == b));
        assert_eq!(gaussian_kernel_1d(0.1).unwrap(), vec![1.0]);
        assert_eq!(
            gaussian_kernel_1d(0.0),
            Err(ScoringError::InvalidSigma(0.0))
        );
        assert!(gaussian_kernel_1d(f64::NAN).is_err());
    }

    #[test]
    fn matches_host_reflect_convolution() {
        let (h, w) = (19, 23);
        let map = Tensor::<B, 4>::random(
            [2, 1, h, w],
            Distribution::Uniform(0.0, 1.0),
            &Default::default(),
        );
        let data = map.to_data().to_vec::<f32>().unwrap();
        let smooth = gaussian_smooth(map, 1.5).unwrap();
        assert_eq!(smooth.dims(), [2, 1, h, w]);
        let got = smooth.into_data().to_vec::<f32>().unwrap();
        for b in 0..2 {
            let expected = host_smooth(&data[b * h * w..(b + 1) * h * w], h, w, 1.5);
            let diff = stad_testutil::max_abs_diff(&got[b * h * w..(b + 1) * h * w], &expected);
            assert!(diff < 1e-5, "image {b}: max |diff| {diff}");
        }
    }

    #[test]
    fn constant_map_stays_constant_even_on_small_maps() {
        let device = Default::default();
        // Radius 16 on a 5×40 map: reflect along W, edge along H.
        let map = Tensor::<B, 4>::full([1, 2, 5, 40], 0.7, &device);
        gaussian_smooth(map, 4.0)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::new(vec![0.7f32; 400], [1, 2, 5, 40]),
                Tolerance::absolute(1e-5),
            );
    }
}
