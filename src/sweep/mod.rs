//! The sweep: expand the config into tasks, partition them over MPI ranks (or run them in
//! one process), and gather every trajectory into one resumable results file. MPI
//! appears only in this module.
//!
//! - [`grid`]: the tasks of a config and the cost model;
//! - [`schedule`]: master/worker scheduling over MPI point-to-point messages;
//! - [`wire`]: the messages (work units, outcomes) and their encoding;
//! - [`drain`]: signals and deadlines that stop a sweep early without losing work;
//! - [`preflight`]: the memory a run needs, checked before anything is loaded;
//! - [`search`]: the adaptive search for the critical values (`grid.search = "adaptive"`);
//! - [`node`]: one read-only copy of the dataset per node, shared by its ranks;
//! - `launch`, `provenance`, `progress`: MPI set-up, what the file records about the run,
//!   and the progress report.

pub mod drain;
pub(crate) mod grid;
mod launch;
pub mod node;
pub mod preflight;
mod progress;
pub(crate) mod provenance;
pub(crate) mod schedule;
pub mod search;
pub(crate) mod wire;

use crate::config::{Config, ConfigError, SearchKind};
use crate::data::DataError;
use crate::model::{Float, PrecisionTask};
use crate::record::{InitKey, Results, RunStatus, TaskKey};
use crate::store::{ResultsFile, StoreError};
use crate::train::{self, Lambda0, Problem, RunSettings};
use mpi::topology::SimpleCommunicator;
use progress::Progress;
use schedule::Master;
use search::Search;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};
use wire::{Outcome, Unit};

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
    #[error("MPI world size mismatch: this process sees {world} rank(s) but the launcher set {var}={expected}: the ranks did not start as one MPI job. Under srun, the likely cause is the --mpi plugin: it must be one this binary's MPI supports (Debian/Ubuntu OpenMPI: srun --mpi=pmix; `srun --mpi=list` shows the choices; jobs/sharpsweep.slurm picks it). Otherwise the binary was built against another MPI implementation than the launcher's: rebuild it against the MPI whose mpirun/srun you use")]
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
    /// The largest run of the grid cannot fit in a rank's share of the node's memory.
    #[error("not enough memory: {0}")]
    Memory(String),
    /// Another rank could not load the dataset; that rank prints why.
    #[error("stopped: another rank could not load the dataset (its error is printed above)")]
    Remote,
    /// An environment variable the sweep reads has a value it cannot use (names it).
    #[error("{0}")]
    Environment(String),
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

fn par_of(threads: usize) -> faer::Par {
    if threads <= 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    }
}

/// Runs `sharpsweep sweep`: every rank calls this; rank 0 writes the file and reports.
pub fn run_sweep(opts: &SweepOptions) -> Result<SweepSummary, SweepError> {
    let launch = launch::launch()?;
    let deadline = opts.deadline.or_else(drain::slurm_deadline);
    let drain = drain::drain_flag(deadline)?;
    let (mut cfg, _) = Config::load(&opts.config, &opts.overrides)?;
    if let Some(out) = &opts.out {
        cfg.output.path = out.clone();
    }
    let points = cfg.axis_points()?;
    let forced = node::per_rank_forced().map_err(SweepError::Environment)?;
    if let Some(available) = preflight::memory_per_rank() {
        let world = launch.world();
        let shared = world.is_some() && node::shares(&cfg, available.2, forced);
        let keys = grid::expand(&cfg);
        preflight::check_memory(&points, &keys, available, shared).map_err(SweepError::Memory)?;
        if launch.rank == 0 && !opts.quiet {
            if let Some(need) = preflight::describe_need(&points, &keys, available, shared) {
                eprintln!("sharpsweep: memory: {need}");
            }
        }
    }
    let world = launch.world();
    cfg.train.precision.dispatch(SweepTask {
        cfg: &cfg,
        points: &points,
        opts,
        world: world.as_ref(),
        rank: launch.rank,
        size: launch.size,
        drain: &drain,
        deadline,
    })
}

