//! The top k eigenpairs of a symmetric operator by a block Krylov method with full
//! reorthogonalization and thick restarts (block Lanczos in Rayleigh–Ritz form).
//!
//! The basis V grows by blocks of b = k vectors; AV is kept beside it, so the projected
//! matrix T = VᵀAV, the Ritz pairs (θᵢ, yᵢ = V sᵢ) and their residuals rᵢ = AV sᵢ − θᵢ yᵢ
//! cost no operator application. The next block is the residuals of the top k Ritz pairs
//! not yet converged, orthogonalized against V: they span the same new Krylov directions
//! as A applied to the last block, aimed at the wanted pairs. A block of k vectors finds eigenvalues of
//! multiplicity up to k (a single-vector Krylov space sees each eigenvalue once). When the
//! basis is full it restarts from its top half of Ritz vectors (at least k), keeping A
//! applied to them.
//!
//! Warm start: the first block is the given vectors (e.g. the previous training step's k
//! Ritz vectors), completed with seeded Gaussian vectors.

use super::lanczos::reorthogonalize;
use super::operator::{dot_in, start_vector, StopReason, SymmetricOperator};
use super::workspace::{ensure, EigenWorkspace};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

/// Stopping rules and limits of [`block_top_k`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockOptions {
    /// Stop when every top-k Ritz residual ‖Ayᵢ − θᵢyᵢ‖ ≤ tol·|θ₁| (θ₁ the largest).
    pub tol: f64,
    /// At most this many operator applications in all.
    pub max_iter: usize,
    /// At most this many basis vectors (n·2·max_basis f64s: V and AV).
    pub max_basis: usize,
    /// Seed of the Gaussian vectors that complete the start block.
    pub seed: u64,
}

/// The top k eigenpairs of a symmetric operator and how they were obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    /// The k largest algebraic eigenvalues, descending.
    pub values: Vec<f64>,
    /// Their relative residuals ‖Ayᵢ − θᵢyᵢ‖ / |θ₁|.
    pub residuals: Vec<f64>,
    /// Their unit Ritz vectors (the next measurement's warm start).
    pub vectors: Vec<Vec<f64>>,
    /// Operator applications used.
    pub applications: usize,
    /// Whether every residual met the tolerance.
    pub converged: bool,
    /// Why the solver stopped.
    pub stop: StopReason,
}

/// Orthonormalizes `w` against the first `m` columns of `v` (column-major, n rows) and
/// against itself; false when nothing independent is left of it.
fn orthonormalize(
    v: &[f64],
    n: usize,
    m: usize,
    w: &mut [f64],
    (h, partials): (&mut [f64], &mut Vec<f64>),
    par: Par,
) -> bool {
    let before = dot_in(par, w, w).sqrt();
    if !(before.is_finite() && before > 0.0) {
        return false;
    }
    let after = if m > 0 {
        reorthogonalize(&v[..n * m], n, w, &mut h[..m], partials, par, before)
    } else {
        before
    };
    if after.is_nan() || after <= 1e-10 * before {
        return false;
    }
    crate::elementwise::map(par, w, |x| *x /= after);
    true
}

/// The working state, in the memory of an [`EigenWorkspace`]: basis V, A applied to it,
/// and T = VᵀAV (cap × cap, row-major).
struct Basis<'a> {
    n: usize,
    cap: usize,
    m: usize,
    par: Par,
    v: &'a mut Vec<f64>,
    av: &'a mut Vec<f64>,
    t: &'a mut Vec<f64>,
    h: &'a mut Vec<f64>,
    partials: &'a mut Vec<f64>,
}

/// A Ritz pair (θ, y = V s) with A y = AV s.
type RitzPair = (f64, Vec<f64>, Vec<f64>);

impl<'a> Basis<'a> {
    fn new(ws: &'a mut EigenWorkspace, n: usize, cap: usize) -> Self {
        let EigenWorkspace {
            par,
            basis,
            images,
            projected,
            small,
            partials,
            ..
        } = ws;
        // Columns are added as the basis grows (the reservation is made once) and only the
        // first m are ever read: what an earlier measurement left is overwritten, not
        // cleared and zeroed again.
        ensure(projected, cap * cap, cap * cap);
        ensure(small, cap, cap);
        Basis {
            n,
            cap,
            m: 0,
            par: *par,
            v: basis,
            av: images,
            t: projected,
            h: small,
            partials,
        }
    }

