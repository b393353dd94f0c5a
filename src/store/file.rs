//! The results file of a sweep, written and read from the record [`SCHEMA`] (nothing
//! here names a variable of the run record), and kept consistent whatever kills the
//! writer.
//!
//! # Commit mechanism
//!
//! The HDF5 file at the results path is only ever replaced whole: a *snapshot* is written
//! to `<file>.tmp`, `fsync`ed, and renamed over the path (then the directory is
//! `fsync`ed). So the file at the path is always a complete, closed HDF5 file — any
//! reader can open it at any time, no lock is held on it, and a kill at any instant
//! leaves either the old snapshot or the new one. Runs finished since the last snapshot
//! are appended to the checksummed journal `<file>.journal` ([`super::journal`]) as they
//! arrive; [`read_results`] and `--resume` replay it. Snapshots are taken at most every
//! few seconds (often enough that a reader of the HDF5 file alone is never far behind,
//! rarely enough that they cost at most a few percent of the sweep), at a resume, a drain
//! and the end; after each the journal is emptied, and a closed file has none.
//!
//! Rank 0 is the only writer and keeps the results in memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use ::hdf5::file::LibraryVersion;
use ::hdf5::{Dataset, File};

use super::axes;
use super::durable;
use super::journal::{self, journal_path, Journal, JournalContents, JournalHeader};
use super::meta::{self, FileMeta, StoredMeta};
use super::nc;
use super::{invalid, not_results, Ctx, StoreError};
use crate::record::{
    Axes, Column, Dim, EigenCount, Results, Role, RunRecord, RunStatus, TaskKey, Var, SCHEMA,
};

/// Shortest time between two snapshots.
const SNAPSHOT_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// Snapshots are spaced at least this many times their own duration (≤ 2.5 % of the time).
const SNAPSHOT_SPACING: u32 = 40;

/// The sizes of the file's dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    runs: usize,
    steps: usize,
    interp: usize,
    /// The `eig` dimension's length.
    k: EigenCount,
}

impl Shape {
    fn of(results: &Results) -> Shape {
        Shape {
            runs: results.keys.len(),
            steps: results.steps,
            interp: results.interp_alpha.len(),
            k: results.k,
        }
    }
    fn len(&self, dim: Dim) -> usize {
        match dim {
            Dim::Run => self.runs,
            Dim::Step => self.steps + 1,
            Dim::Interp => self.interp,
            Dim::Eig => self.k.get(),
        }
    }
    fn dims(&self, var: &Var) -> Vec<usize> {
        var.dims.iter().map(|d| self.len(*d)).collect()
    }
    fn row_len(&self, var: &Var) -> usize {
        var.row_len(self.steps + 1, self.interp, self.k)
    }
}

/// The values a coordinate variable holds.
fn coordinate(dim: Dim, results: &Results) -> Column {
    match dim {
        Dim::Run => Column::I64((0..results.keys.len() as i64).collect()),
        Dim::Step => Column::I64((0..=results.steps as i64).collect()),
        Dim::Interp => Column::F64(results.interp_alpha.clone()),
        Dim::Eig => Column::I64((0..results.k.get() as i64).collect()),
    }
}

/// The values of a key variable, one per run.
fn key_column(
    path: &Path,
    var: &Var,
    get: fn(&TaskKey) -> Result<Column, String>,
    keys: &[TaskKey],
) -> Result<Column, StoreError> {
    let mut out = var.fill_column(0);
    for k in keys {
        let v = get(k).map_err(|e| invalid(path, e))?;
        append(&mut out, v);
    }
    Ok(out)
}

fn append(to: &mut Column, from: Column) {
    match (to, from) {
        (Column::F64(a), Column::F64(b)) => a.extend(b),
        (Column::I64(a), Column::I64(b)) => a.extend(b),
        (Column::I32(a), Column::I32(b)) => a.extend(b),
        (Column::I8(a), Column::I8(b)) => a.extend(b),
        (Column::Str(a), Column::Str(b)) => a.extend(b),
        (a, b) => unreachable!("schema kinds agree: {:?} vs {:?}", a.kind(), b.kind()),
    }
}

/// `col` padded with `var`'s fill value to `len` entries; an error if it is longer.
fn padded(path: &Path, var: &Var, col: Column, len: usize) -> Result<Column, StoreError> {
    if col.len() > len {
        return Err(invalid(
            path,
            format!(
                "record has {} `{}` entries, the file holds {len}",
                col.len(),
                var.name
            ),
        ));
    }
    let mut col = col;
    let missing = len - col.len();
    append(&mut col, var.fill_column(missing));
    Ok(col)
}

