//! Pairing anomalous images with their mask files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::sample::{MaskSource, Sample, SkipReason, SkippedFile};
use crate::scan::{file_name, list_dir, stem};

/// How a mask file's name relates to its image's name.
///
/// The image is identified by its *stem* (file name without the extension). The mask may have
/// any decodable image extension unless the rule is a [`MaskNameRule::Template`] that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskNameRule {
    /// Same stem as the image: `img/007.jpg` ↔ `masks/007.png`.
    SameStem,
    /// The stem plus a suffix: with `"_mask"` (MVTec AD), `test/crack/007.png` ↔
    /// `ground_truth/crack/007_mask.png`.
    Suffix(String),
    /// A full file name in which `{stem}` stands for the image's stem, e.g. `"{stem}_gt.png"`
    /// or `"mask_{stem}.bmp"`. Must contain `{stem}` exactly once.
    Template(String),
}

impl Default for MaskNameRule {
    /// [`MaskNameRule::SameStem`].
    fn default() -> Self {
        MaskNameRule::SameStem
    }
}

impl MaskNameRule {
    /// MVTec AD's rule: suffix `_mask`.
    pub fn mvtec() -> Self {
        MaskNameRule::Suffix("_mask".to_string())
    }

    /// Checks the rule (a template needs exactly one `{stem}`).
    pub fn validate(&self) -> Result<()> {
        if let MaskNameRule::Template(t) = self
            && t.matches("{stem}").count() != 1
        {
            return Err(DataError::InvalidConfig(format!(
                "mask-name template {t:?} must contain {{stem}} exactly once"
            )));
        }
        Ok(())
    }

    /// The image stem a mask file belongs to, or `None` when its name does not fit the rule.
    pub fn image_stem(&self, mask_path: &Path) -> Option<String> {
        match self {
            MaskNameRule::SameStem => Some(stem(mask_path)),
            MaskNameRule::Suffix(s) => stem(mask_path).strip_suffix(s.as_str()).map(str::to_string),
            MaskNameRule::Template(t) => {
                let (prefix, suffix) = t.split_once("{stem}")?;
                let name = file_name(mask_path);
                let rest = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
                (!rest.is_empty()).then(|| rest.to_string())
            }
        }
    }
}

/// What to do with an anomalous image that has no mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingMaskPolicy {
    /// It is an error ([`DataError::MissingMask`]). The default.
    #[default]
    Error,
    /// Keep the image for image-level evaluation only: its mask is
    /// [`MaskSource::Unavailable`] (`has_mask == false` in batches).
    LabelOnly,
}

/// Finds the mask of each image in `mask_dir` by `rule`.
///
/// Returns one [`MaskSource`] per image. Mask files that belong to no image are an
/// [`DataError::OrphanMask`]; non-image files and hidden files in `mask_dir` are skipped.
/// The sub-folders of `mask_dir` are returned for the caller to judge.
pub(crate) fn pair_masks(
    images: &[PathBuf],
    mask_dir: &Path,
    rule: &MaskNameRule,
    policy: MissingMaskPolicy,
    skipped: &mut Vec<SkippedFile>,
) -> Result<(Vec<MaskSource>, Vec<PathBuf>)> {
    rule.validate()?;
    let (masks, subdirs) = if mask_dir.is_dir() {
        let listing = list_dir(mask_dir, "mask", skipped)?;
        (listing.images, listing.dirs)
    } else {
        (Vec::new(), Vec::new())
    };

    // image stem -> its masks
    let mut by_stem: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for m in masks {
        match rule.image_stem(&m) {
            Some(s) => by_stem.entry(s).or_default().push(m),
            None => return Err(DataError::OrphanMask { mask: m }),
        }
    }

    let mut seen: BTreeMap<String, &PathBuf> = BTreeMap::new();
    let mut out = Vec::with_capacity(images.len());
    for img in images {
        let s = stem(img);
        if let Some(first) = seen.insert(s.clone(), img) {
            return Err(DataError::DuplicateStem {
                first: first.clone(),
                second: img.clone(),
            });
        }
        match by_stem.remove(&s) {
            Some(mut ms) if ms.len() == 1 => {
                out.push(MaskSource::File(ms.pop().unwrap_or_default()))
            }
            Some(ms) => {
                return Err(DataError::AmbiguousMask {
                    image: img.clone(),
                    masks: ms,
                });
            }
            None => match policy {
                MissingMaskPolicy::Error => {
                    return Err(DataError::MissingMask {
                        image: img.clone(),
                        mask_dir: mask_dir.to_path_buf(),
                    });
                }
                MissingMaskPolicy::LabelOnly => out.push(MaskSource::Unavailable),
            },
        }
    }
    if let Some((_, ms)) = by_stem.into_iter().next() {
        return Err(DataError::OrphanMask {
            mask: ms.into_iter().next().unwrap_or_default(),
        });
    }
    Ok((out, subdirs))
}

