//! Fingerprints of what a run was trained on, so that a resume can refuse other data or another
//! teacher file.
//!
//! A [`FileFingerprint`] is a name, a byte length and the 128-bit XXH3 hash of the bytes
//! (a fast non-cryptographic hash: it guards against mistakes — another folder, an edited or
//! replaced file — not against an adversary). The training data's [`DataFingerprint`] is the
//! ordered list of its images' fingerprints; an image is named by its file name, so a data set
//! that was moved or copied elsewhere still resumes, while one whose pixels changed does not.
//! In-memory images (the synthetic set) hash their size and pixels.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stad_data::{ImageSource, Sample};

use crate::error::{Result, StadError};
use crate::model::TeacherWeights;

/// One file's (or in-memory image's) name, length and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// The file name (no folder), or the in-memory image's name.
    pub name: String,
    /// Length in bytes (for in-memory images: of the pixel buffer).
    pub bytes: u64,
    /// XXH3-128 of the content, 32 hexadecimal digits.
    pub xxh3: String,
}

impl FileFingerprint {
    /// The fingerprint of `bytes`, called `name`.
    pub fn of_bytes(name: impl Into<String>, bytes: &[u8]) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.len() as u64,
            xxh3: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)),
        }
    }

    /// Reads and fingerprints the file at `path`.
    ///
    /// # Errors
    /// [`stad_data::DataError::Io`] when it cannot be read.
    pub fn of_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| stad_data::DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self::of_bytes(name, &bytes))
    }

    fn of_sample(sample: &Sample) -> Result<Self> {
        match &sample.image {
            ImageSource::File(path) => Self::of_file(path),
            ImageSource::Memory { name, image } => {
                let mut bytes = Vec::with_capacity(8 + image.as_raw().len());
                bytes.extend_from_slice(&image.width().to_le_bytes());
                bytes.extend_from_slice(&image.height().to_le_bytes());
                bytes.extend_from_slice(image.as_raw());
                Ok(Self::of_bytes(name.clone(), &bytes))
            }
        }
    }
}

/// The training images of a run (fitted and held out), in the order they were given to training.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// One fingerprint per image.
    pub images: Vec<FileFingerprint>,
}

impl DataFingerprint {
    /// Fingerprints the images of `samples` (read in parallel).
    ///
    /// # Errors
    /// [`stad_data::DataError::Io`] when an image file cannot be read.
    pub fn of_samples(samples: &[Sample]) -> Result<Self> {
        let images = samples
            .par_iter()
            .map(FileFingerprint::of_sample)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { images })
    }

    /// `None` when `now` equals `self`; otherwise what changed, in words: the counts, and the
    /// first few images that differ, were added or were removed.
    pub fn differences(&self, now: &Self) -> Option<String> {
        if self == now {
            return None;
        }
        let (then_n, now_n) = (self.images.len(), now.images.len());
        let mut parts = vec![format!("{then_n} image(s) then, {now_n} now")];
        if then_n == now_n {
            let changed: Vec<&str> = self
                .images
                .iter()
                .zip(&now.images)
                .filter(|(a, b)| a != b)
                .map(|(_, b)| b.name.as_str())
                .collect();
            parts.push(format!(
                "{} differ in name or content ({})",
                changed.len(),
                preview(&changed)
            ));
        } else {
            let removed = not_in(&self.images, &now.images);
            let added = not_in(&now.images, &self.images);
            if !removed.is_empty() {
                parts.push(format!(
                    "{} gone or changed ({})",
                    removed.len(),
                    preview(&removed)
                ));
            }
            if !added.is_empty() {
                parts.push(format!(
                    "{} new or changed ({})",
                    added.len(),
                    preview(&added)
                ));
            }
        }
        Some(parts.join("; "))
    }
}

/// The names of the fingerprints of `these` that `those` lacks, in order.
fn not_in<'a>(these: &'a [FileFingerprint], those: &[FileFingerprint]) -> Vec<&'a str> {
    let those: std::collections::HashSet<&FileFingerprint> = those.iter().collect();
    these
        .iter()
        .filter(|f| !those.contains(f))
        .map(|f| f.name.as_str())
        .collect()
}

/// The first five names, then how many more.
fn preview(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … {} more", names.len() - SHOWN));
    }
    s
}

