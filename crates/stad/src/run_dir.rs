//! A run folder, locked for as long as one process trains into it.
//!
//! [`RunDir::open`] creates the folder, takes an exclusive advisory lock on `RUN_DIR/.stad.lock`
//! (the operating system's file lock: released when the process exits, however it exits) and
//! writes the holder's process id into it. A second process that opens the same folder gets
//! [`StadError::RunLocked`] at once, naming the holder, instead of two runs overwriting each
//! other's checkpoints. Under the lock it then:
//! - refuses a folder that holds a run already ([`StadError::RunExists`]) unless resuming, and
//!   refuses to resume a folder without `last.ckpt` ([`StadError::NothingToResume`]);
//! - removes the temp files an interrupted atomic write left behind (`.NAME.tmp-…`: nobody else
//!   can be writing them while the lock is held).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Result, StadError};

/// The lock file of a run folder.
pub const LOCK_FILE: &str = ".stad.lock";

/// The files that make a folder a run (checked before a new run starts in it): the two
/// checkpoints of [`crate::train`], and the detector and `run.json` that the `stad` tool writes.
pub const RUN_FILES: [&str; 4] = ["last.ckpt", "best.ckpt", "detector.stad", "run.json"];

/// Where a run keeps its checkpoints, held locked (see the module docs). Clones share the lock;
/// it is released when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    resume: bool,
    _lock: Arc<File>,
}

impl RunDir {
    /// Opens (creating it when needed) and locks the run folder `path`. With `resume`, the
    /// folder must hold `last.ckpt`; without, it must hold none of `last.ckpt`, `best.ckpt`, `detector.stad`, `run.json`.
    ///
    /// # Errors
    /// - [`StadError::RunLocked`]: another process holds the folder;
    /// - [`StadError::RunExists`] / [`StadError::NothingToResume`] as above;
    /// - [`StadError::RunIo`] when the folder or its lock cannot be created.
    pub fn open(path: impl Into<PathBuf>, resume: bool) -> Result<Self> {
        let path = path.into();
        let created = !path.exists();
        Self::open_inner(path.clone(), resume).inspect_err(|e| {
            // A refused open leaves no folder of its own behind (`--resume` on a wrong path);
            // one another process holds is not its own, even if it looked new.
            if created && !matches!(e, StadError::RunLocked { .. }) {
                let _ = fs::remove_file(path.join(LOCK_FILE));
                let _ = fs::remove_dir(&path);
            }
        })
    }

    fn open_inner(path: PathBuf, resume: bool) -> Result<Self> {
        let io = |source| StadError::RunIo {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&path).map_err(io)?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StadError::RunLocked {
                    path,
                    holder: if holder.is_empty() {
                        "a process that has not written its id yet".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        (|| {
            lock.set_len(0)?;
            lock.rewind()?;
            writeln!(
                lock,
                "stad process {} (since unix time {since})",
                std::process::id()
            )?;
            lock.flush()
        })()
        .map_err(io)?;
        let dir = Self {
            path,
            resume,
            _lock: Arc::new(lock),
        };
        dir.remove_stale_temp_files()?;
        dir.check_contents()?;
        Ok(dir)
    }

    fn check_contents(&self) -> Result<()> {
        if self.resume {
            if !self.last().exists() {
                return Err(StadError::NothingToResume {
                    path: self.path.clone(),
                });
            }
            return Ok(());
        }
        let present: Vec<String> = RUN_FILES
            .iter()
            .filter(|name| self.path.join(name).exists())
            .map(|name| name.to_string())
            .collect();
        if present.is_empty() {
            Ok(())
        } else {
            Err(StadError::RunExists {
                path: self.path.clone(),
                files: present,
            })
        }
    }

    /// Removes `.NAME.tmp-…` files (what a killed [`stad_data::atomic::write_atomic`] leaves).
    fn remove_stale_temp_files(&self) -> Result<()> {
        let entries = fs::read_dir(&self.path).map_err(|source| StadError::RunIo {
            path: self.path.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if stad_data::atomic::is_temp_file_name(&name) && entry.path().is_file() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether training continues from `last.ckpt`.
    pub fn resume(&self) -> bool {
        self.resume
    }

    /// `path/last.ckpt`.
    pub fn last(&self) -> PathBuf {
        self.path.join("last.ckpt")
    }

    /// `path/best.ckpt`.
    pub fn best(&self) -> PathBuf {
        self.path.join("best.ckpt")
    }

    /// Releases the lock and removes the folder if nothing but the lock file is in it (for a
    /// run that failed before its first checkpoint, in a folder it created).
    pub fn remove_if_empty(self) {
        let path = self.path.clone();
        drop(self);
        let only_lock = fs::read_dir(&path)
            .map(|entries| entries.flatten().all(|e| e.file_name() == LOCK_FILE))
            .unwrap_or(false);
        if only_lock {
            let _ = fs::remove_file(path.join(LOCK_FILE));
            let _ = fs::remove_dir(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_of_a_held_folder_fails_at_once_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunDir::open(dir.path(), false).unwrap();
        let err = RunDir::open(dir.path(), false).unwrap_err();
        match &err {
            StadError::RunLocked { holder, .. } => assert!(
                holder.contains(&format!("stad process {}", std::process::id())),
                "{err}"
            ),
            other => panic!("expected RunLocked, got {other}"),
        }
        // A clone shares the lock; dropping every handle frees the folder.
        let clone = first.clone();
        drop(first);
        assert!(matches!(
            RunDir::open(dir.path(), false),
            Err(StadError::RunLocked { .. })
        ));
        drop(clone);
        RunDir::open(dir.path(), false).unwrap();
    }

    #[test]
    fn a_folder_with_a_run_needs_resume_and_resume_needs_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::open(dir.path(), true).unwrap_err();
        assert!(matches!(err, StadError::NothingToResume { .. }), "{err}");
        // A folder the refused open created is gone again; one that existed stays.
        let typo = dir.path().join("typo");
        let err = RunDir::open(&typo, true).unwrap_err();
        assert!(matches!(err, StadError::NothingToResume { .. }), "{err}");
        assert!(!typo.exists());
        assert!(dir.path().is_dir());
        fs::write(dir.path().join("best.ckpt"), b"x").unwrap();
        let err = RunDir::open(dir.path(), false).unwrap_err();
        match &err {
            StadError::RunExists { files, .. } => assert_eq!(files, &["best.ckpt"]),
            other => panic!("expected RunExists, got {other}"),
        }
        fs::write(dir.path().join("last.ckpt"), b"x").unwrap();
        assert!(RunDir::open(dir.path(), true).is_ok());
    }

    #[test]
    fn leftover_temp_files_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".last.ckpt.tmp-4242");
        let stale_new = dir.path().join(".best.ckpt.tmp-4242-7");
        let keep = dir.path().join("notes.txt");
        for p in [&stale, &stale_new, &keep] {
            fs::write(p, b"x").unwrap();
        }
        let _run = RunDir::open(dir.path(), false).unwrap();
        assert!(!stale.exists() && !stale_new.exists());
        assert!(keep.exists());
    }

    #[test]
    fn an_empty_created_folder_is_removed_with_its_lock() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("run");
        RunDir::open(&path, false).unwrap().remove_if_empty();
        assert!(!path.exists());
        let kept = parent.path().join("kept");
        let run = RunDir::open(&kept, false).unwrap();
        fs::write(kept.join("last.ckpt"), b"x").unwrap();
        run.remove_if_empty();
        assert!(kept.join("last.ckpt").exists());
    }
}
