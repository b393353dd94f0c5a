//! Memory the eigensolvers keep from one measurement to the next: the Krylov basis, A
//! applied to it, and scratch. A run's measurements reuse one workspace, so a measurement
//! allocates no basis (at w = 512 the basis of 100 vectors is 1.7 GB of f64, and fresh
//! pages cost a page fault each), and the workspace carries the run's matrix-product
//! parallelism into the solvers' basis products.

use faer::Par;

/// Reusable memory and parallelism of [`crate::hessian::lanczos_top_in`] and
/// [`crate::hessian::block_top_k_in`].
#[derive(Debug)]
pub struct EigenWorkspace {
    pub(crate) par: Par,
    /// The basis, column-major (n rows).
    pub(crate) basis: Vec<f64>,
    /// A applied to the basis (block method), column-major.
    pub(crate) images: Vec<f64>,
    /// Projected matrix (block method).
    pub(crate) projected: Vec<f64>,
    /// Coefficients of one basis product.
    pub(crate) small: Vec<f64>,
    /// One vector of length n.
    pub(crate) vector: Vec<f64>,
    /// Per-block partial products of a reorthogonalization (blocks × basis length).
    pub(crate) partials: Vec<f64>,
    /// Vectors handed back by the caller ([`EigenWorkspace::recycle`]: the previous
    /// measurement's eigenvectors once the next has started from them), reused for start
    /// and Ritz vectors, so that a run's measurements allocate no P-length vector (a fresh
    /// 40 MB vector costs a page fault per 4 KiB page, and freeing it a TLB shootdown on
    /// every thread of the rank).
    pub(crate) spare: Vec<Vec<f64>>,
}

impl EigenWorkspace {
    /// An empty workspace whose basis products run with `par` (`Par::Seq`: one thread).
    pub fn new(par: Par) -> Self {
        EigenWorkspace {
            par,
            basis: Vec::new(),
            images: Vec::new(),
            projected: Vec::new(),
            small: Vec::new(),
            vector: Vec::new(),
            partials: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Keeps `vectors` for reuse as start and Ritz vectors (at most [`SPARE_VECTORS`] are
    /// kept; the rest are freed).
    pub fn recycle(&mut self, vectors: impl IntoIterator<Item = Vec<f64>>) {
        for v in vectors {
            keep_spare(&mut self.spare, v);
        }
    }

    /// A vector of length `n` whose entries are unspecified (a recycled one when one is
    /// large enough, else zeros): the caller writes every entry.
    pub(crate) fn take_vector(&mut self, n: usize) -> Vec<f64> {
        take_spare(&mut self.spare, n)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        8 * (self.basis.capacity()
            + self.images.capacity()
            + self.projected.capacity()
            + self.small.capacity()
            + self.vector.capacity()
            + self.partials.capacity()
            + self.spare.iter().map(Vec::capacity).sum::<usize>())
    }
}

/// [`EigenWorkspace::take_vector`] from the workspace's `spare` list (for a solver that
/// holds the workspace's fields apart).
pub(crate) fn take_spare(spare: &mut Vec<Vec<f64>>, n: usize) -> Vec<f64> {
    match spare.iter().position(|v| v.capacity() >= n) {
        Some(i) => {
            let mut v = spare.swap_remove(i);
            v.resize(n, 0.0);
            v.truncate(n);
            v
        }
        None => vec![0.0; n],
    }
}

/// [`EigenWorkspace::recycle`] of one vector into the `spare` list.
pub(crate) fn keep_spare(spare: &mut Vec<Vec<f64>>, v: Vec<f64>) {
    if spare.len() < SPARE_VECTORS && v.capacity() > 0 {
        spare.push(v);
    }
}

/// Spare vectors a workspace keeps: a tracked measurement hands back two and takes a start
/// vector and two Ritz vectors; the block method (k > 1) takes k.
pub const SPARE_VECTORS: usize = 8;

/// Makes `v` at least `len` long, reserving `reserve` entries the first time so that later
/// growth (column by column, as the basis fills) never moves it. Memory beyond `len` is
/// reserved, not touched.
pub(crate) fn ensure(v: &mut Vec<f64>, len: usize, reserve: usize) {
    if v.len() < len {
        if v.capacity() < reserve.max(len) {
            v.reserve_exact(reserve.max(len) - v.len());
        }
        v.resize(len, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_grows_in_place_within_the_reservation() {
        let mut v = Vec::new();
        ensure(&mut v, 3, 12);
        let at = v.as_ptr();
        assert_eq!(v.len(), 3);
        assert!(v.capacity() >= 12);
        ensure(&mut v, 9, 12);
        assert_eq!((v.len(), v.as_ptr()), (9, at));
        ensure(&mut v, 4, 12);
        assert_eq!(v.len(), 9, "never shrinks");
        ensure(&mut v, 20, 12);
        assert_eq!(v.len(), 20);
        let ws = EigenWorkspace::new(Par::Seq);
        assert_eq!(ws.bytes(), 0);
    }

    #[test]
    fn recycled_vectors_are_reused_without_allocating() {
        let mut ws = EigenWorkspace::new(Par::Seq);
        let a = vec![1.0; 100];
        let at = a.as_ptr();
        ws.recycle([a, Vec::new()]);
        assert_eq!(ws.bytes(), 800, "an empty vector is not kept");
        let b = ws.take_vector(60);
        assert_eq!((b.len(), b.as_ptr()), (60, at));
        let c = ws.take_vector(60);
        assert_ne!(c.as_ptr(), at);
        assert_eq!(c, vec![0.0; 60], "nothing spare: a fresh zero vector");
        ws.recycle((0..20).map(|_| vec![0.0; 4]));
        assert_eq!(ws.spare.len(), SPARE_VECTORS);
        let d = ws.take_vector(5);
        assert_eq!(d.len(), 5, "too small spares are skipped");
    }
}
