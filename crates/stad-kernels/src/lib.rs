//! Fast 2-D convolution for burn's CPU backend (flex): the forward pass and both gradients.
//!
//! burn-flex 0.21 has a fast convolution forward pass but inherits burn-backend's generic
//! gradients: the input gradient as a transposed convolution, and the weight gradient of a
//! grouped convolution as one convolution *per group* (MobileNetV2's depthwise layers have up to
//! 576) followed by a `slice_assign`. Training a student spent most of its step there.
//!
//! [`conv2d`] is a drop-in replacement for `burn::nn::conv::Conv2d::forward`, generic over
//! `B: Backend`:
//! - on `Flex` it runs [`kernels::forward`];
//! - on `Autodiff<Flex>` it records an autodiff operation whose backward pass runs
//!   [`kernels::input_grad`], [`kernels::weight_grad`] and [`kernels::bias_grad`];
//! - on every other backend (CUDA, ndarray, other autodiff wrappers) it is exactly burn's
//!   `conv2d`, so those keep burn's own kernels.
//!
//! The backend is recognised by its type (`TypeId`, resolved at compile time after
//! monomorphisation), so model code keeps its `B: Backend` bounds: see
//! `docs/conv-kernels.md` for why this was chosen over a backend-extension trait.
//!
//! The kernels (module [`kernels`]) work on NCHW `f32` slices: im2col + GEMM (the `gemm` crate,
//! the one burn-flex uses) for dense and grouped convolutions, Winograd F(2×2, 3×3) for dense
//! 3×3 stride-1 ones with padding 1, direct loops for depthwise ones;
//! any stride, dilation and asymmetric padding (TensorFlow's "same"). Results are deterministic
//! (a fixed summation order, independent of the thread count).

pub mod buffer;
pub mod geometry;
pub mod kernels;
pub mod norm;
pub mod pool;

mod flex;

/// Test data shared by the kernels' unit tests.
#[cfg(test)]
mod test_values {
    /// `n` values, uniform in `[lo, lo + width)`, from a seeded xorshift generator.
    pub(crate) fn uniform(n: usize, seed: u64, lo: f32, width: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * width + lo
            })
            .collect()
    }

    /// `⟨a, b⟩` in `f64`.
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }
}

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Flex;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;
use burn::tensor::ops::PaddedConvOptions;
use burn::tensor::{DType, TensorPrimitive};

pub use geometry::{ConvGeometry, ConvShapeError};
pub use norm::Activation;
pub use pool::PoolGeometry;

use crate::flex::FlexAutodiff;

/// Stride, dilation, padding and groups of a 2-D convolution (the shapes come from the tensors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Stride (rows, columns).
    pub stride: [usize; 2],
    /// Dilation (rows, columns).
    pub dilation: [usize; 2],
    /// Zero padding before (top, left).
    pub pad_begin: [usize; 2],
    /// Zero padding after (bottom, right).
    pub pad_end: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

impl ConvSpec {
    /// The settings of a burn `Conv2d` for an input of `in_size = [H, W]` (its padding resolved
    /// as burn resolves it: `Same` puts the odd pixel after, as ONNX does).
    pub fn of<B: Backend>(conv: &Conv2d<B>, in_size: [usize; 2]) -> Self {
        let (pad_begin, pad_end) =
            resolve_padding(&conv.padding, conv.kernel_size, conv.stride, in_size);
        Self {
            stride: conv.stride,
            dilation: conv.dilation,
            pad_begin,
            pad_end,
            groups: conv.groups,
        }
    }
}

