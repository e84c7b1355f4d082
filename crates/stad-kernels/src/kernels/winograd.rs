//! Winograd F(2×2, 3×3): 3×3 stride-1 convolutions with padding 1 (ResNet's), the forward pass
//! and both gradients, in 16 matrix products of 2.25× fewer multiply-adds than im2col's one.
//!
//! The output is cut into 2×2 tiles; tile `t` reads the 4×4 input patch `X_t` around it. With
//! (Lavin & Gray, 2016)
//!
//! ```text
//!       ⎡1  0 −1  0⎤        ⎡ 1   0   0 ⎤
//! Bᵀ =  ⎢0  1  1  0⎥,  G =  ⎢1/2 1/2 1/2⎥,  Aᵀ = ⎡1 1  1  0⎤
//!       ⎢0 −1  1  0⎥        ⎢1/2 −1/2 1/2⎥       ⎣0 1 −1 −1⎦
//!       ⎣0  1  0 −1⎦        ⎣ 0   0   1 ⎦
//! ```
//!
//! the input transform `V_t[c] = Bᵀ·X_t[c]·B`, the weight transform `U[o, c] = G·w[o, c]·Gᵀ` and
//! the output transform `Y_t[o] = Aᵀ·M_t[o]·A` give the convolution exactly (in exact arithmetic)
//! with `M_t[o] = Σ_c U[o, c] ⊙ V_t[c]`: for each of the 16 positions `ξ` of a 4×4 tile, one
//! matrix product `M[ξ] = U[ξ]·V[ξ]` of `[out, in]·[in, tiles]`.
//!
//! The gradients are the adjoints of that same map, so they are the convolution's gradients:
//! - input: `dM_t[o] = A·dY_t[o]·Aᵀ`, `dV[ξ] = U[ξ]ᵀ·dM[ξ]`, and `B·dV_t[c]·Bᵀ` added back onto
//!   the patch `X_t` was read from (patches overlap by two rows and columns);
//! - weight: `dU[ξ] = Σ_tiles dM[ξ]·V[ξ]ᵀ` over the batch, then `dw[o, c] = Gᵀ·dU[o, c]·G`.
//!
//! Tiles are taken in blocks of whole tile rows so that a block's transformed input and
//! products stay in cache between the transforms and the products. Every sum runs in a fixed
//! order, as in the im2col kernels: results do not depend on the thread count.

use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use super::{View, WEIGHT_GRAD_CHUNKS, gemm_threads, matmul, sum_in_order, with_scratch};
use crate::ConvGeometry;

/// Positions of a 4×4 transformed tile.
const XI: usize = 16;

/// Tiles per block (about): a block's transformed input and products, `16·(in + out)·tiles`
/// values, are what the 16 products of the block work on. Whole images up to 28×28 tiles (one
/// ResNet layer-2 plane); from 56 to 1000 tiles per block timed within the noise of
/// `kernel_times 3x3`, larger blocks slightly ahead on 128 channels at 28².
const BLOCK_TILES: usize = 196;

/// Channels below which the transforms cost more than the multiply-adds they save.
const MIN_CHANNELS: usize = 16;

/// Whether [`forward`], [`input_grad`] and [`weight_grad`] apply: a dense 3×3 convolution with
/// stride 1, no dilation and padding 1 on every side (the output as large as the input), with
/// at least [`MIN_CHANNELS`] input and output channels.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3]
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.pad_begin == [1, 1]
        && g.pad_end == [1, 1]
        && g.groups == 1
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
}

/// How an image's output is cut into 2×2 tiles and the tiles into blocks of tile rows.
#[derive(Clone, Copy)]
struct Tiling {
    /// Input (and output) height and width.
    h: usize,
    w: usize,
    /// Tile rows and columns: `⌈h/2⌉`, `⌈w/2⌉`.
    rows: usize,
    cols: usize,
    /// Tile rows per block.
    rows_per_block: usize,
}

impl Tiling {
    fn new(g: &ConvGeometry) -> Self {
        let [h, w] = g.in_size;
        let (rows, cols) = (h.div_ceil(2), w.div_ceil(2));
        Self {
            h,
            w,
            rows,
            cols,
            rows_per_block: (BLOCK_TILES / cols).clamp(1, rows),
        }
    }

    /// Tiles in the largest block.
    fn block_tiles(&self) -> usize {
        self.rows_per_block * self.cols
    }

