//! The collected [`Analysis`] and its exports: a text table (`Display`), CSV, JSON, and
//! named columns for the caller to write into the results file.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::record::{Axes, TaskKey};

use super::critical::{Boundary, CriticalValue, LineCritical};
use super::groups::{BoundaryFit, GroupSummary, SeedMean};
use super::params::AnalysisParams;
use super::regimes::{RegimeCollapse, RegimeMean, RunRegime};
use super::table::{key_columns, Table};

/// Conventions of the analysis, stored with every export.
pub const CONVENTIONS: &str = "critical c = first grid c where the criterion holds (c_max: last c \
before the first divergence); criteria assumed monotone in c, unknown runs inside a bracket make \
it unresolved; c_loss/c_sharp use steps 1..=T, NaN = not measured, inf = rise, divergence within \
the window counts as loss and sharpness rise; a line with a run that shows no rise but has an \
unmeasured step in 1..=T is 'not measured' for that criterion (no value); seed means are of c (not log2 c), se = std/sqrt(n) \
with n-1 denominator, only resolved lines averaged; fits: weighted by 1/se^2 (absolute sigma) when \
all se finite and > 0, else unweighted with RSS/(n-2)";

/// Everything the analysis found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    /// Parameters used.
    pub params: AnalysisParams,
    /// SGD steps per run in the results.
    pub steps: usize,
    /// Early window T actually used (min of the parameter and `steps`).
    pub early_window: usize,
    /// The axes of `grid.axes` of the results (none without them).
    pub axes: Axes,
    /// Critical values per (depth, width, axis point, seed, sgd_seed) line.
    pub lines: Vec<LineCritical>,
    /// Seed averages per (depth, width, axis point).
    pub groups: Vec<GroupSummary>,
    /// Linear fits of the boundaries against 1/w and d/w, per axis point.
    pub fits: Vec<BoundaryFit>,
    /// Runs of unknown outcome: (key, reason).
    pub missing: Vec<(TaskKey, String)>,
    /// Regime markers of long runs (empty for short runs).
    pub regimes: Vec<RunRegime>,
    /// Their seed means per (depth, width, axis point, c).
    pub regime_means: Vec<RegimeMean>,
    /// The collapse c·t_transient ≈ const per (depth, width, axis point).
    pub regime_collapse: Vec<RegimeCollapse>,
    /// Spectral summaries of the runs that measured more than the sharpness.
    pub spectra: Vec<super::spectra::RunSpectrum>,
}

fn opt_f64(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn opt_i64(v: Option<usize>) -> i64 {
    v.map_or(-1, |v| v as i64)
}

/// " [momentum = 0.9]" for the text report; "" without axes.
fn point_label(axes: &Axes, point: u32) -> String {
    if axes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", axes.label(point))
    }
}

/// `value ± se` with the counts of lines left out, for the text table.
fn fmt_mean(m: Option<&SeedMean>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m.n == 0 && m.n_not_measured > 0 => "not measured".into(),
        Some(m) if m.n == 0 => "n/a".into(),
        Some(m) if m.se.is_nan() => format!("{:.3}", m.mean),
        Some(m) => format!("{:.3} ± {:.3}", m.mean, m.se),
    }
}

impl Analysis {
    /// Boundaries present in this analysis (c_barrier only with interpolation data).
    pub fn boundaries(&self) -> Vec<Boundary> {
        let mut b = vec![Boundary::CLoss, Boundary::CSharp, Boundary::CMax];
        if self.lines.iter().any(|l| l.c_barrier.is_some()) {
            b.push(Boundary::CBarrier);
        }
        b
    }

