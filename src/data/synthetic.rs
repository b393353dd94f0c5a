//! A seeded synthetic teacher set: `n_train` inputs x ~ N(0, I) of dimension
//! `synthetic_input_dim`, standardized per example like every other dataset, and labels
//! from a fixed random two-layer ReLU teacher applied to those standardized inputs:
//!
//! label = argmax_j [W₂ (relu(W₁ x) − 1/√(2π))]_j,
//! W₁ ∈ R^{H×D} with entries N(0, 1/D), W₂ ∈ R^{10×H} with entries N(0, 1/H), H = 100.
//!
//! A standardized x has ‖x‖² = D, so each pre-activation is N(0, 1) over the teacher draw and
//! E relu = 1/√(2π); subtracting it keeps the classes roughly balanced (without it the
//! positive mean of the hidden units favours the rows of W₂ with the largest sum).
//!
//! Teacher weights and inputs use separate streams of `synthetic_seed`; example i is the i-th
//! draw of the input stream, so a larger `n_train` extends a smaller one. `data.subset` does
//! not apply (there is no file to take a subset of): the set is always the first `n_train`
//! examples of the stream.

use super::{standardize_examples, DataError, Dataset, STANDARDIZATION_NOTE};
use crate::config::DataConfig;
use crate::rng::{stream_seed, Stream};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Hidden width H of the teacher.
pub const TEACHER_WIDTH: usize = 100;
/// Number of classes.
pub const CLASSES: usize = 10;

/// The fixed random teacher network.
struct Teacher {
    input_dim: usize,
    /// H × D, row-major (row h is hidden unit h).
    w1: Vec<f64>,
    /// 10 × H, row-major.
    w2: Vec<f64>,
}

impl Teacher {
    fn new(input_dim: usize, seed: u64) -> Teacher {
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, Stream::SyntheticTeacher));
        let mut draw = |count: usize, scale: f64| -> Vec<f64> {
            (0..count)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    scale * z
                })
                .collect()
        };
        let w1 = draw(TEACHER_WIDTH * input_dim, (1.0 / input_dim as f64).sqrt());
        let w2 = draw(CLASSES * TEACHER_WIDTH, (1.0 / TEACHER_WIDTH as f64).sqrt());
        Teacher { input_dim, w1, w2 }
    }

    fn label(&self, x: &[f32]) -> u8 {
        let relu_mean = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        let hidden: Vec<f64> = self
            .w1
            .chunks_exact(self.input_dim)
            .map(|row| {
                let z: f64 = row.iter().zip(x).map(|(w, &v)| w * v as f64).sum();
                z.max(0.0) - relu_mean
            })
            .collect();
        let mut best = (0, f64::NEG_INFINITY);
        for (j, row) in self.w2.chunks_exact(TEACHER_WIDTH).enumerate() {
            let out: f64 = row.iter().zip(&hidden).map(|(w, h)| w * h).sum();
            if out > best.1 {
                best = (j, out);
            }
        }
        best.0 as u8
    }
}

/// Generates the synthetic set described by `cfg` (see the module docs).
pub fn generate(cfg: &DataConfig) -> Result<Dataset, DataError> {
    let d = cfg.synthetic_input_dim;
    if d == 0 {
        return Err(DataError::BadConfig {
            key: "data.synthetic_input_dim",
            message: "must be >= 1 (got 0)".into(),
        });
    }
    let n = cfg.n_train;
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(stream_seed(cfg.synthetic_seed, Stream::SyntheticInputs));
    let mut x: Vec<f32> = (0..n * d)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z as f32
        })
        .collect();
    standardize_examples(&mut x, d);
    let teacher = Teacher::new(d, cfg.synthetic_seed);
    // Each label is computed alone (the same bits in any thread): over the process's threads.
    let labels = x.par_chunks_exact(d).map(|e| teacher.label(e)).collect();
    let source = format!(
        "synthetic teacher set: {n} examples, x ~ N(0, I_{d}) then {STANDARDIZATION_NOTE}; \
         label = argmax W2 (relu(W1 x) - 1/sqrt(2 pi)), W1 {TEACHER_WIDTH}x{d} ~ N(0, 1/{d}), \
         W2 {CLASSES}x{TEACHER_WIDTH} ~ N(0, 1/{TEACHER_WIDTH}); data.synthetic_seed = {}; \
         first {n} examples of the stream (data.subset does not apply)",
        cfg.synthetic_seed
    );
    Ok(Dataset {
        name: "synthetic".into(),
        input_dim: d,
        classes: CLASSES,
        n,
        x,
        labels,
        indices: (0..n).collect(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetKind;

    fn cfg(n: usize, dim: usize, seed: u64) -> DataConfig {
        DataConfig {
            dataset: DatasetKind::Synthetic,
            n_train: n,
            synthetic_input_dim: dim,
            synthetic_seed: seed,
            ..DataConfig::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_differs_across_seeds() {
        let a = super::super::load(&cfg(200, 64, 3)).unwrap();
        let b = super::super::load(&cfg(200, 64, 3)).unwrap();
        let c = super::super::load(&cfg(200, 64, 4)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.x, c.x);
        assert_ne!(a.labels, c.labels);
        assert_eq!((a.n, a.input_dim, a.classes), (200, 64, 10));
        assert_eq!(a.x.len(), 200 * 64);
        assert!(a.source.contains("synthetic_seed = 3"));
    }

    #[test]
    fn larger_n_extends_smaller() {
        let small = super::super::load(&cfg(10, 32, 1)).unwrap();
        let large = super::super::load(&cfg(30, 32, 1)).unwrap();
        assert_eq!(small.x[..], large.x[..10 * 32]);
        assert_eq!(small.labels[..], large.labels[..10]);
    }

    #[test]
    fn inputs_standardized_and_classes_balanced() {
        let d = super::super::load(&cfg(3000, 128, 0)).unwrap();
        for e in d.x.chunks(128) {
            let mean = e.iter().map(|&v| v as f64).sum::<f64>() / 128.0;
            let var = e.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 128.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        }
        let mut counts = [0usize; 10];
        for &l in &d.labels {
            counts[l as usize] += 1;
        }
        // 300 each if balanced; without the centring of the hidden units a few classes
        // take most of the examples.
        assert!(counts.iter().all(|c| (150..=500).contains(c)), "{counts:?}");
    }

    #[test]
    fn labels_are_a_function_of_the_input() {
        // The teacher is fixed: the same input always gets the same label.
        let teacher = Teacher::new(16, 9);
        let data = super::super::load(&cfg(50, 16, 9)).unwrap();
        for (e, &l) in data.x.chunks(16).zip(&data.labels) {
            assert_eq!(teacher.label(e), l);
        }
    }

    #[test]
    fn zero_input_dim_is_rejected() {
        let err = super::super::load(&cfg(10, 0, 0)).unwrap_err();
        assert!(err.to_string().contains("data.synthetic_input_dim"));
    }
}
