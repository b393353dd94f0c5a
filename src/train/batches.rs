//! The minibatch stream of a run: batches drawn without replacement from a seeded
//! permutation of the training set, and its position for a checkpoint.

use super::Problem;
use crate::model::Float;
use crate::rng::shuffle;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Minibatches drawn without replacement from a fresh seeded permutation each epoch (the
/// last partial batch of an epoch is dropped), copied into reused buffers.
pub(crate) struct Minibatches<T> {
    /// Examples a batch.
    pub(crate) size: usize,
    rng: Xoshiro256PlusPlus,
    perm: Vec<usize>,
    /// Position in the last permutation (the stream's position, for a checkpoint).
    pub(crate) cursor: usize,
    /// Permutations drawn so far (the stream's position, for a checkpoint).
    pub(crate) epochs: u64,
    x: Vec<T>,
    y: Vec<T>,
}

impl<T: Float> Minibatches<T> {
    /// The stream of batches of `size` examples seeded by `seed`, before its first draw.
    pub(crate) fn new(problem: &Problem<T>, size: usize, seed: u64) -> Self {
        let n = problem.n_train();
        Minibatches {
            size,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            perm: (0..n).collect(),
            cursor: n, // forces a fresh permutation before the first batch
            epochs: 0,
            x: vec![T::of(0.0); problem.input_dim * size],
            y: vec![T::of(0.0); problem.outputs * size],
        }
    }

    /// The stream at a checkpoint's position: `epochs` permutations drawn again from the
    /// seed (the same draws, so the same permutations), then `cursor` into the last.
    pub(crate) fn restored(
        problem: &Problem<T>,
        size: usize,
        seed: u64,
        epochs: u64,
        cursor: usize,
    ) -> Self {
        let mut b = Self::new(problem, size, seed);
        for _ in 0..epochs {
            shuffle(&mut b.perm, &mut b.rng);
        }
        b.epochs = epochs;
        if epochs > 0 {
            b.cursor = cursor;
        }
        b
    }

    /// The next batch: inputs (d_in × size) and targets (k × size).
    pub(crate) fn next(&mut self, problem: &Problem<T>) -> (&[T], &[T]) {
        let (d_in, k, b) = (problem.input_dim, problem.outputs, self.size);
        if self.cursor + b > self.perm.len() {
            shuffle(&mut self.perm, &mut self.rng);
            self.cursor = 0;
            self.epochs += 1;
        }
        for (j, &i) in self.perm[self.cursor..self.cursor + b].iter().enumerate() {
            self.x[j * d_in..(j + 1) * d_in]
                .copy_from_slice(&problem.x_train[i * d_in..(i + 1) * d_in]);
            self.y[j * k..(j + 1) * k].copy_from_slice(&problem.y_train[i * k..(i + 1) * k]);
        }
        self.cursor += b;
        (&self.x, &self.y)
    }
}
