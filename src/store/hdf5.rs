//! The one results file of a sweep: an HDF5 file laid out as a netCDF-4 dataset, so that
//! `xarray.open_dataset(path, engine="h5netcdf")` reads it with named dimensions.
//!
//! Rank 0 is the only writer. [`ResultsFile::create`] writes the whole file shape at once
//! (every run pending, fill values everywhere), then [`ResultsFile::write_record`] fills one
//! row per finished run and flushes, so a killed job keeps everything it finished.
//! [`ResultsFile::open_resume`] reopens a file for the same config; [`read_results`] reads a
//! file back into [`Results`]; [`write_group_table`] stores analysis tables next to it.
//!
//! # Layout (all at the root group)
//!
//! | name | dims | type | fill / meaning |
//! |---|---|---|---|
//! | `run` | (run) | i64 | coordinate, 0..n-1 (dimension scale) |
//! | `step` | (step) | i64 | coordinate, 0..=steps; index t = after t SGD steps (dimension scale) |
//! | `interp` | (interp) | f64 | coordinate, the α values (only when there are any) |
//! | `c`, `lambda0`, `eta`, `seconds` | (run) | f64 | NaN while pending |
//! | `depth`, `width` | (run) | i32 | grid coordinates |
//! | `seed`, `sgd_seed` | (run) | i64 | seeds (a u64 stored as the same 64 bits) |
//! | `status` | (run) | i8 | [`RunStatus::code`]: 0 pending, 1 done, 2 diverged, 3 failed |
//! | `diverged_at` | (run) | i32 | -1 = did not diverge |
//! | `message` | (run) | variable-length UTF-8 string | "" unless failed |
//! | `loss`, `sharpness`, `residual` | (run, step) | f64 | NaN = not measured |
//! | `hvps` | (run, step) | i32 | -1 = not measured |
//! | `converged` | (run, step) | i8 | 0/1 |
//! | `interp_loss` | (run, interp) | f64 | NaN = not computed |
//!
//! Every variable is chunked (at most 64 runs a chunk) and compressed with shuffle + deflate.
//! Root attributes hold the provenance of [`FileMeta`], `hdf5_version`, `history` (one line
//! per start), `Conventions = "CF-1.8"` and the format marker `sharpsweep_format`.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::raw::{c_char, c_int, c_uint};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ::hdf5::file::LibraryVersion;
use ::hdf5::types::{TypeDescriptor, VarLenUnicode};
use ::hdf5::{Dataset, File, Group, H5Type, Location};

use super::results::{Results, RunRecord, RunStatus, TaskKey};

/// Value of the root attribute `sharpsweep_format` that marks a results file of this layout.
pub const FORMAT: &str = "sharpsweep-results-1";

/// Largest number of runs in one chunk of a (run) or (run, step) variable.
const RUN_CHUNK: usize = 64;
/// Target upper bound of one chunk of a (run, step) variable, in elements.
const CHUNK_ELEMS: usize = 1 << 17;
/// Deflate level: fast, and these arrays compress well after shuffling.
const DEFLATE_LEVEL: u8 = 4;
/// Name of the row dimension of the tables written by [`write_group_table`].
const TABLE_DIM: &str = "row";
/// Group attribute listing the columns of a table in order (space separated).
const TABLE_COLUMNS_ATTR: &str = "columns";

mod ffi {
    use super::{c_char, c_int, c_uint};
    use hdf5_sys::h5i::hid_t;

    // From libhdf5_hl, linked by hdf5-sys (feature "hl") next to libhdf5.
    extern "C" {
        pub fn H5DSset_scale(dsid: hid_t, dimname: *const c_char) -> c_int;
        pub fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: c_uint) -> c_int;
    }
}

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

/// Provenance written to the root attributes when a file is created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// The full TOML text of the config (attribute `config`).
    pub config_text: String,
    /// SHA-256 of the config text, hex (attribute `config_sha256`); resume checks it.
    pub config_sha256: String,
    /// Conventions as (key, value) pairs, in order: loss definition, parameterization,
    /// preprocessing, η rule, divergence threshold, sharpness method and tolerance,
    /// measurement set. Stored as the multi-line text attribute `conventions`
    /// ("key: value" lines) and each as attribute `convention_<key>`. Keys are made of
    /// ASCII letters, digits and `_`.
    pub conventions: Vec<(String, String)>,
    /// Version of sharpsweep (attribute `program_version`).
    pub program_version: String,
    /// Git commit the program was built from (attribute `git_commit`).
    pub git_commit: String,
    /// MPI library version string (attribute `mpi_version`).
    pub mpi_version: String,
    /// CPU features the program uses (attribute `cpu_features`).
    pub cpu_features: String,
    /// Number of MPI ranks of the creating job (attribute `ranks`).
    pub ranks: u32,
    /// Slurm job id of the creating job (attribute `slurm_job_id`, "" when none).
    pub slurm_job_id: Option<String>,
}

/// The root attributes of a results file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMeta {
    /// The provenance written at creation.
    pub meta: FileMeta,
    /// HDF5 library version that created the file (attribute `hdf5_version`).
    pub hdf5_version: String,
    /// The `history` attribute, one entry per line (creation, each resume, ...).
    pub history: Vec<String>,
}

/// One column of a table written by [`write_group_table`].
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// UTF-8 strings (stored as variable-length strings).
    Str(Vec<String>),
}

impl Column {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }
    /// Whether the column has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The HDF5 library version, e.g. "1.10.8".
pub fn hdf5_library_version() -> String {
    let (a, b, c) = ::hdf5::library_version();
    format!("{a}.{b}.{c}")
}

/// Current UTC time as ISO 8601, e.g. "2026-11-28T20:00:00Z".
pub fn iso_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    iso_from_unix(secs)
}

/// ISO 8601 UTC text of a Unix time in seconds.
fn iso_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Handles of the variables a record is written to.
struct Vars {
    status: Dataset,
    diverged_at: Dataset,
    lambda0: Dataset,
    eta: Dataset,
    seconds: Dataset,
    message: Dataset,
    loss: Dataset,
    sharpness: Dataset,
    hvps: Dataset,
    residual: Dataset,
    converged: Dataset,
    interp_loss: Option<Dataset>,
}

impl Vars {
    fn open(file: &File, path: &Path, n_interp: usize) -> Result<Vars, StoreError> {
        let ds = |name: &str| {
            file.dataset(name)
                .map_err(|e| not_results(path, format!("variable `{name}` missing ({e})")))
        };
        Ok(Vars {
            status: ds("status")?,
            diverged_at: ds("diverged_at")?,
            lambda0: ds("lambda0")?,
            eta: ds("eta")?,
            seconds: ds("seconds")?,
            message: ds("message")?,
            loss: ds("loss")?,
            sharpness: ds("sharpness")?,
            hvps: ds("hvps")?,
            residual: ds("residual")?,
            converged: ds("converged")?,
            interp_loss: if n_interp > 0 {
                Some(ds("interp_loss")?)
            } else {
                None
            },
        })
    }
}

/// A results file open for writing (rank 0 only). Dropping it closes the file; every
/// [`write_record`](ResultsFile::write_record) has already flushed its row to disk.
pub struct ResultsFile {
    path: PathBuf,
    file: File,
    n_runs: usize,
    steps: usize,
    n_interp: usize,
    vars: Vars,
}

impl std::fmt::Debug for ResultsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsFile")
            .field("path", &self.path)
            .field("n_runs", &self.n_runs)
            .field("steps", &self.steps)
            .field("n_interp", &self.n_interp)
            .finish()
    }
}

