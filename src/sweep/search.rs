//! The adaptive search for the critical values (`grid.search = "adaptive"`).
//!
//! Every (depth, width, axis point, seed, sgd_seed) line searches on its own, over the **lattice**
//! x = start + k·h of `grid.log2_c` with h = step/2ʲ ≤ `grid.resolution`
//! ([`Config::lattice_spacing`]), so a search and a fixed grid of step h meet at
//! identical c values (and identical runs there).
//!
//! A line works in **rounds**. Each round is a batch of lattice points computed from the
//! runs of the earlier rounds alone; the next round starts when every run of the batch has
//! finished. So which c a line tries depends only on its finished runs and the config —
//! never on rank count, timing or order — and a resume rebuilds the state by replaying the
//! rounds on the runs in the file ([`Search::resume`]).
//!
//! 1. **Coarse scan**: the points start, start + step, … (and the range's last lattice
//!    point), ascending, `grid.probes` per round, until one diverges or the range ends.
//! 2. **Refinement**: for each criterion — c_loss, c_sharp (with `grid.eps_sharp`), c_max,
//!    and c_barrier when `grid.interp_points` > 0 — the first bracket (the last c where it
//!    is known not to hold below the first c where it holds, as `analyze` defines them)
//!    gets `grid.probes` points evenly inside it (bisection for 1) until it is at most
//!    `grid.resolution` wide. One run informs every criterion, and a round holds the points
//!    of every open bracket.
//!
//! The criteria are judged exactly as `analyze` judges them
//! ([`crate::analysis::critical`]), with the default early window, so the file's
//! brackets are the ones the search closed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::analysis::critical::criteria_hold;
use crate::config::Config;
use crate::record::{LineKey, RunRecord, TaskKey};

/// The c values a search may try: 2^x on the lattice, and which of them the coarse scan
/// visits.
#[derive(Clone, Debug, PartialEq)]
pub struct Lattice {
    /// c of each lattice point, ascending.
    pub c: Vec<f64>,
    /// Lattice points per coarse step (2ʲ).
    pub stride: usize,
    /// Lattice spacing h in log₂ c.
    pub spacing: f64,
}

impl Lattice {
    /// The lattice of `cfg` (its [`Config::c_values`] for an adaptive search).
    pub fn of(cfg: &Config) -> Lattice {
        let spacing = cfg.lattice_spacing();
        let step = cfg.grid.log2_c.as_ref().map_or(spacing, |r| r.step);
        Lattice {
            c: cfg.c_values(),
            stride: (step / spacing).round().max(1.0) as usize,
            spacing,
        }
    }

    /// The coarse scan's points: every `stride`-th, and the last.
    pub fn coarse(&self) -> Vec<usize> {
        let mut k: Vec<usize> = (0..self.c.len()).step_by(self.stride).collect();
        if self.c.len() > 1 && k.last() != Some(&(self.c.len() - 1)) {
            k.push(self.c.len() - 1);
        }
        k
    }

    /// The lattice point of `c`, if it is one (compared bit for bit).
    pub fn index_of(&self, c: f64) -> Option<usize> {
        self.c
            .binary_search_by(|x| x.total_cmp(&c))
            .ok()
            .filter(|&k| self.c[k].to_bits() == c.to_bits())
    }
}

/// What the search resolves and how many points it tries at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchParams {
    /// Points per round per bracket (and per coarse round).
    pub probes: usize,
    /// Target bracket width in log₂ c.
    pub resolution: f64,
    /// ε of the sharpness criterion.
    pub eps_sharp: f64,
    /// Early window of c_loss / c_sharp (steps 1..=t_max).
    pub t_max: usize,
    /// Whether c_barrier is searched too (interpolation is on).
    pub barrier: bool,
}

impl SearchParams {
    /// The search that `cfg` asks for.
    pub fn of(cfg: &Config) -> SearchParams {
        SearchParams {
            probes: cfg.grid.probes.max(1),
            resolution: cfg.grid.resolution,
            eps_sharp: cfg.grid.eps_sharp,
            t_max: crate::config::EARLY_WINDOW.min(cfg.train.steps),
            barrier: cfg.grid.interp_points > 0,
        }
    }

    fn criteria(&self) -> usize {
        if self.barrier {
            4
        } else {
            3
        }
    }
}

/// Whether each criterion holds at a finished lattice point (`None`: unknown).
type Verdicts = [Option<bool>; 4];

/// Index of c_max's criterion (diverged) in [`Verdicts`].
const DIVERGED: usize = 2;

/// One line's search.
#[derive(Clone, Debug, Default)]
struct Line {
    /// Verdicts of the runs of the finished rounds, by lattice point.
    accepted: BTreeMap<usize, Verdicts>,
    /// The round in progress: its points, and the verdicts of those finished.
    batch: BTreeSet<usize>,
    finished: BTreeMap<usize, Verdicts>,
    /// Rounds finished.
    round: u32,
    /// No further round.
    done: bool,
}

