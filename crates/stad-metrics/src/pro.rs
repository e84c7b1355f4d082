//! AU-PRO exactly as MVTec AD's evaluation defines it, and the connected-component labelling
//! it rests on.
//!
//! # Definition
//! * **Regions** are the connected components of each ground-truth mask (8-connected by
//!   default, [`Connectivity`]); a region never spans two images.
//! * **FPR(t)** = (defect-free pixels scoring `≥ t`) / (all defect-free pixels of all images).
//! * **PRO(t)** = the mean over all regions `r` of all images of `|{p ∈ r : s_p ≥ t}| / |r|`.
//! * One curve point per distinct score `t` (ties merged), the curve is padded with `(0, 0)`
//!   and `(1, 1)`.
//! * **AU-PRO(L)** = `(1/L) · ∫₀ᴸ PRO d FPR` by the trapezoid rule over the points with
//!   `FPR ≤ L`, plus, when no point lies exactly at `L`, the trapezoid up to the point at `L`
//!   linearly interpolated between its neighbours.
//!
//! The result is **divided by the integration limit `L`**, so a perfect detector scores 1
//! whatever `L` is. (anomalib's `AUPRO` divides by the largest FPR it kept instead of by `L`,
//! which is not MVTec's definition and changes the value.)
//!
//! # Algorithm
//! Labelling runs per image in parallel (rayon). The scores of the defect-free pixels, and
//! those of the region pixels packed with their region's size, are radix-sorted once (in
//! parallel), and one merged sweep from the top score down adds `1` to the false-positive
//! count for a defect-free pixel and `1/|r|` to the PRO sum for a pixel of region `r` (so
//! `PRO = sum / n_regions`), emitting a point at the end of each run of equal scores: `O(N)`
//! after the sort, nothing quadratic in the number of thresholds or regions.
//!
//! For a limit below 1, a first pass histograms the defect-free scores to find a score below
//! which the FPR is surely past the limit; pixels scoring below it are neither sorted nor
//! swept (at the usual 0.3 that is most of them). The curve up to the limit is unchanged.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, MapShape, Score, non_finite};
use crate::sort::{self, Key};

/// Which neighbours make two mask pixels part of the same region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connectivity {
    /// Edge neighbours only (up, down, left, right).
    Four,
    /// Edge and corner neighbours (MVTec AD's definition, `scipy.ndimage.label` with a 3×3
    /// structure of ones).
    #[default]
    Eight,
}

/// The connected regions of one mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regions {
    /// Per pixel (row-major): `0` for background, `k ≥ 1` for region `k`. Regions are numbered
    /// in raster order of their first pixel, as `scipy.ndimage.label` does.
    pub labels: Vec<u32>,
    /// `sizes[k − 1]` is the pixel count of region `k`.
    pub sizes: Vec<usize>,
}

impl Regions {
    /// Number of regions.
    pub fn count(&self) -> usize {
        self.sizes.len()
    }
}

/// Labels the connected regions of one `height × width` mask (row-major).
///
/// # Errors
/// [`MetricsError::ShapeMismatch`] when `mask.len() != height · width`,
/// [`MetricsError::Empty`] for an empty mask, [`MetricsError::MapTooLarge`] beyond `u32::MAX`
/// pixels.
pub fn label_regions<L: Label>(
    mask: &[L],
    height: usize,
    width: usize,
    connectivity: Connectivity,
) -> Result<Regions> {
    let hw = MapShape::new(1, height, width).check(mask.len(), mask.len())?;
    if u32::try_from(hw).is_err() {
        return Err(MetricsError::MapTooLarge(hw));
    }
    let mut s = Scratch::default();
    label_into(mask, height, width, connectivity, &mut s);
    Ok(Regions {
        labels: s.labels,
        sizes: s.sizes.iter().map(|&v| v as usize).collect(),
    })
}

/// Buffers reused from one image to the next.
#[derive(Default)]
struct Scratch {
    labels: Vec<u32>,
    sizes: Vec<u32>,
    stack: Vec<usize>,
}

