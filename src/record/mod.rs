//! The run record: what one task of the grid is ([`TaskKey`]) and what it produced
//! ([`RunRecord`]), and the one declarative [`SCHEMA`] of the results every other part of
//! the crate reads.
//!
//! [`SCHEMA`] lists each variable of the results file once: its dimensions, storage type,
//! fill value, `long_name`, units, flag meanings, the README's description, and how to get
//! and set it on a [`TaskKey`] or a [`RunRecord`]. The HDF5 store creates, writes, reads
//! and extends the file from it; the MPI wire codec sends a record whole through it; the
//! README's results table is checked against it. Adding a variable is one [`Var`] entry
//! (and a field of [`RunRecord`]) plus the code that computes it.

mod axes;
pub mod codec;
mod schema;

pub use axes::{Axes, Axis, AxisValues, AXIS_POINT_VAR};
pub use schema::SCHEMA;

use crate::hessian::StopReason;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// Eigenvalues per measured spectrum: the config's `sharpness.k`, and the length of the
/// results file's `eig` dimension (which keeps that name, so existing files read). Never 0:
/// even a run that measures only the sharpness stores a spectrum of one eigenvalue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EigenCount(NonZeroUsize);

impl EigenCount {
    /// One eigenvalue per spectrum: the sharpness alone (the default, and every file
    /// written before the top-k spectra).
    pub const ONE: EigenCount = EigenCount(NonZeroUsize::MIN);

    /// `k` eigenvalues per spectrum; `None` for 0.
    pub fn new(k: usize) -> Option<EigenCount> {
        NonZeroUsize::new(k).map(EigenCount)
    }

    /// The count.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl Default for EigenCount {
    fn default() -> Self {
        EigenCount::ONE
    }
}

impl std::fmt::Display for EigenCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What became of one grid task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Not run yet (or interrupted before it finished).
    #[default]
    Pending,
    /// Trained for every step without divergence.
    Done,
    /// The minibatch loss exceeded the divergence threshold or was not finite.
    Diverged,
    /// The run could not be carried out (an error, recorded in the message table).
    Failed,
}

impl RunStatus {
    /// Every status, in code order.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Pending,
        RunStatus::Done,
        RunStatus::Diverged,
        RunStatus::Failed,
    ];
    /// Integer code stored in the file (`status` variable); documented in the README.
    pub fn code(self) -> i8 {
        match self {
            RunStatus::Pending => 0,
            RunStatus::Done => 1,
            RunStatus::Diverged => 2,
            RunStatus::Failed => 3,
        }
    }
    /// Inverse of [`RunStatus::code`].
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    /// Lower-case name used in text output and the `status` attribute's legend.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Done => "done",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
        }
    }
}

/// The `stop_reason` code of an eigen-solver stop (0 = not measured), as stored.
pub fn stop_code(stop: Option<StopReason>) -> i8 {
    match stop {
        None => 0,
        Some(StopReason::Converged) => 1,
        Some(StopReason::InvariantSubspace) => 2,
        Some(StopReason::MaxIterations) => 3,
        Some(StopReason::FixedCount) => 4,
        Some(StopReason::NonFinite) => 5,
    }
}

/// Inverse of [`stop_code`]; `Err` for a code no solver writes.
pub fn stop_of_code(code: i8) -> Result<Option<StopReason>, String> {
    Ok(Some(match code {
        0 => return Ok(None),
        1 => StopReason::Converged,
        2 => StopReason::InvariantSubspace,
        3 => StopReason::MaxIterations,
        4 => StopReason::FixedCount,
        5 => StopReason::NonFinite,
        other => return Err(format!("stop_reason code {other}")),
    }))
}

/// The grid coordinates of one task (one row of the run table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskKey {
    /// Learning-rate multiplier: η = c / λ₀.
    pub c: f64,
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Initialization seed.
    pub seed: u64,
    /// SGD minibatch-order seed.
    pub sgd_seed: u64,
    /// The point of `grid.axes` the run belongs to (its index: [`Axes::indices`]); 0
    /// without axes.
    #[serde(default)]
    pub axis_point: u32,
}

