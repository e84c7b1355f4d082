//! Weight files are converted to float32 and validated on load: float16/bfloat16/float64
//! state dicts load (as the float32 values rounded to that precision), non-float parameters,
//! NaN/infinite values and negative BatchNorm variances are typed errors naming the
//! torchvision key, and a mis-shaped tensor is reported as a shape mismatch only.
//!
//! The files are copies of the shared ResNet18 (and MobileNetV2) weights, re-written in a
//! temporary folder with one thing changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::{DType, bf16, f16};
use burn_store::{ModuleSnapshot, ModuleStore, SafetensorsStore};
use stad_backbones::{Backbone, BackboneConfig, BackboneError};

type B = Flex;

/// One tensor of a safetensors file: dtype (safetensors spelling), shape, little-endian bytes.
#[derive(Clone)]
struct Raw {
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn f32_values(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "F32");
        self.bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    fn from_f32(values: &[f32], shape: Vec<usize>) -> Self {
        Self {
            dtype: "F32",
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

fn resnet18_file() -> PathBuf {
    stad_testutil::shared_dir().join("weights/resnet18_imagenet_to_layer3_bnfolded.safetensors")
}

fn mobilenet_file() -> PathBuf {
    stad_testutil::shared_dir().join("weights/mobilenet_v2_imagenet_tflite.safetensors")
}

/// Every tensor of a safetensors file, by key.
fn read(path: &Path) -> BTreeMap<String, Raw> {
    let mut store = SafetensorsStore::from_file(path);
    store
        .get_all_snapshots()
        .unwrap()
        .iter()
        .map(|(key, snap)| {
            let data = snap.to_data().unwrap();
            let dtype = match data.dtype {
                DType::F32 => "F32",
                DType::I64 => "I64",
                other => panic!("{key}: unexpected dtype {other:?} in the shared file"),
            };
            let raw = Raw {
                dtype,
                shape: data.shape.to_vec(),
                bytes: data.as_bytes().to_vec(),
            };
            (key.clone(), raw)
        })
        .collect()
}

/// Writes a safetensors file (8-byte header length, JSON header, data).
fn write(path: &Path, tensors: &BTreeMap<String, Raw>) {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (key, t) in tensors {
        let start = data.len();
        data.extend_from_slice(&t.bytes);
        entries.push(format!(
            "\"{key}\":{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{start},{}]}}",
            t.dtype,
            t.shape,
            data.len()
        ));
    }
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    std::fs::write(path, file).unwrap();
}

/// `tensors` with every float32 tensor re-encoded by `encode` as `dtype`.
fn recast(
    tensors: &BTreeMap<String, Raw>,
    dtype: &'static str,
    encode: impl Fn(f32) -> Vec<u8>,
) -> BTreeMap<String, Raw> {
    tensors
        .iter()
        .map(|(key, t)| {
            let t = if t.dtype == "F32" {
                Raw {
                    dtype,
                    shape: t.shape.clone(),
                    bytes: t.f32_values().into_iter().flat_map(&encode).collect(),
                }
            } else {
                t.clone()
            };
            (key.clone(), t)
        })
        .collect()
}

fn resnet18() -> Backbone<B> {
    BackboneConfig::resnet18()
        .init::<B>(&Default::default())
        .unwrap()
}

/// The network's parameters (burn paths), as float32 values; panics on any other dtype.
fn params(net: &Backbone<B>) -> BTreeMap<String, Vec<f32>> {
    net.collect(None, None, false)
        .into_iter()
        .map(|snap| {
            let data = snap.to_data().unwrap();
            assert_eq!(data.dtype, DType::F32, "{}", snap.full_path());
            (snap.full_path(), data.to_vec::<f32>().unwrap())
        })
        .collect()
}

/// Loads `tensors` (written to a file in `dir`) into a fresh network.
fn load(
    dir: &Path,
    name: &str,
    tensors: &BTreeMap<String, Raw>,
    mut net: Backbone<B>,
) -> (Backbone<B>, Result<(), BackboneError>) {
    let path = dir.join(name);
    write(&path, tensors);
    let result = net.load_torchvision_file(&path).map(|_| ());
    (net, result)
}

/// The f32 shared file loaded into a ResNet18 (through `write`, so the writer is checked too).
fn reference(dir: &Path, tensors: &BTreeMap<String, Raw>) -> BTreeMap<String, Vec<f32>> {
    let mut direct = resnet18();
    direct.load_torchvision_file(resnet18_file()).unwrap();
    let (rewritten, result) = load(dir, "f32.safetensors", tensors, resnet18());
    result.unwrap();
    let (direct, rewritten) = (params(&direct), params(&rewritten));
    assert!(
        direct == rewritten,
        "the re-written f32 file loads differently"
    );
    direct
}

/// A failed load into a fresh network: the error, after checking the network is untouched.
fn refused(dir: &Path, name: &str, tensors: &BTreeMap<String, Raw>) -> BackboneError {
    let net = resnet18();
    let before = params(&net);
    let (net, result) = load(dir, name, tensors, net);
    let err = result.expect_err("the load should fail");
    assert!(params(&net) == before, "a failed load changed the network");
    err
}

#[test]
fn f64_copy_loads_exactly_as_the_f32_file() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    let want = reference(dir.path(), &tensors);
    let f64s = recast(&tensors, "F64", |v| f64::from(v).to_le_bytes().to_vec());
    let (net, result) = load(dir.path(), "f64.safetensors", &f64s, resnet18());
    result.unwrap();
    assert!(params(&net) == want, "float64 copy differs after load");
}

#[test]
fn f16_and_bf16_copies_load_as_the_f32_values_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    // The copies keep the file's int64 num_batches_tracked: still ignored.
    assert!(tensors["layer1.0.bn1.num_batches_tracked"].dtype == "I64");
    let want = reference(dir.path(), &tensors);

    type Encode = fn(f32) -> Vec<u8>;
    type Round = fn(f32) -> f32;
    let halves: [(&'static str, Encode, Round); 2] = [
        (
            "F16",
            |v| f16::from_f32(v).to_le_bytes().to_vec(),
            |v| f16::from_f32(v).to_f32(),
        ),
        (
            "BF16",
            |v| bf16::from_f32(v).to_le_bytes().to_vec(),
            |v| bf16::from_f32(v).to_f32(),
        ),
    ];
    for (dtype, encode, round) in halves {
        let copy = recast(&tensors, dtype, encode);
        let name = format!("{dtype}.safetensors");
        let (net, result) = load(dir.path(), &name, &copy, resnet18());
        result.unwrap_or_else(|e| panic!("{dtype}: {e}"));
        let got = params(&net);
        let mut changed = 0;
        for (path, values) in &want {
            let rounded: Vec<f32> = values.iter().map(|v| round(*v)).collect();
            assert!(
                got[path] == rounded,
                "{dtype}: {path} is not the rounded f32"
            );
            changed += values.iter().zip(&rounded).filter(|(a, b)| a != b).count();
        }
        // The comparison means something only if rounding changed values.
        assert!(changed > 1000, "{dtype}: only {changed} values changed");
    }
}

#[test]
fn int32_weight_is_a_typed_error_naming_the_key_and_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = read(&resnet18_file());
    let key = "layer1.0.conv1.weight";
    let t = &tensors[key];
    let ints: Vec<u8> = t
        .f32_values()
        .iter()
        .flat_map(|v| ((v * 1000.0) as i32).to_le_bytes())
        .collect();
    tensors.insert(
        key.into(),
        Raw {
            dtype: "I32",
            shape: t.shape.clone(),
            bytes: ints,
        },
    );
    let err = refused(dir.path(), "int32.safetensors", &tensors);
    let msg = err.to_string();
    match err {
        BackboneError::WeightDtype { key: k, dtype } => {
            assert_eq!(k, key);
            assert_eq!(dtype, "int32");
        }
        other => panic!("expected WeightDtype, got {other:?}"),
    }
    assert!(msg.contains(key) && msg.contains("int32"), "{msg}");
}

#[test]
fn int64_num_batches_tracked_is_accepted() {
    let tensors = read(&resnet18_file());
    let counters: Vec<_> = tensors
        .iter()
        .filter(|(k, _)| k.ends_with("num_batches_tracked"))
        .collect();
    assert!(!counters.is_empty());
    assert!(counters.iter().all(|(_, t)| t.dtype == "I64"));
    let mut net = resnet18();
    net.load_torchvision_file(resnet18_file()).unwrap();
}

/// `tensors` with `count` values of `key` replaced by `value`.
fn with_values(
    tensors: &BTreeMap<String, Raw>,
    key: &str,
    count: usize,
    value: f32,
) -> BTreeMap<String, Raw> {
    let mut tensors = tensors.clone();
    let t = &tensors[key];
    let mut values = t.f32_values();
    let step = values.len() / count;
    for i in 0..count {
        values[i * step] = value;
    }
    let raw = Raw::from_f32(&values, t.shape.clone());
    tensors.insert(key.into(), raw);
    tensors
}

fn invalid_values(err: BackboneError) -> (String, String) {
    match err {
        BackboneError::WeightValues { key, problem } => (key, problem),
        other => panic!("expected WeightValues, got {other:?}"),
    }
}

#[test]
fn nan_in_a_conv_weight_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    let key = "layer1.0.conv1.weight";
    assert_eq!(tensors[key].elements(), 36864);
    let err = refused(
        dir.path(),
        "nan.safetensors",
        &with_values(&tensors, key, 12, f32::NAN),
    );
    let msg = err.to_string();
    let (k, problem) = invalid_values(err);
    assert_eq!(k, key);
    assert_eq!(problem, "12 of 36864 values are NaN or infinite");
    assert!(msg.contains(key) && msg.contains(&problem), "{msg}");
}

