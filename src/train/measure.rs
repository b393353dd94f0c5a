//! Every measurement of a run, around one context value, [`Measurer`]: it owns the
//! measurement set's workspace (and whether it holds the passes of the state at hand), the
//! eigenvectors a measurement leaves for the next one's warm start, the solvers' memory,
//! Adam's preconditioner and the run's Lanczos seed.
//!
//! A measurement at state t records the training loss (divergence ends the run), then the
//! sharpness — by Lanczos or the power method, or by the block method when `sharpness.k` >
//! 1 — and the spectra the settings ask for: the Gauss-Newton top k, the Hessian's smallest
//! eigenvalue, and with Adam the plain Hessian's top eigenvalue beside the preconditioned
//! one. Under the authors' notebook protocol it is their power iteration on the next
//! minibatch instead. λ₀ ([`lambda0`]) and the θ₀ → θ_T interpolation losses are
//! measurements too.

use super::batches::Minibatches;
use super::{Lambda0, Problem, RunSettings};
use crate::config::{SharpnessMethod, SharpnessProtocol};
use crate::hessian::{
    block_top_k_in, lanczos_top_in, lanczos_tracked_in, power_top, BlockOptions, EigenEstimate,
    EigenWorkspace, LanczosOptions, Negated, Preconditioned, Spectrum,
};
use crate::model::param::init_params;
use crate::model::{Curvature, Float, HvpOperator, MlpWorkspace};
use crate::optim::{OptimizerState, Rule};
use crate::record::{RunRecord, RunStatus};
use crate::rng::NetStream;

/// Memory allowed for the Lanczos basis (f64 vectors of length P) before it restarts.
const LANCZOS_BASIS_BYTES: usize = 1 << 31;

/// Vectors of length `n_params` the Lanczos basis keeps (the rest of the iteration
/// restarts): as many as `max_iter` asks for, within [`LANCZOS_BASIS_BYTES`], at least 8.
pub fn lanczos_basis_vectors(n_params: usize, max_iter: usize) -> usize {
    (LANCZOS_BASIS_BYTES / (8 * n_params.max(1))).clamp(8, max_iter.max(8))
}

/// The gradient of the loss on the measurement set at `params` (Adam's g for its
/// preconditioner and, at θ₀, its v₀ = g₀²). Its passes stay in `ws` for the
/// measurement's operators ([`MeasurementPasses::operator`]).
pub(crate) fn measurement_gradient<T: Float>(
    problem: &Problem<T>,
    params: &[T],
    ws: &mut MlpWorkspace<T>,
) -> Vec<T> {
    let mut g = vec![T::of(0.0); params.len()];
    let m = problem.n_meas();
    ws.loss_and_grad(params, &problem.x_meas, &problem.y_meas, m, &mut g);
    g
}

/// The measurement set's workspace and whether it holds the forward and backward passes
/// of the parameters being measured: one measurement runs them once, for all its
/// operators (and Adam's gradient).
struct MeasurementPasses<'a, T: Float> {
    problem: &'a Problem<T>,
    ws: MlpWorkspace<T>,
    /// True when `ws` holds the passes of the parameters at hand on the measurement set,
    /// with nothing run on `ws` since.
    held: bool,
}

impl<'a, T: Float> MeasurementPasses<'a, T> {
    /// The curvature operator of the measurement set at `params`, reusing the passes
    /// when they are held (and holding them after).
    fn operator<'b>(&'b mut self, params: &'b [T], curvature: Curvature) -> HvpOperator<'b, T> {
        let p = self.problem;
        let (x, y, m) = (&p.x_meas[..], &p.y_meas[..], p.n_meas());
        if std::mem::replace(&mut self.held, true) {
            HvpOperator::cached(params, x, y, m, &mut self.ws, curvature)
        } else {
            HvpOperator::of(params, x, y, m, &mut self.ws, curvature)
        }
    }

    /// The measurement-set gradient at `params` ([`measurement_gradient`]); its passes
    /// are held after.
    fn gradient(&mut self, params: &[T]) -> Vec<T> {
        let g = measurement_gradient(self.problem, params, &mut self.ws);
        self.held = true;
        g
    }

