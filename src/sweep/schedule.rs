//! Master/worker scheduling. Rank 0 is the master — it hands out work units
//! largest-estimated-cost first, receives outcomes, and is the only writer — and it is
//! also a worker (a compute thread beside the message loop). Other ranks are workers.
//! Point-to-point messages only (rsmpi has no one-sided operations). Without MPI the
//! same master runs with its local worker alone.

use super::grid;
use super::wire::{self, Outcome, Unit};
use crate::record::{InitKey, LineKey, RunStatus, TaskKey};
use crate::train::Lambda0;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::traits::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum LineState {
    Unknown,
    Running,
    Known(Lambda0),
}

/// What the master answers a worker that asks for work.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Do this.
    Work(Unit),
    /// Nothing is ready yet (runs wait for a λ₀ in progress): ask again later.
    Wait,
    /// No more work for this worker.
    Stop,
}

/// The master's bookkeeping: which units are pending, in flight and done. Tasks are
/// numbered in the order they were added; an adaptive search adds tasks as results
/// arrive ([`Master::add_tasks`]).
pub struct Master<'a> {
    keys: Vec<TaskKey>,
    /// The networks whose λ₀ the tasks need (first those of [`grid::init_keys`]).
    inits: Vec<InitKey>,
    /// Index into `inits` of each network.
    init_index: std::collections::HashMap<InitKey, usize>,
    /// Index into `inits` of each task.
    init_of: Vec<usize>,
    /// The cost model of a run and of a λ₀.
    cost: Box<dyn Fn(&TaskKey) -> f64 + 'a>,
    lambda0_cost: Box<dyn Fn(&InitKey) -> f64 + 'a>,
    /// Estimated cost of each network's λ₀.
    init_cost: Vec<f64>,
    lambda: Vec<LineState>,
    /// Tasks not handed out yet, most expensive first (then by line, then c ascending).
    pending: Vec<usize>,
    stop_after_divergence: bool,
    /// Smallest diverged c per (depth, width, seed, sgd_seed) line.
    diverged_c: std::collections::HashMap<LineKey, f64>,
    in_flight: usize,
    draining: bool,
    /// Estimated cost of each task (the cost model's flops).
    costs: Vec<f64>,
    /// When the last unit must have finished (a drain starts there anyway).
    deadline: Option<Instant>,
    /// (seconds, estimated cost) summed over the runs finished in this start: the measured
    /// speed that predicts how long a run will take.
    measured: (f64, f64),
    /// The same sums over the runs of earlier starts (their `seconds` in the file): the
    /// prediction until this start has measured a run of its own.
    earlier: (f64, f64),
    /// Work was left undone because it could not finish before the deadline.
    out_of_time: bool,
}

/// A run is predicted to take its cost times the measured seconds per unit of cost, times
/// this margin (runs of one network vary with c, and a rank may be slower).
const TIME_MARGIN: f64 = 1.5;

impl<'a> Master<'a> {
    /// Schedules the tasks `todo` (rows of `keys`) with costs `cost` (per task) and
    /// `lambda0_cost` (per network). `known` gives λ₀ of networks already measured
    /// (resume); `diverged` are tasks already finished as diverged (for
    /// `stop_after_divergence`).
    pub fn new(
        keys: Vec<TaskKey>,
        todo: Vec<usize>,
        cost: impl Fn(&TaskKey) -> f64 + 'a,
        lambda0_cost: impl Fn(&InitKey) -> f64 + 'a,
        known: &[(InitKey, Lambda0)],
        diverged: &[usize],
        stop_after_divergence: bool,
    ) -> Self {
        let mut m = Master {
            keys: Vec::new(),
            inits: Vec::new(),
            init_index: Default::default(),
            init_of: Vec::new(),
            cost: Box::new(cost),
            lambda0_cost: Box::new(lambda0_cost),
            init_cost: Vec::new(),
            lambda: Vec::new(),
            pending: Vec::new(),
            stop_after_divergence,
            diverged_c: Default::default(),
            in_flight: 0,
            draining: false,
            costs: Vec::new(),
            deadline: None,
            measured: (0.0, 0.0),
            earlier: (0.0, 0.0),
            out_of_time: false,
        };
        for init in grid::init_keys(&keys) {
            m.network(init);
        }
        for (init, est) in known {
            let l = m.network(*init);
            m.lambda[l] = LineState::Known(*est);
        }
        for k in &keys {
            let l = m.network(InitKey::from(k));
            m.init_of.push(l);
            m.costs.push((m.cost)(k));
        }
        m.keys = keys;
        for &t in diverged {
            m.note_divergence(t);
        }
        m.schedule(todo);
        m
    }

