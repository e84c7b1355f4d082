//! Decoding, resizing and normalising images; resizing and binarising masks.
//!
//! # Colour
//! Every image becomes 3 channels in `[0, 1]` before normalisation:
//! - grayscale (8 or 16 bit): the gray value is copied to R, G and B;
//! - grayscale + alpha, RGBA: the alpha channel is dropped (not composited), as PIL's
//!   `convert("RGB")` does;
//! - 16-bit images are divided by 65535, 8-bit by 255, float images are taken as they are.
//!
//! # Resize filter
//! Images are resized to exactly `height × width` (the aspect ratio is not kept) with
//! **bilinear interpolation with antialiasing**, the filter PIL's `Image.resize(...,
//! BILINEAR)` uses (and so torchvision's `Resize` on PIL images): a triangle filter whose
//! support is widened by the scale factor when shrinking, pixel centres at `i + 0.5`, weights
//! normalised at the borders. The arithmetic is `f32` throughout; PIL rounds 8-bit images
//! to integers after each of its two passes, so results differ from PIL on 8-bit input by at
//! most about one grey level (≈ 0.004 before normalisation).
//!
//! Masks are resized with **nearest neighbour** (source pixel `floor((i + 0.5) · in / out)`,
//! PIL's `NEAREST`) and binarised: a pixel is anomalous (1) when any colour channel is above
//! 0, else 0.
//!
//! # Normalisation
//! `(x − mean[c]) / std[c]` per channel, with ImageNet's statistics by default
//! ([`IMAGENET_MEAN`], [`IMAGENET_STD`]); use [`Normalization::IDENTITY`] to keep `[0, 1]`.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::sample::{ImageSource, MaskSource, Sample};

/// ImageNet per-channel mean (RGB), used by torchvision's pretrained backbones.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The default side of the square network input.
pub const DEFAULT_IMAGE_SIZE: usize = 224;

/// Per-channel normalisation `(x − mean) / std` of `[0, 1]` RGB values: the input statistics
/// a backbone's weights were trained with (the one type of the workspace; stad-backbones
/// names its teachers' with it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Per-channel mean (R, G, B).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (R, G, B); must be positive.
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics (the default).
    pub const IMAGENET: Normalization = Normalization {
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    };
    /// TensorFlow / TFLite MobileNet input scaling `(x·255 − 128) / 128`, i.e.
    /// mean = std = 128/255 (the embedded MobileNetV2 teacher's).
    pub const TF_MOBILENET: Normalization = Normalization {
        mean: [128.0 / 255.0; 3],
        std: [128.0 / 255.0; 3],
    };
    /// No normalisation: values stay in `[0, 1]`.
    pub const IDENTITY: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Normalisation with the given statistics.
    pub const fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        Normalization { mean, std }
    }

    /// Normalises one value of `channel`: `(value − mean) / std`.
    pub fn apply(&self, channel: usize, value: f32) -> f32 {
        (value - self.mean[channel]) / self.std[channel]
    }

    /// Maps normalised values back to `[0, 1]` (for visualisation).
    pub fn denormalize(&self, channel: usize, value: f32) -> f32 {
        value * self.std[channel] + self.mean[channel]
    }
}

impl Default for Normalization {
    /// [`Normalization::IMAGENET`].
    fn default() -> Self {
        Normalization::IMAGENET
    }
}

/// How images and masks are turned into network input (a burn `Config`).
///
/// ```
/// use stad_data::{Normalization, PreprocessConfig};
/// let config = PreprocessConfig::square(256).with_normalization(Normalization::TF_MOBILENET);
/// assert_eq!((config.height, config.width), (256, 256));
/// assert_eq!(PreprocessConfig::new(), PreprocessConfig::square(224));
/// ```
#[derive(burn::config::Config, Debug, Copy, PartialEq)]
pub struct PreprocessConfig {
    /// Output height in pixels (default 224).
    #[config(default = "DEFAULT_IMAGE_SIZE")]
    pub height: usize,
    /// Output width in pixels (default 224).
    #[config(default = "DEFAULT_IMAGE_SIZE")]
    pub width: usize,
    /// Per-channel normalisation (default ImageNet).
    #[config(default = "Normalization::IMAGENET")]
    pub normalization: Normalization,
}

impl Default for PreprocessConfig {
    /// 224 × 224, ImageNet normalisation ([`PreprocessConfig::new`]).
    fn default() -> Self {
        Self::new()
    }
}

