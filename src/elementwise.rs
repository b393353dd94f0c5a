//! Elementwise passes (activation masks, precision conversions) split over the threads of
//! a pass's [`Par`], in contiguous chunks. Each entry is computed alone, so the result is
//! the same bits whatever the thread count.

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
}
