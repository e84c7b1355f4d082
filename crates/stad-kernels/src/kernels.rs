//! Convolution kernels on contiguous row-major (NCHW) `f32` slices: the forward pass and both
//! gradients, for dense, grouped and depthwise convolutions.
//!
//! - **Dense and grouped** (im2col + GEMM, per image and group): with `X̃` the unfolded input
//!   (`[patch_len, H_out·W_out]`, one row per input channel and kernel tap) and `W_g` the group's
//!   weight as a `[out_per_group, patch_len]` matrix,
//!   - forward `Y = W_g·X̃ + bias`,
//!   - input gradient `dX̃ = W_gᵀ·dY`, folded back (col2im, overlapping taps summed) into `dX`,
//!   - weight gradient `dW_g = Σ_b dY_b·X̃_bᵀ`.
//!
//!   A 1×1 stride-1 unpadded convolution skips the unfolding (`X̃ = X`). A dense 3×3 stride-1
//!   convolution with padding 1 and at least 16 channels in and out goes through Winograd
//!   F(2×2, 3×3) instead (module `winograd`): the same map in 2.25× fewer multiply-adds.
//! - **Depthwise** (one input and one output channel per group): direct loops per `(b, c)`
//!   plane, tap by tap over the output rows that stay inside the image (no bounds test in the
//!   inner loop).
//!
//! Work is split over images (or planes, or channels for the depthwise weight gradient); a
//! single image uses the GEMM's own threads instead. Every output element is summed in one fixed
//! order that depends neither on the thread count nor on scheduling, so results are
//! bit-identical run to run.

use std::cell::RefCell;

use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use crate::ConvGeometry;

mod winograd;

/// Images summed per partial weight gradient. The weight gradient is the sum of at most this
/// many partial sums, each over a fixed run of consecutive images: the summation order (and so
/// every bit of the result) does not depend on the number of threads.
const WEIGHT_GRAD_CHUNKS: usize = 8;

thread_local! {
    /// Each thread's unfolding buffer, reused across calls (an unfolded ResNet layer is a few
    /// MB: allocating it per call costs page faults).
    static UNFOLD_BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch slice of `len` elements (contents unspecified).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    UNFOLD_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (a nested parallel call stole this task): own buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// `dst[t] = src[t·s]` for every `t` (`src` holds at least `(dst.len() − 1)·s + 1` values).
/// Stride 2, a convolution's usual one, runs as a loop over pairs, which the compiler turns
/// into vector shuffles instead of one scalar load per value.
#[inline(always)]
pub(crate) fn gather_strided(dst: &mut [f32], src: &[f32], s: usize) {
    match s {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => {
            let pairs = dst.len().min(src.len() / 2);
            for (d, pair) in dst[..pairs].iter_mut().zip(src.chunks_exact(2)) {
                *d = pair[0];
            }
            if let Some(last) = dst.get_mut(pairs) {
                *last = src[2 * pairs];
            }
        }
        _ => {
            for (d, v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                *d = *v;
            }
        }
    }
}

/// `dst[t·s] = src[t]` for every `t` (the inverse of [`gather_strided`]; `dst` holds at least
/// `(src.len() − 1)·s + 1` values).
#[inline(always)]
fn scatter_strided(dst: &mut [f32], src: &[f32], s: usize) {
    match s {
        1 => dst[..src.len()].copy_from_slice(src),
        2 => {
            let pairs = src.len().min(dst.len() / 2);
            for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..pairs]) {
                pair[0] = *v;
            }
            if let Some(v) = src.get(pairs) {
                dst[2 * pairs] = *v;
            }
        }
        _ => {
            for (d, v) in dst.iter_mut().step_by(s).zip(src) {
                *d = *v;
            }
        }
    }
}

/// `dst[t·s] += src[t]` for every `t` (the adjoint of [`gather_strided`]; `dst` holds at least
/// `(src.len() − 1)·s + 1` values).
#[inline(always)]
fn scatter_add_strided(dst: &mut [f32], src: &[f32], s: usize) {
    match s {
        1 => {
            for (d, v) in dst[..src.len()].iter_mut().zip(src) {
                *d += *v;
            }
        }
        2 => {
            let pairs = src.len().min(dst.len() / 2);
            for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..pairs]) {
                pair[0] += *v;
            }
            if let Some(v) = src.get(pairs) {
                dst[2 * pairs] += *v;
            }
        }
        _ => {
            for (d, v) in dst.iter_mut().step_by(s).zip(src) {
                *d += *v;
            }
        }
    }
}

