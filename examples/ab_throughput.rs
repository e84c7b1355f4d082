//! stad's side of the A/B throughput comparison with PyTorch: the same work, rows and output
//! format as `$STAD_SHARED/bench/ab_pytorch.py`, so the two can be run in turn.
//!
//! `cargo run --release --example ab_throughput -- [--size 224] [--batch 8] [--runs 6]
//!  [--backbones mnv2,r18] [--rows teacher,inference,train_step,ens3_step] [--burn-conv]`
//!
//! Per backbone (mnv2 = the embedded ImageNet MobileNetV2, TF padding, taps 3/6/13; r18 =
//! ResNet18 layers 1–3 with BatchNorm, random weights: speed does not depend on the values),
//! batch B at S × S, random input, on flex:
//! - `teacher`: teacher forward;
//! - `inference`: teacher + student forward + STFPM map + image scores;
//! - `train_step`: teacher forward + student forward/backward (STFPM loss) + SGD step;
//! - `ens3_step`: teacher once + 3 students, each forward/backward/SGD step.
//!
//! Prints images/s (best and median of the runs after two warm-up runs). `--burn-conv` runs
//! burn's own convolutions instead of stad's kernels (what the kernels buy).

use std::time::Instant;

use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use stad::backbones::BackboneConfig;
use stad::backend::{Cpu, CpuAutodiff};
use stad::{MethodKind, ModelConfig, Student, TeacherWeights};

/// The allocator `stad` (the CLI) runs with.
#[global_allocator]
static ALLOCATOR: stad_alloc::StadAllocator = stad_alloc::StadAllocator;

struct Args {
    size: usize,
    batch: usize,
    runs: usize,
    backbones: Vec<String>,
    rows: Vec<String>,
}

fn parse() -> Args {
    let mut args = Args {
        size: 224,
        batch: 8,
        runs: 6,
        backbones: vec!["mnv2".into(), "r18".into()],
        rows: ["teacher", "inference", "train_step", "ens3_step"]
            .map(String::from)
            .to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match a.as_str() {
            "--size" => args.size = value().parse().expect("--size N"),
            "--batch" => args.batch = value().parse().expect("--batch N"),
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--backbones" => args.backbones = value().split(',').map(String::from).collect(),
            "--rows" => args.rows = value().split(',').map(String::from).collect(),
            "--burn-conv" => stad_kernels::set_fast_kernels(false),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Median and minimum seconds of `runs` calls after two warm-up calls.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

fn main() {
    let args = parse();
    let device = Default::default();
    let (b, s) = (args.batch, args.size);
    for name in &args.backbones {
        let (teacher, weights) = match name.as_str() {
            "mnv2" => (BackboneConfig::mobilenet_v2_tf(), TeacherWeights::Embedded),
            "r18" => (BackboneConfig::resnet18(), TeacherWeights::Random(0)),
            other => panic!("unknown backbone {other} (mnv2, r18)"),
        };
        let config = |kind: MethodKind| {
            ModelConfig::new(teacher.clone(), weights.clone(), kind.default_config())
                .with_image_size(s)
        };
        let stfpm = config(MethodKind::Stfpm);
        let ensemble = config(MethodKind::Ensemble);
        let model = stfpm.init_seeded::<Cpu>(42, &device).expect("model");
        let frozen = model.teacher().clone();
        let x = Tensor::<Cpu, 4>::random([b, 3, s, s], Distribution::Uniform(0.0, 1.0), &device);
        let xa = Tensor::<CpuAutodiff, 4>::from_inner(x.clone());
        let mut students = ensemble
            .init_students::<CpuAutodiff>(42, &device)
            .expect("students");
        let sgd = SgdConfig::new().with_momentum(Some(MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }));
        let mut optims: Vec<_> = students
            .iter()
            .map(|_| sgd.init::<CpuAutodiff, Student<CpuAutodiff>>())
            .collect();
        let mut step = |n: usize| {
            let targets = frozen.features_for::<CpuAutodiff>(xa.clone());
            let rest = students.split_off(n);
            let stepped: Vec<_> = students
                .drain(..)
                .zip(optims.iter_mut())
                .map(|(st, o)| {
                    let loss =
                        stad::distill::stfpm_loss(&targets, &st.forward_features(xa.clone()))
                            .expect("layers fit");
                    let grads = GradientsParams::from_grads(loss.backward(), &st);
                    o.step(0.4, st, grads)
                })
                .collect();
            students = stepped;
            students.extend(rest);
        };

        let mut rows: Vec<(&str, (f64, f64))> = Vec::new();
        for row in &args.rows {
            let timing = match row.as_str() {
                "teacher" => time(args.runs, || drop(frozen.features(x.clone()))),
                "inference" => time(args.runs, || {
                    drop(model.score(x.clone()).expect("scores").0.into_data())
                }),
                "train_step" => time(args.runs, || step(1)),
                "ens3_step" => time(args.runs, || step(3)),
                other => panic!("unknown row {other} (teacher, inference, train_step, ens3_step)"),
            };
            rows.push((row.as_str(), timing));
        }
        for (row, (median, best)) in rows {
            println!(
                "{name:5} {row:11} {:8.2} img/s best, {:8.2} median (batch {b})",
                b as f64 / best,
                b as f64 / median
            );
        }
    }
}
