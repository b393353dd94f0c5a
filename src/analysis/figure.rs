//! What every figure shares: the output formats and sizes, the options and errors, the
//! embedded font, the colours (viridis, one per boundary), axis labels and ranges, the
//! legend, the colour scale of c with its colour bar, the step axis (linear or
//! logarithmic) and the mesh of a log-y panel, and `render`, which draws a [`Figure`] into
//! a PNG or SVG file. The figures themselves live in `plot` (phase diagram, trajectories,
//! λ_τ/λ₀), `plot_regimes` and `plot_spectrum`.
//!
//! Text is drawn with an embedded DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`),
//! registered with plotters' `ab_glyph` backend under the family name `sans-serif`, so no
//! system font library is needed.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::critical::Boundary;
use super::groups::FitAxis;

/// The embedded sans-serif font (DejaVu Sans, Bitstream Vera license).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Output format of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotFormat {
    /// Raster image (RGB PNG).
    Png,
    /// Vector image.
    Svg,
}

impl PlotFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            PlotFormat::Png => "png",
            PlotFormat::Svg => "svg",
        }
    }
}

/// How to draw a figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlotOptions {
    /// File format.
    pub format: PlotFormat,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Abscissa of the phase diagram (d/w or 1/w).
    pub x_axis: FitAxis,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            format: PlotFormat::Png,
            size: (1024, 768),
            x_axis: FitAxis::DepthOverWidth,
        }
    }
}

/// Why a figure could not be written; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Drawing or encoding failed.
    #[error("drawing {path} failed: {message}")]
    Draw {
        /// The figure file.
        path: PathBuf,
        /// The plotting library's message.
        message: String,
    },
    /// The figure would be empty.
    #[error("nothing to plot in {path}: {what}")]
    NoData {
        /// The figure file.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// The embedded font was rejected.
    #[error("cannot register the embedded font for {path}")]
    Font {
        /// The figure file.
        path: PathBuf,
    },
}

pub(super) type DrawResult = Result<(), Box<dyn StdError>>;

/// Registers the embedded font once.
fn ensure_font() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    })
}

/// A figure that can draw itself on any plotters backend.
pub(super) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// The series legend every figure uses: white box, black border, 13-pt labels.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font(13))
        .draw()?;
    Ok(())
}

/// Smallest and largest side of a figure in pixels (a larger one would exhaust memory or
/// overflow the plotting library's coordinates).
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 100..=16384;

/// Draws `fig` into `dir/stem.{png,svg}`.
pub(super) fn render<F: Figure>(
    fig: &F,
    dir: &Path,
    stem: &str,
    opts: &PlotOptions,
) -> Result<PathBuf, PlotError> {
    let path = dir.join(format!("{stem}.{}", opts.format.extension()));
    let (w, h) = opts.size;
    if !SIZE_RANGE.contains(&w) || !SIZE_RANGE.contains(&h) {
        return Err(PlotError::Draw {
            path,
            message: format!(
                "size {w}x{h}: each side must be between {} and {} pixels",
                SIZE_RANGE.start(),
                SIZE_RANGE.end()
            ),
        });
    }
    if !ensure_font() {
        return Err(PlotError::Font { path });
    }
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let draw_err = |e: Box<dyn StdError>| PlotError::Draw {
        path: path.clone(),
        message: e.to_string(),
    };
    match opts.format {
        PlotFormat::Png => {
            let root = BitMapBackend::new(&path, opts.size).into_drawing_area();
            fig.draw(&root).map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.into()))?;
        }
        PlotFormat::Svg => {
            let root = SVGBackend::new(&path, opts.size).into_drawing_area();
            fig.draw(&root).map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.into()))?;
        }
    }
    Ok(path)
}

/// Tick label of a log₂ axis: the value 2^y.
pub(super) fn pow2_label(y: &f64) -> String {
    let c = 2f64.powf(*y);
    if (y - y.round()).abs() < 1e-9 && c >= 1.0 {
        format!("{}", c.round())
    } else {
        sig3(c)
    }
}

/// A number with three significant digits: plain for ordinary magnitudes, with an
/// exponent (`3.32e8`, `1e-5`) beyond them, so a label never outgrows its axis.
pub(super) fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let e = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&e) {
        let m = v / 10f64.powi(e);
        let m = format!("{m:.2}");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let digits = (2 - e).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// The embedded sans-serif font at `size` points, in black.
pub(super) fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
}

