//! Folder data sets: a normal folder, an abnormal folder and an optional mask folder, for
//! data that is not in MVTec AD layout.
//!
//! ```text
//! normal_dir/        *.png, and/or sub-folders of images (one level)
//! abnormal_dir/      *.png (defect type "anomalous"), and/or <defect>/*.png
//! mask_dir/          masks named by the MaskNameRule, mirroring abnormal_dir's sub-folders
//! normal_test_dir/   optional nominal test images
//! ```
//!
//! Without `normal_test_dir`, a seeded [`normal_test_fraction`](FolderOptions) of the normal
//! images becomes the nominal part of the test set (the rest is training data).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::masks::{MaskNameRule, MissingMaskPolicy, check_mask_sizes, pair_masks, skip_dirs};
use crate::sample::{Dataset, ImageSource, Label, MaskSource, Sample, SkippedFile};
use crate::scan::{file_name, list_dir};
use crate::split::holdout_split;

/// The defect type of anomalous images placed directly in `abnormal_dir`.
pub const FOLDER_DEFECT: &str = "anomalous";

/// Options of [`open_folder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderOptions {
    /// Defect-free images (training, and nominal test images unless `normal_test_dir` is set).
    pub normal_dir: PathBuf,
    /// Anomalous test images (optional: without it the test set is nominal only).
    pub abnormal_dir: Option<PathBuf>,
    /// Masks of the anomalous images. Without it every anomalous image is missing its mask,
    /// which `missing_mask` decides about.
    pub mask_dir: Option<PathBuf>,
    /// Nominal test images kept apart from training (optional).
    pub normal_test_dir: Option<PathBuf>,
    /// How mask names relate to image names (default: same stem).
    pub mask_rule: MaskNameRule,
    /// What to do with an anomalous image without a mask (default: error).
    pub missing_mask: MissingMaskPolicy,
    /// Fraction of `normal_dir` moved to the test set when `normal_test_dir` is not given
    /// (default 0.2, in `[0, 1)`).
    pub normal_test_fraction: f64,
    /// Seed of that split.
    pub seed: u64,
    /// Check mask sizes against image sizes when opening (file headers only; default true).
    pub check_mask_sizes: bool,
}

impl FolderOptions {
    /// Options with the given normal folder and defaults for everything else.
    pub fn new(normal_dir: impl Into<PathBuf>) -> Self {
        FolderOptions {
            normal_dir: normal_dir.into(),
            abnormal_dir: None,
            mask_dir: None,
            normal_test_dir: None,
            mask_rule: MaskNameRule::SameStem,
            missing_mask: MissingMaskPolicy::Error,
            normal_test_fraction: 0.2,
            seed: 0,
            check_mask_sizes: true,
        }
    }

    /// Sets the abnormal folder.
    pub fn abnormal(mut self, dir: impl Into<PathBuf>) -> Self {
        self.abnormal_dir = Some(dir.into());
        self
    }

    /// Sets the mask folder and its naming rule.
    pub fn masks(mut self, dir: impl Into<PathBuf>, rule: MaskNameRule) -> Self {
        self.mask_dir = Some(dir.into());
        self.mask_rule = rule;
        self
    }

    /// Sets the folder of nominal test images.
    pub fn normal_test(mut self, dir: impl Into<PathBuf>) -> Self {
        self.normal_test_dir = Some(dir.into());
        self
    }
}

/// Images of `dir` and of its direct sub-folders; `(sub-folder name or None, images)`.
fn images_two_levels(
    dir: &Path,
    what: &'static str,
    skipped: &mut Vec<SkippedFile>,
) -> Result<Vec<(Option<String>, Vec<PathBuf>)>> {
    let top = list_dir(dir, what, skipped)?;
    let mut groups = vec![(None, top.images)];
    for sub in top.dirs {
        let l = list_dir(&sub, what, skipped)?;
        skip_dirs(l.dirs, skipped);
        groups.push((Some(file_name(&sub)), l.images));
    }
    Ok(groups)
}

/// Opens a folder data set.
///
/// Training samples: the normal images (minus the nominal test part). Test samples: nominal
/// test images, then the anomalous ones (top-level first, then sub-folders in name order).
///
/// # Errors
/// [`DataError::MissingDir`] for a configured folder that does not exist,
/// [`DataError::EmptyTrainSet`] when no normal image is left for training, and the mask
/// errors of [`crate::mvtec::open_category`].
pub fn open_folder(options: &FolderOptions) -> Result<Dataset> {
    options.mask_rule.validate()?;
    let mut skipped = Vec::new();
    let normal: Vec<PathBuf> = images_two_levels(&options.normal_dir, "normal", &mut skipped)?
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect();
    let (train_paths, mut test_good) = match &options.normal_test_dir {
        Some(dir) => {
            let t = images_two_levels(dir, "normal test", &mut skipped)?;
            (normal, t.into_iter().flat_map(|(_, v)| v).collect())
        }
        None => holdout_split(normal, options.normal_test_fraction, options.seed)?,
    };
    if train_paths.is_empty() {
        return Err(DataError::EmptyTrainSet {
            dir: options.normal_dir.clone(),
        });
    }
    let train: Vec<Sample> = train_paths.into_iter().map(Sample::nominal_file).collect();
    let mut test: Vec<Sample> = test_good.drain(..).map(Sample::nominal_file).collect();

    if let Some(abnormal) = &options.abnormal_dir {
        let groups = images_two_levels(abnormal, "abnormal", &mut skipped)?;
        let subs: Vec<String> = groups.iter().filter_map(|(s, _)| s.clone()).collect();
        for (sub, images) in groups {
            let masks = match &options.mask_dir {
                Some(md) => {
                    let dir = match &sub {
                        Some(s) => md.join(s),
                        None => md.clone(),
                    };
                    let (masks, mask_subdirs) = pair_masks(
                        &images,
                        &dir,
                        &options.mask_rule,
                        options.missing_mask,
                        &mut skipped,
                    )?;
                    for d in mask_subdirs {
                        if sub.is_some() {
                            skip_dirs(vec![d], &mut skipped);
                        } else if !subs.contains(&file_name(&d)) {
                            // A mask folder without its abnormal folder: its masks are orphans.
                            let l = list_dir(&d, "mask", &mut skipped)?;
                            if let Some(mask) = l.images.into_iter().next() {
                                return Err(DataError::OrphanMask { mask });
                            }
                        }
                    }
                    masks
                }
                None => match (options.missing_mask, images.first()) {
                    (MissingMaskPolicy::Error, Some(img)) => {
                        return Err(DataError::MissingMask {
                            image: img.clone(),
                            mask_dir: PathBuf::new(),
                        });
                    }
                    _ => vec![MaskSource::Unavailable; images.len()],
                },
            };
            let defect = sub.unwrap_or_else(|| FOLDER_DEFECT.to_string());
            test.extend(images.into_iter().zip(masks).map(|(p, m)| Sample {
                image: ImageSource::File(p),
                label: Label::Anomalous,
                defect: defect.clone(),
                mask: m,
            }));
        }
    } else if let Some(md) = &options.mask_dir {
        // Masks without any abnormal image are orphans.
        let l = list_dir(md, "mask", &mut skipped)?;
        if let Some(mask) = l.images.into_iter().next() {
            return Err(DataError::OrphanMask { mask });
        }
    }

    if options.check_mask_sizes {
        check_mask_sizes(&test)?;
    }
    Ok(Dataset {
        name: file_name(&options.normal_dir),
        root: options.normal_dir.parent().map(Path::to_path_buf),
        train,
        test,
        skipped,
    })
}
