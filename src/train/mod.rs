//! One training run. λ₀ is measured once per network ([`lambda0`]) on the fixed
//! measurement set; a run trains from θ₀ at η = c/λ₀ with its update rule — plain SGD,
//! heavy-ball momentum or Adam (GI-Adam; its λ₀ and sharpness are the preconditioned
//! ones) — after an optional linear warmup of η, on minibatches of a seeded stream; the
//! training loss and the sharpness (and the spectra asked for) are measured at the steps
//! of the run's [`Schedule`](crate::config::Schedule) (the sharpness under the authors'
//! notebook protocol on the next minibatch of the stream), the training loss alone at the
//! schedule's loss steps between them. A run can checkpoint itself and continue bit for bit.
//! Divergence is a result (recorded in the [`RunRecord`]), never an error. A run knows
//! nothing of the grid or of files.
//!
//! - `setup`: the data ([`Problem`]), the network ([`network_spec`]), the settings a run
//!   takes from the config ([`RunSettings`]), λ₀ as a value ([`Lambda0`]);
//! - `batches`: the minibatch stream;
//! - `measure`: every measurement, around one context value (`Measurer`), and [`lambda0`];
//! - `checkpoint`: the checkpoint state ([`RunCheckpoint`]) and its byte format;
//! - here: the training loop ([`train_run`], [`train_run_checkpointed`]).

mod batches;
pub mod checkpoint;
mod measure;
mod setup;

pub use self::checkpoint::RunCheckpoint;
pub use self::measure::{lambda0, lanczos_basis_vectors};
pub use self::setup::{eigen_count, interp_alpha, network_spec, Lambda0, Problem, RunSettings};
pub use crate::optim::learning_rate;

use self::batches::Minibatches;
use self::measure::Measurer;
use crate::config::SharpnessProtocol;
use crate::model::param::init_params;
use crate::model::{Float, MlpWorkspace};
use crate::optim::OptimizerState;
use crate::record::{RunRecord, RunStatus};
use crate::rng::NetStream;
use std::time::Instant;

/// Seconds spent in each part of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunTiming {
    /// SGD steps (minibatch gradients and updates).
    pub train_s: f64,
    /// Training-set losses and sharpness measurements.
    pub measure_s: f64,
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
/// State t (t = 0..T) is after t SGD steps. λ_t and the loss on the training set are
/// recorded at the sharpness steps of `s.schedule` (t = 0 and T among them), the loss
/// alone at its loss steps; the rest stay NaN (`hvps` −1). Divergence: the minibatch loss
/// at θ_t, or the measured training loss at θ_t, above `divergence_loss` or not finite;
/// the run then stops with `diverged_at = t`, and later entries stay NaN. The first
/// measurement after initialization starts Lanczos from a seeded random vector (so the
/// result does not depend on which rank computed λ₀); later ones warm-start from the
/// previous measurement's when `warm_start` (k = 1 Lanczos: from its top two Ritz
/// vectors, so that a crossing of the top two eigenvalues is followed).
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
    let lambda0 = lambda0_est.value;
    let eta = c / lambda0;
    let mut rec = RunRecord::unmeasured_spectrum(
        lambda0,
        eta,
        RunStatus::Done,
        s.steps,
        s.interp_points,
        s.k,
    );
    if !(lambda0.is_finite() && lambda0 > 0.0) {
        rec.status = RunStatus::Failed;
        rec.message = format!("sharpness at initialization is {lambda0}: η = c/λ₀ is undefined");
        return RunEnd::Finished(Box::new(rec), RunTiming::default());
    }
    let from = match ckpt.resume {
        Some(ck) => Start::Resume(Box::new(ck)),
        None => Start::Fresh(lambda0_est),
    };
    let mut run = Run::new(s, problem, (seed, sgd_seed), rec, from);
    let eta_t = T::of(eta);
    while run.rec.status == RunStatus::Done && run.t < s.steps {
        if !run.step(eta, eta_t) {
            break;
        }
        let t = run.t;
        if s.schedule.sharpness_at(t) {
            run.measure();
        } else if s.schedule.loss_at(t) {
            run.measure_loss();
        }
        if run.rec.status == RunStatus::Diverged {
            break;
        }
        if ckpt.every > 0 && t % ckpt.every == 0 && t < s.steps {
            let state = run.snapshot(run.earlier + started.elapsed().as_secs_f64());
            if (ckpt.save)(&state) {
                return RunEnd::Interrupted(t);
            }
            run.measurer.set_warm(state.warm);
        }
    }
    if run.rec.status == RunStatus::Done && s.interp_points > 0 {
        let t3 = Instant::now();
        run.rec.interp_loss = run.measurer.interpolation_losses(&run.theta0, &run.params);
        run.timing.measure_s += t3.elapsed().as_secs_f64();
    }
    run.rec.seconds = run.earlier + started.elapsed().as_secs_f64();
    RunEnd::Finished(Box::new(run.rec), run.timing)
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

/// Where a run starts: at θ₀ with its network's λ₀, or from a checkpoint of it.
enum Start<'b, T> {
    Fresh(&'b Lambda0),
    Resume(Box<RunCheckpoint<T>>),
}

