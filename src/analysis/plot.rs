//! Figures (PNG or SVG) from the results and the analysis: the phase diagram in the (d/w, c)
//! plane, loss and sharpness trajectories of one seed line, and λ_τ/λ₀ against c; the
//! regimes figure is in `plot_regimes`. What the figures share (format, size, font,
//! colours, the c colour bar, axes, `render`) is in `figure`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::record::{Results, RunRecord, RunStatus, TaskKey};

use super::critical::{lambda_zero, Boundary};
use super::figure::{
    boundary_color, dashed_key, draw_legend, fmt_edge, font, legend_strip, log_range, log_steps,
    log_y_mesh, panel_builder, pow2_label, render, CScale, Curve, DrawResult, Figure, LogYChart,
    PlotError, PlotOptions,
};
use super::groups::{FitAxis, GroupSummary, LinearFit};
use super::params::AnalysisParams;
use super::report::Analysis;

/// The seed line whose trajectories are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrajectorySelection {
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Initialization seed.
    pub seed: u64,
    /// SGD-order seed (None: the smallest present).
    pub sgd_seed: Option<u64>,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
}

/// Piecewise-linear interpolation through (x, y) sorted by x, constant outside.
fn interp(pts: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let j = pts.partition_point(|p| p.0 <= x);
    let (a, b) = (pts[j - 1], pts[j]);
    a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
}

/// Mean boundary (log₂ c) against x, averaging groups with equal x.
fn boundary_curve(groups: &[GroupSummary], b: Boundary, axis: FitAxis) -> Vec<(f64, f64)> {
    let mut by_x: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
    for g in groups {
        let Some(m) = g.get(b) else { continue };
        if m.mean.is_finite() && m.mean > 0.0 {
            let x = axis.x(g.depth, g.width);
            by_x.entry(x.to_bits())
                .or_insert((x, vec![]))
                .1
                .push(m.mean);
        }
    }
    let mut pts: Vec<(f64, f64)> = by_x
        .into_values()
        .map(|(x, v)| (x, (v.iter().sum::<f64>() / v.len() as f64).log2()))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Lower and upper edges of the phase regions at `xs`: levels[k][i] is the k-th boundary
/// (0: ymin, 1: c = 2, 2..4: the mean c_loss, c_sharp, c_max curves, 5: ymax) at xs[i],
/// each clamped to lie above the one below it; a boundary with no resolved mean collapses
/// onto the one below.
fn region_levels(
    xs: &[f64],
    curves: &[Vec<(f64, f64)>],
    (y0, y1): (f64, f64),
    lazy_y: f64,
) -> Vec<Vec<f64>> {
    let mut levels: Vec<Vec<f64>> = vec![vec![y0; xs.len()], vec![lazy_y; xs.len()]];
    for curve in curves {
        let prev = levels.last().expect("levels start non-empty").clone();
        let row = xs
            .iter()
            .zip(&prev)
            .map(|(&x, &p)| {
                if curve.is_empty() {
                    p
                } else {
                    interp(curve, x).clamp(p, y1)
                }
            })
            .collect();
        levels.push(row);
    }
    levels.push(vec![y1; xs.len()]);
    levels
}

/// (x, log₂(mean − se), log₂ mean, log₂(mean + se)) of each (depth, width) group's seed
/// mean of boundary `b`.
fn mean_points(groups: &[GroupSummary], b: Boundary, axis: FitAxis) -> Vec<(f64, f64, f64, f64)> {
    groups
        .iter()
        .filter_map(|g| {
            let m = g.get(b)?;
            if !(m.mean.is_finite() && m.mean > 0.0) {
                return None;
            }
            let se = if m.se.is_finite() { m.se } else { 0.0 };
            let lo = (m.mean - se).max(m.mean * 1e-3).log2();
            let hi = (m.mean + se).log2();
            Some((axis.x(g.depth, g.width), lo, m.mean.log2(), hi))
        })
        .collect()
}

/// The fitted boundary c(x) at `xs`, as (x, log₂ c) inside the y range.
fn fit_line(fit: &LinearFit, xs: &[f64], (y0, y1): (f64, f64)) -> Vec<(f64, f64)> {
    xs.iter()
        .filter_map(|&x| {
            let c = fit.eval(x);
            (c > 0.0 && c.log2() >= y0 && c.log2() <= y1).then(|| (x, c.log2()))
        })
        .collect()
}

struct PhaseDiagram<'a> {
    analysis: &'a Analysis,
    /// The axis point drawn (0 without axes).
    point: u32,
    /// Its (depth, width) groups.
    groups: Vec<GroupSummary>,
    axis: FitAxis,
    x_max: f64,
    y_range: (f64, f64),
}