/// A matrix view for [`matmul`]: element `(r, c)` is `data[r·row_stride + c·col_stride]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    fn row_major(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of the row-major `[rows, cols]` matrix in `data` (a `[cols, rows]` view).
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// The columns from `first` on of the row-major matrix in `data` whose rows are
    /// `row_stride` apart (a column block).
    fn column_block(data: &'a [f32], row_stride: usize, first: usize) -> Self {
        Self {
            data: &data[first..],
            row_stride,
            col_stride: 1,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` with `dst` row-major; accumulates when `accumulate`.
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    parallelism: Parallelism,
) {
    matmul_strided((m, n, k), (dst, n), accumulate, lhs, rhs, parallelism)
}

/// [`matmul`] into a `dst` whose rows are `dst_row_stride` apart (a column block of a wider
/// matrix).
fn matmul_strided(
    (m, n, k): (usize, usize, usize),
    (dst, dst_row_stride): (&mut [f32], usize),
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    parallelism: Parallelism,
) {
    assert!(
        dst_row_stride >= n
            && (m == 0 || n == 0 || dst.len() >= (m - 1) * dst_row_stride + n)
            && lhs.fits(m, k)
            && rhs.fits(k, n),
        "matmul views out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_row_stride..][..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the assertion above keeps every element the GEMM touches inside the slices;
    // `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Threads for one GEMM: all of them when the batch alone cannot keep them busy.
fn gemm_threads(items: usize) -> Parallelism {
    if items < rayon::current_num_threads() {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// Unfolds one group of one image, `x: [in_per_group, H, W]`, into
/// `col: [in_per_group·kh·kw, H_out·W_out]` (zeros where a tap falls into the padding).
fn unfold(g: &ConvGeometry, x: &[f32], col: &mut [f32]) {
    unfold_rows(g, x, col, 0..g.out_size[0]);
}

/// [`unfold`] for the output rows `rows` only: `col: [in_per_group·kh·kw, rows.len()·W_out]`.
///
/// Each tap's row of `col` is zero where the tap falls into the padding (output rows outside
/// `oh_lo..oh_hi`, columns outside `ow_lo..ow_hi`) and a copy of the input elsewhere. A
/// stride-1 convolution whose output is as wide as its input (every 3×3 with padding 1) copies
/// a tap's valid rows in one flat copy ([`unfold_tap_flat`]); any other copies row by row.
#[multiversion(targets = "simd")]
fn unfold_rows(g: &ConvGeometry, x: &[f32], col: &mut [f32], rows: std::ops::Range<usize>) {
    let [h, w] = g.in_size;
    let [_, ow_n] = g.out_size;
    let [kh, kw] = g.kernel;
    let p = rows.len() * ow_n;
    let flat = g.stride == [1, 1] && ow_n == w;
    for c in 0..g.in_per_group() {
        let plane = &x[c * h * w..][..h * w];
        for i in 0..kh {
            let (valid_lo, valid_hi) = g.valid_outputs(0, i);
            let oh_lo = valid_lo.clamp(rows.start, rows.end);
            let oh_hi = valid_hi.clamp(oh_lo, rows.end);
            for j in 0..kw {
                let (ow_lo, ow_hi) = g.valid_outputs(1, j);
                let row = &mut col[((c * kh + i) * kw + j) * p..][..p];
                let (t_lo, t_hi) = ((oh_lo - rows.start) * ow_n, (oh_hi - rows.start) * ow_n);
                row[..t_lo].fill(0.0);
                row[t_hi..].fill(0.0);
                let valid = &mut row[t_lo..t_hi];
                if valid.is_empty() {
                    continue;
                }
                if ow_lo == ow_hi {
                    valid.fill(0.0);
                } else if flat {
                    // The input position of the first valid output, `(oh_lo, ow_lo)`; the
                    // others follow it one by one.
                    let first_input = (oh_lo + i * g.dilation[0] - g.pad_begin[0]) * w
                        + ow_lo
                        + j * g.dilation[1]
                        - g.pad_begin[1];
                    unfold_tap_flat(valid, &plane[first_input..], (ow_lo, ow_hi, w));
                } else {
                    for (r, oh) in (oh_lo..oh_hi).enumerate() {
                        let ih = oh * g.stride[0] + i * g.dilation[0] - g.pad_begin[0];
                        let dst = &mut valid[r * ow_n..][..ow_n];
                        dst[..ow_lo].fill(0.0);
                        dst[ow_hi..].fill(0.0);
                        let first = ow_lo * g.stride[1] + j * g.dilation[1] - g.pad_begin[1];
                        gather_strided(
                            &mut dst[ow_lo..ow_hi],
                            &plane[ih * w + first..(ih + 1) * w],
                            g.stride[1],
                        );
                    }
                }
            }
        }
    }
}

/// One tap's valid rows for a stride-1 convolution as wide as its input: `valid` (whole rows
/// of `w` outputs) takes `src[k]` at its position `ow_lo + k`, one flat copy across the rows
/// (input rows are as long as output rows, so consecutive outputs read consecutive inputs),
/// after which the padding columns `..ow_lo` and `ow_hi..` of each row, where the copy put the
/// neighbouring row's edge values, are zeroed. One copy per tap instead of one per output row,
/// whose calls cost more than the 14–56 values they move.
#[inline(always)]
fn unfold_tap_flat(valid: &mut [f32], src: &[f32], (ow_lo, ow_hi, w): (usize, usize, usize)) {
    let copied = valid.len() - ow_lo - (w - ow_hi);
    valid[ow_lo..ow_lo + copied].copy_from_slice(&src[..copied]);
    for r in (0..valid.len()).step_by(w) {
        for v in &mut valid[r..r + ow_lo] {
            *v = 0.0;
        }
        for v in &mut valid[r + ow_hi..r + w] {
            *v = 0.0;
        }
    }
}

/// Output rows per block of the forward pass: enough for about [`BLOCK_COLUMNS`] output
/// positions, so that a block's unfolded input (`patch_len × block`) stays in the L2 cache
/// between the unfolding and the GEMM instead of going out to memory and back.
fn rows_per_block(g: &ConvGeometry) -> usize {
    (BLOCK_COLUMNS / g.out_size[1].max(1)).clamp(1, g.out_size[0].max(1))
}

/// Output positions per unfolded block (see [`rows_per_block`]).
const BLOCK_COLUMNS: usize = 256;

/// Calls `f(rows, col)` for each block of [`rows_per_block`] output rows, in order, with a
/// scratch `col` of `patch_len × rows.len()·W_out` values for that block's unfolded input.
fn for_each_row_block(
    g: &ConvGeometry,
    patch_len: usize,
    mut f: impl FnMut(std::ops::Range<usize>, &mut [f32]),
) {
    let (oh_n, ow_n) = (g.out_size[0], g.out_size[1]);
    let step = rows_per_block(g);
    with_scratch(patch_len * step * ow_n, |buf| {
        for start in (0..oh_n).step_by(step) {
            let rows = start..(start + step).min(oh_n);
            let cols = rows.len() * ow_n;
            f(rows, &mut buf[..patch_len * cols]);
        }
    });
}

/// The adjoint of [`unfold`]: adds every entry of `col` back onto the input position it was
/// read from (`dx` must be zeroed; taps are added in a fixed order).
fn fold(g: &ConvGeometry, col: &[f32], dx: &mut [f32]) {
    fold_rows(g, col, dx, 0..g.out_size[0]);
}

/// [`fold`] for the output rows `rows` only (`col: [patch_len, rows.len()·W_out]`).
#[multiversion(targets = "simd")]
fn fold_rows(g: &ConvGeometry, col: &[f32], dx: &mut [f32], rows: std::ops::Range<usize>) {
    let [h, w] = g.in_size;
    let [_, ow_n] = g.out_size;
    let [kh, kw] = g.kernel;
    let p = rows.len() * ow_n;
    for c in 0..g.in_per_group() {
        let plane = &mut dx[c * h * w..][..h * w];
        for i in 0..kh {
            let (valid_lo, valid_hi) = g.valid_outputs(0, i);
            let oh_lo = valid_lo.clamp(rows.start, rows.end);
            let oh_hi = valid_hi.clamp(oh_lo, rows.end);
            for j in 0..kw {
                let (ow_lo, ow_hi) = g.valid_outputs(1, j);
                if ow_lo == ow_hi {
                    continue;
                }
                let row = &col[((c * kh + i) * kw + j) * p..][..p];
                let first = ow_lo * g.stride[1] + j * g.dilation[1] - g.pad_begin[1];
                for oh in oh_lo..oh_hi {
                    let ih = oh * g.stride[0] + i * g.dilation[0] - g.pad_begin[0];
                    let dst = &mut plane[ih * w..][..w];
                    let at = (oh - rows.start) * ow_n;
                    let src = &row[at + ow_lo..at + ow_hi];
                    scatter_add_strided(&mut dst[first..], src, g.stride[1]);
                }
            }
        }
    }
}

/// Forward pass: `y = conv(x, weight) + bias`, `y: [batch, out_channels, H_out, W_out]`.
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    check_len(x, g.x_dims());
    check_len(weight, g.weight_dims());
    if let Some(bias) = bias {
        assert_eq!(bias.len(), g.out_channels, "bias length");
    }
    if g.is_depthwise() {
        return depthwise_forward(g, x, weight, bias);
    }
    if winograd::applies(g) {
        return winograd::forward(g, x, weight, bias);
    }
    let (ipg, opg, k, p) = (
        g.in_per_group(),
        g.out_per_group(),
        g.patch_len(),
        g.out_plane(),
    );
    let x_image = g.in_channels * g.in_plane();
    let parallelism = gemm_threads(g.batch);
    let image = |b: usize, yb: &mut [f32]| {
        let xb = &x[b * x_image..][..x_image];
        for group in 0..g.groups {
            let xg = &xb[group * ipg * g.in_plane()..][..ipg * g.in_plane()];
            let yg = &mut yb[group * opg * p..][..opg * p];
            if let Some(bias) = bias {
                for (row, &v) in yg.chunks_exact_mut(p).zip(&bias[group * opg..]) {
                    row.fill(v);
                }
            }
            let wg = View::row_major(&weight[group * opg * k..][..opg * k], k);
            let product = |col: &[f32], yg: &mut [f32]| {
                matmul(
                    (opg, p, k),
                    yg,
                    bias.is_some(),
                    wg,
                    View::row_major(col, p),
                    parallelism,
                )
            };
            if g.is_pointwise() {
                product(xg, yg);
            } else if p <= 2 * BLOCK_COLUMNS {
                with_scratch(k * p, |col| {
                    unfold(g, xg, col);
                    product(col, yg)
                });
            } else {
                // Blocks of output rows: `y[:, block] = W_g · X̃[:, block]`.
                for_each_row_block(g, k, |rows, col| {
                    let (start, n) = (rows.start * g.out_size[1], col.len() / k);
                    unfold_rows(g, xg, col, rows);
                    matmul_strided(
                        (opg, n, k),
                        (&mut yg[start..], p),
                        bias.is_some(),
                        wg,
                        View::row_major(col, n),
                        parallelism,
                    );
                });
            }
        }
    };
    crate::buffer::zeroed_chunks(
        g.batch * g.out_channels * p,
        g.out_channels * p,
        matches!(parallelism, Parallelism::None),
        image,
    )
}

/// Gradient of the loss with respect to the input, from `dy = ∂L/∂y`:
/// `dx[b, c, ·] = Σ_o w[o, c, ·] ⋆ dy[b, o, ·]` (the transposed convolution).
pub fn input_grad(g: &ConvGeometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    check_len(weight, g.weight_dims());
    check_len(dy, g.y_dims());
    if g.is_depthwise() {
        return depthwise_input_grad(g, weight, dy);
    }
    if winograd::applies(g) {
        return winograd::input_grad(g, weight, dy);
    }
    let (ipg, opg, k, p) = (
        g.in_per_group(),
        g.out_per_group(),
        g.patch_len(),
        g.out_plane(),
    );
    let y_image = g.out_channels * p;
    let parallelism = gemm_threads(g.batch);
    let image = |b: usize, dxb: &mut [f32]| {
        let dyb = &dy[b * y_image..][..y_image];
        for group in 0..g.groups {
            let dyg = View::row_major(&dyb[group * opg * p..][..opg * p], p);
            let wg_t = View::transposed(&weight[group * opg * k..][..opg * k], k);
            let dxg = &mut dxb[group * ipg * g.in_plane()..][..ipg * g.in_plane()];
            if g.is_pointwise() {
                matmul((k, p, opg), dxg, false, wg_t, dyg, parallelism);
            } else {
                if p <= 2 * BLOCK_COLUMNS {
                    with_scratch(k * p, |col| {
                        matmul((k, p, opg), col, false, wg_t, dyg, parallelism);
                        fold(g, col, dxg);
                    });
                } else {
                    // Blocks of output rows: `X̃[:, block] = W_gᵀ · dY[:, block]`, folded.
                    let dy_group = &dyb[group * opg * p..][..opg * p];
                    for_each_row_block(g, k, |rows, col| {
                        let (start, cols) = (rows.start * g.out_size[1], col.len() / k);
                        let dy_block = View::column_block(dy_group, p, start);
                        matmul((k, cols, opg), col, false, wg_t, dy_block, parallelism);
                        fold_rows(g, col, dxg, rows);
                    });
                }
            }
        }
    };
    crate::buffer::zeroed_chunks(
        g.batch * g.in_channels * g.in_plane(),
        g.in_channels * g.in_plane(),
        matches!(parallelism, Parallelism::None),
        image,
    )
}

/// Gradient of the loss with respect to the weight: `dw[o, c, u, v] = Σ_{b, i, j}
/// dy[b, o, i, j] · x[b, c, i·s₀ + u·d₀ − p₀, j·s₁ + v·d₁ − p₁]`.
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    check_len(x, g.x_dims());
    check_len(dy, g.y_dims());
    if g.is_depthwise() {
        return depthwise_weight_grad(g, x, dy);
    }
    if winograd::applies(g) {
        return winograd::weight_grad(g, x, dy);
    }
    let (ipg, opg, k, p) = (
        g.in_per_group(),
        g.out_per_group(),
        g.patch_len(),
        g.out_plane(),
    );
    let (x_image, y_image) = (g.in_channels * g.in_plane(), g.out_channels * p);
    let chunks = g.batch.min(WEIGHT_GRAD_CHUNKS);
    let parallelism = gemm_threads(chunks);
    let partial = |chunk: usize| {
        let images = chunk * g.batch / chunks..(chunk + 1) * g.batch / chunks;
        let mut dw = vec![0.0f32; g.out_channels * k];
        for (n, b) in images.enumerate() {
            let (xb, dyb) = (&x[b * x_image..][..x_image], &dy[b * y_image..][..y_image]);
            for group in 0..g.groups {
                let xg = &xb[group * ipg * g.in_plane()..][..ipg * g.in_plane()];
                let dyg = View::row_major(&dyb[group * opg * p..][..opg * p], p);
                let dwg = &mut dw[group * opg * k..][..opg * k];
                let product = |col: &[f32], dwg: &mut [f32]| {
                    matmul(
                        (opg, k, p),
                        dwg,
                        n > 0,
                        dyg,
                        View::transposed(col, p),
                        parallelism,
                    )
                };
                if g.is_pointwise() {
                    product(xg, dwg);
                } else if p <= 2 * BLOCK_COLUMNS {
                    with_scratch(k * p, |col| {
                        unfold(g, xg, col);
                        product(col, dwg)
                    });
                } else {
                    // Blocks of output rows: `dW_g += dY[:, block] · X̃[:, block]ᵀ`.
                    let dy_group = &dyb[group * opg * p..][..opg * p];
                    for_each_row_block(g, k, |rows, col| {
                        let (start, cols) = (rows.start * g.out_size[1], col.len() / k);
                        unfold_rows(g, xg, col, rows);
                        matmul(
                            (opg, k, cols),
                            dwg,
                            n > 0 || start > 0,
                            View::column_block(dy_group, p, start),
                            View::transposed(col, cols),
                            parallelism,
                        );
                    });
                }
            }
        }
        dw
    };
    let partials: Vec<Vec<f32>> = if matches!(parallelism, Parallelism::None) {
        (0..chunks).into_par_iter().map(partial).collect()
    } else {
        (0..chunks).map(partial).collect()
    };
    sum_in_order(partials)
}

/// Gradient with respect to the bias: `db[o] = Σ_{b, i, j} dy[b, o, i, j]`.
pub fn bias_grad(g: &ConvGeometry, dy: &[f32]) -> Vec<f32> {
    check_len(dy, g.y_dims());
    let p = g.out_plane();
    (0..g.out_channels)
        .into_par_iter()
        .map(|o| {
            (0..g.batch)
                .map(|b| plane_sum(&dy[(b * g.out_channels + o) * p..][..p]))
                .sum::<f64>() as f32
        })
        .collect()
}

/// Sum of a slice, accumulated in `f64` per row of 64 values summed in `f32`.
fn plane_sum(v: &[f32]) -> f64 {
    v.chunks(64).map(|c| c.iter().sum::<f32>() as f64).sum()
}

fn sum_in_order(mut partials: Vec<Vec<f32>>) -> Vec<f32> {
    let mut total = partials.remove(0);
    for part in &partials {
        for (t, v) in total.iter_mut().zip(part) {
            *t += *v;
        }
    }
    total
}

fn check_len(data: &[f32], dims: [usize; 4]) {
    assert_eq!(
        data.len(),
        dims.iter().product::<usize>(),
        "tensor of {dims:?} expected"
    );
}

/// A depthwise plane's input as [`split_phases`] lays it out: row `ih` of the columns
/// `first, first + s, …` is contiguous.
struct Phases<'a> {
    data: &'a [f32],
    rows: usize,
    row_len: usize,
    stride: usize,
}

impl Phases<'_> {
    /// `len` input values of row `ih`, from column `first` every `stride` columns.
    #[inline(always)]
    fn row(&self, ih: usize, first: usize, len: usize) -> &[f32] {
        let (phase, start) = (first % self.stride, first / self.stride);
        &self.data[(phase * self.rows + ih) * self.row_len + start..][..len]
    }
}

