//! What every figure shares: the output formats and sizes, the options and errors, the
//! embedded font, the colours (viridis, one per boundary), axis labels and ranges, the
//! legend, and `render`, which draws a [`Figure`] into a PNG or SVG file. The figures
//! themselves live in `plot` (phase diagram, trajectories, λ_τ/λ₀) and `plot_spectrum`.
//!
//! Text is drawn with an embedded DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`),
//! registered with plotters' `ab_glyph` backend under the family name `sans-serif`, so no
//! system font library is needed.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::critical::{Boundary, FitAxis};

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
