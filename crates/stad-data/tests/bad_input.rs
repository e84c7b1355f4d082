//! Each bad-input case, built in a temp dir, gives its typed error (or its documented skip).

mod common;

use std::path::Path;

use common::{make_category, mask, rgb};
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, LumaA, Rgba};
use stad_data::{
    BatchLoader, DataError, Dataset, FolderOptions, LoaderConfig, MaskNameRule, MissingMaskPolicy,
    MvtecOptions, PreprocessConfig, Sample, SkipReason,
};

fn open(cat: &Path) -> stad_data::Result<Dataset> {
    Dataset::mvtec(cat, &MvtecOptions::default())
}

/// Loads every sample of a list through a loader, returning the first error.
fn load_all(samples: Vec<Sample>) -> stad_data::Result<()> {
    let loader = BatchLoader::new(
        samples,
        PreprocessConfig::square(16),
        LoaderConfig::new().with_batch_size(4),
    )?;
    for b in loader.host_batches(0) {
        b?;
    }
    Ok(())
}

#[test]
fn well_formed_category_opens() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 5, 2, &[("crack", 3), ("hole", 2)]);
    let ds = open(&cat).unwrap();
    assert_eq!(ds.name, "widget");
    assert_eq!((ds.train.len(), ds.test.len()), (5, 7));
    assert_eq!(ds.defect_types(), ["crack", "hole"]);
    assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    load_all(ds.test.clone()).unwrap();
}

#[test]
fn missing_category_folder() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(&dir.path().join("nope")).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::MissingDir {
                what: "category",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
}

#[test]
fn missing_train_good_and_test_folders() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 2, 1, &[]);
    std::fs::remove_dir_all(cat.join("test")).unwrap();
    assert!(matches!(
        open(&cat),
        Err(DataError::MissingDir { what: "test", .. })
    ));
    std::fs::remove_dir_all(cat.join("train/good")).unwrap();
    assert!(matches!(
        open(&cat),
        Err(DataError::MissingDir {
            what: "train/good",
            ..
        })
    ));
}

#[test]
fn empty_train_good_with_only_non_images() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 0, 1, &[]);
    std::fs::write(cat.join("train/good/.DS_Store"), b"junk").unwrap();
    std::fs::write(cat.join("train/good/readme.txt"), b"hello").unwrap();
    let err = open(&cat).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyTrainSet { ref dir } if dir.ends_with("train/good")),
        "{err}"
    );
}

#[test]
fn non_image_files_are_skipped_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 3, 1, &[("crack", 1)]);
    std::fs::write(cat.join("train/good/.DS_Store"), b"junk").unwrap();
    std::fs::write(cat.join("train/good/readme.txt"), b"hello").unwrap();
    std::fs::write(cat.join("test/crack/Thumbs.db"), b"x").unwrap();
    std::fs::write(cat.join("ground_truth/crack/.DS_Store"), b"x").unwrap();
    std::fs::create_dir(cat.join("train/good/.ipynb_checkpoints")).unwrap();
    std::fs::write(cat.join("license.txt"), b"x").unwrap();
    let ds = open(&cat).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (3, 2));
    let reasons: Vec<_> = ds
        .skipped
        .iter()
        .map(|s| (s.path.file_name().unwrap().to_owned(), s.reason))
        .collect();
    assert!(
        reasons.contains(&(".DS_Store".into(), SkipReason::Hidden)),
        "{reasons:?}"
    );
    assert!(reasons.contains(&("readme.txt".into(), SkipReason::NotAnImage)));
    assert!(reasons.contains(&("Thumbs.db".into(), SkipReason::NotAnImage)));
    assert!(reasons.contains(&(".ipynb_checkpoints".into(), SkipReason::Hidden)));
    assert_eq!(ds.skipped.len(), 5);
}

#[test]
fn any_extension_case_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 0, &[("crack", 0)]);
    let t = cat.join("train/good");
    let img = DynamicImage::ImageRgb8(rgb(40, 30, 9));
    img.save_with_format(t.join("a.PNG"), image::ImageFormat::Png)
        .unwrap();
    img.save_with_format(t.join("b.JPG"), image::ImageFormat::Jpeg)
        .unwrap();
    img.save_with_format(t.join("c.bmp"), image::ImageFormat::Bmp)
        .unwrap();
    img.save_with_format(t.join("d.TIFF"), image::ImageFormat::Tiff)
        .unwrap();
    // A JPEG with a .png name decodes too (format from content).
    img.save_with_format(t.join("e.png"), image::ImageFormat::Jpeg)
        .unwrap();
    let ds = open(&cat).unwrap();
    assert_eq!(ds.train.len(), 6);
    load_all(ds.train.clone()).unwrap();
}