    /// The blocks of tile rows, in order.
    fn blocks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.rows)
            .step_by(self.rows_per_block)
            .map(|start| start..(start + self.rows_per_block).min(self.rows))
    }

    /// Length of a padded input row: one column of padding on the left, zeros up to whole
    /// tiles plus one on the right (`2·cols + 2`).
    fn padded_len(&self) -> usize {
        2 * self.cols + 2
    }

    /// Scratch of the transforms: eight padded rows.
    fn row_scratch(&self) -> usize {
        8 * self.padded_len()
    }
}

/// `U = G·w·Gᵀ` for every `(o, c)`: `u: [16, out, in]` from `w: [out, in, 3, 3]`.
fn transform_weight(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (o_n, c_n) = (g.out_channels, g.in_channels);
    let mut u = vec![0.0f32; XI * o_n * c_n];
    for (oc, k) in w.chunks_exact(9).enumerate() {
        // Rows: r[a][v] = Σ_u G[a][u]·w[u][v].
        let mut r = [[0.0f32; 3]; 4];
        for v in 0..3 {
            let (w0, w1, w2) = (k[v], k[3 + v], k[6 + v]);
            r[0][v] = w0;
            r[1][v] = 0.5 * (w0 + w1 + w2);
            r[2][v] = 0.5 * (w0 - w1 + w2);
            r[3][v] = w2;
        }
        for (a, ra) in r.iter().enumerate() {
            let [w0, w1, w2] = *ra;
            let row = [w0, 0.5 * (w0 + w1 + w2), 0.5 * (w0 - w1 + w2), w2];
            for (b, v) in row.into_iter().enumerate() {
                u[(a * 4 + b) * o_n * c_n + oc] = v;
            }
        }
    }
    u
}

/// `dw = Gᵀ·dU·G` for every `(o, c)`: the adjoint of [`transform_weight`].
fn untransform_weight(g: &ConvGeometry, du: &[f32]) -> Vec<f32> {
    let n = g.out_channels * g.in_channels;
    let mut dw = vec![0.0f32; n * 9];
    for (oc, k) in dw.chunks_exact_mut(9).enumerate() {
        let at = |a: usize, b: usize| du[(a * 4 + b) * n + oc];
        // Columns: t[a][v] = Σ_b dU[a][b]·G[b][v].
        let mut t = [[0.0f32; 3]; 4];
        for (a, ta) in t.iter_mut().enumerate() {
            let (d0, d1, d2, d3) = (at(a, 0), at(a, 1), at(a, 2), at(a, 3));
            *ta = [d0 + 0.5 * (d1 + d2), 0.5 * (d1 - d2), 0.5 * (d1 + d2) + d3];
        }
        for v in 0..3 {
            let (t0, t1, t2, t3) = (t[0][v], t[1][v], t[2][v], t[3][v]);
            k[v] = t0 + 0.5 * (t1 + t2);
            k[3 + v] = 0.5 * (t1 - t2);
            k[6 + v] = 0.5 * (t1 + t2) + t3;
        }
    }
    dw
}

/// Writes input row `r1 − 1` of `plane` (zeros when outside the image) padded by one column on
/// the left and zeros up to `padded.len()`: `padded[q] = x[r1 − 1][q − 1]`.
#[inline(always)]
fn padded_row(t: &Tiling, plane: &[f32], r1: usize, padded: &mut [f32]) {
    if r1 == 0 || r1 > t.h {
        padded.fill(0.0);
        return;
    }
    padded[0] = 0.0;
    padded[1..=t.w].copy_from_slice(&plane[(r1 - 1) * t.w..][..t.w]);
    padded[t.w + 1..].fill(0.0);
}

/// The four rows `dst[b]` of a 4-column transform `d·B` (`d` the tile's 4 columns) of one
/// padded row `z` (tile `j` reads `z[2j .. 2j + 4]`): `d₀ − d₂`, `d₁ + d₂`, `d₂ − d₁`,
/// `d₁ − d₃`.
#[inline(always)]
fn row_times_b(z: &[f32], [v0, v1, v2, v3]: [&mut [f32]; 4]) {
    let pairs = z.chunks_exact(2).zip(z[2..].chunks_exact(2));
    for ((((p, n), x0), x1), (x2, x3)) in pairs.zip(v0).zip(v1).zip(v2.iter_mut().zip(v3)) {
        *x0 = p[0] - n[0];
        *x1 = p[1] + n[0];
        *x2 = n[0] - p[1];
        *x3 = p[1] - n[1];
    }
}

