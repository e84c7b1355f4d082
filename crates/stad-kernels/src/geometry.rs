//! The shape of one 2-D convolution, checked once.

use thiserror::Error;

/// Why a convolution's shapes do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConvShapeError {
    /// A size, stride, dilation or group count is zero.
    #[error("convolution with a zero size, stride, dilation or group count")]
    Zero,
    /// The channels are not divisible by the groups, or the weight's input channels are not
    /// `in_channels / groups`.
    #[error(
        "input has {in_channels} channels, the weight expects {weight_in} per group × {groups} groups \
         and has {out_channels} output channels"
    )]
    Channels {
        /// Channels of the input.
        in_channels: usize,
        /// Input channels per group of the weight.
        weight_in: usize,
        /// Output channels of the weight.
        out_channels: usize,
        /// Groups.
        groups: usize,
    },
    /// The (padded) input is smaller than the (dilated) kernel.
    #[error("padded input {padded:?} is smaller than the dilated kernel {kernel:?}")]
    KernelTooLarge {
        /// Padded input size.
        padded: [usize; 2],
        /// Dilated kernel extent.
        kernel: [usize; 2],
    },
}

/// Shape of a 2-D convolution on NCHW data (PyTorch's semantics, asymmetric padding allowed).
///
/// `x: [batch, in_channels, H, W]`, `weight: [out_channels, in_channels / groups, kh, kw]`,
/// `y: [batch, out_channels, H_out, W_out]` with
/// `H_out = ⌊(H + pad_begin[0] + pad_end[0] − dilation[0]·(kh − 1) − 1) / stride[0]⌋ + 1`
/// (likewise for W), and
/// `y[b, o, i, j] = bias[o] + Σ_{c ∈ group(o), u, v} w[o, c, u, v] ·
///  x[b, c, i·s₀ + u·d₀ − p₀, j·s₁ + v·d₁ − p₁]` (zero outside the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width.
    pub in_size: [usize; 2],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (rows, columns).
    pub stride: [usize; 2],
    /// Dilation (rows, columns).
    pub dilation: [usize; 2],
    /// Zero padding before the first row and column (top, left).
    pub pad_begin: [usize; 2],
    /// Zero padding after the last row and column (bottom, right).
    pub pad_end: [usize; 2],
    /// Channel groups (`in_channels` for a depthwise convolution).
    pub groups: usize,
    /// Output height and width (derived).
    pub out_size: [usize; 2],
}

impl ConvGeometry {
    /// Checks the shapes and derives the output size.
    pub fn new(
        x_dims: [usize; 4],
        weight_dims: [usize; 4],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad_begin: [usize; 2],
        pad_end: [usize; 2],
        groups: usize,
    ) -> Result<Self, ConvShapeError> {
        let [batch, in_channels, h, w] = x_dims;
        let [out_channels, weight_in, kh, kw] = weight_dims;
        let all = [
            batch,
            in_channels,
            h,
            w,
            out_channels,
            weight_in,
            kh,
            kw,
            stride[0],
            stride[1],
            dilation[0],
            dilation[1],
            groups,
        ];
        if all.contains(&0) {
            return Err(ConvShapeError::Zero);
        }
        if in_channels % groups != 0
            || out_channels % groups != 0
            || in_channels / groups != weight_in
        {
            return Err(ConvShapeError::Channels {
                in_channels,
                weight_in,
                out_channels,
                groups,
            });
        }
        let padded = [h + pad_begin[0] + pad_end[0], w + pad_begin[1] + pad_end[1]];
        let extent = [dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1];
        if padded[0] < extent[0] || padded[1] < extent[1] {
            return Err(ConvShapeError::KernelTooLarge {
                padded,
                kernel: extent,
            });
        }
        let out_size = [
            (padded[0] - extent[0]) / stride[0] + 1,
            (padded[1] - extent[1]) / stride[1] + 1,
        ];
        Ok(Self {
            batch,
            in_channels,
            in_size: [h, w],
            out_channels,
            kernel: [kh, kw],
            stride,
            dilation,
            pad_begin,
            pad_end,
            groups,
            out_size,
        })
    }

