//! A synthetic inspection data set, generated in memory from a seed.
//!
//! Two kinds of scenes, both meant to look like an industrial inspection task (see the PNGs
//! in `docs/synthetic/`):
//! - [`SyntheticKind::Object`]: a round glass bottle mouth seen from above on a dark
//!   background (like MVTec AD's `bottle`), with random position, size and lighting;
//! - [`SyntheticKind::Texture`]: a wood surface (growth rings, fine grain, domain warping),
//!   with random grain direction, phase and brightness.
//!
//! Defects ([`DefectKind`]) are pasted with exact masks (a pixel is in the mask when the
//! defect covers at least half of it):
//! - scratch: a thin curved line, bright on dark surfaces and dark on bright ones;
//! - hole: a dark blob with an irregular outline;
//! - stain: a translucent coloured blob (rust, oil, ink);
//! - missing part: a wedge broken off the bottle's rim (object), a chipped-off patch that
//!   shows the raw material (texture).
//!
//! Every image is a pure function of `(seed, split, index)`, so the data set is identical on
//! every run and platform, and generation runs in parallel.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{GrayImage, Luma, Rgb, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::sample::{Dataset, ImageSource, Label, MaskSource, Sample};
use crate::split::{SplitMix64, derive_seed};

/// The kind of scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyntheticKind {
    /// A bottle mouth seen from above (an object category).
    Object,
    /// A wood surface (a texture category).
    Texture,
}

impl SyntheticKind {
    /// `"object"` or `"texture"`.
    pub fn name(self) -> &'static str {
        match self {
            SyntheticKind::Object => "object",
            SyntheticKind::Texture => "texture",
        }
    }
}

/// A kind of pasted defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DefectKind {
    /// A thin curved line.
    Scratch,
    /// A dark irregular blob.
    Hole,
    /// A translucent coloured blob.
    Stain,
    /// A broken-off wedge (object) or chipped-off patch (texture).
    MissingPart,
}

impl DefectKind {
    /// All defect kinds.
    pub const ALL: [DefectKind; 4] = [
        DefectKind::Scratch,
        DefectKind::Hole,
        DefectKind::Stain,
        DefectKind::MissingPart,
    ];

    /// The defect type's name (`"scratch"`, `"hole"`, `"stain"`, `"missing_part"`).
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Scratch => "scratch",
            DefectKind::Hole => "hole",
            DefectKind::Stain => "stain",
            DefectKind::MissingPart => "missing_part",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticConfig {
    /// The seed: same seed, same data set.
    pub seed: u64,
    /// The scene.
    pub kind: SyntheticKind,
    /// Side of the square images in pixels (default 256).
    pub size: u32,
    /// Number of (nominal) training images (default 60).
    pub n_train: usize,
    /// Number of nominal test images (default 20).
    pub n_test_good: usize,
    /// Number of test images per defect kind (default 5).
    pub n_test_per_defect: usize,
    /// The defect kinds of the test set (default all four).
    pub defects: Vec<DefectKind>,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 0,
            kind: SyntheticKind::Object,
            size: 256,
            n_train: 60,
            n_test_good: 20,
            n_test_per_defect: 5,
            defects: DefectKind::ALL.to_vec(),
        }
    }
}

impl SyntheticConfig {
    /// A small configuration for fast tests: 64×64 images, 8 train, 4 good and 2 per defect.
    pub fn tiny(seed: u64, kind: SyntheticKind) -> Self {
        SyntheticConfig {
            seed,
            kind,
            size: 64,
            n_train: 8,
            n_test_good: 4,
            n_test_per_defect: 2,
            defects: DefectKind::ALL.to_vec(),
        }
    }
}