/// Creates variable `var` of a file of `shape` with its attributes and dimension scales
/// (`scales`: the coordinate variables by dimension, when already created).
fn create_schema_var(
    file: &File,
    path: &Path,
    var: &Var,
    shape: Shape,
    scales: &[(Dim, Dataset)],
) -> Result<Dataset, StoreError> {
    let ds = nc::create_var(
        file,
        path,
        var.name,
        var.kind,
        &shape.dims(var),
        var.fill,
        var.long_name,
    )?;
    if !var.units.is_empty() {
        nc::write_str_attr(&ds, path, "units", var.units)?;
    }
    if !var.flags.is_empty() {
        nc::write_flags(&ds, path, var.flags)?;
    }
    if let Role::Coordinate(dim) = var.role {
        nc::set_scale(&ds, path, dim.name())?;
    } else {
        let attached: Vec<&Dataset> = var
            .dims
            .iter()
            .map(|d| {
                scales
                    .iter()
                    .find(|(s, _)| s == d)
                    .map(|(_, ds)| ds)
                    .ok_or_else(|| not_results(path, format!("coordinate `{}` missing", d.name())))
            })
            .collect::<Result<_, _>>()?;
        nc::attach_scales(&ds, path, &attached)?;
    }
    Ok(ds)
}

/// `rec` as the file holds it: every per-step or per-α vector padded with its fill value
/// to the file's length (an error when longer); variables the file lacks left empty.
fn normalized(path: &Path, rec: &RunRecord, shape: Shape) -> Result<RunRecord, StoreError> {
    let mut out = RunRecord::default();
    for var in SCHEMA {
        if let Role::Outcome { get, set } = var.role {
            let col = if var.present(shape.interp) {
                let col = get(rec).map_err(|e| invalid(path, e))?;
                padded(path, var, col, shape.row_len(var))?
            } else {
                var.fill_column(0)
            };
            set(&mut out, col).map_err(|e| invalid(path, e))?;
        }
    }
    Ok(out)
}

/// The values of outcome variable `var` for every run: each finished run's record (padded
/// with the fill value), the fill value for pending ones.
fn outcome_column(
    path: &Path,
    var: &Var,
    get: fn(&RunRecord) -> Result<Column, String>,
    results: &Results,
    shape: Shape,
) -> Result<Column, StoreError> {
    let row = shape.row_len(var);
    let mut out = var.fill_column(0);
    for rec in &results.records {
        let col = match rec {
            Some(rec) => padded(path, var, get(rec).map_err(|e| invalid(path, e))?, row)?,
            None => var.fill_column(row),
        };
        append(&mut out, col);
    }
    Ok(out)
}

/// Writes the complete HDF5 file of `results` to `target` (created or truncated): root
/// attributes, then every schema variable whole.
fn write_hdf5(
    target: &Path,
    path: &Path,
    meta: &FileMeta,
    hdf5_version: &str,
    history: &str,
    results: &Results,
) -> Result<(), StoreError> {
    let shape = Shape::of(results);
    let mut options = File::with_options();
    options.with_fapl(|p| p.libver_bounds(LibraryVersion::V18, LibraryVersion::V18));
    let file = options
        .create(target)
        .inspect(nc::set_cloexec)
        .ctx(path, || {
            format!("creating the snapshot {}", target.display())
        })?;
    meta::write_root_attrs(&file, path, meta, hdf5_version, history)?;
    let mut scales: Vec<(Dim, Dataset)> = Vec::new();
    for var in SCHEMA.iter().filter(|v| v.present(shape.interp)) {
        let ds = create_schema_var(&file, path, var, shape, &scales)?;
        let col = match var.role {
            Role::Coordinate(dim) => coordinate(dim, results),
            Role::Key { get, .. } => key_column(path, var, get, &results.keys)?,
            Role::Outcome { get, .. } => outcome_column(path, var, get, results, shape)?,
        };
        nc::write_column(&ds, path, &col)?;
        if let Role::Coordinate(dim) = var.role {
            scales.push((dim, ds));
        }
    }
    let run = scales
        .iter()
        .find(|(d, _)| *d == Dim::Run)
        .map(|(_, ds)| ds)
        .expect("the schema has the run coordinate");
    axes::write_axes(&file, path, &results.axes, &results.keys, run)?;
    drop(scales);
    file.close().ctx(path, || "closing the snapshot".into())
}

/// The temporary name a snapshot is written under before it replaces the file.
pub(super) fn snapshot_tmp(path: &Path) -> PathBuf {
    durable::tmp_path(path)
}

/// Puts the complete file `tmp` in place of `path`, atomically and durably
/// ([`durable::replace_with`]).
pub(super) fn replace_with(path: &Path, tmp: &Path) -> Result<(), StoreError> {
    durable::replace_with(path, tmp).map_err(|e| invalid(path, e.to_string()))
}

/// Replaces the file at `path` atomically and durably by a complete new HDF5 file
/// (written to `<path>.tmp`, `fsync`ed, renamed over `path`, directory `fsync`ed).
fn write_snapshot(
    path: &Path,
    meta: &FileMeta,
    hdf5_version: &str,
    history: &[String],
    results: &Results,
) -> Result<(), StoreError> {
    let tmp = snapshot_tmp(path);
    write_hdf5(&tmp, path, meta, hdf5_version, &history.join("\n"), results)?;
    replace_with(path, &tmp)
}