    /// Input channels of one group.
    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels of one group.
    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// `H·W` of the input.
    pub fn in_plane(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    /// `H_out·W_out` of the output.
    pub fn out_plane(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// Rows of one group's unfolded input (`in_per_group·kh·kw`): the inner dimension of the
    /// convolution as a matrix product.
    pub fn patch_len(&self) -> usize {
        self.in_per_group() * self.kernel[0] * self.kernel[1]
    }

    /// Input shape `[batch, in_channels, H, W]`.
    pub fn x_dims(&self) -> [usize; 4] {
        [
            self.batch,
            self.in_channels,
            self.in_size[0],
            self.in_size[1],
        ]
    }

    /// Weight shape `[out_channels, in_channels / groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_per_group(),
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Output shape `[batch, out_channels, H_out, W_out]`.
    pub fn y_dims(&self) -> [usize; 4] {
        [
            self.batch,
            self.out_channels,
            self.out_size[0],
            self.out_size[1],
        ]
    }

    /// A 1×1 convolution with stride 1 and no padding: the input already is its own unfolding.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.pad_begin == [0, 0]
            && self.pad_end == [0, 0]
    }

    /// One input and one output channel per group (MobileNet's depthwise convolutions).
    pub fn is_depthwise(&self) -> bool {
        self.in_per_group() == 1 && self.out_per_group() == 1
    }

    /// The output positions `o` along axis `axis` (0 rows, 1 columns) that read an input
    /// position inside the image for kernel tap `tap`: `lo..hi` with
    /// `0 ≤ o·stride + tap·dilation − pad_begin < size` exactly for `o` in it.
    pub(crate) fn valid_outputs(&self, axis: usize, tap: usize) -> (usize, usize) {
        let n_out = self.out_size[axis];
        let size = self.in_size[axis];
        let s = self.stride[axis];
        let off = tap * self.dilation[axis];
        let pad = self.pad_begin[axis];
        let lo = if pad > off {
            (pad - off).div_ceil(s)
        } else {
            0
        }
        .min(n_out);
        let hi = if size + pad > off {
            ((size + pad - off - 1) / s + 1).min(n_out)
        } else {
            0
        };
        (lo, hi.max(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_matches_pytorch_formula() {
        // ResNet stem: 224, k7, s2, p3 → 112.
        let g = ConvGeometry::new(
            [1, 3, 224, 224],
            [64, 3, 7, 7],
            [2, 2],
            [1, 1],
            [3, 3],
            [3, 3],
            1,
        )
        .unwrap();
        assert_eq!(g.out_size, [112, 112]);
        // TF "same" stride 2 on an even size: pad 0 before, 1 after → 112 → 56.
        let g = ConvGeometry::new(
            [1, 8, 112, 112],
            [8, 1, 3, 3],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            8,
        )
        .unwrap();
        assert_eq!(g.out_size, [56, 56]);
        assert!(g.is_depthwise());
    }

    #[test]
    fn bad_shapes_are_typed_errors() {
        assert_eq!(
            ConvGeometry::new(
                [1, 3, 8, 8],
                [4, 2, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                1
            ),
            Err(ConvShapeError::Channels {
                in_channels: 3,
                weight_in: 2,
                out_channels: 4,
                groups: 1
            })
        );
        assert!(matches!(
            ConvGeometry::new(
                [1, 3, 2, 2],
                [4, 3, 5, 5],
                [1, 1],
                [1, 1],
                [0, 0],
                [0, 0],
                1
            ),
            Err(ConvShapeError::KernelTooLarge { .. })
        ));
        assert_eq!(
            ConvGeometry::new(
                [1, 3, 8, 8],
                [4, 3, 3, 3],
                [0, 1],
                [1, 1],
                [1, 1],
                [1, 1],
                1
            ),
            Err(ConvShapeError::Zero)
        );
    }

    #[test]
    fn valid_outputs_are_exactly_the_in_bounds_ones() {
        for (size, k, s, d, pb, pe) in [
            (7, 3, 1, 1, 1, 1),
            (8, 3, 2, 1, 0, 1),
            (9, 7, 2, 2, 3, 3),
            (5, 3, 3, 1, 2, 0),
        ] {
            let Ok(g) = ConvGeometry::new(
                [1, 1, size, size],
                [1, 1, k, k],
                [s, s],
                [d, d],
                [pb, pb],
                [pe, pe],
                1,
            ) else {
                continue;
            };
            for tap in 0..k {
                let (lo, hi) = g.valid_outputs(0, tap);
                for o in 0..g.out_size[0] {
                    let pos = (o * s + tap * d) as isize - pb as isize;
                    let inside = pos >= 0 && pos < size as isize;
                    assert_eq!(
                        inside,
                        (lo..hi).contains(&o),
                        "size {size} k {k} s {s} tap {tap} o {o}"
                    );
                }
            }
        }
    }
}