/// Generates the data set (in parallel; deterministic).
///
/// Train: `n_train` nominal images. Test: `n_test_good` nominal images, then
/// `n_test_per_defect` images of each defect kind in `defects` order. Streams: the image
/// `i` of split `s` uses seed `derive_seed(seed, s · 2³² + i)`, so adding images to one split
/// does not change the others.
pub fn generate(config: &SyntheticConfig) -> Dataset {
    let kind = config.kind;
    let (train, test): (Vec<_>, Vec<_>) = render_all(config)
        .into_iter()
        .map(|r| {
            let defect = r.defect_name();
            let name = format!(
                "synthetic/{}/{}/{defect}/{:03}",
                kind.name(),
                r.split,
                r.index
            );
            let is_train = r.split == "train";
            let sample = Sample {
                image: ImageSource::Memory {
                    name,
                    image: Arc::new(r.image),
                },
                label: if r.defect.is_some() {
                    Label::Anomalous
                } else {
                    Label::Nominal
                },
                defect: defect.to_string(),
                mask: match r.defect {
                    Some(_) => MaskSource::Memory(Arc::new(r.mask)),
                    None => MaskSource::Zero,
                },
            };
            (is_train, sample)
        })
        .partition(|(t, _)| *t);
    Dataset {
        name: format!("synthetic-{}", kind.name()),
        root: None,
        train: train.into_iter().map(|(_, s)| s).collect(),
        test: test.into_iter().map(|(_, s)| s).collect(),
        skipped: Vec::new(),
    }
}

/// One generated image: where it belongs, its pixels and its mask.
struct RenderedImage {
    split: &'static str,
    defect: Option<DefectKind>,
    index: usize,
    image: RgbImage,
    mask: GrayImage,
}

impl RenderedImage {
    fn defect_name(&self) -> &'static str {
        self.defect.map_or(crate::NOMINAL_DEFECT, DefectKind::name)
    }
}

/// Renders every image of the data set (in parallel), train first, then the test set.
fn render_all(config: &SyntheticConfig) -> Vec<RenderedImage> {
    let size = config.size.max(8);
    let mut jobs: Vec<(&'static str, u64, Option<DefectKind>, usize)> = Vec::new();
    for i in 0..config.n_train {
        jobs.push(("train", stream(config.seed, 0, i), None, i));
    }
    for i in 0..config.n_test_good {
        jobs.push(("test", stream(config.seed, 1, i), None, i));
    }
    for (d, &defect) in config.defects.iter().enumerate() {
        for i in 0..config.n_test_per_defect {
            jobs.push((
                "test",
                stream(config.seed, 2 + d as u64, i),
                Some(defect),
                i,
            ));
        }
    }
    jobs.into_par_iter()
        .map(|(split, seed, defect, index)| {
            let (image, mask) = render(config.kind, size, seed, defect);
            RenderedImage {
                split,
                defect,
                index,
                image,
                mask,
            }
        })
        .collect()
}

/// The file [`write_mvtec_layout`] writes last into a synthetic data set's folder: the
/// configuration it was generated from, as JSON.
pub const SYNTHETIC_MARKER: &str = "synthetic.json";

/// Generates the data set and writes it to `root` in MVTec AD's layout
/// (`train/good/000.png`, `test/<defect>/000.png`, `ground_truth/<defect>/000_mask.png`),
/// then [`SYNTHETIC_MARKER`] (last, so a folder without it is an interrupted write). Files are
/// written in parallel; existing files of the same names are replaced. Returns the data set
/// as read back from disk with [`crate::open_category`].
///
/// # Errors
/// [`DataError::Io`] when a folder or file cannot be written (the error names it).
pub fn write_mvtec_layout(config: &SyntheticConfig, root: &Path) -> Result<Dataset> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| DataError::Io { path, source }
    };
    let images = render_all(config);
    let image_path = |r: &RenderedImage| {
        root.join(r.split)
            .join(r.defect_name())
            .join(format!("{:03}.png", r.index))
    };
    let mask_path = |r: &RenderedImage| {
        root.join("ground_truth")
            .join(r.defect_name())
            .join(format!("{:03}_mask.png", r.index))
    };
    let mut dirs: Vec<PathBuf> = images
        .iter()
        .flat_map(|r| {
            let mask_dir = r
                .defect
                .map(|_| root.join("ground_truth").join(r.defect_name()));
            [image_path(r).parent().map(Path::to_path_buf), mask_dir]
        })
        .flatten()
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let png_error = |path: PathBuf| {
        move |e: image::ImageError| DataError::Io {
            path,
            source: std::io::Error::other(e),
        }
    };
    images.par_iter().try_for_each(|r| {
        let path = image_path(r);
        r.image
            .save_with_format(&path, image::ImageFormat::Png)
            .map_err(png_error(path))?;
        if r.defect.is_some() {
            let path = mask_path(r);
            r.mask
                .save_with_format(&path, image::ImageFormat::Png)
                .map_err(png_error(path))?;
        }
        Ok::<_, DataError>(())
    })?;
    let marker = root.join(SYNTHETIC_MARKER);
    let json = serde_json::to_vec_pretty(config).map_err(|e| DataError::Io {
        path: marker.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&marker, json).map_err(io(&marker))?;
    crate::open_category(root, &crate::MvtecOptions::default())
}

