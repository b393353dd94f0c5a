//! Critical learning-rate multipliers c_loss, c_sharp, c_max and c_barrier on each
//! (depth, width, seed, sgd_seed) line of c values, their seed averages per (depth, width),
//! phase labels, and linear fits of the phase boundaries against 1/w and d/w.
//!
//! Conventions (also written into every export):
//! - A critical value is the **first grid c at which its criterion holds** (`c_at`); the
//!   bracket `(c_below, c_at)` gives the previous grid c whose criterion is known not to hold.
//!   c_max is the exception: it is the *last* c that trained (`c_below`), and `c_at` is the
//!   first c that diverged.
//! - The criteria are taken to be monotone in c: only runs whose outcome is unknown
//!   (pending, failed, or unmeasured) *inside* the bracket make a value unresolved. Unknown runs
//!   elsewhere are still listed in [`LineCritical::missing`]. A known "does not hold" above a
//!   "holds" gives a non-monotone warning.
//! - Early-window criteria (c_loss, c_sharp) look at steps 1..=T with
//!   T = min(`early_window`, steps). Only finite measured entries are compared; a NaN entry is
//!   "not measured" and skipped, a ±inf entry counts as a rise (the loss blew up). A run that
//!   diverged within the window (or whose divergence step is unknown) counts as a rise of
//!   both loss and sharpness: its loss blew up, and the paper's phase diagram puts divergent
//!   runs above both boundaries. A run that diverged after the window is judged on its window.
//! - A run with no measured rise but an unmeasured step in 1..=T may have risen between
//!   measurements: its verdict is "not measured", and so is the line's criterion
//!   ([`Resolution::NotMeasured`], no value, the reason naming the schedule's key), never
//!   "above grid". c_max does not depend on the window: divergence is checked every step.
//! - c_barrier: the interpolated loss along θ₀ → θ_T rises above L₀ = `interp_loss[0]`
//!   (α = 0) at some α > 0. A diverged run with no finite interpolation counts as a barrier.
//! - Seed averages are means of c itself (not of log₂ c), as in the paper; the standard error
//!   is std/√n with the n−1 denominator (NaN for n = 1). Only resolved lines enter the mean;
//!   lines below/above the grid or unresolved are counted separately.

use serde::Serialize;

use crate::record::{LineKey, Results, RunRecord, RunStatus, TaskKey};

use super::params::AnalysisParams;

/// Which critical value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Boundary {
    /// Loss catapult onset: L_t > L₀ for some t in 1..=T.
    CLoss,
    /// Sharpness catapult onset: λ_t > (1+ε)·λ₀ for some t in 1..=T.
    CSharp,
    /// Largest c that trains without divergence.
    CMax,
    /// Loss barrier on the straight line θ₀ → θ_T.
    CBarrier,
}

impl Boundary {
    /// Column-friendly name (`c_loss`, `c_sharp`, `c_max`, `c_barrier`).
    pub fn name(self) -> &'static str {
        match self {
            Boundary::CLoss => "c_loss",
            Boundary::CSharp => "c_sharp",
            Boundary::CMax => "c_max",
            Boundary::CBarrier => "c_barrier",
        }
    }
}

/// How well the grid pins down one critical value on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Resolution {
    /// Bracketed by two adjacent known grid points.
    Resolved,
    /// The criterion already holds at the line's smallest c (for c_max: the smallest c
    /// diverged). No value.
    BelowGrid,
    /// The criterion never holds on the line (for c_max: nothing diverged). No value.
    AboveGrid,
    /// A run of unknown outcome (pending, failed, unmeasured) lies inside the bracket.
    Unresolved,
    /// No run on the line has a known outcome.
    NoData,
    /// The early window 1..=T is not measured at every step for the quantity the criterion
    /// needs (c_loss: the loss, c_sharp: the sharpness), so a run without a measured rise
    /// may have risen between measurements. No value, whatever the measured steps show:
    /// [`CriticalValue::reason`] names the key.
    NotMeasured,
}

impl Resolution {
    /// Lower-case name for text and column output.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Resolved => "resolved",
            Resolution::BelowGrid => "below grid",
            Resolution::AboveGrid => "above grid",
            Resolution::Unresolved => "unresolved",
            Resolution::NoData => "no data",
            Resolution::NotMeasured => "not measured",
        }
    }
}

/// One critical value on one line, with its grid bracket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalValue {
    /// The critical c (`c_at`, or `c_below` for c_max) when resolved, else `None`.
    pub value: Option<f64>,
    /// Largest grid c below the transition whose outcome is known not to satisfy the
    /// criterion (for c_max: the last c that trained).
    pub c_below: Option<f64>,
    /// First grid c at which the criterion holds (for c_max: the first c that diverged).
    pub c_at: Option<f64>,
    /// How well the value is pinned down.
    pub resolution: Resolution,
    /// `c_at / c_below` exceeds `AnalysisParams::max_bracket_ratio`.
    pub coarse: bool,
    /// A run above `c_at` is known not to satisfy the criterion.
    pub non_monotone: bool,
    /// Why the value is [`Resolution::NotMeasured`] (the steps and the key), else `None`.
    pub reason: Option<String>,
}

impl CriticalValue {
    /// Width of the bracket in log₂ c, log₂(c_at / c_below) (NaN without both ends).
    pub fn log2_width(&self) -> f64 {
        match (self.c_below, self.c_at) {
            (Some(b), Some(a)) => (a / b).log2(),
            _ => f64::NAN,
        }
    }

    /// Whether grid point `c` lies at or above the transition: `Some(true)` for c ≥ c_at,
    /// `Some(false)` for c ≤ c_below, `None` where the grid leaves it open.
    pub fn at_or_above(&self, c: f64) -> Option<bool> {
        if self.c_at.is_some_and(|a| c >= a) {
            Some(true)
        } else if self.c_below.is_some_and(|b| c <= b) {
            Some(false)
        } else {
            None
        }
    }
}