    /// The index of network `init`, added when new.
    fn network(&mut self, init: InitKey) -> usize {
        if let Some(&l) = self.init_index.get(&init) {
            return l;
        }
        self.inits.push(init);
        self.init_cost.push((self.lambda0_cost)(&init));
        self.lambda.push(LineState::Unknown);
        self.init_index.insert(init, self.inits.len() - 1);
        self.inits.len() - 1
    }

    /// Adds tasks `todo` to the pending ones, keeping them most expensive first (then by
    /// network, then c ascending).
    fn schedule(&mut self, todo: Vec<usize>) {
        self.pending.extend(todo);
        let (costs, init_of, keys) = (&self.costs, &self.init_of, &self.keys);
        self.pending.sort_by(|&a, &b| {
            costs[b]
                .total_cmp(&costs[a])
                .then(init_of[a].cmp(&init_of[b]))
                .then(keys[a].sgd_seed.cmp(&keys[b].sgd_seed))
                .then(keys[a].c.total_cmp(&keys[b].c))
        });
    }

    /// Adds new tasks (an adaptive search's next points) to the schedule.
    pub fn add_tasks(&mut self, new: &[TaskKey]) {
        let first = self.keys.len();
        for k in new {
            let l = self.network(InitKey::from(k));
            self.keys.push(*k);
            self.init_of.push(l);
            let c = (self.cost)(k);
            self.costs.push(c);
        }
        self.schedule((first..self.keys.len()).collect());
    }

