//! The four regimes end to end: a small full-batch run on real Fashion-MNIST (depth 3,
//! width 128, n = 256, c = 10, 1000 steps, sharpness dense through the early window and then
//! log-spaced) goes through a catapult (the transient), a plateau of η·λ ≈ 1.6 (the
//! saturation), progressive sharpening, and the edge of stability η·λ ≈ 2; `analyze` finds
//! each boundary in that order, prints the regimes, and the file records the schedule.

mod common;

use common::{expect_code, sharpsweep, tempdir};

const CONFIG: &str = r#"
[data]
dataset = "fashion-mnist"
n_train = 256
[model]
depth = [3]
width = [128]
[train]
batch_size = 256
steps = 1000
seeds = [1]
precision = "f32"
[sharpness]
measure_n = 256
tol = 1e-3
dense_steps = 20
per_decade = 20
[grid]
c = [10.0]
"#;

#[test]
fn a_full_batch_run_goes_through_the_four_regimes_to_the_edge() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("r.toml"), CONFIG).unwrap();
    expect_code(
        &sharpsweep(d, &["sweep", "r.toml", "--out", "r.h5", "--quiet"]),
        0,
        "sweep",
    );
    let out = sharpsweep(d, &["analyze", "r.h5", "--json", "a.json"]);
    expect_code(&out, 0, "analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Regimes of λ_t"), "{text}");
    assert!(text.contains("t_edge"), "{text}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("a.json")).unwrap()).unwrap();
    let r = &v["regimes"][0];
    let step = |k: &str| -> u64 {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("{k} not found: {r}"))
    };
    let (t_trans, onset, t_edge) = (
        step("transient_end"),
        step("sharpening_onset"),
        step("edge_step"),
    );
    // The catapult is over within the early window; the plateau lasts tens of steps before
    // the sharpening starts; the edge is reached hundreds of steps later.
    assert!((2..=20).contains(&t_trans), "{r}");
    assert!(onset > t_trans + 20 && onset < t_edge, "{r}");
    assert!((200..=1000).contains(&t_edge), "{r}");
    assert_eq!(r["edge"], 2.0, "{r}");
    // At the edge of stability η·λ hovers around 2.
    let late = r["late_edge_ratio"].as_f64().unwrap();
    assert!((0.9..=1.1).contains(&late), "late η·λ/edge {late}: {r}");
    // The saturation is well below the edge: λ_τ/λ₀ · c ≈ 1.6.
    let sat = r["lambda_tau_ratio"].as_f64().unwrap() * 10.0;
    assert!((1.0..1.9).contains(&sat), "η·λ_τ {sat}: {r}");
    assert_eq!(r["diverged"], false);

    // The file records which steps were measured: the sharpness's steps are those of the
    // schedule (every step to 20, then 20 per decade), the loss every step.
    let res = common::read(&d.join("r.h5"));
    let rec = res.records[0].as_ref().unwrap();
    let measured: Vec<usize> = (0..=1000)
        .filter(|&t| rec.sharpness[t].is_finite())
        .collect();
    assert!(measured[..21].iter().copied().eq(0..=20), "{measured:?}");
    assert!(measured.contains(&1000) && measured.contains(&100));
    assert!(!measured.contains(&21) && !measured.contains(&999));
    assert!(rec.loss.iter().all(|l| l.is_finite()), "loss every step");
}

/// The reproduction config of the README is valid and is the four-run sweep it describes.
#[test]
fn the_paper_regimes_config_is_valid() {
    let dir = tempdir();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/paper-regimes.toml");
    let out = sharpsweep(dir.path(), &["sweep", cfg, "--dry-run"]);
    expect_code(&out, 0, "dry run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("4 runs;"), "{text}");
}