fn check_convention_key(path: &Path, key: &str) -> Result<(), StoreError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid(
            path,
            format!("convention key {key:?} must be ASCII letters, digits or '_'"),
        ));
    }
    Ok(())
}

/// The `conventions` text: one "key: value" line per pair, continuation lines of a
/// multi-line value indented by two spaces.
fn conventions_text(conventions: &[(String, String)]) -> String {
    let mut text = String::new();
    for (k, v) in conventions {
        let _ = writeln!(text, "{k}: {}", v.replace('\n', "\n  "));
    }
    text
}

/// Keys of the `conventions` text, in order.
fn conventions_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("  "))
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
        .collect()
}

fn vlu(path: &Path, s: &str) -> Result<VarLenUnicode, StoreError> {
    VarLenUnicode::from_str(s)
        .map_err(|e| invalid(path, format!("string {s:?} cannot be stored: {e}")))
}

fn write_str_attr(loc: &Location, path: &Path, name: &str, value: &str) -> Result<(), StoreError> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)
            .ctx(path, || format!("replacing attribute `{name}`"))?;
    }
    let v = vlu(path, value)?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .ctx(path, || format!("writing attribute `{name}`"))
}

fn write_num_attr<T: H5Type>(
    loc: &Location,
    path: &Path,
    name: &str,
    value: T,
) -> Result<(), StoreError> {
    loc.new_attr::<T>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .ctx(path, || format!("writing attribute `{name}`"))
}

fn read_str_attr(loc: &Location, path: &Path, name: &str) -> Result<String, StoreError> {
    let attr = loc
        .attr(name)
        .map_err(|_| not_results(path, format!("attribute `{name}` missing")))?;
    attr.read_scalar::<VarLenUnicode>()
        .map(|s| s.as_str().to_string())
        .ctx(path, || format!("reading attribute `{name}`"))
}

/// Opens (or creates) an HDF5 file and marks its descriptor close-on-exec.
///
/// HDF5 opens files without `O_CLOEXEC` and holds an `flock` on each: a child process
/// started while the file is open (an `h5dump`, a plotting helper, ...) would inherit that
/// lock and make the next open of the file in this process fail with "unable to lock file".
fn open_file(
    path: &Path,
    context: &str,
    open: impl FnOnce() -> ::hdf5::Result<File>,
) -> Result<File, StoreError> {
    let file = open().ctx(path, || context.to_string())?;
    set_cloexec(&file);
    Ok(file)
}

