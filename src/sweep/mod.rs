//! The sweep: expand the config into tasks, partition them over MPI ranks (or run them in
//! one process), and gather every trajectory into one resumable results file. MPI
//! appears only in this module.

pub mod drain;
pub mod grid;
pub mod schedule;
pub mod wire;

use crate::config::{Config, ConfigError, Precision};
use crate::data::DataError;
use crate::model::Float;
use crate::store::results::{Results, RunStatus};
use crate::store::{FileMeta, ResultsFile, StoreError};
use crate::train::{self, Problem, RunSettings};
use grid::LineKey;
use mpi::traits::*;
use schedule::{Lambda0Est, Master, Outcome, Unit};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

pub use drain::EXIT_INCOMPLETE;

/// What went wrong before or around the runs (a run's own failure is a result).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The config file or an override.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The dataset.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The results file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The MPI launch does not match this binary's MPI world.
    #[error("MPI world size mismatch: this process sees {world} rank(s) but the launcher set {var}={expected}; the binary was probably built against another MPI implementation than the launcher's (rebuild against the MPI whose mpirun/srun you use)")]
    WorldSize {
        /// Size MPI_Init gave.
        world: usize,
        /// Launcher variable.
        var: String,
        /// Its value.
        expected: usize,
    },
    /// MPI could not be initialised.
    #[error("MPI initialisation failed (launched by a launcher: {0})")]
    MpiInit(String),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[from] std::io::Error),
    /// Another rank reported an error; rank 0 prints it.
    #[error("stopped because rank 0 reported an error")]
    Remote,
}

/// How the sweep ended.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSummary {
    /// Results file.
    pub path: PathBuf,
    /// Runs in the grid.
    pub total: usize,
    /// Runs finished (done, diverged or failed) now in the file.
    pub finished: usize,
    /// Of those, diverged.
    pub diverged: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Runs this invocation completed.
    pub ran_now: usize,
    /// Whether this process was rank 0 (the one that reports).
    pub is_root: bool,
    /// Seconds each rank spent computing (index = rank; rank 0 only).
    pub busy: Vec<f64>,
    /// Wall-clock seconds of the scheduling loop (rank 0 only).
    pub wall: f64,
}

impl SweepSummary {
    /// Load balance: the busiest rank's busy time over the mean (1 = perfect).
    pub fn imbalance(&self) -> f64 {
        let max = self.busy.iter().cloned().fold(0.0, f64::max);
        let mean = self.busy.iter().sum::<f64>() / self.busy.len().max(1) as f64;
        max / mean
    }
}

impl SweepSummary {
    fn empty(path: PathBuf, total: usize) -> Self {
        SweepSummary {
            path,
            total,
            finished: 0,
            diverged: 0,
            failed: 0,
            ran_now: 0,
            is_root: false,
            busy: Vec::new(),
            wall: 0.0,
        }
    }
}

impl SweepSummary {
    /// True when runs remain (drained by a signal or deadline): exit with
    /// [`EXIT_INCOMPLETE`] so a batch script can resubmit with `--resume`.
    pub fn incomplete(&self) -> bool {
        self.finished < self.total
    }
}

/// Command-line options of `sharpsweep sweep`.
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// The TOML config.
    pub config: PathBuf,
    /// `--set key=value` overrides.
    pub overrides: Vec<String>,
    /// Results file (default: `output.path` of the config).
    pub out: Option<PathBuf>,
    /// Continue an existing file (or create it when missing).
    pub resume: bool,
    /// Overwrite an existing file.
    pub force: bool,
    /// Threads per rank for the matmuls.
    pub threads: usize,
    /// Drain at this time.
    pub deadline: Option<SystemTime>,
    /// Seconds between plain progress lines when stderr is not a terminal (0: none).
    pub progress_every: f64,
    /// No progress output at all.
    pub quiet: bool,
}

/// The launcher's idea of the world size, from the variables mpirun/srun set.
fn launcher_sizes() -> Vec<(String, usize)> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "MPI_LOCALNRANKS_GLOBAL",
    ]
    .iter()
    .filter_map(|v| {
        std::env::var(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(|n| (v.to_string(), n))
    })
    .chain(
        // srun sets SLURM_STEP_NUM_TASKS for the ranks of a job step.
        std::env::var("SLURM_STEP_NUM_TASKS")
            .ok()
            .filter(|_| std::env::var("SLURM_STEP_ID").is_ok_and(|s| s != "batch" && s != "extern"))
            .and_then(|s| s.parse().ok())
            .map(|n| ("SLURM_STEP_NUM_TASKS".to_string(), n)),
    )
    .collect()
}