/// Columns per phase row of a plane `W` wide for column stride `s`: `⌈W/s⌉`.
fn phase_len(w: usize, s: usize) -> usize {
    w.div_ceil(s)
}

/// Regroups the columns of `plane: [H, W]` by their remainder modulo `s`: phase `p` holds
/// columns `p, p + s, …` of each row, as rows of [`phase_len`] values (`out[(p·H + ih)·len + k]
/// = plane[ih, p + k·s]`, unused tail entries zero). Makes a column-strided convolution's
/// inner loops contiguous.
#[multiversion(targets = "simd")]
fn split_phases(plane: &[f32], [h, w]: [usize; 2], s: usize, out: &mut [f32]) {
    let len = phase_len(w, s);
    for p in 0..s {
        // Columns `p, p + s, …` of a row: `⌈(W − p)/s⌉` of them.
        let k = w.saturating_sub(p).div_ceil(s);
        for ih in 0..h {
            let row = &plane[ih * w..][..w];
            let dst = &mut out[(p * h + ih) * len..][..len];
            if k > 0 {
                gather_strided(&mut dst[..k], &row[p..], s);
            }
            dst[k..].fill(0.0);
        }
    }
}

/// The inverse of [`split_phases`]: writes every column of `plane` from its phase row.
#[multiversion(targets = "simd")]
fn merge_phases(phases: &[f32], [h, w]: [usize; 2], s: usize, plane: &mut [f32]) {
    let len = phase_len(w, s);
    for p in 0..s.min(w) {
        let k = (w - p).div_ceil(s);
        for ih in 0..h {
            let src = &phases[(p * h + ih) * len..][..k];
            let row = &mut plane[ih * w..][..w];
            scatter_strided(&mut row[p..], src, s);
        }
    }
}