    /// The loss on the training set at `params` (run in chunks on `ws`: the passes are
    /// not held after).
    fn training_loss(&mut self, params: &[T]) -> f64 {
        self.held = false;
        let p = self.problem;
        self.ws
            .loss_over(params, &p.x_train, &p.y_train, p.input_dim)
    }
}

/// The eigenvectors a measurement leaves for the next one's warm start: Hessian (k = 1:
/// the top two Ritz vectors of a warm-started Lanczos, [`Measurer::tracked_sharpness`];
/// k > 1: the block's k), Gauss-Newton, bottom, plain Hessian (Adam) — the order of a
/// checkpoint's `warm`.
pub(crate) type WarmVectors = [Vec<Vec<f64>>; 4];
const HESSIAN: usize = 0;
const GAUSS_NEWTON: usize = 1;
const BOTTOM: usize = 2;
const PLAIN: usize = 3;

/// The measurements of one run (or of one λ₀): see the module header.
pub(crate) struct Measurer<'a, T: Float> {
    s: &'a RunSettings,
    passes: MeasurementPasses<'a, T>,
    warm: WarmVectors,
    /// With Adam, the preconditioner D = P^-½ of the measurement at hand.
    precond: Option<Vec<f64>>,
    eig: EigenWorkspace,
    /// The Lanczos stream's seed of the network (init seed, depth, width).
    seed: u64,
}

impl<'a, T: Float> Measurer<'a, T> {
    /// The measurer of the network of init seed `seed` under `s`, on `problem`'s
    /// measurement set, with no warm vectors and no preconditioner yet.
    pub(crate) fn new(s: &'a RunSettings, problem: &'a Problem<T>, seed: u64) -> Self {
        Measurer {
            s,
            passes: MeasurementPasses {
                problem,
                ws: MlpWorkspace::<T>::new(&s.spec, problem.n_meas(), s.par),
                held: false,
            },
            warm: Default::default(),
            precond: None,
            eig: EigenWorkspace::new(s.par),
            seed: NetStream::Lanczos.seed(seed, s.depth, s.width),
        }
    }

    /// The optimizer state a run starts from at θ₀ = `params`; with Adam also its
    /// preconditioner at θ₀ (GI-Adam: v₀ = g₀² with g₀ the measurement-set gradient at
    /// θ₀), kept for the measurement at step 0.
    pub(crate) fn start(&mut self, params: &[T]) -> OptimizerState<T> {
        let rule = self.s.rule;
        match rule {
            Rule::Adam(_) => {
                let g0 = self.passes.gradient(params);
                let state = OptimizerState::new(rule, params.len(), Some(&g0));
                self.precond = state.preconditioner(&g0);
                state
            }
            _ => OptimizerState::new(rule, params.len(), None),
        }
    }

    /// The warm vectors, moved out (for a checkpoint); [`Measurer::set_warm`] puts them back.
    pub(crate) fn take_warm(&mut self) -> WarmVectors {
        std::mem::take(&mut self.warm)
    }

    /// Sets the warm vectors (from a checkpoint).
    pub(crate) fn set_warm(&mut self, warm: WarmVectors) {
        self.warm = warm;
    }

    /// The seed of the measurement at state t: step 0's spectra use the seed before λ₀'s
    /// (λ₀ is the network's, measured apart), state t > 0 the one t after it.
    fn seed_at(&self, t: usize) -> u64 {
        if t == 0 {
            self.seed.wrapping_sub(1)
        } else {
            self.seed.wrapping_add(t as u64)
        }
    }

    /// The Lanczos options of a single-vector measurement with start seed `seed`.
    fn lanczos_options(&self, n_params: usize, seed: u64) -> LanczosOptions {
        let s = self.s;
        LanczosOptions {
            tol: s.tol,
            max_iter: s.max_iter,
            max_basis: lanczos_basis_vectors(n_params, s.max_iter),
            seed,
        }
    }