impl PreprocessConfig {
    /// A square `size × size` output with ImageNet normalisation (224 and 256 are common).
    pub fn square(size: usize) -> Self {
        Self::new().with_height(size).with_width(size)
    }

    /// Checks that the size is positive and the standard deviations are positive and finite.
    pub fn validate(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 {
            return Err(DataError::InvalidConfig(format!(
                "image size must be positive, got {}x{}",
                self.height, self.width
            )));
        }
        let n = &self.normalization;
        if n.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return Err(DataError::InvalidConfig(format!(
                "normalisation needs finite means and positive standard deviations, got {n:?}"
            )));
        }
        Ok(())
    }

    /// Number of floats in one preprocessed image (`3 × height × width`).
    pub fn image_len(&self) -> usize {
        3 * self.height * self.width
    }
}

/// One preprocessed sample, in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSample {
    /// Normalised image, `[3, height, width]`, channel-major (CHW).
    pub image: Vec<f32>,
    /// Binary mask, `[height, width]`, values 0 or 1.
    pub mask: Vec<u8>,
    /// `false` for a label-only anomalous image (its `mask` is all zero and means nothing).
    pub has_mask: bool,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// The original image's `(width, height)`.
    pub original_size: (u32, u32),
}

/// Reads and decodes an image file. The format is recognised from the content (the magic
/// bytes) first and from the extension second, so a JPEG named `.png` still decodes.
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read, [`DataError::Decode`] when it is not a
/// valid image (truncated, corrupt, a text file with an image extension),
/// [`DataError::DecoderPanic`] if the decoder panics.
pub fn decode_file(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    decode_bytes(&bytes, path)
}

/// Decodes an image held in memory; `path` names it in errors and supplies the extension
/// when the content's format is not recognised.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let run = || -> Result<DynamicImage> {
        let mut reader = image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DataError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        if reader.format().is_none() {
            reader.set_format(image::ImageFormat::from_path(path).map_err(|e| {
                DataError::Decode {
                    path: path.to_path_buf(),
                    source: e,
                }
            })?);
        }
        reader.decode().map_err(|e| DataError::Decode {
            path: path.to_path_buf(),
            source: e,
        })
    };
    // Decoders are not supposed to panic, but a panic here must not take a training run down.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(payload) => {
            let message = crate::error::panic_message(payload.as_ref())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(DataError::DecoderPanic {
                path: path.to_path_buf(),
                message,
            })
        }
    }
}

/// Filter taps of a 1-D antialiased bilinear resize (PIL's `precompute_coeffs`).
#[derive(Debug, Clone)]
struct Taps {
    /// First source index of each output index.
    start: Vec<usize>,
    /// Number of taps of each output index.
    len: Vec<usize>,
    /// Weights, `stride` per output index.
    weights: Vec<f32>,
    stride: usize,
}

impl Taps {
    fn bilinear(in_size: usize, out_size: usize) -> Taps {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the triangle filter's support is 1
        let stride = (support.ceil() as usize) * 2 + 1;
        let mut t = Taps {
            start: Vec::with_capacity(out_size),
            len: Vec::with_capacity(out_size),
            weights: vec![0.0; stride * out_size],
            stride,
        };
        let ss = 1.0 / filterscale;
        for i in 0..out_size {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5).floor().max(0.0)) as usize;
            let xmax = ((center + support + 0.5).floor() as usize).min(in_size);
            let n = xmax.saturating_sub(xmin).min(stride);
            let w = &mut t.weights[i * stride..i * stride + n];
            let mut total = 0.0;
            for (k, wk) in w.iter_mut().enumerate() {
                let x = ((xmin + k) as f64 - center + 0.5) * ss;
                let v = (1.0 - x.abs()).max(0.0);
                *wk = v as f32;
                total += v;
            }
            if total != 0.0 {
                for wk in w.iter_mut() {
                    *wk = (f64::from(*wk) / total) as f32;
                }
            }
            t.start.push(xmin);
            t.len.push(n);
        }
        t
    }

    fn taps(&self, i: usize) -> (usize, &[f32]) {
        let w = &self.weights[i * self.stride..i * self.stride + self.len[i]];
        (self.start[i], w)
    }
}

