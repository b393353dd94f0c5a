//! Pre-flight: what one run needs in memory, what a rank has, and the refusal to start a
//! sweep whose largest run cannot fit — before any data is loaded or any buffer allocated.

use crate::config::{Config, ModelKind, SharpnessMethod};
use crate::model::Precision;
use crate::record::TaskKey;
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
}

impl MemoryEstimate {
    /// Everything, in bytes.
    pub fn total(&self) -> f64 {
        self.weights + self.activations + self.lanczos + self.data
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
    let (n, m, b) = match cfg.model.kind {
        ModelKind::Uv => (1.0, 1.0, 1.0),
        ModelKind::Mlp => {
            let n = cfg.data.n_train as f64;
            let b = (cfg.train.batch_size as f64).min(n);
            (n, (cfg.sharpness.measure_n as f64).min(n), b)
        }
    };
    // Per example: activations, deltas, their R-versions, and tanh's extra buffers, each
    // (d − 1)·w hidden values plus k outputs.
    let per_example = 6.0 * ((f64::from(depth) - 1.0).max(0.0) * f64::from(width) + k as f64);
    let lanczos = match cfg.sharpness.method {
        SharpnessMethod::Lanczos => {
            let basis = lanczos_basis_vectors(p, cfg.sharpness.max_iter) as f64;
            let sk = cfg.sharpness.k.max(1) as f64;
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
    let optimizer = match cfg.train.optimizer {
        crate::config::Optimizer::Sgd => 0.0,
        crate::config::Optimizer::Momentum => pf * t,
        crate::config::Optimizer::Adam => 3.0 * pf * t + 8.0 * pf,
    };
    MemoryEstimate {
        n_params: p,
        weights: 3.0 * pf * t + 4.0 * pf * 8.0 + optimizer,
        activations: (b + m) * per_example * t,
        lanczos,
        data: (n * (d_in + k) as f64) * (4.0 + t) + m * (d_in + k) as f64 * t,
    }
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

/// Refuses a grid whose largest run needs more memory than a rank has (`per_rank`,
/// `node`, `ranks` as from [`memory_per_rank`]); `points` as for [`largest_run`]. The
/// message names the config keys that size each part (their values at the run's axis
/// point), and the bytes needed and available.
pub fn check_memory(
    points: &[Config],
    keys: &[TaskKey],
    (per_rank, node, ranks): (f64, f64, usize),
) -> Result<(), String> {
    let Some((key, mem)) = largest_run(points, keys) else {
        return Ok(());
    };
    let cfg = &points[key.axis_point as usize];
    if mem.total() <= per_rank {
        return Ok(());
    }
    Err(format!(
        "a run of model.depth = {}, model.width = {} ({} parameters) needs about {} \
         ({} bytes): weights and gradients {}, activations {} (train.batch_size = {}, \
         sharpness.measure_n = {}), Lanczos basis {} (sharpness.max_iter = {}), data {} \
         (data.n_train = {}); a rank has about {} ({} bytes: {} available on this node, \
         shared by {ranks} rank(s)). Lower model.width or model.depth, sharpness.measure_n, \
         sharpness.max_iter or data.n_train, use train.precision = \"f32\", or run fewer \
         ranks per node",
        key.depth,
        key.width,
        mem.n_params,
        gib(mem.total()),
        mem.total() as u64,
        gib(mem.weights),
        gib(mem.activations),
        cfg.train.batch_size,
        cfg.sharpness.measure_n,
        gib(mem.lanczos),
        cfg.sharpness.max_iter,
        gib(mem.data),
        cfg.data.n_train,
        gib(per_rank),
        per_rank as u64,
        gib(node),
    ))
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
        let err = check_memory(std::slice::from_ref(&c), &keys, (8e9, 16e9, 2)).unwrap_err();
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
        assert!(check_memory(std::slice::from_ref(&ok), &keys, (8e9, 16e9, 2)).is_ok());
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
}
