//! The command line end to end: help, errors that name the problem, analyze / plot /
//! inspect on real sweep output, and the science checks on the uv model and on a
//! reduced quickstart sweep.

mod common;
use common::*;
use sharpsweep::analysis::{AnalysisParams, GroupSummary};
use sharpsweep::commands::analyze_file;

#[test]
fn help_and_version() {
    let _turn = serial();
    let d = tempdir();
    let out = sharpsweep(d.path(), &["--help"]);
    expect_code(&out, 0, "--help");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["sweep", "run", "analyze", "plot", "inspect"] {
        assert!(text.contains(sub), "--help lists {sub}");
    }
    // Every variable of the results file, from the record schema.
    for var in sharpsweep::record::SCHEMA {
        let listed = text.lines().any(|l| {
            l.trim_start().starts_with('(') && l.split_whitespace().any(|w| w == var.name)
        });
        assert!(listed, "--help lists the variable {}:\n{text}", var.name);
    }
    // Every config key, from the config's key table.
    let out = sharpsweep(d.path(), &["sweep", "--help"]);
    expect_code(&out, 0, "sweep --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for key in sharpsweep::config::keys::KEYS {
        let listed = text.lines().any(|l| {
            l.trim_start_matches([' ', '*'])
                .starts_with(&format!("{}: ", key.short()))
        });
        assert!(listed, "sweep --help lists the key {}:\n{text}", key.name);
    }
    let out = sharpsweep(d.path(), &["--version"]);
    expect_code(&out, 0, "--version");
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    expect_code(
        &sharpsweep(d.path(), &["frobnicate"]),
        2,
        "unknown subcommand",
    );
}

#[test]
fn bad_input_errors_name_the_problem() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (&["--set", "model.widht=[8]"], "model.widht"),
        (&["--set", "train.adam_beta1=0.5"], "train.adam_beta1"),
        (
            &[
                "--set",
                "sharpness.protocol=\"authors-notebook\"",
                "--set",
                "sharpness.k=2",
            ],
            "sharpness.k",
        ),
        (
            &["--set", "train.checkpoint_every=-1"],
            "train.checkpoint_every",
        ),
        (&["--set", "train.momentum=0.9"], "train.momentum"),
        (&["--set", "train.batch_size=0"], "train.batch_size"),
        (
            &["--set", "data.dir=\"/nonexistent/fmnist\""],
            "/nonexistent/fmnist",
        ),
        (
            &["--set", "sharpness.method=\"arnoldi\""],
            "sharpness.method",
        ),
        (
            &["--set", "grid.axes={\"model.width\" = [8, 16]}"],
            "grid.axes.\"model.width\": `model.width` is a grid dimension already",
        ),
        (
            &["--set", "grid.axes={\"train.batch_size\" = [64, 512]}"],
            "grid.axes: point 1 of 2 (train.batch_size = 512): train.batch_size",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["sweep", cfg, "--out", "x.h5"];
        args.extend_from_slice(extra);
        let out = sharpsweep(d, &args);
        expect_code(&out, 1, &format!("{extra:?}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "error for {extra:?} must name {needle}: {err}"
        );
        assert!(!d.join("x.h5").exists(), "no file for a refused config");
    }
    let out = sharpsweep(d, &["analyze", "missing.h5"]);
    expect_code(&out, 1, "analyze of a missing file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.h5"));
    let out = sharpsweep(d, &["sweep", cfg, "--deadline", "soon"]);
    expect_code(&out, 1, "bad deadline");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--deadline"));
    let notebook = ["--set", "sharpness.protocol=\"authors-notebook\""];
    let args = [
        &["run", cfg, "--c", "2", "--sgd-seed", "9"][..],
        &notebook[..],
    ]
    .concat();
    let out = sharpsweep(d, &args);
    expect_code(&out, 1, "run --sgd-seed under the authors' protocol");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sgd-seed"));
}

