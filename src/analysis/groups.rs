//! Per (depth, width) (and axis point): the seed averages of the critical values of its
//! lines ([`GroupSummary`], [`SeedMean`]) and the linear fits of each boundary against
//! 1/w and d/w ([`BoundaryFit`]). The conventions are those of [`super::critical`]:
//! means of c itself, standard error std/√n with the n−1 denominator, only resolved lines
//! in the mean.

use serde::Serialize;

use super::critical::{Boundary, CriticalValue, LineCritical, Resolution};

/// Seed average of one boundary over the lines of one (depth, width).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedMean {
    /// Mean of the resolved values (NaN when none).
    pub mean: f64,
    /// Standard error std/√n, n−1 denominator (NaN for n < 2).
    pub se: f64,
    /// Number of resolved lines averaged.
    pub n: usize,
    /// Lines where the value is below the grid.
    pub n_below: usize,
    /// Lines where the value is above the grid.
    pub n_above: usize,
    /// Lines where the value is unresolved (or has no data).
    pub n_unresolved: usize,
    /// Lines where the early window is not measured at every step for this criterion.
    pub n_not_measured: usize,
    /// Lines whose bracket is coarser than the allowed ratio.
    pub n_coarse: usize,
}

/// All boundaries of one (depth, width, axis point), averaged over seed lines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummary {
    /// Number of weight layers.
    pub depth: u32,
    /// Hidden width.
    pub width: u32,
    /// Point of `grid.axes` (0 without axes).
    pub axis_point: u32,
    /// Number of seed lines.
    pub n_lines: usize,
    /// Loss-catapult onset.
    pub c_loss: SeedMean,
    /// Sharpness-catapult onset.
    pub c_sharp: SeedMean,
    /// Largest trainable c.
    pub c_max: SeedMean,
    /// Loss-barrier onset (when interpolation data exist).
    pub c_barrier: Option<SeedMean>,
    /// Human-readable warnings about this group.
    pub warnings: Vec<String>,
}

impl GroupSummary {
    /// depth / width.
    pub fn d_over_w(&self) -> f64 {
        f64::from(self.depth) / f64::from(self.width)
    }
    /// The seed mean of `b` (None only for c_barrier without interpolation data).
    pub fn get(&self, b: Boundary) -> Option<&SeedMean> {
        match b {
            Boundary::CLoss => Some(&self.c_loss),
            Boundary::CSharp => Some(&self.c_sharp),
            Boundary::CMax => Some(&self.c_max),
            Boundary::CBarrier => self.c_barrier.as_ref(),
        }
    }
}

/// Abscissa of a boundary fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FitAxis {
    /// x = 1/w.
    InverseWidth,
    /// x = d/w.
    DepthOverWidth,
}

impl FitAxis {
    /// x for a (depth, width).
    pub fn x(self, depth: u32, width: u32) -> f64 {
        match self {
            FitAxis::InverseWidth => 1.0 / f64::from(width),
            FitAxis::DepthOverWidth => f64::from(depth) / f64::from(width),
        }
    }
    /// Name for output (`1/w`, `d/w`).
    pub fn name(self) -> &'static str {
        match self {
            FitAxis::InverseWidth => "1/w",
            FitAxis::DepthOverWidth => "d/w",
        }
    }
}

/// A straight line y = intercept + slope·x from (weighted) least squares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearFit {
    /// Value at x = 0.
    pub intercept: f64,
    /// dy/dx.
    pub slope: f64,
    /// Standard error of the intercept.
    pub intercept_se: f64,
    /// Standard error of the slope.
    pub slope_se: f64,
    /// Number of points.
    pub n: usize,
    /// Whether weights 1/se² were used. Weighted fits report the absolute-σ covariance
    /// (XᵀWX)⁻¹; unweighted ones scale (XᵀX)⁻¹ by RSS/(n−2) (NaN errors for n = 2).
    pub weighted: bool,
}

impl LinearFit {
    /// The fitted line at x.
    pub fn eval(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// The fit of one boundary against one abscissa, over the groups of one axis point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoundaryFit {
    /// Point of `grid.axes` whose groups are fitted (0 without axes).
    pub axis_point: u32,
    /// Which boundary.
    pub boundary: Boundary,
    /// Against what.
    pub axis: FitAxis,
    /// The fit (None with fewer than two usable points or all x equal).
    pub fit: Option<LinearFit>,
}

/// Mean and standard error (n−1 denominator; NaN for n < 2) of `values`.
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

fn seed_mean<'a>(vals: impl Iterator<Item = &'a CriticalValue>) -> SeedMean {
    let mut resolved = Vec::new();
    let (mut n_below, mut n_above, mut n_unresolved, mut n_coarse) = (0, 0, 0, 0);
    let mut n_not_measured = 0;
    for v in vals {
        n_coarse += usize::from(v.coarse);
        match v.resolution {
            Resolution::Resolved => resolved.push(v.value.expect("resolved has a value")),
            Resolution::BelowGrid => n_below += 1,
            Resolution::AboveGrid => n_above += 1,
            Resolution::Unresolved | Resolution::NoData => n_unresolved += 1,
            Resolution::NotMeasured => n_not_measured += 1,
        }
    }
    let (mean, se) = mean_se(&resolved);
    SeedMean {
        mean,
        se,
        n: resolved.len(),
        n_below,
        n_above,
        n_unresolved,
        n_not_measured,
        n_coarse,
    }
}