/// Records folders as skipped ([`SkipReason::UnusedDirectory`]).
pub(crate) fn skip_dirs(dirs: Vec<PathBuf>, skipped: &mut Vec<SkippedFile>) {
    skipped.extend(dirs.into_iter().map(|path| SkippedFile {
        path,
        reason: SkipReason::UnusedDirectory,
    }));
}

/// Width and height of an image file, read from its header only.
pub(crate) fn image_dimensions(path: &Path) -> Result<(u32, u32)> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .with_guessed_format()
        .map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    reader.into_dimensions().map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Checks, in parallel and from file headers only, that every file mask has its image's size.
pub(crate) fn check_mask_sizes(samples: &[Sample]) -> Result<()> {
    samples
        .par_iter()
        .filter_map(|s| Some((s.path()?, s.mask_path()?)))
        .try_for_each(|(img, mask)| {
            let a = image_dimensions(img)?;
            let b = image_dimensions(mask)?;
            if a == b {
                Ok(())
            } else {
                Err(DataError::MaskSizeMismatch {
                    image: img.to_path_buf(),
                    mask: mask.to_path_buf(),
                    image_size: a,
                    mask_size: b,
                })
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_masks_to_stems() {
        let p = Path::new;
        assert_eq!(
            MaskNameRule::SameStem.image_stem(p("m/007.png")).as_deref(),
            Some("007")
        );
        let mv = MaskNameRule::mvtec();
        assert_eq!(mv.image_stem(p("m/007_mask.png")).as_deref(), Some("007"));
        assert_eq!(mv.image_stem(p("m/007_mask.PNG")).as_deref(), Some("007"));
        assert_eq!(mv.image_stem(p("m/007.png")), None);
        let t = MaskNameRule::Template("gt_{stem}.bmp".into());
        assert_eq!(t.image_stem(p("m/gt_a.b.bmp")).as_deref(), Some("a.b"));
        assert_eq!(t.image_stem(p("m/gt_a.png")), None);
        assert!(MaskNameRule::Template("x.png".into()).validate().is_err());
    }

    #[test]
    fn pairing_errors() {
        let dir = tempfile::tempdir().unwrap();
        let masks = dir.path().join("m");
        std::fs::create_dir(&masks).unwrap();
        let imgs = vec![dir.path().join("0.png"), dir.path().join("1.png")];
        std::fs::write(masks.join("0_mask.png"), b"").unwrap();
        let mut sk = Vec::new();
        let rule = MaskNameRule::mvtec();
        let r = pair_masks(&imgs, &masks, &rule, MissingMaskPolicy::Error, &mut sk);
        assert!(
            matches!(r, Err(DataError::MissingMask { ref image, .. }) if image.ends_with("1.png"))
        );
        let r = pair_masks(&imgs, &masks, &rule, MissingMaskPolicy::LabelOnly, &mut sk)
            .unwrap()
            .0;
        assert!(matches!(r[0], MaskSource::File(_)) && matches!(r[1], MaskSource::Unavailable));
        std::fs::write(masks.join("2_mask.png"), b"").unwrap();
        let r = pair_masks(&imgs, &masks, &rule, MissingMaskPolicy::LabelOnly, &mut sk);
        assert!(
            matches!(r, Err(DataError::OrphanMask { ref mask }) if mask.ends_with("2_mask.png"))
        );
        std::fs::write(masks.join("0_mask.bmp"), b"").unwrap();
        let r = pair_masks(&imgs, &masks, &rule, MissingMaskPolicy::LabelOnly, &mut sk);
        assert!(matches!(r, Err(DataError::AmbiguousMask { .. })));
    }
}
