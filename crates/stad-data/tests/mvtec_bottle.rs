//! MVTec AD `bottle` from the shared folder (`$STAD_SHARED`, default `<workspace>/../shared`).

use std::path::PathBuf;

use stad_data::{
    BatchLoader, Dataset, IMAGENET_MEAN, IMAGENET_STD, Label, LoaderConfig, MaskSource,
    MvtecOptions, PreprocessConfig, holdout_split,
};

fn bottle_root() -> PathBuf {
    let root = stad_testutil::shared_dir().join("data/mvtec_ad/bottle");
    assert!(root.is_dir(), "{} not found", root.display());
    root
}

fn bottle() -> Dataset {
    Dataset::mvtec(bottle_root(), &MvtecOptions::default()).expect("bottle opens")
}

#[test]
fn bottle_counts() {
    let ds = bottle();
    assert_eq!(ds.name, "bottle");
    assert_eq!(ds.train.len(), 209);
    assert_eq!(ds.test.len(), 83);
    assert_eq!(ds.count_defect("good"), 20);
    assert_eq!(ds.count_defect("broken_large"), 20);
    assert_eq!(ds.count_defect("broken_small"), 22);
    assert_eq!(ds.count_defect("contamination"), 21);
    assert_eq!(
        ds.defect_types(),
        ["broken_large", "broken_small", "contamination"]
    );
    assert!(ds.train.iter().all(|s| s.label == Label::Nominal));
    assert_eq!(ds.test.iter().filter(|s| s.is_anomalous()).count(), 63);
    assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
}

#[test]
fn categories_of_the_root() {
    let root = bottle_root();
    let cats = stad_data::list_categories(root.parent().unwrap()).unwrap();
    assert!(cats.iter().any(|c| c == "bottle"), "{cats:?}");
}