/// Best effort: sets `FD_CLOEXEC` on the descriptor of a file opened with the sec2 driver.
fn set_cloexec(file: &File) {
    #[cfg(unix)]
    {
        use ::hdf5::file::FileDriver;
        let Ok(fapl) = file.access_plist() else {
            return;
        };
        if !matches!(fapl.driver(), FileDriver::Sec2) {
            return;
        }
        let mut handle: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: a valid file id; the sec2 driver hands back a pointer to its `int` fd.
        let rc = ::hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5f::H5Fget_vfd_handle(file.id(), hdf5_sys::h5p::H5P_DEFAULT, &mut handle)
        });
        if rc >= 0 && !handle.is_null() {
            // SAFETY: see above; fcntl on a descriptor we own through the file.
            unsafe {
                let fd = *(handle as *const c_int);
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

fn set_scale(ds: &Dataset, path: &Path, dim: &str) -> Result<(), StoreError> {
    let name = CString::new(dim).map_err(|_| invalid(path, "dimension name has a NUL"))?;
    // SAFETY: valid dataset id and NUL-terminated name; serialised by the crate's lock.
    let rc = ::hdf5::sync::sync(|| unsafe { ffi::H5DSset_scale(ds.id(), name.as_ptr()) });
    if rc < 0 {
        return Err(StoreError::Hdf5 {
            path: path.to_path_buf(),
            context: format!("making `{dim}` a dimension scale"),
            source: "H5DSset_scale failed".into(),
        });
    }
    Ok(())
}

fn attach_scales(ds: &Dataset, path: &Path, scales: &[&Dataset]) -> Result<(), StoreError> {
    for (idx, scale) in scales.iter().enumerate() {
        // SAFETY: both ids are open datasets; serialised by the crate's lock.
        let rc = ::hdf5::sync::sync(|| unsafe {
            ffi::H5DSattach_scale(ds.id(), scale.id(), idx as c_uint)
        });
        if rc < 0 {
            return Err(StoreError::Hdf5 {
                path: path.to_path_buf(),
                context: format!("attaching dimension {idx} of `{}`", ds.name()),
                source: "H5DSattach_scale failed".into(),
            });
        }
    }
    Ok(())
}

/// Chunk shape of a variable of `shape`: at most [`RUN_CHUNK`] runs and about
/// [`CHUNK_ELEMS`] elements, whole rows along the other dimension.
fn chunk_of(shape: &[usize]) -> Vec<usize> {
    match shape {
        [n] => vec![(*n).clamp(1, 4 * CHUNK_ELEMS)],
        [n, m] => {
            let m = (*m).max(1);
            let rows = (CHUNK_ELEMS / m).clamp(1, RUN_CHUNK).min((*n).max(1));
            vec![rows, m]
        }
        _ => unreachable!("variables have one or two dimensions"),
    }
}

/// Creates a chunked, shuffled, deflated variable with a fill value (or contiguous and
/// unfiltered when it has no elements, which HDF5 cannot chunk).
fn create_var<T: H5Type>(
    group: &Group,
    path: &Path,
    name: &str,
    shape: &[usize],
    fill: T,
    long_name: &str,
) -> Result<Dataset, StoreError> {
    let builder = group.new_dataset::<T>().shape(shape.to_vec());
    let ds = if shape.iter().product::<usize>() == 0 {
        builder.fill_value(fill).create(name)
    } else {
        builder
            .chunk(chunk_of(shape))
            .shuffle()
            .deflate(DEFLATE_LEVEL)
            .fill_value(fill)
            .create(name)
    }
    .ctx(path, || format!("creating variable `{name}`"))?;
    write_str_attr(&ds, path, "long_name", long_name)?;
    Ok(ds)
}

/// Creates a variable and writes all of `data` into it.
fn create_filled<T: H5Type + Clone>(
    group: &Group,
    path: &Path,
    name: &str,
    data: &[T],
    fill: T,
    long_name: &str,
) -> Result<Dataset, StoreError> {
    let ds = create_var(group, path, name, &[data.len()], fill, long_name)?;
    if !data.is_empty() {
        ds.write_raw(data)
            .ctx(path, || format!("writing variable `{name}`"))?;
    }
    Ok(ds)
}

/// `v` padded with `fill` to length `n`; an error if it is longer.
fn padded<T: Copy>(
    path: &Path,
    name: &str,
    v: &[T],
    n: usize,
    fill: T,
) -> Result<Vec<T>, StoreError> {
    if v.len() > n {
        return Err(invalid(
            path,
            format!(
                "record has {} `{name}` entries, the file holds {n}",
                v.len()
            ),
        ));
    }
    let mut out = v.to_vec();
    out.resize(n, fill);
    Ok(out)
}

fn i32_of(path: &Path, name: &str, v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| invalid(path, format!("{name} = {v} does not fit in i32")))
}

impl ResultsFile {
    /// Creates the results file of a sweep with one row per `results.keys` entry and
    /// `results.steps + 1` steps, every run pending (records that are `Some` are written
    /// too). Refuses an existing file unless `force`, which overwrites it.
    pub fn create(
        path: &Path,
        meta: &FileMeta,
        results: &Results,
        force: bool,
    ) -> Result<ResultsFile, StoreError> {
        let n = results.keys.len();
        if n == 0 {
            return Err(invalid(path, "the grid has no runs"));
        }
        if results.records.len() != n {
            return Err(invalid(
                path,
                format!("{} keys but {} records", n, results.records.len()),
            ));
        }
        for (k, _) in &meta.conventions {
            check_convention_key(path, k)?;
        }
        if !force && path.exists() {
            return Err(StoreError::Exists {
                path: path.to_path_buf(),
            });
        }
        let mut options = File::with_options();
        options.with_fapl(|p| p.libver_bounds(LibraryVersion::V18, LibraryVersion::V18));
        let file = if force {
            options.create(path)
        } else {
            options.create_excl(path)
        }
        .inspect(set_cloexec)
        .map_err(|source| {
            if path.exists() && !force {
                StoreError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                StoreError::Hdf5 {
                    path: path.to_path_buf(),
                    context: "creating the file".into(),
                    source,
                }
            }
        })?;

        // Root attributes.
        let root: &Location = &file;
        write_str_attr(root, path, "sharpsweep_format", FORMAT)?;
        write_str_attr(root, path, "Conventions", "CF-1.8")?;
        write_str_attr(
            root,
            path,
            "title",
            "sharpsweep: early training dynamics (loss and sharpness) of MLPs over a grid",
        )?;
        write_str_attr(root, path, "config", &meta.config_text)?;
        write_str_attr(root, path, "config_sha256", &meta.config_sha256)?;
        write_str_attr(
            root,
            path,
            "conventions",
            &conventions_text(&meta.conventions),
        )?;
        for (k, v) in &meta.conventions {
            write_str_attr(root, path, &format!("convention_{k}"), v)?;
        }
        write_str_attr(root, path, "program_version", &meta.program_version)?;
        write_str_attr(root, path, "git_commit", &meta.git_commit)?;
        write_str_attr(root, path, "mpi_version", &meta.mpi_version)?;
        write_str_attr(root, path, "hdf5_version", &hdf5_library_version())?;
        write_str_attr(root, path, "cpu_features", &meta.cpu_features)?;
        write_num_attr(root, path, "ranks", i64::from(meta.ranks))?;
        write_str_attr(
            root,
            path,
            "slurm_job_id",
            meta.slurm_job_id.as_deref().unwrap_or(""),
        )?;
        let line = format!("{} created by {}", iso_now(), describe(meta));
        write_str_attr(root, path, "history", &line)?;

        // Coordinates (dimension scales).
        let steps = results.steps;
        let n_interp = results.interp_alpha.len();
        let run_ids: Vec<i64> = (0..n as i64).collect();
        let step_ids: Vec<i64> = (0..=steps as i64).collect();
        let run = create_filled(&file, path, "run", &run_ids, -1i64, "run (grid task) index")?;
        set_scale(&run, path, "run")?;
        let step = create_filled(
            &file,
            path,
            "step",
            &step_ids,
            -1i64,
            "SGD steps taken (0 = initialization)",
        )?;
        set_scale(&step, path, "step")?;
        let interp = if n_interp > 0 {
            let ds = create_filled(
                &file,
                path,
                "interp",
                &results.interp_alpha,
                f64::NAN,
                "interpolation coefficient alpha of theta_0 -> theta_T",
            )?;
            set_scale(&ds, path, "interp")?;
            Some(ds)
        } else {
            None
        };

        // The run table: keys written now, outcomes filled in by write_record.
        let keys = &results.keys;
        let col = |f: &dyn Fn(&TaskKey) -> f64| keys.iter().map(f).collect::<Vec<f64>>();
        let depth: Vec<i32> = keys
            .iter()
            .map(|k| i32_of(path, "depth", k.depth))
            .collect::<Result<_, _>>()?;
        let width: Vec<i32> = keys
            .iter()
            .map(|k| i32_of(path, "width", k.width))
            .collect::<Result<_, _>>()?;
        let seed: Vec<i64> = keys.iter().map(|k| k.seed as i64).collect();
        let sgd_seed: Vec<i64> = keys.iter().map(|k| k.sgd_seed as i64).collect();
        let by_run = [&run];
        let by_step = [&run, &step];
        let nan = f64::NAN;
        let mut one_d = vec![
            create_filled(
                &file,
                path,
                "c",
                &col(&|k| k.c),
                nan,
                "learning-rate multiplier c (eta = c / lambda0)",
            )?,
            create_filled(&file, path, "depth", &depth, -1, "number of weight layers")?,
            create_filled(&file, path, "width", &width, -1, "hidden width")?,
            create_filled(&file, path, "seed", &seed, -1, "initialization seed")?,
            create_filled(&file, path, "sgd_seed", &sgd_seed, -1, "SGD order seed")?,
        ];
        let status = create_var(&file, path, "status", &[n], 0i8, "run status")?;
        let codes = [
            RunStatus::Pending,
            RunStatus::Done,
            RunStatus::Diverged,
            RunStatus::Failed,
        ];
        let flag_values: Vec<i8> = codes.iter().map(|s| s.code()).collect();
        let flag_meanings: Vec<&str> = codes.iter().map(|s| s.name()).collect();
        status
            .new_attr_builder()
            .with_data(flag_values.as_slice())
            .create("flag_values")
            .ctx(path, || "writing attribute `status.flag_values`".into())?;
        write_str_attr(&status, path, "flag_meanings", &flag_meanings.join(" "))?;
        let diverged_at = create_var(
            &file,
            path,
            "diverged_at",
            &[n],
            -1i32,
            "step whose minibatch loss diverged (-1: none)",
        )?;
        let lambda0 = create_var(
            &file,
            path,
            "lambda0",
            &[n],
            nan,
            "sharpness at initialization",
        )?;
        let eta = create_var(&file, path, "eta", &[n], nan, "learning rate c / lambda0")?;
        let seconds = create_var(&file, path, "seconds", &[n], nan, "wall-clock seconds")?;
        let message = create_var(
            &file,
            path,
            "message",
            &[n],
            VarLenUnicode::new(),
            "failure message",
        )?;
        let empty = vec![VarLenUnicode::new(); n];
        message
            .write_raw(&empty)
            .ctx(path, || "writing variable `message`".into())?;
        one_d.extend([status.clone(), diverged_at, lambda0, eta, seconds, message]);
        for ds in &one_d {
            attach_scales(ds, path, &by_run)?;
        }

        let shape = [n, steps + 1];
        let loss = create_var(&file, path, "loss", &shape, nan, "training loss L_t")?;
        let sharpness = create_var(
            &file,
            path,
            "sharpness",
            &shape,
            nan,
            "top Hessian eigenvalue lambda_t",
        )?;
        let hvps = create_var(
            &file,
            path,
            "hvps",
            &shape,
            -1i32,
            "Hessian-vector products of the measurement (-1: not measured)",
        )?;
        let residual = create_var(
            &file,
            path,
            "residual",
            &shape,
            nan,
            "relative residual of the measurement",
        )?;
        let converged = create_var(
            &file,
            path,
            "converged",
            &shape,
            0i8,
            "measurement met its tolerance (0/1)",
        )?;
        for ds in [&loss, &sharpness, &hvps, &residual, &converged] {
            attach_scales(ds, path, &by_step)?;
        }
        if let Some(interp) = &interp {
            let ds = create_var(
                &file,
                path,
                "interp_loss",
                &[n, n_interp],
                nan,
                "loss along theta_0 -> theta_T at interp",
            )?;
            attach_scales(&ds, path, &[&run, interp])?;
        }

        let vars = Vars::open(&file, path, n_interp)?;
        let mut out = ResultsFile {
            path: path.to_path_buf(),
            file,
            n_runs: n,
            steps,
            n_interp,
            vars,
        };
        for (i, rec) in results.records.iter().enumerate() {
            if let Some(rec) = rec {
                out.write_row(i, rec)?;
            }
        }
        out.flush()?;
        Ok(out)
    }

    /// Reopens an existing results file to continue its sweep. Refuses a file that is not a
    /// sharpsweep results file or whose `config_sha256` differs from `meta`'s. Appends a
    /// history line and returns what the file holds (records `Some` for finished runs).
    pub fn open_resume(path: &Path, meta: &FileMeta) -> Result<(ResultsFile, Results), StoreError> {
        if !path.exists() {
            return Err(not_results(path, "the file does not exist"));
        }
        let file = open_file(path, "opening the file for writing", || File::open_rw(path))?;
        check_format(&file, path)?;
        let in_file = read_str_attr(&file, path, "config_sha256")?;
        if in_file != meta.config_sha256 {
            return Err(StoreError::ConfigMismatch {
                path: path.to_path_buf(),
                in_file,
                this_config: meta.config_sha256.clone(),
            });
        }
        let results = read_results_from(&file, path)?;
        let vars = Vars::open(&file, path, results.interp_alpha.len())?;
        let mut out = ResultsFile {
            path: path.to_path_buf(),
            n_runs: results.keys.len(),
            steps: results.steps,
            n_interp: results.interp_alpha.len(),
            file,
            vars,
        };
        let finished = results.records.iter().filter(|r| r.is_some()).count();
        out.append_history(&format!(
            "resumed by {}: {finished} of {} runs finished",
            describe(meta),
            out.n_runs
        ))?;
        Ok((out, results))
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of runs (rows).
    pub fn n_runs(&self) -> usize {
        self.n_runs
    }

    /// Number of SGD steps per run (the `step` dimension has `steps + 1` entries).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Writes the row `run` of every variable from `rec` and flushes the file, so the row
    /// survives a killed process. Per-step vectors shorter than `steps + 1` (and an
    /// `interp_loss` shorter than `interp`) are padded with the fill value; longer ones
    /// are refused.
    pub fn write_record(&mut self, run: usize, rec: &RunRecord) -> Result<(), StoreError> {
        self.write_row(run, rec)?;
        self.flush()
    }

    fn write_row(&mut self, run: usize, rec: &RunRecord) -> Result<(), StoreError> {
        let path = self.path.as_path();
        if run >= self.n_runs {
            return Err(invalid(
                path,
                format!(
                    "run {run} is out of range (the file has {} runs)",
                    self.n_runs
                ),
            ));
        }
        let m = self.steps + 1;
        let loss = padded(path, "loss", &rec.loss, m, f64::NAN)?;
        let sharpness = padded(path, "sharpness", &rec.sharpness, m, f64::NAN)?;
        let hvps = padded(path, "hvps", &rec.hvps, m, -1)?;
        let residual = padded(path, "residual", &rec.residual, m, f64::NAN)?;
        let conv: Vec<i8> = rec.converged.iter().map(|&b| i8::from(b)).collect();
        let converged = padded(path, "converged", &conv, m, 0)?;
        let interp = padded(
            path,
            "interp_loss",
            &rec.interp_loss,
            self.n_interp,
            f64::NAN,
        )?;
        let diverged_at = match rec.diverged_at {
            Some(s) => i32_of(path, "diverged_at", s)?,
            None => -1,
        };
        let message = vlu(path, &rec.message)?;

        let v = &self.vars;
        let w = |ds: &Dataset, r: ::hdf5::Result<()>| {
            r.ctx(path, || format!("writing run {run} of `{}`", ds.name()))
        };
        let sel = run..run + 1;
        w(
            &v.status,
            v.status.write_slice(&[rec.status.code()], sel.clone()),
        )?;
        w(
            &v.diverged_at,
            v.diverged_at.write_slice(&[diverged_at], sel.clone()),
        )?;
        w(
            &v.lambda0,
            v.lambda0.write_slice(&[rec.lambda0], sel.clone()),
        )?;
        w(&v.eta, v.eta.write_slice(&[rec.eta], sel.clone()))?;
        w(
            &v.seconds,
            v.seconds.write_slice(&[rec.seconds], sel.clone()),
        )?;
        w(&v.message, v.message.write_slice(&[message], sel))?;
        w(&v.loss, v.loss.write_slice(loss.as_slice(), (run, ..)))?;
        w(
            &v.sharpness,
            v.sharpness.write_slice(sharpness.as_slice(), (run, ..)),
        )?;
        w(&v.hvps, v.hvps.write_slice(hvps.as_slice(), (run, ..)))?;
        w(
            &v.residual,
            v.residual.write_slice(residual.as_slice(), (run, ..)),
        )?;
        w(
            &v.converged,
            v.converged.write_slice(converged.as_slice(), (run, ..)),
        )?;
        if let Some(ds) = &v.interp_loss {
            w(ds, ds.write_slice(interp.as_slice(), (run, ..)))?;
        }
        Ok(())
    }

    /// Appends the line "`<ISO time> <what>`" to the root `history` attribute and flushes.
    /// Newlines in `what` become spaces.
    pub fn append_history(&mut self, what: &str) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let mut history = read_str_attr(&self.file, path, "history")?;
        if !history.is_empty() && !history.ends_with('\n') {
            history.push('\n');
        }
        history.push_str(&iso_now());
        history.push(' ');
        history.push_str(&what.replace(['\n', '\r'], " "));
        write_str_attr(&self.file, path, "history", &history)?;
        self.flush()
    }

    /// Flushes every buffered write of the file to disk (`H5Fflush`).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.file
            .flush()
            .ctx(&self.path, || "flushing the file".into())
    }

    /// Flushes and closes the file, reporting errors that a plain drop would swallow.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()?;
        let ResultsFile {
            path, file, vars, ..
        } = self;
        drop(vars);
        file.close().ctx(&path, || "closing the file".into())
    }
}

