//! Pre-flight: what one run needs in memory, what a rank has, and the refusal to start a
//! sweep whose largest run cannot fit — before any data is loaded or any buffer allocated.

use crate::config::{Config, SearchKind, SharpnessMethod};
use crate::model::Precision;
use crate::record::{Dim, Kind, LineKey, Role, TaskKey, SCHEMA};
use crate::train::{lanczos_basis_vectors, network_spec};

use super::grid::data_shape;

/// Peak memory of one run of a (depth, width) network, by part, in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Parameters P of the network.
    pub n_params: usize,
    /// θ, θ₀, the gradient and the optimizer's state in the network's precision, and the
    /// f64 vectors of the sharpness measurement (start vector, product, eigenvector; Adam's
    /// preconditioner).
    pub weights: f64,
    /// Activations, deltas and their R-versions for the SGD batch and the measurement set.
    pub activations: f64,
    /// The eigen-solver's basis (f64 vectors of length P; V and AV for the block method).
    pub lanczos: f64,
    /// The training and measurement inputs and targets (and the dataset while it loads).
    pub data: f64,
    /// The run's record ([`record_bytes`]: its per-step arrays, `train.steps` + 1 entries
    /// each) and the copy sent to rank 0.
    pub records: f64,
}

impl MemoryEstimate {
    /// Everything, in bytes.
    pub fn total(&self) -> f64 {
        self.weights + self.activations + self.lanczos + self.data + self.records
    }
}

/// Bytes of one network value in the configured precision.
fn value_bytes(cfg: &Config) -> f64 {
    match cfg.train.precision {
        Precision::F32 => 4.0,
        Precision::F64 => 8.0,
    }
}

/// The peak memory of a run of the (depth, width) network under `cfg`.
pub fn run_memory(cfg: &Config, depth: u32, width: u32) -> MemoryEstimate {
    let (d_in, k) = data_shape(cfg);
    let t = value_bytes(cfg);
    let spec = network_spec(cfg, d_in, k, depth, width);
    let p = spec.n_params();
    let pf = p as f64;
    let sz = cfg.sizes();
    let n = sz.n_train as f64;
    let (m, b) = (sz.measure_n as f64, (sz.batch_size as f64).min(n));
    // Per example: activations, deltas, their R-versions, and tanh's extra buffers, each
    // (d − 1)·w hidden values plus k outputs.
    let per_example = 6.0 * ((f64::from(depth) - 1.0).max(0.0) * f64::from(width) + k as f64);
    let lanczos = match cfg.sharpness.method {
        SharpnessMethod::Lanczos => {
            let basis = lanczos_basis_vectors(p, cfg.sharpness.max_iter) as f64;
            let sk = cfg.sharpness.k as f64;
            // The block method (k > 1, Gauss-Newton) keeps V and AV, at least 3k columns
            // each, plus the k warm-start vectors of each operator.
            let vectors = if cfg.sharpness.k > 1 || cfg.sharpness.operator.gauss_newton() {
                2.0 * basis.max(3.0 * sk) + 2.0 * sk
            } else {
                basis
            };
            vectors * 8.0 * pf
        }
        SharpnessMethod::Power => 0.0,
    };
    // The optimizer's state in the network's precision (heavy ball's v; Adam's m, v and
    // measurement gradient), and Adam's f64 preconditioner.
    let optimizer = cfg.train.update_rule().state_bytes(pf, t);
    MemoryEstimate {
        n_params: p,
        weights: 3.0 * pf * t + 4.0 * pf * 8.0 + optimizer,
        activations: (b + m) * per_example * t,
        lanczos,
        data: (n * (d_in + k) as f64) * (4.0 + t) + m * (d_in + k) as f64 * t,
        records: 2.0 * record_bytes(cfg),
    }
}

/// Bytes of one storage type in memory (a string: its header and a short message).
fn kind_bytes(kind: Kind) -> f64 {
    match kind {
        Kind::F64 | Kind::I64 => 8.0,
        Kind::I32 => 4.0,
        Kind::I8 => 1.0,
        Kind::Str => 64.0,
    }
}

