//! Heat-map overlays of anomaly maps on their images, mask outlines and mask images.
//!
//! The colour map is **jet** (as OpenCV's `COLORMAP_JET`, which most anomaly-detection papers
//! use for their figures): dark blue → blue → cyan → green → yellow → red → dark red. Maps are
//! normalised by **twice the detector's threshold**, so the threshold always sits at the
//! middle of the colour map (green) and overlays of different images are comparable.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use rayon::prelude::*;

use crate::error::{Result, VizError};
use crate::fsutil::write_atomic;

/// The jet colour map at `t`, clamped to `[0, 1]` (NaN counts as 0).
///
/// Piecewise linear: `r = 1.5 − |4t − 3|`, `g = 1.5 − |4t − 2|`, `b = 1.5 − |4t − 1|`, each
/// clamped to `[0, 1]` and scaled to `0..=255` (rounded). So `t = 0` is dark blue
/// `(0, 0, 128)`, `t = 0.5` light green `(128, 255, 128)` and `t = 1` dark red `(128, 0, 0)`;
/// the hue falls monotonically from blue (240°) to red (0°).
pub fn colormap(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let channel = |centre: f32| {
        let v = (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
        (v * 255.0).round() as u8
    };
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// Checks that a buffer holds one value per pixel of a `width × height` image.
fn check_size(what: &'static str, len: usize, width: u32, height: u32) -> Result<()> {
    let expected = width as usize * height as usize;
    if len == expected {
        Ok(())
    } else {
        Err(VizError::SizeMismatch {
            what,
            len,
            expected,
            width,
            height,
        })
    }
}

/// The divisor that maps an anomaly value to the colour-map position `t = v / scale`:
/// `2 · threshold` when the threshold is finite and positive, otherwise the largest finite
/// value of the map (`None` when that is not positive: every finite value is then `t = 0`).
fn normaliser(map: &[f32], threshold: f64) -> Option<f64> {
    if threshold.is_finite() && threshold > 0.0 {
        return Some(2.0 * threshold);
    }
    let max = map
        .par_iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(|| f32::NEG_INFINITY, f32::max);
    (max > 0.0).then_some(f64::from(max))
}

/// Blends the colour-mapped anomaly `map` over `image`:
/// `pixel = (1 − α) · image + α · colormap(v / (2 · threshold))`, rounded.
///
/// * `map` is row-major with one value per pixel of `image`.
/// * The threshold sits at the middle of the colour map, so images are comparable with each
///   other. When `threshold` is not finite or not positive, the map is normalised by its own
///   largest finite value instead (a map whose values are all `≤ 0` is drawn as `t = 0`).
/// * Non-finite map values (NaN, ±∞) are drawn as `t = 1` (dark red), so they stand out.
/// * `alpha` is clamped to `[0, 1]` (NaN counts as 0): 0 gives the image unchanged, 1 the
///   colour map alone.
///
/// # Errors
/// [`VizError::SizeMismatch`] when `map.len() != width · height`.
pub fn heatmap_overlay(
    image: &RgbImage,
    map: &[f32],
    threshold: f64,
    alpha: f32,
) -> Result<RgbImage> {
    let (width, height) = image.dimensions();
    check_size("map", map.len(), width, height)?;
    let alpha = if alpha.is_nan() {
        0.0
    } else {
        alpha.clamp(0.0, 1.0)
    };
    let scale = normaliser(map, threshold);
    let mut out = image.clone();
    out.par_chunks_exact_mut(3)
        .zip(map.par_iter())
        .for_each(|(px, &v)| {
            let t = if !v.is_finite() {
                1.0
            } else {
                scale.map_or(0.0, |s| (f64::from(v) / s) as f32)
            };
            let c = colormap(t);
            for (p, c) in px.iter_mut().zip(c) {
                let blended = (1.0 - alpha) * f32::from(*p) + alpha * f32::from(c);
                *p = blended.round().clamp(0.0, 255.0) as u8;
            }
        });
    Ok(out)
}

/// For every pixel, the number of steps along one axis to the first pixel that is outside
/// the mask or outside the image, the nearer of the axis' two directions (0 for pixels
/// outside the mask). `horizontal` scans along rows, otherwise along columns. `width > 0`.
fn axis_distance(mask: &[bool], width: usize, horizontal: bool) -> Vec<u32> {
    let mut dist = vec![0u32; mask.len()];
    if horizontal {
        dist.par_chunks_mut(width)
            .zip(mask.par_chunks(width))
            .for_each(|(d, m)| {
                let mut run = 0u32;
                for (d, &m) in d.iter_mut().zip(m) {
                    run = if m { run + 1 } else { 0 };
                    *d = run;
                }
                run = 0;
                for (d, &m) in d.iter_mut().zip(m).rev() {
                    run = if m { run + 1 } else { 0 };
                    *d = (*d).min(run);
                }
            });
    } else {
        // Whole rows at a time: top-down, then bottom-up, with one running count per column.
        let mut run = vec![0u32; width];
        for (d, m) in dist.chunks_mut(width).zip(mask.chunks(width)) {
            for ((d, &m), r) in d.iter_mut().zip(m).zip(&mut run) {
                *r = if m { *r + 1 } else { 0 };
                *d = *r;
            }
        }
        run.fill(0);
        for (d, m) in dist.chunks_mut(width).zip(mask.chunks(width)).rev() {
            for ((d, &m), r) in d.iter_mut().zip(m).zip(&mut run) {
                *r = if m { *r + 1 } else { 0 };
                *d = (*d).min(*r);
            }
        }
    }
    dist
}

/// Draws the boundary of `mask` onto `image` in `color`, `thickness` pixels wide.
///
/// `mask` is row-major with one value per pixel. A pixel is on the boundary when it is in the
/// mask and, going from it along one of the four axis directions, a pixel outside the mask or
/// outside the image is reached within `thickness` steps. So the outline lies inside the mask
/// and pixels outside it are never changed; `thickness = 0` draws nothing.
///
/// # Errors
/// [`VizError::SizeMismatch`] when `mask.len() != width · height`.
pub fn draw_outline(
    image: &mut RgbImage,
    mask: &[bool],
    color: [u8; 3],
    thickness: u32,
) -> Result<()> {
    let (width, height) = image.dimensions();
    check_size("mask", mask.len(), width, height)?;
    if thickness == 0 || mask.is_empty() {
        return Ok(());
    }
    let horizontal = axis_distance(mask, width as usize, true);
    let vertical = axis_distance(mask, width as usize, false);
    image
        .par_chunks_exact_mut(3)
        .zip(horizontal.par_iter().zip(vertical.par_iter()))
        .for_each(|(px, (&dh, &dv))| {
            let d = dh.min(dv);
            // d == 0: outside the mask.
            if d >= 1 && d <= thickness {
                px.copy_from_slice(&color);
            }
        });
    Ok(())
}

/// The mask as a grayscale image: 255 where `mask` is `true`, 0 elsewhere.
///
/// # Errors
/// [`VizError::SizeMismatch`] when `mask.len() != width · height`.
pub fn mask_image(mask: &[bool], width: u32, height: u32) -> Result<GrayImage> {
    check_size("mask", mask.len(), width, height)?;
    let pixels: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
    GrayImage::from_raw(width, height, pixels).ok_or(VizError::SizeMismatch {
        what: "mask",
        len: mask.len(),
        expected: width as usize * height as usize,
        width,
        height,
    })
}

/// Encodes `image` as PNG and writes it to `path` atomically (a temporary file in the same
/// folder, then a rename). Missing parent folders are created.
///
/// # Errors
/// [`VizError::Encode`] when the image cannot be encoded as PNG (e.g. a floating-point
/// image), [`VizError::Io`] when the file cannot be written.
pub fn save_png_atomic(image: &DynamicImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|source| VizError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Hue in degrees of an RGB colour (0 for grays).
    fn hue([r, g, b]: [u8; 3]) -> f32 {
        let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        if max == min {
            return 0.0;
        }
        let d = max - min;
        let h = if max == r {
            ((g - b) / d).rem_euclid(6.0)
        } else if max == g {
            (b - r) / d + 2.0
        } else {
            (r - g) / d + 4.0
        };
        h * 60.0
    }

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 20) as u8, (y * 30) as u8, ((x + y) * 7) as u8])
        })
    }

    #[test]
    fn colormap_endpoints_middle_and_clamping() {
        assert_eq!(colormap(0.0), [0, 0, 128]);
        assert_eq!(colormap(0.5), [128, 255, 128]);
        assert_eq!(colormap(1.0), [128, 0, 0]);
        assert_eq!(colormap(-3.0), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
        assert_eq!(colormap(f32::NAN), colormap(0.0));
    }

    #[test]
    fn colormap_hue_falls_from_blue_to_red() {
        let hues: Vec<f32> = (0..=100).map(|i| hue(colormap(i as f32 / 100.0))).collect();
        assert!((hues[0] - 240.0).abs() < 1e-3);
        assert!(hues[100].abs() < 1e-3);
        for w in hues.windows(2) {
            assert!(w[1] <= w[0] + 1e-3, "hue rises: {hues:?}");
        }
        // Dark at both ends, bright in the middle.
        let sum = |c: [u8; 3]| c.iter().map(|&v| u32::from(v)).sum::<u32>();
        assert!(sum(colormap(0.5)) > 2 * sum(colormap(0.0)));
        assert!(sum(colormap(0.5)) > 2 * sum(colormap(1.0)));
    }

    #[test]
    fn overlay_alpha_zero_is_the_image_alpha_one_the_colormap() {
        let img = gradient(4, 3);
        let map: Vec<f32> = (0..12).map(|i| i as f32 * 0.1).collect();
        assert_eq!(heatmap_overlay(&img, &map, 0.5, 0.0).unwrap(), img);
        let full = heatmap_overlay(&img, &map, 0.5, 1.0).unwrap();
        for (i, px) in full.pixels().enumerate() {
            // threshold 0.5: t = v / 1.0
            assert_eq!(px.0, colormap(map[i]), "pixel {i}");
        }
        // Alpha outside [0, 1] is clamped.
        assert_eq!(heatmap_overlay(&img, &map, 0.5, 4.0).unwrap(), full);
    }

    #[test]
    fn overlay_threshold_is_the_middle_of_the_colormap_and_blends() {
        let img = RgbImage::from_pixel(2, 1, Rgb([100, 50, 0]));
        let out = heatmap_overlay(&img, &[0.3, 0.0], 0.3, 1.0).unwrap();
        assert_eq!(out.get_pixel(0, 0).0, [128, 255, 128]);
        assert_eq!(out.get_pixel(1, 0).0, [0, 0, 128]);
        let half = heatmap_overlay(&img, &[0.3, 0.0], 0.3, 0.5).unwrap();
        // (100 + 128) / 2 = 114, (50 + 255) / 2 = 152.5 -> 153, (0 + 128) / 2 = 64
        assert_eq!(half.get_pixel(0, 0).0, [114, 153, 64]);
    }

    #[test]
    fn overlay_without_threshold_normalises_by_max_and_marks_non_finite() {
        let img = RgbImage::new(4, 1);
        let map = [0.0, 2.0, 4.0, f32::NAN];
        for threshold in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
            let out = heatmap_overlay(&img, &map, threshold, 1.0).unwrap();
            assert_eq!(out.get_pixel(0, 0).0, colormap(0.0));
            assert_eq!(out.get_pixel(1, 0).0, colormap(0.5));
            assert_eq!(out.get_pixel(2, 0).0, colormap(1.0));
            assert_eq!(out.get_pixel(3, 0).0, colormap(1.0));
        }
        let zeros = heatmap_overlay(&img, &[0.0; 4], f64::NAN, 1.0).unwrap();
        assert!(zeros.pixels().all(|p| p.0 == colormap(0.0)));
    }

    #[test]
    fn size_mismatches_are_errors() {
        let mut img = RgbImage::new(3, 2);
        let err = heatmap_overlay(&img, &[0.0; 5], 1.0, 0.5).unwrap_err();
        assert!(matches!(
            err,
            VizError::SizeMismatch {
                what: "map",
                len: 5,
                expected: 6,
                width: 3,
                height: 2
            }
        ));
        assert_eq!(err.to_string(), "map has 5 values, expected 6 (3x2)");
        let err = draw_outline(&mut img, &[true; 7], [255, 0, 0], 1).unwrap_err();
        assert!(matches!(
            err,
            VizError::SizeMismatch {
                what: "mask",
                len: 7,
                ..
            }
        ));
        let err = mask_image(&[false; 4], 3, 2).unwrap_err();
        assert!(matches!(
            err,
            VizError::SizeMismatch {
                what: "mask",
                len: 4,
                ..
            }
        ));
    }

    /// A `size × size` mask with the square `[lo, hi]²` set.
    fn square(size: usize, lo: usize, hi: usize) -> Vec<bool> {
        (0..size * size)
            .map(|i| (lo..=hi).contains(&(i % size)) && (lo..=hi).contains(&(i / size)))
            .collect()
    }

    #[test]
    fn outline_of_a_square_is_its_border_ring() {
        let base = RgbImage::from_pixel(10, 10, Rgb([7, 7, 7]));
        let mask = square(10, 3, 6);
        let red = [255, 0, 0];
        let mut img = base.clone();
        draw_outline(&mut img, &mask, red, 1).unwrap();
        for y in 0..10u32 {
            for x in 0..10u32 {
                let inside = (3..=6).contains(&x) && (3..=6).contains(&y);
                let ring = inside && (x == 3 || x == 6 || y == 3 || y == 6);
                let expected = if ring { red } else { [7, 7, 7] };
                assert_eq!(img.get_pixel(x, y).0, expected, "({x}, {y})");
            }
        }
        let painted = img.pixels().filter(|p| p.0 == red).count();
        assert_eq!(painted, 12);
        // Thickness 2 covers the whole 4x4 square, nothing outside.
        let mut img = base.clone();
        draw_outline(&mut img, &mask, red, 2).unwrap();
        assert_eq!(img.pixels().filter(|p| p.0 == red).count(), 16);
        // Thickness 0 draws nothing.
        let mut img = base.clone();
        draw_outline(&mut img, &mask, red, 0).unwrap();
        assert_eq!(img, base);
    }

    #[test]
    fn outline_at_the_image_edge_and_of_a_full_mask() {
        // A full 5x5 mask: the image border is its boundary.
        let mut img = RgbImage::new(5, 5);
        draw_outline(&mut img, &[true; 25], [0, 255, 0], 1).unwrap();
        for (x, y, p) in img.enumerate_pixels() {
            let border = x == 0 || y == 0 || x == 4 || y == 4;
            assert_eq!(p.0 == [0, 255, 0], border, "({x}, {y})");
        }
        // A one-pixel-wide horizontal line is all boundary.
        let mut img = RgbImage::new(5, 3);
        let line: Vec<bool> = (0..15).map(|i| i / 5 == 1).collect();
        draw_outline(&mut img, &line, [0, 0, 255], 1).unwrap();
        for (x, y, p) in img.enumerate_pixels() {
            assert_eq!(p.0 == [0, 0, 255], y == 1, "({x}, {y})");
        }
    }

    #[test]
    fn outline_follows_holes_and_huge_thickness_fills_the_mask() {
        // A full 7x7 mask with a one-pixel hole at (3, 3).
        let mut mask = vec![true; 49];
        mask[3 * 7 + 3] = false;
        let mut img = RgbImage::new(7, 7);
        draw_outline(&mut img, &mask, [9, 9, 9], 1).unwrap();
        for (x, y, p) in img.enumerate_pixels() {
            let border = x == 0 || y == 0 || x == 6 || y == 6;
            let next_to_hole = (x.abs_diff(3) + y.abs_diff(3)) == 1;
            assert_eq!(p.0 == [9, 9, 9], border || next_to_hole, "({x}, {y})");
        }
        let mut img = RgbImage::new(7, 7);
        draw_outline(&mut img, &mask, [9, 9, 9], u32::MAX).unwrap();
        for (i, p) in img.pixels().enumerate() {
            assert_eq!(p.0 == [9, 9, 9], mask[i], "pixel {i}");
        }
    }

    #[test]
    fn mask_image_is_0_or_255() {
        let img = mask_image(&[true, false, false, true, true, false], 3, 2).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.into_raw(), vec![255, 0, 0, 255, 255, 0]);
        assert_eq!(mask_image(&[], 0, 0).unwrap().dimensions(), (0, 0));
    }

    #[test]
    fn png_round_trips_and_float_images_fail_to_encode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overlay.png");
        let img = gradient(6, 5);
        save_png_atomic(&DynamicImage::ImageRgb8(img.clone()), &path).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8(), img);
        let float = DynamicImage::ImageRgb32F(image::Rgb32FImage::new(2, 2));
        let err = save_png_atomic(&float, &dir.path().join("f.png")).unwrap_err();
        assert!(matches!(err, VizError::Encode { .. }), "{err:?}");
        assert!(!dir.path().join("f.png").exists());
    }
}