/// A run in its loop: the state after `t` steps, the record so far and what the steps
/// and measurements work in.
struct Run<'a, T: Float> {
    s: &'a RunSettings,
    problem: &'a Problem<T>,
    rec: RunRecord,
    theta0: Vec<T>,
    params: Vec<T>,
    opt: OptimizerState<T>,
    batches: Minibatches<T>,
    /// Steps made.
    t: usize,
    /// Wall-clock seconds the run took before it continued from a checkpoint.
    earlier: f64,
    measurer: Measurer<'a, T>,
    ws_batch: MlpWorkspace<T>,
    grad: Vec<T>,
    timing: RunTiming,
}

impl<'a, T: Float> Run<'a, T> {
    /// The run of (init seed, SGD seed) at `from`: θ₀ with the optimizer's initial state
    /// and state 0 measured (with the network's λ₀) into `rec`, or a checkpoint of it.
    fn new(
        s: &'a RunSettings,
        problem: &'a Problem<T>,
        (seed, sgd_seed): (u64, u64),
        rec: RunRecord,
        from: Start<'_, T>,
    ) -> Self {
        let b = s.batch_size.min(problem.n_train());
        let theta0: Vec<T> = init_params(&s.spec, NetStream::Init.seed(seed, s.depth, s.width));
        let sgd_stream = NetStream::Sgd.seed(sgd_seed, s.depth, s.width);
        let mut measurer = Measurer::new(s, problem, seed);
        let (lambda0, ck) = match from {
            Start::Fresh(l0) => (Some(l0), None),
            Start::Resume(ck) => (None, Some(*ck)),
        };
        let (params, opt, batches, t, rec, earlier) = match ck {
            Some(ck) => {
                measurer.set_warm(ck.warm);
                let batches = Minibatches::restored(problem, b, sgd_stream, ck.epochs, ck.cursor);
                (ck.params, ck.opt, batches, ck.t, ck.record, ck.seconds)
            }
            None => {
                let opt = measurer.start(&theta0);
                let batches = Minibatches::new(problem, b, sgd_stream);
                (theta0.clone(), opt, batches, 0, rec, 0.0)
            }
        };
        let mut run = Run {
            s,
            problem,
            rec,
            grad: vec![T::of(0.0); theta0.len()],
            theta0,
            params,
            opt,
            batches,
            t,
            earlier,
            measurer,
            ws_batch: MlpWorkspace::<T>::new(&s.spec, b, s.par),
            timing: RunTiming::default(),
        };
        if let Some(l0) = lambda0 {
            let t0 = Instant::now();
            run.measurer.measure_init(&mut run.rec, &run.theta0, l0);
            run.timing.measure_s += t0.elapsed().as_secs_f64();
        }
        run
    }

    /// Step t + 1: the minibatch gradient at θ_t and the update; `false` (and the run
    /// diverged at t) when the minibatch loss is above `divergence_loss` or not finite.
    fn step(&mut self, eta: f64, eta_t: T) -> bool {
        let t1 = Instant::now();
        let b = self.batches.size;
        let (xb, yb) = self.batches.next(self.problem);
        let batch_loss = self
            .ws_batch
            .loss_and_grad(&self.params, xb, yb, b, &mut self.grad);
        let ok = batch_loss.is_finite() && batch_loss <= self.s.divergence_loss;
        if ok {
            let size = step_size(self.s, eta, self.t, eta_t);
            self.opt.step(&mut self.params, &self.grad, size);
            self.t += 1;
        } else {
            self.rec.status = RunStatus::Diverged;
            self.rec.diverged_at = Some(self.t as u32);
        }
        self.timing.train_s += t1.elapsed().as_secs_f64();
        ok
    }

    /// The measurement of state t (by the protocol of the settings).
    fn measure(&mut self) {
        let t2 = Instant::now();
        let (rec, t, params) = (&mut self.rec, self.t, &self.params[..]);
        if self.s.protocol == SharpnessProtocol::AuthorsNotebook {
            let stream = (&mut self.ws_batch, &mut self.batches);
            self.measurer.measure_notebook(rec, t, params, stream);
        } else {
            let state = (params, &self.theta0[..], &self.opt);
            self.measurer.measure_step(rec, t, state);
        }
        self.timing.measure_s += t2.elapsed().as_secs_f64();
    }

    /// State t's training loss alone (a step of the loss schedule between sharpness
    /// steps): divergence ends the run as in [`Run::measure`]. It touches neither the
    /// minibatch stream, nor the warm vectors, nor the measurements' seeds.
    fn measure_loss(&mut self) {
        let t2 = Instant::now();
        let (rec, t, params) = (&mut self.rec, self.t, &self.params[..]);
        self.measurer.training_loss_at(rec, t, params);
        self.timing.measure_s += t2.elapsed().as_secs_f64();
    }