/// One sweep process, before the precision is chosen.
struct SweepTask<'a> {
    cfg: &'a Config,
    /// The config of each axis point of `grid.axes` (index = `TaskKey::axis_point`; the
    /// config alone without axes): what its runs are trained with.
    points: &'a [Config],
    opts: &'a SweepOptions,
    world: Option<&'a SimpleCommunicator>,
    rank: usize,
    size: usize,
    drain: &'a AtomicBool,
    /// `--deadline`, or Slurm's end of the job less a margin.
    deadline: Option<SystemTime>,
}

impl PrecisionTask for SweepTask<'_> {
    type Output = Result<SweepSummary, SweepError>;

    fn run<T: Float>(self) -> Self::Output {
        let cfg = self.cfg;
        let (problem, loads) = node::load_problem::<T>(cfg, self.world)?;
        let par = par_of(self.opts.threads);
        // Data, precision and the file's shape are the config's; everything a run or a λ₀
        // measurement sets from the config comes from its axis point's config.
        let settings = |depth: u32, width: u32, point: u32| {
            RunSettings::new(&self.points[point as usize], &problem, depth, width, par)
        };
        let checkpoints = CheckpointPlace {
            results: cfg.output.path.clone(),
            config_sha256: cfg.identity().1,
            every: cfg.train.checkpoint_every,
            drain: self.drain,
            rank: self.rank,
        };
        let work = |u: &Unit| -> Outcome {
            match *u {
                Unit::Lambda0 { init } => Outcome::Lambda0 {
                    init,
                    est: train::lambda0(
                        &settings(init.depth, init.width, init.axis_point),
                        &problem,
                        init.seed,
                    ),
                },
                Unit::Run { task, key, lambda0 } => {
                    let s = settings(key.depth, key.width, key.axis_point);
                    let record = run_task(&s, &problem, &key, &lambda0, &checkpoints);
                    Outcome::Run { task, key, record }
                }
            }
        };
        // A fixed grid's rows are all its tasks; an adaptive search's file starts with the
        // first round of every line and grows.
        let initial = match cfg.grid.search {
            SearchKind::Grid => grid::expand(cfg),
            SearchKind::Adaptive => Search::new(cfg).resume(std::iter::empty()),
        };
        if self.rank != 0 {
            schedule::run_worker(self.world.expect("workers exist only under MPI"), &work);
            return Ok(SweepSummary::empty(cfg.output.path.clone(), initial.len()));
        }
        if !self.opts.quiet {
            eprintln!("sharpsweep: {}", loads.describe());
        }
        let meta = provenance::file_meta(cfg, &problem.description, self.size);
        // Rank 0 opens the file first, so a refusal costs no computation.
        let opened = open_results(cfg, self.opts, &meta, &initial);
        let (file, existing) = match opened {
            Ok(x) => x,
            Err(e) => {
                schedule::stop_workers(self.world);
                return Err(e.into());
            }
        };
        self.run_root(file, &existing, &work, &loads)
    }
}

/// Where and how often the runs of a sweep checkpoint themselves.
struct CheckpointPlace<'a> {
    /// The results file (checkpoints go to `FILE.checkpoints/`).
    results: PathBuf,
    /// The config's hash, which every checkpoint carries.
    config_sha256: String,
    /// `train.checkpoint_every` (0: none).
    every: usize,
    /// Set on a drain: a run stops at its next checkpoint.
    drain: &'a AtomicBool,
    /// This rank, for messages.
    rank: usize,
}

