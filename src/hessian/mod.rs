//! Matrix-free eigen-solvers for symmetric operators: the sharpness (largest algebraic
//! eigenvalue of the loss Hessian) by Lanczos or power iteration, the top k by a block
//! Krylov method, and a dense oracle for tests and tiny problems. Nothing here knows what a network is.

pub(crate) mod block;
pub(crate) mod dense;
pub(crate) mod lanczos;
pub(crate) mod operator;
pub(crate) mod power;
pub(crate) mod workspace;

pub use block::{block_top_k, block_top_k_in, BlockOptions, Spectrum};
pub use dense::{dense_eigenvalues, dense_matrix};
pub use lanczos::{
    lanczos_top, lanczos_top_in, lanczos_tracked_in, tracked_start, LanczosOptions,
    TRACKED_SECOND_WEIGHT,
};
pub use operator::{
    DenseOperator, EigenEstimate, Negated, Preconditioned, StopReason, SymmetricOperator,
};
pub use power::power_top;
pub use workspace::EigenWorkspace;