    /// The checkpoint of the state after step t, `seconds` into the run (the warm vectors
    /// move into it; [`Measurer::set_warm`] takes them back).
    fn snapshot(&mut self, seconds: f64) -> RunCheckpoint<T> {
        RunCheckpoint {
            t: self.t,
            params: self.params.clone(),
            opt: self.opt.clone(),
            epochs: self.batches.epochs,
            cursor: self.batches.cursor,
            record: self.rec.clone(),
            warm: self.measurer.take_warm(),
            seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use faer::Par;

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
    fn threads_give_one_threads_bits_for_top_k_and_bottom() {
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
                k: crate::record::EigenCount::new(2).unwrap(),
                bottom: true,
                ..RunSettings::new(&cfg, &problem, 3, 64, par)
            };
            let l0 = lambda0(&s, &problem, 7);
            train_run(&s, &problem, 4.0, 7, 7, &l0).0
        };
        let (one, two) = (run(Par::Seq), run(Par::rayon(2)));
        assert_eq!(one.status, RunStatus::Done);
        // Block Lanczos (k = 2) and the smallest eigenvalue: faer's products split the
        // output over the threads, never a sum, and the basis reductions use fixed blocks.
        assert_eq!(record_bits(&two), record_bits(&one));
    }

    /// The run's record with the wall-clock seconds left out, every float at full precision.
    fn record_bits(r: &RunRecord) -> String {
        format!(
            "{:?}",
            RunRecord {
                seconds: 0.0,
                ..r.clone()
            }
        )
    }

    #[test]
    fn threads_give_one_threads_bits() {
        // The default measurement (k = 1, tracked Lanczos, f32 passes): P ≈ 119 k is four
        // reduction blocks, the activations 128 × 512 split over the threads.
        let text = FMNIST_SMALL
            .replace("width = [32]", "width = [128]")
            .replace("measure_n = 256", "measure_n = 512")
            .replace("steps = 20", "steps = 6");
        let cfg = config(&text);
        let problem = Problem::<f32>::from_config(&cfg).unwrap();
        let run = |par: Par| {
            let s = RunSettings::new(&cfg, &problem, 3, 128, par);
            let l0 = lambda0(&s, &problem, 7);
            train_run(&s, &problem, 4.0, 7, 7, &l0).0
        };
        let one = run(Par::Seq);
        assert_eq!(one.status, RunStatus::Done);
        assert!(one.hvps.iter().sum::<i32>() > 20, "{:?}", one.hvps);
        for t in [2, 3] {
            assert_eq!(
                record_bits(&run(Par::rayon(t))),
                record_bits(&one),
                "{t} threads"
            );
        }
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

    /// The same run with the loss every step and with the loss only at the sharpness
    /// steps: every sharpness measurement (value, products, residual, spectra) is the
    /// same bit for bit, and so is the loss where both measured it.
    fn loss_steps_change_nothing_else(text: &str, c: f64) {
        let every_step = config(text);
        let mut sparse = every_step.clone();
        sparse.train.loss_every = 0;
        let a = &run_all::<f32>(&every_step, 3, 32, &[c])[0];
        let b = &run_all::<f32>(&sparse, 3, 32, &[c])[0];
        assert_eq!((a.status, b.status), (RunStatus::Done, RunStatus::Done));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.sharpness), bits(&b.sharpness), "{text}");
        assert_eq!(a.hvps, b.hvps);
        assert_eq!(bits(&a.residual), bits(&b.residual));
        assert_eq!(bits(&a.eigenvalues), bits(&b.eigenvalues));
        assert_eq!(bits(&a.min_eigenvalue), bits(&b.min_eigenvalue));
        let schedule = RunSettings::new(
            &every_step,
            &Problem::<f32>::from_config(&every_step).unwrap(),
            3,
            32,
            Par::Seq,
        )
        .schedule;
        for t in 0..=every_step.train.steps {
            assert!(a.loss[t].is_finite(), "loss every step: {t}");
            let measured = schedule.sharpness_at(t);
            assert_eq!(b.loss[t].is_finite(), measured, "step {t}");
            assert_eq!(a.hvps[t] >= 0, measured, "step {t}");
            if measured {
                assert_eq!(a.loss[t].to_bits(), b.loss[t].to_bits(), "step {t}");
            }
        }
    }

    #[test]
    fn loss_only_steps_do_not_change_the_measured_values() {
        let text = FMNIST_SMALL.replace("tol = 1e-4", "tol = 1e-4\nevery = 3");
        loss_steps_change_nothing_else(&text, 2.0);
        let text = FMNIST_SMALL.replace(
            "tol = 1e-4",
            "tol = 1e-4\ndense_steps = 2\nper_decade = 5\nbottom = true",
        );
        loss_steps_change_nothing_else(&text, 3.0);
        let text = FMNIST_SMALL.replace(
            "tol = 1e-4",
            "tol = 1e-4\nevery = 4\nprotocol = \"authors-notebook\"",
        );
        loss_steps_change_nothing_else(&text, 2.0);
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
    use super::measure::measurement_gradient;
    use super::*;
    use crate::config::Config;
    use crate::hessian::{dense_eigenvalues, dense_matrix, DenseOperator};
    use crate::model::HvpOperator;
    use faer::Par;

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