impl Figure for PhaseDiagram<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (y0, y1) = self.y_range;
        let title = match self.analysis.axes.label(self.point) {
            l if l.is_empty() => "Phase diagram of early training".to_string(),
            l => format!("Phase diagram of early training, {l}"),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(24))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..self.x_max, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(match self.axis {
                FitAxis::DepthOverWidth => "depth / width",
                FitAxis::InverseWidth => "1 / width",
            })
            .y_desc("c = η λ₀ (log₂ scale)")
            .y_label_formatter(&pow2_label)
            .label_style(font(14))
            .axis_desc_style(font(16))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;

        // Shaded regions between the mean boundaries, each clamped to lie above the one
        // below it; a boundary with no resolved mean collapses onto the one below.
        let groups = &self.groups;
        let curves: Vec<Vec<(f64, f64)>> = [Boundary::CLoss, Boundary::CSharp, Boundary::CMax]
            .iter()
            .map(|&b| boundary_curve(groups, b, self.axis))
            .collect();
        let n = 200;
        let xs: Vec<f64> = (0..=n).map(|i| self.x_max * i as f64 / n as f64).collect();
        let lazy_c = self.analysis.params.lazy_c_at(self.point);
        let lazy_y = lazy_c.log2().clamp(y0, y1);
        let levels = region_levels(&xs, &curves, (y0, y1), lazy_y);
        let lazy_label = format!("lazy (c < {})", fmt_edge(lazy_c));
        let regions = [
            (lazy_label.as_str(), RGBColor(200, 200, 200)),
            ("sharpness reduction", RGBColor(120, 200, 120)),
            ("loss catapult", RGBColor(255, 190, 90)),
            ("loss + sharpness catapult", RGBColor(240, 110, 110)),
            ("divergent", RGBColor(110, 110, 110)),
        ];
        for (k, (label, color)) in regions.iter().enumerate() {
            let mut poly: Vec<(f64, f64)> = xs
                .iter()
                .copied()
                .zip(levels[k + 1].iter().copied())
                .collect();
            poly.extend(xs.iter().copied().zip(levels[k].iter().copied()).rev());
            let fill = color.mix(0.35).filled();
            chart
                .draw_series(std::iter::once(Polygon::new(poly, fill)))?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
        }

        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, lazy_y), (self.x_max, lazy_y)],
                8,
                5,
                BLACK.stroke_width(2),
            ))?
            .label(format!("c = {}", fmt_edge(lazy_c)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.stroke_width(2)));

        for b in self.analysis.boundaries() {
            self.draw_boundary(&mut chart, b, &xs, (y0, y1))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(font(13))
            .draw()?;
        Ok(())
    }
}