    /// Top Hessian eigenvalue on the measurement set at `params`, by the configured method
    /// (of D H D, Adam's preconditioned Hessian, when `d` gives D = P^-½), from `start`.
    fn sharpness(
        &mut self,
        params: &[T],
        start: Option<&[f64]>,
        d: Option<&[f64]>,
        seed: u64,
    ) -> EigenEstimate {
        let s = self.s;
        let opts = self.lanczos_options(params.len(), seed);
        let mut hvp = self.passes.operator(params, Curvature::Hessian);
        let mut op = Preconditioned::new(&mut hvp, d);
        match s.method {
            SharpnessMethod::Lanczos => lanczos_top_in(&mut op, start, &opts, &mut self.eig),
            SharpnessMethod::Power => power_top(&mut op, start, s.power_iters, s.tol, seed),
        }
    }

    /// The sharpness of a measurement of the run (k = 1), warm-started from `previous`, the
    /// vectors the last one left: with warm-started Lanczos, from its top two Ritz vectors
    /// ([`lanczos_tracked_in`], so that after a crossing of the top two eigenvalues the
    /// value is the new top one, never λ₂), leaving this one's top two; otherwise as
    /// [`Measurer::sharpness`] from the first, leaving the eigenvector. Returns the estimate
    /// and the second vector to keep beside its eigenvector. With `previous` empty (the
    /// first measurement after initialization) the estimate is bit for bit the cold
    /// start's.
    fn tracked_sharpness(
        &mut self,
        params: &[T],
        previous: &[Vec<f64>],
        d: Option<&[f64]>,
        seed: u64,
    ) -> (EigenEstimate, Option<Vec<f64>>) {
        if self.s.method != SharpnessMethod::Lanczos || !self.s.warm_start {
            let first = previous.first().map(|v| &v[..]);
            return (self.sharpness(params, first, d, seed), None);
        }
        let opts = self.lanczos_options(params.len(), seed);
        let mut hvp = self.passes.operator(params, Curvature::Hessian);
        let mut op = Preconditioned::new(&mut hvp, d);
        lanczos_tracked_in(&mut op, previous, &opts, &mut self.eig)
    }

    /// The top `s.k` eigenpairs of `curvature` (preconditioned by `d`) at `params` by the
    /// block method, from `start`.
    fn top_k(
        &mut self,
        params: &[T],
        (curvature, d): (Curvature, Option<&[f64]>),
        start: &[Vec<f64>],
        seed: u64,
    ) -> Spectrum {
        let s = self.s;
        let mut hvp = self.passes.operator(params, curvature);
        let mut op = Preconditioned::new(&mut hvp, d);
        let opts = BlockOptions {
            tol: s.tol,
            max_iter: s.max_iter * s.k.get(),
            max_basis: lanczos_basis_vectors(params.len(), s.max_iter).max(3 * s.k.get()),
            seed,
        };
        block_top_k_in(&mut op, s.k.get(), start, &opts, &mut self.eig)
    }

    /// The smallest Hessian eigenvalue (of D H D with `d`) at `params`: Lanczos on −H.
    fn bottom(
        &mut self,
        params: &[T],
        d: Option<&[f64]>,
        start: Option<&[f64]>,
        seed: u64,
    ) -> EigenEstimate {
        let opts = self.lanczos_options(params.len(), seed);
        let mut hvp = self.passes.operator(params, Curvature::Hessian);
        let mut op = Preconditioned::new(&mut hvp, d);
        lanczos_top_in(&mut Negated(&mut op), start, &opts, &mut self.eig)
    }

    /// The previous measurement's vectors of `which`, moved out for the next solver's
    /// warm start (no copy; it leaves its own behind), or none without `warm_start`.
    fn warm_start(&mut self, which: usize) -> Vec<Vec<f64>> {
        if self.s.warm_start {
            std::mem::take(&mut self.warm[which])
        } else {
            Vec::new()
        }
    }