/// Runs `f` with the plane's input in phase layout (a copy only for a column stride > 1).
fn with_phases<R>(g: &ConvGeometry, plane: &[f32], f: impl FnOnce(&Phases<'_>) -> R) -> R {
    let [h, w] = g.in_size;
    let s = g.stride[1];
    if s == 1 {
        return f(&Phases {
            data: plane,
            rows: h,
            row_len: w,
            stride: 1,
        });
    }
    let len = phase_len(w, s);
    with_scratch(s * h * len, |buf| {
        split_phases(plane, [h, w], s, buf);
        f(&Phases {
            data: buf,
            rows: h,
            row_len: len,
            stride: s,
        })
    })
}

/// One plane of [`depthwise_forward`] (`yp` holds the bias or zeros).
#[multiversion(targets = "simd")]
fn depthwise_forward_plane<'a>(g: &ConvGeometry, xs: &Phases<'a>, wc: &[f32], yp: &mut [f32]) {
    for_each_tap_row(g, |tap, oh, ih, ow, first| {
        let wv = wc[tap];
        let xrow = xs.row(ih, first, ow.len());
        let yrow = &mut yp[oh * g.out_size[1]..][ow];
        for (yv, xv) in yrow.iter_mut().zip(xrow) {
            *yv += wv * *xv;
        }
    });
}

