//! Sort once, sweep once: the scores of positives and negatives, each sorted, walked from the
//! highest score down, one step per distinct score (ties merged).

use rayon::prelude::*;

use crate::error::{MetricsError, Result};
use crate::input::{Label, Score, check_lengths, non_finite};
use crate::sort;

/// Chunk length of the parallel split.
const SPLIT_CHUNK: usize = 1 << 16;

/// Positives per parallel task of the AUROC merge (`2·len(neg)·AUC_CHUNK` must fit a `u64`).
const AUC_CHUNK: usize = 1 << 14;

/// Smallest and largest key of a slice.
fn range_of<K: sort::Key>(keys: &[K]) -> Option<(u64, u64)> {
    let lo = keys.iter().min()?.widen();
    let hi = keys.iter().max()?.widen();
    Some((lo, hi))
}

/// One chunk's positive and negative keys, with their key ranges.
type SplitPart<S> = (
    Vec<<S as Score>::Key>,
    Vec<<S as Score>::Key>,
    Option<(u64, u64)>,
    Option<(u64, u64)>,
);

/// Keys of the positive and of the negative scores, each sorted ascending.
pub(crate) struct Split<S: Score> {
    pub pos: Vec<S::Key>,
    pub neg: Vec<S::Key>,
}

/// One step of the descending sweep: the samples scoring `>= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Step<K> {
    /// Key of the distinct score this step stands at.
    pub key: K,
    /// Positives scoring at or above it (cumulative).
    pub tp: u64,
    /// Negatives scoring at or above it (cumulative).
    pub fp: u64,
}

impl<S: Score> Split<S> {
    /// Validates (lengths, finiteness), splits by label and sorts both sides.
    /// Does not require both classes to be present (see [`Split::require_both`]).
    pub fn new<L: Label>(scores: &[S], labels: &[L]) -> Result<Self> {
        check_lengths(scores.len(), labels.len())?;
        let parts: Vec<SplitPart<S>> = scores
            .par_chunks(SPLIT_CHUNK)
            .zip(labels.par_chunks(SPLIT_CHUNK))
            .enumerate()
            .map(|(c, (s, l))| {
                let mut pos = Vec::new();
                let mut neg = Vec::with_capacity(s.len());
                for (&x, &y) in s.iter().zip(l) {
                    let Some(k) = x.key() else {
                        return Err(non_finite(s, c * SPLIT_CHUNK));
                    };
                    if y.is_anomalous() {
                        pos.push(k);
                    } else {
                        neg.push(k);
                    }
                }
                let (pr, nr) = (range_of(&pos), range_of(&neg));
                Ok((pos, neg, pr, nr))
            })
            .collect::<Result<_>>()?;
        let (mut pos, mut neg) = (
            Vec::with_capacity(parts.len()),
            Vec::with_capacity(parts.len()),
        );
        let (mut pos_range, mut neg_range) = (None, None);
        for (p, n, pr, nr) in parts {
            pos.push(p);
            neg.push(n);
            pos_range = sort::merge_ranges(pos_range, pr);
            neg_range = sort::merge_ranges(neg_range, nr);
        }
        let (pos, neg) = rayon::join(
            || sort::sort_parts(pos, sort::by_value, pos_range),
            || sort::sort_parts(neg, sort::by_value, neg_range),
        );
        Ok(Self { pos, neg })
    }

    /// Errors unless there is at least one positive and one negative.
    pub fn require_both(self) -> Result<Self> {
        if self.pos.is_empty() {
            return Err(MetricsError::NoPositives);
        }
        if self.neg.is_empty() {
            return Err(MetricsError::NoNegatives);
        }
        Ok(self)
    }

    /// Number of positives.
    pub fn n_pos(&self) -> u64 {
        self.pos.len() as u64
    }

    /// Number of negatives.
    pub fn n_neg(&self) -> u64 {
        self.neg.len() as u64
    }

    /// The steps, from the highest distinct score down to the lowest.
    pub fn steps(&self) -> Steps<'_, S> {
        Steps {
            pos: &self.pos,
            neg: &self.neg,
            i: self.pos.len(),
            j: self.neg.len(),
        }
    }

    /// Twice the Mann–Whitney `U`, as an exact integer:
    /// `2U = Σ_{p ∈ pos} (#{n : s_n < s_p} + #{n : s_n ≤ s_p})` (a tied pair counts 1/2).
    ///
    /// Chunks of the sorted positives are merged with the sorted negatives in parallel, each
    /// starting from a binary search.
    pub fn auc_numerator(&self) -> u128 {
        let neg = &self.neg[..];
        self.pos
            .par_chunks(AUC_CHUNK)
            .map(|c| {
                let mut lt = neg.partition_point(|&k| k < c[0]);
                let mut le = lt;
                let mut acc = 0u64;
                for &p in c {
                    while lt < neg.len() && neg[lt] < p {
                        lt += 1;
                    }
                    le = le.max(lt);
                    while le < neg.len() && neg[le] <= p {
                        le += 1;
                    }
                    acc += (lt + le) as u64;
                }
                u128::from(acc)
            })
            .sum()
    }

    /// Exact AUROC (Mann–Whitney `U / (P·N)` with ties counting 1/2).
    pub fn auroc(&self) -> f64 {
        let denom = 2 * u128::from(self.n_pos()) * u128::from(self.n_neg());
        self.auc_numerator() as f64 / denom as f64
    }
}

