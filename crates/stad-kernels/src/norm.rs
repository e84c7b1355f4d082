//! Per-channel kernels on NCHW `f32` slices: BatchNorm in training mode (forward and
//! backward), the per-channel affine map of BatchNorm in inference mode, and the STFPM layer
//! loss with its gradient.
//!
//! burn-flex runs the generic formulation of these (means over leading axes, broadcasts of
//! `[1, C, 1, 1]` or `[B, 1, H, W]` operands, their reductions in the backward pass) through
//! strided iteration, an order of magnitude slower than these loops (measured in
//! `docs/cpu-kernels.md`). Each kernel runs over
//! channels or images in parallel; every sum has a fixed order (8 `f32` lanes per row, rows
//! added in `f64`), so results are bit-identical run to run.

use multiversion::multiversion;
use rayon::prelude::*;

/// Lanes of the row sums (independent partial sums, one vector register).
const LANES: usize = 8;

/// `Σ f(v)` over a row, in [`LANES`] interleaved `f64` partial sums (BatchNorm's backward
/// subtracts these means from `dy`, which amplifies any rounding in them: `f32` lanes left
/// ResNet18's first-layer gradients 1e-3 off PyTorch's, `f64` ones 1e-5).
#[inline(always)]
fn row_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&x| f64::from(f(x))).sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f64::from(f(c[l]));
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The activation a per-channel kernel applies to its result `z` (fused, to save a pass over
/// the tensor and an autodiff node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// `y = z`.
    #[default]
    Identity,
    /// `y = max(z, 0)`; the gradient passes where `y > 0` (PyTorch's `threshold_backward`).
    Relu,
    /// `y = min(max(z, 0), 6)`; the gradient passes where `0 < y < 6` (PyTorch's
    /// `hardtanh_backward`).
    Relu6,
}

impl Activation {
    /// `y` from `z` (NaN stays NaN).
    #[inline(always)]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Self::Identity => z,
            Self::Relu => relu(z),
            Self::Relu6 => relu6(z),
        }
    }

    /// Whether the gradient passes at an output value `y`.
    #[inline(always)]
    pub fn passes(self, y: f32) -> bool {
        match self {
            Self::Identity => true,
            Self::Relu => y > 0.0,
            Self::Relu6 => (y > 0.0) & (y < 6.0),
        }
    }
}

/// `max(z, 0)` with NaN kept, written as one comparison and one select so that loops over it
/// vectorise (a chain of branches kept them scalar: `docs/measurements.md`, 2026-12-06).
#[inline(always)]
fn relu(z: f32) -> f32 {
    if z <= 0.0 { 0.0 } else { z }
}

/// `min(max(z, 0), 6)` with NaN kept (two selects).
#[inline(always)]
fn relu6(z: f32) -> f32 {
    let r = relu(z);
    if r >= 6.0 { 6.0 } else { r }
}

/// `dy` where ReLU's gradient passes at the output `y` ([`Activation::passes`]), else 0.
#[inline(always)]
fn relu_gate(y: f32, dy: f32) -> f32 {
    if Activation::Relu.passes(y) { dy } else { 0.0 }
}

/// `dy` where ReLU6's gradient passes at the output `y` ([`Activation::passes`]), else 0.
#[inline(always)]
fn relu6_gate(y: f32, dy: f32) -> f32 {
    if Activation::Relu6.passes(y) { dy } else { 0.0 }
}

/// Evaluates `$body` with `$apply: Fn(f32) -> f32` (the activation) and `$gate: Fn(y, dy) ->
/// f32` (its gradient gate at the output `y`) bound to plain functions of `$act`: one copy of
/// the body per activation, so that each copy's loops are compiled, and vectorised, without
/// a test of the activation per element.
macro_rules! per_activation {
    ($act:expr, |$apply:ident, $gate:ident| $body:expr) => {
        match $act {
            Activation::Identity => {
                let $apply = |z: f32| z;
                let $gate = |_y: f32, dy: f32| dy;
                $body
            }
            Activation::Relu => {
                let $apply = relu;
                let $gate = relu_gate;
                $body
            }
            Activation::Relu6 => {
                let $apply = relu6;
                let $gate = relu6_gate;
                $body
            }
        }
    };
}

