//! The evaluation record: what `stad eval --json FILE` writes, one JSON object per file.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};
use stad_metrics::{DefectAuroc, Evaluation, F1Threshold};

use crate::error::{Result, VizError};
use crate::fsutil::{io_err, write_atomic};

/// The evaluation of one method on one category's test set (one `stad eval --json` file):
/// what was evaluated, the library's [`Evaluation`] unchanged, the deployed threshold and
/// every image's score.
///
/// In JSON the evaluation's fields sit flat beside the others, its F1 threshold as
/// `image_f1`, `image_precision`, `image_recall` and `image_threshold`. Every metric is in
/// `[0, 1]`. JSON has no NaN: `serde_json` writes a NaN as `null`, and this type reads a
/// `null` number back as NaN, so that [`EvalRecord::validate`] (not the parser) reports it,
/// naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RecordJson", into = "RecordJson")]
pub struct EvalRecord {
    /// The method: `"stfpm"`, `"ensemble"`, `"simple"` (others are allowed).
    pub method: String,
    /// The category, e.g. `"bottle"`.
    pub category: String,
    /// The teacher network, e.g. `"mobilenet_v2 (embedded ImageNet)"`.
    pub teacher: String,
    /// The metrics (the image-level F1-optimal threshold on the test set is the thesis'
    /// choice for Dice and IoU).
    pub evaluation: Evaluation,
    /// The run's deployed threshold (set from held-out nominal images).
    pub detector_threshold: f64,
    /// Where [`EvalRecord::detector_threshold`] comes from (free text).
    pub detector_threshold_source: String,
    /// Every test image's score, in test order.
    pub scores: Vec<ImageScore>,
}

/// The JSON layout of an [`EvalRecord`]: flat, as `stad eval --json` has always written it.
#[derive(Serialize, Deserialize)]
struct RecordJson {
    method: String,
    category: String,
    teacher: String,
    n_test: usize,
    #[serde(deserialize_with = "nullable_f64")]
    image_auroc: f64,
    #[serde(deserialize_with = "nullable_f64")]
    pixel_auroc: f64,
    #[serde(deserialize_with = "nullable_f64")]
    au_pro: f64,
    #[serde(deserialize_with = "nullable_f64")]
    image_f1: f64,
    #[serde(deserialize_with = "nullable_f64")]
    image_precision: f64,
    #[serde(deserialize_with = "nullable_f64")]
    image_recall: f64,
    #[serde(deserialize_with = "nullable_f64")]
    image_threshold: f64,
    #[serde(deserialize_with = "nullable_f64")]
    dice: f64,
    #[serde(deserialize_with = "nullable_f64")]
    dice_mean_anomalous: f64,
    #[serde(deserialize_with = "nullable_f64")]
    iou: f64,
    per_defect: Vec<DefectAuroc>,
    #[serde(deserialize_with = "nullable_f64")]
    images_per_second: f64,
    #[serde(deserialize_with = "nullable_f64")]
    detector_threshold: f64,
    detector_threshold_source: String,
    scores: Vec<ImageScore>,
}

impl From<RecordJson> for EvalRecord {
    fn from(j: RecordJson) -> Self {
        EvalRecord {
            method: j.method,
            category: j.category,
            teacher: j.teacher,
            evaluation: Evaluation {
                n_test: j.n_test,
                image_auroc: j.image_auroc,
                pixel_auroc: j.pixel_auroc,
                au_pro: j.au_pro,
                image_f1: F1Threshold {
                    threshold: j.image_threshold,
                    precision: j.image_precision,
                    recall: j.image_recall,
                    f1: j.image_f1,
                },
                dice: j.dice,
                dice_mean_anomalous: j.dice_mean_anomalous,
                iou: j.iou,
                per_defect: j.per_defect,
                images_per_second: j.images_per_second,
            },
            detector_threshold: j.detector_threshold,
            detector_threshold_source: j.detector_threshold_source,
            scores: j.scores,
        }
    }
}

