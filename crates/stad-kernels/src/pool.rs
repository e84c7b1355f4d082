//! 2-D max pooling on contiguous NCHW `f32` slices: the forward pass (with or without the
//! position of each maximum) and its gradient.
//!
//! `y[b, c, i, j] = max_{u, v} x[b, c, i·s₀ + u·d₀ − p₀, j·s₁ + v·d₁ − p₁]` over the taps that
//! fall inside the image (the padding never wins, as if it held −∞). Ties go to the first tap in
//! row-major `(u, v)` order, as in PyTorch and burn, and a NaN in a window is the window's
//! maximum (PyTorch's rule: a NaN is not silently dropped). The gradient sends `dy` to the
//! input position of each window's maximum: `dx[p] = Σ_{windows with argmax p} dy`.
//!
//! burn-flex 0.21 runs every max pooling, inference included, through a scalar 3-D loop that
//! also writes an `i64` index per output; in the ResNet stem (3×3, stride 2, on 64×112×112 per
//! image) that was a fifth of a teacher forward pass.

use multiversion::multiversion;
use rayon::prelude::*;

/// Shape of a 2-D max pooling on NCHW data (floor mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Channels (pooled independently).
    pub channels: usize,
    /// Input height and width.
    pub in_size: [usize; 2],
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride (rows, columns).
    pub stride: [usize; 2],
    /// Dilation (rows, columns).
    pub dilation: [usize; 2],
    /// Padding before the first row and column (top, left).
    pub pad_begin: [usize; 2],
    /// Padding after the last row and column (bottom, right).
    pub pad_end: [usize; 2],
    /// Output height and width (derived).
    pub out_size: [usize; 2],
}

impl PoolGeometry {
    /// The geometry, or `None` when a size, stride or dilation is zero, a padding is not smaller
    /// than the window (a window could then hold no input), or the window does not fit the
    /// padded input.
    pub fn new(
        x_dims: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad_begin: [usize; 2],
        pad_end: [usize; 2],
    ) -> Option<Self> {
        let [batch, channels, h, w] = x_dims;
        let mut out_size = [0; 2];
        for axis in 0..2 {
            let (k, s, d) = (kernel[axis], stride[axis], dilation[axis]);
            if k == 0 || s == 0 || d == 0 || [h, w][axis] == 0 {
                return None;
            }
            let extent = d * (k - 1) + 1;
            let padded = [h, w][axis] + pad_begin[axis] + pad_end[axis];
            if pad_begin[axis] >= extent || pad_end[axis] >= extent || padded < extent {
                return None;
            }
            out_size[axis] = (padded - extent) / s + 1;
        }
        Some(Self {
            batch,
            channels,
            in_size: [h, w],
            kernel,
            stride,
            dilation,
            pad_begin,
            pad_end,
            out_size,
        })
    }

    /// `[B, C, H_out, W_out]`.
    pub fn y_dims(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels,
            self.out_size[0],
            self.out_size[1],
        ]
    }

    fn in_plane(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_plane(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// The input index of tap `u` of output `o` along `axis`, if inside the image.
    fn tap(&self, axis: usize, o: usize, u: usize) -> Option<usize> {
        (o * self.stride[axis] + u * self.dilation[axis])
            .checked_sub(self.pad_begin[axis])
            .filter(|&i| i < self.in_size[axis])
    }
}

/// `candidate` replaces `best`: strictly larger, or NaN (the first NaN stays).
#[inline(always)]
fn wins(candidate: f32, best: f32) -> bool {
    (candidate > best) | (candidate.is_nan() & !best.is_nan())
}

/// `max(best, candidate)` that propagates NaN (branch-free, so the row loops vectorise).
#[inline(always)]
fn nan_max(best: f32, candidate: f32) -> f32 {
    if (candidate > best) | candidate.is_nan() {
        candidate
    } else {
        best
    }
}

/// The forward pass without positions (inference): per output row, the column-wise maximum
/// over the window's rows into a row padded with −∞, then the maximum over each window's
/// columns with no bounds tests.
pub fn forward(g: &PoolGeometry, x: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.channels * g.in_plane(), "input length");
    let [_, w] = g.in_size;
    let [oh_n, ow_n] = g.out_size;
    let (pad, s1, d1) = (g.pad_begin[1], g.stride[1], g.dilation[1]);
    // Long enough for every tap of every output window, padding included.
    let padded_w = ((ow_n - 1) * s1 + (g.kernel[1] - 1) * d1 + 1).max(pad + w);
    let n = g.batch * g.channels * g.out_plane();
    crate::buffer::zeroed_chunks(n, g.out_plane(), true, |plane, yp| {
        let xp = &x[plane * g.in_plane()..][..g.in_plane()];
        let mut padded = vec![f32::NEG_INFINITY; padded_w];
        for oh in 0..oh_n {
            let rows = &mut padded[pad..pad + w];
            let mut first = true;
            for u in 0..g.kernel[0] {
                let Some(ih) = g.tap(0, oh, u) else { continue };
                let src = &xp[ih * w..][..w];
                if first {
                    rows.copy_from_slice(src);
                    first = false;
                } else {
                    for (r, &v) in rows.iter_mut().zip(src) {
                        *r = nan_max(*r, v);
                    }
                }
            }
            let out = &mut yp[oh * ow_n..][..ow_n];
            for (ow, o) in out.iter_mut().enumerate() {
                let window = &padded[ow * s1..];
                let mut best = window[0];
                for v in 1..g.kernel[1] {
                    best = nan_max(best, window[v * d1]);
                }
                *o = best;
            }
        }
    })
}