/// `(Σ g_i, Σ g_i·(x_i − μ))` over one plane, with `g_i = gate(y_i, dy_i)`, in [`LANES`]
/// interleaved `f64` partial sums each: BatchNorm backward's two reductions in one pass.
#[inline(always)]
fn gated_sums(
    (x, dy, y): (&[f32], &[f32], &[f32]),
    mean: f32,
    gate: impl Fn(f32, f32) -> f32,
) -> (f64, f64) {
    let (mut sum_g, mut sum_gx) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (cx, cd, cy) = (
        x.chunks_exact(LANES),
        dy.chunks_exact(LANES),
        y.chunks_exact(LANES),
    );
    let (mut tail_g, mut tail_gx) = (0.0f64, 0.0f64);
    for ((&xv, &dv), &yv) in cx
        .remainder()
        .iter()
        .zip(cd.remainder())
        .zip(cy.remainder())
    {
        let g = gate(yv, dv);
        tail_g += f64::from(g);
        tail_gx += f64::from(g * (xv - mean));
    }
    for ((xs, ds), ys) in cx.zip(cd).zip(cy) {
        for l in 0..LANES {
            let g = gate(ys[l], ds[l]);
            sum_g[l] += f64::from(g);
            sum_gx[l] += f64::from(g * (xs[l] - mean));
        }
    }
    (
        sum_g.iter().sum::<f64>() + tail_g,
        sum_gx.iter().sum::<f64>() + tail_gx,
    )
}

/// Per-channel statistics of a training-mode BatchNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    /// `μ_c`, the mean over `(B, H, W)`.
    pub mean: Vec<f32>,
    /// `σ²_c`, the biased variance over `(B, H, W)`.
    pub var: Vec<f32>,
    /// `1/√(σ²_c + ε)`.
    pub inv_std: Vec<f32>,
}

/// The planes of channel `c` in `x: [B, C, P]`.
fn channel_planes(x: &[f32], dims: [usize; 3], c: usize) -> impl Iterator<Item = &[f32]> {
    let [b, ch, p] = dims;
    (0..b).map(move |n| &x[(n * ch + c) * p..][..p])
}

/// One channel of [`batch_norm_train`]: its statistics `(μ, σ², 1/√(σ²+ε))`, and its output
/// planes written. The channel's planes are read three times in a row, so the second and third
/// reads come from the cache, not from memory.
#[multiversion(targets = "simd")]
fn batch_norm_channel(
    planes: &[&[f32]],
    out: &mut [&mut [f32]],
    (gamma, beta, eps): (f32, f32, f64),
    act: Activation,
) -> (f32, f32, f32) {
    let n: usize = planes.iter().map(|p| p.len()).sum();
    let n = n as f64;
    let mean = planes.iter().map(|row| row_sum(row, |v| v)).sum::<f64>() / n;
    let m = mean as f32;
    let var = planes
        .iter()
        .map(|row| row_sum(row, |v| (v - m) * (v - m)))
        .sum::<f64>()
        / n;
    let inv_std = (1.0 / (var + eps).sqrt()) as f32;
    // Centre first: `x·scale + (β − μ·scale)` cancels catastrophically when |μ| ≫ σ.
    let scale = gamma * inv_std;
    per_activation!(act, |apply, _gate| {
        for (o, row) in out.iter_mut().zip(planes) {
            for (o, v) in o.iter_mut().zip(row.iter()) {
                *o = apply((v - m) * scale + beta);
            }
        }
    });
    (m, var as f32, inv_std)
}

