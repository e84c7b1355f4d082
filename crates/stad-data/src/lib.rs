//! Data sets for stad: MVTec AD categories, folder data sets with masks, and a synthetic
//! inspection data set, loaded in parallel into `[B, 3, H, W]` batches.
//!
//! # Overview
//! 1. Open a data set: [`Dataset::mvtec`] (one MVTec AD category), [`Dataset::folder`]
//!    (normal / abnormal / mask folders) or [`Dataset::synthetic`] (generated in memory from a
//!    seed). Each gives train and test [`Sample`] lists: path (or in-memory image), [`Label`],
//!    defect type and mask.
//! 2. Optionally hold out part of the nominal training images for model selection and
//!    threshold calibration with [`holdout_split`] (default 20 %, seeded); the test set is
//!    never used for either.
//! 3. Batch with a [`BatchLoader`]: decode + resize + normalise in parallel (rayon), the next
//!    batch prepared on a background thread, optional in-memory cache, seeded shuffles.
//!
//! ```no_run
//! use stad_data::{BatchLoader, Dataset, LoaderConfig, MvtecOptions, PreprocessConfig, holdout_split};
//! type B = burn::backend::Flex;
//!
//! let ds = Dataset::mvtec("../shared/data/mvtec_ad/bottle", &MvtecOptions::default())?;
//! let (train, val) = holdout_split(ds.train.clone(), 0.2, 42)?;
//! let cfg = LoaderConfig { batch_size: 8, shuffle: true, seed: 42, ..LoaderConfig::default() };
//! let loader = BatchLoader::new(train, PreprocessConfig::default(), cfg)?;
//! let device = Default::default();
//! for batch in loader.batches::<B>(0, &device) {
//!     let batch = batch?; // images [8, 3, 224, 224], masks [8, 1, 224, 224]
//!     # let _ = batch;
//! }
//! # let _ = val;
//! # Ok::<(), stad_data::DataError>(())
//! ```
//!
//! # Preprocessing
//! See [`preprocess`]: every image (gray, gray+alpha, RGB, RGBA; 8/16 bit) becomes 3
//! channels in `[0, 1]`, is resized to the configured size (default 224×224, the aspect
//! ratio is not kept) with antialiased bilinear interpolation (PIL's / torchvision's filter),
//! then normalised per channel (ImageNet mean/std by default). Masks are resized with
//! nearest neighbour and binarised (> 0).
//!
//! # Which files are used, skipped, or errors
//! Scans are not recursive beyond the layout, and sort entries by name. Nothing is dropped
//! without a record: skipped entries are listed in [`Dataset::skipped`] with a
//! [`SkipReason`].
//!
//! | entry | outcome |
//! |---|---|
//! | name starting with `.` (`.DS_Store`, `._000.png`, `.git`) | skipped ([`SkipReason::Hidden`]) |
//! | extension `png`, `jpg`, `jpeg`, `jpe`, `bmp`, `tif`, `tiff`, any case | **used** |
//! | other image extension (`webp`, `gif`, `tga`, ...) | error [`DataError::UnsupportedFormat`] |
//! | any other file (`readme.txt`, `Thumbs.db`, no extension) | skipped ([`SkipReason::NotAnImage`]) |
//! | folder the layout does not use (`train/other`, `test/x/sub`) | skipped ([`SkipReason::UnusedDirectory`]) |
//! | image where the layout wants folders (`test/000.png`) | skipped ([`SkipReason::UnusedFile`]) |
//! | `ground_truth/good/*` (masks of nominal images) | skipped ([`SkipReason::NominalMask`]) |
//!
//! Errors (each names the file or folder):
//! - missing category, `train/good` or `test` folder: [`DataError::MissingDir`];
//! - no image in `train/good`: [`DataError::EmptyTrainSet`];
//! - anomalous image without a mask: [`DataError::MissingMask`], unless
//!   [`MissingMaskPolicy::LabelOnly`] is chosen (the image is kept for image-level metrics,
//!   with `has_mask == false`);
//! - mask whose image does not exist, or whose name fits no image: [`DataError::OrphanMask`];
//! - two masks for one image: [`DataError::AmbiguousMask`]; two images with one stem:
//!   [`DataError::DuplicateStem`];
//! - mask size different from its image's: [`DataError::MaskSizeMismatch`] (checked from
//!   file headers when a data set is opened, and again when a sample is loaded);
//! - unreadable file: [`DataError::Io`]; truncated or corrupt image, or a non-image with an
//!   image extension: [`DataError::Decode`] when the sample is loaded (or by
//!   [`BatchLoader::warm_up`], which loads everything once).
//!
//! No function of this crate panics on bad input.
//!
//! # Shared test data
//! Tests that use MVTec AD find it through the environment variable `STAD_SHARED` (default
//! `<workspace>/../shared`), in `$STAD_SHARED/data/mvtec_ad/<category>`.
//!
//! # Dependencies
//! Nothing beyond the workspace's: the PRNG ([`SplitMix64`]) and the resize filter are
//! hand-written, so that seeded orders and resized pixels are fully specified here.

pub mod atomic;
pub mod error;
pub mod folder;
pub mod loader;
pub mod masks;
pub mod mvtec;
pub mod preprocess;
pub mod sample;
pub mod scan;
pub mod split;
pub mod synthetic;

pub use error::{DataError, Result, panic_message};
pub use folder::{FOLDER_DEFECT, FolderOptions, open_folder};
pub use loader::{Batch, BatchLoader, Batches, HostBatch, HostBatches, LoaderConfig};
pub use masks::{MaskNameRule, MissingMaskPolicy};
pub use mvtec::{MvtecOptions, NOMINAL_DEFECT, list_categories, open_category};
pub use preprocess::{
    DEFAULT_IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD, Normalization, PreparedSample,
    PreprocessConfig, prepare_sample,
};
pub use sample::{Dataset, ImageSource, Label, MaskSource, Sample, SkipReason, SkippedFile};
pub use scan::{IMAGE_EXTENSIONS, is_image_path};
pub use split::{DEFAULT_HOLDOUT_FRACTION, SplitMix64, holdout_split, permutation, shuffle};
pub use synthetic::{
    DefectKind, SYNTHETIC_MARKER, SyntheticConfig, SyntheticKind, read_synthetic_marker,
    write_mvtec_layout,
};