impl TaskKey {
    /// The key's exact identity (c by its bits): equal keys, and only they, give equal
    /// identities, so it can index a map.
    pub fn identity(&self) -> (u32, u32, u32, u64, u64, u64) {
        (
            self.depth,
            self.width,
            self.axis_point,
            self.seed,
            self.sgd_seed,
            self.c.to_bits(),
        )
    }

    /// The row order of a results file: (depth, width, axis_point, seed, sgd_seed, c)
    /// ascending, so the rows of a file that grows (an adaptive search's) do not depend
    /// on the order in which runs finished.
    pub fn row_order(&self, other: &TaskKey) -> std::cmp::Ordering {
        (
            self.depth,
            self.width,
            self.axis_point,
            self.seed,
            self.sgd_seed,
        )
            .cmp(&(
                other.depth,
                other.width,
                other.axis_point,
                other.seed,
                other.sgd_seed,
            ))
            .then(self.c.total_cmp(&other.c))
    }
}

/// One network at initialization, under one point of `grid.axes` (which may change the
/// network, the loss or the sharpness measurement): a (depth, width, axis point, init
/// seed). Every task of it shares one λ₀.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct InitKey {
    /// Weight layers.
    pub depth: u32,
    /// Width.
    pub width: u32,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
    /// Initialization seed.
    pub seed: u64,
}

impl From<&TaskKey> for InitKey {
    fn from(k: &TaskKey) -> Self {
        InitKey {
            depth: k.depth,
            width: k.width,
            axis_point: k.axis_point,
            seed: k.seed,
        }
    }
}

/// One line of the phase diagram: every c of one (depth, width, axis point, seed,
/// sgd_seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LineKey {
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
    /// Initialization seed.
    pub seed: u64,
    /// SGD-order seed.
    pub sgd_seed: u64,
}

impl From<&TaskKey> for LineKey {
    fn from(k: &TaskKey) -> Self {
        LineKey {
            depth: k.depth,
            width: k.width,
            axis_point: k.axis_point,
            seed: k.seed,
            sgd_seed: k.sgd_seed,
        }
    }
}

impl LineKey {
    /// The task of this line at `c`.
    pub fn task(&self, c: f64) -> TaskKey {
        TaskKey {
            c,
            depth: self.depth,
            width: self.width,
            seed: self.seed,
            sgd_seed: self.sgd_seed,
            axis_point: self.axis_point,
        }
    }
}

/// Everything one training run produced. Arrays have `steps + 1` entries: index t is
/// the state after t SGD steps (t = 0 is initialization). Entries that were not
/// measured (because of `sharpness.every`, or after divergence) hold the fill value of
/// their [`SCHEMA`] entry. Each field is described by its [`SCHEMA`] entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Sharpness at initialization on the measurement set (same units as `sharpness`).
    pub lambda0: f64,
    /// Learning rate used, c / λ₀.
    pub eta: f64,
    /// Outcome.
    pub status: RunStatus,
    /// The step whose minibatch loss diverged (1-based step count), if any.
    pub diverged_at: Option<u32>,
    /// Training loss L_t (on the training subset), per step.
    pub loss: Vec<f64>,
    /// Sharpness λ_t (top Hessian eigenvalue on the measurement set), per step.
    pub sharpness: Vec<f64>,
    /// Hessian-vector products used by the measurement at each step (-1: not measured).
    pub hvps: Vec<i32>,
    /// Relative residual ‖Hv − λv‖/|λ| of each measurement (NaN: not measured).
    pub residual: Vec<f64>,
    /// Whether each measurement met the tolerance (false where not measured).
    pub converged: Vec<bool>,
    /// Why each measurement's eigen-solver stopped (`None`: not measured).
    pub stop_reason: Vec<Option<StopReason>>,
    /// Loss along the straight line θ₀ → θ_T at `interp_alpha` (empty if not computed).
    pub interp_loss: Vec<f64>,
    /// Failure message when `status == Failed`.
    pub message: String,
    /// Wall-clock seconds this run took (training + measurement).
    pub seconds: f64,
    /// The round of the adaptive search that made this run (-1: a fixed grid's run).
    pub search_round: i32,
    /// The Hessian's k largest eigenvalues per step, step-major ((steps + 1) × k).
    pub eigenvalues: Vec<f64>,
    /// Their relative residuals, as `eigenvalues`.
    pub eig_residual: Vec<f64>,
    /// The Gauss-Newton matrix's k largest eigenvalues per step, as `eigenvalues`.
    pub gn_eigenvalues: Vec<f64>,
    /// The Hessian's smallest eigenvalue per step.
    pub min_eigenvalue: Vec<f64>,
    /// With Adam, whose `sharpness` is the preconditioned one: the plain Hessian's top
    /// eigenvalue per step (`sharpness.preconditioned = true`).
    pub hessian_sharpness: Vec<f64>,
}