/// BatchNorm forward with batch statistics and a fused activation:
/// `y = act((x − μ_c)·γ_c/√(σ²_c + ε) + β_c)` for `x: [B, C, P]` (`P = H·W`), with `μ_c`,
/// `σ²_c` (biased) over `(B, P)`, computed in two passes; channels in parallel.
pub fn batch_norm_train(
    dims: [usize; 3],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    act: Activation,
) -> (Vec<f32>, BatchStats) {
    let [b, c, p] = dims;
    assert_eq!(x.len(), b * c * p, "input of {dims:?} expected");
    assert!(
        gamma.len() == c && beta.len() == c,
        "one γ and β per channel"
    );
    let (y, stats) = crate::buffer::zeroed_by_channel(dims, |ch, out| {
        let planes: Vec<&[f32]> = channel_planes(x, dims, ch).collect();
        batch_norm_channel(&planes, out, (gamma[ch], beta[ch], eps), act)
    });
    let stats = BatchStats {
        mean: stats.iter().map(|s| s.0).collect(),
        var: stats.iter().map(|s| s.1).collect(),
        inv_std: stats.iter().map(|s| s.2).collect(),
    };
    (y, stats)
}

/// One channel's planes, one per image.
type ChannelPlanes<'a> = &'a [&'a [f32]];

/// One channel of [`batch_norm_train_backward`]: `(dγ, dβ)`, and its `dx` planes written.
#[multiversion(targets = "simd")]
fn batch_norm_backward_channel<'a>(
    (x, dy, y): (ChannelPlanes<'a>, ChannelPlanes<'a>, ChannelPlanes<'a>),
    dx: &mut [&mut [f32]],
    (mean, inv_std, gamma): (f32, f32, f32),
    act: Activation,
) -> (f32, f32) {
    per_activation!(act, |_apply, gate| {
        let (mut d_beta, mut d_gamma_centred) = (0.0f64, 0.0f64);
        for ((xr, dr), yr) in x.iter().zip(dy).zip(y) {
            let (g, gx) = gated_sums((xr, dr, yr), mean, gate);
            d_beta += g;
            d_gamma_centred += gx;
        }
        let d_gamma = (d_gamma_centred * f64::from(inv_std)) as f32;
        let d_beta = d_beta as f32;
        let n: usize = x.iter().map(|p| p.len()).sum();
        let n = n as f32;
        let k = gamma * inv_std;
        let (mean_dbeta, mean_dgamma) = (d_beta / n, d_gamma / n);
        for (((out, xr), dr), yr) in dx.iter_mut().zip(x).zip(dy).zip(y) {
            for (((o, &xv), &dv), &yv) in
                out.iter_mut().zip(xr.iter()).zip(dr.iter()).zip(yr.iter())
            {
                let x_hat = (xv - mean) * inv_std;
                *o = k * (gate(yv, dv) - mean_dbeta - x_hat * mean_dgamma);
            }
        }
        (d_gamma, d_beta)
    })
}

/// Gradients of [`batch_norm_train`] from `dy`: with `g = dy` where the activation passes at
/// the output `y` (else 0), `x̂ = (x − μ_c)/√(σ²_c + ε)` and `N = B·P`,
/// `dβ_c = Σ g`, `dγ_c = Σ g·x̂`, `dx = γ_c/√(σ²_c + ε) · (g − dβ_c/N − x̂·dγ_c/N)`.
/// `y` (the forward output) is needed for any activation but [`Activation::Identity`].
/// Channels in parallel, each read twice in a row (the second time from the cache).
/// Returns `(dx, dγ, dβ)`.
pub fn batch_norm_train_backward(
    dims: [usize; 3],
    x: &[f32],
    gamma: &[f32],
    stats: &BatchStats,
    dy: &[f32],
    (act, y): (Activation, Option<&[f32]>),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, c, p] = dims;
    assert!(
        x.len() == b * c * p && dy.len() == x.len(),
        "tensors of {dims:?} expected"
    );
    // Without an activation the gate ignores `y`: `dy` stands in for it.
    let y = match (act, y) {
        (Activation::Identity, _) => dy,
        (_, Some(y)) => {
            assert_eq!(y.len(), x.len(), "output of {dims:?} expected");
            y
        }
        (_, None) => panic!("the forward output is needed to differentiate {act:?}"),
    };
    let (dx, sums) = crate::buffer::zeroed_by_channel(dims, |ch, out| {
        let xs: Vec<&[f32]> = channel_planes(x, dims, ch).collect();
        let dys: Vec<&[f32]> = channel_planes(dy, dims, ch).collect();
        let ys: Vec<&[f32]> = channel_planes(y, dims, ch).collect();
        batch_norm_backward_channel(
            (&xs, &dys, &ys),
            out,
            (stats.mean[ch], stats.inv_std[ch], gamma[ch]),
            act,
        )
    });
    (
        dx,
        sums.iter().map(|s| s.0).collect(),
        sums.iter().map(|s| s.1).collect(),
    )
}