impl PhaseDiagram<'_> {
    /// Boundary `b`: its seed means with error bars, and its linear fit when there is one.
    fn draw_boundary<DB: DrawingBackend>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
        b: Boundary,
        xs: &[f64],
        y_range: (f64, f64),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let color = boundary_color(b);
        let pts = mean_points(&self.groups, b, self.axis);
        chart.draw_series(pts.iter().map(|&(x, lo, y, hi)| {
            ErrorBar::new_vertical(x, lo, y, hi, color.stroke_width(2), 8)
        }))?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, _, y, _)| Circle::new((x, y), 5, color.filled())),
            )?
            .label(format!("{} (mean ± se)", b.name()))
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, color.filled()));
        let fit = self
            .analysis
            .fits
            .iter()
            .find(|f| f.boundary == b && f.axis == self.axis && f.axis_point == self.point)
            .and_then(|f| f.fit.clone());
        if let Some(fit) = fit {
            let line = fit_line(&fit, xs, y_range);
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(format!(
                    "{} fit: {:.2} {} {:.2}·x",
                    b.name(),
                    fit.intercept,
                    if fit.slope < 0.0 { '−' } else { '+' },
                    fit.slope.abs()
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        Ok(())
    }
}

/// (step, ratio) points of a series divided by its reference, keeping finite positive ones.
fn ratio_points(series: &[f64], reference: f64) -> Vec<(f64, f64)> {
    series
        .iter()
        .enumerate()
        .filter_map(|(t, &v)| {
            let r = v / reference;
            (r.is_finite() && r > 0.0).then_some((t as f64, r))
        })
        .collect()
}

/// The edge of stability λ = edge/η of a run in units of its λ₀: edge/(η·λ₀), which is
/// edge/c when η = c/λ₀ (else edge/c itself).
fn edge_level(rec: &RunRecord, c: f64, edge: f64) -> f64 {
    let level = edge / (rec.eta * lambda_zero(rec));
    if level.is_finite() && level > 0.0 {
        level
    } else {
        edge / c
    }
}

/// The two ratio curves of one run and its edge line.
struct RunCurves {
    c: f64,
    loss: Curve,
    sharpness: Curve,
    /// λ/λ₀ at the edge of stability λ = edge/η ([`edge_level`]).
    edge_level: f64,
}

struct Trajectories {
    title: String,
    /// L_t/L₀ and λ_t/λ₀ of each run, ascending c.
    runs: Vec<RunCurves>,
    steps: usize,
    /// Step axis logarithmic (t ≥ 1) rather than linear ([`log_steps`]).
    log_steps: bool,
    /// The update rule's edge in units of η·λ (2 for SGD), for the legend.
    edge: f64,
}

impl Figure for Trajectories {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, font(22))?;
        let label = format!(
            "λ = {}/η: the edge of stability of each c (λ panel, dashed, in the colour of c)",
            fmt_edge(self.edge)
        );
        let (root, strip, keys) = legend_strip(&root, &[label])?;
        let key = keys[0];
        dashed_key(&strip, key, BLACK.stroke_width(1))?;
        let (w, _) = root.dim_in_pixel();
        let (panels, bar) = root.split_horizontally(w.saturating_sub(120));
        let halves = panels.split_evenly((1, 2));
        let scale = CScale::new(self.runs.iter().map(|r| r.c));
        let x_max = self.steps.max(1) as f64;
        for (sharp, area) in [false, true].into_iter().zip(&halves) {
            let x_min = if self.log_steps { 1.0 } else { 0.0 };
            let ys = self.runs.iter().flat_map(|r| {
                let curve = if sharp { &r.sharpness } else { &r.loss };
                let pts = curve.iter().filter(|p| p.0 >= x_min).map(|p| p.1);
                pts.chain(sharp.then_some(r.edge_level))
            });
            let (y0, y1) = log_range(ys);
            let mut builder = panel_builder(area);
            let y = (y0..y1).log_scale();
            if self.log_steps {
                let mut chart = builder.build_cartesian_2d((1f64..x_max).log_scale(), y)?;
                self.panel(&mut chart, sharp, &scale)?;
            } else {
                let mut chart = builder.build_cartesian_2d(0f64..x_max, y)?;
                self.panel(&mut chart, sharp, &scale)?;
            }
        }
        scale.draw_bar(&bar)
    }
}

impl Trajectories {
    /// One panel (the loss, or the sharpness with each c's edge line): only measured
    /// steps are drawn, joined by lines, each a dot.
    fn panel<'a, DB, X>(
        &self,
        chart: &mut LogYChart<'a, DB, X>,
        sharp: bool,
        scale: &CScale,
    ) -> DrawResult
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_min = if self.log_steps { 1.0 } else { 0.0 };
        let x_max = self.steps.max(1) as f64;
        let x_desc = if self.log_steps {
            "step t (log scale, t ≥ 1)"
        } else {
            "step t"
        };
        let y_desc = if sharp {
            "λ_t / λ₀ (log scale)"
        } else {
            "L_t / L₀ (log scale)"
        };
        log_y_mesh(chart, (x_desc, y_desc), (x_min, x_max), self.log_steps)?;
        for r in &self.runs {
            let curve = if sharp { &r.sharpness } else { &r.loss };
            let pts: Curve = curve.iter().copied().filter(|p| p.0 >= x_min).collect();
            let col = scale.color(r.c);
            chart.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, col.filled())))?;
        }
        if !sharp {
            return Ok(());
        }
        for r in &self.runs {
            let style = scale.color(r.c).stroke_width(1);
            let line = [(x_min, r.edge_level), (x_max, r.edge_level)];
            chart.draw_series(DashedLineSeries::new(line, 10, 6, style))?;
        }
        Ok(())
    }
}

struct Saturation {
    /// (label, (c, mean λ_τ/λ₀) points) lines, one per (depth, width, axis point).
    lines: Vec<(String, Curve)>,
    k: f64,
}

