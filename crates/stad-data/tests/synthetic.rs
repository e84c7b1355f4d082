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
        LoaderConfig::new().with_batch_size(5),
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

/// Writes the documentation samples: `STAD_DOCS_OUT=$PWD/docs/synthetic cargo test --release
/// -p stad-data --test synthetic -- --ignored`. Per kind: `<kind>_nominal.png` (four nominal
/// images: the variation between samples) and `<kind>_defects.png` (one image per defect kind
/// on top, the same with its mask outlined in red below).
#[test]
#[ignore = "writes PNG files; run by hand to refresh docs/synthetic"]
fn write_docs_samples() {
    let out = std::path::PathBuf::from(std::env::var("STAD_DOCS_OUT").expect("set STAD_DOCS_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    const S: u32 = 256;
    for kind in [SyntheticKind::Object, SyntheticKind::Texture] {
        let mut nominal = image::RgbImage::new(S * 4, S);
        for i in 0..4u32 {
            let (good, _) = render(kind, S, u64::from(i) + 1, None);
            image::imageops::replace(&mut nominal, &good, i64::from(S * i), 0);
        }
        nominal
            .save(out.join(format!("{}_nominal.png", kind.name())))
            .unwrap();
        let mut defects = image::RgbImage::new(S * 4, S * 2);
        for (i, d) in DefectKind::ALL.iter().enumerate() {
            let (img, mask) = render(kind, S, 10 + i as u64, Some(*d));
            let x = i64::from(S) * i as i64;
            image::imageops::replace(&mut defects, &img, x, 0);
            image::imageops::replace(&mut defects, &overlay_mask(&img, &mask), x, i64::from(S));
        }
        defects
            .save(out.join(format!("{}_defects.png", kind.name())))
            .unwrap();
    }
}
