//! Loading torchvision state dicts (`.pth` written by `torch.save`, and `.safetensors`).
//!
//! A torchvision state dict names tensors like `layer2.0.downsample.1.running_mean`; the
//! networks of this crate use burn field names. Each network implements [`TorchvisionKeys`],
//! which maps a torchvision key to the module path it fills (or says that the key belongs to a
//! part of the network that was not built, such as `layer4` and `fc` of a ResNet built to
//! `layer3`). [`load_torchvision`] then applies the file and turns everything that does not
//! fit into [`BackboneError::WeightMismatch`], naming the keys:
//!
//! - a key the network needs and the file lacks → `missing`;
//! - a key the file has and the network has no place for → `unexpected`
//!   (keys of stages deeper than the network, and `num_batches_tracked`, are ignored);
//! - a tensor of another shape → `shape_mismatches` (only there: a mis-shaped tensor is not
//!   also reported as missing).
//!
//! When the keys and shapes fit, every tensor the network takes is read once and checked
//! before anything is applied:
//!
//! - **dtype**: float16, bfloat16, float32 and float64 tensors are converted to float32 (the
//!   dtype of the network's parameters; float16/bfloat16 values are exact in float32, float64
//!   ones are rounded to the nearest float32, and count as infinite beyond its range). Any
//!   other dtype (an integer or bool tensor
//!   where the network has a parameter) is [`BackboneError::WeightDtype`], naming the
//!   torchvision key and the dtype. `num_batches_tracked` (int64) is ignored, as above.
//! - **values**: every value must be finite, and every BatchNorm `running_var` non-negative;
//!   otherwise [`BackboneError::WeightValues`] names the key and what is wrong (`12 of 36864
//!   values are NaN or infinite`). A NaN or an infinity in a teacher's weights would not stop
//!   training by itself: ReLUs turn NaN into 0, and the scores would look plausible.
//!
//! BatchNorm `weight`/`bias` become burn's `gamma`/`beta` and Linear weights are transposed
//! by burn-store's `PyTorchToBurnAdapter`.
//!
//! # Getting torchvision's ImageNet ResNet18
//! On a machine with network access and PyTorch:
//! ```text
//! python -c "import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')"
//! # the file lands in ~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth
//! ```
//! Copy `resnet18-f37072fd.pth` to the inspection machine and pass its path
//! ([`crate::Backbone::load_torchvision_file`], or [`crate::load_torchvision`] for any network).
//! Either format works; `.safetensors` is the safer one to exchange (no pickle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Backend;
use burn::tensor::{DType, TensorData, bf16, f16};
use burn_store::{
    ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
    TensorSnapshot,
};

use crate::error::{BackboneError, Result};

/// Where a torchvision key goes in a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyTarget {
    /// The module path (burn field names, `.`-separated) that this tensor fills.
    Module(String),
    /// The key belongs to a part of the torchvision network that was not built (deeper
    /// stages, the classifier): it is skipped without complaint.
    NotBuilt,
}

/// Maps torchvision state-dict keys onto a network's module paths.
pub trait TorchvisionKeys {
    /// Where the torchvision key `key` goes, or `None` when this network has no such tensor
    /// (the key is then reported as unexpected).
    fn map_key(&self, key: &str) -> Option<KeyTarget>;

    /// The torchvision key that would fill the burn module path `path` (the reverse of
    /// [`Self::map_key`], for error messages).
    fn torchvision_name_of(&self, path: &str) -> String;

    /// A short name of the network for error messages (`resnet18 to layer3`).
    fn network_name(&self) -> String;
}

/// The tensors of a torchvision state dict, read lazily (data is materialised when applied).
pub struct StateDict {
    source: PathBuf,
    tensors: BTreeMap<String, TensorSnapshot>,
}

impl std::fmt::Debug for StateDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDict")
            .field("source", &self.source)
            .field("keys", &self.tensors.len())
            .finish()
    }
}