/// Flood-fill labelling (depth-first, explicit stack) into `s.labels` / `s.sizes`.
fn label_into<L: Label>(mask: &[L], h: usize, w: usize, conn: Connectivity, s: &mut Scratch) {
    s.labels.clear();
    s.labels.resize(h * w, 0);
    s.sizes.clear();
    for start in 0..h * w {
        if s.labels[start] != 0 || !mask[start].is_anomalous() {
            continue;
        }
        let id = s.sizes.len() as u32 + 1;
        s.labels[start] = id;
        s.stack.push(start);
        let mut size = 0u32;
        while let Some(p) = s.stack.pop() {
            size += 1;
            let (y, x) = (p / w, p % w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    if conn == Connectivity::Four && ny != y && nx != x {
                        continue;
                    }
                    let q = ny * w + nx;
                    if s.labels[q] == 0 && mask[q].is_anomalous() {
                        s.labels[q] = id;
                        s.stack.push(q);
                    }
                }
            }
        }
        s.sizes.push(size);
    }
}

/// The PRO curve (see the [module docs](self) for the definition).
///
/// `fpr[k]`, `pro[k]` are for "anomalous when score ≥ `thresholds[k]`". The first point is
/// the padding `(0, 0)` with threshold `+∞`, the last the padding `(1, 1)` with threshold `−∞`
/// (JSON writes both as `null`); between them one point per distinct score, decreasing.
/// It holds one point per distinct pixel score: for millions of pixels prefer [`au_pro`],
/// which does not store the curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProCurve {
    /// False-positive rate over all defect-free pixels, non-decreasing.
    pub fpr: Vec<f64>,
    /// Mean per-region overlap, non-decreasing.
    pub pro: Vec<f64>,
    /// Thresholds, decreasing.
    pub thresholds: Vec<f64>,
    /// Number of ground-truth regions over all images.
    pub n_regions: usize,
    /// Number of defect-free pixels over all images.
    pub n_nominal_pixels: u64,
}

impl ProCurve {
    /// AU-PRO up to `limit`, normalised by `limit` (trapezoid, point at the limit
    /// interpolated: the same number as [`au_pro`]).
    ///
    /// # Errors
    /// [`MetricsError::InvalidLimit`] when `limit` is not in `(0, 1]`.
    pub fn au_pro(&self, limit: f64) -> Result<f64> {
        let mut integ = Integrator::new(limit)?;
        for (&x, &y) in self.fpr.iter().zip(&self.pro) {
            if !integ.push(x, y) {
                break;
            }
        }
        Ok(integ.finish())
    }
}

/// Streaming trapezoid of MVTec AD's `trapezoid(x, y, x_max)`, for points given in order of
/// non-decreasing `x`, starting at `(0, 0)`.
struct Integrator {
    limit: f64,
    px: f64,
    py: f64,
    area: f64,
    done: bool,
}

impl Integrator {
    fn new(limit: f64) -> Result<Self> {
        if !(limit > 0.0 && limit <= 1.0) {
            return Err(MetricsError::InvalidLimit(limit));
        }
        Ok(Self {
            limit,
            px: 0.0,
            py: 0.0,
            area: 0.0,
            done: false,
        })
    }

    /// Adds the point `(x, y)`; returns `false` once the points beyond the limit are not needed.
    #[inline]
    fn push(&mut self, x: f64, y: f64) -> bool {
        if self.done {
            return false;
        }
        if x <= self.limit {
            self.area += 0.5 * (y + self.py) * (x - self.px);
            self.px = x;
            self.py = y;
            true
        } else {
            if self.px < self.limit {
                // The point at the limit, interpolated between the last point at or before it
                // and the first one after it (MVTec AD's `correction`).
                let y_at = self.py + (y - self.py) * (self.limit - self.px) / (x - self.px);
                self.area += 0.5 * (y_at + self.py) * (self.limit - self.px);
            }
            self.done = true;
            false
        }
    }

    /// Pads with `(1, 1)` and returns the area divided by the limit.
    fn finish(mut self) -> f64 {
        self.push(1.0, 1.0);
        self.area / self.limit
    }
}

/// Bits of a key kept by the histogram that finds the pruning cut.
const CUT_BITS: u32 = 16;

/// Pixels per task of the pruning histogram.
const CUT_CHUNK: usize = 1 << 18;