/// A results file open for writing (rank 0 only): the results in memory, the file at the
/// path their latest snapshot, the journal the runs since. [`close`](ResultsFile::close)
/// writes the final snapshot and removes the journal; without it (a kill, a panic) the
/// journal stays and [`read_results`] and `--resume` replay it.
pub struct ResultsFile {
    path: PathBuf,
    meta: FileMeta,
    hdf5_version: String,
    history: Vec<String>,
    results: Results,
    journal: Journal,
    next_snapshot: Instant,
}

impl std::fmt::Debug for ResultsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape = Shape::of(&self.results);
        f.debug_struct("ResultsFile")
            .field("path", &self.path)
            .field("n_runs", &shape.runs)
            .field("steps", &shape.steps)
            .field("n_interp", &shape.interp)
            .finish()
    }
}

fn journal_header(meta: &FileMeta, results: &Results) -> JournalHeader {
    let shape = Shape::of(results);
    JournalHeader {
        config_sha256: meta.config_sha256.clone(),
        steps: shape.steps,
        interp: shape.interp,
        k: shape.k,
    }
}

fn journal_io(path: &Path, e: std::io::Error) -> StoreError {
    invalid(
        path,
        format!("journal {}: {e}", journal_path(path).display()),
    )
}

impl ResultsFile {
    /// Creates the results file of a sweep with one row per `results.keys` entry and
    /// `results.steps + 1` steps, every run pending (records that are `Some` are written
    /// too), and its empty journal. Refuses an existing file unless `force`, which
    /// replaces it.
    pub fn create(
        path: &Path,
        meta: &FileMeta,
        results: &Results,
        force: bool,
    ) -> Result<ResultsFile, StoreError> {
        let shape = Shape::of(results);
        if shape.runs == 0 {
            return Err(invalid(path, "the grid has no runs"));
        }
        if results.records.len() != shape.runs {
            return Err(invalid(
                path,
                format!("{} keys but {} records", shape.runs, results.records.len()),
            ));
        }
        meta::check_convention_keys(path, meta)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(invalid(
                    path,
                    format!("the directory {} does not exist", dir.display()),
                ));
            }
        }
        if !force && path.exists() {
            return Err(StoreError::Exists {
                path: path.to_path_buf(),
            });
        }
        let hdf5_version = meta::hdf5_library_version();
        // The journal (and its lock) first: a sweep still writing the file refuses us.
        let journal = Journal::create(&journal_path(path), &journal_header(meta, results))
            .map_err(|e| journal_io(path, e))?;
        let history = vec![format!(
            "{} created by {} (writer lock: {})",
            meta::iso_now(),
            meta::describe(meta),
            journal.lock_mechanism().describe()
        )];
        write_snapshot(path, meta, &hdf5_version, &history, results)?;
        Ok(ResultsFile {
            path: path.to_path_buf(),
            meta: meta.clone(),
            hdf5_version,
            history,
            results: results.clone(),
            journal,
            next_snapshot: Instant::now() + SNAPSHOT_MIN_INTERVAL,
        })
    }

    /// Reopens an existing results file to continue its sweep: its last snapshot plus the
    /// runs of its journal (a killed sweep's), cut at the first torn or corrupt frame.
    /// Refuses a file that is not a sharpsweep results file, or whose `config_sha256`
    /// (or journal) belongs to another config. Appends a history line, writes a snapshot
    /// (which also adds the schema variables a file of an older version lacks) and returns
    /// what the file holds (records `Some` for finished runs). A file whose `grid.axes`
    /// are not `axes` is refused first, naming both; so is a row of the file, or a run
    /// of its journal, whose key is not one of `grid`'s (the config's tasks: every lattice
    /// point of an adaptive search), or a key held twice.
    pub fn open_resume(
        path: &Path,
        meta: &FileMeta,
        axes: &Axes,
        grid: &[TaskKey],
    ) -> Result<(ResultsFile, Results), StoreError> {
        if !path.exists() {
            return Err(not_results(path, "the file does not exist"));
        }
        // The snapshot first here: no reader races with a resume, and the journal's lock
        // (taken below) refuses a second writer.
        let (mut results, stored) = read_snapshot(path)?;
        if results.axes != *axes {
            let text = |a: &Axes| match a.to_text().trim_end() {
                "" => "none".to_string(),
                t => t.replace('\n', "; "),
            };
            return Err(StoreError::AxesMismatch {
                path: path.to_path_buf(),
                in_file: text(&results.axes),
                this_config: text(axes),
            });
        }
        if stored.meta.config_sha256 != meta.config_sha256 {
            return Err(StoreError::ConfigMismatch {
                path: path.to_path_buf(),
                in_file: stored.meta.config_sha256,
                this_config: meta.config_sha256.clone(),
            });
        }
        let state = read_journal(path, &stored.meta, &results)?;
        check_keys(path, grid, &results, &state)?;
        let jpath = journal_path(path);
        let header = journal_header(&stored.meta, &results);
        let (journal, contents, set_aside) = match state {
            JournalState::Absent => (Journal::create(&jpath, &header), None, None),
            JournalState::Usable(c) => {
                merge_journal(&mut results, &c);
                (Journal::reopen(&jpath, &c), Some(c), None)
            }
            JournalState::Unusable(why) => {
                let aside = journal::set_aside(&jpath).map_err(|e| journal_io(path, e))?;
                let note = format!(
                    "; its journal was unusable ({why}) and was moved to {}: runs it held are run again",
                    aside.display()
                );
                (Journal::create(&jpath, &header), None, Some(note))
            }
        };
        let journal = journal.map_err(|e| journal_io(path, e))?;
        let mut out = ResultsFile {
            path: path.to_path_buf(),
            meta: stored.meta,
            hdf5_version: stored.hdf5_version,
            history: stored.history,
            results,
            journal,
            next_snapshot: Instant::now(),
        };
        let finished = out.results.records.iter().filter(|r| r.is_some()).count();
        let journal_note = match &contents {
            Some(c) if c.discarded > 0 => format!(
                " ({} replayed from the journal; a torn tail of {} bytes discarded)",
                c.records.len(),
                c.discarded
            ),
            Some(c) if !c.records.is_empty() => {
                format!(" ({} replayed from the journal)", c.records.len())
            }
            _ => String::new(),
        };
        out.history.push(format!(
            "{} resumed by {}: {finished} of {} runs finished{journal_note}{} (writer lock: {})",
            meta::iso_now(),
            meta::describe(meta),
            out.results.keys.len(),
            set_aside.unwrap_or_default(),
            out.journal.lock_mechanism().describe(),
        ));
        out.flush()?;
        let results = out.results.clone();
        Ok((out, results))
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of runs (rows).
    pub fn n_runs(&self) -> usize {
        self.results.keys.len()
    }

    /// Number of SGD steps per run (the `step` dimension has `steps + 1` entries).
    pub fn steps(&self) -> usize {
        self.results.steps
    }

    /// Commits the finished run `key`: checks that the file can hold it (per-step vectors
    /// shorter than `steps + 1`, and an `interp_loss` shorter than `interp`, are padded
    /// with the fill value; longer ones are refused), appends it to the journal, and takes
    /// a snapshot when one is due. A key the file has no row for gets one
    /// ([`Results::insert_key`]: the file of an adaptive search grows).
    pub fn write_record(&mut self, key: &TaskKey, rec: &RunRecord) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let rec = normalized(path, rec, Shape::of(&self.results))?;
        self.journal
            .append(key, &rec)
            .map_err(|e| journal_io(path, e))?;
        let row = self.results.insert_key(*key);
        self.results.records[row] = Some(rec);
        if Instant::now() >= self.next_snapshot {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds pending rows for the runs `keys` that the file does not have yet (an adaptive
    /// search's next points). They are not journaled: a resume recomputes them.
    pub fn add_pending(&mut self, keys: &[TaskKey]) {
        for k in keys {
            self.results.insert_key(*k);
        }
    }

    /// Appends the line "`<ISO time> <what>`" to the `history` attribute (written with the
    /// next snapshot). Newlines in `what` become spaces.
    pub fn append_history(&mut self, what: &str) -> Result<(), StoreError> {
        self.history.push(format!(
            "{} {}",
            meta::iso_now(),
            what.replace(['\n', '\r'], " ")
        ));
        Ok(())
    }

    /// Takes a snapshot now: the file at the path then holds every run committed so far,
    /// durably, and the journal is emptied.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        self.journal.sync().map_err(|e| journal_io(&self.path, e))?;
        write_snapshot(
            &self.path,
            &self.meta,
            &self.hdf5_version,
            &self.history,
            &self.results,
        )?;
        self.journal
            .reset()
            .map_err(|e| journal_io(&self.path, e))?;
        let took = started.elapsed();
        self.next_snapshot = Instant::now() + SNAPSHOT_MIN_INTERVAL.max(took * SNAPSHOT_SPACING);
        Ok(())
    }

    /// Writes the final snapshot and removes the journal.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()?;
        let path = self.path.clone();
        self.journal.remove().map_err(|e| journal_io(&path, e))
    }
}

