//! The commands of the `sharpsweep` binary, each one library function that `main.rs`
//! calls with parsed arguments: `sweep` lives in [`crate::sweep`]; `run` ([`run`]), the
//! file commands `analyze`, `plot`, `inspect`, `watch` ([`files`]) and the dry run are here.

pub mod files;
pub mod run;

pub use files::{
    analyze_file, check_output_path, check_plottable, default_eps_sharp, default_lazy_c, export,
    inspect_file, plot_file, watch_file, watch_once, CommandError, WatchOptions,
};
pub use run::{run_single, RunPoint, SingleRunError};

use crate::config::{Config, ConfigError, SearchKind};
use crate::record::{InitKey, LineKey, TaskKey};
use crate::sweep::search::Search;
use crate::sweep::{grid, preflight};
use std::path::Path;

/// Sustained speed the estimates assume, per core.
const ASSUMED_GFLOPS: f64 = 100.0;

/// `sharpsweep sweep --dry-run`: the size of the grid (with `grid.axes`, multiplied by
/// its points), the peak memory of the runs of each network, the estimated time of the
/// largest run, the total core-hours, and whether the largest run fits in a rank's memory
/// here.
pub fn dry_run(config: &Path, overrides: &[String]) -> Result<String, ConfigError> {
    let (cfg, _) = Config::load(config, overrides)?;
    let points = cfg.axis_points()?;
    let keys = grid::expand(&cfg);
    let point = |p: u32| &points[p as usize];
    let mut out = match cfg.grid.search {
        SearchKind::Grid => format!(
            "{} runs; estimated {:.2} core-hours at {ASSUMED_GFLOPS} GFLOP/s per core\n",
            keys.len(),
            grid::core_hours(&cfg, &points, ASSUMED_GFLOPS)
        ),
        SearchKind::Adaptive => search_estimate(&cfg, &points, &keys),
    };
    if !cfg.grid.axes.is_empty() {
        out += &format!(
            "grid.axes: {} points ({}), each with every (depth, width, seed, c) of the grid\n",
            points.len(),
            cfg.grid
                .axes
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.len()))
                .collect::<Vec<_>>()
                .join(" x ")
        );
    }
    out += &memory_table(&points, &keys);
    if let Some(k) = keys.iter().max_by(|a, b| {
        grid::run_cost(point(a.axis_point), a).total_cmp(&grid::run_cost(point(b.axis_point), b))
    }) {
        out += &format!(
            "largest run: depth {}, width {}{}: about {:.1} s at {ASSUMED_GFLOPS} GFLOP/s\n",
            k.depth,
            k.width,
            if cfg.grid.axes.is_empty() {
                String::new()
            } else {
                format!(", {}", cfg.describe_axis_point(k.axis_point as usize))
            },
            grid::run_cost(point(k.axis_point), k) / (ASSUMED_GFLOPS * 1e9)
        );
    }
    if let Some(available) = preflight::memory_per_rank() {
        // As a sweep under a launcher with this many ranks per node would hold its data.
        let forced =
            crate::sweep::node::per_rank_forced().map_err(|message| ConfigError::Invalid {
                key: "environment".into(),
                message,
            })?;
        let shared = crate::sweep::node::shares(&cfg, available.2, forced);
        match preflight::check_memory(&points, &keys, available, shared) {
            Ok(()) => {
                out += &format!(
                    "memory: fits ({} per rank: {} available here, {} rank(s) on this node)\n",
                    preflight::gib(available.0),
                    preflight::gib(available.1),
                    available.2
                )
            }
            Err(e) => out += &format!("memory: DOES NOT FIT: {e}\n"),
        }
        if let Some(need) = preflight::describe_need(&points, &keys, available, shared) {
            out += &format!("memory: {need}\n");
        }
    }
    Ok(out)
}

/// The dry run's memory table: per (depth, width) network, the peak memory of its largest
/// run over the axis points.
fn memory_table(points: &[Config], keys: &[TaskKey]) -> String {
    let mut out =
        "peak memory per run (every c and seed of a network needs the same):\n".to_string();
    out += "  depth  width      params    weights  activations    lanczos       data      total\n";
    let mut shapes: Vec<(u32, u32)> = keys.iter().map(|k| (k.depth, k.width)).collect();
    shapes.sort_unstable();
    shapes.dedup();
    for (depth, width) in shapes {
        let m = points
            .iter()
            .map(|p| preflight::run_memory(p, depth, width))
            .max_by(|a, b| a.total().total_cmp(&b.total()))
            .expect("at least one point");
        out += &format!(
            "  {depth:>5} {width:>6} {:>11} {:>10} {:>12} {:>10} {:>10} {:>10}\n",
            m.n_params,
            preflight::gib(m.weights),
            preflight::gib(m.activations),
            preflight::gib(m.lanczos),
            preflight::gib(m.data),
            preflight::gib(m.total())
        );
    }
    out
}

/// The dry run's first lines for an adaptive search: a bound on its runs and core-hours
/// (every line scans its whole range and refines every criterion from a coarse step),
/// next to the fixed grid at its lattice spacing (`keys`).
fn search_estimate(cfg: &Config, points: &[Config], keys: &[TaskKey]) -> String {
    let per_line = Search::new(cfg).runs_bound_per_line();
    let point = |p: u32| &points[p as usize];
    let mut lines: Vec<(LineKey, TaskKey)> = keys.iter().map(|k| (LineKey::from(k), *k)).collect();
    lines.dedup_by_key(|l| l.0);
    let lambda0: f64 = grid::init_keys(keys)
        .iter()
        .map(|i: &InitKey| grid::lambda0_cost(point(i.axis_point), i))
        .sum();
    let runs: f64 = lines
        .iter()
        .map(|(_, k)| per_line as f64 * grid::run_cost(point(k.axis_point), k))
        .sum();
    let hours = |flops: f64| flops / (ASSUMED_GFLOPS * 1e9) / 3600.0;
    format!(
        "adaptive search: at most {} runs ({} line(s) x {per_line}); estimated at most {:.2} \
         core-hours at {ASSUMED_GFLOPS} GFLOP/s per core\n\
         full grid at its lattice spacing ({}): {} runs, {:.2} core-hours\n",
        per_line * lines.len(),
        lines.len(),
        hours(runs + lambda0),
        cfg.lattice_spacing(),
        keys.len(),
        grid::core_hours(cfg, points, ASSUMED_GFLOPS)
    )
}
