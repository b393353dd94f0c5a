//! One training run: λ₀ on the measurement set, η = c/λ₀, plain SGD, and loss and
//! sharpness after every `sharpness.every` steps. Divergence is a result (recorded in the
//! [`RunRecord`]), never an error. A run knows nothing of the grid or of files.

use crate::config::{Config, ModelKind, SharpnessMethod, SharpnessProtocol, SpectrumOperator};
use crate::data::{self, Dataset};
use crate::hessian::{
    block_top_k_in, lanczos_top_in, power_top, BlockOptions, EigenEstimate, EigenWorkspace,
    LanczosOptions, Negated, Preconditioned, Spectrum, StopReason,
};
use crate::model::param::init_params;
use crate::model::uv::uv_spec;
use crate::model::{Curvature, Float, HvpOperator, MlpSpec, MlpWorkspace};
pub use crate::optim::learning_rate;
use crate::optim::{OptimizerState, Rule};
use crate::record::{RunRecord, RunStatus};
use crate::rng::{shuffle, NetStream};
use faer::Par;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::time::Instant;

/// Memory allowed for the Lanczos basis (f64 vectors of length P) before it restarts.
const LANCZOS_BASIS_BYTES: usize = 1 << 31;

/// Vectors of length `n_params` the Lanczos basis keeps (the rest of the iteration
/// restarts): as many as `max_iter` asks for, within [`LANCZOS_BASIS_BYTES`], at least 8.
pub fn lanczos_basis_vectors(n_params: usize, max_iter: usize) -> usize {
    (LANCZOS_BASIS_BYTES / (8 * n_params.max(1))).clamp(8, max_iter.max(8))
}

/// The data a sweep trains on, in the network's precision: the training subset, the
/// fixed measurement set, and their one-hot targets (examples are columns).
#[derive(Clone, Debug)]
pub struct Problem<T> {
    /// Input features d_in.
    pub input_dim: usize,
    /// Outputs k.
    pub outputs: usize,
    /// Training inputs (d_in × n).
    pub x_train: Vec<T>,
    /// Training targets (k × n).
    pub y_train: Vec<T>,
    /// Measurement-set inputs (d_in × m).
    pub x_meas: Vec<T>,
    /// Measurement-set targets (k × m).
    pub y_meas: Vec<T>,
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
            x_train: conv(&ds.x),
            y_train: conv(&ds.one_hot()),
            x_meas: conv(&meas.x),
            y_meas: conv(&meas.one_hot()),
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
            x_train: vec![T::of(1.0)],
            y_train: vec![T::of(0.0)],
            x_meas: vec![T::of(1.0)],
            y_meas: vec![T::of(0.0)],
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
    /// Measure every this many steps.
    pub every: usize,
    /// Sharpness estimator.
    pub method: SharpnessMethod,
    /// Lanczos relative-residual tolerance (also the power method's reported check).
    pub tol: f64,
    /// Lanczos iteration cap.
    pub max_iter: usize,
    /// Power iterations.
    pub power_iters: usize,
    /// Warm-start each measurement from the previous eigenvector.
    pub warm_start: bool,
    /// Points of the θ₀ → θ_T loss interpolation (0: none).
    pub interp_points: usize,
    /// Eigenvalues per stored spectrum (`sharpness.k`).
    pub k: usize,
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
            batch_size: match cfg.model.kind {
                ModelKind::Uv => 1,
                ModelKind::Mlp => cfg.train.batch_size,
            },
            steps: cfg.train.steps,
            divergence_loss: cfg.train.divergence_loss,
            every: cfg.sharpness.every.max(1),
            method: cfg.sharpness.method,
            tol: cfg.sharpness.tol,
            max_iter: cfg.sharpness.max_iter,
            power_iters: cfg.sharpness.power_iters,
            warm_start: cfg.sharpness.warm_start,
            interp_points: cfg.grid.interp_points,
            k: cfg.sharpness.k.max(1),
            operator: cfg.sharpness.operator,
            bottom: cfg.sharpness.bottom,
            rule: Rule::of(&cfg.train),
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
        self.k > 1 || self.operator != SpectrumOperator::Hessian || self.bottom || self.plain()
    }

    /// Whether each measurement also measures the plain Hessian's top eigenvalue.
    fn plain(&self) -> bool {
        self.preconditioned && matches!(self.rule, Rule::Adam(_))
    }

    /// The interpolation coefficients α of the θ₀ → θ_T line (empty when off).
    pub fn interp_alpha(&self) -> Vec<f64> {
        interp_alpha(self.interp_points)
    }
}

/// The step size of step t (t = 0 first): the warmup's η_t ([`learning_rate`]) or, after
/// it, `target` (η = c/λ₀ in T, rounded once per run so every step uses the same bits).
fn step_size<T: Float>(s: &RunSettings, eta: f64, t: usize, target: T) -> T {
    if t < s.warmup_steps {
        T::of(learning_rate(eta, t, s.warmup_steps))
    } else {
        target
    }
}

/// The gradient of the loss on the measurement set at `params` (Adam's g for its
/// preconditioner and, at θ₀, its v₀ = g₀²). Its passes stay in `ws` for the
/// measurement's operators ([`measurement_operator`]).
fn measurement_gradient<T: Float>(
    problem: &Problem<T>,
    params: &[T],
    ws: &mut MlpWorkspace<T>,
) -> Vec<T> {
    let mut g = vec![T::of(0.0); params.len()];
    let m = problem.n_meas();
    ws.loss_and_grad(params, &problem.x_meas, &problem.y_meas, m, &mut g);
    g
}

/// The curvature operator of the measurement set at `params`. One measurement runs the
/// forward and backward passes once, for all its operators (and Adam's gradient,
/// [`measurement_gradient`]): `*passes` is true when `ws` holds them already, of these
/// parameters on the measurement set with nothing run on `ws` since, and is true after.
pub(crate) fn measurement_operator<'a, T: Float>(
    problem: &'a Problem<T>,
    params: &'a [T],
    ws: &'a mut MlpWorkspace<T>,
    curvature: Curvature,
    passes: &mut bool,
) -> HvpOperator<'a, T> {
    let (x, y, m) = (&problem.x_meas[..], &problem.y_meas[..], problem.n_meas());
    if std::mem::replace(passes, true) {
        HvpOperator::cached(params, x, y, m, ws, curvature)
    } else {
        HvpOperator::of(params, x, y, m, ws, curvature)
    }
}

/// α_j = j/(points − 1), j = 0..points (empty for points = 0, [0] for 1).
pub fn interp_alpha(points: usize) -> Vec<f64> {
    match points {
        0 => Vec::new(),
        1 => vec![0.0],
        p => (0..p).map(|j| j as f64 / (p - 1) as f64).collect(),
    }
}

