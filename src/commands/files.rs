//! The file-level commands behind `sharpsweep analyze`, `plot` and `inspect`: read a
//! results file, run the analysis, write its tables into the file's `analysis` group
//! (never touching the raw variables), draw the figures, summarize the file.

use crate::analysis::plot::{plot_all, PlotError, PlotOptions};
use crate::analysis::{analyze, Analysis, AnalysisParams};
use crate::record::{Column, RunStatus};
use crate::store::{read_results, write_group_table, StoreError};
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
    /// Writing an export file.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Analyzes the file at `path`; with `write_back`, stores every table as a group
/// `analysis/<table>` in the file (replacing an earlier analysis).
pub fn analyze_file(
    path: &Path,
    params: &AnalysisParams,
    write_back: bool,
) -> Result<Analysis, CommandError> {
    let (results, _) = read_results(path)?;
    let analysis = analyze(&results, params);
    if write_back {
        let attrs: Vec<(&str, String)> = analysis.attributes();
        for table in analysis.columns() {
            let cols: Vec<(&str, Column)> = table
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.data.clone()))
                .collect();
            if cols.is_empty() || cols[0].1.is_empty() {
                continue;
            }
            write_group_table(path, &format!("analysis/{}", table.name), &cols, &attrs)?;
        }
    }
    Ok(analysis)
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
    let (results, _) = read_results(path)?;
    let analysis = analyze(&results, params);
    std::fs::create_dir_all(dir).map_err(|source| CommandError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(plot_all(&results, &analysis, dir, opts)?)
}

/// A few lines on what the file holds: grid, progress, provenance, history.
pub fn inspect_file(path: &Path, with_config: bool) -> Result<String, CommandError> {
    let (results, stored) = read_results(path)?;
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
    out += &format!("  config sha256: {}\n", m.config_sha256);
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