impl RunRecord {
    /// A record with nothing measured yet: every variable at its [`SCHEMA`] fill value
    /// (`steps + 1` entries per step, `interp` per interpolation point), status `status`,
    /// λ₀ and η as given, no message, zero seconds.
    pub fn unmeasured(
        lambda0: f64,
        eta: f64,
        status: RunStatus,
        steps: usize,
        interp: usize,
    ) -> Self {
        Self::unmeasured_spectrum(lambda0, eta, status, steps, interp, EigenCount::ONE)
    }

    /// [`RunRecord::unmeasured`] with spectra of `k` eigenvalues per measurement.
    pub fn unmeasured_spectrum(
        lambda0: f64,
        eta: f64,
        status: RunStatus,
        steps: usize,
        interp: usize,
        k: EigenCount,
    ) -> Self {
        let mut rec = RunRecord::default();
        for var in SCHEMA {
            if let Role::Outcome { set, .. } = var.role {
                let len = var.row_len(steps + 1, interp, k);
                set(&mut rec, var.fill_column(len)).expect("fill values fit their variables");
            }
        }
        rec.lambda0 = lambda0;
        rec.eta = eta;
        rec.status = status;
        rec.seconds = 0.0;
        rec
    }
}

/// The whole results table: one entry per task, in grid order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Number of SGD steps per run (arrays have `steps + 1` entries).
    pub steps: usize,
    /// Interpolation coefficients α of the θ₀ → θ_T line (empty: none stored).
    pub interp_alpha: Vec<f64>,
    /// Eigenvalues per measured spectrum (`sharpness.k`; the file's `eig` dimension).
    pub k: EigenCount,
    /// Grid coordinates, one per run.
    pub keys: Vec<TaskKey>,
    /// Results, one per run; `None` while pending.
    pub records: Vec<Option<RunRecord>>,
    /// The axes of `grid.axes` (none for a file without them).
    #[serde(default)]
    pub axes: Axes,
}

impl Results {
    /// The row of the run `key`, if the table has it.
    pub fn row_of(&self, key: &TaskKey) -> Option<usize> {
        let id = key.identity();
        self.keys.iter().position(|k| k.identity() == id)
    }

    /// Adds a pending row for `key` at its place in [`TaskKey::row_order`] (after equal
    /// keys' neighbours) and returns it; a key the table already has keeps its row.
    pub fn insert_key(&mut self, key: TaskKey) -> usize {
        if let Some(row) = self.row_of(&key) {
            return row;
        }
        let row = self
            .keys
            .partition_point(|k| k.row_order(&key) == std::cmp::Ordering::Less);
        self.keys.insert(row, key);
        self.records.insert(row, None);
        row
    }

    /// Status of run `i` (pending when no record is present).
    pub fn status(&self, i: usize) -> RunStatus {
        self.records[i]
            .as_ref()
            .map_or(RunStatus::Pending, |r| r.status)
    }
}

/// Values of one variable or table column, in its storage type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Column {
    /// 64-bit floats (NaN: missing).
    F64(Vec<f64>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// 8-bit integers (flags and booleans).
    I8(Vec<i8>),
    /// UTF-8 text.
    Str(Vec<String>),
}

