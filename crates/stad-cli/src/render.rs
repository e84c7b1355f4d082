//! Scoring images with a detector and writing what a person looks at: a heat-map overlay
//! (the anomaly map over the image, the predicted region outlined) and the binary mask, both
//! at the image's original size.
//!
//! Colours: the map is normalised by twice the detector's threshold, so the threshold sits in
//! the middle of the colour map and images can be compared with each other; the predicted
//! region (`map ≥ threshold`) is outlined in white, the ground truth (eval's heat-maps) in
//! magenta.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use image::{DynamicImage, RgbImage};
use rayon::prelude::*;
use stad::data::preprocess::{decode_file, mask_to_binary};
use stad::data::{ImageSource, MaskSource, Sample};
use stad::{Detector, Prediction};

use crate::error::Result;

/// Outline colour of the predicted region.
pub const PREDICTED_COLOR: [u8; 3] = [255, 255, 255];
/// Outline colour of the ground truth.
pub const GROUND_TRUTH_COLOR: [u8; 3] = [255, 0, 255];
/// Weight of the colour map in the overlay.
pub const OVERLAY_ALPHA: f32 = 0.5;
/// Images scored per step (bounds the memory held by original-size maps).
const CHUNK: usize = 16;

/// What was written for one image.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The heat-map overlay PNG.
    pub overlay: PathBuf,
    /// The binary mask PNG (0/255), when written.
    pub mask: Option<PathBuf>,
    /// Fraction of the image's pixels flagged anomalous.
    pub flagged_fraction: f64,
}