/// Top Hessian eigenvalue on the measurement set at `params`, by the configured method
/// (of D H D, Adam's preconditioned Hessian, when `precond` gives D = P^-½); Lanczos works
/// in the memory of `eig`. `passes`: see [`measurement_operator`].
#[allow(clippy::too_many_arguments)]
pub fn measure_sharpness<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    (ws, passes): (&mut MlpWorkspace<T>, &mut bool),
    eig: &mut EigenWorkspace,
    start: Option<&[f64]>,
    precond: Option<&[f64]>,
    seed: u64,
) -> EigenEstimate {
    let mut hvp = measurement_operator(problem, params, ws, Curvature::Hessian, passes);
    let mut op = Preconditioned::new(&mut hvp, precond);
    match s.method {
        SharpnessMethod::Lanczos => {
            let max_basis = lanczos_basis_vectors(params.len(), s.max_iter);
            lanczos_top_in(
                &mut op,
                start,
                &LanczosOptions {
                    tol: s.tol,
                    max_iter: s.max_iter,
                    max_basis,
                    seed,
                },
                eig,
            )
        }
        SharpnessMethod::Power => power_top(&mut op, start, s.power_iters, s.tol, seed),
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

/// Adam's preconditioner at θ₀ (GI-Adam: v₀ = g₀² with g₀ the measurement-set gradient
/// at θ₀) and the optimizer state a run starts from; `None` and the plain state for the
/// other rules.
fn initial_state<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    ws: &mut MlpWorkspace<T>,
) -> (OptimizerState<T>, Option<Vec<f64>>) {
    match s.rule {
        Rule::Adam(_) => {
            let g0 = measurement_gradient(problem, params, ws);
            let state = OptimizerState::new(s.rule, params.len(), Some(&g0));
            let precond = state.preconditioner(&g0);
            (state, precond)
        }
        _ => (OptimizerState::new(s.rule, params.len(), None), None),
    }
}

/// λ₀ of the network (depth, width, init seed): the sharpness at initialization — with
/// Adam the preconditioned one, λ_max(P₀⁻¹H) with GI-Adam's P₀ ([`OptimizerState::
/// preconditioner`]). It depends on the network, the init seed, the measurement set (and
/// Adam's β₁, β₂, ε) only, never on c.
pub fn lambda0<T: Float>(s: &RunSettings, problem: &Problem<T>, seed: u64) -> Lambda0 {
    let params: Vec<T> = init_params(&s.spec, NetStream::Init.seed(seed, s.depth, s.width));
    if s.protocol == SharpnessProtocol::AuthorsNotebook {
        return Lambda0::of_estimate(&notebook_lambda0(s, problem, &params, seed));
    }
    let mut ws = MlpWorkspace::<T>::new(&s.spec, problem.n_meas(), s.par);
    let (_, precond) = initial_state(s, problem, &params, &mut ws);
    // Adam's g₀ left the passes in `ws`.
    let mut passes = precond.is_some();
    let est = measure_sharpness(
        s,
        problem,
        &params,
        (&mut ws, &mut passes),
        &mut EigenWorkspace::new(s.par),
        None,
        precond.as_deref(),
        NetStream::Lanczos.seed(seed, s.depth, s.width),
    );
    Lambda0::of_estimate(&est)
}

/// The authors' notebook's power iteration: `power_iters` products from the run's one
/// fixed start vector (a Gaussian seeded by the init seed's Lanczos stream, the same at
/// every measurement), then the Rayleigh quotient of the last iterate — `power_iters` + 1
/// products, as their code counts them.
fn notebook_power<T: Float>(
    s: &RunSettings,
    params: &[T],
    (x, y, m): (&[T], &[T], usize),
    ws: &mut MlpWorkspace<T>,
    seed: u64,
) -> EigenEstimate {
    let mut op = HvpOperator::new(params, x, y, m, ws);
    let start = NetStream::Lanczos.seed(seed, s.depth, s.width);
    power_top(&mut op, None, s.power_iters + 1, s.tol, start)
}

/// λ₀ under the authors' notebook: on the first `measure_n` examples of a stream of
/// permutations of the training set seeded by the SGD seed (which the protocol makes the
/// init seed: `train.sgd_seeds` is refused with it).
fn notebook_lambda0<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    seed: u64,
) -> EigenEstimate {
    let m = s.measure_n.min(problem.n_train());
    let stream = NetStream::NotebookMeasure.seed(seed, s.depth, s.width);
    let mut examples = Minibatches::new(problem, m, stream);
    let (x, y) = examples.next(problem);
    let mut ws = MlpWorkspace::<T>::new(&s.spec, m, s.par);
    notebook_power(s, params, (x, y, m), &mut ws, seed)
}

/// State t's training loss (as [`measure_step`]) and, under the authors' notebook, its
/// sharpness on the next minibatch of `batches`, which the measurement consumes.
#[allow(clippy::too_many_arguments)]
fn measure_notebook<T: Float>(
    rec: &mut RunRecord,
    t: usize,
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    (ws_meas, ws_batch): (&mut MlpWorkspace<T>, &mut MlpWorkspace<T>),
    batches: &mut Minibatches<T>,
    seed: u64,
) {
    if training_loss_at(rec, t, s, problem, params, ws_meas) {
        return;
    }
    let b = batches.size;
    let (xb, yb) = batches.next(problem);
    let est = notebook_power(s, params, (xb, yb, b), ws_batch, seed);
    let m = Lambda0::of_estimate(&est);
    record_measurement(rec, t, &m);
    rec.eigenvalues[t * s.k] = m.value;
    rec.eig_residual[t * s.k] = m.residual;
}

/// Seconds spent in each part of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunTiming {
    /// SGD steps (minibatch gradients and updates).
    pub train_s: f64,
    /// Training-set losses and sharpness measurements.
    pub measure_s: f64,
}

/// Minibatches drawn without replacement from a fresh seeded permutation each epoch (the
/// last partial batch of an epoch is dropped), copied into reused buffers.
struct Minibatches<T> {
    size: usize,
    rng: Xoshiro256PlusPlus,
    perm: Vec<usize>,
    cursor: usize,
    /// Permutations drawn so far (the stream's position, for a checkpoint).
    epochs: u64,
    x: Vec<T>,
    y: Vec<T>,
}

impl<T: Float> Minibatches<T> {
    fn new(problem: &Problem<T>, size: usize, seed: u64) -> Self {
        let n = problem.n_train();
        Minibatches {
            size,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            perm: (0..n).collect(),
            cursor: n, // forces a fresh permutation before the first batch
            epochs: 0,
            x: vec![T::of(0.0); problem.input_dim * size],
            y: vec![T::of(0.0); problem.outputs * size],
        }
    }

    /// The stream at a checkpoint's position: `epochs` permutations drawn again from the
    /// seed (the same draws, so the same permutations), then `cursor` into the last.
    fn restored(problem: &Problem<T>, size: usize, seed: u64, epochs: u64, cursor: usize) -> Self {
        let mut b = Self::new(problem, size, seed);
        for _ in 0..epochs {
            shuffle(&mut b.perm, &mut b.rng);
        }
        b.epochs = epochs;
        if epochs > 0 {
            b.cursor = cursor;
        }
        b
    }

    /// The next batch: inputs (d_in × size) and targets (k × size).
    fn next(&mut self, problem: &Problem<T>) -> (&[T], &[T]) {
        let (d_in, k, b) = (problem.input_dim, problem.outputs, self.size);
        if self.cursor + b > self.perm.len() {
            shuffle(&mut self.perm, &mut self.rng);
            self.cursor = 0;
            self.epochs += 1;
        }
        for (j, &i) in self.perm[self.cursor..self.cursor + b].iter().enumerate() {
            self.x[j * d_in..(j + 1) * d_in]
                .copy_from_slice(&problem.x_train[i * d_in..(i + 1) * d_in]);
            self.y[j * k..(j + 1) * k].copy_from_slice(&problem.y_train[i * k..(i + 1) * k]);
        }
        self.cursor += b;
        (&self.x, &self.y)
    }
}

/// Records the sharpness measurement of state `t`.
fn record_measurement(rec: &mut RunRecord, t: usize, m: &Lambda0) {
    rec.sharpness[t] = m.value;
    rec.hvps[t] = m.hvps as i32;
    rec.residual[t] = m.residual;
    rec.converged[t] = m.converged;
    rec.stop_reason[t] = m.stop;
}

/// The eigenvectors a measurement leaves for the next one's warm start, and the solvers'
/// memory, reused by every measurement of a run.
/// With Adam it also holds the preconditioner D = P^-½ of the measurement at hand.
struct Warm {
    hessian: Vec<Vec<f64>>,
    gauss_newton: Vec<Vec<f64>>,
    bottom: Vec<Vec<f64>>,
    plain: Vec<Vec<f64>>,
    precond: Option<Vec<f64>>,
    eig: EigenWorkspace,
}

impl Warm {
    fn new(par: Par) -> Self {
        Warm {
            hessian: Vec::new(),
            gauss_newton: Vec::new(),
            bottom: Vec::new(),
            plain: Vec::new(),
            precond: None,
            eig: EigenWorkspace::new(par),
        }
    }
}

/// The top `s.k` eigenpairs of `curvature` (preconditioned by `precond`) at `params` by
/// the block method.
#[allow(clippy::too_many_arguments)]
fn top_k<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    (ws, passes): (&mut MlpWorkspace<T>, &mut bool),
    (curvature, precond): (Curvature, Option<&[f64]>),
    start: &[Vec<f64>],
    eig: &mut EigenWorkspace,
    seed: u64,
) -> Spectrum {
    let mut hvp = measurement_operator(problem, params, ws, curvature, passes);
    let mut op = Preconditioned::new(&mut hvp, precond);
    let opts = BlockOptions {
        tol: s.tol,
        max_iter: s.max_iter * s.k,
        max_basis: lanczos_basis_vectors(params.len(), s.max_iter).max(3 * s.k),
        seed,
    };
    block_top_k_in(&mut op, s.k, start, &opts, eig)
}

/// Row `t` of a (step, eig) variable of `k` eigenvalues per step.
fn eig_row(v: &mut [f64], t: usize, k: usize, values: &[f64]) {
    for (dst, x) in v[t * k..(t + 1) * k].iter_mut().zip(values) {
        *dst = *x;
    }
}