/// The search over every line of a config.
#[derive(Clone, Debug)]
pub struct Search {
    lattice: Lattice,
    params: SearchParams,
    lines: BTreeMap<LineKey, Line>,
    /// Round of every run handed out (by [`TaskKey::identity`]).
    rounds: HashMap<(u32, u32, u32, u64, u64, u64), i32>,
}

impl Search {
    /// The search of `cfg` (`grid.search = "adaptive"`), nothing run yet.
    pub fn new(cfg: &Config) -> Search {
        let lines = super::grid::lines(cfg)
            .into_iter()
            .map(|key| (key, Line::default()))
            .collect();
        Search {
            lattice: Lattice::of(cfg),
            params: SearchParams::of(cfg),
            lines,
            rounds: HashMap::new(),
        }
    }

    /// The lattice searched.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    fn key_of(line: &LineKey, c: f64) -> TaskKey {
        line.task(c)
    }

    /// Starts (or, given the finished runs of a file, resumes) every line: replays the
    /// rounds whose runs are all in `finished`, and returns the runs of each line's open
    /// round that are not — the work to do now, in line order then c ascending. Runs in
    /// `finished` that no round asks for are ignored.
    pub fn resume<'r>(
        &mut self,
        finished: impl IntoIterator<Item = (TaskKey, &'r RunRecord)>,
    ) -> Vec<TaskKey> {
        let mut have: HashMap<LineKey, BTreeMap<usize, Verdicts>> = HashMap::new();
        for (key, rec) in finished {
            if let Some(k) = self.lattice.index_of(key.c) {
                let v = criteria_hold(
                    rec,
                    self.params.t_max,
                    self.params.eps_sharp,
                    self.params.barrier,
                );
                have.entry(LineKey::from(&key)).or_default().insert(k, v);
            }
        }
        let mut todo = Vec::new();
        let keys: Vec<LineKey> = self.lines.keys().copied().collect();
        for key in keys {
            let have = have.remove(&key).unwrap_or_default();
            loop {
                let line = &self.lines[&key];
                let batch = next_batch(&self.lattice, &self.params, &line.accepted);
                let round = line.round;
                for &k in &batch {
                    let task = Self::key_of(&key, self.lattice.c[k]);
                    self.rounds.insert(task.identity(), round as i32);
                }
                let line = self.lines.get_mut(&key).expect("line exists");
                if batch.is_empty() {
                    line.done = true;
                    break;
                }
                if batch.iter().all(|k| have.contains_key(k)) {
                    line.accepted.extend(batch.iter().map(|k| (*k, have[k])));
                    line.round += 1;
                    continue;
                }
                for &k in &batch {
                    match have.get(&k) {
                        Some(v) => {
                            line.finished.insert(k, *v);
                        }
                        None => {
                            line.batch.insert(k);
                            todo.push(Self::key_of(&key, self.lattice.c[k]));
                        }
                    }
                }
                break;
            }
        }
        todo
    }

    /// Run `key` finished with `rec`: returns the line's next round once its round is
    /// complete (empty otherwise, and when the line is done).
    pub fn finished(&mut self, key: &TaskKey, rec: &RunRecord) -> Vec<TaskKey> {
        let line_key = LineKey::from(key);
        let (Some(k), Some(line)) = (self.lattice.index_of(key.c), self.lines.get_mut(&line_key))
        else {
            return Vec::new();
        };
        if !line.batch.remove(&k) {
            return Vec::new();
        }
        let v = criteria_hold(
            rec,
            self.params.t_max,
            self.params.eps_sharp,
            self.params.barrier,
        );
        line.finished.insert(k, v);
        if !line.batch.is_empty() {
            return Vec::new();
        }
        let done = std::mem::take(&mut line.finished);
        line.accepted.extend(done);
        line.round += 1;
        let batch = next_batch(&self.lattice, &self.params, &line.accepted);
        line.done = batch.is_empty();
        line.batch = batch.iter().copied().collect();
        let round = line.round as i32;
        let keys: Vec<TaskKey> = batch
            .iter()
            .map(|&k| Self::key_of(&line_key, self.lattice.c[k]))
            .collect();
        for t in &keys {
            self.rounds.insert(t.identity(), round);
        }
        keys
    }

    /// The round that made (or will make) run `key`; -1 for a run no round asked for.
    pub fn round_of(&self, key: &TaskKey) -> i32 {
        self.rounds.get(&key.identity()).copied().unwrap_or(-1)
    }

    /// Whether every line has finished its search.
    pub fn is_done(&self) -> bool {
        self.lines.values().all(|l| l.done)
    }

    /// Most runs one line can make: the whole coarse scan, plus k-section of every
    /// criterion's bracket from a coarse step down to the lattice spacing.
    pub fn runs_bound_per_line(&self) -> usize {
        let p = self.params.probes;
        let mut refine = 0;
        let mut n = self.lattice.stride; // lattice intervals in the bracket
        while n > 1 && (n as f64) * self.lattice.spacing > self.params.resolution * (1.0 + 1e-9) {
            refine += p.min(n - 1);
            n = n.div_ceil(p + 1);
        }
        self.lattice.coarse().len() + self.params.criteria() * refine
    }
}

