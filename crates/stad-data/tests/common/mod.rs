//! Helpers of the integration tests: tiny MVTec-layout folders in temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage};

/// A `w × h` RGB image with a gradient (so resizing has something to do).
pub fn rgb(w: u32, h: u32, seed: u8) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([
            (x * 7 + u32::from(seed)) as u8,
            (y * 5) as u8,
            ((x + y) * 3) as u8,
        ])
    })
}

/// A `w × h` mask with a filled rectangle in the middle.
pub fn mask(w: u32, h: u32) -> GrayImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        let on = x >= w / 4 && x < 3 * w / 4 && y >= h / 4 && y < 3 * h / 4;
        Luma([if on { 255 } else { 0 }])
    })
}

/// Writes an MVTec-layout category: `n_train` train images, `n_good` good test images and,
/// per defect, `n` images with masks. All images are 40×30 PNGs.
pub fn make_category(
    root: &Path,
    n_train: usize,
    n_good: usize,
    defects: &[(&str, usize)],
) -> PathBuf {
    let cat = root.join("widget");
    let train = cat.join("train/good");
    std::fs::create_dir_all(&train).unwrap();
    for i in 0..n_train {
        rgb(40, 30, i as u8)
            .save(train.join(format!("{i:03}.png")))
            .unwrap();
    }
    let good = cat.join("test/good");
    std::fs::create_dir_all(&good).unwrap();
    for i in 0..n_good {
        rgb(40, 30, 100 + i as u8)
            .save(good.join(format!("{i:03}.png")))
            .unwrap();
    }
    for (d, n) in defects {
        let t = cat.join("test").join(d);
        let g = cat.join("ground_truth").join(d);
        std::fs::create_dir_all(&t).unwrap();
        std::fs::create_dir_all(&g).unwrap();
        for i in 0..*n {
            rgb(40, 30, 200 + i as u8)
                .save(t.join(format!("{i:03}.png")))
                .unwrap();
            mask(40, 30)
                .save(g.join(format!("{i:03}_mask.png")))
                .unwrap();
        }
    }
    cat
}
