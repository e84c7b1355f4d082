//! The thesis comparison that `stad benchmark` writes: the published table beside stad's
//! values, per category and method, for image AUROC and Dice.
//!
//! The published values ([`published_results`]) are kept as data in
//! `crates/stad-viz/data/polidori2022_mvtec_ad.csv`, with their source ([`PUBLISHED_SOURCE`]).
//! A comparison row ([`ComparisonRow`]) has stad's value when its pair was evaluated, the
//! published one when the thesis has it, and the difference `stad − published` when both
//! exist. Categories of the thesis that the benchmark did not run are kept as rows and
//! marked ([`PairStatus::NotInRoot`], [`PairStatus::NotSelected`]), never dropped.
//!
//! The thesis does not say how it averaged Dice. stad reports both the global Dice (every
//! pixel of the test set pooled, at the image-level F1-optimal threshold: the `dice` of
//! [`EvalRecord`]) and the mean over anomalous images; the **global** one is compared.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VizError};
use crate::fsutil::write_atomic;
use crate::record::EvalRecord;
use crate::tables::{escape_md, method_title, order_methods};

/// Where the published values come from.
pub const PUBLISHED_SOURCE: &str = "F. Polidori, \"Leveraging Student-Teacher learning framework for \
     semi-supervised visual anomaly detection and segmentation\", Master's thesis, Politecnico \
     di Milano, 2022: results table (MVTec AD, ResNet18 ImageNet teacher, seed 42, threshold \
     by image-level F1)";

/// The published table as CSV (`category,method,image_auroc,dice`, `#` comments).
const PUBLISHED_CSV: &str = include_str!("../data/polidori2022_mvtec_ad.csv");

/// One published value pair: a method's image AUROC and Dice on one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedResult {
    /// MVTec AD category, e.g. `"bottle"`.
    pub category: String,
    /// `"stfpm"` (STFPM), `"ensemble"` (Sol 1) or `"simple"` (Sol 2).
    pub method: String,
    /// Image-level AUROC.
    pub image_auroc: f64,
    /// Dice (averaging not stated by the thesis).
    pub dice: f64,
}

/// The thesis' published results, in its table's order (14 categories × 3 methods).
pub fn published_results() -> Vec<PublishedResult> {
    parse_published(PUBLISHED_CSV).expect("the compiled-in published table parses (unit-tested)")
}

/// Parses the published table's CSV; `Err` names the first bad line.
fn parse_published(text: &str) -> std::result::Result<Vec<PublishedResult>, String> {
    let mut rows = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, "category,method,image_auroc,dice")) => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let number = |s: &str| s.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v));
        match fields.as_slice() {
            [category, method, auroc, dice] => match (number(auroc), number(dice)) {
                (Some(image_auroc), Some(dice)) => rows.push(PublishedResult {
                    category: (*category).into(),
                    method: (*method).into(),
                    image_auroc,
                    dice,
                }),
                _ => return Err(format!("line {}: values not in [0, 1]: {line}", i + 1)),
            },
            _ => return Err(format!("line {}: expected 4 fields: {line}", i + 1)),
        }
    }
    Ok(rows)
}

/// Where a (category, method) pair of a benchmark stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairStatus {
    /// Trained and evaluated.
    Done,
    /// Training or evaluation failed (the benchmark went on with the other pairs).
    Failed,
    /// The category is in the thesis' table but not under the benchmark's root.
    NotInRoot,
    /// The category is under the root, but it or the method was not selected.
    NotSelected,
}

impl PairStatus {
    /// In words, for the report.
    pub fn words(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::NotInRoot => "not in --root",
            Self::NotSelected => "not selected",
        }
    }
}

/// What a benchmark knows of one (category, method) pair it planned.
#[derive(Debug, Clone, PartialEq)]
pub struct PairOutcome {
    /// The category.
    pub category: String,
    /// The method (`"stfpm"`, `"ensemble"`, `"simple"`, …).
    pub method: String,
    /// [`PairStatus::Done`] or [`PairStatus::Failed`].
    pub status: PairStatus,
    /// The evaluation, when done.
    pub record: Option<EvalRecord>,
    /// Mean training seconds per epoch, when known.
    pub seconds_per_epoch: Option<f64>,
}