/// Whether this process was started by an MPI launcher.
fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

fn cpu_features() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[allow(unused_mut)]
    let mut feats: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            feats.push("avx2");
        }
        if is_x86_feature_detected!("fma") {
            feats.push("fma");
        }
        if is_x86_feature_detected!("avx512f") {
            feats.push("avx512f");
        }
    }
    format!("{model}; {}", feats.join(" "))
}

/// The canonical config text and its SHA-256 (the output path is left out, so moving
/// the file does not change the hash).
pub fn config_identity(cfg: &Config) -> (String, String) {
    let text = cfg.to_toml_string();
    let mut hashed = cfg.clone();
    hashed.output.path = PathBuf::new();
    let digest = Sha256::digest(hashed.to_toml_string().as_bytes());
    let hex = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    (text, hex)
}

/// The conventions recorded with the results (see SCIENCE.md).
pub fn conventions(cfg: &Config, data_description: &str) -> Vec<(String, String)> {
    let s = &cfg.sharpness;
    let method = match s.method {
        crate::config::SharpnessMethod::Lanczos => format!(
            "Lanczos with full reorthogonalization on exact Hessian-vector products (R-operator); stops at relative residual ||Hv - lambda v||/|lambda| <= {} or {} HVPs; warm start from the previous eigenvector: {} (the first measurement after initialization starts cold)",
            s.tol, s.max_iter, s.warm_start
        ),
        crate::config::SharpnessMethod::Power => format!(
            "power iteration, {} iterations, on exact Hessian-vector products; warm start: {}",
            s.power_iters, s.warm_start
        ),
    };
    let v = |k: &str, v: String| (k.to_string(), v);
    vec![
        v("loss", format!("MSE: L = alpha/(2 B k) sum_i sum_j (f_ij - y_ij)^2 with alpha = {} (loss_scale), k outputs, one-hot targets; sharpness values are in these units", cfg.model.loss_scale)),
        v("sharpness", "largest algebraic eigenvalue of the full Hessian of the loss (not Gauss-Newton) on the measurement set".into()),
        v("sharpness_method", method),
        v("parameterization", format!(
            "{:?}: sigma2_hidden = {}, sigma2_readout = {}, readout = {:?}, bias = {}, activation = {:?}; sp: W ~ N(0, sigma2/fan_in), h = W a; ntk: W ~ N(0, 1), h = sqrt(sigma2/fan_in) W a",
            cfg.model.parameterization, cfg.model.sigma2_hidden, cfg.model.sigma2_readout, cfg.model.readout, cfg.model.bias, cfg.model.activation)),
        v("preprocessing", "inputs flattened; each example standardized on its own (mean 0, std 1 over its features)".into()),
        v("data", data_description.to_string()),
        v("learning_rate", "eta = c / lambda0, lambda0 = sharpness at initialization of the (depth, width, seed) network, computed once per line".into()),
        v("training", format!(
            "plain SGD (no momentum, no weight decay), batch {} drawn without replacement from a fresh seeded permutation each epoch (last partial batch dropped), {} steps, precision {:?}; step t = state after t SGD steps; loss on the training subset and sharpness every {} steps",
            cfg.train.batch_size, cfg.train.steps, cfg.train.precision, cfg.sharpness.every)),
        v("divergence", format!("a minibatch loss or measured training loss at state t above {} or not finite; the run stops and diverged_at = t", cfg.train.divergence_loss)),
        v("seeds", "init, SGD-order and Lanczos-start streams derived from (seed, role, depth, width); independent of rank count and task order".into()),
    ]
}

fn par_of(threads: usize) -> faer::Par {
    if threads <= 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    }
}