/// Bytes one row of `var` takes under `cfg` (f64 arithmetic: no overflow whatever the
/// step count): `train.steps` + 1 entries per step, `sharpness.k` per eigenvalue,
/// `grid.interp_points` per interpolation point.
fn var_row_bytes(cfg: &Config, var: &crate::record::Var) -> f64 {
    let len: f64 = var
        .dims
        .iter()
        .skip(1)
        .map(|d| match d {
            Dim::Step => cfg.train.steps as f64 + 1.0,
            Dim::Interp => cfg.grid.interp_points as f64,
            Dim::Eig => cfg.sharpness.k as f64,
            Dim::Run => 1.0,
        })
        .product();
    len * kind_bytes(var.kind)
}

/// Bytes of one run's record (every variable a run produces, from the [`SCHEMA`]): the
/// per-step arrays dominate, (`train.steps` + 1) × (the per-step variables, and
/// `sharpness.k` entries for each spectrum variable).
pub fn record_bytes(cfg: &Config) -> f64 {
    SCHEMA
        .iter()
        .filter(|v| matches!(v.role, Role::Outcome { .. }) && v.present(cfg.grid.interp_points))
        .map(|v| var_row_bytes(cfg, v))
        .sum()
}

/// What rank 0 holds besides its own run: the records of every run of the file (it is the
/// only writer and keeps them in memory) and one variable's column over all runs, which a
/// snapshot builds to write it. `keys` as for [`largest_run`]; for an adaptive search the
/// runs it may make (at most [`super::search::Search::runs_bound_per_line`] per line)
/// rather than its whole lattice. Returns (bytes, runs counted).
pub fn results_memory(points: &[Config], keys: &[TaskKey]) -> (f64, usize) {
    let Some(first) = points.first() else {
        return (0.0, 0);
    };
    let per_run = |k: &TaskKey| record_bytes(&points[k.axis_point as usize]);
    let (records, runs) = if first.grid.search == SearchKind::Adaptive {
        let mut lines: Vec<LineKey> = keys.iter().map(LineKey::from).collect();
        lines.sort_unstable();
        lines.dedup();
        let bound = super::search::Search::new(first).runs_bound_per_line();
        let runs = keys.len().min(lines.len().saturating_mul(bound));
        let largest = keys.iter().map(per_run).fold(0.0, f64::max);
        (largest * runs as f64, runs)
    } else {
        (keys.iter().map(per_run).sum(), keys.len())
    };
    let column = points
        .iter()
        .flat_map(|p| {
            SCHEMA
                .iter()
                .filter(|v| v.present(p.grid.interp_points))
                .map(move |v| var_row_bytes(p, v))
        })
        .fold(0.0, f64::max)
        * runs as f64;
    (records + column, runs)
}

/// The run of `keys` with the largest peak memory, and its estimate; `points` are the
/// configs of the axis points ([`Config::axis_points`]; the config alone without axes).
pub fn largest_run(points: &[Config], keys: &[TaskKey]) -> Option<(TaskKey, MemoryEstimate)> {
    keys.iter()
        .map(|k| {
            let cfg = &points[k.axis_point as usize];
            (*k, run_memory(cfg, k.depth, k.width))
        })
        .max_by(|a, b| a.1.total().total_cmp(&b.1.total()))
}

/// Memory one rank may use: the memory available on this node (`MemAvailable`, or the
/// cgroup's limit when lower) shared by the ranks on the node. Returns (bytes per rank,
/// bytes on the node, ranks on the node); `None` where it cannot be read.
pub fn memory_per_rank() -> Option<(f64, f64, usize)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let mut node = available_kb * 1024.0;
    for limit in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Some(v) = std::fs::read_to_string(limit)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            node = node.min(v);
        }
    }
    let ranks = [
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "SLURM_NTASKS_PER_NODE",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
    .unwrap_or(1)
    .max(1);
    Some((node / ranks as f64, node, ranks))
}

/// Bytes as GiB text.
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / f64::from(1u32 << 30))
}