/// Depthwise forward: per `(b, c)` plane, `y = bias_c + Σ_{u,v} w[c, u, v]·shift_{u,v}(x)`
/// (taps added in `(u, v)` order).
fn depthwise_forward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (pin, pout, taps) = (g.in_plane(), g.out_plane(), g.kernel[0] * g.kernel[1]);
    crate::buffer::zeroed_chunks(g.batch * g.out_channels * pout, pout, true, |n, yp| {
        let c = n % g.out_channels;
        if let Some(bias) = bias {
            yp.fill(bias[c]);
        }
        let wc = &weight[c * taps..][..taps];
        with_phases(g, &x[n * pin..][..pin], |xs| {
            depthwise_forward_plane(g, xs, wc, yp)
        });
    })
}

/// One plane of [`depthwise_input_grad`], accumulated into `dxs` (phase layout).
#[multiversion(targets = "simd")]
fn depthwise_input_grad_plane(
    g: &ConvGeometry,
    dyp: &[f32],
    wc: &[f32],
    dxs: &mut [f32],
    (rows, row_len): (usize, usize),
) {
    let s = g.stride[1];
    for_each_tap_row(g, |tap, oh, ih, ow, first| {
        let wv = wc[tap];
        let dyrow = &dyp[oh * g.out_size[1]..][ow];
        let (phase, start) = (first % s, first / s);
        let dxrow = &mut dxs[(phase * rows + ih) * row_len + start..][..dyrow.len()];
        for (d, v) in dxrow.iter_mut().zip(dyrow) {
            *d += wv * *v;
        }
    });
}

