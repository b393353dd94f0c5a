//! The regimes of λ_t over longer training (SCIENCE.md, "four regimes"): end of the early
//! transient, intermediate saturation λ_τ/λ₀ at c·τ = K, onset of progressive sharpening,
//! the first step at which η·λ_t reaches the update rule's edge of stability, and the late
//! level η·λ/edge; their seed means per (depth, width, c) and the collapse c·t_transient ≈
//! const across c.
//!
//! Steps are SGD step counts (index t of the `loss`/`sharpness` arrays). Only finite entries
//! count as measured; sparse measurement (`sharpness.every`) is handled by working between
//! consecutive measured steps.

use serde::Serialize;

use crate::record::{Results, RunRecord, RunStatus, TaskKey};

use super::critical::lambda_zero;
use super::groups::mean_se;
use super::params::{AnalysisParams, RegimeParams};
use super::spectra::SpectralSeries;

/// Regime markers of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRegime {
    /// Index into `Results::keys`.
    pub index: usize,
    /// Grid coordinates.
    pub key: TaskKey,
    /// First step from which |λ_{s'} − λ_s|/|λ_s| per step stays below δ for a full window
    /// (None: never, or not enough measured steps).
    pub transient_end: Option<usize>,
    /// K/c before rounding and clipping.
    pub tau_requested: f64,
    /// round(K/c) clipped to 1..=steps.
    pub tau: usize,
    /// Measured step nearest to τ that was used (None: nothing measured or diverged by τ).
    pub tau_used: Option<usize>,
    /// λ_{τ_used}/λ₀ (NaN when `tau_used` is None).
    pub lambda_tau_ratio: f64,
    /// Last step before the sustained rise at which the smoothed λ is still within the band
    /// of its post-transient minimum ([`sharpening_onset`]; None: no sustained rise).
    pub sharpening_onset: Option<usize>,
    /// The update rule's edge of stability in units of η·λ (2 for SGD).
    pub edge: f64,
    /// First measured step at which η·λ_t ≥ (1 − tolerance)·edge after having been below
    /// it (None: never reached).
    pub edge_step: Option<usize>,
    /// Mean λ over the last `late_fraction` of the measured steps (NaN: none measured).
    pub lambda_late: f64,
    /// η·λ_late/edge: 1 at the full-batch edge of stability.
    pub late_edge_ratio: f64,
    /// The run diverged (its markers only cover the steps before divergence).
    pub diverged: bool,
    /// (λ₁ − λ₂)/λ₁ at `tau_used` (NaN unless `sharpness.k` ≥ 2).
    pub gap_tau: f64,
    /// Smallest (λ₁ − λ₂)/λ₁ over the early transient, steps 1..=`transient_end` (or to
    /// τ when the transient never ends): how close λ₂ comes to λ₁ through the catapult
    /// (NaN unless `sharpness.k` ≥ 2).
    pub gap_transient_min: f64,
    /// Mean (λ₁ − λ₂)/λ₁ over the late steps (NaN unless `sharpness.k` ≥ 2).
    pub gap_late: f64,
    /// λ_min/λ₁ at `tau_used` (NaN unless `sharpness.bottom`).
    pub min_ratio_tau: f64,
    /// Mean λ_min/λ₁ over the late steps (NaN unless `sharpness.bottom`).
    pub min_ratio_late: f64,
    /// Mean λ₁(Gauss-Newton)/λ₁(Hessian) over the late steps (NaN unless measured).
    pub gn_ratio_late: f64,
}

/// Seed means of the regime markers of the runs at one (depth, width, axis point, c).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegimeMean {
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
    /// Learning-rate multiplier.
    pub c: f64,
    /// Runs averaged (seed lines), diverged ones included in `n_diverged` only.
    pub n: usize,
    /// Runs that diverged (left out of every mean).
    pub n_diverged: usize,
    /// Mean transient end over the runs where it was found (NaN: none), and how many.
    pub transient_end: (f64, usize),
    /// τ = round(K/c).
    pub tau: usize,
    /// Mean λ_τ/λ₀.
    pub lambda_tau_ratio: f64,
    /// Mean sharpening onset over the runs where it was found, and how many.
    pub sharpening_onset: (f64, usize),
    /// Mean first step at the edge over the runs that reached it, and how many.
    pub edge_step: (f64, usize),
    /// Mean η·λ_late/edge.
    pub late_edge_ratio: f64,
}