/// A rank's share of a run's memory on a node of `ranks` ranks: everything but the data,
/// plus the data, or its `1/ranks` part when the node's ranks share one copy
/// (`shared_data`, see `sweep::node`).
pub fn rank_share(mem: &MemoryEstimate, ranks: usize, shared_data: bool) -> f64 {
    let data = if shared_data {
        mem.data / ranks.max(1) as f64
    } else {
        mem.data
    };
    mem.total() - mem.data + data
}

/// How the data is counted, in words: once per node, or once per rank.
fn data_words(mem: &MemoryEstimate, ranks: usize, shared_data: bool) -> String {
    if shared_data {
        format!(
            "beside it the dataset, {} once per node (its {ranks} ranks share one read-only copy)",
            gib(mem.data)
        )
    } else {
        format!("the dataset ({}) counted in every rank", gib(mem.data))
    }
}

/// What the largest run of `keys` needs on this node (`per_rank`, `node`, `ranks` as from
/// [`memory_per_rank`]; `shared_data`: one dataset copy per node): one line, e.g. "largest
/// run 0.01 GiB per rank without its data, beside it the dataset, 0.35 GiB once per node
/// (...): 0.40 GiB for the node's 4 ranks of 23.1 GiB available".
pub fn describe_need(
    points: &[Config],
    keys: &[TaskKey],
    (_, node, ranks): (f64, f64, usize),
    shared_data: bool,
) -> Option<String> {
    let (_, mem) = largest_run(points, keys)?;
    let share = rank_share(&mem, ranks, shared_data);
    Some(format!(
        "largest run {} per rank without its data, {}: {} for the node's {ranks} rank(s) of {} available",
        gib(mem.total() - mem.data),
        data_words(&mem, ranks, shared_data),
        gib(share * ranks as f64),
        gib(node)
    ))
}

