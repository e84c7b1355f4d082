//! Result tables in Markdown, in the thesis' shape: one row per category, one column per
//! method, the best value of each row in bold.

use std::collections::{BTreeMap, BTreeSet};

use crate::record::EvalRecord;

/// The methods known to the thesis, in column order, with their headings.
pub(crate) const KNOWN_METHODS: [(&str, &str); 4] = [
    ("stfpm", "STFPM"),
    ("ensemble", "Ensemble"),
    ("simple", "Simple Student"),
    ("decoupled", "Decoupled Student"),
];

/// The placeholder of a missing (category, method) pair.
pub const MISSING: &str = "–";

/// A per-category metric of an [`EvalRecord`] that the tables and the report show.
///
/// Every one of them is "higher is better".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// [`Evaluation::image_auroc`](stad_metrics::Evaluation::image_auroc).
    ImageAuroc,
    /// [`Evaluation::pixel_auroc`](stad_metrics::Evaluation::pixel_auroc).
    PixelAuroc,
    /// [`Evaluation::au_pro`](stad_metrics::Evaluation::au_pro) (integrated to FPR 0.3).
    AuPro,
    /// [`Evaluation::dice`](stad_metrics::Evaluation::dice) (global).
    Dice,
    /// The F1 of [`Evaluation::image_f1`](stad_metrics::Evaluation::image_f1).
    ImageF1,
}

impl Metric {
    /// Every metric, in the report's order.
    pub const ALL: [Metric; 5] = [
        Metric::ImageAuroc,
        Metric::PixelAuroc,
        Metric::AuPro,
        Metric::Dice,
        Metric::ImageF1,
    ];

    /// The metric's title, as the report's section headings use it (e.g. `"Image AUROC"`,
    /// `"AU-PRO (FPR ≤ 0.3)"`).
    pub fn title(self) -> &'static str {
        match self {
            Metric::ImageAuroc => "Image AUROC",
            Metric::PixelAuroc => "Pixel AUROC",
            Metric::AuPro => "AU-PRO (FPR ≤ 0.3)",
            Metric::Dice => "Dice",
            Metric::ImageF1 => "Image F1",
        }
    }

    /// The metric's value in `r`.
    pub fn get(self, r: &EvalRecord) -> f64 {
        match self {
            Metric::ImageAuroc => r.evaluation.image_auroc,
            Metric::PixelAuroc => r.evaluation.pixel_auroc,
            Metric::AuPro => r.evaluation.au_pro,
            Metric::Dice => r.evaluation.dice,
            Metric::ImageF1 => r.evaluation.image_f1.f1,
        }
    }
}

/// The column heading of a method: `"STFPM"`, `"Ensemble"`, `"Simple Student"` for `"stfpm"`,
/// `"ensemble"`, `"simple"`, otherwise the method's own name.
pub fn method_title(method: &str) -> &str {
    KNOWN_METHODS
        .iter()
        .find(|(key, _)| *key == method)
        .map_or(method, |(_, title)| title)
}

/// The distinct methods of `records` in column order: `"stfpm"`, `"ensemble"`, `"simple"`
/// (those present), then the others alphabetically.
pub fn method_order(records: &[EvalRecord]) -> Vec<String> {
    order_methods(records.iter().map(|r| r.method.as_str()))
}

/// The distinct `methods` in column order (see [`method_order`]).
pub(crate) fn order_methods<'a>(methods: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let present: BTreeSet<&str> = methods.into_iter().collect();
    let known = KNOWN_METHODS
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| present.contains(key));
    let others = present
        .iter()
        .copied()
        .filter(|m| KNOWN_METHODS.iter().all(|(key, _)| key != m));
    known.chain(others).map(str::to_owned).collect()
}

/// The records with one per (category, method) pair, the later of duplicates winning, sorted
/// by category (alphabetically) and then by method in [`method_order`].
pub fn latest_records(records: &[EvalRecord]) -> Vec<&EvalRecord> {
    let order = method_order(records);
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap_or(order.len());
    let mut latest: BTreeMap<(&str, usize), &EvalRecord> = BTreeMap::new();
    for r in records {
        latest.insert((r.category.as_str(), rank(&r.method)), r);
    }
    latest.into_values().collect()
}

