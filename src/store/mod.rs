//! The results store: one HDF5 file per sweep ([`hdf5`]) and its in-memory mirror
//! ([`results`]).

pub mod hdf5;
pub mod results;

pub use self::hdf5::{
    hdf5_library_version, read_group_table, read_results, write_group_table, Column, FileMeta,
    GroupTable, ResultsFile, StoreError, StoredMeta, FORMAT,
};
pub use self::results::{Results, RunRecord, RunStatus, TaskKey};
