//! Single-file checkpoints, written atomically and checked when read.
//!
//! # File format (version 1)
//! ```text
//! "STADCKPT"            8 bytes, magic
//! version               u32 little-endian (1)
//! header length         u64 LE, then the header: UTF-8 JSON (method, configs, epoch…)
//! blob count            u32 LE, then per blob: name length u32 LE, name (UTF-8),
//!                       data length u64 LE, data
//! checksum              u64 LE, FNV-1a 64 of every byte before it
//! ```
//! Writing is stad-data's atomic write (`.<file>.tmp-<pid>-<n>` first, flushed, renamed over
//! the target): a crash leaves either the old or the new checkpoint, never half of one. Reading
//! checks the magic, the version, every length against the file size and the checksum, and
//! reports [`CheckpointError::Corrupt`] instead of panicking on any mismatch.

use std::fs;

use std::path::{Path, PathBuf};

/// Magic bytes at the start of every stad checkpoint.
pub(crate) const MAGIC: &[u8; 8] = b"STADCKPT";
/// Current format version.
pub(crate) const VERSION: u32 = 1;

/// Errors of reading and writing checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid stad checkpoint (truncated, altered, or another format).
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not check out.
        reason: String,
    },
}

/// The content of a checkpoint: a JSON header and named binary blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointFile {
    /// JSON metadata.
    pub header: String,
    /// Named blobs (weights, optimizer state), in order.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl CheckpointFile {
    /// A checkpoint with `header` and no blobs yet.
    pub fn new(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            blobs: Vec::new(),
        }
    }

    /// The blob called `name`.
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Serialises to bytes (format above).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.header.len() as u64).to_le_bytes());
        out.extend_from_slice(self.header.as_bytes());
        out.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for (name, data) in &self.blobs {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(data);
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses bytes read from `path` (used in error messages).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let corrupt = |reason: &str| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < MAGIC.len() + 4 + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a stad checkpoint (bad magic)"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        if stored != fnv1a(body) {
            return Err(corrupt("checksum mismatch (truncated or altered file)"));
        }
        let mut cursor = MAGIC.len();
        let mut take = |n: usize| -> Result<&[u8], CheckpointError> {
            let end = cursor
                .checked_add(n)
                .filter(|&e| e <= body.len())
                .ok_or_else(|| corrupt("length field beyond the end of the file"))?;
            let slice = &body[cursor..end];
            cursor = end;
            Ok(slice)
        };
        let version = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(corrupt(&format!(
                "unsupported version {version} (this build reads {VERSION})"
            )));
        }
        let header_len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
        let header = String::from_utf8(take(header_len)?.to_vec())
            .map_err(|_| corrupt("header is not UTF-8"))?;
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let mut blobs = Vec::new();
        for _ in 0..count {
            let name_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let name = String::from_utf8(take(name_len)?.to_vec())
                .map_err(|_| corrupt("blob name is not UTF-8"))?;
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
            blobs.push((name, take(len)?.to_vec()));
        }
        if cursor != body.len() {
            return Err(corrupt("trailing bytes after the last blob"));
        }
        Ok(Self { header, blobs })
    }

    /// Writes atomically: temp file in the same folder, fsync, rename.
    pub fn write_atomic(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes())
    }

    /// Reads and checks a checkpoint file.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }
}

/// Writes `bytes` to `path` atomically ([`stad_data::atomic::write_atomic`]), so that
/// readers see either the old content or the new, never a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    stad_data::atomic::write_atomic(path, bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Burn records in blobs: bincode, full precision (written with burn's own recorder).
type RecordCodec = burn::record::BinBytesRecorder<burn::record::FullPrecisionSettings>;

/// The most bytes the lengths inside one blob may claim while it is decoded. A record holds
/// at most a student's or an optimizer's tensors (Wide ResNet50-2 to layer3: 140 MB), so a
/// length beyond this can only come from a damaged or crafted file, which then gets an error
/// instead of an allocation of whatever the length says.
pub const RECORD_DECODE_LIMIT: usize = 1 << 30;

/// Reads what [`RecordCodec`] writes (bincode's standard configuration) with
/// [`RECORD_DECODE_LIMIT`], returning an error where burn's recorder would unwrap.
#[derive(Debug, Default, Clone)]
struct BoundedRecordReader;

impl<B: burn::prelude::Backend> burn::record::Recorder<B> for BoundedRecordReader {
    type Settings = burn::record::FullPrecisionSettings;
    type RecordArgs = ();
    type RecordOutput = Vec<u8>;
    type LoadArgs = Vec<u8>;