/// Phase of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// c below the update rule's edge (`lazy_c`: 2 for SGD).
    Lazy,
    /// The edge ≤ c < c_loss: sharpness falls, no loss catapult.
    SharpnessReduction,
    /// c_loss ≤ c < c_sharp.
    LossCatapult,
    /// c_sharp ≤ c, not divergent.
    LossSharpnessCatapult,
    /// c above c_max (diverged).
    Divergent,
    /// The grid (or missing runs) leaves the phase open.
    Undetermined,
}

impl Phase {
    /// Name used in text and column output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Lazy => "lazy",
            Phase::SharpnessReduction => "sharpness-reduction",
            Phase::LossCatapult => "loss-catapult",
            Phase::LossSharpnessCatapult => "loss-sharpness-catapult",
            Phase::Divergent => "divergent",
            Phase::Undetermined => "undetermined",
        }
    }
}

/// One run of a line with its phase labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunPhase {
    /// Index into `Results::keys`.
    pub index: usize,
    /// Learning-rate multiplier.
    pub c: f64,
    /// Run status.
    pub status: RunStatus,
    /// Phase from the line's critical values.
    pub phase_line: Phase,
    /// Phase from this run's own trajectory (`Undetermined` when it has no usable record).
    pub phase_direct: Phase,
}

/// Critical values of one line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineCritical {
    /// Line coordinates.
    pub line: LineKey,
    /// Grid c values of the line, ascending.
    pub c: Vec<f64>,
    /// Loss-catapult onset.
    pub c_loss: CriticalValue,
    /// Sharpness-catapult onset.
    pub c_sharp: CriticalValue,
    /// Last c that trained (`value`) and first that diverged (`c_at`).
    pub c_max: CriticalValue,
    /// Loss-barrier onset (only when `Results::interp_alpha` is non-empty).
    pub c_barrier: Option<CriticalValue>,
    /// Runs whose outcome is unknown: (key, reason).
    pub missing: Vec<(TaskKey, String)>,
    /// Per-run phases, in ascending c.
    pub runs: Vec<RunPhase>,
}

impl LineCritical {
    /// The critical value of `b` (None only for c_barrier without interpolation data).
    pub fn get(&self, b: Boundary) -> Option<&CriticalValue> {
        match b {
            Boundary::CLoss => Some(&self.c_loss),
            Boundary::CSharp => Some(&self.c_sharp),
            Boundary::CMax => Some(&self.c_max),
            Boundary::CBarrier => self.c_barrier.as_ref(),
        }
    }
}

/// Verdict of one criterion on one run.
#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    Holds,
    Fails,
    Unknown(String),
    /// No measured rise, but the early window has unmeasured steps: the reason.
    NotMeasured(String),
}

/// The keys that set which steps measure the sharpness (dense early window, then sparse).
pub const SHARPNESS_SCHEDULE_KEY: &str = "sharpness.every / sharpness.dense_steps";
/// The key that sets which steps measure the training loss besides the sharpness's steps
/// (files written before it existed measured the loss only with the sharpness).
pub const LOSS_SCHEDULE_KEY: &str = "train.loss_every";

/// Unmeasured (NaN) steps of `series` in 1..=t_max, as "1, 3, 5" (at most 5 listed).
fn unmeasured_steps(series: &[f64], t_max: usize) -> Option<String> {
    let gaps: Vec<usize> = (1..=t_max)
        .filter(|&t| series.get(t).is_none_or(|v| v.is_nan()))
        .collect();
    (!gaps.is_empty()).then(|| {
        let mut s: Vec<String> = gaps.iter().take(5).map(|t| t.to_string()).collect();
        if gaps.len() > 5 {
            s.push(format!("… ({} steps)", gaps.len()));
        }
        s.join(", ")
    })
}

/// The verdict on a run whose window shows no rise: `Fails` when every step 1..=t_max is
/// measured, else "not measured" naming the steps and `key`.
fn no_rise(series: &[f64], t_max: usize, what: &str, key: &str) -> Verdict {
    match unmeasured_steps(series, t_max) {
        None => Verdict::Fails,
        Some(gaps) => Verdict::NotMeasured(format!(
            "{what} not measured at every step of the early window 1..={t_max} \
             (unmeasured: {gaps}); set by `{key}`"
        )),
    }
}

/// Early window T used by c_loss / c_sharp.
pub(crate) fn early_window(results: &Results, params: &AnalysisParams) -> usize {
    params.early_window.min(results.steps)
}

/// True when a run diverged inside the window 1..=t_max (or at an unknown step).
fn diverged_within(rec: &RunRecord, t_max: usize) -> bool {
    rec.status == RunStatus::Diverged && rec.diverged_at.is_none_or(|s| s as usize <= t_max)
}

/// Whether any measured entry in 1..=t_max exceeds `threshold` (+inf counts as a rise).
/// `None` when no entry in the window is measured.
fn rises_above(series: &[f64], t_max: usize, threshold: f64) -> Option<bool> {
    let mut measured = false;
    for &v in series.iter().take(t_max + 1).skip(1) {
        if v.is_nan() {
            continue;
        }
        measured = true;
        if v.is_infinite() || v > threshold {
            return Some(true);
        }
    }
    measured.then_some(false)
}

/// λ₀ of a run: the recorded `lambda0` (the value η was set from), else `sharpness[0]`.
pub(crate) fn lambda_zero(rec: &RunRecord) -> f64 {
    if rec.lambda0.is_finite() && rec.lambda0 > 0.0 {
        rec.lambda0
    } else {
        rec.sharpness.first().copied().unwrap_or(f64::NAN)
    }
}