    /// Scalar attributes to store with the tables (parameters and conventions).
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let p = &self.params;
        let mut attrs = vec![
            ("eps_sharp", p.eps_sharp.to_string()),
            ("early_window", self.early_window.to_string()),
            ("lazy_c", p.lazy_c.to_string()),
            ("max_bracket_ratio", p.max_bracket_ratio.to_string()),
            ("regime_k", p.regimes.k.to_string()),
            (
                "regime_transient_delta",
                p.regimes.transient_delta.to_string(),
            ),
            (
                "regime_transient_window",
                p.regimes.transient_window.to_string(),
            ),
            (
                "regime_sharpening_fraction",
                p.regimes.sharpening_fraction.to_string(),
            ),
            (
                "regime_sharpening_window",
                p.regimes.sharpening_window.to_string(),
            ),
            (
                "regime_sharpening_band",
                p.regimes.sharpening_band.to_string(),
            ),
            (
                "regime_edge_tolerance",
                p.regimes.edge_tolerance.to_string(),
            ),
            ("regime_late_fraction", p.regimes.late_fraction.to_string()),
            ("conventions", CONVENTIONS.to_string()),
        ];
        if !p.lazy_c_by_point.is_empty() {
            let each: Vec<String> = p.lazy_c_by_point.iter().map(|c| c.to_string()).collect();
            attrs.push(("lazy_c_by_point", each.join(" ")));
        }
        attrs
    }

    /// Per-line, per-(d, w), fit, per-run, regime and missing-run tables as named columns.
    pub fn columns(&self) -> Vec<Table> {
        vec![
            self.lines_table(),
            self.groups_table(),
            self.fits_table(),
            self.runs_table(),
            self.regimes_table(),
            self.regime_means_table(),
            self.regime_collapse_table(),
            self.missing_table(),
            super::spectra::spectra_table(&self.spectra, &self.axes),
        ]
    }

    fn lines_table(&self) -> Table {
        let bounds = self.boundaries();
        let mut lines = Table::new("lines");
        let ls = &self.lines;
        let rows: Vec<_> = ls
            .iter()
            .map(|l| (l.line.depth, l.line.width, l.line.axis_point))
            .collect();
        lines.group_columns(&self.axes, &rows);
        lines.i64("seed", ls.iter().map(|l| l.line.seed as i64).collect());
        lines.i64(
            "sgd_seed",
            ls.iter().map(|l| l.line.sgd_seed as i64).collect(),
        );
        lines.i64("n_runs", ls.iter().map(|l| l.c.len() as i64).collect());
        lines.i64(
            "n_missing",
            ls.iter().map(|l| l.missing.len() as i64).collect(),
        );
        for &b in &bounds {
            let n = b.name();
            let get = |l: &LineCritical| -> Option<CriticalValue> { l.get(b).cloned() };
            let vals: Vec<Option<CriticalValue>> = ls.iter().map(get).collect();
            let f = |g: &dyn Fn(&CriticalValue) -> Option<f64>| -> Vec<f64> {
                vals.iter()
                    .map(|v| opt_f64(v.as_ref().and_then(g)))
                    .collect()
            };
            lines.f64(n, f(&|v| v.value));
            lines.f64(format!("{n}_below"), f(&|v| v.c_below));
            lines.f64(format!("{n}_at"), f(&|v| v.c_at));
            lines.str(
                format!("{n}_resolution"),
                vals.iter()
                    .map(|v| v.as_ref().map_or("-", |v| v.resolution.name()).to_string())
                    .collect(),
            );
            lines.i64(
                format!("{n}_coarse"),
                vals.iter()
                    .map(|v| i64::from(v.as_ref().is_some_and(|v| v.coarse)))
                    .collect(),
            );
            lines.f64(
                format!("{n}_log2_width"),
                vals.iter()
                    .map(|v| v.as_ref().map_or(f64::NAN, CriticalValue::log2_width))
                    .collect(),
            );
            lines.i64(
                format!("{n}_non_monotone"),
                vals.iter()
                    .map(|v| i64::from(v.as_ref().is_some_and(|v| v.non_monotone)))
                    .collect(),
            );
            lines.str(
                format!("{n}_reason"),
                vals.iter()
                    .map(|v| {
                        v.as_ref()
                            .and_then(|v| v.reason.clone())
                            .unwrap_or_default()
                    })
                    .collect(),
            );
        }
        lines
    }

    fn groups_table(&self) -> Table {
        let bounds = self.boundaries();
        let mut groups = Table::new("groups");
        let gs = &self.groups;
        let rows: Vec<_> = gs
            .iter()
            .map(|g| (g.depth, g.width, g.axis_point))
            .collect();
        groups.group_columns(&self.axes, &rows);
        groups.f64("d_over_w", gs.iter().map(|g| g.d_over_w()).collect());
        groups.f64(
            "inv_width",
            gs.iter().map(|g| 1.0 / f64::from(g.width)).collect(),
        );
        groups.i64("n_lines", gs.iter().map(|g| g.n_lines as i64).collect());
        for &b in &bounds {
            let n = b.name();
            let ms: Vec<Option<&SeedMean>> = gs.iter().map(|g| g.get(b)).collect();
            groups.f64(
                format!("{n}_mean"),
                ms.iter().map(|m| m.map_or(f64::NAN, |m| m.mean)).collect(),
            );
            groups.f64(
                format!("{n}_se"),
                ms.iter().map(|m| m.map_or(f64::NAN, |m| m.se)).collect(),
            );
            for (suffix, get) in [
                ("n", (|m: &SeedMean| m.n) as fn(&SeedMean) -> usize),
                ("n_below", |m| m.n_below),
                ("n_above", |m| m.n_above),
                ("n_unresolved", |m| m.n_unresolved),
                ("n_not_measured", |m| m.n_not_measured),
            ] {
                groups.i64(
                    format!("{n}_{suffix}"),
                    ms.iter().map(|m| m.map_or(0, |m| get(m) as i64)).collect(),
                );
            }
        }
        groups.str(
            "warnings",
            gs.iter().map(|g| g.warnings.join("; ")).collect(),
        );
        groups
    }

    fn fits_table(&self) -> Table {
        let mut fits = Table::new("fits");
        let fs = &self.fits;
        let points: Vec<u32> = fs.iter().map(|f| f.axis_point).collect();
        fits.axis_columns(&self.axes, &points);
        fits.str(
            "boundary",
            fs.iter().map(|f| f.boundary.name().to_string()).collect(),
        );
        fits.str(
            "axis",
            fs.iter().map(|f| f.axis.name().to_string()).collect(),
        );
        type Get = fn(&super::groups::LinearFit) -> f64;
        for (name, get) in [
            ("intercept", (|f| f.intercept) as Get),
            ("slope", |f| f.slope),
            ("intercept_se", |f| f.intercept_se),
            ("slope_se", |f| f.slope_se),
        ] {
            fits.f64(
                name,
                fs.iter()
                    .map(|f| f.fit.as_ref().map_or(f64::NAN, get))
                    .collect(),
            );
        }
        fits.i64(
            "n",
            fs.iter()
                .map(|f| f.fit.as_ref().map_or(0, |f| f.n as i64))
                .collect(),
        );
        fits.i64(
            "weighted",
            fs.iter()
                .map(|f| i64::from(f.fit.as_ref().is_some_and(|f| f.weighted)))
                .collect(),
        );
        fits
    }

    fn runs_table(&self) -> Table {
        let ls = &self.lines;
        let mut runs = Table::new("runs");
        let rs: Vec<(&LineCritical, &super::critical::RunPhase)> = ls
            .iter()
            .flat_map(|l| l.runs.iter().map(move |r| (l, r)))
            .collect();
        runs.i64("index", rs.iter().map(|(_, r)| r.index as i64).collect());
        let keys: Vec<TaskKey> = rs.iter().map(|(l, r)| l.line.task(r.c)).collect();
        key_columns(&mut runs, &keys, &self.axes);
        runs.str(
            "status",
            rs.iter()
                .map(|(_, r)| r.status.name().to_string())
                .collect(),
        );
        runs.str(
            "phase_line",
            rs.iter()
                .map(|(_, r)| r.phase_line.name().to_string())
                .collect(),
        );
        runs.str(
            "phase_direct",
            rs.iter()
                .map(|(_, r)| r.phase_direct.name().to_string())
                .collect(),
        );
        runs
    }

    fn regimes_table(&self) -> Table {
        let mut regimes = Table::new("regimes");
        let rg = &self.regimes;
        regimes.i64("index", rg.iter().map(|r| r.index as i64).collect());
        key_columns(
            &mut regimes,
            &rg.iter().map(|r| r.key).collect::<Vec<_>>(),
            &self.axes,
        );
        regimes.i64(
            "transient_end",
            rg.iter().map(|r| opt_i64(r.transient_end)).collect(),
        );
        regimes.f64(
            "tau_requested",
            rg.iter().map(|r| r.tau_requested).collect(),
        );
        regimes.i64("tau", rg.iter().map(|r| r.tau as i64).collect());
        regimes.i64("tau_used", rg.iter().map(|r| opt_i64(r.tau_used)).collect());
        regimes.f64(
            "lambda_tau_ratio",
            rg.iter().map(|r| r.lambda_tau_ratio).collect(),
        );
        regimes.i64(
            "sharpening_onset",
            rg.iter().map(|r| opt_i64(r.sharpening_onset)).collect(),
        );
        regimes.f64("lambda_late", rg.iter().map(|r| r.lambda_late).collect());
        regimes.f64("edge", rg.iter().map(|r| r.edge).collect());
        regimes.i64(
            "edge_step",
            rg.iter().map(|r| opt_i64(r.edge_step)).collect(),
        );
        regimes.f64(
            "late_edge_ratio",
            rg.iter().map(|r| r.late_edge_ratio).collect(),
        );
        regimes.i64(
            "diverged",
            rg.iter().map(|r| i64::from(r.diverged)).collect(),
        );
        type Field = fn(&RunRegime) -> f64;
        let spectral: [(&str, Field); 6] = [
            ("gap_tau", |r| r.gap_tau),
            ("gap_transient_min", |r| r.gap_transient_min),
            ("gap_late", |r| r.gap_late),
            ("min_ratio_tau", |r| r.min_ratio_tau),
            ("min_ratio_late", |r| r.min_ratio_late),
            ("gn_ratio_late", |r| r.gn_ratio_late),
        ];
        for (name, field) in spectral {
            regimes.f64(name, rg.iter().map(field).collect());
        }
        regimes
    }

    fn regime_means_table(&self) -> Table {
        let mut t = Table::new("regime_means");
        let ms = &self.regime_means;
        let rows: Vec<_> = ms
            .iter()
            .map(|m| (m.depth, m.width, m.axis_point))
            .collect();
        t.group_columns(&self.axes, &rows);
        t.f64("c", ms.iter().map(|m| m.c).collect());
        t.i64("n", ms.iter().map(|m| m.n as i64).collect());
        t.i64(
            "n_diverged",
            ms.iter().map(|m| m.n_diverged as i64).collect(),
        );
        type Pair = fn(&RegimeMean) -> (f64, usize);
        for (name, get) in [
            ("transient_end", (|m| m.transient_end) as Pair),
            ("sharpening_onset", |m| m.sharpening_onset),
            ("edge_step", |m| m.edge_step),
        ] {
            t.f64(name, ms.iter().map(|m| get(m).0).collect());
            t.i64(
                format!("{name}_n"),
                ms.iter().map(|m| get(m).1 as i64).collect(),
            );
        }
        t.i64("tau", ms.iter().map(|m| m.tau as i64).collect());
        t.f64(
            "lambda_tau_ratio",
            ms.iter().map(|m| m.lambda_tau_ratio).collect(),
        );
        t.f64(
            "late_edge_ratio",
            ms.iter().map(|m| m.late_edge_ratio).collect(),
        );
        t
    }

    fn regime_collapse_table(&self) -> Table {
        let mut t = Table::new("regime_collapse");
        let cs = &self.regime_collapse;
        let rows: Vec<_> = cs
            .iter()
            .map(|m| (m.depth, m.width, m.axis_point))
            .collect();
        t.group_columns(&self.axes, &rows);
        t.i64("n_c", cs.iter().map(|m| m.n_c as i64).collect());
        t.f64("c_t_transient_mean", cs.iter().map(|m| m.mean).collect());
        t.f64(
            "c_t_transient_spread",
            cs.iter().map(|m| m.spread).collect(),
        );
        t
    }

    fn missing_table(&self) -> Table {
        let mut missing = Table::new("missing");
        key_columns(
            &mut missing,
            &self.missing.iter().map(|m| m.0).collect::<Vec<_>>(),
            &self.axes,
        );
        missing.str("reason", self.missing.iter().map(|m| m.1.clone()).collect());
        missing
    }

    /// The table called `name` from [`Analysis::columns`].
    pub fn table(&self, name: &str) -> Option<Table> {
        self.columns().into_iter().find(|t| t.name == name)
    }

    /// CSV of the per-(depth, width) table (see [`Table::to_csv`] for the others).
    pub fn to_csv(&self) -> String {
        self.table("groups").expect("groups table exists").to_csv()
    }

    /// The whole analysis as pretty JSON (NaN written as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("analysis serializes")
    }

    /// The text report: per-(d, w) table, fits, missing and failed runs.
    pub fn render_table(&self) -> String {
        self.to_string()
    }

    /// The spectral summaries (when measured): one line per run of each (depth, width)'s
    /// first seed line; the `spectra` table has every run.
    fn fmt_spectra(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.spectra.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "Spectra: gap (λ1−λ2)/λ1 at init and its minimum (step), most negative λ_min/λ1, mean λ1(GN)/λ1(H)"
        )?;
        let mut first = std::collections::BTreeMap::new();
        for s in &self.spectra {
            let k = &s.key;
            let line = first
                .entry((k.depth, k.width, k.axis_point))
                .or_insert((k.seed, k.sgd_seed));
            if *line != (k.seed, k.sgd_seed) {
                continue;
            }
            writeln!(
                f,
                "  d={} w={}{} seed={}/{} c={:.4}: gap {:.3} -> {:.3} (step {}), λ_min/λ1 {:.4}, GN/H {:.4}",
                k.depth, k.width, point_label(&self.axes, k.axis_point), k.seed, k.sgd_seed, k.c,
                s.gap_init, s.gap_min, s.gap_min_step, s.min_ratio, s.gn_ratio
            )?;
        }
        writeln!(f)
    }

    /// One line per (depth, width, seed, sgd_seed) line: each value's bracket
    /// c_below..c_at, its width in log₂ c, and how well it is resolved.
    fn fmt_brackets(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Brackets per line: c_below..c_at (width in log2 c), resolution"
        )?;
        let bounds = self.boundaries();
        for l in &self.lines {
            let k = &l.line;
            let mut row = format!(
                "  d={} w={}{} seed={}/{} ({} runs):",
                k.depth,
                k.width,
                point_label(&self.axes, k.axis_point),
                k.seed,
                k.sgd_seed,
                l.c.len()
            );
            for &b in &bounds {
                let Some(v) = l.get(b) else { continue };
                let end = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.4}"));
                let _ = write!(
                    row,
                    " {} {}..{} ({:.3}) {}{}{};",
                    b.name(),
                    end(v.c_below),
                    end(v.c_at),
                    v.log2_width(),
                    v.resolution.name(),
                    if v.non_monotone { ", non-monotone" } else { "" },
                    v.reason
                        .as_ref()
                        .map_or(String::new(), |r| format!(" ({r})"))
                );
            }
            writeln!(f, "{}", row.trim_end_matches(';'))?;
        }
        Ok(())
    }
}