    /// Hand out only units that are predicted to finish by `deadline` (from the speed
    /// measured on the runs finished so far; before the first, everything is handed out).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// A run of an earlier start (a resumed file) took `seconds` for task key `key`: the
    /// first runs of this start are predicted from such runs until one of its own
    /// finishes (the hardware may differ between starts).
    pub fn note_earlier_run(&mut self, key: &TaskKey, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            let cost = (self.cost)(key);
            if cost.is_finite() && cost > 0.0 {
                self.earlier.0 += seconds;
                self.earlier.1 += cost;
            }
        }
    }

    /// Whether work was left undone because it could not finish before the deadline.
    pub fn out_of_time(&self) -> bool {
        self.out_of_time
    }

    /// Whether a unit of estimated `cost` is predicted to finish before the deadline.
    fn fits(&self, cost: f64) -> bool {
        let Some(deadline) = self.deadline else {
            return true;
        };
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let (secs, measured_cost) = if self.measured.1 > 0.0 {
            self.measured
        } else {
            self.earlier
        };
        if measured_cost <= 0.0 {
            return true;
        }
        let predicted = TIME_MARGIN * cost * secs / measured_cost;
        predicted.is_finite() && predicted < (deadline - now).as_secs_f64()
    }

    /// Units handed out and not yet returned.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Stop handing out work (signal or deadline): in-flight units still come back.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    fn note_divergence(&mut self, task: usize) {
        let k = self.keys[task];
        self.note_diverged(&k);
    }

    /// Run `k` (finished before this start) diverged: for `stop_after_divergence`.
    pub fn note_diverged(&mut self, k: &TaskKey) {
        let e = self
            .diverged_c
            .entry(LineKey::from(k))
            .or_insert(f64::INFINITY);
        *e = e.min(k.c);
    }

    fn skipped(&self, task: usize) -> bool {
        let k = &self.keys[task];
        self.stop_after_divergence
            && self
                .diverged_c
                .get(&LineKey::from(k))
                .is_some_and(|&c| k.c > c)
    }

    /// How many of the tasks not handed out yet would run: all but those that
    /// `stop_after_divergence` skips after the divergences noted so far.
    pub fn runnable(&self) -> usize {
        self.pending.iter().filter(|&&t| !self.skipped(t)).count()
    }

    /// The next unit for an idle worker.
    pub fn next_unit(&mut self) -> Next {
        if self.draining {
            return Next::Stop;
        }
        if self.stop_after_divergence {
            let pending = std::mem::take(&mut self.pending);
            self.pending = pending.into_iter().filter(|&t| !self.skipped(t)).collect();
        }
        // λ₀ first: it unblocks every run of its network. Most expensive network first.
        let mut best: Option<usize> = None;
        for &t in &self.pending {
            let l = self.init_of[t];
            if self.lambda[l] == LineState::Unknown
                && best.is_none_or(|b| self.init_cost[l] > self.init_cost[b])
            {
                best = Some(l);
            }
        }
        if let Some(l) = best {
            if !self.fits(self.init_cost[l]) {
                self.out_of_time = true;
                return Next::Stop;
            }
            self.lambda[l] = LineState::Running;
            self.in_flight += 1;
            return Next::Work(Unit::Lambda0 {
                init: self.inits[l],
            });
        }
        let mut any_ready = false;
        let mut chosen = None;
        for (i, &t) in self.pending.iter().enumerate() {
            if matches!(self.lambda[self.init_of[t]], LineState::Known(_)) {
                any_ready = true;
                // Most expensive first, but a run that cannot finish in time gives way to
                // a cheaper one that can.
                if self.fits(self.costs[t]) {
                    chosen = Some(i);
                    break;
                }
            }
        }
        match chosen {
            Some(i) => {
                let task = self.pending.remove(i);
                let LineState::Known(lambda0) = self.lambda[self.init_of[task]] else {
                    unreachable!()
                };
                self.in_flight += 1;
                Next::Work(Unit::Run {
                    task,
                    key: self.keys[task],
                    lambda0,
                })
            }
            None if any_ready => {
                self.out_of_time = true;
                Next::Stop
            }
            None if self.pending.is_empty() => Next::Stop,
            None => Next::Wait,
        }
    }

    /// Records an outcome (the caller writes run records to the file).
    pub fn complete(&mut self, o: &Outcome) {
        self.in_flight -= 1;
        match o {
            Outcome::Lambda0 { init, est } => {
                if let Some(&l) = self.init_index.get(init) {
                    self.lambda[l] = LineState::Known(*est);
                }
            }
            Outcome::Run { task, record, .. } => {
                if record.status == RunStatus::Diverged {
                    self.note_divergence(*task);
                }
                if record.seconds.is_finite() && record.seconds > 0.0 {
                    self.measured.0 += record.seconds;
                    self.measured.1 += self.costs[*task];
                }
            }
        }
    }
}

const TAG_REQUEST: i32 = 1;
const TAG_OUTCOME: i32 = 2;
const TAG_UNIT: i32 = 10;
const TAG_STOP: i32 = 11;
const TAG_BYE: i32 = 12;

/// Hands outcome `o` to the master and to `sink`, and schedules the tasks the sink
/// returns; after a sink error, outcomes only reach the master.
fn deliver<E>(
    master: &mut Master,
    o: &Outcome,
    sink: &mut impl FnMut(&Outcome) -> Result<Vec<TaskKey>, E>,
    result: &mut Result<(), E>,
) {
    master.complete(o);
    if result.is_ok() {
        match sink(o) {
            Ok(new) => master.add_tasks(&new),
            Err(e) => *result = Err(e),
        }
    }
}