    /// One measurement at state `t`: the sharpness (by the configured method, or by the
    /// block method when `s.k` > 1, whose first pair it is) unless `lambda0` gives it (t =
    /// 0), and the spectra `s` asks for ([`Measurer::extras`]) into `rec`; every product
    /// counts in `hvps`. With Adam every operator is preconditioned by `self.precond`.
    fn measure_at(
        &mut self,
        rec: &mut RunRecord,
        t: usize,
        params: &[T],
        lambda0: Option<&Lambda0>,
    ) {
        let (k, seed) = (self.s.k.get(), self.seed_at(t));
        let precond = self.precond.take();
        let d = precond.as_deref();
        if self.s.operator.hessian() && k > 1 {
            let start = self.warm_start(HESSIAN);
            let sp = self.top_k(params, (Curvature::Hessian, d), &start, seed);
            match lambda0 {
                Some(l0) => {
                    record_measurement(rec, t, l0);
                    rec.hvps[t] += sp.applications as i32;
                }
                None => record_measurement(rec, t, &top_of(&sp)),
            }
            eig_row(&mut rec.eigenvalues, t, k, &sp.values);
            eig_row(&mut rec.eig_residual, t, k, &sp.residuals);
            self.warm[HESSIAN] = sp.vectors;
            self.eig.recycle(start);
        } else {
            let m = match lambda0 {
                Some(l0) => *l0,
                None => {
                    let previous = self.warm_start(HESSIAN);
                    let (est, second) = self.tracked_sharpness(params, &previous, d, seed);
                    let m = Lambda0::of_estimate(&est);
                    self.warm[HESSIAN] = std::iter::once(est.vector).chain(second).collect();
                    self.eig.recycle(previous);
                    m
                }
            };
            record_measurement(rec, t, &m);
            rec.eigenvalues[t * k] = m.value;
            rec.eig_residual[t * k] = m.residual;
        }
        self.extras(rec, t, params, d);
        self.precond = precond;
    }

    /// The spectra of a measurement beyond the sharpness: the Gauss-Newton top k, the
    /// smallest Hessian eigenvalue (both preconditioned by `d` with Adam), and with Adam's
    /// `sharpness.preconditioned` the plain Hessian's top eigenvalue.
    fn extras(&mut self, rec: &mut RunRecord, t: usize, params: &[T], d: Option<&[f64]>) {
        let (s, seed) = (self.s, self.seed_at(t));
        if s.operator.gauss_newton() {
            let start = self.warm_start(GAUSS_NEWTON);
            let sp = self.top_k(params, (Curvature::GaussNewton, d), &start, seed ^ 0x9e37);
            eig_row(&mut rec.gn_eigenvalues, t, s.k.get(), &sp.values);
            rec.hvps[t] += sp.applications as i32;
            self.warm[GAUSS_NEWTON] = sp.vectors;
            self.eig.recycle(start);
        }
        if s.bottom {
            let start = self.warm_start(BOTTOM);
            let first = start.first().map(|v| &v[..]);
            let est = self.bottom(params, d, first, seed ^ 0x7f4a);
            rec.min_eigenvalue[t] = -est.value;
            rec.hvps[t] += est.applications as i32;
            self.warm[BOTTOM] = vec![est.vector];
            self.eig.recycle(start);
        }
        if s.plain() {
            let start = self.warm_start(PLAIN);
            let first = start.first().map(|v| &v[..]);
            let est = self.sharpness(params, first, None, seed ^ 0x51ab);
            rec.hessian_sharpness[t] = est.value;
            rec.hvps[t] += est.applications as i32;
            self.warm[PLAIN] = vec![est.vector];
            self.eig.recycle(start);
        }
    }

    /// Records state t's loss on the training set; above `s.divergence_loss` or not finite
    /// the run has diverged at t (status and `diverged_at` set, and `true` returned).
    pub(crate) fn training_loss_at(&mut self, rec: &mut RunRecord, t: usize, params: &[T]) -> bool {
        let loss = self.passes.training_loss(params);
        rec.loss[t] = loss;
        let diverged = !loss.is_finite() || loss > self.s.divergence_loss;
        if diverged {
            rec.status = RunStatus::Diverged;
            rec.diverged_at = Some(t as u32);
        }
        diverged
    }

    /// State 0: the training loss (above `s.divergence_loss` or not finite: diverged at 0),
    /// and λ₀, the network's (shared by its runs, so the sharpness measurement after it
    /// starts cold); a spectrum `s` asks for is measured here, in the run, and warms the
    /// next.
    pub(crate) fn measure_init(&mut self, rec: &mut RunRecord, params: &[T], lambda0: &Lambda0) {
        // The training loss runs the last passes: the measurement's are run afresh.
        self.training_loss_at(rec, 0, params);
        if self.s.spectra() {
            self.measure_at(rec, 0, params, Some(lambda0));
        } else {
            record_measurement(rec, 0, lambda0);
            rec.eigenvalues[0] = lambda0.value;
            rec.eig_residual[0] = lambda0.residual;
        }
    }