/// The collapse of the transient's end across c at one (depth, width, axis point): the
/// paper's c·t ≈ const.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegimeCollapse {
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
    /// Distinct c values with a transient end.
    pub n_c: usize,
    /// Mean of c·t_transient over those c (each c's seed mean first).
    pub mean: f64,
    /// (max − min)/mean of c·t_transient over those c (NaN for fewer than two).
    pub spread: f64,
}

/// Mean of the finite entries of `series` at `steps` (NaN when none).
fn mean_at(series: &[f64], steps: &[usize]) -> f64 {
    let v: Vec<f64> = steps
        .iter()
        .filter_map(|&t| series.get(t).copied())
        .filter(|x| x.is_finite())
        .collect();
    mean_se(&v).0
}

/// Measured (step, λ) pairs of a run.
fn measured(series: &[f64]) -> Vec<(usize, f64)> {
    series
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, &v)| (t, v))
        .collect()
}

/// End of the early transient: the first measured step s such that every consecutive pair
/// of measured steps in [s, s+window] changes λ by less than δ (relative, per step), with
/// the window fully inside the measured range.
pub fn transient_end(series: &[f64], delta: f64, window: usize) -> Option<usize> {
    let m = measured(series);
    let rate = |a: (usize, f64), b: (usize, f64)| ((b.1 - a.1) / a.1).abs() / (b.0 - a.0) as f64;
    let last = m.last()?.0;
    for (j, &(s, _)) in m.iter().enumerate() {
        if s + window > last {
            return None;
        }
        let calm = m[j..]
            .windows(2)
            .take_while(|p| p[0].0 < s + window)
            .all(|p| rate(p[0], p[1]) < delta);
        if calm {
            return Some(s);
        }
    }
    None
}

/// Centered running mean of the measured (step, λ) pairs over steps within ±window/2.
fn smoothed(m: &[(usize, f64)], window: usize) -> Vec<(usize, f64)> {
    let half = window / 2;
    let (mut lo, mut hi, mut sum) = (0, 0, 0.0);
    m.iter()
        .map(|&(t, _)| {
            while hi < m.len() && m[hi].0 <= t + half {
                sum += m[hi].1;
                hi += 1;
            }
            while m[lo].0 + half < t {
                sum -= m[lo].1;
                lo += 1;
            }
            (t, sum / (hi - lo) as f64)
        })
        .collect()
}

/// Onset of progressive sharpening, a sustained rise after step `from`: with λ̄ the
/// centered running mean over `p.sharpening_window` steps and λ̄_min its minimum over the
/// measured steps ≥ `from`, the rise is λ̄ climbing past (1 + fraction)·λ̄_min after that
/// minimum with the late level (mean of the last `late` steps) staying past it too. The
/// onset is where the final rise leaves its plateau: the last measured step t whose λ̄_t is
/// within `band` of every λ̄ over the preceding factor of two in steps ([t/2, t], from
/// `from` on), that λ̄ never falls more than `band` below afterwards, and that the late
/// level exceeds by more than `fraction` ([`plateau_before_rise`]). A small recovery right
/// after a catapult (λ rising 10 % in a few dozen steps, then flat for hundreds) is then
/// part of the saturation, not the onset. Without such a plateau (a rise straight out of
/// the transient, or noise wider than the band) the onset is the last step before the
/// climb at which λ̄ ≤ (1 + band)·λ̄_min. A slow rise (0.98 → 1.22 over a thousand steps)
/// counts as well as a fast one: no slope is needed.
pub fn sharpening_onset(series: &[f64], from: usize, p: &RegimeParams) -> Option<usize> {
    let all = measured(series);
    let n_late = ((all.len() as f64 * p.late_fraction).ceil() as usize).max(1);
    let late = mean_se(
        &all[all.len().checked_sub(n_late)?..]
            .iter()
            .map(|q| q.1)
            .collect::<Vec<_>>(),
    )
    .0;
    let m: Vec<(usize, f64)> = smoothed(&all, p.sharpening_window)
        .into_iter()
        .filter(|q| q.0 >= from)
        .collect();
    let (i_min, &(_, min)) = m
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    let rise = (1.0 + p.sharpening_fraction) * min;
    if !(min > 0.0 && late > rise) {
        return None;
    }
    let climb = i_min + m[i_min..].iter().position(|q| q.1 > rise)?;
    plateau_before_rise(&m, late, p).or_else(|| {
        m[i_min..climb]
            .iter()
            .rev()
            .find(|q| q.1 <= (1.0 + p.sharpening_band) * min)
            .map(|q| q.0)
    })
}

