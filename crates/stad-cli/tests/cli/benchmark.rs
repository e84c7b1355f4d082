//! `stad benchmark` on a root of two small synthetic categories: every pair trained and
//! evaluated, the report and the comparison with the thesis written, a rerun skipping
//! finished pairs, a lost evaluation redone alone, bad roots and categories refused.

use std::path::Path;
use std::time::SystemTime;

use stad::data::{DefectKind, SyntheticConfig, SyntheticKind, write_mvtec_layout};

use super::{fails, ok, read_json};

/// A small MVTec AD category of `kind` at `root/name`.
fn category(root: &Path, name: &str, kind: SyntheticKind, seed: u64) {
    let config = SyntheticConfig {
        seed,
        kind,
        size: 64,
        n_train: 12,
        n_test_good: 4,
        n_test_per_defect: 2,
        defects: vec![DefectKind::Scratch, DefectKind::Stain],
    };
    write_mvtec_layout(&config, &root.join(name)).unwrap();
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// `benchmark --quiet --root ROOT --out OUT` with tiny settings.
const BENCHMARK: &str = "benchmark --quiet --root {} --out {} --methods stfpm,decoupled \
                         --epochs 1 --batch-size 4 --image-size 32";

#[test]
fn benchmark_runs_every_pair_reports_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, out) = (tmp.path().join("mvtec"), tmp.path().join("bench"));
    category(&root, "bottle", SyntheticKind::Object, 1);
    category(&root, "my_wood", SyntheticKind::Texture, 2);
    ok(BENCHMARK, &[&root, &out]);

    for c in ["bottle", "my_wood"] {
        for m in ["stfpm", "decoupled"] {
            assert!(
                out.join("runs")
                    .join(c)
                    .join(m)
                    .join("detector.stad")
                    .is_file()
            );
            let eval = read_json(&out.join("eval").join(c).join(format!("{m}.json")));
            assert_eq!(
                (eval["category"].as_str(), eval["method"].as_str()),
                (Some(c), Some(m))
            );
        }
    }
    assert!(out.join("report/report.md").is_file());
    let md = std::fs::read_to_string(out.join("benchmark.md")).unwrap();
    assert!(md.contains("Politecnico di Milano"), "{md}");
    // The thesis' categories stay in the table: bottle with stad's value, the others marked.
    assert!(
        md.contains("| cable | 0.962 | *not in --root* | – |"),
        "{md}"
    );
    // bottle's ensemble (published 0.997) was not among --methods.
    assert!(md.contains("| 0.997 | *not selected* | – |"), "{md}");
    let json = read_json(&out.join("benchmark.json"));
    let rows = json["rows"].as_array().unwrap();
    let row = |c: &str, m: &str| {
        rows.iter()
            .find(|r| r["category"] == c && r["method"] == m)
            .unwrap_or_else(|| panic!("no row {c}/{m}"))
    };
    let bottle = row("bottle", "stfpm");
    assert_eq!(bottle["status"], "done");
    let (stad, published) = (
        bottle["image_auroc"].as_f64().unwrap(),
        bottle["published_image_auroc"].as_f64().unwrap(),
    );
    assert_eq!(published, 0.997);
    assert!(
        (bottle["image_auroc_difference"].as_f64().unwrap() - (stad - published)).abs() < 1e-12
    );
    assert!(bottle["seconds_per_epoch"].as_f64().unwrap() > 0.0);
    // The decoupled student is beyond the thesis: no published value.
    assert_eq!(row("my_wood", "decoupled")["status"], "done");
    assert!(row("my_wood", "decoupled")["published_dice"].is_null());
    assert_eq!(row("bottle", "simple")["status"], "not_selected");
    assert_eq!(row("capsule", "ensemble")["status"], "not_in_root");
    let csv = std::fs::read_to_string(out.join("benchmark.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + rows.len());

    // A rerun skips every finished pair: nothing is retrained or re-evaluated.
    let first = out.join("eval/bottle/stfpm.json");
    let second = out.join("eval/my_wood/decoupled.json");
    let (before_first, before_second) = (modified(&first), modified(&second));
    let detector = out.join("runs/bottle/stfpm/detector.stad");
    let detector_before = modified(&detector);
    ok(BENCHMARK, &[&root, &out]);
    assert_eq!(modified(&first), before_first);
    assert_eq!(modified(&second), before_second);
    assert_eq!(modified(&detector), detector_before);

    // A lost evaluation is redone alone (the run is finished: no training).
    std::fs::remove_file(&second).unwrap();
    ok(BENCHMARK, &[&root, &out]);
    assert!(second.is_file());
    assert_eq!(modified(&first), before_first);
    assert_eq!(modified(&detector), detector_before);

    // More epochs: the runs resume from their checkpoints and are evaluated again.
    let more = BENCHMARK.replace("--epochs 1", "--epochs 2");
    ok(&format!("{more} --categories bottle"), &[&root, &out]);
    let run = read_json(&out.join("runs/bottle/stfpm/run.json"));
    assert_eq!(run["history"].as_array().unwrap().len(), 2);
    assert_ne!(modified(&first), before_first);
    // my_wood was not selected this time: its files are untouched.
    assert!(second.is_file());

    // Refusals before anything runs.
    fails(
        &format!("{BENCHMARK} --categories bottle,nothing"),
        &[&root, &out],
        &["--categories nothing", "bottle, my_wood"],
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(BENCHMARK, &[&empty, &out], &["holds no MVTec AD category"]);
    fails(BENCHMARK, &[&root, &root.join("out")], &["inside --root"]);
}
