//! PNG plots of the evaluation records: image-level ROC curves per category and score
//! histograms per record. Each function returns the picture; writing it is separate
//! ([`crate::save_png_atomic`]).
//!
//! Plots are drawn with plotters into a pixel buffer, with the embedded DejaVu Sans
//! ([`crate::register_fonts`]), so they look the same on every machine.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use image::RgbImage;
use stad_metrics::MetricsError;

use crate::error::{Result, VizError};
use crate::fonts::register_fonts;
use crate::record::EvalRecord;
use crate::tables::{KNOWN_METHODS, method_title, order_methods};

/// Width of every plot, in pixels.
pub const PLOT_WIDTH: u32 = 640;
/// Height of every plot, in pixels.
pub const PLOT_HEIGHT: u32 = 480;
/// Number of bins of [`score_histogram`].
pub const HISTOGRAM_BINS: usize = 30;

/// Line colours of the methods, in column order (matplotlib's "tab10" without its gray).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Colour of the good images' bars.
pub const GOOD_COLOR: [u8; 3] = [31, 119, 180];
/// Colour of the defective images' bars.
pub const DEFECTIVE_COLOR: [u8; 3] = [214, 39, 40];
/// Colour of the chance line and of the threshold line.
const GUIDE: RGBColor = RGBColor(90, 90, 90);

/// Colour `index` of the plots' palette (matplotlib's "tab10" without its gray; it repeats
/// after nine colours). STFPM is drawn in colour 0 (blue), Ensemble in 1 (orange), Simple
/// Student in 2 (green), other methods from 3 on, alphabetically.
pub fn method_color(index: usize) -> [u8; 3] {
    let RGBColor(r, g, b) = PALETTE[index % PALETTE.len()];
    [r, g, b]
}

/// The palette index of each of `methods` (distinct, in column order): the known methods
/// keep theirs whether or not the others are present, the rest follow them.
fn color_indices(methods: &[String]) -> Vec<usize> {
    let mut next_other = KNOWN_METHODS.len();
    methods
        .iter()
        .map(
            |m| match KNOWN_METHODS.iter().position(|(key, _)| key == m) {
                Some(i) => i,
                None => {
                    next_other += 1;
                    next_other - 1
                }
            },
        )
        .collect()
}

/// Turns any plotters error into [`VizError::Plot`].
trait PlotResult<T> {
    fn plot(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> PlotResult<T> for std::result::Result<T, E> {
    fn plot(self) -> Result<T> {
        self.map_err(|e| VizError::Plot(e.to_string()))
    }
}

/// Draws a `PLOT_WIDTH × PLOT_HEIGHT` picture on a white background with `draw`.
fn render(
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<RgbImage> {
    register_fonts()?;
    let mut buf = vec![255u8; PLOT_WIDTH as usize * PLOT_HEIGHT as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut buf, (PLOT_WIDTH, PLOT_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).plot()?;
        draw(&root)?;
        root.present().plot()?;
    }
    RgbImage::from_raw(PLOT_WIDTH, PLOT_HEIGHT, buf)
        .ok_or_else(|| VizError::Plot("the pixel buffer has the wrong size".into()))
}

/// One method's line of a ROC plot.
struct RocLine {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// The ROC line of one record: its curve and legend, or only a legend saying why there is no
/// curve.
fn roc_line(record: &EvalRecord, color: RGBColor) -> RocLine {
    let scores: Vec<f64> = record.scores.iter().map(|s| s.score).collect();
    let labels: Vec<bool> = record.scores.iter().map(|s| s.anomalous).collect();
    let title = method_title(&record.method);
    match stad_metrics::roc_curve(&scores, &labels) {
        Ok(curve) => {
            let curve = curve.simplified();
            RocLine {
                label: format!("{title} (AUROC {:.3})", curve.area()),
                points: curve.fpr.into_iter().zip(curve.tpr).collect(),
                color,
            }
        }
        Err(e) => {
            let why = match e {
                MetricsError::NoPositives | MetricsError::NoNegatives => {
                    "needs good and defective images"
                }
                MetricsError::Empty => "no scores",
                _ => "invalid scores",
            };
            RocLine {
                label: format!("{title} (no ROC: {why})"),
                points: Vec::new(),
                color,
            }
        }
    }
}

/// The image-level ROC curves of one category: one line per record (method), computed from
/// its image scores, in [`crate::method_order`] with fixed colours per method
/// ([`method_color`]), legend
/// `"STFPM (AUROC 0.974)"`; a dashed chance diagonal; axes "false-positive rate" and
/// "true-positive rate"; title `"<category>: image ROC"`. `PLOT_WIDTH × PLOT_HEIGHT`
/// (640 × 480).
///
/// The records are drawn as given (pass one per method; [`crate::latest_records`] picks
/// them). A record whose ROC is undefined (only good or only defective images) gets a legend
/// entry saying so, and no curve.
///
/// # Errors
/// [`VizError::NoRecords`] when `records` is empty, [`VizError::Plot`] when drawing fails.
pub fn roc_plot(category: &str, records: &[&EvalRecord]) -> Result<RgbImage> {
    if records.is_empty() {
        return Err(VizError::NoRecords);
    }
    let order = order_methods(records.iter().map(|r| r.method.as_str()));
    let colors = color_indices(&order);
    let mut sorted: Vec<(usize, &EvalRecord)> = records
        .iter()
        .map(|r| (order.iter().position(|m| *m == r.method).unwrap_or(0), *r))
        .collect();
    // Stable: records of one method keep their given order.
    sorted.sort_by_key(|(rank, _)| *rank);
    let lines: Vec<RocLine> = sorted
        .iter()
        .map(|&(rank, r)| roc_line(r, PALETTE[colors[rank] % PALETTE.len()]))
        .collect();
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{category}: image ROC"), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .plot()?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc("true-positive rate")
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .bold_line_style(RGBColor(220, 220, 220))
            .light_line_style(RGBColor(245, 245, 245))
            .draw()
            .plot()?;
        let chance = GUIDE.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                chance,
            ))
            .plot()?
            .label("chance")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], chance));
        for line in &lines {
            let style = line.color.stroke_width(3);
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))
                .plot()?
                .label(line.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 14))
            .draw()
            .plot()
    })
}

