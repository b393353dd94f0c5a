//! `grid.axes` end to end: a sweep under mpirun over two axes makes every task once per
//! axis point, stores each run's point and values, equals (bit for bit) the sweeps of the
//! same config with the values set directly, is analysed and plotted per point, and a
//! killed sweep over axes resumes to the uninterrupted result.

mod common;
use common::*;
use sharpsweep::analysis::AnalysisParams;
use sharpsweep::commands::analyze_file;
use sharpsweep::record::{Results, TaskKey};
use std::path::Path;
use std::process::Command;

/// A tiny Fashion-MNIST config (depths 2, 3, width 16, one seed, three c, four steps) with
/// the heavy-ball optimizer, so that `train.momentum` can be an axis.
const BASE: &str = r#"
[data]
n_train = 256
[model]
depth = [2, 3]
width = [16]
[train]
batch_size = 64
steps = 4
seeds = [1]
optimizer = "momentum"
[sharpness]
measure_n = 128
[grid]
c = [1.0, 4.0, 16.0]
"#;

/// The two axes: activation (slowest) and momentum, sorted by key.
const AXES: &str =
    r#"axes = { "train.momentum" = [0.0, 0.5], "model.activation" = ["relu", "tanh"] }"#;

const ACTIVATIONS: [&str; 2] = ["relu", "tanh"];
const MOMENTA: [f64; 2] = [0.0, 0.5];

/// The run of `results` at `key`, which must be finished.
fn record_at<'a>(results: &'a Results, key: &TaskKey) -> &'a sharpsweep::record::RunRecord {
    let row = results
        .row_of(key)
        .unwrap_or_else(|| panic!("no run {key:?}"));
    results.records[row]
        .as_ref()
        .unwrap_or_else(|| panic!("run {key:?} not finished"))
}