/// The lattice points of a line's next round, from the verdicts of its finished rounds
/// (empty: the line is done). See the module documentation.
fn next_batch(
    lattice: &Lattice,
    params: &SearchParams,
    accepted: &BTreeMap<usize, Verdicts>,
) -> Vec<usize> {
    let coarse = lattice.coarse();
    let diverged = coarse
        .iter()
        .any(|k| accepted.get(k).is_some_and(|v| v[DIVERGED] == Some(true)));
    if !diverged {
        let scan: Vec<usize> = coarse
            .iter()
            .filter(|k| !accepted.contains_key(k))
            .take(params.probes)
            .copied()
            .collect();
        if !scan.is_empty() {
            return scan;
        }
    }
    let mut out = BTreeSet::new();
    for criterion in 0..params.criteria() {
        let points: Vec<(usize, Option<bool>)> =
            accepted.iter().map(|(k, v)| (*k, v[criterion])).collect();
        let Some(h) = points.iter().position(|p| p.1 == Some(true)) else {
            continue; // never holds on the range
        };
        let Some(f) = points[..h].iter().rposition(|p| p.1 == Some(false)) else {
            continue; // holds from the range's first point
        };
        let (lo, hi) = (points[f].0, points[h].0);
        if (hi - lo) as f64 * lattice.spacing <= params.resolution * (1.0 + 1e-9) {
            continue;
        }
        let open: Vec<usize> = (lo + 1..hi).filter(|k| !accepted.contains_key(k)).collect();
        let p = params.probes;
        for i in 1..=p {
            // i·(n+1)/(p+1), rounded half up: evenly spaced, the midpoint for p = 1.
            let at = (2 * i * (open.len() + 1) / (p + 1)).div_ceil(2);
            if (1..=open.len()).contains(&at) {
                out.insert(open[at - 1]);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunStatus;

    fn cfg(extra: &str) -> Config {
        Config::from_toml_str(&format!(
            "[model]\nkind = \"uv\"\nwidth = [64]\n[train]\nsteps = 10\nseeds = [1]\n\
             [grid]\nsearch = \"adaptive\"\nlog2_c = {{ start = 0.0, stop = 6.0, step = 1.0 }}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn lattice_meets_the_fixed_grid_of_its_spacing() {
        let c = cfg("resolution = 0.05\n");
        let l = Lattice::of(&c);
        assert_eq!((l.stride, l.spacing), (32, 1.0 / 32.0));
        assert_eq!(l.c.len(), 6 * 32 + 1);
        let fixed =
            Config::from_toml_str("[grid]\nlog2_c = { start = 0.0, stop = 6.0, step = 0.03125 }\n")
                .unwrap();
        assert_eq!(
            l.c.iter().map(|c| c.to_bits()).collect::<Vec<_>>(),
            fixed
                .c_values()
                .iter()
                .map(|c| c.to_bits())
                .collect::<Vec<_>>()
        );
        assert_eq!(l.coarse(), (0..=6).map(|i| 32 * i).collect::<Vec<_>>());
        assert_eq!(l.index_of(4.0), Some(64));
        assert_eq!(l.index_of(4.0000001), None);
        // A step that does not divide the range: the last lattice point is scanned too.
        let odd = Config::from_toml_str(
            "[grid]\nsearch = \"adaptive\"\nlog2_c = { start = 0.5, stop = 2.0, step = 0.4 }\nresolution = 0.1\n",
        )
        .unwrap();
        let l = Lattice::of(&odd);
        assert_eq!(l.stride, 4);
        assert_eq!(*l.coarse().last().unwrap(), l.c.len() - 1);
    }

    /// A record whose loss rises iff c > a, sharpness rises iff c > b, diverges iff c > m.
    fn synthetic(c: f64, a: f64, b: f64, m: f64) -> RunRecord {
        let status = if c > m {
            RunStatus::Diverged
        } else {
            RunStatus::Done
        };
        let mut r = RunRecord::unmeasured(1.0, c, status, 10, 0);
        r.loss = (0..=10)
            .map(|t| if c > a && t == 1 { 2.0 } else { 1.0 })
            .collect();
        r.sharpness = (0..=10)
            .map(|t| if c > b && t == 2 { 1.5 } else { 1.0 })
            .collect();
        if c > m {
            r.diverged_at = Some(3);
        }
        r
    }

    /// Runs a search to the end on synthetic outcomes, `order` choosing which in-flight
    /// run finishes next; returns the runs made with their rounds.
    fn drive(
        cfg: &Config,
        a: f64,
        b: f64,
        m: f64,
        order: impl Fn(usize) -> usize,
    ) -> Vec<(u64, i32)> {
        let mut s = Search::new(cfg);
        let mut queue = s.resume(std::iter::empty());
        let mut made = Vec::new();
        let mut n = 0;
        while !queue.is_empty() {
            let key = queue.remove(order(n) % queue.len());
            n += 1;
            made.push((key.c.to_bits(), s.round_of(&key)));
            let new = s.finished(&key, &synthetic(key.c, a, b, m));
            queue.extend(new);
        }
        assert!(s.is_done());
        made.sort();
        made
    }

    #[test]
    fn brackets_close_to_the_resolution_whatever_the_order() {
        let c = cfg("resolution = 0.05\n");
        let (a, b, m) = (2f64.powf(1.3), 2f64.powf(2.71), 2f64.powf(3.5));
        let made = drive(&c, a, b, m, |_| 0);
        let again = drive(&c, a, b, m, |n| n * 7 + 3);
        assert_eq!(
            made, again,
            "the runs made do not depend on the order of completion"
        );
        let xs: BTreeSet<u64> = made.iter().map(|m| m.0).collect();
        let l = Lattice::of(&c);
        for t in [a, b, m] {
            // The made points just below and above each threshold are adjacent lattice points.
            let below = l.c.iter().rposition(|&c| c <= t).unwrap();
            assert!(xs.contains(&l.c[below].to_bits()) && xs.contains(&l.c[below + 1].to_bits()));
        }
        // Coarse scan 0..=4 (4 diverges), 3 criteria × 5 bisections at most.
        assert!(made.len() <= 5 + 15, "{} runs", made.len());
        assert!(made.len() <= Search::new(&c).runs_bound_per_line());
        let probes = drive(&cfg("resolution = 0.05\nprobes = 3\n"), a, b, m, |_| 0);
        let max_round = probes.iter().map(|p| p.1).max().unwrap();
        assert!(max_round < made.iter().map(|p| p.1).max().unwrap());
    }

    #[test]
    fn every_axis_point_searches_its_own_lines() {
        let c = cfg("resolution = 0.5\naxes = { \"train.warmup_steps\" = [0, 2] }\n");
        let mut s = Search::new(&c);
        let first = s.resume(std::iter::empty());
        let points: Vec<u32> = first.iter().map(|k| k.axis_point).collect();
        assert_eq!(points, [0, 1]);
        assert_eq!(first[0].c.to_bits(), first[1].c.to_bits());
        // Point 0's run finishing advances point 0's line alone.
        let next = s.finished(&first[0], &synthetic(first[0].c, 10.0, 10.0, 100.0));
        assert!(!next.is_empty() && next.iter().all(|k| k.axis_point == 0));
        assert_eq!((s.round_of(&next[0]), s.round_of(&first[1])), (1, 0));
        let other = TaskKey {
            axis_point: 1,
            ..next[0]
        };
        assert_eq!(s.round_of(&other), -1, "not made on point 1's line");
    }

    #[test]
    fn resume_replays_the_rounds_from_the_finished_runs() {
        let c = cfg("resolution = 0.125\nprobes = 2\n");
        let (a, b, m) = (2f64.powf(1.3), 2f64.powf(2.71), 2f64.powf(3.5));
        let full = drive(&c, a, b, m, |_| 0);
        // Stop after every prefix of the runs, then resume from those alone.
        for cut in 0..full.len() {
            let mut s = Search::new(&c);
            let mut queue = s.resume(std::iter::empty());
            let mut done: Vec<(TaskKey, RunRecord)> = Vec::new();
            while done.len() < cut {
                let key = queue.remove(0);
                let rec = synthetic(key.c, a, b, m);
                queue.extend(s.finished(&key, &rec));
                done.push((key, rec));
            }
            let mut r = Search::new(&c);
            let mut todo = r.resume(done.iter().map(|(k, rec)| (*k, rec)));
            let mut want: Vec<u64> = queue.iter().map(|k| k.c.to_bits()).collect();
            let mut got: Vec<u64> = todo.iter().map(|k| k.c.to_bits()).collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "cut {cut}");
            for (k, _) in &done {
                assert_eq!(r.round_of(k), s.round_of(k));
            }
            while let Some(key) = todo.pop() {
                todo.extend(r.finished(&key, &synthetic(key.c, a, b, m)));
            }
            assert!(r.is_done());
        }
    }
}
