//! The run setup: the data a sweep trains on ([`Problem`]), the network of a grid point
//! ([`network_spec`]), the settings a run takes from the config once ([`RunSettings`]),
//! and λ₀ as one value ([`Lambda0`]).

use crate::config::{
    Config, ModelKind, Schedule, SharpnessMethod, SharpnessProtocol, SpectrumOperator,
};
use crate::data::{self, Dataset, SharedArray};
use crate::hessian::{EigenEstimate, StopReason};
use crate::model::uv::uv_spec;
use crate::model::{Float, MlpSpec};
use crate::optim::Rule;
use crate::record::{EigenCount, RunRecord};
use faer::Par;

/// The data a sweep trains on, in the network's precision: the training subset, the
/// fixed measurement set, and their one-hot targets (examples are columns). Each array is
/// this process's own, or a read-only view of the one copy the ranks of a node share
/// ([`SharedArray`]); training reads them as slices either way.
#[derive(Clone, Debug)]
pub struct Problem<T> {
    /// Input features d_in.
    pub input_dim: usize,
    /// Outputs k.
    pub outputs: usize,
    /// Training inputs (d_in × n).
    pub x_train: SharedArray<T>,
    /// Training targets (k × n).
    pub y_train: SharedArray<T>,
    /// Measurement-set inputs (d_in × m).
    pub x_meas: SharedArray<T>,
    /// Measurement-set targets (k × m).
    pub y_meas: SharedArray<T>,
    /// Description of the data (files, subset rule, measurement set) for provenance.
    pub description: String,
}

impl<T: Float> Problem<T> {
    /// Training examples n.
    pub fn n_train(&self) -> usize {
        self.y_train.len() / self.outputs
    }
    /// Measurement examples m.
    pub fn n_meas(&self) -> usize {
        self.y_meas.len() / self.outputs
    }

    /// The problem of a dataset: all of it trains; `measure_n` examples (seeded) measure.
    pub fn from_dataset(ds: &Dataset, measure_n: usize, measure_seed: u64) -> Self {
        let idx = data::measurement_indices(ds.n, measure_n, measure_seed);
        let meas = ds.select(&idx);
        let conv = |v: &[f32]| v.iter().map(|x| T::of(*x as f64)).collect::<Vec<T>>();
        Problem {
            input_dim: ds.input_dim,
            outputs: ds.classes,
            x_train: conv(&ds.x).into(),
            y_train: conv(&ds.one_hot()).into(),
            x_meas: conv(&meas.x).into(),
            y_meas: conv(&meas.one_hot()).into(),
            description: format!(
                "{}; measurement set: {} of the {} training examples (seeded draw, seed {})",
                ds.source,
                idx.len(),
                ds.n,
                measure_seed
            ),
        }
    }

    /// The uv model's single example (x, y) = (1, 0), which is also the measurement set.
    pub fn uv() -> Self {
        Problem {
            input_dim: 1,
            outputs: 1,
            x_train: vec![T::of(1.0)].into(),
            y_train: vec![T::of(0.0)].into(),
            x_meas: vec![T::of(1.0)].into(),
            y_meas: vec![T::of(0.0)].into(),
            description: "uv model: one example (x, y) = (1, 0)".into(),
        }
    }

    /// The problem a config describes (loads the dataset for `mlp`).
    pub fn from_config(cfg: &Config) -> Result<Self, data::DataError> {
        match cfg.model.kind {
            ModelKind::Uv => Ok(Self::uv()),
            ModelKind::Mlp => {
                let ds = data::load(&cfg.data)?;
                Ok(Self::from_dataset(
                    &ds,
                    cfg.sharpness.measure_n,
                    cfg.sharpness.measure_seed,
                ))
            }
        }
    }
}

/// The network of grid point (depth, width) under `cfg`.
pub fn network_spec(
    cfg: &Config,
    input_dim: usize,
    outputs: usize,
    depth: u32,
    width: u32,
) -> MlpSpec {
    match cfg.model.kind {
        ModelKind::Uv => {
            let mut spec = uv_spec(width as usize);
            spec.net.loss_scale = cfg.model.net.loss_scale;
            spec
        }
        ModelKind::Mlp => MlpSpec {
            input_dim,
            width: width as usize,
            depth: depth as usize,
            outputs,
            net: cfg.model.net.clone(),
        },
    }
}

