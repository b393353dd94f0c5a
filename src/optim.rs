//! The update rules of a run (`train.optimizer`) and their state: plain SGD, heavy-ball
//! momentum and Adam with its second moment initialised from the squared gradient at θ₀
//! ("GI-Adam", Kalra & Barkeshli 2024, *Why Warmup the Learning Rate?*), the learning
//! rate of a step under a linear warmup, and Adam's preconditioner, which defines the
//! preconditioned sharpness λ_max(P⁻¹H) that sets and tracks Adam's learning rate.

use crate::config::{invalid, ConfigError, Optimizer, TrainConfig};
use crate::model::Float;

/// Adam's hyperparameters (`train.adam_beta1`, `adam_beta2`, `adam_eps`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
}

/// The update rule of a run with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// θ ← θ − η g.
    Sgd,
    /// Heavy ball with this β: v ← βv + g, θ ← θ − η v.
    Momentum(f64),
    /// Adam (bias-corrected; GI-Adam's v₀ = g₀²).
    Adam(AdamParams),
}

impl TrainConfig {
    /// The update rule `[train]` configures (`train.optimizer` with its hyperparameters):
    /// the one place the config's choice becomes a [`Rule`]; training, the analysis's edge
    /// of stability, the preflight's memory estimate and the file's provenance read it.
    pub fn update_rule(&self) -> Rule {
        match self.optimizer {
            Optimizer::Sgd => Rule::Sgd,
            Optimizer::Momentum => Rule::Momentum(self.momentum),
            Optimizer::Adam => Rule::Adam(AdamParams {
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                eps: self.adam_eps,
            }),
        }
    }

    /// The keys of the update rule checked (the error names the first offending key):
    /// `train.momentum` only with heavy ball, in [0, 1); Adam's keys only with Adam
    /// ([`Self::check_adam`]); `preconditioned` (`sharpness.preconditioned`) only with Adam.
    pub(crate) fn check_rule(&self, preconditioned: bool) -> Result<(), ConfigError> {
        let t = self;
        match t.optimizer {
            Optimizer::Sgd if t.momentum != 0.0 => {
                return Err(invalid(
                    "train.momentum",
                    format!(
                        "is only used with train.optimizer = \"momentum\" (got momentum = {} with \"sgd\")",
                        t.momentum
                    ),
                ));
            }
            // β = 0 is plain SGD (an axis over β may include it).
            Optimizer::Momentum if !(t.momentum >= 0.0 && t.momentum < 1.0) => {
                return Err(invalid(
                    "train.momentum",
                    format!(
                        "must be in [0, 1) with train.optimizer = \"momentum\" (got {})",
                        t.momentum
                    ),
                ));
            }
            _ => {}
        }
        self.check_adam(preconditioned)
    }

    /// Adam's keys: only with `optimizer = "adam"` (at their defaults otherwise), β₁ and β₂
    /// in [0, 1), ε > 0; `sharpness.preconditioned` only with Adam.
    fn check_adam(&self, preconditioned: bool) -> Result<(), ConfigError> {
        use crate::config::{ADAM_BETA1, ADAM_BETA2, ADAM_EPS};
        let t = self;
        let keys = [
            ("train.adam_beta1", t.adam_beta1, ADAM_BETA1),
            ("train.adam_beta2", t.adam_beta2, ADAM_BETA2),
            ("train.adam_eps", t.adam_eps, ADAM_EPS),
        ];
        if t.optimizer != Optimizer::Adam {
            for (key, value, default) in keys {
                if value.to_bits() != default.to_bits() {
                    return Err(invalid(
                        key,
                        format!("is only used with train.optimizer = \"adam\" (got {value})"),
                    ));
                }
            }
            if preconditioned {
                return Err(invalid(
                    "sharpness.preconditioned",
                    "needs train.optimizer = \"adam\" (only Adam has a preconditioner)",
                ));
            }
            return Ok(());
        }
        if t.momentum != 0.0 {
            return Err(invalid(
                "train.momentum",
                format!(
                    "is heavy-ball momentum, not used with \"adam\" (its first moment is train.adam_beta1; got momentum = {})",
                    t.momentum
                ),
            ));
        }
        for (key, value, _) in &keys[..2] {
            if !(*value >= 0.0 && *value < 1.0) {
                return Err(invalid(key, format!("must be in [0, 1) (got {value})")));
            }
        }
        if !(t.adam_eps > 0.0 && t.adam_eps.is_finite()) {
            return Err(invalid(
                "train.adam_eps",
                format!("must be > 0 and finite (got {})", t.adam_eps),
            ));
        }
        Ok(())
    }
}