impl From<EvalRecord> for RecordJson {
    fn from(r: EvalRecord) -> Self {
        let e = r.evaluation;
        RecordJson {
            method: r.method,
            category: r.category,
            teacher: r.teacher,
            n_test: e.n_test,
            image_auroc: e.image_auroc,
            pixel_auroc: e.pixel_auroc,
            au_pro: e.au_pro,
            image_f1: e.image_f1.f1,
            image_precision: e.image_f1.precision,
            image_recall: e.image_f1.recall,
            image_threshold: e.image_f1.threshold,
            dice: e.dice,
            dice_mean_anomalous: e.dice_mean_anomalous,
            iou: e.iou,
            per_defect: e.per_defect,
            images_per_second: e.images_per_second,
            detector_threshold: r.detector_threshold,
            detector_threshold_source: r.detector_threshold_source,
            scores: r.scores,
        }
    }
}

/// The anomaly score of one test image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// The image's name (e.g. its path relative to the category).
    pub name: String,
    /// Its defect type (`"good"` for nominal images).
    pub defect: String,
    /// Whether it is anomalous (ground truth).
    pub anomalous: bool,
    /// Its image-level anomaly score.
    #[serde(deserialize_with = "nullable_f64")]
    pub score: f64,
}

/// Reads a number, taking `null` (how `serde_json` writes NaN) as NaN.
fn nullable_f64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl EvalRecord {
    /// Checks that the record is consistent, and says what is not.
    ///
    /// * `method` and `category` are not blank;
    /// * every metric (`image_auroc`, `pixel_auroc`, `au_pro`, `image_f1`, `image_precision`,
    ///   `image_recall`, `dice`, `dice_mean_anomalous`, `iou` and each per-defect AUROC) is
    ///   finite and in `[0, 1]`;
    /// * `images_per_second` is finite and `≥ 0`; `image_threshold` and
    ///   `detector_threshold` are finite;
    /// * `scores` is not empty, has `n_test` entries, and every score is finite.
    ///
    /// # Errors
    /// The first inconsistency found, as a sentence naming the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.method.trim().is_empty() {
            return Err("method is empty".into());
        }
        if self.category.trim().is_empty() {
            return Err("category is empty".into());
        }
        let e = &self.evaluation;
        let unit = [
            ("image_auroc", e.image_auroc),
            ("pixel_auroc", e.pixel_auroc),
            ("au_pro", e.au_pro),
            ("image_f1", e.image_f1.f1),
            ("image_precision", e.image_f1.precision),
            ("image_recall", e.image_f1.recall),
            ("dice", e.dice),
            ("dice_mean_anomalous", e.dice_mean_anomalous),
            ("iou", e.iou),
        ];
        for (name, value) in unit {
            check_unit(name, value)?;
        }
        for d in &e.per_defect {
            check_unit(&format!("per_defect[{:?}].auroc", d.defect_type), d.auroc)?;
        }
        if !(e.images_per_second.is_finite() && e.images_per_second >= 0.0) {
            return Err(format!(
                "images_per_second = {} is not a finite number >= 0",
                e.images_per_second
            ));
        }
        for (name, value) in [
            ("image_threshold", e.image_f1.threshold),
            ("detector_threshold", self.detector_threshold),
        ] {
            if !value.is_finite() {
                return Err(format!("{name} = {value} is not finite"));
            }
        }
        if self.scores.is_empty() {
            return Err("scores is empty".into());
        }
        if self.scores.len() != e.n_test {
            return Err(format!(
                "scores has {} entries but n_test is {}",
                self.scores.len(),
                e.n_test
            ));
        }
        if let Some((i, s)) = self
            .scores
            .iter()
            .enumerate()
            .find(|(_, s)| !s.score.is_finite())
        {
            return Err(format!(
                "scores[{i}] ({:?}) = {} is not finite",
                s.name, s.score
            ));
        }
        Ok(())
    }
}