/// Viridis colour map (matplotlib's anchors), `t` in [0, 1]. plotters' own copy sits behind
/// its `colormaps` feature, which this crate does not enable.
pub(super) fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 8] = [
        (68.0, 1.0, 84.0),
        (70.0, 50.0, 127.0),
        (54.0, 92.0, 141.0),
        (39.0, 127.0, 143.0),
        (31.0, 162.0, 136.0),
        (74.0, 194.0, 110.0),
        (160.0, 219.0, 57.0),
        (254.0, 232.0, 37.0),
    ];
    let s = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 7.0;
    let j = (s.floor() as usize).min(6);
    let f = s - j as f64;
    let (a, b) = (ANCHORS[j], ANCHORS[j + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The colour each boundary has in every figure.
pub(super) fn boundary_color(b: Boundary) -> RGBColor {
    match b {
        Boundary::CLoss => RGBColor(214, 39, 40),
        Boundary::CSharp => RGBColor(31, 119, 180),
        Boundary::CMax => RGBColor(40, 40, 40),
        Boundary::CBarrier => RGBColor(148, 103, 189),
    }
}

/// The lazy edge as the legend writes it: "2", "3.8", "38".
pub(super) fn fmt_edge(c: f64) -> String {
    let r = (c * 100.0).round() / 100.0;
    format!("{r}")
}

/// The chart builder of one panel of a figure: the margin and the label areas every
/// panel uses.
pub(super) fn panel_builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64);
    builder
}

/// A log-scale range holding every point and 1, with a margin (0.5..2 when empty).
pub(super) fn log_range(pts: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = pts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() && hi.is_finite() {
        (lo.min(1.0) / 1.2, hi.max(1.0) * 1.2)
    } else {
        (0.5, 2.0)
    }
}

/// Points (x, y) of one drawn curve.
pub(super) type Curve = Vec<(f64, f64)>;

/// Runs of at least this many early windows draw their step axis logarithmically
/// ([`log_steps`]).
pub(super) const LOG_STEPS_WINDOWS: usize = 10;

/// Whether a figure of runs of `steps` steps draws the step on a logarithmic axis (t ≥ 1):
/// from [`LOG_STEPS_WINDOWS`] early windows on (100 steps at T = 10). Below that the early
/// window, where the catapults happen, takes at least a tenth of a linear axis, which then
/// reads best; above it the early window would be a sliver at the left edge.
pub(super) fn log_steps(steps: usize, early_window: usize) -> bool {
    steps >= LOG_STEPS_WINDOWS * early_window.max(1)
}

/// A tick label of a linear step axis: integers as integers ("0", "20", "300"), other
/// values with three significant digits.
pub(super) fn step_tick(v: &f64) -> String {
    if *v >= 0.0 && (v - v.round()).abs() < 1e-6 * v.max(1.0) {
        format!("{}", v.round())
    } else {
        sig3(*v)
    }
}

/// A tick label of a logarithmic x axis: only at 1, 2 and 5 times a power of ten (the
/// other grid lines stay unlabelled, so "7 8 9 10" never crowd), as [`step_tick`] writes it.
pub(super) fn log_tick(v: &f64) -> String {
    let m = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|k| (m - k).abs() < 1e-6) {
        step_tick(v)
    } else {
        String::new()
    }
}

/// The colour of each c of a seed line: viridis over log₂ c from the smallest to the
/// largest c drawn; the trajectories and regimes figures of a line share it.
pub(super) struct CScale {
    /// log₂ of the c values drawn (ascending), ticked on the bar.
    ticks: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl CScale {
    /// The scale of the c values `cs` (positive; any order).
    pub(super) fn new(cs: impl Iterator<Item = f64>) -> Self {
        let mut ticks: Vec<f64> = cs.map(f64::log2).filter(|l| l.is_finite()).collect();
        ticks.sort_by(f64::total_cmp);
        let lo = ticks.first().copied().unwrap_or(0.0);
        let hi = ticks.last().copied().unwrap_or(1.0);
        let hi = if hi > lo { hi } else { lo + 1.0 };
        CScale { ticks, lo, hi }
    }

    /// The colour of `c`.
    pub(super) fn color(&self, c: f64) -> RGBColor {
        viridis((c.log2() - self.lo) / (self.hi - self.lo))
    }

    /// The colour bar on `bar`, labelled in c, with a tick at each c drawn.
    pub(super) fn draw_bar<DB: DrawingBackend>(&self, bar: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = (self.lo, self.hi);
        // Labels on the bar's right, with room for "45.3" after the tick.
        let mut cb = ChartBuilder::on(bar)
            .margin_top(40)
            .margin_bottom(54)
            .margin_left(8)
            .margin_right(4)
            .right_y_label_area_size(62)
            .build_cartesian_2d(0f64..1.0, lo..hi)?;
        cb.configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .disable_x_axis()
            .y_desc("c")
            .y_labels(8)
            .set_tick_mark_size(LabelAreaPosition::Right, 7)
            .y_label_formatter(&pow2_label)
            .label_style(font(13))
            .axis_desc_style(font(15))
            .draw()?;
        let m = 100;
        cb.draw_series((0..m).map(|i| {
            let a = lo + (hi - lo) * i as f64 / m as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / m as f64;
            let mid = 2f64.powf(0.5 * (a + b));
            Rectangle::new([(0.0, a), (1.0, b)], self.color(mid).filled())
        }))?;
        cb.draw_series(
            self.ticks
                .iter()
                .map(|&l| PathElement::new([(0.0, l), (0.3, l)], BLACK.stroke_width(1))),
        )?;
        Ok(())
    }
}

/// A chart with a logarithmic y axis and an x axis of either kind.
pub(super) type LogYChart<'a, DB, X> = ChartContext<'a, DB, Cartesian2d<X, LogCoord<f64>>>;

/// The mesh of a panel with a log y axis (no light grid lines), its x axis labelled by
/// [`log_tick`] when `x_log`, else at most 11 labels at whole steps ([`step_tick`]), and the
/// dashed reference line y = 1 across `x_range`.
pub(super) fn log_y_mesh<'a, DB, X>(
    chart: &mut LogYChart<'a, DB, X>,
    (x_desc, y_desc): (&str, &str),
    x_range: (f64, f64),
    x_log: bool,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(font(13))
        .axis_desc_style(font(15))
        .y_label_formatter(&|v| sig3(*v))
        .x_label_formatter(if x_log { &log_tick } else { &step_tick })
        .x_labels(
            if x_log {
                10
            } else {
                (x_range.1 - x_range.0).round() as usize + 1
            }
            .min(11),
        )
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(DashedLineSeries::new(
        [(x_range.0, 1.0), (x_range.1, 1.0)],
        6,
        4,
        BLACK.mix(0.6).stroke_width(1),
    ))?;
    Ok(())
}

