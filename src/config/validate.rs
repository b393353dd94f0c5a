//! Validation of a parsed [`Config`]: every value checked, the error naming the first
//! offending key.

use super::round_decimals;
use super::schedule::MAX_PER_DECADE;
use super::{
    invalid, Config, ConfigError, DatasetKind, ModelKind, Optimizer, SearchKind, SharpnessMethod,
    SpectrumOperator, MAX_GRID_POINTS,
};
use super::{Schedule, EARLY_WINDOW};
use std::collections::BTreeSet;

/// Most SGD steps per run: step indices (`diverged_at`) are stored as i32, and Adam's
/// bias correction raises β to the update count t + 1 as an i32.
pub(crate) const MAX_STEPS: usize = i32::MAX as usize - 1;

/// Most products one measurement may use (`sharpness.max_iter`, `sharpness.power_iters`):
/// a step's `hvps` adds up to four measurements (Hessian, Gauss-Newton, bottom, plain
/// Hessian), each of at most this many products plus a block of k, in an i32.
pub(crate) const MAX_PRODUCTS: usize = 100_000_000;

impl Config {
    /// Checks every value; the error names the first offending key. With `grid.axes`, the
    /// axes and the config of every axis point are checked ([`Config::axis_points`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.grid.axes.is_empty() {
            return self.validate_with_axes();
        }
        self.validate_data()?;
        self.validate_model()?;
        self.validate_train()?;
        self.validate_sharpness()?;
        self.validate_grid()?;
        self.validate_search()?;
        if self.output.path.as_os_str().is_empty() {
            return Err(invalid("output.path", "must not be empty"));
        }
        Ok(())
    }

    fn validate_data(&self) -> Result<(), ConfigError> {
        let d = &self.data;
        if d.n_train == 0 {
            return Err(invalid("data.n_train", "must be >= 1 (got 0)"));
        }
        // Each input is standardised over its own coordinates (mean 0, variance 1): one
        // coordinate becomes 0, every network output is constant and λ₀ = 0.
        if d.dataset == DatasetKind::Synthetic && d.synthetic_input_dim < 2 {
            return Err(invalid(
                "data.synthetic_input_dim",
                format!(
                    "must be >= 2 (got {}): each input is standardised over its coordinates, which makes a 1-dimensional input 0 and the sharpness at initialization 0",
                    d.synthetic_input_dim
                ),
            ));
        }
        if d.dataset != DatasetKind::Synthetic && d.dir.as_os_str().is_empty() {
            return Err(invalid("data.dir", "must not be empty"));
        }
        Ok(())
    }

    fn validate_model(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        check_list("model.depth", &m.depth)?;
        check_list("model.width", &m.width)?;
        if m.kind == ModelKind::Uv && m.depth != [2] {
            return Err(invalid(
                "model.depth",
                format!(
                    "the uv model always has 2 layers: omit model.depth or set [2] (got {:?})",
                    m.depth
                ),
            ));
        }
        if m.kind == ModelKind::Uv && m.net.loss != crate::model::param::Loss::Mse {
            return Err(invalid(
                "model.loss",
                "the uv model has one output and the MSE: omit model.loss or set \"mse\"",
            ));
        }
        if m.net.parameterization == crate::model::param::Parameterization::Mup && m.net.bias {
            return Err(invalid(
                "model.bias",
                "biases are not implemented in μP (parameterization = \"mup\"): set bias = false",
            ));
        }
        check_positive("model.sigma2_hidden", m.net.sigma2_hidden)?;
        check_positive("model.sigma2_readout", m.net.sigma2_readout)?;
        check_positive("model.loss_scale", m.net.loss_scale)?;
        Ok(())
    }

    fn validate_train(&self) -> Result<(), ConfigError> {
        let (t, d, m) = (&self.train, &self.data, &self.model);
        if t.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be >= 1 (got 0)"));
        }
        if m.kind == ModelKind::Mlp && t.batch_size > d.n_train {
            return Err(invalid(
                "train.batch_size",
                format!(
                    "must be <= data.n_train = {} (got {}): batches are drawn without replacement",
                    d.n_train, t.batch_size
                ),
            ));
        }
        if t.steps == 0 {
            return Err(invalid("train.steps", "must be >= 1 (got 0)"));
        }
        if t.steps > MAX_STEPS {
            return Err(invalid(
                "train.steps",
                format!(
                    "must be at most {MAX_STEPS} (got {}): step counts are stored as 32-bit integers",
                    t.steps
                ),
            ));
        }
        check_distinct("train.seeds", &t.seeds)?;
        if let Some(sgd) = &t.sgd_seeds {
            check_distinct("train.sgd_seeds", sgd)?;
        }
        if t.divergence_loss.is_nan() || t.divergence_loss <= 0.0 {
            return Err(invalid(
                "train.divergence_loss",
                format!("must be > 0 (got {})", t.divergence_loss),
            ));
        }
        t.check_rule(self.sharpness.preconditioned)
    }

    /// The authors-notebook protocol measures one top eigenvalue of the Hessian by power
    /// iteration on SGD's own minibatches: what it cannot do is refused by key.
    fn validate_protocol(&self) -> Result<(), ConfigError> {
        use super::SharpnessProtocol;
        let s = &self.sharpness;
        if s.protocol != SharpnessProtocol::AuthorsNotebook {
            return Ok(());
        }
        let why = "is not available with sharpness.protocol = \"authors-notebook\" (one top Hessian eigenvalue by power iteration on SGD's minibatches)";
        let refused = [
            ("sharpness.k", s.k > 1),
            (
                "sharpness.operator",
                s.operator != SpectrumOperator::Hessian,
            ),
            ("sharpness.bottom", s.bottom),
            ("sharpness.preconditioned", s.preconditioned),
            ("train.optimizer", self.train.optimizer == Optimizer::Adam),
            ("model.kind", self.model.kind == ModelKind::Uv),
        ];
        if let Some((key, _)) = refused.iter().find(|(_, bad)| *bad) {
            return Err(invalid(key, why));
        }
        if self.train.sgd_seeds.is_some() {
            return Err(invalid(
                "train.sgd_seeds",
                "must be omitted with sharpness.protocol = \"authors-notebook\": λ₀'s examples are drawn from the SGD seed's stream, so each init seed runs with its own SGD seed",
            ));
        }
        Ok(())
    }

    fn validate_sharpness(&self) -> Result<(), ConfigError> {
        self.validate_protocol()?;
        let s = &self.sharpness;
        if s.measure_n == 0 {
            return Err(invalid("sharpness.measure_n", "must be >= 1 (got 0)"));
        }
        if s.every == 0 {
            return Err(invalid("sharpness.every", "must be >= 1 (got 0)"));
        }
        if s.per_decade > MAX_PER_DECADE {
            return Err(invalid(
                "sharpness.per_decade",
                format!("must be at most {MAX_PER_DECADE} (got {})", s.per_decade),
            ));
        }
        if s.per_decade > 0 && s.every != 1 {
            return Err(invalid(
                "sharpness.per_decade",
                format!(
                    "log-spaced steps replace sharpness.every after the dense part: give one of them (got per_decade = {}, every = {})",
                    s.per_decade, s.every
                ),
            ));
        }
        if !(s.tol > 0.0 && s.tol < 1.0) {
            return Err(invalid(
                "sharpness.tol",
                format!("must be in (0, 1) (got {})", s.tol),
            ));
        }
        for (key, value) in [
            ("sharpness.max_iter", s.max_iter),
            ("sharpness.power_iters", s.power_iters),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be >= 1 (got 0)"));
            }
            if value > MAX_PRODUCTS {
                return Err(invalid(
                    key,
                    format!(
                        "must be at most {MAX_PRODUCTS} (got {value}): the Hessian-vector products of a step (`hvps`) are counted in 32-bit integers"
                    ),
                ));
            }
        }
        if s.k == 0 || s.k > 64 {
            return Err(invalid(
                "sharpness.k",
                format!("must be between 1 and 64 (got {})", s.k),
            ));
        }
        let spectrum = s.k > 1 || s.operator != SpectrumOperator::Hessian || s.bottom;
        if spectrum && s.method != SharpnessMethod::Lanczos {
            return Err(invalid(
                "sharpness.method",
                "sharpness.k > 1, sharpness.operator and sharpness.bottom need method = \"lanczos\"",
            ));
        }
        Ok(())
    }

    fn validate_grid(&self) -> Result<(), ConfigError> {
        let g = &self.grid;
        match (&g.c, &g.log2_c) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "grid.c",
                    "give either grid.c or grid.log2_c, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "grid.log2_c",
                    "give one of grid.c or grid.log2_c (neither is set)",
                ))
            }
            (Some(c), None) => {
                if c.is_empty() {
                    return Err(invalid("grid.c", "must not be empty"));
                }
                if let Some(bad) = c.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                    return Err(invalid(
                        "grid.c",
                        format!("every c must be finite and > 0 (got {bad})"),
                    ));
                }
            }
            (None, Some(r)) => {
                for (name, v) in [("start", r.start), ("stop", r.stop), ("step", r.step)] {
                    if !v.is_finite() {
                        return Err(invalid(
                            &format!("grid.log2_c.{name}"),
                            format!("must be finite (got {v})"),
                        ));
                    }
                }
                if r.step <= 0.0 {
                    return Err(invalid(
                        "grid.log2_c.step",
                        format!("must be > 0 (got {})", r.step),
                    ));
                }
                if r.stop < r.start {
                    return Err(invalid(
                        "grid.log2_c.stop",
                        format!("must be >= start = {} (got {})", r.start, r.stop),
                    ));
                }
                let points = ((r.stop - r.start) / self.lattice_spacing()).floor() + 1.0;
                if points > MAX_GRID_POINTS as f64 {
                    let (key, what) = match g.search {
                        SearchKind::Grid => ("grid.log2_c.step", "step"),
                        SearchKind::Adaptive => ("grid.resolution", "resolution"),
                    };
                    return Err(invalid(
                        key,
                        format!(
                            "gives {points} c values, more than {MAX_GRID_POINTS}: {what} too small"
                        ),
                    ));
                }
                self.check_log2_c_values()?;
            }
        }
        Ok(())
    }

    /// The c values a `grid.log2_c` range gives ([`Config::c_values`]: x rounded to 10
    /// decimals, c = 2^x) obey `grid.c`'s rules: every c finite and > 0, no two equal. The
    /// range itself is finite, ordered and not too long (checked before).
    fn check_log2_c_values(&self) -> Result<(), ConfigError> {
        let r = self.grid.log2_c.as_ref().expect("called with grid.log2_c");
        let h = self.lattice_spacing();
        // The spacing key: a fixed grid's step, or an adaptive search's lattice (the step
        // halved until it is at most grid.resolution).
        let (key, what) = if self.grid.search == SearchKind::Adaptive && h < r.step {
            ("grid.resolution", "the search's lattice spacing")
        } else {
            ("grid.log2_c.step", "the step")
        };
        // x is rounded to 10 decimals: a finer spacing makes neighbours equal.
        if h < 1e-10 {
            return Err(invalid(
                key,
                format!(
                    "{what} in log2 c is {h:e}, finer than the 1e-10 to which grid.log2_c's values are rounded: neighbouring c values would be equal"
                ),
            ));
        }
        let c = self.c_values();
        let x_of = |i: usize| round_x(r.start + i as f64 * h);
        if let Some(i) = c.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(invalid(
                "grid.log2_c",
                format!(
                    "gives c = 2^{} = {}: every c must be finite and > 0, so log2 c must lie in [-1074, 1024) (got start = {}, stop = {})",
                    x_of(i),
                    c[i],
                    r.start,
                    r.stop
                ),
            ));
        }
        if let Some(i) = (1..c.len()).find(|&i| c[i] == c[i - 1]) {
            return Err(invalid(
                key,
                format!(
                    "grid.log2_c gives c = {} twice (log2 c = {} and {}): {what} {h} is too fine for c values this large or small to differ",
                    c[i],
                    x_of(i - 1),
                    x_of(i)
                ),
            ));
        }
        Ok(())
    }

    /// Checks the keys of an adaptive search (`grid.search = "adaptive"`).
    fn validate_search(&self) -> Result<(), ConfigError> {
        let g = &self.grid;
        if g.search != SearchKind::Adaptive {
            return Ok(());
        }
        if g.log2_c.is_none() {
            return Err(invalid(
                "grid.search",
                "an adaptive search needs grid.log2_c (its range, and its step is the coarse scan's), not grid.c",
            ));
        }
        if !(g.resolution.is_finite() && g.resolution > 0.0) {
            return Err(invalid(
                "grid.resolution",
                format!("must be finite and > 0 (got {})", g.resolution),
            ));
        }
        if !(g.eps_sharp.is_finite() && g.eps_sharp >= 0.0) {
            return Err(invalid(
                "grid.eps_sharp",
                format!("must be finite and >= 0 (got {})", g.eps_sharp),
            ));
        }
        if g.probes == 0 || g.probes > 64 {
            return Err(invalid(
                "grid.probes",
                format!("must be between 1 and 64 (got {})", g.probes),
            ));
        }
        if g.stop_after_divergence {
            return Err(invalid(
                "grid.stop_after_divergence",
                "an adaptive search already stops its coarse scan above the first divergence: remove this key",
            ));
        }
        self.validate_search_schedule()
    }

    /// An adaptive search decides c_loss and c_sharp from the loss and the sharpness at
    /// every step of the early window: a schedule that leaves one out is refused.
    fn validate_search_schedule(&self) -> Result<(), ConfigError> {
        let window = EARLY_WINDOW;
        let Some(t) = Schedule::of(self).first_sparse(window) else {
            return Ok(());
        };
        let s = &self.sharpness;
        let key = if s.per_decade > 0 {
            "sharpness.per_decade"
        } else {
            "sharpness.every"
        };
        Err(invalid(
            key,
            format!(
                "an adaptive search decides c_loss and c_sharp from the loss and the sharpness at every step of its early window 1..={}, but step {t} is not measured (every = {}, dense_steps = {}, per_decade = {}): set sharpness.dense_steps >= {} or sharpness.every = 1",
                window.min(self.train.steps),
                s.every,
                s.dense_steps,
                s.per_decade,
                window.min(self.train.steps)
            ),
        ))
    }
}

