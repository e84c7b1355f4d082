//! What `stad predict` and `stad eval` refuse to write over (existing files unless
//! `--overwrite`, their own inputs always, the data set), the message for a test set whose
//! masks are empty, and the warning for images too small to score. One tiny run (synthetic
//! data, 32², one epoch) is trained once and shared by the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs the `stad` binary with `args`; returns its status, stdout and stderr.
pub(crate) fn stad(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stad"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `stad`, expecting success; returns stderr.
pub(crate) fn ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let (success, _, stderr) = stad(args);
    assert!(success, "stad failed:\n{stderr}");
    stderr
}

/// Runs `stad`, expecting failure with every `needle` in stderr; returns stderr.
pub(crate) fn fails(args: &[&dyn AsRef<std::ffi::OsStr>], needles: &[&str]) -> String {
    let (success, _, stderr) = stad(args);
    assert!(!success, "stad succeeded:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// The shared run and its synthetic data.
struct Fixture {
    data: PathBuf,
    run: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // In cargo's folder for integration tests' files, replaced by each run of these tests
        // (a static is never dropped, so a temporary folder would be left behind anyway).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("predict_outputs");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let (data, run) = (dir.join("data"), dir.join("run"));
        ok(&[
            &"train",
            &"--quiet",
            &"--method",
            &"stfpm",
            &"--format",
            &"synthetic",
            &"--data",
            &data,
            &"--out",
            &run,
            &"--epochs",
            &"1",
            &"--image-size",
            &"32",
            &"--batch-size",
            &"8",
        ]);
        Fixture { data, run }
    })
}

/// A copy of the synthetic test image `name` (e.g. `good/000.png`) at `to`.
fn copy_test_image(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture().data.join("test").join(name), to).unwrap();
}

#[test]
fn predict_refuses_existing_outputs_unless_overwrite() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = (tmp.path().join("in"), tmp.path().join("pred"));
    let images: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| input.join(format!("{n}.png")))
        .collect();
    for image in &images {
        copy_test_image("hole/000.png", image);
    }
    // Every output exists already (here: junk), so six files would be overwritten.
    std::fs::create_dir_all(&out).unwrap();
    for n in ["a", "b", "c"] {
        for kind in ["overlay", "mask"] {
            std::fs::write(out.join(format!("{n}_{kind}.png")), b"keep me").unwrap();
        }
    }
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"predict", &"--quiet", &"--run", &f.run, &"--out", &out];
    args.extend(images.iter().map(|p| p as &dyn AsRef<std::ffi::OsStr>));
    let stderr = fails(
        &args,
        &[
            "already holds 6 of the 6 files predict would write",
            "a_overlay.png",
            "and 1 more",
            "--overwrite",
        ],
    );
    assert!(
        !stderr.contains("c_mask.png"),
        "only the first few: {stderr}"
    );
    for n in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read(out.join(format!("{n}_mask.png"))).unwrap(),
            b"keep me"
        );
    }
    // One existing file is enough to refuse, and nothing is written then.
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("b_mask.png"), b"keep me").unwrap();
    fails(&args, &["already holds 1 of the 6 files", "b_mask.png"]);
    assert!(!out.join("a_overlay.png").exists());

    // --overwrite replaces them.
    args.push(&"--overwrite");
    ok(&args);
    for n in ["a", "b", "c"] {
        let mask = image::open(out.join(format!("{n}_mask.png"))).unwrap();
        assert_eq!((mask.width(), mask.height()), (256, 256));
        assert!(out.join(format!("{n}_overlay.png")).is_file());
    }
}

#[test]
fn predict_never_overwrites_its_inputs() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let inout = tmp.path().join("inout");
    let (a, a_overlay) = (inout.join("a.png"), inout.join("a_overlay.png"));
    copy_test_image("good/000.png", &a);
    copy_test_image("hole/000.png", &a_overlay);
    let before = std::fs::read(&a_overlay).unwrap();
    // `a.png`'s overlay is `a_overlay.png`, the second input; --out spelled another way.
    let out = tmp.path().join("inout/../inout/.");
    for overwrite in [false, true] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"predict", &"--quiet", &"--run", &f.run, &"--out", &out, &a, &a_overlay,
        ];
        if overwrite {
            args.push(&"--overwrite");
        }
        fails(
            &args,
            &[
                "predict would write over 1 of its input files",
                "a_overlay.png",
                "--overwrite never replaces an input",
            ],
        );
        assert_eq!(std::fs::read(&a_overlay).unwrap(), before);
        assert!(!inout.join("a_mask.png").exists());
    }
}

