//! Helpers shared by the integration tests: run the real binary (optionally under
//! mpirun), write tiny configs, and compare results files variable by variable.
#![allow(dead_code)]

use sharpsweep::record::{Column, Results, Role, RunRecord, SCHEMA};
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

/// Four lines of a Fashion-MNIST sweep (depths 2, 3 × width 48 × seeds 1, 2; 30 steps)
/// whose runs take a few seconds in all in one process, `grid` its `[grid]` section;
/// written to `dir/slow.toml`, whose path is returned.
pub fn slow_config(dir: &Path, grid: &str) -> String {
    let text = format!(
        r#"
[data]
n_train = 512
[model]
depth = [2, 3]
width = [48]
[train]
batch_size = 128
steps = 30
seeds = [1, 2]
[sharpness]
measure_n = 256
[grid]
{grid}
"#
    );
    let p = dir.join("slow.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Reads a results file.
pub fn read(path: &Path) -> Results {
    read_results(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .0
}

/// The values of a record, variable by variable in schema order, floats as bits; the
/// wall-clock `seconds` left out (timing is not data).
pub fn record_bits(r: &RunRecord) -> Vec<(&'static str, String)> {
    SCHEMA
        .iter()
        .filter(|v| v.name != "seconds")
        .filter_map(|v| match v.role {
            Role::Outcome { get, .. } => {
                let text = match get(r).unwrap() {
                    Column::F64(x) => {
                        format!("{:?}", x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
                    }
                    other => format!("{other:?}"),
                };
                Some((v.name, text))
            }
            _ => None,
        })
        .collect()
}

/// Asserts two results hold the same data in every variable of the record schema, bit
/// for bit, except the wall-clock `seconds`.
pub fn assert_same_data(a: &Results, b: &Results, what: &str) {
    assert_eq!(a.steps, b.steps, "{what}: steps");
    assert_eq!(a.keys, b.keys, "{what}: run table coordinates");
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&a.interp_alpha),
        bits(&b.interp_alpha),
        "{what}: interp"
    );
    for (i, (ra, rb)) in a.records.iter().zip(&b.records).enumerate() {
        match (ra, rb) {
            (None, None) => {}
            (Some(x), Some(y)) => assert_eq!(record_bits(x), record_bits(y), "{what}: run {i}"),
            _ => panic!(
                "{what}: run {i} finished in one file only ({:?} vs {:?})",
                ra.is_some(),
                rb.is_some()
            ),
        }
    }
}

/// Asserts that every run finished in `part` is a run of `full` (by key) and holds exactly
/// what `full` holds for it; returns how many there are. (The rows of a file being written
/// can differ from the finished file's: an adaptive search's file grows.)
pub fn assert_finished_match(full: &Results, part: &Results, what: &str) -> usize {
    let mut n = 0;
    for (key, rec) in part.keys.iter().zip(&part.records) {
        if let Some(rec) = rec {
            let row = full
                .row_of(key)
                .unwrap_or_else(|| panic!("{what}: run {key:?} finished here only"));
            let reference = full.records[row]
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: run {key:?} finished here only"));
            assert_eq!(
                record_bits(reference),
                record_bits(rec),
                "{what}: run {key:?}"
            );
            n += 1;
        }
    }
    n
}

/// HDF5 opens files without close-on-exec (the library sets the flag just after), so a
/// child process spawned by one test at that instant could inherit the lock of a file
/// another test of the same binary has open. Tests that open files in-process take turns.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `sharpsweep ARGS` (a sweep; progress lines are turned on), waits until its
/// progress lines report `after` finished runs, sends `signal`, and returns the exit code
/// (minus the signal number when a signal ended it).
pub fn interrupt(dir: &Path, args: &[&str], after: usize, signal: i32) -> Option<i32> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .args(["--progress-every", "0.001"])
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut lines = stderr.lines();
    let mut seen = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        log += &line;
        log.push('\n');
        let done: Option<usize> = line
            .strip_prefix("sharpsweep: ")
            .and_then(|l| l.split('/').next())
            .and_then(|n| n.parse().ok());
        seen |= done.is_some();
        if done.is_some_and(|d| d >= after) {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
            break;
        }
    }
    // keep reading, so the child never writes into a closed pipe
    for line in lines {
        log += &line.unwrap_or_default();
    }
    let status = child.wait().unwrap();
    assert!(seen, "no progress lines seen:\n{log}");
    use std::os::unix::process::ExitStatusExt;
    status.code().or(status.signal().map(|s| -s))
}