impl Rule {
    /// Whether the rule has a preconditioner (Adam), so that its `sharpness` and λ₀ are
    /// the preconditioned ones.
    pub fn preconditioned(&self) -> bool {
        matches!(self, Rule::Adam(_))
    }

    /// Bytes of the rule's state for `n_params` parameters of `float_bytes` each: heavy
    /// ball's v; Adam's m, v and measurement gradient, and its f64 preconditioner.
    pub fn state_bytes(&self, n_params: f64, float_bytes: f64) -> f64 {
        match self {
            Rule::Sgd => 0.0,
            Rule::Momentum(_) => n_params * float_bytes,
            Rule::Adam(_) => 3.0 * n_params * float_bytes + 8.0 * n_params,
        }
    }

    /// The rule in words, as the results file's provenance gives it.
    pub fn describe(&self) -> String {
        match self {
            Rule::Sgd => "plain SGD (no momentum, no weight decay)".to_string(),
            Rule::Momentum(beta) => format!(
                "SGD with heavy-ball momentum v <- beta v + g, theta <- theta - eta_t v, v_0 = 0, beta = {beta} (no weight decay)"
            ),
            Rule::Adam(a) => format!(
                "Adam (GI-Adam: second moment initialised from the squared measurement-set gradient at theta_0, v_0 = g_0^2, m_0 = 0): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, theta <- theta - eta_t m_hat/(sqrt(v_hat) + eps), m_hat = m/(1 - b1^t), v_hat = v/(1 - b2^t) at update t = 1, 2, ...; b1 = {}, b2 = {}, eps = {} (no weight decay)",
                a.beta1, a.beta2, a.eps
            ),
        }
    }
}

impl Rule {
    /// The rule's edge of stability in units of c = ηλ₀ on a quadratic (full batch): 2
    /// for SGD, 2(1 + β) for heavy ball, and for Adam with a frozen preconditioner
    /// (2 + 2β₁)/(1 − β₁) (Cohen et al. 2022; 38 at β₁ = 0.9). Below it a run is
    /// lazy-like; `analyze` labels the phases with it.
    pub fn edge(&self) -> f64 {
        match *self {
            Rule::Sgd => 2.0,
            Rule::Momentum(beta) => 2.0 * (1.0 + beta),
            Rule::Adam(a) => (2.0 + 2.0 * a.beta1) / (1.0 - a.beta1),
        }
    }
}

/// The learning rate of step t (t = 0 first) for the target η = c/λ₀: (t/T_w)·η during a
/// linear warmup of T_w steps, then η.
pub fn learning_rate(eta: f64, t: usize, warmup_steps: usize) -> f64 {
    if t < warmup_steps {
        eta * t as f64 / warmup_steps as f64
    } else {
        eta
    }
}

/// The state of a rule along a run: the heavy-ball velocity, or Adam's moments and the
/// number of updates made.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    rule: Rule,
    /// Heavy ball's v, or Adam's first moment m (empty for SGD).
    first: Vec<T>,
    /// Adam's second moment v (empty otherwise).
    second: Vec<T>,
    /// Updates made.
    count: usize,
}

impl<T: Float> OptimizerState<T> {
    /// The state before the first update of `n` parameters: v₀ = 0 for heavy ball; for
    /// Adam m₀ = 0 and v₀ = g₀² with `g0` the gradient at θ₀ (GI-Adam; required).
    pub fn new(rule: Rule, n: usize, g0: Option<&[T]>) -> Self {
        let zeros = || vec![T::of(0.0); n];
        let (first, second) = match rule {
            Rule::Sgd => (Vec::new(), Vec::new()),
            Rule::Momentum(_) => (zeros(), Vec::new()),
            Rule::Adam(_) => {
                let g0 = g0.expect("Adam's v₀ is the squared gradient at θ₀");
                assert_eq!(g0.len(), n, "gradient length");
                (zeros(), g0.iter().map(|g| *g * *g).collect())
            }
        };
        OptimizerState {
            rule,
            first,
            second,
            count: 0,
        }
    }

    /// The state's vectors (heavy ball's v or Adam's m; Adam's v) and update count, as a
    /// checkpoint stores them.
    pub fn parts(&self) -> (&[T], &[T], usize) {
        (&self.first, &self.second, self.count)
    }

