//! The regimes figure of one seed line: η·λ_t/edge of every c (the edge of stability is the
//! line at 1 for all of them) against the step and against c·t, both on log axes, with the
//! boundaries `regimes` found marked on each curve: the end of the early transient, the
//! onset of progressive sharpening, the first step at the edge, and divergence.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;

use crate::record::{LineKey, Results, RunRecord, RunStatus};

use super::figure::{
    dashed_key, fmt_edge, font, legend_strip, log_range, log_y_mesh, panel_builder, render, CScale,
    Curve, DrawResult, Figure, LogYChart, PlotError, PlotOptions,
};
use super::regimes::RunRegime;
use super::report::Analysis;

/// A boundary marked on a curve, each with its own shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mark {
    /// [`RunRegime::transient_end`]: square (larger than the others, so that a mark on
    /// the same step, often the onset, leaves its corners visible).
    TransientEnd,
    /// [`RunRegime::sharpening_onset`]: upward triangle.
    SharpeningOnset,
    /// [`RunRegime::edge_step`]: diamond.
    Edge,
    /// The last measured step of a run that diverged: ✕.
    Diverged,
}

impl Mark {
    /// The regime boundaries, in the legend's order (divergence is listed when it occurs).
    const BOUNDARIES: [Mark; 3] = [Mark::TransientEnd, Mark::SharpeningOnset, Mark::Edge];

    /// The legend's text.
    fn label(self, edge_tolerance: f64) -> String {
        match self {
            Mark::TransientEnd => "end of the early transient".into(),
            Mark::SharpeningOnset => "onset of progressive sharpening".into(),
            Mark::Edge => format!(
                "first step at the edge (η·λ ≥ {}·edge)",
                fmt_edge(1.0 - edge_tolerance)
            ),
            Mark::Diverged => "last step before divergence".into(),
        }
    }

    /// The outline in pixels around the point (closed polygon).
    fn outline(self) -> Vec<(i32, i32)> {
        match self {
            Mark::TransientEnd => vec![(-7, -7), (7, -7), (7, 7), (-7, 7)],
            Mark::SharpeningOnset => vec![(0, -7), (6, 5), (-6, 5)],
            Mark::Edge => vec![(0, -7), (7, 0), (0, 7), (-7, 0)],
            Mark::Diverged => {
                // A plus of half-width 2 and reach 7, turned by 45°.
                let plus = [
                    (2, 7),
                    (2, 2),
                    (7, 2),
                    (7, -2),
                    (2, -2),
                    (2, -7),
                    (-2, -7),
                    (-2, -2),
                    (-7, -2),
                    (-7, 2),
                    (-2, 2),
                    (-2, 7),
                ];
                let r = std::f64::consts::FRAC_1_SQRT_2;
                plus.iter()
                    .map(|&(x, y): &(i32, i32)| {
                        let (x, y) = (f64::from(x), f64::from(y));
                        (((x - y) * r).round() as i32, ((x + y) * r).round() as i32)
                    })
                    .collect()
            }
        }
    }

    /// The marker at `p`: filled with `fill`, outlined in black.
    fn element<C, DB: DrawingBackend>(self, p: C, fill: RGBColor) -> MarkElement<C, DB> {
        let shape = self.outline();
        let mut closed = shape.clone();
        closed.push(shape[0]);
        EmptyElement::at(p)
            + Polygon::new(shape, fill.filled())
            + PathElement::new(closed, BLACK.stroke_width(1))
    }
}

/// A drawn mark: a filled polygon and its black outline, offsets in pixels from the point.
type MarkElement<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// One run's curve η·λ_t/edge at its measured steps t ≥ 1 (up to divergence), and its
/// marks at (t, η·λ_t/edge).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RegimeCurve {
    /// Learning-rate multiplier.
    pub c: f64,
    /// (t, η·λ_t/edge) at the measured steps.
    pub points: Curve,
    /// The marked boundaries on the curve.
    pub marks: Vec<(Mark, (f64, f64))>,
}