/// Why a run has no usable record, if it has none.
fn unusable(results: &Results, i: usize) -> Option<String> {
    match &results.records[i] {
        None => Some("pending".into()),
        Some(r) => match r.status {
            RunStatus::Pending => Some("pending".into()),
            RunStatus::Failed if r.message.is_empty() => Some("failed".into()),
            RunStatus::Failed => Some(format!("failed: {}", r.message)),
            RunStatus::Done | RunStatus::Diverged => None,
        },
    }
}

fn loss_outcome(rec: &RunRecord, t_max: usize) -> Verdict {
    if diverged_within(rec, t_max) {
        return Verdict::Holds;
    }
    let l0 = rec.loss.first().copied().unwrap_or(f64::NAN);
    if !l0.is_finite() {
        return Verdict::Unknown("L_0 not finite".into());
    }
    match rises_above(&rec.loss, t_max, l0) {
        Some(true) => Verdict::Holds,
        Some(false) => no_rise(&rec.loss, t_max, "loss", LOSS_SCHEDULE_KEY),
        None => Verdict::Unknown(format!("no loss measured in steps 1..={t_max}")),
    }
}

fn sharp_outcome(rec: &RunRecord, t_max: usize, eps: f64) -> Verdict {
    if diverged_within(rec, t_max) {
        return Verdict::Holds;
    }
    let lam0 = lambda_zero(rec);
    if !lam0.is_finite() {
        return Verdict::Unknown("λ_0 not finite".into());
    }
    match rises_above(&rec.sharpness, t_max, (1.0 + eps) * lam0) {
        Some(true) => Verdict::Holds,
        Some(false) => no_rise(&rec.sharpness, t_max, "sharpness", SHARPNESS_SCHEDULE_KEY),
        None => Verdict::Unknown(format!("no sharpness measured in steps 1..={t_max}")),
    }
}

fn diverge_outcome(rec: &RunRecord) -> Verdict {
    if rec.status == RunStatus::Diverged {
        Verdict::Holds
    } else {
        Verdict::Fails
    }
}

fn barrier_outcome(rec: &RunRecord) -> Verdict {
    let l0 = rec.interp_loss.first().copied().unwrap_or(f64::NAN);
    if l0.is_finite() {
        if let Some(r) = rises_above(&rec.interp_loss, rec.interp_loss.len() - 1, l0) {
            return if r { Verdict::Holds } else { Verdict::Fails };
        }
    }
    if rec.status == RunStatus::Diverged {
        Verdict::Holds
    } else {
        Verdict::Unknown("no interpolation loss".into())
    }
}

/// The verdicts of one finished run on the four criteria, in [`Boundary`] order (c_loss,
/// c_sharp, c_max, c_barrier; c_barrier "fails" without interpolation data).
fn run_verdicts(rec: &RunRecord, t_max: usize, eps: f64, with_barrier: bool) -> [Verdict; 4] {
    [
        loss_outcome(rec, t_max),
        sharp_outcome(rec, t_max, eps),
        diverge_outcome(rec),
        if with_barrier {
            barrier_outcome(rec)
        } else {
            Verdict::Fails
        },
    ]
}

/// Whether each criterion holds for a run (`None`: unknown — pending, failed, or not
/// measured), exactly as the analysis judges it: what the adaptive search bisects on.
pub(crate) fn criteria_hold(
    rec: &RunRecord,
    t_max: usize,
    eps: f64,
    with_barrier: bool,
) -> [Option<bool>; 4] {
    if matches!(rec.status, RunStatus::Pending | RunStatus::Failed) {
        return [None; 4];
    }
    run_verdicts(rec, t_max, eps, with_barrier).map(|v| match v {
        Verdict::Holds => Some(true),
        Verdict::Fails => Some(false),
        Verdict::Unknown(_) | Verdict::NotMeasured(_) => None,
    })
}

/// Locates the transition of a criterion along a line (c ascending).
fn locate(c: &[f64], outcomes: &[Verdict], max_ratio: f64, is_cmax: bool) -> CriticalValue {
    let first_hold = outcomes.iter().position(|o| *o == Verdict::Holds);
    let end = first_hold.unwrap_or(outcomes.len());
    let last_fail = outcomes[..end].iter().rposition(|o| *o == Verdict::Fails);
    let start = last_fail.map_or(0, |j| j + 1);
    let unknown_inside = outcomes[start..end]
        .iter()
        .any(|o| matches!(o, Verdict::Unknown(_) | Verdict::NotMeasured(_)));
    let not_measured = outcomes.iter().find_map(|o| match o {
        Verdict::NotMeasured(r) => Some(r.clone()),
        _ => None,
    });
    let non_monotone = first_hold.is_some_and(|h| outcomes[h..].contains(&Verdict::Fails));
    let c_below = last_fail.map(|j| c[j]);
    let c_at = first_hold.map(|h| c[h]);
    let resolution = if not_measured.is_some() {
        Resolution::NotMeasured
    } else if first_hold.is_none() && last_fail.is_none() {
        Resolution::NoData
    } else if unknown_inside {
        Resolution::Unresolved
    } else if first_hold == Some(0) {
        Resolution::BelowGrid
    } else if first_hold.is_none() {
        Resolution::AboveGrid
    } else {
        Resolution::Resolved
    };
    let value = (resolution == Resolution::Resolved).then(|| {
        if is_cmax {
            c_below.expect("resolved bracket has a lower end")
        } else {
            c_at.expect("resolved bracket has an upper end")
        }
    });
    let coarse = matches!((c_below, c_at), (Some(b), Some(a)) if b > 0.0 && a / b > max_ratio);
    CriticalValue {
        value,
        c_below,
        c_at,
        resolution,
        coarse,
        non_monotone,
        reason: not_measured,
    }
}

