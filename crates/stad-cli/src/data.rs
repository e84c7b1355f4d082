//! Opening the data named on the command line, and warning about images too small to score.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stad::data::{
    Dataset, FolderOptions, ImageSource, MaskNameRule, MvtecOptions, Sample, SyntheticConfig,
    SyntheticKind, read_synthetic_marker, write_mvtec_layout,
};

use crate::args::{DataArgs, FormatArg, SyntheticKindArg};
use crate::error::{CliError, Result};
use crate::progress::Console;

/// A data source as recorded in a run's `run.json` (so `eval` can default to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The folder.
    pub dir: PathBuf,
    /// Its layout.
    pub format: FormatArg,
    /// Folder format: anomalous images.
    pub abnormal: Option<PathBuf>,
    /// Folder format: their masks.
    pub masks: Option<PathBuf>,
    /// Synthetic format: the scene.
    pub synthetic_kind: Option<SyntheticKindArg>,
}

impl DataSpec {
    /// The spec given by `args`, or `fallback` (a run's data) when they name no folder.
    pub fn from_args(args: &DataArgs, fallback: Option<&DataSpec>) -> Result<Self> {
        let Some(dir) = args.data.clone() else {
            return fallback
                .cloned()
                .ok_or_else(|| CliError::Usage("--data DIR is required (the data folder)".into()));
        };
        let format = args.format.unwrap_or(FormatArg::Mvtec);
        if format != FormatArg::Folder && (args.abnormal.is_some() || args.masks.is_some()) {
            return Err(CliError::Usage(
                "--abnormal and --masks belong to --format folder".into(),
            ));
        }
        Ok(Self {
            dir,
            format,
            abnormal: args.abnormal.clone(),
            masks: args.masks.clone(),
            synthetic_kind: (format == FormatArg::Synthetic).then_some(args.synthetic_kind),
        })
    }

    /// Opens the data set.
    ///
    /// `synthetic`: when `dir` does not exist (or is empty) the synthetic data set (seed 0,
    /// 256×256, 60 train, 20 good and 5 per defect test images) is written there first in
    /// MVTec AD's layout; a folder written earlier is read back as it is.
    ///
    /// Warns (through `console`) about images whose shorter side is below
    /// [`MIN_IMAGE_SIDE`].
    pub fn open(&self, console: Console) -> Result<Dataset> {
        let data = self.open_quietly(console)?;
        let samples: Vec<Sample> = data.train.iter().chain(&data.test).cloned().collect();
        warn_small_images(&samples, console);
        Ok(data)
    }

    fn open_quietly(&self, console: Console) -> Result<Dataset> {
        match self.format {
            FormatArg::Mvtec => Ok(Dataset::mvtec(&self.dir, &MvtecOptions::default())?),
            FormatArg::Folder => {
                let mut options = FolderOptions::new(&self.dir);
                if let Some(a) = &self.abnormal {
                    options = options.abnormal(a);
                }
                if let Some(m) = &self.masks {
                    options = options.masks(m, MaskNameRule::SameStem);
                }
                Ok(Dataset::folder(&options)?)
            }
            FormatArg::Synthetic => {
                let kind = match self.synthetic_kind.unwrap_or_default() {
                    SyntheticKindArg::Object => SyntheticKind::Object,
                    SyntheticKindArg::Texture => SyntheticKind::Texture,
                };
                let config = SyntheticConfig {
                    kind,
                    ..SyntheticConfig::default()
                };
                open_synthetic(&self.dir, &config, console)
            }
        }
    }
}

/// Opens the synthetic data set in `dir`, writing it first when `dir` is missing or empty.
///
/// # Errors
/// [`CliError::Usage`] when `dir` holds something else (files but no synthetic marker, or a
/// synthetic set of another scene).
pub fn open_synthetic(dir: &Path, config: &SyntheticConfig, console: Console) -> Result<Dataset> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(CliError::io(dir)(e)),
    };
    if empty {
        console.info(format!(
            "writing the synthetic {} data set to {} ({} train, {} test images)",
            config.kind.name(),
            dir.display(),
            config.n_train,
            config.n_test_good + config.n_test_per_defect * config.defects.len()
        ));
        return Ok(write_mvtec_layout(config, dir)?);
    }
    match read_synthetic_marker(dir)? {
        Some(found) if found.kind == config.kind => {
            Ok(Dataset::mvtec(dir, &MvtecOptions::default())?)
        }
        Some(found) => Err(CliError::Usage(format!(
            "{} holds the synthetic {} data set, not {}: choose another --data folder",
            dir.display(),
            found.kind.name(),
            config.kind.name()
        ))),
        None => Err(CliError::Usage(format!(
            "{} is not empty and holds no synthetic data set (no {}): --format synthetic \
             writes into a new or empty folder",
            dir.display(),
            stad::data::SYNTHETIC_MARKER
        ))),
    }
}

