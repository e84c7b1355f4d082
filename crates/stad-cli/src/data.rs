//! Opening the data named on the command line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stad::data::{
    Dataset, FolderOptions, MaskNameRule, MvtecOptions, SyntheticConfig, SyntheticKind,
    read_synthetic_marker, write_mvtec_layout,
};

use crate::args::{DataArgs, FormatArg, SyntheticKindArg};
use crate::error::{CliError, Result};
use crate::progress::Console;

/// A data source as recorded in a run's `run.json` (so `eval` can default to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The folder.
    pub dir: PathBuf,
    /// Its layout.
    pub format: FormatArg,
    /// Folder format: anomalous images.
    pub abnormal: Option<PathBuf>,
    /// Folder format: their masks.
    pub masks: Option<PathBuf>,
    /// Synthetic format: the scene.
    pub synthetic_kind: Option<SyntheticKindArg>,
}

impl DataSpec {
    /// The spec given by `args`, or `fallback` (a run's data) when they name no folder.
    pub fn from_args(args: &DataArgs, fallback: Option<&DataSpec>) -> Result<Self> {
        let Some(dir) = args.data.clone() else {
            return fallback
                .cloned()
                .ok_or_else(|| CliError::Usage("--data DIR is required (the data folder)".into()));
        };
        let format = args.format.unwrap_or(FormatArg::Mvtec);
        if format != FormatArg::Folder && (args.abnormal.is_some() || args.masks.is_some()) {
            return Err(CliError::Usage(
                "--abnormal and --masks belong to --format folder".into(),
            ));
        }
        Ok(Self {
            dir,
            format,
            abnormal: args.abnormal.clone(),
            masks: args.masks.clone(),
            synthetic_kind: (format == FormatArg::Synthetic).then_some(args.synthetic_kind),
        })
    }

    /// Opens the data set.
    ///
    /// `synthetic`: when `dir` does not exist (or is empty) the synthetic data set (seed 0,
    /// 256×256, 60 train, 20 good and 5 per defect test images) is written there first in
    /// MVTec AD's layout; a folder written earlier is read back as it is.
    pub fn open(&self, console: Console) -> Result<Dataset> {
        match self.format {
            FormatArg::Mvtec => Ok(Dataset::mvtec(&self.dir, &MvtecOptions::default())?),
            FormatArg::Folder => {
                let mut options = FolderOptions::new(&self.dir);
                if let Some(a) = &self.abnormal {
                    options = options.abnormal(a);
                }
                if let Some(m) = &self.masks {
                    options = options.masks(m, MaskNameRule::SameStem);
                }
                Ok(Dataset::folder(&options)?)
            }
            FormatArg::Synthetic => {
                let kind = match self.synthetic_kind.unwrap_or_default() {
                    SyntheticKindArg::Object => SyntheticKind::Object,
                    SyntheticKindArg::Texture => SyntheticKind::Texture,
                };
                let config = SyntheticConfig {
                    kind,
                    ..SyntheticConfig::default()
                };
                open_synthetic(&self.dir, &config, console)
            }
        }
    }
}

/// Opens the synthetic data set in `dir`, writing it first when `dir` is missing or empty.
///
/// # Errors
/// [`CliError::Usage`] when `dir` holds something else (files but no synthetic marker, or a
/// synthetic set of another scene).
pub fn open_synthetic(dir: &Path, config: &SyntheticConfig, console: Console) -> Result<Dataset> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(CliError::io(dir)(e)),
    };
    if empty {
        console.info(format!(
            "writing the synthetic {} data set to {} ({} train, {} test images)",
            config.kind.name(),
            dir.display(),
            config.n_train,
            config.n_test_good + config.n_test_per_defect * config.defects.len()
        ));
        return Ok(write_mvtec_layout(config, dir)?);
    }
    match read_synthetic_marker(dir)? {
        Some(found) if found.kind == config.kind => {
            Ok(Dataset::mvtec(dir, &MvtecOptions::default())?)
        }
        Some(found) => Err(CliError::Usage(format!(
            "{} holds the synthetic {} data set, not {}: choose another --data folder",
            dir.display(),
            found.kind.name(),
            config.kind.name()
        ))),
        None => Err(CliError::Usage(format!(
            "{} is not empty and holds no synthetic data set (no {}): --format synthetic \
             writes into a new or empty folder",
            dir.display(),
            stad::data::SYNTHETIC_MARKER
        ))),
    }
}
