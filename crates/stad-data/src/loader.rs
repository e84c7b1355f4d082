//! Batching: parallel decoding, prefetching and an optional in-memory cache.
//!
//! A [`BatchLoader`] owns a list of samples and yields batches in a seeded order:
//! - each batch's samples are decoded, resized and normalised in parallel (rayon: the global
//!   pool, or a private pool of [`LoaderConfig::num_threads`] threads);
//! - a background thread prepares up to [`LoaderConfig::prefetch`] batches ahead, so the next
//!   batch is ready while the model works on the current one;
//! - with [`LoaderConfig::cache`], each preprocessed sample is kept in memory after its first
//!   load (`3·H·W` floats + `H·W` bytes: 0.65 MB at 224², 0.85 MB at 256²), so later epochs
//!   skip decoding.
//!
//! [`HostBatch`] holds plain `Vec<f32>` data for code that does not need tensors;
//! [`HostBatch::to_device`] turns it into a [`Batch`] of burn tensors.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, OnceLock};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::preprocess::{PreparedSample, PreprocessConfig, prepare_sample};
use crate::sample::{Label, Sample};
use crate::split::{derive_seed, permutation};

/// How a [`BatchLoader`] batches (a burn `Config`: `LoaderConfig::new()` is the default,
/// `with_*` set fields).
///
/// ```
/// use stad_data::LoaderConfig;
/// let config = LoaderConfig::new().with_batch_size(32).with_shuffle(true).with_seed(42);
/// assert_eq!((config.batch_size, config.prefetch), (32, 1));
/// ```
#[derive(burn::config::Config, Debug, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Samples per batch (default 8).
    #[config(default = 8)]
    pub batch_size: usize,
    /// Shuffle the order each epoch (default `false`: file order).
    #[config(default = false)]
    pub shuffle: bool,
    /// Seed of the shuffles; epoch `e` uses `derive_seed(seed, e)` (default 0).
    #[config(default = 0)]
    pub seed: u64,
    /// Drop a last batch smaller than `batch_size` (default `false`).
    #[config(default = false)]
    pub drop_last: bool,
    /// Batches prepared ahead on a background thread (default 1; 0 = prepare each batch
    /// when it is asked for, on the calling thread).
    #[config(default = 1)]
    pub prefetch: usize,
    /// Keep preprocessed samples in memory after their first load (default `false`).
    #[config(default = false)]
    pub cache: bool,
    /// Threads that decode in parallel: `None` (default) uses rayon's global pool, `Some(n)`
    /// a private pool of `n` threads (`Some(1)`: sequential).
    pub num_threads: Option<usize>,
}

impl Default for LoaderConfig {
    /// [`LoaderConfig::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// A batch in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Images, `[batch, 3, height, width]`, row-major, normalised.
    pub images: Vec<f32>,
    /// Masks, `[batch, 1, height, width]`, values 0.0 or 1.0.
    pub masks: Vec<f32>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Labels.
    pub labels: Vec<Label>,
    /// Defect types (`"good"` for nominal).
    pub defects: Vec<String>,
    /// Image files (`None` for in-memory images).
    pub paths: Vec<Option<PathBuf>>,
    /// Readable identifiers (the path, or the in-memory name).
    pub names: Vec<String>,
    /// `false` for label-only anomalous images, whose masks mean nothing.
    pub has_mask: Vec<bool>,
    /// Positions of the samples in the loader's sample list.
    pub indices: Vec<usize>,
    /// Original `(width, height)` of each image.
    pub original_sizes: Vec<(u32, u32)>,
}

impl HostBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `[3, H, W]` floats of sample `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = 3 * self.height * self.width;
        &self.images[i * n..(i + 1) * n]
    }

    /// The `[H, W]` mask of sample `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn mask(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.masks[i * n..(i + 1) * n]
    }

    /// Moves only the images onto `device`, `[batch, 3, height, width]`, leaving
    /// [`images`](Self::images) empty; labels and masks stay on the host (inference needs no
    /// mask on the device).
    pub fn take_images<B: Backend>(&mut self, device: &B::Device) -> Tensor<B, 4> {
        let shape = [self.len(), 3, self.height, self.width];
        Tensor::from_data(
            TensorData::new(std::mem::take(&mut self.images), shape),
            device,
        )
    }

    /// Moves the batch onto `device` as tensors.
    pub fn to_device<B: Backend>(mut self, device: &B::Device) -> Batch<B> {
        let b = self.len();
        let (h, w) = (self.height, self.width);
        let images = self.take_images::<B>(device);
        let masks = Tensor::<B, 4>::from_data(TensorData::new(self.masks, [b, 1, h, w]), device);
        Batch {
            images,
            masks,
            labels: self.labels,
            defects: self.defects,
            paths: self.paths,
            names: self.names,
            has_mask: self.has_mask,
            indices: self.indices,
        }
    }
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// Images, `[batch, 3, height, width]`, normalised.
    pub images: Tensor<B, 4>,
    /// Binary masks, `[batch, 1, height, width]`.
    pub masks: Tensor<B, 4>,
    /// Labels.
    pub labels: Vec<Label>,
    /// Defect types.
    pub defects: Vec<String>,
    /// Image files (`None` for in-memory images).
    pub paths: Vec<Option<PathBuf>>,
    /// Readable identifiers.
    pub names: Vec<String>,
    /// `false` for label-only anomalous images.
    pub has_mask: Vec<bool>,
    /// Positions of the samples in the loader's sample list.
    pub indices: Vec<usize>,
}