/// The pixels, sorted by score: the keys of the defect-free pixels, and the keys of the region
/// pixels tagged with their region's size.
///
/// With a cut, only the pixels scoring at or above it are kept (all of them); the counts are
/// over all pixels.
struct Prepared<S: Score> {
    nominal: Vec<S::Key>,
    regions: Vec<S::Tagged>,
    n_nominal: u64,
    n_regions: u64,
    pruned: bool,
}

/// What one image contributes: nominal keys, tagged region keys, the pixel and region counts
/// and the key ranges of both.
type ImagePart<S> = (
    Vec<<S as Score>::Key>,
    Vec<<S as Score>::Tagged>,
    u64,
    u64,
    Option<(u64, u64)>,
    Option<(u64, u64)>,
);

impl<S: Score> Prepared<S> {
    /// Labels, tags and sorts the pixels. With `limit < 1`, the pixels scoring below the
    /// first score at which the FPR exceeds `limit` for sure are left out: they cannot move
    /// the curve up to the limit (the sweep stops at the first point beyond it).
    fn new<L: Label>(
        maps: &[S],
        masks: &[L],
        shape: MapShape,
        connectivity: Connectivity,
        limit: Option<f64>,
    ) -> Result<Self> {
        let hw = shape.check(maps.len(), masks.len())?;
        if u32::try_from(hw).is_err() {
            return Err(MetricsError::MapTooLarge(hw));
        }
        let cut = match limit {
            Some(limit) if limit < 1.0 => cut_key(maps, masks, limit)?,
            _ => None,
        };
        let lowest = cut.unwrap_or(0);
        let (h, w) = (shape.height, shape.width);
        let parts: Vec<ImagePart<S>> = maps
            .par_chunks(hw)
            .zip(masks.par_chunks(hw))
            .enumerate()
            .map_init(Scratch::default, |s, (i, (map, mask))| {
                let mut nominal = Vec::with_capacity(if lowest == 0 { hw } else { 0 });
                let mut regions = Vec::new();
                let (mut nominal_range, mut region_range) = ((u64::MAX, 0), (u64::MAX, 0));
                let widen = |(lo, hi): (u64, u64), k: u64| (lo.min(k), hi.max(k));
                let (n_nominal, n_regions) = if mask.iter().any(|m| m.is_anomalous()) {
                    label_into(mask, h, w, connectivity, s);
                    for (&v, &l) in map.iter().zip(&s.labels) {
                        let Some(k) = v.key() else {
                            return Err(non_finite(map, i * hw));
                        };
                        let wide = k.widen();
                        if wide < lowest {
                            continue;
                        }
                        if l == 0 {
                            nominal_range = widen(nominal_range, wide);
                            nominal.push(k);
                        } else {
                            region_range = widen(region_range, wide);
                            regions.push(S::tag(k, s.sizes[l as usize - 1]));
                        }
                    }
                    let n_nominal = s.labels.iter().filter(|&&l| l == 0).count() as u64;
                    (n_nominal, s.sizes.len() as u64)
                } else {
                    for &v in map {
                        let Some(k) = v.key() else {
                            return Err(non_finite(map, i * hw));
                        };
                        let wide = k.widen();
                        if wide >= lowest {
                            nominal_range = widen(nominal_range, wide);
                            nominal.push(k);
                        }
                    }
                    (hw as u64, 0)
                };
                let range = |(lo, hi): (u64, u64)| (lo <= hi).then_some((lo, hi));
                Ok((
                    nominal,
                    regions,
                    n_nominal,
                    n_regions,
                    range(nominal_range),
                    range(region_range),
                ))
            })
            .collect::<Result<_>>()?;
        let n_nominal = parts.iter().map(|p| p.2).sum();
        let n_regions = parts.iter().map(|p| p.3).sum();
        if n_regions == 0 {
            return Err(MetricsError::EmptyMasks {
                pixels: masks.len(),
            });
        }
        if n_nominal == 0 {
            return Err(MetricsError::NoNegatives);
        }
        let nominal_range = parts.iter().map(|p| p.4).fold(None, sort::merge_ranges);
        let region_range = parts.iter().map(|p| p.5).fold(None, sort::merge_ranges);
        let (nominal_parts, region_parts): (Vec<_>, Vec<_>) =
            parts.into_iter().map(|p| (p.0, p.1)).unzip();
        let (nominal, regions) = rayon::join(
            || sort::sort_parts(nominal_parts, sort::by_value, nominal_range),
            || sort::sort_parts(region_parts, S::tagged_key, region_range),
        );
        Ok(Self {
            nominal,
            regions,
            n_nominal,
            n_regions,
            pruned: cut.is_some(),
        })
    }

