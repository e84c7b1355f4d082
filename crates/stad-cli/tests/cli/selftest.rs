//! `stad selftest`: the report it prints and writes, and its refusals.

use super::{fails, ok, read_json};

/// Flex against flex (`--device cpu`): every check runs, passes with a zero difference (the
/// same kernels on the same inputs are deterministic), and every measurement runs; the JSON
/// holds what the table shows. (CI also runs `--device ndarray --quick`: flex against
/// ndarray, scripts/test.sh.)
#[test]
fn quick_selftest_on_the_cpu_passes_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let table = ok("--quiet selftest --device cpu --quick --json {}", &[&json]);
    let report = read_json(&json);
    assert_eq!(report["passed"], true, "{report}");
    let checks = report["checks"].as_array().unwrap();
    // Two teachers, then maps, scores, loss and weight update for each of three methods.
    assert_eq!(checks.len(), 2 + 3 * 4, "{checks:?}");
    for check in checks {
        let name = check["name"].as_str().unwrap();
        assert_eq!(check["passed"], true, "{check}");
        assert_eq!(
            check["diff"]["max_abs"], 0.0,
            "{name}: flex is deterministic"
        );
        assert!(check["diff"]["values"].as_u64().unwrap() > 0, "{check}");
        assert!(
            table.contains(&format!("| {name} |")),
            "{name} not in\n{table}"
        );
    }
    for method in ["stfpm", "ensemble", "simple"] {
        for what in ["maps", "image scores", "training loss", "weight update"] {
            let name = format!("{method} {what}");
            assert!(checks.iter().any(|c| c["name"] == name.as_str()), "{name}");
        }
    }
    let rows = report["speed"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2 * 3,
        "two backbones, three works, one batch: {rows:?}"
    );
    for row in rows {
        assert_eq!(row["outcome"]["status"], "measured", "{row}");
        assert!(
            row["outcome"]["images_per_second"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert_eq!(row["batch_size"], 2);
    }
    for largest in report["largest_batch"].as_array().unwrap() {
        assert_eq!(largest["batch_size"], 2, "{largest}");
    }
    let machine = &report["machine"];
    assert!(
        machine["backend"].as_str().unwrap().contains("flex"),
        "{machine}"
    );
    assert!(machine["threads"].as_u64().unwrap() >= 1);
    assert_eq!(machine["stad_version"], env!("CARGO_PKG_VERSION"));
    assert!(table.contains("PASSED (14 of 14 checks passed)"), "{table}");
}

#[test]
fn selftest_refuses_unknown_devices_cuda_without_the_feature_and_bad_sizes() {
    fails(
        "selftest --device tpu",
        &[],
        &["invalid value 'tpu'", "cpu", "ndarray", "cuda"],
    );
    if !cfg!(feature = "cuda") {
        fails(
            "selftest --device cuda",
            &[],
            &["without CUDA support", "--features cuda"],
        );
    }
    fails(
        "selftest --quick --batch-sizes 0",
        &[],
        &["batch sizes must be positive"],
    );
    fails(
        "selftest --quick --image-size 8",
        &[],
        &["image size must be at least 32"],
    );
}
