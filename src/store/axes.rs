//! The variables and the attribute of `grid.axes` in a results file (only in a file with
//! axes: a file without them has exactly the layout of the versions before them).
//!
//! - root attribute `axes`: [`Axes::to_text`], one `"key" = [values]` line per axis, in
//!   the order that numbers the axis points;
//! - `axis_point` (run), i32: the run's point, 0..P−1;
//! - one variable per axis (run), named [`crate::record::Axis::name`]: the run's value, as
//!   i64, f64, a string, or i8 0/1 for booleans (with `flag_values`, `flag_meanings`); its
//!   attributes `long_name` and `axis_key` (the config key).

use std::path::Path;

use ::hdf5::{Dataset, File, Location};

use super::nc;
use super::{not_results, StoreError};
use crate::record::{Axes, AxisValues, Column, Kind, TaskKey, AXIS_POINT_VAR};

/// Writes the axes of a file whose runs are `keys` (nothing without axes); `run` is the
/// coordinate variable of the `run` dimension.
pub(super) fn write_axes(
    file: &File,
    path: &Path,
    axes: &Axes,
    keys: &[TaskKey],
    run: &Dataset,
) -> Result<(), StoreError> {
    if axes.is_empty() {
        return Ok(());
    }
    let root: &Location = file;
    nc::write_str_attr(root, path, "axes", &axes.to_text())?;
    let points = Column::I32(keys.iter().map(|k| k.axis_point as i32).collect());
    let long_name = "point of grid.axes (index into the product of the axes, first axis slowest; root attribute `axes`)";
    let ds = nc::create_filled(file, path, AXIS_POINT_VAR, &points, -1.0, long_name)?;
    nc::attach_scales(&ds, path, &[run])?;
    for (a, axis) in axes.axes.iter().enumerate() {
        let col = axes.column(a, keys);
        let fill = match col.kind() {
            Kind::F64 => f64::NAN,
            _ => -1.0,
        };
        let long_name = format!("value of {} (grid.axes)", axis.key);
        let ds = nc::create_filled(file, path, &axis.name, &col, fill, &long_name)?;
        nc::write_str_attr(&ds, path, "axis_key", &axis.key)?;
        if matches!(axis.values, AxisValues::Bool(_)) {
            nc::write_flags(&ds, path, &[(0, "false"), (1, "true")])?;
        }
        nc::attach_scales(&ds, path, &[run])?;
    }
    Ok(())
}

/// Reads the axes of a file and sets the axis point of each of its runs `keys` (a file
/// without the attribute `axes` has none: every point 0).
pub(super) fn read_axes(
    file: &File,
    path: &Path,
    keys: &mut [TaskKey],
) -> Result<Axes, StoreError> {
    if file.attr("axes").is_err() {
        return Ok(Axes::default());
    }
    let root: &Location = file;
    let text = nc::read_str_attr(root, path, "axes")?;
    let axes =
        Axes::from_text(&text).map_err(|e| not_results(path, format!("attribute `axes`: {e}")))?;
    let ds = file
        .dataset(AXIS_POINT_VAR)
        .map_err(|e| not_results(path, format!("variable `{AXIS_POINT_VAR}` missing ({e})")))?;
    let points = nc::read_column(&ds, path, Kind::I32)?
        .into_i32()
        .expect("read as i32");
    if points.len() != keys.len() {
        return Err(not_results(
            path,
            format!(
                "variable `{AXIS_POINT_VAR}` has {} elements, expected {}",
                points.len(),
                keys.len()
            ),
        ));
    }
    let n = axes.n_points();
    for (i, (key, &p)) in keys.iter_mut().zip(&points).enumerate() {
        key.axis_point = u32::try_from(p)
            .ok()
            .filter(|&p| (p as usize) < n)
            .ok_or_else(|| {
                not_results(
                    path,
                    format!("run {i}: {AXIS_POINT_VAR} = {p} of {n} points"),
                )
            })?;
    }
    Ok(axes)
}
