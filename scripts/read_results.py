#!/usr/bin/env python3
"""Read a sharpsweep results file (HDF5, netCDF-4 layout) with xarray and pandas.

    python3 scripts/read_results.py results.h5           # print the run table
    python3 scripts/read_results.py results.h5 --check   # also verify the layout

Needs: python3 -m pip install h5py xarray h5netcdf pandas
"""
import argparse
import sys

import xarray as xr

STATUS = {0: "pending", 1: "done", 2: "diverged", 3: "failed"}
RUN_VARS = ["c", "depth", "width", "seed", "sgd_seed", "lambda0", "eta",
            "status", "diverged_at", "seconds", "message"]
STEP_VARS = ["loss", "sharpness", "hvps", "residual", "converged"]


def run_table(ds):
    """One row per run: grid coordinates and outcome, status as names."""
    cols = ["c", "depth", "width", "seed", "status", "lambda0", "eta", "diverged_at"]
    df = ds[cols].to_dataframe()
    df["status"] = df["status"].map(STATUS)
    return df


def check(ds):
    """Assert the layout that sharpsweep promises (raises AssertionError)."""
    dims = set(ds.sizes)
    assert {"run", "step"} <= dims, f"dimensions {dims}"
    assert not any(d.startswith("phony_dim") for d in dims), f"phony dimensions: {dims}"
    for v in RUN_VARS:
        assert ds[v].dims == ("run",), f"{v}: {ds[v].dims}"
    for v in STEP_VARS:
        assert ds[v].dims == ("run", "step"), f"{v}: {ds[v].dims}"
    if "interp" in dims:
        assert ds["interp_loss"].dims == ("run", "interp")
    assert list(ds["run"].values) == list(range(ds.sizes["run"]))
    assert list(ds["step"].values) == list(range(ds.sizes["step"]))
    assert ds["status"].attrs["flag_meanings"] == "pending done diverged failed"
    for a in ["config", "config_sha256", "conventions", "program_version", "git_commit",
              "mpi_version", "hdf5_version", "cpu_features", "ranks", "history"]:
        assert a in ds.attrs, f"attribute {a} missing"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--check", action="store_true", help="assert the file layout")
    args = p.parse_args()

    ds = xr.open_dataset(args.file, engine="h5netcdf")
    if args.check:
        check(ds)
    print(f"{args.file}: {ds.sizes['run']} runs, {ds.sizes['step'] - 1} steps")
    print(ds.attrs["history"])
    print(run_table(ds).to_string())

    # Trajectories as xarray: L_t / L_0 and lambda_t / lambda_0 of every finished run.
    done = ds.where(ds["status"] == 1, drop=True)
    loss_ratio = done["loss"] / done["loss"].isel(step=0)
    sharp_ratio = done["sharpness"] / done["lambda0"]
    print("max_t L_t/L_0 of done runs:", loss_ratio.max("step").values)
    print("max_t lambda_t/lambda_0 of done runs:", sharp_ratio.max("step").values)
    failed = ds["message"].where(ds["status"] == 3, drop=True)
    for run, msg in zip(failed["run"].values, failed.values):
        print(f"run {run} failed: {msg}")
    if args.check:
        print("check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