/// One row of the comparison: a category and a method, stad's values beside the thesis'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// The category.
    pub category: String,
    /// The method.
    pub method: String,
    /// Where the pair stands.
    pub status: PairStatus,
    /// The thesis' image AUROC.
    pub published_image_auroc: Option<f64>,
    /// stad's image AUROC.
    pub image_auroc: Option<f64>,
    /// `image_auroc − published_image_auroc`.
    pub image_auroc_difference: Option<f64>,
    /// The thesis' Dice.
    pub published_dice: Option<f64>,
    /// stad's global Dice at the image-level F1-optimal threshold (the one compared).
    pub dice: Option<f64>,
    /// `dice − published_dice`.
    pub dice_difference: Option<f64>,
    /// stad's Dice, mean over the anomalous test images.
    pub dice_mean_anomalous: Option<f64>,
    /// stad's pixel AUROC.
    pub pixel_auroc: Option<f64>,
    /// stad's AU-PRO (FPR ≤ 0.3).
    pub au_pro: Option<f64>,
    /// Mean training seconds per epoch.
    pub seconds_per_epoch: Option<f64>,
    /// Inference throughput of the evaluation, images/s.
    pub images_per_second: Option<f64>,
}

/// The comparison rows: every planned pair, and every published pair the plan did not hold
/// (marked [`PairStatus::NotInRoot`] when its category is not among `root_categories`, else
/// [`PairStatus::NotSelected`]). Ordered by the thesis' category order (then other
/// categories by name), methods STFPM, ensemble, Simple Student, then others.
pub fn comparison_rows(
    pairs: &[PairOutcome],
    published: &[PublishedResult],
    root_categories: &[String],
) -> Vec<ComparisonRow> {
    let find_published =
        |c: &str, m: &str| published.iter().find(|p| p.category == c && p.method == m);
    let mut rows: Vec<ComparisonRow> = pairs
        .iter()
        .map(|pair| {
            let p = find_published(&pair.category, &pair.method);
            let e = pair.record.as_ref().map(|r| &r.evaluation);
            let image_auroc = e.map(|e| e.image_auroc);
            let dice = e.map(|e| e.dice);
            ComparisonRow {
                category: pair.category.clone(),
                method: pair.method.clone(),
                status: pair.status,
                published_image_auroc: p.map(|p| p.image_auroc),
                image_auroc,
                image_auroc_difference: difference(image_auroc, p.map(|p| p.image_auroc)),
                published_dice: p.map(|p| p.dice),
                dice,
                dice_difference: difference(dice, p.map(|p| p.dice)),
                dice_mean_anomalous: e.map(|e| e.dice_mean_anomalous),
                pixel_auroc: e.map(|e| e.pixel_auroc),
                au_pro: e.map(|e| e.au_pro),
                seconds_per_epoch: pair.seconds_per_epoch,
                images_per_second: e.map(|e| e.images_per_second),
            }
        })
        .collect();
    for p in published {
        if rows
            .iter()
            .any(|r| r.category == p.category && r.method == p.method)
        {
            continue;
        }
        let status = if root_categories.contains(&p.category) {
            PairStatus::NotSelected
        } else {
            PairStatus::NotInRoot
        };
        rows.push(ComparisonRow {
            category: p.category.clone(),
            method: p.method.clone(),
            status,
            published_image_auroc: Some(p.image_auroc),
            image_auroc: None,
            image_auroc_difference: None,
            published_dice: Some(p.dice),
            dice: None,
            dice_difference: None,
            dice_mean_anomalous: None,
            pixel_auroc: None,
            au_pro: None,
            seconds_per_epoch: None,
            images_per_second: None,
        });
    }
    let categories = category_order(&rows, published);
    let methods = order_methods(rows.iter().map(|r| r.method.as_str()));
    let rank = |list: &[String], x: &str| list.iter().position(|y| y == x).unwrap_or(list.len());
    rows.sort_by_key(|r| (rank(&categories, &r.category), rank(&methods, &r.method)));
    rows
}

