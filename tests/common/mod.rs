//! Helpers shared by the integration tests: run the real binary (optionally under
//! mpirun), write tiny configs, and compare results files variable by variable.
#![allow(dead_code)]

use sharpsweep::record::Results;
use sharpsweep::store::read_results;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sharpsweep"))
}

/// A fresh temporary directory (kept until the TempDir is dropped).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `sharpsweep ARGS` in `dir`.
pub fn sharpsweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sharpsweep")
}

/// `mpirun -np N [extra] sharpsweep ARGS` in `dir` (root and oversubscription allowed).
pub fn mpirun(dir: &Path, np: usize, extra: &[&str], args: &[&str]) -> Output {
    let np = np.to_string();
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", &np, "--oversubscribe", "--bind-to", "none"])
        .args(extra)
        .arg(bin())
        .args(args)
        .current_dir(dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    cmd.output()
        .expect("mpirun (from openmpi-bin) must be installed: run scripts/setup.sh")
}

/// Panics with the process output unless it exited with `code`.
pub fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tiny Fashion-MNIST sweep: 2 depths × 1 width × 2 seeds × `n_c` values of c.
pub fn tiny_config(dir: &Path, name: &str, n_c: usize, steps: usize) -> PathBuf {
    let cs: Vec<String> = (0..n_c)
        .map(|i| format!("{:.3}", 2f64.powf(0.5 * i as f64)))
        .collect();
    let text = format!(
        r#"
[data]
dataset = "fashion-mnist"
n_train = 256
[model]
depth = [2, 3]
width = [16]
[train]
batch_size = 64
steps = {steps}
seeds = [1, 2]
[sharpness]
measure_n = 128
tol = 1e-3
[grid]
c = [{}]
"#,
        cs.join(", ")
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads a results file.
pub fn read(path: &Path) -> Results {
    read_results(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .0
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts two results hold the same data in every variable, bit for bit, except the
/// wall-clock `seconds` (timing is not data).
pub fn assert_same_data(a: &Results, b: &Results, what: &str) {
    assert_eq!(a.steps, b.steps, "{what}: steps");
    assert_eq!(a.keys, b.keys, "{what}: run table coordinates");
    assert_eq!(
        bits(&a.interp_alpha),
        bits(&b.interp_alpha),
        "{what}: interp"
    );
    for (i, (ra, rb)) in a.records.iter().zip(&b.records).enumerate() {
        match (ra, rb) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                assert_eq!(x.status, y.status, "{what}: run {i} status");
                assert_eq!(
                    x.lambda0.to_bits(),
                    y.lambda0.to_bits(),
                    "{what}: run {i} lambda0"
                );
                assert_eq!(x.eta.to_bits(), y.eta.to_bits(), "{what}: run {i} eta");
                assert_eq!(x.diverged_at, y.diverged_at, "{what}: run {i} diverged_at");
                assert_eq!(bits(&x.loss), bits(&y.loss), "{what}: run {i} loss");
                assert_eq!(
                    bits(&x.sharpness),
                    bits(&y.sharpness),
                    "{what}: run {i} sharpness"
                );
                assert_eq!(x.hvps, y.hvps, "{what}: run {i} hvps");
                assert_eq!(
                    bits(&x.residual),
                    bits(&y.residual),
                    "{what}: run {i} residual"
                );
                assert_eq!(x.converged, y.converged, "{what}: run {i} converged");
                assert_eq!(
                    bits(&x.interp_loss),
                    bits(&y.interp_loss),
                    "{what}: run {i} interp_loss"
                );
                assert_eq!(x.message, y.message, "{what}: run {i} message");
            }
            _ => panic!(
                "{what}: run {i} finished in one file only ({:?} vs {:?})",
                ra.is_some(),
                rb.is_some()
            ),
        }
    }
}

/// HDF5 opens files without close-on-exec (the library sets the flag just after), so a
/// child process spawned by one test at that instant could inherit the lock of a file
/// another test of the same binary has open. Tests that open files in-process take turns.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