    /// The state of `rule` on `n` parameters from [`OptimizerState::parts`]; an error
    /// names what does not fit the rule.
    pub fn from_parts(
        rule: Rule,
        n: usize,
        (first, second, count): (Vec<T>, Vec<T>, usize),
    ) -> Result<Self, String> {
        let (want_first, want_second) = match rule {
            Rule::Sgd => (0, 0),
            Rule::Momentum(_) => (n, 0),
            Rule::Adam(_) => (n, n),
        };
        if first.len() != want_first || second.len() != want_second {
            return Err(format!(
                "optimizer state of {} and {} values, where {rule:?} on {n} parameters has {want_first} and {want_second}",
                first.len(),
                second.len()
            ));
        }
        Ok(OptimizerState {
            rule,
            first,
            second,
            count,
        })
    }

    /// One update with step size `eta` (the warmup's η_t or the target η, in T):
    /// - SGD: θ ← θ − η g;
    /// - heavy ball: v ← βv + g, θ ← θ − η v;
    /// - Adam (update number t = count + 1): m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
    ///   θ ← θ − η m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ).
    pub fn step(&mut self, params: &mut [T], grad: &[T], eta: T) {
        match self.rule {
            Rule::Sgd => {
                for (p, g) in params.iter_mut().zip(grad) {
                    *p -= eta * *g;
                }
            }
            Rule::Momentum(beta) => {
                let beta = T::of(beta);
                for ((p, g), v) in params.iter_mut().zip(grad).zip(self.first.iter_mut()) {
                    *v = beta * *v + *g;
                    *p -= eta * *v;
                }
            }
            Rule::Adam(a) => {
                let t = (self.count + 1) as i32;
                let (b1, b2) = (T::of(a.beta1), T::of(a.beta2));
                let (c1, c2) = (T::of(1.0 - a.beta1), T::of(1.0 - a.beta2));
                let (bc1, bc2) = (T::of(1.0 - a.beta1.powi(t)), T::of(1.0 - a.beta2.powi(t)));
                let eps = T::of(a.eps);
                let moments = self.first.iter_mut().zip(self.second.iter_mut());
                for ((p, g), (m, v)) in params.iter_mut().zip(grad).zip(moments) {
                    *m = b1 * *m + c1 * *g;
                    *v = b2 * *v + c2 * *g * *g;
                    *p -= eta * (*m / bc1) / ((*v / bc2).sqrt() + eps);
                }
            }
        }
        self.count += 1;
    }