impl StateDict {
    /// Reads a `.pth`/`.pt` (torch.save; a nested `state_dict` entry is accepted) or a
    /// `.safetensors` file, by extension (any case).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(BackboneError::WeightFile {
                path,
                message: "no such file".into(),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let read_err = |message: String| BackboneError::WeightFile {
            path: path.clone(),
            message,
        };
        let tensors = match ext.as_str() {
            "safetensors" => {
                let mut store = SafetensorsStore::from_file(&path);
                store
                    .get_all_snapshots()
                    .map_err(|e| read_err(e.to_string()))?
                    .clone()
            }
            "pth" | "pt" => {
                let mut store = PytorchStore::from_file(&path);
                match store.get_all_snapshots() {
                    Ok(map) if !map.is_empty() => map.clone(),
                    first => {
                        // A checkpoint that nests the weights under "state_dict".
                        let first_err = first.err().map(|e| e.to_string());
                        let mut nested =
                            PytorchStore::from_file(&path).with_top_level_key("state_dict");
                        match nested.get_all_snapshots() {
                            Ok(map) if !map.is_empty() => map.clone(),
                            _ => {
                                return Err(read_err(
                                    first_err.unwrap_or_else(|| "no tensors in file".into()),
                                ));
                            }
                        }
                    }
                }
            }
            _ => return Err(BackboneError::UnsupportedFormat(path)),
        };
        Ok(Self {
            source: path,
            tensors,
        })
    }

    /// Reads a `.safetensors` file held in memory (e.g. the embedded teacher).
    pub fn from_safetensors_bytes(bytes: Vec<u8>, label: &str) -> Result<Self> {
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let tensors = store
            .get_all_snapshots()
            .map_err(|e| BackboneError::WeightFile {
                path: PathBuf::from(label),
                message: e.to_string(),
            })?
            .clone();
        Ok(Self {
            source: PathBuf::from(label),
            tensors,
        })
    }

    /// The torchvision keys in the file, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors in the file.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The file this dict was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// What [`load_torchvision`] applied.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Module paths that received a tensor.
    pub applied: usize,
    /// torchvision keys skipped because they belong to parts that were not built.
    pub skipped_not_built: Vec<String>,
}

/// Applies a torchvision state dict to `module`, all or nothing.
///
/// The file is first checked against the module's own list of tensors (paths and shapes, no
/// data is read): only when every tensor the module needs is present with the right shape,
/// and nothing is left over, is it read. Each tensor is then read once, converted to the
/// parameter's float dtype and validated (see [the module docs](self)); only when all of them
/// pass is anything applied. Otherwise the error names the missing, unexpected and mis-shaped
/// keys, or the tensor of the wrong dtype or with invalid values (in torchvision naming), and
/// `module` is untouched.
pub fn load_torchvision<B, M>(module: &mut M, dict: &StateDict) -> Result<LoadReport>
where
    B: Backend,
    M: Module<B> + ModuleSnapshot<B> + TorchvisionKeys,
{
    let expected: BTreeMap<String, (Vec<usize>, DType)> = module
        .collect(None, None, false)
        .into_iter()
        .map(|snap| (snap.full_path(), (snap.shape.to_vec(), snap.dtype)))
        .collect();

    let mut report = LoadReport::default();
    let mut unexpected = Vec::new();
    let mut shape_mismatches = Vec::new();
    // Module paths a tensor of the file fills (`found`), or would fill but for its shape.
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut mis_shaped: BTreeSet<String> = BTreeSet::new();
    // (torchvision key, module path, the file's tensor, the parameter's dtype)
    let mut fitting = Vec::with_capacity(dict.tensors.len());
    for (key, snapshot) in &dict.tensors {
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let path = match module.map_key(key) {
            None => {
                unexpected.push(key.clone());
                continue;
            }
            Some(KeyTarget::NotBuilt) => {
                report.skipped_not_built.push(key.clone());
                continue;
            }
            Some(KeyTarget::Module(path)) => path,
        };
        // BatchNorm: PyTorch's weight/bias are burn's gamma/beta.
        let target = [(".weight", ".gamma"), (".bias", ".beta")]
            .iter()
            .find_map(|(from, to)| {
                let alias = format!("{}{to}", path.strip_suffix(from)?);
                expected.contains_key(&alias).then_some(alias)
            })
            .unwrap_or_else(|| path.clone());
        let Some((want, dtype)) = expected.get(&target) else {
            unexpected.push(key.clone());
            continue;
        };
        let have = snapshot.shape.to_vec();
        // Linear weights are stored transposed by PyTorch ([out, in]); the adapter transposes.
        let fits = *want == have
            || (have.len() == 2 && want.len() == 2 && want[0] == have[1] && want[1] == have[0]);
        if !fits {
            shape_mismatches.push(format!("{key}: expected {want:?}, found {have:?}"));
            mis_shaped.insert(target);
            continue;
        }
        found.insert(target);
        fitting.push((key, path, snapshot, *dtype));
    }
    let missing: Vec<String> = expected
        .keys()
        .filter(|p| !found.contains(*p) && !mis_shaped.contains(*p))
        .map(|p| module.torchvision_name_of(p))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !shape_mismatches.is_empty() {
        return Err(BackboneError::WeightMismatch {
            network: module.network_name(),
            missing,
            unexpected,
            shape_mismatches,
        });
    }

    // The dtypes are known without reading: refuse a non-float tensor before reading any.
    if let Some((key, _, snapshot, _)) = fitting.iter().find(|(_, _, s, _)| !s.dtype.is_float()) {
        return Err(BackboneError::WeightDtype {
            key: (*key).clone(),
            dtype: torch_dtype_name(snapshot.dtype),
        });
    }

    let mut snapshots = Vec::with_capacity(fitting.len());
    for (key, path, snapshot, dtype) in fitting {
        let data = snapshot.to_data().map_err(|e| BackboneError::WeightFile {
            path: dict.source.clone(),
            message: format!("cannot read tensor {key}: {e}"),
        })?;
        let values = checked_f32_values(key, &data, &dict.source)?;
        let mut data = TensorData::new(values, data.shape);
        // The parameters are float32 on every backend stad uses; follow the module otherwise.
        if dtype.is_float() && dtype != DType::F32 {
            data = data.convert_dtype(dtype);
        }
        snapshots.push(TensorSnapshot::from_data(
            data,
            path.split('.').map(str::to_string).collect(),
            Vec::new(),
            snapshot.tensor_id.unwrap_or_default(),
        ));
    }

    let result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), false);
    if !result.errors.is_empty() || !result.missing.is_empty() {
        // The check above makes this unreachable; never leave it silent if burn-store disagrees.
        return Err(BackboneError::WeightFile {
            path: dict.source.clone(),
            message: format!("burn-store could not apply the checked weights: {result}"),
        });
    }
    report.applied = result.applied.len();
    Ok(report)
}

