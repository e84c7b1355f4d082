//! Atomic file writes, the one implementation of the workspace (checkpoints, detectors,
//! `run.json`, evaluation records, reports and overlays all go through it).
//!
//! The bytes go to `.<file>.tmp-<pid>-<n>` in the destination's folder (so the rename stays
//! on one file system; `n` counts the process's writes, so two threads never share a temp
//! file), are flushed to disk, and the file is renamed over the target; the rename itself is
//! then flushed where the platform can open folders. Readers see the old file or the complete
//! new one, never a partial write; a killed write leaves only a temp file, which
//! [`is_temp_file_name`] recognises. Missing parent folders are created.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts this process's writes: the `n` of the temp names.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (see the [module docs](self)).
///
/// # Errors
/// The I/O error of whichever step failed (`InvalidInput` for a path that names no file);
/// the temp file is removed then.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Persist the rename itself (best effort: not every platform opens folders).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the temp file may not exist (creation failed) or be gone.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `name` is a temp file of [`write_atomic`] (`.NAME.tmp-…`), which only an
/// interrupted write leaves behind.
pub fn is_temp_file_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/folder/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names(path.parent().unwrap()), vec!["out.txt"]);
    }

    #[test]
    fn a_path_without_file_name_is_invalid_input() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_folder_in_the_way_is_an_error_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        fs::create_dir_all(path.join("x")).unwrap();
        // Renaming a file over a non-empty folder fails.
        assert!(write_atomic(&path, b"x").is_err());
        assert_eq!(names(dir.path()), vec!["taken"]);
    }

    #[test]
    fn concurrent_writers_of_one_process_never_share_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, &[t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == bytes[0]));
        assert_eq!(names(dir.path()), vec!["c.ckpt"]);
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_file_name(".c.ckpt.tmp-12-3"));
        assert!(!is_temp_file_name("c.ckpt") && !is_temp_file_name(".hidden"));
    }
}