/// Phase of grid point `c` from the line's critical values.
fn phase_from_line(
    c: f64,
    lazy_c: f64,
    c_loss: &CriticalValue,
    c_sharp: &CriticalValue,
    c_max: &CriticalValue,
) -> Phase {
    match c_max.at_or_above(c) {
        Some(true) => return Phase::Divergent,
        None => return Phase::Undetermined,
        Some(false) => {}
    }
    if c < lazy_c {
        return Phase::Lazy;
    }
    match (c_sharp.at_or_above(c), c_loss.at_or_above(c)) {
        (Some(true), _) => Phase::LossSharpnessCatapult,
        (Some(false), Some(true)) => Phase::LossCatapult,
        (Some(false), Some(false)) => Phase::SharpnessReduction,
        _ => Phase::Undetermined,
    }
}

/// Phase of one run from its own trajectory.
fn phase_direct(
    rec: Option<&RunRecord>,
    (c, lazy_c): (f64, f64),
    t_max: usize,
    params: &AnalysisParams,
) -> Phase {
    let Some(rec) = rec else {
        return Phase::Undetermined;
    };
    match rec.status {
        RunStatus::Diverged => return Phase::Divergent,
        RunStatus::Done => {}
        RunStatus::Pending | RunStatus::Failed => return Phase::Undetermined,
    }
    if c < lazy_c {
        return Phase::Lazy;
    }
    match (
        sharp_outcome(rec, t_max, params.eps_sharp),
        loss_outcome(rec, t_max),
    ) {
        (Verdict::Holds, _) => Phase::LossSharpnessCatapult,
        (Verdict::Fails, Verdict::Holds) => Phase::LossCatapult,
        (Verdict::Fails, Verdict::Fails) => Phase::SharpnessReduction,
        _ => Phase::Undetermined,
    }
}

/// Groups run indices into lines, each sorted by ascending c.
pub fn lines_of(results: &Results) -> Vec<(LineKey, Vec<usize>)> {
    let mut map: std::collections::BTreeMap<LineKey, Vec<usize>> = Default::default();
    for (i, k) in results.keys.iter().enumerate() {
        map.entry(LineKey::from(k)).or_default().push(i);
    }
    map.into_iter()
        .map(|(k, mut idx)| {
            idx.sort_by(|&a, &b| results.keys[a].c.total_cmp(&results.keys[b].c));
            (k, idx)
        })
        .collect()
}

