//! The adaptive search (`grid.search = "adaptive"`) end to end: it finds the uv model's
//! critical values from few runs; on an MLP it gives exactly the critical values and the
//! runs of a fixed grid at its lattice spacing; its file is the same with 1, 2 or 3 ranks
//! and after a SIGTERM and `--resume`.

mod common;
use common::*;
use sharpsweep::analysis::{analyze, AnalysisParams, Boundary, Resolution};
use sharpsweep::record::Results;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn sweep(dir: &Path, cfg: &str, out: &str) -> Results {
    let o = sharpsweep(dir, &["sweep", cfg, "--out", out, "--quiet"]);
    expect_code(&o, 0, out);
    read(&dir.join(out))
}

#[test]
fn uv_search_finds_c_loss_2_and_c_max_4_from_few_runs() {
    let dir = tempdir();
    let d = dir.path();
    let grid = "log2_c = { start = 0.0, stop = 3.0, step = 0.5 }\n";
    let text = format!(
        "[model]\nkind = \"uv\"\nwidth = [4096]\n[train]\nsteps = 200\nseeds = [1]\n\
         [grid]\nsearch = \"adaptive\"\nresolution = 0.05\n{grid}"
    );
    let cfg = write(d, "uv.toml", &text);
    let results = sweep(d, &cfg, "uv.h5");
    let a = analyze(&results, &AnalysisParams::default());
    let line = &a.lines[0];
    let log2 = |b: Boundary| line.get(b).unwrap().value.unwrap().log2();
    // The lattice spacing is 1/32: every bracket is one lattice step.
    for b in [Boundary::CLoss, Boundary::CSharp, Boundary::CMax] {
        let v = line.get(b).unwrap();
        assert_eq!(v.resolution, Resolution::Resolved, "{}", b.name());
        assert!(v.log2_width() <= 0.05, "{}: {}", b.name(), v.log2_width());
    }
    assert!(
        (log2(Boundary::CLoss) - 1.0).abs() <= 0.05,
        "c_loss {}",
        log2(Boundary::CLoss)
    );
    assert!(
        (log2(Boundary::CMax) - 2.0).abs() <= 0.05,
        "c_max {}",
        log2(Boundary::CMax)
    );
    // A fixed grid at that spacing has 3·32 + 1 = 97 runs.
    let runs = results.keys.len();
    assert!(runs * 4 <= 97, "{runs} runs");
    assert!(results.records.iter().all(Option::is_some));
    let rounds: Vec<i32> = results
        .records
        .iter()
        .flatten()
        .map(|r| r.search_round)
        .collect();
    assert_eq!(rounds.iter().min(), Some(&0));
    assert!(rounds.iter().max().unwrap() > &5, "{rounds:?}");
    // xarray opens the file of a search as any other.
    let py = format!(
        "import xarray as xr\nds = xr.open_dataset('{}', engine='h5netcdf')\n\
         assert ds.sizes['run'] == {runs}, ds.sizes\nprint(int(ds.search_round.max()))\n",
        d.join("uv.h5").display()
    );
    let o = std::process::Command::new("python3")
        .args(["-c", &py])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let max_round: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert_eq!(max_round, *rounds.iter().max().unwrap());
    // inspect reports the search and its brackets.
    let o = sharpsweep(d, &["inspect", "uv.h5"]);
    expect_code(&o, 0, "inspect");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("search: adaptive")
            && text.contains("c_max: 1 of 1 line(s) resolved, widest bracket 0.0312"),
        "{text}"
    );
}

/// A small Fashion-MNIST config, `grid` its [grid] section.
fn mlp(grid: &str) -> String {
    format!(
        r#"
[data]
n_train = 256
[model]
depth = [2, 4]
width = [16]
[train]
batch_size = 64
steps = 10
seeds = [1]
[sharpness]
measure_n = 128
[grid]
{grid}
"#
    )
}