impl<B: Backend> Batch<B> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

struct Inner {
    samples: Vec<Sample>,
    preprocess: PreprocessConfig,
    config: LoaderConfig,
    cache: Option<Vec<OnceLock<Arc<PreparedSample>>>>,
    pool: Option<rayon::ThreadPool>,
}

impl Inner {
    fn prepare(&self, index: usize) -> Result<Arc<PreparedSample>> {
        let sample = self.samples.get(index).ok_or_else(|| {
            DataError::InvalidConfig(format!(
                "sample index {index} out of range ({})",
                self.samples.len()
            ))
        })?;
        if let Some(cache) = &self.cache {
            if let Some(p) = cache[index].get() {
                return Ok(p.clone());
            }
            let p = Arc::new(prepare_sample(sample, &self.preprocess)?);
            let _ = cache[index].set(p.clone());
            return Ok(p);
        }
        Ok(Arc::new(prepare_sample(sample, &self.preprocess)?))
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn load_batch(&self, indices: &[usize]) -> Result<HostBatch> {
        let prepared: Vec<Arc<PreparedSample>> = self.install(|| {
            indices
                .par_iter()
                .map(|&i| self.prepare(i))
                .collect::<Result<_>>()
        })?;
        let (h, w) = (self.preprocess.height, self.preprocess.width);
        let mut images = Vec::with_capacity(indices.len() * 3 * h * w);
        let mut masks = Vec::with_capacity(indices.len() * h * w);
        for p in &prepared {
            images.extend_from_slice(&p.image);
            masks.extend(p.mask.iter().map(|&m| f32::from(m)));
        }
        let samples: Vec<&Sample> = indices.iter().map(|&i| &self.samples[i]).collect();
        Ok(HostBatch {
            images,
            masks,
            height: h,
            width: w,
            labels: samples.iter().map(|s| s.label).collect(),
            defects: samples.iter().map(|s| s.defect.clone()).collect(),
            paths: samples
                .iter()
                .map(|s| s.path().map(PathBuf::from))
                .collect(),
            names: samples.iter().map(|s| s.name()).collect(),
            has_mask: prepared.iter().map(|p| p.has_mask).collect(),
            indices: indices.to_vec(),
            original_sizes: prepared.iter().map(|p| p.original_size).collect(),
        })
    }
}

/// Yields batches of preprocessed samples; cheap to clone (shared state).
#[derive(Clone)]
pub struct BatchLoader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BatchLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchLoader")
            .field("samples", &self.inner.samples.len())
            .field("preprocess", &self.inner.preprocess)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl BatchLoader {
    /// A loader over `samples`.
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] for a batch size of 0, `num_threads == Some(0)`, an
    /// invalid [`PreprocessConfig`], or a thread pool that cannot be built.
    pub fn new(
        samples: Vec<Sample>,
        preprocess: PreprocessConfig,
        config: LoaderConfig,
    ) -> Result<Self> {
        preprocess.validate()?;
        if config.batch_size == 0 {
            return Err(DataError::InvalidConfig(
                "batch size must be positive".into(),
            ));
        }
        let pool = match config.num_threads {
            None => None,
            Some(0) => {
                return Err(DataError::InvalidConfig(
                    "num_threads must be positive".into(),
                ));
            }
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("stad-data-{i}"))
                    .build()
                    .map_err(|e| {
                        DataError::InvalidConfig(format!("cannot build a thread pool: {e}"))
                    })?,
            ),
        };
        let cache = config
            .cache
            .then(|| (0..samples.len()).map(|_| OnceLock::new()).collect());
        Ok(BatchLoader {
            inner: Arc::new(Inner {
                samples,
                preprocess,
                config,
                cache,
                pool,
            }),
        })
    }

    /// The samples, in their original order.
    pub fn samples(&self) -> &[Sample] {
        &self.inner.samples
    }

    /// The preprocessing.
    pub fn preprocess(&self) -> &PreprocessConfig {
        &self.inner.preprocess
    }

    /// The batching configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.inner.config
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inner.samples.len()
    }

    /// `true` when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.inner.samples.is_empty()
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.len(), self.inner.config.batch_size);
        if self.inner.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The sample order of an epoch: `0..len` without shuffling, else a permutation seeded by
    /// `derive_seed(seed, epoch)` (the same on every run).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        if self.inner.config.shuffle {
            permutation(self.len(), derive_seed(self.inner.config.seed, epoch))
        } else {
            (0..self.len()).collect()
        }
    }

    /// The index lists of an epoch's batches.
    pub fn batch_indices(&self, epoch: u64) -> Vec<Vec<usize>> {
        let b = self.inner.config.batch_size;
        let mut out: Vec<Vec<usize>> = self.order(epoch).chunks(b).map(<[usize]>::to_vec).collect();
        if self.inner.config.drop_last && out.last().is_some_and(|l| l.len() < b) {
            out.pop();
        }
        out
    }

    /// Preprocesses one sample (from the cache when it is on).
    ///
    /// # Errors
    /// Those of [`prepare_sample`]; [`DataError::InvalidConfig`] for an index out of range.
    pub fn prepare(&self, index: usize) -> Result<Arc<PreparedSample>> {
        self.inner.prepare(index)
    }

    /// Loads the samples at `indices` as one batch, in parallel, on the calling thread.
    ///
    /// # Errors
    /// The first error of [`prepare_sample`] among the samples.
    pub fn load_batch(&self, indices: &[usize]) -> Result<HostBatch> {
        self.inner.load_batch(indices)
    }

    /// Loads every sample once, in parallel, filling the cache (when it is on) and checking
    /// that every file decodes.
    ///
    /// # Errors
    /// The first error met.
    pub fn warm_up(&self) -> Result<()> {
        let inner = &self.inner;
        inner.install(|| {
            (0..inner.samples.len())
                .into_par_iter()
                .try_for_each(|i| inner.prepare(i).map(|_| ()))
        })
    }

    /// The batches of one epoch in host memory. With `prefetch > 0` they are prepared on a
    /// background thread, `prefetch` batches ahead.
    ///
    /// After an error the iterator yields that error and ends.
    pub fn host_batches(&self, epoch: u64) -> HostBatches {
        let batches = self.batch_indices(epoch);
        let prefetch = self.inner.config.prefetch;
        if prefetch == 0 || batches.is_empty() {
            return HostBatches {
                state: State::Sync {
                    inner: self.inner.clone(),
                    batches: batches.into_iter(),
                },
                done: false,
            };
        }
        let (tx, rx) = sync_channel(prefetch - 1);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("stad-data-prefetch".into())
            .spawn(move || {
                for idx in batches {
                    let r = inner.load_batch(&idx);
                    let stop = r.is_err();
                    // The receiver is gone when the consumer dropped the iterator.
                    if tx.send(r).is_err() || stop {
                        break;
                    }
                }
            });
        match spawned {
            Ok(handle) => HostBatches {
                state: State::Prefetch(rx, Some(handle)),
                done: false,
            },
            // No thread available: fall back to preparing batches on the calling thread.
            Err(_) => HostBatches {
                state: State::Sync {
                    inner: self.inner.clone(),
                    batches: self.batch_indices(epoch).into_iter(),
                },
                done: false,
            },
        }
    }

    /// The batches of one epoch as tensors on `device` (see [`BatchLoader::host_batches`]).
    pub fn batches<B: Backend>(&self, epoch: u64, device: &B::Device) -> Batches<B> {
        Batches {
            host: self.host_batches(epoch),
            device: device.clone(),
        }
    }
}