impl Column {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::I32(v) => v.len(),
            Column::I8(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }
    /// Whether the column has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The storage type.
    pub fn kind(&self) -> Kind {
        match self {
            Column::F64(_) => Kind::F64,
            Column::I64(_) => Kind::I64,
            Column::I32(_) => Kind::I32,
            Column::I8(_) => Kind::I8,
            Column::Str(_) => Kind::Str,
        }
    }
    /// Entries `range` as a new column.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Column {
        match self {
            Column::F64(v) => Column::F64(v[range].to_vec()),
            Column::I64(v) => Column::I64(v[range].to_vec()),
            Column::I32(v) => Column::I32(v[range].to_vec()),
            Column::I8(v) => Column::I8(v[range].to_vec()),
            Column::Str(v) => Column::Str(v[range].to_vec()),
        }
    }
    fn mismatch(&self, want: Kind) -> String {
        format!("expected {want:?} values, got {:?}", self.kind())
    }
    /// The floats, or an error naming the actual type.
    pub fn into_f64(self) -> Result<Vec<f64>, String> {
        match self {
            Column::F64(v) => Ok(v),
            other => Err(other.mismatch(Kind::F64)),
        }
    }
    /// The 64-bit integers, or an error naming the actual type.
    pub fn into_i64(self) -> Result<Vec<i64>, String> {
        match self {
            Column::I64(v) => Ok(v),
            other => Err(other.mismatch(Kind::I64)),
        }
    }
    /// The 32-bit integers, or an error naming the actual type.
    pub fn into_i32(self) -> Result<Vec<i32>, String> {
        match self {
            Column::I32(v) => Ok(v),
            other => Err(other.mismatch(Kind::I32)),
        }
    }
    /// The 8-bit integers, or an error naming the actual type.
    pub fn into_i8(self) -> Result<Vec<i8>, String> {
        match self {
            Column::I8(v) => Ok(v),
            other => Err(other.mismatch(Kind::I8)),
        }
    }
    /// The strings, or an error naming the actual type.
    pub fn into_str(self) -> Result<Vec<String>, String> {
        match self {
            Column::Str(v) => Ok(v),
            other => Err(other.mismatch(Kind::Str)),
        }
    }
}

/// Storage type of a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 8-bit signed integer.
    I8,
    /// Variable-length UTF-8 string.
    Str,
}

impl Kind {
    /// The name used in the README table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::F64 => "f64",
            Kind::I64 => "i64",
            Kind::I32 => "i32",
            Kind::I8 => "i8",
            Kind::Str => "string",
        }
    }
}

/// A dimension of the results file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// One entry per task (row of the run table).
    Run,
    /// `steps + 1` entries: the state after t SGD steps.
    Step,
    /// One entry per interpolation coefficient α (present when `grid.interp_points` > 0).
    Interp,
    /// One entry per eigenvalue of a measured spectrum: its length is `sharpness.k`
    /// ([`Results::k`], an [`EigenCount`]; 1 by default). The file keeps the name `eig`
    /// for this dimension and its coordinate, so files of every version read.
    Eig,
}

impl Dim {
    /// The dimension's (and its coordinate variable's) name.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Run => "run",
            Dim::Step => "step",
            Dim::Interp => "interp",
            Dim::Eig => "eig",
        }
    }
}

/// What a variable holds, and how to get and set it.
#[derive(Clone, Copy)]
pub enum Role {
    /// The coordinate of a dimension (a dimension scale): `run` 0..n−1, `step` 0..T,
    /// `interp` the α values.
    Coordinate(Dim),
    /// A grid coordinate of the task, written when the file is created.
    Key {
        /// The task's value (one entry).
        get: fn(&TaskKey) -> Result<Column, String>,
        /// Sets the field from one entry.
        set: fn(&mut TaskKey, Column) -> Result<(), String>,
    },
    /// Something a run produced, written when it finishes.
    Outcome {
        /// The record's values: 1 entry over (run), `steps + 1` over (run, step), one per
        /// α over (run, interp); shorter per-step vectors are padded with the fill value.
        get: fn(&RunRecord) -> Result<Column, String>,
        /// Sets the field from one row's values.
        set: fn(&mut RunRecord, Column) -> Result<(), String>,
    },
}

/// One variable of the results file.
#[derive(Clone, Copy)]
pub struct Var {
    /// Variable name in the file (and field name of the record).
    pub name: &'static str,
    /// Dimensions, outermost first.
    pub dims: &'static [Dim],
    /// Storage type.
    pub kind: Kind,
    /// Fill value (integers exactly representable; ignored for strings, whose fill is "").
    pub fill: f64,
    /// The `long_name` attribute.
    pub long_name: &'static str,
    /// The `units` attribute ("" for none).
    pub units: &'static str,
    /// `flag_values` / `flag_meanings` attributes (empty for none).
    pub flags: &'static [(i8, &'static str)],
    /// The README's description (meaning and fill value).
    pub doc: &'static str,
    /// What the variable holds.
    pub role: Role,
}

