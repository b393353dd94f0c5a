//! The measurement schedule through the real binary: a tiny sweep's file holds the loss
//! and the sharpness exactly at the configured steps (NaN and `hvps` −1 elsewhere), the
//! loss-only steps change no measured value, and an adaptive search refuses a schedule
//! that leaves out a step of its early window.

mod common;
use common::*;
use sharpsweep::config::Schedule;

/// A tiny sweep of 40 steps: sharpness dense through 3, then 5 per decade; the loss every
/// 4 steps besides.
fn schedule_config(dir: &std::path::Path, loss_every: usize) -> String {
    let text = format!(
        r#"
[data]
n_train = 256
[model]
depth = [2]
width = [16]
[train]
batch_size = 64
steps = 40
seeds = [1]
loss_every = {loss_every}
[sharpness]
measure_n = 128
dense_steps = 3
per_decade = 5
[grid]
c = [0.5, 1.5]
"#
    );
    let p = dir.join(format!("schedule{loss_every}.toml"));
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn a_sweep_measures_the_configured_steps_and_loss_only_steps_change_nothing_else() {
    let dir = tempdir();
    let d = dir.path();
    let (every4, sparse) = (schedule_config(d, 4), schedule_config(d, 0));
    let out = sharpsweep(d, &["sweep", &every4, "--out", "a.h5", "--quiet"]);
    expect_code(&out, 0, "sweep with loss_every = 4");
    let out = sharpsweep(d, &["sweep", &sparse, "--out", "b.h5", "--quiet"]);
    expect_code(&out, 0, "sweep with loss_every = 0");
    let (a, b) = (read(&d.join("a.h5")), read(&d.join("b.h5")));
    let sharp_steps = [0, 1, 2, 3, 4, 6, 10, 16, 25, 40];
    let loss_steps = [0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 25, 28, 32, 36, 40];
    let (cfg, _) = sharpsweep::config::Config::load(std::path::Path::new(&every4), &[]).unwrap();
    let schedule = Schedule::of(&cfg);
    for t in 0..=40 {
        assert_eq!(schedule.sharpness_at(t), sharp_steps.contains(&t), "{t}");
        assert_eq!(schedule.loss_at(t), loss_steps.contains(&t), "{t}");
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (ra, rb) in a.records.iter().zip(&b.records) {
        let (ra, rb) = (ra.as_ref().unwrap(), rb.as_ref().unwrap());
        for t in 0..=40 {
            let (sharp, loss) = (sharp_steps.contains(&t), loss_steps.contains(&t));
            assert_eq!(ra.hvps[t] >= 0, sharp, "hvps at {t}: {:?}", ra.hvps);
            assert_eq!(ra.sharpness[t].is_nan(), !sharp, "sharpness at {t}");
            assert_eq!(ra.loss[t].is_nan(), !loss, "loss at {t}: {:?}", ra.loss);
            assert_eq!(rb.loss[t].is_nan(), !sharp, "loss_every = 0: loss at {t}");
            if sharp {
                assert_eq!(ra.loss[t].to_bits(), rb.loss[t].to_bits(), "loss at {t}");
            }
        }
        assert_eq!(bits(&ra.sharpness), bits(&rb.sharpness));
        assert_eq!(bits(&ra.residual), bits(&rb.residual));
        assert_eq!(ra.hvps, rb.hvps);
    }
}

#[test]
fn an_adaptive_search_refuses_a_sparse_early_window_by_key() {
    let dir = tempdir();
    let d = dir.path();
    let cfg = slow_config(
        d,
        "search = \"adaptive\"\nlog2_c = { start = 0.0, stop = 3.0, step = 1.0 }",
    );
    let out = sharpsweep(
        d,
        &["sweep", &cfg, "--set", "sharpness.every=5", "--out", "s.h5"],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "sharpness.every:",
        "early window 1..=10",
        "dense_steps >= 10",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    assert!(!d.join("s.h5").exists());
    let out = sharpsweep(
        d,
        &[
            "sweep",
            &cfg,
            "--set",
            "sharpness.per_decade=10",
            "--set",
            "sharpness.dense_steps=4",
            "--out",
            "s.h5",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sharpness.per_decade:"), "{err}");
}
