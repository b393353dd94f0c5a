#!/usr/bin/env python3
"""Compare a results file with a golden one, bit for bit.

    python3 tests/golden_compare.py GOLDEN NEW

Every group, variable and attribute of GOLDEN must be in NEW with the same type, shape,
storage (chunks, filters, fill value), dimension scales and bytes, except what is allowed to
differ between program versions and runs:
  - the values of `seconds` (wall-clock time);
  - the root attributes `history`, `program_version`, `git_commit` (when and what wrote it)
    and `hdf5_version`, `mpi_version`, `cpu_features` (the machine it ran on);
  - the references inside the dimension-scale bookkeeping attributes `DIMENSION_LIST` and
    `REFERENCE_LIST` (object addresses), which are compared as attached scale names instead.
NEW may add only the variables and attributes listed in ADDED (anything else is a failure),
and an analysis table's `columns` attribute only their names.
Prints one line per difference; exits 1 if there is any.
"""

import sys

import h5py
import numpy as np

SKIP_VALUES = {"/seconds"}
SKIP_ROOT_ATTRS = {
    "history",
    "program_version",
    "git_commit",
    "hdf5_version",
    "mpi_version",
    "cpu_features",
}
SCALE_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST"}
# What the run-record schema and the analysis added since the golden file was written.
ADDED_OBJECTS = {
    "/stop_reason",
    "/search_round",
    "/eig",
    "/eigenvalues",
    "/eig_residual",
    "/gn_eigenvalues",
    "/min_eigenvalue",
    "/hessian_sharpness",
} | {
    f"/analysis/lines/{b}_{suffix}"
    for b in ("c_loss", "c_sharp", "c_max", "c_barrier")
    for suffix in ("log2_width", "non_monotone")
}
ADDED_ATTRS = {"units"}


def only_added_columns(path, g, n):
    """A table's `columns` attribute may gain only the ADDED_OBJECTS columns."""
    golden = str(g).split() if not isinstance(g, bytes) else g.decode().split()
    new = str(n).split() if not isinstance(n, bytes) else n.decode().split()
    kept = [c for c in new if f"{path}/{c}" not in ADDED_OBJECTS]
    return kept == golden


def same_value(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "O":
            return [x for x in a.ravel()] == [y for y in b.ravel()]
        return a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def scale_names(ds):
    return [[s.name for s in ds.dims[i].values()] for i in range(ds.ndim)]


def storage(ds):
    fill = ds.fillvalue
    if isinstance(fill, float):
        fill = np.float64(fill).tobytes()
    return (ds.chunks, ds.compression, ds.compression_opts, ds.shuffle, fill)


def compare(golden, new):
    problems = []

    def attrs(name, g, n):
        for key in g.attrs:
            if name == "/" and key in SKIP_ROOT_ATTRS:
                continue
            if key not in n.attrs:
                problems.append(f"{name}: attribute {key} missing")
                continue
            if key in SCALE_ATTRS:
                continue
            if key == "columns" and only_added_columns(name, g.attrs[key], n.attrs[key]):
                continue
            if not same_value(g.attrs[key], n.attrs[key]):
                problems.append(
                    f"{name}: attribute {key}: {g.attrs[key]!r} != {n.attrs[key]!r}"
                )
        for key in n.attrs:
            if key not in g.attrs and key not in ADDED_ATTRS:
                problems.append(f"{name}: unexpected new attribute {key}")

    def visit(name, g):
        path = "/" + name
        if path not in new:
            problems.append(f"{path} missing")
            return
        n = new[path]
        attrs(path, g, n)
        if isinstance(g, h5py.Dataset):
            if g.dtype != n.dtype or g.shape != n.shape:
                problems.append(
                    f"{path}: {g.dtype}{g.shape} != {n.dtype}{n.shape}"
                )
                return
            if storage(g) != storage(n):
                problems.append(f"{path}: storage {storage(g)} != {storage(n)}")
            if scale_names(g) != scale_names(n):
                problems.append(
                    f"{path}: scales {scale_names(g)} != {scale_names(n)}"
                )
            if path not in SKIP_VALUES and not same_value(g[()], n[()]):
                problems.append(f"{path}: values differ")

    attrs("/", golden, new)
    golden.visititems(visit)

    def extra(name, _obj):
        path = "/" + name
        if path not in golden and path not in ADDED_OBJECTS:
            problems.append(f"{path}: unexpected new object")

    new.visititems(extra)
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with h5py.File(sys.argv[1], "r") as golden, h5py.File(sys.argv[2], "r") as new:
        problems = compare(golden, new)
        checked = []
        golden.visititems(lambda name, obj: checked.append(name))
    for p in problems:
        print(p)
    print(f"compared {len(checked)} objects: {len(problems)} difference(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
