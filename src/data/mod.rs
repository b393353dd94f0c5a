//! Datasets as plain matrices: CIFAR-10 binary batches ([`cifar`]), MNIST / Fashion-MNIST IDX
//! files, gzipped or raw ([`idx`]), and a seeded synthetic teacher set ([`synthetic`]).
//!
//! Every loader returns a [`Dataset`]: inputs flattened to `input_dim` features per example and
//! standardized per example ([`standardize_examples`]: mean 0, population std 1 over the
//! example's own pixels and channels), labels as class indices, and provenance (which rows of
//! the source were taken, and a human-readable description of files and subset rule).
//!
//! Random subsets (the `n_train` training subset with `subset = "random"`, and the sharpness
//! measurement set of [`measurement_indices`]) use our own partial Fisher–Yates shuffle on
//! `Xoshiro256PlusPlus` with an unbiased bounded draw built on `next_u64`, so the chosen rows
//! depend only on (seed, sizes) and not on the sampling algorithms of a `rand` release. Each
//! role gets its own stream: the same seed number for the subset and the measurement set
//! does not give correlated draws.

pub(crate) mod cifar;
pub(crate) mod idx;
pub mod shared;
pub(crate) mod synthetic;

pub use shared::SharedArray;

use crate::config::{DataConfig, DatasetKind};
use crate::rng::{seeded_sample, stream_seed, Stream};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Datasets this process has loaded (read or generated) by [`load`].
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// How many datasets this process has loaded (read or generated) so far: a sweep sums it
/// over its ranks to tell how often the files were read.
pub fn loads() -> usize {
    LOADS.load(Ordering::Relaxed)
}

/// A dataset held in memory: `n` examples of `input_dim` features, `classes` classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short name (`fashion-mnist`, `mnist`, `cifar10`, `synthetic`).
    pub name: String,
    /// Features per example (784 for the IDX sets, 3072 for CIFAR-10).
    pub input_dim: usize,
    /// Number of classes (10 for every dataset here).
    pub classes: usize,
    /// Number of examples.
    pub n: usize,
    /// Inputs, column-major `input_dim × n`: example `i` is `x[i*input_dim..(i+1)*input_dim]`,
    /// already standardized per example.
    pub x: Vec<f32>,
    /// Class index per example, in `0..classes`.
    pub labels: Vec<u8>,
    /// Which rows of the source were taken (0-based; for CIFAR-10 a row counts across the
    /// batch files in order, 10000 per file), one per example.
    pub indices: Vec<usize>,
    /// Human-readable provenance: files read or synthetic parameters, and the subset rule.
    pub source: String,
}

impl Dataset {
    /// One-hot targets, column-major `classes × n`: entry `(j, i)` at `i*classes + j` is 1
    /// when example `i` has label `j`, else 0.
    pub fn one_hot(&self) -> Vec<f32> {
        let mut y = vec![0.0f32; self.classes * self.n];
        for (i, &label) in self.labels.iter().enumerate() {
            y[i * self.classes + label as usize] = 1.0;
        }
        y
    }

    /// The examples at positions `idx` (positions in this dataset, in the order given), with
    /// their provenance indices carried over. Panics if a position is `>= self.n`.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let d = self.input_dim;
        let mut x = Vec::with_capacity(idx.len() * d);
        let mut labels = Vec::with_capacity(idx.len());
        let mut indices = Vec::with_capacity(idx.len());
        for &i in idx {
            assert!(
                i < self.n,
                "select: position {i} out of range (n = {})",
                self.n
            );
            x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
            labels.push(self.labels[i]);
            indices.push(self.indices[i]);
        }
        Dataset {
            name: self.name.clone(),
            input_dim: d,
            classes: self.classes,
            n: idx.len(),
            x,
            labels,
            indices,
            source: format!("{}; then {} selected examples", self.source, idx.len()),
        }
    }
}