fn difference(stad: Option<f64>, published: Option<f64>) -> Option<f64> {
    Some(stad? - published?)
}

/// The thesis' categories in its order, then the others by name.
fn category_order(rows: &[ComparisonRow], published: &[PublishedResult]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for p in published {
        if !order.contains(&p.category) {
            order.push(p.category.clone());
        }
    }
    let others: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.category.as_str())
        .filter(|c| !order.iter().any(|o| o == c))
        .collect();
    order.extend(others.into_iter().map(String::from));
    order
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

/// `v` with its sign at 3 decimals; a difference that rounds to zero is `+0.000`, never
/// `-0.000`.
fn signed(v: Option<f64>) -> String {
    v.map_or_else(
        || "–".into(),
        |v| format!("{:+.3}", (v * 1000.0).round() / 1000.0 + 0.0),
    )
}

/// The comparison as Markdown: the source, what the run was (`setup`, free text), then one
/// table for image AUROC and one for Dice (rows categories, per method the thesis' value,
/// stad's and the difference; a category not run says why), then stad's other metrics.
pub fn comparison_markdown(rows: &[ComparisonRow], setup: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# stad against the published results\n");
    let _ = writeln!(md, "Published: {PUBLISHED_SOURCE}.\n");
    let _ = writeln!(md, "stad: {setup}.\n");
    let _ = writeln!(
        md,
        "Dice: stad's global Dice (all test pixels pooled, at the image-level F1-optimal \
         threshold) is compared; the thesis does not state its averaging. The mean over \
         anomalous images is in the last table. Δ = stad − published.\n"
    );
    let methods = order_methods(rows.iter().map(|r| r.method.as_str()));
    let mut categories: Vec<&str> = Vec::new();
    for r in rows {
        if !categories.contains(&r.category.as_str()) {
            categories.push(&r.category);
        }
    }
    let find = |c: &str, m: &str| rows.iter().find(|r| r.category == c && r.method == m);
    type Values = fn(&ComparisonRow) -> (Option<f64>, Option<f64>, Option<f64>);
    let tables: [(&str, Values); 2] = [
        ("Image AUROC", |r| {
            (
                r.published_image_auroc,
                r.image_auroc,
                r.image_auroc_difference,
            )
        }),
        ("Dice", |r| (r.published_dice, r.dice, r.dice_difference)),
    ];
    for (title, values) in tables {
        let _ = writeln!(md, "## {title}\n");
        let mut header = String::from("| Category |");
        let mut rule = String::from("|---|");
        for m in &methods {
            let t = escape_md(method_title(m));
            let _ = write!(header, " {t} thesis | {t} stad | Δ |");
            rule.push_str("---:|---:|---:|");
        }
        let _ = writeln!(md, "{header}\n{rule}");
        let mut sums = vec![(0.0, 0usize); methods.len()];
        for c in &categories {
            let _ = write!(md, "| {} |", escape_md(c));
            for (i, m) in methods.iter().enumerate() {
                match find(c, m) {
                    Some(r) => {
                        let (published, stad, delta) = values(r);
                        let stad = match (r.status, stad) {
                            (PairStatus::Done, v) => cell(v),
                            (status, _) => format!("*{}*", status.words()),
                        };
                        if let Some(d) = delta {
                            sums[i].0 += d;
                            sums[i].1 += 1;
                        }
                        let _ = write!(md, " {} | {stad} | {} |", cell(published), signed(delta));
                    }
                    None => md.push_str(" – | – | – |"),
                }
            }
            md.push('\n');
        }
        let _ = write!(md, "| **mean Δ** |");
        for (sum, n) in sums {
            let mean = (n > 0).then(|| sum / n as f64);
            let _ = write!(md, " | | {} ({n}) |", signed(mean));
        }
        md.push_str("\n\n");
    }
    let _ = writeln!(md, "## stad's other figures\n");
    let _ = writeln!(
        md,
        "| Category | Method | Status | Pixel AUROC | AU-PRO | Dice (mean over anomalous) | s / epoch | images/s (eval) |\n|---|---|---|---:|---:|---:|---:|---:|"
    );
    for r in rows.iter().filter(|r| r.status != PairStatus::NotInRoot) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            escape_md(&r.category),
            escape_md(method_title(&r.method)),
            r.status.words(),
            cell(r.pixel_auroc),
            cell(r.au_pro),
            cell(r.dice_mean_anomalous),
            r.seconds_per_epoch
                .map_or_else(|| "–".into(), |s| format!("{s:.1}")),
            r.images_per_second
                .map_or_else(|| "–".into(), |s| format!("{s:.1}")),
        );
    }
    md
}