/// The curve and marks of run `regime` (its record `rec`): only measured steps t ≥ 1 before
/// divergence; a boundary at step 0 (a run with no transient) or at an unmeasured step is
/// not marked.
pub(super) fn regime_curve(rec: &RunRecord, regime: &RunRegime) -> RegimeCurve {
    let scale = rec.eta / regime.edge;
    let end = rec.diverged_at.map_or(usize::MAX, |s| s as usize);
    let at = |t: usize| -> Option<(f64, f64)> {
        let y = scale * rec.sharpness.get(t).copied()?;
        (t >= 1 && t < end && y.is_finite() && y > 0.0).then_some((t as f64, y))
    };
    let points: Curve = (1..rec.sharpness.len()).filter_map(at).collect();
    let mut marks: Vec<(Mark, (f64, f64))> = [
        (Mark::TransientEnd, regime.transient_end),
        (Mark::SharpeningOnset, regime.sharpening_onset),
        (Mark::Edge, regime.edge_step),
    ]
    .into_iter()
    .filter_map(|(m, t)| Some((m, at(t?)?)))
    .collect();
    if rec.status == RunStatus::Diverged {
        if let Some(&last) = points.last() {
            marks.push((Mark::Diverged, last));
        }
    }
    RegimeCurve {
        c: regime.key.c,
        points,
        marks,
    }
}

/// The curves of the runs of `line` that the regime analysis covers, ascending c (runs with
/// no measured step t ≥ 1 left out).
pub(super) fn line_curves(
    results: &Results,
    regimes: &[RunRegime],
    line: &LineKey,
) -> Vec<RegimeCurve> {
    let mut out: Vec<RegimeCurve> = regimes
        .iter()
        .filter(|r| LineKey::from(&r.key) == *line)
        .filter_map(|r| {
            let rec = results.records.get(r.index)?.as_ref()?;
            Some(regime_curve(rec, r)).filter(|c| !c.points.is_empty())
        })
        .collect();
    out.sort_by(|a, b| a.c.total_cmp(&b.c));
    out
}

struct RegimesFigure {
    title: String,
    curves: Vec<RegimeCurve>,
    /// Every c of the line's finished runs, drawn or not (a run that diverged before a
    /// measured step has no curve): the colour scale of its trajectories figure.
    cs: Vec<f64>,
    /// The update rule's edge in units of η·λ (2 for SGD).
    edge: f64,
    edge_tolerance: f64,
}

impl Figure for RegimesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, font(22))?;
        let root = self.legend(&root)?;
        let (w, _) = root.dim_in_pixel();
        let (panels, bar) = root.split_horizontally(w.saturating_sub(120));
        let halves = panels.split_evenly((1, 2));
        let scale = CScale::new(self.cs.iter().copied());
        let ys = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1));
        let (y0, y1) = log_range(ys);
        for (collapse, area) in [false, true].into_iter().zip(&halves) {
            let xs = self.curves.iter().flat_map(|c| {
                c.points
                    .iter()
                    .map(|p| if collapse { c.c * p.0 } else { p.0 })
            });
            let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            let (x0, x1) = (x0 / 1.2, x1.max(x0 * 2.0) * 1.2);
            let mut chart = panel_builder(area)
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
            self.panel(&mut chart, collapse, (x0, x1), &scale)?;
        }
        scale.draw_bar(&bar)
    }
}

impl RegimesFigure {
    /// One panel: against the step (`collapse` false) or against c·t.
    fn panel<'a, DB, X>(
        &self,
        chart: &mut LogYChart<'a, DB, X>,
        collapse: bool,
        x_range: (f64, f64),
        scale: &CScale,
    ) -> DrawResult
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_desc = if collapse {
            "c·t (log scale): the transient ends at c·t ≈ const"
        } else {
            "step t (log scale, t ≥ 1)"
        };
        let y_desc = format!("η·λ_t / {} (log scale)", fmt_edge(self.edge));
        log_y_mesh(chart, (x_desc, &y_desc), x_range, true)?;
        let x = |c: f64, p: (f64, f64)| if collapse { (c * p.0, p.1) } else { p };
        for cv in &self.curves {
            let col = scale.color(cv.c);
            let pts: Curve = cv.points.iter().map(|&p| x(cv.c, p)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, col.filled())))?;
        }
        for kind in [
            Mark::TransientEnd,
            Mark::SharpeningOnset,
            Mark::Edge,
            Mark::Diverged,
        ] {
            let marks = self.curves.iter().flat_map(|cv| {
                let col = scale.color(cv.c);
                cv.marks
                    .iter()
                    .filter(move |m| m.0 == kind)
                    .map(move |m| kind.element(x(cv.c, m.1), col))
            });
            chart.draw_series(marks)?;
        }
        Ok(())
    }

    /// The legend strip under the panels (the three boundaries, the edge line and, when a
    /// run diverged, its mark); returns the area above it.
    fn legend<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let diverged = self
            .curves
            .iter()
            .any(|c| c.marks.iter().any(|m| m.0 == Mark::Diverged));
        let mut kinds: Vec<Option<Mark>> = Mark::BOUNDARIES.into_iter().map(Some).collect();
        kinds.push(None);
        if diverged {
            kinds.push(Some(Mark::Diverged));
        }
        let labels: Vec<String> = kinds
            .iter()
            .map(|k| match k {
                Some(m) => m.label(self.edge_tolerance),
                None => format!("η·λ = {}: the edge of stability", fmt_edge(self.edge)),
            })
            .collect();
        let (rest, strip, keys) = legend_strip(root, &labels)?;
        let grey = RGBColor(200, 200, 200);
        for (kind, at) in kinds.into_iter().zip(keys) {
            match kind {
                Some(m) => strip.draw(&m.element(at, grey))?,
                None => dashed_key(&strip, at, BLACK.mix(0.6).stroke_width(1))?,
            }
        }
        Ok(rest)
    }
}