#[test]
fn an_mlp_search_equals_the_fixed_grid_of_its_lattice_spacing() {
    let dir = tempdir();
    let d = dir.path();
    let search = write(
        d,
        "search.toml",
        &mlp("search = \"adaptive\"\nlog2_c = { start = 0.0, stop = 6.0, step = 1.0 }\nresolution = 0.25\n"),
    );
    let fixed = write(
        d,
        "fixed.toml",
        &mlp("log2_c = { start = 0.0, stop = 6.0, step = 0.25 }\n"),
    );
    let s = sweep(d, &search, "search.h5");
    let f = sweep(d, &fixed, "fixed.h5");
    assert_eq!(f.keys.len(), 2 * 25);
    assert!(s.keys.len() < f.keys.len() / 2, "{} runs", s.keys.len());
    // Every run of the search is the fixed grid's run at that c, bit for bit.
    for (key, rec) in s.keys.iter().zip(&s.records) {
        let mut rec = rec.clone().expect("the search finished");
        assert!(rec.search_round >= 0);
        rec.search_round = -1;
        let row = f.row_of(key).expect("the search's c is a lattice point");
        let theirs = f.records[row].as_ref().unwrap();
        assert_eq!(record_bits(&rec), record_bits(theirs), "{key:?}");
    }
    // The critical values, brackets and verdicts are exactly the fixed grid's.
    let (sa, fa) = (
        analyze(&s, &AnalysisParams::default()),
        analyze(&f, &AnalysisParams::default()),
    );
    assert_eq!(sa.lines.len(), 2);
    for (x, y) in sa.lines.iter().zip(&fa.lines) {
        assert_eq!(x.line, y.line);
        for b in [Boundary::CLoss, Boundary::CSharp, Boundary::CMax] {
            let (vx, vy) = (x.get(b).unwrap(), y.get(b).unwrap());
            assert_eq!(
                (vx.value, vx.c_below, vx.c_at, vx.resolution),
                (vy.value, vy.c_below, vy.c_at, vy.resolution),
                "{:?} {}",
                x.line,
                b.name()
            );
            assert!(!vy.non_monotone, "the fixed grid is monotone here");
        }
    }
}

/// An adaptive search of about 50 runs that takes a few seconds in one process.
fn slow_search(dir: &Path) -> String {
    slow_config(
        dir,
        "search = \"adaptive\"\nlog2_c = { start = 0.0, stop = 5.0, step = 1.0 }\n\
         resolution = 0.125\nprobes = 2",
    )
}

#[test]
fn search_files_are_the_same_for_1_2_3_ranks_and_after_sigterm_and_resume() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = slow_search(d);
    let one = sweep(d, &cfg, "one.h5");
    assert!(one.keys.len() > 20, "{} runs", one.keys.len());
    for np in [2, 3] {
        let out = format!("np{np}.h5");
        let o = mpirun(d, np, &[], &["sweep", &cfg, "--out", &out, "--quiet"]);
        expect_code(&o, 0, &out);
        assert_same_data(&one, &read(&d.join(&out)), &format!("1 vs {np} ranks"));
    }
    let code = interrupt(d, &["sweep", &cfg, "--out", "part.h5"], 6, libc::SIGTERM);
    assert_eq!(code, Some(3), "a drained search exits 3 (incomplete)");
    let part = read(&d.join("part.h5"));
    let finished = part.records.iter().filter(|r| r.is_some()).count();
    assert!(
        finished >= 6 && finished < one.keys.len(),
        "{finished} finished"
    );
    assert!(
        part.records.iter().any(Option::is_none),
        "the next runs are listed as pending"
    );
    let o = sharpsweep(
        d,
        &["sweep", &cfg, "--out", "part.h5", "--resume", "--quiet"],
    );
    expect_code(&o, 0, "resume");
    assert_same_data(
        &one,
        &read(&d.join("part.h5")),
        "drained + resumed vs uninterrupted",
    );
}

#[test]
fn dry_run_bounds_the_search_next_to_the_full_grid() {
    let dir = tempdir();
    let d = dir.path();
    let cfg = slow_search(d);
    let o = sharpsweep(d, &["sweep", &cfg, "--dry-run"]);
    expect_code(&o, 0, "dry run");
    let text = String::from_utf8_lossy(&o.stdout);
    // 4 lines; the lattice has 41 points (spacing 0.125); a line makes at most
    // 6 coarse points + 3 criteria × (2 + 2) refinement points = 18 runs.
    assert!(text.contains("adaptive search: at most 72 runs"), "{text}");
    assert!(
        text.contains("full grid at its lattice spacing (0.125): 164 runs"),
        "{text}"
    );
}

#[test]
fn search_keys_are_checked() {
    let dir = tempdir();
    let d = dir.path();
    for (grid, want) in [
        (
            "search = \"adaptive\"\nc = [1.0, 2.0]\n",
            "grid.search: an adaptive search needs grid.log2_c",
        ),
        (
            "search = \"adaptive\"\nresolution = 0.0\n",
            "grid.resolution: must be finite and > 0",
        ),
        (
            "search = \"adaptive\"\nprobes = 0\n",
            "grid.probes: must be between 1 and 64",
        ),
        (
            "search = \"adaptive\"\nresolution = 1e-9\n",
            "grid.resolution: gives 5368709121 c values, more than 1000000: resolution too small",
        ),
        (
            "search = \"adaptive\"\neps_sharp = -0.1\n",
            "grid.eps_sharp: must be finite and >= 0",
        ),
        (
            "resolution = 0.1\n",
            "grid.resolution: applies only to an adaptive search",
        ),
        ("search = \"bisect\"\n", "grid.search"),
    ] {
        let cfg = write(d, "bad.toml", &mlp(grid));
        let o = sharpsweep(d, &["sweep", &cfg, "--dry-run"]);
        expect_code(&o, 1, grid);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{grid}: {err}");
    }
}