/// The forward pass and, per output, the position of its maximum within the input plane
/// (`ih·W + iw`; the first tap in `(u, v)` order on ties).
pub fn forward_with_argmax(g: &PoolGeometry, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(x.len(), g.batch * g.channels * g.in_plane(), "input length");
    assert!(g.in_plane() <= u32::MAX as usize, "input plane too large");
    let [_, w] = g.in_size;
    let [oh_n, ow_n] = g.out_size;
    let n = g.batch * g.channels * g.out_plane();
    let (mut y, mut arg) = (vec![0.0f32; n], vec![0u32; n]);
    // Per window column `v`: the outputs whose tap `v` falls inside a row (a contiguous range).
    let columns: Vec<(usize, usize)> = (0..g.kernel[1])
        .map(|v| {
            let inside: Vec<usize> = (0..ow_n).filter(|&ow| g.tap(1, ow, v).is_some()).collect();
            inside
                .first()
                .map_or((0, 0), |&lo| (lo, inside[inside.len() - 1] + 1))
        })
        .collect();
    y.par_chunks_exact_mut(g.out_plane())
        .zip(arg.par_chunks_exact_mut(g.out_plane()))
        .zip(x.par_chunks_exact(g.in_plane()))
        .for_each(|((yp, ap), xp)| {
            let mut tap_row = vec![0.0f32; ow_n];
            for oh in 0..oh_n {
                let (best, at) = (&mut yp[oh * ow_n..][..ow_n], &mut ap[oh * ow_n..][..ow_n]);
                at.fill(UNSEEN);
                for u in 0..g.kernel[0] {
                    let Some(ih) = g.tap(0, oh, u) else { continue };
                    for (v, &(lo, hi)) in columns.iter().enumerate() {
                        if lo == hi {
                            continue;
                        }
                        // Input column of output `ow`: `ow·s + v·d − p`.
                        let first = lo * g.stride[1] + v * g.dilation[1] - g.pad_begin[1];
                        let values = &mut tap_row[lo..hi];
                        crate::kernels::gather_strided(
                            values,
                            &xp[ih * w + first..(ih + 1) * w],
                            g.stride[1],
                        );
                        let base = (ih * w + first) as u32;
                        tap_into_row(
                            (&mut best[lo..hi], &mut at[lo..hi]),
                            values,
                            (base, g.stride[1] as u32),
                        );
                    }
                }
            }
        });
    (y, arg)
}

/// The position [`forward_with_argmax`] marks an output with before its first tap (never a
/// real position: the plane has fewer than `u32::MAX` values).
const UNSEEN: u32 = u32::MAX;

/// One tap of [`forward_with_argmax`] over a run of outputs: where the output has no value yet
/// (its position is [`UNSEEN`]) or the tap [`wins`], it takes the tap's value and position
/// (`base + i·step` for the run's `i`-th output). Selects only, no branch, so the loop
/// vectorises.
#[multiversion(targets = "simd")]
fn tap_into_row((best, at): (&mut [f32], &mut [u32]), values: &[f32], (base, step): (u32, u32)) {
    for (i, ((b, a), &v)) in best.iter_mut().zip(at.iter_mut()).zip(values).enumerate() {
        let take = (*a == UNSEEN) | wins(v, *b);
        *b = if take { v } else { *b };
        *a = if take { base + i as u32 * step } else { *a };
    }
}