    fn save_item<I: serde::Serialize>(
        &self,
        _item: I,
        _args: (),
    ) -> Result<Vec<u8>, burn::record::RecorderError> {
        Err(burn::record::RecorderError::Unknown(
            "the bounded reader only reads; records are written with BinBytesRecorder".into(),
        ))
    }

    fn load_item<I: serde::de::DeserializeOwned>(
        &self,
        args: &mut Vec<u8>,
    ) -> Result<I, burn::record::RecorderError> {
        let config = bincode::config::standard().with_limit::<RECORD_DECODE_LIMIT>();
        // Through `Guarded`: a tensor whose shape claims more than its bytes is an error here,
        // before burn would allocate what the shape claims.
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(args, config, ());
        I::deserialize(crate::tensor_guard::Guarded(decoder.as_deserializer()))
            .map_err(|e| burn::record::RecorderError::DeserializeError(e.to_string()))
    }
}

/// Runs `f`, turning a panic into [`crate::StadError::CheckpointMismatch`] on `path`: burn
/// builds tensors from a decoded record and fits it to a module with assertions, which a
/// damaged or crafted blob that decodes (its lengths in bounds, its checksum recomputed) can
/// still trip. `what` names the blob.
pub(crate) fn guard<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> crate::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = stad_data::panic_message(payload.as_ref())
            .unwrap_or_else(|| "unknown panic".to_string());
        crate::StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!("`{what}` does not fit its network ({message})"),
        }
    })
}

impl CheckpointFile {
    /// Appends `record` (a module's or an optimizer's) as blob `name`.
    pub fn push_record<B: burn::prelude::Backend, R: burn::record::Record<B>>(
        &mut self,
        name: impl Into<String>,
        record: R,
    ) -> crate::Result<()> {
        let name = name.into();
        let bytes = burn::record::Recorder::<B>::record(&RecordCodec::default(), record, ())
            .map_err(|e| crate::StadError::Serialise {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        self.blobs.push((name, bytes));
        Ok(())
    }

    /// Decodes blob `name` into a record, with bounded lengths ([`RECORD_DECODE_LIMIT`]); a
    /// missing or undecodable blob is [`crate::StadError::CheckpointMismatch`] naming `path`.
    pub fn record<B: burn::prelude::Backend, R: burn::record::Record<B>>(
        &self,
        name: &str,
        device: &B::Device,
        path: &Path,
    ) -> crate::Result<R> {
        let mismatch = |reason: String| crate::StadError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = self
            .blob(name)
            .ok_or_else(|| mismatch(format!("it has no `{name}`")))?;
        guard(path, name, || {
            burn::record::Recorder::<B>::load(&BoundedRecordReader, bytes.to_vec(), device)
        })?
        .map_err(|e| mismatch(format!("cannot decode `{name}`: {e}")))
    }

    /// Loads blob `name` into `module` (freshly built, of the architecture the blob was saved
    /// from); a blob that does not fit it is [`crate::StadError::CheckpointMismatch`].
    pub fn load_module<B: burn::prelude::Backend, M: burn::module::Module<B>>(
        &self,
        name: &str,
        module: M,
        device: &B::Device,
        path: &Path,
    ) -> crate::Result<M> {
        let record = self.record::<B, M::Record>(name, device, path)?;
        guard(path, name, || module.load_record(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointFile {
        CheckpointFile {
            header: r#"{"epoch":3}"#.into(),
            blobs: vec![("student0".into(), vec![1, 2, 3]), ("optim".into(), vec![])],
        }
    }

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        sample().write_atomic(&path).unwrap();
        assert_eq!(CheckpointFile::read(&path).unwrap(), sample());
        // No temp file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let bytes = sample().to_bytes();
        let p = Path::new("x");
        for len in 0..bytes.len() {
            assert!(matches!(
                CheckpointFile::from_bytes(&bytes[..len], p),
                Err(CheckpointError::Corrupt { .. })
            ));
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                CheckpointFile::from_bytes(&b, p).is_err(),
                "flip at {i} not detected"
            );
        }
    }

    #[test]
    fn rewriting_replaces_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.ckpt");
        sample().write_atomic(&path).unwrap();
        let mut newer = sample();
        newer.header = r#"{"epoch":4}"#.into();
        newer.write_atomic(&path).unwrap();
        assert_eq!(CheckpointFile::read(&path).unwrap().header, newer.header);
    }
}