    fn col(&self, j: usize) -> &[f64] {
        &self.v[j * self.n..(j + 1) * self.n]
    }

    /// Appends `w` (orthonormalized against the basis) unless it is dependent on it.
    fn push(&mut self, mut w: Vec<f64>) -> bool {
        let (n, m) = (self.n, self.m);
        if m >= self.cap || !orthonormalize(self.v, n, m, &mut w, (self.h, self.partials), self.par)
        {
            return false;
        }
        ensure(self.v, (m + 1) * n, self.cap * n);
        self.v[m * n..(m + 1) * n].copy_from_slice(&w);
        self.m += 1;
        true
    }

    /// Applies `op` to columns `from..m` and extends T; false on a non-finite product.
    fn apply_new(&mut self, op: &mut impl SymmetricOperator, from: usize) -> bool {
        let (n, m) = (self.n, self.m);
        ensure(self.av, m * n, self.cap * n);
        for j in from..m {
            let (v, av) = (&self.v, &mut self.av);
            op.apply(&v[j * n..(j + 1) * n], &mut av[j * n..(j + 1) * n]);
            if crate::elementwise::any(self.par, &av[j * n..(j + 1) * n], |x| !x.is_finite()) {
                return false;
            }
        }
        // Vᵀ (A V_new) as one product: rows 0..m of the new columns of T.
        let mut block = Mat::<f64>::zeros(m, m - from);
        matmul(
            block.as_mut(),
            Accum::Replace,
            MatRef::from_column_major_slice(&self.v[..m * n], n, m).transpose(),
            MatRef::from_column_major_slice(&self.av[from * n..m * n], n, m - from),
            1.0,
            self.par,
        );
        for j in from..m {
            for i in 0..m {
                let x = block[(i, j - from)];
                self.t[i * self.cap + j] = x;
                self.t[j * self.cap + i] = x;
            }
        }
        true
    }

    /// Ritz pairs of the top `k` (θ descending) with V s and AV s, as two products.
    fn ritz(&self, k: usize) -> Vec<RitzPair> {
        let (n, m) = (self.n, self.m);
        let t = Mat::<f64>::from_fn(m, m, |i, j| {
            0.5 * (self.t[i * self.cap + j] + self.t[j * self.cap + i])
        });
        let evd = t
            .self_adjoint_eigen(Side::Lower)
            .expect("projected eigen-decomposition did not converge");
        let s = evd.S().column_vector();
        let u = evd.U();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        order.truncate(k);
        let uk = Mat::<f64>::from_fn(m, order.len(), |i, c| u[(i, order[c])]);
        let times = |basis: &[f64]| {
            let mut out = Mat::<f64>::zeros(n, order.len());
            matmul(
                out.as_mut(),
                Accum::Replace,
                MatRef::from_column_major_slice(&basis[..m * n], n, m),
                uk.as_ref(),
                1.0,
                self.par,
            );
            out
        };
        let (y, ay) = (times(self.v), times(self.av));
        let column = |a: &Mat<f64>, c: usize| (0..n).map(|i| a[(i, c)]).collect::<Vec<f64>>();
        order
            .iter()
            .enumerate()
            .map(|(c, &e)| (s[e], column(&y, c), column(&ay, c)))
            .collect()
    }

    /// Restarts from the Ritz pairs `pairs` (A applied to them is known: no application).
    /// T restricted to them is diagonal.
    fn restart(&mut self, pairs: &[RitzPair]) {
        let n = self.n;
        self.m = 0;
        self.t.iter_mut().for_each(|x| *x = 0.0);
        for (theta, y, ay) in pairs {
            let j = self.m;
            self.v[j * n..(j + 1) * n].copy_from_slice(y);
            self.av[j * n..(j + 1) * n].copy_from_slice(ay);
            self.t[j * self.cap + j] = *theta;
            self.m += 1;
        }
    }
}

