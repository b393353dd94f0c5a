//! The sweep configuration: a TOML file (serde, unknown keys rejected), `--set key=value`
//! overrides, and validation whose errors name the offending key.
//!
//! The key names are the public interface documented in the README.
//!
//! Reading a configuration ([`Config::load`], [`Config::from_toml_str`]) goes:
//! TOML text → [`toml::Table`] → `--set` overrides ([`apply_override`]) → check every key
//! against the schema (an unknown key is reported with its full dotted name, e.g.
//! `model.widht`) → deserialize (omitted keys take their defaults) → context-dependent
//! defaults (below) → [`Config::validate`].
//!
//! Two defaults depend on what else the file says, so they are decided from the table, not by
//! serde alone:
//! - `[grid]`: the default c grid is `log2_c = { start = 0.0, stop = 4.0, step = 0.1 }`. It
//!   applies only when neither `grid.c` nor `grid.log2_c` is given; giving `grid.c` alone sets
//!   `log2_c` to `None`. Giving both is an error.
//! - `[model]`: `kind = "uv"` is always two layers; when `model.depth` is omitted it becomes
//!   `[2]`, and any other explicit depth is an error.

pub use crate::model::{Activation, NetOptions, Parameterization, Precision, Readout};
mod axes;
mod identity;
pub mod keys;
mod schedule;
mod text;
#[cfg(test)]
mod text_pins;
mod validate;

pub use axes::MAX_AXIS_POINTS;
pub use schedule::{Schedule, EARLY_WINDOW};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which dataset feeds the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST IDX files (gzipped or raw).
    FashionMnist,
    /// MNIST IDX files (gzipped or raw).
    Mnist,
    /// CIFAR-10 binary batches (`data_batch_*.bin`).
    Cifar10,
    /// A seeded synthetic teacher set.
    Synthetic,
}

/// How the `n_train` examples are chosen from the training file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubsetKind {
    /// The first `n_train` examples of the file.
    First,
    /// A random subset drawn with `data.subset_seed`.
    Random,
}

/// `[data]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset kind.
    pub dataset: DatasetKind,
    /// Directory holding the dataset files (unused for `synthetic`).
    pub dir: PathBuf,
    /// Number of training examples used.
    pub n_train: usize,
    /// How the training subset is chosen.
    pub subset: SubsetKind,
    /// Seed of the random subset (only with `subset = "random"`).
    pub subset_seed: u64,
    /// Input dimension of the synthetic set.
    pub synthetic_input_dim: usize,
    /// Seed of the synthetic teacher and inputs.
    pub synthetic_seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::FashionMnist,
            dir: PathBuf::from("/usr/share/datasets/fashion-mnist"),
            n_train: 4096,
            subset: SubsetKind::First,
            subset_seed: 0,
            synthetic_input_dim: 3072,
            synthetic_seed: 0,
        }
    }
}

/// Network family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Fully connected network of `depth` weight layers.
    Mlp,
    /// The two-layer linear uv model of Lewkowycz et al. (one example x = 1, y = 0).
    Uv,
}

/// The sizes a sweep's runs have, known from the config alone (no data loaded): the one
/// place where the uv model's fixed sizes (one example, one input, one output, depth 2)
/// differ from an MLP's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Inputs per example.
    pub input_dim: usize,
    /// Network outputs (classes).
    pub outputs: usize,
    /// Training examples.
    pub n_train: usize,
    /// Measurement-set examples (≤ `n_train`).
    pub measure_n: usize,
    /// Minibatch size as configured (the uv model: 1).
    pub batch_size: usize,
    /// The depth of a run when none is named (`sharpsweep run`).
    pub default_depth: u32,
}

impl Config {
    /// The sizes of this config's runs ([`Sizes`]).
    pub fn sizes(&self) -> Sizes {
        use DatasetKind::*;
        match self.model.kind {
            ModelKind::Uv => Sizes {
                input_dim: 1,
                outputs: 1,
                n_train: 1,
                measure_n: 1,
                batch_size: 1,
                default_depth: 2,
            },
            ModelKind::Mlp => Sizes {
                input_dim: match self.data.dataset {
                    FashionMnist | Mnist => 784,
                    Cifar10 => 3072,
                    Synthetic => self.data.synthetic_input_dim,
                },
                outputs: 10,
                n_train: self.data.n_train,
                measure_n: self.sharpness.measure_n.min(self.data.n_train),
                batch_size: self.train.batch_size,
                default_depth: self.model.depth.first().copied().unwrap_or(2),
            },
        }
    }
}

/// `[model]`: the grid's depths and widths, and the options every network shares (the
/// keys of [`NetOptions`], flattened into this section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Network family.
    pub kind: ModelKind,
    /// Depths (weight layers) swept. For `kind = "uv"` omit it (it becomes `[2]`; the uv
    /// model is always two layers) or give exactly `[2]`.
    pub depth: Vec<u32>,
    /// Widths swept (for `uv`: the width n).
    pub width: Vec<u32>,
    /// Nonlinearity, parameterization, init variances, biases, loss scale.
    #[serde(flatten)]
    pub net: NetOptions,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Mlp,
            depth: vec![4],
            width: vec![128],
            net: NetOptions::default(),
        }
    }
}