enum State {
    Sync {
        inner: Arc<Inner>,
        batches: std::vec::IntoIter<Vec<usize>>,
    },
    Prefetch(
        Receiver<Result<HostBatch>>,
        Option<std::thread::JoinHandle<()>>,
    ),
}

/// Iterator over an epoch's [`HostBatch`]es (see [`BatchLoader::host_batches`]).
pub struct HostBatches {
    state: State,
    done: bool,
}

impl std::fmt::Debug for HostBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBatches")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iterator for HostBatches {
    type Item = Result<HostBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match &mut self.state {
            State::Sync { inner, batches } => batches.next().map(|idx| inner.load_batch(&idx)),
            State::Prefetch(rx, handle) => match rx.recv() {
                Ok(r) => Some(r),
                // The producer is done: it finished the epoch, or it panicked (reported).
                Err(_) => match handle.take().map(std::thread::JoinHandle::join) {
                    Some(Err(payload)) => Some(Err(DataError::WorkerPanic(
                        crate::error::panic_message(&*payload)
                            .unwrap_or_else(|| "unknown panic".to_string()),
                    ))),
                    _ => None,
                },
            },
        };
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// Iterator over an epoch's [`Batch`]es on a device (see [`BatchLoader::batches`]).
pub struct Batches<B: Backend> {
    host: HostBatches,
    device: B::Device,
}

impl<B: Backend> std::fmt::Debug for Batches<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Iterator for Batches<B> {
    type Item = Result<Batch<B>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.host
            .next()
            .map(|r| r.map(|h| h.to_device(&self.device)))
    }
}
