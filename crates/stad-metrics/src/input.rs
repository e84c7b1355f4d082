//! What the metrics accept: scores ([`Score`]: `f32` or `f64`), labels ([`Label`]: `bool` or
//! `u8`) and the shape of a stack of maps ([`MapShape`]).

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::sort::{Item, Key};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point score: `f32` or `f64` (sealed).
///
/// All accumulation is done in `f64` and in exact integer counts; thresholds are reported as
/// `f64` (exactly the observed score, widened when it is an `f32`). Scores are compared as the
/// IEEE values they are: `-0.0` and `+0.0` are the same score (a tie); NaN and ±∞ are rejected
/// with [`MetricsError::NonFinite`].
pub trait Score:
    sealed::Sealed + Copy + Send + Sync + PartialOrd + std::fmt::Debug + 'static
{
    /// Order-preserving unsigned key of a finite score (an implementation detail).
    #[doc(hidden)]
    type Key: Key;
    /// A key packed with a 32-bit tag (an implementation detail): a primitive integer, so
    /// that buffers of it are allocated zeroed.
    #[doc(hidden)]
    type Tagged: Item;
    /// The score widened to `f64` (exact).
    fn to_f64(self) -> f64;
    /// The order-preserving key, `None` when the score is NaN or infinite.
    #[doc(hidden)]
    fn key(self) -> Option<Self::Key>;
    /// The score a key was made from, widened to `f64`.
    #[doc(hidden)]
    fn key_to_f64(key: Self::Key) -> f64;
    /// Packs a key with a tag.
    #[doc(hidden)]
    fn tag(key: Self::Key, tag: u32) -> Self::Tagged;
    /// Unpacks a key and its tag.
    #[doc(hidden)]
    fn untag(tagged: Self::Tagged) -> (Self::Key, u32);
    /// The key of a tagged value, widened (what tagged values are sorted by).
    #[doc(hidden)]
    fn tagged_key(tagged: &Self::Tagged) -> u64;
}

/// Monotone map of a finite `f32` onto `u32` (`-0.0` is folded onto `+0.0`).
#[inline]
fn f32_key(x: f32) -> u32 {
    let b = (x + 0.0).to_bits();
    if b >> 31 == 1 { !b } else { b | (1 << 31) }
}

/// Monotone map of a finite `f64` onto `u64` (`-0.0` is folded onto `+0.0`).
#[inline]
fn f64_key(x: f64) -> u64 {
    let b = (x + 0.0).to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

impl Score for f32 {
    type Key = u32;
    /// Key in the high 32 bits, tag in the low 32 bits.
    type Tagged = u64;
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn key(self) -> Option<u32> {
        self.is_finite().then(|| f32_key(self))
    }
    #[inline]
    fn key_to_f64(key: u32) -> f64 {
        let b = if key >> 31 == 1 {
            key & !(1 << 31)
        } else {
            !key
        };
        f64::from(f32::from_bits(b))
    }
    #[inline]
    fn tag(key: u32, tag: u32) -> u64 {
        (u64::from(key) << 32) | u64::from(tag)
    }
    #[inline]
    fn untag(tagged: u64) -> (u32, u32) {
        ((tagged >> 32) as u32, tagged as u32)
    }
    #[inline]
    fn tagged_key(tagged: &u64) -> u64 {
        tagged >> 32
    }
}

impl Score for f64 {
    type Key = u64;
    /// Key in the high 64 bits, tag in the low 32 bits.
    type Tagged = u128;
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn key(self) -> Option<u64> {
        self.is_finite().then(|| f64_key(self))
    }
    #[inline]
    fn key_to_f64(key: u64) -> f64 {
        let b = if key >> 63 == 1 {
            key & !(1 << 63)
        } else {
            !key
        };
        f64::from_bits(b)
    }
    #[inline]
    fn tag(key: u64, tag: u32) -> u128 {
        (u128::from(key) << 64) | u128::from(tag)
    }
    #[inline]
    fn untag(tagged: u128) -> (u64, u32) {
        ((tagged >> 64) as u64, tagged as u32)
    }
    #[inline]
    fn tagged_key(tagged: &u128) -> u64 {
        (tagged >> 64) as u64
    }
}

/// A ground-truth label: `true` / non-zero means anomalous (positive).
pub trait Label: Copy + Send + Sync {
    /// Whether this sample or pixel is anomalous.
    fn is_anomalous(self) -> bool;
}

impl Label for bool {
    #[inline]
    fn is_anomalous(self) -> bool {
        self
    }
}

impl Label for u8 {
    #[inline]
    fn is_anomalous(self) -> bool {
        self != 0
    }
}

/// Shape of a stack of maps (and of their masks), stored flattened in C order:
/// value `(i, y, x)` is at `(i * height + y) * width + x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapShape {
    /// Number of maps (images).
    pub count: usize,
    /// Height of every map.
    pub height: usize,
    /// Width of every map.
    pub width: usize,
}

