//! Path checks before a command writes anything: where outputs would land, whether they
//! clash with files that exist or with the command's own inputs, and whether an output
//! folder lies inside a data set.
//!
//! Paths are compared after [`resolve`]: symbolic links, `.` and `..` resolved as far as the
//! path exists, so `data/../data/x` and a link to `data` name the same place.

use std::path::{Component, Path, PathBuf};

use crate::error::{CliError, Result};

/// How many clashing paths a message names before it only counts the rest.
pub const LISTED: usize = 5;

/// `path` made absolute with its existing part canonicalised: the longest prefix that exists
/// goes through [`std::fs::canonicalize`] (symbolic links resolved), and the components
/// after it (which do not exist yet) are appended with `.` dropped and `..` taken lexically.
///
/// For a path that exists this is its canonical path; for an output file that is not yet
/// written it is the canonical path of its folder joined with its name.
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    // Walk up to the nearest ancestor that exists, keeping the names below it.
    let mut rest: Vec<Component> = Vec::new();
    let mut base = absolute.as_path();
    let mut resolved = loop {
        match base.parent() {
            Some(parent) => {
                rest.extend(base.components().next_back());
                base = parent;
                if let Ok(p) = std::fs::canonicalize(base) {
                    break p;
                }
            }
            // Nothing exists (not even the root): the absolute path as it is.
            None => break PathBuf::new(),
        }
    };
    for component in rest.into_iter().rev() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            c => resolved.push(c),
        }
    }
    resolved
}

/// `true` when the folder `out` is `data` or lies inside it, after [`resolve`] of both (so
/// `out` need not exist yet, and links or `..` do not hide it).
///
/// `stad` refuses such an `--out`: what it writes there would become part of the data set
/// (overlays scanned as test images on the next run) or overwrite it.
pub fn out_inside_data(out: &Path, data: &Path) -> bool {
    resolve(out).starts_with(resolve(data))
}

/// The paths of `outputs` that exist already (files, folders or links), in order.
pub fn existing(outputs: &[PathBuf]) -> Vec<&Path> {
    outputs
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(PathBuf::as_path)
        .collect()
}

/// The pairs `(output, input)` where writing `output` would replace `input` (same file after
/// [`resolve`]), in the order of `outputs`.
pub fn outputs_that_are_inputs<'a>(
    outputs: &'a [PathBuf],
    inputs: &'a [PathBuf],
) -> Vec<(&'a Path, &'a Path)> {
    let inputs: std::collections::HashMap<PathBuf, &Path> =
        inputs.iter().map(|p| (resolve(p), p.as_path())).collect();
    outputs
        .iter()
        .filter_map(|o| inputs.get(&resolve(o)).map(|&i| (o.as_path(), i)))
        .collect()
}

/// Refuses, before anything is written, `outputs` that `command` would write into the folder
/// `out` (given as `option`, e.g. `--out`):
/// * always when an output is one of `inputs` (writing it would destroy the input; even
///   `--overwrite` does not allow that);
/// * when outputs exist already, unless `overwrite`.
///
/// # Errors
/// [`CliError::Usage`] naming the first [`LISTED`] clashing paths and how many there are.
pub fn check_outputs(
    command: &str,
    option: &str,
    out: &Path,
    outputs: &[PathBuf],
    inputs: &[PathBuf],
    overwrite: bool,
) -> Result<()> {
    let replaced: Vec<&Path> = outputs_that_are_inputs(outputs, inputs)
        .into_iter()
        .map(|(_, input)| input)
        .collect();
    if !replaced.is_empty() {
        return Err(CliError::Usage(format!(
            "{command} would write over {} of its input files in {option} {}: {}; choose an \
             {option} folder that holds no inputs (--overwrite never replaces an input)",
            replaced.len(),
            out.display(),
            list(&replaced)
        )));
    }
    let existing = existing(outputs);
    if !existing.is_empty() && !overwrite {
        return Err(CliError::Usage(format!(
            "{option} {} already holds {} of the {} files {command} would write: {}; pass \
             --overwrite to replace them, or choose another {option} folder",
            out.display(),
            existing.len(),
            outputs.len(),
            list(&existing)
        )));
    }
    Ok(())
}

