//! The results report: `report.md` with every table, and the plots it embeds.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use rayon::prelude::*;

use crate::error::{Result, VizError};
use crate::fsutil::{io_err, write_atomic};
use crate::overlay::save_png_atomic;
use crate::plots::{roc_plot, score_histogram};
use crate::record::EvalRecord;
use crate::tables::{
    Metric, defect_table, escape_md, latest_records, method_order, method_title, metric_table,
};

/// The files [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `<out_dir>/report.md`.
    pub markdown: PathBuf,
    /// The plots, in the report's order: per category, its ROC plot then its score
    /// histograms.
    pub plots: Vec<PathBuf>,
}

/// `name` reduced to `[A-Za-z0-9_-]` for use in a file name: every other character becomes
/// `_`; an empty name becomes `unnamed`.
pub fn sanitize_file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unnamed".into() } else { s }
}

/// Hands out file names that differ from each other even on case-insensitive file systems:
/// a name already given gets `-2`, `-3`, ... appended to its stem.
#[derive(Default)]
struct UniqueNames(HashSet<String>);

impl UniqueNames {
    fn get(&mut self, stem: &str, ext: &str) -> String {
        let mut candidate = format!("{stem}.{ext}");
        let mut k = 2;
        while !self.0.insert(candidate.to_lowercase()) {
            candidate = format!("{stem}-{k}.{ext}");
            k += 1;
        }
        candidate
    }
}

/// One picture of the report.
enum Plot<'a> {
    Roc(&'a str, Vec<&'a EvalRecord>),
    Scores(&'a EvalRecord),
}

/// A picture, its file name and its alternative text.
struct PlotJob<'a> {
    plot: Plot<'a>,
    file: String,
    alt: String,
}

/// `n` followed by the singular or plural noun.
fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// A threshold or score in a table: four significant decimals, scientific for very small or
/// large magnitudes.
fn format_value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// Writes the results report of `records` into `out_dir` (created if needed):
///
/// * `roc_<category>.png`, one per category ([`roc_plot`]), and
///   `scores_<category>_<method>.png`, one per (category, method) ([`score_histogram`]),
///   rendered in parallel; names are reduced to `[A-Za-z0-9_-]` ([`sanitize_file_stem`]),
///   with `-2`, `-3`, ... appended should two of them coincide;
/// * `report.md`: a title; a line counting the evaluation files, categories and methods; the
///   sections `## Image AUROC`, `## Pixel AUROC`, `## AU-PRO (FPR ≤ 0.3)`, `## Dice`,
///   `## Image F1`, each with its [`metric_table`]; `## Per defect type (image AUROC)` with
///   one [`defect_table`] per category; `## Runs` (teacher, test images, throughput,
///   precision, recall and thresholds of each record); `## Plots` embedding every PNG with a
///   relative Markdown image link.
///
/// When the same (category, method) appears more than once, the later record wins (as in
/// the tables). Every file is written atomically (a temporary file, then a rename), and
/// `report.md` last, so it never links to a missing plot.
///
/// # Errors
/// [`VizError::NoRecords`] when `records` is empty, [`VizError::Io`] when the folder or a file
/// cannot be written, [`VizError::Plot`] / [`VizError::Encode`] when a plot fails.
pub fn write_report(records: &[EvalRecord], out_dir: &Path) -> Result<ReportFiles> {
    if records.is_empty() {
        return Err(VizError::NoRecords);
    }
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let latest = latest_records(records);
    let categories = crate::tables::categories(&latest);
    let methods = method_order(records);

    let mut names = UniqueNames::default();
    names.get("report", "md");
    let mut jobs: Vec<PlotJob<'_>> = Vec::new();
    for &category in &categories {
        let of_category: Vec<&EvalRecord> = latest
            .iter()
            .copied()
            .filter(|r| r.category == category)
            .collect();
        jobs.push(PlotJob {
            file: names.get(&format!("roc_{}", sanitize_file_stem(category)), "png"),
            alt: format!("{category}: image ROC"),
            plot: Plot::Roc(category, of_category.clone()),
        });
        for r in of_category {
            let stem = format!(
                "scores_{}_{}",
                sanitize_file_stem(category),
                sanitize_file_stem(&r.method)
            );
            jobs.push(PlotJob {
                file: names.get(&stem, "png"),
                alt: format!("{category} · {}: image scores", method_title(&r.method)),
                plot: Plot::Scores(r),
            });
        }
    }

    let written: Vec<Result<PathBuf>> = jobs
        .par_iter()
        .map(|job| {
            let image = match &job.plot {
                Plot::Roc(category, records) => roc_plot(category, records)?,
                Plot::Scores(record) => score_histogram(record)?,
            };
            let path = out_dir.join(&job.file);
            save_png_atomic(&DynamicImage::ImageRgb8(image), &path)?;
            Ok(path)
        })
        .collect();
    let plots = written.into_iter().collect::<Result<Vec<_>>>()?;

    let markdown = render_markdown(records, &latest, &categories, &methods, &jobs);
    let markdown_path = out_dir.join("report.md");
    write_atomic(&markdown_path, markdown.as_bytes())?;
    Ok(ReportFiles {
        markdown: markdown_path,
        plots,
    })
}