/// `[train]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Minibatch size B.
    pub batch_size: usize,
    /// Number of SGD steps T.
    pub steps: usize,
    /// Initialization seeds.
    pub seeds: Vec<u64>,
    /// SGD-order seeds. Omitted: each init seed is paired with the same SGD seed.
    /// Given: every (seed, sgd_seed) pair of the product is run.
    pub sgd_seeds: Option<Vec<u64>>,
    /// Precision of the network passes.
    pub precision: Precision,
    /// A minibatch loss above this (or not finite) is divergence.
    pub divergence_loss: f64,
    /// The update rule. Keys of the optimizer at their defaults are left out of the
    /// effective config text (files of earlier versions keep their `config_sha256`).
    pub optimizer: Optimizer,
    /// Heavy-ball β of `optimizer = "momentum"`: v ← βv + g, θ ← θ − ηv.
    pub momentum: f64,
    /// Linear warmup: η_t = (t/T_w)·c/λ₀ for steps t < T_w (t = 0 first), then c/λ₀;
    /// 0 = none.
    pub warmup_steps: usize,
    /// Adam's β₁ (first-moment decay) of `optimizer = "adam"`.
    pub adam_beta1: f64,
    /// Adam's β₂ (second-moment decay).
    pub adam_beta2: f64,
    /// Adam's ε (added to √v̂).
    pub adam_eps: f64,
    /// Every this many steps a run in a sweep saves a checkpoint (0: never), from which
    /// `--resume` continues it bit for bit. Not part of `config_sha256`: it changes no
    /// number.
    pub checkpoint_every: usize,
    /// The training loss is measured every this many steps (and at T, and wherever the
    /// sharpness is); 0: only where the sharpness is ([`Schedule`]).
    pub loss_every: usize,
}

/// Adam's defaults (Kingma & Ba; the 2024 warmup paper's b1, b2, eps).
pub const ADAM_BETA1: f64 = 0.9;
/// Adam's default β₂.
pub const ADAM_BETA2: f64 = 0.999;
/// Adam's default ε.
pub const ADAM_EPS: f64 = 1e-8;

/// The update rule (`train.optimizer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Plain SGD: θ ← θ − η g.
    #[default]
    Sgd,
    /// Heavy-ball momentum: v ← βv + g, θ ← θ − ηv (v₀ = 0; β = `train.momentum`).
    Momentum,
    /// Adam with bias correction, its second moment initialised from the squared gradient
    /// at θ₀ ("GI-Adam", Kalra & Barkeshli 2024); η = c/λ₀ with λ₀ the preconditioned
    /// sharpness at initialization ([`crate::optim`]).
    Adam,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_size: 512,
            steps: 10,
            seeds: vec![1],
            sgd_seeds: None,
            precision: Precision::F32,
            divergence_loss: 1e5,
            optimizer: Optimizer::Sgd,
            momentum: 0.0,
            warmup_steps: 0,
            adam_beta1: ADAM_BETA1,
            adam_beta2: ADAM_BETA2,
            adam_eps: ADAM_EPS,
            checkpoint_every: 0,
            loss_every: 1,
        }
    }
}

/// Sharpness estimator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharpnessMethod {
    /// Lanczos with full reorthogonalization, stopping on a relative residual.
    Lanczos,
    /// Plain power iteration with a fixed count (the authors' method).
    Power,
}

/// `[sharpness]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharpnessConfig {
    /// Estimator.
    pub method: SharpnessMethod,
    /// Size of the fixed measurement set (all of `n_train` when smaller).
    pub measure_n: usize,
    /// Seed of the measurement-set draw.
    pub measure_seed: u64,
    /// Measure the sharpness every this many steps (after `dense_steps`, without
    /// `per_decade`; [`Schedule`]).
    pub every: usize,
    /// The sharpness is measured at every step t ≤ this.
    pub dense_steps: usize,
    /// N > 0: after `dense_steps`, the sharpness at N log-spaced steps per decade instead
    /// of every `every` steps; 0: off.
    pub per_decade: usize,
    /// Relative residual tolerance ‖Hv − λv‖/|λ| (Lanczos).
    pub tol: f64,
    /// Maximum Hessian-vector products per measurement (Lanczos).
    pub max_iter: usize,
    /// Iterations of the power method.
    pub power_iters: usize,
    /// Start each measurement from the previous top eigenvector.
    pub warm_start: bool,
    /// How many of the largest eigenvalues each measurement stores (`eigenvalues`).
    /// Keys of the spectrum at their defaults are left out of the effective config text
    /// (files of earlier versions keep their `config_sha256` and resume).
    pub k: usize,
    /// Whose top-k spectrum: the Hessian's, the Gauss-Newton matrix's, or both.
    pub operator: SpectrumOperator,
    /// Also measure the Hessian's smallest eigenvalue.
    pub bottom: bool,
    /// With `train.optimizer = "adam"` (whose `sharpness` is the preconditioned one): also
    /// measure the plain Hessian's top eigenvalue into `hessian_sharpness`, so both are
    /// stored.
    pub preconditioned: bool,
    /// Which examples and estimator measure the sharpness: today's fixed measurement set,
    /// or exactly what the authors' demo notebook does.
    pub protocol: SharpnessProtocol,
}

