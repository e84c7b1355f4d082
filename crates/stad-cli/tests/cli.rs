//! The `stad` binary, run as a user runs it: train → eval → predict → report on synthetic
//! data, the demo, bad arguments, and one eval on the real MVTec AD bottle category.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

// Run folders and output safety, in this one test binary (each binary links burn).
#[path = "cli/benchmark.rs"]
mod benchmark;
#[path = "cli/predict_outputs.rs"]
mod predict_outputs;
#[path = "cli/run_folder.rs"]
mod run_folder;
#[path = "cli/selftest.rs"]
mod selftest;

/// The command line `words` (split at white space), each `{}` replaced by the next of `paths`
/// (whole, so paths may hold spaces).
fn argv(words: &str, paths: &[&Path]) -> Vec<String> {
    let mut paths = paths.iter();
    let args: Vec<String> = words
        .split_whitespace()
        .map(|w| match w {
            "{}" => paths
                .next()
                .expect("a path for each {}")
                .display()
                .to_string(),
            w => w.to_string(),
        })
        .collect();
    assert!(paths.next().is_none(), "more paths than {{}} in {words:?}");
    args
}

/// Runs the `stad` binary cargo built for these tests (std's `Command` is all it takes; no
/// assert_cmd, whose `regex` features would change the workspace's feature set and rebuild
/// burn) and returns its status, stdout and stderr.
fn stad(args: &[String]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stad"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `stad`, expecting success; returns stdout.
fn ok(words: &str, paths: &[&Path]) -> String {
    let args = argv(words, paths);
    let (success, stdout, stderr) = stad(&args);
    assert!(success, "stad {args:?} failed:\n{stderr}");
    stdout
}

/// Runs `stad`, expecting a non-zero exit with a message containing every `needle`; returns
/// stderr.
fn fails(words: &str, paths: &[&Path], needles: &[&str]) -> String {
    let args = argv(words, paths);
    let (success, _, stderr) = stad(&args);
    assert!(!success, "stad {args:?} succeeded");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stad {args:?}: stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn png_size(path: &Path) -> (u32, u32) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (image.width(), image.height())
}

fn in_unit_interval(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"));
    assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    x
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect()
}

#[test]
fn help_describes_every_command_and_option() {
    let top = ok("--help", &[]);
    for command in [
        "train",
        "eval",
        "predict",
        "report",
        "demo",
        "selftest",
        "benchmark",
        "--quiet",
    ] {
        assert!(top.contains(command), "stad --help lacks {command}:\n{top}");
    }
    let cases: [(&str, &[&str]); 6] = [
        (
            "train",
            &[
                "--method",
                "--data",
                "--format",
                "--backbone",
                "--tf-padding",
                "--weights",
                "--random-teacher",
                "--out",
                "--epochs",
                "--batch-size",
                "--lr",
                "--seed",
                "--students",
                "--student",
                "decoupled",
                "--image-size",
                "--device",
                "--resume",
                "wide_resnet50_2",
                "mobilenet_v2",
                "synthetic",
            ],
        ),
        (
            "eval",
            &["--run", "--data", "--json", "--heatmaps", "--device"],
        ),
        ("predict", &["--run", "--out", "IMAGE"]),
        ("report", &["--out", "JSON"]),
        ("demo", &["--out", "--epochs"]),
        (
            "selftest",
            &[
                "--device",
                "--json",
                "--quick",
                "--batch-sizes",
                "--image-size",
                "--no-speed",
            ],
        ),
    ];
    for (command, options) in cases {
        let help = ok(&format!("{command} --help"), &[]);
        for option in options {
            assert!(
                help.contains(option),
                "stad {command} --help lacks {option}:\n{help}"
            );
        }
    }
}

/// `train --quiet --format synthetic --data DATA --out RUN --batch-size 8`.
const TRAIN_SYNTHETIC: &str = "train --quiet --format synthetic --data {} --out {} --batch-size 8";

#[test]
fn synthetic_train_eval_predict_report() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (data, stfpm, simple) = (t.join("data"), t.join("stfpm"), t.join("simple"));

    // train: a complete run folder, and the synthetic data set written in MVTec's layout.
    ok(
        &format!("{TRAIN_SYNTHETIC} --image-size 64 --method stfpm --epochs 2"),
        &[&data, &stfpm],
    );
    for file in ["run.json", "detector.stad", "last.ckpt", "best.ckpt"] {
        assert!(stfpm.join(file).is_file(), "run lacks {file}");
    }
    assert!(data.join("synthetic.json").is_file());
    let run = read_json(&stfpm.join("run.json"));
    assert_eq!(run["method"], "stfpm");
    assert_eq!(run["history"].as_array().unwrap().len(), 2);
    assert!(run["threshold"].as_f64().unwrap() > 0.0);

    // eval: the data defaults to the run's; every key of the issue, values in range.
    let (json, heat) = (t.join("stfpm.json"), t.join("heat"));
    let stdout = ok(
        "eval --quiet --run {} --json {} --heatmaps {}",
        &[&stfpm, &json, &heat],
    );
    assert!(stdout.is_empty(), "eval printed {stdout:?}");
    let eval = read_json(&json);
    assert_eq!(eval["method"], "stfpm");
    assert_eq!(eval["category"], "data");
    assert_eq!(eval["n_test"], 40);
    for key in [
        "image_auroc",
        "pixel_auroc",
        "au_pro",
        "image_f1",
        "dice",
        "iou",
    ] {
        in_unit_interval(&eval, key);
    }
    assert!(eval["image_threshold"].as_f64().unwrap().is_finite());
    assert!(eval["images_per_second"].as_f64().unwrap() > 0.0);
    let per_defect = eval["per_defect"].as_array().unwrap();
    let mut defects: Vec<&str> = per_defect
        .iter()
        .map(|d| d["defect_type"].as_str().unwrap())
        .collect();
    defects.sort();
    assert_eq!(defects, ["hole", "missing_part", "scratch", "stain"]);
    for d in per_defect {
        in_unit_interval(d, "auroc");
    }
    assert_eq!(eval["scores"].as_array().unwrap().len(), 40);
    let heatmaps = files_with_extension(&heat, "png");
    assert_eq!(heatmaps.len(), 40);
    assert!(heatmaps.iter().all(|p| png_size(p) == (256, 256)));

    // predict: a JSON line per image, overlay and mask at the original size.
    let good = data.join("test/good/000.png");
    let hole = data.join("test/hole/000.png");
    let pred = t.join("pred");
    let stdout = ok(
        "predict --quiet --run {} {} {} --out {}",
        &[&stfpm, &good, &hole, &pred],
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, image) in lines.iter().zip([&good, &hole]) {
        assert_eq!(line["path"], image.display().to_string());
        let score = line["score"].as_f64().unwrap();
        let anomalous = score >= line["threshold"].as_f64().unwrap();
        assert_eq!(line["anomalous"], anomalous);
        assert_eq!(
            line["verdict"],
            if anomalous { "anomalous" } else { "good" }
        );
        let overlay = PathBuf::from(line["overlay"].as_str().unwrap());
        assert_eq!(png_size(&overlay), (256, 256));
        let mask = image::open(line["mask"].as_str().unwrap())
            .unwrap()
            .to_luma8();
        assert_eq!(mask.dimensions(), (256, 256));
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        let flagged = mask.pixels().filter(|p| p.0[0] == 255).count() as f64 / (256.0 * 256.0);
        assert!((flagged - line["flagged_fraction"].as_f64().unwrap()).abs() < 1e-9);
    }
    // Two inputs with the same file name get distinct outputs.
    assert!(pred.join("good_000_overlay.png").is_file());
    assert!(pred.join("hole_000_mask.png").is_file());

    // report: a second method, then tables and plots.
    ok(
        &format!("{TRAIN_SYNTHETIC} --image-size 64 --method simple --epochs 1"),
        &[&data, &simple],
    );
    let json2 = t.join("simple.json");
    ok("eval --quiet --run {} --json {}", &[&simple, &json2]);
    let report = t.join("report");
    ok("report --quiet {} {} --out {}", &[&json, &json2, &report]);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    for needle in [
        "## Image AUROC",
        "## Pixel AUROC",
        "## AU-PRO",
        "## Dice",
        "STFPM",
        "Simple Student",
        "| data |",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    let plots = files_with_extension(&report, "png");
    assert!(
        plots.iter().any(|p| p.ends_with("roc_data.png")),
        "{plots:?}"
    );
    assert_eq!(plots.len(), 3, "{plots:?}");
    for p in &plots {
        assert_eq!(png_size(p), (640, 480));
        // Every plot is linked from the report.
        assert!(md.contains(p.file_name().unwrap().to_str().unwrap()));
    }

    // Training again into the same folder is refused; nothing is overwritten.
    fails(
        &format!("{TRAIN_SYNTHETIC} --image-size 64 --method stfpm --epochs 1"),
        &[&data, &stfpm],
        &["holds a run already", "--resume"],
    );
    // Resuming with more epochs continues the run.
    ok(
        &format!("{TRAIN_SYNTHETIC} --image-size 64 --method stfpm --epochs 3 --resume"),
        &[&data, &stfpm],
    );
    let run = read_json(&stfpm.join("run.json"));
    assert_eq!(run["history"].as_array().unwrap().len(), 3);
}

#[test]
fn demo_writes_runs_evaluations_overlays_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    // Tiny settings: this checks what the demo writes, not how well it trains.
    let stdout = ok("demo --quiet --out {} --epochs 1 --image-size 48", &[&out]);
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(out.join("data/synthetic_object/synthetic.json").is_file());
    for method in ["stfpm", "ensemble", "simple"] {
        assert!(
            out.join("runs")
                .join(method)
                .join("detector.stad")
                .is_file()
        );
        let eval = read_json(&out.join("eval").join(format!("{method}.json")));
        assert_eq!(eval["method"], method);
        assert_eq!(eval["category"], "synthetic_object");
        let predictions = out.join("predictions").join(method);
        let lines = std::fs::read_to_string(predictions.join("predictions.jsonl")).unwrap();
        // One good image and one per defect type.
        assert_eq!(lines.lines().count(), 5);
        for line in lines.lines() {
            let line: Value = serde_json::from_str(line).unwrap();
            let overlay = PathBuf::from(line["overlay"].as_str().unwrap());
            assert!(overlay.starts_with(&predictions));
            assert_eq!(png_size(&overlay), (256, 256));
        }
    }
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(md.contains("| synthetic_object |"), "{md}");
    let roc = out.join("report/roc_synthetic_object.png");
    assert_eq!(png_size(&roc), (640, 480));
}