/// The first [`LISTED`] of `paths`, comma-separated, then `and N more` for the rest.
pub fn list(paths: &[impl AsRef<Path>]) -> String {
    let mut words: Vec<String> = paths
        .iter()
        .take(LISTED)
        .map(|p| p.as_ref().display().to_string())
        .collect();
    if paths.len() > LISTED {
        words.push(format!("and {} more", paths.len() - LISTED));
    }
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_inside_data_sees_inside_equal_sibling_and_new_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let data = t.join("data");
        std::fs::create_dir_all(data.join("test/good")).unwrap();
        std::fs::create_dir_all(t.join("elsewhere")).unwrap();
        // Inside, existing and not.
        assert!(out_inside_data(&data.join("test/good"), &data));
        assert!(out_inside_data(&data.join("new/deeper"), &data));
        // Equal, also spelled another way.
        assert!(out_inside_data(&data, &data));
        assert!(out_inside_data(&data.join("test/../."), &data));
        assert!(out_inside_data(&t.join("elsewhere/../data/x"), &data));
        // A sibling, a sibling whose name starts like the data's, a parent, a new folder.
        assert!(!out_inside_data(&t.join("elsewhere"), &data));
        assert!(!out_inside_data(&t.join("data2"), &data));
        assert!(!out_inside_data(&t.join("data_out/new"), &data));
        assert!(!out_inside_data(t, &data));
        assert!(!out_inside_data(&data.join(".."), &data));
        assert!(!out_inside_data(&data.join("../new"), &data));
        // A data folder that does not exist (yet) still compares by name.
        assert!(out_inside_data(&t.join("nope/out"), &t.join("nope")));
        assert!(!out_inside_data(&t.join("nope2"), &t.join("nope")));
    }

    #[cfg(unix)]
    #[test]
    fn links_do_not_hide_the_data() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let data = t.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(&data, t.join("link")).unwrap();
        assert!(out_inside_data(&t.join("link/out"), &data));
        assert!(out_inside_data(&data.join("out"), &t.join("link")));
    }

    #[test]
    fn relative_paths_resolve_against_the_working_folder() {
        let here = std::env::current_dir().unwrap();
        assert!(out_inside_data(Path::new("no_such_dir/x"), &here));
        assert!(out_inside_data(&here.join("no_such_dir"), Path::new(".")));
        assert_eq!(
            resolve(Path::new("no_such_dir/./a/../b")),
            resolve(&here).join("no_such_dir/b")
        );
    }

    #[test]
    fn outputs_that_are_inputs_compare_resolved_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir_all(t.join("in")).unwrap();
        std::fs::write(t.join("in/a_overlay.png"), b"x").unwrap();
        let inputs = vec![t.join("in/./a_overlay.png"), t.join("in/b.png")];
        let outputs = vec![
            t.join("in/../in/a_overlay.png"),
            t.join("in/a_mask.png"),
            t.join("out/b.png"),
        ];
        let clashes = outputs_that_are_inputs(&outputs, &inputs);
        assert_eq!(clashes, [(outputs[0].as_path(), inputs[0].as_path())]);
        assert_eq!(existing(&outputs), [outputs[0].as_path()]);
    }

    #[test]
    fn lists_name_the_first_few() {
        let paths: Vec<String> = (0..8).map(|i| format!("{i}.png")).collect();
        assert_eq!(list(&paths[..2]), "0.png, 1.png");
        assert_eq!(
            list(&paths),
            "0.png, 1.png, 2.png, 3.png, 4.png, and 3 more"
        );
    }
}