/// How the sharpness is measured (`sharpness.protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharpnessProtocol {
    /// λ₀ and every λ_t on one fixed, seeded measurement set of `measure_n` examples, by
    /// `method`.
    #[default]
    FixedSet,
    /// The authors' demo notebook (Kalra & Barkeshli 2023): λ₀ by power iteration on the
    /// first `measure_n` examples of a stream seeded by the SGD seed; each later λ_t by
    /// power iteration from one fixed start vector on the next SGD minibatch, which is
    /// thereby consumed (SGD trains on every other minibatch).
    AuthorsNotebook,
}

/// Which operators' top-k spectra a measurement stores (`sharpness.operator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpectrumOperator {
    /// The loss Hessian (`eigenvalues`).
    #[default]
    Hessian,
    /// The Gauss-Newton matrix Jᵀ(∇²ℓ)J (`gn_eigenvalues`); the Hessian's top one is still
    /// the sharpness.
    GaussNewton,
    /// Both.
    Both,
}

impl SpectrumOperator {
    /// Whether the Hessian's top k are measured.
    pub fn hessian(self) -> bool {
        self != SpectrumOperator::GaussNewton
    }
    /// Whether the Gauss-Newton top k are measured.
    pub fn gauss_newton(self) -> bool {
        self != SpectrumOperator::Hessian
    }
}

impl Default for SharpnessConfig {
    fn default() -> Self {
        SharpnessConfig {
            method: SharpnessMethod::Lanczos,
            measure_n: 4096,
            measure_seed: 0,
            every: 1,
            dense_steps: 0,
            per_decade: 0,
            tol: 1e-3,
            max_iter: 100,
            power_iters: 20,
            warm_start: true,
            k: 1,
            operator: SpectrumOperator::Hessian,
            bottom: false,
            preconditioned: false,
            protocol: SharpnessProtocol::FixedSet,
        }
    }
}

/// A log₂ range of c values: c = 2^x for x = start, start + step, … ≤ stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log2Range {
    /// First exponent.
    pub start: f64,
    /// Last exponent (inclusive, up to rounding).
    pub stop: f64,
    /// Exponent step.
    pub step: f64,
}

/// How the c values of each line are chosen (`grid.search`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// Every c of the grid.
    #[default]
    Grid,
    /// A coarse scan over `grid.log2_c`, then bisection (k-section) of each critical value's
    /// first bracket down to `grid.resolution` ([`crate::sweep::search`]).
    Adaptive,
}

/// `[grid]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridConfig {
    /// `"grid"` (every c) or `"adaptive"` (search for the critical values).
    /// Search keys at their defaults are left out of the effective config text, so a fixed
    /// grid's text and `config_sha256` are those of versions before the search (their
    /// files resume).
    pub search: SearchKind,
    /// c = 2^x over a range (exclusive with `c`). When neither this nor `c` is in the file
    /// it defaults to `{ start = 0.0, stop = 4.0, step = 0.1 }`; when only `c` is given it is
    /// `None` (decided by [`Config::from_toml_str`] / [`Config::load`] from the keys present).
    pub log2_c: Option<Log2Range>,
    /// Explicit list of c values (exclusive with `log2_c`).
    pub c: Option<Vec<f64>>,
    /// Skip larger c on a (depth, width, seed) line once one diverges.
    pub stop_after_divergence: bool,
    /// Points of the θ₀ → θ_T loss interpolation per run (0: none; needed for c_barrier).
    pub interp_points: usize,
    /// Adaptive search: the width in log₂ c to which each critical value is bracketed.
    pub resolution: f64,
    /// Adaptive search: ε of the sharpness criterion λ_t > (1+ε)·λ₀ it resolves.
    pub eps_sharp: f64,
    /// Adaptive search: points a line tries at once (the coarse scan's batch, and the
    /// k-section's points inside one bracket).
    pub probes: usize,
    /// More grid dimensions: each dotted config key (one of [`keys::axis_keys`]) with the list of
    /// values it takes. Every (depth, width, seed pair, c) task is run once per point of
    /// the cartesian product of the lists, with the point's values set as `--set` would set
    /// them. Sorted by key (a `BTreeMap`): the first key's values vary slowest over the
    /// points ([`Config::axis_point_values`]). Left out of the effective config text when
    /// empty, so files of earlier versions keep their `config_sha256` and resume.
    pub axes: BTreeMap<String, Vec<toml::Value>>,
}

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig {
            log2_c: Some(Log2Range {
                start: 0.0,
                stop: 4.0,
                step: 0.1,
            }),
            c: None,
            stop_after_divergence: false,
            interp_points: 0,
            search: SearchKind::Grid,
            resolution: 0.05,
            eps_sharp: 0.0,
            probes: 1,
            axes: BTreeMap::new(),
        }
    }
}