/// Height in pixels of one row of a legend strip ([`legend_strip`]).
pub(super) const LEGEND_ROW: u32 = 24;

/// Space in pixels left of a legend strip, and before each label (the key's room).
const LEGEND_INDENT: u32 = 64;
const LEGEND_KEY: u32 = 24;

/// How many equal columns of `col_w` pixels fit a strip `width` wide (1 to `n`), and the
/// rows `n` entries then take.
pub(super) fn legend_grid(width: u32, col_w: u32, n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    let cols = (width.saturating_sub(LEGEND_INDENT) / col_w.max(1)).clamp(1, n);
    (cols, n.div_ceil(cols))
}

/// Splits a legend strip off the bottom of `area` and writes `labels` into it, in as many
/// equal columns as the widest label allows (measured in the embedded font), row by row;
/// returns the rest of `area` and the pixel centre of each label's key, for the caller to
/// draw on the strip (also returned). The strip lies under the panels, so a legend never
/// hides a curve, and it takes more rows rather than overlap on a narrow figure.
pub(super) fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[String],
) -> Result<LegendStrip<DB>, Box<dyn StdError>>
where
    DB::ErrorType: 'static,
{
    let style = font(13);
    let mut widest = 0;
    for l in labels {
        widest = widest.max(area.estimate_text_size(l, &style)?.0);
    }
    let (w, h) = area.dim_in_pixel();
    let (cols, rows) = legend_grid(w, widest + LEGEND_KEY + 16, labels.len());
    let (rest, strip) = area.split_vertically(h.saturating_sub(rows * LEGEND_ROW + 8));
    let col_w = w.saturating_sub(LEGEND_INDENT) / cols;
    let anchor = plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    );
    let mut keys = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        let (row, col) = (i as u32 / cols, i as u32 % cols);
        let x = (LEGEND_INDENT + col * col_w) as i32;
        let y = (row * LEGEND_ROW + LEGEND_ROW / 2) as i32;
        strip.draw_text(l, &style.pos(anchor), (x + 20, y))?;
        keys.push((x, y));
    }
    Ok((rest, strip, keys))
}

/// What [`legend_strip`] returns: the area left for the panels, the strip, and the pixel
/// centre of each label's key on the strip.
pub(super) type LegendStrip<DB> = (
    DrawingArea<DB, Shift>,
    DrawingArea<DB, Shift>,
    Vec<(i32, i32)>,
);

/// The key of a dashed reference line in a legend slot (centred at `at`).
pub(super) fn dashed_key<DB: DrawingBackend>(
    strip: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    style: ShapeStyle,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for dx in [-11, -2, 7] {
        strip.draw(&PathElement::new(
            [(at.0 + dx, at.1), (at.0 + dx + 5, at.1)],
            style,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legend_strip_takes_more_rows_rather_than_overlap() {
        // Columns of 300 px after a 64 px indent: 3 at 1200 px, 1 at 600 px, never 0.
        assert_eq!(legend_grid(1200, 300, 5), (3, 2));
        assert_eq!(legend_grid(600, 300, 5), (1, 5));
        assert_eq!(legend_grid(100, 300, 5), (1, 5));
        assert_eq!(legend_grid(10_000, 300, 5), (5, 1));
        assert_eq!(legend_grid(1200, 300, 1), (1, 1));
        assert_eq!(legend_grid(1200, 0, 0), (1, 1));
    }

    #[test]
    fn the_c_scale_spans_the_drawn_c() {
        let s = CScale::new([16.0, 0.5, 2.0].into_iter());
        assert_eq!(s.color(0.5), viridis(0.0));
        assert_eq!(s.color(16.0), viridis(1.0));
        assert_eq!(s.color(2.0), viridis(0.4));
        // One c: the whole bar is one octave from it.
        let one = CScale::new(std::iter::once(4.0));
        assert_eq!(one.color(4.0), viridis(0.0));
    }
}