/// Runs `sharpsweep sweep`: every rank calls this; rank 0 writes the file and reports.
pub fn run_sweep(opts: &SweepOptions) -> Result<SweepSummary, SweepError> {
    faer::set_global_parallelism(faer::Par::Seq);
    // MPI, only when a launcher started us.
    let universe = if launched_by_mpi() {
        let (u, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| SweepError::MpiInit("MPI was already initialised".into()))?;
        Some(u)
    } else {
        None
    };
    let world = universe.as_ref().map(|u| u.world());
    if world.as_ref().is_some_and(|w| w.size() > 1) {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            eprintln!("sharpsweep: a panic on one rank aborts the whole MPI job");
            // SAFETY: MPI is initialised; MPI_Abort never returns.
            unsafe {
                mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 70);
            }
        }));
    }
    let size = world.as_ref().map_or(1, |w| w.size() as usize);
    let rank = world.as_ref().map_or(0, |w| w.rank() as usize);
    for (var, expected) in launcher_sizes() {
        if expected != size {
            return Err(SweepError::WorldSize {
                world: size,
                var,
                expected,
            });
        }
    }
    let drain = drain::drain_flag(opts.deadline)?;

    let (mut cfg, _) = Config::load(&opts.config, &opts.overrides)?;
    if let Some(out) = &opts.out {
        cfg.output.path = out.clone();
    }
    match cfg.train.precision {
        Precision::F32 => sweep_typed::<f32>(&cfg, opts, world.as_ref(), rank, size, &drain),
        Precision::F64 => sweep_typed::<f64>(&cfg, opts, world.as_ref(), rank, size, &drain),
    }
}