/// `[output]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Results file.
    pub path: PathBuf,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            path: PathBuf::from("results.h5"),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[data]`
    pub data: DataConfig,
    /// `[model]`
    pub model: ModelConfig,
    /// `[train]`
    pub train: TrainConfig,
    /// `[sharpness]`
    pub sharpness: SharpnessConfig,
    /// `[grid]`
    pub grid: GridConfig,
    /// `[output]`
    pub output: OutputConfig,
}

/// Where configuration text came from, for error messages.
fn origin_name(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "<config text>".to_string(),
    }
}

/// Everything that can be wrong with a configuration. Each message names the file (or
/// `<config text>`) and the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config file: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not valid TOML (the message carries line and column).
    #[error("{origin}: TOML syntax error: {message}")]
    Syntax {
        /// File path or `<config text>`.
        origin: String,
        /// The parser's message, with line, column and the offending line.
        message: String,
    },
    /// A key that the schema does not have (a misspelling, or an override of a nonexistent key).
    #[error("{origin}: unknown key `{key}` (known keys here: {expected})")]
    UnknownKey {
        /// File path or `<config text>`.
        origin: String,
        /// Full dotted key, e.g. `model.widht`.
        key: String,
        /// The keys allowed in that table.
        expected: String,
    },
    /// A value of the wrong type or an unknown variant (e.g. `model.activation = "gelu"`).
    #[error("{origin}: bad value: {message}")]
    BadValue {
        /// File path or `<config text>`.
        origin: String,
        /// The deserializer's message, which names the key (`in \`model.depth\``).
        message: String,
    },
    /// A malformed `--set key=value` override.
    #[error("--set {spec:?}: {reason}")]
    Override {
        /// The override as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A well-typed value that is not allowed, e.g. `model.depth: must be >= 1 (got 0)`.
    #[error("{key}: {message}")]
    Invalid {
        /// Full dotted key.
        key: String,
        /// What is wrong, with the value found.
        message: String,
    },
}

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Most values a `grid.log2_c` range may produce (guards against a tiny step).
const MAX_GRID_POINTS: usize = 1_000_000;

/// Applies one `--set` override, `key.path=value`, to a parsed (not yet deserialized) config
/// table. The value is parsed as a TOML value (`[128]`, `50`, `1e-4`, `"mnist"`,
/// `{start=0.0,stop=1.0,step=0.5}`); text that is not a TOML value is taken as a bare string,
/// so `data.dataset=mnist` works. Missing intermediate tables are created; whether the key
/// exists in the schema is checked later, together with the file's own keys.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), ConfigError> {
    let fail = |reason: &str| ConfigError::Override {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| fail("expected key=value"))?;
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) if t.len() == 1 => t.remove("v").expect("key v was just parsed"),
        // Text that starts like an array, table or quoted string is not a bare word.
        Err(e) if raw.starts_with(['[', '{', '"', '\'']) => {
            return Err(fail(&format!(
                "TOML syntax error in the value of `{}`: {}",
                key.trim(),
                e.message().trim_end().replace('\n', " ")
            )))
        }
        _ => toml::Value::String(raw.to_string()),
    };
    set_dotted(table, key, value).map_err(|reason| fail(&reason))
}

/// The last `--set` override whose key is the key a deserializer's `message` names
/// (`` in `train.steps` ``), or a table above or below it: `--set SPEC`.
fn blamed_override(overrides: &[String], message: &str) -> Option<String> {
    let (_, rest) = message.rsplit_once("in `")?;
    let named = rest.split('`').next()?;
    overrides
        .iter()
        .rev()
        .find(|spec| {
            let key = spec
                .split_once('=')
                .map_or(spec.as_str(), |(k, _)| k)
                .trim();
            let key: String = key.split('.').map(str::trim).collect::<Vec<_>>().join(".");
            key == named
                || named.starts_with(&format!("{key}."))
                || key.starts_with(&format!("{named}."))
        })
        .map(|spec| format!("--set {spec}"))
}

/// Sets the value at the dotted `key` of `table`, creating missing intermediate tables
/// (what an override does once its value is parsed). `Err` names a malformed key or a
/// segment that is a value, not a table.
fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key or key segment".into());
    }
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a table",
                    parts[..=i].join(".")
                ))
            }
        };
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// The `[model]` section's network options alone (other keys ignored), to locate a bad
/// value among them.
#[derive(Deserialize)]
struct NetProbe {
    #[serde(default)]
    #[allow(dead_code)]
    model: NetOptions,
}

fn has_key(table: &toml::Table, section: &str, key: &str) -> bool {
    matches!(table.get(section), Some(toml::Value::Table(t)) if t.contains_key(key))
}