    /// State t's training loss (divergence above `s.divergence_loss` ends the run: status
    /// and `diverged_at` set) and, unless it diverged, its measurement — with Adam's
    /// preconditioner of the state `opt` at the measurement-set gradient. A state that is
    /// θ₀ bit for bit (after a warmup's η₀ = 0) has step 0's spectrum, with no products:
    /// measured again it would differ from λ₀ by the solver's tolerance, and λ_t > λ₀ would
    /// read as a sharpness catapult at every c. (Not with Adam, whose preconditioner has
    /// moved.)
    pub(crate) fn measure_step(
        &mut self,
        rec: &mut RunRecord,
        t: usize,
        (params, theta0, opt): (&[T], &[T], &OptimizerState<T>),
    ) {
        if self.training_loss_at(rec, t, params) {
            return;
        }
        let adam = matches!(self.s.rule, Rule::Adam(_));
        if !adam && params == theta0 {
            repeat_initial_measurement(rec, t, self.s.k.get());
            return;
        }
        // Adam's gradient runs the measurement's passes; its operators reuse them.
        if adam {
            let g = self.passes.gradient(params);
            self.precond = opt.preconditioner(&g);
        }
        self.measure_at(rec, t, params, None);
    }

    /// State t's training loss (as [`Measurer::measure_step`]) and, under the authors'
    /// notebook, its sharpness on the next minibatch of `batches`, which the measurement
    /// consumes (its passes run on `ws_batch`, the training batch's workspace).
    pub(crate) fn measure_notebook(
        &mut self,
        rec: &mut RunRecord,
        t: usize,
        params: &[T],
        (ws_batch, batches): (&mut MlpWorkspace<T>, &mut Minibatches<T>),
    ) {
        if self.training_loss_at(rec, t, params) {
            return;
        }
        let problem = self.passes.problem;
        let b = batches.size;
        let (xb, yb) = batches.next(problem);
        let est = notebook_power(self.s, params, (xb, yb, b), ws_batch, self.seed);
        let m = Lambda0::of_estimate(&est);
        record_measurement(rec, t, &m);
        rec.eigenvalues[t * self.s.k.get()] = m.value;
        rec.eig_residual[t * self.s.k.get()] = m.residual;
    }