#[test]
fn truncated_png_is_a_decode_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 3, 1, &[]);
    let p = cat.join("train/good/001.png");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let ds = open(&cat).unwrap();
    let err = load_all(ds.train.clone()).unwrap_err();
    assert!(
        matches!(err, DataError::Decode { ref path, .. } if *path == p),
        "{err}"
    );
    // warm_up finds it too, without iterating.
    let loader = BatchLoader::new(
        ds.train,
        PreprocessConfig::square(8),
        LoaderConfig::default(),
    )
    .unwrap();
    assert!(matches!(loader.warm_up(), Err(DataError::Decode { .. })));
}

#[test]
fn text_file_named_png_and_empty_file_are_decode_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 0, &[]);
    let text = cat.join("train/good/notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    let ds = open(&cat).unwrap();
    let err = load_all(ds.train.clone()).unwrap_err();
    assert!(
        matches!(err, DataError::Decode { ref path, .. } if *path == text),
        "{err}"
    );
    std::fs::write(&text, b"").unwrap();
    let err = load_all(ds.train).unwrap_err();
    assert!(
        matches!(err, DataError::Decode { ref path, .. } if *path == text),
        "{err}"
    );
}

#[test]
fn unsupported_image_format_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 0, &[]);
    std::fs::write(cat.join("train/good/x.webp"), b"RIFF").unwrap();
    assert!(matches!(
        open(&cat),
        Err(DataError::UnsupportedFormat { .. })
    ));
}

#[test]
fn mask_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 0, &[("crack", 2)]);
    let m = cat.join("ground_truth/crack/001_mask.png");
    mask(20, 30).save(&m).unwrap();
    let err = open(&cat).unwrap_err();
    match err {
        DataError::MaskSizeMismatch {
            image,
            mask,
            image_size,
            mask_size,
        } => {
            assert!(image.ends_with("test/crack/001.png"));
            assert_eq!(mask, m);
            assert_eq!((image_size, mask_size), ((40, 30), (20, 30)));
        }
        other => panic!("{other}"),
    }
    // Without the check at open time, loading finds it.
    let opts = MvtecOptions {
        check_mask_sizes: false,
        ..MvtecOptions::default()
    };
    let ds = Dataset::mvtec(&cat, &opts).unwrap();
    assert!(matches!(
        load_all(ds.test),
        Err(DataError::MaskSizeMismatch { .. })
    ));
}

#[test]
fn anomalous_image_without_mask() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 1, &[("crack", 3)]);
    std::fs::remove_file(cat.join("ground_truth/crack/002_mask.png")).unwrap();
    let err = open(&cat).unwrap_err();
    assert!(
        matches!(err, DataError::MissingMask { ref image, .. } if image.ends_with("crack/002.png")),
        "{err}"
    );

    // Explicit option: keep it as an image-label-only sample.
    let opts = MvtecOptions {
        missing_mask: MissingMaskPolicy::LabelOnly,
        ..MvtecOptions::default()
    };
    let ds = Dataset::mvtec(&cat, &opts).unwrap();
    let s = ds
        .test
        .iter()
        .find(|s| s.path().unwrap().ends_with("crack/002.png"))
        .unwrap();
    assert!(s.is_anomalous() && !s.has_mask());
    let loader = BatchLoader::new(
        ds.test.clone(),
        PreprocessConfig::square(8),
        LoaderConfig::new().with_batch_size(8),
    )
    .unwrap();
    let b = loader.load_batch(&[0, 1, 2, 3]).unwrap();
    assert_eq!(b.has_mask, [true, true, true, false]);
    assert!(b.mask(3).iter().all(|&v| v == 0.0));

    // A whole missing ground_truth folder is the same error.
    std::fs::remove_dir_all(cat.join("ground_truth")).unwrap();
    assert!(matches!(open(&cat), Err(DataError::MissingMask { .. })));
}

#[test]
fn mask_for_an_image_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 1, &[("crack", 2)]);
    let orphan = cat.join("ground_truth/crack/007_mask.png");
    mask(40, 30).save(&orphan).unwrap();
    let err = open(&cat).unwrap_err();
    assert!(
        matches!(err, DataError::OrphanMask { ref mask } if *mask == orphan),
        "{err}"
    );

    // A mask whose name does not fit the rule.
    std::fs::remove_file(&orphan).unwrap();
    let odd = cat.join("ground_truth/crack/000.png");
    mask(40, 30).save(&odd).unwrap();
    assert!(matches!(open(&cat), Err(DataError::OrphanMask { ref mask }) if *mask == odd));

    // A ground_truth folder without its test folder.
    std::fs::remove_file(&odd).unwrap();
    std::fs::create_dir_all(cat.join("ground_truth/dent")).unwrap();
    mask(40, 30)
        .save(cat.join("ground_truth/dent/000_mask.png"))
        .unwrap();
    assert!(matches!(open(&cat), Err(DataError::OrphanMask { .. })));
}