/// One measurement at state `t`: the sharpness (by the configured method, or by the block
/// method when `s.k` > 1, whose first pair it is) unless `lambda0` gives it (t = 0), and
/// the spectra `s` asks for ([`measure_extras`]) into `rec`; every product counts in
/// `hvps`. With Adam every operator is preconditioned by `warm.precond`. `warm` passes
/// the eigenvectors on to the next measurement.
#[allow(clippy::too_many_arguments)]
fn measure_at<T: Float>(
    rec: &mut RunRecord,
    t: usize,
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    (ws, passes): (&mut MlpWorkspace<T>, &mut bool),
    warm: &mut Warm,
    lambda0: Option<&Lambda0>,
    seed: u64,
) {
    let k = s.k;
    let precond = warm.precond.take();
    let d = precond.as_deref();
    if s.operator.hessian() && k > 1 {
        let start = take_warm(s, &mut warm.hessian);
        let sp = top_k(
            s,
            problem,
            params,
            (&mut *ws, &mut *passes),
            (Curvature::Hessian, d),
            &start,
            &mut warm.eig,
            seed,
        );
        let top = Lambda0 {
            value: sp.values[0],
            hvps: sp.applications,
            residual: sp.residuals[0],
            converged: sp.converged,
            stop: Some(sp.stop),
        };
        match lambda0 {
            Some(l0) => {
                record_measurement(rec, t, l0);
                rec.hvps[t] += sp.applications as i32;
            }
            None => record_measurement(rec, t, &top),
        }
        eig_row(&mut rec.eigenvalues, t, k, &sp.values);
        eig_row(&mut rec.eig_residual, t, k, &sp.residuals);
        warm.hessian = sp.vectors;
    } else {
        let m = match lambda0 {
            Some(l0) => *l0,
            None => {
                let start = take_warm(s, &mut warm.hessian);
                let first = start.first().map(|v| &v[..]);
                let eig = &mut warm.eig;
                let wp = (&mut *ws, &mut *passes);
                let est = measure_sharpness(s, problem, params, wp, eig, first, d, seed);
                let m = Lambda0::of_estimate(&est);
                warm.hessian = vec![est.vector];
                m
            }
        };
        record_measurement(rec, t, &m);
        rec.eigenvalues[t * k] = m.value;
        rec.eig_residual[t * k] = m.residual;
    }
    measure_extras(rec, t, s, problem, params, (ws, passes), warm, d, seed);
    warm.precond = precond;
}

/// The previous measurement's vectors, moved out for the next solver's warm start (no
/// copy; it leaves its own behind), or none without `warm_start`.
fn take_warm(s: &RunSettings, v: &mut Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    if s.warm_start {
        std::mem::take(v)
    } else {
        Vec::new()
    }
}

/// The spectra of a measurement beyond the sharpness: the Gauss-Newton top k, the
/// smallest Hessian eigenvalue (both preconditioned by `d` with Adam), and with Adam's
/// `sharpness.preconditioned` the plain Hessian's top eigenvalue.
#[allow(clippy::too_many_arguments)]
fn measure_extras<T: Float>(
    rec: &mut RunRecord,
    t: usize,
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    (ws, passes): (&mut MlpWorkspace<T>, &mut bool),
    warm: &mut Warm,
    d: Option<&[f64]>,
    seed: u64,
) {
    let k = s.k;
    if s.operator.gauss_newton() {
        let start = take_warm(s, &mut warm.gauss_newton);
        let sp = top_k(
            s,
            problem,
            params,
            (&mut *ws, &mut *passes),
            (Curvature::GaussNewton, d),
            &start,
            &mut warm.eig,
            seed ^ 0x9e37,
        );
        eig_row(&mut rec.gn_eigenvalues, t, k, &sp.values);
        rec.hvps[t] += sp.applications as i32;
        warm.gauss_newton = sp.vectors;
    }
    if s.bottom {
        let mut hvp = measurement_operator(problem, params, ws, Curvature::Hessian, passes);
        let mut op = Preconditioned::new(&mut hvp, d);
        let start = take_warm(s, &mut warm.bottom);
        let opts = LanczosOptions {
            tol: s.tol,
            max_iter: s.max_iter,
            max_basis: lanczos_basis_vectors(params.len(), s.max_iter),
            seed: seed ^ 0x7f4a,
        };
        let first = start.first().map(|v| &v[..]);
        let est = lanczos_top_in(&mut Negated(&mut op), first, &opts, &mut warm.eig);
        rec.min_eigenvalue[t] = -est.value;
        rec.hvps[t] += est.applications as i32;
        warm.bottom = vec![est.vector];
    }
    if s.plain() {
        let start = take_warm(s, &mut warm.plain);
        let first = start.first().map(|v| &v[..]);
        let eig = &mut warm.eig;
        let wp = (&mut *ws, &mut *passes);
        let est = measure_sharpness(s, problem, params, wp, eig, first, None, seed ^ 0x51ab);
        rec.hessian_sharpness[t] = est.value;
        rec.hvps[t] += est.applications as i32;
        warm.plain = vec![est.vector];
    }
}

/// State 0: the training loss (above `s.divergence_loss` or not finite: diverged at 0),
/// and λ₀, the network's (shared by its runs, so the sharpness measurement after it
/// starts cold); a spectrum `s` asks for is measured here, in the run, and warms the next.
#[allow(clippy::too_many_arguments)]
fn measure_init<T: Float>(
    rec: &mut RunRecord,
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    ws: &mut MlpWorkspace<T>,
    warm: &mut Warm,
    lambda0: &Lambda0,
    seed: u64,
) {
    training_loss_at(rec, 0, s, problem, params, ws);
    if s.spectra() {
        // The training loss ran the last passes: the measurement's are run afresh.
        let wp = (ws, &mut false);
        measure_at(rec, 0, s, problem, params, wp, warm, Some(lambda0), seed);
    } else {
        record_measurement(rec, 0, lambda0);
        rec.eigenvalues[0] = lambda0.value;
        rec.eig_residual[0] = lambda0.residual;
    }
}

/// The training loss along θ₀ + α(θ_T − θ₀) at the interpolation coefficients α.
fn interpolation_losses<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    ws: &mut MlpWorkspace<T>,
    theta0: &[T],
    theta_t: &[T],
) -> Vec<f64> {
    let mut theta = theta0.to_vec();
    s.interp_alpha()
        .into_iter()
        .map(|alpha| {
            let a = T::of(alpha);
            for ((p, p0), pt) in theta.iter_mut().zip(theta0).zip(theta_t) {
                *p = *p0 + a * (*pt - *p0);
            }
            ws.loss_over(
                &theta,
                &problem.x_train,
                &problem.y_train,
                problem.input_dim,
            )
        })
        .collect()
}

/// Everything a run carries from one step to the next, as a checkpoint holds it: the
/// state after `t` steps (and after the measurement at t, if there was one). A run
/// continued from it is bit for bit the run that was not interrupted.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCheckpoint<T> {
    /// Steps made.
    pub t: usize,
    /// θ_t.
    pub params: Vec<T>,
    /// The optimizer's state.
    pub opt: OptimizerState<T>,
    /// Minibatch permutations drawn so far.
    pub epochs: u64,
    /// Position in the last permutation.
    pub cursor: usize,
    /// The record so far (steps after t unmeasured).
    pub record: RunRecord,
    /// The eigenvectors the next measurement warm-starts from: Hessian, Gauss-Newton,
    /// bottom, plain Hessian (Adam).
    pub warm: [Vec<Vec<f64>>; 4],
    /// Wall-clock seconds the run has taken so far.
    pub seconds: f64,
}

/// How a run checkpoints: every `every` steps (0: never) before its last it hands its
/// state to `save`, which answers whether the run stops there (a drain: the run ends
/// [`RunEnd::Interrupted`] and continues later from that checkpoint).
pub struct Checkpoints<'a, T> {
    /// Steps between checkpoints (0: none).
    pub every: usize,
    /// The checkpoint to continue from (`None`: start at θ₀).
    pub resume: Option<RunCheckpoint<T>>,
    /// Saves a checkpoint; `true` stops the run after it.
    pub save: &'a mut dyn FnMut(&RunCheckpoint<T>) -> bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    /// Done, diverged or failed: its record and timing.
    Finished(Box<RunRecord>, RunTiming),
    /// Stopped after a checkpoint, at this step.
    Interrupted(usize),
}