/// Iterator over the [`Step`]s of a [`Split`], highest score first.
pub(crate) struct Steps<'a, S: Score> {
    pos: &'a [S::Key],
    neg: &'a [S::Key],
    i: usize,
    j: usize,
}

impl<S: Score> Iterator for Steps<'_, S> {
    type Item = Step<S::Key>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let key = match (self.i.checked_sub(1), self.j.checked_sub(1)) {
            (None, None) => return None,
            (Some(a), None) => self.pos[a],
            (None, Some(b)) => self.neg[b],
            (Some(a), Some(b)) => self.pos[a].max(self.neg[b]),
        };
        while self.i > 0 && self.pos[self.i - 1] == key {
            self.i -= 1;
        }
        while self.j > 0 && self.neg[self.j - 1] == key {
            self.j -= 1;
        }
        Some(Step {
            key,
            tp: (self.pos.len() - self.i) as u64,
            fp: (self.neg.len() - self.j) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_merge_ties() {
        let scores = [0.1f32, 0.4, 0.35, 0.8, 0.4, 0.1];
        let labels = [false, false, true, true, true, false];
        let split = Split::new(&scores, &labels).unwrap();
        let steps: Vec<(f64, u64, u64)> = split
            .steps()
            .map(|s| (f32::key_to_f64(s.key), s.tp, s.fp))
            .collect();
        let f = |x: f32| f64::from(x);
        assert_eq!(
            steps,
            vec![
                (f(0.8), 1, 0),
                (f(0.4), 2, 1),
                (f(0.35), 3, 1),
                (f(0.1), 3, 3)
            ]
        );
        // U = 3 (0.8) + 2.5 (0.4 vs 0.4 tie and 0.1 pair...) computed by hand:
        // positives 0.35, 0.8, 0.4 vs negatives 0.1, 0.4, 0.1:
        // 0.35 > 0.1, 0.1 -> 2; 0.8 -> 3; 0.4 > 0.1, 0.1, tie 0.4 -> 2.5; U = 7.5 of 9.
        assert_eq!(split.auroc(), 7.5 / 9.0);
    }

    /// Mann–Whitney by the standard library's sort: ranks with ties grouped.
    fn naive_auroc(scores: &[f64], labels: &[bool]) -> f64 {
        let mut v: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut u2, mut neg_below) = (0u128, 0u128);
        let mut i = 0;
        while i < v.len() {
            let j = i + v[i..].iter().take_while(|x| x.0 == v[i].0).count();
            let pos = v[i..j].iter().filter(|x| x.1).count() as u128;
            let neg = (j - i) as u128 - pos;
            u2 += pos * (2 * neg_below + neg);
            neg_below += neg;
            i = j;
        }
        let p = labels.iter().filter(|&&l| l).count() as f64;
        u2 as f64 / (2.0 * p * (labels.len() as f64 - p))
    }

    use crate::sort::splitmix;

    #[test]
    fn large_inputs_match_a_naive_count() {
        // Beyond the sequential threshold, so that the parallel radix paths run: f32 with
        // many ties, and f64 over a wide range (deep most-significant-digit recursion).
        let mut s = 9;
        let n = 300_000;
        let labels: Vec<bool> = (0..n).map(|_| splitmix(&mut s).is_multiple_of(7)).collect();
        let coarse: Vec<f32> = labels
            .iter()
            .map(|&l| (splitmix(&mut s) % 5000) as f32 / 1000.0 + if l { 0.7 } else { 0.0 })
            .collect();
        let wide: Vec<f64> = labels
            .iter()
            .map(|&l| {
                let x = (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
                (x * 60.0 - 30.0).exp() * if l { 1.5 } else { 1.0 } - 1e-6
            })
            .collect();
        let c64: Vec<f64> = coarse.iter().map(|&v| f64::from(v)).collect();
        let a = Split::new(&coarse, &labels).unwrap().auroc();
        assert!((a - naive_auroc(&c64, &labels)).abs() < 1e-12, "{a}");
        let a = Split::new(&wide, &labels).unwrap().auroc();
        assert!((a - naive_auroc(&wide, &labels)).abs() < 1e-12, "{a}");
        let split = Split::new(&wide, &labels).unwrap();
        assert!(split.neg.windows(2).all(|w| w[0] <= w[1]));
        assert!(split.pos.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn nan_is_reported_with_its_index() {
        let mut scores = vec![0.5f64; 100_000];
        scores[70_001] = f64::NAN;
        let labels = vec![false; 100_000];
        match Split::new(&scores, &labels) {
            Err(MetricsError::NonFinite { index, value }) => {
                assert_eq!(index, 70_001);
                assert!(value.is_nan());
            }
            _ => panic!("expected NonFinite"),
        }
    }
}