/// The configuration a synthetic data set folder was written from ([`SYNTHETIC_MARKER`]),
/// or `None` when the folder holds no marker.
///
/// # Errors
/// [`DataError::Io`] when the marker exists but cannot be read or parsed.
pub fn read_synthetic_marker(root: &Path) -> Result<Option<SyntheticConfig>> {
    let marker = root.join(SYNTHETIC_MARKER);
    if !marker.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&marker).map_err(|source| DataError::Io {
        path: marker.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DataError::Io {
            path: marker,
            source: std::io::Error::other(e),
        })
}

fn stream(seed: u64, split: u64, index: usize) -> u64 {
    derive_seed(seed, (split << 32) | index as u64)
}

/// Renders one image and its mask (all zero without a defect).
pub fn render(
    kind: SyntheticKind,
    size: u32,
    seed: u64,
    defect: Option<DefectKind>,
) -> (RgbImage, GrayImage) {
    let mut rng = SplitMix64::new(seed);
    let n = size as usize;
    let mut canvas = Canvas {
        n,
        px: vec![[0.0; 3]; n * n],
        mask: vec![0; n * n],
    };
    let scene = match kind {
        SyntheticKind::Object => Scene::bottle(&mut rng, n),
        SyntheticKind::Texture => Scene::wood(&mut rng),
    };
    let noise_seed = rng.next_u64();
    for y in 0..n {
        for x in 0..n {
            let mut c = scene.color(x as f32 + 0.5, y as f32 + 0.5, n);
            // Sensor noise.
            let g = (hash2(x as i32, y as i32, noise_seed) - 0.5) * 0.025;
            c.iter_mut().for_each(|v| *v += g);
            canvas.px[y * n + x] = c;
        }
    }
    if let Some(d) = defect {
        paste_defect(&mut canvas, &scene, d, &mut rng);
    }
    let mut img = RgbImage::new(size, size);
    let mut mask = GrayImage::new(size, size);
    for (i, (c, m)) in canvas.px.iter().zip(&canvas.mask).enumerate() {
        let (x, y) = ((i % n) as u32, (i / n) as u32);
        img.put_pixel(
            x,
            y,
            Rgb(c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)),
        );
        mask.put_pixel(x, y, Luma([if *m > 0 { 255 } else { 0 }]));
    }
    (img, mask)
}

/// Draws the mask's outline in red over the image (for inspection and documentation).
pub fn overlay_mask(image: &RgbImage, mask: &GrayImage) -> RgbImage {
    let mut out = image.clone();
    let (w, h) = mask.dimensions();
    let on = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < i64::from(w)
            && y < i64::from(h)
            && mask.get_pixel(x as u32, y as u32).0[0] > 0
    };
    for y in 0..h.min(image.height()) {
        for x in 0..w.min(image.width()) {
            let (xi, yi) = (i64::from(x), i64::from(y));
            if on(xi, yi) && !(on(xi - 1, yi) && on(xi + 1, yi) && on(xi, yi - 1) && on(xi, yi + 1))
            {
                out.put_pixel(x, y, Rgb([255, 32, 32]));
            }
        }
    }
    out
}

struct Canvas {
    n: usize,
    px: Vec<[f32; 3]>,
    mask: Vec<u8>,
}