/// The values of a float tensor as `f32`, checked: all finite, and non-negative for a
/// BatchNorm `running_var`. `key` is the torchvision key (for the error).
fn checked_f32_values(key: &str, data: &TensorData, source: &Path) -> Result<Vec<f32>> {
    let n = data.num_elements();
    let bytes = data.as_bytes();
    let width = match data.dtype {
        DType::F64 => 8,
        DType::F32 | DType::Flex32 => 4,
        DType::F16 | DType::BF16 => 2,
        other => {
            return Err(BackboneError::WeightDtype {
                key: key.to_string(),
                dtype: torch_dtype_name(other),
            });
        }
    };
    if bytes.len() != n * width {
        return Err(BackboneError::WeightFile {
            path: source.to_path_buf(),
            message: format!(
                "tensor {key}: {} bytes of data for {n} {} values",
                bytes.len(),
                torch_dtype_name(data.dtype)
            ),
        });
    }
    // Decoded from the little-endian bytes: a file's data need not be aligned for its dtype.
    let values: Vec<f32> = match data.dtype {
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect(),
    };
    let non_finite = values.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        return Err(BackboneError::WeightValues {
            key: key.to_string(),
            problem: format!("{non_finite} of {n} values are NaN or infinite"),
        });
    }
    if key.ends_with("running_var") {
        let negative = values.iter().filter(|v| **v < 0.0).count();
        if negative > 0 {
            return Err(BackboneError::WeightValues {
                key: key.to_string(),
                problem: format!(
                    "running_var has negative values ({negative} of {n}): a variance is never \
                     negative"
                ),
            });
        }
    }
    Ok(values)
}

/// PyTorch's name of a dtype (`int32`, `float16`…), as a torchvision user knows it.
fn torch_dtype_name(dtype: DType) -> String {
    match dtype {
        DType::F64 => "float64",
        DType::F32 | DType::Flex32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::I16 => "int16",
        DType::I8 => "int8",
        DType::U64 => "uint64",
        DType::U32 => "uint32",
        DType::U16 => "uint16",
        DType::U8 => "uint8",
        DType::Bool(_) => "bool",
        DType::QFloat(_) => "quantized",
    }
    .to_string()
}
