//! `sharpsweep run`: one trajectory of a config, printed as a table.

use crate::config::{Config, ConfigError};
use crate::data::DataError;
use crate::model::{Float, PrecisionTask};
use crate::record::TaskKey;
use crate::sweep::preflight;
use crate::train::{lambda0, train_run, Problem, RunSettings};
use faer::Par;
use std::path::Path;

/// Errors of [`run_single`].
#[derive(Debug, thiserror::Error)]
pub enum SingleRunError {
    /// Config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run cannot fit in memory.
    #[error("not enough memory: {0}")]
    Memory(String),
    /// A command-line choice the config's protocol cannot honour.
    #[error("{0}")]
    Option(String),
}

/// The grid point of `sharpsweep run` (coordinates not given default to the config's
/// first values; the SGD seed to the init seed).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunPoint {
    /// Learning-rate multiplier c.
    pub c: f64,
    /// Depth.
    pub depth: Option<u32>,
    /// Width.
    pub width: Option<u32>,
    /// Init seed.
    pub seed: Option<u64>,
    /// SGD-order seed.
    pub sgd_seed: Option<u64>,
}

/// `sharpsweep run`: one run of a config, returned as a printable table of t, L_t, L_t/L₀,
/// λ_t, λ_t/λ₀, HVPs, residual.
pub fn run_single(
    config: &Path,
    overrides: &[String],
    point: RunPoint,
) -> Result<String, SingleRunError> {
    let (cfg, _) = Config::load(config, overrides)?;
    // One run: the config's own values of any `grid.axes` keys (set them with --set).
    let mut cfg = cfg.without_axes();
    // The point's coordinates go into the config, which is then validated as a sweep's:
    // an error names the flag and the key it sets.
    let mut flags: Vec<(&str, String)> = vec![("grid.c", format!("--c {}", point.c))];
    cfg.grid.search = crate::config::SearchKind::Grid;
    cfg.grid.c = Some(vec![point.c]);
    cfg.grid.log2_c = None;
    if let Some(d) = point.depth {
        cfg.model.depth = vec![d];
        flags.push(("model.depth", format!("--depth {d}")));
    }
    if let Some(w) = point.width {
        cfg.model.width = vec![w];
        flags.push(("model.width", format!("--width {w}")));
    }
    if let Some(seed) = point.seed {
        cfg.train.seeds = vec![seed];
        flags.push(("train.seeds", format!("--seed {seed}")));
    }
    cfg.validate().map_err(|e| match &e {
        ConfigError::Invalid { key, .. } => match flags.iter().find(|(k, _)| k == key) {
            Some((_, flag)) => SingleRunError::Option(format!("{flag}: {e}")),
            None => SingleRunError::Config(e),
        },
        _ => SingleRunError::Config(e),
    })?;
    faer::set_global_parallelism(Par::Seq);
    let depth = point.depth.unwrap_or(cfg.sizes().default_depth);
    let width = point.width.unwrap_or(cfg.model.width[0]);
    let seed = point.seed.unwrap_or(cfg.train.seeds[0]);
    if let Some(available) = preflight::memory_per_rank() {
        let key = TaskKey {
            c: point.c,
            depth,
            width,
            seed,
            sgd_seed: seed,
            axis_point: 0,
        };
        preflight::check_memory(std::slice::from_ref(&cfg), &[key], available, false)
            .map_err(SingleRunError::Memory)?;
    }
    let notebook = cfg.sharpness.protocol == crate::config::SharpnessProtocol::AuthorsNotebook;
    if notebook && point.sgd_seed.is_some_and(|g| g != seed) {
        return Err(SingleRunError::Option(format!(
            "--sgd-seed: with sharpness.protocol = \"authors-notebook\" the SGD seed is the init seed ({seed}): λ₀'s examples come from its stream"
        )));
    }
    let task = SingleRun {
        cfg: &cfg,
        c: point.c,
        depth,
        width,
        seed,
        sgd_seed: point.sgd_seed.unwrap_or(seed),
    };
    cfg.train.precision.dispatch(task)
}

struct SingleRun<'a> {
    cfg: &'a Config,
    c: f64,
    depth: u32,
    width: u32,
    seed: u64,
    sgd_seed: u64,
}

impl PrecisionTask for SingleRun<'_> {
    type Output = Result<String, SingleRunError>;

    fn run<T: Float>(self) -> Self::Output {
        let SingleRun {
            cfg,
            c,
            depth,
            width,
            seed,
            sgd_seed: sgd,
        } = self;
        let problem = Problem::<T>::from_config(cfg)?;
        let s = RunSettings::new(cfg, &problem, depth, width, Par::Seq);
        let l0 = lambda0(&s, &problem, seed);
        let (r, timing) = train_run(&s, &problem, c, seed, sgd, &l0);
        let mut out = format!(
            "# c = {c}, depth = {depth}, width = {width}, seed = {seed}, sgd_seed = {sgd}, P = {}\n# lambda0 = {:.6e}, eta = {:.6e}, status = {}{}\n# time: {:.2} s training, {:.2} s measuring\n",
            s.spec.n_params(), r.lambda0, r.eta, r.status.name(),
            r.diverged_at.map_or(String::new(), |t| format!(" at step {t}")),
            timing.train_s, timing.measure_s,
        );
        out += "step\tloss\tloss/L0\tsharpness\tsharpness/lambda0\thvps\tresidual\n";
        for t in 0..r.loss.len() {
            if r.loss[t].is_nan() && r.sharpness[t].is_nan() {
                continue;
            }
            out += &format!(
                "{t}\t{:.6e}\t{:.4}\t{:.6e}\t{:.4}\t{}\t{:.1e}\n",
                r.loss[t],
                r.loss[t] / r.loss[0],
                r.sharpness[t],
                r.sharpness[t] / r.lambda0,
                r.hvps[t],
                r.residual[t]
            );
        }
        Ok(out)
    }
}