impl Canvas {
    /// Blends `color` with opacity `strength · coverage(x, y)` over the pixels of a box; marks
    /// the mask where coverage ≥ 0.5.
    fn paint(
        &mut self,
        bbox: (f32, f32, f32, f32),
        coverage: impl Fn(f32, f32) -> f32,
        color: impl Fn(f32, f32, [f32; 3]) -> [f32; 3],
        strength: f32,
    ) {
        let n = self.n as f32;
        let x0 = bbox.0.floor().clamp(0.0, n) as usize;
        let y0 = bbox.1.floor().clamp(0.0, n) as usize;
        let x1 = bbox.2.ceil().clamp(0.0, n) as usize;
        let y1 = bbox.3.ceil().clamp(0.0, n) as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let a = coverage(fx, fy).clamp(0.0, 1.0);
                if a <= 0.0 {
                    continue;
                }
                let i = y * self.n + x;
                let target = color(fx, fy, self.px[i]);
                let t = a * strength;
                for (p, tc) in self.px[i].iter_mut().zip(target) {
                    *p += (tc - *p) * t;
                }
                if a >= 0.5 {
                    self.mask[i] = 1;
                }
            }
        }
    }
}

/// A nominal scene: its parameters and its colour at each point.
enum Scene {
    Bottle {
        cx: f32,
        cy: f32,
        radius: f32,
        light_angle: f32,
        tint: [f32; 3],
        seed: u64,
    },
    Wood {
        cos: f32,
        sin: f32,
        off_u: f32,
        off_v: f32,
        ring_freq: f32,
        brightness: f32,
        seed: u64,
    },
}

impl Scene {
    fn bottle(rng: &mut SplitMix64, n: usize) -> Scene {
        let n = n as f32;
        Scene::Bottle {
            cx: n * (0.5 + rng.range(-0.03, 0.03)),
            cy: n * (0.5 + rng.range(-0.03, 0.03)),
            radius: n * rng.range(0.36, 0.40),
            light_angle: rng.range(-0.6, 0.6) - 2.2,
            tint: [rng.range(0.80, 0.86), 1.0, rng.range(0.86, 0.92)],
            seed: rng.next_u64(),
        }
    }

    fn wood(rng: &mut SplitMix64) -> Scene {
        let a = rng.range(-0.15, 0.15);
        Scene::Wood {
            cos: a.cos(),
            sin: a.sin(),
            off_u: rng.range(0.0, 100.0),
            off_v: rng.range(0.0, 100.0),
            ring_freq: rng.range(5.0, 7.0),
            brightness: rng.range(0.95, 1.05),
            seed: rng.next_u64(),
        }
    }

    /// The background colour under a broken-off part (object) or the raw material (texture).
    fn under(&self, x: f32, y: f32, n: usize) -> [f32; 3] {
        match self {
            Scene::Bottle { seed, .. } => {
                let b = 0.05 + 0.04 * fbm(x / 24.0, y / 24.0, *seed ^ 7, 3);
                [b, b, b]
            }
            Scene::Wood { seed, .. } => {
                let t = fbm(x / n as f32 * 30.0, y / n as f32 * 30.0, *seed ^ 11, 3);
                [0.86 + 0.06 * t, 0.74 + 0.06 * t, 0.56 + 0.05 * t]
            }
        }
    }

