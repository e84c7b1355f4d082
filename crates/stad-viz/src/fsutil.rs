//! File helpers: I/O errors that name their path, and stad-data's atomic write with them.

use std::io;
use std::path::Path;

use crate::error::{Result, VizError};

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VizError + '_ {
    move |source| VizError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically ([`stad_data::atomic::write_atomic`]), an I/O error
/// naming `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stad_data::atomic::write_atomic(path, bytes).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_an_io_error_naming_the_path() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        match err {
            VizError::Io { path, source } => {
                assert_eq!(path, Path::new("/"));
                assert_eq!(source.kind(), io::ErrorKind::InvalidInput);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