/// The checkpoint of run `key` beside the results file: `Ok(None)` when there is none,
/// `Err` (naming the file and the problem) when there is one that cannot be used.
fn load_checkpoint<T: Float>(
    place: &CheckpointPlace<'_>,
    key: &TaskKey,
    rule: crate::optim::Rule,
) -> Result<Option<train::RunCheckpoint<T>>, String> {
    let Some(bytes) = crate::store::checkpoint::load_bytes(&place.results, key)? else {
        return Ok(None);
    };
    train::checkpoint::decode(&bytes, &place.config_sha256, key, rule)
        .map(Some)
        .map_err(|e| {
            let path = crate::store::checkpoint::checkpoint_path(&place.results, key);
            format!("{}: {e}", path.display())
        })
}

/// Trains run `key`: from its checkpoint when the file has one (a run interrupted
/// earlier, continued bit for bit), saving checkpoints as `place` says. A run that a
/// drain stopped at a checkpoint comes back `Pending` (its checkpoint holds it).
fn run_task<T: Float>(
    s: &RunSettings,
    problem: &Problem<T>,
    key: &TaskKey,
    lambda0: &Lambda0,
    place: &CheckpointPlace<'_>,
) -> crate::record::RunRecord {
    use crate::store::checkpoint;
    let resume = load_checkpoint::<T>(place, key, s.rule).unwrap_or_else(|e| {
        eprintln!(
            "sharpsweep: rank {}: unusable checkpoint, the run starts over: {e}",
            place.rank
        );
        None
    });
    if let Some(ck) = &resume {
        eprintln!(
            "sharpsweep: rank {}: run c = {}, depth {}, width {}, seed {}, sgd_seed {} continues from its checkpoint at step {}",
            place.rank, key.c, key.depth, key.width, key.seed, key.sgd_seed, ck.t
        );
    }
    if resume.is_none() && place.every == 0 {
        return train::train_run(s, problem, key.c, key.seed, key.sgd_seed, lambda0).0;
    }
    let mut warned = false;
    let mut save = |ck: &train::RunCheckpoint<T>| {
        let bytes = train::checkpoint::encode(&place.config_sha256, key, ck);
        if let Err(e) = checkpoint::save_bytes(&place.results, key, &bytes) {
            if !warned {
                eprintln!(
                    "sharpsweep: rank {}: cannot write a checkpoint ({e}); the run goes on",
                    place.rank
                );
                warned = true;
            }
        }
        place.drain.load(Ordering::Relaxed)
    };
    let ckpt = train::Checkpoints {
        every: place.every,
        resume,
        save: &mut save,
    };
    let run = (key.c, key.seed, key.sgd_seed);
    match train::train_run_checkpointed(s, problem, run, lambda0, ckpt) {
        train::RunEnd::Finished(record, _) => *record,
        train::RunEnd::Interrupted(_) => {
            let mut rec = crate::record::RunRecord::unmeasured(
                lambda0.value,
                key.c / lambda0.value,
                RunStatus::Pending,
                s.steps,
                s.interp_points,
            );
            rec.seconds = f64::NAN;
            rec
        }
    }
}

/// Creates the results file (rows `keys`, all pending), or reopens it with `--resume`
/// when it exists; returns it and what it already holds.
fn open_results(
    cfg: &Config,
    opts: &SweepOptions,
    meta: &crate::store::FileMeta,
    keys: &[TaskKey],
) -> Result<(ResultsFile, Results), StoreError> {
    let path = &cfg.output.path;
    if opts.resume && path.exists() {
        // The file's own config attributes first: an edited `config` or `axes` is refused
        // before anything is written; so is a file whose runs another sharpness estimator
        // measured, if runs remain to be trained with this one.
        let (results, stored) = crate::store::read_snapshot(path)?;
        crate::store::file_config(path, &stored, &results)?;
        if stored.meta.config_sha256 == meta.config_sha256 {
            let finished = crate::store::read_results(path).map_or(results, |(r, _)| r);
            let left = runs_to_train(cfg, &finished);
            provenance::check_resume_estimator(&stored.meta.conventions, cfg, left).map_err(
                |reason| StoreError::Invalid {
                    path: path.clone(),
                    reason,
                },
            )?;
        }
        ResultsFile::open_resume(path, meta, &cfg.axes(), &grid::expand(cfg))
    } else {
        let results = Results {
            k: train::eigen_count(cfg),
            steps: cfg.train.steps,
            interp_alpha: train::interp_alpha(cfg.grid.interp_points),
            keys: keys.to_vec(),
            records: vec![None; keys.len()],
            axes: cfg.axes(),
        };
        ResultsFile::create(path, meta, &results, opts.force).map(|f| (f, results))
    }
}