    fn color(&self, x: f32, y: f32, n: usize) -> [f32; 3] {
        match *self {
            Scene::Bottle {
                cx,
                cy,
                radius,
                light_angle,
                tint,
                seed,
            } => {
                let (dx, dy) = (x - cx, y - cy);
                let r = (dx * dx + dy * dy).sqrt() / radius;
                let phi = dy.atan2(dx);
                let e = 1.0 / radius; // one pixel in units of the radius
                let s = |a: f32| smoothstep(a - e, a + e, r);
                let swirl = fbm(r * 12.0, phi * 2.0 + 10.0, seed, 3);
                let interior = 0.07 + 0.06 * (r / 0.42) + 0.03 * swirl;
                let inner_ring = 0.50 + 0.12 * (1.0 - ((r - 0.5) / 0.08).abs()).max(0.0);
                let glass = 0.25 + 0.17 * ((r - 0.58) / 0.28).clamp(0.0, 1.0) + 0.06 * swirl;
                let rim = 0.40 + 0.32 * (1.0 - ((r - 0.93) / 0.07).abs()).max(0.0);
                let mut v = interior;
                v += (inner_ring - v) * s(0.42);
                v += (glass - v) * s(0.58);
                v += (rim - v) * s(0.86);
                let light = 1.0 + 0.18 * (phi - light_angle).cos();
                let obj = tint.map(|t| v * light * t);
                let bg = self.under(x, y, n);
                let k = s(1.0);
                [0, 1, 2].map(|c| obj[c] + (bg[c] - obj[c]) * k)
            }
            Scene::Wood {
                cos,
                sin,
                off_u,
                off_v,
                ring_freq,
                brightness,
                seed,
            } => {
                let (px, py) = (x / n as f32, y / n as f32);
                let u = px * cos + py * sin + off_u;
                let v = -px * sin + py * cos + off_v;
                let warp = fbm(u * 2.0, v * 3.0, seed, 3);
                let rings = v * ring_freq + warp * 1.6;
                let t = (0.5 + 0.5 * (std::f32::consts::TAU * rings).sin()).powi(3);
                let grain = fbm(u * 5.0, v * 110.0, seed ^ 3, 3);
                let k = (0.55 * t + 0.45 * grain).clamp(0.0, 1.0);
                let light = [0.78, 0.58, 0.37];
                let dark = [0.50, 0.31, 0.16];
                [0, 1, 2].map(|c| (light[c] + (dark[c] - light[c]) * k) * brightness)
            }
        }
    }

    /// A random defect centre on the part of the image that shows the product.
    fn defect_center(&self, rng: &mut SplitMix64, n: usize) -> (f32, f32) {
        match *self {
            Scene::Bottle { cx, cy, radius, .. } => {
                let a = rng.range(0.0, std::f32::consts::TAU);
                let r = radius * rng.range(0.5, 0.88);
                (cx + r * a.cos(), cy + r * a.sin())
            }
            Scene::Wood { .. } => {
                let n = n as f32;
                (n * rng.range(0.15, 0.85), n * rng.range(0.15, 0.85))
            }
        }
    }
}

/// An irregular closed outline: radius `rho · (1 + Σ a_k cos(kφ + p_k))`, `k = 2..=5`, with
/// amplitudes falling off as `1/(k − 1)`.
struct Blob {
    cx: f32,
    cy: f32,
    rho: f32,
    harmonics: [(f32, f32); 4],
}

impl Blob {
    fn new(rng: &mut SplitMix64, (cx, cy): (f32, f32), rho: f32, roughness: f32) -> Blob {
        let harmonics = [0.0f32, 1.0, 2.0, 3.0].map(|k| {
            (
                rng.range(0.0, roughness) / (1.0 + k),
                rng.range(0.0, std::f32::consts::TAU),
            )
        });
        Blob {
            cx,
            cy,
            rho,
            harmonics,
        }
    }

    /// Signed distance estimate in pixels (positive inside).
    fn inside(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let d = (dx * dx + dy * dy).sqrt();
        let phi = dy.atan2(dx);
        let mut f = 1.0;
        for (k, (a, p)) in self.harmonics.iter().enumerate() {
            f += a * ((k as f32 + 2.0) * phi + p).cos();
        }
        self.rho * f - d
    }

    fn coverage(&self, x: f32, y: f32) -> f32 {
        (self.inside(x, y) + 0.5).clamp(0.0, 1.0)
    }

    fn bbox(&self) -> (f32, f32, f32, f32) {
        let r = self.rho * 1.6 + 2.0;
        (self.cx - r, self.cy - r, self.cx + r, self.cy + r)
    }
}