/// Seed averages per (depth, width, axis point), sorted by (depth, width, axis point).
pub fn group_summaries(lines: &[LineCritical]) -> Vec<GroupSummary> {
    type Lines<'a> = Vec<&'a LineCritical>;
    let mut groups: std::collections::BTreeMap<(u32, u32, u32), Lines> = Default::default();
    for l in lines {
        groups
            .entry((l.line.depth, l.line.width, l.line.axis_point))
            .or_default()
            .push(l);
    }
    groups
        .into_iter()
        .map(|((depth, width, axis_point), ls)| {
            let has_barrier = ls.iter().any(|l| l.c_barrier.is_some());
            let mut g = GroupSummary {
                depth,
                width,
                axis_point,
                n_lines: ls.len(),
                c_loss: seed_mean(ls.iter().map(|l| &l.c_loss)),
                c_sharp: seed_mean(ls.iter().map(|l| &l.c_sharp)),
                c_max: seed_mean(ls.iter().map(|l| &l.c_max)),
                c_barrier: has_barrier
                    .then(|| seed_mean(ls.iter().filter_map(|l| l.c_barrier.as_ref()))),
                warnings: Vec::new(),
            };
            for b in [
                Boundary::CLoss,
                Boundary::CSharp,
                Boundary::CMax,
                Boundary::CBarrier,
            ] {
                let Some(m) = g.get(b) else { continue };
                let name = b.name();
                let mut w = Vec::new();
                if m.n_below > 0 {
                    w.push(format!("{name}: {} line(s) below grid", m.n_below));
                }
                if m.n_above > 0 {
                    w.push(format!("{name}: {} line(s) above grid", m.n_above));
                }
                if m.n_unresolved > 0 {
                    w.push(format!("{name}: {} line(s) unresolved", m.n_unresolved));
                }
                if m.n_not_measured > 0 {
                    let why = ls.iter().filter_map(|l| l.get(b)?.reason.clone()).next();
                    w.push(format!(
                        "{name}: {} line(s) not measured ({})",
                        m.n_not_measured,
                        why.unwrap_or_default()
                    ));
                }
                if m.n_coarse > 0 {
                    w.push(format!(
                        "{name}: {} line(s) with coarse bracket",
                        m.n_coarse
                    ));
                }
                let nm = ls
                    .iter()
                    .filter_map(|l| l.get(b))
                    .filter(|v| v.non_monotone)
                    .count();
                if nm > 0 {
                    w.push(format!("{name}: {nm} line(s) non-monotone in c"));
                }
                g.warnings.extend(w);
            }
            g
        })
        .collect()
}

/// Weighted least squares y = a + b·x. Weights `w` (None: unweighted). None for fewer than
/// two points or when all x coincide.
pub fn linear_fit(x: &[f64], y: &[f64], w: Option<&[f64]>) -> Option<LinearFit> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let weight = |i: usize| w.map_or(1.0, |w| w[i]);
    let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        s += weight(i);
        sx += weight(i) * x[i];
        sy += weight(i) * y[i];
    }
    let (xm, ym) = (sx / s, sy / s);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in 0..n {
        sxx += weight(i) * (x[i] - xm).powi(2);
        sxy += weight(i) * (x[i] - xm) * (y[i] - ym);
    }
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = ym - slope * xm;
    // Covariance of (intercept, slope) is σ²·(XᵀWX)⁻¹ with
    // Var(slope) = σ²/Sxx and Var(intercept) = σ²·(1/S + x̄²/Sxx).
    let sigma2 = if w.is_some() {
        1.0
    } else if n > 2 {
        let rss: f64 = (0..n)
            .map(|i| (y[i] - intercept - slope * x[i]).powi(2))
            .sum();
        rss / (n - 2) as f64
    } else {
        f64::NAN
    };
    Some(LinearFit {
        intercept,
        slope,
        intercept_se: (sigma2 * (1.0 / s + xm * xm / sxx)).sqrt(),
        slope_se: (sigma2 / sxx).sqrt(),
        n,
        weighted: w.is_some(),
    })
}

/// Fits each boundary's seed mean against 1/w and d/w, over the groups of each axis point
/// in turn (ascending; one point without axes). Groups whose mean is NaN are left out.
/// Weighted by 1/se² when every used point has a finite positive se, else unweighted.
pub fn boundary_fits(groups: &[GroupSummary]) -> Vec<BoundaryFit> {
    let mut points: Vec<u32> = groups.iter().map(|g| g.axis_point).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    for point in points {
        let at: Vec<&GroupSummary> = groups.iter().filter(|g| g.axis_point == point).collect();
        for b in [
            Boundary::CLoss,
            Boundary::CSharp,
            Boundary::CMax,
            Boundary::CBarrier,
        ] {
            if b == Boundary::CBarrier && groups.iter().all(|g| g.c_barrier.is_none()) {
                continue;
            }
            for axis in [FitAxis::InverseWidth, FitAxis::DepthOverWidth] {
                out.push(BoundaryFit {
                    axis_point: point,
                    boundary: b,
                    axis,
                    fit: fit_groups(&at, b, axis),
                });
            }
        }
    }
    out
}

