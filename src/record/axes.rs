//! The axes of `grid.axes` as a results file holds them: per axis its config key, the
//! name of its per-run variable and its values ([`Axes`]), and how an axis point index
//! ([`super::TaskKey::axis_point`]) maps to one value of each.
//!
//! Points are numbered row-major over the axes in key order (the first axis varies
//! slowest), as the config numbers them (`Config::axis_point_values`). The file keeps
//! the axes as the root attribute `axes` ([`Axes::to_text`]: one `"key" = [values]` TOML
//! line per axis), the point of each run as the variable `axis_point`, and each axis's value
//! per run as a variable named after the last component of its key ([`Axis::name`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Column, TaskKey, SCHEMA};

/// The values one axis takes, typed as its variable is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AxisValues {
    /// Integers (stored as i64).
    Int(Vec<i64>),
    /// Numbers, at least one not an integer (stored as f64).
    Float(Vec<f64>),
    /// Strings (stored as variable-length UTF-8 strings).
    Str(Vec<String>),
    /// Booleans (stored as i8 0/1 with `flag_values`, `flag_meanings = "false true"`).
    Bool(Vec<bool>),
}

impl AxisValues {
    /// The values of a `grid.axes` list, typed as their variable is stored: all integers
    /// `Int`, numbers with at least one not an integer `Float`, all strings `Str`, all
    /// booleans `Bool`; `None` for values of mixed or other types.
    pub fn from_toml(values: &[toml::Value]) -> Option<AxisValues> {
        use toml::Value as V;
        let all = |f: fn(&V) -> bool| values.iter().all(f);
        Some(if all(|v| matches!(v, V::Integer(_))) {
            AxisValues::Int(values.iter().filter_map(V::as_integer).collect())
        } else if all(|v| matches!(v, V::Integer(_) | V::Float(_))) {
            let f = |v: &V| v.as_float().or(v.as_integer().map(|i| i as f64));
            AxisValues::Float(values.iter().filter_map(f).collect())
        } else if all(|v| matches!(v, V::String(_))) {
            AxisValues::Str(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            )
        } else if all(|v| matches!(v, V::Boolean(_))) {
            AxisValues::Bool(values.iter().filter_map(V::as_bool).collect())
        } else {
            return None;
        })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            AxisValues::Int(v) => v.len(),
            AxisValues::Float(v) => v.len(),
            AxisValues::Str(v) => v.len(),
            AxisValues::Bool(v) => v.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as TOML text (`64`, `0.9`, `"relu"`, `true`).
    pub fn text(&self, i: usize) -> String {
        match self {
            AxisValues::Int(v) => v[i].to_string(),
            AxisValues::Float(v) => toml::Value::Float(v[i]).to_string(),
            AxisValues::Str(v) => toml::Value::String(v[i].clone()).to_string(),
            AxisValues::Bool(v) => v[i].to_string(),
        }
    }

    /// Value `i` as plain text (strings unquoted), for labels and file names.
    pub fn plain(&self, i: usize) -> String {
        match self {
            AxisValues::Str(v) => v[i].clone(),
            _ => self.text(i),
        }
    }

    /// The values at `indices` as a column of the variable's type.
    fn column(&self, indices: impl Iterator<Item = usize>) -> Column {
        match self {
            AxisValues::Int(v) => Column::I64(indices.map(|i| v[i]).collect()),
            AxisValues::Float(v) => Column::F64(indices.map(|i| v[i]).collect()),
            AxisValues::Str(v) => Column::Str(indices.map(|i| v[i].clone()).collect()),
            AxisValues::Bool(v) => Column::I8(indices.map(|i| i8::from(v[i])).collect()),
        }
    }
}

/// One axis of `grid.axes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The dotted config key, e.g. `train.momentum`.
    pub key: String,
    /// Its variable in the results file: the key's last component (`momentum`), or, when
    /// that is the name of another variable of the file (`model.loss`: `loss`) or of
    /// another axis, the whole key with `_` for `.` (`model_loss`).
    pub name: String,
    /// Its values, in the order of the config.
    pub values: AxisValues,
}

/// The axes of a results file, in key order (none for a file without `grid.axes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Axes {
    /// The axes.
    pub axes: Vec<Axis>,
}

/// Name of the per-run variable holding each run's axis point index.
pub const AXIS_POINT_VAR: &str = "axis_point";

/// The variable names of axes with these keys (see [`Axis::name`]).
fn variable_names(keys: &[&str]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let taken = |name: &str| {
        name == AXIS_POINT_VAR
            || SCHEMA.iter().any(|v| v.name == name)
            || ["run", "step", "interp", "eig", "row"].contains(&name)
    };
    keys.iter()
        .map(|k| {
            let name = last(k);
            let clash = keys.iter().filter(|o| last(o) == name).count() > 1;
            if clash || taken(&name) {
                k.replace('.', "_")
            } else {
                name
            }
        })
        .collect()
}

