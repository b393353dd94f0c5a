//! What a network is: its shape and options ([`MlpSpec`], [`NetOptions`] and their
//! enums, which the config embeds as they are), parameterizations (sp / ntk), readout
//! variants, and the seeded initialization of the contiguous parameter vector.

use super::Float;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

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

/// The training loss (`model.loss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// α/(2·m·k) · Σ (f − y)²: half the mean squared error over examples and outputs.
    #[default]
    Mse,
    /// α/m · Σ_examples −Σ_i y_i log softmax(f)_i: softmax cross-entropy, mean over examples.
    CrossEntropy,
}

/// Weight parameterization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// Standard: W ~ N(0, σ²/fan_in), h = W x.
    Sp,
    /// NTK: W ~ N(0, 1), h = σ/√fan_in · W x.
    Ntk,
    /// μP for SGD with one global learning rate (Yang & Hu 2021, "Tensor Programs IV",
    /// Table 3, the μP column in abc form: a = −½, 0, ½ and b = ½ for the input, hidden and
    /// output weights, c = 0), with the finite fan-in d of the input layer kept as in sp:
    /// input h = √n · W x, W ~ N(0, σ²/(d·n)); hidden h = W a, W ~ N(0, σ²/n) (as sp);
    /// readout f = W a / √n, W ~ N(0, σ²/n). n = width. At initialization the input and
    /// hidden layers are sp's, the readout's effective variance is σ²/n² instead of σ²/n.
    /// A one-layer network (no hidden width) is sp's.
    Mup,
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

/// Everything about a network besides its shape: nonlinearity, parameterization, init
/// variances, biases and the loss scale. The config's `[model]` section holds these keys
/// as they are (flattened), and every network of a sweep is built with them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetOptions {
    /// Hidden nonlinearity φ.
    pub activation: Activation,
    /// sp or ntk.
    pub parameterization: Parameterization,
    /// Readout initialization.
    pub readout: Readout,
    /// Whether every layer has a (zero-initialised) bias.
    pub bias: bool,
    /// σ² of the hidden layers (including the first).
    pub sigma2_hidden: f64,
    /// σ² of the readout.
    pub sigma2_readout: f64,
    /// α: the loss is α times the half-mean squared error (or the cross-entropy); λ
    /// scales by α, the trajectories L_t/L₀ and λ_t/λ₀ do not change.
    pub loss_scale: f64,
    /// The loss (left out of the config text when it is the MSE: `config::keys`).
    pub loss: Loss,
}

impl Default for NetOptions {
    /// ReLU in standard parameterization with the paper's σ² (2 hidden, 1 readout), no
    /// biases, α = 1.
    fn default() -> Self {
        NetOptions {
            activation: Activation::Relu,
            parameterization: Parameterization::Sp,
            readout: Readout::Default,
            bias: false,
            sigma2_hidden: 2.0,
            sigma2_readout: 1.0,
            loss_scale: 1.0,
            loss: Loss::Mse,
        }
    }
}

/// Shape and options of one network.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpSpec {
    /// Input features d_in.
    pub input_dim: usize,
    /// Hidden width w.
    pub width: usize,
    /// Weight layers d (≥ 1; d = 1 is a linear/affine model).
    pub depth: usize,
    /// Outputs k.
    pub outputs: usize,
    /// Nonlinearity, parameterization, init and loss scale.
    pub net: NetOptions,
}

impl MlpSpec {
    /// A network of this shape with the default [`NetOptions`].
    pub fn new(input_dim: usize, width: usize, depth: usize, outputs: usize) -> Self {
        MlpSpec {
            input_dim,
            width,
            depth,
            outputs,
            net: NetOptions::default(),
        }
    }

    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        layout(self).1
    }

    /// Multiply–add count of one forward pass per example (Σ rows·cols over layers).
    pub fn macs_per_example(&self) -> usize {
        layout(self).0.iter().map(|l| l.rows * l.cols).sum()
    }
}

/// Where one weight layer lives in the parameter vector and how it enters the forward
/// pass: h = scale · W a (+ b).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerLayout {
    /// Output features (rows of W).
    pub rows: usize,
    /// Input features = fan_in (columns of W).
    pub cols: usize,
    /// Offset of W (column-major rows × cols) in the parameter vector.
    pub w_offset: usize,
    /// Offset of the bias (rows entries), if the network has biases.
    pub b_offset: Option<usize>,
    /// Forward multiplier: 1 for sp, σ/√fan_in for ntk.
    pub scale: f64,
    /// Standard deviation of the Gaussian initialization of W (0 for a zero readout).
    pub init_std: f64,
}

