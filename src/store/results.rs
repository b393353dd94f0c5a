//! In-memory mirror of the results file: the run table (one row per task) and the
//! (run, step) arrays. `store::hdf5` reads and writes it; `analysis` reads it.

use serde::{Deserialize, Serialize};

/// What became of one grid task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Not run yet (or interrupted before it finished).
    Pending,
    /// Trained for every step without divergence.
    Done,
    /// The minibatch loss exceeded the divergence threshold or was not finite.
    Diverged,
    /// The run could not be carried out (an error, recorded in the message table).
    Failed,
}

impl RunStatus {
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
        Some(match code {
            0 => RunStatus::Pending,
            1 => RunStatus::Done,
            2 => RunStatus::Diverged,
            3 => RunStatus::Failed,
            _ => return None,
        })
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

/// The grid coordinates of one task (one row of the run table).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// Everything one training run produced. Arrays have `steps + 1` entries: index t is
/// the state after t SGD steps (t = 0 is initialization). Entries that were not
/// measured (because of `sharpness.every`, or after divergence) are NaN (`hvps`: -1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Loss along the straight line θ₀ → θ_T at `interp_alpha` (empty if not computed).
    pub interp_loss: Vec<f64>,
    /// Failure message when `status == Failed`.
    pub message: String,
    /// Wall-clock seconds this run took (training + measurement).
    pub seconds: f64,
}

impl RunRecord {
    /// A record with nothing measured yet: `steps + 1` NaN entries (`hvps` −1), `interp`
    /// NaN interpolation points, status `status`, no message, zero seconds.
    pub fn unmeasured(
        lambda0: f64,
        eta: f64,
        status: RunStatus,
        steps: usize,
        interp: usize,
    ) -> Self {
        RunRecord {
            lambda0,
            eta,
            status,
            diverged_at: None,
            loss: vec![f64::NAN; steps + 1],
            sharpness: vec![f64::NAN; steps + 1],
            hvps: vec![-1; steps + 1],
            residual: vec![f64::NAN; steps + 1],
            converged: vec![false; steps + 1],
            interp_loss: vec![f64::NAN; interp],
            message: String::new(),
            seconds: 0.0,
        }
    }
}

/// The whole results table: one entry per task, in grid order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Number of SGD steps per run (arrays have `steps + 1` entries).
    pub steps: usize,
    /// Interpolation coefficients α of the θ₀ → θ_T line (empty: none stored).
    pub interp_alpha: Vec<f64>,
    /// Grid coordinates, one per run.
    pub keys: Vec<TaskKey>,
    /// Results, one per run; `None` while pending.
    pub records: Vec<Option<RunRecord>>,
}

impl Results {
    /// Status of run `i` (pending when no record is present).
    pub fn status(&self, i: usize) -> RunStatus {
        self.records[i]
            .as_ref()
            .map_or(RunStatus::Pending, |r| r.status)
    }
}
