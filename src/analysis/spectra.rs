//! What the measured spectra say about a run (`sharpness.k` > 1, the Gauss-Newton top k,
//! the smallest eigenvalue): how close λ₂ comes to λ₁ through the catapult, how negative
//! the curvature gets relative to λ₁, and how the Gauss-Newton top compares with the
//! Hessian's.

use serde::Serialize;

use super::table::{key_columns, Table};
use crate::record::{Axes, Results, RunRecord, RunStatus, TaskKey};

/// The spectral summary of one finished run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSpectrum {
    /// Index into `Results::keys`.
    pub index: usize,
    /// The run.
    pub key: TaskKey,
    /// (λ₁ − λ₂)/λ₁ at initialization (NaN for k = 1).
    pub gap_init: f64,
    /// Smallest (λ₁ − λ₂)/λ₁ over the measured steps 1..=T (NaN for k = 1).
    pub gap_min: f64,
    /// The step of `gap_min` (−1: none).
    pub gap_min_step: i64,
    /// Most negative λ_min/λ₁ over the measured steps (NaN without `bottom`).
    pub min_ratio: f64,
    /// Mean over the measured steps of λ₁(Gauss-Newton)/λ₁(Hessian) (NaN without it).
    pub gn_ratio: f64,
}

/// The spectral series of a run, per step (NaN where not measured): the gap
/// (λ₁ − λ₂)/λ₁, λ_min/λ₁ and λ₁(GN)/λ₁, from a file with `k` eigenvalues per step.
pub(super) struct SpectralSeries {
    pub(super) gap: Vec<f64>,
    pub(super) min_ratio: Vec<f64>,
    pub(super) gn_ratio: Vec<f64>,
}

impl SpectralSeries {
    pub(super) fn of(rec: &RunRecord, k: usize) -> Self {
        let steps = rec.sharpness.len();
        let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        let top = |t: usize| at(&rec.eigenvalues, t * k);
        let per_step = |f: &dyn Fn(usize) -> f64| (0..steps).map(f).collect::<Vec<f64>>();
        SpectralSeries {
            gap: per_step(&|t| {
                if k < 2 {
                    f64::NAN
                } else {
                    (top(t) - at(&rec.eigenvalues, t * k + 1)) / top(t)
                }
            }),
            min_ratio: per_step(&|t| at(&rec.min_eigenvalue, t) / top(t)),
            gn_ratio: per_step(&|t| at(&rec.gn_eigenvalues, t * k) / top(t)),
        }
    }
}

/// The spectral summary of every finished run that measured more than the sharpness.
pub fn run_spectra(results: &Results) -> Vec<RunSpectrum> {
    let k = results.k.get();
    let mut out = Vec::new();
    for (index, (key, rec)) in results.keys.iter().zip(&results.records).enumerate() {
        let Some(rec) = rec else { continue };
        if !matches!(rec.status, RunStatus::Done | RunStatus::Diverged) {
            continue;
        }
        let series = SpectralSeries::of(rec, k);
        let (mut gap_min, mut gap_min_step) = (f64::NAN, -1i64);
        for (t, &g) in series.gap.iter().enumerate().skip(1) {
            if g.is_finite() && (gap_min.is_nan() || g < gap_min) {
                (gap_min, gap_min_step) = (g, t as i64);
            }
        }
        let min_ratio = series
            .min_ratio
            .iter()
            .filter(|r| r.is_finite())
            .fold(f64::NAN, |a, &r| a.min(r));
        let gn: Vec<f64> = series
            .gn_ratio
            .iter()
            .copied()
            .filter(|g| g.is_finite())
            .collect();
        let gn_n = gn.len();
        let gn_sum: f64 = gn.iter().sum();
        let measured = k > 1 || min_ratio.is_finite() || gn_n > 0;
        if measured {
            out.push(RunSpectrum {
                index,
                key: *key,
                gap_init: series.gap.first().copied().unwrap_or(f64::NAN),
                gap_min,
                gap_min_step,
                min_ratio,
                gn_ratio: if gn_n > 0 {
                    gn_sum / gn_n as f64
                } else {
                    f64::NAN
                },
            });
        }
    }
    out
}

/// The `spectra` table: one row per summarized run.
pub(crate) fn spectra_table(spectra: &[RunSpectrum], axes: &Axes) -> Table {
    let mut t = Table::new("spectra");
    t.i64("index", spectra.iter().map(|s| s.index as i64).collect());
    let keys: Vec<TaskKey> = spectra.iter().map(|s| s.key).collect();
    key_columns(&mut t, &keys, axes);
    t.f64("gap_init", spectra.iter().map(|s| s.gap_init).collect());
    t.f64("gap_min", spectra.iter().map(|s| s.gap_min).collect());
    t.i64(
        "gap_min_step",
        spectra.iter().map(|s| s.gap_min_step).collect(),
    );
    t.f64("min_ratio", spectra.iter().map(|s| s.min_ratio).collect());
    t.f64("gn_ratio", spectra.iter().map(|s| s.gn_ratio).collect());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunRecord;

    #[test]
    fn gaps_negative_curvature_and_gauss_newton_are_summarized() {
        let two = crate::record::EigenCount::new(2).unwrap();
        let mut rec = RunRecord::unmeasured_spectrum(10.0, 0.1, RunStatus::Done, 3, 0, two);
        rec.sharpness = vec![10.0, 12.0, 8.0, 6.0];
        rec.eigenvalues = vec![10.0, 5.0, 12.0, 11.4, 8.0, 2.0, 6.0, 3.0];
        rec.min_eigenvalue = vec![-0.1, -1.2, -0.4, f64::NAN];
        rec.gn_eigenvalues = vec![9.0, 4.0, 12.0, 1.0, 8.0, 1.0, f64::NAN, f64::NAN];
        let results = Results {
            k: two,
            steps: 3,
            interp_alpha: Vec::new(),
            keys: vec![TaskKey::default(); 2],
            records: vec![Some(rec), None],
            axes: Default::default(),
        };
        let s = run_spectra(&results);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].gap_init, 0.5);
        assert!((s[0].gap_min - 0.05).abs() < 1e-12 && s[0].gap_min_step == 1);
        assert!((s[0].min_ratio + 0.1).abs() < 1e-12);
        assert!((s[0].gn_ratio - (0.9 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        let t = spectra_table(&s, &Axes::default());
        assert_eq!(t.rows(), 1);
    }

    #[test]
    fn with_one_eigenvalue_per_step_there_is_no_gap() {
        // k = 1 with the smallest eigenvalue: the next step's λ₁ is not a λ₂.
        let mut rec = RunRecord::unmeasured(10.0, 0.1, RunStatus::Done, 2, 0);
        rec.sharpness = vec![10.0, 12.0, 8.0];
        rec.eigenvalues = rec.sharpness.clone();
        rec.min_eigenvalue = vec![-1.0, -3.0, -0.8];
        let results = Results {
            k: crate::record::EigenCount::ONE,
            steps: 2,
            interp_alpha: Vec::new(),
            keys: vec![TaskKey::default()],
            records: vec![Some(rec)],
            axes: Default::default(),
        };
        let s = &run_spectra(&results)[0];
        assert!(
            s.gap_init.is_nan() && s.gap_min.is_nan() && s.gap_min_step == -1,
            "{s:?}"
        );
        assert!((s.min_ratio + 0.25).abs() < 1e-12);
        assert!(s.gn_ratio.is_nan());
    }
}
