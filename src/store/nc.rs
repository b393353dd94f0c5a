//! The netCDF-4 conventions on top of HDF5 that the store needs, and nothing else: opening
//! files close-on-exec, chunked and deflated variables of a [`Kind`] with a fill value,
//! whole-variable and one-row reads and writes of a [`Column`], string and numeric
//! attributes, and dimension scales (`H5DS*` from `libhdf5_hl`, which hdf5-metno does not
//! wrap), so that xarray/h5netcdf see named dimensions.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};
use std::path::Path;
use std::str::FromStr;

use ::hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use ::hdf5::{Dataset, File, Group, H5Type, Location};

use super::{invalid, not_results, Ctx, StoreError};
use crate::record::{Column, Kind};

/// Largest number of runs in one chunk of a (run) or (run, x) variable.
const RUN_CHUNK: usize = 64;
/// Target upper bound of one chunk of a (run, x) variable, in elements.
const CHUNK_ELEMS: usize = 1 << 17;
/// Deflate level: fast, and these arrays compress well after shuffling.
const DEFLATE_LEVEL: u8 = 4;

mod ffi {
    use super::{c_char, c_int, c_uint};
    use hdf5_sys::h5i::hid_t;

    // From libhdf5_hl, linked by hdf5-sys (feature "hl") next to libhdf5.
    extern "C" {
        pub fn H5DSset_scale(dsid: hid_t, dimname: *const c_char) -> c_int;
        pub fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: c_uint) -> c_int;
    }
}

/// Opens (or creates) an HDF5 file and marks its descriptor close-on-exec.
///
/// HDF5 opens files without `O_CLOEXEC` and holds an `flock` on each: a child process
/// started while the file is open (an `h5dump`, a plotting helper, ...) would inherit that
/// lock and make the next open of the file in this process fail with "unable to lock file".
pub(crate) fn open_file(
    path: &Path,
    context: &str,
    open: impl FnOnce() -> ::hdf5::Result<File>,
) -> Result<File, StoreError> {
    let file = open().ctx(path, || context.to_string())?;
    set_cloexec(&file);
    Ok(file)
}