/// The last smoothed point (t, λ̄_t) of `m` that is a plateau before a sustained rise: λ̄
/// over [t/2, t] within `band` of λ̄_t, λ̄ after t never below (1 − band)·λ̄_t, and
/// `late` > (1 + fraction)·λ̄_t (see [`sharpening_onset`]).
fn plateau_before_rise(m: &[(usize, f64)], late: f64, p: &RegimeParams) -> Option<usize> {
    let band = p.sharpening_band;
    // Suffix minima: the lowest λ̄ after each index.
    let mut after = vec![f64::INFINITY; m.len()];
    for i in (0..m.len().saturating_sub(1)).rev() {
        after[i] = after[i + 1].min(m[i + 1].1);
    }
    (0..m.len())
        .rev()
        .find(|&i| {
            let (t, v) = m[i];
            let flat = m[..=i]
                .iter()
                .rev()
                .take_while(|q| 2 * q.0 >= t)
                .all(|q| (q.1 / v - 1.0).abs() <= band);
            // At least one earlier point in the window: a plateau, not a lone sample.
            let earlier = i > 0 && 2 * m[i - 1].0 >= t;
            v > 0.0
                && earlier
                && flat
                && after[i] >= (1.0 - band) * v
                && late > (1.0 + p.sharpening_fraction) * v
        })
        .map(|i| m[i].0)
}

/// First measured step t ≥ 1 at which η·λ_t ≥ (1 − tolerance)·edge after a measured step
/// (≥ 1) below that level: a run that starts above the edge (c > edge) first has to fall.
pub fn edge_step(series: &[f64], eta: f64, edge: f64, tolerance: f64) -> Option<usize> {
    let level = (1.0 - tolerance) * edge;
    let mut below = false;
    for (t, v) in measured(series).into_iter().filter(|q| q.0 >= 1) {
        if eta * v >= level {
            if below {
                return Some(t);
            }
        } else {
            below = true;
        }
    }
    None
}

fn regime_of(
    index: usize,
    key: TaskKey,
    rec: &RunRecord,
    (steps, k): (usize, usize),
    params: &AnalysisParams,
) -> RunRegime {
    let p = &params.regimes;
    let lam0 = lambda_zero(rec);
    let sh = &rec.sharpness;
    let m = measured(sh);
    let tau_requested = p.k / key.c;
    let tau = (tau_requested.round().max(1.0) as usize).min(steps.max(1));
    let diverged = rec.status == RunStatus::Diverged;
    let diverged_by_tau = diverged && rec.diverged_at.is_none_or(|s| s as usize <= tau);
    let tau_used = if diverged_by_tau {
        None
    } else {
        m.iter()
            .filter(|p| p.0 >= 1)
            .min_by_key(|p| p.0.abs_diff(tau))
            .map(|p| p.0)
    };
    let lambda_tau_ratio = tau_used.map_or(f64::NAN, |t| sh[t] / lam0);
    let n_late = ((m.len() as f64 * p.late_fraction).ceil() as usize).clamp(1, m.len().max(1));
    let late: Vec<usize> = m[m.len().saturating_sub(n_late)..]
        .iter()
        .map(|p| p.0)
        .collect();
    let transient = transient_end(sh, p.transient_delta, p.transient_window);
    let spectral = SpectralSeries::of(rec, k);
    let early_end = transient.unwrap_or(tau).min(steps);
    let gap_transient_min = (1..=early_end)
        .map(|t| spectral.gap.get(t).copied().unwrap_or(f64::NAN))
        .filter(|g| g.is_finite())
        .fold(f64::NAN, f64::min);
    let at_tau = |v: &[f64]| tau_used.map_or(f64::NAN, |t| v[t]);
    let lambda_late = mean_at(sh, &late);
    let edge = params.lazy_c_at(key.axis_point);
    RunRegime {
        index,
        key,
        transient_end: transient,
        tau_requested,
        tau,
        tau_used,
        lambda_tau_ratio,
        sharpening_onset: sharpening_onset(sh, transient.unwrap_or(tau), p),
        edge,
        edge_step: edge_step(sh, rec.eta, edge, p.edge_tolerance),
        lambda_late,
        late_edge_ratio: lambda_late * rec.eta / edge,
        diverged,
        gap_tau: at_tau(&spectral.gap),
        gap_transient_min,
        gap_late: mean_at(&spectral.gap, &late),
        min_ratio_tau: at_tau(&spectral.min_ratio),
        min_ratio_late: mean_at(&spectral.min_ratio, &late),
        gn_ratio_late: mean_at(&spectral.gn_ratio, &late),
    }
}