/// Resizes interleaved pixels (`CN` values per pixel, the first `UC` used) to planar
/// `[UC, out_h, out_w]` floats. `conv` maps a stored value to `[0, 1]`.
fn resize_interleaved<T: Copy, const CN: usize, const UC: usize>(
    src: &[T],
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    conv: impl Fn(T) -> f32,
) -> Vec<f32> {
    const { assert!(UC <= CN && UC > 0) };
    let use_ch = UC;
    let hx = Taps::bilinear(in_w, out_w);
    let vy = Taps::bilinear(in_h, out_h);
    // Horizontal pass: [in_h][out_w][UC].
    let mut tmp = vec![0.0f32; in_h * out_w * UC];
    if out_w > 0 && in_w > 0 {
        for (row, out_row) in src
            .chunks_exact(in_w * CN)
            .zip(tmp.chunks_exact_mut(out_w * UC))
        {
            for (x, o) in out_row.chunks_exact_mut(UC).enumerate() {
                let (start, w) = hx.taps(x);
                let px = &row[start * CN..(start + w.len()) * CN];
                let mut acc = [0.0f32; UC];
                for (p, &wk) in px.chunks_exact(CN).zip(w) {
                    for (a, &v) in acc.iter_mut().zip(p) {
                        *a += conv(v) * wk;
                    }
                }
                o.copy_from_slice(&acc);
            }
        }
    }
    // Vertical pass: planar [use_ch][out_h][out_w].
    let plane = out_h * out_w;
    let mut out = vec![0.0f32; use_ch * plane];
    let mut acc = vec![0.0f32; out_w * use_ch];
    for y in 0..out_h {
        let (start, w) = vy.taps(y);
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, &wk) in w.iter().enumerate() {
            let row = &tmp[(start + k) * out_w * use_ch..(start + k + 1) * out_w * use_ch];
            for (a, &r) in acc.iter_mut().zip(row) {
                *a += r * wk;
            }
        }
        for x in 0..out_w {
            for c in 0..use_ch {
                out[c * plane + y * out_w + x] = acc[x * use_ch + c];
            }
        }
    }
    out
}

/// Resizes one `[in_h, in_w]` float plane with the antialiased bilinear filter (exposed for
/// tests and for resizing score maps the same way).
///
/// # Panics
/// When `src.len() != in_h * in_w`.
pub fn resize_plane(src: &[f32], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    assert_eq!(src.len(), in_h * in_w, "plane size");
    resize_interleaved::<_, 1, 1>(src, in_w, in_h, out_w, out_h, |v| v)
}

/// Resizes `planes` (1 or 3 planar channels) into a `[3, H, W]` normalised image.
fn finish_rgb(mut planes: Vec<f32>, use_ch: usize, cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = cfg.height * cfg.width;
    if use_ch == 1 {
        planes.resize(3 * plane, 0.0);
        let (g, rest) = planes.split_at_mut(plane);
        rest[..plane].copy_from_slice(g);
        rest[plane..].copy_from_slice(g);
    }
    let n = &cfg.normalization;
    for c in 0..3 {
        let (m, inv) = (n.mean[c], 1.0 / n.std[c]);
        for v in &mut planes[c * plane..(c + 1) * plane] {
            *v = (*v - m) * inv;
        }
    }
    planes
}

/// Resizes and normalises an RGB image into `[3, height, width]` floats.
pub fn rgb_to_chw(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let p = resize_interleaved::<_, 3, 3>(image.as_raw(), w, h, cfg.width, cfg.height, |v: u8| {
        f32::from(v) * (1.0 / 255.0)
    });
    finish_rgb(p, 3, cfg)
}