#[test]
fn every_mask_is_paired_with_its_image() {
    let ds = bottle();
    let root = bottle_root();
    let mut n_masks = 0;
    for s in &ds.test {
        match (&s.mask, s.label) {
            (MaskSource::File(m), Label::Anomalous) => {
                n_masks += 1;
                let img = s.path().unwrap();
                let stem = img.file_stem().unwrap().to_str().unwrap();
                let expected = root
                    .join("ground_truth")
                    .join(&s.defect)
                    .join(format!("{stem}_mask.png"));
                assert_eq!(*m, expected);
                assert_eq!(
                    img.parent().unwrap().file_name().unwrap().to_str().unwrap(),
                    s.defect
                );
            }
            (MaskSource::Zero, Label::Nominal) => assert_eq!(s.defect, "good"),
            other => panic!("unexpected {other:?} for {}", s.name()),
        }
    }
    assert_eq!(n_masks, 63);
    // All mask files are used exactly once.
    let on_disk: usize = ["broken_large", "broken_small", "contamination"]
        .iter()
        .map(|d| {
            std::fs::read_dir(root.join("ground_truth").join(d))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(on_disk, 63);
}

#[test]
fn test_masks_are_binary_and_nominal_masks_zero() {
    let ds = bottle();
    let loader = BatchLoader::new(
        ds.test.clone(),
        PreprocessConfig::default(),
        LoaderConfig::new().with_batch_size(16),
    )
    .unwrap();
    let mut seen = 0;
    for batch in loader.host_batches(0) {
        let b = batch.unwrap();
        for i in 0..b.len() {
            let m = b.mask(i);
            assert!(m.iter().all(|&v| v == 0.0 || v == 1.0));
            let on = m.iter().filter(|&&v| v == 1.0).count();
            if b.labels[i] == Label::Nominal {
                assert_eq!(on, 0, "{}", b.names[i]);
            } else {
                assert!(on > 0, "empty resized mask for {}", b.names[i]);
                assert!(b.has_mask[i]);
            }
            assert_eq!(b.original_sizes[i], (900, 900));
            seen += 1;
        }
    }
    assert_eq!(seen, 83);
}

#[test]
fn normalised_tensor_matches_pil_reference() {
    // Reference (Pillow 12, float "F" mode per channel, then /255) for train/good/000.png
    // resized 900x900 -> 224x224 with Image.BILINEAR (antialiased):
    //   channel means [0.533371, 0.529650, 0.547204], standard deviations
    //   [0.364765, 0.364957, 0.347648];
    //   pixel (x=112, y=112) = [0.157646, 0.172366, 0.194611]; (0, 0) = [1, 1, 1].
    let ds = bottle();
    let first = ds.train[0].clone();
    assert!(first.path().unwrap().ends_with("train/good/000.png"));
    let loader = BatchLoader::new(
        vec![first],
        PreprocessConfig::default(),
        LoaderConfig::default(),
    )
    .unwrap();
    let device = Default::default();
    let batch = loader
        .batches::<burn::backend::Flex>(0, &device)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.images.dims(), [1, 3, 224, 224]);
    let data: Vec<f32> = batch.images.into_data().to_vec().unwrap();
    let plane = 224 * 224;
    let means = [0.533371f32, 0.529650, 0.547204];
    let stds = [0.364765f32, 0.364957, 0.347648];
    let center = [0.157646f32, 0.172366, 0.194611];
    for c in 0..3 {
        let ch = &data[c * plane..(c + 1) * plane];
        let mean = (ch.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64) as f32;
        let expected = (means[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert!(
            (mean - expected).abs() < 1e-4,
            "channel {c}: mean {mean} vs {expected}"
        );
        let px = ch[112 * 224 + 112];
        let expected = (center[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert!(
            (px - expected).abs() < 1e-4,
            "channel {c}: centre {px} vs {expected}"
        );
        let corner = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert!((ch[0] - corner).abs() < 1e-4);
        // The spread of the normalised channel is the raw spread over the ImageNet std.
        let var = ch.iter().map(|&v| f64::from(v - mean).powi(2)).sum::<f64>() / plane as f64;
        let std = var.sqrt() as f32;
        let expected = stds[c] / IMAGENET_STD[c];
        assert!(
            (std - expected).abs() < 1e-4,
            "channel {c}: std {std} vs {expected}"
        );
    }
}

#[test]
fn holdout_of_bottle_is_seeded() {
    let ds = bottle();
    let (train, val) = holdout_split(ds.train.clone(), 0.2, 42).unwrap();
    assert_eq!((train.len(), val.len()), (167, 42));
    let (train2, val2) = holdout_split(ds.train.clone(), 0.2, 42).unwrap();
    let names = |v: &[stad_data::Sample]| v.iter().map(|s| s.name()).collect::<Vec<_>>();
    assert_eq!(names(&val), names(&val2));
    assert_eq!(names(&train), names(&train2));
    let (_, val3) = holdout_split(ds.train, 0.2, 43).unwrap();
    assert_ne!(names(&val), names(&val3));
}

#[test]
fn cached_loader_gives_the_same_batches() {
    let ds = bottle();
    let few: Vec<_> = ds.test.iter().step_by(10).cloned().collect();
    let cfg = LoaderConfig {
        batch_size: 3,
        shuffle: true,
        seed: 7,
        cache: true,
        ..LoaderConfig::default()
    };
    let cached = BatchLoader::new(few.clone(), PreprocessConfig::square(64), cfg.clone()).unwrap();
    let plain = BatchLoader::new(
        few,
        PreprocessConfig::square(64),
        LoaderConfig {
            cache: false,
            prefetch: 0,
            ..cfg
        },
    )
    .unwrap();
    cached.warm_up().unwrap();
    for epoch in 0..2 {
        let a: Vec<_> = cached.host_batches(epoch).map(Result::unwrap).collect();
        let b: Vec<_> = plain.host_batches(epoch).map(Result::unwrap).collect();
        assert_eq!(a, b);
    }
}