/// Everything that can go wrong reading a dataset. Each message names the file (or
/// directory) and what is wrong. Byte offsets and lengths of gzipped files refer to the
/// decompressed contents (the message says so).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the dataset needs does not exist.
    #[error("{path}: missing file ({what})")]
    MissingFile {
        /// The path looked for (for IDX files: the raw name; `.gz` was tried too).
        path: PathBuf,
        /// What the file should hold.
        what: String,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file starts with the gzip magic bytes but does not decompress.
    #[error("{path}: corrupt or truncated gzip data: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },
    /// An IDX file with the wrong magic number (e.g. a labels file given as images).
    #[error("{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, big-endian.
        found: u32,
        /// The magic number of the expected file kind.
        expected: u32,
        /// The expected file kind.
        what: &'static str,
    },
    /// A file shorter than its header says it must be.
    #[error("{path}: truncated file: expected {expected} bytes{note}, found {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Length implied by the header.
        expected: u64,
        /// Actual length.
        actual: u64,
        /// `""` or `" (decompressed)"`.
        note: &'static str,
    },
    /// A file longer than its header says it should be.
    #[error("{path}: unexpected trailing data: expected {expected} bytes{note}, found {actual}")]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Length implied by the header.
        expected: u64,
        /// Actual length.
        actual: u64,
        /// `""` or `" (decompressed)"`.
        note: &'static str,
    },
    /// An IDX header that is well-formed but unusable (zero rows or columns).
    #[error("{path}: bad header: {message}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The images and labels files disagree on the number of examples.
    #[error(
        "inconsistent sizes: {images} holds {n_images} images but {labels} holds {n_labels} labels"
    )]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Examples in the images header.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Examples in the labels header.
        n_labels: usize,
    },
    /// A label outside `0..classes`.
    #[error(
        "{path}: label {label} at byte offset {offset}{note} is out of range (expected 0..={max})"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Offset of the label byte.
        offset: u64,
        /// The value found.
        label: u8,
        /// Largest allowed label.
        max: u8,
        /// `""` or `" (decompressed)"`.
        note: &'static str,
    },
    /// A CIFAR-10 batch file whose length is not a whole number of records.
    #[error(
        "{path}: truncated record {record} at byte offset {offset}: records are {record_len} bytes, \
         the file has {file_len} bytes"
    )]
    TruncatedRecord {
        /// The batch file.
        path: PathBuf,
        /// Index of the incomplete record in the file.
        record: u64,
        /// Byte offset where that record starts.
        offset: u64,
        /// Bytes per record.
        record_len: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// `data.n_train` larger than the source holds.
    #[error(
        "{path}: data.n_train = {requested} is larger than the {available} examples available"
    )]
    NotEnoughExamples {
        /// The file (or directory of batch files) read.
        path: PathBuf,
        /// `data.n_train`.
        requested: usize,
        /// Examples the source holds.
        available: usize,
    },
    /// A configuration value the loader cannot use (names the key).
    #[error("{key}: {message}")]
    BadConfig {
        /// Dotted config key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Loads the training subset described by `cfg`: `n_train` examples (the first ones, or a
/// seeded random subset, sorted by source row), standardized per example.
pub fn load(cfg: &DataConfig) -> Result<Dataset, DataError> {
    LOADS.fetch_add(1, Ordering::Relaxed);
    if cfg.n_train == 0 {
        return Err(DataError::BadConfig {
            key: "data.n_train",
            message: "must be >= 1 (got 0)".into(),
        });
    }
    match cfg.dataset {
        DatasetKind::FashionMnist => idx::load(cfg, "fashion-mnist"),
        DatasetKind::Mnist => idx::load(cfg, "mnist"),
        DatasetKind::Cifar10 => cifar::load(cfg),
        DatasetKind::Synthetic => synthetic::generate(cfg),
    }
}

/// The fixed sharpness-measurement set: a seeded subset of `0..n` of size
/// `min(measure_n, n)`, sorted ascending; all of `0..n` when `measure_n >= n`.
pub fn measurement_indices(n: usize, measure_n: usize, seed: u64) -> Vec<usize> {
    if measure_n >= n {
        return (0..n).collect();
    }
    seeded_sample(n, measure_n, stream_seed(seed, Stream::Measurement))
}

/// Standardizes each example of `x` (consecutive blocks of `input_dim` values) in place to
/// mean 0 and population standard deviation 1 over its features. An example whose values
/// are all equal becomes all zeros (never NaN). Sums run in f64.
///
/// Panics if `input_dim` is 0 or does not divide `x.len()`.
pub fn standardize_examples(x: &mut [f32], input_dim: usize) {
    assert!(input_dim > 0, "standardize_examples: input_dim must be > 0");
    assert_eq!(
        x.len() % input_dim,
        0,
        "standardize_examples: length {} is not a multiple of input_dim {input_dim}",
        x.len()
    );
    // Each example alone (the same bits in any thread): over the process's threads.
    x.par_chunks_exact_mut(input_dim).for_each(|example| {
        let first = example[0];
        if example.iter().all(|&v| v == first) {
            example.fill(0.0);
            return;
        }
        let n = input_dim as f64;
        let mean = example.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = example
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let inv_std = 1.0 / var.sqrt();
        for v in example.iter_mut() {
            *v = ((*v as f64 - mean) * inv_std) as f32;
        }
    });
}

/// Rows to take from a source of `available` examples: the first `n`, or a seeded random
/// subset of size `n` (sorted). The caller has checked `n <= available`.
pub(crate) fn subset_rows(available: usize, cfg: &DataConfig) -> Vec<usize> {
    match cfg.subset {
        crate::config::SubsetKind::First => (0..cfg.n_train).collect(),
        crate::config::SubsetKind::Random => seeded_sample(
            available,
            cfg.n_train,
            stream_seed(cfg.subset_seed, Stream::Subset),
        ),
    }
}

/// Words for the subset rule, for [`Dataset::source`].
pub(crate) fn subset_description(available: usize, cfg: &DataConfig) -> String {
    match cfg.subset {
        crate::config::SubsetKind::First => {
            format!("subset: first {} of {available} examples", cfg.n_train)
        }
        crate::config::SubsetKind::Random => format!(
            "subset: {} of {available} examples drawn at random with data.subset_seed = {} \
             (sorted by row)",
            cfg.n_train, cfg.subset_seed
        ),
    }
}

/// Description of the preprocessing, for [`Dataset::source`].
pub(crate) const STANDARDIZATION_NOTE: &str =
    "each example standardized over its features (mean 0, population std 1)";

#[cfg(test)]
mod tests {
    use super::*;

    fn example_stats(e: &[f32]) -> (f64, f64) {
        let n = e.len() as f64;
        let mean = e.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = e.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn standardize_gives_mean_zero_std_one_per_example() {
        let mut x: Vec<f32> = (0..3 * 50).map(|i| ((i * 37) % 256) as f32).collect();
        x[100..150].iter_mut().for_each(|v| *v *= 1000.0);
        standardize_examples(&mut x, 50);
        for e in x.chunks(50) {
            let (mean, std) = example_stats(e);
            assert!(mean.abs() < 1e-6, "mean {mean}");
            assert!((std - 1.0).abs() < 1e-5, "std {std}");
        }
    }

    #[test]
    fn standardize_constant_example_is_zero_not_nan() {
        let mut x = vec![7.0f32; 10];
        x.extend((0..10).map(|i| i as f32));
        standardize_examples(&mut x, 10);
        assert!(x[..10].iter().all(|&v| v == 0.0), "{x:?}");
        assert!(x.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn measurement_indices_properties() {
        let a = measurement_indices(1000, 100, 5);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        assert!(a.iter().all(|&i| i < 1000));
        assert_eq!(a, measurement_indices(1000, 100, 5), "deterministic");
        assert_ne!(a, measurement_indices(1000, 100, 6), "depends on the seed");
        assert_eq!(measurement_indices(50, 50, 1), (0..50).collect::<Vec<_>>());
        assert_eq!(
            measurement_indices(50, 4096, 1),
            (0..50).collect::<Vec<_>>()
        );
        assert_eq!(measurement_indices(10, 0, 1), Vec::<usize>::new());
    }

    #[test]
    fn one_hot_and_select() {
        let d = Dataset {
            name: "t".into(),
            input_dim: 2,
            classes: 3,
            n: 3,
            x: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            labels: vec![2, 0, 1],
            indices: vec![10, 11, 12],
            source: "test".into(),
        };
        assert_eq!(
            d.one_hot(),
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        let s = d.select(&[2, 0]);
        assert_eq!(s.n, 2);
        assert_eq!(s.x, vec![4.0, 5.0, 0.0, 1.0]);
        assert_eq!(s.labels, vec![1, 2]);
        assert_eq!(s.indices, vec![12, 10]);
    }

    #[test]
    fn load_rejects_zero_n_train() {
        let cfg = DataConfig {
            n_train: 0,
            ..DataConfig::default()
        };
        let err = load(&cfg).unwrap_err();
        assert!(err.to_string().contains("data.n_train"), "{err}");
    }
}