/// `(pad_begin, pad_end)` of a burn padding for an input of `in_size`, resolved as burn
/// resolves it: `Same` puts the odd pixel after, as ONNX does.
fn resolve_padding(
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    stride: [usize; 2],
    in_size: [usize; 2],
) -> ([usize; 2], [usize; 2]) {
    match *padding {
        PaddingConfig2d::Valid => ([0, 0], [0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ([top, left], [bottom, right]),
        PaddingConfig2d::Same => {
            let same = |axis: usize| {
                let (k, s, n) = (kernel[axis], stride[axis], in_size[axis]);
                let total = (n.div_ceil(s).saturating_sub(1) * s + k).saturating_sub(n);
                (total / 2, total - total / 2)
            };
            let (top, bottom) = same(0);
            let (left, right) = same(1);
            ([top, left], [bottom, right])
        }
    }
}

static FAST_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns stad's CPU kernels on (the default) or off for the whole process. Off, [`conv2d`] is
/// burn's `conv2d` on every backend: for A/B benchmarks and for checking one against the other.
pub fn set_fast_kernels(enabled: bool) {
    FAST_KERNELS.store(enabled, Ordering::Relaxed);
}

/// Whether [`conv2d`] uses stad's CPU kernels on flex (see [`set_fast_kernels`]).
pub fn fast_kernels() -> bool {
    FAST_KERNELS.load(Ordering::Relaxed)
}

/// `conv.forward(x)` with stad's kernels on flex (see the crate docs); identical results to
/// burn's `Conv2d::forward` up to float rounding.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let spec = ConvSpec::of(conv, [h, w]);
    convolve(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        spec,
    )
}

/// `y = conv(x, weight) + bias` for `x: [B, C_in, H, W]`, `weight: [C_out, C_in/groups, kh, kw]`
/// (PyTorch's cross-correlation; see [`ConvGeometry`] for the formula).
pub fn convolve<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    spec: ConvSpec,
) -> Tensor<B, 4> {
    let geometry = ConvGeometry::new(
        x.dims(),
        weight.dims(),
        spec.stride,
        spec.dilation,
        spec.pad_begin,
        spec.pad_end,
        spec.groups,
    );
    let f32s = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    let (x, weight, bias) = match geometry {
        Ok(g) if f32s && fast_kernels() => match cast::<_, Operands<Flex>>((x, weight, bias)) {
            Ok((x, w, b)) => {
                let y = flex::forward(&g, &float(x), &float(w), b.map(float).as_ref());
                return cast(from_float::<Flex>(y)).unwrap_or_else(|_| unreachable!());
            }
            Err(operands) => match cast::<_, Operands<FlexAutodiff>>(operands) {
                Ok((x, w, b)) => {
                    let y = flex::forward_autodiff(&g, float(x), float(w), b.map(float));
                    return cast(from_float::<FlexAutodiff>(y)).unwrap_or_else(|_| unreachable!());
                }
                Err(operands) => operands,
            },
        },
        _ => (x, weight, bias),
    };
    let options = PaddedConvOptions::asymmetric(
        spec.stride,
        spec.pad_begin,
        spec.pad_end,
        spec.dilation,
        spec.groups,
    );
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// `pool.forward(x)` with stad's kernel on flex (with or without autodiff; see [`pool`]):
/// bit-identical values to burn's `MaxPool2d::forward`, the gradient sent to the same
/// (first) maximum. Ceil mode and other backends run burn's pooling.
pub fn max_pool2d<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let dims = x.dims();
    let (pad_begin, pad_end) = resolve_padding(
        &pool.padding,
        pool.kernel_size,
        pool.stride,
        [dims[2], dims[3]],
    );
    let geometry = PoolGeometry::new(
        dims,
        pool.kernel_size,
        pool.stride,
        pool.dilation,
        pad_begin,
        pad_end,
    );
    let x = match geometry {
        Some(g) if fast_kernels() && !pool.ceil_mode && x.dtype() == DType::F32 => {
            match cast::<_, Tensor<Flex, 4>>(x) {
                Ok(x) => {
                    let y = flex::max_pool(&g, &float(x));
                    return cast(from_float::<Flex>(y)).unwrap_or_else(|_| unreachable!());
                }
                Err(x) => match cast::<_, Tensor<FlexAutodiff, 4>>(x) {
                    Ok(x) => {
                        let y = flex::max_pool_autodiff(&g, float(x));
                        return cast(from_float::<FlexAutodiff>(y))
                            .unwrap_or_else(|_| unreachable!());
                    }
                    Err(x) => x,
                },
            }
        }
        _ => x,
    };
    pool.forward(x)
}

type Operands<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// A training-mode BatchNorm's `(y, μ, σ²)`.
pub type BatchNormOutput<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// The operands of a BatchNorm: `(x, γ, β)`, or `(x, scale, shift)` of an affine map.
pub type ChannelOperands<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

fn all_f32<B: Backend, const D: usize>(tensors: &[&Tensor<B, D>]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// Training-mode BatchNorm with batch statistics and a fused activation on `Autodiff<Flex>`:
/// `Ok((y, μ, σ²))` with `y = act((x − μ_c)·γ_c/√(σ²_c + ε) + β_c)`, `μ`, `σ²` (biased) over
/// `(B, H, W)` and returned as constants; see [`norm::batch_norm_train`]. On every other
/// backend `Err` hands the operands back for the generic formulation.
pub fn batch_norm_train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
    act: Activation,
) -> Result<BatchNormOutput<B>, ChannelOperands<B>> {
    if !(fast_kernels() && all_f32(&[&x]) && all_f32(&[&gamma, &beta])) {
        return Err((x, gamma, beta));
    }
    let (x, gamma, beta) = cast::<_, ChannelOperands<FlexAutodiff>>((x, gamma, beta))?;
    let (y, mean, var) =
        flex::batch_norm_train_autodiff(float(x), float(gamma), float(beta), eps, act);
    let constant = |t| {
        Tensor::<FlexAutodiff, 1>::from_inner(Tensor::<Flex, 1>::from_primitive(
            TensorPrimitive::Float(t),
        ))
    };
    let out = (from_float::<FlexAutodiff>(y), constant(mean), constant(var));
    Ok(cast(out).unwrap_or_else(|_| unreachable!()))
}