/// A list of depths or widths: nonempty, every entry >= 1, no duplicates.
fn check_list(key: &str, values: &[u32]) -> Result<(), ConfigError> {
    if values.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    if let Some(bad) = values.iter().find(|&&v| v == 0) {
        return Err(invalid(key, format!("must be >= 1 (got {bad})")));
    }
    // The file stores depths and widths as 32-bit signed integers.
    if let Some(bad) = values.iter().find(|&&v| i32::try_from(v).is_err()) {
        return Err(invalid(
            key,
            format!("must be at most {} (got {bad})", i32::MAX),
        ));
    }
    check_distinct(key, values)
}

/// Nonempty and without duplicates.
fn check_distinct<T: Ord + Copy + std::fmt::Display>(
    key: &str,
    values: &[T],
) -> Result<(), ConfigError> {
    if values.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    let mut seen = BTreeSet::new();
    for &v in values {
        if !seen.insert(v) {
            return Err(invalid(key, format!("duplicate value {v}")));
        }
    }
    Ok(())
}

/// Finite and > 0.
fn check_positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be finite and > 0 (got {value})"),
        ))
    }
}

/// A log2 c value as [`Config::c_values`] rounds it.
fn round_x(x: f64) -> f64 {
    round_decimals(x, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "[data]\nn_train = 256\n[model]\ndepth = [2]\nwidth = [8]\n\
        [train]\nbatch_size = 64\nsteps = 4\n[sharpness]\nmeasure_n = 64\n";

    /// The error of TINY with `extra` appended.
    fn error(extra: &str) -> String {
        match Config::from_toml_str(&format!("{TINY}{extra}")) {
            Ok(_) => panic!("expected an error for {extra:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_error(extra: &str, want: &[&str]) {
        let msg = error(extra);
        for w in want {
            assert!(msg.contains(w), "{extra:?}: want {w:?} in {msg:?}");
        }
    }

    #[test]
    fn log2_c_ranges_giving_infinite_zero_or_equal_c_are_refused() {
        assert_error(
            "[grid]\nlog2_c = { start = 1024.0, stop = 1025.0, step = 1.0 }\n",
            &["grid.log2_c:", "2^1024 = inf", "finite and > 0"],
        );
        assert_error(
            "[grid]\nlog2_c = { start = -1080.0, stop = -1079.0, step = 1.0 }\n",
            &["grid.log2_c:", "2^-1080 = 0", "finite and > 0"],
        );
        // The stop can be reached: 2^1023.9 is finite, 2^1024 is not.
        assert_error(
            "[grid]\nlog2_c = { start = 1023.0, stop = 1024.0, step = 0.5 }\n",
            &["grid.log2_c:", "2^1024 = inf"],
        );
        // Rounded to 10 decimals these x collapse to a few values.
        assert_error(
            "[grid]\nlog2_c = { start = 0.0, stop = 0.0, step = 2e-11 }\n",
            &["grid.log2_c.step:", "2e-11", "equal"],
        );
        // Distinct x, but 2^x rounds to the same subnormal c.
        assert_error(
            "[grid]\nlog2_c = { start = -1074.0, stop = -1073.9, step = 0.01 }\n",
            &["grid.log2_c.step:", "twice"],
        );
        // The extremes themselves are fine.
        let ok = Config::from_toml_str(&format!(
            "{TINY}[grid]\nlog2_c = {{ start = -1074.0, stop = 1023.0, step = 1.0 }}\n"
        ))
        .unwrap();
        let c = ok.c_values();
        assert_eq!(c.len(), 2098);
        assert!(c.iter().all(|v| v.is_finite() && *v > 0.0));
    }

    #[test]
    fn an_adaptive_lattice_finer_than_the_rounding_is_refused() {
        assert_error(
            "[grid]\nsearch = \"adaptive\"\nresolution = 1e-11\n\
             log2_c = { start = 0.0, stop = 0.0, step = 1.0 }\n",
            &["grid.resolution:", "lattice", "1e-10"],
        );
        assert_error(
            "[grid]\nsearch = \"adaptive\"\nlog2_c = { start = 1023.5, stop = 1024.5, step = 0.5 }\n",
            &["grid.log2_c:", "= inf"],
        );
    }

    #[test]
    fn the_measurement_schedule_keys_are_checked_by_name() {
        assert_error(
            "per_decade = 1001\n",
            &["sharpness.per_decade:", "at most 1000", "1001"],
        );
        assert_error(
            "every = 5\nper_decade = 10\n",
            &["sharpness.per_decade:", "every = 5", "one of them"],
        );
        assert_error("every = 0\n", &["sharpness.every: must be >= 1"]);
        let text = TINY.replace("steps = 4", "steps = 4\nloss_every = -1");
        let msg = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(msg.contains("loss_every"), "{msg}");
        let ok = format!("{TINY}every = 1\ndense_steps = 3\nper_decade = 10\n");
        let cfg = Config::from_toml_str(&ok.replace("steps = 4", "steps = 4\nloss_every = 0"));
        cfg.unwrap();
    }

    #[test]
    fn an_adaptive_search_refuses_a_schedule_that_leaves_out_a_step_of_its_early_window() {
        let long = TINY.replace("steps = 4", "steps = 100");
        let search =
            "[grid]\nsearch = \"adaptive\"\nlog2_c = { start = 0.0, stop = 3.0, step = 0.5 }\n";
        let with = |sharpness: &str| {
            let text = long.replace("measure_n = 64\n", &format!("measure_n = 64\n{sharpness}"));
            Config::from_toml_str(&format!("{text}{search}")).map(|_| ())
        };
        let msg = with("every = 2\n").unwrap_err().to_string();
        for want in [
            "sharpness.every:",
            "early window 1..=10",
            "step 1",
            "dense_steps >= 10",
        ] {
            assert!(msg.contains(want), "{want:?} in {msg}");
        }
        let msg = with("every = 10\ndense_steps = 8\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("sharpness.every:") && msg.contains("step 9 "),
            "{msg}"
        );
        let msg = with("per_decade = 3\ndense_steps = 4\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("sharpness.per_decade:") && msg.contains("step 6 "),
            "{msg}"
        );
        // Dense through the window, anything after it.
        with("every = 10\ndense_steps = 10\n").unwrap();
        with("every = 7\ndense_steps = 10\n").unwrap();
        with("per_decade = 5\ndense_steps = 12\n").unwrap();
        with("").unwrap();
        // A run shorter than the window needs only its own steps dense.
        let short = Config::from_toml_str(&format!("{TINY}every = 4\ndense_steps = 4\n{search}"));
        short.unwrap();
        // The loss schedule does not matter: the loss is measured with every sharpness.
        let text = long.replace("steps = 100", "steps = 100\nloss_every = 0");
        Config::from_toml_str(&format!("{text}{search}")).unwrap();
        // A fixed grid may measure sparsely.
        Config::from_toml_str(&format!("{long}every = 10\n")).unwrap();
    }

    #[test]
    fn a_one_dimensional_synthetic_input_is_refused() {
        let set = "[data]\ndataset = \"synthetic\"\nn_train = 256\nsynthetic_input_dim = ";
        let base = TINY.replace("[data]\nn_train = 256\n", "");
        for dim in [0, 1] {
            let msg = Config::from_toml_str(&format!("{set}{dim}\n{base}"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("data.synthetic_input_dim: must be >= 2"),
                "{msg}"
            );
        }
        Config::from_toml_str(&format!("{set}2\n{base}")).unwrap();
    }

    #[test]
    fn counts_beyond_the_files_integers_are_refused() {
        let steps = TINY.replace("steps = 4", "steps = 4000000000000");
        let msg = Config::from_toml_str(&steps).unwrap_err().to_string();
        assert!(
            msg.contains("train.steps: must be at most 2147483646"),
            "{msg}"
        );
        let steps = TINY.replace("steps = 4", &format!("steps = {MAX_STEPS}"));
        Config::from_toml_str(&steps).unwrap();
        for key in ["max_iter", "power_iters"] {
            let msg = error(&format!("{key} = 3000000000\n"));
            assert!(
                msg.contains(&format!("sharpness.{key}: must be at most 100000000")),
                "{msg}"
            );
        }
        for key in ["depth", "width"] {
            let text = TINY.replace(&format!("{key} = ["), &format!("{key} = [2147483648, "));
            let msg = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("model.{key}: must be at most 2147483647")),
                "{msg}"
            );
        }
    }
}
