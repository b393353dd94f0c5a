//! The regimes of λ_t over longer training (SCIENCE.md, "four regimes"): end of the early
//! transient, intermediate saturation λ_τ/λ₀ at c·τ = K, onset of progressive sharpening,
//! and the late level compared with the edge-of-stability value 2/η.
//!
//! Steps are SGD step counts (index t of the `loss`/`sharpness` arrays). Only finite entries
//! count as measured; sparse measurement (`sharpness.every`) is handled by working between
//! consecutive measured steps.

use serde::Serialize;

use crate::record::{Results, RunRecord, RunStatus, TaskKey};

use super::critical::lambda_zero;
use super::params::RegimeParams;
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
    /// First step s ≥ τ with λ_{s+W} > (1+fraction)·λ_s (None: no sustained rise seen).
    pub sharpening_onset: Option<usize>,
    /// Mean λ over the last `late_fraction` of the measured steps (NaN: none measured).
    pub lambda_late: f64,
    /// λ_late·η/2: 1 at the full-batch edge of stability.
    pub late_eos_ratio: f64,
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

/// Mean of the finite entries of `series` at `steps` (NaN when none).
fn mean_at(series: &[f64], steps: &[usize]) -> f64 {
    let v: Vec<f64> = steps
        .iter()
        .filter_map(|&t| series.get(t).copied())
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
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

/// First measured step s ≥ from such that λ at the last measured step ≤ s+window exceeds
/// (1+fraction)·λ_s, with s+window inside the measured range.
pub fn sharpening_onset(
    series: &[f64],
    from: usize,
    fraction: f64,
    window: usize,
) -> Option<usize> {
    let m = measured(series);
    let last = m.last()?.0;
    for (j, &(s, v)) in m.iter().enumerate() {
        if s < from {
            continue;
        }
        if s + window > last {
            return None;
        }
        let end = m[j..].iter().take_while(|p| p.0 <= s + window).last()?;
        if end.0 > s && end.1 > (1.0 + fraction) * v {
            return Some(s);
        }
    }
    None
}

fn regime_of(
    index: usize,
    key: TaskKey,
    rec: &RunRecord,
    (steps, k): (usize, usize),
    p: &RegimeParams,
) -> RunRegime {
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
    let lambda_late = if m.is_empty() {
        f64::NAN
    } else {
        m[m.len() - n_late..].iter().map(|p| p.1).sum::<f64>() / n_late as f64
    };
    RunRegime {
        index,
        key,
        transient_end: transient,
        tau_requested,
        tau,
        tau_used,
        lambda_tau_ratio,
        sharpening_onset: sharpening_onset(
            sh,
            tau_used.unwrap_or(tau),
            p.sharpening_fraction,
            p.sharpening_window,
        ),
        lambda_late,
        late_eos_ratio: lambda_late * rec.eta / 2.0,
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
/// than `params.min_steps`.
pub fn run_regimes(results: &Results, params: &RegimeParams) -> Vec<RunRegime> {
    if results.steps < params.min_steps {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::critical::tests::run;

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
        let res = Results {
            k: crate::record::EigenCount::ONE,
            steps,
            interp_alpha: vec![],
            keys: vec![key],
            records: vec![Some(rec)],
            axes: Default::default(),
        };
        let p = RegimeParams::default();
        let r = &run_regimes(&res, &p)[0];
        assert_eq!(r.transient_end, Some(10));
        assert_eq!(r.tau, 50);
        assert_eq!(r.tau_used, Some(50));
        assert!((r.lambda_tau_ratio - 0.5).abs() < 1e-12);
        // +10% of 0.5 = 0.05 needs 7 steps of slope 0.008 inside the window: the first s with
        // λ_{s+50} > 1.1·λ_s is s = 57 (λ_107 = 0.556 > 0.55; λ_106 = 0.548).
        assert_eq!(r.sharpening_onset, Some(57));
        assert!((r.lambda_late - 42.0).abs() < 1e-12);
        assert!((r.late_eos_ratio - 1.0).abs() < 1e-12);
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
        let r = &run_regimes(&res, &RegimeParams::default())[0];
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
        let r = &run_regimes(&res, &RegimeParams::default())[0];
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
        let res = Results {
            k: crate::record::EigenCount::ONE,
            steps,
            interp_alpha: vec![],
            keys: vec![key],
            records: vec![Some(rec)],
            axes: Default::default(),
        };
        let r = &run_regimes(&res, &RegimeParams::default())[0];
        // τ = round(200/3) = 67 → nearest measured step 70.
        assert_eq!(r.tau, 67);
        assert_eq!(r.tau_used, Some(70));
        assert!((r.lambda_tau_ratio - 0.5).abs() < 1e-12);
        assert_eq!(r.transient_end, Some(10));
    }

    #[test]
    fn short_runs_and_divergence() {
        let short = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            interp_alpha: vec![],
            keys: vec![],
            records: vec![],
            axes: Default::default(),
        };
        assert!(run_regimes(&short, &RegimeParams::default()).is_empty());
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
        let res = Results {
            k: crate::record::EigenCount::ONE,
            steps,
            interp_alpha: vec![],
            keys: vec![key],
            records: vec![Some(rec)],
            axes: Default::default(),
        };
        let r = &run_regimes(&res, &RegimeParams::default())[0];
        assert_eq!(r.tau, 100);
        assert_eq!(r.tau_used, None);
        assert!(r.lambda_tau_ratio.is_nan());
        assert!(r.diverged);
    }
}