#[test]
fn bad_arguments_exit_non_zero_with_cause_and_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = t.join("run");
    let train = "train --method stfpm --out {} --data {}";

    // Missing data folder: the cause names the folder, the hint the layout.
    let missing = t.join("no_such_category");
    fails(
        train,
        &[&out, &missing],
        &["missing", "no_such_category", "hint:", "train/good"],
    );
    // Wrong format / method names: clap lists the valid ones.
    fails(
        &format!("{train} --format zip"),
        &[&out, t],
        &["invalid value 'zip'", "mvtec"],
    );
    fails(
        "train --method padim --data x --out y",
        &[],
        &["invalid value 'padim'", "stfpm"],
    );
    // A required argument left out.
    fails("train --method stfpm --data x", &[], &["--out"]);
    // Options that do not fit together, or out of range.
    let cases: [(&str, &[&str]); 7] = [
        ("--students 3", &["--students applies to --method ensemble"]),
        (
            "--student resnet18",
            &["--student applies to --method decoupled"],
        ),
        (
            "--backbone resnet18",
            &["no ImageNet weights are embedded for resnet18", "--weights"],
        ),
        ("--lr 0", &["learning rate must be positive"]),
        ("--epochs 0", &["epochs must be positive"]),
        ("--image-size 16", &["image size must be at least 32"]),
        (
            "--backbone resnet18 --tf-padding --random-teacher",
            &["--tf-padding applies to --backbone mobilenet_v2"],
        ),
    ];
    for (extra, needles) in cases {
        fails(&format!("{train} {extra}"), &[&out, t], needles);
    }
    fails(
        "train --method ensemble --students 1 --data {} --out {}",
        &[t, &out],
        &["at least 2 students"],
    );
    #[cfg(not(feature = "cuda"))]
    fails(
        &format!("{train} --device cuda"),
        &[&out, t],
        &["without CUDA", "hint:"],
    );
    // None of these left a run folder behind.
    assert!(!out.exists());

    // A corrupt training image: named, with the fix.
    let folder = t.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    image::RgbImage::from_pixel(40, 40, image::Rgb([90, 90, 90]))
        .save(folder.join("a.png"))
        .unwrap();
    std::fs::write(folder.join("b.png"), b"not a png at all").unwrap();
    std::fs::write(folder.join("c.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    fails(
        &format!("{train} --format folder --epochs 1 --image-size 32 --batch-size 2"),
        &[&out, &folder],
        &["cannot decode image", ".png", "hint:"],
    );
    // An empty training folder.
    let empty = t.join("empty");
    std::fs::create_dir_all(empty.join("train/good")).unwrap();
    std::fs::create_dir_all(empty.join("test/good")).unwrap();
    fails(
        train,
        &[&out, &empty],
        &["no training images", "train/good"],
    );
    // --format synthetic into a folder that holds something else.
    fails(
        &format!("{train} --format synthetic"),
        &[&out, &folder],
        &["holds no synthetic data set"],
    );

    // Commands on something that is not a run.
    let (nope, json) = (t.join("nope"), t.join("e.json"));
    fails(
        "eval --run {} --json {}",
        &[&nope, &json],
        &["no such run folder", "stad train"],
    );
    fails(
        "predict --run {} x.png --out {}",
        &[&nope, t],
        &["no such run folder"],
    );
    fails("predict --run {}", &[t], &["IMAGE"]);
    // A report from something that is not an evaluation.
    let bogus = t.join("bogus.json");
    std::fs::write(&bogus, b"{\"hello\": 1}").unwrap();
    fails(
        "report {} --out {}",
        &[&bogus, &t.join("r")],
        &["bogus.json", "stad eval --json"],
    );
}