impl Var {
    /// Entries of one row: the product of the inner dimensions' lengths (1 for a (run)
    /// variable; `k` for the `eig` dimension).
    pub fn row_len(&self, steps_plus_one: usize, interp: usize, k: EigenCount) -> usize {
        self.dims
            .iter()
            .skip(1)
            .map(|d| match d {
                Dim::Step => steps_plus_one,
                Dim::Interp => interp,
                Dim::Eig => k.get(),
                Dim::Run => 1,
            })
            .product()
    }
    /// `len` entries of the fill value.
    pub fn fill_column(&self, len: usize) -> Column {
        match self.kind {
            Kind::F64 => Column::F64(vec![self.fill; len]),
            Kind::I64 => Column::I64(vec![self.fill as i64; len]),
            Kind::I32 => Column::I32(vec![self.fill as i32; len]),
            Kind::I8 => Column::I8(vec![self.fill as i8; len]),
            Kind::Str => Column::Str(vec![String::new(); len]),
        }
    }
    /// Whether the variable exists in a file with `interp` interpolation points.
    pub fn present(&self, interp: usize) -> bool {
        interp > 0 || !self.dims.contains(&Dim::Interp)
    }
    /// The README's "dims" cell, e.g. "(run, step)".
    pub fn dims_text(&self) -> String {
        let names: Vec<&str> = self.dims.iter().map(|d| d.name()).collect();
        format!("({})", names.join(", "))
    }
}

/// The variables of the results file grouped by dimensions, for `sharpsweep --help`.
pub fn help_text() -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for v in SCHEMA {
        let dims = v.dims_text();
        match groups.iter_mut().find(|(d, _)| *d == dims) {
            Some((_, names)) => names.push(v.name),
            None => groups.push((dims, vec![v.name])),
        }
    }
    let mut out = String::from("Results file variables (README \"The results file\"):\n");
    for (dims, names) in groups {
        out.push_str(&format!("  {dims:<14} {}\n", names.join(" ")));
    }
    out
}

/// Header of the README's results table.
const TABLE_HEADER: &str = "| variable | dims | type | units | meaning, fill value |";