#[test]
fn analyze_plot_inspect_and_run_on_a_real_sweep() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 6, 4);
    let cfg = cfg.to_str().unwrap();
    expect_code(
        &sharpsweep(
            d,
            &[
                "sweep",
                cfg,
                "--out",
                "r.h5",
                "--quiet",
                "--set",
                "grid.interp_points=5",
            ],
        ),
        0,
        "sweep",
    );
    let out = sharpsweep(
        d,
        &[
            "analyze",
            "r.h5",
            "--csv",
            "groups.csv",
            "--json",
            "all.json",
        ],
    );
    expect_code(&out, 0, "analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("c_loss") && text.contains("c_max"), "{text}");
    let csv = std::fs::read_to_string(d.join("groups.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 2,
        "header + one row per (depth, width):\n{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("all.json")).unwrap()).unwrap();
    assert!(json.get("groups").is_some());
    // The analysis is stored in the file, and the raw data is untouched.
    let (cols, attrs) =
        sharpsweep::store::read_group_table(&d.join("r.h5"), "analysis/groups").unwrap();
    assert!(
        cols.iter().any(|(n, _)| n.contains("c_loss")),
        "{:?}",
        cols.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    assert!(attrs.iter().any(|(k, _)| k == "eps_sharp"));
    assert_eq!(read(&d.join("r.h5")).keys.len(), 2 * 2 * 6);
    assert!(read(&d.join("r.h5"))
        .records
        .iter()
        .flatten()
        .any(|r| r.interp_loss.iter().all(|l| l.is_finite())));

    let out = sharpsweep(
        d,
        &["plot", "r.h5", "--out-dir", "fig", "--size", "800x600"],
    );
    expect_code(&out, 0, "plot");
    let listed = String::from_utf8_lossy(&out.stdout);
    let png = std::fs::read(d.join("fig/phase_diagram.png")).expect("phase diagram written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 800);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 600);
    assert!(
        listed.lines().count() >= 3,
        "phase diagram, trajectories, saturation: {listed}"
    );
    let out = sharpsweep(d, &["plot", "r.h5", "--out-dir", "svg", "--format", "svg"]);
    expect_code(&out, 0, "plot svg");
    assert!(std::fs::read_to_string(d.join("svg/phase_diagram.svg"))
        .unwrap()
        .contains("</svg>"));

    // A long-ish run (30 steps, the sharpness dense to step 3, then 10 per decade): the
    // regimes figure beside the trajectories, a valid PNG of the asked size.
    let long = tiny_config(d, "long.toml", 3, 30);
    let sets = [
        "model.depth=[2]",
        "train.seeds=[1]",
        "sharpness.dense_steps=3",
        "sharpness.per_decade=10",
    ];
    let mut args = vec![
        "sweep",
        long.to_str().unwrap(),
        "--out",
        "long.h5",
        "--quiet",
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    expect_code(&sharpsweep(d, &args), 0, "sweep of 30 steps");
    let out = sharpsweep(
        d,
        &["plot", "long.h5", "--out-dir", "long", "--size", "640x480"],
    );
    expect_code(&out, 0, "plot of 30 steps");
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["regimes_d2_w16_s1_g1.png", "trajectories_d2_w16_s1_g1.png"] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    let png = std::fs::read(d.join("long/regimes_d2_w16_s1_g1.png")).expect("regimes figure");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 640);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 480);
    assert!(png.len() > 5000, "{} bytes", png.len());
    // The 4-step sweep above has no regimes, and no regimes figure.
    let short: Vec<String> = std::fs::read_dir(d.join("fig"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        short.iter().any(|n| n.starts_with("trajectories_")),
        "{short:?}"
    );
    assert!(
        !short.iter().any(|n| n.starts_with("regimes_")),
        "{short:?}"
    );

    let out = sharpsweep(d, &["inspect", "r.h5", "--config"]);
    expect_code(&out, 0, "inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("runs: 24 (24 done")
            && text.contains("history")
            && text.contains("n_train = 256"),
        "{text}"
    );

    let out = sharpsweep(d, &["run", cfg, "--c", "2.0", "--depth", "3"]);
    expect_code(&out, 0, "run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        1 + 5,
        "{text}"
    );
}

fn group(groups: &[GroupSummary], depth: u32, width: u32) -> &GroupSummary {
    groups
        .iter()
        .find(|g| g.depth == depth && g.width == width)
        .expect("group present")
}

#[test]
fn heavy_ball_moves_c_max_of_a_linear_model_to_two_one_plus_beta() {
    // A one-layer linear network trained full batch on MSE is gradient descent on a
    // quadratic: c_max = 2 for SGD, 2(1 + β) with heavy-ball momentum (β = 0.5: 3).
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let text = String::from(
        "[data]\nn_train = 256\n[model]\ndepth = [1]\nwidth = [8]\nactivation = \"linear\"\n\
         [train]\nbatch_size = 256\nsteps = 150\nseeds = [1, 2]\nprecision = \"f64\"\n\
         optimizer = \"momentum\"\nmomentum = 0.5\nwarmup_steps = 2\n\
         [sharpness]\nmeasure_n = 256\ntol = 1e-8\nevery = 50\n\
         [grid]\nc = [1.9, 2.1, 2.8, 2.9, 2.95, 3.05, 3.1, 3.2]\n",
    );
    std::fs::write(d.join("hb.toml"), text).unwrap();
    let out = mpirun(
        d,
        2,
        &[],
        &["sweep", "hb.toml", "--out", "hb.h5", "--quiet"],
    );
    expect_code(&out, 0, "heavy-ball sweep");
    let a = analyze_file(&d.join("hb.h5"), &AnalysisParams::default(), true).unwrap();
    let g = group(&a.groups, 1, 8);
    assert_eq!(g.c_max.n, 2);
    assert_eq!(g.c_max.mean, 2.95, "c_max = {}", g.c_max.mean);
    // The effective config in the file records the optimizer.
    let out = sharpsweep(d, &["inspect", "hb.h5", "--config"]);
    expect_code(&out, 0, "inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("optimizer = \"momentum\""), "{text}");
}

#[test]
fn uv_model_critical_values_match_the_analytic_ones() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cs: Vec<String> = (0..61)
        .map(|i| format!("{:.2}", 1.5 + 0.05 * i as f64))
        .collect();
    let text = format!(
        "[model]\nkind = \"uv\"\nwidth = [4096]\n[train]\nsteps = 200\nseeds = [1, 2]\nprecision = \"f64\"\n[sharpness]\ntol = 1e-6\n[grid]\nc = [{}]\n",
        cs.join(", ")
    );
    std::fs::write(d.join("uv.toml"), text).unwrap();
    let out = mpirun(
        d,
        2,
        &[],
        &["sweep", "uv.toml", "--out", "uv.h5", "--quiet"],
    );
    expect_code(&out, 0, "uv sweep");
    let a = analyze_file(&d.join("uv.h5"), &AnalysisParams::default(), true).unwrap();
    let g = group(&a.groups, 2, 4096);
    assert_eq!(g.c_loss.n, 2);
    assert!(
        (g.c_loss.mean - 2.0).abs() <= 0.1,
        "c_loss = {}",
        g.c_loss.mean
    );
    assert!(
        (g.c_max.mean - 4.0).abs() <= 0.2,
        "c_max = {}",
        g.c_max.mean
    );
}

#[test]
fn reduced_quickstart_shows_the_phase_diagram_trend() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let qs = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/quickstart.toml");
    let out = mpirun(
        d,
        2,
        &[],
        &[
            "sweep",
            qs,
            "--out",
            "qs.h5",
            "--quiet",
            "--set",
            "model.depth=[2, 8]",
            "--set",
            "model.width=[64]",
            "--set",
            "train.seeds=[1]",
            "--set",
            "grid.log2_c={start=1.0, stop=5.0, step=0.5}",
        ],
    );
    expect_code(&out, 0, "reduced quickstart sweep");
    let a = analyze_file(&d.join("qs.h5"), &AnalysisParams::default(), false).unwrap();
    let (shallow, deep) = (group(&a.groups, 2, 64), group(&a.groups, 8, 64));
    for g in [shallow, deep] {
        assert!(
            g.c_max.mean > 6.0,
            "c_max well above 4 for ReLU nets: d={} {}",
            g.depth,
            g.c_max.mean
        );
        assert!(
            g.c_loss.mean >= 2.0,
            "c_loss >= 2: d={} {}",
            g.depth,
            g.c_loss.mean
        );
    }
    assert!(
        deep.c_loss.mean > shallow.c_loss.mean,
        "c_loss grows with d/w: {} (d/w=1/32) vs {} (d/w=1/8)",
        shallow.c_loss.mean,
        deep.c_loss.mean
    );
}

/// A finished two-run sweep `r.h5` of the tiny config in `d`; returns the config's path.
fn tiny_sweep(d: &std::path::Path) -> String {
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap().to_string();
    let out = sharpsweep(
        d,
        &[
            "sweep",
            &cfg,
            "--out",
            "r.h5",
            "--quiet",
            "--set",
            "model.depth=[2]",
            "--set",
            "train.seeds=[1]",
        ],
    );
    expect_code(&out, 0, "tiny sweep");
    cfg
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Expects exit 1 and an error naming every one of `needles`.
fn expect_error(d: &std::path::Path, args: &[&str], needles: &[&str]) {
    let out = sharpsweep(d, args);
    expect_code(&out, 1, &format!("{args:?}"));
    let err = stderr_of(&out);
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "error for {args:?} must name {n:?}: {err}");
    }
}

#[test]
fn exports_never_overwrite_the_results_file_or_its_side_files() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    tiny_sweep(d);
    let before = std::fs::read(d.join("r.h5")).unwrap();
    for (flag, target) in [
        ("--json", "r.h5"),
        ("--csv", "./r.h5"),
        ("--json", "r.h5.journal"),
        ("--csv", "r.h5.tmp"),
        ("--json", "r.h5.checkpoints/x.json"),
    ] {
        for no_write in [false, true] {
            let mut args = vec!["analyze", "r.h5", flag, target];
            if no_write {
                args.push("--no-write");
            }
            expect_error(d, &args, &[flag, target]);
        }
    }
    // A hard link to the file is the same file.
    std::fs::hard_link(d.join("r.h5"), d.join("link.h5")).unwrap();
    expect_error(
        d,
        &["analyze", "r.h5", "--csv", "link.h5"],
        &["--csv", "link.h5"],
    );
    expect_error(
        d,
        &["plot", "r.h5", "--out-dir", "r.h5.checkpoints"],
        &["--out-dir", "checkpoint directory"],
    );
    assert_eq!(
        std::fs::read(d.join("r.h5")).unwrap(),
        before,
        "file untouched"
    );
    assert!(!d.join("r.h5.journal").exists() && !d.join("r.h5.tmp").exists());
}

