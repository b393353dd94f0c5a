//! sharpsweep: phase diagrams of early training dynamics (Kalra & Barkeshli, NeurIPS 2023)
//! at cluster scale.
//!
//! Data flows one way: [`config`] → [`sweep`] (grid, MPI scheduler) → [`train`] (one run)
//! → [`store`] (one HDF5 file) → [`analysis`] (critical values, plots). The numerical
//! core is [`model`] (MLP forward, gradient, exact Hessian-vector products) and
//! [`hessian`] (matrix-free eigen-solvers on a symmetric operator). [`record`] holds the
//! run record and the one schema of the results; [`rng`] every random stream;
//! [`optim`] the update rules; [`commands`] what the binary's commands call.
#![deny(missing_docs)]

pub mod analysis;
pub mod commands;
pub mod config;
pub mod data;
pub(crate) mod elementwise;
pub mod hessian;
pub mod model;
pub mod optim;
pub mod record;
pub mod rng;
pub mod store;
pub mod sweep;
pub mod train;
