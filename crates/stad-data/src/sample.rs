//! Samples (one image with its label, defect type and mask) and data sets (train and test
//! sample lists).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

/// Whether an image is defect-free or shows a defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Label {
    /// Defect-free ("good" in MVTec AD).
    Nominal,
    /// Shows a defect.
    Anomalous,
}

impl Label {
    /// `true` for [`Label::Anomalous`].
    pub fn is_anomalous(self) -> bool {
        self == Label::Anomalous
    }

    /// `0` for nominal, `1` for anomalous (the usual ground truth of image-level metrics).
    pub fn as_u8(self) -> u8 {
        u8::from(self.is_anomalous())
    }
}

/// Where a sample's pixels come from.
#[derive(Clone)]
pub enum ImageSource {
    /// An image file in any format the `image` crate decodes here (PNG, JPEG, BMP, TIFF).
    File(PathBuf),
    /// An image held in memory (the synthetic data set).
    Memory {
        /// A readable name used in batches and error messages, e.g. `synthetic/test/hole/003`.
        name: String,
        /// The pixels.
        image: Arc<RgbImage>,
    },
}

impl fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::File(p) => f.debug_tuple("File").field(p).finish(),
            ImageSource::Memory { name, image } => f
                .debug_struct("Memory")
                .field("name", name)
                .field("size", &image.dimensions())
                .finish(),
        }
    }
}

/// Where a sample's ground-truth mask comes from.
#[derive(Clone)]
pub enum MaskSource {
    /// All zero: the image is nominal, so no pixel is anomalous.
    Zero,
    /// A mask file; every pixel whose value is above 0 (in any colour channel) is anomalous.
    File(PathBuf),
    /// A mask held in memory (the synthetic data set); above 0 is anomalous.
    Memory(Arc<GrayImage>),
    /// No pixel-level ground truth: an anomalous image loaded with
    /// [`MissingMaskPolicy::LabelOnly`](crate::MissingMaskPolicy::LabelOnly). Its batch mask is
    /// all zero and `has_mask` is `false`, so pixel metrics must leave it out.
    Unavailable,
}

impl fmt::Debug for MaskSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskSource::Zero => f.write_str("Zero"),
            MaskSource::File(p) => f.debug_tuple("File").field(p).finish(),
            MaskSource::Memory(m) => f.debug_tuple("Memory").field(&m.dimensions()).finish(),
            MaskSource::Unavailable => f.write_str("Unavailable"),
        }
    }
}

/// One image with its label, defect type and mask.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The pixels.
    pub image: ImageSource,
    /// Nominal or anomalous.
    pub label: Label,
    /// The defect type: the folder name in MVTec AD (`"good"` for nominal images).
    pub defect: String,
    /// The ground-truth mask.
    pub mask: MaskSource,
}

impl Sample {
    /// A nominal image file (all-zero mask, defect type `"good"`).
    pub fn nominal_file(path: impl Into<PathBuf>) -> Self {
        Sample {
            image: ImageSource::File(path.into()),
            label: Label::Nominal,
            defect: crate::NOMINAL_DEFECT.to_string(),
            mask: MaskSource::Zero,
        }
    }

    /// The image file, or `None` for an in-memory image.
    pub fn path(&self) -> Option<&Path> {
        match &self.image {
            ImageSource::File(p) => Some(p),
            ImageSource::Memory { .. } => None,
        }
    }

    /// The mask file, when the mask is a file.
    pub fn mask_path(&self) -> Option<&Path> {
        match &self.mask {
            MaskSource::File(p) => Some(p),
            _ => None,
        }
    }

    /// A readable identifier: the file path, or the in-memory image's name.
    pub fn name(&self) -> String {
        match &self.image {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Memory { name, .. } => name.clone(),
        }
    }

    /// The identifier as a path, for error messages (in-memory images use their name).
    pub(crate) fn error_path(&self) -> PathBuf {
        match &self.image {
            ImageSource::File(p) => p.clone(),
            ImageSource::Memory { name, .. } => PathBuf::from(name),
        }
    }

    /// `true` when the sample is anomalous.
    pub fn is_anomalous(&self) -> bool {
        self.label.is_anomalous()
    }

    /// `true` unless the mask is [`MaskSource::Unavailable`] (label-only anomalous image).
    pub fn has_mask(&self) -> bool {
        !matches!(self.mask, MaskSource::Unavailable)
    }
}

/// Why a directory entry was skipped while scanning a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// The name starts with `.` (`.DS_Store`, `._000.png`, `.ipynb_checkpoints`, ...).
    Hidden,
    /// The extension is not an image format at all (`readme.txt`, `Thumbs.db`, no extension).
    NotAnImage,
    /// A folder where the layout expects only files, or a folder the layout does not use
    /// (e.g. anything in `train/` other than `train/good`).
    UnusedDirectory,
    /// An image where the layout expects only folders (e.g. a file directly in `test/`).
    UnusedFile,
    /// A mask of a nominal image (`ground_truth/good/...`): nominal masks are all zero by
    /// definition, so it is not read.
    NominalMask,
}

/// A directory entry that a scan left out, with the documented rule that left it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// The entry.
    pub path: PathBuf,
    /// The rule.
    pub reason: SkipReason,
}

/// A data set: the training samples (all nominal) and the test samples.
///
/// Made by [`Dataset::mvtec`], [`Dataset::folder`] or [`Dataset::synthetic`]. Samples are in
/// a deterministic order (file names sorted, defect types sorted).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A readable name (the category for MVTec AD).
    pub name: String,
    /// The root folder, when the data set comes from disk.
    pub root: Option<PathBuf>,
    /// Training samples (nominal).
    pub train: Vec<Sample>,
    /// Test samples (nominal and anomalous).
    pub test: Vec<Sample>,
    /// Entries the scan skipped, with the rule that skipped each (see the crate docs).
    pub skipped: Vec<SkippedFile>,
}

impl Dataset {
    /// Opens one MVTec AD category; see [`crate::mvtec::open_category`].
    pub fn mvtec(root: impl AsRef<Path>, options: &crate::MvtecOptions) -> crate::Result<Self> {
        crate::mvtec::open_category(root, options)
    }

    /// Opens a folder data set; see [`crate::folder::open_folder`].
    pub fn folder(options: &crate::FolderOptions) -> crate::Result<Self> {
        crate::folder::open_folder(options)
    }

    /// Generates the synthetic data set; see [`crate::synthetic::generate`].
    pub fn synthetic(config: &crate::SyntheticConfig) -> Self {
        crate::synthetic::generate(config)
    }

    /// The training samples.
    pub fn train(&self) -> &[Sample] {
        &self.train
    }

    /// The test samples.
    pub fn test(&self) -> &[Sample] {
        &self.test
    }

    /// The entries the scan skipped.
    pub fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }

    /// The defect types of the test set, sorted, without the nominal `"good"`.
    pub fn defect_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .test
            .iter()
            .filter(|s| s.is_anomalous())
            .map(|s| s.defect.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Number of test samples of one defect type (`"good"` counts the nominal ones).
    pub fn count_defect(&self, defect: &str) -> usize {
        self.test.iter().filter(|s| s.defect == defect).count()
    }
}
