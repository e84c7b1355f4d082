//! The typed errors of `stad-data`.
//!
//! Every error that concerns a file names that file, so a user can find and fix it. Nothing in
//! this crate panics on bad input: unreadable, truncated or mislabelled files all come back as
//! one of these variants.

use std::path::PathBuf;

/// A `Result` whose error is [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, decoding and batching images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A folder the layout requires does not exist (or is not a folder).
    #[error("missing {what} folder: {path}")]
    MissingDir {
        /// The folder that was expected.
        path: PathBuf,
        /// What the folder is for, e.g. `"category"` or `"train/good"`.
        what: &'static str,
    },

    /// The training folder holds no decodable image (after the skip rules).
    #[error("no training images in {dir} (only skipped or no files)")]
    EmptyTrainSet {
        /// The training folder.
        dir: PathBuf,
    },

    /// A file or folder could not be read (permissions, vanished file, broken link, ...).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An image (or mask) file could not be decoded: truncated, corrupt, or not an image at
    /// all despite its extension.
    #[error("cannot decode image {path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },

    /// The decoder panicked on a file (a decoder bug, caught so that loading never panics).
    #[error("image decoder panicked on {path}: {message}")]
    DecoderPanic {
        /// The file.
        path: PathBuf,
        /// The panic message.
        message: String,
    },

    /// A file has the extension of an image format this build cannot decode (e.g. `.webp`,
    /// `.gif`). Only PNG, JPEG, BMP and TIFF are supported.
    #[error("unsupported image format (PNG, JPEG, BMP and TIFF are supported): {path}")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },

    /// A mask's width and height differ from its image's.
    #[error(
        "mask {mask} is {}x{} but its image {image} is {}x{}",
        mask_size.0, mask_size.1, image_size.0, image_size.1
    )]
    MaskSizeMismatch {
        /// The image.
        image: PathBuf,
        /// The mask.
        mask: PathBuf,
        /// The image's `(width, height)`.
        image_size: (u32, u32),
        /// The mask's `(width, height)`.
        mask_size: (u32, u32),
    },

    /// An anomalous image has no mask (and the options ask for masks,
    /// see [`MissingMaskPolicy`](crate::MissingMaskPolicy)).
    #[error("anomalous image {image} has no mask (expected in {mask_dir})")]
    MissingMask {
        /// The image.
        image: PathBuf,
        /// The folder where the mask was looked for.
        mask_dir: PathBuf,
    },

    /// A mask belongs to no image: its image does not exist, or its name does not fit the
    /// mask-name rule.
    #[error("mask {mask} matches no image")]
    OrphanMask {
        /// The mask.
        mask: PathBuf,
    },

    /// Several masks fit the same image (e.g. `000_mask.png` and `000_mask.bmp`).
    #[error("image {image} has several masks: {masks:?}")]
    AmbiguousMask {
        /// The image.
        image: PathBuf,
        /// The masks that fit it.
        masks: Vec<PathBuf>,
    },

    /// Two images in one folder share a file stem (e.g. `000.png` and `000.jpg`), so masks
    /// cannot be told apart.
    #[error("images {first} and {second} share a name; their masks cannot be told apart")]
    DuplicateStem {
        /// One image.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },

    /// The background thread that prepares batches panicked (a bug; reported rather than
    /// ending the epoch early without a word).
    #[error("batch preparation thread panicked: {0}")]
    WorkerPanic(String),

    /// A configuration value is out of range (batch size 0, split fraction outside `[0, 1)`,
    /// zero standard deviation, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

impl DataError {
    /// The file or folder the error is about, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            DataError::MissingDir { path, .. }
            | DataError::Io { path, .. }
            | DataError::Decode { path, .. }
            | DataError::DecoderPanic { path, .. }
            | DataError::UnsupportedFormat { path } => Some(path),
            DataError::EmptyTrainSet { dir } => Some(dir),
            DataError::MaskSizeMismatch { mask, .. } => Some(mask),
            DataError::MissingMask { image, .. } | DataError::AmbiguousMask { image, .. } => {
                Some(image)
            }
            DataError::OrphanMask { mask } => Some(mask),
            DataError::DuplicateStem { second, .. } => Some(second),
            DataError::InvalidConfig(_) | DataError::WorkerPanic(_) => None,
        }
    }
}

/// The message of a caught panic (`std::panic::catch_unwind`'s payload): the `&str` or
/// `String` that `panic!` was given, `None` for any other payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}