#[test]
fn bad_deadlines_are_errors_not_panics() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap();
    for (deadline, needle) in [
        ("+18446744073709551615", "too far"),
        ("18446744073709551615", "too far"),
        ("+5124095576030431h", "too far"),
        ("2026-13-45T99:99Z", "month 13"),
        ("2026-02-30T10:00Z", "day 30"),
        ("2026-01-01T24:00Z", "out of range"),
        ("2026-01-01T-5:00Z", "bad deadline"),
    ] {
        expect_error(
            d,
            &["sweep", cfg, "--out", "x.h5", "--deadline", deadline],
            &["--deadline", needle],
        );
        assert!(!d.join("x.h5").exists());
    }
}

#[test]
fn plot_refuses_bad_sizes_and_runs_it_cannot_place() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    tiny_sweep(d);
    for size in ["100000x100000", "10x800", "800x0"] {
        expect_error(
            d,
            &["plot", "r.h5", "--out-dir", "fig", "--size", size],
            &["--size", "between 100 and 16384"],
        );
    }
    // A file whose c is not finite and > 0 (edited by hand): an error naming the file
    // and the row, neither a hang nor a panic.
    let mut results = read(&d.join("r.h5"));
    for (c, name) in [
        (f64::INFINITY, "inf.h5"),
        (-1.0, "neg.h5"),
        (0.0, "zero.h5"),
    ] {
        results.keys[1].c = c;
        let e = sharpsweep::commands::check_plottable(std::path::Path::new(name), &results)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(name) && e.contains("row 1") && e.contains("c = "),
            "{e}"
        );
    }
    if std::process::Command::new("python3")
        .args(["-c", "import h5py"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        for (value, name) in [("float('inf')", "inf.h5"), ("-1.0", "neg.h5")] {
            std::fs::copy(d.join("r.h5"), d.join(name)).unwrap();
            let script =
                format!("import h5py\nwith h5py.File('{name}', 'r+') as f: f['c'][0] = {value}\n");
            let ok = std::process::Command::new("python3")
                .args(["-c", &script])
                .current_dir(d)
                .status()
                .unwrap();
            assert!(ok.success());
            expect_error(d, &["plot", name, "--out-dir", "fig"], &[name, "row 0"]);
        }
    }
}