/// Depthwise input gradient: per plane, `dx += w[c, u, v]·shift_{u,v}ᵀ(dy)` (taps added in
/// `(u, v)` order).
fn depthwise_input_grad(g: &ConvGeometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (pin, pout, taps) = (g.in_plane(), g.out_plane(), g.kernel[0] * g.kernel[1]);
    let [h, w] = g.in_size;
    let s = g.stride[1];
    let len = phase_len(w, s);
    crate::buffer::zeroed_chunks(g.batch * g.in_channels * pin, pin, true, |n, dxp| {
        let c = n % g.in_channels;
        let dyp = &dy[n * pout..][..pout];
        let wc = &weight[c * taps..][..taps];
        if s == 1 {
            depthwise_input_grad_plane(g, dyp, wc, dxp, (h, w));
        } else {
            with_scratch(s * h * len, |dxs| {
                dxs.fill(0.0);
                depthwise_input_grad_plane(g, dyp, wc, dxs, (h, len));
                merge_phases(dxs, [h, w], s, dxp);
            });
        }
    })
}

/// One plane's contribution to [`depthwise_weight_grad`]: `acc[tap] += ⟨dy, shift_tap(x)⟩`.
#[multiversion(targets = "simd")]
fn depthwise_weight_grad_plane<'a>(
    g: &ConvGeometry,
    xs: &Phases<'a>,
    dyp: &[f32],
    acc: &mut [f64],
) {
    for_each_tap_row(g, |tap, oh, ih, ow, first| {
        let dyrow = &dyp[oh * g.out_size[1]..][ow];
        acc[tap] += dot(dyrow, xs.row(ih, first, dyrow.len())) as f64;
    });
}

/// Depthwise weight gradient: per channel (in parallel), `dw[c, u, v] = Σ_b ⟨dy_{b,c},
/// shift_{u,v}(x_{b,c})⟩`, each row's products summed in `f32` and the rows in `f64`.
fn depthwise_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (pin, pout, taps) = (g.in_plane(), g.out_plane(), g.kernel[0] * g.kernel[1]);
    let channels = g.in_channels;
    let per_channel: Vec<[f64; 64]> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let mut acc = [0.0f64; 64];
            for b in 0..g.batch {
                let n = b * channels + c;
                let dyp = &dy[n * pout..][..pout];
                with_phases(g, &x[n * pin..][..pin], |xs| {
                    depthwise_weight_grad_plane(g, xs, dyp, &mut acc)
                });
            }
            acc
        })
        .collect();
    let mut dw = vec![0.0f32; channels * taps];
    for (c, acc) in per_channel.iter().enumerate() {
        for tap in 0..taps {
            dw[c * taps + tap] = acc[tap] as f32;
        }
    }
    dw
}

/// Lanes of the dot products: eight independent partial sums (which the compiler keeps in one
/// vector register), added up in a fixed order at the end.
const LANES: usize = 8;