/// `V[ξ][c][tile]` for the tile rows `rows` of one image `x: [in, h, w]`, into
/// `v: [16, in, rows.len()·cols]`: per tile row, the column transform `Bᵀ·X` on whole padded
/// input rows, then the row transform `·B` of each result.
#[multiversion(targets = "simd")]
fn transform_input(
    t: &Tiling,
    x: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    v: &mut [f32],
    scratch: &mut [f32],
) {
    let (cols, len) = (t.cols, t.padded_len());
    let tiles = rows.len() * cols;
    // Padded input rows in slot `r1 % 4` (`r1` = input row + 1): tile row `i` reads rows
    // `r1 = 2i .. 2i + 4`, the first two of which the tile row above also read.
    let (ring, rest) = scratch.split_at_mut(4 * len);
    let z = &mut rest[..4 * len];
    for c in 0..channels {
        let plane = &x[c * t.h * t.w..][..t.h * t.w];
        for i in rows.clone() {
            let first = if i == rows.start { 2 * i } else { 2 * i + 2 };
            for r1 in first..2 * i + 4 {
                padded_row(t, plane, r1, &mut ring[(r1 % 4) * len..][..len]);
            }
            let row = |p: usize| &ring[((2 * i + p) % 4) * len..][..len];
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            // Column transform: z[a] = Σ_p Bᵀ[a][p]·X[p].
            let (z0, zr) = z.split_at_mut(len);
            let (z1, zr) = zr.split_at_mut(len);
            let (z2, z3) = zr.split_at_mut(len);
            for q in 0..len {
                z0[q] = r0[q] - r2[q];
                z1[q] = r1[q] + r2[q];
                z2[q] = r2[q] - r1[q];
                z3[q] = r1[q] - r3[q];
            }
            let at = (i - rows.start) * cols;
            for (a, za) in z.chunks_exact(len).enumerate() {
                let block = &mut v[(a * 4 * channels + c) * tiles..];
                let (d0, rest) = block.split_at_mut(channels * tiles);
                let (d1, rest) = rest.split_at_mut(channels * tiles);
                let (d2, d3) = rest.split_at_mut(channels * tiles);
                row_times_b(
                    za,
                    [
                        &mut d0[at..at + cols],
                        &mut d1[at..at + cols],
                        &mut d2[at..at + cols],
                        &mut d3[at..at + cols],
                    ],
                );
            }
        }
    }
}

/// `Y = Aᵀ·M·A (+ bias)` for the tile rows `rows`: from `m: [16, out, rows.len()·cols]` into
/// the image `y: [out, h, w]` (overwritten). Per tile row, the row transform `·A` of each
/// `M[a]` as interleaved output columns, then the column transform `Aᵀ·` on whole rows.
#[multiversion(targets = "simd")]
fn transform_output(
    t: &Tiling,
    m: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let cols = t.cols;
    let tiles = rows.len() * cols;
    let q = &mut scratch[..8 * cols];
    for o in 0..channels {
        let b0 = bias.map_or(0.0, |b| b[o]);
        let plane = &mut y[o * t.h * t.w..][..t.h * t.w];
        for i in rows.clone() {
            let at = (i - rows.start) * cols;
            let mrow = |a: usize, b: usize| &m[((a * 4 + b) * channels + o) * tiles + at..][..cols];
            // Row transform: q[a] = M[a]·A, the tile's two columns side by side.
            for (a, qa) in q.chunks_exact_mut(2 * cols).enumerate() {
                let (m0, m1, m2, m3) = (mrow(a, 0), mrow(a, 1), mrow(a, 2), mrow(a, 3));
                for ((((pair, x0), x1), x2), x3) in
                    qa.chunks_exact_mut(2).zip(m0).zip(m1).zip(m2).zip(m3)
                {
                    pair[0] = x0 + x1 + x2;
                    pair[1] = x1 - x2 - x3;
                }
            }
            // Column transform: output row 2i + r = Σ_a Aᵀ[r][a]·q[a] (+ bias).
            let (q0, qr) = q.split_at(2 * cols);
            let (q1, qr) = qr.split_at(2 * cols);
            let (q2, q3) = qr.split_at(2 * cols);
            let oh = 2 * i;
            let out = &mut plane[oh * t.w..][..t.w];
            for (k, d) in out.iter_mut().enumerate() {
                *d = q0[k] + q1[k] + q2[k] + b0;
            }
            if oh + 1 < t.h {
                let out = &mut plane[(oh + 1) * t.w..][..t.w];
                for (k, d) in out.iter_mut().enumerate() {
                    *d = q1[k] - q2[k] - q3[k] + b0;
                }
            }
        }
    }
}