/// `y = act(x·scale_c + shift_c)` for `x: [B, C, P]` (BatchNorm in inference mode).
pub fn channel_affine(
    dims: [usize; 3],
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    act: Activation,
) -> Vec<f32> {
    let [b, c, p] = dims;
    assert_eq!(x.len(), b * c * p, "input of {dims:?} expected");
    assert!(
        scale.len() == c && shift.len() == c,
        "one scale and shift per channel"
    );
    crate::buffer::zeroed_chunks(x.len(), p, true, |plane, out| {
        let (a, s) = (scale[plane % c], shift[plane % c]);
        affine_plane(out, &x[plane * p..][..p], (a, s), act);
    })
}

/// One plane of [`channel_affine`]: `out = act(x·a + s)`.
#[multiversion(targets = "simd")]
fn affine_plane(out: &mut [f32], x: &[f32], (a, s): (f32, f32), act: Activation) {
    per_activation!(act, |apply, _gate| {
        for (o, v) in out.iter_mut().zip(x) {
            *o = apply(v * a + s);
        }
    })
}

/// Elements per parallel task of [`zip_map`].
const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// `f(a_i, b_i)` for every element of two equal-length slices, in parallel chunks.
fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "operands of one length");
    crate::buffer::zeroed_chunks(a.len(), ELEMENTWISE_CHUNK, true, |i, out| {
        let at = i * ELEMENTWISE_CHUNK;
        let (a, b) = (&a[at..][..out.len()], &b[at..][..out.len()]);
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    })
}

/// `y = act(a + b)` element by element (a residual connection and its activation).
pub fn add_activation(a: &[f32], b: &[f32], act: Activation) -> Vec<f32> {
    per_activation!(act, |apply, _gate| zip_map(a, b, move |a, b| apply(a + b)))
}

/// The gradient of [`add_activation`] (the same for both operands): `dy` where the activation
/// passes at the output `y`, else 0.
pub fn activation_grad(y: &[f32], dy: &[f32], act: Activation) -> Vec<f32> {
    per_activation!(act, |_apply, gate| zip_map(y, dy, gate))
}

/// Per position of one image `[C, P]`: `1/max(‖v_{·,p}‖, ε)` over the channels.
fn inverse_norms(v: &[f32], c: usize, p: usize, eps: f64) -> Vec<f32> {
    let mut sq = vec![0.0f32; p];
    for row in v.chunks_exact(p).take(c) {
        for (s, x) in sq.iter_mut().zip(row) {
            *s += x * x;
        }
    }
    let eps2 = (eps * eps) as f32;
    sq.iter().map(|&s| 1.0 / s.max(eps2).sqrt()).collect()
}