/// Refuses a grid whose largest run needs more memory than a rank's share of the node
/// (`per_rank`, `node`, `ranks` as from [`memory_per_rank`]; with `shared_data` the node's
/// ranks hold one copy of the dataset between them: [`rank_share`]), or whose results do
/// not fit beside a run on rank 0, which keeps every run's record ([`results_memory`]);
/// `points` as for [`largest_run`]. The message names the config keys that size each part
/// (their values at the run's axis point), and the bytes needed and available.
pub fn check_memory(
    points: &[Config],
    keys: &[TaskKey],
    (per_rank, node, ranks): (f64, f64, usize),
    shared_data: bool,
) -> Result<(), String> {
    let Some((key, mem)) = largest_run(points, keys) else {
        return Ok(());
    };
    let cfg = &points[key.axis_point as usize];
    let available = format!(
        "a rank has about {} ({} bytes: {} available on this node, shared by {ranks} rank(s))",
        gib(per_rank),
        per_rank as u64,
        gib(node),
    );
    let share = rank_share(&mem, ranks, shared_data);
    if share > per_rank {
        return Err(format!(
            "a run of model.depth = {}, model.width = {} ({} parameters) needs about {} \
             ({} bytes) per rank: weights and gradients {}, activations {} (train.batch_size = {}, \
             sharpness.measure_n = {}), Lanczos basis {} (sharpness.max_iter = {}), its per-step \
             records {} (train.steps = {}, sharpness.k = {}); {} (data.n_train = {}); \
             {available}. Lower model.width or model.depth, sharpness.measure_n, \
             sharpness.max_iter, data.n_train or train.steps, use train.precision = \"f32\", \
             or run fewer ranks per node",
            key.depth,
            key.width,
            mem.n_params,
            gib(share),
            share as u64,
            gib(mem.weights),
            gib(mem.activations),
            cfg.train.batch_size,
            cfg.sharpness.measure_n,
            gib(mem.lanczos),
            cfg.sharpness.max_iter,
            gib(mem.records),
            cfg.train.steps,
            cfg.sharpness.k,
            data_words(&mem, ranks, shared_data),
            cfg.data.n_train,
        ));
    }
    let (results, runs) = results_memory(points, keys);
    let rank0 = share + results;
    if rank0 > per_rank {
        return Err(format!(
            "rank 0 keeps the results of all {runs} runs in memory: about {} ({} bytes) \
             for train.steps = {} ({} entries per step variable per run), sharpness.k = {} \
             and grid.interp_points = {}, beside its own largest run ({}), {} ({} bytes) in \
             all; {available}. Lower train.steps (or sharpness.k, grid.interp_points), or \
             split the grid into several sweeps",
            gib(results),
            results as u64,
            cfg.train.steps,
            cfg.train.steps as f64 + 1.0,
            cfg.sharpness.k,
            cfg.grid.interp_points,
            gib(share),
            gib(rank0),
            rank0 as u64,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::from_toml_str(text).unwrap()
    }

    #[test]
    fn estimate_grows_with_width_and_names_keys_when_refused() {
        let c = cfg("[model]\ndepth = [3]\nwidth = [64, 100000000]\n[grid]\nc = [1.0]\n");
        let small = run_memory(&c, 3, 64);
        let huge = run_memory(&c, 3, 100_000_000);
        assert!(small.total() < 1e9, "{small:?}");
        // 784·w + w² + 10·w parameters at w = 1e8: ~1e16 of them, far beyond any node.
        assert!(huge.total() > 1e16, "{huge:?}");
        let keys = crate::sweep::grid::expand(&c);
        let err = check_memory(std::slice::from_ref(&c), &keys, (8e9, 16e9, 2), false).unwrap_err();
        for key in [
            "model.width = 100000000",
            "sharpness.measure_n",
            "sharpness.max_iter",
            "data.n_train",
            "shared by 2 rank(s)",
        ] {
            assert!(err.contains(key), "{key} in: {err}");
        }
        let ok = cfg("[model]\ndepth = [3]\nwidth = [64]\n[grid]\nc = [1.0]\n");
        let keys = crate::sweep::grid::expand(&ok);
        assert!(check_memory(std::slice::from_ref(&ok), &keys, (8e9, 16e9, 2), false).is_ok());
    }

    #[test]
    fn a_shared_dataset_counts_once_per_node() {
        // Fashion-MNIST at n = 60000 with a tiny network: the data are most of a run.
        let c = cfg(
            "[data]\nn_train = 60000\n[model]\ndepth = [2]\nwidth = [16]\n\
             [sharpness]\nmeasure_n = 256\n[grid]\nc = [1.0]\n",
        );
        let m = run_memory(&c, 2, 16);
        assert!(m.data > 0.9 * m.total(), "{m:?}");
        assert_eq!(rank_share(&m, 4, false), m.total());
        assert!((rank_share(&m, 4, true) - (m.total() - 0.75 * m.data)).abs() < 1.0);
        assert_eq!(rank_share(&m, 1, true), m.total());
        // A node of 8 ranks with room for 3 copies of the data: a copy per rank does not
        // fit, one copy shared by the node does.
        let keys = crate::sweep::grid::expand(&c);
        let node = 3.0 * m.data;
        let avail = (node / 8.0, node, 8);
        let points = std::slice::from_ref(&c);
        let err = check_memory(points, &keys, avail, false).unwrap_err();
        assert!(err.contains("counted in every rank"), "{err}");
        assert!(err.contains("data.n_train = 60000"), "{err}");
        assert!(check_memory(points, &keys, avail, true).is_ok());
        let shared = describe_need(points, &keys, avail, true).unwrap();
        assert!(
            shared.contains("once per node (its 8 ranks share one read-only copy)"),
            "{shared}"
        );
        assert!(shared.contains("for the node's 8 rank(s)"), "{shared}");
        let own = describe_need(points, &keys, avail, false).unwrap();
        assert!(own.contains("counted in every rank"), "{own}");
    }

    #[test]
    fn block_spectra_need_twice_the_basis() {
        let one = Config::from_toml_str("[sharpness]\nmax_iter = 50\n").unwrap();
        let four = Config::from_toml_str("[sharpness]\nmax_iter = 50\nk = 4\n").unwrap();
        let (a, b) = (run_memory(&one, 4, 128), run_memory(&four, 4, 128));
        assert!(
            b.lanczos > 2.0 * a.lanczos,
            "{} vs {}",
            b.lanczos,
            a.lanczos
        );
    }

    #[test]
    fn lanczos_basis_is_capped_and_power_iteration_needs_none() {
        let c = cfg("[model]\nwidth = [4096]\ndepth = [8]\n[sharpness]\nmax_iter = 1000\n");
        let m = run_memory(&c, 8, 4096);
        assert!(m.lanczos <= (1u64 << 31) as f64 + 8.0 * 8.0 * m.n_params as f64);
        let p = cfg("[sharpness]\nmethod = \"power\"\n");
        assert_eq!(run_memory(&p, 4, 128).lanczos, 0.0);
        assert!(memory_per_rank().is_some_and(|(r, n, k)| r > 0.0 && n >= r && k >= 1));
    }

    /// The probe's tiny config with `steps`, `sharpness` keys and `grid` keys.
    fn tiny(steps: u64, sharpness: &str, grid: &str) -> Config {
        cfg(&format!(
            "[data]\nn_train = 256\n[model]\ndepth = [2]\nwidth = [8]\n[train]\n\
             batch_size = 64\nsteps = {steps}\n[sharpness]\nmeasure_n = 64\n{sharpness}\
             [grid]\n{grid}"
        ))
    }

    #[test]
    fn records_count_every_step_and_eigenvalue() {
        let one = tiny(1000, "", "c = [1.0]\n");
        let ten = tiny(10000, "", "c = [1.0]\n");
        let (a, b) = (record_bytes(&one), record_bytes(&ten));
        // loss, sharpness, residual, the spectra...: tens of bytes per step.
        assert!(a > 1001.0 * 40.0, "{a}");
        assert!((b / a - 10001.0 / 1001.0).abs() < 0.05, "{a} {b}");
        let k8 = tiny(1000, "k = 8\n", "c = [1.0]\n");
        assert_eq!(record_bytes(&k8), a + 1001.0 * 7.0 * 8.0 * 3.0);
        // The run's estimate (and so the dry run's total) includes them.
        let m = run_memory(&ten, 2, 8);
        assert_eq!(m.records, 2.0 * b);
        assert!(m.total() > m.records);
    }

    #[test]
    fn absurd_step_counts_are_refused_naming_train_steps() {
        // One run's own record of 1e9 steps is ~150 GB.
        let c = tiny(1000000000, "", "c = [1.0, 4.0]\n");
        let keys = crate::sweep::grid::expand(&c);
        let err =
            check_memory(std::slice::from_ref(&c), &keys, (64e9, 128e9, 2), false).unwrap_err();
        assert!(err.contains("train.steps = 1000000000"), "{err}");
        assert!(err.contains("per-step records"), "{err}");
        // Each run fits, but rank 0 keeps the records of all 1001 runs: ~80 GB.
        let c = tiny(
            1000000,
            "",
            "log2_c = { start = 0.0, stop = 10.0, step = 0.01 }\n",
        );
        let keys = crate::sweep::grid::expand(&c);
        assert_eq!(keys.len(), 1001);
        let one = run_memory(&c, 2, 8).total();
        assert!(one < 1e9, "{one}");
        let err = check_memory(std::slice::from_ref(&c), &keys, (8e9, 16e9, 2), false).unwrap_err();
        for want in ["rank 0", "all 1001 runs", "train.steps = 1000000"] {
            assert!(err.contains(want), "{want} in {err}");
        }
        // The tiny config itself fits.
        let ok = tiny(4, "", "c = [1.0, 4.0]\n");
        let keys = crate::sweep::grid::expand(&ok);
        assert!(check_memory(std::slice::from_ref(&ok), &keys, (8e9, 16e9, 2), false).is_ok());
    }

    #[test]
    fn an_adaptive_search_counts_the_runs_it_may_make() {
        let c = tiny(
            100,
            "",
            "search = \"adaptive\"\nresolution = 0.001\n\
             log2_c = { start = 0.0, stop = 10.0, step = 1.0 }\n",
        );
        let keys = crate::sweep::grid::expand(&c);
        let (bytes, runs) = results_memory(std::slice::from_ref(&c), &keys);
        let bound = crate::sweep::search::Search::new(&c).runs_bound_per_line();
        assert_eq!(runs, bound.min(keys.len()));
        assert!(runs < keys.len(), "{runs} of {}", keys.len());
        assert!(bytes >= runs as f64 * record_bytes(&c));
    }
}