impl Analysis {
    /// The critical-value table: one row per (depth, width, axis point), one column per
    /// axis (its values) after the width.
    fn fmt_groups(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let barrier = self.boundaries().contains(&Boundary::CBarrier);
        // Each axis column as wide as its name and its widest value.
        let axis_cols: Vec<(String, usize)> = self
            .axes
            .axes
            .iter()
            .map(|a| {
                let widest = (0..a.values.len())
                    .map(|i| a.values.plain(i).chars().count())
                    .max()
                    .unwrap_or(0);
                (a.name.clone(), widest.max(a.name.chars().count()))
            })
            .collect();
        let mut header = format!("{:>5} {:>6}", "depth", "width");
        for (name, w) in &axis_cols {
            let _ = write!(header, " {name:>w$}");
        }
        let _ = write!(
            header,
            " {:>8} {:>7} {:>17} {:>17} {:>17}",
            "d/w", "n seeds", "c_loss", "c_sharp", "c_max"
        );
        if barrier {
            let _ = write!(header, " {:>17}", "c_barrier");
        }
        header.push_str("  warnings");
        writeln!(f, "{header}")?;
        for g in &self.groups {
            write!(f, "{:>5} {:>6}", g.depth, g.width)?;
            let at = self.axes.indices(g.axis_point);
            for ((_, w), (axis, i)) in axis_cols.iter().zip(self.axes.axes.iter().zip(at)) {
                write!(f, " {:>w$}", axis.values.plain(i))?;
            }
            write!(
                f,
                " {:>8.5} {:>7} {:>17} {:>17} {:>17}",
                g.d_over_w(),
                g.n_lines,
                fmt_mean(Some(&g.c_loss)),
                fmt_mean(Some(&g.c_sharp)),
                fmt_mean(Some(&g.c_max)),
            )?;
            if barrier {
                write!(f, " {:>17}", fmt_mean(g.c_barrier.as_ref()))?;
            }
            writeln!(f, "  {}", g.warnings.join("; "))?;
        }
        Ok(())
    }

