//! Parameterizations (sp / ntk), readout variants and the seeded initialization of the
//! contiguous parameter vector.

use super::mlp::MlpSpec;
use super::Float;
use crate::config::{Parameterization, Readout};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

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
            spec.sigma2_readout
        } else {
            spec.sigma2_hidden
        };
        let (scale, mut init_std) = match spec.parameterization {
            Parameterization::Sp => (1.0, (sigma2 / cols as f64).sqrt()),
            Parameterization::Ntk => ((sigma2 / cols as f64).sqrt(), 1.0),
        };
        if readout && spec.readout == Readout::Zero {
            init_std = 0.0;
        }
        let w_offset = offset;
        offset += rows * cols;
        let b_offset = if spec.bias {
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