/// The fit of boundary `b`'s seed means against `axis` over `groups`.
fn fit_groups(groups: &[&GroupSummary], b: Boundary, axis: FitAxis) -> Option<LinearFit> {
    let pts: Vec<(f64, f64, f64)> = groups
        .iter()
        .filter_map(|g| {
            let m = g.get(b)?;
            m.mean
                .is_finite()
                .then(|| (axis.x(g.depth, g.width), m.mean, m.se))
        })
        .collect();
    let x: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let y: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let weighted = pts.iter().all(|p| p.2.is_finite() && p.2 > 0.0);
    let w: Vec<f64> = pts.iter().map(|p| 1.0 / (p.2 * p.2)).collect();
    linear_fit(&x, &y, weighted.then_some(w.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_recover_exact_lines() {
        let x = [0.0, 0.01, 0.02, 0.05];
        let y: Vec<f64> = x.iter().map(|x| 2.5 + 40.0 * x).collect();
        let f = linear_fit(&x, &y, None).unwrap();
        assert!((f.intercept - 2.5).abs() < 1e-12);
        assert!((f.slope - 40.0).abs() < 1e-9);
        assert!(f.slope_se.abs() < 1e-9);
        assert_eq!(f.n, 4);
        // Weighted: exact data still exact; absolute-σ errors from (XᵀWX)⁻¹.
        let se = [0.1, 0.2, 0.1, 0.4];
        let w: Vec<f64> = se.iter().map(|s: &f64| 1.0 / (s * s)).collect();
        let f = linear_fit(&x, &y, Some(&w)).unwrap();
        assert!((f.intercept - 2.5).abs() < 1e-12);
        assert!((f.slope - 40.0).abs() < 1e-9);
        let (s, sx, sxx): (f64, f64, f64) = (0..4).fold((0.0, 0.0, 0.0), |a, i| {
            (a.0 + w[i], a.1 + w[i] * x[i], a.2 + w[i] * x[i] * x[i])
        });
        let det = s * sxx - sx * sx;
        assert!((f.slope_se - (s / det).sqrt()).abs() < 1e-9);
        assert!((f.intercept_se - (sxx / det).sqrt()).abs() < 1e-9);
        assert!(linear_fit(&[1.0], &[2.0], None).is_none());
        assert!(linear_fit(&[1.0, 1.0], &[2.0, 3.0], None).is_none());
        let two = linear_fit(&[0.0, 1.0], &[1.0, 3.0], None).unwrap();
        assert_eq!(two.slope, 2.0);
        assert!(two.slope_se.is_nan());
    }

    #[test]
    fn boundary_fits_from_groups() {
        let mk = |d: u32, w: u32, m: f64| GroupSummary {
            depth: d,
            width: w,
            n_lines: 1,
            c_loss: SeedMean {
                mean: m,
                se: f64::NAN,
                n: 1,
                n_below: 0,
                n_above: 0,
                n_unresolved: 0,
                n_not_measured: 0,
                n_coarse: 0,
            },
            c_sharp: SeedMean {
                mean: f64::NAN,
                se: f64::NAN,
                n: 0,
                n_below: 0,
                n_above: 0,
                n_unresolved: 1,
                n_not_measured: 0,
                n_coarse: 0,
            },
            c_max: SeedMean {
                mean: 12.0,
                se: 0.5,
                n: 2,
                n_below: 0,
                n_above: 0,
                n_unresolved: 0,
                n_not_measured: 0,
                n_coarse: 0,
            },
            c_barrier: None,
            warnings: vec![],
            axis_point: 0,
        };
        // c_loss = 2 + 100·d/w.
        let groups = [
            mk(2, 512, 2.0 + 100.0 * 2.0 / 512.0),
            mk(4, 256, 2.0 + 100.0 * 4.0 / 256.0),
            mk(8, 128, 2.0 + 100.0 * 8.0 / 128.0),
        ];
        let fits = boundary_fits(&groups);
        assert_eq!(fits.len(), 6);
        let f = fits
            .iter()
            .find(|f| f.boundary == Boundary::CLoss && f.axis == FitAxis::DepthOverWidth)
            .unwrap()
            .fit
            .clone()
            .unwrap();
        assert!((f.slope - 100.0).abs() < 1e-9 && (f.intercept - 2.0).abs() < 1e-12);
        assert!(!f.weighted);
        assert!(fits
            .iter()
            .filter(|f| f.boundary == Boundary::CSharp)
            .all(|f| f.fit.is_none()));
        let fm = fits
            .iter()
            .find(|f| f.boundary == Boundary::CMax && f.axis == FitAxis::InverseWidth)
            .unwrap()
            .fit
            .clone()
            .unwrap();
        assert!(fm.weighted && fm.slope.abs() < 1e-9);
    }
}
