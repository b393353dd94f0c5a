//! The symmetric linear operator the eigen-solvers act on, and what they return.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// A symmetric linear map on ℝⁿ, applied matrix-free (for the loss Hessian: one exact
/// Hessian-vector product per call). Vectors are f64 whatever precision the operator
/// computes in internally.
pub trait SymmetricOperator {
    /// Dimension n.
    fn dim(&self) -> usize;
    /// y ← A x. `x` and `y` have length [`SymmetricOperator::dim`].
    fn apply(&mut self, x: &[f64], y: &mut [f64]);
}

/// Why an eigen-solver stopped: data, not a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The relative residual met the tolerance.
    Converged,
    /// The Krylov space became invariant (exact to rounding): the Ritz pair is exact.
    InvariantSubspace,
    /// The iteration cap was reached first.
    MaxIterations,
    /// A fixed-count method (power iteration) ran its iterations.
    FixedCount,
    /// The operator returned a non-finite vector.
    NonFinite,
}

/// One eigenpair estimate and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct EigenEstimate {
    /// Eigenvalue estimate λ.
    pub value: f64,
    /// Unit-norm eigenvector estimate v.
    pub vector: Vec<f64>,
    /// Operator applications (Hessian-vector products) used.
    pub applications: usize,
    /// Relative residual ‖Av − λv‖ / |λ| (absolute when λ = 0).
    pub residual: f64,
    /// Whether the residual met the requested tolerance.
    pub converged: bool,
    /// Why the solver stopped.
    pub stop: StopReason,
}

impl EigenEstimate {
    /// The estimate on a zero-dimensional space: 0, exact.
    pub fn empty() -> Self {
        EigenEstimate {
            value: 0.0,
            vector: Vec::new(),
            applications: 0,
            residual: 0.0,
            converged: true,
            stop: StopReason::InvariantSubspace,
        }
    }

    /// The estimate of a solver whose operator returned a non-finite vector after
    /// `applications` products, at the vector `last` it was applied to.
    pub fn non_finite(last: Vec<f64>, applications: usize) -> Self {
        EigenEstimate {
            value: f64::NAN,
            vector: last,
            applications,
            residual: f64::NAN,
            converged: false,
            stop: StopReason::NonFinite,
        }
    }
}

/// Dot product accumulated in f64.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// [`dot`] over `par`'s threads in a fixed order ([`crate::elementwise::sum_blocks`]):
/// the same bits for any thread count, and exactly `dot` for vectors of at most
/// [`crate::elementwise::REDUCE_BLOCK`] entries.
pub(crate) fn dot_in(par: faer::Par, a: &[f64], b: &[f64]) -> f64 {
    crate::elementwise::sum_blocks(par, (a, b), &|(a, b)| dot(a, b))
}

/// Euclidean norm.
pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y ← y + alpha x
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// A unit start vector: `start` normalized when given and non-zero and finite,
/// otherwise a seeded Gaussian vector.
pub(crate) fn start_vector(n: usize, start: Option<&[f64]>, seed: u64) -> Vec<f64> {
    if let Some(s) = start {
        assert_eq!(s.len(), n, "start vector has the wrong dimension");
        let nrm = norm(s);
        if nrm.is_finite() && nrm > 0.0 {
            return s.iter().map(|x| x / nrm).collect();
        }
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let nrm = norm(&v);
    v.iter_mut().for_each(|x| *x /= nrm);
    v
}

/// −A, whose largest eigenvalue is minus the smallest of A.
pub struct Negated<'a, O: SymmetricOperator>(pub &'a mut O);

impl<O: SymmetricOperator> SymmetricOperator for Negated<'_, O> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        self.0.apply(x, y);
        y.iter_mut().for_each(|v| *v = -*v);
    }
}

/// D A D for a positive diagonal D = P^-½ (given as its diagonal): the symmetric form of
/// P⁻¹A, whose eigenvalues are P⁻¹A's (Adam's preconditioned sharpness). Without a
/// diagonal it is A itself, applied as it is.
pub struct Preconditioned<'a, O: SymmetricOperator> {
    op: &'a mut O,
    d: Option<&'a [f64]>,
    scratch: Vec<f64>,
}

impl<'a, O: SymmetricOperator> Preconditioned<'a, O> {
    /// Wraps `op` with the diagonal `d` (length `op.dim()`), or with none.
    pub fn new(op: &'a mut O, d: Option<&'a [f64]>) -> Self {
        let n = op.dim();
        if let Some(d) = d {
            assert_eq!(d.len(), n, "preconditioner length");
        }
        Preconditioned {
            op,
            d,
            scratch: if d.is_some() {
                vec![0.0; n]
            } else {
                Vec::new()
            },
        }
    }
}

impl<O: SymmetricOperator> SymmetricOperator for Preconditioned<'_, O> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        let Some(d) = self.d else {
            return self.op.apply(x, y);
        };
        for ((s, x), d) in self.scratch.iter_mut().zip(x).zip(d) {
            *s = x * d;
        }
        self.op.apply(&self.scratch, y);
        for (y, d) in y.iter_mut().zip(d) {
            *y *= d;
        }
    }
}

/// A symmetric operator from an explicit dense matrix (column-major n × n); for tests,
/// and for checking solvers on matrices with a known spectrum.
#[derive(Clone, Debug)]
pub struct DenseOperator {
    n: usize,
    a: Vec<f64>,
}

impl DenseOperator {
    /// Wraps a column-major n × n matrix, which must be symmetric.
    pub fn new(n: usize, a: Vec<f64>) -> Self {
        assert_eq!(a.len(), n * n);
        DenseOperator { n, a }
    }
}

impl SymmetricOperator for DenseOperator {
    fn dim(&self) -> usize {
        self.n
    }
    fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        y.iter_mut().for_each(|v| *v = 0.0);
        for (j, xj) in x.iter().enumerate() {
            axpy(*xj, &self.a[j * self.n..(j + 1) * self.n], y);
        }
    }
}
