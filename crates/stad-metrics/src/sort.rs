//! Parallel radix sort (rayon), in safe Rust.
//!
//! Keys are first shifted by their minimum, so only the bits that vary are sorted on.
//! 1. One parallel most-significant-digit pass (at most [`MSD_DIGIT_BITS`] bits) scatters the
//!    items into buckets: every chunk's digits are counted in parallel, the output is carved
//!    into one disjoint sub-slice per (digit, chunk), and every chunk scatters into its own
//!    sub-slices in parallel.
//! 2. The buckets are then sorted independently, in parallel: a bucket that fits in cache
//!    ([`IN_CACHE`] items) or needs at most two passes with least-significant-digit passes
//!    over the bits that vary inside it (all digit counts taken in one read), a larger one by
//!    another most-significant-digit step first, a tiny one ([`TINY`] items) by the standard
//!    library's pattern-defeating quicksort.
//!
//! So the whole array crosses main memory about twice, whatever the key width.

use rayon::prelude::*;

/// At or below this many items everything runs on the calling thread.
const SEQUENTIAL: usize = 1 << 15;

/// Buckets at or below this many items are finished with in-cache LSD passes.
const IN_CACHE: usize = 1 << 16;

/// At or below this many items, `sort_unstable_by_key`.
const TINY: usize = 256;

/// Widest digit of a least-significant-digit pass (2 048 buckets, in cache).
const MAX_DIGIT_BITS: u32 = 11;

/// Digit of a most-significant-digit pass (256 buckets: few enough output streams for the
/// scatter through main memory to stay cache-friendly; measured faster than 10–13 bits).
const MSD_DIGIT_BITS: u32 = 8;

/// What the sort moves around: plain data. Use primitive integers so that the buffers are
/// allocated zeroed by the system instead of being filled.
pub trait Item: Copy + Send + Sync + Default + 'static {}

impl<T: Copy + Send + Sync + Default + 'static> Item for T {}

/// An unsigned integer key (`u32` or `u64`): the order-preserving key of a score.
pub trait Key: Item + Ord + std::fmt::Debug {
    /// Width in bits.
    const BITS: u32;
    /// The key widened to `u64`.
    fn widen(self) -> u64;
}

impl Key for u32 {
    const BITS: u32 = 32;
    #[inline]
    fn widen(self) -> u64 {
        u64::from(self)
    }
}

impl Key for u64 {
    const BITS: u32 = 64;
    #[inline]
    fn widen(self) -> u64 {
        self
    }
}

/// Identity key of a [`Key`].
#[inline]
pub fn by_value<K: Key>(k: &K) -> u64 {
    k.widen()
}

/// The digit of a pass: bits `shift..shift + width` of `key − base`.
#[derive(Clone, Copy)]
struct Digit {
    base: u64,
    shift: u32,
    mask: u64,
}

impl Digit {
    /// The top `MSD_DIGIT_BITS` (or fewer) bits of the span `lo..=hi` (`lo < hi`).
    fn top(lo: u64, hi: u64) -> Self {
        let bits = u64::BITS - (hi - lo).leading_zeros();
        let width = bits.min(MSD_DIGIT_BITS);
        Self {
            base: lo,
            shift: bits - width,
            mask: (1 << width) - 1,
        }
    }

    #[inline]
    fn of(&self, key: u64) -> usize {
        ((key.wrapping_sub(self.base) >> self.shift) & self.mask) as usize
    }

    fn radix(&self) -> usize {
        self.mask as usize + 1
    }
}