/// The input gradient from `dy` and the positions of [`forward_with_argmax`]
/// (contributions to one input added in output order: deterministic).
pub fn backward(g: &PoolGeometry, argmax: &[u32], dy: &[f32]) -> Vec<f32> {
    let n = g.batch * g.channels * g.out_plane();
    assert!(argmax.len() == n && dy.len() == n, "gradient length");
    let (n_in, n_out) = (g.in_plane(), g.out_plane());
    crate::buffer::zeroed_chunks(g.batch * g.channels * n_in, n_in, true, |plane, dxp| {
        let (ap, dyp) = (
            &argmax[plane * n_out..][..n_out],
            &dy[plane * n_out..][..n_out],
        );
        for (&p, &d) in ap.iter().zip(dyp) {
            dxp[p as usize] += d;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::uniform;

    /// The definition, one window at a time (positions in `(u, v)` order).
    fn naive(g: &PoolGeometry, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let [h, w] = g.in_size;
        let [oh_n, ow_n] = g.out_size;
        let (mut y, mut arg) = (Vec::new(), Vec::new());
        for plane in 0..g.batch * g.channels {
            for i in 0..oh_n {
                for j in 0..ow_n {
                    let mut window = Vec::new();
                    for u in 0..g.kernel[0] {
                        for v in 0..g.kernel[1] {
                            let ih = (i * g.stride[0] + u * g.dilation[0]) as isize
                                - g.pad_begin[0] as isize;
                            let iw = (j * g.stride[1] + v * g.dilation[1]) as isize
                                - g.pad_begin[1] as isize;
                            if (0..h as isize).contains(&ih) && (0..w as isize).contains(&iw) {
                                let p = ih as usize * w + iw as usize;
                                window.push((x[plane * h * w + p], p as u32));
                            }
                        }
                    }
                    let mut best = window[0];
                    for &c in &window[1..] {
                        if c.0 > best.0 {
                            best = c;
                        }
                    }
                    y.push(best.0);
                    arg.push(best.1);
                }
            }
        }
        (y, arg)
    }

    fn cases() -> Vec<PoolGeometry> {
        let g = |dims, k, s, d, pb, pe| PoolGeometry::new(dims, k, s, d, pb, pe).expect("valid");
        vec![
            // The ResNet stem's pooling, on a small odd-sized input.
            g([2, 3, 11, 9], [3, 3], [2, 2], [1, 1], [1, 1], [1, 1]),
            g([1, 2, 8, 8], [2, 2], [2, 2], [1, 1], [0, 0], [0, 0]),
            g([1, 1, 7, 10], [3, 2], [1, 3], [2, 1], [2, 0], [1, 1]),
            g([3, 1, 5, 5], [5, 5], [1, 1], [1, 1], [2, 2], [2, 2]),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in cases() {
            // Coarse values force ties, which must go to the first tap.
            let x: Vec<f32> = uniform(g.batch * g.channels * g.in_plane(), 3, 0.0, 4.0)
                .into_iter()
                .map(f32::floor)
                .collect();
            let (want_y, want_arg) = naive(&g, &x);
            let (y, arg) = forward_with_argmax(&g, &x);
            assert_eq!(y, want_y, "{g:?}");
            assert_eq!(arg, want_arg, "{g:?}");
            assert_eq!(forward(&g, &x), want_y, "{g:?}");
        }
    }

    #[test]
    fn a_nan_in_a_window_is_its_maximum() {
        let g = PoolGeometry::new([1, 1, 4, 4], [2, 2], [2, 2], [1, 1], [0, 0], [0, 0]).unwrap();
        let mut x = vec![1.0f32; 16];
        x[5] = f32::NAN;
        let (y, arg) = forward_with_argmax(&g, &x);
        assert!(y[0].is_nan() && arg[0] == 5);
        assert!(forward(&g, &x)[0].is_nan());
        assert_eq!(&y[1..], &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn backward_is_the_adjoint_of_the_forward_pass() {
        // For a fixed argmax the pooling is linear: ⟨dy, pool(x + t)⟩ − ⟨dy, pool(x)⟩ equals
        // ⟨backward(dy), t⟩ for a perturbation t that keeps every argmax.
        for g in cases() {
            let n_in = g.batch * g.channels * g.in_plane();
            let x = uniform(n_in, 5, 0.0, 1.0);
            let (y, arg) = forward_with_argmax(&g, &x);
            let dy = uniform(y.len(), 7, -1.0, 2.0);
            let dx = backward(&g, &arg, &dy);
            let t = uniform(n_in, 9, 0.0, 1e-6);
            let moved: Vec<f32> = x.iter().zip(&t).map(|(a, b)| a + b).collect();
            let (y2, arg2) = forward_with_argmax(&g, &moved);
            assert_eq!(arg, arg2, "the perturbation moved an argmax");
            let lhs: f64 = dy
                .iter()
                .zip(y2.iter().zip(&y))
                .map(|(d, (a, b))| *d as f64 * (*a as f64 - *b as f64))
                .sum();
            let rhs: f64 = dx
                .iter()
                .zip(moved.iter().zip(&x))
                .map(|(d, (a, b))| *d as f64 * (*a as f64 - *b as f64))
                .sum();
            assert!((lhs - rhs).abs() <= 1e-9, "{g:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn rejects_windows_that_could_hold_no_input() {
        assert!(PoolGeometry::new([1, 1, 4, 4], [3, 3], [1, 1], [1, 1], [3, 0], [0, 0]).is_none());
        assert!(PoolGeometry::new([1, 1, 2, 2], [5, 5], [1, 1], [1, 1], [0, 0], [0, 0]).is_none());
        assert!(PoolGeometry::new([1, 1, 4, 4], [0, 3], [1, 1], [1, 1], [0, 0], [0, 0]).is_none());
    }
}