/// `dM = A·dY·Aᵀ` for the tile rows `rows` of one image's output gradient `dy: [out, h, w]`,
/// into `dm: [16, out, rows.len()·cols]` (the adjoint of [`transform_output`]): the column
/// transform `A·` on the tile row's two output rows, then the row transform `·Aᵀ` of each.
#[multiversion(targets = "simd")]
fn transform_output_grad(
    t: &Tiling,
    dy: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    dm: &mut [f32],
    scratch: &mut [f32],
) {
    let (cols, len) = (t.cols, 2 * t.cols);
    let tiles = rows.len() * cols;
    let (d, rest) = scratch.split_at_mut(2 * len);
    let g = &mut rest[..4 * len];
    for o in 0..channels {
        let plane = &dy[o * t.h * t.w..][..t.h * t.w];
        for i in rows.clone() {
            // The tile row's two output rows, zero past the image.
            for (r, dr) in d.chunks_exact_mut(len).enumerate() {
                let oh = 2 * i + r;
                if oh < t.h {
                    dr[..t.w].copy_from_slice(&plane[oh * t.w..][..t.w]);
                    dr[t.w..].fill(0.0);
                } else {
                    dr.fill(0.0);
                }
            }
            // Column transform: g[a] = Σ_r Aᵀ[r][a]·dY[r].
            let (d0, d1) = d.split_at(len);
            let (g0, gr) = g.split_at_mut(len);
            let (g1, gr) = gr.split_at_mut(len);
            let (g2, g3) = gr.split_at_mut(len);
            for k in 0..len {
                g0[k] = d0[k];
                g1[k] = d0[k] + d1[k];
                g2[k] = d0[k] - d1[k];
                g3[k] = -d1[k];
            }
            // Row transform: dM[a][b] = Σ_s g[a][s]·Aᵀ[s][b].
            let at = (i - rows.start) * cols;
            for (a, ga) in g.chunks_exact(len).enumerate() {
                let block = &mut dm[(a * 4 * channels + o) * tiles..];
                let (x0, rest) = block.split_at_mut(channels * tiles);
                let (x1, rest) = rest.split_at_mut(channels * tiles);
                let (x2, x3) = rest.split_at_mut(channels * tiles);
                let outs = x0[at..at + cols]
                    .iter_mut()
                    .zip(&mut x1[at..at + cols])
                    .zip(x2[at..at + cols].iter_mut().zip(&mut x3[at..at + cols]));
                for (pair, ((y0, y1), (y2, y3))) in ga.chunks_exact(2).zip(outs) {
                    let (e, od) = (pair[0], pair[1]);
                    *y0 = e;
                    *y1 = e + od;
                    *y2 = e - od;
                    *y3 = -od;
                }
            }
        }
    }
}