/// Checks the per-run axis variables of `path` with h5py: the point of row i and its
/// activation and momentum.
fn check_variables_with_h5py(path: &Path, keys: &[TaskKey]) {
    let points: Vec<String> = keys.iter().map(|k| k.axis_point.to_string()).collect();
    let code = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
points = [int(p) for p in sys.argv[2].split(",")]
assert list(f["axis_point"][:]) == points, (list(f["axis_point"][:]), points)
act = [a.decode() if isinstance(a, bytes) else a for a in f["activation"][:]]
assert act == [["relu", "tanh"][p // 2] for p in points], act
assert list(f["momentum"][:]) == [[0.0, 0.5][p % 2] for p in points], f["momentum"][:]
assert f["momentum"].dtype.kind == "f" and f["axis_point"].dims[0][0].name == "/run"
assert f["momentum"].attrs["axis_key"] == "train.momentum"
assert '"model.activation" = ["relu", "tanh"]' in f.attrs["axes"], f.attrs["axes"]
print("axes: ok")
"#;
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(path)
        .arg(points.join(","))
        .output()
        .expect("python3 with h5py (scripts/setup.sh --python installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("axes: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_sweep_over_two_axes_equals_the_sweeps_with_the_values_set_directly() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("axes.toml"), format!("{BASE}{AXES}\n")).unwrap();
    std::fs::write(d.join("plain.toml"), BASE).unwrap();
    let dry = sharpsweep(d, &["sweep", "axes.toml", "--dry-run"]);
    expect_code(&dry, 0, "dry run");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.starts_with("24 runs") && text.contains("4 points"),
        "{text}"
    );

    let out = mpirun(
        d,
        2,
        &[],
        &["sweep", "axes.toml", "--out", "axes.h5", "--quiet"],
    );
    expect_code(&out, 0, "mpirun -np 2 sweep over axes");
    let results = read(&d.join("axes.h5"));
    // 2 depths x 4 points x 1 seed x 3 c, in row order depth, point, seed, c.
    assert_eq!(results.keys.len(), 2 * 4 * 3);
    assert!(results.records.iter().all(Option::is_some));
    let points: Vec<u32> = results.keys.iter().map(|k| k.axis_point).collect();
    assert_eq!(&points[..12], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(results.axes.n_points(), 4);
    check_variables_with_h5py(&d.join("axes.h5"), &results.keys);

    // Each point equals the sweep of the config with its values set directly.
    for p in 0..4u32 {
        let name = format!("direct{p}.h5");
        let act = format!("model.activation=\"{}\"", ACTIVATIONS[p as usize / 2]);
        let mom = format!("train.momentum={:?}", MOMENTA[p as usize % 2]);
        let args = [
            "sweep",
            "plain.toml",
            "--out",
            &name,
            "--quiet",
            "--set",
            &act,
            "--set",
            &mom,
        ];
        expect_code(&sharpsweep(d, &args), 0, &format!("direct sweep {p}"));
        let direct = read(&d.join(&name));
        assert_eq!(direct.keys.len(), 2 * 3);
        for key in &direct.keys {
            let at = TaskKey {
                axis_point: p,
                ..*key
            };
            assert_eq!(
                record_bits(record_at(&results, &at)),
                record_bits(record_at(&direct, key)),
                "point {p}, run {key:?}"
            );
        }
    }
    // tanh and relu differ, and so do the momenta: the points are not all one run.
    let key = results.keys[1];
    let other = TaskKey {
        axis_point: 3,
        ..key
    };
    assert_ne!(
        record_bits(record_at(&results, &key)),
        record_bits(record_at(&results, &other))
    );
    analyze_and_plot_per_point(d);
}

/// `analyze` and `plot` of the sweep of the test above: a group per (depth, point), axis
/// columns in the stored tables, a phase diagram per point.
fn analyze_and_plot_per_point(d: &Path) {
    let out = sharpsweep(d, &["analyze", "axes.h5"]);
    expect_code(&out, 0, "analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("activation momentum")
            && text.contains("at activation = tanh, momentum = 0.5:"),
        "{text}"
    );
    let a = analyze_file(&d.join("axes.h5"), &AnalysisParams::default(), false).unwrap();
    let groups: Vec<(u32, u32)> = a.groups.iter().map(|g| (g.depth, g.axis_point)).collect();
    assert_eq!(groups.len(), 8);
    assert!((0..4).all(|p| groups.contains(&(2, p)) && groups.contains(&(3, p))));
    assert_eq!(a.lines.len(), 8);
    let (cols, _) = sharpsweep::store::read_group_table(&d.join("axes.h5"), "analysis/groups")
        .expect("analyze stored its tables");
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        &names[..5],
        ["depth", "width", "axis_point", "activation", "momentum"]
    );

    let out = sharpsweep(
        d,
        &["plot", "axes.h5", "--out-dir", "figs", "--size", "400x300"],
    );
    expect_code(&out, 0, "plot");
    for act in ACTIVATIONS {
        for mom in ["0.0", "0.5"] {
            let f = d.join(format!(
                "figs/phase_diagram_activation-{act}_momentum-{mom}.png"
            ));
            assert!(f.exists(), "{} missing", f.display());
        }
    }
    let out = sharpsweep(d, &["inspect", "axes.h5"]);
    expect_code(&out, 0, "inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("grid.axes: 4 points")
            && text.contains("point 3 (activation = tanh, momentum = 0.5): 6 of 6 runs finished"),
        "{text}"
    );
}

#[test]
fn a_killed_sweep_over_axes_resumes_to_the_uninterrupted_file() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    // 2 depths x 2 points x 1 seed x 3 c = 12 runs of about 0.1 s.
    let cfg = slow_config(
        d,
        "c = [1.0, 4.0, 16.0]\naxes = { \"train.warmup_steps\" = [0, 4] }",
    );
    let one_seed = "train.seeds=[1]";
    let code = interrupt(
        d,
        &["sweep", &cfg, "--out", "killed.h5", "--set", one_seed],
        3,
        libc::SIGKILL,
    );
    assert_eq!(code, Some(-libc::SIGKILL));
    let killed = read(&d.join("killed.h5"));
    let finished = killed.records.iter().filter(|r| r.is_some()).count();
    assert!((3..12).contains(&finished), "{finished} runs finished");

    // Other axes are refused, naming them; the file is left as it was.
    let other = sharpsweep(
        d,
        &[
            "sweep",
            &cfg,
            "--out",
            "killed.h5",
            "--resume",
            "--set",
            one_seed,
            "--set",
            "grid.axes={\"train.warmup_steps\" = [0, 8]}",
        ],
    );
    expect_code(&other, 1, "resume with other axes");
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("other grid.axes") && err.contains("[0, 8]"),
        "{err}"
    );

    let resumed = mpirun(
        d,
        2,
        &[],
        &[
            "sweep",
            &cfg,
            "--out",
            "killed.h5",
            "--resume",
            "--quiet",
            "--set",
            one_seed,
        ],
    );
    expect_code(&resumed, 0, "resume after SIGKILL");
    let args = [
        "sweep", &cfg, "--out", "full.h5", "--quiet", "--set", one_seed,
    ];
    expect_code(&sharpsweep(d, &args), 0, "uninterrupted sweep");
    let full = read(&d.join("full.h5"));
    assert_eq!(full.keys.len(), 12);
    assert!(full.keys.iter().any(|k| k.axis_point == 1));
    assert_same_data(
        &full,
        &read(&d.join("killed.h5")),
        "killed + resumed vs full",
    );
}
