//! A sweep drained by SIGTERM (a `scancel`) says "cancelled" in its history and on stderr,
//! and a resumed start then finishes it.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn sigterm_reads_as_cancelled_in_history_and_stderr() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = common::slow_config(d, "log2_c = { start = 0.0, stop = 4.5, step = 0.5 }");
    let mut child = Command::new(bin())
        .args(["sweep", &cfg, "--out", "c.h5", "--progress-every", "0.001"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log += &line;
        log.push('\n');
        let done: Option<usize> = line
            .strip_prefix("sharpsweep: ")
            .and_then(|l| l.split('/').next())
            .and_then(|n| n.parse().ok());
        if done.is_some_and(|n| n >= 3) {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            break;
        }
    }
    for line in lines {
        log += &line.unwrap_or_default();
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("sharpsweep: cancelled (SIGTERM)"), "{log}");
    let history = sharpsweep::store::read_results(&d.join("c.h5"))
        .unwrap()
        .1
        .history;
    let last = history.last().unwrap();
    assert!(last.contains(" cancelled (SIGTERM): "), "{history:?}");
    assert!(!last.contains("drained"), "{history:?}");
    let resumed = sharpsweep(d, &["sweep", &cfg, "--out", "c.h5", "--resume", "--quiet"]);
    expect_code(&resumed, 0, "resume after the cancel");
}
