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
            early_window: crate::config::EARLY_WINDOW,
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

/// Parameters of the regime detection (README "Regimes": why these defaults).
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
    /// Progressive sharpening is a sustained rise: λ (smoothed) climbs more than this
    /// fraction above its minimum after the transient, and the late level stays above it.
    pub sharpening_fraction: f64,
    /// The onset is the last step before that rise at which the smoothed λ is within this
    /// fraction of its minimum.
    pub sharpening_band: f64,
    /// λ is smoothed by a centered running mean over this many steps (SGD noise).
    pub sharpening_window: usize,
    /// η·λ_t has reached the edge once it is at least (1 − this)·edge.
    pub edge_tolerance: f64,
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
            sharpening_band: 0.02,
            sharpening_window: 20,
            edge_tolerance: 0.05,
            late_fraction: 0.1,
        }
    }
}

impl RegimeParams {
    /// Checks every threshold; the error names the `analyze` flag of the one out of range.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("--saturation-k", self.k),
            ("--transient-delta", self.transient_delta),
            ("--sharpening-fraction", self.sharpening_fraction),
            ("--sharpening-band", self.sharpening_band),
        ];
        for (flag, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{flag} {v}: must be finite and > 0"));
            }
        }
        let unit = [
            ("--edge-tolerance", self.edge_tolerance),
            ("--late-fraction", self.late_fraction),
        ];
        for (flag, v) in unit {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(format!("{flag} {v}: must be in (0, 1)"));
            }
        }
        if self.sharpening_band >= self.sharpening_fraction {
            return Err(format!(
                "--sharpening-band {} must be below --sharpening-fraction {}",
                self.sharpening_band, self.sharpening_fraction
            ));
        }
        for (flag, v) in [
            ("--transient-window", self.transient_window),
            ("--sharpening-window", self.sharpening_window),
        ] {
            if v == 0 {
                return Err(format!("{flag} 0: must be at least 1 step"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_flag_out_of_range() {
        assert_eq!(RegimeParams::default().check(), Ok(()));
        let bad = |f: fn(&mut RegimeParams), flag: &str| {
            let mut p = RegimeParams::default();
            f(&mut p);
            let e = p.check().unwrap_err();
            assert!(e.starts_with(flag), "{e}");
        };
        bad(|p| p.k = f64::NAN, "--saturation-k");
        bad(|p| p.transient_delta = 0.0, "--transient-delta");
        bad(|p| p.edge_tolerance = 1.0, "--edge-tolerance");
        bad(|p| p.late_fraction = -0.1, "--late-fraction");
        bad(|p| p.sharpening_band = 0.5, "--sharpening-band");
        bad(|p| p.sharpening_window = 0, "--sharpening-window");
        bad(|p| p.transient_window = 0, "--transient-window");
    }
}