/// Converts any decoded image (gray, gray+alpha, RGB, RGBA; 8 bit, 16 bit or float) to 3
/// channels, resizes and normalises it into `[3, height, width]` floats (see the module docs).
pub fn image_to_chw(image: &DynamicImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (ow, oh) = (cfg.width, cfg.height);
    let u8c = |v: u8| f32::from(v) * (1.0 / 255.0);
    let u16c = |v: u16| f32::from(v) * (1.0 / 65535.0);
    let f32c = |v: f32| v;
    let (planes, use_ch) = match image {
        DynamicImage::ImageLuma8(i) => (
            resize_interleaved::<_, 1, 1>(i.as_raw(), w, h, ow, oh, u8c),
            1,
        ),
        DynamicImage::ImageLumaA8(i) => (
            resize_interleaved::<_, 2, 1>(i.as_raw(), w, h, ow, oh, u8c),
            1,
        ),
        DynamicImage::ImageRgb8(i) => (
            resize_interleaved::<_, 3, 3>(i.as_raw(), w, h, ow, oh, u8c),
            3,
        ),
        DynamicImage::ImageRgba8(i) => (
            resize_interleaved::<_, 4, 3>(i.as_raw(), w, h, ow, oh, u8c),
            3,
        ),
        DynamicImage::ImageLuma16(i) => (
            resize_interleaved::<_, 1, 1>(i.as_raw(), w, h, ow, oh, u16c),
            1,
        ),
        DynamicImage::ImageLumaA16(i) => (
            resize_interleaved::<_, 2, 1>(i.as_raw(), w, h, ow, oh, u16c),
            1,
        ),
        DynamicImage::ImageRgb16(i) => (
            resize_interleaved::<_, 3, 3>(i.as_raw(), w, h, ow, oh, u16c),
            3,
        ),
        DynamicImage::ImageRgba16(i) => (
            resize_interleaved::<_, 4, 3>(i.as_raw(), w, h, ow, oh, u16c),
            3,
        ),
        DynamicImage::ImageRgb32F(i) => (
            resize_interleaved::<_, 3, 3>(i.as_raw(), w, h, ow, oh, f32c),
            3,
        ),
        DynamicImage::ImageRgba32F(i) => (
            resize_interleaved::<_, 4, 3>(i.as_raw(), w, h, ow, oh, f32c),
            3,
        ),
        other => {
            let i = other.to_rgb32f();
            (
                resize_interleaved::<_, 3, 3>(i.as_raw(), w, h, ow, oh, f32c),
                3,
            )
        }
    };
    finish_rgb(planes, use_ch, cfg)
}

/// Nearest-neighbour resize of a "pixel is anomalous" predicate into a `[out_h, out_w]` 0/1
/// mask.
fn nearest_binary(
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    on: impl Fn(usize, usize) -> bool,
) -> Vec<u8> {
    let xs: Vec<usize> = (0..out_w)
        .map(|x| (((x as f64 + 0.5) * in_w as f64 / out_w as f64) as usize).min(in_w - 1))
        .collect();
    let mut out = Vec::with_capacity(out_w * out_h);
    for y in 0..out_h {
        let sy = (((y as f64 + 0.5) * in_h as f64 / out_h as f64) as usize).min(in_h - 1);
        out.extend(xs.iter().map(|&sx| u8::from(on(sx, sy))));
    }
    out
}

/// Resizes a decoded mask (nearest neighbour) and binarises it: 1 where any colour channel
/// is above 0 (alpha ignored), else 0. Returns `[height, width]` values.
pub fn mask_to_binary(mask: &DynamicImage, height: usize, width: usize) -> Vec<u8> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    if w == 0 || h == 0 {
        return vec![0; height * width];
    }
    // Read the decoded buffer as it is: converting it to RGB floats first would allocate 12
    // bytes per source pixel (1 GB for a 9000² mask) only to compare values with 0.
    match mask {
        DynamicImage::ImageLuma8(m) => gray_mask_to_binary(m, height, width),
        DynamicImage::ImageLumaA8(m) => binary_of::<_, 2, 1>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgb8(m) => binary_of::<_, 3, 3>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgba8(m) => binary_of::<_, 4, 3>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageLuma16(m) => binary_of::<_, 1, 1>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageLumaA16(m) => binary_of::<_, 2, 1>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgb16(m) => binary_of::<_, 3, 3>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgba16(m) => binary_of::<_, 4, 3>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgb32F(m) => binary_of::<_, 3, 3>(m.as_raw(), w, h, height, width),
        DynamicImage::ImageRgba32F(m) => binary_of::<_, 4, 3>(m.as_raw(), w, h, height, width),
        other => {
            let m = other.to_rgb32f();
            binary_of::<_, 3, 3>(m.as_raw(), w, h, height, width)
        }
    }
}

/// [`nearest_binary`] of interleaved pixels (`CN` values per pixel): anomalous when one of the
/// first `UC` (the colour channels) is above 0. `raw` holds `w × h` pixels.
fn binary_of<T: image::Primitive, const CN: usize, const UC: usize>(
    raw: &[T],
    w: usize,
    h: usize,
    height: usize,
    width: usize,
) -> Vec<u8> {
    const { assert!(UC <= CN && UC > 0) };
    nearest_binary(w, h, width, height, |x, y| {
        let p = (y * w + x) * CN;
        raw[p..p + UC].iter().any(|&v| v > T::DEFAULT_MIN_VALUE)
    })
}

