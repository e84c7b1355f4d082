//! Listing folders with the documented skip rules (see the crate docs).

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::sample::{SkipReason, SkippedFile};

/// Extensions (compared case-insensitively) of the image files this crate decodes.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "jpe", "bmp", "tif", "tiff"];

/// Extensions of image formats this build does not decode: a file with one of these is an
/// error ([`DataError::UnsupportedFormat`]), not a silent skip, because it is clearly meant
/// to be an image.
pub const UNSUPPORTED_IMAGE_EXTENSIONS: &[&str] = &[
    "webp", "gif", "avif", "heic", "heif", "jxl", "jp2", "tga", "ppm", "pgm", "pbm", "pnm", "pam",
    "exr", "hdr", "ico", "qoi", "dds", "ff", "raw", "dng", "cr2", "nef",
];

/// What a file name is, judged by its name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A decodable image extension.
    Image,
    /// An image extension this build cannot decode.
    UnsupportedImage,
    /// Hidden (name starts with `.`).
    Hidden,
    /// Anything else.
    Other,
}

/// Classifies a file by its name (hidden first, then the extension, any case).
pub fn classify(path: &Path) -> FileKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') {
        return FileKind::Hidden;
    }
    let ext = match path.extension() {
        Some(e) => e.to_string_lossy().to_ascii_lowercase(),
        None => return FileKind::Other,
    };
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        FileKind::Image
    } else if UNSUPPORTED_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        FileKind::UnsupportedImage
    } else {
        FileKind::Other
    }
}

/// `true` when the name has a decodable image extension and is not hidden.
pub fn is_image_path(path: &Path) -> bool {
    classify(path) == FileKind::Image
}

/// The images and sub-folders of one folder, both sorted by name.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub images: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

/// Lists `dir` (not recursively): images and folders are returned, hidden entries and
/// non-image files are pushed onto `skipped`, unsupported image formats are an error.
pub(crate) fn list_dir(
    dir: &Path,
    what: &'static str,
    skipped: &mut Vec<SkippedFile>,
) -> Result<Listing> {
    if !dir.is_dir() {
        return Err(DataError::MissingDir {
            path: dir.to_path_buf(),
            what,
        });
    }
    let io = |e| DataError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    let mut out = Listing::default();
    for path in entries {
        let kind = classify(&path);
        if kind == FileKind::Hidden {
            skipped.push(SkippedFile {
                path,
                reason: SkipReason::Hidden,
            });
            continue;
        }
        // `metadata` follows symbolic links; a broken link is an error with its path.
        let meta = std::fs::metadata(&path).map_err(|e| DataError::Io {
            path: path.clone(),
            source: e,
        })?;
        if meta.is_dir() {
            out.dirs.push(path);
            continue;
        }
        match kind {
            FileKind::Image => out.images.push(path),
            FileKind::UnsupportedImage => return Err(DataError::UnsupportedFormat { path }),
            FileKind::Other | FileKind::Hidden => skipped.push(SkippedFile {
                path,
                reason: SkipReason::NotAnImage,
            }),
        }
    }
    Ok(out)
}

/// The file name without its last extension.
pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The final component of a path as a string.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_name() {
        assert_eq!(classify(Path::new("a/000.png")), FileKind::Image);
        assert_eq!(classify(Path::new("a/000.PNG")), FileKind::Image);
        assert_eq!(classify(Path::new("a/x.JpEg")), FileKind::Image);
        assert_eq!(classify(Path::new("a/x.tif")), FileKind::Image);
        assert_eq!(classify(Path::new("a/.DS_Store")), FileKind::Hidden);
        assert_eq!(classify(Path::new("a/._000.png")), FileKind::Hidden);
        assert_eq!(classify(Path::new("a/readme.txt")), FileKind::Other);
        assert_eq!(classify(Path::new("a/Makefile")), FileKind::Other);
        assert_eq!(classify(Path::new("a/x.webp")), FileKind::UnsupportedImage);
    }

    #[test]
    fn list_dir_sorts_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.png", "a.PNG", ".DS_Store", "notes.txt"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut skipped = Vec::new();
        let l = list_dir(dir.path(), "test", &mut skipped).unwrap();
        let names: Vec<_> = l.images.iter().map(|p| file_name(p)).collect();
        assert_eq!(names, ["a.PNG", "b.png"]);
        assert_eq!(l.dirs.len(), 1);
        assert_eq!(skipped.len(), 2);
        let missing = list_dir(&dir.path().join("nope"), "test", &mut skipped);
        assert!(matches!(missing, Err(DataError::MissingDir { .. })));
    }
}