/// 1-based (line, column) of a byte offset in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Parses configuration text (no overrides) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_text(text, None, &[])
    }

    /// Reads the TOML file at `path`, applies the `--set` overrides in order, and validates.
    /// Returns the configuration and its effective TOML text ([`Config::to_toml_string`]:
    /// every key, defaults and overrides included), which is what results files record.
    pub fn load(path: &Path, overrides: &[String]) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::from_text(&text, Some(path), overrides)?;
        let effective = config.to_toml_string();
        Ok((config, effective))
    }

    fn from_text(
        text: &str,
        path: Option<&Path>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let origin = origin_name(path);
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax {
                origin: origin.clone(),
                message: e.to_string().trim_end().to_string(),
            })?;
        for spec in overrides {
            apply_override(&mut table, spec)?;
        }
        text::check_known_keys(&table, &origin)?;
        axes::check_axes_table(&table)?;

        let grid_c_given = has_key(&table, "grid", "c");
        let grid_log2_given = has_key(&table, "grid", "log2_c");
        let depth_given = has_key(&table, "model", "depth");

        let bad_value = |e: toml::de::Error, spanned: Option<toml::de::Error>| {
            let mut message = e.to_string().trim_end().replace('\n', " ");
            if let Some(span) = spanned.and_then(|s| s.span()) {
                let (line, column) = line_column(text, span.start);
                message.push_str(&format!(" (at line {line}, column {column})"));
            }
            // A value a user's `--set` set (a file was loaded) is reported as that --set's.
            let origin = path
                .and_then(|_| blamed_override(overrides, &message))
                .unwrap_or_else(|| origin.clone());
            ConfigError::BadValue { origin, message }
        };
        // The network options are flattened into [model], and serde reports an error inside
        // a flattened struct at the section, not the key: check them alone first, so the
        // message names `model.<key>` and its line.
        let net_probe: Result<NetProbe, _> = toml::Value::Table(table.clone()).try_into();
        if let Err(e) = net_probe {
            // Without overrides the text itself can locate the error.
            let spanned = overrides
                .is_empty()
                .then(|| toml::from_str::<NetProbe>(text).err())
                .flatten();
            return Err(bad_value(e, spanned));
        }
        let mut config: Config = toml::Value::Table(table).try_into().map_err(|e| {
            let spanned = overrides
                .is_empty()
                .then(|| toml::from_str::<Config>(text).err())
                .flatten();
            bad_value(e, spanned)
        })?;

        if grid_c_given && !grid_log2_given {
            config.grid.log2_c = None;
        }
        if config.grid.search == SearchKind::Grid {
            // A search key set away from its default would be silently ignored.
            let d = GridConfig::default();
            let g = &config.grid;
            let set = [
                ("resolution", g.resolution != d.resolution),
                ("eps_sharp", g.eps_sharp != d.eps_sharp),
                ("probes", g.probes != d.probes),
            ];
            if let Some((k, _)) = set.into_iter().find(|(_, changed)| *changed) {
                return Err(invalid(
                    &format!("grid.{k}"),
                    "applies only to an adaptive search: set grid.search = \"adaptive\" (or remove it)",
                ));
            }
        }
        if config.model.kind == ModelKind::Uv && !depth_given {
            config.model.depth = vec![2];
        }
        config.validate()?;
        Ok(config)
    }

    /// The spacing in log₂ c of the c values a sweep may run: `grid.log2_c.step` for a
    /// fixed grid; for an adaptive search step/2ʲ with the smallest j ≥ 0 that makes it at
    /// most `grid.resolution` (the search's lattice). NaN without `grid.log2_c`.
    pub fn lattice_spacing(&self) -> f64 {
        let Some(r) = &self.grid.log2_c else {
            return f64::NAN;
        };
        if self.grid.search == SearchKind::Grid
            || self.grid.resolution.is_nan()
            || self.grid.resolution <= 0.0
        {
            return r.step;
        }
        let mut h = r.step;
        for _ in 0..40 {
            if h <= self.grid.resolution * (1.0 + 1e-9) {
                break;
            }
            h /= 2.0;
        }
        h
    }

    /// The c grid, ascending. An explicit `grid.c` list is sorted and deduplicated. A
    /// `grid.log2_c` range gives c = 2^x for x = start + i·h, i = 0, 1, … while
    /// x ≤ stop + 1e-9, with x rounded to 10 decimal places first so that e.g. 2^(0.1·i)
    /// is the same number however it was accumulated (x = 1 gives exactly 2.0); h is
    /// [`Config::lattice_spacing`]: the step, or for an adaptive search its lattice (every c
    /// it may try; a fixed grid with step = h has the same values). When `grid.c`
    /// is set it takes precedence; with neither set (rejected by [`Config::validate`]) the
    /// grid is empty.
    pub fn c_values(&self) -> Vec<f64> {
        if let Some(c) = &self.grid.c {
            let mut c = c.clone();
            c.sort_by(f64::total_cmp);
            c.dedup();
            return c;
        }
        let Some(r) = &self.grid.log2_c else {
            return Vec::new();
        };
        let h = self.lattice_spacing();
        if !(h > 0.0 && r.start.is_finite() && r.stop.is_finite()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 0..=MAX_GRID_POINTS {
            let x = round_decimals(r.start + i as f64 * h, 10);
            if x > r.stop + 1e-9 {
                break;
            }
            out.push(x.exp2());
        }
        out
    }

    /// The (init seed, SGD-order seed) pairs to run: `(s, s)` for each of `train.seeds` when
    /// `train.sgd_seeds` is omitted, else the product seeds × sgd_seeds, seed-major.
    pub fn seed_pairs(&self) -> Vec<(u64, u64)> {
        match &self.train.sgd_seeds {
            None => self.train.seeds.iter().map(|&s| (s, s)).collect(),
            Some(sgd) => self
                .train
                .seeds
                .iter()
                .flat_map(|&s| sgd.iter().map(move |&g| (s, g)))
                .collect(),
        }
    }

    /// The full configuration as TOML (every key, defaults included); parsing it back with
    /// [`Config::from_toml_str`] gives an equal `Config` for any valid configuration.
    pub fn to_toml_string(&self) -> String {
        text::normalized_text(self)
    }
}