/// The text of `report.md`.
fn render_markdown(
    records: &[EvalRecord],
    latest: &[&EvalRecord],
    categories: &[&str],
    methods: &[String],
    jobs: &[PlotJob<'_>],
) -> String {
    let mut md = String::from("# stad evaluation report\n\n");
    let method_list: Vec<&str> = methods.iter().map(|m| method_title(m)).collect();
    let _ = writeln!(
        md,
        "{}, {} ({}), {} ({}).",
        count(records.len(), "evaluation file", "evaluation files"),
        count(categories.len(), "category", "categories"),
        escape_md(&categories.join(", ")),
        count(methods.len(), "method", "methods"),
        escape_md(&method_list.join(", ")),
    );
    let replaced = records.len() - latest.len();
    if replaced > 0 {
        let _ = writeln!(
            md,
            "\n{} repeated a (category, method) pair: the later file is reported.",
            count(replaced, "earlier file", "earlier files"),
        );
    }
    md.push_str(
        "\nBest value of each row in bold; – : not evaluated; the mean of a column is over \
         the categories that method was evaluated on.\n",
    );
    for metric in Metric::ALL {
        let _ = write!(
            md,
            "\n## {}\n\n{}",
            metric.title(),
            metric_table(records, metric)
        );
    }

    md.push_str("\n## Per defect type (image AUROC)\n");
    for &category in categories {
        let _ = write!(md, "\n### {}\n\n", escape_md(category));
        match defect_table(records, category) {
            Some(table) => md.push_str(&table),
            None => md.push_str("No per-defect results.\n"),
        }
    }

    md.push_str(
        "\n## Runs\n\n| Category | Method | Teacher | Test images | Images/s | Image precision \
         | Image recall | Image threshold (F1-optimal) | Detector threshold | Threshold source |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in latest {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.3} | {:.3} | {} | {} | {} |",
            escape_md(&r.category),
            escape_md(method_title(&r.method)),
            escape_md(&r.teacher),
            r.evaluation.n_test,
            r.evaluation.images_per_second,
            r.evaluation.image_f1.precision,
            r.evaluation.image_f1.recall,
            format_value(r.evaluation.image_f1.threshold),
            format_value(r.detector_threshold),
            escape_md(&r.detector_threshold_source),
        );
    }

    md.push_str("\n## Plots\n");
    for job in jobs {
        if let Plot::Roc(category, _) = job.plot {
            let _ = write!(md, "\n### {}\n", escape_md(category));
        }
        let _ = write!(md, "\n![{}]({})\n", escape_md(&job.alt), job.file);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_record;

    #[test]
    fn sanitized_and_unique_names() {
        assert_eq!(sanitize_file_stem("metal nut/é"), "metal_nut__");
        assert_eq!(sanitize_file_stem("a-b_C9"), "a-b_C9");
        assert_eq!(sanitize_file_stem(""), "unnamed");
        let mut names = UniqueNames::default();
        assert_eq!(names.get("roc_a_b", "png"), "roc_a_b.png");
        assert_eq!(names.get("roc_a_b", "png"), "roc_a_b-2.png");
        assert_eq!(names.get("ROC_A_B", "png"), "ROC_A_B-3.png");
    }

    #[test]
    fn report_has_every_section_and_decodable_plots() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/report");
        let records = vec![
            sample_record("simple", "bottle", 2),
            sample_record("stfpm", "bottle", 0),
            sample_record("stfpm", "metal nut", 1),
            sample_record("stfpm", "metal nut", 4), // replaces the previous one
        ];
        let files = write_report(&records, &out).unwrap();
        assert_eq!(files.markdown, out.join("report.md"));
        let names: Vec<String> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                "roc_bottle.png",
                "scores_bottle_stfpm.png",
                "scores_bottle_simple.png",
                "roc_metal_nut.png",
                "scores_metal_nut_stfpm.png",
            ]
        );
        for p in &files.plots {
            let img = image::open(p).unwrap();
            assert_eq!((img.width(), img.height()), (640, 480), "{}", p.display());
        }
        let md = std::fs::read_to_string(&files.markdown).unwrap();
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            vec![
                "# stad evaluation report",
                "## Image AUROC",
                "## Pixel AUROC",
                "## AU-PRO (FPR ≤ 0.3)",
                "## Dice",
                "## Image F1",
                "## Per defect type (image AUROC)",
                "### bottle",
                "### metal nut",
                "## Runs",
                "## Plots",
                "### bottle",
                "### metal nut",
            ]
        );
        assert!(md.contains(
            "4 evaluation files, 2 categories (bottle, metal nut), 2 methods (STFPM, Simple Student)."
        ));
        assert!(md.contains("1 earlier file repeated"));
        for name in &names {
            assert!(md.contains(&format!("]({name})")), "{name} not linked");
        }
        assert!(md.contains("![metal nut · STFPM: image scores](scores_metal_nut_stfpm.png)"));
        // The later metal-nut record (seed 4) is the one reported.
        let dice = format!("| metal nut | **{:.3}** | – |", records[3].evaluation.dice);
        assert!(md.contains(&dice), "{dice} missing in\n{md}");
        assert!(md.contains("| Defect type | STFPM | Simple Student |"));
        // Only the report and the plots are in the folder: no temporary files.
        let mut listed: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        listed.sort();
        let mut expected = names.clone();
        expected.push("report.md".into());
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn no_records_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write_report(&[], dir.path()),
            Err(VizError::NoRecords)
        ));
    }
}