/// What lies beside a results file as its journal.
enum JournalState {
    /// No journal: the file was closed, or its sweep was killed right after a snapshot
    /// emptied the journal, or before it wrote one.
    Absent,
    /// A journal of this file: its runs, up to the first torn or corrupt frame.
    Usable(JournalContents),
    /// A journal that cannot belong to this file (garbled header, or another config's or
    /// shape's): its runs are not this file's and are ignored (a resume recomputes them).
    Unusable(String),
}

/// The journal beside the file at `path`, checked against the file's provenance and shape.
fn read_journal(
    path: &Path,
    meta: &FileMeta,
    results: &Results,
) -> Result<JournalState, StoreError> {
    let jpath = journal_path(path);
    Ok(match journal::read(&jpath) {
        Ok(None) => JournalState::Absent,
        Ok(Some(Ok(c))) => {
            let expected = journal_header(meta, results);
            if c.header == expected {
                JournalState::Usable(c)
            } else {
                JournalState::Unusable(format!(
                    "it belongs to another sweep ({:?}; the file is {:?})",
                    c.header, expected
                ))
            }
        }
        // A journal cut inside its header (a power loss during a reset) holds no run.
        Ok(Some(Err(_))) if std::fs::metadata(&jpath).map_or(0, |m| m.len()) < 128 => {
            JournalState::Absent
        }
        Ok(Some(Err(e))) => JournalState::Unusable(e),
        Err(e) => return Err(journal_io(path, e)),
    })
}