fn round_decimals(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[data]
dataset = "fashion-mnist"  # fashion-mnist | mnist | cifar10 | synthetic
dir = "/usr/share/datasets/fashion-mnist"
n_train = 4096
[model]
kind = "mlp"               # mlp | uv
depth = [2, 4, 8]
width = [64, 128, 256]
activation = "relu"        # relu | tanh | linear
parameterization = "sp"    # sp | ntk
readout = "default"        # default | zero
bias = false
[train]
batch_size = 512
steps = 10
seeds = [1, 2, 3]
precision = "f32"
divergence_loss = 1e5
[sharpness]
method = "lanczos"
measure_n = 4096
every = 1
tol = 1e-3
max_iter = 100
warm_start = true
[grid]
log2_c = { start = 0.0, stop = 4.0, step = 0.1 }   # or: c = [1.0, 2.0, 4.0]
[output]
path = "results.h5"
"#;

    fn example() -> Config {
        Config::from_toml_str(EXAMPLE).expect("the example config is valid")
    }

    /// Parses the example with `overrides` applied, returning the error text.
    fn error_with(overrides: &[&str]) -> String {
        let mut table: toml::Table = EXAMPLE.parse().unwrap();
        for o in overrides {
            apply_override(&mut table, o).unwrap();
        }
        let text = toml::to_string(&table).unwrap();
        match Config::from_toml_str(&text) {
            Ok(c) => panic!("expected an error for {overrides:?}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn with(overrides: &[&str]) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let owned: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::load(&path, &owned).unwrap().0
    }

    #[test]
    fn parses_the_example() {
        let c = example();
        assert_eq!(c.data.dataset, DatasetKind::FashionMnist);
        assert_eq!(c.data.n_train, 4096);
        assert_eq!(c.model.depth, vec![2, 4, 8]);
        assert_eq!(c.model.width, vec![64, 128, 256]);
        assert_eq!(c.model.net.activation, Activation::Relu);
        assert_eq!(c.train.seeds, vec![1, 2, 3]);
        assert_eq!(c.train.divergence_loss, 1e5);
        assert_eq!(c.sharpness.tol, 1e-3);
        assert_eq!(c.grid.c, None);
        let r = c.grid.log2_c.as_ref().unwrap();
        assert_eq!((r.start, r.stop, r.step), (0.0, 4.0, 0.1));
        assert_eq!(c.output.path, PathBuf::from("results.h5"));
        // Omitted keys take their defaults.
        assert_eq!(c.sharpness.power_iters, 20);
        assert_eq!(c.data.subset, SubsetKind::First);
        assert_eq!(c.c_values().len(), 41);
    }

    #[test]
    fn empty_text_is_the_default_config() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c, Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "[model]\ndepth = [2, 4\n").unwrap();
        let err = Config::load(&path, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("broken.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn missing_file_names_it() {
        let err = Config::load(Path::new("/nonexistent/sweep.toml"), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/sweep.toml"));
    }

    #[test]
    fn unknown_key_names_the_full_dotted_key() {
        let text = EXAMPLE.replace("width = [64", "widht = [64");
        let err = Config::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
        assert!(err.to_string().contains("`model.widht`"), "{err}");

        let err = Config::from_toml_str("[grid]\nlog2_c = { start = 0.0, stop = 1.0, stpe = 0.1 }")
            .unwrap_err();
        assert!(err.to_string().contains("`grid.log2_c.stpe`"), "{err}");

        let err = Config::from_toml_str("[modle]\ndepth = [2]").unwrap_err();
        assert!(err.to_string().contains("`modle`"), "{err}");
    }

    #[test]
    fn bad_type_or_variant_names_the_key() {
        let text = EXAMPLE.replace(r#"activation = "relu""#, r#"activation = "gelu""#);
        let err = Config::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, ConfigError::BadValue { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("model.activation"), "{msg}");
        assert!(msg.contains("gelu"), "{msg}");
        assert!(msg.contains("line 10"), "{msg}");

        let err = Config::from_toml_str("[train]\nsteps = \"ten\"").unwrap_err();
        assert!(err.to_string().contains("train.steps"), "{err}");
    }

    #[test]
    fn validation_errors_name_their_key() {
        let cases: &[(&[&str], &str)] = &[
            (&["model.depth=[2, 0]"], "model.depth: must be >= 1 (got 0)"),
            (&["model.depth=[]"], "model.depth: must not be empty"),
            (&["model.width=[64, 64]"], "model.width: duplicate value 64"),
            (&["train.seeds=[1, 1]"], "train.seeds: duplicate value 1"),
            (
                &["train.momentum=0.9"],
                "train.momentum: is only used with train.optimizer = \"momentum\"",
            ),
            (
                &["train.optimizer=\"momentum\"", "train.momentum=-0.1"],
                "train.momentum: must be in [0, 1) with train.optimizer = \"momentum\" (got -0.1)",
            ),
            (
                &["train.optimizer=\"momentum\"", "train.momentum=1.0"],
                "train.momentum: must be in [0, 1)",
            ),
            (
                &["train.sgd_seeds=[]"],
                "train.sgd_seeds: must not be empty",
            ),
            (
                &["train.batch_size=0"],
                "train.batch_size: must be >= 1 (got 0)",
            ),
            (
                &["train.batch_size=5000"],
                "train.batch_size: must be <= data.n_train",
            ),
            (
                &["train.divergence_loss=0.0"],
                "train.divergence_loss: must be > 0",
            ),
            (&["data.n_train=0"], "data.n_train: must be >= 1 (got 0)"),
            (
                &["sharpness.measure_n=0"],
                "sharpness.measure_n: must be >= 1",
            ),
            (&["sharpness.every=0"], "sharpness.every: must be >= 1"),
            (
                &["sharpness.tol=1.0"],
                "sharpness.tol: must be in (0, 1) (got 1)",
            ),
            (&["sharpness.tol=0.0"], "sharpness.tol: must be in (0, 1)"),
            (
                &["model.loss_scale=-1.0"],
                "model.loss_scale: must be finite and > 0",
            ),
            (
                &["model.sigma2_hidden=0.0"],
                "model.sigma2_hidden: must be finite and > 0",
            ),
            (
                &["model.sigma2_readout=nan"],
                "model.sigma2_readout: must be finite and > 0",
            ),
            (
                &["grid.log2_c={start=0.0,stop=1.0,step=0.0}"],
                "grid.log2_c.step: must be > 0",
            ),
            (
                &["grid.log2_c={start=1.0,stop=0.0,step=0.1}"],
                "grid.log2_c.stop: must be >= start",
            ),
            (
                &["grid.c=[1.0, 2.0]"],
                "grid.c: give either grid.c or grid.log2_c, not both",
            ),
            (
                &["model.kind=uv", "model.depth=[4]"],
                "model.depth: the uv model always has 2 layers",
            ),
            (
                &[
                    "model.kind=uv",
                    "model.depth=[2]",
                    "model.loss=\"cross-entropy\"",
                ],
                "model.loss: the uv model has one output and the MSE",
            ),
        ];
        for (overrides, expected) in cases {
            let msg = error_with(overrides);
            assert!(
                msg.contains(expected),
                "{overrides:?}: got {msg:?}, want {expected:?}"
            );
        }
    }

    #[test]
    fn adam_errors_name_their_key() {
        let adam = "train.optimizer=\"adam\"";
        let cases: &[(&[&str], &str)] = &[
            (
                &["train.adam_beta1=0.5"],
                "train.adam_beta1: is only used with train.optimizer = \"adam\" (got 0.5)",
            ),
            (
                &["train.adam_eps=1e-6"],
                "train.adam_eps: is only used with train.optimizer = \"adam\"",
            ),
            (
                &["sharpness.preconditioned=true"],
                "sharpness.preconditioned: needs train.optimizer = \"adam\"",
            ),
            (
                &[adam, "train.adam_beta1=1.0"],
                "train.adam_beta1: must be in [0, 1) (got 1)",
            ),
            (
                &[adam, "train.adam_beta2=-0.1"],
                "train.adam_beta2: must be in [0, 1) (got -0.1)",
            ),
            (
                &[adam, "train.adam_eps=0.0"],
                "train.adam_eps: must be > 0 and finite (got 0)",
            ),
            (
                &[adam, "train.momentum=0.9"],
                "train.momentum: is heavy-ball momentum, not used with \"adam\"",
            ),
        ];
        for (overrides, expected) in cases {
            let msg = error_with(overrides);
            assert!(
                msg.contains(expected),
                "{overrides:?}: got {msg:?}, want {expected:?}"
            );
        }
        // Adam's keys at their defaults stay out of the config text (old hashes hold);
        // set, they are in it and round-trip.
        let mut cfg = Config::default();
        cfg.train.optimizer = Optimizer::Adam;
        let text = cfg.to_toml_string();
        assert!(!text.contains("adam_beta1"), "{text}");
        cfg.train.adam_beta2 = 0.99;
        cfg.sharpness.preconditioned = true;
        let back = Config::from_toml_str(&cfg.to_toml_string()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn explicit_grid_c_validation() {
        let base = "[grid]\n";
        for (c, expected) in [
            ("c = []", "grid.c: must not be empty"),
            (
                "c = [1.0, 0.0]",
                "grid.c: every c must be finite and > 0 (got 0)",
            ),
            (
                "c = [1.0, inf]",
                "grid.c: every c must be finite and > 0 (got inf)",
            ),
        ] {
            let err = Config::from_toml_str(&format!("{base}{c}")).unwrap_err();
            assert!(err.to_string().contains(expected), "{c}: {err}");
        }
        let mut none = Config::default();
        none.grid.log2_c = None;
        let err = none.validate().unwrap_err();
        assert!(err.to_string().contains("neither is set"), "{err}");
    }

    #[test]
    fn explicit_grid_c_replaces_the_default_range() {
        let c = Config::from_toml_str("[grid]\nc = [4.0, 1.0, 2.0, 2.0]").unwrap();
        assert_eq!(c.grid.log2_c, None);
        assert_eq!(c.c_values(), vec![1.0, 2.0, 4.0]);
        // With neither given, the default range applies.
        let d = Config::from_toml_str("[grid]\nstop_after_divergence = true").unwrap();
        assert_eq!(d.grid.log2_c, GridConfig::default().log2_c);
    }

    #[test]
    fn uv_model_defaults_to_two_layers() {
        let c = Config::from_toml_str("[model]\nkind = \"uv\"\nwidth = [100]").unwrap();
        assert_eq!(c.model.depth, vec![2]);
        let c = Config::from_toml_str("[model]\nkind = \"uv\"\ndepth = [2]").unwrap();
        assert_eq!(c.model.depth, vec![2]);
    }

    #[test]
    fn overrides_nested_arrays_inline_tables_and_bare_strings() {
        let c = with(&[
            "model.width=[128]",
            "train.steps=50",
            "data.dataset=\"mnist\"",
            "sharpness.tol=1e-4",
            "grid.log2_c={start=0.0,stop=1.0,step=0.5}",
            "output.path=/tmp/out.h5",
        ]);
        assert_eq!(c.model.width, vec![128]);
        assert_eq!(c.train.steps, 50);
        assert_eq!(c.data.dataset, DatasetKind::Mnist);
        assert_eq!(c.sharpness.tol, 1e-4);
        assert_eq!(c.c_values(), vec![1.0, 2f64.sqrt(), 2.0]);
        assert_eq!(c.output.path, PathBuf::from("/tmp/out.h5"));

        let c = with(&["data.dataset=cifar10", "train.sgd_seeds=[7, 8]"]);
        assert_eq!(c.data.dataset, DatasetKind::Cifar10);
        assert_eq!(c.train.sgd_seeds, Some(vec![7, 8]));
        // Later overrides win.
        let c = with(&["train.steps=3", "train.steps=4"]);
        assert_eq!(c.train.steps, 4);
    }

    #[test]
    fn override_of_nonexistent_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let err = Config::load(&path, &["train.stpes=5".to_string()]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
        assert!(err.to_string().contains("`train.stpes`"), "{err}");
        let err = Config::load(&path, &["optim.lr=0.1".to_string()]).unwrap_err();
        assert!(err.to_string().contains("`optim`"), "{err}");
    }

    #[test]
    fn malformed_override_is_reported() {
        let mut t = toml::Table::new();
        let err = apply_override(&mut t, "train.steps").unwrap_err();
        assert!(matches!(err, ConfigError::Override { .. }));
        assert!(err.to_string().contains("key=value"), "{err}");
        assert!(apply_override(&mut t, "train..steps=1").is_err());
        apply_override(&mut t, "train.steps=1").unwrap();
        let err = apply_override(&mut t, "train.steps.x=1").unwrap_err();
        assert!(
            err.to_string().contains("`train.steps` is a value"),
            "{err}"
        );
    }

    #[test]
    fn effective_text_includes_overrides_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let (c, text) = Config::load(&path, &["train.steps=7".to_string()]).unwrap();
        assert!(text.contains("steps = 7"), "{text}");
        assert_eq!(Config::from_toml_str(&text).unwrap(), c);
    }

    #[test]
    fn log2_range_gives_exact_endpoints() {
        let c = with(&["grid.log2_c={start=0.0,stop=1.0,step=0.1}"]);
        let v = c.c_values();
        assert_eq!(v.len(), 11);
        assert_eq!(v[0], 1.0);
        assert_eq!(v[10], 2.0);
        assert_eq!(v[5], 0.5f64.exp2());
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        // Accumulation error in start + i*step must not drop or add the endpoint.
        let c = with(&["grid.log2_c={start=0.3,stop=0.9,step=0.3}"]);
        assert_eq!(
            c.c_values(),
            vec![0.3f64.exp2(), 0.6f64.exp2(), 0.9f64.exp2()]
        );
    }

    #[test]
    fn seed_pairs_diagonal_or_product() {
        let c = example();
        assert_eq!(c.seed_pairs(), vec![(1, 1), (2, 2), (3, 3)]);
        let c = with(&["train.seeds=[1, 2]", "train.sgd_seeds=[10, 20, 30]"]);
        assert_eq!(
            c.seed_pairs(),
            vec![(1, 10), (1, 20), (1, 30), (2, 10), (2, 20), (2, 30)]
        );
    }

    #[test]
    fn round_trip_through_toml_text() {
        for c in [
            example(),
            Config::default(),
            Config::from_toml_str(
                "[grid]\nc = [1.5, 3.0]\n[train]\nsgd_seeds = [4]\n[model]\nkind = \"uv\"",
            )
            .unwrap(),
        ] {
            let text = c.to_toml_string();
            assert_eq!(Config::from_toml_str(&text).unwrap(), c, "{text}");
        }
    }
}
