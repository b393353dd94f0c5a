//! The tables the analysis exports: [`Table`], equally long [`NamedColumn`]s with their CSV
//! text, and the key columns (c, depth, width, axis point and values, seeds) that every
//! per-run table starts with. `report` and `spectra` build their tables from these.

use serde::Serialize;

use crate::record::{Axes, Column, TaskKey};

/// One named column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NamedColumn {
    /// Column name.
    pub name: String,
    /// Values, one per row.
    pub data: Column,
}

/// Text of entry `i` of a column, for CSV.
fn csv_cell(c: &Column, i: usize) -> String {
    match c {
        Column::F64(v) => format!("{}", v[i]),
        Column::I64(v) => v[i].to_string(),
        Column::I32(v) => v[i].to_string(),
        Column::I8(v) => v[i].to_string(),
        Column::Str(v) => csv_escape(&v[i]),
    }
}

/// A table of equally long named columns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Table {
    /// Table name (`lines`, `groups`, `fits`, `runs`, `regimes`, `missing`).
    pub name: String,
    /// The columns.
    pub columns: Vec<NamedColumn>,
}

impl Table {
    pub(super) fn new(name: &str) -> Self {
        Table {
            name: name.into(),
            columns: Vec::new(),
        }
    }
    pub(super) fn f64(&mut self, name: impl Into<String>, v: Vec<f64>) {
        self.columns.push(NamedColumn {
            name: name.into(),
            data: Column::F64(v),
        });
    }
    pub(super) fn i64(&mut self, name: impl Into<String>, v: Vec<i64>) {
        self.columns.push(NamedColumn {
            name: name.into(),
            data: Column::I64(v),
        });
    }
    pub(super) fn str(&mut self, name: impl Into<String>, v: Vec<String>) {
        self.columns.push(NamedColumn {
            name: name.into(),
            data: Column::Str(v),
        });
    }
    /// With `grid.axes`: the column `axis_point` and one column per axis (named as its
    /// variable in the results file) of the rows' axis points; nothing without axes.
    pub(super) fn axis_columns(&mut self, axes: &Axes, points: &[u32]) {
        if axes.is_empty() {
            return;
        }
        self.i64(
            crate::record::AXIS_POINT_VAR,
            points.iter().map(|&p| i64::from(p)).collect(),
        );
        for (a, axis) in axes.axes.iter().enumerate() {
            self.columns.push(NamedColumn {
                name: axis.name.clone(),
                data: axes.point_column(a, points),
            });
        }
    }
    /// The columns of a (depth, width, axis point) group: `depth`, `width` and, with
    /// `grid.axes`, those of [`Table::axis_columns`].
    pub(super) fn group_columns(&mut self, axes: &Axes, rows: &[(u32, u32, u32)]) {
        self.i64("depth", rows.iter().map(|r| i64::from(r.0)).collect());
        self.i64("width", rows.iter().map(|r| i64::from(r.1)).collect());
        let points: Vec<u32> = rows.iter().map(|r| r.2).collect();
        self.axis_columns(axes, &points);
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.data.len())
    }
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.data)
    }
    /// CSV text: a header line, then one line per row (NaN written as `NaN`, text quoted
    /// where needed).
    pub fn to_csv(&self) -> String {
        let mut s = self
            .columns
            .iter()
            .map(|c| csv_escape(&c.name))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for i in 0..self.rows() {
            let row: Vec<String> = self.columns.iter().map(|c| csv_cell(&c.data, i)).collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
        s
    }
}

/// `s` as one CSV field: quoted (inner quotes doubled) when it holds a comma, quote or newline.
fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The columns of run keys: c, depth, width, (with `grid.axes`: the axis point and the
/// axes' values), seed, sgd_seed.
pub(super) fn key_columns(t: &mut Table, keys: &[TaskKey], axes: &Axes) {
    t.f64("c", keys.iter().map(|k| k.c).collect());
    let groups: Vec<_> = keys
        .iter()
        .map(|k| (k.depth, k.width, k.axis_point))
        .collect();
    t.group_columns(axes, &groups);
    t.i64("seed", keys.iter().map(|k| k.seed as i64).collect());
    t.i64("sgd_seed", keys.iter().map(|k| k.sgd_seed as i64).collect());
}