fn paste_defect(canvas: &mut Canvas, scene: &Scene, defect: DefectKind, rng: &mut SplitMix64) {
    let n = canvas.n;
    let nf = n as f32;
    match defect {
        DefectKind::Scratch => {
            let (cx, cy) = scene.defect_center(rng, n);
            let len = nf * rng.range(0.15, 0.3);
            let a = rng.range(0.0, std::f32::consts::TAU);
            let (ux, uy) = (a.cos() * len / 2.0, a.sin() * len / 2.0);
            let bend = rng.range(-0.25, 0.25) * len;
            let p0 = (cx - ux, cy - uy);
            let p2 = (cx + ux, cy + uy);
            let p1 = (cx - uy / (len / 2.0) * bend, cy + ux / (len / 2.0) * bend);
            let pts: Vec<(f32, f32)> = (0..=48)
                .map(|i| {
                    let t = i as f32 / 48.0;
                    let (a, b, c) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
                    (
                        a * p0.0 + b * p1.0 + c * p2.0,
                        a * p0.1 + b * p1.1 + c * p2.1,
                    )
                })
                .collect();
            let half_width = rng.range(1.0, 2.0) * nf / 256.0;
            let bright = {
                let c = canvas.px[(cy as usize).min(n - 1) * n + (cx as usize).min(n - 1)];
                (c[0] + c[1] + c[2]) / 3.0 < 0.45
            };
            // Glass scratches catch the light; wood scratches expose the raw material.
            let target = match scene {
                Scene::Wood { .. } => scene.under(cx, cy, n).map(|v| (v * 1.08).min(1.0)),
                Scene::Bottle { .. } if bright => [0.88, 0.9, 0.88],
                Scene::Bottle { .. } => [0.18, 0.13, 0.1],
            };
            let xs = pts.iter().map(|p| p.0);
            let ys = pts.iter().map(|p| p.1);
            let pad = half_width + 2.0;
            let bbox = (
                xs.clone().fold(f32::MAX, f32::min) - pad,
                ys.clone().fold(f32::MAX, f32::min) - pad,
                xs.fold(f32::MIN, f32::max) + pad,
                ys.fold(f32::MIN, f32::max) + pad,
            );
            canvas.paint(
                bbox,
                |x, y| half_width + 0.5 - polyline_distance(&pts, x, y),
                |_, _, _| target,
                0.85,
            );
        }
        DefectKind::Hole => {
            let c = scene.defect_center(rng, n);
            let rho = nf * rng.range(0.025, 0.05);
            let blob = Blob::new(rng, c, rho, 0.18);
            let rho = blob.rho;
            canvas.paint(
                blob.bbox(),
                |x, y| blob.coverage(x, y),
                |x, y, _| {
                    // Dark inside, a little lighter towards the broken edge.
                    let edge = (1.0 - blob.inside(x, y) / (0.35 * rho)).clamp(0.0, 1.0);
                    let v = 0.02 + 0.10 * edge;
                    [v, v * 0.95, v * 0.9]
                },
                1.0,
            );
        }
        DefectKind::Stain => {
            let c = scene.defect_center(rng, n);
            let rho = nf * rng.range(0.04, 0.08);
            let blob = Blob::new(rng, c, rho, 0.22);
            let colors = [[0.75, 0.35, 0.08], [0.15, 0.25, 0.7], [0.7, 0.6, 0.15]];
            let color = colors[rng.below(colors.len() as u64) as usize];
            let seed = rng.next_u64();
            canvas.paint(
                blob.bbox(),
                |x, y| blob.coverage(x, y),
                |x, y, under| {
                    let k = 0.55 + 0.35 * fbm(x / 6.0, y / 6.0, seed, 2);
                    [0, 1, 2].map(|i| under[i] + (color[i] * 1.1 - under[i]) * k)
                },
                1.0,
            );
        }
        DefectKind::MissingPart => match *scene {
            Scene::Bottle { cx, cy, radius, .. } => {
                let a0 = rng.range(0.0, std::f32::consts::TAU);
                let span = rng.range(0.35, 0.8);
                let r_in = rng.range(0.6, 0.8);
                let seed = rng.next_u64();
                // A jagged break: the inner radius and the side edges wobble.
                let inside = move |x: f32, y: f32| -> f32 {
                    let (dx, dy) = (x - cx, y - cy);
                    let r = (dx * dx + dy * dy).sqrt();
                    let mut phi = dy.atan2(dx) - a0;
                    phi = phi.rem_euclid(std::f32::consts::TAU);
                    if phi > std::f32::consts::PI {
                        phi -= std::f32::consts::TAU;
                    }
                    let jag = 0.08 * (fbm(phi * 6.0, 3.0, seed, 2) - 0.5);
                    let radial = r - radius * (r_in + jag);
                    let half = span / 2.0 + 0.1 * (fbm(r / radius * 8.0, 7.0, seed ^ 1, 2) - 0.5);
                    let angular = (half - phi.abs()) * r;
                    // Only where the bottle was (r < radius).
                    radial.min(angular).min(radius - r)
                };
                let pad = 2.0;
                canvas.paint(
                    (
                        cx - radius - pad,
                        cy - radius - pad,
                        cx + radius + pad,
                        cy + radius + pad,
                    ),
                    |x, y| inside(x, y) + 0.5,
                    |x, y, _| scene.under(x, y, n),
                    1.0,
                );
            }
            Scene::Wood { .. } => {
                let c = scene.defect_center(rng, n);
                let rho = nf * rng.range(0.05, 0.09);
                let blob = Blob::new(rng, c, rho, 0.25);
                canvas.paint(
                    blob.bbox(),
                    |x, y| blob.coverage(x, y),
                    |x, y, _| {
                        // Raw material, with a darker broken edge.
                        let edge = (1.0 - blob.inside(x, y) / 2.5).clamp(0.0, 1.0);
                        scene.under(x, y, n).map(|v| v * (1.0 - 0.45 * edge))
                    },
                    1.0,
                );
            }
        },
    }
}

