//! Findings from the results table: critical learning-rate multipliers per line and their
//! seed averages ([`critical`]), the regimes of longer runs ([`regimes`]), the measured
//! spectra ([`spectra`]), the collected
//! [`Analysis`] with its text, CSV, JSON and column exports ([`report`]), and figures
//! ([`plot`]). Everything works on the in-memory [`Results`]; reading the file is `store`'s job.

pub(crate) mod critical;
pub(crate) mod plot;
pub(crate) mod plot_spectrum;
pub(crate) mod regimes;
pub(crate) mod report;
pub(crate) mod spectra;

use serde::Serialize;

use crate::record::Results;

pub use critical::{
    Boundary, BoundaryFit, CriticalValue, FitAxis, GroupSummary, LineCritical, LinearFit, Phase,
    Resolution, RunPhase, SeedMean,
};
pub use plot::{PlotError, PlotFormat, PlotOptions, TrajectorySelection, SIZE_RANGE};
pub use regimes::{RegimeParams, RunRegime};
pub use report::{Analysis, NamedColumn, Table};
pub use spectra::RunSpectrum;

/// Parameters of the analysis (all stored with its output).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalysisParams {
    /// ε of the sharpness-catapult criterion λ_t > (1+ε)·λ₀ (0 in the authors' main demo,
    /// 0.05 in their zero-readout demo).
    pub eps_sharp: f64,
    /// Early window T: c_loss and c_sharp look at steps 1..=min(T, steps).
    pub early_window: usize,
    /// c below which a run is lazy-like: the update rule's edge of stability (2 for SGD;
    /// [`crate::optim::Rule::edge`]).
    pub lazy_c: f64,
    /// The edge per `grid.axes` point when an axis changes the update rule (empty: every
    /// point's is `lazy_c`).
    pub lazy_c_by_point: Vec<f64>,
    /// A bracket c_at/c_below above this ratio is flagged as coarse (2^0.25).
    pub max_bracket_ratio: f64,
    /// Regime detection for long runs.
    pub regimes: RegimeParams,
}

impl Default for AnalysisParams {
    fn default() -> Self {
        AnalysisParams {
            eps_sharp: 0.0,
            early_window: 10,
            lazy_c: 2.0,
            lazy_c_by_point: Vec::new(),
            max_bracket_ratio: 2f64.powf(0.25),
            regimes: RegimeParams::default(),
        }
    }
}

impl AnalysisParams {
    /// The lazy edge of axis point `point`.
    pub fn lazy_c_at(&self, point: u32) -> f64 {
        self.lazy_c_by_point
            .get(point as usize)
            .copied()
            .unwrap_or(self.lazy_c)
    }
}

/// Runs every analysis on `results`.
pub fn analyze(results: &Results, params: &AnalysisParams) -> Analysis {
    let lines = critical::critical_lines(results, params);
    let groups = critical::group_summaries(&lines);
    let fits = critical::boundary_fits(&groups);
    let missing = lines.iter().flat_map(|l| l.missing.clone()).collect();
    Analysis {
        axes: results.axes.clone(),
        params: params.clone(),
        steps: results.steps,
        early_window: critical::early_window(results, params),
        lines,
        groups,
        fits,
        missing,
        regimes: regimes::run_regimes(results, &params.regimes),
        spectra: spectra::run_spectra(results),
    }
}
