//! The parameters of the analysis ([`AnalysisParams`]) and of its regime detection
//! ([`RegimeParams`]), all stored with its output.

use serde::Serialize;

/// Parameters of the analysis (all stored with its output).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalysisParams {
    /// ε of the sharpness-catapult criterion λ_t > (1+ε)·λ₀ (0 in the authors' main demo,
    /// 0.05 in their zero-readout demo).
    pub eps_sharp: f64,
    /// Early window T: c_loss and c_sharp look at steps 1..=min(T, steps).
    pub early_window: usize,
    /// c below which a run is lazy-like: the update rule's edge of stability (2 for SGD;
    /// [`crate::optim::Rule::edge`]).
    pub lazy_c: f64,
    /// The edge per `grid.axes` point when an axis changes the update rule (empty: every
    /// point's is `lazy_c`).
    pub lazy_c_by_point: Vec<f64>,
    /// A bracket c_at/c_below above this ratio is flagged as coarse (2^0.25).
    pub max_bracket_ratio: f64,
    /// Regime detection for long runs.
    pub regimes: RegimeParams,
}

impl Default for AnalysisParams {
    fn default() -> Self {
        AnalysisParams {
            eps_sharp: 0.0,
            early_window: 10,
            lazy_c: 2.0,
            lazy_c_by_point: Vec::new(),
            max_bracket_ratio: 2f64.powf(0.25),
            regimes: RegimeParams::default(),
        }
    }
}

impl AnalysisParams {
    /// The lazy edge of axis point `point`.
    pub fn lazy_c_at(&self, point: u32) -> f64 {
        self.lazy_c_by_point
            .get(point as usize)
            .copied()
            .unwrap_or(self.lazy_c)
    }
}

/// Parameters of the regime detection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegimeParams {
    /// Runs are analysed only when `Results::steps` is at least this (the regimes need
    /// steps ≫ the early window).
    pub min_steps: usize,
    /// Transient ends once the relative change of λ per step stays below this…
    pub transient_delta: f64,
    /// …over a window of this many steps.
    pub transient_window: usize,
    /// Saturation is read at τ = round(K/c) (c·τ = K).
    pub k: f64,
    /// Progressive sharpening: λ rises by more than this fraction…
    pub sharpening_fraction: f64,
    /// …over a window of this many steps, starting at or after τ.
    pub sharpening_window: usize,
    /// Fraction of the measured steps (the last ones) averaged for the late level.
    pub late_fraction: f64,
}

impl Default for RegimeParams {
    /// K = 200 puts τ in 12–100 steps for c in 2–16; set it explicitly to match a study.
    fn default() -> Self {
        RegimeParams {
            min_steps: 20,
            transient_delta: 0.01,
            transient_window: 10,
            k: 200.0,
            sharpening_fraction: 0.1,
            sharpening_window: 50,
            late_fraction: 0.1,
        }
    }
}
