//! sharpsweep: phase diagrams of early training dynamics (Kalra & Barkeshli, NeurIPS 2023)
//! at cluster scale.
//!
//! Data flows one way: [`config`] → [`sweep`] (grid, MPI scheduler) → [`train`] (one run)
//! → [`store`] (one HDF5 file) → [`analysis`] (critical values, plots). The numerical
//! core is [`model`] (MLP forward, gradient, exact Hessian-vector products) and
//! [`hessian`] (matrix-free eigen-solvers on a symmetric operator).

pub mod analysis;
pub mod config;
pub mod data;
pub mod hessian;
pub mod model;
pub mod store;
pub mod sweep;
pub mod train;