/// Equal-width bins over `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bins {
    lo: f64,
    width: f64,
    count: usize,
}

impl Bins {
    /// `count` bins spanning the finite values `[lo, hi]`. A degenerate range (all values
    /// equal) is widened to `lo ± 5 %` of `|lo|` (`± 0.5` around 0).
    fn new(lo: f64, hi: f64, count: usize) -> Result<Self> {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
            (lo - pad, hi + pad)
        };
        let width = (hi - lo) / count as f64;
        if !(width.is_finite() && width > 0.0) {
            return Err(VizError::Plot(format!(
                "cannot bin scores over [{lo}, {hi}]"
            )));
        }
        Ok(Bins { lo, width, count })
    }

    /// The left edge of bin `k` (`k = count` gives the right end).
    fn edge(&self, k: usize) -> f64 {
        self.lo + k as f64 * self.width
    }

    /// The number of `values` in each bin; the right end belongs to the last bin.
    fn counts(&self, values: &[f64]) -> Vec<u32> {
        let mut counts = vec![0u32; self.count];
        for &v in values {
            let k = ((v - self.lo) / self.width).floor();
            let k = if k.is_nan() || k < 0.0 {
                0
            } else {
                (k as usize).min(self.count - 1)
            };
            counts[k] += 1;
        }
        counts
    }
}