/// The README's results table, one row per [`SCHEMA`] entry.
pub fn markdown_table() -> String {
    let mut out = format!("{TABLE_HEADER}\n|---|---|---|---|---|\n");
    for v in SCHEMA {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            v.name,
            v.dims_text(),
            v.kind.name(),
            v.units,
            v.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::schema::{STATUS_FLAGS, STOP_FLAGS};
    use super::*;

    #[test]
    fn the_eigenvalue_count_is_never_zero() {
        assert_eq!(EigenCount::new(0), None);
        assert_eq!(EigenCount::new(4).map(EigenCount::get), Some(4));
        assert_eq!(Results::default().k, EigenCount::ONE);
        assert_eq!(EigenCount::ONE.get(), 1);
        let rec = RunRecord::unmeasured_spectrum(
            1.0,
            0.5,
            RunStatus::Done,
            2,
            0,
            EigenCount::new(3).unwrap(),
        );
        assert_eq!(rec.eigenvalues.len(), 3 * 3);
        assert_eq!(
            RunRecord::unmeasured(1.0, 0.5, RunStatus::Done, 2, 0)
                .eigenvalues
                .len(),
            3
        );
    }

    fn sample() -> RunRecord {
        let mut r = RunRecord::unmeasured(3.5, 0.25, RunStatus::Diverged, 2, 2);
        r.diverged_at = Some(2);
        r.loss = vec![1.0, f64::NAN, f64::INFINITY];
        r.hvps = vec![30, -1, 7];
        r.converged = vec![true, false, true];
        r.stop_reason = vec![
            Some(StopReason::Converged),
            None,
            Some(StopReason::MaxIterations),
        ];
        r.interp_loss = vec![0.5, f64::NAN];
        r.message = "λ".into();
        r
    }

    #[test]
    fn names_are_unique_and_kinds_match_getters() {
        let rec = sample();
        let key = TaskKey {
            c: 2.0,
            depth: 3,
            width: 8,
            seed: u64::MAX,
            sgd_seed: 1,
            axis_point: 0,
        };
        for (i, v) in SCHEMA.iter().enumerate() {
            assert!(
                SCHEMA[..i].iter().all(|w| w.name != v.name),
                "{} twice",
                v.name
            );
            let got = match v.role {
                Role::Coordinate(_) => continue,
                Role::Key { get, .. } => get(&key).unwrap(),
                Role::Outcome { get, .. } => get(&rec).unwrap(),
            };
            assert_eq!(got.kind(), v.kind, "{}", v.name);
            assert_eq!(v.fill_column(2).kind(), v.kind, "{}", v.name);
        }
    }

    #[test]
    fn set_after_get_is_identity() {
        let rec = sample();
        let mut back = RunRecord::default();
        let key = TaskKey {
            c: 0.1,
            depth: 7,
            width: 9,
            seed: u64::MAX - 3,
            sgd_seed: 11,
            axis_point: 0,
        };
        let mut key_back = TaskKey::default();
        for v in SCHEMA {
            match v.role {
                Role::Coordinate(_) => {}
                Role::Key { get, set } => set(&mut key_back, get(&key).unwrap()).unwrap(),
                Role::Outcome { get, set } => set(&mut back, get(&rec).unwrap()).unwrap(),
            }
        }
        assert_eq!(format!("{back:?}"), format!("{rec:?}"));
        assert_eq!(key_back, key);
    }

    #[test]
    fn unmeasured_records_hold_fill_values() {
        let r = RunRecord::unmeasured(1.0, 0.5, RunStatus::Done, 3, 2);
        assert_eq!(r.loss.len(), 4);
        assert!(r.loss.iter().all(|x| x.is_nan()));
        assert_eq!(r.hvps, vec![-1; 4]);
        assert_eq!(r.stop_reason, vec![None; 4]);
        assert_eq!(r.converged, vec![false; 4]);
        assert_eq!(r.interp_loss.len(), 2);
        assert_eq!(r.diverged_at, None);
        assert_eq!((r.lambda0, r.eta, r.seconds), (1.0, 0.5, 0.0));
    }

    /// The README's results table is this schema's [`markdown_table`]: edit the schema,
    /// then paste the table this test prints.
    #[test]
    fn readme_results_table_matches_the_schema() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find(super::TABLE_HEADER)
            .expect("README.md has the results table");
        let end = readme[start..]
            .find("\n\n")
            .map_or(readme.len(), |e| start + e + 1);
        let expected = markdown_table();
        assert!(
            readme[start..end] == expected,
            "README.md's results table differs from record::SCHEMA; it should read:\n\n{expected}"
        );
    }

    #[test]
    fn the_axis_point_is_part_of_identity_row_order_and_networks() {
        let a = TaskKey {
            c: 2.0,
            depth: 3,
            width: 8,
            seed: 1,
            sgd_seed: 1,
            axis_point: 0,
        };
        let b = TaskKey { axis_point: 1, ..a };
        assert_ne!(a.identity(), b.identity());
        assert_ne!(InitKey::from(&a), InitKey::from(&b));
        assert_ne!(LineKey::from(&a), LineKey::from(&b));
        assert_eq!(LineKey::from(&b).task(2.0), b);
        // Row order: depth, width, axis point, seeds, c.
        let later_seed = TaskKey {
            seed: 2,
            c: 1.0,
            ..a
        };
        assert!(b.row_order(&later_seed).is_gt());
        let wider = TaskKey { width: 9, ..a };
        assert!(b.row_order(&wider).is_lt());
        let mut res = Results::default();
        for k in [wider, b, later_seed, a] {
            res.insert_key(k);
        }
        assert_eq!(res.keys, [a, later_seed, b, wider]);
    }

    #[test]
    fn codes_round_trip_and_bad_codes_are_refused() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(RunStatus::from_code(9), None);
        for (code, _) in STOP_FLAGS {
            assert_eq!(stop_code(stop_of_code(*code).unwrap()), *code);
        }
        assert!(stop_of_code(6).is_err());
        for (code, name) in STATUS_FLAGS {
            assert_eq!(RunStatus::from_code(*code).unwrap().name(), *name);
        }
    }
}