/// Trains one (c, depth, width, seed, sgd_seed) run from η = c/λ₀ with the λ₀ of its
/// network (from [`lambda0`]: its value is λ₀ and its HVP count, residual, convergence
/// and stop reason are recorded at step 0).
///
/// State t (t = 0..T) is after t SGD steps. The loss on the training set and λ_t are
/// recorded at t = 0 and every `every` steps (and at T). Divergence: the minibatch loss
/// at θ_t, or the measured training loss at θ_t, above `divergence_loss` or not finite;
/// the run then stops with `diverged_at = t`, and later entries stay NaN. The first
/// measurement after initialization starts Lanczos from a seeded random vector (so the
/// result does not depend on which rank computed λ₀); later ones warm-start from the
/// previous eigenvector when `warm_start`.
pub fn train_run<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    c: f64,
    seed: u64,
    sgd_seed: u64,
    lambda0_est: &Lambda0,
) -> (RunRecord, RunTiming) {
    let mut never = |_: &RunCheckpoint<T>| false;
    let none = Checkpoints {
        every: 0,
        resume: None,
        save: &mut never,
    };
    match train_run_checkpointed(s, problem, (c, seed, sgd_seed), lambda0_est, none) {
        RunEnd::Finished(rec, timing) => (*rec, timing),
        RunEnd::Interrupted(_) => unreachable!("a run without checkpoints is never interrupted"),
    }
}

/// [`train_run`] that checkpoints itself as `ckpt` says, and continues from
/// `ckpt.resume` when given (a checkpoint of this same run).
pub fn train_run_checkpointed<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    (c, seed, sgd_seed): (f64, u64, u64),
    lambda0_est: &Lambda0,
    ckpt: Checkpoints<'_, T>,
) -> RunEnd {
    let started = Instant::now();
    let mut timing = RunTiming::default();
    let steps = s.steps;
    let lambda0 = lambda0_est.value;
    let eta = c / lambda0;
    let mut rec =
        RunRecord::unmeasured_spectrum(lambda0, eta, RunStatus::Done, steps, s.interp_points, s.k);
    if !(lambda0.is_finite() && lambda0 > 0.0) {
        rec.status = RunStatus::Failed;
        rec.message = format!("sharpness at initialization is {lambda0}: η = c/λ₀ is undefined");
        return RunEnd::Finished(Box::new(rec), timing);
    }
    let spec = &s.spec;
    let b = s.batch_size.min(problem.n_train());
    let theta0: Vec<T> = init_params(spec, NetStream::Init.seed(seed, s.depth, s.width));
    let mut grad = vec![T::of(0.0); theta0.len()];
    let mut ws_batch = MlpWorkspace::<T>::new(spec, b, s.par);
    let mut ws_meas = MlpWorkspace::<T>::new(spec, problem.n_meas(), s.par);
    let sgd_stream = NetStream::Sgd.seed(sgd_seed, s.depth, s.width);
    let lanczos_seed = NetStream::Lanczos.seed(seed, s.depth, s.width);
    let mut warm = Warm::new(s.par);
    let eta_t = T::of(eta);
    let diverged = |l: f64| !l.is_finite() || l > s.divergence_loss;

    let (mut params, mut opt, mut batches, mut t, earlier) = match ckpt.resume {
        Some(ck) => {
            rec = ck.record;
            let [h, g, lo, pl] = ck.warm;
            (warm.hessian, warm.gauss_newton, warm.bottom, warm.plain) = (h, g, lo, pl);
            let batches = Minibatches::restored(problem, b, sgd_stream, ck.epochs, ck.cursor);
            (ck.params, ck.opt, batches, ck.t, ck.seconds)
        }
        None => {
            let (opt, precond0) = initial_state(s, problem, &theta0, &mut ws_meas);
            warm.precond = precond0;
            let t0 = Instant::now();
            let (ws, w0, seed0) = (&mut ws_meas, &mut warm, lanczos_seed.wrapping_sub(1));
            measure_init(&mut rec, s, problem, &theta0, ws, w0, lambda0_est, seed0);
            timing.measure_s += t0.elapsed().as_secs_f64();
            let fresh = Minibatches::new(problem, b, sgd_stream);
            (theta0.clone(), opt, fresh, 0, 0.0)
        }
    };

    while rec.status == RunStatus::Done && t < steps {
        let t1 = Instant::now();
        let (xb, yb) = batches.next(problem);
        let batch_loss = ws_batch.loss_and_grad(&params, xb, yb, b, &mut grad);
        if diverged(batch_loss) {
            rec.status = RunStatus::Diverged;
            rec.diverged_at = Some(t as u32);
            timing.train_s += t1.elapsed().as_secs_f64();
            break;
        }
        opt.step(&mut params, &grad, step_size(s, eta, t, eta_t));
        t += 1;
        timing.train_s += t1.elapsed().as_secs_f64();

        if t % s.every == 0 || t == steps {
            let t2 = Instant::now();
            if s.protocol == SharpnessProtocol::AuthorsNotebook {
                let ws = (&mut ws_meas, &mut ws_batch);
                measure_notebook(&mut rec, t, s, problem, &params, ws, &mut batches, seed);
            } else {
                let (state, ws) = ((&params[..], &theta0[..], &opt), &mut ws_meas);
                measure_step(&mut rec, t, s, problem, state, ws, &mut warm, lanczos_seed);
            }
            timing.measure_s += t2.elapsed().as_secs_f64();
            if rec.status == RunStatus::Diverged {
                break;
            }
        }
        if ckpt.every > 0 && t % ckpt.every == 0 && t < steps {
            let seconds = earlier + started.elapsed().as_secs_f64();
            let state = snapshot(t, &params, &opt, &batches, &rec, &mut warm, seconds);
            if (ckpt.save)(&state) {
                return RunEnd::Interrupted(t);
            }
            [warm.hessian, warm.gauss_newton, warm.bottom, warm.plain] = state.warm;
        }
    }

    if rec.status == RunStatus::Done && s.interp_points > 0 {
        let t3 = Instant::now();
        rec.interp_loss = interpolation_losses(s, problem, &mut ws_meas, &theta0, &params);
        timing.measure_s += t3.elapsed().as_secs_f64();
    }
    rec.seconds = earlier + started.elapsed().as_secs_f64();
    RunEnd::Finished(Box::new(rec), timing)
}

/// Records state t's loss on the training set; above `s.divergence_loss` or not finite
/// the run has diverged at t (status and `diverged_at` set, and `true` returned).
fn training_loss_at<T: Float>(
    rec: &mut RunRecord,
    t: usize,
    s: &RunSettings,
    problem: &Problem<T>,
    params: &[T],
    ws: &mut MlpWorkspace<T>,
) -> bool {
    let loss = ws.loss_over(
        params,
        &problem.x_train,
        &problem.y_train,
        problem.input_dim,
    );
    rec.loss[t] = loss;
    let diverged = !loss.is_finite() || loss > s.divergence_loss;
    if diverged {
        rec.status = RunStatus::Diverged;
        rec.diverged_at = Some(t as u32);
    }
    diverged
}

/// State t's training loss (divergence above `s.divergence_loss` ends the run: status and
/// `diverged_at` set) and, unless it diverged, its measurement — with Adam's
/// preconditioner of the state `opt` at the measurement-set gradient. A state that is θ₀
/// bit for bit (after a warmup's η₀ = 0) has step 0's spectrum, with no products: measured
/// again it would differ from λ₀ by the solver's tolerance, and λ_t > λ₀ would read as a
/// sharpness catapult at every c. (Not with Adam, whose preconditioner has moved.)
#[allow(clippy::too_many_arguments)]
fn measure_step<T: Float>(
    rec: &mut RunRecord,
    t: usize,
    s: &RunSettings,
    problem: &Problem<T>,
    (params, theta0, opt): (&[T], &[T], &OptimizerState<T>),
    ws: &mut MlpWorkspace<T>,
    warm: &mut Warm,
    lanczos_seed: u64,
) {
    if training_loss_at(rec, t, s, problem, params, ws) {
        return;
    }
    if !matches!(s.rule, Rule::Adam(_)) && params == theta0 {
        repeat_initial_measurement(rec, t, s.k);
        return;
    }
    // Adam's gradient runs the measurement's passes; its operators reuse them.
    let mut passes = false;
    if matches!(s.rule, Rule::Adam(_)) {
        let g = measurement_gradient(problem, params, ws);
        warm.precond = opt.preconditioner(&g);
        passes = true;
    }
    let seed = lanczos_seed.wrapping_add(t as u64);
    measure_at(
        rec,
        t,
        s,
        problem,
        params,
        (ws, &mut passes),
        warm,
        None,
        seed,
    );
}