/// Regime markers of every finished (done or diverged) run; empty when the runs are shorter
/// than `params.regimes.min_steps`.
pub fn run_regimes(results: &Results, params: &AnalysisParams) -> Vec<RunRegime> {
    if results.steps < params.regimes.min_steps {
        return Vec::new();
    }
    results
        .keys
        .iter()
        .zip(&results.records)
        .enumerate()
        .filter_map(|(i, (k, r))| {
            let r = r.as_ref()?;
            matches!(r.status, RunStatus::Done | RunStatus::Diverged)
                .then(|| regime_of(i, *k, r, (results.steps, results.k.get()), params))
        })
        .collect()
}

/// Mean of the `Some` values (NaN when none) and how many there were.
fn mean_some(v: impl Iterator<Item = Option<usize>>) -> (f64, usize) {
    let x: Vec<f64> = v.flatten().map(|s| s as f64).collect();
    (mean_se(&x).0, x.len())
}

/// Seed means per (depth, width, axis point, c), sorted by those; diverged runs are
/// counted, not averaged.
pub fn regime_means(runs: &[RunRegime]) -> Vec<RegimeMean> {
    let mut groups: std::collections::BTreeMap<(u32, u32, u32, u64), Vec<&RunRegime>> =
        Default::default();
    for r in runs {
        let k = &r.key;
        let c = k.c.to_bits();
        groups
            .entry((k.depth, k.width, k.axis_point, c))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((depth, width, axis_point, c), rs)| {
            let ok: Vec<&RunRegime> = rs.iter().copied().filter(|r| !r.diverged).collect();
            let mean = |f: fn(&RunRegime) -> f64| {
                mean_se(
                    &ok.iter()
                        .map(|r| f(r))
                        .filter(|v| v.is_finite())
                        .collect::<Vec<_>>(),
                )
                .0
            };
            RegimeMean {
                depth,
                width,
                axis_point,
                c: f64::from_bits(c),
                n: rs.len(),
                n_diverged: rs.len() - ok.len(),
                transient_end: mean_some(ok.iter().map(|r| r.transient_end)),
                tau: rs[0].tau,
                lambda_tau_ratio: mean(|r| r.lambda_tau_ratio),
                sharpening_onset: mean_some(ok.iter().map(|r| r.sharpening_onset)),
                edge_step: mean_some(ok.iter().map(|r| r.edge_step)),
                late_edge_ratio: mean(|r| r.late_edge_ratio),
            }
        })
        .collect()
}