/// "sharpsweep 0.1.0 (git abc, 4 ranks, slurm job 123)".
fn describe(meta: &FileMeta) -> String {
    let mut s = format!(
        "sharpsweep {} (git {}, {} rank{}",
        meta.program_version,
        if meta.git_commit.is_empty() {
            "unknown"
        } else {
            &meta.git_commit
        },
        meta.ranks,
        if meta.ranks == 1 { "" } else { "s" }
    );
    if let Some(id) = meta.slurm_job_id.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(s, ", slurm job {id}");
    }
    s.push(')');
    s
}

fn check_format(file: &File, path: &Path) -> Result<(), StoreError> {
    let format = file
        .attr("sharpsweep_format")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(|_| not_results(path, "no `sharpsweep_format` attribute"))?;
    if format.as_str() != FORMAT {
        return Err(not_results(
            path,
            format!(
                "format {:?}, this program reads {FORMAT:?}",
                format.as_str()
            ),
        ));
    }
    Ok(())
}

fn read_var<T: H5Type>(
    file: &File,
    path: &Path,
    name: &str,
    len: usize,
) -> Result<Vec<T>, StoreError> {
    let ds = file
        .dataset(name)
        .map_err(|e| not_results(path, format!("variable `{name}` missing ({e})")))?;
    let v = ds
        .read_raw::<T>()
        .ctx(path, || format!("reading variable `{name}`"))?;
    if v.len() != len {
        return Err(not_results(
            path,
            format!("variable `{name}` has {} elements, expected {len}", v.len()),
        ));
    }
    Ok(v)
}

