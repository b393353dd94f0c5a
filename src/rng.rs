//! Every random stream of the program, and the draws made from them. Each stream is seeded
//! from a user seed and its role (and, for the streams of one network, its depth and
//! width) — never from the rank or the order tasks were handed out — so that the same
//! config gives the same numbers with 1 rank or many.
//!
//! Draws of indices (SGD orders, random subsets, the measurement set) use our own
//! Fisher–Yates shuffle on `Xoshiro256PlusPlus` with an unbiased bounded draw built on
//! `next_u64`, so they depend only on (seed, sizes) and not on the sampling algorithms of
//! a `rand` release.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Independent random streams drawn from one user seed.
#[derive(Clone, Copy)]
pub enum Stream {
    /// The random `n_train` subset.
    Subset = 1,
    /// The sharpness-measurement subset.
    Measurement = 2,
    /// The synthetic teacher's weights.
    SyntheticTeacher = 3,
    /// The synthetic inputs.
    SyntheticInputs = 4,
}

/// SplitMix64 finalizer: a bijective mix of 64 bits.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of one stream: distinct streams of the same user seed are unrelated.
pub fn stream_seed(seed: u64, stream: Stream) -> u64 {
    splitmix64(splitmix64(seed) ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Uniform integer in `0..bound` (Lemire's multiply-shift with rejection; unbiased).
fn uniform_below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = rng.next_u64() as u128 * bound as u128;
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// Fisher–Yates shuffle of `perm` with [`uniform_below`] draws (independent of `rand`'s
/// sampling algorithms, so SGD orders are stable across crate versions).
pub fn shuffle(perm: &mut [usize], rng: &mut Xoshiro256PlusPlus) {
    for i in (1..perm.len()).rev() {
        let j = uniform_below(rng, (i + 1) as u64) as usize;
        perm.swap(i, j);
    }
}

/// `k` distinct values of `0..population`, uniformly at random from `seed`, sorted.
pub fn seeded_sample(population: usize, k: usize, seed: u64) -> Vec<usize> {
    assert!(k <= population, "cannot sample {k} of {population}");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut pool: Vec<usize> = (0..population).collect();
    for i in 0..k {
        let j = i + uniform_below(&mut rng, (population - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

/// The streams of one network (one grid point and seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetStream {
    /// The initial weights (from the init seed).
    Init,
    /// The SGD minibatch order (from the SGD seed).
    Sgd,
    /// The Lanczos start vectors (from the init seed).
    Lanczos,
    /// The authors-notebook protocol's stream of measurement examples for λ₀ (from the
    /// SGD seed).
    NotebookMeasure,
}

impl NetStream {
    fn role(self) -> &'static str {
        match self {
            NetStream::Init => "init",
            NetStream::Sgd => "sgd",
            NetStream::Lanczos => "lanczos",
            NetStream::NotebookMeasure => "notebook-measure",
        }
    }

    /// The seed of this stream of the (depth, width) network with user seed `base`, by a
    /// SplitMix64-style mix of (base, role, depth, width).
    pub fn seed(self, base: u64, depth: u32, width: u32) -> u64 {
        let mut h = base ^ 0x9E37_79B9_7F4A_7C15;
        let mut mix = |v: u64| {
            h ^= v;
            h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = h;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            h = z ^ (z >> 31);
        };
        for b in self.role().bytes() {
            mix(b as u64);
        }
        mix(depth as u64);
        mix(width as u64);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sample_is_roughly_uniform() {
        // Each of 10 rows is picked with probability 3/10; over 2000 draws ~600 each.
        let mut counts = [0usize; 10];
        for seed in 0..2000 {
            for i in seeded_sample(10, 3, seed) {
                counts[i] += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (500..700).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn streams_of_one_seed_differ() {
        assert_ne!(
            stream_seed(0, Stream::Subset),
            stream_seed(0, Stream::Measurement)
        );
    }

    #[test]
    fn network_streams_differ_by_role_and_shape() {
        let a = NetStream::Init.seed(1, 4, 64);
        assert_ne!(a, NetStream::Sgd.seed(1, 4, 64));
        assert_ne!(a, NetStream::Init.seed(1, 4, 128));
        assert_ne!(a, NetStream::Init.seed(2, 4, 64));
        assert_eq!(a, NetStream::Init.seed(1, 4, 64));
        // The values are part of the results: any change of the mix changes every file.
        assert_eq!(NetStream::Init.seed(0, 0, 0), NetStream::Init.seed(0, 0, 0));
    }
}
