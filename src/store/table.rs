//! Analysis tables stored next to the raw variables: a group (e.g. `analysis/lines`) of
//! equally long 1-D columns over their own `row` dimension, written by `analyze` and read
//! back by [`read_group_table`]. Root variables are never touched.

use std::path::Path;

use ::hdf5::types::{TypeDescriptor, VarLenUnicode};
use ::hdf5::File;

use super::file::{replace_with, snapshot_tmp};
use super::journal::journal_path;
use super::nc::write_str_attr;
use super::nc::{attach_scales, create_filled, open_file, read_str_attr, set_scale};
use super::{invalid, not_results, Ctx, StoreError};
use crate::record::{Column, Kind};

/// Name of the row dimension of the tables written by [`write_group_table`].
const TABLE_DIM: &str = "row";
/// Group attribute listing the columns of a table in order (space separated).
const TABLE_COLUMNS_ATTR: &str = "columns";

fn check_table_group(file: &File, path: &Path, group: &str) -> Result<(), StoreError> {
    if group.is_empty()
        || group.starts_with('/')
        || group.ends_with('/')
        || group.split('/').any(str::is_empty)
    {
        return Err(invalid(
            path,
            format!("group name {group:?} must be a relative path like \"analysis/critical\""),
        ));
    }
    let top = group.split('/').next().unwrap_or(group);
    if file.link_exists(top) && file.dataset(top).is_ok() {
        return Err(invalid(
            path,
            format!("group {group:?} would replace the root variable `{top}`"),
        ));
    }
    Ok(())
}

/// Checks a table's column names, lengths and attribute names; returns the length and
/// the names in order.
fn check_table<'c>(
    path: &Path,
    group: &str,
    columns: &'c [(&str, Column)],
    attrs: &[(&str, String)],
) -> Result<(usize, Vec<&'c str>), StoreError> {
    let len = columns.first().map_or(0, |(_, c)| c.len());
    let mut names: Vec<&str> = Vec::new();
    for (name, col) in columns {
        if name.is_empty() || name.contains('/') || name.contains(' ') || *name == TABLE_DIM {
            return Err(invalid(
                path,
                format!("bad column name {name:?} in {group:?}"),
            ));
        }
        if names.contains(name) {
            return Err(invalid(path, format!("column {name:?} twice in {group:?}")));
        }
        if col.len() != len {
            return Err(invalid(
                path,
                format!(
                    "column {name:?} of {group:?} has {} entries, the first has {len}",
                    col.len()
                ),
            ));
        }
        names.push(name);
    }
    for (name, _) in attrs {
        if *name == TABLE_COLUMNS_ATTR {
            return Err(invalid(
                path,
                format!("attribute name {name:?} is reserved"),
            ));
        }
    }
    Ok((len, names))
}

/// Runs `write` on a copy of the existing file at `path`, which then replaces the file
/// whole, like a snapshot: a kill at any instant leaves the old file or the new one.
fn in_copy(
    path: &Path,
    write: impl FnOnce(&File) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if !path.exists() {
        return Err(not_results(path, "the file does not exist"));
    }
    if journal_path(path).exists() {
        return Err(invalid(
            path,
            format!(
                "a sweep is writing this file, or was killed before it finished ({} exists): \
                 analyze it with --no-write, or finish the sweep (sharpsweep sweep --resume) first",
                journal_path(path).display()
            ),
        ));
    }
    let tmp = snapshot_tmp(path);
    std::fs::copy(path, &tmp).map_err(|e| invalid(path, format!("copying the file: {e}")))?;
    let file = open_file(path, "opening the copy for writing", || File::open_rw(&tmp))?;
    let written = write(&file);
    let closed = file.close().ctx(path, || "closing the copy".into());
    if let Err(e) = written.and(closed) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    replace_with(path, &tmp)
}

/// Replaces group `group` (e.g. "analysis/critical") of an existing file with a table: one
/// 1-D dataset per column, all of the same length, over the dimension `row` (a coordinate
/// 0..n-1, so xarray opens the group with `group=`), plus string attributes on the group.
/// Root variables are never touched.
pub fn write_group_table(
    path: &Path,
    group: &str,
    columns: &[(&str, Column)],
    attrs: &[(&str, String)],
) -> Result<(), StoreError> {
    let (len, names) = check_table(path, group, columns, attrs)?;
    in_copy(path, |file| {
        write_table(file, path, group, columns, attrs, len, &names)
    })
}