/// The STFPM loss of one layer, `L = (1/(B·P)) Σ_{b,p} Σ_c (t̂ − ŝ)²` with
/// `v̂ = v / max(‖v‖_c, ε)` over channels, for `teacher, student: [B, C, P]`.
pub fn stfpm_layer_loss(dims: [usize; 3], teacher: &[f32], student: &[f32], eps: f64) -> f64 {
    let [b, c, p] = dims;
    assert!(
        teacher.len() == b * c * p && student.len() == teacher.len(),
        "maps of {dims:?}"
    );
    let per_image: Vec<f64> = (0..b)
        .into_par_iter()
        .map(|n| {
            let (t, s) = (
                &teacher[n * c * p..][..c * p],
                &student[n * c * p..][..c * p],
            );
            let (it, is) = (inverse_norms(t, c, p, eps), inverse_norms(s, c, p, eps));
            t.chunks_exact(p)
                .zip(s.chunks_exact(p))
                .map(|(tr, sr)| {
                    let mut acc = [0.0f32; LANES];
                    for (q, ((tv, sv), (a, b))) in
                        tr.iter().zip(sr).zip(it.iter().zip(&is)).enumerate()
                    {
                        let d = tv * a - sv * b;
                        acc[q % LANES] += d * d;
                    }
                    acc.iter().sum::<f32>() as f64
                })
                .sum()
        })
        .collect();
    per_image.iter().sum::<f64>() / (b * p) as f64
}