#[test]
fn infinity_in_a_conv_weight_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    let key = "layer1.0.conv1.weight";
    for (value, name) in [(f32::INFINITY, "inf"), (f32::NEG_INFINITY, "neg_inf")] {
        let err = refused(
            dir.path(),
            &format!("{name}.safetensors"),
            &with_values(&tensors, key, 1, value),
        );
        let (k, problem) = invalid_values(err);
        assert_eq!(k, key);
        assert_eq!(problem, "1 of 36864 values are NaN or infinite");
    }
}

#[test]
fn f64_value_beyond_the_f32_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    let key = "layer2.0.conv2.weight";
    let mut f64s = recast(&tensors, "F64", |v| f64::from(v).to_le_bytes().to_vec());
    let t = f64s.get_mut(key).unwrap();
    t.bytes[..8].copy_from_slice(&1e300f64.to_le_bytes());
    let (k, problem) = invalid_values(refused(dir.path(), "huge.safetensors", &f64s));
    assert_eq!(k, key);
    assert!(problem.starts_with("1 of "), "{problem}");
}

#[test]
fn negative_running_var_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&resnet18_file());
    let key = "layer2.0.bn1.running_var";
    // The shared file is BN-folded but keeps its BatchNorm statistics (running_var 1 - 1e-5).
    assert!(tensors[key].f32_values().iter().all(|v| *v > 0.0));
    let err = refused(
        dir.path(),
        "negvar.safetensors",
        &with_values(&tensors, key, 3, -0.5),
    );
    let msg = err.to_string();
    let (k, problem) = invalid_values(err);
    assert_eq!(k, key);
    assert!(
        problem.starts_with("running_var has negative values (3 of 128)"),
        "{problem}"
    );
    assert!(msg.contains(key), "{msg}");
    // Zero is a valid variance (a dead channel).
    let (_, result) = load(
        dir.path(),
        "zerovar.safetensors",
        &with_values(&tensors, key, 3, 0.0),
        resnet18(),
    );
    result.unwrap();
}