/// `Σ a_i·b_i` over equal-length slices, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Calls `f(tap, oh, ih, ow_range, first_iw)` for every kernel tap and every output row whose
/// input row is inside the image; `ow_range` are the output columns whose input columns are
/// inside, the first of them at input column `first_iw` (then every `stride[1]`).
#[inline(always)]
fn for_each_tap_row(
    g: &ConvGeometry,
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, usize),
) {
    assert!(
        g.kernel[0] * g.kernel[1] <= 64,
        "depthwise kernels up to 8×8"
    );
    for i in 0..g.kernel[0] {
        let (oh_lo, oh_hi) = g.valid_outputs(0, i);
        for j in 0..g.kernel[1] {
            let (ow_lo, ow_hi) = g.valid_outputs(1, j);
            if ow_lo == ow_hi {
                continue;
            }
            let first = ow_lo * g.stride[1] + j * g.dilation[1] - g.pad_begin[1];
            for oh in oh_lo..oh_hi {
                let ih = oh * g.stride[0] + i * g.dilation[0] - g.pad_begin[0];
                f(i * g.kernel[1] + j, oh, ih, ow_lo..ow_hi, first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::dot;

    /// The strided copies against `step_by`, for strides 1–3 and every length up to 9 with
    /// sources and destinations just long enough or longer (the stride-2 loops' tails).
    #[test]
    fn strided_copies_match_step_by() {
        for s in 1..=3 {
            for n in 1..=9 {
                let needed = (n - 1) * s + 1;
                for extra in 0..=2 {
                    let src: Vec<f32> = (0..needed + extra).map(|i| i as f32 + 0.5).collect();
                    let expected: Vec<f32> = src.iter().step_by(s).take(n).copied().collect();
                    let mut gathered = vec![-1.0; n];
                    gather_strided(&mut gathered, &src, s);
                    assert_eq!(gathered, expected, "gather s={s} n={n} extra={extra}");

                    let vals: Vec<f32> = (0..n).map(|i| 10.0 * i as f32 + 1.0).collect();
                    let mut scattered = vec![0.25f32; needed + extra];
                    scatter_strided(&mut scattered, &vals, s);
                    let mut added = vec![0.25f32; needed + extra];
                    scatter_add_strided(&mut added, &vals, s);
                    for (i, (&sc, &ad)) in scattered.iter().zip(&added).enumerate() {
                        let hit = i % s == 0 && i / s < n;
                        let v = if hit { vals[i / s] } else { 0.0 };
                        assert_eq!(sc, if hit { v } else { 0.25 }, "scatter s={s} n={n} i={i}");
                        assert_eq!(ad, 0.25 + v, "scatter-add s={s} n={n} i={i}");
                    }
                }
            }
        }
    }

    /// Straight from the definition, in f64.
    pub(super) fn naive_forward(
        g: &ConvGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Vec<f64> {
        let [oh_n, ow_n] = g.out_size;
        let [h, wd] = g.in_size;
        let mut y = vec![0.0f64; g.batch * g.out_channels * oh_n * ow_n];
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                let group = o / g.out_per_group();
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let mut s = bias.map_or(0.0, |bv| bv[o] as f64);
                        for ci in 0..g.in_per_group() {
                            let c = group * g.in_per_group() + ci;
                            for u in 0..g.kernel[0] {
                                for v in 0..g.kernel[1] {
                                    let ih = (oh * g.stride[0] + u * g.dilation[0]) as isize
                                        - g.pad_begin[0] as isize;
                                    let iw = (ow * g.stride[1] + v * g.dilation[1]) as isize
                                        - g.pad_begin[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                                        continue;
                                    }
                                    let xv = x[((b * g.in_channels + c) * h + ih as usize) * wd
                                        + iw as usize];
                                    let wv = w[((o * g.in_per_group() + ci) * g.kernel[0] + u)
                                        * g.kernel[1]
                                        + v];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((b * g.out_channels + o) * oh_n + oh) * ow_n + ow] = s;
                    }
                }
            }
        }
        y
    }

    pub(super) fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        crate::test_values::uniform(n, seed, -1.0, 2.0)
    }

    fn cases() -> Vec<ConvGeometry> {
        let mk =
            |x, w, s, d, pb, pe, groups| ConvGeometry::new(x, w, s, d, pb, pe, groups).unwrap();
        vec![
            // Stride 1 with the output as wide as the input: the flat unfolding
            // (`unfold_tap_flat`), with dilation and uneven padding, and (second case) a tap
            // column that never falls inside the image.
            mk(
                [2, 3, 7, 9],
                [4, 3, 3, 3],
                [1, 1],
                [1, 2],
                [1, 0],
                [1, 4],
                1,
            ),
            mk(
                [1, 2, 6, 5],
                [2, 2, 5, 5],
                [1, 1],
                [2, 2],
                [4, 8],
                [4, 0],
                1,
            ),
            // Flat, with whole tap rows in the padding (the first and last kernel rows).
            mk(
                [1, 2, 3, 6],
                [2, 2, 5, 3],
                [1, 1],
                [2, 1],
                [4, 1],
                [4, 1],
                1,
            ),
            // More than `2·BLOCK_COLUMNS` outputs per plane, odd rows per block: the blocked
            // forward pass, with padding at both ends and a partial last block.
            mk(
                [2, 2, 41, 23],
                [3, 2, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                1,
            ),
            mk(
                [2, 3, 9, 8],
                [4, 3, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                1,
            ),
            mk(
                [3, 4, 10, 11],
                [6, 4, 3, 3],
                [2, 2],
                [1, 1],
                [1, 1],
                [1, 1],
                1,
            ),
            mk(
                [2, 3, 13, 13],
                [5, 3, 7, 7],
                [2, 2],
                [1, 1],
                [3, 3],
                [3, 3],
                1,
            ),
            mk(
                [2, 6, 7, 7],
                [4, 6, 1, 1],
                [1, 1],
                [1, 1],
                [0, 0],
                [0, 0],
                1,
            ),
            mk(
                [2, 6, 8, 8],
                [4, 6, 1, 1],
                [2, 2],
                [1, 1],
                [0, 0],
                [0, 0],
                1,
            ),
            mk(
                [2, 6, 8, 9],
                [6, 1, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                6,
            ),
            mk(
                [3, 5, 8, 8],
                [5, 1, 3, 3],
                [2, 2],
                [1, 1],
                [0, 0],
                [1, 1],
                5,
            ),
            mk(
                [2, 6, 9, 9],
                [9, 2, 3, 3],
                [1, 2],
                [2, 1],
                [2, 0],
                [1, 2],
                3,
            ),
            mk(
                [1, 4, 6, 6],
                [8, 1, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                4,
            ),
        ]
        .into_iter()
        .chain(winograd_cases())
        .collect()
    }

    /// A dense 3×3 stride-1 convolution with padding 1 on every side: `batch` images of `c`
    /// channels at `h × w` to `o` channels.
    pub(super) fn padded_3x3(batch: usize, c: usize, o: usize, [h, w]: [usize; 2]) -> ConvGeometry {
        ConvGeometry::new(
            [batch, c, h, w],
            [o, c, 3, 3],
            [1; 2],
            [1; 2],
            [1; 2],
            [1; 2],
            1,
        )
        .unwrap()
    }

    /// Dense 3×3 stride-1 convolutions with padding 1 and 16 channels or more (the Winograd
    /// path): odd and even sizes, a single row or column, several blocks with a partial last
    /// one, a batch smaller and larger than the thread count.
    pub(super) fn winograd_cases() -> Vec<ConvGeometry> {
        let mk = padded_3x3;
        vec![
            mk(2, 16, 17, [9, 8]),
            mk(1, 17, 16, [7, 11]),
            mk(3, 16, 16, [1, 5]),
            mk(2, 16, 16, [6, 1]),
            mk(2, 18, 20, [37, 30]),
            mk(1, 16, 24, [2, 2]),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (n, g) in cases().into_iter().enumerate() {
            let x = pseudo_random(g.x_dims().iter().product(), 1 + n as u64);
            let w = pseudo_random(g.weight_dims().iter().product(), 100 + n as u64);
            let bias = pseudo_random(g.out_channels, 200 + n as u64);
            for bias in [None, Some(bias.as_slice())] {
                let ours = forward(&g, &x, &w, bias);
                let theirs = naive_forward(&g, &x, &w, bias);
                assert_eq!(ours.len(), theirs.len(), "case {n}");
                for (a, b) in ours.iter().zip(&theirs) {
                    assert!((*a as f64 - b).abs() < 1e-4, "case {n}: {a} vs {b} ({g:?})");
                }
            }
        }
    }

    /// The gradients are the adjoints of the forward map: `⟨dy, conv(x, w)⟩ = ⟨dx(dy), x⟩ =
    /// ⟨dw(dy), w⟩` for the bias-free convolution, and `db = Σ dy`.
    #[test]
    fn gradients_are_adjoints_of_the_forward_pass() {
        for (n, g) in cases().into_iter().enumerate() {
            let x = pseudo_random(g.x_dims().iter().product(), 11 + n as u64);
            let w = pseudo_random(g.weight_dims().iter().product(), 111 + n as u64);
            let dy = pseudo_random(g.y_dims().iter().product(), 211 + n as u64);
            let y = forward(&g, &x, &w, None);
            let lhs = dot(&dy, &y);
            let via_x = dot(&input_grad(&g, &w, &dy), &x);
            let via_w = dot(&weight_grad(&g, &x, &dy), &w);
            let tol = 1e-4 * (1.0 + lhs.abs());
            assert!(
                (lhs - via_x).abs() < tol,
                "case {n} input grad: {lhs} vs {via_x}"
            );
            assert!(
                (lhs - via_w).abs() < tol,
                "case {n} weight grad: {lhs} vs {via_w}"
            );
            let db = bias_grad(&g, &dy);
            let p = g.out_plane();
            for (o, v) in db.iter().enumerate() {
                let expect: f64 = (0..g.batch)
                    .flat_map(|b| &dy[(b * g.out_channels + o) * p..][..p])
                    .map(|v| *v as f64)
                    .sum();
                assert!((*v as f64 - expect).abs() < 1e-4, "case {n} bias grad");
            }
        }
    }

    /// An image's output does not depend on the other images of its batch (a batch of one uses
    /// the GEMM's own threads, a larger one splits over images): what lets the trainer cache
    /// the teacher's features per image and stay bit-identical to recomputing them.
    #[test]
    fn an_image_gives_the_same_bits_alone_and_in_a_batch() {
        for (n, g) in cases().into_iter().enumerate() {
            let x = pseudo_random(g.x_dims().iter().product(), 21 + n as u64);
            let w = pseudo_random(g.weight_dims().iter().product(), 121 + n as u64);
            let dy = pseudo_random(g.y_dims().iter().product(), 221 + n as u64);
            let batched = (forward(&g, &x, &w, None), input_grad(&g, &w, &dy));
            let one = ConvGeometry { batch: 1, ..g };
            let (xi, yi) = (g.in_channels * g.in_plane(), g.out_channels * g.out_plane());
            for b in 0..g.batch {
                let y = forward(&one, &x[b * xi..][..xi], &w, None);
                assert_eq!(y, batched.0[b * yi..][..yi], "case {n} forward, image {b}");
                let dx = input_grad(&one, &w, &dy[b * yi..][..yi]);
                assert_eq!(
                    dx,
                    batched.1[b * xi..][..xi],
                    "case {n} input grad, image {b}"
                );
            }
        }
    }

    /// An im2col case and the multi-block Winograd case.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        for g in [cases()[4], winograd_cases()[4]] {
            let x = pseudo_random(g.x_dims().iter().product(), 5);
            let w = pseudo_random(g.weight_dims().iter().product(), 6);
            let dy = pseudo_random(g.y_dims().iter().product(), 7);
            let run = || {
                (
                    forward(&g, &x, &w, None),
                    input_grad(&g, &w, &dy),
                    weight_grad(&g, &x, &dy),
                )
            };
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(run);
            let three = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap()
                .install(run);
            assert_eq!(one, three, "{g:?}");
        }
    }
}