impl Axes {
    /// The axes of a `grid.axes` map; `Err` names an axis whose values are not scalars of
    /// one type.
    pub fn from_map(map: &BTreeMap<String, Vec<toml::Value>>) -> Result<Axes, String> {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let names = variable_names(&keys);
        let axes = map
            .iter()
            .zip(names)
            .map(|((key, values), name)| {
                let values = AxisValues::from_toml(values)
                    .ok_or_else(|| format!("axis {key}: values of mixed or unknown types"))?;
                Ok(Axis {
                    key: key.clone(),
                    name,
                    values,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Axes { axes })
    }

    /// Whether there are no axes.
    pub fn is_empty(&self) -> bool {
        self.axes.is_empty()
    }

    /// Number of axis points: the product of the axes' lengths (1 without axes).
    pub fn n_points(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// The index into each axis's values of point `point` (row-major, first axis slowest).
    pub fn indices(&self, point: u32) -> Vec<usize> {
        let mut rest = point as usize;
        let mut out = vec![0; self.axes.len()];
        for (a, axis) in self.axes.iter().enumerate().rev() {
            let n = axis.values.len().max(1);
            out[a] = rest % n;
            rest /= n;
        }
        out
    }

    /// "momentum = 0.9, warmup_steps = 64" (variable names, plain values); "" without axes.
    pub fn label(&self, point: u32) -> String {
        self.axes
            .iter()
            .zip(self.indices(point))
            .map(|(a, i)| format!("{} = {}", a.name, a.values.plain(i)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A file-name suffix naming the point's values, `_momentum-0.9_warmup_steps-64`
    /// (characters other than letters, digits, `.`, `-` and `_` become `_`); "" without
    /// axes.
    pub fn file_suffix(&self, point: u32) -> String {
        let safe = |s: String| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        self.axes
            .iter()
            .zip(self.indices(point))
            .map(|(a, i)| format!("_{}-{}", a.name, safe(a.values.plain(i))))
            .collect()
    }

    /// The per-run values of axis `axis` for the runs `keys`, in the variable's type.
    pub fn column(&self, axis: usize, keys: &[TaskKey]) -> Column {
        self.axes[axis]
            .values
            .column(keys.iter().map(|k| self.indices(k.axis_point)[axis]))
    }

    /// The per-point values of axis `axis` for the points `points`.
    pub fn point_column(&self, axis: usize, points: &[u32]) -> Column {
        self.axes[axis]
            .values
            .column(points.iter().map(|&p| self.indices(p)[axis]))
    }

    /// The root attribute `axes`: one `"key" = [values]` TOML line per axis, in order.
    pub fn to_text(&self) -> String {
        self.axes
            .iter()
            .map(|a| {
                let values: Vec<String> = (0..a.values.len()).map(|i| a.values.text(i)).collect();
                format!("\"{}\" = [{}]\n", a.key, values.join(", "))
            })
            .collect()
    }

    /// Parses [`Axes::to_text`].
    pub fn from_text(text: &str) -> Result<Axes, String> {
        let table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
        let mut map = BTreeMap::new();
        for (key, value) in table {
            let toml::Value::Array(values) = value else {
                return Err(format!("axis {key}: not a list"));
            };
            map.insert(key, values);
        }
        Axes::from_map(&map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_are_typed_as_their_variable() {
        let parse = |text: &str| -> Vec<toml::Value> {
            let t: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
            t["v"].as_array().unwrap().clone()
        };
        let typed = |text: &str| AxisValues::from_toml(&parse(text));
        assert_eq!(typed("[0, 64]"), Some(AxisValues::Int(vec![0, 64])));
        assert_eq!(typed("[0, 0.9]"), Some(AxisValues::Float(vec![0.0, 0.9])));
        assert_eq!(
            typed("[\"relu\", \"tanh\"]"),
            Some(AxisValues::Str(vec!["relu".into(), "tanh".into()]))
        );
        assert_eq!(
            typed("[false, true]"),
            Some(AxisValues::Bool(vec![false, true]))
        );
        assert_eq!(typed("[1, \"a\"]"), None);
        assert_eq!(typed("[true, 1]"), None);
        assert_eq!(typed("[[1]]"), None);
    }

    fn sample() -> Axes {
        let text = "\"train.momentum\" = [0.0, 0.9]\n\"model.activation\" = [\"relu\", \"tanh\"]\n\
                    \"train.warmup_steps\" = [0, 64, 256]\n";
        Axes::from_text(text).unwrap()
    }

    #[test]
    fn points_are_row_major_in_key_order() {
        let a = sample();
        let keys: Vec<&str> = a.axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            ["model.activation", "train.momentum", "train.warmup_steps"]
        );
        assert_eq!(a.n_points(), 12);
        assert_eq!(a.indices(0), [0, 0, 0]);
        assert_eq!(a.indices(4), [0, 1, 1]);
        assert_eq!(a.indices(11), [1, 1, 2]);
        assert_eq!(
            a.label(7),
            "activation = tanh, momentum = 0.0, warmup_steps = 64"
        );
        assert_eq!(
            a.file_suffix(7),
            "_activation-tanh_momentum-0.0_warmup_steps-64"
        );
        assert_eq!(Axes::default().n_points(), 1);
        assert_eq!(Axes::default().label(0), "");
        assert_eq!(Axes::default().file_suffix(0), "");
    }

    #[test]
    fn text_round_trips_and_columns_follow_the_runs() {
        let a = sample();
        assert_eq!(Axes::from_text(&a.to_text()).unwrap(), a);
        let keys: Vec<TaskKey> = [0u32, 5, 11]
            .iter()
            .map(|&p| TaskKey {
                axis_point: p,
                ..Default::default()
            })
            .collect();
        assert_eq!(
            a.column(0, &keys),
            Column::Str(vec!["relu".into(), "relu".into(), "tanh".into()])
        );
        assert_eq!(a.column(1, &keys), Column::F64(vec![0.0, 0.9, 0.9]));
        assert_eq!(a.column(2, &keys), Column::I64(vec![0, 256, 256]));
        assert!(Axes::from_text("x = 3").is_err());
    }
}