#[test]
fn weights_for_another_network_are_refused_with_the_missing_key() {
    let shared = stad_testutil::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (data, r34, junk_run, r18) = (t.join("data"), t.join("r34"), t.join("j"), t.join("r18"));
    let resnet18 = shared.join("fixtures/resnet18_teacher.safetensors");
    let train = format!("{TRAIN_SYNTHETIC} --method stfpm --epochs 1 --image-size 32");
    // ResNet18 weights into a ResNet34: layer1.2 does not exist in ResNet18.
    let stderr = fails(
        &format!("{train} --backbone resnet34 --weights {{}}"),
        &[&data, &r34, &resnet18],
        &[
            "weights do not fit resnet34",
            "is it a torchvision resnet34 state dict?",
        ],
    );
    assert!(
        stderr.contains("has no key layer1.2.conv1.weight"),
        "{stderr}"
    );
    // A run that failed before its first checkpoint leaves no folder behind.
    assert!(!r34.exists());
    // A file that is no state dict at all.
    let junk = t.join("junk.pth");
    std::fs::write(&junk, b"definitely not a pickle").unwrap();
    fails(
        &format!("{train} --weights {{}}"),
        &[&data, &junk_run, &junk],
        &["cannot read weights", "junk.pth", "hint:"],
    );
    // The right file for the right network trains (random fixture weights: a control run).
    ok(
        &format!("{train} --backbone resnet18 --weights {{}}"),
        &[&data, &r18, &resnet18],
    );
    let run = read_json(&r18.join("run.json"));
    assert!(
        run["teacher"]
            .as_str()
            .unwrap()
            .starts_with("resnet18 (weights")
    );
}