#[test]
fn two_masks_for_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 0, &[("crack", 1)]);
    mask(40, 30)
        .save(cat.join("ground_truth/crack/000_mask.bmp"))
        .unwrap();
    assert!(matches!(open(&cat), Err(DataError::AmbiguousMask { .. })));
}

#[test]
fn nominal_masks_are_ignored_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 1, 2, &[("crack", 1)]);
    std::fs::create_dir_all(cat.join("ground_truth/good")).unwrap();
    mask(40, 30)
        .save(cat.join("ground_truth/good/000_mask.png"))
        .unwrap();
    let ds = open(&cat).unwrap();
    assert!(
        ds.skipped
            .iter()
            .any(|s| s.reason == SkipReason::NominalMask)
    );
    let loader = BatchLoader::new(
        ds.test.clone(),
        PreprocessConfig::square(8),
        LoaderConfig::default(),
    )
    .unwrap();
    let b = loader.load_batch(&[0, 1]).unwrap();
    assert_eq!(b.defects, ["good", "good"]);
    assert!(b.masks.iter().all(|&v| v == 0.0));
}

#[test]
fn odd_colour_types_and_sizes_become_three_channels() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 0, 0, &[]);
    let t = cat.join("train/good");
    let gray: GrayImage = ImageBuffer::from_fn(50, 20, |x, _| Luma([(x * 5) as u8]));
    gray.save(t.join("gray.jpg")).unwrap();
    let rgba = ImageBuffer::from_pixel(17, 33, Rgba([10u8, 20, 30, 0]));
    rgba.save(t.join("rgba.png")).unwrap();
    let g16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_pixel(31, 7, Luma([65535]));
    g16.save(t.join("gray16.png")).unwrap();
    let rgb16 = DynamicImage::ImageRgb8(rgb(9, 40, 1)).to_rgb16();
    rgb16.save(t.join("rgb16.png")).unwrap();
    let la: ImageBuffer<LumaA<u8>, Vec<u8>> = ImageBuffer::from_pixel(12, 12, LumaA([128, 255]));
    la.save(t.join("graya.png")).unwrap();
    let ds = open(&cat).unwrap();
    assert_eq!(ds.train.len(), 5);
    let cfg = PreprocessConfig {
        height: 24,
        width: 32,
        normalization: stad_data::Normalization::IDENTITY,
    };
    let loader = BatchLoader::new(
        ds.train.clone(),
        cfg,
        LoaderConfig::new().with_batch_size(5),
    )
    .unwrap();
    let device = Default::default();
    let batch = loader
        .batches::<burn::backend::Flex>(0, &device)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.images.dims(), [5, 3, 24, 32]);
    assert_eq!(batch.masks.dims(), [5, 1, 24, 32]);
    let host = loader.load_batch(&[0, 1, 2, 3, 4]).unwrap();
    let by_name = |n: &str| host.names.iter().position(|x| x.ends_with(n)).unwrap();
    // Gray JPEG: the three channels are equal.
    let g = host.image(by_name("gray.jpg"));
    let plane = 24 * 32;
    assert!((0..plane).all(|i| g[i] == g[plane + i] && g[i] == g[2 * plane + i]));
    // 16-bit white is 1.0; RGBA alpha is dropped, not composited.
    assert!(
        host.image(by_name("gray16.png"))
            .iter()
            .all(|v| (v - 1.0).abs() < 1e-6)
    );
    let r = host.image(by_name("rgba.png"));
    assert!((r[0] - 10.0 / 255.0).abs() < 1e-6 && (r[2 * plane] - 30.0 / 255.0).abs() < 1e-6);
    assert!(
        host.image(by_name("graya.png"))
            .iter()
            .all(|v| (v - 128.0 / 255.0).abs() < 1e-6)
    );
    assert_eq!(host.original_sizes[by_name("gray.jpg")], (50, 20));
}