/// Gradient of [`stfpm_layer_loss`] with respect to the student, times `upstream`:
/// with `d = ŝ − t̂`, `g = 2·upstream·d/(B·P)`, `∂L/∂s = (g − ŝ·⟨ŝ, g⟩_c) / ‖s‖` where
/// `‖s‖ ≥ ε`, and `g/ε` where the norm is clamped.
pub fn stfpm_layer_loss_grad(
    dims: [usize; 3],
    teacher: &[f32],
    student: &[f32],
    eps: f64,
    upstream: f32,
) -> Vec<f32> {
    let [b, c, p] = dims;
    assert!(
        teacher.len() == b * c * p && student.len() == teacher.len(),
        "maps of {dims:?}"
    );
    let k = 2.0 * upstream / (b * p) as f32;
    let eps2 = (eps * eps) as f32;
    crate::buffer::zeroed_chunks(student.len(), c * p, true, |n, out| {
        let (t, s) = (
            &teacher[n * c * p..][..c * p],
            &student[n * c * p..][..c * p],
        );
        let it = inverse_norms(t, c, p, eps);
        let mut sq = vec![0.0f32; p];
        for row in s.chunks_exact(p) {
            for (q, x) in sq.iter_mut().zip(row) {
                *q += x * x;
            }
        }
        let clamped: Vec<bool> = sq.iter().map(|&q| q < eps2).collect();
        let is: Vec<f32> = sq.iter().map(|&q| 1.0 / q.max(eps2).sqrt()).collect();
        // ⟨ŝ, d⟩ per position.
        let mut dot = vec![0.0f32; p];
        for (tr, sr) in t.chunks_exact(p).zip(s.chunks_exact(p)) {
            for q in 0..p {
                let s_hat = sr[q] * is[q];
                dot[q] += s_hat * (s_hat - tr[q] * it[q]);
            }
        }
        for ((o, tr), sr) in out
            .chunks_exact_mut(p)
            .zip(t.chunks_exact(p))
            .zip(s.chunks_exact(p))
        {
            for q in 0..p {
                let s_hat = sr[q] * is[q];
                let d = s_hat - tr[q] * it[q];
                let projected = if clamped[q] { d } else { d - s_hat * dot[q] };
                o[q] = k * is[q] * projected;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::dot;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::test_values::uniform(n, seed, -1.5, 4.0)
    }

    /// Central differences of `f` along `dir` at `x`, in f64.
    fn directional(f: impl Fn(&[f32]) -> f64, x: &[f32], dir: &[f32], h: f32) -> f64 {
        let plus: Vec<f32> = x.iter().zip(dir).map(|(a, d)| a + h * d).collect();
        let minus: Vec<f32> = x.iter().zip(dir).map(|(a, d)| a - h * d).collect();
        (f(&plus) - f(&minus)) / (2.0 * h as f64)
    }

    #[test]
    fn batch_norm_normalises_each_channel() {
        let dims = [3, 4, 10];
        let x = values(120, 1);
        let (y, stats) =
            batch_norm_train(dims, &x, &[1.0; 4], &[0.0; 4], 1e-5, Activation::Identity);
        for ch in 0..4 {
            let vals: Vec<f64> = channel_planes(&y, dims, ch)
                .flatten()
                .map(|&v| v as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / 30.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 30.0;
            assert!(
                mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-3,
                "channel {ch}: {mean} {var}"
            );
            let raw: Vec<f64> = channel_planes(&x, dims, ch)
                .flatten()
                .map(|&v| v as f64)
                .collect();
            let m = raw.iter().sum::<f64>() / 30.0;
            assert!((stats.mean[ch] as f64 - m).abs() < 1e-6);
        }
    }

    /// The backward pass against finite differences of `⟨r, y(x, γ, β)⟩`.
    #[test]
    fn batch_norm_gradients_match_finite_differences() {
        let dims = [2, 3, 7];
        let (x, gamma, beta, r) = (values(42, 2), values(3, 3), values(3, 4), values(42, 5));
        let loss = |x: &[f32], g: &[f32], b: &[f32]| {
            dot(
                &batch_norm_train(dims, x, g, b, 1e-5, Activation::Identity).0,
                &r,
            )
        };
        let (_, stats) = batch_norm_train(dims, &x, &gamma, &beta, 1e-5, Activation::Identity);
        let (dx, dg, db) =
            batch_norm_train_backward(dims, &x, &gamma, &stats, &r, (Activation::Identity, None));
        let dir = values(42, 6);
        let fd = directional(|v| loss(v, &gamma, &beta), &x, &dir, 1e-2);
        assert!(
            (fd - dot(&dx, &dir)).abs() < 2e-3 * (1.0 + fd.abs()),
            "dx: {fd} vs {}",
            dot(&dx, &dir)
        );
        let dir = values(3, 7);
        let fd = directional(|v| loss(&x, v, &beta), &gamma, &dir, 1e-2);
        assert!((fd - dot(&dg, &dir)).abs() < 2e-3 * (1.0 + fd.abs()), "dγ");
        let fd = directional(|v| loss(&x, &gamma, v), &beta, &dir, 1e-2);
        assert!((fd - dot(&db, &dir)).abs() < 2e-3 * (1.0 + fd.abs()), "dβ");
    }

    /// Against the textbook formulas in `f64`, on channels whose mean is large next to their
    /// spread (where rounding shows).
    /// The fused activations against their definition: the forward pass is the activation of
    /// the plain BatchNorm output, and the backward pass is the plain backward pass of `dy`
    /// gated where the activation passes at the output (values straddling 0 and 6).
    #[test]
    fn fused_activations_equal_the_activation_after_batch_norm() {
        let dims = [3, 4, 37];
        let n: usize = dims.iter().product();
        let x: Vec<f32> = values(n, 11).iter().map(|v| 4.0 * v).collect();
        let dy = values(n, 12);
        let (gamma, beta) = ([3.0, -2.5, 4.0, 0.5], [2.0, 1.0, 3.0, -0.2]);
        let (plain, stats) = batch_norm_train(dims, &x, &gamma, &beta, 1e-5, Activation::Identity);
        for act in [Activation::Relu, Activation::Relu6] {
            let (y, fused_stats) = batch_norm_train(dims, &x, &gamma, &beta, 1e-5, act);
            assert_eq!(fused_stats, stats);
            let want: Vec<f32> = plain.iter().map(|&z| act.apply(z)).collect();
            assert_eq!(y, want, "{act:?} forward");
            assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
            if act == Activation::Relu6 {
                assert!(y.contains(&6.0), "the test data reach the upper clamp");
            }
            let gated: Vec<f32> = y
                .iter()
                .zip(&dy)
                .map(|(&v, &d)| if act.passes(v) { d } else { 0.0 })
                .collect();
            let (dx, dg, db) =
                batch_norm_train_backward(dims, &x, &gamma, &stats, &dy, (act, Some(&y)));
            let (want_dx, want_dg, want_db) = batch_norm_train_backward(
                dims,
                &x,
                &gamma,
                &stats,
                &gated,
                (Activation::Identity, None),
            );
            assert_eq!((dg, db), (want_dg, want_db), "{act:?} dγ, dβ");
            assert_eq!(dx, want_dx, "{act:?} dx");
        }
    }

    #[test]
    fn activations_keep_nan_and_clamp_as_defined() {
        for (z, relu, relu6) in [
            (-1.0f32, 0.0f32, 0.0f32),
            (-0.0, 0.0, 0.0),
            (0.5, 0.5, 0.5),
            (6.0, 6.0, 6.0),
            (7.5, 7.5, 6.0),
        ] {
            assert_eq!(
                Activation::Relu.apply(z).to_bits(),
                relu.to_bits(),
                "relu({z})"
            );
            assert_eq!(
                Activation::Relu6.apply(z).to_bits(),
                relu6.to_bits(),
                "relu6({z})"
            );
        }
        assert!(Activation::Relu.apply(f32::NAN).is_nan());
        assert!(Activation::Relu6.apply(f32::NAN).is_nan());
        assert!(!Activation::Relu6.passes(6.0) && Activation::Relu6.passes(5.9));
        assert!(!Activation::Relu.passes(0.0) && !Activation::Relu.passes(f32::NAN));
    }

    #[test]
    fn batch_norm_backward_matches_f64_reference() {
        let dims = [4, 3, 61];
        let [b, c, p] = dims;
        let x: Vec<f32> = values(b * c * p, 11)
            .iter()
            .enumerate()
            .map(|(i, v)| 20.0 * (i % c) as f32 + 0.05 * v)
            .collect();
        let (gamma, dy) = (values(c, 12), values(b * c * p, 13));
        let (_, stats) = batch_norm_train(dims, &x, &gamma, &[0.0; 3], 1e-5, Activation::Identity);
        let (dx, _, _) =
            batch_norm_train_backward(dims, &x, &gamma, &stats, &dy, (Activation::Identity, None));
        let n = (b * p) as f64;
        for (ch, &g) in gamma.iter().enumerate() {
            let idx: Vec<usize> = (0..b)
                .flat_map(|bb| (0..p).map(move |q| (bb * c + ch) * p + q))
                .collect();
            let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / n;
            let var = idx
                .iter()
                .map(|&i| (x[i] as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            let inv = 1.0 / (var + 1e-5).sqrt();
            let xh = |i: usize| (x[i] as f64 - mean) * inv;
            let sdy = idx.iter().map(|&i| dy[i] as f64).sum::<f64>();
            let sdyx = idx.iter().map(|&i| dy[i] as f64 * xh(i)).sum::<f64>();
            for &i in &idx {
                let want = g as f64 * inv * (dy[i] as f64 - sdy / n - xh(i) * sdyx / n);
                let tol = 2e-5 * (g as f64 * inv).abs();
                assert!(
                    (dx[i] as f64 - want).abs() < tol,
                    "channel {ch}: {} vs {want}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn stfpm_loss_matches_hand_values_and_finite_differences() {
        // [1, 2, 2]: position 0 t = (3, 4), s = (1, 0): 0.8; position 1 t = (0, 2), s = (0, −5): 4.
        let t = [3.0f32, 0.0, 4.0, 2.0];
        let s = [1.0f32, 0.0, 0.0, -5.0];
        assert!((stfpm_layer_loss([1, 2, 2], &t, &s, 1e-12) - 2.4).abs() < 1e-6);
        let dims = [2, 5, 9];
        let (t, s) = (values(90, 8), values(90, 9));
        let g = stfpm_layer_loss_grad(dims, &t, &s, 1e-12, 1.5);
        let dir = values(90, 10);
        let fd = 1.5 * directional(|v| stfpm_layer_loss(dims, &t, v, 1e-12), &s, &dir, 1e-3);
        assert!(
            (fd - dot(&g, &dir)).abs() < 1e-3 * (1.0 + fd.abs()),
            "{fd} vs {}",
            dot(&g, &dir)
        );
    }
}