/// Best effort: sets `FD_CLOEXEC` on the descriptor of a file opened with the sec2 driver.
pub(crate) fn set_cloexec(file: &File) {
    #[cfg(unix)]
    {
        use ::hdf5::file::FileDriver;
        let Ok(fapl) = file.access_plist() else {
            return;
        };
        if !matches!(fapl.driver(), FileDriver::Sec2) {
            return;
        }
        let mut handle: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: a valid file id; the sec2 driver hands back a pointer to its `int` fd.
        let rc = ::hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5f::H5Fget_vfd_handle(file.id(), hdf5_sys::h5p::H5P_DEFAULT, &mut handle)
        });
        if rc >= 0 && !handle.is_null() {
            // SAFETY: see above; fcntl on a descriptor we own through the file.
            unsafe {
                let fd = *(handle as *const c_int);
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

/// Makes `ds` the dimension scale (coordinate) of dimension `dim`.
pub(crate) fn set_scale(ds: &Dataset, path: &Path, dim: &str) -> Result<(), StoreError> {
    let name = CString::new(dim).map_err(|_| invalid(path, "dimension name has a NUL"))?;
    // SAFETY: valid dataset id and NUL-terminated name; serialised by the crate's lock.
    let rc = ::hdf5::sync::sync(|| unsafe { ffi::H5DSset_scale(ds.id(), name.as_ptr()) });
    if rc < 0 {
        return Err(StoreError::Hdf5 {
            path: path.to_path_buf(),
            context: format!("making `{dim}` a dimension scale"),
            source: "H5DSset_scale failed".into(),
        });
    }
    Ok(())
}

/// Attaches `scales[i]` as the coordinate of dimension i of `ds`.
pub(crate) fn attach_scales(
    ds: &Dataset,
    path: &Path,
    scales: &[&Dataset],
) -> Result<(), StoreError> {
    for (idx, scale) in scales.iter().enumerate() {
        // SAFETY: both ids are open datasets; serialised by the crate's lock.
        let rc = ::hdf5::sync::sync(|| unsafe {
            ffi::H5DSattach_scale(ds.id(), scale.id(), idx as c_uint)
        });
        if rc < 0 {
            return Err(StoreError::Hdf5 {
                path: path.to_path_buf(),
                context: format!("attaching dimension {idx} of `{}`", ds.name()),
                source: "H5DSattach_scale failed".into(),
            });
        }
    }
    Ok(())
}

/// Chunk shape of a variable of `shape`: at most [`RUN_CHUNK`] runs and about
/// [`CHUNK_ELEMS`] elements, whole rows along the other dimensions.
fn chunk_of(shape: &[usize]) -> Vec<usize> {
    match shape {
        [n] => vec![(*n).clamp(1, 4 * CHUNK_ELEMS)],
        [n, rest @ ..] => {
            let row: usize = rest.iter().map(|m| (*m).max(1)).product();
            let rows = (CHUNK_ELEMS / row).clamp(1, RUN_CHUNK).min((*n).max(1));
            std::iter::once(rows)
                .chain(rest.iter().map(|m| (*m).max(1)))
                .collect()
        }
        [] => unreachable!("variables have at least one dimension"),
    }
}

/// Creates a chunked, shuffled, deflated variable of element type `T` with a fill value
/// (contiguous and unfiltered when it has no elements, which HDF5 cannot chunk), and
/// its `long_name`.
fn create_typed<T: H5Type>(
    group: &Group,
    path: &Path,
    name: &str,
    shape: &[usize],
    fill: T,
) -> Result<Dataset, StoreError> {
    let builder = group.new_dataset::<T>().shape(shape.to_vec());
    if shape.iter().product::<usize>() == 0 {
        builder.fill_value(fill).create(name)
    } else {
        builder
            .chunk(chunk_of(shape))
            .shuffle()
            .deflate(DEFLATE_LEVEL)
            .fill_value(fill)
            .create(name)
    }
    .ctx(path, || format!("creating variable `{name}`"))
}

/// Creates a variable of storage type `kind` and shape `shape`, filled with `fill` (an
/// exactly representable number for integers; strings fill with ""), with attribute
/// `long_name`.
pub(crate) fn create_var(
    group: &Group,
    path: &Path,
    name: &str,
    kind: Kind,
    shape: &[usize],
    fill: f64,
    long_name: &str,
) -> Result<Dataset, StoreError> {
    let ds = match kind {
        Kind::F64 => create_typed(group, path, name, shape, fill),
        Kind::I64 => create_typed(group, path, name, shape, fill as i64),
        Kind::I32 => create_typed(group, path, name, shape, fill as i32),
        Kind::I8 => create_typed(group, path, name, shape, fill as i8),
        Kind::Str => create_typed(group, path, name, shape, VarLenUnicode::new()),
    }?;
    write_str_attr(&ds, path, "long_name", long_name)?;
    Ok(ds)
}

/// Creates a one-dimensional variable holding `col` (storage type and length from it).
pub(crate) fn create_filled(
    group: &Group,
    path: &Path,
    name: &str,
    col: &Column,
    fill: f64,
    long_name: &str,
) -> Result<Dataset, StoreError> {
    let ds = create_var(group, path, name, col.kind(), &[col.len()], fill, long_name)?;
    write_column(&ds, path, col)?;
    Ok(ds)
}

/// A string as HDF5 variable-length UTF-8 (refused when it holds a NUL).
pub(crate) fn vlu(path: &Path, s: &str) -> Result<VarLenUnicode, StoreError> {
    VarLenUnicode::from_str(s)
        .map_err(|e| invalid(path, format!("string {s:?} cannot be stored: {e}")))
}

fn vlus(path: &Path, v: &[String]) -> Result<Vec<VarLenUnicode>, StoreError> {
    v.iter().map(|s| vlu(path, s)).collect()
}

/// Writes `col` as the whole content of `ds` (an empty column writes nothing).
pub(crate) fn write_column(ds: &Dataset, path: &Path, col: &Column) -> Result<(), StoreError> {
    if col.is_empty() {
        return Ok(());
    }
    match col {
        Column::F64(v) => ds.write_raw(v),
        Column::I64(v) => ds.write_raw(v),
        Column::I32(v) => ds.write_raw(v),
        Column::I8(v) => ds.write_raw(v),
        Column::Str(v) => ds.write_raw(&vlus(path, v)?),
    }
    .ctx(path, || format!("writing variable `{}`", ds.name()))
}

/// Reads every element of `ds` as storage type `kind` (HDF5 converts numbers).
pub(crate) fn read_column(ds: &Dataset, path: &Path, kind: Kind) -> Result<Column, StoreError> {
    let ctx = || format!("reading variable `{}`", ds.name().trim_start_matches('/'));
    // HDF5 converts on reading: an int32 `loss` would read as whole numbers. The stored
    // type must be the schema's.
    let stored = ds.dtype().and_then(|t| t.to_descriptor()).ctx(path, ctx)?;
    let expected = match kind {
        Kind::F64 => TypeDescriptor::Float(FloatSize::U8),
        Kind::I64 => TypeDescriptor::Integer(IntSize::U8),
        Kind::I32 => TypeDescriptor::Integer(IntSize::U4),
        Kind::I8 => TypeDescriptor::Integer(IntSize::U1),
        Kind::Str => TypeDescriptor::VarLenUnicode,
    };
    if stored != expected {
        return Err(invalid(
            path,
            format!(
                "variable `{}` is stored as {stored}, expected {expected}",
                ds.name().trim_start_matches('/')
            ),
        ));
    }
    Ok(match kind {
        Kind::F64 => Column::F64(ds.read_raw().ctx(path, ctx)?),
        Kind::I64 => Column::I64(ds.read_raw().ctx(path, ctx)?),
        Kind::I32 => Column::I32(ds.read_raw().ctx(path, ctx)?),
        Kind::I8 => Column::I8(ds.read_raw().ctx(path, ctx)?),
        Kind::Str => Column::Str(
            ds.read_raw::<VarLenUnicode>()
                .ctx(path, ctx)?
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        ),
    })
}

/// Writes (or replaces) the string attribute `name`.
pub(crate) fn write_str_attr(
    loc: &Location,
    path: &Path,
    name: &str,
    value: &str,
) -> Result<(), StoreError> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)
            .ctx(path, || format!("replacing attribute `{name}`"))?;
    }
    let v = vlu(path, value)?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .ctx(path, || format!("writing attribute `{name}`"))
}