impl Figure for Saturation {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let all = self.lines.iter().flat_map(|l| l.1.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
        for &(c, r) in all {
            x0 = x0.min(c.log2());
            x1 = x1.max(c.log2());
            y1 = y1.max(r);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let pad = 0.05 * (x1 - x0);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Intermediate saturation: λ_τ / λ₀ at c·τ = {}", self.k),
                font(22),
            )
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..(y1.max(1.0) * 1.1))?;
        chart
            .configure_mesh()
            .x_desc("c = η λ₀ (log₂ scale)")
            .y_desc("λ_τ / λ₀")
            .x_label_formatter(&pow2_label)
            .label_style(font(14))
            .axis_desc_style(font(16))
            .draw()?;
        for (i, (label, pts)) in self.lines.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(c, r)| (c.log2(), r)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], col.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
        }
        draw_legend(&mut chart)?;
        Ok(())
    }
}

/// The phase diagram of axis point `point` (0 without `grid.axes`): shaded phases between
/// the seed-mean boundaries of its (depth, width) groups, boundary means with
/// standard-error bars, the fitted boundary lines, and the line c = edge (2 for SGD), in the (x = d/w or
/// 1/w, log₂ c) plane. Writes `dir/phase_diagram{suffix}.{png,svg}`, the suffix naming
/// the point's axis values ([`crate::record::Axes::file_suffix`]; none without axes).
pub fn plot_phase_diagram(
    results: &Results,
    analysis: &Analysis,
    dir: &Path,
    opts: &PlotOptions,
    point: u32,
) -> Result<PathBuf, PlotError> {
    let stem = format!("phase_diagram{}", analysis.axes.file_suffix(point));
    let no_data = |what: &str| PlotError::NoData {
        path: dir.join(format!("{stem}.{}", opts.format.extension())),
        what: what.into(),
    };
    let cs: Vec<f64> = results
        .keys
        .iter()
        .map(|k| k.c)
        .filter(|c| *c > 0.0)
        .collect();
    let groups: Vec<GroupSummary> = analysis
        .groups
        .iter()
        .filter(|g| g.axis_point == point)
        .cloned()
        .collect();
    if cs.is_empty() || groups.is_empty() {
        return Err(no_data("no runs"));
    }
    // The c range of the whole file: the diagrams of all axis points share their y axis.
    let lo = cs.iter().copied().fold(f64::INFINITY, f64::min).min(2.0);
    let hi = cs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(2.0);
    let x_max = groups
        .iter()
        .map(|g| opts.x_axis.x(g.depth, g.width))
        .fold(0.0, f64::max);
    let fig = PhaseDiagram {
        analysis,
        point,
        groups,
        axis: opts.x_axis,
        x_max: if x_max > 0.0 { x_max * 1.1 } else { 1.0 },
        y_range: (lo.log2() - 0.3, hi.log2() + 0.3),
    };
    render(&fig, dir, &stem, opts)
}

/// One phase diagram per axis point of the analysis ([`plot_phase_diagram`]; one without
/// `grid.axes`), in point order.
pub fn plot_phase_diagrams(
    results: &Results,
    analysis: &Analysis,
    dir: &Path,
    opts: &PlotOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    (0..analysis.axes.n_points() as u32)
        .map(|p| plot_phase_diagram(results, analysis, dir, opts, p))
        .collect()
}

/// The finished (done or diverged) runs of seed line `sel` with SGD seed `sgd_seed`, as
/// curves with their edge lines (`edge`: the update rule's, in units of η·λ), ascending c.
fn run_curves(
    results: &Results,
    sel: &TrajectorySelection,
    sgd_seed: Option<u64>,
    edge: f64,
) -> Vec<RunCurves> {
    let mut runs: Vec<RunCurves> = results
        .keys
        .iter()
        .zip(&results.records)
        .filter(|(k, _)| sel.holds(k) && Some(k.sgd_seed) == sgd_seed)
        .filter_map(|(k, r)| {
            let r = r.as_ref()?;
            if !matches!(r.status, RunStatus::Done | RunStatus::Diverged) {
                return None;
            }
            let l0 = r.loss.first().copied().unwrap_or(f64::NAN);
            Some(RunCurves {
                c: k.c,
                loss: ratio_points(&r.loss, l0),
                sharpness: ratio_points(&r.sharpness, lambda_zero(r)),
                edge_level: edge_level(r, k.c, edge),
            })
        })
        .collect();
    runs.sort_by(|a, b| a.c.total_cmp(&b.c));
    runs
}

impl TrajectorySelection {
    /// Whether run `k` belongs to the seed line (any SGD seed).
    fn holds(&self, k: &TaskKey) -> bool {
        k.depth == self.depth
            && k.width == self.width
            && k.seed == self.seed
            && k.axis_point == self.axis_point
    }
}

