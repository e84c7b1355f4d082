//! Same seed on CPU → bit-identical weights and scores; a resumed run equals an
//! uninterrupted one.

mod common;

use burn::module::Module;
use burn::prelude::*;
use stad::backend::Cpu;
use stad::{MethodKind, RunDir, StudentTeacher};

fn weights(model: &StudentTeacher<Cpu>) -> Vec<Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor<Cpu> for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Cpu, D>>) {
            self.0.push(p.val().into_data().to_vec().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    for s in model.students() {
        s.visit(&mut c);
    }
    c.0
}

fn scores(model: &StudentTeacher<Cpu>) -> Vec<f32> {
    let device = Default::default();
    let data = common::tiny_data(3);
    let out = stad::run_test_set(model, data.test, 4, &device).unwrap();
    out.scores
}

#[test]
fn same_seed_gives_bit_identical_weights_and_scores() {
    let model = common::model(MethodKind::Stfpm, 64);
    let run = || common::fit(&model, &common::quick(2), common::tiny_data(1).train, None).unwrap();
    let (a, b) = (run(), run());
    assert!(
        weights(&a.model) == weights(&b.model),
        "weights differ between identical runs"
    );
    assert!(
        scores(&a.model) == scores(&b.model),
        "scores differ between identical runs"
    );
    assert_eq!(
        a.history.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
        b.history.iter().map(|e| e.train_loss).collect::<Vec<_>>()
    );

    // The control: another seed gives other weights.
    let c = common::fit(
        &model,
        &common::quick(2).with_seed(7),
        common::tiny_data(1).train,
        None,
    )
    .unwrap();
    assert!(weights(&a.model) != weights(&c.model));
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    resume_matches(stad::MethodConfig::ensemble(2));
}

/// A decoupled student's adapters are saved in `last.ckpt` / `best.ckpt` and resumed with
/// their optimizer state: the resumed run is the uninterrupted one.
#[test]
fn resumed_decoupled_run_equals_uninterrupted_run() {
    resume_matches(MethodKind::Decoupled.default_config());
}

fn resume_matches(method: stad::MethodConfig) {
    let model = common::model_with(method, 64);
    let data = common::tiny_data(2).train;

    let full_dir = tempfile::tempdir().unwrap();
    let full = common::fit(
        &model,
        &common::quick(3),
        data.clone(),
        Some(&RunDir::open(full_dir.path(), false).unwrap()),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let fresh = RunDir::open(dir.path(), false).unwrap();
    let first = common::fit(&model, &common::quick(1), data.clone(), Some(&fresh)).unwrap();
    drop(fresh);
    let run_dir = RunDir::open(dir.path(), true).unwrap();
    assert_eq!(first.history.len(), 1);
    let resumed = common::fit(&model, &common::quick(3), data, Some(&run_dir)).unwrap();

    assert_eq!(resumed.history.len(), 3);
    let losses = |h: &[stad::EpochSummary]| {
        h.iter()
            .map(|e| (e.train_loss, e.validation_score))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed.history), losses(&full.history));
    assert_eq!(resumed.best_epoch, full.best_epoch);
    assert!(
        weights(&resumed.model) == weights(&full.model),
        "resumed weights differ"
    );
}

/// Teacher features cached per image (all of them, part of them, none) give bit-identical
/// training: the cache only saves the teacher's forward passes. The observer sees how much was
/// cached.
#[test]
fn cached_teacher_features_give_bit_identical_runs() {
    #[derive(Default)]
    struct CacheSeen(Option<stad::TeacherCacheStatus>);
    impl stad::TrainObserver for CacheSeen {
        fn on_teacher_cache(&mut self, status: &stad::TeacherCacheStatus) {
            self.0 = Some(*status);
        }
    }
    // 160²: an image's features are ~0.24 MB, so a budget of a few MiB holds only part of them.
    let model = common::model(MethodKind::Stfpm, 160);
    let data = common::tiny_data(4).train;
    let device = Default::default();
    let run = |mb: usize| {
        let mut seen = CacheSeen::default();
        let config = common::quick(3).with_teacher_cache_mb(mb);
        let out = stad::train::<stad::backend::CpuAutodiff>(
            &model,
            &config,
            data.clone(),
            None,
            &device,
            &mut seen,
        )
        .unwrap();
        (out, seen.0.expect("cache status reported"))
    };
    let (none, none_status) = run(0);
    let (all, all_status) = run(1024);
    assert_eq!(none_status.cached, 0);
    assert!(all_status.complete() && all_status.total == data.len());
    let half_mib = (all_status.bytes_per_image * data.len() / 2) >> 20;
    let (part, part_status) = run(half_mib.max(1));
    assert!(
        part_status.cached > 0 && part_status.cached < data.len(),
        "a partial cache: {part_status:?}"
    );
    let losses = |o: &stad::TrainOutcome<Cpu>| {
        o.history
            .iter()
            .map(|e| (e.train_loss, e.validation_score))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&none), losses(&all));
    assert_eq!(losses(&none), losses(&part));
    assert!(
        weights(&none.model) == weights(&all.model),
        "cached run differs"
    );
    assert!(
        weights(&none.model) == weights(&part.model),
        "partly cached run differs"
    );
    assert!(scores(&none.model) == scores(&all.model));
}