impl MapShape {
    /// `count` maps of `height × width`.
    pub const fn new(count: usize, height: usize, width: usize) -> Self {
        Self {
            count,
            height,
            width,
        }
    }

    /// Pixels of one map, `height × width`.
    pub const fn pixels_per_map(&self) -> usize {
        self.height * self.width
    }

    /// Checks that `maps` and `masks` both hold `count × height × width` values (and that the
    /// shape is not empty). Returns the number of pixels of one map.
    pub(crate) fn check(&self, maps: usize, masks: usize) -> Result<usize> {
        let total = self
            .count
            .checked_mul(self.height)
            .and_then(|v| v.checked_mul(self.width));
        if total != Some(maps) || total != Some(masks) {
            return Err(MetricsError::ShapeMismatch {
                count: self.count,
                height: self.height,
                width: self.width,
                maps,
                masks,
            });
        }
        if maps == 0 {
            return Err(MetricsError::Empty);
        }
        Ok(self.pixels_per_map())
    }
}

impl From<(usize, usize, usize)> for MapShape {
    fn from((count, height, width): (usize, usize, usize)) -> Self {
        Self::new(count, height, width)
    }
}

/// Checks that there are as many labels as scores and that there are some.
pub(crate) fn check_lengths(scores: usize, labels: usize) -> Result<()> {
    if scores != labels {
        return Err(MetricsError::LengthMismatch { scores, labels });
    }
    if scores == 0 {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// The first non-finite score of a slice as an error (`offset` is added to its index).
pub(crate) fn non_finite<S: Score>(scores: &[S], offset: usize) -> MetricsError {
    let (index, value) = scores
        .iter()
        .enumerate()
        .find(|(_, s)| s.key().is_none())
        .map(|(i, s)| (offset + i, s.to_f64()))
        .unwrap_or((offset, f64::NAN));
    MetricsError::NonFinite { index, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_keys_are_monotone_and_invertible() {
        let xs = [
            -1e30f32,
            -2.5,
            -1.0,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-40,
            0.5,
            1.0,
            3e38,
        ];
        for w in xs.windows(2) {
            assert!(w[0].key().unwrap() <= w[1].key().unwrap(), "{w:?}");
        }
        assert_eq!((-0.0f32).key(), 0.0f32.key());
        for &x in &xs {
            assert_eq!(f32::key_to_f64(x.key().unwrap()), f64::from(x + 0.0));
        }
        assert_eq!(f32::NAN.key(), None);
        assert_eq!(f32::INFINITY.key(), None);
        assert_eq!(f32::NEG_INFINITY.key(), None);
    }

    #[test]
    fn f64_keys_are_monotone_and_invertible() {
        let xs = [-1e300f64, -2.5, -1e-310, -0.0, 0.0, 1e-310, 0.5, 1.0, 1e300];
        for w in xs.windows(2) {
            assert!(w[0].key().unwrap() <= w[1].key().unwrap(), "{w:?}");
        }
        for &x in &xs {
            assert_eq!(f64::key_to_f64(x.key().unwrap()), x + 0.0);
        }
        assert_eq!(f64::NAN.key(), None);
    }

    #[test]
    fn tags_round_trip() {
        let k = 0.25f32.key().unwrap();
        assert_eq!(f32::untag(f32::tag(k, 77)), (k, 77));
        assert_eq!(f32::tagged_key(&f32::tag(k, 77)), u64::from(k));
        let k = 0.25f64.key().unwrap();
        assert_eq!(f64::untag(f64::tag(k, 5)), (k, 5));
        assert_eq!(f64::tagged_key(&f64::tag(k, 5)), k);
    }

    #[test]
    fn shape_checks() {
        let s = MapShape::from((2, 3, 4));
        assert_eq!(s.check(24, 24), Ok(12));
        assert!(matches!(
            s.check(24, 23),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        assert_eq!(MapShape::new(0, 3, 4).check(0, 0), Err(MetricsError::Empty));
        assert!(matches!(
            MapShape::new(usize::MAX, 2, 2).check(0, 0),
            Err(MetricsError::ShapeMismatch { .. })
        ));
    }
}