fn sweep_typed<T: Float>(
    cfg: &Config,
    opts: &SweepOptions,
    world: Option<&mpi::topology::SimpleCommunicator>,
    rank: usize,
    size: usize,
    drain: &std::sync::atomic::AtomicBool,
) -> Result<SweepSummary, SweepError> {
    let path = cfg.output.path.clone();
    let keys = grid::expand(cfg);
    let problem = Problem::<T>::from_config(cfg)?;
    let par = par_of(opts.threads);
    let mut lines: Vec<LineKey> = keys.iter().map(LineKey::from).collect();
    lines.sort();
    lines.dedup();
    let settings = |depth: u32, width: u32| RunSettings::new(cfg, &problem, depth, width, par);
    let work = |u: &Unit| -> Outcome {
        match *u {
            Unit::Lambda0 { line } => {
                let l = lines[line];
                let est = train::lambda0(&settings(l.depth, l.width), &problem, l.seed);
                Outcome::Lambda0 {
                    line,
                    est: Lambda0Est {
                        value: est.value,
                        hvps: est.applications,
                        residual: est.residual,
                        converged: est.converged,
                    },
                }
            }
            Unit::Run { task, lambda0 } => {
                let k = keys[task];
                let est = crate::hessian::EigenEstimate {
                    value: lambda0.value,
                    vector: Vec::new(),
                    applications: lambda0.hvps,
                    residual: lambda0.residual,
                    converged: lambda0.converged,
                    stop: crate::hessian::StopReason::Converged,
                };
                let (record, _) = train::train_run(
                    &settings(k.depth, k.width),
                    &problem,
                    k.c,
                    k.seed,
                    k.sgd_seed,
                    &est,
                );
                Outcome::Run { task, record }
            }
        }
    };

    if rank != 0 {
        schedule::run_worker(world.expect("workers exist only under MPI"), &work);
        return Ok(SweepSummary::empty(path, keys.len()));
    }

    // Rank 0: open the file first, so a refusal costs nothing.
    let (config_text, config_sha256) = config_identity(cfg);
    let meta = FileMeta {
        config_text,
        config_sha256,
        conventions: conventions(cfg, &problem.description),
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("SHARPSWEEP_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        mpi_version: mpi::environment::library_version()
            .map(|s| {
                s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .replace(['\n', '\0'], " ")
            })
            .unwrap_or_else(|_| "unknown".into()),
        cpu_features: cpu_features(),
        ranks: size as u32,
        slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
    };
    let opened = if opts.resume && path.exists() {
        ResultsFile::open_resume(&path, &meta)
    } else {
        let results = Results {
            steps: cfg.train.steps,
            interp_alpha: train::interp_alpha(cfg.grid.interp_points),
            keys: keys.clone(),
            records: vec![None; keys.len()],
        };
        ResultsFile::create(&path, &meta, &results, opts.force).map(|f| (f, results))
    };
    let (mut file, existing) = match opened {
        Ok(x) => x,
        Err(e) => {
            stop_workers(world, size);
            return Err(e.into());
        }
    };
    let todo: Vec<usize> = (0..keys.len())
        .filter(|&i| existing.records[i].is_none())
        .collect();
    let mut known: Vec<(LineKey, Lambda0Est)> = Vec::new();
    let mut diverged_rows = Vec::new();
    let (mut finished, mut n_div, mut n_fail) = (0, 0, 0);
    for (i, r) in existing.records.iter().enumerate() {
        if let Some(r) = r {
            finished += 1;
            match r.status {
                RunStatus::Diverged => {
                    n_div += 1;
                    diverged_rows.push(i);
                }
                RunStatus::Failed => n_fail += 1,
                _ => {}
            }
            known.push((
                LineKey::from(&keys[i]),
                Lambda0Est {
                    value: r.lambda0,
                    hvps: r.hvps[0].max(0) as usize,
                    residual: r.residual[0],
                    converged: r.converged[0],
                },
            ));
        }
    }
    let mut master = Master::new(
        keys.clone(),
        todo,
        |k| grid::run_cost(cfg, k),
        |l| grid::lambda0_cost(cfg, l),
        &known,
        &diverged_rows,
        cfg.grid.stop_after_divergence,
    );
    let mut progress = Progress::new(keys.len(), finished, n_div, opts);
    let mut ran_now = 0;
    let sink = |o: &Outcome| -> Result<(), StoreError> {
        if let Outcome::Run { task, record } = o {
            file.write_record(*task, record)?;
            ran_now += 1;
            finished += 1;
            match record.status {
                RunStatus::Diverged => n_div += 1,
                RunStatus::Failed => n_fail += 1,
                _ => {}
            }
            progress.update(finished, n_div);
        }
        Ok(())
    };
    let loop_start = Instant::now();
    let result = schedule::run_master(&mut master, world, &work, sink, drain);
    let wall = loop_start.elapsed().as_secs_f64();
    progress.finish();
    let skipped = master.pending();
    let what = if finished == keys.len() {
        "finished".to_string()
    } else if drain.load(Ordering::Relaxed) {
        format!(
            "drained (signal or deadline): {finished} of {} runs finished",
            keys.len()
        )
    } else {
        format!(
            "stopped: {finished} of {} runs finished ({skipped} skipped after divergence)",
            keys.len()
        )
    };
    file.append_history(&format!(
        "{what}; {ran_now} runs this start on {size} rank(s)"
    ))?;
    file.close()?;
    let busy = result?;
    // Runs skipped by stop_after_divergence count as settled.
    let settled = if cfg.grid.stop_after_divergence && !drain.load(Ordering::Relaxed) {
        keys.len()
    } else {
        finished
    };
    Ok(SweepSummary {
        path,
        total: keys.len(),
        finished: settled,
        diverged: n_div,
        failed: n_fail,
        ran_now,
        is_root: true,
        busy,
        wall,
    })
}

fn stop_workers(world: Option<&mpi::topology::SimpleCommunicator>, size: usize) {
    if let Some(w) = world {
        for r in 1..size {
            w.process_at_rank(r as i32).send_with_tag(&[0u8][..], 11);
        }
    }
}

/// Rank 0's progress: a bar on a terminal, a plain line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    start_done: usize,
    started: Instant,
    last_line: Instant,
    every: f64,
    quiet: bool,
}

impl Progress {
    fn new(total: usize, done: usize, diverged: usize, opts: &SweepOptions) -> Self {
        let bar = (!opts.quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {msg}, ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_position(done as u64);
            b.set_message(format!("{diverged} diverged"));
            b
        });
        Progress {
            bar,
            total,
            start_done: done,
            started: Instant::now(),
            last_line: Instant::now(),
            every: opts.progress_every,
            quiet: opts.quiet,
        }
    }

    fn update(&mut self, done: usize, diverged: usize) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            b.set_message(format!("{diverged} diverged"));
        } else if !self.quiet
            && self.every > 0.0
            && self.last_line.elapsed().as_secs_f64() >= self.every
        {
            self.last_line = Instant::now();
            let el = self.started.elapsed().as_secs_f64();
            let now = (done - self.start_done).max(1) as f64;
            let eta = el / now * (self.total - done) as f64;
            // A closed stderr (a log pipe gone) must never stop the sweep.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "sharpsweep: {done}/{} runs done, {diverged} diverged, {:.0} s elapsed, ETA {:.0} s",
                self.total,
                el,
                eta
            );
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