/// Loss and sharpness trajectories L_t/L₀ and λ_t/λ₀ against the step for every c of one
/// seed line, coloured by c (viridis, colour bar in c), with each c's edge of stability
/// λ = edge/η (`params`' edge of the axis point, as the regimes use it) in the λ panel; the
/// step axis is logarithmic (t ≥ 1) for runs of at least ten early windows
/// ([`log_steps`]). Writes `dir/trajectories_d{d}_w{w}_s{seed}_g{sgd_seed}.{png,svg}`.
pub fn plot_trajectories(
    results: &Results,
    params: &AnalysisParams,
    dir: &Path,
    opts: &PlotOptions,
    sel: &TrajectorySelection,
) -> Result<PathBuf, PlotError> {
    let sgd_seed = sel.sgd_seed.or_else(|| {
        results
            .keys
            .iter()
            .filter(|k| sel.holds(k))
            .map(|k| k.sgd_seed)
            .min()
    });
    let stem = format!(
        "trajectories_d{}_w{}_s{}_g{}{}",
        sel.depth,
        sel.width,
        sel.seed,
        sgd_seed.map_or("none".to_string(), |s| s.to_string()),
        results.axes.file_suffix(sel.axis_point)
    );
    let edge = params.lazy_c_at(sel.axis_point);
    let runs = run_curves(results, sel, sgd_seed, edge);
    if runs.is_empty() {
        return Err(PlotError::NoData {
            path: dir.join(format!("{stem}.{}", opts.format.extension())),
            what: format!(
                "no finished runs for depth {}, width {}, seed {}",
                sel.depth, sel.width, sel.seed
            ),
        });
    }
    let label = results.axes.label(sel.axis_point);
    let fig = Trajectories {
        title: format!(
            "{} steps of SGD, depth {}, width {}, seed {}{}{label}",
            results.steps,
            sel.depth,
            sel.width,
            sel.seed,
            if label.is_empty() { "" } else { ", " }
        ),
        runs,
        steps: results.steps,
        log_steps: log_steps(results.steps, params.early_window),
        edge,
    };
    render(&fig, dir, &stem, opts)
}