/// Everything a run needs besides the data: the network and the run's settings, taken
/// from the config once.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Network.
    pub spec: MlpSpec,
    /// Depth and width as grid coordinates (for seed derivation).
    pub depth: u32,
    /// Width grid coordinate.
    pub width: u32,
    /// Minibatch size (1 for the uv model).
    pub batch_size: usize,
    /// SGD steps T.
    pub steps: usize,
    /// Divergence threshold on the loss.
    pub divergence_loss: f64,
    /// Which states are measured: the training loss, and the sharpness with it.
    pub schedule: Schedule,
    /// Sharpness estimator.
    pub method: SharpnessMethod,
    /// Lanczos relative-residual tolerance (also the power method's reported check).
    pub tol: f64,
    /// Lanczos iteration cap.
    pub max_iter: usize,
    /// Power iterations.
    pub power_iters: usize,
    /// Warm-start each measurement from the previous one's vectors (k = 1 Lanczos: its top
    /// two Ritz vectors).
    pub warm_start: bool,
    /// Points of the θ₀ → θ_T loss interpolation (0: none).
    pub interp_points: usize,
    /// Eigenvalues per stored spectrum (`sharpness.k`).
    pub k: EigenCount,
    /// Whose top-k spectra are stored.
    pub operator: SpectrumOperator,
    /// Whether the Hessian's smallest eigenvalue is measured too.
    pub bottom: bool,
    /// The update rule and its hyperparameters.
    pub rule: Rule,
    /// Linear warmup steps (0: none).
    pub warmup_steps: usize,
    /// With Adam: also measure the plain Hessian's top eigenvalue (`hessian_sharpness`).
    pub preconditioned: bool,
    /// Fixed measurement set, or the authors' notebook.
    pub protocol: SharpnessProtocol,
    /// Examples of λ₀'s measurement under the authors' notebook (`sharpness.measure_n`).
    pub measure_n: usize,
    /// Matmul parallelism.
    pub par: Par,
}

impl RunSettings {
    /// Settings of grid point (depth, width) under `cfg`, on `problem`'s data.
    pub fn new<T: Float>(
        cfg: &Config,
        problem: &Problem<T>,
        depth: u32,
        width: u32,
        par: Par,
    ) -> Self {
        RunSettings {
            spec: network_spec(cfg, problem.input_dim, problem.outputs, depth, width),
            depth,
            width,
            batch_size: cfg.sizes().batch_size,
            steps: cfg.train.steps,
            divergence_loss: cfg.train.divergence_loss,
            schedule: Schedule::of(cfg),
            method: cfg.sharpness.method,
            tol: cfg.sharpness.tol,
            max_iter: cfg.sharpness.max_iter,
            power_iters: cfg.sharpness.power_iters,
            warm_start: cfg.sharpness.warm_start,
            interp_points: cfg.grid.interp_points,
            k: eigen_count(cfg),
            operator: cfg.sharpness.operator,
            bottom: cfg.sharpness.bottom,
            rule: cfg.train.update_rule(),
            warmup_steps: cfg.train.warmup_steps,
            preconditioned: cfg.sharpness.preconditioned,
            protocol: cfg.sharpness.protocol,
            measure_n: cfg.sharpness.measure_n,
            par,
        }
    }

    /// Whether a measurement goes beyond the sharpness (top-k, Gauss-Newton, bottom, the
    /// plain Hessian's beside Adam's preconditioned one).
    pub fn spectra(&self) -> bool {
        self.k.get() > 1
            || self.operator != SpectrumOperator::Hessian
            || self.bottom
            || self.plain()
    }

    /// Whether each measurement also measures the plain Hessian's top eigenvalue.
    pub(crate) fn plain(&self) -> bool {
        self.preconditioned && matches!(self.rule, Rule::Adam(_))
    }

    /// The interpolation coefficients α of the θ₀ → θ_T line (empty when off).
    pub fn interp_alpha(&self) -> Vec<f64> {
        interp_alpha(self.interp_points)
    }
}

/// `sharpness.k` of a validated config as a count ([`Config::validate`] refuses 0).
pub fn eigen_count(cfg: &Config) -> EigenCount {
    EigenCount::new(cfg.sharpness.k).expect("Config::validate keeps sharpness.k in 1..=64")
}

/// α_j = j/(points − 1), j = 0..points (empty for points = 0, [0] for 1).
pub fn interp_alpha(points: usize) -> Vec<f64> {
    match points {
        0 => Vec::new(),
        1 => vec![0.0],
        p => (0..p).map(|j| j as f64 / (p - 1) as f64).collect(),
    }
}

/// λ₀ of one network at initialization, as the runs that train from it use and record it
/// (at step 0). Travels between ranks as it is, and is rebuilt from any finished run's
/// record on resume ([`Lambda0::of_record`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lambda0 {
    /// λ₀, the sharpness at initialization (η = c/λ₀).
    pub value: f64,
    /// Hessian-vector products the measurement used.
    pub hvps: usize,
    /// Its relative residual.
    pub residual: f64,
    /// Whether it met the tolerance.
    pub converged: bool,
    /// Why the eigen-solver stopped (`None`: unknown, from a file of an older version).
    pub stop: Option<StopReason>,
}

impl Lambda0 {
    /// The λ₀ of a measurement (its eigenvector is not kept: the first measurement after
    /// initialization starts cold, so a run does not depend on where λ₀ was computed).
    pub fn of_estimate(est: &EigenEstimate) -> Self {
        Lambda0 {
            value: est.value,
            hvps: est.applications,
            residual: est.residual,
            converged: est.converged,
            stop: Some(est.stop),
        }
    }

    /// The λ₀ a finished run recorded at step 0 (value, HVPs, residual, convergence and
    /// stop reason), exactly as it was measured.
    pub fn of_record(rec: &RunRecord) -> Self {
        Lambda0 {
            value: rec.lambda0,
            hvps: rec.hvps.first().map_or(0, |h| (*h).max(0) as usize),
            residual: rec.residual.first().copied().unwrap_or(f64::NAN),
            converged: rec.converged.first().copied().unwrap_or(false),
            stop: rec.stop_reason.first().copied().flatten(),
        }
    }
}