#[test]
fn run_validates_its_point_as_a_sweep_validates_its_config() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--c", "1", "--depth", "0"], &["--depth 0", "model.depth"]),
        (&["--c", "1", "--width", "0"], &["--width 0", "model.width"]),
        (&["--c", "0"], &["--c 0", "grid.c"]),
        (&["--c=-1"], &["--c -1", "grid.c"]),
        (&["--c", "nan"], &["--c NaN", "grid.c"]),
        (&["--c", "inf"], &["--c inf", "grid.c"]),
        (&["--c", "1e400"], &["--c inf", "grid.c"]),
        (
            &[
                "--c",
                "1",
                "--set",
                "model.kind=\"uv\"",
                "--set",
                "model.depth=[2]",
                "--depth",
                "3",
            ],
            &["--depth 3", "uv model"],
        ),
        (
            &["--c", "1", "--set", "train.steps=abc"],
            &["--set train.steps=abc", "train.steps"],
        ),
    ];
    for (extra, needles) in cases {
        let args = [&["run", cfg][..], extra].concat();
        expect_error(d, &args, needles);
    }
}

#[test]
fn analysis_and_sweep_flags_out_of_range_are_refused() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_sweep(d);
    // (flag, value, the flag the error names): the hidden alias `--k` of `--saturation-k`
    // is parsed as it and named by its real name.
    for (flag, value, name) in [
        ("--eps-sharp", "nan", "--eps-sharp"),
        ("--eps-sharp", "inf", "--eps-sharp"),
        ("--eps-sharp=-1", "", "--eps-sharp"),
        ("--window", "0", "--window"),
        ("--saturation-k", "0", "--saturation-k"),
        ("--saturation-k", "nan", "--saturation-k"),
        ("--saturation-k=-5", "", "--saturation-k"),
        ("--saturation-k", "inf", "--saturation-k"),
        ("--k", "0", "--saturation-k"),
        ("--k=-5", "", "--saturation-k"),
        ("--edge-tolerance", "1", "--edge-tolerance"),
        ("--sharpening-band", "0.5", "--sharpening-band"),
        ("--sharpening-window", "0", "--sharpening-window"),
        ("--late-fraction", "nan", "--late-fraction"),
    ] {
        for cmd in ["analyze", "plot"] {
            let mut args = vec![cmd, "r.h5", flag];
            if !value.is_empty() {
                args.push(value);
            }
            if cmd == "analyze" {
                args.push("--no-write");
            }
            expect_error(d, &args, &[name]);
        }
    }
    for (flag, value) in [
        ("--progress-every", "nan"),
        ("--progress-every", "inf"),
        ("--threads", "0"),
        ("--threads", "100000"),
    ] {
        expect_error(d, &["sweep", &cfg, "--out", "x.h5", flag, value], &[flag]);
        assert!(!d.join("x.h5").exists());
    }
    expect_error(
        d,
        &["watch", "r.h5", "--once", "--every", "nan"],
        &["--every"],
    );
}

