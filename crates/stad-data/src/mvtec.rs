//! MVTec AD layout: one category folder.
//!
//! ```text
//! <category>/
//!   train/good/*.png                      nominal training images
//!   test/good/*.png                       nominal test images
//!   test/<defect>/*.png                   anomalous test images, one folder per defect type
//!   ground_truth/<defect>/<stem>_mask.png their masks (any decodable extension)
//! ```
//!
//! Images may be in any decodable format and extension case. See the crate docs for which
//! entries are skipped and which are errors.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::masks::{MaskNameRule, MissingMaskPolicy, check_mask_sizes, pair_masks, skip_dirs};
use crate::sample::{Dataset, ImageSource, Label, MaskSource, Sample, SkipReason, SkippedFile};
use crate::scan::{file_name, list_dir};

/// The folder name of nominal images in MVTec AD.
pub const NOMINAL_DEFECT: &str = "good";

/// Options of [`open_category`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MvtecOptions {
    /// How mask names relate to image names (default: suffix `_mask`).
    pub mask_rule: MaskNameRule,
    /// What to do with an anomalous test image without a mask (default: error).
    pub missing_mask: MissingMaskPolicy,
    /// Check every mask's size against its image's when opening (reads file headers only;
    /// default `true`). Sizes are checked again when samples are loaded.
    pub check_mask_sizes: bool,
}

impl Default for MvtecOptions {
    fn default() -> Self {
        MvtecOptions {
            mask_rule: MaskNameRule::mvtec(),
            missing_mask: MissingMaskPolicy::Error,
            check_mask_sizes: true,
        }
    }
}

/// The category folders (those holding a `train` folder) of an MVTec AD root, sorted.
///
/// # Errors
/// [`DataError::MissingDir`] when `root` is not a folder, [`DataError::Io`] when it cannot
/// be listed.
pub fn list_categories(root: impl AsRef<Path>) -> Result<Vec<String>> {
    let root = root.as_ref();
    let mut skipped = Vec::new();
    let listing = list_dir(root, "MVTec AD root", &mut skipped)?;
    Ok(listing
        .dirs
        .iter()
        .filter(|d| d.join("train").is_dir())
        .map(|d| file_name(d))
        .collect())
}

/// Opens one MVTec AD category (e.g. `.../mvtec_ad/bottle`).
///
/// Training samples are `train/good` in file-name order; test samples are `test/good` then
/// each defect folder in name order. Nominal samples get an all-zero mask
/// ([`MaskSource::Zero`]); anomalous ones get their `ground_truth` mask.
///
/// # Errors
/// - [`DataError::MissingDir`]: the category, `train/good` or `test` folder is missing;
/// - [`DataError::EmptyTrainSet`]: `train/good` holds no image;
/// - [`DataError::MissingMask`]: an anomalous image has no mask (unless
///   [`MissingMaskPolicy::LabelOnly`]);
/// - [`DataError::OrphanMask`]: a mask whose image does not exist (also a whole
///   `ground_truth/<defect>` folder without `test/<defect>`);
/// - [`DataError::AmbiguousMask`], [`DataError::DuplicateStem`];
/// - [`DataError::MaskSizeMismatch`] and [`DataError::Decode`] (unreadable header) when
///   `check_mask_sizes` is on;
/// - [`DataError::UnsupportedFormat`], [`DataError::Io`].
pub fn open_category(root: impl AsRef<Path>, options: &MvtecOptions) -> Result<Dataset> {
    let root = root.as_ref();
    if !root.is_dir() {
        return Err(DataError::MissingDir {
            path: root.to_path_buf(),
            what: "category",
        });
    }
    options.mask_rule.validate()?;
    let mut skipped = Vec::new();

    // train/
    let train_root = root.join("train");
    let train_listing = list_dir(&train_root, "train", &mut skipped)?;
    for f in train_listing.images {
        skipped.push(SkippedFile {
            path: f,
            reason: SkipReason::UnusedFile,
        });
    }
    for d in train_listing.dirs {
        if file_name(&d) != NOMINAL_DEFECT {
            skipped.push(SkippedFile {
                path: d,
                reason: SkipReason::UnusedDirectory,
            });
        }
    }
    let good_dir = train_root.join(NOMINAL_DEFECT);
    let good = list_dir(&good_dir, "train/good", &mut skipped)?;
    skip_dirs(good.dirs, &mut skipped);
    if good.images.is_empty() {
        return Err(DataError::EmptyTrainSet { dir: good_dir });
    }
    let train: Vec<Sample> = good.images.into_iter().map(Sample::nominal_file).collect();

    // test/
    let test_root = root.join("test");
    let test_listing = list_dir(&test_root, "test", &mut skipped)?;
    for f in test_listing.images {
        skipped.push(SkippedFile {
            path: f,
            reason: SkipReason::UnusedFile,
        });
    }
    let gt_root = root.join("ground_truth");
    let mut defect_dirs: Vec<PathBuf> = test_listing.dirs;
    // `good` first, then the defects in name order.
    defect_dirs.sort_by_key(|d| (file_name(d) != NOMINAL_DEFECT, file_name(d)));

    let mut test = Vec::new();
    for dir in &defect_dirs {
        let defect = file_name(dir);
        let listing = list_dir(dir, "test defect", &mut skipped)?;
        skip_dirs(listing.dirs, &mut skipped);
        if defect == NOMINAL_DEFECT {
            test.extend(listing.images.into_iter().map(Sample::nominal_file));
            continue;
        }
        let (masks, mask_subdirs) = pair_masks(
            &listing.images,
            &gt_root.join(&defect),
            &options.mask_rule,
            options.missing_mask,
            &mut skipped,
        )?;
        skip_dirs(mask_subdirs, &mut skipped);
        test.extend(listing.images.into_iter().zip(masks).map(|(p, m)| Sample {
            image: ImageSource::File(p),
            label: Label::Anomalous,
            defect: defect.clone(),
            mask: m,
        }));
    }

    // ground_truth/: every folder must belong to a test defect folder.
    if gt_root.is_dir() {
        let gt = list_dir(&gt_root, "ground_truth", &mut skipped)?;
        if let Some(mask) = gt.images.into_iter().next() {
            return Err(DataError::OrphanMask { mask });
        }
        for d in gt.dirs {
            let name = file_name(&d);
            if name == NOMINAL_DEFECT {
                let l = list_dir(&d, "ground_truth/good", &mut skipped)?;
                skipped.extend(l.images.into_iter().map(|path| SkippedFile {
                    path,
                    reason: SkipReason::NominalMask,
                }));
                skip_dirs(l.dirs, &mut skipped);
            } else if !defect_dirs.iter().any(|t| file_name(t) == name) {
                let l = list_dir(&d, "ground_truth defect", &mut skipped)?;
                if let Some(mask) = l.images.into_iter().next() {
                    return Err(DataError::OrphanMask { mask });
                }
                skip_dirs(l.dirs, &mut skipped);
            }
        }
    }

    if options.check_mask_sizes {
        check_mask_sizes(&test)?;
    }
    debug_assert!(
        test.iter()
            .all(|s| s.is_anomalous() || matches!(s.mask, MaskSource::Zero))
    );

    Ok(Dataset {
        name: file_name(root),
        root: Some(root.to_path_buf()),
        train,
        test,
        skipped,
    })
}