/// Step 0's measurement recorded again at state t (the same parameters), with 0 products.
fn repeat_initial_measurement(rec: &mut RunRecord, t: usize, k: usize) {
    rec.sharpness[t] = rec.sharpness[0];
    rec.hvps[t] = 0;
    rec.residual[t] = rec.residual[0];
    rec.converged[t] = rec.converged[0];
    rec.stop_reason[t] = rec.stop_reason[0];
    rec.min_eigenvalue[t] = rec.min_eigenvalue[0];
    rec.hessian_sharpness[t] = rec.hessian_sharpness[0];
    for v in [
        &mut rec.eigenvalues,
        &mut rec.eig_residual,
        &mut rec.gn_eigenvalues,
    ] {
        v.copy_within(0..k, t * k);
    }
}

/// The checkpoint of the state after step `t` (the warm vectors move into it and back).
fn snapshot<T: Float>(
    t: usize,
    params: &[T],
    opt: &OptimizerState<T>,
    batches: &Minibatches<T>,
    rec: &RunRecord,
    warm: &mut Warm,
    seconds: f64,
) -> RunCheckpoint<T> {
    RunCheckpoint {
        t,
        params: params.to_vec(),
        opt: opt.clone(),
        epochs: batches.epochs,
        cursor: batches.cursor,
        record: rec.clone(),
        warm: [
            std::mem::take(&mut warm.hessian),
            std::mem::take(&mut warm.gauss_newton),
            std::mem::take(&mut warm.bottom),
            std::mem::take(&mut warm.plain),
        ],
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let cfg = Config::from_toml_str(text).expect("test config parses");
        cfg.validate().expect("test config is valid");
        cfg
    }

    fn run_all<T: Float>(cfg: &Config, depth: u32, width: u32, cs: &[f64]) -> Vec<RunRecord> {
        let problem = Problem::<T>::from_config(cfg).unwrap();
        let s = RunSettings::new(cfg, &problem, depth, width, Par::Seq);
        let seed = cfg.train.seeds[0];
        let l0 = lambda0(&s, &problem, seed);
        cs.iter()
            .map(|&c| train_run(&s, &problem, c, seed, seed, &l0).0)
            .collect()
    }

    const FMNIST_SMALL: &str = r#"
        [data]
        n_train = 512
        [model]
        depth = [3]
        width = [32]
        [train]
        batch_size = 128
        steps = 20
        seeds = [7]
        [sharpness]
        measure_n = 256
        tol = 1e-4
        [grid]
        c = [1.0]
    "#;

    #[test]
    fn same_seed_is_bit_identical_other_seed_differs() {
        let cfg = config(FMNIST_SMALL);
        let a = run_all::<f32>(&cfg, 3, 32, &[2.0]);
        let b = run_all::<f32>(&cfg, 3, 32, &[2.0]);
        assert_eq!(
            a[0].loss.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b[0].loss.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(
            a[0].sharpness
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            b[0].sharpness
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        );
        let mut other = cfg.clone();
        other.train.seeds = vec![8];
        let c = run_all::<f32>(&other, 3, 32, &[2.0]);
        assert_ne!(a[0].loss, c[0].loss);
        assert_ne!(a[0].lambda0, c[0].lambda0);
        // another SGD order alone changes the trajectory but not λ₀
        let problem = Problem::<f32>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 3, 32, Par::Seq);
        let l0 = lambda0(&s, &problem, 7);
        let (d, _) = train_run(&s, &problem, 2.0, 7, 99, &l0);
        assert_eq!(d.lambda0, a[0].lambda0);
        assert_ne!(d.loss[5], a[0].loss[5]);
    }

    #[test]
    fn uv_model_phases() {
        let cfg = config(
            r#"
            [model]
            kind = "uv"
            width = [4096]
            [train]
            steps = 200
            seeds = [3]
            precision = "f64"
            [sharpness]
            tol = 1e-8
            every = 10
            [grid]
            c = [1.9, 2.3, 3.7, 4.3]
        "#,
        );
        let runs = run_all::<f64>(&cfg, 2, 4096, &cfg.c_values());
        let rises = |r: &RunRecord| r.loss[1..].iter().any(|l| *l > r.loss[0]);
        let (lazy, cat, cat2, div) = (&runs[0], &runs[1], &runs[2], &runs[3]);
        assert_eq!(lazy.status, RunStatus::Done);
        assert!(
            !rises(lazy),
            "c = 1.9 must not catapult: {:?}",
            &lazy.loss[..5]
        );
        assert!(lazy.loss[200] < 1e-6 * lazy.loss[0]);
        assert_eq!(cat.status, RunStatus::Done);
        assert!(rises(cat), "c = 2.3 must catapult");
        assert!(
            cat.sharpness[200] < cat.sharpness[0],
            "catapult lowers the sharpness"
        );
        assert_eq!(cat2.status, RunStatus::Done);
        assert!(rises(cat2), "c = 3.7 must catapult");
        assert!(
            cat2.loss[200] < 1e-3 * cat2.loss[0],
            "c = 3.7 converges after the catapult"
        );
        assert!(
            cat2.sharpness[200] * cat2.eta < 2.0,
            "ends in a region where GD is stable"
        );
        assert_eq!(div.status, RunStatus::Diverged, "c = 4.3 must diverge");
        assert!(div.diverged_at.unwrap() > 0);
    }

    #[test]
    fn fashion_mnist_trains_at_c1_and_diverges_at_c64() {
        let cfg = config(FMNIST_SMALL);
        let runs = run_all::<f32>(&cfg, 3, 32, &[1.0, 64.0]);
        let (ok, bad) = (&runs[0], &runs[1]);
        assert_eq!(ok.status, RunStatus::Done);
        assert!(
            ok.loss[20] < ok.loss[0],
            "loss {} -> {}",
            ok.loss[0],
            ok.loss[20]
        );
        assert!(ok.lambda0 > 0.0 && ok.hvps[1] > 0 && ok.residual[1] <= 1e-4);
        assert_eq!(bad.status, RunStatus::Diverged);
        let t = bad.diverged_at.expect("divergence step recorded") as usize;
        assert!(t < 20);
        assert!(bad.loss[t + 1..].iter().all(|l| l.is_nan()));
    }

    #[test]
    fn fashion_mnist_trains_on_cross_entropy() {
        let text = FMNIST_SMALL.replace("width = [32]", "width = [32]\nloss = \"cross-entropy\"");
        let cfg = config(&text);
        let ce = &run_all::<f32>(&cfg, 3, 32, &[2.0, 256.0])[..];
        let mse = &run_all::<f32>(&config(FMNIST_SMALL), 3, 32, &[2.0])[0];
        let ok = &ce[0];
        assert_eq!(ok.status, RunStatus::Done);
        // At initialization the logits are O(1): the loss is near log 10.
        assert!((ok.loss[0] - 10f64.ln()).abs() < 1.0, "{}", ok.loss[0]);
        assert!(
            ok.loss[20] < 0.8 * ok.loss[0],
            "{} -> {}",
            ok.loss[0],
            ok.loss[20]
        );
        assert!(ok.lambda0 > 0.0 && ok.residual[1] <= 1e-4);
        assert!(
            (ok.lambda0 - mse.lambda0).abs() > 1e-3 * mse.lambda0,
            "not the MSE's λ₀"
        );
        // Far above the edge of stability it diverges (the loss grows without bound).
        assert_eq!(ce[1].status, RunStatus::Diverged, "{:?}", ce[1].loss);
    }

    #[test]
    fn trajectories_are_loss_scale_invariant() {
        let base = config(
            &FMNIST_SMALL
                .replace("steps = 20", "steps = 6\nprecision = \"f64\"")
                .replace("tol = 1e-4", "tol = 1e-10\nmax_iter = 300"),
        );
        let mut scaled = base.clone();
        scaled.model.net.loss_scale = 13.0;
        let a = run_all::<f64>(&base, 3, 32, &[3.0]);
        let b = run_all::<f64>(&scaled, 3, 32, &[3.0]);
        assert!((b[0].lambda0 / a[0].lambda0 - 13.0).abs() < 1e-8);
        for t in 0..=6 {
            let (la, lb) = (a[0].loss[t] / a[0].loss[0], b[0].loss[t] / b[0].loss[0]);
            let (sa, sb) = (
                a[0].sharpness[t] / a[0].lambda0,
                b[0].sharpness[t] / b[0].lambda0,
            );
            assert!(
                (la - lb).abs() < 1e-8 * la.abs(),
                "step {t}: L ratio {la} vs {lb}"
            );
            assert!(
                (sa - sb).abs() < 1e-7 * sa.abs(),
                "step {t}: λ ratio {sa} vs {sb}"
            );
        }
    }

    #[test]
    fn threads_change_only_the_rounding() {
        // Large enough (P ≈ 55 k, activations 64 × 512) that the eigensolvers' vector
        // operations and the activation passes really split over the threads.
        let text = FMNIST_SMALL
            .replace("width = [32]", "width = [64]")
            .replace("measure_n = 256", "measure_n = 512")
            .replace("steps = 20", "steps = 6\nprecision = \"f64\"");
        let cfg = config(&text);
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let run = |par: Par| {
            let s = RunSettings {
                k: 2,
                bottom: true,
                ..RunSettings::new(&cfg, &problem, 3, 64, par)
            };
            let l0 = lambda0(&s, &problem, 7);
            train_run(&s, &problem, 4.0, 7, 7, &l0).0
        };
        let (one, two) = (run(Par::Seq), run(Par::rayon(2)));
        assert_eq!(one.status, RunStatus::Done);
        let close = |a: &[f64], b: &[f64], what: &str| {
            for (t, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-6 * x.abs().max(1e-3),
                    "{what}[{t}]: {x} vs {y}"
                );
            }
        };
        close(&one.loss, &two.loss, "loss");
        close(&one.sharpness, &two.sharpness, "sharpness");
        close(&one.eigenvalues, &two.eigenvalues, "eigenvalues");
        close(&one.min_eigenvalue, &two.min_eigenvalue, "min_eigenvalue");
        assert_eq!(
            one.lambda0,
            run(Par::Seq).lambda0,
            "one thread is bit-reproducible"
        );
    }

    /// A one-layer linear network trained full-batch on MSE: gradient descent on a
    /// quadratic whose Hessian is the input second moment, λ₀ its top eigenvalue.
    const QUADRATIC: &str = r#"
        [data]
        n_train = 256
        [model]
        depth = [1]
        width = [8]
        activation = "linear"
        [train]
        batch_size = 256
        steps = 150
        seeds = [3]
        precision = "f64"
        [sharpness]
        measure_n = 256
        tol = 1e-8
        every = 50
        [grid]
        c = [1.0]
    "#;

    #[test]
    fn heavy_ball_on_a_quadratic_trains_below_two_one_plus_beta_and_diverges_above() {
        for beta in [0.5, 0.9] {
            let text = QUADRATIC.replace(
                "seeds = [3]",
                &format!("seeds = [3]\noptimizer = \"momentum\"\nmomentum = {beta}"),
            );
            let cfg = config(&text);
            let edge = 2.0 * (1.0 + beta);
            let runs = run_all::<f64>(&cfg, 1, 8, &[0.97 * edge, 1.03 * edge]);
            let (below, above) = (&runs[0], &runs[1]);
            assert_eq!(below.status, RunStatus::Done, "β = {beta}: c = 0.97·2(1+β)");
            assert!(
                below.loss[150] < below.loss[0],
                "β = {beta}: {:?}",
                below.loss
            );
            assert_eq!(
                above.status,
                RunStatus::Diverged,
                "β = {beta}: c = 1.03·2(1+β)"
            );
            // Plain SGD at the same c diverges: the edge is 2 without momentum.
            let sgd = run_all::<f64>(&config(QUADRATIC), 1, 8, &[0.97 * edge]);
            assert_eq!(sgd[0].status, RunStatus::Diverged, "SGD above c = 2");
        }
        let sgd = run_all::<f64>(&config(QUADRATIC), 1, 8, &[1.94, 2.06]);
        assert_eq!(
            (sgd[0].status, sgd[1].status),
            (RunStatus::Done, RunStatus::Diverged)
        );
    }

    #[test]
    fn warmup_ramps_the_learning_rate_linearly() {
        assert_eq!(learning_rate(2.0, 0, 4), 0.0);
        assert_eq!(learning_rate(2.0, 1, 4), 0.5);
        assert_eq!(learning_rate(2.0, 3, 4), 1.5);
        assert_eq!(learning_rate(2.0, 4, 4), 2.0);
        assert_eq!(learning_rate(2.0, 0, 0), 2.0);
        // On the quadratic: η₀ = 0 leaves θ where it is, and c = 3 (above the edge 2)
        // still diverges once the warmup is over, but not before: while ηₜλ₀ < 2 the top
        // direction contracts.
        let text = QUADRATIC
            .replace("seeds = [3]", "seeds = [3]\nwarmup_steps = 60")
            .replace("every = 50", "every = 1");
        let warm = &run_all::<f64>(&config(&text), 1, 8, &[3.0])[0];
        assert_eq!(warm.loss[1].to_bits(), warm.loss[0].to_bits(), "η₀ = 0");
        // The same state has the same sharpness: step 0's, not a second estimate of it
        // (which could exceed λ₀ by the tolerance and read as a sharpness catapult).
        assert_eq!(warm.sharpness[1].to_bits(), warm.sharpness[0].to_bits());
        assert_eq!(warm.hvps[1], 0);
        assert!(warm.hvps[2] > 0);
        let k2 = config(&text.replace("every = 1", "every = 1\nk = 2\nbottom = true"));
        let spectra = &run_all::<f64>(&k2, 1, 8, &[1.0])[0];
        assert_eq!(&spectra.eigenvalues[2..4], &spectra.eigenvalues[0..2]);
        assert_eq!(spectra.min_eigenvalue[1], spectra.min_eigenvalue[0]);
        assert_eq!(warm.status, RunStatus::Diverged);
        let at = warm.diverged_at.expect("diverged") as usize;
        assert!(at > 40, "diverges after η·λ₀ passes 2 at step 40 (at {at})");
        assert!(warm.loss[30] < warm.loss[1], "{:?}", &warm.loss[..31]);
        let cold = &run_all::<f64>(&config(QUADRATIC), 1, 8, &[3.0])[0];
        assert!(cold.diverged_at.unwrap() < at as u32);
    }

    #[test]
    fn warm_started_tracking_matches_cold_lanczos() {
        let text = FMNIST_SMALL.replace("steps = 20", "steps = 8\nprecision = \"f64\"");
        let warm = config(&text);
        let mut cold = warm.clone();
        cold.sharpness.warm_start = false;
        let w = run_all::<f64>(&warm, 3, 32, &[4.0]);
        let c = run_all::<f64>(&cold, 3, 32, &[4.0]);
        let tol = warm.sharpness.tol;
        for t in 1..=8 {
            let (a, b) = (w[0].sharpness[t], c[0].sharpness[t]);
            assert!(((a - b) / b).abs() <= tol, "step {t}: warm {a} vs cold {b}");
        }
        let hw: i32 = w[0].hvps[2..].iter().sum();
        let hc: i32 = c[0].hvps[2..].iter().sum();
        assert!(hw < hc, "warm starts use fewer HVPs ({hw} vs {hc})");
    }
}