#[test]
fn folder_dataset_with_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["normal", "abnormal/scratch", "masks/scratch"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..10 {
        rgb(40, 30, i)
            .save(root.join(format!("normal/n{i}.png")))
            .unwrap();
    }
    rgb(40, 30, 50).save(root.join("abnormal/a0.jpg")).unwrap();
    rgb(40, 30, 51)
        .save(root.join("abnormal/scratch/s0.png"))
        .unwrap();
    mask(40, 30).save(root.join("masks/gt_a0.png")).unwrap();
    mask(40, 30)
        .save(root.join("masks/scratch/gt_s0.png"))
        .unwrap();
    std::fs::write(root.join("normal/readme.txt"), b"x").unwrap();

    let opts = FolderOptions::new(root.join("normal"))
        .abnormal(root.join("abnormal"))
        .masks(
            root.join("masks"),
            MaskNameRule::Template("gt_{stem}.png".into()),
        );
    let ds = Dataset::folder(&opts).unwrap();
    assert_eq!(ds.train.len(), 8);
    assert_eq!(ds.test.len(), 2 + 2);
    assert_eq!(ds.defect_types(), ["anomalous", "scratch"]);
    assert_eq!(ds.skipped.len(), 1);
    load_all(ds.test.clone()).unwrap();
    // Same options, same split.
    let again = Dataset::folder(&opts).unwrap();
    let names = |d: &Dataset| d.test.iter().map(Sample::name).collect::<Vec<_>>();
    assert_eq!(names(&ds), names(&again));

    // Wrong rule: the masks fit no image.
    let wrong = opts
        .clone()
        .masks(root.join("masks"), MaskNameRule::SameStem);
    assert!(matches!(
        Dataset::folder(&wrong),
        Err(DataError::OrphanMask { .. } | DataError::MissingMask { .. })
    ));
    // No mask folder: error, or label-only on request.
    let mut no_masks = FolderOptions::new(root.join("normal")).abnormal(root.join("abnormal"));
    assert!(matches!(
        Dataset::folder(&no_masks),
        Err(DataError::MissingMask { .. })
    ));
    no_masks.missing_mask = MissingMaskPolicy::LabelOnly;
    let ds = Dataset::folder(&no_masks).unwrap();
    assert!(
        ds.test
            .iter()
            .filter(|s| s.is_anomalous())
            .all(|s| !s.has_mask())
    );
    // A template without {stem} is a configuration error.
    let bad = opts.masks(
        root.join("masks"),
        MaskNameRule::Template("mask.png".into()),
    );
    assert!(matches!(
        Dataset::folder(&bad),
        Err(DataError::InvalidConfig(_))
    ));
    // Missing normal folder.
    let missing = FolderOptions::new(root.join("nope"));
    assert!(matches!(
        Dataset::folder(&missing),
        Err(DataError::MissingDir { .. })
    ));
}

#[test]
fn invalid_loader_configs() {
    let s = vec![];
    assert!(matches!(
        BatchLoader::new(
            s.clone(),
            PreprocessConfig::default(),
            LoaderConfig::new().with_batch_size(0)
        ),
        Err(DataError::InvalidConfig(_))
    ));
    let mut p = PreprocessConfig::default();
    p.normalization.std[1] = 0.0;
    assert!(matches!(
        BatchLoader::new(s.clone(), p, LoaderConfig::default()),
        Err(DataError::InvalidConfig(_))
    ));
    let cfg = LoaderConfig {
        num_threads: Some(0),
        ..LoaderConfig::default()
    };
    assert!(matches!(
        BatchLoader::new(s, PreprocessConfig::default(), cfg),
        Err(DataError::InvalidConfig(_))
    ));
}

#[test]
fn prefetching_reports_a_bad_file_mid_epoch_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 9, 0, &[]);
    let bad = cat.join("train/good/004.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let ds = open(&cat).unwrap();
    for prefetch in [0, 1, 3] {
        let cfg = LoaderConfig {
            batch_size: 3,
            prefetch,
            ..LoaderConfig::default()
        };
        let loader = BatchLoader::new(ds.train.clone(), PreprocessConfig::square(8), cfg).unwrap();
        let results: Vec<_> = loader.host_batches(0).collect();
        assert_eq!(results.len(), 2, "prefetch {prefetch}");
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(DataError::Decode { path, .. }) if *path == bad));
    }
}

#[test]
fn dropping_a_prefetching_iterator_early_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let cat = make_category(dir.path(), 12, 0, &[]);
    let ds = open(&cat).unwrap();
    let cfg = LoaderConfig {
        batch_size: 2,
        prefetch: 2,
        num_threads: Some(1),
        ..LoaderConfig::default()
    };
    let loader = BatchLoader::new(ds.train.clone(), PreprocessConfig::square(8), cfg).unwrap();
    for epoch in 0..3 {
        let mut it = loader.host_batches(epoch);
        assert!(it.next().unwrap().is_ok());
        drop(it);
    }
    // The same batches with and without prefetching and a private pool.
    let plain = BatchLoader::new(
        ds.train,
        PreprocessConfig::square(8),
        LoaderConfig::new().with_batch_size(2),
    )
    .unwrap();
    let a: Vec<_> = loader.host_batches(0).map(Result::unwrap).collect();
    let b: Vec<_> = plain.host_batches(0).map(Result::unwrap).collect();
    assert_eq!(a, b);
}
