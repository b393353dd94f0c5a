//! Surviving the cluster: a sweep drained by SIGTERM and resumed ends with the same data
//! as one never stopped; a sweep killed with SIGKILL leaves a readable file with every
//! run it finished; a finished sweep resumed does nothing.

mod common;
use common::*;
use std::path::Path;

/// A grid of 40 runs that takes a few seconds in one process.
fn slow_config(dir: &Path) -> String {
    common::slow_config(dir, "log2_c = { start = 0.0, stop = 4.5, step = 0.5 }")
}

#[test]
fn sigterm_drains_and_resume_completes_identically() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = slow_config(d);
    let out = sharpsweep(d, &["sweep", &cfg, "--out", "full.h5", "--quiet"]);
    expect_code(&out, 0, "uninterrupted sweep");
    let full = read(&d.join("full.h5"));

    let code = interrupt(d, &["sweep", &cfg, "--out", "part.h5"], 5, libc::SIGTERM);
    assert_eq!(
        code,
        Some(3),
        "a drained sweep exits 3 (incomplete, resume me)"
    );
    let part = read(&d.join("part.h5"));
    let finished = part.records.iter().filter(|r| r.is_some()).count();
    assert!(
        (5..40).contains(&finished),
        "{finished} runs finished before the drain"
    );

    // Without --resume the file is protected.
    let refused = sharpsweep(d, &["sweep", &cfg, "--out", "part.h5", "--quiet"]);
    expect_code(&refused, 1, "existing file without --resume");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "part.h5", "--resume", "--quiet"],
    );
    expect_code(&resumed, 0, "resume");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains(&format!("{} run now", 40 - finished)), "{err}");
    assert_same_data(
        &full,
        &read(&d.join("part.h5")),
        "drained + resumed vs uninterrupted",
    );

    // A finished sweep resumed does nothing.
    let again = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "part.h5", "--resume", "--quiet"],
    );
    expect_code(&again, 0, "resume of a finished sweep");
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 run now"));
    let history = sharpsweep::store::read_results(&d.join("part.h5"))
        .unwrap()
        .1
        .history;
    assert!(
        history.len() >= 5,
        "history has a line per start and end: {history:?}"
    );
}

#[test]
fn sigkill_leaves_a_readable_file_with_every_finished_run() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = slow_config(d);
    let code = interrupt(d, &["sweep", &cfg, "--out", "killed.h5"], 4, libc::SIGKILL);
    assert_eq!(code, Some(-libc::SIGKILL));
    let killed = read(&d.join("killed.h5"));
    let finished: Vec<usize> = (0..40).filter(|&i| killed.records[i].is_some()).collect();
    assert!(
        finished.len() >= 4,
        "runs reported done are in the file: {}",
        finished.len()
    );

    // Those runs are exactly what a complete sweep computes, and resume finishes the rest.
    let resumed = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "killed.h5", "--resume", "--quiet"],
    );
    expect_code(&resumed, 0, "resume after SIGKILL");
    let out = sharpsweep(d, &["sweep", &cfg, "--out", "full.h5", "--quiet"]);
    expect_code(&out, 0, "reference sweep");
    assert_same_data(
        &read(&d.join("full.h5")),
        &read(&d.join("killed.h5")),
        "killed + resumed vs full",
    );
}

#[test]
fn resume_with_a_changed_config_is_refused_under_mpirun() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap();
    expect_code(
        &sharpsweep(d, &["sweep", cfg, "--out", "r.h5", "--quiet"]),
        0,
        "first sweep",
    );
    let out = mpirun(
        d,
        2,
        &[],
        &[
            "sweep",
            cfg,
            "--out",
            "r.h5",
            "--resume",
            "--set",
            "train.steps=3",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config") && err.contains("sha") || err.contains("hash"),
        "{err}"
    );
    // the file is untouched
    assert_eq!(read(&d.join("r.h5")).steps, 2);
    // --force overwrites
    expect_code(
        &sharpsweep(
            d,
            &[
                "sweep",
                cfg,
                "--out",
                "r.h5",
                "--force",
                "--set",
                "train.steps=3",
                "--quiet",
            ],
        ),
        0,
        "force",
    );
    assert_eq!(read(&d.join("r.h5")).steps, 3);
}