/// Lower bound for the bottle image AUROC after 2 epochs at 128², batch 8 (measured: 0.990;
/// the bound leaves a margin for other CPUs' rounding, and stays far above chance).
const BOTTLE_MIN_IMAGE_AUROC: f64 = 0.9;

#[test]
fn eval_on_mvtec_bottle_with_a_briefly_trained_run() {
    let bottle = stad_testutil::shared_dir().join("data/mvtec_ad/bottle");
    let tmp = tempfile::tempdir().unwrap();
    let (run, json) = (tmp.path().join("run"), tmp.path().join("bottle.json"));
    ok(
        "train --quiet --method stfpm --data {} --out {} --epochs 2 --image-size 128 --batch-size 8",
        &[&bottle, &run],
    );
    ok("eval --quiet --run {} --json {}", &[&run, &json]);
    let eval = read_json(&json);
    println!(
        "bottle, STFPM 2 epochs at 128²: image AUROC {}, pixel AUROC {}, AU-PRO {}, Dice {}",
        eval["image_auroc"], eval["pixel_auroc"], eval["au_pro"], eval["dice"]
    );
    assert_eq!(eval["category"], "bottle");
    assert_eq!(eval["method"], "stfpm");
    assert_eq!(eval["n_test"], 83);
    let image_auroc = in_unit_interval(&eval, "image_auroc");
    for key in ["pixel_auroc", "au_pro", "image_f1", "dice", "iou"] {
        in_unit_interval(&eval, key);
    }
    let mut defects: Vec<&str> = eval["per_defect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["defect_type"].as_str().unwrap())
        .collect();
    defects.sort();
    assert_eq!(defects, ["broken_large", "broken_small", "contamination"]);
    // The embedded ImageNet teacher separates bottle defects after two short epochs
    // (a random teacher is at chance, 0.37–0.65; see docs/measurements.md).
    assert!(
        image_auroc > BOTTLE_MIN_IMAGE_AUROC,
        "image AUROC {image_auroc}"
    );
}
