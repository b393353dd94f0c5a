//! The file-level commands behind `sharpsweep analyze`, `plot` and `inspect`: read a
//! results file, run the analysis, write its tables into the file's `analysis` group
//! (never touching the raw variables), draw the figures, summarize the file.

use crate::analysis::plot::{plot_all, plot_phase_diagrams};
use crate::analysis::{analyze, Analysis, AnalysisParams, Resolution};
use crate::analysis::{PlotError, PlotOptions};
use crate::config::{Config, SearchKind};
use crate::record::{Column, Results, RunStatus};
use crate::store::{
    file_config, journal_path, read_file_meta, read_results, side_files, write_group_tables,
    StoreError, StoredMeta,
};
use std::path::{Path, PathBuf};

/// Errors of the file-level commands.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Reading or writing the results file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Drawing a figure.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// An output path that would overwrite the results file or one of its side files.
    #[error("{path}: {reason}")]
    Refused {
        /// The output path as given.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// A run of the results file that cannot be drawn.
    #[error("{path}: run row {row}: {reason}")]
    BadRun {
        /// The results file.
        path: PathBuf,
        /// The row of the run table.
        row: usize,
        /// What is wrong with its coordinates.
        reason: String,
    },
    /// Writing an export file.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The runs and provenance of the results file at `path` (its journal's runs included),
/// with its `config` and `axes` attributes checked against it ([`file_config`]): an edited
/// file is refused, not analyzed with the wrong settings.
fn read_checked(path: &Path) -> Result<(Results, StoredMeta), CommandError> {
    let (results, stored) = read_results(path)?;
    file_config(path, &stored, &results)?;
    Ok((results, stored))
}

/// Analyzes the file at `path`; with `write_back`, stores every table as a group
/// `analysis/<table>` in the file (replacing an earlier analysis).
pub fn analyze_file(
    path: &Path,
    params: &AnalysisParams,
    write_back: bool,
) -> Result<Analysis, CommandError> {
    let (results, _) = read_checked(path)?;
    let analysis = analyze(&results, params);
    if write_back {
        let attrs: Vec<(&str, String)> = analysis.attributes();
        let tables = analysis.columns();
        let cols: Vec<(&str, Vec<(&str, Column)>)> = tables
            .iter()
            .map(|table| {
                let cols = table.columns.iter();
                let cols = cols.map(|c| (c.name.as_str(), c.data.clone())).collect();
                (table.name.as_str(), cols)
            })
            .filter(|(_, cols): &(_, Vec<(&str, Column)>)| {
                cols.first().is_some_and(|c| !c.1.is_empty())
            })
            .collect();
        let refs: Vec<(&str, &[(&str, Column)])> =
            cols.iter().map(|(name, c)| (*name, &c[..])).collect();
        write_group_tables(path, "analysis", &refs, &attrs)?;
    }
    Ok(analysis)
}

/// The config of an adaptive search stored in a file (None for a fixed grid's file).
fn stored_search(meta: &StoredMeta) -> Option<Config> {
    Config::from_toml_str(&meta.meta.config_text)
        .ok()
        .filter(|c| c.grid.search == SearchKind::Adaptive)
}

/// The lazy edge of the update rule (2 for SGD, 2(1 + β) for heavy ball, 38 for Adam at
/// β₁ = 0.9: [`crate::optim::Rule::edge`]) of the file at `path`'s config, and per axis
/// point when `grid.axes` changes the rule; (2, none) for a file without a readable config.
pub fn default_lazy_c(path: &Path) -> (f64, Vec<f64>) {
    let Some(cfg) = read_file_meta(path)
        .ok()
        .and_then(|m| Config::from_toml_str(&m.meta.config_text).ok())
    else {
        return (2.0, Vec::new());
    };
    let edge = |c: &Config| c.train.update_rule().edge();
    let base = edge(&cfg);
    let points: Vec<f64> = cfg
        .axis_points()
        .map(|ps| ps.iter().map(edge).collect())
        .unwrap_or_default();
    if points.iter().all(|e| e.to_bits() == base.to_bits()) {
        (base, Vec::new())
    } else {
        (base, points)
    }
}

/// The ε of the sharpness criterion that the adaptive search of the file at `path`
/// resolved (its `grid.eps_sharp`), so that `analyze` judges c_sharp as the search did;
/// 0 for a fixed grid's file, or one that cannot be read (the command then reports why).
pub fn default_eps_sharp(path: &Path) -> f64 {
    read_file_meta(path)
        .ok()
        .as_ref()
        .and_then(stored_search)
        .map_or(0.0, |c| c.grid.eps_sharp)
}

/// `inspect`'s lines about an adaptive search: its lattice, rounds, and how wide each
/// critical value's bracket is on the widest line.
fn search_summary(cfg: &Config, results: &Results) -> String {
    let g = &cfg.grid;
    let r = g.log2_c.as_ref().expect("an adaptive search has a range");
    let rounds = results
        .records
        .iter()
        .flatten()
        .map(|r| r.search_round)
        .max()
        .unwrap_or(-1);
    let mut out = format!(
        "  search: adaptive over log2 c in [{}, {}], coarse step {}, lattice spacing {}, \
         resolution {}, eps_sharp {}, {} probe(s); rounds 0..={rounds} so far\n",
        r.start,
        r.stop,
        r.step,
        cfg.lattice_spacing(),
        g.resolution,
        g.eps_sharp,
        g.probes
    );
    let params = AnalysisParams {
        eps_sharp: g.eps_sharp,
        ..Default::default()
    };
    let a = analyze(results, &params);
    for b in a.boundaries() {
        let vals: Vec<_> = a.lines.iter().filter_map(|l| l.get(b)).collect();
        let resolved = vals
            .iter()
            .filter(|v| v.resolution == Resolution::Resolved)
            .count();
        let widest = vals
            .iter()
            .map(|v| v.log2_width())
            .filter(|w| w.is_finite())
            .fold(f64::NAN, f64::max);
        let flag = if widest > g.resolution * (1.0 + 1e-9) {
            " (open: the search goes on)"
        } else {
            ""
        };
        out += &format!(
            "    {}: {resolved} of {} line(s) resolved, widest bracket {widest:.4} in log2 c{flag}\n",
            b.name(),
            vals.len()
        );
    }
    out
}

/// Runs finished (not pending) at each axis point.
fn count_at(results: &Results) -> Vec<(usize, usize)> {
    let mut at = vec![(0, 0); results.axes.n_points()];
    for (i, k) in results.keys.iter().enumerate() {
        if let Some(c) = at.get_mut(k.axis_point as usize) {
            c.1 += 1;
            c.0 += usize::from(results.status(i) != RunStatus::Pending);
        }
    }
    at
}

/// `inspect`'s lines about `grid.axes`: each axis (its key, variable and values) and the
/// runs finished at each point; nothing without axes.
fn axes_summary(results: &Results, finished: &[(usize, usize)]) -> String {
    let axes = &results.axes;
    if axes.is_empty() {
        return String::new();
    }
    let mut out = format!("  grid.axes: {} points\n", axes.n_points());
    for a in &axes.axes {
        let values: Vec<String> = (0..a.values.len()).map(|i| a.values.text(i)).collect();
        out += &format!(
            "    {} = [{}] (variable `{}`)\n",
            a.key,
            values.join(", "),
            a.name
        );
    }
    for (p, (done, all)) in finished.iter().enumerate() {
        out += &format!(
            "    point {p} ({}): {done} of {all} runs finished\n",
            axes.label(p as u32)
        );
    }
    out
}

/// `path` made absolute with its symbolic links resolved; for a path that does not exist
/// (yet), its directory's canonical form joined with its name.
fn normalized(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = parent.map_or_else(|| Path::new(".").to_path_buf(), Path::to_path_buf);
    match (std::fs::canonicalize(&dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Whether `a` and `b` are the same file system object (device and inode).
fn same_object(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuses an output path (`what`: the flag, e.g. `--json`) that is the results file
/// `input` itself or one of its side files ([`side_files`]: the journal, the set-aside
/// journal, the snapshot in progress, the checkpoint directory or a file in it): writing
/// there would destroy finished runs.
pub fn check_output_path(input: &Path, target: &Path, what: &str) -> Result<(), CommandError> {
    let refuse = |reason: String| CommandError::Refused {
        path: target.to_path_buf(),
        reason: format!("{what}: {reason}"),
    };
    let t = normalized(target);
    let files = std::iter::once((input.to_path_buf(), "the results file being read"));
    for (p, name) in files.chain(side_files(input)) {
        // Equal, or inside (the checkpoint directory): compared by components.
        if same_object(target, &p) || t.starts_with(normalized(&p)) {
            return Err(refuse(format!(
                "is {name} ({}) or in it: refusing to overwrite it; choose another path",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Checks that every run of `results` (read from `path`) can be placed on the figures'
/// axes: c finite and > 0, depth and width >= 1. The error names the file and the row.
pub fn check_plottable(path: &Path, results: &Results) -> Result<(), CommandError> {
    for (row, k) in results.keys.iter().enumerate() {
        let reason = if !(k.c.is_finite() && k.c > 0.0) {
            format!("c = {} (must be finite and > 0)", k.c)
        } else if k.depth == 0 {
            "depth = 0 (must be >= 1)".to_string()
        } else if k.width == 0 {
            "width = 0 (must be >= 1)".to_string()
        } else {
            continue;
        };
        return Err(CommandError::BadRun {
            path: path.to_path_buf(),
            row,
            reason: format!("{reason}: cannot plot this file"),
        });
    }
    Ok(())
}

/// Writes `text` to `path`.
pub fn export(path: &Path, text: &str) -> Result<(), CommandError> {
    std::fs::write(path, text).map_err(|source| CommandError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Draws every figure of the file into `dir` (created if missing); returns their paths.
pub fn plot_file(
    path: &Path,
    dir: &Path,
    params: &AnalysisParams,
    opts: &PlotOptions,
) -> Result<Vec<PathBuf>, CommandError> {
    check_output_path(path, dir, "--out-dir")?;
    let (results, _) = read_checked(path)?;
    check_plottable(path, &results)?;
    let analysis = analyze(&results, params);
    std::fs::create_dir_all(dir).map_err(|source| CommandError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(plot_all(&results, &analysis, dir, opts)?)
}

/// A few lines on what the file holds: grid, progress, provenance, history.
pub fn inspect_file(path: &Path, with_config: bool) -> Result<String, CommandError> {
    let (results, stored) = read_checked(path)?;
    let n = results.keys.len();
    let count = |s: RunStatus| (0..n).filter(|&i| results.status(i) == s).count();
    let uniq = |f: &dyn Fn(usize) -> String| {
        let mut v: Vec<String> = (0..n).map(f).collect();
        v.dedup();
        let mut seen = Vec::new();
        for x in v {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        seen.join(", ")
    };
    let m = &stored.meta;
    let mut out = String::new();
    out += &format!("{}\n", path.display());
    out += &format!(
        "  runs: {n} ({} done, {} diverged, {} failed, {} pending); {} steps per run\n",
        count(RunStatus::Done),
        count(RunStatus::Diverged),
        count(RunStatus::Failed),
        count(RunStatus::Pending),
        results.steps
    );
    out += &format!(
        "  depths: {}\n",
        uniq(&|i| results.keys[i].depth.to_string())
    );
    out += &format!(
        "  widths: {}\n",
        uniq(&|i| results.keys[i].width.to_string())
    );
    out += &format!(
        "  seeds (init/sgd): {}\n",
        uniq(&|i| format!("{}/{}", results.keys[i].seed, results.keys[i].sgd_seed))
    );
    out += &axes_summary(&results, &count_at(&results));
    let mut cs: Vec<f64> = results.keys.iter().map(|k| k.c).collect();
    cs.sort_by(f64::total_cmp);
    cs.dedup();
    if let (Some(lo), Some(hi)) = (cs.first(), cs.last()) {
        out += &format!("  c: {} values from {lo:.4} to {hi:.4}\n", cs.len());
    }
    out += &format!(
        "  program: sharpsweep {} (git {}), {} rank(s), HDF5 {}\n",
        m.program_version, m.git_commit, m.ranks, stored.hdf5_version
    );
    out += &format!("  MPI: {}\n", m.mpi_version);
    out += &format!("  CPU: {}\n", m.cpu_features);
    if let Some(job) = &m.slurm_job_id {
        out += &format!("  Slurm job: {job}\n");
    }
    if let Some(cfg) = stored_search(&stored) {
        out += &search_summary(&cfg, &results);
    }
    if let Ok(cfg) = Config::from_toml_str(&m.config_text) {
        let estimator = crate::sweep::provenance::recorded_estimator(&m.conventions, &cfg);
        out += &format!("  sharpness estimator: {estimator}\n");
    }
    out += &format!("  config sha256: {}\n", m.config_sha256);
    if journal_path(path).exists() {
        out += &format!(
            "  open: a sweep is running, or was killed (`sweep --resume` finishes it); {} \
             finished run(s) are in its journal, not yet in the HDF5 file\n",
            stored.journal_runs
        );
    }
    out += "  history:\n";
    for h in &stored.history {
        out += &format!("    {h}\n");
    }
    if with_config {
        out += "  config:\n";
        for l in m.config_text.lines() {
            out += &format!("    {l}\n");
        }
    }
    Ok(out)
}

/// Options of `sharpsweep watch`.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Seconds between two looks at the file.
    pub every: f64,
    /// Where the phase diagram is redrawn (none: no figure).
    pub out_dir: Option<PathBuf>,
    /// Look once and return.
    pub once: bool,
    /// Analysis parameters.
    pub params: AnalysisParams,
    /// Figure options.
    pub plot: PlotOptions,
}

/// One look at a results file for `watch`: the progress line and the critical-value
/// table of every run finished so far (a sweep in progress included), and the phase
/// diagram redrawn when `out_dir` is given. Returns the text and whether the sweep is
/// still open (its journal exists: running, or killed and not yet resumed).
pub fn watch_once(path: &Path, opts: &WatchOptions) -> Result<(String, bool), CommandError> {
    let (results, stored) = read_checked(path)?;
    let analysis = analyze(&results, &opts.params);
    let n = results.keys.len();
    let count = |s: RunStatus| (0..n).filter(|&i| results.status(i) == s).count();
    let open = journal_path(path).exists();
    let mut text = format!(
        "{}: {} of {n} runs finished ({} diverged, {} failed){}; {}\n\n",
        path.display(),
        n - count(RunStatus::Pending),
        count(RunStatus::Diverged),
        count(RunStatus::Failed),
        if stored.journal_runs > 0 {
            format!(", {} of them still in the journal", stored.journal_runs)
        } else {
            String::new()
        },
        if open {
            "sweep open (running, or killed: resume it)"
        } else {
            "sweep closed"
        }
    );
    text += &analysis.render_table();
    if let Some(dir) = &opts.out_dir {
        check_output_path(path, dir, "--out-dir")?;
        check_plottable(path, &results)?;
        std::fs::create_dir_all(dir).map_err(|source| CommandError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        match plot_phase_diagrams(&results, &analysis, dir, &opts.plot) {
            Ok(paths) => {
                for p in paths {
                    text += &format!("\nphase diagram: {}\n", p.display());
                }
            }
            Err(PlotError::NoData { .. }) => text += "\nphase diagram: no finished runs yet\n",
            Err(e) => return Err(e.into()),
        }
    }
    Ok((text, open))
}

/// `sharpsweep watch`: redraws the table (and the phase diagram) every `every` seconds
/// while the sweep is open, then once more; `print` receives each look's text.
pub fn watch_file(
    path: &Path,
    opts: &WatchOptions,
    mut print: impl FnMut(&str),
) -> Result<(), CommandError> {
    loop {
        let (text, open) = watch_once(path, opts)?;
        print(&text);
        if opts.once || !open {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(opts.every.max(0.1)));
    }
}