    /// The training loss along θ₀ + α(θ_T − θ₀) at the interpolation coefficients α.
    pub(crate) fn interpolation_losses(&mut self, theta0: &[T], theta_t: &[T]) -> Vec<f64> {
        let mut theta = theta0.to_vec();
        self.s
            .interp_alpha()
            .into_iter()
            .map(|alpha| {
                let a = T::of(alpha);
                for ((p, p0), pt) in theta.iter_mut().zip(theta0).zip(theta_t) {
                    *p = *p0 + a * (*pt - *p0);
                }
                self.passes.training_loss(&theta)
            })
            .collect()
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
    let mut m = Measurer::new(s, problem, seed);
    // Adam's g₀ leaves the passes held.
    m.start(&params);
    let d = m.precond.take();
    let est = m.sharpness(&params, None, d.as_deref(), m.seed);
    Lambda0::of_estimate(&est)
}

/// The authors' notebook's power iteration: `power_iters` products from the run's one
/// fixed start vector (a Gaussian seeded by `start`, the init seed's Lanczos stream, the
/// same at every measurement), then the Rayleigh quotient of the last iterate —
/// `power_iters` + 1 products, as their code counts them.
fn notebook_power<T: Float>(
    s: &RunSettings,
    params: &[T],
    (x, y, m): (&[T], &[T], usize),
    ws: &mut MlpWorkspace<T>,
    start: u64,
) -> EigenEstimate {
    let mut op = HvpOperator::new(params, x, y, m, ws);
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
    let start = NetStream::Lanczos.seed(seed, s.depth, s.width);
    notebook_power(s, params, (x, y, m), &mut ws, start)
}

/// The sharpness of a block measurement: its first pair.
fn top_of(sp: &Spectrum) -> Lambda0 {
    Lambda0 {
        value: sp.values[0],
        hvps: sp.applications,
        residual: sp.residuals[0],
        converged: sp.converged,
        stop: Some(sp.stop),
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

/// Row `t` of a (step, eig) variable of `k` eigenvalues per step.
fn eig_row(v: &mut [f64], t: usize, k: usize, values: &[f64]) {
    for (dst, x) in v[t * k..(t + 1) * k].iter_mut().zip(values) {
        *dst = *x;
    }
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

#[cfg(test)]
mod notebook_tests {
    use super::super::train_run;
    use super::*;
    use crate::config::Config;
    use faer::Par;

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

#[cfg(test)]
mod crossing_tests {
    use super::super::train_run;
    use super::*;
    use crate::config::Config;
    use crate::hessian::{dense_eigenvalues, DenseOperator, SymmetricOperator};
    use crate::model::param::layout;
    use faer::{Mat, Par};

    /// The run of `tests/spectrum.rs` whose top two Hessian eigenvalues cross between steps
    /// 3 and 4 at c = 40 (Fashion-MNIST, d = 3, w = 8): a warm start from the previous top
    /// vector alone reported λ₂ (1.7465 against 1.8714 at step 4).
    const CROSSING: &str = r#"
        [data]
        n_train = 256
        [model]
        depth = [3]
        width = [8]
        [train]
        batch_size = 64
        steps = 6
        seeds = [1]
        [sharpness]
        measure_n = 64
        tol = 1e-4
        max_iter = 200
        [grid]
        c = [40.0]
    "#;

    /// An orthonormal basis of a subspace of parameter space that holds the range of the
    /// Hessian on the examples `x` (column-major `input_dim` × m): the first layer's weights
    /// enter the loss only through W₀x, so H is zero on every direction whose W₀ rows are
    /// orthogonal to the examples. Columns: each hidden unit's row along an orthonormal
    /// basis of span(x), then a unit vector per other parameter.
    fn range_basis(spec: &crate::model::MlpSpec, x: &[f32], m: usize) -> Vec<Vec<f64>> {
        let (layers, n) = layout(spec);
        let (first, d) = (layers[0], spec.input_dim);
        let mut span: Vec<Vec<f64>> = Vec::new();
        for i in 0..m {
            let mut v: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|a| *a as f64).collect();
            let before = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            for _ in 0..2 {
                for b in &span {
                    let p: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(b).for_each(|(a, b)| *a -= p * b);
                }
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-8 * before {
                span.push(v.iter().map(|a| a / norm).collect());
            }
        }
        let w0 = first.w_offset..first.w_offset + first.rows * first.cols;
        let mut basis = Vec::new();
        for r in 0..first.rows {
            for b in &span {
                let mut q = vec![0.0; n];
                (0..d).for_each(|c| q[first.w_offset + c * first.rows + r] = b[c]);
                basis.push(q);
            }
        }
        for j in (0..n).filter(|j| !w0.contains(j)) {
            let mut q = vec![0.0; n];
            q[j] = 1.0;
            basis.push(q);
        }
        basis
    }

    /// The largest eigenvalue of `op` by the dense oracle on its range: the eigenvalues of
    /// QᵀHQ (`q` holding the range of H, fewer columns than H's dimension, so 0 is one
    /// of H's eigenvalues too). Checks first that H vanishes off `q`.
    fn dense_top(op: &mut impl SymmetricOperator, q: &[Vec<f64>]) -> f64 {
        let n = op.dim();
        let mut hq = Mat::<f64>::zeros(n, q.len());
        let mut y = vec![0.0; n];
        for (j, col) in q.iter().enumerate() {
            op.apply(col, &mut y);
            (0..n).for_each(|i| hq[(i, j)] = y[i]);
        }
        let qm = Mat::<f64>::from_fn(n, q.len(), |i, j| q[j][i]);
        let a = qm.transpose() * &hq;
        let k = q.len();
        let dense = (0..k * k).map(|i| a[(i % k, i / k)]).collect();
        let top = *dense_eigenvalues(&mut DenseOperator::new(k, dense))
            .last()
            .unwrap();
        // A direction off the range (a fixed pattern with its components along q removed).
        let mut z: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        let coef: Vec<f64> = (0..k)
            .map(|j| (0..n).map(|i| qm[(i, j)] * z[i]).sum())
            .collect();
        for (j, c) in coef.iter().enumerate() {
            (0..n).for_each(|i| z[i] -= c * qm[(i, j)]);
        }
        let zn = z.iter().map(|a| a * a).sum::<f64>().sqrt();
        op.apply(&z, &mut y);
        let off = y.iter().map(|a| a * a).sum::<f64>().sqrt() / zn;
        assert!(
            off <= 1e-4 * top.abs(),
            "H is not zero off the range: {off} vs {top}"
        );
        assert!(k < n);
        top.max(0.0)
    }

    #[test]
    fn after_a_crossing_of_the_top_two_every_warm_measurement_is_the_dense_top() {
        let cfg = Config::from_toml_str(CROSSING).unwrap();
        cfg.validate().unwrap();
        let problem = Problem::<f32>::from_config(&cfg).unwrap();
        let (d, w, seed) = (3, 8, 1);
        let s = RunSettings::new(&cfg, &problem, d, w, Par::Seq);
        let l0 = lambda0(&s, &problem, seed);
        let (rec, _) = train_run(&s, &problem, 40.0, seed, seed, &l0);
        // Replay θ_t: plain SGD at η = c/λ₀ on the run's minibatch stream.
        let mut theta: Vec<f32> = init_params(&s.spec, NetStream::Init.seed(seed, d, w));
        let mut batches = Minibatches::new(&problem, 64, NetStream::Sgd.seed(seed, d, w));
        let mut opt = OptimizerState::new(s.rule, theta.len(), None);
        let eta = f32::of(40.0 / l0.value);
        let (mut ws, mut grad) = (
            MlpWorkspace::new(&s.spec, 64, Par::Seq),
            vec![0.0; theta.len()],
        );
        let m = problem.n_meas();
        let mut meas = MlpWorkspace::<f32>::new(&s.spec, m, Par::Seq);
        let q = range_basis(&s.spec, &problem.x_meas, m);
        // The previous top vector alone: the estimator before the tracked start.
        let mut old: Option<Vec<f64>> = None;
        let mut eig = EigenWorkspace::new(Par::Seq);
        let (mut warm, mut missed) = (0, Vec::new());
        for t in 1..=s.steps {
            let (xb, yb) = batches.next(&problem);
            ws.loss_and_grad(&theta, xb, yb, 64, &mut grad);
            opt.step(&mut theta, &grad, eta);
            if rec.sharpness[t].is_nan() {
                break;
            }
            let (x, y) = (&problem.x_meas[..], &problem.y_meas[..]);
            let mut op = HvpOperator::of(&theta, x, y, m, &mut meas, Curvature::Hessian);
            let top = dense_top(&mut op, &q);
            let opts = LanczosOptions {
                tol: s.tol,
                max_iter: s.max_iter,
                max_basis: lanczos_basis_vectors(theta.len(), s.max_iter),
                seed: NetStream::Lanczos.seed(seed, d, w).wrapping_add(t as u64),
            };
            let est = lanczos_top_in(&mut op, old.as_deref(), &opts, &mut eig);
            let what = format!("step {t}: reported {}, dense top {top}", rec.sharpness[t]);
            if t == 1 {
                // The cold first measurement, bit for bit as before: the replay is the run.
                assert_eq!(rec.sharpness[1].to_bits(), est.value.to_bits(), "{what}");
            } else {
                warm += 1;
                assert!(rec.converged[t], "{what}");
                assert!((rec.sharpness[t] - top).abs() <= s.tol * top, "{what}");
                if est.value < top * (1.0 - s.tol) {
                    missed.push((t, est.value));
                }
            }
            old = Some(est.vector);
        }
        assert!(warm >= 4, "{warm} warm measurements: {:?}", rec.sharpness);
        // The run really has a crossing that the old start misses.
        assert!(
            !missed.is_empty(),
            "the old start found the top at every step"
        );
    }
}