/// [`mask_to_binary`] for an 8-bit gray mask.
pub fn gray_mask_to_binary(mask: &GrayImage, height: usize, width: usize) -> Vec<u8> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    if w == 0 || h == 0 {
        return vec![0; height * width];
    }
    let raw = mask.as_raw();
    nearest_binary(w, h, width, height, |x, y| raw[y * w + x] > 0)
}

/// Loads, converts, resizes and normalises one sample, with its mask.
///
/// # Errors
/// Those of [`decode_file`] for the image and the mask, and
/// [`DataError::MaskSizeMismatch`] when the mask's size differs from the image's.
pub fn prepare_sample(sample: &Sample, cfg: &PreprocessConfig) -> Result<PreparedSample> {
    let (image, original_size) = match &sample.image {
        ImageSource::File(path) => {
            let img = decode_file(path)?;
            let size = (img.width(), img.height());
            (image_to_chw(&img, cfg), size)
        }
        ImageSource::Memory { image, .. } => (rgb_to_chw(image, cfg), image.dimensions()),
    };
    let check = |mask_size: (u32, u32), mask: &Path| {
        if mask_size == original_size {
            Ok(())
        } else {
            Err(DataError::MaskSizeMismatch {
                image: sample.error_path(),
                mask: mask.to_path_buf(),
                image_size: original_size,
                mask_size,
            })
        }
    };
    let plane = cfg.height * cfg.width;
    let (mask, has_mask) = match &sample.mask {
        MaskSource::Zero => (vec![0; plane], true),
        MaskSource::Unavailable => (vec![0; plane], false),
        MaskSource::File(path) => {
            let m = decode_file(path)?;
            check((m.width(), m.height()), path)?;
            (mask_to_binary(&m, cfg.height, cfg.width), true)
        }
        MaskSource::Memory(m) => {
            check(
                m.dimensions(),
                Path::new(&format!("{} (mask)", sample.name())),
            )?;
            (gray_mask_to_binary(m, cfg.height, cfg.width), true)
        }
    };
    Ok(PreparedSample {
        image,
        mask,
        has_mask,
        height: cfg.height,
        width: cfg.width,
        original_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};

    fn cfg(h: usize, w: usize) -> PreprocessConfig {
        PreprocessConfig {
            height: h,
            width: w,
            normalization: Normalization::IDENTITY,
        }
    }

    #[test]
    fn tf_scaling_maps_0_and_1_to_about_minus_1_and_1() {
        let tf = Normalization::TF_MOBILENET;
        assert!((tf.apply(0, 0.0) + 1.0).abs() < 1e-6);
        assert!((tf.apply(0, 1.0) - 127.0 / 128.0).abs() < 1e-6);
    }

    #[test]
    fn imagenet_mean_maps_to_zero_and_back() {
        let n = Normalization::IMAGENET;
        for c in 0..3 {
            assert_eq!(n.apply(c, n.mean[c]), 0.0);
            assert!((n.denormalize(c, n.apply(c, 0.7)) - 0.7).abs() < 1e-6);
        }
    }

    #[test]
    fn taps_are_normalised_and_widen_when_shrinking() {
        for (i, o) in [(900, 224), (224, 900), (7, 3), (5, 5), (1, 4), (4, 1)] {
            let t = Taps::bilinear(i, o);
            for k in 0..o {
                let (s, w) = t.taps(k);
                assert!(s + w.len() <= i);
                let sum: f32 = w.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{i}->{o} at {k}: {sum}");
            }
        }
        // 900 -> 224: scale ≈ 4.02, so about 8 taps.
        let t = Taps::bilinear(900, 224);
        assert!(t.taps(100).1.len() >= 8);
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<f32> = (0..35).map(|v| v as f32).collect();
        assert_eq!(resize_plane(&src, 5, 7, 5, 7), src);
    }

    #[test]
    fn matches_pil_float_resize() {
        // PIL 'F' mode: Image.fromarray(np.arange(35, dtype=float32).reshape(5, 7) ** 1.5)
        //               .resize((3, 2), Image.BILINEAR)
        let src: Vec<f32> = (0..35).map(|v| (v as f32).powf(1.5)).collect();
        let out = resize_plane(&src, 5, 7, 2, 3);
        let expected = [
            27.043278, 35.999023, 46.19828, 105.18897, 120.45925, 136.39262,
        ];
        for (a, b) in out.iter().zip(expected) {
            assert!(
                (a - b).abs() < 1e-4 * b.abs().max(1.0),
                "{out:?} vs {expected:?}"
            );
        }
        // Upscaling, `.resize((11, 9), Image.BILINEAR)`, first row and one value of the second.
        let up = resize_plane(&src, 5, 7, 9, 11);
        let expected = [
            0.0, 0.45454547, 1.1662207, 2.329765, 3.689418, 5.196_152, 6.980419, 8.867366,
            10.891219, 13.098485, 14.696939, 6.17342,
        ];
        for (a, b) in up.iter().zip(expected) {
            assert!(
                (a - b).abs() < 1e-4 * b.abs().max(1.0),
                "{up:?} vs {expected:?}"
            );
        }
    }

    #[test]
    fn constant_image_normalises_exactly() {
        let img = RgbImage::from_pixel(37, 19, Rgb([255, 128, 0]));
        let c = PreprocessConfig::square(8);
        let out = rgb_to_chw(&img, &c);
        for ch in 0..3 {
            let v = [255.0f32, 128.0, 0.0][ch] / 255.0;
            let e = (v - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch];
            for x in &out[ch * 64..(ch + 1) * 64] {
                assert!((x - e).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn every_colour_type_becomes_three_channels() {
        let c = cfg(6, 4);
        let images = [
            DynamicImage::ImageLuma8(ImageBuffer::from_pixel(9, 5, Luma([51]))),
            DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(9, 5, LumaA([51, 7]))),
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(9, 5, Rgba([51, 51, 51, 0]))),
            DynamicImage::ImageLuma16(ImageBuffer::from_pixel(9, 5, Luma([51 * 257]))),
            DynamicImage::ImageRgb16(ImageBuffer::from_pixel(9, 5, Rgb([51 * 257; 3]))),
        ];
        for img in &images {
            let out = image_to_chw(img, &c);
            assert_eq!(out.len(), 3 * 6 * 4);
            assert!(out.iter().all(|v| (v - 0.2).abs() < 1e-5), "{img:?}");
        }
    }

    #[test]
    fn masks_are_nearest_and_binary() {
        let mut m = GrayImage::new(8, 8);
        for y in 4..8 {
            for x in 0..4 {
                m.put_pixel(x, y, Luma([3]));
            }
        }
        let b = gray_mask_to_binary(&m, 4, 4);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(3, 3, Rgb([0, 0, 1])));
        assert!(mask_to_binary(&rgb, 5, 5).iter().all(|&v| v == 1));
    }

    #[test]
    fn masks_of_every_colour_type_binarise_on_colour_only() {
        // Left column on in colour, right column on in alpha only (ignored), middle off.
        let on = |x: u32| x == 0;
        let alpha = |x: u32| x == 2;
        let masks = [
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(3, 2, |x, _| {
                LumaA([u8::from(on(x)), 255 * u8::from(alpha(x))])
            })),
            DynamicImage::ImageRgba8(ImageBuffer::from_fn(3, 2, |x, _| {
                Rgba([0, u8::from(on(x)), 0, 255 * u8::from(alpha(x))])
            })),
            DynamicImage::ImageLuma16(ImageBuffer::from_fn(3, 2, |x, _| Luma([u16::from(on(x))]))),
            DynamicImage::ImageRgb16(ImageBuffer::from_fn(3, 2, |x, _| {
                Rgb([0, 0, u16::from(on(x))])
            })),
            DynamicImage::ImageRgba32F(ImageBuffer::from_fn(3, 2, |x, _| {
                Rgba([
                    if on(x) { 1e-6 } else { -1.0 },
                    0.0,
                    f32::NAN,
                    f32::from(u8::from(alpha(x))),
                ])
            })),
        ];
        for m in &masks {
            assert_eq!(mask_to_binary(m, 2, 3), [1, 0, 0, 1, 0, 0], "{m:?}");
        }
    }

    #[test]
    fn bad_bytes_are_decode_errors() {
        let p = Path::new("x/fake.png");
        assert!(matches!(
            decode_bytes(b"hello", p),
            Err(DataError::Decode { .. })
        ));
        assert!(matches!(
            decode_bytes(b"", Path::new("x/noext")),
            Err(DataError::Decode { .. })
        ));
    }
}
