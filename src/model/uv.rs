//! The uv model of Lewkowycz et al. (2020): f = n^(−1/2) vᵀu x on one example (x, y) = (1, 0)
//! with loss ½ f². It is the two-layer linear network of width n in NTK parameterization
//! with σ² = 1 on both layers, so it runs through the generic MLP code; this module gives
//! that network and the model's closed-form gradient-descent map, the analytic anchor
//! of the catapult phase (lazy for c < 2, catapult for 2 < c < 4, divergent for c > 4).

use super::param::{Activation, MlpSpec, NetOptions, Parameterization};

/// The uv model of width `n` as an [`MlpSpec`] (input 1, output 1, linear, NTK, σ² = 1).
pub fn uv_spec(n: usize) -> MlpSpec {
    MlpSpec {
        input_dim: 1,
        width: n,
        depth: 2,
        outputs: 1,
        net: NetOptions {
            activation: Activation::Linear,
            parameterization: Parameterization::Ntk,
            sigma2_hidden: 1.0,
            sigma2_readout: 1.0,
            ..NetOptions::default()
        },
    }
}

/// The single training example (x, y) = (1, 0).
pub fn uv_data() -> (Vec<f64>, Vec<f64>) {
    (vec![1.0], vec![0.0])
}

/// (f, λ) of the uv model at parameters p = (u, v) (the MLP layout: u first, then v),
/// with λ = (‖u‖² + ‖v‖²)/n the NTK eigenvalue.
pub fn uv_state(p: &[f64], n: usize) -> (f64, f64) {
    let (u, v) = p.split_at(n);
    let f = u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / (n as f64).sqrt();
    let lam =
        (u.iter().map(|a| a * a).sum::<f64>() + v.iter().map(|a| a * a).sum::<f64>()) / n as f64;
    (f, lam)
}

/// One exact gradient-descent step of the uv model in (f, λ) coordinates:
/// f' = (1 − ηλ + η²f²/n) f,  λ' = λ + (η f²/n)(ηλ − 4).
pub fn uv_step(f: f64, lambda: f64, eta: f64, n: usize) -> (f64, f64) {
    let n = n as f64;
    (
        (1.0 - eta * lambda + eta * eta * f * f / n) * f,
        lambda + (eta * f * f / n) * (eta * lambda - 4.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mlp::MlpWorkspace;
    use crate::model::param::init_params;
    use faer::Par;

    #[test]
    fn generic_gradient_descent_reproduces_the_closed_form_map() {
        let n = 64;
        let spec = uv_spec(n);
        let (x, y) = uv_data();
        for c in [1.0, 2.5, 3.7] {
            let mut p: Vec<f64> = init_params(&spec, 3);
            let (mut f, mut lam) = uv_state(&p, n);
            let eta = c / lam;
            let mut ws = MlpWorkspace::<f64>::new(&spec, 1, Par::Seq);
            let mut g = vec![0.0; p.len()];
            for step in 0..30 {
                let loss = ws.loss_and_grad(&p, &x, &y, 1, &mut g);
                assert!(
                    (loss - 0.5 * f * f).abs() <= 1e-12 * (1.0 + loss),
                    "step {step}"
                );
                p.iter_mut().zip(&g).for_each(|(a, b)| *a -= eta * b);
                (f, lam) = uv_step(f, lam, eta, n);
                let (f2, lam2) = uv_state(&p, n);
                assert!(
                    (f2 - f).abs() <= 1e-9 * (1.0 + f.abs()),
                    "c={c} step {step}: f {f2} vs {f}"
                );
                assert!(
                    (lam2 - lam).abs() <= 1e-9 * lam,
                    "c={c} step {step}: λ {lam2} vs {lam}"
                );
            }
        }
    }
}