/// Smallest and largest key (`None` when empty).
pub fn key_range<T: Item>(items: &[T], key: impl Fn(&T) -> u64 + Sync) -> Option<(u64, u64)> {
    let (lo, hi) = items
        .par_chunks(1 << 16)
        .map(|c| seq_range(c, &key))
        .reduce(|| (u64::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    (lo <= hi).then_some((lo, hi))
}

/// Smallest and largest key, `(u64::MAX, 0)` when empty.
fn seq_range<T>(items: &[T], key: impl Fn(&T) -> u64) -> (u64, u64) {
    items.iter().fold((u64::MAX, 0), |(lo, hi), x| {
        let k = key(x);
        (lo.min(k), hi.max(k))
    })
}

/// Merges two optional key ranges.
pub fn merge_ranges(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<(u64, u64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Sorts the concatenation of `parts` ascending by `key` (not stable).
///
/// `range`, when given, must be the smallest and largest key of all items (it saves a pass
/// over the data); when `None` it is computed.
pub fn sort_parts<T: Item, F>(parts: Vec<Vec<T>>, key: F, range: Option<(u64, u64)>) -> Vec<T>
where
    F: Fn(&T) -> u64 + Copy + Send + Sync,
{
    let n: usize = parts.iter().map(Vec::len).sum();
    if n <= SEQUENTIAL {
        let mut v = parts.concat();
        sort_seq(&mut v, &mut Vec::new(), key);
        return v;
    }
    let range = range.or_else(|| {
        parts
            .iter()
            .map(|p| key_range(p, key))
            .fold(None, merge_ranges)
    });
    let Some((lo, hi)) = range.filter(|(lo, hi)| lo < hi) else {
        return parts.concat();
    };
    let digit = Digit::top(lo, hi);
    let chunk = n
        .div_ceil(rayon::current_num_threads() * 4)
        .max(SEQUENTIAL / 4);
    let mut out = vec![T::default(); n];
    let totals = {
        let chunks: Vec<&[T]> = parts.iter().flat_map(|p| p.chunks(chunk)).collect();
        par_scatter(&chunks, key, digit, &mut out)
    };
    drop(parts);
    let mut buckets = Vec::with_capacity(totals.len());
    let mut rest: &mut [T] = &mut out;
    for &t in &totals {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(t);
        buckets.push(head);
        rest = tail;
    }
    buckets
        .into_par_iter()
        .with_max_len(1)
        .for_each_init(Vec::new, |scratch, b| sort_seq(b, scratch, key));
    out
}

/// Sorts `v` ascending by key.
#[cfg(test)]
pub fn sort<K: Key>(v: Vec<K>) -> Vec<K> {
    sort_parts(vec![v], by_value, None)
}

/// One parallel counting-sort pass on `digit`, from `chunks` (read in order) into `dst`;
/// returns the count of every digit.
fn par_scatter<T: Item>(
    chunks: &[&[T]],
    key: impl Fn(&T) -> u64 + Sync,
    digit: Digit,
    dst: &mut [T],
) -> Vec<usize> {
    let radix = digit.radix();
    let hists: Vec<Vec<usize>> = chunks
        .par_iter()
        .map(|c| {
            let mut h = vec![0usize; radix];
            for x in *c {
                h[digit.of(key(x))] += 1;
            }
            h
        })
        .collect();
    let mut totals = vec![0usize; radix];
    for h in &hists {
        for (t, &c) in totals.iter_mut().zip(h) {
            *t += c;
        }
    }
    // Output layout: digit-major, then chunk order.
    let mut outs: Vec<Vec<std::slice::IterMut<'_, T>>> =
        hists.iter().map(|_| Vec::with_capacity(radix)).collect();
    let mut rest: &mut [T] = dst;
    for d in 0..radix {
        for (out, h) in outs.iter_mut().zip(&hists) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(h[d]);
            out.push(head.iter_mut());
            rest = tail;
        }
    }
    chunks.par_iter().zip(outs).for_each(|(c, mut out)| {
        for x in *c {
            if let Some(slot) = out[digit.of(key(x))].next() {
                *slot = *x;
            }
        }
    });
    totals
}

/// Sorts `data` on the calling thread; `scratch` is grown to `data.len()` as needed.
fn sort_seq<T: Item>(data: &mut [T], scratch: &mut Vec<T>, key: impl Fn(&T) -> u64 + Copy) {
    let n = data.len();
    if n <= TINY {
        data.sort_unstable_by_key(key);
        return;
    }
    let (lo, hi) = seq_range(data, key);
    if lo == hi {
        return;
    }
    if scratch.len() < n {
        scratch.resize(n, T::default());
    }
    let bits = u64::BITS - (hi - lo).leading_zeros();
    if n > IN_CACHE && bits > 2 * MAX_DIGIT_BITS {
        // One most-significant-digit step, then each bucket on its own.
        let digit = Digit::top(lo, hi);
        let mut counts = vec![0usize; digit.radix()];
        for x in data.iter() {
            counts[digit.of(key(x))] += 1;
        }
        scatter_seq(data, &mut scratch[..n], key, digit, &counts);
        data.copy_from_slice(&scratch[..n]);
        let mut rest: &mut [T] = data;
        for &c in &counts {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(c);
            sort_seq(head, scratch, key);
            rest = tail;
        }
        return;
    }
    // Least-significant-digit passes over the varying bits, all counted in one read.
    let passes = bits.div_ceil(MAX_DIGIT_BITS);
    let width = bits.div_ceil(passes);
    let digits: Vec<Digit> = (0..passes)
        .map(|p| Digit {
            base: lo,
            shift: p * width,
            mask: (1 << width) - 1,
        })
        .collect();
    let mut counts = vec![vec![0usize; 1 << width]; digits.len()];
    for x in data.iter() {
        let k = key(x);
        for (c, d) in counts.iter_mut().zip(&digits) {
            c[d.of(k)] += 1;
        }
    }
    let scratch = &mut scratch[..n];
    let mut in_data = true;
    for (d, c) in digits.iter().zip(&counts) {
        if c.contains(&n) {
            continue; // every key has this digit
        }
        if in_data {
            scatter_seq(data, scratch, key, *d, c);
        } else {
            scatter_seq(scratch, data, key, *d, c);
        }
        in_data = !in_data;
    }
    if !in_data {
        data.copy_from_slice(scratch);
    }
}

/// One sequential counting-sort pass of `src` into `dst` on `digit` with the digit `counts`.
fn scatter_seq<T: Item>(
    src: &[T],
    dst: &mut [T],
    key: impl Fn(&T) -> u64,
    digit: Digit,
    counts: &[usize],
) {
    let mut offsets = Vec::with_capacity(counts.len());
    let mut sum = 0;
    for &c in counts {
        offsets.push(sum);
        sum += c;
    }
    for x in src {
        let o = &mut offsets[digit.of(key(x))];
        dst[*o] = *x;
        *o += 1;
    }
}

/// SplitMix64 step for the crate's tests (deterministic pseudo-random inputs).
#[cfg(test)]
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_u32_like_std() {
        let mut s = 1;
        for &n in &[
            0usize,
            1,
            100,
            TINY + 1,
            SEQUENTIAL + 1,
            IN_CACHE + 1,
            200_000,
        ] {
            let v: Vec<u32> = (0..n).map(|_| splitmix(&mut s) as u32).collect();
            let mut want = v.clone();
            want.sort_unstable();
            assert_eq!(sort(v), want);
        }
    }

    #[test]
    fn sorts_u64_with_ties_and_skipped_passes() {
        let mut s = 2;
        // Only bytes 1 and 5 vary: the other passes are skipped.
        let v: Vec<u64> = (0..150_000)
            .map(|_| {
                let r = splitmix(&mut s);
                0x1100_0000_0000_0011 | ((r & 0xf) << 8) | (((r >> 8) & 0x3) << 40)
            })
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        assert_eq!(sort(v), want);
    }

    #[test]
    fn sorts_with_a_given_range_and_wide_keys() {
        let mut s = 5;
        let v: Vec<u64> = (0..100_000).map(|_| splitmix(&mut s)).collect();
        let range = key_range(&v, by_value);
        let mut want = v.clone();
        want.sort_unstable();
        assert_eq!(sort_parts(vec![v], by_value, range), want);
        let v: Vec<u64> = (0..100_000)
            .map(|_| 1_000_000 + splitmix(&mut s) % 3)
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        assert_eq!(
            sort_parts(vec![v], by_value, Some((1_000_000, 1_000_002))),
            want
        );
        assert_eq!(key_range::<u32>(&[], by_value), None);
        assert_eq!(key_range(&[5u32, 2, 9], by_value), Some((2, 9)));
    }

    #[test]
    fn skewed_keys_recurse_through_big_buckets() {
        let mut s = 6;
        // 95 % of the keys in a narrow band, the rest spread wide: big buckets recurse.
        let v: Vec<u32> = (0..400_000)
            .map(|i| {
                let r = splitmix(&mut s) as u32;
                if i % 20 == 0 {
                    r
                } else {
                    1_000_000 + r % 300_000
                }
            })
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        assert_eq!(sort(v), want);
        let mut scratch = Vec::new();
        let mut v: Vec<u64> = (0..200_000).map(|_| splitmix(&mut s) % 100_000).collect();
        let mut want = v.clone();
        want.sort_unstable();
        sort_seq(&mut v, &mut scratch, by_value);
        assert_eq!(v, want);
    }

    #[test]
    fn all_equal_keys_are_returned_unchanged() {
        let v = vec![7u32; 100_000];
        assert_eq!(sort(v.clone()), v);
    }

    #[test]
    fn parts_are_concatenated_and_sorted() {
        let mut s = 3;
        let parts: Vec<Vec<u32>> = (0..37)
            .map(|i| {
                (0..(i * 1_500))
                    .map(|_| (splitmix(&mut s) % 5000) as u32)
                    .collect()
            })
            .collect();
        let mut want = parts.concat();
        want.sort_unstable();
        assert_eq!(sort_parts(parts, by_value, None), want);
    }

    #[test]
    fn sorts_by_the_key_only() {
        let mut s = 4;
        // Sorted by the high half only: the low halves of equal keys may come in any order.
        let v: Vec<u64> = (0..120_000u64)
            .map(|i| ((splitmix(&mut s) % 1000) << 32) | i)
            .collect();
        let got = sort_parts(vec![v.clone()], |h| h >> 32, None);
        assert!(got.windows(2).all(|w| w[0] >> 32 <= w[1] >> 32));
        let (mut a, mut b) = (got, v);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "a permutation of the input");
    }
}
