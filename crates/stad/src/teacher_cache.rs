//! The teacher's features, computed once per image and reused every epoch.
//!
//! The teacher is frozen and, without augmentation, sees the same input for an image in every
//! epoch, so its features never change. [`TeacherCache`] keeps them per image (indexed by the
//! loader's sample index) within a byte budget; images beyond the budget are recomputed each
//! time. A cached image's features are bit-identical to recomputed ones: the CPU kernels compute
//! every image independently of the other images of its batch.

use burn::prelude::*;
use stad_backbones::FrozenTeacher;

/// How many images' teacher features the trainer's teacher-feature cache holds ([`crate::TrainConfig::teacher_cache_mb`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeacherCacheStatus {
    /// Images whose features are cached.
    pub cached: usize,
    /// Images of the data set.
    pub total: usize,
    /// Bytes of one image's features (all taps, `f32`).
    pub bytes_per_image: usize,
    /// The budget, bytes.
    pub budget_bytes: usize,
}

impl TeacherCacheStatus {
    /// Every image is cached: the teacher no longer runs.
    pub fn complete(&self) -> bool {
        self.cached == self.total
    }
}

/// Per-image teacher features within a byte budget (see the module docs).
#[derive(Debug)]
pub struct TeacherCache<B: Backend> {
    budget_bytes: usize,
    used_bytes: usize,
    bytes_per_image: usize,
    /// Per sample index: one `[1, C, H, W]` map per tap.
    entries: Vec<Option<Vec<Tensor<B, 4>>>>,
}

impl<B: Backend> TeacherCache<B> {
    /// An empty cache for `samples` images and `budget_bytes` bytes (0 disables it).
    pub fn new(samples: usize, budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            used_bytes: 0,
            bytes_per_image: 0,
            entries: vec![None; samples],
        }
    }

    /// The teacher's features of the batch `images` whose samples are `indices`: cached images
    /// come from the cache, the others are computed (and stored while the budget allows).
    ///
    /// # Panics
    /// When an index is outside the data set the cache was made for, or `indices` does not
    /// match the batch.
    pub fn features(
        &mut self,
        teacher: &FrozenTeacher<B>,
        images: Tensor<B, 4>,
        indices: &[usize],
    ) -> Vec<Tensor<B, 4>> {
        assert_eq!(images.dims()[0], indices.len(), "one index per image");
        let missing: Vec<usize> = (0..indices.len())
            .filter(|&n| self.entries[indices[n]].is_none())
            .collect();
        let computed = match missing.len() {
            0 => Vec::new(),
            m if m == indices.len() => teacher.features(images),
            _ => {
                let rows = missing.iter().map(|&n| n as i64).collect::<Vec<_>>();
                let rows = Tensor::<B, 1, Int>::from_data(rows.as_slice(), &images.device());
                teacher.features(images.select(0, rows))
            }
        };
        if self.bytes_per_image == 0 && !missing.is_empty() {
            self.bytes_per_image = computed
                .iter()
                .map(|f| f.shape().num_elements() / missing.len() * 4)
                .sum();
        }
        // Store what was computed, while it fits.
        for (m, &n) in missing.iter().enumerate() {
            if self.used_bytes + self.bytes_per_image > self.budget_bytes {
                break;
            }
            self.entries[indices[n]] =
                Some(computed.iter().map(|f| f.clone().narrow(0, m, 1)).collect());
            self.used_bytes += self.bytes_per_image;
        }
        if missing.len() == indices.len() {
            return computed;
        }
        (0..teacher.tap_channels().len())
            .map(|k| {
                let mut next_computed = 0;
                let pieces = (0..indices.len())
                    .map(|n| {
                        if missing.get(next_computed) == Some(&n) {
                            next_computed += 1;
                            computed[k].clone().narrow(0, next_computed - 1, 1)
                        } else {
                            self.entries[indices[n]].as_ref().expect("cached")[k].clone()
                        }
                    })
                    .collect();
                Tensor::cat(pieces, 0)
            })
            .collect()
    }

    /// What the cache holds now.
    pub fn status(&self) -> TeacherCacheStatus {
        TeacherCacheStatus {
            cached: self.entries.iter().filter(|e| e.is_some()).count(),
            total: self.entries.len(),
            bytes_per_image: self.bytes_per_image,
            budget_bytes: self.budget_bytes,
        }
    }
}