/// The fingerprint of a teacher's weight file; `None` for the embedded and random teachers,
/// which the model configuration already pins (the embedded bytes are compiled in, a random
/// teacher is its seed).
///
/// # Errors
/// [`StadError::Data`] (I/O) when the file cannot be read.
pub fn teacher_fingerprint(weights: &TeacherWeights) -> Result<Option<FileFingerprint>> {
    match weights {
        TeacherWeights::File(path) => FileFingerprint::of_file(Path::new(path)).map(Some),
        TeacherWeights::Embedded | TeacherWeights::Random(_) => Ok(None),
    }
}

/// Checks that a checkpoint's fingerprints (`then`) are today's (`now`); `path` is the
/// checkpoint, for the error.
pub(crate) fn check_unchanged(
    then: (&Option<DataFingerprint>, &Option<FileFingerprint>),
    now: (&DataFingerprint, &Option<FileFingerprint>),
    path: &Path,
) -> Result<()> {
    let refuse = |reason: String| {
        Err(StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason,
        })
    };
    let Some(data_then) = then.0 else {
        return refuse(
            "it records no fingerprint of its training data (written by an older stad), so a \
             resume cannot be checked: start a new run"
                .into(),
        );
    };
    if let Some(what) = data_then.differences(now.0) {
        return refuse(format!(
            "the training data are not the ones it was trained on: {what}"
        ));
    }
    if then.1 != now.1 {
        let describe = |f: &Option<FileFingerprint>| match f {
            Some(f) => format!("{} ({} bytes, xxh3 {})", f.name, f.bytes, f.xxh3),
            None => "none".to_string(),
        };
        return refuse(format!(
            "the teacher's weight file changed since it was written: then {}, now {}",
            describe(then.1),
            describe(now.1)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(name: &str, content: &[u8]) -> FileFingerprint {
        FileFingerprint::of_bytes(name, content)
    }

    #[test]
    fn equal_data_have_no_differences_and_any_change_is_named() {
        let a = DataFingerprint {
            images: vec![fp("0.png", b"zero"), fp("1.png", b"one")],
        };
        assert_eq!(a.differences(&a.clone()), None);

        let edited = DataFingerprint {
            images: vec![fp("0.png", b"zero"), fp("1.png", b"One")],
        };
        let words = a.differences(&edited).unwrap();
        assert!(
            words.contains("1 differ") && words.contains("1.png"),
            "{words}"
        );
        assert!(!words.contains("0.png"), "{words}");

        let grown = DataFingerprint {
            images: vec![
                fp("0.png", b"zero"),
                fp("1.png", b"one"),
                fp("2.png", b"two"),
            ],
        };
        let words = a.differences(&grown).unwrap();
        assert!(words.contains("2 image(s) then, 3 now"), "{words}");
        assert!(words.contains("1 new or changed (2.png)"), "{words}");
        assert!(!words.contains("gone"), "{words}");
    }

    #[test]
    fn the_hash_sees_one_changed_byte_and_the_file_name_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        std::fs::write(&path, b"abcdef").unwrap();
        let first = FileFingerprint::of_file(&path).unwrap();
        assert_eq!(first.name, "w.safetensors");
        assert_eq!(first.bytes, 6);
        std::fs::write(&path, b"abcdeg").unwrap();
        let second = FileFingerprint::of_file(&path).unwrap();
        assert_eq!(second.bytes, 6);
        assert_ne!(first.xxh3, second.xxh3);
        assert!(FileFingerprint::of_file(&dir.path().join("none")).is_err());
    }

    #[test]
    fn a_checkpoint_without_fingerprints_is_refused() {
        let now = DataFingerprint { images: vec![] };
        let err = check_unchanged((&None, &None), (&now, &None), Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("older stad"), "{err}");
        let then = Some(now.clone());
        let teacher = Some(fp("t.pth", b"1"));
        let err = check_unchanged((&then, &None), (&now, &teacher), Path::new("x")).unwrap_err();
        assert!(
            err.to_string().contains("teacher's weight file changed"),
            "{err}"
        );
        assert!(check_unchanged((&then, &teacher), (&now, &teacher), Path::new("x")).is_ok());
    }
}
