//! Seeded shuffles and splits are identical across runs: the exact orders are pinned here
//! (computed independently from the SplitMix64 / Fisher–Yates / Lemire definitions).

use proptest::prelude::*;
use stad_data::split::derive_seed;
use stad_data::{
    BatchLoader, Dataset, LoaderConfig, PreprocessConfig, SyntheticConfig, SyntheticKind,
    holdout_split, permutation,
};

#[test]
fn pinned_permutations() {
    assert_eq!(permutation(10, 42), [8, 3, 6, 5, 4, 0, 9, 2, 1, 7]);
    assert_eq!(derive_seed(7, 0), 7191089600892374487);
    assert_eq!(derive_seed(7, 1), 6951516134914417455);
}

#[test]
fn loader_epoch_orders_are_pinned() {
    let ds = Dataset::synthetic(&SyntheticConfig {
        n_train: 12,
        ..SyntheticConfig::tiny(0, SyntheticKind::Object)
    });
    let cfg = LoaderConfig {
        batch_size: 5,
        shuffle: true,
        seed: 7,
        ..LoaderConfig::default()
    };
    let loader = BatchLoader::new(ds.train, PreprocessConfig::square(32), cfg).unwrap();
    assert_eq!(loader.order(0), [10, 6, 0, 3, 4, 11, 1, 2, 9, 5, 7, 8]);
    assert_eq!(loader.order(1), [7, 2, 10, 9, 4, 1, 6, 3, 5, 11, 0, 8]);
    let idx = loader.batch_indices(0);
    assert_eq!(
        idx,
        vec![vec![10, 6, 0, 3, 4], vec![11, 1, 2, 9, 5], vec![7, 8]]
    );
    let batches: Vec<_> = loader.host_batches(0).map(Result::unwrap).collect();
    assert_eq!(
        batches
            .iter()
            .map(|b| b.indices.clone())
            .collect::<Vec<_>>(),
        idx
    );
    assert_eq!(loader.num_batches(), 3);
}

#[test]
fn drop_last_and_no_shuffle() {
    let ds = Dataset::synthetic(&SyntheticConfig::tiny(0, SyntheticKind::Texture));
    let cfg = LoaderConfig {
        batch_size: 3,
        drop_last: true,
        ..LoaderConfig::default()
    };
    let loader = BatchLoader::new(ds.train, PreprocessConfig::square(16), cfg).unwrap();
    assert_eq!(loader.order(5), (0..8).collect::<Vec<_>>());
    assert_eq!(loader.num_batches(), 2);
    assert_eq!(loader.host_batches(0).count(), 2);
}

#[test]
fn synthetic_data_is_identical_across_generations() {
    let cfg = SyntheticConfig::tiny(3, SyntheticKind::Object);
    let a = Dataset::synthetic(&cfg);
    let b = Dataset::synthetic(&cfg);
    let la = BatchLoader::new(
        a.test,
        PreprocessConfig::square(32),
        LoaderConfig::new().with_batch_size(64),
    )
    .unwrap();
    let lb = BatchLoader::new(
        b.test,
        PreprocessConfig::square(32),
        LoaderConfig::new().with_batch_size(64),
    )
    .unwrap();
    let ba = la.load_batch(&(0..la.len()).collect::<Vec<_>>()).unwrap();
    let bb = lb.load_batch(&(0..lb.len()).collect::<Vec<_>>()).unwrap();
    assert_eq!(ba, bb);
}

proptest! {
    #[test]
    fn holdout_is_a_seeded_partition(n in 0usize..300, frac in 0.0f64..0.95, seed: u64) {
        let items: Vec<usize> = (0..n).collect();
        let (kept, held) = holdout_split(items.clone(), frac, seed).unwrap();
        let (kept2, held2) = holdout_split(items, frac, seed).unwrap();
        prop_assert_eq!(&kept, &kept2);
        prop_assert_eq!(&held, &held2);
        prop_assert_eq!(kept.len() + held.len(), n);
        let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(held.len(), stad_data::split::holdout_count(n, frac));
        if n > 0 { prop_assert!(!kept.is_empty()); }
    }
}