#[cfg(test)]
mod adam_tests {
    use super::*;
    use crate::hessian::{dense_eigenvalues, dense_matrix, DenseOperator};

    fn config(text: &str) -> Config {
        let cfg = Config::from_toml_str(text).expect("test config parses");
        cfg.validate().expect("test config is valid");
        cfg
    }

    const TINY: &str = r#"
        [data]
        dataset = "synthetic"
        synthetic_input_dim = 6
        n_train = 32
        [model]
        depth = [2]
        width = [5]
        activation = "tanh"
        [train]
        batch_size = 32
        steps = 20
        seeds = [4]
        precision = "f64"
        optimizer = "adam"
        [sharpness]
        measure_n = 32
        tol = 1e-10
        max_iter = 200
        [grid]
        c = [1.0]
    "#;

    /// The largest eigenvalue of D H D with H formed densely at `params`.
    fn dense_preconditioned_top(
        s: &RunSettings,
        problem: &Problem<f64>,
        params: &[f64],
        d: &[f64],
    ) -> f64 {
        let mut ws = MlpWorkspace::<f64>::new(&s.spec, problem.n_meas(), Par::Seq);
        let m = problem.n_meas();
        let mut op = HvpOperator::new(params, &problem.x_meas, &problem.y_meas, m, &mut ws);
        let h = dense_matrix(&mut op);
        let n = d.len();
        let dhd: Vec<f64> = (0..n * n)
            .map(|idx| {
                let (i, j) = (idx % n, idx / n);
                d[i] * h[(i, j)] * d[j]
            })
            .collect();
        let eigs = dense_eigenvalues(&mut DenseOperator::new(n, dhd));
        eigs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    #[test]
    fn adam_lambda0_is_the_top_eigenvalue_of_gi_adams_preconditioned_hessian() {
        let cfg = config(TINY);
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 2, 5, Par::Seq);
        let seed = 4;
        let l0 = lambda0(&s, &problem, seed);
        // The oracle: v₀ = g₀² from the measurement-set gradient at θ₀, and
        // P₀ = (1 − β₁)(|g₀|/√(1 − β₂) + ε), by hand.
        let params: Vec<f64> = init_params(&s.spec, NetStream::Init.seed(seed, 2, 5));
        let mut ws = MlpWorkspace::<f64>::new(&s.spec, problem.n_meas(), Par::Seq);
        let g0 = measurement_gradient(&problem, &params, &mut ws);
        let d: Vec<f64> = g0
            .iter()
            .map(|g| 1.0 / (0.1 * (g.abs() / 0.001f64.sqrt() + 1e-8)).sqrt())
            .collect();
        let want = dense_preconditioned_top(&s, &problem, &params, &d);
        assert!(
            ((l0.value - want) / want).abs() < 1e-8,
            "λ₀ {} vs dense {want}",
            l0.value
        );
        // It is not the plain sharpness.
        let mut sgd = cfg.clone();
        sgd.train.optimizer = crate::config::Optimizer::Sgd;
        let plain = lambda0(
            &RunSettings::new(&sgd, &problem, 2, 5, Par::Seq),
            &problem,
            seed,
        );
        assert!((plain.value - l0.value).abs() > 0.1 * plain.value);
    }

