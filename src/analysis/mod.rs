//! Findings from the results table: critical learning-rate multipliers per line
//! ([`critical`]), their seed averages and fits per (depth, width) ([`groups`]), the regimes of longer runs ([`regimes`]), the measured
//! spectra ([`spectra`]), the collected [`Analysis`] with its text, CSV, JSON and column
//! exports ([`report`], built from [`table`]), and figures ([`plot`], [`plot_regimes`],
//! [`plot_spectrum`], sharing [`figure`]); the parameters are in [`params`]. Everything works on the in-memory
//! [`Results`]; reading the file is `store`'s job.
//!
//! Imports inside `analysis/` go one way (no circle): `params` and `table` use none of the
//! others; `critical` uses `params`; `groups` uses `critical`; `spectra` uses `table`;
//! `regimes` uses `critical`, `groups`, `params` and `spectra`; `report` uses those and `table`; `figure` uses `critical` and `groups`;
//! `plot_spectrum` uses `figure`; `plot_regimes` uses `figure`, `regimes` and `report`;
//! `plot` uses `critical`, `groups`, `figure`, `params`, `plot_regimes`, `plot_spectrum` and `report`;
//! this file uses them all.

pub(crate) mod critical;
pub(crate) mod figure;
pub(crate) mod groups;
pub(crate) mod params;
pub(crate) mod plot;
pub(crate) mod plot_regimes;
pub(crate) mod plot_spectrum;
pub(crate) mod regimes;
pub(crate) mod report;
pub(crate) mod spectra;
pub(crate) mod table;

use crate::record::Results;

pub use critical::{Boundary, CriticalValue, LineCritical, Phase, Resolution, RunPhase};
pub use figure::{PlotError, PlotFormat, PlotOptions, SIZE_RANGE};
pub use groups::{BoundaryFit, FitAxis, GroupSummary, LinearFit, SeedMean};
pub use params::{AnalysisParams, RegimeParams};
pub use plot::TrajectorySelection;
pub use regimes::{RegimeCollapse, RegimeMean, RunRegime};
pub use report::Analysis;
pub use spectra::RunSpectrum;
pub use table::{NamedColumn, Table};

/// Runs every analysis on `results`.
pub fn analyze(results: &Results, params: &AnalysisParams) -> Analysis {
    let lines = critical::critical_lines(results, params);
    let groups = groups::group_summaries(&lines);
    let fits = groups::boundary_fits(&groups);
    let missing = lines.iter().flat_map(|l| l.missing.clone()).collect();
    let regimes = regimes::run_regimes(results, params);
    let regime_means = regimes::regime_means(&regimes);
    let regime_collapse = regimes::regime_collapse(&regime_means);
    Analysis {
        axes: results.axes.clone(),
        params: params.clone(),
        steps: results.steps,
        early_window: critical::early_window(results, params),
        lines,
        groups,
        fits,
        missing,
        regimes,
        regime_means,
        regime_collapse,
        spectra: spectra::run_spectra(results),
    }
}
