//! The spectrum figure: the top-k Hessian eigenvalues (and the Gauss-Newton top k and the
//! smallest Hessian eigenvalue, when measured) of one run against the step, over λ₀.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::figure::{draw_legend, font, render, DrawResult, Figure, PlotError, PlotOptions};
use crate::record::{LineKey, Results, RunRecord, RunStatus};

/// One curve: label, palette index, dashed, points.
type SpectrumCurve = (String, usize, bool, Vec<(f64, f64)>);

struct SpectrumFigure {
    title: String,
    curves: Vec<SpectrumCurve>,
    steps: usize,
}

/// Whether the run's record holds more than the sharpness (k > 1, Gauss-Newton or bottom).
fn has_spectrum(rec: &RunRecord, k: usize) -> bool {
    k > 1
        || rec
            .gn_eigenvalues
            .iter()
            .chain(&rec.min_eigenvalue)
            .any(|x| x.is_finite())
}

/// `series[t·k + i] / l0` for the measured steps.
fn column(series: &[f64], k: usize, i: usize, l0: f64) -> Vec<(f64, f64)> {
    series
        .chunks(k)
        .enumerate()
        .filter_map(|(t, row)| {
            row.get(i)
                .filter(|x| x.is_finite())
                .map(|x| (t as f64, x / l0))
        })
        .collect()
}

impl Figure for SpectrumFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let ys = self.curves.iter().flat_map(|c| c.3.iter().map(|p| p.1));
        let (lo, hi) = ys.fold((0f64, 1f64), |(a, b), y| (a.min(y), b.max(y)));
        let pad = 0.05 * (hi - lo).max(1e-9);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..self.steps.max(1) as f64, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("eigenvalue / λ₀")
            .x_label_formatter(&|v| format!("{}", v.round()))
            .label_style(font(14))
            .axis_desc_style(font(16))
            .draw()?;
        for (label, colour, dashed, pts) in &self.curves {
            let col = Palette99::pick(*colour).to_rgba();
            let style = col.stroke_width(2);
            if *dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], style));
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], style));
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, col.filled())))?;
        }
        draw_legend(&mut chart)?;
        Ok(())
    }
}

/// The spectrum of the run of `line` with the largest c that trained without diverging
/// (the catapult regimes sit just below c_max): λ₁..λ_k / λ₀ (solid), the Gauss-Newton
/// top k (dashed) and λ_min (grey), against the step. Writes
/// `dir/spectrum_d{d}_w{w}_s{seed}_g{sgd_seed}{axis suffix}.{png,svg}`; `Ok(None)` when
/// the line has no finished run with more than the sharpness measured.
pub fn plot_spectrum(
    results: &Results,
    dir: &Path,
    opts: &PlotOptions,
    line: &LineKey,
) -> Result<Option<PathBuf>, PlotError> {
    let k = results.k.get();
    let (d, w, seed, sgd) = (line.depth, line.width, line.seed, line.sgd_seed);
    let best = results
        .keys
        .iter()
        .zip(&results.records)
        .filter(|(key, _)| LineKey::from(*key) == *line)
        .filter_map(|(key, r)| r.as_ref().map(|r| (key.c, r)))
        .filter(|(_, r)| r.status == RunStatus::Done && has_spectrum(r, k))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let Some((c, rec)) = best else {
        return Ok(None);
    };
    let l0 = rec.lambda0;
    let mut curves = Vec::new();
    for i in 0..k {
        curves.push((
            format!("λ{} (Hessian)", i + 1),
            i,
            false,
            column(&rec.eigenvalues, k, i, l0),
        ));
        let gn = column(&rec.gn_eigenvalues, k, i, l0);
        if !gn.is_empty() {
            curves.push((format!("λ{} (Gauss-Newton)", i + 1), i, true, gn));
        }
    }
    let low = column(&rec.min_eigenvalue, 1, 0, l0);
    if !low.is_empty() {
        curves.push(("λ_min (Hessian)".into(), 98, false, low));
    }
    curves.retain(|c| !c.3.is_empty());
    let label = results.axes.label(line.axis_point);
    let fig = SpectrumFigure {
        title: format!(
            "Spectrum, depth {d}, width {w}, seed {seed}, c = {c:.3}{}{label}",
            if label.is_empty() { "" } else { ", " }
        ),
        curves,
        steps: results.steps,
    };
    let suffix = results.axes.file_suffix(line.axis_point);
    render(
        &fig,
        dir,
        &format!("spectrum_d{d}_w{w}_s{seed}_g{sgd}{suffix}"),
        opts,
    )
    .map(Some)
}