/// Layer layouts of a network, first layer first, and the total parameter count.
pub fn layout(spec: &MlpSpec) -> (Vec<LayerLayout>, usize) {
    let mut layers = Vec::with_capacity(spec.depth);
    let mut offset = 0;
    for l in 0..spec.depth {
        let cols = if l == 0 { spec.input_dim } else { spec.width };
        let readout = l + 1 == spec.depth;
        let rows = if readout { spec.outputs } else { spec.width };
        let sigma2 = if readout {
            spec.net.sigma2_readout
        } else {
            spec.net.sigma2_hidden
        };
        let n = spec.width as f64;
        let (scale, mut init_std) = match spec.net.parameterization {
            Parameterization::Sp => (1.0, (sigma2 / cols as f64).sqrt()),
            Parameterization::Ntk => ((sigma2 / cols as f64).sqrt(), 1.0),
            Parameterization::Mup if spec.depth == 1 => (1.0, (sigma2 / cols as f64).sqrt()),
            Parameterization::Mup if l == 0 => (n.sqrt(), (sigma2 / (cols as f64 * n)).sqrt()),
            Parameterization::Mup if readout => (1.0 / n.sqrt(), (sigma2 / n).sqrt()),
            Parameterization::Mup => (1.0, (sigma2 / cols as f64).sqrt()),
        };
        if readout && spec.net.readout == Readout::Zero {
            init_std = 0.0;
        }
        let w_offset = offset;
        offset += rows * cols;
        let b_offset = if spec.net.bias {
            offset += rows;
            Some(offset - rows)
        } else {
            None
        };
        layers.push(LayerLayout {
            rows,
            cols,
            w_offset,
            b_offset,
            scale,
            init_std,
        });
    }
    (layers, offset)
}

/// A freshly initialized parameter vector: W ~ N(0, init_std²) layer by layer from one
/// xoshiro256++ stream seeded with `seed`, biases zero. The Gaussian draws are made in
/// f64 and rounded, so f32 and f64 networks start from the same point up to rounding.
pub fn init_params<T: Float>(spec: &MlpSpec, seed: u64) -> Vec<T> {
    let (layers, n) = layout(spec);
    let mut p = vec![T::of(0.0); n];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for layer in &layers {
        let w = &mut p[layer.w_offset..layer.w_offset + layer.rows * layer.cols];
        if layer.init_std == 0.0 {
            continue;
        }
        for x in w.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *x = T::of(z * layer.init_std);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Variance of the effective weights s·W of `layer` (mean zero).
    fn effective_variance(p: &[f64], layer: &LayerLayout) -> f64 {
        let w = &p[layer.w_offset..layer.w_offset + layer.rows * layer.cols];
        layer.scale * layer.scale * w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64
    }

    #[test]
    fn mup_init_statistics() {
        let d_in = 50;
        for n in [64usize, 256] {
            let mut spec = MlpSpec::new(d_in, n, 3, 10);
            spec.net.parameterization = Parameterization::Mup;
            let (layers, _) = layout(&spec);
            let nf = n as f64;
            // multipliers √n, 1, 1/√n (Tensor Programs IV, Table 3: a = −½, 0, ½)
            assert!((layers[0].scale - nf.sqrt()).abs() < 1e-12);
            assert_eq!(layers[1].scale, 1.0);
            assert!((layers[2].scale - 1.0 / nf.sqrt()).abs() < 1e-12);
            // raw init std √(σ²/(d·n)), √(σ²/n), √(σ²/n) (b = ½ everywhere)
            assert!((layers[0].init_std - (2.0 / (d_in as f64 * nf)).sqrt()).abs() < 1e-12);
            assert!((layers[1].init_std - (2.0 / nf).sqrt()).abs() < 1e-12);
            assert!((layers[2].init_std - (1.0 / nf).sqrt()).abs() < 1e-12);
            // Sampled: effective variances σ²/d and σ²/n (as sp), readout σ²/n².
            let p: Vec<f64> = init_params(&spec, 5);
            let want = [2.0 / d_in as f64, 2.0 / nf, 1.0 / (nf * nf)];
            for (l, w) in layers.iter().zip(want) {
                let got = effective_variance(&p, l);
                assert!((got / w - 1.0).abs() < 0.1, "width {n}: {got} vs {w}");
            }
            // sp's readout is σ²/n: μP's is n times smaller.
            spec.net.parameterization = Parameterization::Sp;
            let (sp_layers, _) = layout(&spec);
            let p: Vec<f64> = init_params(&spec, 5);
            let sp = effective_variance(&p, &sp_layers[2]);
            assert!((sp * nf * nf / nf - 1.0).abs() < 0.1, "{sp}");
        }
        // One layer: no width to scale, sp.
        let mut one = MlpSpec::new(d_in, 8, 1, 10);
        one.net.parameterization = Parameterization::Mup;
        let (l, _) = layout(&one);
        assert_eq!(l[0].scale, 1.0);
        assert!((l[0].init_std - (1.0 / d_in as f64).sqrt()).abs() < 1e-12);
    }
}