/// The histogram of one record's image scores: good and defective images side by side in
/// each of [`HISTOGRAM_BINS`] shared bins over `[min, max]` of all scores (blue
/// [`GOOD_COLOR`], red [`DEFECTIVE_COLOR`]), a dashed vertical line at the record's
/// `detector_threshold` labelled "threshold", title `"<category> · <method>: image scores"`.
/// `PLOT_WIDTH × PLOT_HEIGHT` (640 × 480).
///
/// The x axis covers the bins and the threshold. When every score is equal the bins span
/// `score ± 5 %` (`± 0.5` around 0). Non-finite scores are left out, as is a non-finite
/// threshold.
///
/// # Errors
/// [`VizError::Plot`] when the record has no finite score, or drawing fails.
pub fn score_histogram(record: &EvalRecord) -> Result<RgbImage> {
    let finite = record.scores.iter().filter(|s| s.score.is_finite());
    let good: Vec<f64> = finite
        .clone()
        .filter(|s| !s.anomalous)
        .map(|s| s.score)
        .collect();
    let defective: Vec<f64> = finite.filter(|s| s.anomalous).map(|s| s.score).collect();
    let all = good.iter().chain(&defective);
    let lo = all.clone().copied().fold(f64::INFINITY, f64::min);
    let hi = all.copied().fold(f64::NEG_INFINITY, f64::max);
    let title = format!(
        "{} · {}: image scores",
        record.category,
        method_title(&record.method)
    );
    if good.is_empty() && defective.is_empty() {
        return Err(VizError::Plot(format!(
            "{title}: no finite image score to plot"
        )));
    }
    let bins = Bins::new(lo, hi, HISTOGRAM_BINS)?;
    let good_counts = bins.counts(&good);
    let defective_counts = bins.counts(&defective);
    let max_count = good_counts
        .iter()
        .chain(&defective_counts)
        .copied()
        .max()
        .unwrap_or(0);
    // Head room for the legend and the threshold label.
    let y_max = (f64::from(max_count) * 1.4).ceil() as u32 + 1;
    let threshold = Some(record.detector_threshold).filter(|t| t.is_finite());
    let (mut x_lo, mut x_hi) = (bins.edge(0), bins.edge(bins.count));
    if let Some(t) = threshold {
        x_lo = x_lo.min(t);
        x_hi = x_hi.max(t);
    }
    let pad = (x_hi - x_lo) * 0.03;
    let (x_lo, x_hi) = (x_lo - pad, x_hi + pad);
    let [gr, gg, gb] = GOOD_COLOR;
    let [dr, dg, db] = DEFECTIVE_COLOR;
    let (good_color, defective_color) = (RGBColor(gr, gg, gb), RGBColor(dr, dg, db));
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, 0u32..y_max)
            .plot()?;
        chart
            .configure_mesh()
            .x_desc("image score")
            .y_desc("images")
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| format_tick(*v, x_hi - x_lo))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .disable_x_mesh()
            .bold_line_style(RGBColor(220, 220, 220))
            .light_line_style(RGBColor(245, 245, 245))
            .draw()
            .plot()?;
        for (counts, color, offset, name, n) in [
            (&good_counts, good_color, 0.05, "good", good.len()),
            (
                &defective_counts,
                defective_color,
                0.5,
                "defective",
                defective.len(),
            ),
        ] {
            let bars = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(k, &c)| {
                    let x0 = bins.edge(k) + offset * bins.width;
                    Rectangle::new([(x0, 0), (x0 + 0.45 * bins.width, c)], color.filled())
                });
            chart
                .draw_series(bars)
                .plot()?
                .label(format!("{name} ({n})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        if let Some(t) = threshold {
            let style = BLACK.stroke_width(2);
            chart
                .draw_series(std::iter::once(DashedPathElement::new(
                    vec![(t, 0), (t, y_max)],
                    8,
                    5,
                    style,
                )))
                .plot()?
                .label(format!("threshold {}", format_tick(t, 0.0)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            // The label sits at the top of the line, on the side with more room.
            let right_half = t > (x_lo + x_hi) / 2.0;
            let (dx, hpos) = if right_half {
                (-6, HPos::Right)
            } else {
                (6, HPos::Left)
            };
            let font = ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(hpos, VPos::Top));
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((t, y_max)) + Text::new("threshold", (dx, 4), font),
                ))
                .plot()?;
        }
        // The legend goes to the top corner away from the threshold's label.
        let legend_left = threshold.is_some_and(|t| t > (x_lo + x_hi) / 2.0);
        chart
            .configure_series_labels()
            .position(if legend_left {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::UpperRight
            })
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 14))
            .draw()
            .plot()
    })
}