#[test]
fn eval_heatmaps_stay_out_of_the_data_and_do_not_clobber() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("eval.json");
    let eval = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"eval", &"--quiet", &"--run", &f.run, &"--json", &json];
        args.extend_from_slice(extra);
        stad(&args)
    };
    let check_fails = |result: (bool, String, String), needles: &[&str]| {
        assert!(!result.0, "eval succeeded:\n{}", result.2);
        for needle in needles {
            assert!(result.2.contains(needle), "lacks {needle:?}:\n{}", result.2);
        }
    };
    // Heat-maps inside the data set (which does not exist yet) are refused.
    let inside = f.data.join("test/heat");
    check_fails(
        eval(&[&"--heatmaps", &inside]),
        &["--heatmaps", "lies inside the data set's folder"],
    );
    assert!(!inside.exists());
    // The metrics file is never written over an input.
    let run_json = f.run.join("run.json");
    let (success, _, stderr) = stad(&[&"eval", &"--run", &f.run, &"--json", &run_json]);
    assert!(
        !success && stderr.contains("is one of eval's inputs"),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(&run_json)
            .unwrap()
            .contains("stfpm")
    );

    // Existing heat-maps are refused, --overwrite replaces them.
    let heat = tmp.path().join("heat");
    std::fs::create_dir_all(&heat).unwrap();
    std::fs::write(heat.join("good_000_overlay.png"), b"keep me").unwrap();
    check_fails(
        eval(&[&"--heatmaps", &heat]),
        &[
            "already holds 1 of the 40 files eval would write",
            "good_000_overlay.png",
            "--overwrite",
        ],
    );
    assert!(!json.exists(), "refused before anything was written");
    assert_eq!(
        std::fs::read(heat.join("good_000_overlay.png")).unwrap(),
        b"keep me"
    );
    let (success, _, stderr) = eval(&[&"--heatmaps", &heat, &"--overwrite"]);
    assert!(success, "{stderr}");
    assert!(image::open(heat.join("good_000_overlay.png")).is_ok());
    assert!(json.is_file());
}

#[test]
fn eval_with_empty_masks_says_the_masks_are_empty() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("blank_masks");
    copy_test_image("good/000.png", &data.join("train/good/000.png"));
    for i in ["000", "001"] {
        copy_test_image(
            &format!("good/{i}.png"),
            &data.join(format!("test/good/{i}.png")),
        );
        copy_test_image(
            &format!("hole/{i}.png"),
            &data.join(format!("test/hole/{i}.png")),
        );
        let mask = data.join(format!("ground_truth/hole/{i}_mask.png"));
        std::fs::create_dir_all(mask.parent().unwrap()).unwrap();
        image::GrayImage::new(256, 256).save(&mask).unwrap();
    }
    let json = tmp.path().join("eval.json");
    let stderr = fails(
        &[
            &"eval", &"--quiet", &"--run", &f.run, &"--data", &data, &"--json", &json,
        ],
        &[
            "the 2 anomalous images' ground-truth masks are all empty",
            "pixel metrics need masks with defect pixels",
        ],
    );
    assert!(!stderr.contains("no positive"), "{stderr}");
}

#[test]
fn small_images_are_warned_about() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (tiny, thin, fine) = (t.join("tiny.png"), t.join("thin.png"), t.join("fine.png"));
    image::RgbImage::from_pixel(1, 1, image::Rgb([90, 90, 90]))
        .save(&tiny)
        .unwrap();
    image::RgbImage::from_pixel(200, 20, image::Rgb([90, 90, 90]))
        .save(&thin)
        .unwrap();
    copy_test_image("good/000.png", &fine);
    let out = t.join("pred");
    // Warned even with --quiet; scored all the same.
    let stderr = ok(&[
        &"predict", &"--quiet", &"--run", &f.run, &"--out", &out, &tiny, &thin, &fine,
    ]);
    assert!(
        stderr.contains("warning: 2 of 3 images are smaller than 32 px on their shorter side"),
        "{stderr}"
    );
    assert!(stderr.contains("tiny.png (1×1)"), "{stderr}");
    assert!(stderr.contains("thin.png (200×20)"), "{stderr}");
    assert!(!stderr.contains("fine.png"), "{stderr}");
    assert!(out.join("tiny_mask.png").is_file());
    // The data set images of the run are large: no warning.
    let stderr = ok(&[
        &"eval",
        &"--quiet",
        &"--run",
        &f.run,
        &"--json",
        &t.join("e.json"),
    ]);
    assert!(!stderr.contains("smaller than"), "{stderr}");
}