    /// The linear fits, under a heading per axis point when there are axes.
    fn fmt_fits(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Linear fits c = a + b·x")?;
        let mut point = None;
        let indent = if self.axes.is_empty() { "  " } else { "    " };
        for fit in &self.fits {
            if !self.axes.is_empty() && point != Some(fit.axis_point) {
                point = Some(fit.axis_point);
                writeln!(f, "  at {}:", self.axes.label(fit.axis_point))?;
            }
            match &fit.fit {
                Some(l) => writeln!(
                    f,
                    "{indent}{:<9} vs {:<3}: a = {:.4} ± {:.4}, b = {:.4} ± {:.4} (n = {}, {})",
                    fit.boundary.name(),
                    fit.axis.name(),
                    l.intercept,
                    l.intercept_se,
                    l.slope,
                    l.slope_se,
                    l.n,
                    if l.weighted { "weighted" } else { "unweighted" }
                )?,
                None => writeln!(
                    f,
                    "{indent}{:<9} vs {:<3}: not enough points",
                    fit.boundary.name(),
                    fit.axis.name()
                )?,
            }
        }
        Ok(())
    }
}

/// "12.5 (2/3)": a mean step and how many runs it averages, "-" when none.
fn fmt_step(v: (f64, usize), n: usize) -> String {
    match v.1 {
        0 => "-".into(),
        k if k == n => format!("{:.1}", v.0),
        k => format!("{:.1} ({k}/{n})", v.0),
    }
}