/// The collapse c·t_transient per (depth, width, axis point) over the c of `means` (sorted
/// as [`regime_means`] returns them).
pub fn regime_collapse(means: &[RegimeMean]) -> Vec<RegimeCollapse> {
    let mut out: Vec<RegimeCollapse> = Vec::new();
    for g in
        means.chunk_by(|a, b| (a.depth, a.width, a.axis_point) == (b.depth, b.width, b.axis_point))
    {
        let ct: Vec<f64> = g
            .iter()
            .filter(|m| m.transient_end.1 > 0)
            .map(|m| m.c * m.transient_end.0)
            .collect();
        let (mean, _) = mean_se(&ct);
        let (lo, hi) = ct.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
            (a.0.min(v), a.1.max(v))
        });
        out.push(RegimeCollapse {
            depth: g[0].depth,
            width: g[0].width,
            axis_point: g[0].axis_point,
            n_c: ct.len(),
            mean,
            spread: if ct.len() >= 2 {
                (hi - lo) / mean
            } else {
                f64::NAN
            },
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::critical::tests::run;

    /// The key of a (depth 4, width 256, seed 0) run at `c`.
    pub(crate) fn key(c: f64) -> TaskKey {
        TaskKey {
            c,
            depth: 4,
            width: 256,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        }
    }

    /// A file of `steps` steps holding `runs`.
    pub(crate) fn results(steps: usize, runs: Vec<(TaskKey, RunRecord)>) -> Results {
        Results {
            k: crate::record::EigenCount::ONE,
            steps,
            interp_alpha: vec![],
            keys: runs.iter().map(|r| r.0).collect(),
            records: runs.into_iter().map(|r| Some(r.1)).collect(),
            axes: Default::default(),
        }
    }

    /// A deterministic ±1 % wobble (SGD noise) at step t.
    fn wobble(t: usize) -> f64 {
        0.01 * ((t as f64 * 2.39996).sin())
    }

    /// The c = 8 run over 2000 steps measured every 10: η·λ_t falls from 8 to 0.98
    /// by step 10 (catapult), holds there (±1 %) to step 400, then rises slowly and steadily
    /// to 1.22 at step 2000. The old detector (a 10 % rise within 50 steps) found no onset.
    fn slow_rise(c: f64, every: usize) -> RunRecord {
        let steps = 2000;
        let lam0 = 100.0;
        let eta = c / lam0;
        let level = |t: usize| -> f64 {
            let el = match t {
                0 => c,
                1..=9 => c - (c - 0.98) * t as f64 / 10.0,
                10..=400 => 0.98,
                _ => 0.98 + 0.24 * (t - 400) as f64 / 1600.0,
            };
            el * (1.0 + if t >= 10 { wobble(t) } else { 0.0 }) / eta
        };
        let sh: Vec<f64> = (0..=steps)
            .map(|t| if t % every == 0 { level(t) } else { f64::NAN })
            .collect();
        run(vec![1.0; steps + 1], sh, c)
    }

    #[test]
    fn a_slow_sustained_rise_is_progressive_sharpening() {
        let res = results(2000, vec![(key(8.0), slow_rise(8.0, 10))]);
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        assert_eq!(r.transient_end, Some(10));
        assert_eq!(r.tau, 25);
        // Where the ramp (from 400) leaves 2 % (+ noise) above the plateau's smoothed
        // minimum: 400 + 1600·0.02/0.24·0.98 ≈ 530, noise moving it by tens of steps.
        let onset = r.sharpening_onset.expect("a sustained rise");
        assert!((400..=600).contains(&onset), "{r:?}");
        // The edge is never reached (late η·λ ≈ 1.2 of 2), and the late level says so.
        assert_eq!(r.edge_step, None);
        assert!((r.late_edge_ratio - 0.6).abs() < 0.02, "{r:?}");
        // Without the rise (a plateau to the end) there is no onset.
        let mut flat = slow_rise(8.0, 10);
        for (t, v) in flat.sharpness.iter_mut().enumerate() {
            if t > 400 && v.is_finite() {
                *v = 0.98 * (1.0 + wobble(t)) / flat.eta;
            }
        }
        let res = results(2000, vec![(key(8.0), flat)]);
        assert_eq!(
            run_regimes(&res, &AnalysisParams::default())[0].sharpening_onset,
            None
        );
    }

    /// The shape of configs/paper-regimes.toml's c = 8 run (full batch, log-spaced
    /// measurements): a catapult to 0.118·λ₀ by step 6, a small recovery to 0.130 by step
    /// 50, a plateau to step 500, then a rise to 0.24 at step 3500. The onset is where the
    /// plateau ends, not the recovery after the catapult.
    #[test]
    fn a_recovery_after_the_catapult_is_not_the_onset() {
        let steps = 4000;
        let c = 8.0;
        let level = |t: usize| -> f64 {
            let t = t as f64;
            match t {
                _ if t < 6.0 => 1.0 - (1.0 - 0.118) * t / 6.0,
                _ if t < 50.0 => 0.118 + 0.012 * (t - 6.0) / 44.0,
                _ if t <= 500.0 => 0.130,
                _ => (0.130 + 0.11 * (t - 500.0) / 3000.0).min(0.24),
            }
        };
        let schedule = crate::config::Schedule {
            steps,
            every: 1,
            dense_steps: 20,
            per_decade: 20,
            loss_every: 1,
        };
        let sh: Vec<f64> = (0..=steps)
            .map(|t| {
                if schedule.sharpness_at(t) {
                    100.0 * level(t)
                } else {
                    f64::NAN
                }
            })
            .collect();
        let res = results(steps, vec![(key(c), run(vec![1.0; steps + 1], sh, c))]);
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        let onset = r.sharpening_onset.expect("a sustained rise");
        assert!((400..=700).contains(&onset), "{r:?}");
    }

    #[test]
    fn the_edge_is_reached_after_falling_below_it_and_per_update_rule() {
        // η·λ: 3 at t = 0 (c = 3, above SGD's edge 2), 1 by step 5, then +0.01 per step.
        let eta = 0.03;
        let sh: Vec<f64> = (0..=300)
            .map(|t| {
                let el = if t < 5 {
                    3.0 - 0.4 * t as f64
                } else {
                    1.0 + 0.01 * (t - 5) as f64
                };
                el / eta
            })
            .collect();
        // 1 + 0.01·(t − 5) ≥ 1.9 at t = 95; the steps 1..4 above 1.9 do not count.
        assert_eq!(edge_step(&sh, eta, 2.0, 0.05), Some(95));
        // Heavy ball at β = 0.9: edge 3.8, reached at 1 + 0.01·(t − 5) ≥ 3.61: t = 266.
        assert_eq!(edge_step(&sh, eta, 3.8, 0.05), Some(266));
        // A tighter tolerance waits longer.
        assert_eq!(edge_step(&sh, eta, 2.0, 0.01), Some(103));
        // The analysis takes the edge from the update rule of the run's axis point.
        let mut rec = run(vec![1.0; 301], sh, 3.0);
        rec.eta = eta;
        let res = results(300, vec![(key(3.0), rec)]);
        let p = AnalysisParams {
            lazy_c: 3.8,
            ..Default::default()
        };
        let r = &run_regimes(&res, &p)[0];
        assert_eq!((r.edge, r.edge_step), (3.8, Some(266)));
    }

    #[test]
    fn seed_means_and_the_collapse_of_the_transient_across_c() {
        // Transients ending at c·t = 40 exactly for c = 2, 4, 8 (t = 20, 10, 5), two seeds
        // each, and one diverged run at c = 8 (counted, not averaged).
        let traj = |t_end: usize| -> Vec<f64> {
            (0..=200)
                .map(|t| {
                    if t < t_end {
                        100.0 * (1.0 - 0.02 * t as f64)
                    } else {
                        100.0 * (1.0 - 0.02 * t_end as f64)
                    }
                })
                .collect()
        };
        let mut runs = Vec::new();
        for (c, t_end) in [(2.0, 20), (4.0, 10), (8.0, 5)] {
            for seed in 0..2 {
                let mut k = key(c);
                k.seed = seed;
                runs.push((k, run(vec![1.0; 201], traj(t_end), c)));
            }
        }
        let mut k = key(8.0);
        k.seed = 2;
        let mut d = run(vec![1.0; 201], traj(5), 8.0);
        d.status = RunStatus::Diverged;
        d.diverged_at = Some(150);
        runs.push((k, d));
        let res = results(200, runs);
        let regimes = run_regimes(&res, &AnalysisParams::default());
        let ends: Vec<Option<usize>> = regimes.iter().map(|r| r.transient_end).collect();
        assert_eq!(
            ends[..6],
            [Some(20), Some(20), Some(10), Some(10), Some(5), Some(5)]
        );
        let means = regime_means(&regimes);
        assert_eq!(means.len(), 3);
        assert_eq!((means[2].c, means[2].n, means[2].n_diverged), (8.0, 3, 1));
        assert_eq!(means[2].transient_end, (5.0, 2));
        assert_eq!(means[0].tau, 100);
        let col = regime_collapse(&means);
        assert_eq!(col.len(), 1);
        assert_eq!((col[0].n_c, col[0].mean, col[0].spread), (3, 40.0, 0.0));
        // One c off the collapse: t = 15 at c = 4 (c·t = 60): spread (60 − 40)/mean.
        let mut off = means.clone();
        off[1].transient_end = (15.0, 2);
        let col = regime_collapse(&off);
        let mean = (40.0 + 60.0 + 40.0) / 3.0;
        assert!((col[0].spread - 20.0 / mean).abs() < 1e-12);
        // analyze prints the collapse and a row per c; the runs only with `per_run`.
        let a = crate::analysis::analyze(&res, &AnalysisParams::default());
        let text = a.render(false);
        assert!(
            text.contains("d=4 w=256: c·t_trans = 40.0, spread (max−min)/mean 0.000 over 3 c"),
            "{text}"
        );
        let row8 = text
            .lines()
            .find(|l| l.trim_start().starts_with("8.0000"))
            .unwrap();
        let cols: Vec<&str> = row8.split_whitespace().collect();
        // c, runs (1 diverged), t_trans, τ = 200/8, λ_τ/λ₀, onset, t_edge, late/edge.
        assert_eq!(cols[..5], ["8.0000", "1D", "5.0", "25", "0.900"], "{text}");
        assert!(!text.contains("Regimes per run"));
        assert_eq!(a.render(false), a.to_string());
        let long = a.render(true);
        assert_eq!(long.matches(": t_trans ").count(), 7, "{long}");
        assert!(
            long.contains("c=8.0000: t_trans 5, τ 25 (used 25)"),
            "{long}"
        );
        assert!(long.contains(", diverged\n"), "{long}");
        let tables: Vec<String> = a.columns().into_iter().map(|t| t.name).collect();
        assert!(tables.contains(&"regime_means".to_string()));
        assert_eq!(a.table("regime_collapse").unwrap().rows(), 1);
    }

    /// λ/λ₀: drop 1 → 0.5 over steps 0..10, flat at 0.5 until step 100, then linear rise of
    /// 0.8% of λ₀ per step until 300, flat after (EoS-like) at 2.1.
    fn long_lambda(steps: usize) -> Vec<f64> {
        (0..=steps)
            .map(|t| {
                let r = if t <= 10 {
                    1.0 - 0.05 * t as f64
                } else if t <= 100 {
                    0.5
                } else if t <= 300 {
                    0.5 + 0.008 * (t - 100) as f64
                } else {
                    2.1
                };
                20.0 * r
            })
            .collect()
    }

    #[test]
    fn long_trajectory_markers() {
        let steps = 500;
        let c = 4.0;
        let sh = long_lambda(steps);
        let loss = vec![1.0; steps + 1];
        let mut rec = run(loss, sh, c);
        // η chosen so that 2/η = 42 = λ_late → ratio 1.
        rec.eta = 2.0 / 42.0;
        let key = TaskKey {
            c,
            depth: 4,
            width: 64,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        };
        let res = results(steps, vec![(key, rec)]);
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        assert_eq!(r.transient_end, Some(10));
        assert_eq!(r.tau, 50);
        assert_eq!(r.tau_used, Some(50));
        assert!((r.lambda_tau_ratio - 0.5).abs() < 1e-12);
        // The rise starts at step 100. Smoothed over ±10 steps, λ̄_{100+j} = 0.5 +
        // 0.004·(j+10)(j+11)/21, which leaves the 2 % band of the plateau (0.51) after
        // j = −4: the onset is step 96, the smoothing's half-width early at most.
        assert_eq!(r.sharpening_onset, Some(96));
        // η·λ_t = (40/42)·λ_t/λ₀·… reaches 0.95·2 where λ/λ₀ ≥ 1.995: step 100 + 187.
        assert_eq!((r.edge, r.edge_step), (2.0, Some(287)));
        assert!((r.lambda_late - 42.0).abs() < 1e-12);
        assert!((r.late_edge_ratio - 1.0).abs() < 1e-12);
        assert!(!r.diverged);
    }

    #[test]
    fn spectral_markers_follow_the_gap_bottom_and_gauss_newton() {
        let steps = 500;
        let c = 4.0;
        let sh = long_lambda(steps);
        let mut rec = run(vec![1.0; steps + 1], sh.clone(), c);
        rec.eta = 2.0 / 42.0;
        // k = 2: λ₂ comes within 1 % of λ₁ at step 5 (in the transient), is 20 % below
        // it at τ = 50 and 40 % below it late; λ_min = −0.1·λ₁ at τ, −0.3·λ₁ late;
        // λ₁(GN) = 0.9·λ₁ throughout.
        let k = 2;
        rec.eigenvalues = vec![f64::NAN; (steps + 1) * k];
        rec.gn_eigenvalues = vec![f64::NAN; (steps + 1) * k];
        rec.min_eigenvalue = vec![f64::NAN; steps + 1];
        for (t, l1) in sh.iter().enumerate() {
            let gap = match t {
                5 => 0.01,
                0..=100 => 0.2,
                _ => 0.4,
            };
            rec.eigenvalues[t * k] = *l1;
            rec.eigenvalues[t * k + 1] = (1.0 - gap) * l1;
            rec.gn_eigenvalues[t * k] = 0.9 * l1;
            rec.min_eigenvalue[t] = if t <= 100 { -0.1 } else { -0.3 } * l1;
        }
        let key = TaskKey {
            c,
            depth: 4,
            width: 64,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        };
        let res = Results {
            k: crate::record::EigenCount::new(k).unwrap(),
            steps,
            interp_alpha: vec![],
            keys: vec![key],
            records: vec![Some(rec.clone())],
            axes: Default::default(),
        };
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        assert_eq!((r.transient_end, r.tau_used), (Some(10), Some(50)));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(r.gap_tau, 0.2), "{r:?}");
        assert!(close(r.gap_transient_min, 0.01), "{r:?}");
        assert!(close(r.gap_late, 0.4), "{r:?}");
        assert!(close(r.min_ratio_tau, -0.1), "{r:?}");
        assert!(close(r.min_ratio_late, -0.3), "{r:?}");
        assert!(close(r.gn_ratio_late, 0.9), "{r:?}");
        // Without spectra (k = 1, nothing else measured) every spectral marker is NaN.
        let mut plain = rec;
        plain.eigenvalues = plain.sharpness.clone();
        plain.gn_eigenvalues = vec![f64::NAN; steps + 1];
        plain.min_eigenvalue = vec![f64::NAN; steps + 1];
        let res = Results {
            k: crate::record::EigenCount::ONE,
            records: vec![Some(plain)],
            ..res
        };
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        for v in [
            r.gap_tau,
            r.gap_transient_min,
            r.gap_late,
            r.min_ratio_tau,
            r.min_ratio_late,
            r.gn_ratio_late,
        ] {
            assert!(v.is_nan(), "{r:?}");
        }
    }

    #[test]
    fn sparse_measurement_uses_nearest_step() {
        let steps = 200;
        let mut sh = long_lambda(steps);
        for (t, v) in sh.iter_mut().enumerate() {
            if t % 10 != 0 {
                *v = f64::NAN;
            }
        }
        let mut rec = run(vec![1.0; steps + 1], sh, 3.0);
        rec.eta = 0.1;
        let key = TaskKey {
            c: 3.0,
            depth: 2,
            width: 8,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        };
        let res = results(steps, vec![(key, rec)]);
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        // τ = round(200/3) = 67 → nearest measured step 70.
        assert_eq!(r.tau, 67);
        assert_eq!(r.tau_used, Some(70));
        assert!((r.lambda_tau_ratio - 0.5).abs() < 1e-12);
        assert_eq!(r.transient_end, Some(10));
    }

    #[test]
    fn short_runs_and_divergence() {
        let short = results(10, vec![]);
        assert!(run_regimes(&short, &AnalysisParams::default()).is_empty());
        let steps = 100;
        let mut sh = long_lambda(steps);
        for v in sh.iter_mut().skip(31) {
            *v = f64::NAN;
        }
        let mut rec = run(vec![1.0; steps + 1], sh, 2.0);
        rec.status = RunStatus::Diverged;
        rec.diverged_at = Some(31);
        let key = TaskKey {
            c: 2.0,
            depth: 2,
            width: 8,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        };
        let res = results(steps, vec![(key, rec)]);
        let r = &run_regimes(&res, &AnalysisParams::default())[0];
        assert_eq!(r.tau, 100);
        assert_eq!(r.tau_used, None);
        assert!(r.lambda_tau_ratio.is_nan());
        assert!(r.diverged);
    }
}
