//! Surviving the cluster: a sweep drained by SIGTERM and resumed ends with the same data
//! as one never stopped; a sweep killed with SIGKILL leaves a readable file with every
//! run it finished; a finished sweep resumed does nothing.

mod common;
use common::*;
use sharpsweep::record::RunStatus;
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

/// Two runs of 1500 steps that checkpoint every 25 steps (a few seconds in all): the
/// sharpness at every step up to 12 and then every 10 steps, the loss every 3 steps and
/// with the sharpness.
fn long_runs(dir: &Path) -> String {
    let text = r#"
[data]
n_train = 512
[model]
depth = [3]
width = [48]
[train]
batch_size = 64
steps = 1500
seeds = [1]
checkpoint_every = 25
loss_every = 3
[sharpness]
measure_n = 128
every = 10
dense_steps = 12
[grid]
c = [1.0, 2.0]
"#;
    let p = dir.join("long.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Starts `program ARGS` in `dir`, waits until `FILE.checkpoints` holds a whole checkpoint,
/// sends `signal`, and returns the exit code (minus the signal number when a signal ended
/// it) and stderr.
fn signal_at_first_checkpoint(
    dir: &Path,
    program: &Path,
    args: &[&str],
    file: &str,
    signal: i32,
) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ckpts = dir.join(format!("{file}.checkpoints"));
    let start = std::time::Instant::now();
    // A whole checkpoint, not one still being written to its temporary name.
    let whole = |d: std::fs::ReadDir| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".ckpt"))
    };
    while !std::fs::read_dir(&ckpts).is_ok_and(whole) {
        assert!(
            start.elapsed().as_secs() < 120,
            "no checkpoint appeared in {}",
            ckpts.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().or(out.status.signal().map(|s| -s));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn runs_killed_or_drained_mid_way_continue_from_their_checkpoints_bitwise() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = long_runs(d);
    let out = sharpsweep(d, &["sweep", &cfg, "--out", "full.h5", "--quiet"]);
    expect_code(&out, 0, "uninterrupted sweep");
    assert!(
        !d.join("full.h5.checkpoints").exists(),
        "a finished sweep leaves none"
    );
    let full = read(&d.join("full.h5"));
    // The schedule, which every interrupted and resumed file below repeats bit for bit.
    for rec in full.records.iter().map(|r| r.as_ref().unwrap()) {
        assert_eq!(rec.status, RunStatus::Done);
        for t in 0..=1500 {
            let sharp = t <= 12 || t % 10 == 0;
            assert_eq!(rec.hvps[t] >= 0, sharp, "hvps at {t}");
            assert_eq!(rec.loss[t].is_nan(), !(sharp || t % 3 == 0), "loss at {t}");
        }
    }

    // SIGKILL mid-run: the checkpoints survive, and --resume continues from them.
    let args = ["sweep", &cfg, "--out", "killed.h5", "--quiet"];
    let (code, _) = signal_at_first_checkpoint(d, &bin(), &args, "killed.h5", libc::SIGKILL);
    assert_eq!(code, Some(-libc::SIGKILL));
    let resumed = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "killed.h5", "--resume", "--quiet"],
    );
    expect_code(&resumed, 0, "resume after SIGKILL");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        err.contains("continues from its checkpoint at step"),
        "{err}"
    );
    assert_same_data(
        &full,
        &read(&d.join("killed.h5")),
        "killed mid-run + resumed",
    );
    assert!(!d.join("killed.h5.checkpoints").exists());
    // A checkpoint left behind by a kill after its run's commit goes with the next start
    // that finds every run finished.
    let stale = d.join("killed.h5.checkpoints");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("d3-w48-s1-g1-c3ff0000000000000-a0.ckpt"), b"old").unwrap();
    let again = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "killed.h5", "--resume", "--quiet"],
    );
    expect_code(&again, 0, "resume of a finished file");
    assert!(!stale.exists(), "stale checkpoints removed");

    // A deadline sooner than the runs can finish (made 40 times longer): they start
    // anyway, stop at a checkpoint at the deadline (exit 3), and the next start goes on
    // from their checkpoints.
    let longer = ["--set", "train.steps=60000", "--deadline", "+2s", "--quiet"];
    let args = [&["sweep", &cfg, "--out", "deadline.h5"][..], &longer[..]].concat();
    expect_code(&sharpsweep(d, &args), 3, "sweep stopped by its deadline");
    let ckpts = std::fs::read_dir(d.join("deadline.h5.checkpoints"))
        .unwrap()
        .count();
    assert_eq!(
        ckpts, 1,
        "the run in flight checkpointed (one rank runs one at a time)"
    );
    let again = sharpsweep(d, &[&args[..], &["--resume"]].concat());
    expect_code(&again, 3, "the next start, stopped by its deadline too");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("continues from its checkpoint at step"),
        "{err}"
    );

    // Under mpirun, a drain (SIGUSR1) stops the runs at their next checkpoint: exit 3 long
    // before they could finish, and the resume completes them identically.
    let launcher = std::path::PathBuf::from("mpirun");
    let program = bin();
    let args = [
        "-np",
        "2",
        "--oversubscribe",
        "--bind-to",
        "none",
        program.to_str().unwrap(),
        "sweep",
        &cfg,
        "--out",
        "drained.h5",
        "--quiet",
    ];
    let (code, err) = signal_at_first_checkpoint(d, &launcher, &args, "drained.h5", libc::SIGUSR1);
    assert_eq!(code, Some(3), "drained: {err}");
    let part = read(&d.join("drained.h5"));
    assert!(
        part.records.iter().any(|r| r.is_none()),
        "a run was stopped at a checkpoint"
    );
    let out = mpirun(
        d,
        2,
        &[],
        &["sweep", &cfg, "--out", "drained.h5", "--resume", "--quiet"],
    );
    expect_code(&out, 0, "resume after the drain");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("continues from its checkpoint at step"),
        "{err}"
    );
    assert_same_data(
        &full,
        &read(&d.join("drained.h5")),
        "drained mid-run + resumed",
    );
}

#[test]
fn a_resume_refuses_a_file_whose_keys_or_attributes_were_edited() {
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 3);
    let cfg = cfg.to_str().unwrap();
    let o = sharpsweep(d, &["sweep", cfg, "--out", "ok.h5", "--quiet"]);
    expect_code(&o, 0, "sweep");
    for (name, edit, want) in [
        ("width.h5", "f['width'][0] = 999", "run 0 (depth"),
        ("c.h5", "f['c'][1] = f['c'][0]", "is held twice"),
        (
            "config.h5",
            "f.attrs['config'] = '[[[ not toml'",
            "attribute `config` is not a readable config",
        ),
        (
            "other.h5",
            "f.attrs['config'] = f.attrs['config'].replace('steps = 3', 'steps = 4')",
            "does not hash to `config_sha256`",
        ),
        ("loss.h5", "del f['loss']", "variable `loss` missing"),
    ] {
        std::fs::copy(d.join("ok.h5"), d.join(name)).unwrap();
        let py = format!(
            "import h5py\nwith h5py.File('{}', 'r+') as f:\n    {edit}\n",
            d.join(name).display()
        );
        let o = std::process::Command::new("python3")
            .args(["-c", &py])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let before = std::fs::read(d.join(name)).unwrap();
        let o = sharpsweep(d, &["sweep", cfg, "--out", name, "--resume", "--quiet"]);
        expect_code(&o, 1, name);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        assert_eq!(
            std::fs::read(d.join(name)).unwrap(),
            before,
            "{name}: the file is left as it was"
        );
    }
}