/// Writes the scalar numeric attribute `name`.
pub(crate) fn write_num_attr<T: H5Type>(
    loc: &Location,
    path: &Path,
    name: &str,
    value: T,
) -> Result<(), StoreError> {
    loc.new_attr::<T>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .ctx(path, || format!("writing attribute `{name}`"))
}

/// Writes the CF flag attributes `flag_values` (i8 array) and `flag_meanings`.
pub(crate) fn write_flags(
    ds: &Dataset,
    path: &Path,
    flags: &[(i8, &str)],
) -> Result<(), StoreError> {
    let values: Vec<i8> = flags.iter().map(|(v, _)| *v).collect();
    let meanings: Vec<&str> = flags.iter().map(|(_, m)| *m).collect();
    ds.new_attr_builder()
        .with_data(values.as_slice())
        .create("flag_values")
        .ctx(path, || {
            format!("writing attribute `{}.flag_values`", ds.name())
        })?;
    write_str_attr(ds, path, "flag_meanings", &meanings.join(" "))
}

/// Reads the string attribute `name`; a missing one means the file is not ours.
pub(crate) fn read_str_attr(loc: &Location, path: &Path, name: &str) -> Result<String, StoreError> {
    let attr = loc
        .attr(name)
        .map_err(|_| not_results(path, format!("attribute `{name}` missing")))?;
    attr.read_scalar::<VarLenUnicode>()
        .map(|s| s.as_str().to_string())
        .ctx(path, || format!("reading attribute `{name}`"))
}