/// `B·dV·Bᵀ` for the tile rows `rows`, from `dv: [16, in, rows.len()·cols]`, added onto the
/// patches of one image's input gradient `dx: [in, h, w]` (the adjoint of
/// [`transform_input`]; the padding's share is dropped): per tile row, the row transform
/// `·Bᵀ` of each `dV[a]` laid out as a padded input row (neighbouring tiles' columns overlap
/// and are summed), then the column transform `B·` on whole rows, added onto the image.
#[multiversion(targets = "simd")]
fn transform_input_grad(
    t: &Tiling,
    dv: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    let (cols, len) = (t.cols, t.padded_len());
    let tiles = rows.len() * cols;
    let z = &mut scratch[..4 * len];
    for c in 0..channels {
        let plane = &mut dx[c * t.h * t.w..][..t.h * t.w];
        for i in rows.clone() {
            let at = (i - rows.start) * cols;
            let dvrow =
                |a: usize, b: usize| &dv[((a * 4 + b) * channels + c) * tiles + at..][..cols];
            // Row transform: tile j's columns q = 0..4 of z[a] = dV[a]·Bᵀ land on padded
            // columns 2j + q: 2j gets q = 0 of tile j and q = 2 of tile j − 1, 2j + 1 gets q = 1
            // of tile j and q = 3 of tile j − 1.
            for (a, za) in z.chunks_exact_mut(len).enumerate() {
                let (v0, v1, v2, v3) = (dvrow(a, 0), dvrow(a, 1), dvrow(a, 2), dvrow(a, 3));
                za[0] = v0[0];
                za[1] = v1[0] - v2[0] + v3[0];
                let here = v0[1..]
                    .iter()
                    .zip(&v1[1..])
                    .zip(v2[1..].iter().zip(&v3[1..]));
                let before = v0.iter().zip(v1).zip(v2.iter().zip(v3));
                for (pair, (((x0, x1), (x2, x3)), ((p0, p1), (p2, p3)))) in
                    za[2..2 * cols].chunks_exact_mut(2).zip(here.zip(before))
                {
                    pair[0] = x0 + (p1 + p2 - p0);
                    pair[1] = (x1 - x2 + x3) - p3;
                }
                let last = cols - 1;
                za[2 * cols] = v1[last] + v2[last] - v0[last];
                za[2 * cols + 1] = -v3[last];
            }
            // Column transform: padded input row p of the patch = Σ_a Bᵀ[a][p]·z[a].
            let (z0, zr) = z.split_at(len);
            let (z1, zr) = zr.split_at(len);
            let (z2, z3) = zr.split_at(len);
            for p in 0..4 {
                let r = (2 * i + p) as isize - 1;
                if r < 0 || r as usize >= t.h {
                    continue;
                }
                let row = &mut plane[r as usize * t.w..][..t.w];
                let span = 1..=t.w;
                let (a0, a1, a2, a3) = (
                    &z0[span.clone()],
                    &z1[span.clone()],
                    &z2[span.clone()],
                    &z3[span],
                );
                match p {
                    0 => row.iter_mut().zip(a0).for_each(|(d, x0)| *d += x0),
                    1 => {
                        for (k, d) in row.iter_mut().enumerate() {
                            *d += a1[k] - a2[k] + a3[k];
                        }
                    }
                    2 => {
                        for (k, d) in row.iter_mut().enumerate() {
                            *d += a1[k] + a2[k] - a0[k];
                        }
                    }
                    _ => row.iter_mut().zip(a3).for_each(|(d, x3)| *d -= x3),
                }
            }
        }
    }
}

/// Runs `f(inputs, products, rows_buf)` with this thread's scratch for one block: the block's
/// transformed inputs (`16·in·tiles` values), its transformed outputs (`16·out·tiles`) and the
/// transforms' row buffers.
fn with_block_scratch<R>(
    g: &ConvGeometry,
    t: &Tiling,
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    let (in_len, out_len) = (
        XI * g.in_channels * t.block_tiles(),
        XI * g.out_channels * t.block_tiles(),
    );
    with_scratch(in_len + out_len + t.row_scratch(), |buf| {
        let (inputs, rest) = buf.split_at_mut(in_len);
        let (outputs, rows_buf) = rest.split_at_mut(out_len);
        f(inputs, outputs, rows_buf)
    })
}

/// A `[batch, image_len]` result written image by image (in parallel unless `parallelism`
/// gives the GEMM the threads): `block(b, rows, inputs, outputs, rows_buf, image)` for each
/// block of tile rows of image `b`, in order, with [`with_block_scratch`]'s buffers.
fn image_by_image(
    g: &ConvGeometry,
    t: &Tiling,
    image_len: usize,
    parallelism: Parallelism,
    block: impl Fn(usize, std::ops::Range<usize>, &mut [f32], &mut [f32], &mut [f32], &mut [f32])
    + Sync
    + Send,
) -> Vec<f32> {
    crate::buffer::zeroed_chunks(
        g.batch * image_len,
        image_len,
        matches!(parallelism, Parallelism::None),
        |b, image| {
            with_block_scratch(g, t, |inputs, outputs, rows_buf| {
                for rows in t.blocks() {
                    block(b, rows, inputs, outputs, rows_buf, image);
                }
            })
        },
    )
}