fn polyline_distance(pts: &[(f32, f32)], x: f32, y: f32) -> f32 {
    pts.windows(2)
        .map(|w| {
            let ((ax, ay), (bx, by)) = (w[0], w[1]);
            let (vx, vy) = (bx - ax, by - ay);
            let l2 = vx * vx + vy * vy;
            let t = if l2 > 0.0 {
                (((x - ax) * vx + (y - ay) * vy) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (px, py) = (ax + t * vx - x, ay + t * vy - y);
            (px * px + py * py).sqrt()
        })
        .fold(f32::MAX, f32::min)
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A hash of integer lattice coordinates to `[0, 1)`.
fn hash2(x: i32, y: i32, seed: u64) -> f32 {
    let h = seed
        ^ u64::from(x as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(y as u32).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let mut g = SplitMix64::new(h);
    (g.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// Value noise in `[0, 1)`: smooth interpolation of lattice hashes.
fn value_noise(x: f32, y: f32, seed: u64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (ix, iy) = (x0 as i32, y0 as i32);
    let a = hash2(ix, iy, seed);
    let b = hash2(ix + 1, iy, seed);
    let c = hash2(ix, iy + 1, seed);
    let d = hash2(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Fractal (multi-octave) value noise in `[0, 1)`.
fn fbm(x: f32, y: f32, seed: u64, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp
            * value_noise(
                x * f,
                y * f,
                seed.wrapping_add(u64::from(o) * 0x51_7CC1_B727_220A),
            );
        norm += amp;
        amp *= 0.5;
        f *= 2.0;
    }
    sum / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_layout_reads_back_as_the_same_data_set() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("synthetic_object");
        let config = SyntheticConfig::tiny(3, SyntheticKind::Object);
        let on_disk = write_mvtec_layout(&config, &root).unwrap();
        let in_memory = generate(&config);
        assert_eq!(on_disk.train.len(), config.n_train);
        assert_eq!(on_disk.test.len(), in_memory.test.len());
        assert_eq!(read_synthetic_marker(&root).unwrap(), Some(config.clone()));
        // Same pixels and masks, same labels and defect types (the disk order is by folder
        // name, so samples are matched by `<defect>/<index>`).
        for disk in &on_disk.test {
            let path = disk.path().unwrap();
            let key = format!(
                "/{}/{}",
                disk.defect,
                path.file_stem().unwrap().to_string_lossy()
            );
            let mem = in_memory
                .test
                .iter()
                .find(|m| m.name().ends_with(&key))
                .unwrap();
            assert_eq!(disk.label, mem.label);
            assert_eq!(disk.defect, mem.defect);
            let ImageSource::Memory { image, .. } = &mem.image else {
                panic!("in memory")
            };
            let read = image::open(disk.path().unwrap()).unwrap().to_rgb8();
            assert_eq!(&read, &**image);
            if let MaskSource::Memory(mask) = &mem.mask {
                let read = image::open(disk.mask_path().unwrap()).unwrap().to_luma8();
                assert_eq!(&read, &**mask);
            } else {
                assert!(disk.mask_path().is_none());
            }
        }
        assert_eq!(read_synthetic_marker(dir.path()).unwrap(), None);
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        for kind in [SyntheticKind::Object, SyntheticKind::Texture] {
            let (a, am) = render(kind, 64, 5, Some(DefectKind::Hole));
            let (b, bm) = render(kind, 64, 5, Some(DefectKind::Hole));
            assert_eq!(a, b);
            assert_eq!(am, bm);
            let (c, _) = render(kind, 64, 6, Some(DefectKind::Hole));
            assert_ne!(a, c);
        }
    }

    #[test]
    fn masks_are_nonempty_for_defects_and_empty_otherwise() {
        for kind in [SyntheticKind::Object, SyntheticKind::Texture] {
            for seed in 0..6 {
                let (_, m) = render(kind, 128, seed, None);
                assert!(m.pixels().all(|p| p.0[0] == 0));
                for d in DefectKind::ALL {
                    let (_, m) = render(kind, 128, seed, Some(d));
                    let on = m.pixels().filter(|p| p.0[0] > 0).count();
                    assert!(on >= 20, "{kind:?} {d:?} seed {seed}: {on} mask pixels");
                    assert!(
                        on < 128 * 128 / 4,
                        "{kind:?} {d:?} seed {seed}: {on} mask pixels"
                    );
                }
            }
        }
    }

    #[test]
    fn defects_change_the_masked_pixels() {
        // The mask marks pixels the defect really changed: compare with the nominal render
        // of the same seed (the defect is drawn after the scene with the same generator).
        for kind in [SyntheticKind::Object, SyntheticKind::Texture] {
            for d in DefectKind::ALL {
                let (clean, _) = render(kind, 128, 3, None);
                let (bad, m) = render(kind, 128, 3, Some(d));
                let mut diff_in = 0.0;
                let mut count_in = 0;
                let mut diff_out = 0.0f32;
                for ((c, b), mk) in clean.pixels().zip(bad.pixels()).zip(m.pixels()) {
                    let diff: f32 = (0..3)
                        .map(|i| (f32::from(c.0[i]) - f32::from(b.0[i])).abs())
                        .sum();
                    if mk.0[0] > 0 {
                        diff_in += diff;
                        count_in += 1;
                    } else {
                        diff_out = diff_out.max(diff);
                    }
                }
                let mean_in = diff_in / count_in as f32;
                assert!(
                    mean_in > 40.0,
                    "{kind:?} {d:?}: mean change in mask {mean_in}"
                );
                // Outside the mask only the half-covered border pixels change.
                assert!(diff_out < 3.0 * 255.0, "{kind:?} {d:?}");
            }
        }
    }

    #[test]
    fn dataset_counts_and_labels() {
        let ds = generate(&SyntheticConfig::tiny(1, SyntheticKind::Texture));
        assert_eq!(ds.train.len(), 8);
        assert_eq!(ds.test.len(), 4 + 4 * 2);
        assert!(ds.train.iter().all(|s| !s.is_anomalous()));
        assert_eq!(
            ds.defect_types(),
            ["hole", "missing_part", "scratch", "stain"]
        );
        assert_eq!(ds.count_defect("good"), 4);
    }
}
