//! `grid.axes`: more grid dimensions over config keys.
//!
//! ```toml
//! [grid]
//! axes = { "train.warmup_steps" = [0, 64, 256], "train.momentum" = [0.0, 0.9] }
//! ```
//!
//! Every (depth, width, seed pair, c) task runs once per **axis point**: one value of each
//! axis, a point of the cartesian product of the lists. The axes are ordered by key (the
//! map is sorted), and points are numbered row-major: the first axis varies slowest, the
//! last fastest ([`Config::axis_point_values`]). A point's config is the effective config
//! without the axes, with each axis value applied exactly as `--set key=value` applies an
//! override ([`super::apply_override`]), then parsed and validated again
//! ([`Config::axis_points`]): so any key of [`keys::axis_keys`] behaves as it does in a config.
//!
//! Validation checks the axes themselves (allowed keys, non-empty lists of scalars of one
//! type, no duplicates, at most [`MAX_AXIS_POINTS`] points) and then every point's config;
//! the config's own values of the axis keys matter only through the points.

use super::{invalid, keys, Config, ConfigError};
use crate::record::Axes;

/// Most points the product of the axes may have.
pub const MAX_AXIS_POINTS: usize = 10_000;

/// Keys that are grid dimensions of their own.
const GRID_DIMENSIONS: &[&str] = &[
    "model.depth",
    "model.width",
    "train.seeds",
    "train.sgd_seeds",
    "grid.c",
    "grid.log2_c",
];

/// The error key of axis `key`: `grid.axes."train.momentum"`.
fn axis_error_key(key: &str) -> String {
    format!("grid.axes.\"{key}\"")
}

/// Why `key` cannot be an axis (`None`: it can).
fn refusal(key: &str) -> Option<String> {
    if keys::is_axis_key(key) {
        return None;
    }
    let why = if GRID_DIMENSIONS.contains(&key) {
        "is a grid dimension already: list its values there".to_string()
    } else if ["data.", "output.", "grid."]
        .iter()
        .any(|p| key.starts_with(p))
    {
        "is the same for every run of a file (the data, output and grid sections)".to_string()
    } else {
        "is not a key an axis can sweep".to_string()
    };
    Some(format!(
        "`{key}` {why}; axis keys: {}",
        keys::axis_keys().collect::<Vec<_>>().join(", ")
    ))
}

/// The kind of a scalar axis value: 0 string, 1 number, 2 boolean (`None`: not a scalar).
fn scalar_kind(v: &toml::Value) -> Option<u8> {
    match v {
        toml::Value::String(_) => Some(0),
        toml::Value::Integer(_) | toml::Value::Float(_) => Some(1),
        toml::Value::Boolean(_) => Some(2),
        _ => None,
    }
}