/// The 16 products `dst[ξ] (+)= lhs[ξ]·rhs[ξ]`, `lhs[ξ]`/`rhs[ξ]` given by `views(ξ)`.
fn products<'a>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    views: impl Fn(usize) -> (View<'a>, View<'a>),
    parallelism: Parallelism,
) {
    for (xi, d) in dst.chunks_exact_mut(m * n).take(XI).enumerate() {
        let (lhs, rhs) = views(xi);
        matmul((m, n, k), d, accumulate, lhs, rhs, parallelism);
    }
}

/// Forward pass (see [`super::forward`]) of a convolution [`applies`] accepts.
pub(super) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let t = Tiling::new(g);
    let u = transform_weight(g, weight);
    let (c_n, o_n) = (g.in_channels, g.out_channels);
    let parallelism = gemm_threads(g.batch);
    let x_image = c_n * g.in_plane();
    let block = |b: usize,
                 rows: std::ops::Range<usize>,
                 v: &mut [f32],
                 m: &mut [f32],
                 rows_buf: &mut [f32],
                 yb: &mut [f32]| {
        let tiles = rows.len() * t.cols;
        let xb = &x[b * x_image..][..x_image];
        transform_input(&t, xb, c_n, rows.clone(), v, rows_buf);
        products(
            (o_n, tiles, c_n),
            m,
            false,
            |xi| {
                (
                    View::row_major(&u[xi * o_n * c_n..][..o_n * c_n], c_n),
                    View::row_major(&v[xi * c_n * tiles..][..c_n * tiles], tiles),
                )
            },
            parallelism,
        );
        transform_output(&t, m, o_n, rows, bias, yb, rows_buf);
    };
    image_by_image(g, &t, o_n * g.out_plane(), parallelism, block)
}

/// Input gradient (see [`super::input_grad`]) of a convolution [`applies`] accepts.
pub(super) fn input_grad(g: &ConvGeometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let t = Tiling::new(g);
    let u = transform_weight(g, weight);
    let (c_n, o_n) = (g.in_channels, g.out_channels);
    let parallelism = gemm_threads(g.batch);
    let y_image = o_n * g.out_plane();
    let block = |b: usize,
                 rows: std::ops::Range<usize>,
                 dv: &mut [f32],
                 dm: &mut [f32],
                 rows_buf: &mut [f32],
                 dxb: &mut [f32]| {
        let tiles = rows.len() * t.cols;
        let dyb = &dy[b * y_image..][..y_image];
        transform_output_grad(&t, dyb, o_n, rows.clone(), dm, rows_buf);
        products(
            (c_n, tiles, o_n),
            dv,
            false,
            |xi| {
                (
                    View::transposed(&u[xi * o_n * c_n..][..o_n * c_n], c_n),
                    View::row_major(&dm[xi * o_n * tiles..][..o_n * tiles], tiles),
                )
            },
            parallelism,
        );
        transform_input_grad(&t, dv, c_n, rows, dxb, rows_buf);
    };
    image_by_image(g, &t, c_n * g.in_plane(), parallelism, block)
}

