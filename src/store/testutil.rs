//! Test helpers shared by the store's unit tests: sample metadata, keys and records, a
//! sample file, bitwise comparisons, and one lock that serialises tests opening files.

use std::path::Path;

use super::{FileMeta, ResultsFile};
use crate::hessian::StopReason;
use crate::record::{Column, EigenCount, Results, Role, RunRecord, RunStatus, TaskKey, SCHEMA};

pub(crate) fn meta(hash: &str) -> FileMeta {
    FileMeta {
        config_text: "[sweep]\nsteps = 4\n".into(),
        config_sha256: hash.into(),
        conventions: vec![
            ("loss".into(), "1/(2Bk) sum (f - y)^2".into()),
            ("eta_rule".into(), "eta = c / lambda0".into()),
            (
                "sharpness".into(),
                "lanczos, rtol 1e-3\nfull Hessian".into(),
            ),
        ],
        program_version: "0.1.0".into(),
        git_commit: "abc123".into(),
        mpi_version: "Open MPI v4.1.4".into(),
        cpu_features: "avx2 avx512f fma".into(),
        ranks: 4,
        slurm_job_id: Some("777".into()),
    }
}

pub(crate) fn key(i: usize) -> TaskKey {
    TaskKey {
        c: 2f64.powf(i as f64 * 0.1),
        depth: 2 + (i % 3) as u32,
        width: 64,
        seed: i as u64,
        sgd_seed: u64::MAX - i as u64,
        axis_point: 0,
    }
}

pub(crate) fn empty(n: usize, steps: usize, interp: &[f64]) -> Results {
    Results {
        k: EigenCount::ONE,
        steps,
        interp_alpha: interp.to_vec(),
        keys: (0..n).map(key).collect(),
        records: vec![None; n],
        axes: Default::default(),
    }
}

pub(crate) fn done(steps: usize, n_interp: usize, x: f64) -> RunRecord {
    let m = steps + 1;
    let even = |t: usize| t % 2 == 0;
    let mut r = RunRecord::unmeasured(12.5 + x, 0.16 / (12.5 + x), RunStatus::Done, steps, 0);
    r.loss = (0..m).map(|t| 0.05 / (1.0 + t as f64 + x)).collect();
    r.sharpness = (0..m)
        .map(|t| if even(t) { 12.5 - t as f64 } else { f64::NAN })
        .collect();
    r.hvps = (0..m)
        .map(|t| if even(t) { 20 + t as i32 } else { -1 })
        .collect();
    r.residual = (0..m)
        .map(|t| if even(t) { 1e-4 * t as f64 } else { f64::NAN })
        .collect();
    r.converged = (0..m).map(even).collect();
    r.stop_reason = (0..m)
        .map(|t| even(t).then_some(StopReason::Converged))
        .collect();
    r.interp_loss = (0..n_interp).map(|a| 0.05 + a as f64 * 1e-3).collect();
    r.seconds = 1.25 + x;
    r
}

pub(crate) fn diverged(steps: usize, n_interp: usize) -> RunRecord {
    let mut r = done(steps, n_interp, 1.0);
    r.status = RunStatus::Diverged;
    r.diverged_at = Some(2);
    for t in 3..=steps {
        r.loss[t] = f64::NAN;
        r.sharpness[t] = f64::NAN;
        r.hvps[t] = -1;
        r.residual[t] = f64::NAN;
        r.converged[t] = false;
        r.stop_reason[t] = None;
    }
    r.loss[2] = f64::INFINITY;
    r.interp_loss = vec![f64::NAN; n_interp];
    r
}

pub(crate) fn failed(steps: usize, n_interp: usize) -> RunRecord {
    RunRecord {
        message: "Lanczos did not converge: ‖r‖ = 3e-2 (λ ≈ 12.5)\nsecond line".into(),
        seconds: 0.5,
        ..RunRecord::unmeasured(f64::NAN, f64::NAN, RunStatus::Failed, steps, n_interp)
    }
}

pub(crate) fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Bitwise equality of two results (NaN == NaN at the same positions).
pub(crate) fn assert_same(a: &Results, b: &Results) {
    assert_eq!(a.steps, b.steps);
    assert!(same_f64(&a.interp_alpha, &b.interp_alpha));
    assert_eq!(a.keys.len(), b.keys.len());
    for (x, y) in a.keys.iter().zip(&b.keys) {
        assert_eq!(x.c.to_bits(), y.c.to_bits());
        assert_eq!(
            (x.depth, x.width, x.seed, x.sgd_seed),
            (y.depth, y.width, y.seed, y.sgd_seed)
        );
    }
    assert_eq!(a.records.len(), b.records.len());
    for (i, (x, y)) in a.records.iter().zip(&b.records).enumerate() {
        match (x, y) {
            (None, None) => {}
            (Some(x), Some(y)) => assert_same_record(x, y, i),
            _ => panic!("run {i}: {x:?} vs {y:?}"),
        }
    }
}

/// Bitwise equality of two records, every schema variable (NaN == NaN).
pub(crate) fn assert_same_record(x: &RunRecord, y: &RunRecord, i: usize) {
    for var in SCHEMA {
        if let Role::Outcome { get, .. } = var.role {
            let (a, b) = (get(x).unwrap(), get(y).unwrap());
            assert_eq!(bits(&a), bits(&b), "run {i}: {}", var.name);
        }
    }
}

/// A column with floats replaced by their bits, for exact comparisons.
pub(crate) fn bits(c: &Column) -> String {
    match c {
        Column::F64(v) => format!("{:?}", v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// HDF5 keeps its files open without close-on-exec, and holds an flock on each: an
/// `h5dump` child forked by one test while another test has its file open inherits
/// that lock and makes the other test's next open fail. Tests here run one at a time.
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file with 5 runs: 0 done, 1 diverged, 2 failed, 3 pending, 4 done.
pub(crate) fn sample(path: &Path, interp: &[f64]) -> Results {
    let steps = 6;
    let mut expect = empty(5, steps, interp);
    let mut f = ResultsFile::create(path, &meta("h1"), &expect, false).unwrap();
    let k = interp.len();
    expect.records[0] = Some(done(steps, k, 0.0));
    expect.records[1] = Some(diverged(steps, k));
    expect.records[2] = Some(failed(steps, k));
    expect.records[4] = Some(done(steps, k, 4.0));
    for i in [0, 1, 2, 4] {
        f.write_record(&key(i), expect.records[i].as_ref().unwrap())
            .unwrap();
    }
    f.close().unwrap();
    expect
}

pub(crate) fn h5dump(args: &[&str], path: &Path) -> String {
    let out = std::process::Command::new("h5dump")
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run h5dump ({e}): install hdf5-tools (apt-get install hdf5-tools)")
        });
    assert!(
        out.status.success(),
        "h5dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