/// The comparison as CSV, one line per row, empty fields for missing values.
pub fn comparison_csv(rows: &[ComparisonRow]) -> String {
    let mut csv = String::from(
        "category,method,status,published_image_auroc,image_auroc,image_auroc_difference,\
         published_dice,dice,dice_difference,dice_mean_anomalous,pixel_auroc,au_pro,\
         seconds_per_epoch,images_per_second\n",
    );
    let f = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
    for r in rows {
        let quoted = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            quoted(&r.category),
            quoted(&r.method),
            serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            f(r.published_image_auroc),
            f(r.image_auroc),
            f(r.image_auroc_difference),
            f(r.published_dice),
            f(r.dice),
            f(r.dice_difference),
            f(r.dice_mean_anomalous),
            f(r.pixel_auroc),
            f(r.au_pro),
            f(r.seconds_per_epoch),
            f(r.images_per_second),
        );
    }
    csv
}

/// The files [`write_comparison`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComparisonFiles {
    /// `benchmark.md`.
    pub markdown: PathBuf,
    /// `benchmark.json`: `{"source", "setup", "rows": [ComparisonRow…]}`.
    pub json: PathBuf,
    /// `benchmark.csv`.
    pub csv: PathBuf,
}

/// Writes `benchmark.md`, `benchmark.json` and `benchmark.csv` into `dir`, atomically.
///
/// # Errors
/// [`VizError::Io`] when a file cannot be written.
pub fn write_comparison(
    rows: &[ComparisonRow],
    setup: &str,
    dir: &Path,
) -> Result<ComparisonFiles> {
    let files = ComparisonFiles {
        markdown: dir.join("benchmark.md"),
        json: dir.join("benchmark.json"),
        csv: dir.join("benchmark.csv"),
    };
    write_atomic(&files.markdown, comparison_markdown(rows, setup).as_bytes())?;
    let json = serde_json::json!({ "source": PUBLISHED_SOURCE, "setup": setup, "rows": rows });
    let mut bytes = serde_json::to_vec_pretty(&json).map_err(|source| VizError::Json {
        path: files.json.clone(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(&files.json, &bytes)?;
    write_atomic(&files.csv, comparison_csv(rows).as_bytes())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_record;

    #[test]
    fn the_published_table_has_14_categories_of_3_methods() {
        let published = published_results();
        assert_eq!(published.len(), 42);
        let categories: BTreeSet<&str> = published.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(categories.len(), 14);
        for c in &categories {
            let methods: Vec<&str> = published
                .iter()
                .filter(|p| p.category == *c)
                .map(|p| p.method.as_str())
                .collect();
            assert_eq!(methods, ["stfpm", "ensemble", "simple"], "{c}");
        }
        // Spot checks against the thesis' table.
        let get = |c: &str, m: &str| {
            published
                .iter()
                .find(|p| p.category == c && p.method == m)
                .map(|p| (p.image_auroc, p.dice))
                .unwrap()
        };
        assert_eq!(get("bottle", "stfpm"), (0.997, 0.661));
        assert_eq!(get("metal_nut", "simple"), (0.558, 0.0104));
        assert_eq!(get("pill", "simple"), (0.448, 0.00157));
        assert_eq!(get("wood", "ensemble"), (0.996, 0.559));
    }

    #[test]
    fn differences_rounding_to_zero_are_positive() {
        assert_eq!(signed(Some(0.997 - 0.997 - 1e-12)), "+0.000");
        assert_eq!(signed(Some(-0.0283)), "-0.028");
        assert_eq!(signed(None), "–");
    }

    #[test]
    fn bad_published_lines_are_named() {
        assert!(parse_published("category,method,image_auroc,dice\nbottle,stfpm,1.2,0.5").is_err());
        assert!(parse_published("category,method,image_auroc,dice\nbottle,stfpm,0.5").is_err());
        assert!(parse_published("cat,m\n").is_err());
    }

    fn done(category: &str, method: &str, seed: u64) -> PairOutcome {
        PairOutcome {
            category: category.into(),
            method: method.into(),
            status: PairStatus::Done,
            record: Some(sample_record(method, category, seed)),
            seconds_per_epoch: Some(12.5),
        }
    }

    #[test]
    fn rows_put_stad_beside_the_thesis_and_mark_what_was_not_run() {
        let pairs = vec![
            done("bottle", "stfpm", 1),
            PairOutcome {
                category: "bottle".into(),
                method: "ensemble".into(),
                status: PairStatus::Failed,
                record: None,
                seconds_per_epoch: None,
            },
            done("my_part", "stfpm", 2),
        ];
        let roots = vec!["bottle".to_string(), "cable".into(), "my_part".into()];
        let rows = comparison_rows(&pairs, &published_results(), &roots);
        // 42 published pairs, one extra category of stad's.
        assert_eq!(rows.len(), 43);
        let row = |c: &str, m: &str| {
            rows.iter()
                .find(|r| r.category == c && r.method == m)
                .unwrap()
        };
        let bottle = row("bottle", "stfpm");
        let stad = sample_record("stfpm", "bottle", 1).evaluation;
        assert_eq!(bottle.status, PairStatus::Done);
        assert_eq!(bottle.image_auroc, Some(stad.image_auroc));
        assert_eq!(bottle.published_image_auroc, Some(0.997));
        assert_eq!(
            bottle.image_auroc_difference,
            Some(stad.image_auroc - 0.997)
        );
        assert_eq!(bottle.dice_difference, Some(stad.dice - 0.661));
        assert_eq!(row("bottle", "ensemble").status, PairStatus::Failed);
        assert_eq!(row("bottle", "ensemble").image_auroc_difference, None);
        assert_eq!(row("bottle", "simple").status, PairStatus::NotSelected);
        assert_eq!(row("cable", "stfpm").status, PairStatus::NotSelected);
        assert_eq!(row("capsule", "stfpm").status, PairStatus::NotInRoot);
        let extra = row("my_part", "stfpm");
        assert_eq!(
            (extra.published_image_auroc, extra.image_auroc_difference),
            (None, None)
        );
        // The thesis' order, then stad's own categories.
        assert_eq!(rows[0].category, "bottle");
        assert_eq!(rows[3].category, "cable");
        assert_eq!(rows.last().unwrap().category, "my_part");

        let md = comparison_markdown(&rows, "ResNet18 teacher, 2 epochs");
        assert!(md.contains("Politecnico di Milano"));
        assert!(
            md.contains("| capsule | 0.450 | *not in --root* | – |"),
            "{md}"
        );
        assert!(md.contains(&format!(
            "| bottle | 0.997 | {:.3} | {} |",
            stad.image_auroc,
            signed(Some(stad.image_auroc - 0.997))
        )));
        let csv = comparison_csv(&rows);
        assert_eq!(csv.lines().count(), 44);
        assert!(
            csv.contains("\ncapsule,stfpm,not_in_root,0.45,,,0.0133,"),
            "{csv}"
        );

        let dir = tempfile::tempdir().unwrap();
        let files = write_comparison(&rows, "setup", dir.path()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
        assert_eq!(json["rows"].as_array().unwrap().len(), 43);
        assert_eq!(json["rows"][0]["status"], "done");
        assert!(files.markdown.is_file() && files.csv.is_file());
    }
}