/// Runs the master on rank 0 (or alone, `world = None`): its own compute thread plus,
/// with MPI, the other ranks. `sink` receives every outcome in arrival order (it writes
/// run records) and returns the tasks it creates (an adaptive search's next points);
/// `drain` is polled, and once set no new work is handed out.
/// Returns, when every worker has stopped, each rank's busy seconds (time spent in
/// units; index = rank).
pub fn run_master<W, S, E>(
    master: &mut Master,
    world: Option<&mpi::topology::SimpleCommunicator>,
    work: &W,
    mut sink: S,
    drain: &AtomicBool,
) -> Result<Vec<f64>, E>
where
    W: Fn(&Unit) -> Outcome + Sync,
    S: FnMut(&Outcome) -> Result<Vec<TaskKey>, E>,
{
    let size = world.map_or(1, |w| w.size() as usize);
    std::thread::scope(|scope| {
        let (to_local, local_units) = mpsc::channel::<Option<Unit>>();
        let (local_done, from_local) = mpsc::channel::<Outcome>();
        let local = scope.spawn(move || {
            let mut busy = 0.0;
            while let Ok(Some(u)) = local_units.recv() {
                let t = std::time::Instant::now();
                let o = work(&u);
                busy += t.elapsed().as_secs_f64();
                if local_done.send(o).is_err() {
                    break;
                }
            }
            busy
        });
        let mut busy = vec![f64::NAN; size];
        let mut byes = 1; // rank 0 says no goodbye
                          // Workers waiting for an answer: 0 = the local thread, r = rank r.
        let mut idle: VecDeque<usize> = VecDeque::from([0]);
        let mut stopped = vec![false; size];
        let mut result: Result<(), E> = Ok(());
        // An outcome of the local worker that arrived while the loop waited for one.
        let mut arrived: Option<Outcome> = None;
        loop {
            let mut progressed = false;
            while let Some(o) = arrived.take().or_else(|| from_local.try_recv().ok()) {
                deliver(master, &o, &mut sink, &mut result);
                idle.push_back(0);
                progressed = true;
            }
            if let Some(w) = world {
                while let Some(probed) = w.any_process().immediate_matched_probe() {
                    let (bytes, status) = probed.matched_receive_vec::<u8>();
                    if status.tag() == TAG_BYE {
                        let secs = f64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
                        busy[status.source_rank() as usize] = secs;
                        byes += 1;
                        progressed = true;
                        continue;
                    }
                    if status.tag() == TAG_OUTCOME {
                        let o = wire::decode_outcome(&bytes)
                            .unwrap_or_else(|e| panic!("from rank {}: {e}", status.source_rank()));
                        deliver(master, &o, &mut sink, &mut result);
                    }
                    idle.push_back(status.source_rank() as usize);
                    progressed = true;
                }
            }
            if result.is_err() || drain.load(Ordering::Relaxed) {
                master.drain();
            }
            idle = answer_idle(master, idle, world, &to_local, &mut stopped);
            if stopped.iter().all(|s| *s) && master.in_flight() == 0 && byes == size {
                break;
            }
            if !progressed {
                // Wake as soon as the local worker finishes; poll the other ranks (and the
                // drain flag) meanwhile. A fixed sleep here would cap a sweep of short runs
                // at one run per sleep.
                let wait = if world.is_some() {
                    Duration::from_micros(200)
                } else {
                    Duration::from_millis(50)
                };
                arrived = from_local.recv_timeout(wait).ok();
            }
        }
        busy[0] = local.join().expect("local worker thread");
        result.map(|()| busy)
    })
}