/// Weight gradient (see [`super::weight_grad`]) of a convolution [`applies`] accepts: `dU`
/// summed over fixed runs of images as in the im2col kernel, then transformed back once.
pub(super) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let t = Tiling::new(g);
    let (c_n, o_n) = (g.in_channels, g.out_channels);
    let (x_image, y_image) = (c_n * g.in_plane(), o_n * g.out_plane());
    let chunks = g.batch.min(WEIGHT_GRAD_CHUNKS);
    let parallelism = gemm_threads(chunks);
    let partial = |chunk: usize| {
        let images = chunk * g.batch / chunks..(chunk + 1) * g.batch / chunks;
        let mut du = vec![0.0f32; XI * o_n * c_n];
        with_block_scratch(g, &t, |v, dm, rows_buf| {
            for (n, b) in images.enumerate() {
                let (xb, dyb) = (&x[b * x_image..][..x_image], &dy[b * y_image..][..y_image]);
                for rows in t.blocks() {
                    let (first, tiles) = (n == 0 && rows.start == 0, rows.len() * t.cols);
                    transform_input(&t, xb, c_n, rows.clone(), v, rows_buf);
                    transform_output_grad(&t, dyb, o_n, rows, dm, rows_buf);
                    products(
                        (o_n, c_n, tiles),
                        &mut du,
                        !first,
                        |xi| {
                            (
                                View::row_major(&dm[xi * o_n * tiles..][..o_n * tiles], tiles),
                                View::transposed(&v[xi * c_n * tiles..][..c_n * tiles], tiles),
                            )
                        },
                        parallelism,
                    );
                }
            }
        });
        du
    };
    let partials: Vec<Vec<f32>> = if matches!(parallelism, Parallelism::None) {
        (0..chunks).into_par_iter().map(partial).collect()
    } else {
        (0..chunks).map(partial).collect()
    };
    untransform_weight(g, &sum_in_order(partials))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{naive_forward, padded_3x3, pseudo_random, winograd_cases};
    use crate::test_values::dot;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        pseudo_random(n, seed)
    }

    /// The Winograd cases of the convolution tests, checked to take this path.
    fn cases() -> Vec<ConvGeometry> {
        let cases = winograd_cases();
        assert!(cases.iter().all(applies));
        cases
    }

    #[test]
    fn applies_only_to_padded_dense_3x3_stride_1() {
        assert!(applies(&padded_3x3(1, 16, 16, [5, 5])));
        assert!(!applies(&padded_3x3(1, 15, 16, [5, 5])));
        assert!(!applies(&padded_3x3(1, 16, 15, [5, 5])));
        let mk = |s, d, pb, pe, groups| {
            ConvGeometry::new([1, 16, 8, 8], [16, 16 / groups, 3, 3], s, d, pb, pe, groups).unwrap()
        };
        assert!(!applies(&mk([2, 2], [1, 1], [1, 1], [1, 1], 1)));
        assert!(!applies(&mk([1, 1], [2, 2], [1, 1], [1, 1], 1)));
        assert!(!applies(&mk([1, 1], [1, 1], [0, 1], [1, 1], 1)));
        assert!(!applies(&mk([1, 1], [1, 1], [1, 1], [0, 0], 1)));
        assert!(!applies(&mk([1, 1], [1, 1], [1, 1], [1, 1], 2)));
    }

    /// `⟨dy, conv(x, w)⟩ = ⟨dx(dy), x⟩ = ⟨dw(x, dy), w⟩`, with the convolution from the
    /// definition: the gradients are those of the convolution, not just of the Winograd map.
    #[test]
    fn gradients_are_adjoints_of_the_convolution() {
        for (n, g) in cases().into_iter().enumerate() {
            let x = values(g.x_dims().iter().product(), 11 + n as u64);
            let w = values(g.weight_dims().iter().product(), 111 + n as u64);
            let dy = values(g.y_dims().iter().product(), 211 + n as u64);
            let lhs: f64 = naive_forward(&g, &x, &w, None)
                .iter()
                .zip(&dy)
                .map(|(y, d)| y * *d as f64)
                .sum();
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
        }
    }

    /// Element by element against the definition: every input and weight position, including
    /// the borders where patches overlap the padding.
    #[test]
    fn gradients_match_the_definition_elementwise() {
        let g = padded_3x3(2, 16, 17, [7, 6]);
        let [h, wd] = g.in_size;
        let x = values(g.x_dims().iter().product(), 31);
        let w = values(g.weight_dims().iter().product(), 32);
        let dy = values(g.y_dims().iter().product(), 33);
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                for i in 0..h {
                    for j in 0..wd {
                        let d = dy[((b * g.out_channels + o) * h + i) * wd + j] as f64;
                        for c in 0..g.in_channels {
                            for u in 0..3 {
                                for v in 0..3 {
                                    let (ih, iw) = (i + u, j + v);
                                    if ih < 1 || iw < 1 || ih > h || iw > wd {
                                        continue;
                                    }
                                    let xi = ((b * g.in_channels + c) * h + ih - 1) * wd + iw - 1;
                                    let wi = ((o * g.in_channels + c) * 3 + u) * 3 + v;
                                    dx[xi] += d * w[wi] as f64;
                                    dw[wi] += d * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (a, b) in input_grad(&g, &w, &dy).iter().zip(&dx) {
            assert!((*a as f64 - b).abs() < 1e-4, "dx: {a} vs {b}");
        }
        for (a, b) in weight_grad(&g, &x, &dy).iter().zip(&dw) {
            assert!((*a as f64 - b).abs() < 1e-4, "dw: {a} vs {b}");
        }
    }
}
