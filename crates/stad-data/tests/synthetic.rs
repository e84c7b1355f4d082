//! The synthetic data set through the loader, and the documentation samples.

use stad_data::synthetic::{overlay_mask, render};
use stad_data::{
    BatchLoader, Dataset, DefectKind, Label, LoaderConfig, PreprocessConfig, SyntheticConfig,
    SyntheticKind,
};

#[test]
fn synthetic_batches_have_the_right_shapes_and_masks() {
    let ds = Dataset::synthetic(&SyntheticConfig::tiny(11, SyntheticKind::Object));
    let loader = BatchLoader::new(
        ds.test.clone(),
        PreprocessConfig::square(48),
        LoaderConfig::with_batch_size(5),
    )
    .unwrap();
    let device = Default::default();
    let mut n = 0;
    for batch in loader.batches::<burn::backend::Flex>(0, &device) {
        let b = batch.unwrap();
        assert_eq!(b.images.dims()[1..], [3, 48, 48]);
        assert_eq!(b.masks.dims()[1..], [1, 48, 48]);
        let masks: Vec<f32> = b.masks.clone().into_data().to_vec().unwrap();
        for (i, label) in b.labels.iter().enumerate() {
            let on = masks[i * 48 * 48..(i + 1) * 48 * 48]
                .iter()
                .filter(|&&v| v == 1.0)
                .count();
            assert_eq!(on > 0, *label == Label::Anomalous, "{}", b.names[i]);
            assert!(b.paths[i].is_none());
        }
        n += b.len();
    }
    assert_eq!(n, 12);
}

/// Writes the documentation samples: `STAD_DOCS_OUT=docs/synthetic cargo test --release -p
/// stad-data --test synthetic -- --ignored`.
#[test]
#[ignore = "writes PNG files; run by hand to refresh docs/synthetic"]
fn write_docs_samples() {
    let out = std::path::PathBuf::from(std::env::var("STAD_DOCS_OUT").expect("set STAD_DOCS_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    for kind in [SyntheticKind::Object, SyntheticKind::Texture] {
        let (good, _) = render(kind, 256, 1, None);
        let mut row = image::RgbImage::new(256 * 5, 256 * 2);
        image::imageops::replace(&mut row, &good, 0, 0);
        image::imageops::replace(&mut row, &good, 0, 256);
        for (i, d) in DefectKind::ALL.iter().enumerate() {
            let (img, mask) = render(kind, 256, 10 + i as u64, Some(*d));
            let x = 256 * (i as i64 + 1);
            image::imageops::replace(&mut row, &img, x, 0);
            image::imageops::replace(&mut row, &overlay_mask(&img, &mask), x, 256);
        }
        row.save(out.join(format!("{}.png", kind.name()))).unwrap();
    }
}