    #[test]
    fn adam_runs_track_the_preconditioned_sharpness_and_the_plain_one_on_request() {
        let cfg = config(&TINY.replace("tol = 1e-10", "tol = 1e-10\npreconditioned = true"));
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 2, 5, Par::Seq);
        let l0 = lambda0(&s, &problem, 4);
        let (rec, _) = train_run(&s, &problem, 8.0, 4, 4, &l0);
        assert_eq!(rec.status, RunStatus::Done);
        assert_eq!(rec.sharpness[0], l0.value);
        assert!(rec.loss[20] < rec.loss[0], "{:?}", rec.loss);
        // Step 0's plain sharpness is the SGD λ₀; every step has both.
        let mut sgd = cfg.clone();
        sgd.train.optimizer = crate::config::Optimizer::Sgd;
        sgd.sharpness.preconditioned = false;
        let plain0 = lambda0(
            &RunSettings::new(&sgd, &problem, 2, 5, Par::Seq),
            &problem,
            4,
        );
        let h0 = rec.hessian_sharpness[0];
        assert!(
            ((h0 - plain0.value) / h0).abs() < 1e-8,
            "{h0} vs {}",
            plain0.value
        );
        assert!(rec.hessian_sharpness.iter().all(|h| h.is_finite()));
        assert!(rec.sharpness.iter().all(|h| h.is_finite()));
        // Without the plain measurement the preconditioned track is the same, bit for bit.
        let without = config(TINY);
        let s2 = RunSettings::new(&without, &problem, 2, 5, Par::Seq);
        let (rec2, _) = train_run(&s2, &problem, 8.0, 4, 4, &l0);
        assert_eq!(
            rec2.sharpness, rec.sharpness,
            "the plain measurement changes nothing"
        );
        assert!(rec2.hessian_sharpness.iter().all(|h| h.is_nan()));
        assert!(rec.hvps[5] > rec2.hvps[5]);
    }

    /// An update by hand: (step t, θ, g, η).
    type Update<'a> = &'a dyn Fn(usize, &mut [f64], &[f64], f64);

    /// Two steps of `rule` on the tiny net, by hand: the run's minibatches and gradients,
    /// the update written out here; returns the loss on the training set after each.
    fn by_hand(cfg: &Config, c: f64, update: Update<'_>) -> Vec<f64> {
        let problem = Problem::<f64>::from_config(cfg).unwrap();
        let s = RunSettings::new(cfg, &problem, 2, 5, Par::Seq);
        let l0 = lambda0(&s, &problem, 4);
        let eta = c / l0.value;
        let mut theta: Vec<f64> = init_params(&s.spec, NetStream::Init.seed(4, 2, 5));
        let mut batches = Minibatches::new(&problem, 32, NetStream::Sgd.seed(4, 2, 5));
        let mut ws = MlpWorkspace::<f64>::new(&s.spec, 32, Par::Seq);
        let mut g = vec![0.0; theta.len()];
        (1..=2)
            .map(|t| {
                let (xb, yb) = batches.next(&problem);
                ws.loss_and_grad(&theta, xb, yb, 32, &mut g);
                update(t, &mut theta, &g, eta);
                ws.loss_over(&theta, &problem.x_train, &problem.y_train, 6)
            })
            .collect()
    }

    #[test]
    fn adam_and_heavy_ball_steps_on_a_tiny_net_are_the_hand_computed_updates() {
        let steps2 = TINY.replace("steps = 20", "steps = 2");
        // Adam: v₀ = g₀² from the measurement-set gradient at θ₀ (here the whole set).
        let adam = config(&steps2);
        let problem = Problem::<f64>::from_config(&adam).unwrap();
        let s = RunSettings::new(&adam, &problem, 2, 5, Par::Seq);
        let theta0: Vec<f64> = init_params(&s.spec, NetStream::Init.seed(4, 2, 5));
        let mut ws = MlpWorkspace::<f64>::new(&s.spec, 32, Par::Seq);
        let g0 = measurement_gradient(&problem, &theta0, &mut ws);
        let state = std::cell::RefCell::new((
            vec![0.0; g0.len()],
            g0.iter().map(|g| g * g).collect::<Vec<f64>>(),
        ));
        let want = by_hand(&adam, 8.0, &|t, theta, g, eta| {
            let (m, v) = &mut *state.borrow_mut();
            for i in 0..theta.len() {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                let m_hat = m[i] / (1.0 - 0.9f64.powi(t as i32));
                let v_hat = v[i] / (1.0 - 0.999f64.powi(t as i32));
                theta[i] -= eta * m_hat / (v_hat.sqrt() + 1e-8);
            }
        });
        let l0 = lambda0(&s, &problem, 4);
        let (rec, _) = train_run(&s, &problem, 8.0, 4, 4, &l0);
        for t in 1..=2 {
            assert!(
                (rec.loss[t] - want[t - 1]).abs() <= 1e-12 * want[t - 1],
                "Adam step {t}"
            );
        }
        // Heavy ball β = 0.5: v ← βv + g, θ ← θ − ηv.
        let hb = config(&steps2.replace(
            "optimizer = \"adam\"",
            "optimizer = \"momentum\"\nmomentum = 0.5",
        ));
        let vel = std::cell::RefCell::new(vec![0.0; theta0.len()]);
        let want = by_hand(&hb, 1.5, &|_, theta, g, eta| {
            let v = &mut *vel.borrow_mut();
            for i in 0..theta.len() {
                v[i] = 0.5 * v[i] + g[i];
                theta[i] -= eta * v[i];
            }
        });
        let s = RunSettings::new(&hb, &problem, 2, 5, Par::Seq);
        let l0 = lambda0(&s, &problem, 4);
        let (rec, _) = train_run(&s, &problem, 1.5, 4, 4, &l0);
        for t in 1..=2 {
            assert!(
                (rec.loss[t] - want[t - 1]).abs() <= 1e-12 * want[t - 1],
                "heavy ball step {t}"
            );
        }
    }

    #[test]
    fn full_batch_adam_settles_at_its_edge_of_stability() {
        // Cohen et al. 2022: full-batch Adam's preconditioned sharpness equilibrates at
        // (2 + 2β₁)/((1 − β₁)η) = 38/η for β₁ = 0.9.
        let cfg = config(
            r#"
            [data]
            n_train = 128
            [model]
            depth = [3]
            width = [32]
            activation = "tanh"
            [train]
            batch_size = 128
            steps = 1500
            seeds = [1]
            precision = "f64"
            optimizer = "adam"
            [sharpness]
            measure_n = 128
            every = 50
            [grid]
            c = [256.0]
        "#,
        );
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 3, 32, Par::Seq);
        let l0 = lambda0(&s, &problem, 1);
        let (rec, _) = train_run(&s, &problem, 256.0, 1, 1, &l0);
        assert_eq!(rec.status, RunStatus::Done);
        let mut plateau: Vec<f64> = (800..=1500)
            .step_by(50)
            .map(|t| rec.sharpness[t] * rec.eta)
            .collect();
        plateau.sort_by(f64::total_cmp);
        let median = plateau[plateau.len() / 2];
        assert!((35.0..=40.5).contains(&median), "η·λᴾ {plateau:?}");
        assert!(plateau.iter().all(|x| *x < 42.0), "η·λᴾ {plateau:?}");
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;
    use crate::record::TaskKey;
    use crate::store::checkpoint;

    const RUN: &str = r#"
        [data]
        n_train = 96
        [model]
        depth = [3]
        width = [16]
        [train]
        batch_size = 40
        steps = 13
        seeds = [2]
        [sharpness]
        measure_n = 64
        every = 3
        [grid]
        c = [1.0]
    "#;

    /// Every variable of `a` and `b`, bit for bit, but the wall-clock seconds.
    fn same(a: &RunRecord, b: &RunRecord) -> bool {
        let (mut a, mut b) = (a.clone(), b.clone());
        (a.seconds, b.seconds) = (0.0, 0.0);
        let enc = |r: &RunRecord| {
            let mut w = crate::record::codec::ByteWriter::default();
            w.record(r);
            w.0
        };
        enc(&a) == enc(&b)
    }

    /// Runs `text` at c uninterrupted, then with a checkpoint every 4 steps, and continues
    /// from each checkpoint (through the file format): every continuation is the
    /// uninterrupted run, bit for bit.
    fn check<T: Float>(text: &str, c: f64) {
        let cfg = Config::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        let problem = Problem::<T>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 3, 16, Par::Seq);
        let l0 = lambda0(&s, &problem, 2);
        let (whole, _) = train_run(&s, &problem, c, 2, 2, &l0);
        let key = TaskKey {
            c,
            depth: 3,
            width: 16,
            seed: 2,
            sgd_seed: 2,
            axis_point: 0,
        };
        let mut saved: Vec<Vec<u8>> = Vec::new();
        let mut save = |ck: &RunCheckpoint<T>| {
            saved.push(checkpoint::encode("h", &key, ck));
            false
        };
        let ckpt = Checkpoints {
            every: 4,
            resume: None,
            save: &mut save,
        };
        let RunEnd::Finished(with, _) = train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt)
        else {
            panic!("not interrupted")
        };
        assert!(same(&with, &whole), "checkpointing changes the run");
        assert_eq!(saved.len(), 3, "checkpoints at 4, 8, 12");
        for bytes in &saved {
            let ck: RunCheckpoint<T> = checkpoint::decode(bytes, "h", &key, s.rule).unwrap();
            let at = ck.t;
            let mut never = |_: &RunCheckpoint<T>| false;
            let ckpt = Checkpoints {
                every: 4,
                resume: Some(ck),
                save: &mut never,
            };
            let RunEnd::Finished(rest, _) =
                train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt)
            else {
                panic!("not interrupted")
            };
            assert!(
                same(&rest, &whole),
                "{text}: resumed at {at}: {rest:?}\nvs {whole:?}"
            );
        }
        // A save that answers "stop" interrupts the run there.
        let mut stop = |_: &RunCheckpoint<T>| true;
        let ckpt = Checkpoints {
            every: 4,
            resume: None,
            save: &mut stop,
        };
        let end = train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt);
        assert_eq!(end, RunEnd::Interrupted(4));
    }

    #[test]
    fn a_run_continued_from_any_checkpoint_is_the_uninterrupted_run_bitwise() {
        check::<f32>(RUN, 2.0);
        check::<f64>(RUN, 2.0);
        let momentum = RUN.replace(
            "seeds = [2]",
            "seeds = [2]\noptimizer = \"momentum\"\nmomentum = 0.9\nwarmup_steps = 5",
        );
        check::<f32>(&momentum, 1.5);
        let adam = RUN
            .replace("seeds = [2]", "seeds = [2]\noptimizer = \"adam\"")
            .replace("every = 3", "every = 3\npreconditioned = true");
        check::<f32>(&adam, 8.0);
        let spectra = RUN.replace(
            "every = 3",
            "every = 1\nk = 2\noperator = \"both\"\nbottom = true",
        );
        check::<f32>(&spectra, 3.0);
        // A run that diverges after its last checkpoint.
        check::<f32>(RUN, 40.0);
        // The authors' protocol, whose measurements consume minibatches of the stream.
        let notebook = RUN.replace("every = 3", "every = 3\nprotocol = \"authors-notebook\"");
        check::<f32>(&notebook, 2.0);
    }
}

