//! The sweep configuration: a TOML file (serde, unknown keys rejected), `--set key=value`
//! overrides, and validation whose errors name the offending key.
//!
//! The key names are the public interface documented in the README.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

/// Hidden-layer nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// tanh(x)
    Tanh,
    /// identity
    Linear,
}

/// Weight parameterization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// Standard: W ~ N(0, σ²/fan_in), h = W x.
    Sp,
    /// NTK: W ~ N(0, 1), h = σ/√fan_in · W x.
    Ntk,
}

/// Readout (last layer) initialization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// Same rule as the other layers, with σ² = `sigma2_readout`.
    Default,
    /// All zeros (L₀ = 0.05 exactly for one-hot targets over 10 classes).
    Zero,
}

/// `[model]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Network family.
    pub kind: ModelKind,
    /// Depths (weight layers) swept.
    pub depth: Vec<u32>,
    /// Widths swept (for `uv`: the width n).
    pub width: Vec<u32>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Weight parameterization.
    pub parameterization: Parameterization,
    /// Readout initialization.
    pub readout: Readout,
    /// Whether layers have (zero-initialised) biases.
    pub bias: bool,
    /// σ² of the hidden layers (including the first).
    pub sigma2_hidden: f64,
    /// σ² of the readout layer.
    pub sigma2_readout: f64,
    /// Multiplier α of the loss (α · MSE); λ scales by α, trajectories do not change.
    pub loss_scale: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Mlp,
            depth: vec![4],
            width: vec![128],
            activation: Activation::Relu,
            parameterization: Parameterization::Sp,
            readout: Readout::Default,
            bias: false,
            sigma2_hidden: 2.0,
            sigma2_readout: 1.0,
            loss_scale: 1.0,
        }
    }
}

/// Floating-point precision of the network passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit (as the authors' JAX code).
    F32,
    /// 64-bit.
    F64,
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
    /// Measure loss and sharpness every this many steps.
    pub every: usize,
    /// Relative residual tolerance ‖Hv − λv‖/|λ| (Lanczos).
    pub tol: f64,
    /// Maximum Hessian-vector products per measurement (Lanczos).
    pub max_iter: usize,
    /// Iterations of the power method.
    pub power_iters: usize,
    /// Start each measurement from the previous top eigenvector.
    pub warm_start: bool,
}

impl Default for SharpnessConfig {
    fn default() -> Self {
        SharpnessConfig {
            method: SharpnessMethod::Lanczos,
            measure_n: 4096,
            measure_seed: 0,
            every: 1,
            tol: 1e-3,
            max_iter: 100,
            power_iters: 20,
            warm_start: true,
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

/// `[grid]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridConfig {
    /// c = 2^x over a range (exclusive with `c`).
    pub log2_c: Option<Log2Range>,
    /// Explicit list of c values (exclusive with `log2_c`).
    pub c: Option<Vec<f64>>,
    /// Skip larger c on a (depth, width, seed) line once one diverges.
    pub stop_after_divergence: bool,
    /// Points of the θ₀ → θ_T loss interpolation per run (0: none; needed for c_barrier).
    pub interp_points: usize,
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