#[test]
fn nan_in_mobilenet_weights_is_refused_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = read(&mobilenet_file());
    let key = "features.3.conv.1.0.weight";
    let n = tensors[key].elements();
    let path = dir.path().join("mnv2_nan.safetensors");
    write(&path, &with_values(&tensors, key, 5, f32::NAN));
    let mut net = BackboneConfig::mobilenet_v2_tf()
        .init::<B>(&Default::default())
        .unwrap();
    let (k, problem) = invalid_values(net.load_torchvision_file(&path).unwrap_err());
    assert_eq!(k, key);
    assert_eq!(problem, format!("5 of {n} values are NaN or infinite"));
}

#[test]
fn mis_shaped_tensors_are_shape_mismatches_only_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = read(&resnet18_file());
    // Same data, other shape: a conv weight and a BatchNorm weight (burn's gamma).
    tensors.get_mut("layer1.0.conv1.weight").unwrap().shape = vec![32, 128, 3, 3];
    let bn = tensors.get_mut("layer1.0.bn1.weight").unwrap();
    bn.shape = vec![64, 1];
    let err = refused(dir.path(), "shapes.safetensors", &tensors);
    match err {
        BackboneError::WeightMismatch {
            missing,
            unexpected,
            shape_mismatches,
            ..
        } => {
            assert!(
                missing.is_empty(),
                "mis-shaped keys reported missing: {missing:?}"
            );
            assert!(unexpected.is_empty(), "{unexpected:?}");
            assert_eq!(
                shape_mismatches,
                vec![
                    "layer1.0.bn1.weight: expected [64], found [64, 1]".to_string(),
                    "layer1.0.conv1.weight: expected [64, 64, 3, 3], found [32, 128, 3, 3]"
                        .to_string(),
                ]
            );
        }
        other => panic!("expected WeightMismatch, got {other:?}"),
    }
}