#[cfg(test)]
mod notebook_tests {
    use super::*;

    const NOTEBOOK: &str = r#"
        [data]
        dataset = "synthetic"
        synthetic_input_dim = 6
        n_train = 40
        [model]
        depth = [3]
        width = [7]
        [train]
        batch_size = 8
        steps = 7
        seeds = [5]
        precision = "f64"
        [sharpness]
        protocol = "authors-notebook"
        measure_n = 16
        [grid]
        c = [1.5]
    "#;

    #[test]
    fn authors_notebook_trains_on_every_other_minibatch_and_measures_on_the_next() {
        let cfg = Config::from_toml_str(NOTEBOOK).unwrap();
        cfg.validate().unwrap();
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let (d, w, seed) = (3, 7, 5);
        let s = RunSettings::new(&cfg, &problem, d, w, Par::Seq);
        let l0 = lambda0(&s, &problem, seed);
        let (rec, _) = train_run(&s, &problem, 1.5, seed, seed, &l0);
        assert_eq!(rec.status, RunStatus::Done);

        // The one fixed start vector of every measurement, and 20 + 1 products each.
        let start = NetStream::Lanczos.seed(seed, d, w);
        let power = |params: &[f64], x: &[f64], y: &[f64], m: usize| {
            let mut ws = MlpWorkspace::<f64>::new(&s.spec, m, Par::Seq);
            let mut op = HvpOperator::new(params, x, y, m, &mut ws);
            power_top(&mut op, None, 21, s.tol, start)
        };
        // λ₀: the first 16 examples of the SGD seed's measurement stream.
        let theta0: Vec<f64> = init_params(&s.spec, NetStream::Init.seed(seed, d, w));
        let mut stream =
            Minibatches::new(&problem, 16, NetStream::NotebookMeasure.seed(seed, d, w));
        let (x0, y0) = stream.next(&problem);
        let want0 = power(&theta0, x0, y0, 16);
        assert_eq!(l0.value.to_bits(), want0.value.to_bits());
        assert_eq!((l0.hvps, rec.hvps[0]), (21, 21));

        // Replay: minibatches 1, 3, 5, … train; 2, 4, 6, … measure (8 examples, 5 batches
        // an epoch, so the stream crosses epochs).
        let mut batches = Minibatches::new(&problem, 8, NetStream::Sgd.seed(seed, d, w));
        let mut theta = theta0.clone();
        let mut ws = MlpWorkspace::<f64>::new(&s.spec, 8, Par::Seq);
        let mut grad = vec![0.0; theta.len()];
        let eta = 1.5 / l0.value;
        for t in 1..=7 {
            let (xb, yb) = batches.next(&problem);
            ws.loss_and_grad(&theta, xb, yb, 8, &mut grad);
            theta.iter_mut().zip(&grad).for_each(|(p, g)| *p -= eta * g);
            let (xm, ym) = batches.next(&problem);
            let want = power(&theta, xm, ym, 8);
            assert_eq!(
                rec.sharpness[t].to_bits(),
                want.value.to_bits(),
                "λ_{t} on minibatch {}",
                2 * t
            );
            assert_eq!(rec.hvps[t], 21);
            // The loss is on the whole training set (in chunks of the measurement set's
            // size, as the run sums it).
            let mut full = MlpWorkspace::<f64>::new(&s.spec, problem.n_meas(), Par::Seq);
            let loss = full.loss_over(&theta, &problem.x_train, &problem.y_train, 6);
            assert_eq!(rec.loss[t].to_bits(), loss.to_bits());
        }
    }

    #[test]
    fn authors_notebook_refuses_what_it_cannot_measure() {
        for (extra, key) in [
            (
                "[sharpness]\nprotocol = \"authors-notebook\"\nk = 2",
                "sharpness.k",
            ),
            (
                "[sharpness]\nprotocol = \"authors-notebook\"\nbottom = true",
                "sharpness.bottom",
            ),
            (
                "[train]\nsgd_seeds = [1, 2]\n[sharpness]\nprotocol = \"authors-notebook\"",
                "train.sgd_seeds",
            ),
            (
                "[train]\noptimizer = \"adam\"\n[sharpness]\nprotocol = \"authors-notebook\"",
                "train.optimizer",
            ),
        ] {
            let err = Config::from_toml_str(extra)
                .and_then(|c| c.validate().map(|_| c))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }
}