/// A file-name stem for each path, unique within `paths`: the file stem, prefixed with as
/// many parent folder names as it takes to tell the paths apart (`broken_large_000`), with
/// `_2`, `_3`… for paths given twice.
pub fn unique_stems(names: &[String]) -> Vec<String> {
    let parts: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let p = Path::new(n);
            let mut parts: Vec<String> = p
                .parent()
                .into_iter()
                .flat_map(|d| d.components())
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            parts.push(
                p.file_stem()
                    .map_or_else(|| n.clone(), |s| s.to_string_lossy().into_owned()),
            );
            parts
        })
        .collect();
    let suffix = |p: &[String], k: usize| p[p.len().saturating_sub(k)..].join("_");
    let max_depth = parts.iter().map(Vec::len).max().unwrap_or(1);
    let mut depth = vec![1usize; names.len()];
    // Deepen only the names that collide, until nothing collides or paths run out.
    for _ in 0..max_depth {
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            groups.entry(suffix(p, depth[i])).or_default().push(i);
        }
        let mut changed = false;
        for members in groups.values().filter(|m| m.len() > 1) {
            for &i in members {
                if depth[i] < parts[i].len() {
                    depth[i] += 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    parts
        .iter()
        .zip(&depth)
        .map(|(p, &d)| {
            let base: String = suffix(p, d)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { base } else { format!("{base}_{n}") }
        })
        .collect()
}

/// The overlay `score_and_render` writes for `stem`: `out_dir/<stem>_overlay.png`.
pub fn overlay_path(out_dir: &Path, stem: &str) -> PathBuf {
    out_dir.join(format!("{stem}_overlay.png"))
}

/// The mask `score_and_render` writes for `stem`: `out_dir/<stem>_mask.png`.
pub fn mask_path(out_dir: &Path, stem: &str) -> PathBuf {
    out_dir.join(format!("{stem}_mask.png"))
}

/// Every file `score_and_render(…, stems, out_dir, write_masks, …)` writes, in sample order
/// (overlay, then mask).
pub fn output_paths(out_dir: &Path, stems: &[String], write_masks: bool) -> Vec<PathBuf> {
    stems
        .iter()
        .flat_map(|stem| {
            std::iter::once(overlay_path(out_dir, stem))
                .chain(write_masks.then(|| mask_path(out_dir, stem)))
        })
        .collect()
}

/// The sample's pixels at their original size.
pub fn original_image(sample: &Sample) -> Result<RgbImage> {
    Ok(match &sample.image {
        ImageSource::File(path) => decode_file(path)?.to_rgb8(),
        ImageSource::Memory { image, .. } => (**image).clone(),
    })
}

/// The sample's ground-truth mask at `(width, height)`, when it has one with anomalous pixels.
pub fn ground_truth(sample: &Sample, (width, height): (u32, u32)) -> Result<Option<Vec<bool>>> {
    let binary = match &sample.mask {
        MaskSource::File(path) => {
            mask_to_binary(&decode_file(path)?, height as usize, width as usize)
        }
        MaskSource::Memory(mask) => mask_to_binary(
            &DynamicImage::ImageLuma8((**mask).clone()),
            height as usize,
            width as usize,
        ),
        MaskSource::Zero | MaskSource::Unavailable => return Ok(None),
    };
    Ok(binary
        .iter()
        .any(|&v| v > 0)
        .then(|| binary.iter().map(|&v| v > 0).collect()))
}

/// The overlay and the predicted mask (`map ≥ threshold`) of one image, from its anomaly
/// `map` at the image's original size.
pub fn render_prediction(
    map: &[f32],
    original: &RgbImage,
    threshold: f64,
    ground_truth: Option<&[bool]>,
) -> Result<(RgbImage, Vec<bool>)> {
    let (width, height) = original.dimensions();
    let mask: Vec<bool> = map.iter().map(|&v| f64::from(v) >= threshold).collect();
    let mut overlay = stad_viz::heatmap_overlay(original, map, threshold, OVERLAY_ALPHA)?;
    let thickness = (width.min(height) / 300).max(1);
    if let Some(gt) = ground_truth {
        stad_viz::draw_outline(&mut overlay, gt, GROUND_TRUTH_COLOR, thickness)?;
    }
    stad_viz::draw_outline(&mut overlay, &mask, PREDICTED_COLOR, thickness)?;
    Ok((overlay, mask))
}

/// Scores `samples` with `detector` in chunks and writes, for sample `i`,
/// `out_dir/<stems[i]>_overlay.png` (and `<stems[i]>_mask.png` with `write_masks`); calls
/// `each` in sample order with the prediction and what was written.
#[allow(clippy::too_many_arguments)]
pub fn score_and_render<B: Backend>(
    detector: &Detector<B>,
    samples: &[Sample],
    stems: &[String],
    out_dir: &Path,
    write_masks: bool,
    draw_ground_truth: bool,
    device: &B::Device,
    each: &mut dyn FnMut(&Prediction, &Rendered) -> Result<()>,
) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(crate::error::CliError::io(out_dir))?;
    for (chunk, chunk_stems) in samples.chunks(CHUNK).zip(stems.chunks(CHUNK)) {
        let predictions = detector.predict(chunk.to_vec(), true, device)?;
        let rendered: Vec<Rendered> = predictions
            .par_iter()
            .zip(chunk)
            .zip(chunk_stems)
            .map(|((prediction, sample), stem)| {
                let original = original_image(sample)?;
                let gt = if draw_ground_truth {
                    ground_truth(sample, original.dimensions())?
                } else {
                    None
                };
                let (map, _) = prediction
                    .original_map
                    .as_ref()
                    .expect("predict(…, true) returns original-size maps");
                let (overlay, mask) =
                    render_prediction(map, &original, detector.threshold, gt.as_deref())?;
                let overlay_path = overlay_path(out_dir, stem);
                stad_viz::save_png_atomic(&DynamicImage::ImageRgb8(overlay), &overlay_path)?;
                let mask_path = if write_masks {
                    let path = mask_path(out_dir, stem);
                    let (w, h) = original.dimensions();
                    let image = stad_viz::mask_image(&mask, w, h)?;
                    stad_viz::save_png_atomic(&DynamicImage::ImageLuma8(image), &path)?;
                    Some(path)
                } else {
                    None
                };
                Ok(Rendered {
                    overlay: overlay_path,
                    mask: mask_path,
                    flagged_fraction: mask.iter().filter(|&&m| m).count() as f64
                        / mask.len().max(1) as f64,
                })
            })
            .collect::<Result<_>>()?;
        for (prediction, r) in predictions.iter().zip(&rendered) {
            each(prediction, r)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(names: &[&str]) -> Vec<String> {
        unique_stems(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn stems_grow_only_where_names_collide() {
        assert_eq!(
            stems(&[
                "d/test/good/000.png",
                "d/test/crack/000.png",
                "d/test/crack/001.png"
            ]),
            ["good_000", "crack_000", "001"]
        );
        assert_eq!(stems(&["a.png", "b.jpg"]), ["a", "b"]);
        assert_eq!(stems(&["x/a.png", "x/a.png"]), ["x_a", "x_a_2"]);
        assert_eq!(stems(&["my image.png"]), ["my_image"]);
    }

    #[test]
    fn output_paths_are_the_files_written() {
        let s = stems(&["x/a.png", "b.png"]);
        let out = Path::new("o");
        assert_eq!(
            output_paths(out, &s, true),
            [
                "o/a_overlay.png",
                "o/a_mask.png",
                "o/b_overlay.png",
                "o/b_mask.png"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            output_paths(out, &s, false),
            ["o/a_overlay.png", "o/b_overlay.png"].map(PathBuf::from)
        );
    }
}