/// λ_τ/λ₀ (seed mean per c) against c, one line per (depth, width, axis point). Writes
/// `dir/lambda_tau.{png,svg}`; needs the regime analysis (runs of at least
/// `RegimeParams::min_steps` steps).
pub fn plot_saturation(
    analysis: &Analysis,
    dir: &Path,
    opts: &PlotOptions,
) -> Result<PathBuf, PlotError> {
    // (depth, width, axis point) → bits of c → (c, ratios over seeds).
    type ByC = BTreeMap<u64, (f64, Vec<f64>)>;
    let mut acc: BTreeMap<(u32, u32, u32), ByC> = BTreeMap::new();
    for r in &analysis.regimes {
        if r.lambda_tau_ratio.is_finite() && r.key.c > 0.0 {
            acc.entry((r.key.depth, r.key.width, r.key.axis_point))
                .or_default()
                .entry(r.key.c.to_bits())
                .or_insert((r.key.c, vec![]))
                .1
                .push(r.lambda_tau_ratio);
        }
    }
    let lines: Vec<(String, Curve)> = acc
        .into_iter()
        .map(|((d, w, point), m)| {
            let mut pts: Vec<(f64, f64)> = m
                .into_values()
                .map(|(c, v)| (c, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut label = format!(
                "d = {d}, w = {w} (d/w = {:.4})",
                f64::from(d) / f64::from(w)
            );
            if !analysis.axes.is_empty() {
                label += &format!(", {}", analysis.axes.label(point));
            }
            (label, pts)
        })
        .collect();
    if lines.is_empty() {
        return Err(PlotError::NoData {
            path: dir.join(format!("lambda_tau.{}", opts.format.extension())),
            what: "no measured λ_τ (runs shorter than the regime minimum?)".into(),
        });
    }
    let fig = Saturation {
        lines,
        k: analysis.params.regimes.k,
    };
    render(&fig, dir, "lambda_tau", opts)
}

/// The phase diagram (one per axis point of `grid.axes`), λ_τ/λ₀ (when long runs exist),
/// and the trajectories (with the regimes, for long runs, and the spectra) of the first
/// seed line of every (depth, width, axis point). Returns the written paths.
pub fn plot_all(
    results: &Results,
    analysis: &Analysis,
    dir: &Path,
    opts: &PlotOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut out = plot_phase_diagrams(results, analysis, dir, opts)?;
    if !analysis.regimes.is_empty() {
        out.push(plot_saturation(analysis, dir, opts)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for l in &analysis.lines {
        if seen.insert((l.line.depth, l.line.width, l.line.axis_point)) {
            let sel = TrajectorySelection {
                depth: l.line.depth,
                width: l.line.width,
                seed: l.line.seed,
                sgd_seed: Some(l.line.sgd_seed),
                axis_point: l.line.axis_point,
            };
            match plot_trajectories(results, &analysis.params, dir, opts, &sel) {
                Ok(p) => out.push(p),
                Err(PlotError::NoData { .. }) => {}
                Err(e) => return Err(e),
            }
            out.extend(super::plot_regimes::plot_regimes(
                results, analysis, dir, opts, &l.line,
            )?);
            out.extend(super::plot_spectrum::plot_spectrum(
                results, dir, opts, &l.line,
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::critical::tests::{diverged, line, run};
    use crate::analysis::figure::{log_steps, log_tick, sig3, step_tick};
    use crate::analysis::{analyze, AnalysisParams, PlotFormat};
    use crate::record::TaskKey;
    use std::io::Read;

    /// Decodes an 8-bit RGB/RGBA PNG (all filter types), returning (width, height, channels,
    /// pixels).
    fn decode_png(bytes: &[u8]) -> (u32, u32, usize, Vec<u8>) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let mut pos = 8;
        let (mut w, mut h, mut ch) = (0u32, 0u32, 0usize);
        let mut idat = Vec::new();
        while pos + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let kind = &bytes[pos + 4..pos + 8];
            let data = &bytes[pos + 8..pos + 8 + len];
            match kind {
                b"IHDR" => {
                    w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(data[8], 8, "bit depth");
                    ch = match data[9] {
                        2 => 3,
                        6 => 4,
                        t => panic!("colour type {t}"),
                    };
                    assert_eq!(data[12], 0, "interlace");
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            pos += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        let stride = w as usize * ch;
        assert_eq!(raw.len(), (stride + 1) * h as usize);
        let mut out = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            let f = raw[y * (stride + 1)];
            let src = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for x in 0..stride {
                let a = if x >= ch {
                    out[y * stride + x - ch] as i32
                } else {
                    0
                };
                let b = if y > 0 {
                    out[(y - 1) * stride + x] as i32
                } else {
                    0
                };
                let c = if x >= ch && y > 0 {
                    out[(y - 1) * stride + x - ch] as i32
                } else {
                    0
                };
                let pred = match f {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => {
                        let p = a + b - c;
                        let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    _ => panic!("filter {f}"),
                };
                out[y * stride + x] = (src[x] as i32 + pred) as u8;
            }
        }
        (w, h, ch, out)
    }

    /// Fraction of pixels that are not white, and the number of distinct colours.
    fn ink(pixels: &[u8], ch: usize) -> (f64, usize) {
        let n = pixels.len() / ch;
        let mut colours = std::collections::HashSet::new();
        let mut non_white = 0;
        for p in pixels.chunks(ch) {
            colours.insert((p[0], p[1], p[2]));
            if p[..3] != [255, 255, 255] {
                non_white += 1;
            }
        }
        (non_white as f64 / n as f64, colours.len())
    }

    /// The first seed line of `sample()`.
    const SEL: TrajectorySelection = TrajectorySelection {
        depth: 4,
        width: 256,
        seed: 1,
        sgd_seed: None,
        axis_point: 0,
    };

    fn sample() -> Results {
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps: 10,
            ..Default::default()
        };
        let cs: Vec<f64> = (0..12).map(|i| 2f64.powf(i as f64 * 0.4)).collect();
        line(&mut res, 2, 512, 0, &cs, "lllsLSSSSSDD");
        line(&mut res, 2, 512, 1, &cs, "lllLLSSSSSSD");
        line(&mut res, 4, 256, 0, &cs, "lllsLLSSSSDD");
        line(&mut res, 4, 256, 1, &cs, "lllssLSSSDDD");
        line(&mut res, 8, 128, 0, &cs, "lllsssLLSDDD");
        line(&mut res, 8, 128, 1, &cs, "lllssLLSSDDD");
        res
    }

    #[test]
    fn sizes_out_of_range_are_errors_not_panics() {
        let r = sample();
        let a = analyze(&r, &AnalysisParams::default());
        let dir = tempfile::tempdir().unwrap();
        for size in [(100_000, 100_000), (50, 800), (1200, 0)] {
            let opts = PlotOptions {
                size,
                ..Default::default()
            };
            let e = plot_phase_diagram(&r, &a, dir.path(), &opts, 0).unwrap_err();
            assert!(e.to_string().contains("each side must be between"), "{e}");
        }
    }

    #[test]
    fn edge_lines_sit_at_edge_over_c_and_long_runs_get_a_log_step_axis() {
        let res = sample();
        let sel = SEL;
        // λ/λ₀ = edge/(η·λ₀) = edge/c: 2 for SGD, 3.8 for heavy ball at β = 0.9.
        for edge in [2.0, 3.8] {
            let runs = run_curves(&res, &sel, Some(1), edge);
            assert_eq!(runs.len(), 12);
            for r in &runs {
                assert!(
                    (r.edge_level - edge / r.c).abs() < 1e-12 * edge / r.c,
                    "{}",
                    r.c
                );
            }
        }
        let mut rec = run(vec![1.0; 3], vec![10.0; 3], 4.0);
        rec.eta = f64::NAN;
        assert_eq!(edge_level(&rec, 4.0, 2.0), 0.5, "no usable η: edge/c");
        // Only measured steps are points: a sparse schedule leaves NaN between them.
        let mut sparse = res.clone();
        let i = sparse.keys.iter().position(|k| sel.holds(k)).unwrap();
        let r = sparse.records[i].as_mut().unwrap();
        for t in [2, 4, 5, 7] {
            r.sharpness[t] = f64::NAN;
        }
        let curves = run_curves(&sparse, &sel, Some(1), 2.0);
        let steps: Vec<f64> = curves[0].sharpness.iter().map(|p| p.0).collect();
        assert_eq!(steps, [0.0, 1.0, 3.0, 6.0, 8.0, 9.0, 10.0]);
        assert_eq!(curves[0].loss.len(), 11);
        // The step axis is logarithmic from ten early windows on.
        assert!(!log_steps(10, 10) && !log_steps(99, 10));
        assert!(log_steps(100, 10) && log_steps(50, 5) && log_steps(2000, 10));
        assert!(log_steps(10, 0), "a zero window counts as one step");
    }

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(sig3(0.1), "0.100");
        assert_eq!(sig3(45.254834), "45.3");
        assert_eq!(sig3(1000.0), "1000");
        assert_eq!(sig3(332463616.0), "3.32e8");
        assert_eq!(sig3(1e10), "1e10");
        assert_eq!(sig3(2.5e-5), "2.5e-5");
        assert_eq!(pow2_label(&3.0), "8");
        assert_eq!(pow2_label(&5.5), "45.3");
        // Step axes: whole steps plain; a log axis labels 1, 2, 5 × 10^k only.
        assert_eq!(step_tick(&0.0), "0");
        assert_eq!(step_tick(&300.0), "300");
        let log: Vec<String> = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 20.0, 0.5, 4800.0]
            .iter()
            .map(log_tick)
            .collect();
        assert_eq!(log, ["1", "2", "", "5", "", "10", "20", "0.500", ""]);
    }

    #[test]
    fn png_figures_are_valid_sized_and_not_blank() {
        let res = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let dir = tempfile::tempdir().unwrap();
        let opts = PlotOptions {
            format: PlotFormat::Png,
            size: (640, 480),
            x_axis: FitAxis::DepthOverWidth,
        };
        let p = plot_phase_diagram(&res, &a, dir.path(), &opts, 0).unwrap();
        assert_eq!(p, dir.path().join("phase_diagram.png"));
        let sel = SEL;
        let t = plot_trajectories(&res, &a.params, dir.path(), &opts, &sel).unwrap();
        assert!(t.ends_with("trajectories_d4_w256_s1_g1.png"));
        for path in [p, t] {
            let (w, h, ch, px) = decode_png(&std::fs::read(&path).unwrap());
            assert_eq!((w, h), (640, 480), "{path:?}");
            let (frac, colours) = ink(&px, ch);
            assert!(frac > 0.05, "{path:?}: only {frac} non-white");
            assert!(colours > 20, "{path:?}: {colours} colours");
        }
    }

    #[test]
    fn svg_figures_are_valid() {
        let res = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let dir = tempfile::tempdir().unwrap();
        let opts = PlotOptions {
            format: PlotFormat::Svg,
            size: (800, 600),
            x_axis: FitAxis::InverseWidth,
        };
        let paths = plot_all(&res, &a, dir.path(), &opts).unwrap();
        // Phase diagram + one trajectory figure per (d, w); no regimes for 10-step runs.
        assert_eq!(paths.len(), 4);
        for p in &paths {
            let s = std::fs::read_to_string(p).unwrap();
            assert!(s.starts_with("<svg") || s.starts_with("<?xml"), "{p:?}");
            assert!(s.trim_end().ends_with("</svg>"), "{p:?}");
            assert!(s.contains("width=\"800\"") && s.contains("height=\"600\""));
            assert!(s.matches("<polyline").count() + s.matches("<polygon").count() > 3);
        }
        let phase = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(phase.contains("1 / width"));
        assert!(phase.contains("c_loss (mean ± se)"));
        assert!(phase.contains("sharpness reduction"));
    }

    #[test]
    fn one_phase_diagram_and_trajectory_figure_per_axis_point() {
        let mut res = sample();
        let n = res.keys.len();
        for i in 0..n {
            let mut k = res.keys[i];
            k.axis_point = 1;
            res.keys.push(k);
            res.records.push(res.records[i].clone());
        }
        res.axes = crate::record::Axes::from_text("\"model.activation\" = [\"relu\", \"tanh\"]\n")
            .unwrap();
        let a = analyze(&res, &AnalysisParams::default());
        let dir = tempfile::tempdir().unwrap();
        let opts = PlotOptions {
            format: PlotFormat::Svg,
            size: (400, 300),
            ..Default::default()
        };
        let paths = plot_all(&res, &a, dir.path(), &opts).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in [
            "phase_diagram_activation-relu.svg",
            "phase_diagram_activation-tanh.svg",
            "trajectories_d4_w256_s0_g0_activation-tanh.svg",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        // Two phase diagrams, one trajectory figure per (depth, width, point).
        assert_eq!(paths.len(), 2 + 3 * 2, "{names:?}");
        let svg =
            std::fs::read_to_string(dir.path().join("phase_diagram_activation-tanh.svg")).unwrap();
        assert!(svg.contains("activation = tanh"));
    }

    #[test]
    fn saturation_figure_and_missing_data_errors() {
        let steps = 100;
        let mut res = Results {
            k: crate::record::EigenCount::ONE,
            steps,
            ..Default::default()
        };
        for (d, w) in [(2u32, 64u32), (4, 64)] {
            for (j, c) in [2.0, 4.0, 8.0].into_iter().enumerate() {
                res.keys.push(TaskKey {
                    c,
                    depth: d,
                    width: w,
                    seed: 0,
                    sgd_seed: 0,
                    axis_point: 0,
                });
                let sh: Vec<f64> = (0..=steps)
                    .map(|t| 10.0 * (1.0 - 0.3 * (j as f64 + 1.0) * (t.min(10) as f64) / 10.0))
                    .collect();
                res.records.push(Some(run(vec![1.0; steps + 1], sh, c)));
            }
        }
        res.keys.push(TaskKey {
            c: 16.0,
            depth: 2,
            width: 64,
            seed: 0,
            sgd_seed: 0,
            axis_point: 0,
        });
        res.records.push(Some(diverged(steps, 2, 16.0)));
        let a = analyze(&res, &AnalysisParams::default());
        assert_eq!(a.regimes.len(), 7);
        let dir = tempfile::tempdir().unwrap();
        let opts = PlotOptions {
            size: (500, 400),
            ..Default::default()
        };
        let p = plot_saturation(&a, dir.path(), &opts).unwrap();
        let (w, h, ch, px) = decode_png(&std::fs::read(&p).unwrap());
        assert_eq!((w, h), (500, 400));
        assert!(ink(&px, ch).0 > 0.02);
        // Errors name the file.
        let empty = analyze(&Results::default(), &AnalysisParams::default());
        let e = plot_saturation(&empty, dir.path(), &opts).unwrap_err();
        assert!(e.to_string().contains("lambda_tau.png"), "{e}");
        let e = plot_phase_diagram(&Results::default(), &empty, dir.path(), &opts, 0).unwrap_err();
        assert!(e.to_string().contains("phase_diagram.png"), "{e}");
        let sel = TrajectorySelection {
            depth: 3,
            width: 3,
            seed: 0,
            sgd_seed: None,
            axis_point: 0,
        };
        let e = plot_trajectories(&res, &a.params, dir.path(), &opts, &sel).unwrap_err();
        assert!(matches!(e, PlotError::NoData { .. }));
    }
}