#[test]
fn saturation_k_is_named_in_help_and_the_old_k_is_its_hidden_alias() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    tiny_sweep(d);
    let out = sharpsweep(d, &["analyze", "--help"]);
    expect_code(&out, 0, "analyze --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--saturation-k <K>"), "{help}");
    assert!(!help.contains("--k "), "the alias stays hidden:\n{help}");
    for flag in ["--saturation-k", "--k"] {
        let json = format!("{}.json", &flag[2..]);
        let args = [
            "analyze",
            "r.h5",
            "--no-write",
            flag,
            "321",
            "--json",
            &json,
        ];
        expect_code(&sharpsweep(d, &args), 0, flag);
        let text = std::fs::read_to_string(d.join(&json)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["params"]["regimes"]["k"], 321.0, "{flag}");
    }
}

#[test]
fn set_errors_name_the_override() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    let cfg = cfg.to_str().unwrap();
    expect_error(
        d,
        &["sweep", cfg, "--out", "x.h5", "--set", "train.steps=abc"],
        &["--set train.steps=abc", "train.steps", "invalid type"],
    );
    let out = sharpsweep(
        d,
        &["sweep", cfg, "--out", "x.h5", "--set", "model.width=[8"],
    );
    expect_code(&out, 1, "syntax error in --set");
    let err = stderr_of(&out);
    assert!(
        err.contains("model.width=[8") && err.contains("TOML syntax error"),
        "{err}"
    );
    assert!(!err.contains("tiny.toml"), "not the file's fault: {err}");
    // A bad value in the file itself still names the file.
    std::fs::write(
        d.join("bad.toml"),
        std::fs::read_to_string(cfg)
            .unwrap()
            .replace("steps = 2", "steps = \"abc\""),
    )
    .unwrap();
    expect_error(
        d,
        &[
            "sweep",
            "bad.toml",
            "--out",
            "x.h5",
            "--set",
            "model.width=[8]",
        ],
        &["bad.toml", "train.steps"],
    );
}