/// Replaces group `parent` (e.g. "analysis") of an existing file whole with the tables
/// `parent/<name>` of `tables` (each as [`write_group_table`] writes one, all with the
/// attributes `attrs`), in one replacement of the file: it holds the old tables or all the
/// new ones, never a mixture, whenever it is killed.
pub fn write_group_tables(
    path: &Path,
    parent: &str,
    tables: &[(&str, &[(&str, Column)])],
    attrs: &[(&str, String)],
) -> Result<(), StoreError> {
    let mut checked = Vec::new();
    for (name, columns) in tables {
        let group = format!("{parent}/{name}");
        let (len, names) = check_table(path, &group, columns, attrs)?;
        checked.push((group, *columns, len, names));
    }
    in_copy(path, |file| {
        check_table_group(file, path, parent)?;
        if file.link_exists(parent) {
            file.unlink(parent)
                .ctx(path, || format!("removing the old group {parent:?}"))?;
        }
        for (group, columns, len, names) in &checked {
            write_table(file, path, group, columns, attrs, *len, names)?;
        }
        Ok(())
    })
}

/// Replaces group `group` of the open `file` by the table.
fn write_table(
    file: &File,
    path: &Path,
    group: &str,
    columns: &[(&str, Column)],
    attrs: &[(&str, String)],
    len: usize,
    names: &[&str],
) -> Result<(), StoreError> {
    check_table_group(file, path, group)?;
    if file.link_exists(group) {
        file.unlink(group)
            .ctx(path, || format!("removing the old group {group:?}"))?;
    }
    let g = file
        .create_group(group)
        .ctx(path, || format!("creating group {group:?}"))?;
    let rows = Column::I64((0..len as i64).collect());
    let row = create_filled(&g, path, TABLE_DIM, &rows, -1.0, "table row")?;
    set_scale(&row, path, TABLE_DIM)?;
    for (name, col) in columns {
        let fill = if col.kind() == Kind::F64 {
            f64::NAN
        } else {
            0.0
        };
        let ds = create_filled(&g, path, name, col, fill, name)?;
        attach_scales(&ds, path, &[&row])?;
    }
    write_str_attr(&g, path, TABLE_COLUMNS_ATTR, &names.join(" "))?;
    for (name, value) in attrs {
        write_str_attr(&g, path, name, value)?;
    }
    Ok(())
}

/// A table written by [`write_group_table`]: columns in order and the group's attributes
/// (without the internal `columns` list).
pub type GroupTable = (Vec<(String, Column)>, Vec<(String, String)>);