/// `y = act(x·scale_c + shift_c)` on `Flex` in one pass (BatchNorm in inference mode and its
/// activation); `Err` hands the operands back on every other backend.
pub fn channel_affine<B: Backend>(
    x: Tensor<B, 4>,
    scale: Tensor<B, 1>,
    shift: Tensor<B, 1>,
    act: Activation,
) -> Result<Tensor<B, 4>, ChannelOperands<B>> {
    if !(fast_kernels() && all_f32(&[&x]) && all_f32(&[&scale, &shift])) {
        return Err((x, scale, shift));
    }
    let (x, scale, shift) = cast::<_, ChannelOperands<Flex>>((x, scale, shift))?;
    let y = flex::channel_affine(&float(x), &float(scale), &float(shift), act);
    Ok(cast(from_float::<Flex>(y)).unwrap_or_else(|_| unreachable!()))
}

/// `y = act(a + b)` in one pass on flex, with or without autodiff (a residual connection and
/// its activation; the gradient `dy·[act passes at y]` goes to both operands); `Err` hands the
/// operands back on every other backend and for unequal shapes.
pub fn add_activation<B: Backend>(
    a: Tensor<B, 4>,
    b: Tensor<B, 4>,
    act: Activation,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>)> {
    if !(fast_kernels() && all_f32(&[&a, &b]) && a.dims() == b.dims()) {
        return Err((a, b));
    }
    let (a, b) = match cast::<_, (Tensor<Flex, 4>, Tensor<Flex, 4>)>((a, b)) {
        Ok((a, b)) => {
            let y = flex::add_activation(&float(a), &float(b), act);
            return Ok(cast(from_float::<Flex>(y)).unwrap_or_else(|_| unreachable!()));
        }
        Err(operands) => operands,
    };
    let (a, b) = cast::<_, (Tensor<FlexAutodiff, 4>, Tensor<FlexAutodiff, 4>)>((a, b))?;
    let y = flex::add_activation_autodiff(float(a), float(b), act);
    Ok(cast(from_float::<FlexAutodiff>(y)).unwrap_or_else(|_| unreachable!()))
}

/// The STFPM loss of one layer on flex (with or without autodiff):
/// `L = mean_{b,h,w} Σ_c (t̂ − ŝ)²`, `v̂ = v / max(‖v‖_c, ε)`, the teacher a constant (see
/// [`norm::stfpm_layer_loss`]); `Err` hands the maps back on every other backend.
pub fn stfpm_layer_loss<B: Backend>(
    teacher: Tensor<B, 4>,
    student: Tensor<B, 4>,
    eps: f64,
) -> Result<Tensor<B, 1>, (Tensor<B, 4>, Tensor<B, 4>)> {
    if !(fast_kernels() && all_f32(&[&teacher, &student]) && teacher.dims() == student.dims()) {
        return Err((teacher, student));
    }
    let (teacher, student) = match cast::<_, (Tensor<Flex, 4>, Tensor<Flex, 4>)>((teacher, student))
    {
        Ok((t, s)) => {
            let loss = flex::stfpm_layer_loss(&float(t), &float(s), eps);
            return Ok(
                cast(Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(
                    loss,
                )))
                .unwrap_or_else(|_| unreachable!()),
            );
        }
        Err(maps) => maps,
    };
    let (teacher, student) =
        cast::<_, (Tensor<FlexAutodiff, 4>, Tensor<FlexAutodiff, 4>)>((teacher, student))?;
    let loss = flex::stfpm_layer_loss_autodiff(float(teacher.inner()), float(student), eps);
    Ok(cast(Tensor::<FlexAutodiff, 1>::from_primitive(
        TensorPrimitive::Float(loss),
    ))
    .unwrap_or_else(|_| unreachable!()))
}

fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> B::FloatTensorPrimitive {
    t.into_primitive().tensor()
}

fn from_float<B: Backend>(t: B::FloatTensorPrimitive) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// `value` as a `U` when `T` is `U`, else back unchanged.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(same) => Ok(same.take().expect("set above")),
        None => Err(slot.expect("left in place")),
    }
}
