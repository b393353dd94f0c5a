//! No kill can corrupt the results file: SIGKILLs at random instants of a fast sweep, a
//! journal cut where a power loss could cut it, a worker rank killed under mpirun, and a
//! file read while its sweep runs.

mod common;

use common::*;
use sharpsweep::record::Results;
use sharpsweep::store::{journal_path, read_results, read_snapshot};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A sweep of many tiny runs on synthetic data (hundreds to a thousand records a second):
/// 16 lines × (1 + 6/`log2_step`) values of c, `steps` SGD steps each.
fn fast_config(dir: &Path, log2_step: f64, steps: usize) -> String {
    fast_config_with(
        dir,
        &format!("log2_c = {{ start = 0.0, stop = 6.0, step = {log2_step} }}"),
        steps,
    )
}

/// The runs of [`fast_config`], `grid` the c keys of its `[grid]` section.
fn fast_config_with(dir: &Path, grid: &str, steps: usize) -> String {
    let text = format!(
        r#"
[data]
dataset = "synthetic"
synthetic_input_dim = 16
n_train = 64
[model]
depth = [2, 3]
width = [8, 16]
[train]
batch_size = 16
steps = {steps}
seeds = [1, 2, 3, 4]
[sharpness]
measure_n = 64
tol = 1e-4
[grid]
{grid}
interp_points = 2
"#
    );
    let p = dir.join("fast.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// xorshift64*: the fuzz's own seeded stream, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn finished(r: &Results) -> usize {
    r.records.iter().filter(|r| r.is_some()).count()
}

/// The reference: the same sweep, never interrupted.
fn reference(d: &Path, cfg: &str) -> Results {
    let out = sharpsweep(d, &["sweep", cfg, "--out", "full.h5", "--quiet"]);
    expect_code(&out, 0, "uninterrupted sweep");
    assert!(
        !journal_path(&d.join("full.h5")).exists(),
        "a closed file has no journal"
    );
    read(&d.join("full.h5"))
}

/// Starts `sweep --resume` and SIGKILLs it `after` later; true when it finished first.
fn start_and_kill(d: &Path, cfg: &str, out: &str, after: Duration) -> bool {
    let mut child = Command::new(bin())
        .args(["sweep", cfg, "--out", out, "--resume", "--quiet"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + after;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "an unkilled start ends well");
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

#[test]
fn a_hundred_sigkills_lose_nothing_and_resume_reaches_the_uninterrupted_file() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    // Long enough (several seconds) to take more than a hundred kills.
    let cfg = fast_config(d, 0.025, 10);
    kill_fuzz(d, &cfg, 110);
}

#[test]
fn sigkills_of_an_adaptive_search_lose_nothing_and_resume_reaches_its_file() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    // A search of about 30 runs per line (4 criteria, brackets down to 1/64).
    let grid = "search = \"adaptive\"\nlog2_c = { start = 0.0, stop = 6.0, step = 1.0 }\nresolution = 0.016";
    let cfg = fast_config_with(d, grid, 10);
    kill_fuzz(d, &cfg, 40);
}

/// SIGKILLs `sweep --resume` of `cfg` at seeded random instants (`SHARPSWEEP_FUZZ_SEED`
/// replays a seed) `kills` times; after each kill the HDF5 file alone and with its journal
/// hold only correct runs, never fewer; a final resume gives the uninterrupted file.
fn kill_fuzz(d: &Path, cfg: &str, kill_count: usize) {
    let full = reference(d, cfg);
    let seed = std::env::var("SHARPSWEEP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let mut rng = Rng(seed | 1);
    // Kill starts of the sweep until `kill_count` kills; should a sweep finish first (a
    // fast machine), check it and start another file, so the count never depends on speed.
    let (mut kills, mut seen, mut round) = (0, 0, 0);
    let mut name = String::from("fuzz0.h5");
    while kills < kill_count {
        let path = d.join(&name);
        // Early instants hit the start-up (file creation, resume, the first snapshot);
        // later ones the runs and the snapshots between them.
        let after = Duration::from_millis(5 + rng.below(if kills % 3 == 0 { 60 } else { 250 }));
        if start_and_kill(d, cfg, &name, after) {
            assert!(!journal_path(&path).exists());
            assert_same_data(&full, &read(&path), &format!("{name}, killed and resumed"));
            round += 1;
            name = format!("fuzz{round}.h5");
            seen = 0;
            continue;
        }
        kills += 1;
        if !path.exists() {
            continue; // killed before the first snapshot was renamed into place
        }
        let what = format!("kill {kills} (seed {seed}, after {after:?})");
        // The HDF5 file alone, as h5py sees it, opens and holds only correct runs ...
        let (alone, _) = read_snapshot(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_finished_match(&full, &alone, &format!("{what}, HDF5 file alone"));
        // ... and with the journal every run finished so far, never fewer than before.
        let (now, _) = read_results(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        let n = assert_finished_match(&full, &now, &what);
        assert!(n >= seen, "{what}: {n} finished runs, {seen} before");
        seen = n;
    }
    eprintln!(
        "{kills} SIGKILLs (seed {seed}) over {} sweep(s); {seen} of {} runs finished before the last",
        round + 1,
        full.keys.len()
    );
    let out = sharpsweep(d, &["sweep", cfg, "--out", &name, "--resume", "--quiet"]);
    expect_code(&out, 0, "final resume");
    let path = d.join(&name);
    assert!(!journal_path(&path).exists());
    assert_same_data(&full, &read(&path), "killed and resumed");
    assert_eq!(finished(&full), full.keys.len());
}

#[test]
fn a_journal_cut_anywhere_keeps_every_record_before_the_cut() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = fast_config(d, 0.05, 4);
    let full = reference(d, &cfg);
    // A killed sweep leaves a snapshot and a journal with the runs since.
    let mut waited = 400;
    let journal = loop {
        let _ = std::fs::remove_file(d.join("cut.h5"));
        assert!(!start_and_kill(
            d,
            &cfg,
            "cut.h5",
            Duration::from_millis(waited)
        ));
        let j = std::fs::read(journal_path(&d.join("cut.h5"))).unwrap();
        if j.len() > 4096 {
            break j;
        }
        waited += 200; // the kill came right after a snapshot emptied the journal
    };
    let snapshot = std::fs::read(d.join("cut.h5")).unwrap();
    let (whole, _) = read_results(&d.join("cut.h5")).unwrap();
    let in_snapshot = finished(&read_snapshot(&d.join("cut.h5")).unwrap().0);
    let in_journal = finished(&whole) - in_snapshot;
    assert!(in_journal > 3, "{in_journal} runs in the journal");

    let mut rng = Rng(0x0ff5e7);
    let mut cuts: Vec<usize> = (0..40)
        .map(|_| rng.below(journal.len() as u64) as usize)
        .collect();
    cuts.extend([0, 1, 20, journal.len() - 1, journal.len()]);
    let mut last_count = 0;
    cuts.sort_unstable();
    for (k, &cut) in cuts.iter().enumerate() {
        let path = d.join(format!("c{k}.h5"));
        std::fs::write(&path, &snapshot).unwrap();
        let mut bytes = journal[..cut].to_vec();
        if k % 2 == 1 {
            // What a lost page cache can also leave: garbage after the cut.
            bytes.extend((0..rng.below(300)).map(|_| rng.below(256) as u8));
        }
        std::fs::write(journal_path(&path), &bytes).unwrap();
        let what = format!("journal cut at byte {cut} of {}", journal.len());
        let (got, _) = read_results(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        let n = assert_finished_match(&full, &got, &what);
        assert!(n >= in_snapshot && n >= last_count, "{what}: {n} runs");
        last_count = n;
        if k % 9 == 0 {
            let name = path.file_name().unwrap().to_str().unwrap();
            let out = sharpsweep(d, &["sweep", &cfg, "--out", name, "--resume", "--quiet"]);
            expect_code(&out, 0, &format!("resume after {what}"));
            assert_same_data(&full, &read(&path), &what);
        }
    }
    assert_eq!(
        last_count,
        finished(&whole),
        "the whole journal gives every run"
    );

    // `watch --once` and `analyze --no-write` see the killed sweep's runs, journal included;
    // `analyze` refuses to write into a file whose sweep is still open.
    let out = sharpsweep(d, &["watch", "cut.h5", "--once", "--out-dir", "fig"]);
    expect_code(&out, 0, "watch --once");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = format!("{} of {} runs finished", finished(&whole), whole.keys.len());
    assert!(
        text.contains(&line) && text.contains("sweep open"),
        "{line} in: {text}"
    );
    assert!(d.join("fig/phase_diagram.png").exists());
    expect_code(
        &sharpsweep(d, &["analyze", "cut.h5", "--no-write"]),
        0,
        "analyze --no-write",
    );
    let out = sharpsweep(d, &["analyze", "cut.h5"]);
    expect_code(&out, 1, "analyze writing into an open sweep's file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-write"));
}

#[test]
fn a_running_sweep_is_readable_without_environment_variables() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    // 40 steps: the sweep runs for ≈ 15 s, long enough for reads to overlap it on a
    // loaded machine (at 10 steps it took 4 s and a read could miss it).
    let cfg = fast_config(d, 0.025, 40);
    let mut child = Command::new(bin())
        .args(["sweep", &cfg, "--out", "live.h5", "--quiet"])
        .current_dir(d)
        .env_remove("HDF5_USE_FILE_LOCKING")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let path = d.join("live.h5");
    let start = Instant::now();
    let mut reads = 0;
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        if path.exists() {
            let out = Command::new(bin())
                .args(["inspect", "live.h5"])
                .current_dir(d)
                .env_remove("HDF5_USE_FILE_LOCKING")
                .output()
                .unwrap();
            expect_code(&out, 0, "inspect of a running sweep");
            assert!(String::from_utf8_lossy(&out.stdout).contains("runs: 3856"));
            let py = Command::new("python3")
                .args([
                    "-c",
                    "import sys, xarray; ds = xarray.open_dataset(sys.argv[1], engine='h5netcdf'); \
                     print(int((ds.status > 0).sum()))",
                    "live.h5",
                ])
                .current_dir(d)
                .env_remove("HDF5_USE_FILE_LOCKING")
                .output()
                .unwrap();
            expect_code(&py, 0, "xarray on a running sweep");
            if reads == 0 {
                // A second writer is refused while this sweep holds the file.
                let second = sharpsweep(d, &["sweep", &cfg, "--out", "live.h5", "--resume"]);
                if child.try_wait().unwrap().is_none() {
                    expect_code(&second, 1, "a second sweep on a running sweep's file");
                    let err = String::from_utf8_lossy(&second.stderr);
                    assert!(err.contains("another sweep is writing"), "{err}");
                }
            }
            // Count the reads that certainly overlapped the sweep.
            if child.try_wait().unwrap().is_none() {
                reads += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        reads >= 1,
        "read the running file {reads} times while it ran"
    );
}

/// The rank-1 process of an mpirun job started in `dir` (found by its environment).
fn rank_pid(rank: u32, dir: &Path) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()? {
        let e = e.ok()?;
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let env = String::from_utf8_lossy(&env);
        if cwd.as_deref() == Some(dir)
            && env
                .split('\0')
                .any(|v| v == format!("OMPI_COMM_WORLD_RANK={rank}"))
            && std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .as_deref()
                == Some(&bin())
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_worker_killed_under_mpirun_ends_the_job_and_resume_completes_it() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path().canonicalize().unwrap();
    let cfg = fast_config(&d, 0.05, 4);
    let full = reference(&d, &cfg);
    let mut job = Command::new("mpirun")
        .args(["-np", "3", "--oversubscribe", "--bind-to", "none"])
        .arg(bin())
        .args(["sweep", &cfg, "--out", "mpi.h5", "--quiet"])
        .current_dir(&d)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mpirun (openmpi-bin)");
    // Let the sweep get going, then kill rank 1.
    let start = Instant::now();
    let victim = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "rank 1 never started"
        );
        if let (Some(pid), true) = (rank_pid(1, &d), d.join("mpi.h5").exists()) {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) of a process of this test's own job.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let killed_at = Instant::now();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the job hangs after a worker died"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(status.code(), Some(0), "a job that lost a rank fails");
    let ended_in = killed_at.elapsed();
    let (part, _) = read_results(&d.join("mpi.h5")).unwrap();
    assert_finished_match(&full, &part, "after a dead worker");
    let out = mpirun(
        &d,
        2,
        &[],
        &["sweep", &cfg, "--out", "mpi.h5", "--resume", "--quiet"],
    );
    expect_code(&out, 0, "resume with 2 ranks");
    assert_same_data(&full, &read(&d.join("mpi.h5")), "dead worker + resume");
    eprintln!("job ended {ended_in:?} after its worker was killed");
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_before_anything_starts() {
    let dir = tempdir();
    let d = dir.path();
    let cfg = fast_config(d, 0.5, 2);
    let huge = [
        "--set",
        "model.width=[100000000]",
        "--set",
        "model.depth=[2]",
    ];
    let mut args = vec!["sweep", cfg.as_str(), "--out", "huge.h5"];
    args.extend(huge);
    let out = sharpsweep(d, &args);
    expect_code(&out, 1, "a grid beyond the node's memory");
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "not enough memory",
        "model.width = 100000000",
        "sharpness.measure_n",
        "bytes",
    ] {
        assert!(err.contains(key), "{key} in: {err}");
    }
    assert!(
        !err.contains("panicked") && !d.join("huge.h5").exists(),
        "{err}"
    );
    // The dry run says the same, with the per-network table.
    let mut args = vec!["sweep", cfg.as_str(), "--dry-run"];
    args.extend(huge);
    let out = sharpsweep(d, &args);
    expect_code(&out, 0, "dry run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DOES NOT FIT") && text.contains("largest run"),
        "{text}"
    );
}