#[test]
fn out_paths_that_are_directories_or_orphaned_journals_are_refused() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_sweep(d);
    std::fs::create_dir(d.join("dd")).unwrap();
    for (out, needle) in [
        ("newdir/", "ends with '/'"),
        ("newdir/x.h5", "the directory newdir does not exist"),
        ("dd", "is a directory"),
        ("dd/", "is a directory"),
    ] {
        expect_error(d, &["sweep", &cfg, "--out", out], &["--out", needle]);
    }
    // The file gone but its journal of finished runs still there: --resume must not
    // silently start over (and truncate the journal).
    // (Bytes past a header's length that do not parse may hold runs.)
    let bytes: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(d.join("j.h5.journal"), &bytes).unwrap();
    for extra in [&["--resume"][..], &[]] {
        let args = [&["sweep", &cfg, "--out", "j.h5", "--quiet"][..], extra].concat();
        expect_error(d, &args, &["j.h5.journal", "--force"]);
        assert_eq!(std::fs::read(d.join("j.h5.journal")).unwrap(), bytes);
        assert!(!d.join("j.h5").exists());
    }
    // A journal cut inside its header (a sweep killed before its first snapshot) holds no
    // run: the sweep starts.
    std::fs::write(d.join("h.h5.journal"), &bytes[..20]).unwrap();
    let o = sharpsweep(d, &["sweep", &cfg, "--out", "h.h5", "--resume", "--quiet"]);
    expect_code(&o, 0, "a journal of no run");
    assert!(d.join("h.h5").exists());
}
