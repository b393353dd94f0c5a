//! Plain power iteration with a fixed iteration count: the sharpness method of the paper's
//! authors (20 iterations in their code). It converges to the eigenvalue of largest
//! *magnitude*, which for the loss Hessian at initialization is normally the largest.

use super::operator::{dot, norm, start_vector, EigenEstimate, StopReason, SymmetricOperator};

/// `iterations` power steps from `start` (or a seeded Gaussian vector). Returns the
/// Rayleigh quotient of the last iterate, its relative residual, and whether that residual
/// is within `tol` (reported, not used to stop).
pub fn power_top(
    op: &mut impl SymmetricOperator,
    start: Option<&[f64]>,
    iterations: usize,
    tol: f64,
    seed: u64,
) -> EigenEstimate {
    let n = op.dim();
    let mut v = start_vector(n, start, seed);
    let mut w = vec![0.0; n];
    let mut value = 0.0;
    let mut residual = f64::INFINITY;
    let iterations = iterations.max(1);
    for it in 0..iterations {
        op.apply(&v, &mut w);
        if w.iter().any(|x| !x.is_finite()) {
            return EigenEstimate::non_finite(v, it + 1);
        }
        value = dot(&v, &w);
        let r: f64 = v
            .iter()
            .zip(&w)
            .map(|(vi, wi)| (wi - value * vi).powi(2))
            .sum::<f64>()
            .sqrt();
        residual = if value != 0.0 { r / value.abs() } else { r };
        let nw = norm(&w);
        if it + 1 < iterations && nw > 0.0 {
            v.iter_mut().zip(&w).for_each(|(vi, wi)| *vi = wi / nw);
        }
    }
    EigenEstimate {
        value,
        vector: v,
        applications: iterations,
        residual,
        converged: residual <= tol,
        stop: StopReason::FixedCount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::operator::DenseOperator;

    #[test]
    fn power_finds_dominant_eigenvalue_with_fixed_count() {
        let mut a = vec![0.0; 9];
        a[0] = 1.0;
        a[4] = 10.0;
        a[8] = 2.0;
        let mut op = DenseOperator::new(3, a);
        let est = power_top(&mut op, None, 20, 1e-3, 4);
        assert_eq!(est.applications, 20);
        assert!((est.value - 10.0).abs() < 1e-8);
        assert!(est.converged);
        assert_eq!(est.stop, StopReason::FixedCount);
    }
}
