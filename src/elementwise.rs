//! Elementwise passes (activation masks, precision conversions) split over the threads of
//! a pass's [`Par`], in contiguous chunks. Each entry is computed alone, so the result is
//! the same bits whatever the thread count.
//!
//! Reductions (dot products, norms, sums over a vector) and passes that work per block
//! (a product of a tall basis with a short vector) run on fixed blocks of
//! [`REDUCE_BLOCK`] entries: each block is reduced alone, in order, and the block results
//! are combined in a fixed pairwise tree that depends only on the length. The threads
//! share out the blocks, never the order, so a reduction gives the same bits for any
//! thread count; a vector of at most one block is reduced exactly as a plain sequential
//! loop.

use faer::Par;
use rayon::prelude::*;

/// Below this many entries a pass runs in the calling thread.
const MIN_PARALLEL: usize = 1 << 15;

/// Chunk length for `len` entries over `par`'s threads; `None`: run sequentially.
pub(crate) fn chunk(par: Par, len: usize) -> Option<usize> {
    let threads = par.degree();
    (threads > 1 && len >= MIN_PARALLEL).then(|| len.div_ceil(threads))
}

/// `f(x)` for every entry of `out`.
pub(crate) fn map<T: Send>(par: Par, out: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
    match chunk(par, out.len()) {
        None => out.iter_mut().for_each(f),
        Some(c) => out
            .par_chunks_mut(c)
            .for_each(|o| o.iter_mut().for_each(&f)),
    }
}

/// `f(o, a)` for the pairs of `out` and `a` (`out` no longer than `a`).
pub(crate) fn zip<T: Send, U: Sync>(
    par: Par,
    out: &mut [T],
    a: &[U],
    f: impl Fn(&mut T, &U) + Sync + Send,
) {
    let a = &a[..out.len()];
    match chunk(par, out.len()) {
        None => out.iter_mut().zip(a).for_each(|(o, a)| f(o, a)),
        Some(c) => out
            .par_chunks_mut(c)
            .zip(a.par_chunks(c))
            .for_each(|(o, a)| o.iter_mut().zip(a).for_each(|(o, a)| f(o, a))),
    }
}

/// `f(o, a, b)` for the triples of `out`, `a` and `b`.
pub(crate) fn zip3<T: Send, U: Sync, V: Sync>(
    par: Par,
    out: &mut [T],
    a: &[U],
    b: &[V],
    f: impl Fn(&mut T, &U, &V) + Sync + Send,
) {
    let (a, b) = (&a[..out.len()], &b[..out.len()]);
    match chunk(par, out.len()) {
        None => {
            for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                f(o, a, b)
            }
        }
        Some(c) => out
            .par_chunks_mut(c)
            .zip(a.par_chunks(c))
            .zip(b.par_chunks(c))
            .for_each(|((o, a), b)| {
                for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                    f(o, a, b)
                }
            }),
    }
}

/// Entries per block of a fixed-order reduction (256 KiB of f64).
pub(crate) const REDUCE_BLOCK: usize = 1 << 15;

/// Number of [`REDUCE_BLOCK`] blocks of `len` entries (at least 1).
pub(crate) fn blocks(len: usize) -> usize {
    len.div_ceil(REDUCE_BLOCK).max(1)
}

/// Whether any entry satisfies `f` (order-free, so any split gives the same answer).
pub(crate) fn any<T: Sync>(par: Par, a: &[T], f: impl Fn(&T) -> bool + Sync + Send) -> bool {
    match chunk(par, a.len()) {
        None => a.iter().any(f),
        Some(c) => a.par_chunks(c).any(|a| a.iter().any(&f)),
    }
}

/// Slices (or tuples of slices of equal length) that a reduction splits into blocks.
pub(crate) trait Split: Sized + Send {
    /// Entries (of the first slice).
    fn len(&self) -> usize;
    /// The first `at` entries and the rest.
    fn split(self, at: usize) -> (Self, Self);
}

impl<T: Sync> Split for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split(self, at: usize) -> (Self, Self) {
        self.split_at(at)
    }
}

impl<T: Send> Split for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split(self, at: usize) -> (Self, Self) {
        self.split_at_mut(at)
    }
}

impl<A: Split, B: Split> Split for (A, B) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split(self, at: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1)) = (self.0.split(at), self.1.split(at));
        ((a0, b0), (a1, b1))
    }
}

impl<A: Split, B: Split, C: Split> Split for (A, B, C) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split(self, at: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1), (c0, c1)) = (self.0.split(at), self.1.split(at), self.2.split(at));
        ((a0, b0, c0), (a1, b1, c1))
    }
}