    /// Calls `emit(threshold key, fpr, pro)` once per distinct score, from the highest down,
    /// until it returns `false`.
    fn sweep(&self, mut emit: impl FnMut(S::Key, f64, f64) -> bool) {
        let (n_nominal, n_regions) = (self.n_nominal as f64, self.n_regions as f64);
        let (nominal, regions) = (&self.nominal[..], &self.regions[..]);
        let (mut i, mut j) = (nominal.len(), regions.len());
        let mut pro_sum = 0.0f64;
        loop {
            let top_region = j.checked_sub(1).map(|j| S::untag(regions[j]).0);
            let key = match (i.checked_sub(1).map(|i| nominal[i]), top_region) {
                (None, None) => return,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (Some(a), Some(b)) => a.max(b),
            };
            while i > 0 && nominal[i - 1] == key {
                i -= 1;
            }
            while j > 0 {
                let (k, size) = S::untag(regions[j - 1]);
                if k != key {
                    break;
                }
                pro_sum += 1.0 / f64::from(size);
                j -= 1;
            }
            let fp = (nominal.len() - i) as f64;
            if !emit(key, fp / n_nominal, pro_sum / n_regions) {
                return;
            }
        }
    }
}

/// The lowest sort key to keep for an AU-PRO up to `limit < 1`: the bottom of the histogram
/// bucket (top [`CUT_BITS`] bits of the key) where, counting defect-free pixels from the top
/// score down, `⌊limit·N⌋ + 2` is reached (`N` = all defect-free pixels; the `+ 2` keeps
/// the FPR of the last kept point strictly above `limit` despite rounding). `None` when
/// nothing would be pruned. Also rejects non-finite scores.
fn cut_key<S: Score, L: Label>(maps: &[S], masks: &[L], limit: f64) -> Result<Option<u64>> {
    let shift = <S::Key as Key>::BITS - CUT_BITS;
    let hist = maps
        .par_chunks(CUT_CHUNK)
        .zip(masks.par_chunks(CUT_CHUNK))
        .enumerate()
        .try_fold(
            || vec![0u64; 1 << CUT_BITS],
            |mut hist, (c, (map, mask))| {
                for (&v, &m) in map.iter().zip(mask) {
                    let Some(k) = v.key() else {
                        return Err(non_finite(map, c * CUT_CHUNK));
                    };
                    if !m.is_anomalous() {
                        hist[(k.widen() >> shift) as usize] += 1;
                    }
                }
                Ok(hist)
            },
        )
        .try_reduce(
            || vec![0u64; 1 << CUT_BITS],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                Ok(a)
            },
        )?;
    let n: u64 = hist.iter().sum();
    let needed = ((limit * n as f64).floor() as u64).saturating_add(2).min(n);
    let mut seen = 0;
    for (bucket, &count) in hist.iter().enumerate().rev() {
        seen += count;
        if seen >= needed {
            return Ok((bucket > 0).then_some((bucket as u64) << shift));
        }
    }
    Ok(None)
}

/// AU-PRO of anomaly maps against ground-truth masks up to the FPR `limit` (MVTec AD's
/// definition with 8-connected regions, see the [module docs](self)), normalised by `limit`.
///
/// `maps` and `masks` hold `shape.count` maps of `shape.height × shape.width`, flattened in C
/// order; masks are anomalous where `true`/non-zero. The usual limit is `0.3`.
///
/// # Errors
/// [`MetricsError::InvalidLimit`] (limit outside `(0, 1]`), [`MetricsError::ShapeMismatch`],
/// [`MetricsError::Empty`], [`MetricsError::NonFinite`], [`MetricsError::EmptyMasks`] (no
/// region: every mask is empty), [`MetricsError::NoNegatives`] (no defect-free pixel),
/// [`MetricsError::MapTooLarge`].
pub fn au_pro<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    limit: f64,
) -> Result<f64> {
    au_pro_with(maps, masks, shape, limit, Connectivity::Eight)
}