/// Whether two scalar values are the same value (numbers compared as numbers, 64 = 64.0).
fn same_value(a: &toml::Value, b: &toml::Value) -> bool {
    let num = |v: &toml::Value| match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Checks that `grid.axes` in the parsed `table` maps keys to lists: a table under it is
/// an unquoted dotted key (`model.activation = [..]` is `model = { activation = [..] }` in
/// TOML), which serde would report as a map without saying why.
pub(super) fn check_axes_table(table: &toml::Table) -> Result<(), ConfigError> {
    let Some(toml::Value::Table(grid)) = table.get("grid") else {
        return Ok(());
    };
    let Some(toml::Value::Table(axes)) = grid.get("axes") else {
        return Ok(());
    };
    for (key, value) in axes {
        let toml::Value::Table(_) = value else {
            continue;
        };
        // The dotted name the user wrote: follow the first entry down to a non-table.
        let mut dotted = key.clone();
        let mut inner = value;
        while let toml::Value::Table(t) = inner {
            let Some((k, v)) = t.iter().next() else {
                break;
            };
            dotted = format!("{dotted}.{k}");
            inner = v;
        }
        return Err(invalid(
            &format!("grid.axes.{key}"),
            format!(
                "is a table, not a list of values: axis keys are full dotted names and must be quoted, e.g. `\"{dotted}\" = [...]` (an unquoted `{dotted} = [...]` is a nested table in TOML)"
            ),
        ));
    }
    Ok(())
}

/// Checks one axis: an allowed key and a non-empty list of distinct scalars of one type.
fn check_axis(key: &str, values: &[toml::Value]) -> Result<(), ConfigError> {
    let fail = |message: String| invalid(&axis_error_key(key), message);
    if let Some(why) = refusal(key) {
        return Err(fail(why));
    }
    if values.is_empty() {
        return Err(fail("must not be empty".into()));
    }
    let mut kind = None;
    for (i, v) in values.iter().enumerate() {
        let Some(k) = scalar_kind(v) else {
            return Err(fail(format!(
                "values must be strings, numbers or booleans (got {v})"
            )));
        };
        if kind.is_some_and(|first| first != k) {
            return Err(fail(format!(
                "values must all be of one type (got {} and {v})",
                values[0]
            )));
        }
        kind = Some(k);
        if values[..i].iter().any(|w| same_value(v, w)) {
            return Err(fail(format!("duplicate value {v}")));
        }
    }
    Ok(())
}

impl Config {
    /// Points of `grid.axes`: the product of its list lengths (1 without axes).
    pub fn n_axis_points(&self) -> usize {
        self.grid.axes.values().map(Vec::len).product()
    }

    /// The (key, value) of each axis at point `point`, in key order. Points are numbered
    /// row-major: the first axis varies slowest. Empty without axes.
    pub fn axis_point_values(&self, point: usize) -> Vec<(&str, &toml::Value)> {
        let mut rest = point;
        let mut out: Vec<(&str, &toml::Value)> = Vec::new();
        for (key, values) in self.grid.axes.iter().rev() {
            out.push((key, &values[rest % values.len().max(1)]));
            rest /= values.len().max(1);
        }
        out.reverse();
        out
    }

    /// "train.momentum = 0.9, train.warmup_steps = 64" for point `point`.
    pub fn describe_axis_point(&self, point: usize) -> String {
        self.axis_point_values(point)
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// This config without `grid.axes`.
    pub fn without_axes(&self) -> Config {
        let mut c = self.clone();
        c.grid.axes.clear();
        c
    }

    /// The config of every axis point, index = point (without `grid.axes`: the config
    /// itself, alone). Each is the effective config without the axes with the point's
    /// values applied as `--set` overrides, parsed and validated; an error names the point.
    pub fn axis_points(&self) -> Result<Vec<Config>, ConfigError> {
        if self.grid.axes.is_empty() {
            return Ok(vec![self.clone()]);
        }
        let base = self.without_axes().to_toml_string();
        (0..self.n_axis_points())
            .map(|p| {
                let overrides: Vec<String> = self
                    .axis_point_values(p)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                Config::from_text(&base, None, &overrides).map_err(|e| {
                    invalid(
                        "grid.axes",
                        format!(
                            "point {p} of {} ({}): {e}",
                            self.n_axis_points(),
                            self.describe_axis_point(p)
                        ),
                    )
                })
            })
            .collect()
    }

    /// The axes as the results file records them (names of their variables, typed
    /// values). Empty without axes.
    pub fn axes(&self) -> Axes {
        Axes::from_map(&self.grid.axes).expect("validated axes hold scalars of one type")
    }

    /// Validation of a config with `grid.axes`: the axes themselves, the config's own keys
    /// (an invalid value of an axis key is left to the points, which replace it), then
    /// the config of every point.
    pub(super) fn validate_with_axes(&self) -> Result<(), ConfigError> {
        for (key, values) in &self.grid.axes {
            check_axis(key, values)?;
        }
        let n: f64 = self.grid.axes.values().map(|v| v.len() as f64).product();
        if n > MAX_AXIS_POINTS as f64 {
            return Err(invalid(
                "grid.axes",
                format!("gives {n} points, more than {MAX_AXIS_POINTS}"),
            ));
        }
        if let Err(e) = self.without_axes().validate() {
            let on_axis =
                matches!(&e, ConfigError::Invalid { key, .. } if self.grid.axes.contains_key(key));
            if !on_axis {
                return Err(e);
            }
        }
        self.axis_points().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AxisValues;

    const BASE: &str = "[data]\nn_train = 256\n[model]\ndepth = [2]\nwidth = [8]\n\
        [train]\nbatch_size = 64\noptimizer = \"momentum\"\n[grid]\nc = [1.0, 2.0]\n";

    fn with_axes(axes: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&format!("{BASE}axes = {{ {axes} }}\n"))
    }

    fn error(axes: &str) -> String {
        match with_axes(axes) {
            Ok(c) => panic!("expected an error for {axes}, got {:?}", c.grid.axes),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_unquoted_dotted_axis_key_gets_a_hint() {
        for text in [
            format!("{BASE}[grid.axes]\nmodel.activation = [\"relu\", \"tanh\"]\n"),
            format!("{BASE}axes = {{ model.activation = [\"relu\", \"tanh\"] }}\n"),
        ] {
            let msg = Config::from_toml_str(&text).unwrap_err().to_string();
            for want in [
                "grid.axes.model:",
                "must be quoted",
                "`\"model.activation\" = [...]`",
            ] {
                assert!(msg.contains(want), "{want} in {msg}");
            }
        }
        let quoted = format!("{BASE}[grid.axes]\n\"model.activation\" = [\"relu\", \"tanh\"]\n");
        assert_eq!(Config::from_toml_str(&quoted).unwrap().n_axis_points(), 2);
    }

    #[test]
    fn points_are_the_product_first_key_slowest() {
        let c = with_axes("\"train.warmup_steps\" = [0, 64, 256], \"train.momentum\" = [0.0, 0.9]")
            .unwrap();
        assert_eq!(c.n_axis_points(), 6);
        // Sorted by key: momentum first (slowest), then warmup_steps.
        let described: Vec<String> = (0..6).map(|p| c.describe_axis_point(p)).collect();
        assert_eq!(described[0], "train.momentum = 0.0, train.warmup_steps = 0");
        assert_eq!(
            described[2],
            "train.momentum = 0.0, train.warmup_steps = 256"
        );
        assert_eq!(
            described[4],
            "train.momentum = 0.9, train.warmup_steps = 64"
        );
        let points = c.axis_points().unwrap();
        assert_eq!(points.len(), 6);
        for (p, cfg) in points.iter().enumerate() {
            assert!(cfg.grid.axes.is_empty());
            assert_eq!(cfg.train.momentum, [0.0, 0.9][p / 3]);
            assert_eq!(cfg.train.warmup_steps, [0, 64, 256][p % 3]);
            // Everything else is the config's.
            assert_eq!(cfg.train.batch_size, 64);
            assert_eq!(cfg.grid.c, Some(vec![1.0, 2.0]));
        }
        // Each point's config is the config written with the value set directly.
        let direct = Config::from_toml_str(&BASE.replace(
            "optimizer = \"momentum\"",
            "optimizer = \"momentum\"\nmomentum = 0.9\nwarmup_steps = 64",
        ))
        .unwrap();
        assert_eq!(points[4], direct);
        // Without axes: the config itself, one point.
        let plain = Config::from_toml_str(BASE).unwrap();
        assert_eq!(plain.n_axis_points(), 1);
        assert_eq!(plain.axis_points().unwrap(), vec![plain.clone()]);
        assert!(plain.axis_point_values(0).is_empty());
    }

    #[test]
    fn axes_are_in_the_config_text_only_when_given() {
        let plain = Config::from_toml_str(BASE).unwrap();
        assert!(!plain.to_toml_string().contains("axes"));
        let c = with_axes("\"model.activation\" = [\"relu\", \"tanh\"]").unwrap();
        let text = c.to_toml_string();
        assert!(text.contains("[grid.axes]"), "{text}");
        assert!(
            text.contains("\"model.activation\" = [\"relu\", \"tanh\"]"),
            "{text}"
        );
        assert_eq!(Config::from_toml_str(&text).unwrap(), c);
    }

    #[test]
    fn bad_axes_are_errors_naming_the_key() {
        let cases = [
            (
                "\"model.width\" = [8, 16]",
                "grid.axes.\"model.width\": `model.width` is a grid dimension already",
            ),
            (
                "\"data.n_train\" = [64]",
                "grid.axes.\"data.n_train\": `data.n_train` is the same for every run",
            ),
            (
                "\"train.steps\" = [5]",
                "grid.axes.\"train.steps\": `train.steps` is not a key an axis can sweep",
            ),
            (
                "\"train.stpes\" = [5]",
                "grid.axes.\"train.stpes\": `train.stpes` is not a key",
            ),
            (
                "\"train.momentum\" = []",
                "grid.axes.\"train.momentum\": must not be empty",
            ),
            (
                "\"train.warmup_steps\" = [0, 4, 0]",
                "grid.axes.\"train.warmup_steps\": duplicate value 0",
            ),
            (
                "\"train.momentum\" = [0, 0.0]",
                "grid.axes.\"train.momentum\": duplicate value 0.0",
            ),
            (
                "\"model.activation\" = [\"relu\", 1]",
                "grid.axes.\"model.activation\": values must all be of one type",
            ),
            (
                "\"model.sigma2_hidden\" = [[1.0]]",
                "grid.axes.\"model.sigma2_hidden\": values must be strings, numbers or booleans",
            ),
            (
                "\"model.activation\" = [\"relu\", \"gelu\"]",
                "grid.axes: point 1 of 2 (model.activation = \"gelu\"): ",
            ),
            (
                "\"train.warmup_steps\" = [0, 1.5]",
                "grid.axes: point 1 of 2 (train.warmup_steps = 1.5): <config text>: bad value",
            ),
            (
                "\"train.momentum\" = [0.5, 1.0]",
                "grid.axes: point 1 of 2 (train.momentum = 1.0): train.momentum: must be in [0, 1)",
            ),
            (
                "\"train.batch_size\" = [64, 512]",
                "point 1 of 2 (train.batch_size = 512): train.batch_size: must be <= data.n_train",
            ),
        ];
        for (axes, expected) in cases {
            let msg = error(axes);
            assert!(
                msg.contains(expected),
                "{axes}: got {msg:?}, want {expected:?}"
            );
        }
        let err = error("\"train.warmup_steps\" = [0, 1.5]");
        assert!(err.contains("train.warmup_steps"), "{err}");
        // A map that is not one is a type error naming grid.axes.
        let err = Config::from_toml_str(&format!("{BASE}axes = 3\n")).unwrap_err();
        assert!(err.to_string().contains("grid.axes"), "{err}");
        // Too many points.
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        let err = error(&format!(
            "\"train.warmup_steps\" = [{0}], \"sharpness.max_iter\" = [{0}]",
            many.join(", ")
        ));
        assert!(err.contains("more than 10000"), "{err}");
    }

    #[test]
    fn an_invalid_value_of_an_axis_key_is_left_to_the_points() {
        // batch_size = 512 > n_train is invalid alone, but no point uses it.
        let c = Config::from_toml_str(&format!(
            "{}axes = {{ \"train.batch_size\" = [32, 64] }}\n",
            BASE.replace("batch_size = 64", "batch_size = 512")
        ))
        .unwrap();
        let points = c.axis_points().unwrap();
        assert_eq!(points[1].train.batch_size, 64);
        // An invalid value of another key is reported as it is.
        let err = Config::from_toml_str(&format!(
            "{}axes = {{ \"train.batch_size\" = [32, 64] }}\n",
            BASE.replace("depth = [2]", "depth = [0]")
        ))
        .unwrap_err();
        assert!(err.to_string().starts_with("model.depth:"), "{err}");
    }

    #[test]
    fn momentum_zero_is_plain_sgd_and_allowed() {
        let c = with_axes("\"train.momentum\" = [0.0, 0.9]").unwrap();
        assert_eq!(c.axis_points().unwrap()[0].train.momentum, 0.0);
    }

    #[test]
    fn the_axes_of_the_file_name_their_variables() {
        let c = with_axes(
            "\"model.loss\" = [\"mse\", \"cross-entropy\"], \"train.momentum\" = [0, 0.9], \
             \"train.warmup_steps\" = [0, 2], \"model.bias\" = [false, true]",
        )
        .unwrap();
        let axes = c.axes();
        let names: Vec<&str> = axes.axes.iter().map(|a| a.name.as_str()).collect();
        // `loss` is a variable of the file already: the axis takes its full key.
        assert_eq!(names, ["bias", "model_loss", "momentum", "warmup_steps"]);
        assert_eq!(axes.axes[2].values, AxisValues::Float(vec![0.0, 0.9]));
        assert_eq!(axes.axes[3].values, AxisValues::Int(vec![0, 2]));
        assert_eq!(axes.n_points(), c.n_axis_points());
    }
}
