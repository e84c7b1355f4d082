//! Visual outputs of stad: result tables in Markdown, ROC and score-histogram plots, the
//! results report, and heat-map overlays of anomaly maps.
//!
//! | module | what |
//! |---|---|
//! | [`record`] | [`EvalRecord`], the JSON that `stad eval --json FILE` writes; [`read_records`] (validated), [`write_record`] (atomic) |
//! | [`tables`] | [`metric_table`]: one row per category, one column per method (STFPM, Ensemble, Simple Student, Decoupled Student, then others), best in bold, mean row; [`defect_table`] |
//! | [`plots`] | [`roc_plot`] (image ROC per category), [`score_histogram`] (good vs defective scores and the detector threshold), 640 × 480 |
//! | [`report`] | [`write_report`]: `report.md` with every table, and the PNG plots it embeds |
//! | [`benchmark`] | the thesis' published table ([`published_results`]) beside stad's values: [`comparison_rows`], [`write_comparison`] (`benchmark.md`, `.json`, `.csv`) |
//! | [`overlay`] | [`heatmap_overlay`], [`draw_outline`], [`mask_image`], [`save_png_atomic`] |
//!
//! # Overlays: colour map and normalisation
//! The colour map is **jet** ([`colormap`]: dark blue → cyan → green → yellow → dark red),
//! the map anomaly-detection papers use for their figures. An anomaly value `v` is drawn at
//! `t = v / (2 · threshold)`, so the detector's threshold is always the middle of the colour
//! map (green) and overlays of different images share one scale; without a usable threshold
//! (not finite or `≤ 0`) a map is normalised by its own maximum. Non-finite values are drawn
//! dark red (`t = 1`).
//!
//! # Plots and fonts
//! Plots are drawn by plotters into a pixel buffer and encoded as PNG with `image`. Their
//! text uses DejaVu Sans, compiled into the crate and registered once per process with
//! plotters' font table ([`register_fonts`], called by every plotting function), so no system
//! font is needed. All functions are thread-safe; [`write_report`] renders its plots in
//! parallel (rayon).
//!
//! # Files
//! Every file is written atomically (a temporary file in the same folder, then a rename), so
//! an interrupted run never leaves a truncated JSON, PNG or report.
//!
//! ```
//! use stad_viz::{colormap, heatmap_overlay};
//!
//! let image = image::RgbImage::new(2, 1);
//! // Threshold 0.5: a value of 0.5 is the middle of the colour map, 0 is its start.
//! let overlay = heatmap_overlay(&image, &[0.5, 0.0], 0.5, 1.0)?;
//! assert_eq!(overlay.get_pixel(0, 0).0, colormap(0.5));
//! assert_eq!(overlay.get_pixel(1, 0).0, [0, 0, 128]);
//! # Ok::<(), stad_viz::VizError>(())
//! ```

pub mod benchmark;
pub mod error;
mod fonts;
mod fsutil;
pub mod overlay;
pub mod plots;
pub mod record;
pub mod report;
pub mod tables;

pub use benchmark::{
    ComparisonFiles, ComparisonRow, PUBLISHED_SOURCE, PairOutcome, PairStatus, PublishedResult,
    comparison_csv, comparison_markdown, comparison_rows, published_results, write_comparison,
};
pub use error::{Result, VizError};
pub use fonts::register_fonts;
pub use overlay::{colormap, draw_outline, heatmap_overlay, mask_image, save_png_atomic};
pub use plots::{
    DEFECTIVE_COLOR, GOOD_COLOR, HISTOGRAM_BINS, PLOT_HEIGHT, PLOT_WIDTH, method_color, roc_plot,
    score_histogram,
};
pub use record::{EvalRecord, ImageScore, read_records, write_record};
pub use report::{ReportFiles, sanitize_file_stem, write_report};
pub use tables::{
    MISSING, Metric, defect_table, latest_records, method_order, method_title, metric_table,
};
