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
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        8 * (self.basis.capacity()
            + self.images.capacity()
            + self.projected.capacity()
            + self.small.capacity()
            + self.vector.capacity()
            + self.partials.capacity())
    }
}

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
}
