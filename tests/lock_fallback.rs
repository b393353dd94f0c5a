//! A filesystem without `flock` (simulated with an `LD_PRELOAD` shim, `tests/noflock.c`,
//! whose `flock` fails with ENOSYS): the sweep falls back to a lock file and says so; it
//! completes with the same data as a normal sweep; a second writer is refused and leaves
//! nothing behind; the stale lock of a killed writer is taken over.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Builds the shim into `dir` with the C compiler.
fn build_shim(dir: &Path) -> PathBuf {
    let so = dir.join("noflock.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/noflock.c");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .output()
        .expect("cc (a C compiler) must be installed");
    assert!(out.status.success(), "cc: {out:?}");
    so
}

fn without_flock(shim: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir).env("LD_PRELOAD", shim);
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run sharpsweep")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn history(path: &Path) -> Vec<String> {
    sharpsweep::store::read_results(path).unwrap().1.history
}

#[test]
fn without_flock_a_lock_file_guards_the_results_file() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let shim = build_shim(d);
    let cfg = common::slow_config(d, "log2_c = { start = 0.0, stop = 4.5, step = 0.5 }");

    let normal = sharpsweep(d, &["sweep", &cfg, "--out", "normal.h5", "--quiet"]);
    expect_code(&normal, 0, "normal sweep");
    assert!(history(&d.join("normal.h5"))[0].contains("(writer lock: flock)"));

    // The fallback: completes, equals the normal sweep, reports the mechanism.
    let fb = run(without_flock(
        &shim,
        d,
        &["sweep", &cfg, "--out", "fb.h5", "--quiet"],
    ));
    expect_code(&fb, 0, "sweep without flock");
    let err = String::from_utf8_lossy(&fb.stderr);
    assert!(
        err.contains("flock is not supported") && err.contains("fb.h5.journal.lock"),
        "{err}"
    );
    let h = history(&d.join("fb.h5"));
    assert!(
        h[0].contains("writer lock: lock file (flock unsupported here: Function not implemented"),
        "{h:?}"
    );
    assert_same_data(
        &read(&d.join("normal.h5")),
        &read(&d.join("fb.h5")),
        "lock-file sweep vs flock sweep",
    );
    assert!(!d.join("fb.h5.journal.lock").exists(), "lock file left");
    assert!(!d.join("fb.h5.journal").exists(), "journal left");

    // A live writer (a longer sweep, in its own directory): a second sweep on the same
    // file is refused and leaves nothing behind.
    let d = &d.join("live");
    std::fs::create_dir(d).unwrap();
    let cfg = common::slow_config(d, "log2_c = { start = 0.0, stop = 4.5, step = 0.1 }");
    let mut first = without_flock(&shim, d, &["sweep", &cfg, "--out", "live.h5", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = d.join("live.h5.journal.lock");
    let t0 = Instant::now();
    while !(lock.exists() && d.join("live.h5").exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no lock file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let held = std::fs::read_to_string(&lock).unwrap();
    assert!(held.contains(&format!("pid={}", first.id())), "{held}");
    let before = listing(d);
    for args in [
        ["sweep", &cfg, "--out", "live.h5", "--quiet", "--resume"],
        ["sweep", &cfg, "--out", "live.h5", "--quiet", "--force"],
    ] {
        let second = run(without_flock(&shim, d, &args));
        expect_code(&second, 1, "a second writer");
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(
            err.contains("another sweep is writing")
                && err.contains(&format!("pid {}", first.id()))
                && err.contains(sharpsweep::store::LOCK_OVERRIDE_ENV),
            "{err}"
        );
        assert_eq!(listing(d), before, "a refused start changed the directory");
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), held);
    }

    // Killed: its lock file stays; the next start takes it over and finishes the sweep.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(lock.exists(), "a killed writer's lock file stays");
    let resumed = run(without_flock(
        &shim,
        d,
        &["sweep", &cfg, "--out", "live.h5", "--quiet", "--resume"],
    ));
    expect_code(&resumed, 0, "resume after a kill");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        err.contains("taking over the stale lock file") && err.contains("is gone"),
        "{err}"
    );
    assert!(!lock.exists(), "lock file left after the resumed sweep");
    let h = history(&d.join("live.h5"));
    assert!(
        h.iter()
            .any(|l| l.contains("resumed by") && l.contains("writer lock: lock file")),
        "{h:?}"
    );
    let live = read(&d.join("live.h5"));
    assert!(live.records.iter().all(|r| r.is_some()), "runs left undone");
}