/// Σ of `leaf` over the [`REDUCE_BLOCK`] blocks of `s`, combined pairwise (the left half
/// of the blocks plus the right half, recursively): the same tree, so the same bits, for
/// any thread count. Up to `par.degree()` subtrees run at once. One block: `leaf(s)`.
pub(crate) fn sum_blocks<S: Split>(par: Par, s: S, leaf: &(impl Fn(S) -> f64 + Sync)) -> f64 {
    tree(par.degree(), s, leaf)
}

fn tree<S: Split>(threads: usize, s: S, leaf: &(impl Fn(S) -> f64 + Sync)) -> f64 {
    let n = blocks(s.len());
    if n == 1 {
        return leaf(s);
    }
    let (l, r) = s.split(n / 2 * REDUCE_BLOCK);
    if threads > 1 {
        let half = threads / 2;
        let (a, b) = rayon::join(|| tree(threads - half, l, leaf), || tree(half, r, leaf));
        a + b
    } else {
        tree(1, l, leaf) + tree(1, r, leaf)
    }
}

/// `f(b, block)` for every block `b` of `per_block` entries of `out` (the last may be
/// shorter), the blocks shared out over `par`'s threads in contiguous groups. Each block
/// is computed alone, so the result does not depend on the thread count.
pub(crate) fn for_blocks<T: Send>(
    par: Par,
    out: &mut [T],
    per_block: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let per_block = per_block.max(1);
    let n = out.len().div_ceil(per_block);
    let threads = par.degree().min(n);
    let run = |first: usize, group: &mut [T]| {
        for (i, b) in group.chunks_mut(per_block).enumerate() {
            f(first + i, b)
        }
    };
    if threads <= 1 {
        return run(0, out);
    }
    let group = n.div_ceil(threads);
    out.par_chunks_mut(group * per_block)
        .enumerate()
        .for_each(|(g, o)| run(g * group, o));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_count_gives_the_sequential_result() {
        let n = 3 * MIN_PARALLEL + 17;
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
        let run = |par: Par| {
            let mut x = a.clone();
            map(par, &mut x, |v| *v = v.max(0.0));
            let mut y = vec![0.0f64; n];
            zip(par, &mut y, &x, |o, x| *o = f64::from(*x) * 3.0);
            zip3(par, &mut y, &a, &b, |o, a, b| *o += f64::from(*a) * b);
            (x, y)
        };
        let seq = run(Par::Seq);
        for t in [2, 3, 7] {
            assert_eq!(run(Par::rayon(t)), seq, "{t} threads");
        }
        assert!(seq.0.iter().all(|v| *v >= 0.0) && seq.1[5] != 0.0);
    }

    #[test]
    fn reductions_give_the_same_bits_for_every_thread_count() {
        let n = 5 * REDUCE_BLOCK + 123;
        let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos() * 1e3).collect();
        let dot = |(a, b): (&[f64], &[f64])| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let run = |par: Par| {
            let s = sum_blocks(par, (&a[..], &b[..]), &dot);
            // Per-block results of a block pass, and a pass over a mutable slice.
            let mut per = vec![0.0; blocks(n)];
            for_blocks(par, &mut per, 1, |i, o| {
                let r = i * REDUCE_BLOCK..((i + 1) * REDUCE_BLOCK).min(n);
                o[0] = dot((&a[r.clone()], &b[r]));
            });
            let mut c = a.clone();
            let sq = sum_blocks(par, &mut c[..], &|c: &mut [f64]| {
                c.iter_mut()
                    .map(|x| {
                        *x *= 3.0;
                        *x * *x
                    })
                    .sum()
            });
            (s.to_bits(), per, c, sq.to_bits())
        };
        let seq = run(Par::Seq);
        for t in [2, 3, 4, 7] {
            assert!(run(Par::rayon(t)) == seq, "{t} threads");
        }
        // Pairwise over the six blocks: (b0 + (b1 + b2)) + (b3 + (b4 + b5)).
        let p = &seq.1;
        assert_eq!(p.len(), 6);
        let tree = (p[0] + (p[1] + p[2])) + (p[3] + (p[4] + p[5]));
        assert_eq!(f64::from_bits(seq.0), tree);
        // One block is the plain sequential sum.
        let short = (&a[..1000], &b[..1000]);
        assert_eq!(
            sum_blocks(Par::rayon(2), short, &dot).to_bits(),
            dot(short).to_bits()
        );
        assert!(any(Par::rayon(2), &a, |x| *x > 0.99) && !any(Par::Seq, &a, |x| *x > 1.0));
    }
}
