//! The results file read from Python: `scripts/read_results.py --check` opens it with
//! `xarray.open_dataset(.., engine="h5netcdf")` and checks dimension and variable names.

use std::path::Path;
use std::process::Command;

use sharpsweep::record::{Axes, Column, Results, RunRecord, RunStatus, TaskKey};
use sharpsweep::store::{write_group_table, FileMeta, ResultsFile};

const MODULES: &str = "import h5py, xarray, h5netcdf, pandas";

/// Makes sure the Python packages are importable, installing them with pip if not.
/// Fails (never skips) when they cannot be had.
fn ensure_python_packages() {
    // The tests of this file run in parallel: one pip at a time.
    static PIP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _pip = PIP.lock().unwrap_or_else(|e| e.into_inner());
    let importable = || {
        Command::new("python3")
            .args(["-c", MODULES])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3: {e}"))
            .status
            .success()
    };
    if importable() {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-m", "pip", "install", "--quiet", "h5py", "xarray", "h5netcdf", "pandas",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pip: {e}"));
    assert!(
        out.status.success(),
        "pip install h5py xarray h5netcdf pandas failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(importable(), "installed, but `{MODULES}` still fails");
}

fn record(steps: usize, status: RunStatus, x: f64) -> RunRecord {
    let m = steps + 1;
    let mut r = RunRecord::unmeasured(10.0 + x, 2.0 / (10.0 + x), status, steps, 2);
    r.diverged_at = (status == RunStatus::Diverged).then_some(2);
    r.loss = (0..m).map(|t| 0.05 * (1.0 + x * t as f64)).collect();
    r.sharpness = (0..m).map(|t| 10.0 + x - t as f64).collect();
    r.hvps = vec![25; m];
    r.residual = vec![1e-4; m];
    r.converged = vec![true; m];
    r.interp_loss = vec![0.05, 0.06];
    if status == RunStatus::Failed {
        r.message = "out of memory".into();
    }
    r.seconds = 0.5;
    r
}

fn write_sample(path: &Path) {
    write_sample_with_axes(path, Axes::default());
}

fn write_sample_with_axes(path: &Path, axes: Axes) {
    let steps = 4;
    let keys: Vec<TaskKey> = (0..4)
        .map(|i| TaskKey {
            c: 2f64.powf(1.0 + i as f64 * 0.5),
            depth: 4,
            width: 128,
            seed: 0,
            sgd_seed: i,
            // Points 0, 1, 2, 3 when there are as many (one each), else all 0.
            axis_point: if axes.n_points() >= 4 { i as u32 } else { 0 },
        })
        .collect();
    let results = Results {
        k: sharpsweep::record::EigenCount::ONE,
        steps,
        interp_alpha: vec![0.0, 1.0],
        records: vec![None; keys.len()],
        keys,
        axes,
    };
    let meta = FileMeta {
        config_text: "steps = 4\n".into(),
        config_sha256: "0123abcd".into(),
        conventions: vec![("loss".into(), "1/(2Bk) sum (f-y)^2".into())],
        program_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: "test".into(),
        mpi_version: "none".into(),
        cpu_features: "test".into(),
        ranks: 1,
        slurm_job_id: None,
    };
    let mut f = ResultsFile::create(path, &meta, &results, false).unwrap();
    f.write_record(
        &results.keys[0].clone(),
        &record(steps, RunStatus::Done, 0.0),
    )
    .unwrap();
    f.write_record(
        &results.keys[1].clone(),
        &record(steps, RunStatus::Diverged, 5.0),
    )
    .unwrap();
    f.write_record(
        &results.keys[2].clone(),
        &record(steps, RunStatus::Failed, 0.0),
    )
    .unwrap();
    f.close().unwrap();
}

/// HDF5 opens files without close-on-exec; the library sets the flag right after, but a
/// child spawned by the other test in that instant would inherit the file's lock. The two
/// tests of this binary therefore take turns (sharpsweep itself spawns no children).
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn xarray_reads_the_results_file() {
    let _turn = FILES.lock().unwrap_or_else(|e| e.into_inner());
    ensure_python_packages();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.h5");
    write_sample(&path);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read_results.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "read_results.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("check: ok"), "{stdout}");
    for word in [
        "diverged",
        "failed",
        "pending",
        "done",
        "lambda0",
        "out of memory",
    ] {
        assert!(
            stdout.contains(word),
            "`{word}` not in the output:\n{stdout}"
        );
    }
}

#[test]
fn xarray_reads_an_analysis_group() {
    let _turn = FILES.lock().unwrap_or_else(|e| e.into_inner());
    ensure_python_packages();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.h5");
    write_sample(&path);
    let columns = [
        ("depth", Column::I64(vec![2, 4])),
        ("c_loss", Column::F64(vec![2.5, 3.0])),
        ("phase", Column::Str(vec!["a".into(), "b".into()])),
    ];
    write_group_table(
        &path,
        "analysis/critical",
        &columns,
        &[("epsilon", "0".into())],
    )
    .unwrap();
    let code = r#"
import sys, xarray as xr
ds = xr.open_dataset(sys.argv[1], group="analysis/critical", engine="h5netcdf")
assert dict(ds.sizes) == {"row": 2}, ds.sizes
assert all(ds[v].dims == ("row",) for v in ["depth", "c_loss", "phase"]), ds
assert list(ds["phase"].values) == ["a", "b"] and ds.attrs["epsilon"] == "0", ds
root = xr.open_dataset(sys.argv[1], engine="h5netcdf")
assert root["loss"].dims == ("run", "step")
print("group: ok")
"#;
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("group: ok"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn xarray_reads_the_variables_of_grid_axes() {
    let _turn = FILES.lock().unwrap_or_else(|e| e.into_inner());
    ensure_python_packages();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.h5");
    let axes = Axes::from_text(
        "\"model.activation\" = [\"relu\", \"tanh\"]\n\"model.bias\" = [false, true]\n\
         \"model.loss\" = [\"mse\"]\n\"train.momentum\" = [0.0]\n",
    )
    .unwrap();
    write_sample_with_axes(&path, axes);
    // The layout check of read_results.py holds with axes too.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read_results.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("check: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = r#"
import sys, xarray as xr
ds = xr.open_dataset(sys.argv[1], engine="h5netcdf")
for v in ["axis_point", "activation", "bias", "model_loss", "momentum"]:
    assert ds[v].dims == ("run",), (v, ds[v].dims)
assert list(ds["axis_point"].values) == [0, 1, 2, 3]
assert list(ds["activation"].values) == ["relu", "relu", "tanh", "tanh"], ds["activation"].values
assert list(ds["bias"].values) == [0, 1, 0, 1] and ds["bias"].attrs["flag_meanings"] == "false true"
assert list(ds["model_loss"].values) == ["mse"] * 4 and ds["model_loss"].attrs["axis_key"] == "model.loss"
assert list(ds["momentum"].values) == [0.0] * 4
assert ds["loss"].dims == ("run", "step")
assert ds.attrs["axes"].splitlines()[0] == '"model.activation" = ["relu", "tanh"]', ds.attrs["axes"]
df = ds[["c", "activation", "bias", "status"]].to_dataframe()
assert df.groupby(["activation", "bias"]).size().tolist() == [1, 1, 1, 1]
print("axes: ok")
"#;
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("axes: ok"),
        "{stdout}\n{stderr}"
    );
}