/// The regimes figure of seed line `line` (see the module): written only when the analysis
/// has regimes (runs of at least `RegimeParams::min_steps` steps, the condition of
/// `lambda_tau`) and a run of the line has a measured step t ≥ 1; None otherwise. Writes
/// `dir/regimes_d{d}_w{w}_s{seed}_g{sgd_seed}{suffix}.{png,svg}`, named as the trajectories.
pub fn plot_regimes(
    results: &Results,
    analysis: &Analysis,
    dir: &Path,
    opts: &PlotOptions,
    line: &LineKey,
) -> Result<Option<PathBuf>, PlotError> {
    let curves = line_curves(results, &analysis.regimes, line);
    if curves.is_empty() {
        return Ok(None);
    }
    let stem = format!(
        "regimes_d{}_w{}_s{}_g{}{}",
        line.depth,
        line.width,
        line.seed,
        line.sgd_seed,
        results.axes.file_suffix(line.axis_point)
    );
    let label = results.axes.label(line.axis_point);
    let fig = RegimesFigure {
        title: format!(
            "Regimes of λ_t: {} steps, depth {}, width {}, seed {}{}{label}",
            results.steps,
            line.depth,
            line.width,
            line.seed,
            if label.is_empty() { "" } else { ", " }
        ),
        curves,
        cs: analysis
            .regimes
            .iter()
            .filter(|r| LineKey::from(&r.key) == *line)
            .map(|r| r.key.c)
            .collect(),
        edge: analysis.params.lazy_c_at(line.axis_point),
        edge_tolerance: analysis.params.regimes.edge_tolerance,
    };
    render(&fig, dir, &stem, opts).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::critical::tests::{diverged, run};
    use crate::analysis::regimes::tests::{key, results};
    use crate::analysis::{analyze, AnalysisParams, PlotFormat};

    const LINE: LineKey = LineKey {
        depth: 4,
        width: 256,
        axis_point: 0,
        seed: 0,
        sgd_seed: 0,
    };

    /// 100 steps at c = 4, λ₀ = 10 (η = 0.4), measured at 0..=10, every third step after
    /// and at 100: a catapult (λ 10 → 14 → 3.5), a plateau at 3 from step 5, a linear rise
    /// from step 40 to 5 (η·λ = 2, the SGD edge) at step 80, then flat.
    fn four_regimes() -> RunRecord {
        let lam = |t: usize| -> f64 {
            match t {
                0 => 10.0,
                1 => 14.0,
                2 => 8.0,
                3 => 5.0,
                4 => 3.5,
                5..=40 => 3.0,
                41..=80 => 3.0 + 2.0 * (t - 40) as f64 / 40.0,
                _ => 5.0,
            }
        };
        let sh = (0..=100)
            .map(|t| {
                if t <= 10 || t % 3 == 0 || t == 100 {
                    lam(t)
                } else {
                    f64::NAN
                }
            })
            .collect();
        run(vec![1.0; 101], sh, 4.0)
    }

    fn sample() -> Results {
        let lazy = run(vec![1.0; 101], vec![10.0; 101], 0.5);
        let runs = [
            (4.0, four_regimes()),
            (0.5, lazy),
            (16.0, diverged(100, 3, 16.0)),
        ];
        results(100, runs.into_iter().map(|r| (key(r.0), r.1)).collect())
    }

    #[test]
    fn curves_hold_the_measured_steps_and_the_marks_sit_on_them() {
        let res = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let curves = line_curves(&res, &a.regimes, &LINE);
        assert_eq!(
            curves.iter().map(|c| c.c).collect::<Vec<_>>(),
            [0.5, 4.0, 16.0]
        );
        // c = 4: every measured step t ≥ 1, at η·λ_t/2 = 0.2·λ_t.
        let cv = &curves[1];
        let rec = four_regimes();
        let steps: Vec<f64> = (1..=100)
            .filter(|&t| rec.sharpness[t].is_finite())
            .map(|t| t as f64)
            .collect();
        assert_eq!(cv.points.iter().map(|p| p.0).collect::<Vec<_>>(), steps);
        for &(t, y) in &cv.points {
            assert!((y - 0.2 * rec.sharpness[t as usize]).abs() < 1e-12, "{t}");
        }
        assert!(
            (cv.points[0].1 - 2.8).abs() < 1e-12,
            "the catapult at t = 1"
        );
        // Each boundary the analysis found is marked at its step, on the curve.
        let r = a.regimes.iter().find(|r| r.key.c == 4.0).unwrap();
        let (t_end, onset, edge) = (
            r.transient_end.unwrap(),
            r.sharpening_onset.unwrap(),
            r.edge_step.unwrap(),
        );
        assert_eq!(t_end, 5, "{r:?}");
        assert!((36..=48).contains(&onset), "{r:?}");
        // η·λ ≥ 0.95·2 from λ ≥ 4.75: step 75, a measured one.
        assert_eq!(edge, 75, "{r:?}");
        let at = |t: usize| (t as f64, 0.2 * rec.sharpness[t]);
        assert_eq!(
            cv.marks,
            vec![
                (Mark::TransientEnd, at(t_end)),
                (Mark::SharpeningOnset, at(onset)),
                (Mark::Edge, at(edge)),
            ]
        );
        // The lazy run's transient ends at step 0: nothing to mark on a log axis.
        let lazy = a.regimes.iter().find(|r| r.key.c == 0.5).unwrap();
        assert_eq!(lazy.transient_end, Some(0));
        assert!(curves[0].marks.is_empty(), "{:?}", curves[0].marks);
        assert_eq!(curves[0].points.len(), 100);
        // The diverged run (at step 3) is drawn to step 2 and marked there.
        let div = &curves[2];
        let y = 16.0 / 10.0 * 10.0 / 2.0;
        assert_eq!(div.points, vec![(1.0, y), (2.0, y)]);
        assert_eq!(div.marks.last(), Some(&(Mark::Diverged, (2.0, y))));
        // Another line, or runs too short for the regimes: no curve.
        let other = LineKey { seed: 1, ..LINE };
        assert!(line_curves(&res, &a.regimes, &other).is_empty());
    }

    #[test]
    fn the_edge_is_the_update_rules() {
        // Heavy ball at β = 0.9: edge 3.8, the curve is η·λ_t/3.8.
        let res = sample();
        let p = AnalysisParams {
            lazy_c: 3.8,
            ..Default::default()
        };
        let a = analyze(&res, &p);
        let cv = &line_curves(&res, &a.regimes, &LINE)[1];
        assert!((cv.points[0].1 - 0.4 * 14.0 / 3.8).abs() < 1e-12);
        // η·λ never reaches 0.95·3.8 (at most 0.4·14 = 5.6 at t = 1, above it from the
        // start): no edge mark.
        assert!(cv.marks.iter().all(|m| m.0 != Mark::Edge), "{:?}", cv.marks);
    }

    #[test]
    fn the_figure_is_written_for_long_runs_only() {
        let res = sample();
        let a = analyze(&res, &AnalysisParams::default());
        let dir = tempfile::tempdir().unwrap();
        let opts = PlotOptions {
            size: (700, 450),
            ..Default::default()
        };
        let p = plot_regimes(&res, &a, dir.path(), &opts, &LINE)
            .unwrap()
            .expect("written");
        assert_eq!(p, dir.path().join("regimes_d4_w256_s0_g0.png"));
        let png = std::fs::read(&p).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 700);
        assert!(png.len() > 5000, "{} bytes", png.len());
        let svg = PlotOptions {
            format: PlotFormat::Svg,
            ..opts
        };
        let p = plot_regimes(&res, &a, dir.path(), &svg, &LINE)
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(p).unwrap();
        for label in [
            "end of the early transient",
            "onset of progressive sharpening",
            "last step before divergence",
            "c·t (log scale)",
        ] {
            assert!(text.contains(label), "{label}");
        }
        // plot_all writes it beside the trajectories.
        let all = crate::analysis::plot::plot_all(&res, &a, dir.path(), &opts).unwrap();
        assert!(all.iter().any(|p| p.ends_with("regimes_d4_w256_s0_g0.png")));
        // Below RegimeParams::min_steps (20) there are no regimes, and no figure.
        let mut short = sample();
        short.steps = 19;
        let a = analyze(&short, &AnalysisParams::default());
        assert!(a.regimes.is_empty());
        assert_eq!(
            plot_regimes(&short, &a, dir.path(), &opts, &LINE).unwrap(),
            None
        );
    }
}