fn read_results_from(file: &File, path: &Path) -> Result<Results, StoreError> {
    let run_len = |name: &str| -> Result<usize, StoreError> {
        Ok(file
            .dataset(name)
            .map_err(|e| not_results(path, format!("coordinate `{name}` missing ({e})")))?
            .size())
    };
    let n = run_len("run")?;
    let m = run_len("step")?;
    if m == 0 {
        return Err(not_results(path, "the `step` dimension is empty"));
    }
    let interp_alpha: Vec<f64> = if file.link_exists("interp") {
        let len = run_len("interp")?;
        read_var(file, path, "interp", len)?
    } else {
        Vec::new()
    };
    let k = interp_alpha.len();

    let c: Vec<f64> = read_var(file, path, "c", n)?;
    let depth: Vec<i32> = read_var(file, path, "depth", n)?;
    let width: Vec<i32> = read_var(file, path, "width", n)?;
    let seed: Vec<i64> = read_var(file, path, "seed", n)?;
    let sgd_seed: Vec<i64> = read_var(file, path, "sgd_seed", n)?;
    let status: Vec<i8> = read_var(file, path, "status", n)?;
    let diverged_at: Vec<i32> = read_var(file, path, "diverged_at", n)?;
    let lambda0: Vec<f64> = read_var(file, path, "lambda0", n)?;
    let eta: Vec<f64> = read_var(file, path, "eta", n)?;
    let seconds: Vec<f64> = read_var(file, path, "seconds", n)?;
    let message: Vec<VarLenUnicode> = read_var(file, path, "message", n)?;
    let loss: Vec<f64> = read_var(file, path, "loss", n * m)?;
    let sharpness: Vec<f64> = read_var(file, path, "sharpness", n * m)?;
    let hvps: Vec<i32> = read_var(file, path, "hvps", n * m)?;
    let residual: Vec<f64> = read_var(file, path, "residual", n * m)?;
    let converged: Vec<i8> = read_var(file, path, "converged", n * m)?;
    let interp_loss: Vec<f64> = if k > 0 {
        read_var(file, path, "interp_loss", n * k)?
    } else {
        Vec::new()
    };

    let mut keys = Vec::with_capacity(n);
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let unsigned = |name: &str, v: i32| {
            u32::try_from(v).map_err(|_| not_results(path, format!("run {i}: {name} = {v}")))
        };
        keys.push(TaskKey {
            c: c[i],
            depth: unsigned("depth", depth[i])?,
            width: unsigned("width", width[i])?,
            seed: seed[i] as u64,
            sgd_seed: sgd_seed[i] as u64,
        });
        let st = RunStatus::from_code(status[i])
            .ok_or_else(|| not_results(path, format!("run {i}: status code {}", status[i])))?;
        if st == RunStatus::Pending {
            records.push(None);
            continue;
        }
        let row = i * m..(i + 1) * m;
        records.push(Some(RunRecord {
            lambda0: lambda0[i],
            eta: eta[i],
            status: st,
            diverged_at: u32::try_from(diverged_at[i]).ok(),
            loss: loss[row.clone()].to_vec(),
            sharpness: sharpness[row.clone()].to_vec(),
            hvps: hvps[row.clone()].to_vec(),
            residual: residual[row.clone()].to_vec(),
            converged: converged[row].iter().map(|&b| b != 0).collect(),
            interp_loss: interp_loss.get(i * k..(i + 1) * k).unwrap_or(&[]).to_vec(),
            message: message[i].as_str().to_string(),
            seconds: seconds[i],
        }));
    }
    Ok(Results {
        steps: m - 1,
        interp_alpha,
        keys,
        records,
    })
}

