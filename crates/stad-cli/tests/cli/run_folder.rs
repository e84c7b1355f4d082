//! What a run folder protects (issue 14, cases 3 and 5–8 and the smaller ones): one `train` at a
//! time, no silent overwrite of a run, no resume on other data or a changed teacher, no fewer
//! epochs than done, no `--out` inside the data, no impossible image size; and a killed run's
//! temp files are cleaned up when it resumes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::predict_outputs::{fails, ok};

/// `stad`'s status and stderr.
fn stad(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (bool, String) {
    let (success, _, stderr) = super::predict_outputs::stad(args);
    (success, stderr)
}

/// `train --quiet --format synthetic --data DATA --out OUT --image-size 64 --batch-size 8
/// --epochs N` plus `extra`.
fn train(data: &Path, out: &Path, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--quiet",
        "--method",
        "stfpm",
        "--format",
        "synthetic",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        epochs,
        "--data",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(data.display().to_string());
    args.push("--out".into());
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn refs(args: &[String]) -> Vec<&dyn AsRef<std::ffi::OsStr>> {
    args.iter()
        .map(|a| a as &dyn AsRef<std::ffi::OsStr>)
        .collect()
}

#[test]
fn a_second_train_into_a_held_folder_fails_at_once_and_a_killed_run_resumes_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    // Write the data set first, so that the long run below starts training at once.
    ok(&refs(&train(&data, &tmp.path().join("warm"), "1", &[])));

    let mut first = Command::new(env!("CARGO_BIN_EXE_stad"))
        .args(train(&data, &run, "200", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = run.join(".stad.lock");
    let started = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("stad process")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run never locked its folder"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = Instant::now();
    fails(
        &refs(&train(&data, &run, "1", &[])),
        &["is in use by", &format!("stad process {}", first.id())],
    );
    fails(
        &refs(&train(&data, &run, "200", &["--resume"])),
        &["is in use by"],
    );
    assert!(
        second.elapsed() < Duration::from_secs(20),
        "the second run waited"
    );

    // Wait for the first checkpoint, then kill the run as a crash or a user would.
    while !run.join("last.ckpt").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // What a write killed half-way leaves.
    let stale = run.join(".last.ckpt.tmp-999999-0");
    std::fs::write(&stale, b"half a checkpoint").unwrap();

    // A fresh run into the folder is refused (it holds a run); a resume takes the freed lock.
    fails(
        &refs(&train(&data, &run, "2", &[])),
        &["holds a run already", "last.ckpt", "--resume"],
    );
    // The killed run may have finished more epochs than 2: resume to what it did plus one.
    let (success, stderr) = stad(&refs(&train(&data, &run, "2", &["--resume"])));
    if !success {
        // It had done more than 2 epochs: the refusal names the count.
        assert!(stderr.contains("more than the 2 asked for"), "{stderr}");
    }
    assert!(!stale.exists(), "the stale temp file was left behind");
}

#[test]
fn resume_refuses_other_data_and_fewer_epochs_and_a_new_run_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    ok(&refs(&train(&data, &run, "2", &[])));

    // Fewer epochs than done.
    fails(
        &refs(&train(&data, &run, "1", &["--resume"])),
        &["done 2 epochs, more than the 1 asked for", "--epochs"],
    );

    // The same layout with one training image replaced by another.
    let other = tmp.path().join("other");
    copy_dir(&data, &other);
    let good = other.join("train").join("good");
    let mut images: Vec<_> = std::fs::read_dir(&good)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    images.sort();
    std::fs::copy(&images[1], &images[0]).unwrap();
    let mut args = train(&other, &run, "3", &["--resume"]);
    let format = args.iter().position(|a| a == "synthetic").unwrap();
    args[format] = "mvtec".into();
    fails(
        &refs(&args),
        &[
            "training data are not the ones",
            "1 differ",
            "choose a new --out",
        ],
    );

    // A new run without --resume never overwrites what is there, best.ckpt alone included.
    std::fs::remove_file(run.join("last.ckpt")).unwrap();
    std::fs::remove_file(run.join("run.json")).unwrap();
    std::fs::remove_file(run.join("detector.stad")).unwrap();
    let best = std::fs::read(run.join("best.ckpt")).unwrap();
    fails(
        &refs(&train(&data, &run, "1", &[])),
        &["holds a run already (best.ckpt)"],
    );
    assert_eq!(std::fs::read(run.join("best.ckpt")).unwrap(), best);
}

#[test]
fn out_inside_the_data_and_impossible_sizes_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&refs(&train(&data, &tmp.path().join("warm"), "1", &[])));
    let inside = data.join("train").join("runs");
    fails(
        &refs(&train(&data, &inside, "1", &[])),
        &["inside the data set"],
    );
    assert!(!inside.exists());

    let run = tmp.path().join("big");
    let mut args = train(&data, &run, "1", &[]);
    let size = args.iter().position(|a| a == "64").unwrap();
    args[size] = "100000".into();
    fails(&refs(&args), &["image size must be at most 2048"]);
    let mut args = train(&data, &run, "1", &[]);
    args[1] = "--quiet".into();
    let method = args.iter().position(|a| a == "stfpm").unwrap();
    args[method] = "ensemble".into();
    args.extend(["--students".to_string(), "1000".to_string()]);
    fails(&refs(&args), &["at most 64 students"]);
    assert!(!run.exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