/// Checks that a metric is finite and in `[0, 1]`.
fn check_unit(name: &str, value: f64) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} = {value} is not a number in [0, 1]"))
    }
}

/// Reads one file: parse, then [`EvalRecord::validate`].
fn read_record(path: &Path) -> Result<EvalRecord> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let record: EvalRecord = serde_json::from_slice(&bytes).map_err(|source| VizError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    record
        .validate()
        .map_err(|reason| VizError::InvalidRecord {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(record)
}

/// Reads and validates every evaluation file (in parallel), returning the records in the
/// order of `paths`.
///
/// # Errors
/// [`VizError::NoRecords`] when `paths` is empty; otherwise the error of the first failing
/// file in `paths` order, naming it: [`VizError::Io`] (unreadable), [`VizError::Json`] (not an
/// evaluation JSON), [`VizError::InvalidRecord`] (see [`EvalRecord::validate`]).
pub fn read_records(paths: &[PathBuf]) -> Result<Vec<EvalRecord>> {
    if paths.is_empty() {
        return Err(VizError::NoRecords);
    }
    let results: Vec<Result<EvalRecord>> = paths.par_iter().map(|p| read_record(p)).collect();
    results.into_iter().collect()
}

/// Writes `record` as pretty-printed JSON (with a final newline) to `path`, atomically: a
/// temporary file in the same folder, then a rename. Missing parent folders are created.
///
/// The record is not validated: a NaN metric is written as `null`, which
/// [`read_records`] then rejects with [`VizError::InvalidRecord`].
///
/// # Errors
/// [`VizError::Io`] when the file cannot be written.
pub fn write_record(record: &EvalRecord, path: &Path) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(record).map_err(|source| VizError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid record with 8 test images (4 good, 4 defective of two types), whose scores
    /// and metrics depend on `seed`; higher seeds separate the classes less.
    pub(crate) fn sample_record(method: &str, category: &str, seed: u64) -> EvalRecord {
        let s = seed as f64 * 0.01;
        let scores: Vec<ImageScore> = [
            ("good/000.png", "good", false, 0.10),
            ("good/001.png", "good", false, 0.20),
            ("good/002.png", "good", false, 0.25),
            ("good/003.png", "good", false, 0.40),
            ("crack/000.png", "crack", true, 0.35),
            ("crack/001.png", "crack", true, 0.60),
            ("scratch/000.png", "scratch", true, 0.70),
            ("scratch/001.png", "scratch", true, 0.90),
        ]
        .iter()
        .map(|&(name, defect, anomalous, score)| ImageScore {
            name: name.into(),
            defect: defect.into(),
            anomalous,
            score: if anomalous { score - s } else { score + s },
        })
        .collect();
        let labels: Vec<bool> = scores.iter().map(|s| s.anomalous).collect();
        let values: Vec<f64> = scores.iter().map(|s| s.score).collect();
        let auroc = stad_metrics::image_auroc(&values, &labels).unwrap();
        let names: Vec<&str> = scores.iter().map(|s| s.defect.as_str()).collect();
        let per_defect = stad_metrics::per_defect_image_auroc(&values, &names, "good").unwrap();
        EvalRecord {
            method: method.into(),
            category: category.into(),
            teacher: "mobilenet_v2 (embedded ImageNet)".into(),
            evaluation: Evaluation {
                n_test: scores.len(),
                image_auroc: auroc,
                pixel_auroc: 0.9 - s,
                au_pro: 0.8 - s,
                image_f1: F1Threshold {
                    threshold: 0.33,
                    precision: 0.8,
                    recall: 0.9,
                    f1: 0.85 - s,
                },
                dice: 0.5 - s,
                dice_mean_anomalous: 0.45,
                iou: 0.35,
                per_defect,
                images_per_second: 120.0,
            },
            detector_threshold: 0.45,
            detector_threshold_source: "99% quantile of 20 held-out good images".into(),
            scores,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn sample_record_is_valid() {
        for seed in 0..10 {
            sample_record("stfpm", "bottle", seed).validate().unwrap();
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let a = sample_record("stfpm", "bottle", 1);
        let b = sample_record("simple", "cable", 2);
        let (pa, pb) = (dir.path().join("a.json"), dir.path().join("b.json"));
        write_record(&a, &pa).unwrap();
        write_record(&b, &pb).unwrap();
        let text = std::fs::read_to_string(&pa).unwrap();
        assert!(text.starts_with("{\n  \"method\": \"stfpm\""), "{text}");
        assert!(text.ends_with("}\n"));
        let got = read_records(&[pb, pa]).unwrap();
        // serde_json (without its `float_roundtrip` feature) may parse a float 1 ulp off.
        let close = |x: f64, y: f64| (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0);
        let mut expected = vec![b, a];
        for (e, g) in expected.iter_mut().zip(&got) {
            assert_eq!(e.scores.len(), g.scores.len());
            for (es, gs) in e.scores.iter_mut().zip(&g.scores) {
                assert!(close(es.score, gs.score), "{} vs {}", es.score, gs.score);
                es.score = gs.score;
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn broken_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        write_record(&sample_record("stfpm", "bottle", 0), &good).unwrap();
        let bad = write(dir.path(), "broken.json", "{\"method\": \"stfpm\", ");
        let err = read_records(&[good, bad.clone()]).unwrap_err();
        assert!(
            matches!(&err, VizError::Json { path, .. } if *path == bad),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("broken.json"), "{text}");
        assert!(text.contains("stad eval --json"), "{text}");
    }

    #[test]
    fn nan_metric_is_an_invalid_record_naming_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sample_record("stfpm", "bottle", 0);
        r.evaluation.pixel_auroc = f64::NAN;
        let path = dir.path().join("nan.json");
        write_record(&r, &path).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"pixel_auroc\": null")
        );
        let err = read_records(std::slice::from_ref(&path)).unwrap_err();
        match &err {
            VizError::InvalidRecord { path: p, reason } => {
                assert_eq!(p, &path);
                assert!(reason.contains("pixel_auroc"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("nan.json"));
    }

    #[test]
    fn missing_file_is_an_io_error_and_no_paths_is_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let err = read_records(std::slice::from_ref(&path)).unwrap_err();
        assert!(
            matches!(&err, VizError::Io { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(matches!(read_records(&[]), Err(VizError::NoRecords)));
    }

    #[test]
    fn validate_reports_each_inconsistency() {
        let base = sample_record("stfpm", "bottle", 0);
        type Edit = Box<dyn Fn(&mut EvalRecord)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|r| r.evaluation.image_auroc = 1.5), "image_auroc"),
            (Box::new(|r| r.evaluation.iou = -0.1), "iou"),
            (Box::new(|r| r.evaluation.au_pro = f64::INFINITY), "au_pro"),
            (
                Box::new(|r| r.evaluation.per_defect[0].auroc = f64::NAN),
                "per_defect",
            ),
            (
                Box::new(|r| r.evaluation.images_per_second = -1.0),
                "images_per_second",
            ),
            (
                Box::new(|r| r.detector_threshold = f64::NAN),
                "detector_threshold",
            ),
            (
                Box::new(|r| r.evaluation.image_f1.threshold = f64::NEG_INFINITY),
                "image_threshold",
            ),
            (Box::new(|r| r.evaluation.n_test = 9), "n_test"),
            (Box::new(|r| r.scores[3].score = f64::NAN), "scores[3]"),
            (
                Box::new(|r| {
                    r.scores.clear();
                    r.evaluation.n_test = 0;
                }),
                "scores is empty",
            ),
            (Box::new(|r| r.category = " ".into()), "category"),
            (Box::new(|r| r.method = String::new()), "method"),
        ];
        for (edit, expected) in cases {
            let mut r = base.clone();
            edit(&mut r);
            let reason = r.validate().unwrap_err();
            assert!(
                reason.contains(expected),
                "{reason} should mention {expected}"
            );
        }
    }
}