/// Refuses rows of the snapshot `results` and runs of the journal `state` whose keys are
/// not among `grid`'s, and keys the snapshot holds twice: a file edited by hand, or a
/// journal frame (with a valid checksum) of another sweep.
fn check_keys(
    path: &Path,
    grid: &[TaskKey],
    results: &Results,
    state: &JournalState,
) -> Result<(), StoreError> {
    let grid: HashSet<_> = grid.iter().map(TaskKey::identity).collect();
    let mut seen = HashSet::new();
    let show = |k: &TaskKey| {
        format!(
            "depth {} width {} seed {} sgd_seed {} axis point {} c {}",
            k.depth, k.width, k.seed, k.sgd_seed, k.axis_point, k.c
        )
    };
    for (row, key) in results.keys.iter().enumerate() {
        if !grid.contains(&key.identity()) {
            return Err(invalid(
                path,
                format!("run {row} ({}) is not a task of this config's grid: the file was edited or belongs to another sweep", show(key)),
            ));
        }
        if !seen.insert(key.identity()) {
            return Err(invalid(
                path,
                format!("run {row} ({}) is held twice", show(key)),
            ));
        }
    }
    if let JournalState::Usable(c) = state {
        for (frame, (key, _)) in c.records.iter().enumerate() {
            if !grid.contains(&key.identity()) {
                return Err(invalid(
                    path,
                    format!(
                        "run {frame} of the journal {} ({}) is not a task of this config's grid: the journal was edited or belongs to another sweep",
                        journal_path(path).display(),
                        show(key)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Adds the journal's runs to `results` (rows for keys it lacks are added).
fn merge_journal(results: &mut Results, contents: &JournalContents) {
    for (key, rec) in &contents.records {
        let row = results.insert_key(*key);
        results.records[row] = Some(rec.clone());
    }
}

/// The length of the coordinate variable of `dim` (0 when an `interp` one is absent).
fn dim_len(file: &File, path: &Path, dim: Dim) -> Result<usize, StoreError> {
    match file.dataset(dim.name()) {
        Ok(ds) => Ok(ds.size()),
        Err(_) if dim == Dim::Interp => Ok(0),
        // Files of versions before the top-k spectra measured one eigenvalue.
        Err(_) if dim == Dim::Eig => Ok(1),
        Err(e) => Err(not_results(
            path,
            format!("coordinate `{}` missing ({e})", dim.name()),
        )),
    }
}

/// The outcome variables of the first file format (`tests/golden/small-v1.h5`): every
/// results file has them, so one that lacks any was damaged, not written by an older version.
const SINCE_FORMAT_1: &[&str] = &[
    "status",
    "diverged_at",
    "lambda0",
    "eta",
    "seconds",
    "message",
    "loss",
    "sharpness",
    "hvps",
    "residual",
    "converged",
    "interp_loss",
];

/// Reads every schema variable of the file: the whole column, checked for its length and
/// stored type. An outcome variable that an older file lacks reads as its fill value.
fn read_var(file: &File, path: &Path, var: &Var, shape: Shape) -> Result<Column, StoreError> {
    let len: usize = shape.dims(var).iter().product();
    let ds = match file.dataset(var.name) {
        Ok(ds) => ds,
        // Variables a file of an older version lacks: outcomes read as never measured, and
        // the `eig` coordinate (such files hold one eigenvalue per spectrum) as its fill.
        // Those every version has written are never missing.
        Err(_)
            if matches!(var.role, Role::Outcome { .. } | Role::Coordinate(Dim::Eig))
                && !SINCE_FORMAT_1.contains(&var.name) =>
        {
            return Ok(var.fill_column(len))
        }
        Err(e) => {
            return Err(not_results(
                path,
                format!("variable `{}` missing ({e})", var.name),
            ))
        }
    };
    let col = nc::read_column(&ds, path, var.kind)?;
    if col.len() != len {
        return Err(not_results(
            path,
            format!(
                "variable `{}` has {} elements, expected {len}",
                var.name,
                col.len()
            ),
        ));
    }
    Ok(col)
}

fn read_results_from(file: &File, path: &Path) -> Result<Results, StoreError> {
    let steps_plus_one = dim_len(file, path, Dim::Step)?;
    if steps_plus_one == 0 {
        return Err(not_results(path, "the `step` dimension is empty"));
    }
    let shape = Shape {
        runs: dim_len(file, path, Dim::Run)?,
        steps: steps_plus_one - 1,
        interp: dim_len(file, path, Dim::Interp)?,
        k: EigenCount::new(dim_len(file, path, Dim::Eig)?)
            .ok_or_else(|| not_results(path, "the `eig` dimension is empty"))?,
    };
    let mut results = Results {
        k: shape.k,
        steps: shape.steps,
        interp_alpha: Vec::new(),
        keys: vec![TaskKey::default(); shape.runs],
        records: vec![Some(RunRecord::default()); shape.runs],
        axes: Axes::default(),
    };
    for var in SCHEMA.iter().filter(|v| v.present(shape.interp)) {
        let col = read_var(file, path, var, shape)?;
        let row = shape.row_len(var);
        let bad = |i: usize, e: String| not_results(path, format!("run {i}: {}: {e}", var.name));
        match var.role {
            Role::Coordinate(Dim::Interp) => results.interp_alpha = col.into_f64().expect("f64"),
            Role::Coordinate(_) => {}
            Role::Key { set, .. } => {
                for (i, key) in results.keys.iter_mut().enumerate() {
                    set(key, col.slice(i..i + 1)).map_err(|e| bad(i, e))?;
                }
            }
            Role::Outcome { set, .. } => {
                for (i, rec) in results.records.iter_mut().enumerate() {
                    let rec = rec.as_mut().expect("every row is read");
                    set(rec, col.slice(i * row..(i + 1) * row)).map_err(|e| bad(i, e))?;
                }
            }
        }
    }
    results.axes = axes::read_axes(file, path, &mut results.keys)?;
    for rec in &mut results.records {
        if rec.as_ref().is_some_and(|r| r.status == RunStatus::Pending) {
            *rec = None;
        }
    }
    Ok(results)
}

/// Reads the HDF5 file at `path` alone, as h5py or xarray see it: the runs of its last
/// snapshot, and the root attributes.
pub fn read_snapshot(path: &Path) -> Result<(Results, StoredMeta), StoreError> {
    if !path.exists() {
        return Err(not_results(path, "the file does not exist"));
    }
    let file = nc::open_file(path, "opening the file", || File::open(path))?;
    meta::check_format(&file, path)?;
    let results = read_results_from(&file, path)?;
    let meta = meta::read_meta(&file, path)?;
    Ok((results, meta))
}

/// Reads the provenance of the results file at `path` alone (its root attributes), without
/// its variables.
pub fn read_file_meta(path: &Path) -> Result<StoredMeta, StoreError> {
    if !path.exists() {
        return Err(not_results(path, "the file does not exist"));
    }
    let file = nc::open_file(path, "opening the file", || File::open(path))?;
    meta::check_format(&file, path)?;
    meta::read_meta(&file, path)
}

/// Reads a results file — finished, or of a sweep running or killed — with every run
/// finished so far: its last snapshot plus the runs of its journal. Needs no lock and no
/// environment variable; never writes.
pub fn read_results(path: &Path) -> Result<(Results, StoredMeta), StoreError> {
    // The journal's bytes first: a snapshot taken meanwhile holds its runs, so none is
    // missed. Its header is checked against the snapshot read after it.
    let bytes = std::fs::read(journal_path(path)).ok();
    let (mut results, mut stored) = read_snapshot(path)?;
    let contents = bytes.and_then(|b| journal::parse(&b).ok());
    if let Some(c) = contents.filter(|c| c.header == journal_header(&stored.meta, &results)) {
        merge_journal(&mut results, &c);
        stored.journal_runs = c.records.len();
    }
    Ok((results, stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hdf5_library_version;
    use crate::store::testutil::*;

    /// Every key the file at `path` holds, its journal's included (or none): the grid a
    /// test's resume checks against.
    fn keys_of(path: &Path) -> Vec<TaskKey> {
        read_results(path).map(|(r, _)| r.keys).unwrap_or_default()
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
        f.write_record(&key(0), &rec).unwrap();
        let mut long = done(3, 1, 0.0);
        long.loss.push(1.0);
        let err = f.write_record(&key(1), &long).unwrap_err().to_string();
        assert!(err.contains("loss") && err.contains("pad.h5"), "{err}");
        // A key the file lacks gets a row (an adaptive search's file grows).
        f.write_record(&key(2), &rec).unwrap();
        drop(f);
        let (got, _) = read_results(&path).unwrap();
        assert_eq!(got.keys.len(), 3);
        assert_eq!(got.row_of(&key(2)), Some(2));
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
        let err =
            ResultsFile::open_resume(&path, &meta("other"), &Axes::default(), &keys_of(&path))
                .unwrap_err();
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
        let err = ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
            .unwrap_err();
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
            let (mut f, got) =
                ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
                    .unwrap();
            assert_same(&expect, &got);
            assert_eq!(got.records[3].is_none(), round == 1);
            let history = read_history(&f);
            assert_eq!(history.len(), 1 + round, "{history:?}");
            assert!(history[round].contains("resumed by sharpsweep 0.1.0"));
            assert!(history[round].contains("4 of 5 runs finished") || round == 2);
            if round == 1 {
                let rec = done(6, 1, 3.0);
                f.write_record(&key(3), &rec).unwrap();
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

    #[test]
    fn resume_refuses_runs_off_the_grid_and_readers_refuse_damaged_variables() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        let expect = sample(&path, &[]);
        let grid = expect.keys.clone();
        // A journal run in a valid frame, of a key the config's grid lacks (a frame of
        // another sweep): refused, naming the journal; the file and the journal stay.
        let header = JournalHeader {
            config_sha256: "h1".into(),
            steps: 6,
            interp: 0,
            k: EigenCount::ONE,
        };
        let mut j = Journal::create(&journal_path(&path), &header).unwrap();
        let mut foreign = key(3);
        foreign.width = 999;
        j.append(&foreign, &done(6, 0, 9.0)).unwrap();
        drop(j);
        let (file, journal) = (
            std::fs::read(&path).unwrap(),
            std::fs::read(journal_path(&path)).unwrap(),
        );
        let err =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &grid).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x.h5.journal") && msg.contains("width 999") && msg.contains("not a task"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), file);
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), journal);
        std::fs::remove_file(journal_path(&path)).unwrap();
        // A row of the file that the grid lacks (an edited key).
        let err =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &grid[1..]).unwrap_err();
        assert!(
            err.to_string().contains("run 0 (") && err.to_string().contains("not a task"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), file);
        // A variable every version has written, deleted; then rewritten as int32.
        File::open_rw(&path).unwrap().unlink("loss").unwrap();
        let err = read_results(&path).unwrap_err();
        assert!(err.to_string().contains("variable `loss` missing"), "{err}");
        File::open_rw(&path)
            .unwrap()
            .new_dataset::<i32>()
            .shape((5, 7))
            .create("loss")
            .unwrap();
        let err = read_results(&path).unwrap_err();
        assert!(err.to_string().contains("`loss` is stored as"), "{err}");
    }

    fn read_history(f: &ResultsFile) -> Vec<String> {
        f.history.clone()
    }

    #[test]
    fn an_unusable_journal_is_ignored_by_readers_and_set_aside_by_resume() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        let expect = sample(&path, &[]);
        // Garbage, then another sweep's journal: neither is this file's.
        let garbage: Vec<u8> = (0..500u32).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(journal_path(&path), &garbage).unwrap();
        let (got, stored) = read_results(&path).unwrap();
        assert_same(&expect, &got);
        assert_eq!(stored.journal_runs, 0);
        let (f, again) =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
                .unwrap();
        assert_same(&expect, &again);
        let last = read_history(&f).last().unwrap().clone();
        assert!(
            last.contains("unusable") && last.contains(".unusable"),
            "{last}"
        );
        f.close().unwrap();
        let aside = dir.path().join("x.h5.journal.unusable");
        assert_eq!(std::fs::read(&aside).unwrap(), garbage);
        let other = JournalHeader {
            config_sha256: "other".into(),
            steps: 6,
            interp: 0,
            k: EigenCount::ONE,
        };
        let mut j = Journal::create(&journal_path(&path), &other).unwrap();
        j.append(&key(3), &done(6, 0, 9.0)).unwrap();
        drop(j);
        let (got, _) = read_results(&path).unwrap();
        assert!(
            got.records[3].is_none(),
            "another sweep's run is not merged"
        );
        let (f, _) =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
                .unwrap();
        assert!(read_history(&f).last().unwrap().contains("another sweep"));
        f.close().unwrap();
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
        f.write_record(&key(2), &a).unwrap();
        f.write_record(&key(0), &b).unwrap();
        // What is on disk now is what a SIGKILL would leave: copy the bytes (the last
        // snapshot and the journal) while the writer is live, then leak the writer.
        let copy = dir.path().join("copy.h5");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(journal_path(&path), journal_path(&copy)).unwrap();
        std::mem::forget(f);
        // The HDF5 file alone is the snapshot taken at creation: it opens, no run finished.
        let (alone, _) = read_snapshot(&copy).unwrap();
        assert!(alone.records.iter().all(Option::is_none));
        let (got, _) = read_results(&copy).unwrap();
        assert_same_record(got.records[2].as_ref().unwrap(), &a, 2);
        assert_same_record(got.records[0].as_ref().unwrap(), &b, 0);
        assert!(got.records[1].is_none() && got.records[3].is_none());
        // The copy can be resumed as a killed job's file would be.
        let (mut g, again) =
            ResultsFile::open_resume(&copy, &meta("h1"), &Axes::default(), &keys_of(&copy))
                .unwrap();
        assert_same_record(again.records[2].as_ref().unwrap(), &a, 2);
        g.write_record(&key(1), &a).unwrap();
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
        f.write_record(&key(0), &done(4, 0, 0.0)).unwrap();
        f.write_record(&key(2), &diverged(4, 0)).unwrap();
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
                "store::file::tests::sigkill_child",
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
        let (f, again) =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
                .unwrap();
        assert_eq!(again.records.iter().filter(|r| r.is_some()).count(), 2);
        f.close().unwrap();
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
    fn axes_are_stored_per_run_and_a_resume_refuses_other_axes() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.h5");
        let path = dir.path().join("axes.h5");
        let axes = Axes::from_text(
            "\"model.bias\" = [false, true]\n\"train.momentum\" = [0.0, 0.9]\n\
             \"model.activation\" = [\"relu\", \"tanh\"]\n",
        )
        .unwrap();
        let mut results = empty(4, 3, &[]);
        for (k, p) in results.keys.iter_mut().zip([0, 3, 5, 7]) {
            k.axis_point = p;
        }
        results.axes = axes.clone();
        let mut f = ResultsFile::create(&live, &meta("h1"), &results, false).unwrap();
        f.write_record(&results.keys[1], &done(3, 0, 0.0)).unwrap();
        // What a kill leaves: the journal holds the run, with its axis point.
        std::fs::copy(&live, &path).unwrap();
        std::fs::copy(journal_path(&live), journal_path(&path)).unwrap();
        std::mem::forget(f);
        let (got, _) = read_results(&path).unwrap();
        assert_eq!(got.axes, axes);
        assert_eq!(got.keys, results.keys);
        assert!(got.records[1].is_some() && got.records[0].is_none());
        let err = ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::AxesMismatch { .. }), "{msg}");
        assert!(
            msg.contains("grid.axes") && msg.contains("\"train.momentum\" = [0.0, 0.9]"),
            "{msg}"
        );
        assert!(msg.contains("in this config: none"), "{msg}");
        let (f, again) =
            ResultsFile::open_resume(&path, &meta("h1"), &axes, &keys_of(&path)).unwrap();
        assert_eq!(again.keys, results.keys);
        assert!(again.records[1].is_some());
        f.close().unwrap();
        let header = h5dump(&["-H"], &path);
        for var in ["axis_point", "bias", "momentum", "activation"] {
            assert!(
                header.contains(&format!("DATASET \"{var}\"")),
                "{var}:\n{header}"
            );
        }
        assert!(header.contains("ATTRIBUTE \"axes\"") && header.contains("axis_key"));
        let points = h5dump(&["-d", "/axis_point"], &path);
        assert!(points.contains("0, 3, 5, 7"), "{points}");
        // Points 0, 3, 5, 7 of (activation, bias, momentum), the last axis fastest.
        let bias = h5dump(&["-d", "/bias"], &path);
        assert!(bias.contains("0, 1, 0, 1"), "{bias}");
        let act = h5dump(&["-d", "/activation"], &path);
        assert!(
            act.contains("\"relu\", \"relu\", \"tanh\", \"tanh\""),
            "{act}"
        );
        // A file without axes has none of this.
        let plain = dir.path().join("plain.h5");
        sample(&plain, &[]);
        let header = h5dump(&["-H"], &plain);
        assert!(!header.contains("axis_point") && !header.contains("ATTRIBUTE \"axes\""));
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
        let nowhere = dir.path().join("no/such/dir/r.h5");
        let err = ResultsFile::create(&nowhere, &meta("h"), &empty(1, 3, &[]), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not exist") && err.contains("no/such/dir"),
            "{err}"
        );
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
        // The writer holds only its journal open (close-on-exec), never the HDF5 file.
        let f = ResultsFile::create(&path, &meta("h1"), &empty(2, 3, &[]), false).unwrap();
        assert!(fds_of(&path).is_empty());
        assert_eq!(fds_of(&journal_path(&path)), vec![true]);
        drop(f);
        let (f, _) =
            ResultsFile::open_resume(&path, &meta("h1"), &Axes::default(), &keys_of(&path))
                .unwrap();
        assert!(fds_of(&path).is_empty());
        assert_eq!(fds_of(&journal_path(&path)), vec![true]);
        f.close().unwrap();
        assert!(!journal_path(&path).exists());
        let file = nc::open_file(&path, "test", || File::open(&path)).unwrap();
        assert_eq!(fds_of(&path), vec![true]);
        drop(file);
    }
}