/// Hands a unit (or a stop) to each idle worker — 0 is rank 0's compute thread, r > 0
/// rank r — and returns those that must wait for a λ₀ in progress.
fn answer_idle(
    master: &mut Master,
    mut idle: VecDeque<usize>,
    world: Option<&mpi::topology::SimpleCommunicator>,
    to_local: &mpsc::Sender<Option<Unit>>,
    stopped: &mut [bool],
) -> VecDeque<usize> {
    let mut waiting = VecDeque::new();
    while let Some(r) = idle.pop_front() {
        match master.next_unit() {
            Next::Work(u) => {
                if r == 0 {
                    to_local.send(Some(u)).expect("local worker alive");
                } else {
                    let bytes = wire::encode_unit(&u);
                    world
                        .expect("remote workers exist only under MPI")
                        .process_at_rank(r as i32)
                        .send_with_tag(&bytes[..], TAG_UNIT);
                }
            }
            Next::Wait => waiting.push_back(r),
            Next::Stop => {
                if r == 0 {
                    let _ = to_local.send(None);
                } else {
                    send_stop(world.expect("remote workers exist only under MPI"), r);
                }
                stopped[r] = true;
            }
        }
    }
    waiting
}

fn send_stop(world: &mpi::topology::SimpleCommunicator, rank: usize) {
    world
        .process_at_rank(rank as i32)
        .send_with_tag(&[0u8][..], TAG_STOP);
}

/// Tells every worker rank to stop before any work was handed out (rank 0 could not
/// open the results file).
pub fn stop_workers(world: Option<&mpi::topology::SimpleCommunicator>) {
    if let Some(w) = world {
        for r in 1..w.size() as usize {
            send_stop(w, r);
        }
    }
}

