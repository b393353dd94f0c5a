//! The grid of tasks a config describes, its networks (the runs that share one λ₀), and the
//! cost model used to hand out the most expensive work first.

use crate::config::{Config, Schedule};
use crate::record::{InitKey, LineKey, TaskKey};

/// Every line of the config (the runs that differ only in c), in the file's row order:
/// depth, width, axis point of `grid.axes` (0..[`Config::n_axis_points`]), then (seed,
/// sgd_seed). The one enumeration of the grid: [`expand`] gives each line its c values,
/// the adaptive search ([`super::search::Search::new`]) searches each line for them.
pub fn lines(cfg: &Config) -> Vec<LineKey> {
    let mut lines = Vec::new();
    // The uv model's depth is 2: `Config` sets it so when omitted and refuses another.
    for &depth in &cfg.model.depth {
        for &width in &cfg.model.width {
            for axis_point in 0..cfg.n_axis_points() as u32 {
                for (seed, sgd_seed) in cfg.seed_pairs() {
                    lines.push(LineKey {
                        depth,
                        width,
                        axis_point,
                        seed,
                        sgd_seed,
                    });
                }
            }
        }
    }
    lines
}

/// Every task of the config, in the file's row order: the [`lines`], each with the grid's
/// c values ascending.
pub fn expand(cfg: &Config) -> Vec<TaskKey> {
    let cs = cfg.c_values();
    lines(cfg)
        .iter()
        .flat_map(|line| cs.iter().map(|&c| line.task(c)))
        .collect()
}

/// The networks at initialization that the tasks `keys` need, sorted and distinct: the
/// one table of λ₀ work (units name their network, so no index into it crosses ranks).
pub fn init_keys(keys: &[TaskKey]) -> Vec<InitKey> {
    let mut inits: Vec<InitKey> = keys.iter().map(InitKey::from).collect();
    inits.sort();
    inits.dedup();
    inits
}

/// Input and output sizes of the configured data (known without loading it).
pub fn data_shape(cfg: &Config) -> (usize, usize) {
    let sz = cfg.sizes();
    (sz.input_dim, sz.outputs)
}

/// Parameter count P ≈ d_in·w + (d−2)·w² + k·w of a grid point.
pub fn n_params(cfg: &Config, depth: u32, width: u32) -> f64 {
    let (d_in, k) = data_shape(cfg);
    let (d, w) = (depth as f64, width as f64);
    if depth == 1 {
        return (d_in * k) as f64;
    }
    d_in as f64 * w + (d - 2.0) * w * w + k as f64 * w
}

/// Assumed HVPs per sharpness measurement in the cost model.
const HVPS_PER_MEASUREMENT: f64 = 20.0;

/// Estimated flops of one run: SGD steps ≈ 6·B·P each, a training-loss pass 2·n·P per
/// loss step and a sharpness measurement ≈ (6 + 12·HVPs)·m·P per sharpness step of the
/// run's [`Schedule`].
pub fn run_cost(cfg: &Config, key: &TaskKey) -> f64 {
    let p = n_params(cfg, key.depth, key.width);
    let sz = cfg.sizes();
    let (n, m, b) = (sz.n_train as f64, sz.measure_n as f64, sz.batch_size as f64);
    let steps = cfg.train.steps as f64;
    let schedule = Schedule::of(cfg);
    let (losses, sharpness) = (
        schedule.loss_count() as f64,
        schedule.sharpness_count() as f64,
    );
    let measure = (6.0 + 12.0 * HVPS_PER_MEASUREMENT) * m;
    p * (6.0 * b * steps + losses * 2.0 * n + sharpness * measure)
}

/// Estimated flops of one λ₀ measurement of a line.
pub fn lambda0_cost(cfg: &Config, init: &InitKey) -> f64 {
    let p = n_params(cfg, init.depth, init.width);
    let m = cfg.sizes().measure_n as f64;
    p * m * (6.0 + 12.0 * 2.0 * HVPS_PER_MEASUREMENT)
}

/// Estimated core-hours of the whole grid at `gflops` sustained per core; `points` are
/// the configs of its axis points ([`Config::axis_points`]).
pub fn core_hours(cfg: &Config, points: &[Config], gflops: f64) -> f64 {
    let keys = expand(cfg);
    let point = |p: u32| &points[p as usize];
    let flops: f64 = keys
        .iter()
        .map(|k| run_cost(point(k.axis_point), k))
        .sum::<f64>()
        + init_keys(&keys)
            .iter()
            .map(|l| lambda0_cost(point(l.axis_point), l))
            .sum::<f64>();
    flops / (gflops * 1e9) / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_order_and_size() {
        let cfg = Config::from_toml_str(
            "[model]\ndepth=[2,4]\nwidth=[8]\n[train]\nseeds=[1,2]\n[grid]\nc=[1.0,2.0,4.0]\n",
        )
        .unwrap();
        let keys = expand(&cfg);
        assert_eq!(keys.len(), 2 * 2 * 3);
        assert_eq!((keys[0].depth, keys[0].seed, keys[0].c), (2, 1, 1.0));
        assert_eq!((keys[2].c, keys[3].seed), (4.0, 2));
        assert_eq!(keys[11].depth, 4);
        assert!(run_cost(&cfg, &keys[11]) > run_cost(&cfg, &keys[0]));
        assert!(keys.iter().all(|k| k.axis_point == 0));
    }

    #[test]
    fn axes_multiply_the_grid_inside_each_network_shape() {
        let cfg = Config::from_toml_str(
            "[data]\nn_train = 256\n[model]\ndepth=[2,4]\nwidth=[8]\n[train]\nbatch_size = 64\n\
             seeds=[1,2]\n[grid]\nc=[1.0,2.0,4.0]\n\
             axes = { \"train.warmup_steps\" = [0, 4, 8], \"train.batch_size\" = [32, 64] }\n",
        )
        .unwrap();
        let keys = expand(&cfg);
        assert_eq!(keys.len(), 2 * 6 * 2 * 3);
        // depth, width, axis point, seeds, c.
        assert_eq!((keys[0].axis_point, keys[0].seed, keys[0].c), (0, 1, 1.0));
        assert_eq!((keys[5].axis_point, keys[5].seed, keys[5].c), (0, 2, 4.0));
        assert_eq!((keys[6].axis_point, keys[6].seed), (1, 1));
        assert_eq!((keys[35].depth, keys[35].axis_point), (2, 5));
        assert_eq!((keys[36].depth, keys[36].axis_point), (4, 0));
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.row_order(b));
        assert_eq!(sorted, keys, "expansion is in row order");
        // Every axis point is its own network: λ₀ per (depth, width, point, seed).
        assert_eq!(init_keys(&keys).len(), 2 * 6 * 2);
        // Point 0 of (batch_size, warmup_steps) is batch 32: it costs less than batch 64.
        let points = cfg.axis_points().unwrap();
        let (p0, p3) = (&points[0], &points[3]);
        assert_eq!((p0.train.batch_size, p3.train.batch_size), (32, 64));
        assert!(run_cost(p0, &keys[0]) < run_cost(p3, &keys[18]));
        let one = run_cost(p0, &keys[0]);
        assert!(core_hours(&cfg, &points, 1.0) > 72.0 * one / 2.0 / 1e9 / 3600.0);
    }
}