fn read_meta(file: &File, path: &Path) -> Result<StoredMeta, StoreError> {
    let s = |name: &str| read_str_attr(file, path, name);
    let conventions = conventions_keys(&s("conventions")?)
        .into_iter()
        .map(|k| {
            let v = s(&format!("convention_{k}"))?;
            Ok((k, v))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let ranks = file
        .attr("ranks")
        .and_then(|a| a.read_scalar::<i64>())
        .map_err(|_| not_results(path, "attribute `ranks` missing"))?;
    let slurm = s("slurm_job_id")?;
    Ok(StoredMeta {
        meta: FileMeta {
            config_text: s("config")?,
            config_sha256: s("config_sha256")?,
            conventions,
            program_version: s("program_version")?,
            git_commit: s("git_commit")?,
            mpi_version: s("mpi_version")?,
            cpu_features: s("cpu_features")?,
            ranks: u32::try_from(ranks).map_err(|_| not_results(path, "bad `ranks`"))?,
            slurm_job_id: (!slurm.is_empty()).then_some(slurm),
        },
        hdf5_version: s("hdf5_version")?,
        history: s("history")?.lines().map(str::to_string).collect(),
    })
}

/// Reads a results file: the run table and arrays, and the root attributes.
pub fn read_results(path: &Path) -> Result<(Results, StoredMeta), StoreError> {
    if !path.exists() {
        return Err(not_results(path, "the file does not exist"));
    }
    let file = open_file(path, "opening the file", || File::open(path))?;
    check_format(&file, path)?;
    let results = read_results_from(&file, path)?;
    let meta = read_meta(&file, path)?;
    Ok((results, meta))
}

fn check_table_group(file: &File, path: &Path, group: &str) -> Result<(), StoreError> {
    if group.is_empty()
        || group.starts_with('/')
        || group.ends_with('/')
        || group.split('/').any(str::is_empty)
    {
        return Err(invalid(
            path,
            format!("group name {group:?} must be a relative path like \"analysis/critical\""),
        ));
    }
    let top = group.split('/').next().unwrap_or(group);
    if file.link_exists(top) && file.dataset(top).is_ok() {
        return Err(invalid(
            path,
            format!("group {group:?} would replace the root variable `{top}`"),
        ));
    }
    Ok(())
}

/// Replaces group `group` (e.g. "analysis/critical") of an existing file with a table: one
/// 1-D dataset per column, all of the same length, over the dimension `row` (a coordinate
/// 0..n-1, so xarray opens the group with `group=`), plus string attributes on the group.
/// Root variables are never touched.
pub fn write_group_table(
    path: &Path,
    group: &str,
    columns: &[(&str, Column)],
    attrs: &[(&str, String)],
) -> Result<(), StoreError> {
    let len = columns.first().map_or(0, |(_, c)| c.len());
    let mut names: Vec<&str> = Vec::new();
    for (name, col) in columns {
        if name.is_empty() || name.contains('/') || name.contains(' ') || *name == TABLE_DIM {
            return Err(invalid(
                path,
                format!("bad column name {name:?} in {group:?}"),
            ));
        }
        if names.contains(name) {
            return Err(invalid(path, format!("column {name:?} twice in {group:?}")));
        }
        if col.len() != len {
            return Err(invalid(
                path,
                format!(
                    "column {name:?} of {group:?} has {} entries, the first has {len}",
                    col.len()
                ),
            ));
        }
        names.push(name);
    }
    for (name, _) in attrs {
        if *name == TABLE_COLUMNS_ATTR {
            return Err(invalid(
                path,
                format!("attribute name {name:?} is reserved"),
            ));
        }
    }
    if !path.exists() {
        return Err(not_results(path, "the file does not exist"));
    }
    let file = open_file(path, "opening the file for writing", || File::open_rw(path))?;
    check_table_group(&file, path, group)?;
    if file.link_exists(group) {
        file.unlink(group)
            .ctx(path, || format!("removing the old group {group:?}"))?;
    }
    let g = file
        .create_group(group)
        .ctx(path, || format!("creating group {group:?}"))?;
    let rows: Vec<i64> = (0..len as i64).collect();
    let row = create_filled(&g, path, TABLE_DIM, &rows, -1i64, "table row")?;
    set_scale(&row, path, TABLE_DIM)?;
    for (name, col) in columns {
        let ds = match col {
            Column::F64(v) => create_filled(&g, path, name, v, f64::NAN, name)?,
            Column::I64(v) => create_filled(&g, path, name, v, 0i64, name)?,
            Column::Str(v) => {
                let v = v
                    .iter()
                    .map(|s| vlu(path, s))
                    .collect::<Result<Vec<_>, _>>()?;
                create_filled(&g, path, name, &v, VarLenUnicode::new(), name)?
            }
        };
        attach_scales(&ds, path, &[&row])?;
    }
    write_str_attr(&g, path, TABLE_COLUMNS_ATTR, &names.join(" "))?;
    for (name, value) in attrs {
        write_str_attr(&g, path, name, value)?;
    }
    file.flush().ctx(path, || "flushing the file".into())
}

/// A table written by [`write_group_table`]: columns in order and the group's attributes
/// (without the internal `columns` list).
pub type GroupTable = (Vec<(String, Column)>, Vec<(String, String)>);

/// Reads back a table written by [`write_group_table`].
pub fn read_group_table(path: &Path, group: &str) -> Result<GroupTable, StoreError> {
    let file = open_file(path, "opening the file", || File::open(path))?;
    let g = file
        .group(group)
        .map_err(|e| invalid(path, format!("no table group {group:?} ({e})")))?;
    let names = read_str_attr(&g, path, TABLE_COLUMNS_ATTR)?;
    let mut columns = Vec::new();
    for name in names.split(' ').filter(|s| !s.is_empty()) {
        let ds = g
            .dataset(name)
            .map_err(|e| invalid(path, format!("column {name:?} of {group:?} missing ({e})")))?;
        let ctx = || format!("reading column {name:?} of {group:?}");
        let desc = ds.dtype().and_then(|t| t.to_descriptor()).ctx(path, ctx)?;
        let col = match desc {
            TypeDescriptor::Float(_) => Column::F64(ds.read_raw::<f64>().ctx(path, ctx)?),
            TypeDescriptor::Integer(_) => Column::I64(ds.read_raw::<i64>().ctx(path, ctx)?),
            TypeDescriptor::VarLenUnicode => Column::Str(
                ds.read_raw::<VarLenUnicode>()
                    .ctx(path, ctx)?
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
            ),
            other => {
                return Err(invalid(
                    path,
                    format!("column {name:?} of {group:?} has type {other:?}"),
                ))
            }
        };
        columns.push((name.to_string(), col));
    }
    let mut attrs = Vec::new();
    for name in g
        .attr_names()
        .ctx(path, || format!("listing attributes of {group:?}"))?
    {
        if name != TABLE_COLUMNS_ATTR {
            let v = read_str_attr(&g, path, &name)?;
            attrs.push((name, v));
        }
    }
    Ok((columns, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(hash: &str) -> FileMeta {
        FileMeta {
            config_text: "[sweep]\nsteps = 4\n".into(),
            config_sha256: hash.into(),
            conventions: vec![
                ("loss".into(), "1/(2Bk) sum (f - y)^2".into()),
                ("eta_rule".into(), "eta = c / lambda0".into()),
                (
                    "sharpness".into(),
                    "lanczos, rtol 1e-3\nfull Hessian".into(),
                ),
            ],
            program_version: "0.1.0".into(),
            git_commit: "abc123".into(),
            mpi_version: "Open MPI v4.1.4".into(),
            cpu_features: "avx2 avx512f fma".into(),
            ranks: 4,
            slurm_job_id: Some("777".into()),
        }
    }

    fn key(i: usize) -> TaskKey {
        TaskKey {
            c: 2f64.powf(i as f64 * 0.1),
            depth: 2 + (i % 3) as u32,
            width: 64,
            seed: i as u64,
            sgd_seed: u64::MAX - i as u64,
        }
    }

    fn empty(n: usize, steps: usize, interp: &[f64]) -> Results {
        Results {
            steps,
            interp_alpha: interp.to_vec(),
            keys: (0..n).map(key).collect(),
            records: vec![None; n],
        }
    }

    fn done(steps: usize, n_interp: usize, x: f64) -> RunRecord {
        let m = steps + 1;
        RunRecord {
            lambda0: 12.5 + x,
            eta: 0.16 / (12.5 + x),
            status: RunStatus::Done,
            diverged_at: None,
            loss: (0..m).map(|t| 0.05 / (1.0 + t as f64 + x)).collect(),
            sharpness: (0..m)
                .map(|t| {
                    if t % 2 == 0 {
                        12.5 - t as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
            hvps: (0..m)
                .map(|t| if t % 2 == 0 { 20 + t as i32 } else { -1 })
                .collect(),
            residual: (0..m)
                .map(|t| {
                    if t % 2 == 0 {
                        1e-4 * t as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
            converged: (0..m).map(|t| t % 2 == 0).collect(),
            interp_loss: (0..n_interp).map(|a| 0.05 + a as f64 * 1e-3).collect(),
            message: String::new(),
            seconds: 1.25 + x,
        }
    }

    fn diverged(steps: usize, n_interp: usize) -> RunRecord {
        let mut r = done(steps, n_interp, 1.0);
        r.status = RunStatus::Diverged;
        r.diverged_at = Some(2);
        for t in 3..=steps {
            r.loss[t] = f64::NAN;
            r.sharpness[t] = f64::NAN;
            r.hvps[t] = -1;
            r.residual[t] = f64::NAN;
            r.converged[t] = false;
        }
        r.loss[2] = f64::INFINITY;
        r.interp_loss = vec![f64::NAN; n_interp];
        r
    }

    fn failed(steps: usize, n_interp: usize) -> RunRecord {
        RunRecord {
            message: "Lanczos did not converge: ‖r‖ = 3e-2 (λ ≈ 12.5)\nsecond line".into(),
            seconds: 0.5,
            ..RunRecord::unmeasured(f64::NAN, f64::NAN, RunStatus::Failed, steps, n_interp)
        }
    }

    fn same_f64(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Bitwise equality of two results (NaN == NaN at the same positions).
    fn assert_same(a: &Results, b: &Results) {
        assert_eq!(a.steps, b.steps);
        assert!(same_f64(&a.interp_alpha, &b.interp_alpha));
        assert_eq!(a.keys.len(), b.keys.len());
        for (x, y) in a.keys.iter().zip(&b.keys) {
            assert_eq!(x.c.to_bits(), y.c.to_bits());
            assert_eq!(
                (x.depth, x.width, x.seed, x.sgd_seed),
                (y.depth, y.width, y.seed, y.sgd_seed)
            );
        }
        assert_eq!(a.records.len(), b.records.len());
        for (i, (x, y)) in a.records.iter().zip(&b.records).enumerate() {
            match (x, y) {
                (None, None) => {}
                (Some(x), Some(y)) => assert_same_record(x, y, i),
                _ => panic!("run {i}: {x:?} vs {y:?}"),
            }
        }
    }

    fn assert_same_record(x: &RunRecord, y: &RunRecord, i: usize) {
        assert_eq!(x.status, y.status, "run {i}");
        assert_eq!(x.diverged_at, y.diverged_at, "run {i}");
        assert_eq!(x.lambda0.to_bits(), y.lambda0.to_bits(), "run {i}");
        assert_eq!(x.eta.to_bits(), y.eta.to_bits(), "run {i}");
        assert_eq!(x.seconds.to_bits(), y.seconds.to_bits(), "run {i}");
        assert!(same_f64(&x.loss, &y.loss), "run {i} loss");
        assert!(same_f64(&x.sharpness, &y.sharpness), "run {i} sharpness");
        assert!(same_f64(&x.residual, &y.residual), "run {i} residual");
        assert!(same_f64(&x.interp_loss, &y.interp_loss), "run {i} interp");
        assert_eq!(x.hvps, y.hvps, "run {i}");
        assert_eq!(x.converged, y.converged, "run {i}");
        assert_eq!(x.message, y.message, "run {i}");
    }

    /// HDF5 keeps its files open without close-on-exec, and holds an flock on each: an
    /// `h5dump` child forked by one test while another test has its file open inherits
    /// that lock and makes the other test's next open fail. Tests here run one at a time.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A file with 5 runs: 0 done, 1 diverged, 2 failed, 3 pending, 4 done.
    fn sample(path: &Path, interp: &[f64]) -> Results {
        let steps = 6;
        let mut expect = empty(5, steps, interp);
        let mut f = ResultsFile::create(path, &meta("h1"), &expect, false).unwrap();
        let k = interp.len();
        expect.records[0] = Some(done(steps, k, 0.0));
        expect.records[1] = Some(diverged(steps, k));
        expect.records[2] = Some(failed(steps, k));
        expect.records[4] = Some(done(steps, k, 4.0));
        for i in [0, 1, 2, 4] {
            f.write_record(i, expect.records[i].as_ref().unwrap())
                .unwrap();
        }
        f.close().unwrap();
        expect
    }

    #[test]
    fn round_trip_is_bitwise() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        for interp in [vec![], vec![0.0, 0.5, 1.0]] {
            let path = dir.path().join(format!("r{}.h5", interp.len()));
            let expect = sample(&path, &interp);
            let (got, stored) = read_results(&path).unwrap();
            assert_same(&expect, &got);
            assert_eq!(got.records[3], None);
            assert_eq!(stored.meta, meta("h1"));
            assert_eq!(stored.hdf5_version, hdf5_library_version());
            assert_eq!(stored.history.len(), 1);
            assert!(stored.history[0].contains("created by sharpsweep 0.1.0"));
        }
    }

    #[test]
    fn short_vectors_are_padded_long_ones_refused() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pad.h5");
        let mut f = ResultsFile::create(&path, &meta("h"), &empty(2, 3, &[0.5]), false).unwrap();
        let mut rec = failed(3, 1);
        rec.loss = vec![];
        rec.hvps = vec![7];
        rec.interp_loss = vec![];
        f.write_record(0, &rec).unwrap();
        let mut long = done(3, 1, 0.0);
        long.loss.push(1.0);
        let err = f.write_record(1, &long).unwrap_err().to_string();
        assert!(err.contains("loss") && err.contains("pad.h5"), "{err}");
        let err = f.write_record(2, &rec).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        drop(f);
        let (got, _) = read_results(&path).unwrap();
        let r = got.records[0].as_ref().unwrap();
        assert_eq!(r.loss.len(), 4);
        assert!(r.loss.iter().all(|x| x.is_nan()));
        assert_eq!(r.hvps, vec![7, -1, -1, -1]);
        assert_eq!(r.interp_loss.len(), 1);
        assert!(got.records[1].is_none());
    }

    #[test]
    fn refuses_existing_file_unless_forced() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        sample(&path, &[]);
        let err = ResultsFile::create(&path, &meta("h1"), &empty(2, 3, &[]), false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Exists { .. }), "{msg}");
        assert!(msg.contains("--resume") && msg.contains("--force"), "{msg}");
        assert!(msg.contains("x.h5"), "{msg}");
        // The refused create left the file alone.
        assert_eq!(read_results(&path).unwrap().0.keys.len(), 5);
        // Forced: a new file with the new shape, every run pending.
        ResultsFile::create(&path, &meta("h2"), &empty(2, 3, &[]), true)
            .unwrap()
            .close()
            .unwrap();
        let (got, stored) = read_results(&path).unwrap();
        assert_eq!((got.keys.len(), got.steps), (2, 3));
        assert!(got.records.iter().all(Option::is_none));
        assert_eq!(stored.meta.config_sha256, "h2");
    }

    #[test]
    fn resume_refuses_other_config_naming_both_hashes() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        sample(&path, &[]);
        let err = ResultsFile::open_resume(&path, &meta("other")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::ConfigMismatch { .. }), "{msg}");
        assert!(
            msg.contains("h1") && msg.contains("other") && msg.contains("x.h5"),
            "{msg}"
        );
    }

    #[test]
    fn resume_refuses_foreign_files() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foreign.h5");
        File::create(&path)
            .unwrap()
            .new_dataset::<f64>()
            .shape(3)
            .create("loss")
            .unwrap();
        let err = ResultsFile::open_resume(&path, &meta("h1")).unwrap_err();
        assert!(matches!(err, StoreError::NotResults { .. }), "{err}");
        assert!(err.to_string().contains("not a sharpsweep results file"));
        let err = read_results(&dir.path().join("missing.h5")).unwrap_err();
        assert!(err.to_string().contains("missing.h5"), "{err}");
    }

    #[test]
    fn resume_returns_records_and_history_grows() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        let mut expect = sample(&path, &[0.25]);
        for round in 1..=2 {
            let (mut f, got) = ResultsFile::open_resume(&path, &meta("h1")).unwrap();
            assert_same(&expect, &got);
            assert_eq!(got.records[3].is_none(), round == 1);
            let history = read_history(&f);
            assert_eq!(history.len(), 1 + round, "{history:?}");
            assert!(history[round].contains("resumed by sharpsweep 0.1.0"));
            assert!(history[round].contains("4 of 5 runs finished") || round == 2);
            if round == 1 {
                let rec = done(6, 1, 3.0);
                f.write_record(3, &rec).unwrap();
                expect.records[3] = Some(rec);
            }
        }
        let (got, stored) = read_results(&path).unwrap();
        assert_same(&expect, &got);
        assert_eq!(stored.history.len(), 3);
        assert!(stored.history[2].contains("5 of 5 runs finished"));
        for line in &stored.history {
            assert!(line.len() > 21 && line.as_bytes()[4] == b'-' && line[..21].ends_with("Z "));
        }
    }

    fn read_history(f: &ResultsFile) -> Vec<String> {
        read_str_attr(&f.file, &f.path, "history")
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn records_survive_a_killed_writer() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("killed.h5");
        let steps = 5;
        let mut f = ResultsFile::create(&path, &meta("h1"), &empty(4, steps, &[]), false).unwrap();
        let a = done(steps, 0, 0.0);
        let b = diverged(steps, 0);
        f.write_record(2, &a).unwrap();
        f.write_record(0, &b).unwrap();
        // What is on disk now is what a SIGKILL would leave: copy the bytes while the
        // writer still holds the file open, then leak the writer (no close, no drop).
        let copy = dir.path().join("copy.h5");
        std::fs::copy(&path, &copy).unwrap();
        std::mem::forget(f);
        let (got, _) = read_results(&copy).unwrap();
        assert_same_record(got.records[2].as_ref().unwrap(), &a, 2);
        assert_same_record(got.records[0].as_ref().unwrap(), &b, 0);
        assert!(got.records[1].is_none() && got.records[3].is_none());
        // The copy can be resumed as a killed job's file would be.
        let (mut g, again) = ResultsFile::open_resume(&copy, &meta("h1")).unwrap();
        assert_same_record(again.records[2].as_ref().unwrap(), &a, 2);
        g.write_record(1, &a).unwrap();
        g.close().unwrap();
        // A fresh read of the original path also sees the records.
        let (orig, _) = read_results(&path).unwrap();
        assert_same_record(orig.records[2].as_ref().unwrap(), &a, 2);
    }

    /// Child half of [`records_survive_sigkill`]: writes two records, then kills itself.
    /// Does nothing unless started by it.
    #[cfg(unix)]
    #[test]
    fn sigkill_child() {
        let Some(path) = std::env::var_os("SHARPSWEEP_STORE_SIGKILL_CHILD") else {
            return;
        };
        let path = PathBuf::from(path);
        let mut f = ResultsFile::create(&path, &meta("h1"), &empty(3, 4, &[]), false).unwrap();
        f.write_record(0, &done(4, 0, 0.0)).unwrap();
        f.write_record(2, &diverged(4, 0)).unwrap();
        // SAFETY: signals this process; nothing after it runs.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL did not stop the process");
    }

    #[cfg(unix)]
    #[test]
    fn records_survive_sigkill() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sigkill.h5");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::hdf5::tests::sigkill_child",
                "--exact",
                "--test-threads=1",
            ])
            .env("SHARPSWEEP_STORE_SIGKILL_CHILD", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        let (got, stored) = read_results(&path).unwrap();
        assert_same_record(got.records[0].as_ref().unwrap(), &done(4, 0, 0.0), 0);
        assert_same_record(got.records[2].as_ref().unwrap(), &diverged(4, 0), 2);
        assert!(got.records[1].is_none());
        assert_eq!(stored.history.len(), 1);
        // And the killed job's file can be resumed.
        let (f, again) = ResultsFile::open_resume(&path, &meta("h1")).unwrap();
        assert_eq!(again.records.iter().filter(|r| r.is_some()).count(), 2);
        f.close().unwrap();
    }

    fn h5dump(args: &[&str], path: &Path) -> String {
        let out = std::process::Command::new("h5dump")
            .args(args)
            .arg(path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run h5dump ({e}): install hdf5-tools (apt-get install hdf5-tools)")
            });
        assert!(
            out.status.success(),
            "h5dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn h5dump_lists_variables_scales_and_filters() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.h5");
        sample(&path, &[0.0, 1.0]);
        let header = h5dump(&["-H"], &path);
        for var in [
            "run",
            "step",
            "interp",
            "c",
            "depth",
            "width",
            "seed",
            "sgd_seed",
            "lambda0",
            "eta",
            "status",
            "diverged_at",
            "seconds",
            "message",
            "loss",
            "sharpness",
            "hvps",
            "residual",
            "converged",
            "interp_loss",
        ] {
            assert!(
                header.contains(&format!("DATASET \"{var}\"")),
                "{var} missing:\n{header}"
            );
        }
        for attr in [
            "config",
            "config_sha256",
            "conventions",
            "convention_loss",
            "convention_eta_rule",
            "program_version",
            "git_commit",
            "mpi_version",
            "hdf5_version",
            "cpu_features",
            "ranks",
            "slurm_job_id",
            "history",
            "Conventions",
            "sharpsweep_format",
        ] {
            assert!(
                header.contains(&format!("ATTRIBUTE \"{attr}\"")),
                "{attr} missing"
            );
        }
        assert!(header.contains("DIMENSION_LIST") && header.contains("REFERENCE_LIST"));
        let class = h5dump(&["-a", "/step/CLASS"], &path);
        assert!(class.contains("DIMENSION_SCALE"), "{class}");
        let name = h5dump(&["-a", "/step/NAME"], &path);
        assert!(name.contains("\"step\""), "{name}");
        assert!(header.contains("ATTRIBUTE \"flag_meanings\""));
        // Chunked, shuffled and deflated; nothing else.
        let props = h5dump(&["-p", "-H", "-d", "/loss"], &path);
        assert!(
            props.contains("CHUNKED") && props.contains("SHUFFLE"),
            "{props}"
        );
        assert!(props.contains("COMPRESSION DEFLATE"), "{props}");
        assert!(
            !props.contains("LZF") && !props.contains("BLOSC"),
            "{props}"
        );
        // Data: the status codes of the sample.
        let status = h5dump(&["-d", "/status"], &path);
        assert!(status.contains("1, 2, 3, 0, 1"), "{status}");
    }

    #[test]
    fn group_table_round_trip_and_replace() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.h5");
        let expect = sample(&path, &[]);
        let cols = vec![
            ("depth", Column::I64(vec![2, 4, 8])),
            ("c_loss", Column::F64(vec![2.5, f64::NAN, 3.25])),
            (
                "phase",
                Column::Str(vec!["lazy".into(), "catapult".into(), "ü".into()]),
            ),
        ];
        let attrs = [("epsilon", "0.05".to_string())];
        write_group_table(&path, "analysis/critical", &cols, &attrs).unwrap();
        let (got, got_attrs) = read_group_table(&path, "analysis/critical").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], ("depth".to_string(), cols[0].1.clone()));
        match (&got[1].1, &cols[1].1) {
            (Column::F64(a), Column::F64(b)) => assert!(same_f64(a, b)),
            other => panic!("{other:?}"),
        }
        assert_eq!(got[2], ("phase".to_string(), cols[2].1.clone()));
        assert_eq!(got_attrs, vec![("epsilon".to_string(), "0.05".to_string())]);
        // Replacing: the old columns are gone, root variables untouched.
        write_group_table(
            &path,
            "analysis/critical",
            &[("x", Column::I64(vec![]))],
            &[],
        )
        .unwrap();
        let (got, got_attrs) = read_group_table(&path, "analysis/critical").unwrap();
        assert_eq!(got, vec![("x".to_string(), Column::I64(vec![]))]);
        assert!(got_attrs.is_empty());
        assert_same(&expect, &read_results(&path).unwrap().0);
        let dump = h5dump(&["-H", "-g", "/analysis/critical"], &path);
        assert!(
            dump.contains("DATASET \"x\"") && !dump.contains("c_loss"),
            "{dump}"
        );
        // Refusals: root variables, unequal columns.
        let err = write_group_table(&path, "loss", &[], &[]).unwrap_err();
        assert!(err.to_string().contains("root variable"), "{err}");
        let bad = [("a", Column::I64(vec![1])), ("b", Column::I64(vec![]))];
        assert!(write_group_table(&path, "analysis/bad", &bad, &[]).is_err());
    }

    #[test]
    fn create_refuses_bad_input() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.h5");
        assert!(ResultsFile::create(&path, &meta("h"), &empty(0, 3, &[]), false).is_err());
        let mut m = meta("h");
        m.conventions.push(("bad key".into(), "v".into()));
        assert!(ResultsFile::create(&path, &m, &empty(1, 3, &[]), false).is_err());
        assert!(!path.exists());
    }

    /// Descriptors of this process that point at `path`, with their close-on-exec flag.
    #[cfg(target_os = "linux")]
    fn fds_of(path: &Path) -> Vec<bool> {
        let target = path.canonicalize().unwrap();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let link = std::fs::read_link(e.path()).ok()?;
                let fd: i32 = e.file_name().to_str()?.parse().ok()?;
                (link == target).then(|| {
                    // SAFETY: F_GETFD on a descriptor number only reads its flags.
                    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
                    flags >= 0 && flags & libc::FD_CLOEXEC != 0
                })
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_files_are_close_on_exec() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec.h5");
        let f = ResultsFile::create(&path, &meta("h1"), &empty(2, 3, &[]), false).unwrap();
        assert_eq!(fds_of(&path), vec![true]);
        drop(f);
        assert!(fds_of(&path).is_empty());
        let (f, _) = ResultsFile::open_resume(&path, &meta("h1")).unwrap();
        assert_eq!(fds_of(&path), vec![true]);
        drop(f);
        let file = open_file(&path, "test", || File::open(&path)).unwrap();
        assert_eq!(fds_of(&path), vec![true]);
        drop(file);
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_from_unix(1_795_896_000), "2026-11-28T20:00:00Z");
    }
}