    /// Adam's preconditioner at the current state for the gradient `g` at θ_t, as the
    /// diagonal D = P^-½ of the symmetric form D H D of P⁻¹H; `None` for the other rules.
    /// P is the one the next update would apply to a gradient g (the authors'
    /// `compute_Pdiag`): P = (1 − β₁ᵗ⁺¹)(√(v′/(1 − β₂ᵗ⁺¹)) + ε) with v′ = β₂v + (1 − β₂)g²
    /// and t = `count`. At θ₀ under GI-Adam (v₀ = g₀², g = g₀) this is
    /// P₀ = (1 − β₁)(|g₀|/√(1 − β₂) + ε).
    pub fn preconditioner(&self, g: &[T]) -> Option<Vec<f64>> {
        let Rule::Adam(a) = self.rule else {
            return None;
        };
        let t = (self.count + 1) as i32;
        let (bc1, bc2) = (1.0 - a.beta1.powi(t), 1.0 - a.beta2.powi(t));
        Some(
            self.second
                .iter()
                .zip(g)
                .map(|(v, g)| {
                    let (v, g) = (v.to_f64(), g.to_f64());
                    let v_next = a.beta2 * v + (1.0 - a.beta2) * g * g;
                    let p = bc1 * ((v_next / bc2).sqrt() + a.eps);
                    1.0 / p.sqrt()
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_resolves_to_one_rule_with_its_hyperparameters() {
        let mut t = TrainConfig::default();
        assert_eq!(t.update_rule(), Rule::Sgd);
        t.optimizer = Optimizer::Momentum;
        t.momentum = 0.9;
        assert_eq!(t.update_rule(), Rule::Momentum(0.9));
        assert!((t.update_rule().edge() - 3.8).abs() < 1e-12);
        assert!(t.update_rule().describe().contains("beta = 0.9"));
        t.optimizer = Optimizer::Adam;
        t.adam_beta1 = 0.8;
        let rule = t.update_rule();
        assert_eq!(
            rule,
            Rule::Adam(AdamParams {
                beta1: 0.8,
                beta2: t.adam_beta2,
                eps: t.adam_eps
            })
        );
        assert!(rule.preconditioned() && !Rule::Momentum(0.9).preconditioned());
        assert!(rule.describe().contains("b1 = 0.8"));
        // State: none, one vector, or Adam's three vectors and its f64 preconditioner.
        assert_eq!(Rule::Sgd.state_bytes(10.0, 4.0), 0.0);
        assert_eq!(Rule::Momentum(0.9).state_bytes(10.0, 4.0), 40.0);
        assert_eq!(rule.state_bytes(10.0, 4.0), 200.0);
    }

    const ADAM: AdamParams = AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    #[test]
    fn sgd_and_heavy_ball_steps_by_hand() {
        let mut p = vec![1.0f64, -2.0];
        let mut sgd = OptimizerState::<f64>::new(Rule::Sgd, 2, None);
        sgd.step(&mut p, &[0.5, 1.0], 0.1);
        assert_eq!(p, vec![1.0 - 0.05, -2.0 - 0.1]);
        let mut p = vec![1.0f64];
        let mut hb = OptimizerState::<f64>::new(Rule::Momentum(0.5), 1, None);
        hb.step(&mut p, &[1.0], 0.1); // v = 1, θ = 0.9
        hb.step(&mut p, &[2.0], 0.1); // v = 0.5 + 2 = 2.5, θ = 0.65
        assert!((p[0] - 0.65).abs() < 1e-15, "{}", p[0]);
        assert_eq!(hb.parts().2, 2, "two updates counted");
    }

    #[test]
    fn edges_of_stability() {
        assert_eq!(Rule::Sgd.edge(), 2.0);
        assert_eq!(Rule::Momentum(0.9).edge(), 3.8);
        assert!((Rule::Adam(ADAM).edge() - 38.0).abs() < 1e-12);
    }

    #[test]
    fn adam_steps_by_hand() {
        // GI-Adam: v₀ = g₀² = 4 for g₀ = 2.
        let mut p = vec![1.0f64];
        let mut adam = OptimizerState::<f64>::new(Rule::Adam(ADAM), 1, Some(&[2.0]));
        let eta = 0.01;
        // Step 1 with g = 1: m = 0.1, v = 0.999·4 + 0.001 = 3.997;
        // m̂ = 0.1/0.1 = 1, v̂ = 3.997/0.001 = 3997.
        adam.step(&mut p, &[1.0], eta);
        let want1 = 1.0 - eta * 1.0 / (3997f64.sqrt() + 1e-8);
        assert!((p[0] - want1).abs() < 1e-15, "{} vs {want1}", p[0]);
        // Step 2 with g = −1: m = 0.09 − 0.1 = −0.01, v = 0.999·3.997 + 0.001;
        // m̂ = −0.01/0.19, v̂ = v/(1 − 0.999²).
        adam.step(&mut p, &[-1.0], eta);
        let v2 = 0.999 * 3.997 + 0.001;
        let m_hat = -0.01 / (1.0 - 0.81);
        let v_hat = v2 / (1.0 - 0.999f64 * 0.999);
        let want2 = want1 - eta * m_hat / (v_hat.sqrt() + 1e-8);
        assert!((p[0] - want2).abs() < 1e-14, "{} vs {want2}", p[0]);
        // Standard Adam (v₀ = 0) would move by η·sign(g) on its first step: GI-Adam's first
        // step is √(1 − β₂)·|g|/|g₀|-times smaller — its built-in warmup.
        assert!((1.0 - want1) < 0.02 * eta);
    }

    #[test]
    fn adam_preconditioner_by_hand_and_gi_at_init() {
        let g0 = [2.0f64, -0.5, 0.0];
        let adam = OptimizerState::<f64>::new(Rule::Adam(ADAM), 3, Some(&g0));
        let d = adam.preconditioner(&g0).unwrap();
        for (d, g) in d.iter().zip(g0) {
            // v′ = g₀² (up to rounding): P₀ = (1 − β₁)(|g₀|/√(1 − β₂) + ε).
            let p = 0.1 * (g.abs() / 0.001f64.sqrt() + 1e-8);
            assert!(
                (d - 1.0 / p.sqrt()).abs() <= 1e-12 * d,
                "{d} vs {}",
                1.0 / p.sqrt()
            );
        }
        // After one update (t = 1), with another gradient.
        let mut adam = adam;
        let mut p = vec![0.0; 3];
        adam.step(&mut p, &[1.0, 1.0, 1.0], 0.0);
        let g = [0.5, 0.5, 0.5];
        let d = adam.preconditioner(&g).unwrap();
        let v1 = 0.999 * 4.0 + 0.001;
        let v2 = 0.999 * v1 + 0.001 * 0.25;
        let p = (1.0 - 0.81) * ((v2 / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
        assert!((d[0] - 1.0 / p.sqrt()).abs() <= 1e-12 * d[0]);
        assert!(OptimizerState::<f64>::new(Rule::Sgd, 3, None)
            .preconditioner(&g)
            .is_none());
    }
}