impl Analysis {
    /// The regimes of long runs: per (depth, width) the collapse c·t_transient and one row
    /// per c of seed means; with `per_run`, one row per run after it.
    pub fn fmt_regimes(&self, f: &mut fmt::Formatter<'_>, per_run: bool) -> fmt::Result {
        if self.regimes.is_empty() {
            return Ok(());
        }
        let p = &self.params.regimes;
        writeln!(
            f,
            "Regimes of λ_t (seed means; t_trans: |Δλ/λ| < {} per step over {} steps; τ = K/c, \
             K = {}; onset: smoothed λ ({} steps) leaves its {}% plateau for a sustained \
             rise > {}%; t_edge: first η·λ_t ≥ {}·edge; late: η·λ/edge over the last {}%)",
            p.transient_delta,
            p.transient_window,
            p.k,
            p.sharpening_window,
            100.0 * p.sharpening_band,
            100.0 * p.sharpening_fraction,
            1.0 - p.edge_tolerance,
            100.0 * p.late_fraction
        )?;
        for col in &self.regime_collapse {
            writeln!(
                f,
                "  d={} w={}{}: c·t_trans = {:.1}, spread (max−min)/mean {:.3} over {} c",
                col.depth,
                col.width,
                point_label(&self.axes, col.axis_point),
                col.mean,
                col.spread,
                col.n_c
            )?;
            writeln!(
                f,
                "    {:>8} {:>5} {:>12} {:>6} {:>8} {:>12} {:>12} {:>10}",
                "c", "runs", "t_trans", "τ", "λ_τ/λ₀", "onset", "t_edge", "late/edge"
            )?;
            let here = self.regime_means.iter().filter(|m| {
                (m.depth, m.width, m.axis_point) == (col.depth, col.width, col.axis_point)
            });
            for m in here {
                let ok = m.n - m.n_diverged;
                let runs = if m.n_diverged > 0 {
                    format!("{}D", m.n_diverged)
                } else {
                    m.n.to_string()
                };
                writeln!(
                    f,
                    "    {:>8.4} {:>5} {:>12} {:>6} {:>8.3} {:>12} {:>12} {:>10.3}",
                    m.c,
                    runs,
                    fmt_step(m.transient_end, ok),
                    m.tau,
                    m.lambda_tau_ratio,
                    fmt_step(m.sharpening_onset, ok),
                    fmt_step(m.edge_step, ok),
                    m.late_edge_ratio
                )?;
            }
        }
        if per_run {
            self.fmt_regime_runs(f)?;
        }
        writeln!(f)
    }

