//! Dense oracle: assemble the operator column by column and diagonalize it with faer.
//! For tests and tiny networks only (n operator applications, n² memory).

use super::operator::SymmetricOperator;
use faer::{Mat, Side};

/// The operator as a dense n × n matrix (column j = A e_j), symmetrized as (A + Aᵀ)/2 to
/// remove rounding asymmetry.
pub fn dense_matrix(op: &mut impl SymmetricOperator) -> Mat<f64> {
    let n = op.dim();
    let mut a = Mat::<f64>::zeros(n, n);
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        e[j] = 1.0;
        op.apply(&e, &mut col);
        e[j] = 0.0;
        for i in 0..n {
            a[(i, j)] = col[i];
        }
    }
    Mat::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]))
}

/// All eigenvalues of the operator, ascending (faer self-adjoint eigen-decomposition).
pub fn dense_eigenvalues(op: &mut impl SymmetricOperator) -> Vec<f64> {
    let a = dense_matrix(op);
    if a.nrows() == 0 {
        return Vec::new();
    }
    a.self_adjoint_eigenvalues(Side::Lower)
        .expect("self-adjoint eigen-decomposition did not converge")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::operator::DenseOperator;

    #[test]
    fn eigenvalues_of_a_diagonal_matrix() {
        let mut a = vec![0.0; 9];
        a[0] = 3.0;
        a[4] = -5.0;
        a[8] = 1.0;
        let ev = dense_eigenvalues(&mut DenseOperator::new(3, a));
        assert_eq!(ev.len(), 3);
        assert!((ev[0] + 5.0).abs() < 1e-12 && (ev[1] - 1.0).abs() < 1e-12);
        assert!((ev[2] - 3.0).abs() < 1e-12);
    }
}