/// How many runs a resume of a file holding `existing` would train: its pending runs (an
/// adaptive search's next round), less those `stop_after_divergence` skips.
fn runs_to_train(cfg: &Config, existing: &Results) -> usize {
    let plan = Plan::of(cfg, existing);
    let n = plan.todo.len();
    let mut master = Master::new(
        plan.todo,
        (0..n).collect(),
        |_: &TaskKey| 1.0,
        |_: &InitKey| 1.0,
        &[],
        &[],
        cfg.grid.stop_after_divergence,
    );
    for key in &plan.diverged {
        master.note_diverged(key);
    }
    master.runnable()
}

/// Counts of finished runs as they arrive.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    finished: usize,
    diverged: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, status: RunStatus) {
        self.finished += 1;
        match status {
            RunStatus::Diverged => self.diverged += 1,
            RunStatus::Failed => self.failed += 1,
            _ => {}
        }
    }
}

/// What rank 0 schedules at the start: the tasks to run, and what the file already knows.
struct Plan {
    /// Tasks to schedule (all to run).
    todo: Vec<TaskKey>,
    /// λ₀ of the networks with a finished run.
    known: Vec<(InitKey, Lambda0)>,
    /// Tasks already finished as diverged (for `stop_after_divergence`).
    diverged: Vec<TaskKey>,
    /// Counts of the finished runs.
    tally: Tally,
    /// The adaptive search, replayed on the file's runs.
    search: Option<Search>,
}

impl Plan {
    fn of(cfg: &Config, existing: &Results) -> Plan {
        let mut plan = Plan {
            todo: Vec::new(),
            known: Vec::new(),
            diverged: Vec::new(),
            tally: Tally::default(),
            search: None,
        };
        for (key, rec) in existing.keys.iter().zip(&existing.records) {
            match rec {
                Some(rec) => {
                    plan.tally.add(rec.status);
                    if rec.status == RunStatus::Diverged {
                        plan.diverged.push(*key);
                    }
                    plan.known
                        .push((InitKey::from(key), Lambda0::of_record(rec)));
                }
                None => plan.todo.push(*key),
            }
        }
        if cfg.grid.search == SearchKind::Adaptive {
            let mut search = Search::new(cfg);
            let finished = existing.keys.iter().zip(&existing.records);
            plan.todo = search.resume(finished.filter_map(|(k, r)| r.as_ref().map(|r| (*k, r))));
            plan.search = Some(search);
        }
        plan
    }
}

/// The history line of a sweep's end; `drain` names what drained it.
fn ending(finished: usize, total: usize, out_of_time: bool, drained: bool, drain: &str) -> String {
    if finished == total {
        "finished".to_string()
    } else if out_of_time && !drained {
        format!(
            "stopped before the deadline: {finished} of {total} runs finished; the next could \
             not finish in time (measured run times)"
        )
    } else if drained {
        format!("{drain}: {finished} of {total} runs finished")
    } else {
        format!(
            "stopped: {finished} of {total} runs finished ({} skipped after divergence)",
            total - finished
        )
    }
}