    /// One line per run of the regime markers.
    fn fmt_regime_runs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Regimes per run:")?;
        let step = |s: Option<usize>| s.map_or("-".to_string(), |s| s.to_string());
        for r in &self.regimes {
            let k = &r.key;
            writeln!(
                f,
                "  d={} w={}{} seed={}/{} c={:.4}: t_trans {}, τ {} (used {}), λ_τ/λ₀ {:.3}, \
                 onset {}, t_edge {} (edge {}), late η·λ/edge {:.3}{}",
                k.depth,
                k.width,
                point_label(&self.axes, k.axis_point),
                k.seed,
                k.sgd_seed,
                k.c,
                step(r.transient_end),
                r.tau,
                step(r.tau_used),
                r.lambda_tau_ratio,
                step(r.sharpening_onset),
                step(r.edge_step),
                r.edge,
                r.late_edge_ratio,
                if r.diverged { ", diverged" } else { "" }
            )?;
        }
        Ok(())
    }

    /// The text report, with one line per run of the regimes when `per_run`.
    pub fn render(&self, per_run: bool) -> String {
        struct Show<'a>(&'a Analysis, bool);
        impl fmt::Display for Show<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_report(f, self.1)
            }
        }
        Show(self, per_run).to_string()
    }
}

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_report(f, false)
    }
}