/// Images whose shorter side is below this many pixels get a warning: it is the smallest
/// network input (`--image-size` ≥ 32), so such an image is upscaled beyond its detail.
pub const MIN_IMAGE_SIDE: u32 = 32;

/// Width and height of a sample's image, from the file's header only (nothing is decoded);
/// `None` when the header cannot be read (the decoder reports that file later).
pub fn image_dimensions(sample: &Sample) -> Option<(u32, u32)> {
    match &sample.image {
        ImageSource::File(path) => image::ImageReader::open(path)
            .ok()?
            .with_guessed_format()
            .ok()?
            .into_dimensions()
            .ok(),
        ImageSource::Memory { image, .. } => Some(image.dimensions()),
    }
}

/// The samples whose image has a side shorter than [`MIN_IMAGE_SIDE`], as `(name, (width,
/// height))` in sample order; headers are read in parallel.
pub fn small_images(samples: &[Sample]) -> Vec<(String, (u32, u32))> {
    samples
        .par_iter()
        .with_min_len(16)
        .filter_map(|s| {
            let (w, h) = image_dimensions(s)?;
            (w.min(h) < MIN_IMAGE_SIDE).then(|| (s.name(), (w, h)))
        })
        .collect()
}

/// The warning about `small` images (from [`small_images`]) out of `total`, naming the first
/// few; `None` when there are none.
pub fn small_images_warning(small: &[(String, (u32, u32))], total: usize) -> Option<String> {
    if small.is_empty() {
        return None;
    }
    let named: Vec<String> = small
        .iter()
        .map(|(name, (w, h))| format!("{name} ({w}×{h})"))
        .collect();
    Some(format!(
        "{} of {total} images are smaller than {MIN_IMAGE_SIDE} px on their shorter side: they \
         are upscaled to the network's input, so their maps hold little detail: {}",
        small.len(),
        crate::paths::list(&named)
    ))
}

/// Prints [`small_images_warning`] for `samples` through `console`, if there are any.
pub fn warn_small_images(samples: &[Sample], console: Console) {
    if let Some(warning) = small_images_warning(&small_images(samples), samples.len()) {
        console.warn(warning);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_found_from_their_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let sizes = [(1, 1), (32, 32), (31, 200), (200, 31), (64, 48)];
        let samples: Vec<Sample> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| {
                let path = t.join(format!("{i}.png"));
                image::RgbImage::new(w, h).save(&path).unwrap();
                Sample::nominal_file(path)
            })
            .collect();
        // A file that is no image is left to the decoder.
        std::fs::write(t.join("junk.png"), b"junk").unwrap();
        let mut with_junk = samples.clone();
        with_junk.push(Sample::nominal_file(t.join("junk.png")));
        let small = small_images(&with_junk);
        let name = |i: usize| samples[i].name();
        assert_eq!(
            small,
            [
                (name(0), (1, 1)),
                (name(2), (31, 200)),
                (name(3), (200, 31))
            ]
        );
        let warning = small_images_warning(&small, with_junk.len()).unwrap();
        assert!(
            warning.starts_with("3 of 6 images are smaller than 32 px on their shorter side"),
            "{warning}"
        );
        assert!(warning.contains(&format!("{} (1×1)", name(0))), "{warning}");
        assert_eq!(small_images_warning(&[], 6), None);
        // The first few are named, the rest counted.
        let many: Vec<(String, (u32, u32))> =
            (0..7).map(|i| (format!("{i}.png"), (8, 8))).collect();
        assert!(
            small_images_warning(&many, 9)
                .unwrap()
                .ends_with("4.png (8×8), and 2 more")
        );
    }
}