/// Critical values and per-run phases of every line.
pub fn critical_lines(results: &Results, params: &AnalysisParams) -> Vec<LineCritical> {
    let t_max = early_window(results, params);
    let with_barrier = !results.interp_alpha.is_empty();
    lines_of(results)
        .into_iter()
        .map(|(line, idx)| {
            let c: Vec<f64> = idx.iter().map(|&i| results.keys[i].c).collect();
            let mut missing = Vec::new();
            let mut loss = Vec::new();
            let mut sharp = Vec::new();
            let mut div = Vec::new();
            let mut barrier = Vec::new();
            for &i in &idx {
                let key = results.keys[i];
                if let Some(reason) = unusable(results, i) {
                    missing.push((key, reason.clone()));
                    for v in [&mut loss, &mut sharp, &mut div, &mut barrier] {
                        v.push(Verdict::Unknown(reason.clone()));
                    }
                    continue;
                }
                let rec = results.records[i]
                    .as_ref()
                    .expect("usable run has a record");
                let outs = run_verdicts(rec, t_max, params.eps_sharp, with_barrier);
                // c_max (outs[2]) is always known for a finished run.
                let reasons: Vec<String> = [
                    (&outs[0], "loss"),
                    (&outs[1], "sharpness"),
                    (&outs[3], "barrier"),
                ]
                .into_iter()
                .filter_map(|(o, name)| match o {
                    Verdict::Unknown(r) => Some(format!("{name}: {r}")),
                    _ => None,
                })
                .collect();
                if !reasons.is_empty() {
                    missing.push((key, reasons.join("; ")));
                }
                let [l, s, d, b] = outs;
                loss.push(l);
                sharp.push(s);
                div.push(d);
                barrier.push(b);
            }
            // Grids are 2^x with rounding in x: a bracket of exactly the threshold ratio is
            // not coarse.
            let r = params.max_bracket_ratio * (1.0 + 1e-9);
            let c_loss = locate(&c, &loss, r, false);
            let c_sharp = locate(&c, &sharp, r, false);
            let c_max = locate(&c, &div, r, true);
            let c_barrier = with_barrier.then(|| locate(&c, &barrier, r, false));
            let lazy_c = params.lazy_c_at(line.axis_point);
            let runs = idx
                .iter()
                .map(|&i| {
                    let ci = results.keys[i].c;
                    RunPhase {
                        index: i,
                        c: ci,
                        status: results.status(i),
                        phase_line: phase_from_line(ci, lazy_c, &c_loss, &c_sharp, &c_max),
                        phase_direct: phase_direct(
                            results.records[i].as_ref(),
                            (ci, lazy_c),
                            t_max,
                            params,
                        ),
                    }
                })
                .collect();
            LineCritical {
                line,
                c,
                c_loss,
                c_sharp,
                c_max,
                c_barrier,
                missing,
                runs,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::groups::*;
    use crate::analysis::AnalysisParams;

    /// A finished run with given loss and sharpness trajectories (λ₀ = sharpness[0]).
    pub(crate) fn run(loss: Vec<f64>, sharpness: Vec<f64>, c: f64) -> RunRecord {
        let n = loss.len();
        let lambda0 = sharpness[0];
        let mut r = RunRecord::unmeasured(lambda0, c / lambda0, RunStatus::Done, n - 1, 0);
        r.loss = loss;
        r.sharpness = sharpness;
        r.hvps = vec![10; n];
        r.residual = vec![1e-6; n];
        r.converged = vec![true; n];
        r.seconds = 1.0;
        r
    }

    /// A run that diverged at `step` (entries from `step` on are NaN).
    pub(crate) fn diverged(steps: usize, step: u32, c: f64) -> RunRecord {
        let mut loss = vec![f64::NAN; steps + 1];
        let mut sh = vec![f64::NAN; steps + 1];
        loss[0] = 1.0;
        sh[0] = 10.0;
        for t in 1..(step as usize).min(steps + 1) {
            loss[t] = 1.0 + t as f64;
            sh[t] = 10.0;
        }
        let mut r = run(loss, sh, c);
        r.status = RunStatus::Diverged;
        r.diverged_at = Some(step);
        r
    }

    /// A synthetic line: per c, whether loss rises, sharpness rises, or the run diverges.
    /// `kind`: 'l' lazy-like (both fall), 's' sharpness reduction (loss falls, λ falls),
    /// 'L' loss rises only, 'S' loss and sharpness rise, 'D' diverged at step 3,
    /// 'P' pending, 'F' failed.
    pub(crate) fn line(
        res: &mut Results,
        depth: u32,
        width: u32,
        seed: u64,
        cs: &[f64],
        kinds: &str,
    ) {
        let steps = res.steps;
        for (&c, k) in cs.iter().zip(kinds.chars()) {
            res.keys.push(TaskKey {
                c,
                depth,
                width,
                seed,
                sgd_seed: seed,
                axis_point: 0,
            });
            let down: Vec<f64> = (0..=steps).map(|t| 1.0 - 0.01 * t as f64).collect();
            let sdown: Vec<f64> = (0..=steps).map(|t| 10.0 - 0.1 * t as f64).collect();
            let mut bump = down.clone();
            bump[2] = 1.5;
            let mut sbump = sdown.clone();
            sbump[3] = 12.0;
            let rec = match k {
                'l' | 's' => Some(run(down, sdown, c)),
                'L' => Some(run(bump, sdown, c)),
                'S' => Some(run(bump, sbump, c)),
                'D' => Some(diverged(steps, 3, c)),
                'P' => None,
                'F' => {
                    let mut r = run(down, sdown, c);
                    r.status = RunStatus::Failed;
                    r.message = "out of memory".into();
                    Some(r)
                }
                _ => panic!("unknown kind {k}"),
            };
            res.records.push(rec);
        }
    }

    fn grid(n: usize) -> Vec<f64> {
        (0..n).map(|i| 2f64.powf(i as f64 * 0.5)).collect()
    }

    fn params() -> AnalysisParams {
        AnalysisParams::default()
    }

    #[test]
    fn resolved_line_reproduces_known_critical_values() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        // c = 1, 1.41, 2, 2.83, 4, 5.66, 8, 11.3, 16
        let cs = grid(9);
        line(&mut res, 4, 512, 0, &cs, "llssLSSDD");
        let lines = critical_lines(&res, &params());
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l.c_loss.value, Some(cs[4]));
        assert_eq!(l.c_loss.c_below, Some(cs[3]));
        assert_eq!(l.c_loss.resolution, Resolution::Resolved);
        assert_eq!(l.c_sharp.value, Some(cs[5]));
        assert_eq!(l.c_max.value, Some(cs[6]));
        assert_eq!(l.c_max.c_at, Some(cs[7]));
        assert!(l.c_barrier.is_none());
        assert!(l.missing.is_empty());
        // Spacing 2^0.5 > 2^0.25 → coarse.
        assert!(l.c_loss.coarse);
        let phases: Vec<&str> = l.runs.iter().map(|r| r.phase_line.name()).collect();
        assert_eq!(
            phases,
            [
                "lazy",
                "lazy",
                "sharpness-reduction",
                "sharpness-reduction",
                "loss-catapult",
                "loss-sharpness-catapult",
                "loss-sharpness-catapult",
                "divergent",
                "divergent"
            ]
        );
        let direct: Vec<Phase> = l.runs.iter().map(|r| r.phase_direct).collect();
        let from_line: Vec<Phase> = l.runs.iter().map(|r| r.phase_line).collect();
        assert_eq!(direct, from_line);
    }

    #[test]
    fn the_lazy_phase_ends_at_the_update_rules_edge() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(9);
        line(&mut res, 4, 512, 0, &cs, "llssLSSDD");
        // Heavy ball with β = 0.5: the edge is 2(1 + β) = 3, so c = 2 and 2.83 are lazy.
        let momentum = AnalysisParams {
            lazy_c: crate::optim::Rule::Momentum(0.5).edge(),
            ..params()
        };
        let l = &critical_lines(&res, &momentum)[0];
        let phases: Vec<&str> = l.runs.iter().map(|r| r.phase_direct.name()).collect();
        assert_eq!(
            &phases[..5],
            ["lazy", "lazy", "lazy", "lazy", "loss-catapult"]
        );
        // Per axis point: point 0 (the line's) takes its own edge.
        let per_point = AnalysisParams {
            lazy_c_by_point: vec![3.0, 2.0],
            ..params()
        };
        let l = &critical_lines(&res, &per_point)[0];
        assert_eq!(l.runs[3].phase_line.name(), "lazy");
        assert_eq!(per_point.lazy_c_at(1), 2.0);
        assert_eq!(per_point.lazy_c_at(7), 2.0, "beyond the list: lazy_c");
    }

    #[test]
    fn fine_grid_is_not_coarse() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs: Vec<f64> = (0..6).map(|i| 2f64.powf(1.0 + 0.1 * i as f64)).collect();
        line(&mut res, 2, 64, 0, &cs, "ssLLSD");
        let l = &critical_lines(&res, &params())[0];
        assert_eq!(l.c_loss.value, Some(cs[2]));
        assert!(!l.c_loss.coarse);
        assert!(!l.c_max.coarse);
    }

    #[test]
    fn pending_and_failed_runs_inside_bracket_unresolve() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(8);
        // pending inside the c_loss bracket; failed below it (reported, harmless).
        line(&mut res, 2, 64, 0, &cs, "lFsPLSDD");
        let l = &critical_lines(&res, &params())[0];
        assert_eq!(l.c_loss.resolution, Resolution::Unresolved);
        assert_eq!(l.c_loss.value, None);
        assert_eq!(l.c_loss.c_below, Some(cs[2]));
        assert_eq!(l.c_loss.c_at, Some(cs[4]));
        assert_eq!(l.c_sharp.resolution, Resolution::Resolved);
        assert_eq!(l.c_sharp.value, Some(cs[5]));
        assert_eq!(l.missing.len(), 2);
        assert_eq!(l.missing[0].0.c, cs[1]);
        assert!(l.missing[0].1.contains("failed: out of memory"));
        assert_eq!(l.missing[1].1, "pending");
        assert_eq!(l.runs[3].phase_line, Phase::Undetermined);
        assert_eq!(l.runs[3].phase_direct, Phase::Undetermined);
    }

    #[test]
    fn pending_after_first_divergence_keeps_c_max_resolved() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(8);
        // stop_after_divergence leaves larger c pending.
        line(&mut res, 2, 64, 0, &cs, "lsLSSDPP");
        let l = &critical_lines(&res, &params())[0];
        assert_eq!(l.c_max.value, Some(cs[4]));
        assert_eq!(l.c_max.c_at, Some(cs[5]));
        assert_eq!(l.c_max.resolution, Resolution::Resolved);
        assert_eq!(l.missing.len(), 2);
        // Pending right at the edge of divergence makes c_max unresolved.
        let mut res2 = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        line(&mut res2, 2, 64, 0, &cs, "lsLSSPDD");
        let l2 = &critical_lines(&res2, &params())[0];
        assert_eq!(l2.c_max.resolution, Resolution::Unresolved);
        assert_eq!(l2.c_max.value, None);
        assert_eq!(l2.runs[5].phase_line, Phase::Undetermined);
    }

    #[test]
    fn divergence_at_step_zero_or_one_counts_as_catapult() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(4);
        line(&mut res, 2, 64, 0, &cs[..2], "ss");
        for (c, step) in [(cs[2], 1), (cs[3], 0)] {
            res.keys.push(TaskKey {
                c,
                depth: 2,
                width: 64,
                seed: 0,
                sgd_seed: 0,
                axis_point: 0,
            });
            res.records.push(Some(diverged(10, step, c)));
        }
        let l = &critical_lines(&res, &params())[0];
        assert_eq!(l.c_loss.value, Some(cs[2]));
        assert_eq!(l.c_sharp.value, Some(cs[2]));
        assert_eq!(l.c_max.value, Some(cs[1]));
        assert_eq!(l.c_max.c_at, Some(cs[2]));
        assert!(l.missing.is_empty());
    }

    #[test]
    fn nan_and_inf_entries() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 4,
            ..Default::default()
        };
        let key = |c| TaskKey {
            c,
            depth: 2,
            width: 8,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        };
        // c=2: unmeasured NaN steps are skipped, no rise.
        res.keys.push(key(2.0));
        res.records.push(Some(run(
            vec![1.0, f64::NAN, 0.9, f64::NAN, 0.8],
            vec![10.0, f64::NAN, 9.0, f64::NAN, 8.0],
            2.0,
        )));
        // c=3: loss becomes +inf although status is Done → loss rise.
        res.keys.push(key(3.0));
        res.records.push(Some(run(
            vec![1.0, 0.9, f64::INFINITY, f64::NAN, f64::NAN],
            vec![10.0, 9.0, 9.0, 9.0, 9.0],
            3.0,
        )));
        let l = &critical_lines(&res, &params())[0];
        // c = 2 shows no rise but skips steps 1 and 3: neither criterion can be decided on
        // the line, although c = 3's loss blew up (it stays the upper end of the bracket).
        for v in [&l.c_loss, &l.c_sharp] {
            assert_eq!(v.resolution, Resolution::NotMeasured);
            assert_eq!(v.value, None);
        }
        // The brackets keep what is known: c = 3's loss blew up, its λ (measured at every
        // step) did not rise.
        assert_eq!((l.c_loss.c_below, l.c_loss.c_at), (None, Some(3.0)));
        assert_eq!((l.c_sharp.c_below, l.c_sharp.c_at), (Some(3.0), None));
        assert_eq!(
            l.c_loss.reason.as_deref(),
            Some(
                "loss not measured at every step of the early window 1..=4 (unmeasured: 1, 3); \
                 set by `train.loss_every`"
            )
        );
        assert!(l.c_sharp.reason.as_ref().unwrap().starts_with("sharpness"));
        assert_eq!(l.c_max.resolution, Resolution::AboveGrid);
        // A known rise is a rise however sparse the window: c = 3 is a loss catapult.
        assert_eq!(l.runs[1].phase_direct, Phase::LossCatapult);
        assert!(l.missing.is_empty());
    }

    /// The case: c = 0.5, 2, 8 with loss and sharpness every 10 steps. c = 8's λ
    /// fell from λ₀ to 0.98·λ₀/8 (a catapult between measurements); it was "above grid".
    #[test]
    fn sparse_early_window_is_not_measured_never_above_grid() {
        let steps = 40;
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps,
            ..Default::default()
        };
        let sparse = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
            (0..=steps)
                .map(|t| if t % 10 == 0 { f(t) } else { f64::NAN })
                .collect()
        };
        for c in [0.5, 2.0, 8.0] {
            res.keys.push(TaskKey {
                c,
                depth: 4,
                width: 256,
                seed: 0,
                sgd_seed: 0,
                axis_point: 0,
            });
            let fall = if c > 4.0 { 0.98 / c } else { 0.9 };
            let loss = sparse(&|t| if t == 0 { 1.0 } else { 0.5 });
            let sh = sparse(&|t| if t == 0 { 100.0 } else { 100.0 * fall });
            res.records.push(Some(run(loss, sh, c)));
        }
        let mut p = params();
        p.early_window = 10;
        let a = crate::analysis::analyze(&res, &p);
        let l = &a.lines[0];
        for v in [&l.c_loss, &l.c_sharp] {
            assert_eq!(v.resolution, Resolution::NotMeasured, "{v:?}");
            assert_eq!((v.value, v.c_below, v.c_at), (None, None, None));
            let why = v.reason.as_deref().unwrap();
            assert!(
                why.contains("`train.loss_every`")
                    || why.contains("`sharpness.every / sharpness.dense_steps`"),
                "{why}"
            );
            assert!(
                why.contains("unmeasured: 1, 2, 3, 4, 5, … (9 steps)"),
                "{why}"
            );
        }
        // c_max does not need the window: nothing diverged.
        assert_eq!(l.c_max.resolution, Resolution::AboveGrid);
        let g = &a.groups[0];
        assert_eq!((g.c_sharp.n_not_measured, g.c_sharp.n_above), (1, 0));
        assert!(
            g.warnings
                .iter()
                .any(|w| w.starts_with("c_sharp: 1 line(s) not measured (sharpness")),
            "{:?}",
            g.warnings
        );
        // The file's columns and the JSON say it too.
        let lines = a.table("lines").unwrap();
        let text = |n: &str| match lines.column(n) {
            Some(crate::record::Column::Str(v)) => v[0].clone(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(text("c_sharp_resolution"), "not measured");
        assert_eq!(text("c_loss_resolution"), "not measured");
        assert_eq!(text("c_max_resolution"), "above grid");
        assert!(text("c_sharp_reason").contains("`sharpness.every / sharpness.dense_steps`"));
        assert_eq!(text("c_max_reason"), "");
        let groups = a.table("groups").unwrap();
        let n_nm = groups.column("c_sharp_n_not_measured").cloned();
        assert_eq!(n_nm, Some(crate::record::Column::I64(vec![1])));
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["lines"][0]["c_sharp"]["resolution"], "NotMeasured");
        assert!(v["lines"][0]["c_sharp"]["reason"]
            .as_str()
            .unwrap()
            .contains("every"));
        let report = a.render_table();
        assert!(
            report.contains("c_sharp -..- (NaN) not measured (sharpness"),
            "{report}"
        );
        assert!(!report.contains("c_sharp: 1 line(s) above"), "{report}");
        // Measured at every step, the same line is decided: c = 8's sharpness fell (no
        // catapult in λ), the loss fell too: both above grid.
        for r in res.records.iter_mut().flatten() {
            for v in [&mut r.loss, &mut r.sharpness] {
                for t in 1..=steps {
                    if v[t].is_nan() {
                        v[t] = v[t - 1];
                    }
                }
            }
        }
        let l = &critical_lines(&res, &p)[0];
        assert_eq!(l.c_sharp.resolution, Resolution::AboveGrid);
        assert_eq!(l.c_sharp.reason, None);
    }

    #[test]
    fn unmeasured_window_is_reported_and_unresolves() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 3,
            ..Default::default()
        };
        for c in [2.0, 4.0] {
            res.keys.push(TaskKey {
                c,
                depth: 2,
                width: 8,
                seed: 0,
                sgd_seed: 0,
                axis_point: 0,
            });
        }
        res.records.push(Some(run(
            vec![1.0, 0.9, 0.8, 0.7],
            vec![10.0, f64::NAN, f64::NAN, f64::NAN],
            2.0,
        )));
        res.records.push(Some(run(
            vec![1.0, 1.1, 0.8, 0.7],
            vec![10.0, 11.0, 9.0, 8.0],
            4.0,
        )));
        let l = &critical_lines(&res, &params())[0];
        assert_eq!(l.c_loss.resolution, Resolution::Resolved);
        assert_eq!(l.c_sharp.resolution, Resolution::Unresolved);
        assert_eq!(l.c_sharp.c_at, Some(4.0));
        assert_eq!(l.missing.len(), 1);
        assert_eq!(
            l.missing[0].1,
            "sharpness: no sharpness measured in steps 1..=3"
        );
    }

    #[test]
    fn all_diverging_line_is_below_grid() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        line(&mut res, 8, 64, 0, &grid(3), "DDD");
        let l = &critical_lines(&res, &params())[0];
        for v in [&l.c_loss, &l.c_sharp, &l.c_max] {
            assert_eq!(v.resolution, Resolution::BelowGrid);
            assert_eq!(v.value, None);
            assert_eq!(v.c_at, Some(1.0));
        }
        assert!(l.runs.iter().all(|r| r.phase_line == Phase::Divergent));
    }

    #[test]
    fn line_without_catapult_is_above_grid() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(5);
        line(&mut res, 2, 4096, 0, &cs, "llsss");
        let l = &critical_lines(&res, &params())[0];
        for v in [&l.c_loss, &l.c_sharp, &l.c_max] {
            assert_eq!(v.resolution, Resolution::AboveGrid);
            assert_eq!(v.value, None);
            assert_eq!(v.c_below, Some(cs[4]));
        }
        // Pending at the top of a line without catapult: cannot say "above grid".
        let mut res2 = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        line(&mut res2, 2, 4096, 0, &cs, "llssP");
        let l2 = &critical_lines(&res2, &params())[0];
        assert_eq!(l2.c_loss.resolution, Resolution::Unresolved);
    }

    #[test]
    fn epsilon_sets_sharpness_threshold() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 3,
            ..Default::default()
        };
        res.keys.push(TaskKey {
            c: 4.0,
            depth: 2,
            width: 8,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        });
        res.records.push(Some(run(
            vec![1.0, 1.2, 0.9, 0.8],
            vec![10.0, 10.3, 9.0, 8.0],
            4.0,
        )));
        let mut p = params();
        p.eps_sharp = 0.0;
        assert_eq!(critical_lines(&res, &p)[0].c_sharp.value, None);
        assert_eq!(
            critical_lines(&res, &p)[0].c_sharp.resolution,
            Resolution::BelowGrid
        );
        p.eps_sharp = 0.05;
        assert_eq!(
            critical_lines(&res, &p)[0].c_sharp.resolution,
            Resolution::AboveGrid
        );
    }

    #[test]
    fn early_window_ignores_late_rise() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 30,
            ..Default::default()
        };
        res.keys.push(TaskKey {
            c: 3.0,
            depth: 2,
            width: 8,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        });
        let loss: Vec<f64> = (0..=30).map(|t| 1.0 - 0.01 * t as f64).collect();
        let sh: Vec<f64> = (0..=30)
            .map(|t| if t < 20 { 10.0 - 0.1 * t as f64 } else { 20.0 })
            .collect();
        res.records.push(Some(run(loss, sh, 3.0)));
        let mut p = params();
        p.early_window = 10;
        let l = &critical_lines(&res, &p)[0];
        assert_eq!(l.c_sharp.resolution, Resolution::AboveGrid);
        p.early_window = 30;
        let l = &critical_lines(&res, &p)[0];
        assert_eq!(l.c_sharp.resolution, Resolution::BelowGrid);
    }

    #[test]
    fn barrier_from_interpolation() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            interp_alpha: vec![0.0, 0.5, 1.0],
            ..Default::default()
        };
        let cs = grid(4);
        line(&mut res, 2, 64, 0, &cs, "sLSD");
        let interp = [
            vec![1.0, 0.9, 0.8],
            vec![1.0, 0.95, 0.7],
            vec![1.0, 1.3, 0.9],
        ];
        for (r, il) in res.records.iter_mut().zip(interp) {
            r.as_mut().unwrap().interp_loss = il;
        }
        let l = &critical_lines(&res, &params())[0];
        let b = l.c_barrier.as_ref().unwrap();
        assert_eq!(b.value, Some(cs[2]));
        assert_eq!(b.c_below, Some(cs[1]));
    }

    #[test]
    fn seed_average_has_known_mean_and_se() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(9);
        // c_loss at cs[3], cs[4], cs[5] on three seeds.
        line(&mut res, 4, 256, 0, &cs, "llsLSSDDD");
        line(&mut res, 4, 256, 1, &cs, "llssLSDDD");
        line(&mut res, 4, 256, 2, &cs, "llsssLSDD");
        // Another group, one seed, everything above grid for c_max.
        line(&mut res, 2, 256, 0, &cs, "llsLLSSSS");
        let lines = critical_lines(&res, &params());
        let groups = group_summaries(&lines);
        assert_eq!(groups.len(), 2);
        let g = groups.iter().find(|g| g.depth == 4).unwrap();
        assert_eq!(g.n_lines, 3);
        let vals = [cs[3], cs[4], cs[5]];
        let mean = vals.iter().sum::<f64>() / 3.0;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0;
        assert!((g.c_loss.mean - mean).abs() < 1e-12);
        assert!((g.c_loss.se - (var / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(g.c_loss.n, 3);
        // c_max: cs[5], cs[5], cs[6].
        let (m, _) = mean_se(&[cs[5], cs[5], cs[6]]);
        assert!((g.c_max.mean - m).abs() < 1e-12);
        let g2 = groups.iter().find(|g| g.depth == 2).unwrap();
        assert_eq!(g2.c_loss.n, 1);
        assert!(g2.c_loss.se.is_nan());
        assert_eq!(g2.c_max.n, 0);
        assert!(g2.c_max.mean.is_nan());
        assert_eq!(g2.c_max.n_above, 1);
        assert!(g2
            .warnings
            .iter()
            .any(|w| w.contains("c_max: 1 line(s) above grid")));
    }

    #[test]
    fn each_axis_point_has_its_own_lines_groups_and_fits() {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs = grid(9);
        line(&mut res, 4, 512, 0, &cs, "llssLSSDD");
        line(&mut res, 2, 512, 0, &cs, "llssLSSDD");
        let n = res.keys.len();
        // The same lines at axis point 1, whose loss catapult comes one c later.
        line(&mut res, 4, 512, 0, &cs, "llsssLSDD");
        line(&mut res, 2, 512, 0, &cs, "llsssLSDD");
        for k in &mut res.keys[n..] {
            k.axis_point = 1;
        }
        let lines = critical_lines(&res, &params());
        assert_eq!(lines.len(), 4);
        let groups = group_summaries(&lines);
        let at: Vec<(u32, u32, u32)> = groups
            .iter()
            .map(|g| (g.depth, g.width, g.axis_point))
            .collect();
        assert_eq!(at, [(2, 512, 0), (2, 512, 1), (4, 512, 0), (4, 512, 1)]);
        assert_eq!(groups[0].c_loss.mean, cs[4]);
        assert_eq!(groups[1].c_loss.mean, cs[5]);
        let fits = boundary_fits(&groups);
        assert_eq!(fits.len(), 2 * 3 * 2);
        assert!(fits[..6].iter().all(|f| f.axis_point == 0));
        let intercept = |p: u32| {
            fits.iter()
                .find(|f| {
                    f.axis_point == p
                        && f.boundary == Boundary::CLoss
                        && f.axis == FitAxis::DepthOverWidth
                })
                .and_then(|f| f.fit.clone())
                .unwrap()
                .intercept
        };
        assert!((intercept(0) - cs[4]).abs() < 1e-9);
        assert!((intercept(1) - cs[5]).abs() < 1e-9);
    }
}