impl SweepTask<'_> {
    /// Rank 0: schedules what `existing` lacks (for an adaptive search, what its replayed
    /// state asks for, and then each round as the last one finishes), writes every
    /// outcome, reports; `loads` says how the ranks got their data (for the history).
    fn run_root<W>(
        &self,
        mut file: ResultsFile,
        existing: &Results,
        work: &W,
        loads: &node::DataLoads,
    ) -> Result<SweepSummary, SweepError>
    where
        W: Fn(&Unit) -> Outcome + Sync,
    {
        let cfg = self.cfg;
        let Plan {
            todo,
            known,
            diverged,
            mut tally,
            mut search,
        } = Plan::of(cfg, existing);
        file.add_pending(&todo);
        let total = file.n_runs();
        let mut master = self.master(todo, &known, &diverged);
        // A resumed start predicts its first runs from the file's earlier run times.
        for (key, rec) in existing.keys.iter().zip(&existing.records) {
            if let Some(rec) = rec {
                master.note_earlier_run(key, rec.seconds);
            }
        }
        let mut progress = Progress::new(total, tally.finished, tally.diverged, self.opts);
        let mut ran_now = 0;
        let sink = |o: &Outcome| -> Result<Vec<TaskKey>, StoreError> {
            let Outcome::Run { key, record, .. } = o else {
                return Ok(Vec::new());
            };
            if record.status == RunStatus::Pending {
                // Stopped by the drain at a checkpoint: it stays pending, and its
                // checkpoint continues it on resume.
                return Ok(Vec::new());
            }
            let Some(search) = search.as_mut() else {
                file.write_record(key, record)?;
                let _ = crate::store::checkpoint::remove(&cfg.output.path, key);
                ran_now += 1;
                tally.add(record.status);
                progress.update(tally.finished, tally.diverged);
                return Ok(Vec::new());
            };
            let mut record = record.clone();
            record.search_round = search.round_of(key);
            file.write_record(key, &record)?;
            let _ = crate::store::checkpoint::remove(&cfg.output.path, key);
            let next = search.finished(key, &record);
            file.add_pending(&next);
            progress.set_total(file.n_runs());
            ran_now += 1;
            tally.add(record.status);
            progress.update(tally.finished, tally.diverged);
            Ok(next)
        };
        let loop_start = Instant::now();
        let result = schedule::run_master(&mut master, self.world, work, sink, self.drain);
        let wall = loop_start.elapsed().as_secs_f64();
        progress.finish();
        let busy = result.map(|busy| (busy, wall));
        self.close_out(file, &master, (tally, ran_now), busy, loads)
    }

    /// The scheduler of `todo` (grid order), given the λ₀ of the `known` networks and the
    /// runs already `diverged`; with the deadline when runs do not checkpoint.
    fn master(
        &self,
        todo: Vec<TaskKey>,
        known: &[(InitKey, Lambda0)],
        diverged: &[TaskKey],
    ) -> Master<'_> {
        let n = todo.len();
        let mut master = Master::new(
            todo,
            (0..n).collect(),
            |k| grid::run_cost(&self.points[k.axis_point as usize], k),
            |l| grid::lambda0_cost(&self.points[l.axis_point as usize], l),
            known,
            &[],
            self.cfg.grid.stop_after_divergence,
        );
        for key in diverged {
            master.note_diverged(key);
        }
        // Runs that checkpoint are started even when they cannot finish by the deadline:
        // the drain at the deadline stops them at their next checkpoint, and they go on
        // from it at the next start.
        if self.cfg.train.checkpoint_every == 0 {
            master.set_deadline(self.deadline.map(drain::instant_of));
        }
        master
    }

    /// Rank 0 after the scheduling loop: clears the checkpoints of finished runs, writes the
    /// history line of this start (`ran_now` runs), closes the file and sums up; `busy` is
    /// the loop's outcome (each rank's busy seconds) and its wall-clock seconds; the line
    /// also says how the dataset was read (`loads`).
    fn close_out(
        &self,
        mut file: ResultsFile,
        master: &Master<'_>,
        (tally, ran_now): (Tally, usize),
        busy: Result<(Vec<f64>, f64), StoreError>,
        loads: &node::DataLoads,
    ) -> Result<SweepSummary, SweepError> {
        let cfg = self.cfg;
        if tally.finished == file.n_runs() {
            // Every run is in the file: any checkpoint left (a kill between a run's commit
            // and its checkpoint's removal) belongs to a finished run.
            crate::store::checkpoint::remove_all(&cfg.output.path);
        } else {
            crate::store::checkpoint::remove_dir_if_empty(&cfg.output.path);
        }
        let total = file.n_runs();
        let drained = self.drain.load(Ordering::Relaxed);
        let drain_cause = drain::describe_cause(drain::drain_cause(), self.deadline);
        let what = ending(
            tally.finished,
            total,
            master.out_of_time(),
            drained,
            &drain_cause,
        );
        if drained && tally.finished < total {
            eprintln!("sharpsweep: {what}");
        }
        file.append_history(&format!(
            "{what}; {ran_now} runs this start on {} rank(s); {}",
            self.size,
            loads.describe()
        ))?;
        file.close()?;
        let (busy, wall) = busy?;
        // Runs skipped by stop_after_divergence count as settled.
        let settled = if cfg.grid.stop_after_divergence && !drained && !master.out_of_time() {
            total
        } else {
            tally.finished
        };
        Ok(SweepSummary {
            path: cfg.output.path.clone(),
            total,
            finished: settled,
            diverged: tally.diverged,
            failed: tally.failed,
            ran_now,
            is_root: true,
            busy,
            wall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{OptimizerState, Rule};
    use crate::record::RunRecord;
    use crate::store::checkpoint::{checkpoint_path, save_bytes};
    use crate::train::RunCheckpoint;

    #[test]
    fn load_checkpoint_reads_its_run_and_names_the_file_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        let drain = AtomicBool::new(false);
        let place = CheckpointPlace {
            results: dir.path().join("r.h5"),
            config_sha256: "cfg".into(),
            every: 1,
            drain: &drain,
            rank: 0,
        };
        let key = TaskKey {
            c: 2.0,
            depth: 2,
            width: 4,
            seed: 1,
            sgd_seed: 2,
            axis_point: 0,
        };
        let path = checkpoint_path(&place.results, &key);
        let load = |rule| load_checkpoint::<f64>(&place, &key, rule);
        let refused = |rule, why: &str| {
            let Err(e) = load(rule) else {
                panic!("refused")
            };
            assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
            assert!(e.contains(why), "{e}");
        };
        assert!(load(Rule::Sgd).unwrap().is_none());

        let ck = RunCheckpoint {
            t: 1,
            params: vec![0.5f64, -1.0],
            opt: OptimizerState::new(Rule::Sgd, 2, None),
            epochs: 0,
            cursor: 1,
            record: RunRecord::unmeasured(3.0, 0.5, RunStatus::Done, 2, 0),
            warm: Default::default(),
            seconds: 0.25,
        };
        let save = |hash: &str| {
            let bytes = train::checkpoint::encode(hash, &key, &ck);
            save_bytes(&place.results, &key, &bytes).unwrap();
        };
        save("cfg");
        let back = load(Rule::Sgd).unwrap().expect("a checkpoint");
        assert_eq!((back.t, back.params), (1, vec![0.5, -1.0]));
        let Err(e) = load_checkpoint::<f32>(&place, &key, Rule::Sgd) else {
            panic!("f64 bytes read for an f32 run")
        };
        assert!(
            e.starts_with(&format!("{}: precision f64", path.display())),
            "{e}"
        );
        refused(Rule::Momentum(0.9), "");
        save("another config");
        refused(Rule::Sgd, "written under config another config, not cfg");
        std::fs::write(&path, b"not a checkpoint at all").unwrap();
        refused(Rule::Sgd, "bad magic");
        // Unreadable (a directory where the file should be): the read error names it too.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        refused(Rule::Sgd, "");
    }
}