/// The loop of ranks 1..N: ask rank 0 for work, do it, send the outcome (which also asks
/// for more), until told to stop; then report the busy seconds to rank 0.
pub fn run_worker<W: Fn(&Unit) -> Outcome>(world: &mpi::topology::SimpleCommunicator, work: &W) {
    let root = world.process_at_rank(0);
    root.send_with_tag(&[0u8][..], TAG_REQUEST);
    let mut busy = 0.0f64;
    loop {
        let (bytes, status) = root.receive_vec::<u8>();
        if status.tag() == TAG_STOP {
            break;
        }
        let t = std::time::Instant::now();
        let unit = wire::decode_unit(&bytes).unwrap_or_else(|e| panic!("from rank 0: {e}"));
        let o = work(&unit);
        busy += t.elapsed().as_secs_f64();
        root.send_with_tag(&wire::encode_outcome(&o)[..], TAG_OUTCOME);
    }
    root.send_with_tag(&busy.to_le_bytes()[..], TAG_BYE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<TaskKey> {
        let mut k = Vec::new();
        for width in [8, 64] {
            for c in [1.0, 2.0, 4.0] {
                k.push(TaskKey {
                    c,
                    depth: 2,
                    width,
                    seed: 1,
                    sgd_seed: 1,
                    axis_point: 0,
                });
            }
        }
        k
    }

    fn est() -> Lambda0 {
        Lambda0 {
            value: 1.0,
            hvps: 3,
            residual: 0.0,
            converged: true,
            stop: None,
        }
    }

    #[test]
    fn lambda0_first_then_runs_largest_first_and_waits() {
        let k = keys();
        let mut m = Master::new(
            k.clone(),
            (0..6).collect(),
            |k| k.width as f64,
            |l| l.width as f64,
            &[],
            &[],
            false,
        );
        // widest network's λ₀ first
        let Next::Work(Unit::Lambda0 { init: l1 }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(l1.width, 64);
        let Next::Work(Unit::Lambda0 { init: l2 }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(l2.width, 8);
        assert_eq!(m.next_unit(), Next::Wait);
        m.complete(&Outcome::Lambda0 {
            init: l2,
            est: est(),
        });
        // only the narrow line is ready
        let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(k[task].width, 8);
        assert_eq!(k[task].c, 1.0);
        m.complete(&Outcome::Lambda0 {
            init: l1,
            est: est(),
        });
        let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(k[task].width, 64);
    }

    fn run_outcome(task: usize, seconds: f64) -> Outcome {
        let mut record = crate::record::RunRecord::unmeasured(1.0, 1.0, RunStatus::Done, 2, 0);
        record.seconds = seconds;
        Outcome::Run {
            task,
            key: TaskKey::default(),
            record,
        }
    }

    #[test]
    fn no_run_starts_that_its_measured_time_says_cannot_finish_by_the_deadline() {
        let k = keys();
        let l8 = InitKey {
            depth: 2,
            width: 8,
            seed: 1,
            axis_point: 0,
        };
        let l64 = InitKey { width: 64, ..l8 };
        // Costs: width 64 runs cost 8 times the width 8 ones.
        let mut m = Master::new(
            k.clone(),
            (0..6).collect(),
            |k| k.width as f64,
            |_| 1.0,
            &[(l8, est()), (l64, est())],
            &[],
            false,
        );
        m.set_deadline(Some(Instant::now() + Duration::from_secs(10)));
        // Nothing measured yet: the most expensive run goes out.
        let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(k[task].width, 64);
        // It took 4 s for cost 64: a width-64 run now predicts 6 s (with the margin), fits
        // in the 10 s left; a run of 2 s per unit of cost would not.
        m.complete(&run_outcome(task, 4.0));
        let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(k[task].width, 64);
        m.complete(&run_outcome(task, 40.0)); // slower: 44 s for 128 units of cost
        assert!(!m.out_of_time());
        // A width-64 run now predicts 1.5·64·44/128 = 33 s > 10 s; width 8 predicts 4.1 s.
        let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
            panic!()
        };
        assert_eq!(k[task].width, 8, "a cheaper run that fits goes first");
        for _ in 0..2 {
            let Next::Work(Unit::Run { task, .. }) = m.next_unit() else {
                panic!()
            };
            assert_eq!(k[task].width, 8);
        }
        // Only width-64 runs are left, and none can finish in time.
        assert_eq!(m.next_unit(), Next::Stop);
        assert!(m.out_of_time());
        // A resumed start predicts its first runs from the file's earlier runs: 20 s for
        // cost 8 predicts 1.5·64·20/8 = 240 s for a width-64 run, 30 s for width 8: none
        // fits in 10 s, before any run of this start has finished.
        let mut resumed = Master::new(
            k.clone(),
            (0..6).collect(),
            |k| k.width as f64,
            |_| 1.0,
            &[(l8, est()), (l64, est())],
            &[],
            false,
        );
        resumed.note_earlier_run(&k[0], 20.0);
        resumed.note_earlier_run(&k[0], f64::NAN);
        resumed.set_deadline(Some(Instant::now() + Duration::from_secs(10)));
        assert_eq!(resumed.next_unit(), Next::Stop);
        assert!(resumed.out_of_time());
        // Past the deadline nothing goes out, not even a λ₀.
        let mut late = Master::new(k, vec![0], |_| 1.0, |_| 1.0, &[], &[], false);
        late.set_deadline(Some(Instant::now()));
        assert_eq!(late.next_unit(), Next::Stop);
        assert!(late.out_of_time());
    }

    #[test]
    fn stop_after_divergence_skips_larger_c_and_drain_stops() {
        let k = keys();
        let l = InitKey {
            depth: 2,
            width: 8,
            seed: 1,
            axis_point: 0,
        };
        let l64 = InitKey {
            depth: 2,
            width: 64,
            seed: 1,
            axis_point: 0,
        };
        let mut m = Master::new(
            k.clone(),
            vec![1, 2, 4, 5],
            |_| 1.0,
            |_| 1.0,
            &[(l, est()), (l64, est())],
            &[0, 3],
            true,
        );
        // c = 1 diverged on both lines: nothing left
        assert_eq!(m.next_unit(), Next::Stop);
        let mut m = Master::new(
            k,
            vec![0, 1, 2],
            |_| 1.0,
            |_| 1.0,
            &[(l, est())],
            &[],
            false,
        );
        assert!(matches!(m.next_unit(), Next::Work(_)));
        m.drain();
        assert_eq!(m.next_unit(), Next::Stop);
        assert_eq!(m.in_flight(), 1);
    }
}