/// [`au_pro`] with a choice of region [`Connectivity`].
///
/// # Errors
/// As [`au_pro`].
pub fn au_pro_with<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    limit: f64,
    connectivity: Connectivity,
) -> Result<f64> {
    let shape = shape.into();
    let mut integ = Integrator::new(limit)?;
    let prepared = Prepared::new(maps, masks, shape, connectivity, Some(limit))?;
    prepared.sweep(|_, fpr, pro| integ.push(fpr, pro));
    if prepared.pruned && !integ.done {
        // Never expected (the cut keeps the first point beyond the limit): redo in full.
        drop(prepared);
        integ = Integrator::new(limit)?;
        Prepared::new(maps, masks, shape, connectivity, None)?
            .sweep(|_, fpr, pro| integ.push(fpr, pro));
    }
    Ok(integ.finish())
}

/// The full PRO curve (see [`ProCurve`]); [`ProCurve::au_pro`] integrates it.
///
/// # Errors
/// As [`au_pro`], without the limit.
pub fn pro_curve<S: Score, L: Label>(
    maps: &[S],
    masks: &[L],
    shape: impl Into<MapShape>,
    connectivity: Connectivity,
) -> Result<ProCurve> {
    let prepared = Prepared::new(maps, masks, shape.into(), connectivity, None)?;
    let mut curve = ProCurve {
        fpr: vec![0.0],
        pro: vec![0.0],
        thresholds: vec![f64::INFINITY],
        n_regions: prepared.n_regions as usize,
        n_nominal_pixels: prepared.n_nominal,
    };
    prepared.sweep(|key, fpr, pro| {
        curve.fpr.push(fpr);
        curve.pro.push(pro);
        curve.thresholds.push(S::key_to_f64(key));
        true
    });
    curve.fpr.push(1.0);
    curve.pro.push(1.0);
    curve.thresholds.push(f64::NEG_INFINITY);
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0/1 mask from rows of '.' and '#'.
    fn mask(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        (
            rows.iter()
                .flat_map(|r| r.bytes().map(|b| b == b'#'))
                .collect(),
            rows.len(),
            w,
        )
    }

    #[test]
    fn four_vs_eight_connectivity() {
        let (m, h, w) = mask(&["#...", ".#..", "..##", "....", "#..#"]);
        let eight = label_regions(&m, h, w, Connectivity::Eight).unwrap();
        let four = label_regions(&m, h, w, Connectivity::Four).unwrap();
        // 8: the diagonal chain {(0,0),(1,1),(2,2),(2,3)} is one region, plus two corners.
        assert_eq!(eight.count(), 3);
        assert_eq!(eight.sizes, vec![4, 1, 1]);
        // 4: (0,0), (1,1), {(2,2),(2,3)}, and the two corners.
        assert_eq!(four.count(), 5);
        assert_eq!(four.sizes, vec![1, 1, 2, 1, 1]);
        assert_eq!(eight.labels[0], 1);
        assert_eq!(eight.labels[w + 1], 1);
        assert_eq!(four.labels[w + 1], 2);
        assert_eq!(eight.labels[4 * w], 2);
        assert_eq!(eight.labels[4 * w + 3], 3);
    }

    #[test]
    fn label_errors() {
        assert!(matches!(
            label_regions(&[true; 5], 2, 3, Connectivity::Eight),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        assert_eq!(
            label_regions::<bool>(&[], 0, 3, Connectivity::Eight),
            Err(MetricsError::Empty)
        );
    }

    #[test]
    fn region_fully_covered_at_top_score_gives_pro_one() {
        // One 2x2 region scoring 0.9; the 12 background pixels score 0.1.
        let (m, h, w) = mask(&["....", ".##.", ".##.", "...."]);
        let map: Vec<f32> = m.iter().map(|&a| if a { 0.9 } else { 0.1 }).collect();
        let c = pro_curve(&map, &m, (1, h, w), Connectivity::Eight).unwrap();
        assert_eq!(c.n_regions, 1);
        assert_eq!(c.n_nominal_pixels, 12);
        // (0,0) pad, t=0.9 -> (0, 1), t=0.1 -> (1, 1), (1,1) pad.
        assert_eq!(c.fpr, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(c.pro, vec![0.0, 1.0, 1.0, 1.0]);
        assert_eq!(c.thresholds[1], f64::from(0.9f32));
        assert_eq!(au_pro(&map, &m, (1, h, w), 0.3), Ok(1.0));
        assert_eq!(au_pro(&map, &m, (1, h, w), 1.0), Ok(1.0));
    }

    #[test]
    fn pro_is_the_mean_over_regions_and_interpolated_at_the_limit() {
        // Image 0: region A (2 px) scores 0.8 and 0.2; image 1: region B (1 px) scores 0.5.
        // Background: four pixels at 0.6, 0.4, 0.3, 0.1 (one per threshold band).
        let m = [true, true, false, false, true, false, false, false];
        let map = [0.8f64, 0.2, 0.6, 0.4, 0.5, 0.3, 0.1, 0.0];
        let c = pro_curve(&map, &m, (2, 1, 4), Connectivity::Eight).unwrap();
        assert_eq!(c.n_regions, 2);
        // PRO: t=.8 -> (½)/2 = .25; t=.5 -> (½+1)/2 = .75; t=.2 -> 1.
        // FPR over 5 defect-free pixels (0.6, 0.4, 0.3, 0.1, 0.0).
        assert_eq!(c.thresholds[1..8], [0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]);
        assert_eq!(c.fpr[1..8], [0.0, 0.2, 0.2, 0.4, 0.6, 0.6, 0.8]);
        assert_eq!(c.pro[1..8], [0.25, 0.25, 0.75, 0.75, 0.75, 1.0, 1.0]);
        // Up to 0.3: [0,0]->[0,.25] 0; [0,.2] trapezoid .25·.2 = .05; [.2,.2] 0;
        // [.2,.4] interpolated at .3: y = .75 -> .75·.1 = .075. Total .125 / .3.
        let a = au_pro(&map, &m, (2, 1, 4), 0.3).unwrap();
        assert!((a - 0.125 / 0.3).abs() < 1e-15, "{a}");
        assert!((c.au_pro(0.3).unwrap() - a).abs() < 1e-15);
        // Exactly at a point (0.4): no interpolation; .05 + .75·.2 = .2, / .4.
        let a = au_pro(&map, &m, (2, 1, 4), 0.4).unwrap();
        assert!((a - 0.2 / 0.4).abs() < 1e-15, "{a}");
        // Full curve: .05 + .15 + .75·.2 (.4->.6) + 1·.2 (.6->.8) + (1+1)/2·.2 (.8->1) = .75.
        let a = au_pro(&map, &m, (2, 1, 4), 1.0).unwrap();
        assert!((a - 0.75).abs() < 1e-15, "{a}");
        assert!((c.au_pro(1.0).unwrap() - a).abs() < 1e-15);
    }

    #[test]
    fn pruned_sweep_equals_the_full_curve() {
        // 40 maps of 16x16 with a smooth-ish score, a blob in every other map.
        let (n, h, w) = (40, 16, 16);
        let mut maps = Vec::new();
        let mut masks = Vec::new();
        for i in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let blob =
                        i % 2 == 1 && (y as i32 - 8).abs() + (x as i32 - (i % 12) as i32).abs() < 4;
                    let noise = ((i * 7919 + y * 104_729 + x * 1_299_709) % 1000) as f32 / 1000.0;
                    maps.push(noise * 0.6 + if blob { 0.35 } else { 0.0 });
                    masks.push(blob);
                }
            }
        }
        let curve = pro_curve(&maps, &masks, (n, h, w), Connectivity::Eight).unwrap();
        for limit in [0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.999, 1.0] {
            let prepared = Prepared::new(
                &maps,
                &masks,
                (n, h, w).into(),
                Connectivity::Eight,
                Some(limit),
            )
            .unwrap();
            assert_eq!(prepared.pruned, limit < 1.0, "limit {limit}");
            let kept = prepared.nominal.len() + prepared.regions.len();
            assert!(limit == 1.0 || kept < maps.len() || limit > 0.9);
            let streamed = au_pro(&maps, &masks, (n, h, w), limit).unwrap();
            assert_eq!(streamed, curve.au_pro(limit).unwrap(), "limit {limit}");
        }
    }

    /// MVTec AD's `compute_pro` + `trapezoid`, transcribed with the standard library's sort.
    fn naive_au_pro(
        maps: &[f32],
        masks: &[bool],
        (n, h, w): (usize, usize, usize),
        limit: f64,
    ) -> f64 {
        let mut fp_change = vec![0.0f64; maps.len()];
        let mut pro_change = vec![0.0f64; maps.len()];
        let (mut n_ok, mut n_regions) = (0.0, 0.0);
        for i in 0..n {
            let r = label_regions(
                &masks[i * h * w..(i + 1) * h * w],
                h,
                w,
                Connectivity::Eight,
            )
            .unwrap();
            n_regions += r.count() as f64;
            for (p, &l) in r.labels.iter().enumerate() {
                if l == 0 {
                    n_ok += 1.0;
                    fp_change[i * h * w + p] = 1.0;
                } else {
                    pro_change[i * h * w + p] = 1.0 / r.sizes[l as usize - 1] as f64;
                }
            }
        }
        let mut order: Vec<usize> = (0..maps.len()).collect();
        order.sort_by(|&a, &b| maps[b].total_cmp(&maps[a]));
        let (mut x, mut y) = (vec![0.0], vec![0.0]);
        let (mut fp, mut pro) = (0.0, 0.0);
        for (k, &p) in order.iter().enumerate() {
            fp += fp_change[p];
            pro += pro_change[p];
            if k + 1 == order.len() || maps[order[k + 1]] != maps[p] {
                x.push(fp / n_ok);
                y.push(pro / n_regions);
            }
        }
        x.push(1.0);
        y.push(1.0);
        let mut area = 0.0;
        for k in 1..x.len() {
            if x[k] <= limit {
                area += 0.5 * (y[k] + y[k - 1]) * (x[k] - x[k - 1]);
            } else {
                if x[k - 1] < limit {
                    let yi = y[k - 1] + (y[k] - y[k - 1]) * (limit - x[k - 1]) / (x[k] - x[k - 1]);
                    area += 0.5 * (yi + y[k - 1]) * (limit - x[k - 1]);
                }
                break;
            }
        }
        area / limit
    }

    #[test]
    fn large_input_matches_mvtec_transcription() {
        // 120 maps of 40x40 (192 000 pixels: the parallel radix paths run), blobs in a third.
        let (n, h, w) = (120, 40, 40);
        let mut maps = Vec::with_capacity(n * h * w);
        let mut masks = Vec::with_capacity(n * h * w);
        for i in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let (cy, cx) = ((i * 7) % 30 + 5, (i * 13) % 30 + 5);
                    let d = (y as i32 - cy as i32).pow(2) + (x as i32 - cx as i32).pow(2);
                    let blob = i % 3 == 0 && (d < 9 || (d < 30 && (x + y) % 5 == 0));
                    let noise = ((i * 7919 + y * 104_729 + x * 1_299_709) % 977) as f32 / 977.0;
                    let v = noise * 0.5 + if blob { 0.4 } else { 0.0 };
                    maps.push((v * 100.0).round() / 100.0);
                    masks.push(blob);
                }
            }
        }
        for limit in [0.05, 0.3, 1.0] {
            let got = au_pro(&maps, &masks, (n, h, w), limit).unwrap();
            let want = naive_au_pro(&maps, &masks, (n, h, w), limit);
            assert!((got - want).abs() < 1e-12, "limit {limit}: {got} vs {want}");
        }
    }

    #[test]
    fn errors() {
        let m = [true, false];
        let map = [0.5f32, 0.1];
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                au_pro(&map, &m, (1, 1, 2), bad),
                Err(MetricsError::InvalidLimit(_))
            ));
        }
        assert_eq!(
            au_pro(&map, &[false, false], (1, 1, 2), 0.3),
            Err(MetricsError::EmptyMasks { pixels: 2 })
        );
        assert_eq!(
            au_pro(&map, &[true, true], (1, 1, 2), 0.3),
            Err(MetricsError::NoNegatives)
        );
        assert!(matches!(
            au_pro(&map, &m, (1, 2, 2), 0.3),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            au_pro(
                &[0.5f32, f32::NAN, 0.2, 0.1],
                &[1u8, 0, 0, 1],
                (2, 1, 2),
                0.3
            ),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            au_pro(
                &[0.5f32, 0.1, 0.2, f32::NEG_INFINITY],
                &[1u8, 0, 0, 1],
                (2, 1, 2),
                0.3
            ),
            Err(MetricsError::NonFinite { index: 3, .. })
        ));
    }
}