/// A short axis label for a score: 3 significant decimals, scientific for very small or large
/// magnitudes. Values within `span · 1e-9` of 0 (rounding noise of an axis spanning `span`)
/// are shown as 0.
fn format_tick(v: f64, span: f64) -> String {
    let v = if v.abs() <= span.abs() * 1e-9 { 0.0 } else { v };
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_record;

    fn count_color(img: &RgbImage, color: [u8; 3]) -> usize {
        img.pixels().filter(|p| p.0 == color).count()
    }

    fn distinct_colors(img: &RgbImage) -> usize {
        img.pixels()
            .map(|p| p.0)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    #[test]
    fn roc_plot_draws_each_method_in_its_colour() {
        let a = sample_record("stfpm", "bottle", 0);
        let mut b = sample_record("zeta", "bottle", 3);
        // A different ranking, so that zeta's curve does not hide STFPM's.
        b.scores[7].score = 0.0;
        let img = roc_plot("bottle", &[&b, &a]).unwrap();
        assert_eq!(img.dimensions(), (640, 480));
        assert!(distinct_colors(&img) > 10);
        // STFPM is blue, zeta (the first other method) purple, whatever the order given.
        assert!(count_color(&img, method_color(0)) > 300, "stfpm curve");
        assert!(count_color(&img, method_color(4)) > 300, "zeta curve");
        assert_eq!(count_color(&img, method_color(1)), 0, "no ensemble");
        assert_eq!(count_color(&img, method_color(2)), 0, "no simple student");
        assert_eq!(
            count_color(&img, method_color(3)),
            0,
            "no decoupled student"
        );
        // The background is white.
        assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
    }

    #[test]
    fn roc_plot_of_one_class_has_no_curve_and_empty_input_is_an_error() {
        let mut r = sample_record("stfpm", "bottle", 0);
        r.scores.retain(|s| !s.anomalous);
        r.evaluation.n_test = r.scores.len();
        let img = roc_plot("bottle", &[&r]).unwrap();
        assert_eq!(img.dimensions(), (640, 480));
        // Only the legend's sample line has the method's colour.
        let n = count_color(&img, method_color(0));
        assert!(n > 0 && n < 150, "{n}");
        assert!(matches!(roc_plot("bottle", &[]), Err(VizError::NoRecords)));
    }

    #[test]
    fn histogram_shows_both_classes_and_the_threshold() {
        let r = sample_record("ensemble", "cable", 0);
        let img = score_histogram(&r).unwrap();
        assert_eq!(img.dimensions(), (640, 480));
        assert!(count_color(&img, GOOD_COLOR) > 500);
        assert!(count_color(&img, DEFECTIVE_COLOR) > 500);
        assert!(
            count_color(&img, [0, 0, 0]) > 100,
            "threshold line and text"
        );
    }

    #[test]
    fn histogram_of_equal_scores_or_far_threshold_does_not_panic() {
        let mut r = sample_record("simple", "cable", 0);
        for s in &mut r.scores {
            s.score = 0.0;
        }
        r.detector_threshold = 0.3;
        assert!(score_histogram(&r).is_ok());
        r.detector_threshold = 1e6;
        let img = score_histogram(&r).unwrap();
        assert_eq!(img.dimensions(), (640, 480));
        assert!(count_color(&img, GOOD_COLOR) > 100);
        r.detector_threshold = f64::NAN;
        assert!(score_histogram(&r).is_ok());
        for s in &mut r.scores {
            s.score = f64::NAN;
        }
        assert!(matches!(score_histogram(&r), Err(VizError::Plot(_))));
    }

    #[test]
    fn known_methods_keep_their_colours() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            color_indices(&names(&["simple", "alpha", "zeta"])),
            vec![2, 4, 5]
        );
        assert_eq!(
            color_indices(&names(&["stfpm", "ensemble", "simple", "decoupled"])),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn bins_count_every_value_once() {
        let bins = Bins::new(0.0, 3.0, 3).unwrap();
        assert_eq!(bins.counts(&[0.0, 0.5, 1.0, 2.999, 3.0]), vec![2, 1, 2]);
        assert_eq!(bins.edge(3), 3.0);
        let flat = Bins::new(2.0, 2.0, 4).unwrap();
        assert!((flat.lo - 1.9).abs() < 1e-12 && (flat.edge(4) - 2.1).abs() < 1e-12);
        assert_eq!(flat.counts(&[2.0, 2.0]).iter().sum::<u32>(), 2);
        let zero = Bins::new(0.0, 0.0, 2).unwrap();
        assert_eq!((zero.lo, zero.edge(2)), (-0.5, 0.5));
        assert!(Bins::new(-f64::MAX, f64::MAX, 2).is_err());
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(format_tick(0.12345, 1.0), "0.123");
        assert_eq!(format_tick(12.345, 1.0), "12.35");
        assert_eq!(format_tick(1234.4, 1.0), "1234");
        assert_eq!(format_tick(0.0, 1.0), "0.000");
        assert_eq!(format_tick(1.5e-5, 1.0), "1.50e-5");
        assert_eq!(format_tick(-5.55e-17, 1.0), "0.000");
        assert_eq!(format_tick(-5.55e-17, 0.0), "-5.55e-17");
    }
}