/// Reads back a table written by [`write_group_table`].
pub fn read_group_table(path: &Path, group: &str) -> Result<GroupTable, StoreError> {
    let file = open_file(path, "opening the file", || File::open(path))?;
    let g = file
        .group(group)
        .map_err(|e| invalid(path, format!("no table group {group:?} ({e})")))?;
    let names = read_str_attr(&g, path, TABLE_COLUMNS_ATTR)?;
    let mut columns = Vec::new();
    for name in names.split(' ').filter(|s| !s.is_empty()) {
        let ds = g
            .dataset(name)
            .map_err(|e| invalid(path, format!("column {name:?} of {group:?} missing ({e})")))?;
        let ctx = || format!("reading column {name:?} of {group:?}");
        let desc = ds.dtype().and_then(|t| t.to_descriptor()).ctx(path, ctx)?;
        let col = match desc {
            TypeDescriptor::Float(_) => Column::F64(ds.read_raw::<f64>().ctx(path, ctx)?),
            TypeDescriptor::Integer(_) => Column::I64(ds.read_raw::<i64>().ctx(path, ctx)?),
            TypeDescriptor::VarLenUnicode => Column::Str(
                ds.read_raw::<VarLenUnicode>()
                    .ctx(path, ctx)?
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
            ),
            other => {
                return Err(invalid(
                    path,
                    format!("column {name:?} of {group:?} has type {other:?}"),
                ))
            }
        };
        columns.push((name.to_string(), col));
    }
    let mut attrs = Vec::new();
    for name in g
        .attr_names()
        .ctx(path, || format!("listing attributes of {group:?}"))?
    {
        if name != TABLE_COLUMNS_ATTR {
            let v = read_str_attr(&g, path, &name)?;
            attrs.push((name, v));
        }
    }
    Ok((columns, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::read_results;
    use crate::store::testutil::*;

    #[test]
    fn group_table_round_trip_and_replace() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.h5");
        let expect = sample(&path, &[]);
        let cols = vec![
            ("depth", Column::I64(vec![2, 4, 8])),
            ("c_loss", Column::F64(vec![2.5, f64::NAN, 3.25])),
            (
                "phase",
                Column::Str(vec!["lazy".into(), "catapult".into(), "ü".into()]),
            ),
        ];
        let attrs = [("epsilon", "0.05".to_string())];
        write_group_table(&path, "analysis/critical", &cols, &attrs).unwrap();
        let (got, got_attrs) = read_group_table(&path, "analysis/critical").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], ("depth".to_string(), cols[0].1.clone()));
        match (&got[1].1, &cols[1].1) {
            (Column::F64(a), Column::F64(b)) => assert!(same_f64(a, b)),
            other => panic!("{other:?}"),
        }
        assert_eq!(got[2], ("phase".to_string(), cols[2].1.clone()));
        assert_eq!(got_attrs, vec![("epsilon".to_string(), "0.05".to_string())]);
        // Replacing: the old columns are gone, root variables untouched.
        write_group_table(
            &path,
            "analysis/critical",
            &[("x", Column::I64(vec![]))],
            &[],
        )
        .unwrap();
        let (got, got_attrs) = read_group_table(&path, "analysis/critical").unwrap();
        assert_eq!(got, vec![("x".to_string(), Column::I64(vec![]))]);
        assert!(got_attrs.is_empty());
        assert_same(&expect, &read_results(&path).unwrap().0);
        let dump = h5dump(&["-H", "-g", "/analysis/critical"], &path);
        assert!(
            dump.contains("DATASET \"x\"") && !dump.contains("c_loss"),
            "{dump}"
        );
        // Several tables at once replace their parent whole, in one replacement of the
        // file: a table of an earlier analysis that this one does not write is gone.
        let lines = [("c", Column::F64(vec![1.0, 2.0]))];
        let fits = [("slope", Column::F64(vec![0.5]))];
        let both: [(&str, &[(&str, Column)]); 2] = [("lines", &lines), ("fits", &fits)];
        write_group_tables(&path, "analysis", &both, &attrs).unwrap();
        let (got, got_attrs) = read_group_table(&path, "analysis/fits").unwrap();
        assert_eq!(got, vec![("slope".to_string(), fits[0].1.clone())]);
        assert_eq!(got_attrs, vec![("epsilon".to_string(), "0.05".to_string())]);
        assert!(
            read_group_table(&path, "analysis/critical").is_err(),
            "stale table kept"
        );
        assert!(!snapshot_tmp(&path).exists());
        // A bad table anywhere writes nothing.
        let bad_fits = [("a", Column::I64(vec![1])), ("b", Column::I64(vec![]))];
        let bad: [(&str, &[(&str, Column)]); 2] = [("lines", &lines), ("fits", &bad_fits)];
        assert!(write_group_tables(&path, "analysis", &bad, &[]).is_err());
        assert_eq!(read_group_table(&path, "analysis/fits").unwrap().0.len(), 1);
        assert!(!snapshot_tmp(&path).exists());
        assert_same(&expect, &read_results(&path).unwrap().0);
        // Refusals: root variables, unequal columns.
        let err = write_group_table(&path, "loss", &[], &[]).unwrap_err();
        assert!(err.to_string().contains("root variable"), "{err}");
        let bad = [("a", Column::I64(vec![1])), ("b", Column::I64(vec![]))];
        assert!(write_group_table(&path, "analysis/bad", &bad, &[]).is_err());
    }
}