/// The `k` largest algebraic eigenvalues of `op` (k ≥ 1) with their vectors; `start`
/// seeds the first block. Stops when every top-k residual meets `opts.tol` (relative to
/// |θ₁|), when the space becomes invariant or spans everything (exact), or at
/// `opts.max_iter` applications. k is capped at the dimension.
pub fn block_top_k(
    op: &mut impl SymmetricOperator,
    k: usize,
    start: &[Vec<f64>],
    opts: &BlockOptions,
) -> Spectrum {
    block_top_k_in(op, k, start, opts, &mut EigenWorkspace::new(Par::Seq))
}

/// [`block_top_k`] in the memory of `ws` (grown as needed, kept for the next call), with
/// its basis products run with `ws`'s parallelism.
pub fn block_top_k_in(
    op: &mut impl SymmetricOperator,
    k: usize,
    start: &[Vec<f64>],
    opts: &BlockOptions,
    ws: &mut EigenWorkspace,
) -> Spectrum {
    let n = op.dim();
    let k = k.clamp(1, n.max(1));
    let cap = opts.max_basis.max(2 * k).min(n);
    let mut b = Basis::new(ws, n, cap);
    if n == 0 {
        return Spectrum {
            values: Vec::new(),
            residuals: Vec::new(),
            vectors: Vec::new(),
            applications: 0,
            converged: true,
            stop: StopReason::InvariantSubspace,
        };
    }
    for s in start.iter().filter(|s| s.len() == n).take(k) {
        b.push(s.clone());
    }
    let mut extra = 0u64;
    while b.m < k {
        b.push(start_vector(n, None, opts.seed.wrapping_add(extra)));
        extra += 1;
    }
    let mut applications = 0;
    let mut from = 0;
    loop {
        applications += b.m - from;
        if !b.apply_new(op, from) {
            return Spectrum {
                values: vec![f64::NAN; k],
                residuals: vec![f64::NAN; k],
                vectors: (0..k).map(|j| b.col(j).to_vec()).collect(),
                applications,
                converged: false,
                stop: StopReason::NonFinite,
            };
        }
        let pairs = b.ritz(k);
        let scale = pairs[0].0.abs().max(f64::MIN_POSITIVE);
        // Over the rank's threads; the norms in fixed blocks (the same bits for any count).
        let residuals: Vec<Vec<f64>> = pairs
            .iter()
            .map(|(theta, y, ay)| {
                let mut r = vec![0.0; n];
                crate::elementwise::zip3(b.par, &mut r, ay, y, |r, a, v| *r = a - theta * v);
                r
            })
            .collect();
        let rel: Vec<f64> = residuals
            .iter()
            .map(|r| dot_in(b.par, r, r).sqrt() / scale)
            .collect();
        let converged = rel.iter().all(|r| *r <= opts.tol);
        let full = b.m >= n;
        let out_of_budget = applications >= opts.max_iter.max(k);
        let finish = |stop: StopReason, exact: bool| Spectrum {
            values: pairs.iter().map(|p| p.0).collect(),
            residuals: rel.clone(),
            vectors: pairs.iter().map(|p| p.1.clone()).collect(),
            applications,
            converged: converged || exact,
            stop,
        };
        if full {
            return finish(StopReason::InvariantSubspace, true);
        }
        if converged {
            return finish(StopReason::Converged, false);
        }
        if out_of_budget {
            return finish(StopReason::MaxIterations, false);
        }
        if b.m + k > cap {
            // Thick restart: keep the top half of the basis as Ritz vectors.
            let keep = b.ritz((cap / 2).max(k));
            b.restart(&keep);
        }
        from = b.m;
        // Converged pairs add nothing but rounding: only the others' residuals extend the
        // space (their directions are what the unconverged pairs lack).
        for (r, rel) in residuals.into_iter().zip(&rel) {
            if *rel > opts.tol {
                b.push(r);
            }
        }
        if b.m == from {
            // Nothing new: the space is invariant, the Ritz pairs exact.
            return finish(StopReason::InvariantSubspace, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::dense::dense_eigenvalues;
    use crate::hessian::operator::DenseOperator;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Q diag(eigs) Qᵀ for a seeded random orthogonal Q.
    fn with_spectrum(eigs: &[f64], seed: u64) -> DenseOperator {
        let n = eigs.len();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let g = Mat::<f64>::from_fn(n, n, |_, _| StandardNormal.sample(&mut rng));
        let q = g.qr().compute_Q();
        let a = Mat::<f64>::from_fn(n, n, |i, j| {
            (0..n).map(|l| q[(i, l)] * eigs[l] * q[(j, l)]).sum()
        });
        let mut col = Vec::with_capacity(n * n);
        for j in 0..n {
            for i in 0..n {
                col.push(0.5 * (a[(i, j)] + a[(j, i)]));
            }
        }
        DenseOperator::new(n, col)
    }

    fn opts(tol: f64) -> BlockOptions {
        BlockOptions {
            tol,
            max_iter: 400,
            max_basis: 40,
            seed: 3,
        }
    }

    #[test]
    fn top_k_matches_the_dense_oracle_including_degenerate_and_negative_eigenvalues() {
        // A triple top eigenvalue, then a gap, and negative curvature at the bottom.
        let mut eigs = vec![5.0, 5.0, 5.0, 3.5, 2.0];
        eigs.extend((0..55).map(|i| 1.5 - 0.06 * i as f64));
        let mut op = with_spectrum(&eigs, 11);
        let mut want = dense_eigenvalues(&mut op);
        want.reverse();
        let s = block_top_k(&mut op, 4, &[], &opts(1e-8));
        assert!(s.converged, "{s:?}");
        for (i, (got, want)) in s.values.iter().zip(&want).enumerate() {
            assert!((got - want).abs() < 1e-6, "{i}: {got} vs {want}");
            assert!(s.residuals[i] <= 1e-8);
        }
        assert!((s.values[2] - 5.0).abs() < 1e-6 && (s.values[3] - 3.5).abs() < 1e-6);
        // The vectors are orthonormal eigenvectors.
        for i in 0..4 {
            for j in 0..4 {
                let d = super::super::operator::dot(&s.vectors[i], &s.vectors[j]);
                assert!((d - f64::from(u8::from(i == j))).abs() < 1e-8);
            }
        }
    }

    #[test]
    fn a_warm_start_from_the_answer_converges_at_once() {
        let eigs: Vec<f64> = (0..50).map(|i| 10.0 - 0.3 * i as f64).collect();
        let mut op = with_spectrum(&eigs, 5);
        let cold = block_top_k(&mut op, 3, &[], &opts(1e-6));
        let warm = block_top_k(&mut op, 3, &cold.vectors, &opts(1e-6));
        assert_eq!(warm.applications, 3, "{warm:?}");
        assert!(warm.converged && cold.applications > 3);
    }

    #[test]
    fn restarts_and_budget_and_tiny_operators() {
        let eigs: Vec<f64> = (0..80).map(|i| 1.0 - 0.03 * i as f64).collect();
        let mut op = with_spectrum(&eigs, 9);
        let mut want = dense_eigenvalues(&mut op);
        want.reverse();
        let small = BlockOptions {
            max_basis: 8,
            ..opts(1e-7)
        };
        let s = block_top_k(
            &mut op,
            2,
            &[],
            &BlockOptions {
                max_iter: 2000,
                ..small
            },
        );
        assert!(s.converged);
        assert!((s.values[0] - want[0]).abs() < 1e-6 && (s.values[1] - want[1]).abs() < 1e-6);
        let capped = block_top_k(
            &mut op,
            2,
            &[],
            &BlockOptions {
                max_iter: 6,
                ..small
            },
        );
        assert_eq!(capped.stop, StopReason::MaxIterations);
        assert!(capped.applications <= 8);
        let mut one = DenseOperator::new(1, vec![-2.0]);
        let s = block_top_k(&mut one, 3, &[], &opts(1e-9));
        assert_eq!(s.values, vec![-2.0]);
        assert!(s.converged);
    }
}