impl Analysis {
    fn fmt_report(&self, f: &mut fmt::Formatter<'_>, per_run: bool) -> fmt::Result {
        writeln!(
            f,
            "Critical c (first grid c where the criterion holds; early window T = {}, ε = {})",
            self.early_window, self.params.eps_sharp
        )?;
        self.fmt_groups(f)?;
        writeln!(f)?;
        self.fmt_fits(f)?;
        writeln!(f)?;
        self.fmt_brackets(f)?;
        writeln!(f)?;
        self.fmt_regimes(f, per_run)?;
        self.fmt_spectra(f)?;
        if self.missing.is_empty() {
            writeln!(f, "No missing or failed runs.")?;
        } else {
            writeln!(f, "Missing or failed runs ({}):", self.missing.len())?;
            for (k, why) in &self.missing {
                writeln!(
                    f,
                    "  d={} w={}{} seed={} sgd_seed={} c={:.4}: {}",
                    k.depth,
                    k.width,
                    point_label(&self.axes, k.axis_point),
                    k.seed,
                    k.sgd_seed,
                    k.c,
                    why
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::critical::tests::line;
    use crate::analysis::{analyze, AnalysisParams};
    use crate::record::Results;

    fn sample() -> (Results, Vec<f64>) {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs: Vec<f64> = (0..9).map(|i| 2f64.powf(i as f64 * 0.5)).collect();
        line(&mut res, 4, 256, 0, &cs, "llsLSSDDD");
        line(&mut res, 4, 256, 1, &cs, "llssLSDDD");
        line(&mut res, 2, 512, 0, &cs, "llsLSSSDP");
        line(&mut res, 8, 128, 0, &cs, "llsPLLSDD");
        (res, cs)
    }

    #[test]
    fn text_table_lists_groups_fits_and_missing() {
        let (res, cs) = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let t = a.render_table();
        let m = (cs[3] + cs[4]) / 2.0;
        assert!(t.contains(&format!("{m:.3} ± ")), "{t}");
        assert!(t.contains("c_loss    vs d/w"), "{t}");
        assert!(t.contains("Missing or failed runs (2)"), "{t}");
        assert!(t.contains("c_loss: 1 line(s) unresolved"), "{t}");
        assert!(t.contains("pending"));
    }

    #[test]
    fn csv_export_parses_back() {
        let (res, cs) = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let csv = a.to_csv();
        let mut rows = csv.lines().map(|l| l.split(',').collect::<Vec<_>>());
        let header = rows.next().unwrap();
        let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
        let rows: Vec<Vec<&str>> = rows.collect();
        assert_eq!(rows.len(), 3);
        let r4 = rows.iter().find(|r| r[col("depth")] == "4").unwrap();
        let mean: f64 = r4[col("c_loss_mean")].parse().unwrap();
        assert!((mean - (cs[3] + cs[4]) / 2.0).abs() < 1e-12);
        assert_eq!(r4[col("c_loss_n")], "2");
        let cmax: f64 = r4[col("c_max_mean")].parse().unwrap();
        assert!((cmax - cs[5]).abs() < 1e-12);
        let r8 = rows.iter().find(|r| r[col("depth")] == "8").unwrap();
        assert!(r8[col("c_loss_mean")].parse::<f64>().unwrap().is_nan());
        assert_eq!(r8[col("c_loss_n_unresolved")], "1");
        let lines_csv = a.table("lines").unwrap().to_csv();
        assert_eq!(lines_csv.lines().count(), 5);
        // Every table has equally long columns.
        for t in a.columns() {
            assert!(
                t.columns.iter().all(|c| c.data.len() == t.rows()),
                "{}",
                t.name
            );
        }
        let runs = a.table("runs").unwrap();
        assert_eq!(runs.rows(), res.keys.len());
    }

    #[test]
    fn json_export_parses_back() {
        let (res, cs) = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        let groups = v["groups"].as_array().unwrap();
        let g4 = groups.iter().find(|g| g["depth"] == 4).unwrap();
        let mean = g4["c_loss"]["mean"].as_f64().unwrap();
        assert!((mean - (cs[3] + cs[4]) / 2.0).abs() < 1e-12);
        // NaN (single-seed se) is written as null.
        let g2 = groups.iter().find(|g| g["depth"] == 2).unwrap();
        assert!(g2["c_loss"]["se"].is_null());
        assert_eq!(v["missing"].as_array().unwrap().len(), 2);
        assert_eq!(v["params"]["early_window"], 10);
        let line0 = &v["lines"][0];
        assert!(line0["c_loss"]["resolution"].is_string());
    }

    #[test]
    fn with_axes_every_table_and_the_text_name_the_axis_point() {
        let (mut res, cs) = sample();
        // The same four lines again at point 1 of a momentum axis.
        let n = res.keys.len();
        for i in 0..n {
            let mut k = res.keys[i];
            k.axis_point = 1;
            res.keys.push(k);
            res.records.push(res.records[i].clone());
        }
        res.axes = Axes::from_text("\"train.momentum\" = [0.0, 0.9]\n").unwrap();
        let a = analyze(&res, &AnalysisParams::default());
        assert_eq!(a.groups.len(), 6);
        assert_eq!(a.lines.len(), 8);
        let groups = a.table("groups").unwrap();
        let names: Vec<&str> = groups.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            &names[..5],
            ["depth", "width", "axis_point", "momentum", "d_over_w"]
        );
        let momentum = groups
            .column("momentum")
            .unwrap()
            .clone()
            .into_f64()
            .unwrap();
        assert_eq!(momentum.iter().filter(|&&m| m == 0.9).count(), 3);
        for t in ["lines", "fits", "runs", "missing"] {
            let t = a.table(t).unwrap();
            assert!(t.column("axis_point").is_some() && t.column("momentum").is_some());
            assert!(t.columns.iter().all(|c| c.data.len() == t.rows()));
        }
        // Fits per point: the same numbers at both points.
        let fits = a.table("fits").unwrap();
        assert_eq!(fits.rows(), 12);
        let text = a.render_table();
        assert!(text.contains("momentum"), "{text}");
        assert!(text.contains("at momentum = 0.9:"), "{text}");
        assert!(text.contains("[momentum = 0.9] seed=0/0"), "{text}");
        let m = (cs[3] + cs[4]) / 2.0;
        assert_eq!(text.matches(&format!("{m:.3} ± ")).count(), 2, "{text}");
        // Without axes: no such column.
        let (plain, _) = sample();
        let p = analyze(&plain, &AnalysisParams::default());
        assert!(p.table("groups").unwrap().column("axis_point").is_none());
        assert!(!p.render_table().contains("momentum"));
    }

    #[test]
    fn csv_quotes_text_with_commas() {
        let mut t = Table::new("x");
        t.str("reason", vec!["failed: a, b \"c\"".into()]);
        assert_eq!(t.to_csv(), "reason\n\"failed: a, b \"\"c\"\"\"\n");
    }
}
