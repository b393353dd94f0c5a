//! The results store: one HDF5 file per sweep, laid out as a netCDF-4 dataset so that
//! `xarray.open_dataset(path, engine="h5netcdf")` reads it with named dimensions. Every
//! variable comes from the record schema ([`crate::record::SCHEMA`]).
//!
//! - `file`: the results file itself (create, commit a record, resume, read), driven by
//!   the schema, and its commit mechanism (atomic snapshots);
//! - `journal`: the checksummed journal of the runs since the last snapshot;
//! - `lock`: the writer's lock (`flock`, or a lock file where there is none);
//! - `checkpoint`: where the side files of runs in flight (mid-run checkpoints) are kept,
//!   as bytes (training encodes them);
//! - `durable`: the CRC-32 and the atomic replace (temporary, `fsync`, rename, `fsync`
//!   of the directory) the others use;
//! - `meta`: provenance attributes, history, the format marker;
//! - `table`: analysis tables in groups next to the raw variables;
//! - `nc`: netCDF conventions on HDF5 (chunking, fills, attributes, dimension scales).
//!
//! Every variable is chunked (at most 64 runs a chunk) and compressed with shuffle +
//! deflate. Root attributes hold the provenance of [`FileMeta`], `hdf5_version`, `history`
//! (one line per start), `Conventions = "CF-1.8"` and the format marker
//! `sharpsweep_format`.

mod axes;
pub mod checkpoint;
mod durable;
mod file;
mod journal;
mod lock;
mod meta;
mod nc;
mod table;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};

pub use self::durable::crc32;
pub use self::file::{read_file_meta, read_results, read_snapshot, ResultsFile};
pub use self::journal::{held_runs as journal_held_runs, journal_path};
pub use self::lock::OVERRIDE_ENV as LOCK_OVERRIDE_ENV;
pub use self::meta::{file_config, hdf5_library_version, FileMeta, StoredMeta, FORMAT};
pub use self::table::{read_group_table, write_group_table, write_group_tables, GroupTable};

/// An error of the results store. Every message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` found a file at the path and was not told to overwrite it.
    #[error("{path} already exists; use --resume to continue it or --force to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// `open_resume` found a file written for another config.
    #[error(
        "{path} was written for a different config (config_sha256 in the file: {in_file}, \
         of this config: {this_config}); use --force to overwrite it or another output path"
    )]
    ConfigMismatch {
        /// The file.
        path: PathBuf,
        /// `config_sha256` stored in the file.
        in_file: String,
        /// Hash of the config the caller runs.
        this_config: String,
    },
    /// `open_resume` found a file whose `grid.axes` differ from the config's.
    #[error(
        "{path} was written for other grid.axes (in the file: {in_file}; in this config: \
         {this_config}); use --force to overwrite it or another output path"
    )]
    AxesMismatch {
        /// The file.
        path: PathBuf,
        /// The file's axes.
        in_file: String,
        /// The config's axes.
        this_config: String,
    },
    /// The file is not a results file of this layout.
    #[error("{path} is not a sharpsweep results file: {reason}")]
    NotResults {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The caller passed something the file cannot hold (wrong length, bad name, ...).
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HDF5 library reported an error.
    #[error("{path}: HDF5 error while {context}: {source}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// What the store was doing.
        context: String,
        /// The library's error.
        #[source]
        source: ::hdf5::Error,
    },
}

/// Attaches the file path and a description of the step to HDF5 errors.
trait Ctx<T> {
    fn ctx(self, path: &Path, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for ::hdf5::Result<T> {
    fn ctx(self, path: &Path, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Hdf5 {
            path: path.to_path_buf(),
            context: context(),
            source,
        })
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn not_results(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::NotResults {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The files a sweep keeps beside the results file at `path`, each with what it is: the
/// journal, a journal set aside as unusable, the snapshot being written, and the checkpoint
/// directory. Nothing may be written over them (or into the directory) but the sweep.
pub fn side_files(path: &Path) -> Vec<(PathBuf, &'static str)> {
    let journal = journal_path(path);
    vec![
        (
            journal::aside_path(&journal),
            "the results file's set-aside journal",
        ),
        (
            lock::lock_file_path(&journal),
            "the results file's writer lock file",
        ),
        (journal, "the results file's journal"),
        (
            file::snapshot_tmp(path),
            "the results file's snapshot in progress",
        ),
        (
            checkpoint::checkpoint_dir(path),
            "the results file's checkpoint directory",
        ),
    ]
}
