//! Test helpers shared by the stad crates (a dev-dependency only).
//!
//! # Where the shared data lives
//! Tests that need the reference fixtures, the pretrained weights or the MVTec AD sample find
//! them through **one environment variable, `STAD_SHARED`**. When it is unset, the default is
//! `../shared` relative to the workspace root (the folder beside the checkout). A test that
//! needs the folder and cannot find it fails with a message naming the variable: a missing
//! fixture is never a silent pass.

use std::path::{Path, PathBuf};

/// The environment variable that points at the shared folder.
pub const SHARED_ENV: &str = "STAD_SHARED";

/// Root of the workspace (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // crates/stad-testutil -> workspace root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("stad-testutil lives two folders below the workspace root")
        .to_path_buf()
}

/// The shared folder: `$STAD_SHARED`, or `<workspace>/../shared`.
///
/// # Panics
/// When the folder does not exist (the message says how to point at it).
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os(SHARED_ENV) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("..").join("shared"),
    };
    assert!(
        dir.is_dir(),
        "shared folder {} not found: set {SHARED_ENV} to the folder that holds fixtures/, weights/ and data/",
        dir.display()
    );
    dir
}

/// `shared_dir()/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    shared_dir().join("fixtures").join(name)
}

/// A `.npy` array read as `f32` (from `f4`, `f8`, `u1` or `i8` data), with its shape.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// Values, C order.
    pub data: Vec<f32>,
}

/// Reads a `.npy` file into `f32` values.
///
/// # Panics
/// On a missing or unreadable file, or an unsupported dtype.
pub fn read_npy(path: impl AsRef<Path>) -> NpyArray {
    use npyz::{DType, TypeChar};
    let path = path.as_ref();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy =
        npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = match npy.dtype() {
        DType::Plain(ts) => match (ts.type_char(), ts.size_field()) {
            (TypeChar::Float, 4) => npy.into_vec::<f32>().unwrap(),
            (TypeChar::Float, 8) => npy
                .into_vec::<f64>()
                .unwrap()
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            (TypeChar::Uint, 1) => npy
                .into_vec::<u8>()
                .unwrap()
                .into_iter()
                .map(f32::from)
                .collect(),
            (TypeChar::Bool, 1) => npy
                .into_vec::<u8>()
                .unwrap()
                .into_iter()
                .map(f32::from)
                .collect(),
            (TypeChar::Int, 8) => npy
                .into_vec::<i64>()
                .unwrap()
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            other => panic!("{}: unsupported dtype {other:?}", path.display()),
        },
        other => panic!("{}: unsupported dtype {other:?}", path.display()),
    };
    NpyArray { shape, data }
}

/// Reads a fixture `.npy` by file name.
pub fn read_fixture(name: &str) -> NpyArray {
    read_npy(fixture(name))
}

/// The fixtures' `manifest.json`.
pub fn manifest() -> serde_json::Value {
    let path = fixture("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is valid JSON")
}

/// Largest absolute difference between two slices of equal length.
///
/// # Panics
/// When the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
