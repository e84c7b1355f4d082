//! Deterministic shuffles and held-out splits from a seed.
//!
//! The generator is [`SplitMix64`] (Steele, Lea & Flood, 2014): 64 bits of state, one
//! addition and a 64-bit mixing function per output. It is not cryptographic, but it is
//! statistically strong enough for shuffling and, above all, it is fully specified here, so a
//! seed gives the same order on every platform and every version of this crate's
//! dependencies (unlike `rand`'s `StdRng`, whose algorithm may change between releases).
//!
//! Shuffles are Fisher–Yates with unbiased bounded integers (Lemire's multiply-and-reject).

use crate::error::{DataError, Result};

/// The SplitMix64 pseudo-random generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n`, without modulo bias.
    ///
    /// # Panics
    /// When `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SplitMix64::below(0)");
        // Lemire, "Fast random integer generation in an interval" (2019).
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// A uniform float in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A uniform float in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// `n` draws of `N(0, std²)` by Box–Muller: from two uniforms `u₁, u₂ ∈ (0, 1)` (53 bits,
    /// centred in their bins, so `ln u₁` is finite), `r = std·√(−2 ln u₁)`, `θ = 2π u₂`, the
    /// pair `r cos θ, r sin θ` (the last one dropped when `n` is odd).
    pub fn normals(&mut self, n: usize, std: f64) -> Vec<f32> {
        let mut uniform = || ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let (u1, u2) = (uniform(), uniform());
            let r = (-2.0 * u1.ln()).sqrt() * std;
            let theta = std::f64::consts::TAU * u2;
            out.push((r * theta.cos()) as f32);
            out.push((r * theta.sin()) as f32);
        }
        out.truncate(n);
        out
    }
}

/// A seed derived from `seed` and a stream number (an epoch, an image index, ...): different
/// streams of one seed give unrelated sequences.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut g = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    g.next_u64()
}

/// Shuffles `items` in place (Fisher–Yates) with the generator seeded by `seed`.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A permutation of `0..n` from `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    shuffle(&mut v, seed);
    v
}

/// The default held-out fraction of the nominal training images.
pub const DEFAULT_HOLDOUT_FRACTION: f64 = 0.2;

/// Number of held-out items for `n` items and `fraction`: `round(n × fraction)`, at least 1
/// when `fraction > 0` and `n ≥ 2`, and at most `n − 1` so that training is never empty.
pub fn holdout_count(n: usize, fraction: f64) -> usize {
    if n < 2 || fraction <= 0.0 {
        return 0;
    }
    ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
}

/// Splits `items` into `(kept, held_out)`: a seeded random [`holdout_count`] of them are held
/// out. Both parts keep the input's relative order.
///
/// Use it on the nominal training images to get a validation set for model selection and
/// threshold calibration, so that the test set is never used for either. The default
/// fraction is [`DEFAULT_HOLDOUT_FRACTION`] (20 %).
///
/// # Errors
/// [`DataError::InvalidConfig`] when `fraction` is not in `[0, 1)`.
pub fn holdout_split<T>(items: Vec<T>, fraction: f64, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::InvalidConfig(format!(
            "held-out fraction must be in [0, 1), got {fraction}"
        )));
    }
    let n = items.len();
    let k = holdout_count(n, fraction);
    let mut held = vec![false; n];
    for &i in &permutation(n, seed)[..k] {
        held[i] = true;
    }
    let mut kept = Vec::with_capacity(n - k);
    let mut out = Vec::with_capacity(k);
    for (item, h) in items.into_iter().zip(held) {
        if h {
            out.push(item);
        } else {
            kept.push(item);
        }
    }
    Ok((kept, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_the_asked_moments_and_odd_counts_drop_the_last_of_a_pair() {
        let n = 200_001;
        let draws = SplitMix64::new(3).normals(n, 2.0);
        assert_eq!(draws.len(), n);
        let mean = draws.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = draws
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        // Standard errors: 2/√n ≈ 0.0045 for the mean, 4·√(2/n) ≈ 0.013 for the variance.
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 4.0).abs() < 0.06, "variance {var}");
        let even = SplitMix64::new(3).normals(n + 1, 2.0);
        assert_eq!(&even[..n], &draws[..]);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 (reference C implementation by S. Vigna).
        let mut g = SplitMix64::new(1234567);
        assert_eq!(g.next_u64(), 6457827717110365317);
        assert_eq!(g.next_u64(), 3203168211198807973);
    }

    #[test]
    fn permutation_is_a_permutation_and_seeded() {
        let p = permutation(100, 7);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_eq!(p, permutation(100, 7));
        assert_ne!(p, permutation(100, 8));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut g = SplitMix64::new(3);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[g.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn holdout_counts() {
        assert_eq!(holdout_count(209, 0.2), 42);
        assert_eq!(holdout_count(10, 0.2), 2);
        assert_eq!(holdout_count(2, 0.01), 1);
        assert_eq!(holdout_count(1, 0.5), 0);
        assert_eq!(holdout_count(5, 0.0), 0);
        let (a, b) = holdout_split((0..209).collect(), 0.2, 1).unwrap();
        assert_eq!((a.len(), b.len()), (167, 42));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(holdout_split(vec![1], 1.0, 0).is_err());
        assert!(holdout_split(vec![1], -0.1, 0).is_err());
    }
}