/// The distinct categories of `records`, sorted.
pub(crate) fn categories<'a>(records: &[&'a EvalRecord]) -> Vec<&'a str> {
    records
        .iter()
        .map(|r| r.category.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Escapes the characters that would break a Markdown table cell (`|`, `\\`) or start
/// emphasis, code, links or HTML. An underscore between two letters or digits (`metal_nut`)
/// cannot start emphasis and is left as it is.
pub(crate) fn escape_md(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let intraword = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let escape = match c {
            '_' => !(intraword(i.checked_sub(1)) && intraword(Some(i + 1))),
            '|' | '\\' | '*' | '`' | '[' | ']' | '<' | '>' => true,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats one row of a table whose columns hold `values` (`None` = missing): each value with
/// three decimals, the best ones in bold.
///
/// "Best" is the highest value as displayed (rounded to three decimals), so that equal-looking
/// values are all bold; non-finite values are shown as they are and never bold.
fn value_cells(values: &[Option<f64>]) -> Vec<String> {
    let shown: Vec<Option<String>> = values
        .iter()
        .map(|v| v.map(|v| format!("{v:.3}")))
        .collect();
    let best = values
        .iter()
        .zip(&shown)
        .filter_map(|(v, s)| v.filter(|v| v.is_finite()).and(s.as_ref()))
        .filter_map(|s| s.parse::<f64>().ok())
        .fold(f64::NEG_INFINITY, f64::max);
    shown
        .into_iter()
        .zip(values)
        .map(|(s, v)| match (s, v) {
            (Some(s), Some(v)) if v.is_finite() && s.parse::<f64>().ok() == Some(best) => {
                format!("**{s}**")
            }
            (Some(s), _) => s,
            (None, _) => MISSING.to_owned(),
        })
        .collect()
}

/// Renders a Markdown table: a header row, the alignment row and the body rows.
fn render_table(corner: &str, headings: &[String], rows: &[(String, Vec<String>)]) -> String {
    let mut out = format!("| {corner} |");
    for h in headings {
        out.push_str(&format!(" {h} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(headings.len()));
    out.push('\n');
    for (label, cells) in rows {
        out.push_str(&format!("| {label} |"));
        for c in cells {
            out.push_str(&format!(" {c} |"));
        }
        out.push('\n');
    }
    out
}

/// A Markdown table of `metric`: one row per category, one column per method.
///
/// * Columns: `"stfpm"`, `"ensemble"`, `"simple"` first (headed `STFPM`, `Ensemble`,
///   `Simple Student`, when present), then the other methods alphabetically, headed by their
///   name ([`method_order`]).
/// * Rows: the categories alphabetically, then a `**mean**` row whose cell in each column is
///   the mean over the categories that have a (finite) value in that column; there is no mean
///   row when there is only one category.
/// * Cells: the value with three decimals, the best (highest, as displayed) of each row in bold
///   (ties: all bold), `–` when the (category, method) pair has no record.
///
/// When the same (category, method) pair appears more than once, the later record wins.
/// Category and method names are escaped for Markdown. No records give a header-only table.
pub fn metric_table(records: &[EvalRecord], metric: Metric) -> String {
    let methods = method_order(records);
    let latest = latest_records(records);
    let categories = categories(&latest);
    let value = |category: &str, method: &str| {
        latest
            .iter()
            .find(|r| r.category == category && r.method == method)
            .map(|r| metric.get(r))
    };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for c in &categories {
        let values: Vec<Option<f64>> = methods.iter().map(|m| value(c, m)).collect();
        rows.push((escape_md(c), value_cells(&values)));
    }
    if categories.len() > 1 {
        let means: Vec<Option<f64>> = methods
            .iter()
            .map(|m| {
                let vals: Vec<f64> = categories
                    .iter()
                    .filter_map(|c| value(c, m))
                    .filter(|v| v.is_finite())
                    .collect();
                (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
            })
            .collect();
        rows.push(("**mean**".to_owned(), value_cells(&means)));
    }
    let headings: Vec<String> = methods.iter().map(|m| escape_md(method_title(m))).collect();
    render_table("Category", &headings, &rows)
}

/// A Markdown table of the per-defect-type image AUROC of one category: one row per defect
/// type (alphabetically, over all methods), one column per method ([`method_order`]), cells as
/// in [`metric_table`] (three decimals, best of each row in bold, `–` when missing), no mean
/// row. The later of duplicate (category, method) records wins. `None` when no record of
/// `category` has a per-defect result.
pub fn defect_table(records: &[EvalRecord], category: &str) -> Option<String> {
    let latest: Vec<&EvalRecord> = latest_records(records)
        .into_iter()
        .filter(|r| r.category == category)
        .collect();
    // One record per method, already in column order.
    let methods: Vec<&str> = latest.iter().map(|r| r.method.as_str()).collect();
    let defects: BTreeSet<&str> = latest
        .iter()
        .flat_map(|r| {
            r.evaluation
                .per_defect
                .iter()
                .map(|d| d.defect_type.as_str())
        })
        .collect();
    if defects.is_empty() {
        return None;
    }
    let rows: Vec<(String, Vec<String>)> = defects
        .iter()
        .map(|d| {
            let values: Vec<Option<f64>> = latest
                .iter()
                .map(|r| {
                    r.evaluation
                        .per_defect
                        .iter()
                        .rev()
                        .find(|x| x.defect_type == *d)
                        .map(|x| x.auroc)
                })
                .collect();
            (escape_md(d), value_cells(&values))
        })
        .collect();
    let headings: Vec<String> = methods.iter().map(|m| escape_md(method_title(m))).collect();
    Some(render_table("Defect type", &headings, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_record;

    fn with(method: &str, category: &str, image_auroc: f64) -> EvalRecord {
        let mut r = sample_record(method, category, 0);
        r.evaluation.image_auroc = image_auroc;
        r
    }

    fn lines(table: &str) -> Vec<&str> {
        table.lines().collect()
    }

    #[test]
    fn column_order_headings_bold_dash_and_mean() {
        let records = vec![
            with("zeta", "bottle", 0.5),
            with("simple", "bottle", 0.9),
            with("stfpm", "bottle", 0.95),
            with("alpha", "cable", 0.7),
            with("stfpm", "cable", 0.8),
            with("ensemble", "cable", 0.85),
        ];
        let t = metric_table(&records, Metric::ImageAuroc);
        assert_eq!(
            lines(&t),
            vec![
                "| Category | STFPM | Ensemble | Simple Student | alpha | zeta |",
                "|---|---:|---:|---:|---:|---:|",
                "| bottle | **0.950** | – | 0.900 | – | 0.500 |",
                "| cable | 0.800 | **0.850** | – | 0.700 | – |",
                "| **mean** | 0.875 | 0.850 | **0.900** | 0.700 | 0.500 |",
            ]
        );
    }

    #[test]
    fn mean_row_bold_is_its_own_best() {
        let records = vec![
            with("stfpm", "a", 0.9),
            with("simple", "a", 0.8),
            with("stfpm", "b", 0.5),
            with("simple", "b", 0.8),
        ];
        let t = metric_table(&records, Metric::ImageAuroc);
        assert_eq!(lines(&t)[4], "| **mean** | 0.700 | **0.800** |");
    }

    #[test]
    fn ties_are_all_bold_and_single_category_has_no_mean() {
        let records = vec![
            with("stfpm", "bottle", 0.9744),
            with("ensemble", "bottle", 0.9736),
            with("simple", "bottle", 0.9),
        ];
        let t = metric_table(&records, Metric::ImageAuroc);
        assert_eq!(
            lines(&t),
            vec![
                "| Category | STFPM | Ensemble | Simple Student |",
                "|---|---:|---:|---:|",
                "| bottle | **0.974** | **0.974** | 0.900 |",
            ]
        );
    }

    #[test]
    fn later_duplicate_wins_and_metric_selects_the_field() {
        let mut first = with("stfpm", "bottle", 0.1);
        first.evaluation.dice = 0.11;
        let mut second = with("stfpm", "bottle", 0.2);
        second.evaluation.dice = 0.22;
        let records = vec![first, second];
        assert!(metric_table(&records, Metric::ImageAuroc).contains("| bottle | **0.200** |"));
        assert!(metric_table(&records, Metric::Dice).contains("| bottle | **0.220** |"));
        let r = &records[0];
        let got: Vec<f64> = Metric::ALL.iter().map(|m| m.get(r)).collect();
        assert_eq!(
            got,
            vec![
                r.evaluation.image_auroc,
                r.evaluation.pixel_auroc,
                r.evaluation.au_pro,
                r.evaluation.dice,
                r.evaluation.image_f1.f1,
            ]
        );
    }

    #[test]
    fn names_are_escaped() {
        let t = metric_table(&[with("a|b", "_x*", 0.5)], Metric::ImageAuroc);
        assert!(t.contains("| a\\|b |"), "{t}");
        assert!(t.contains("| \\_x\\* |"), "{t}");
        assert_eq!(escape_md("metal_nut"), "metal_nut");
        assert_eq!(escape_md("a_ b"), "a\\_ b");
    }

    #[test]
    fn no_records_give_a_header_only_table() {
        assert_eq!(metric_table(&[], Metric::Dice), "| Category |\n|---|\n");
    }

    #[test]
    fn defect_table_rows_are_defect_types() {
        let mut a = sample_record("simple", "bottle", 0);
        let b = sample_record("stfpm", "bottle", 5);
        a.evaluation.per_defect.retain(|d| d.defect_type == "crack");
        let records = vec![a.clone(), b.clone(), sample_record("stfpm", "cable", 0)];
        let t = defect_table(&records, "bottle").unwrap();
        let l = lines(&t);
        assert_eq!(l[0], "| Defect type | STFPM | Simple Student |");
        let crack_b = b
            .evaluation
            .per_defect
            .iter()
            .find(|d| d.defect_type == "crack")
            .unwrap();
        let crack_a = a.evaluation.per_defect[0].auroc;
        assert!(crack_a > crack_b.auroc);
        assert_eq!(
            l[2],
            format!("| crack | {:.3} | **{:.3}** |", crack_b.auroc, crack_a)
        );
        assert!(
            l[3].starts_with("| scratch | **") && l[3].ends_with(" | – |"),
            "{}",
            l[3]
        );
        assert_eq!(l.len(), 4);
        assert!(defect_table(&records, "absent").is_none());
    }
}
