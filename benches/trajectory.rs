//! Whole-trajectory benchmark (issue: one (c, d, w, seed) run): d = 4, w = 512, real
//! Fashion-MNIST n = 4096, measurement set 2048, B = 512, 10 steps, sharpness every step,
//! f32, one thread. Reports the total time, the split between training and measurement,
//! and HVPs per measurement with and without warm starts (equal tolerance), for the sharpness
//! alone and for the top 4 (`sharpness.k = 4`, block Lanczos), as medians of
//! `SHARPSWEEP_BENCH_REPEATS` (default 3) runs of each variant, interleaved.
//!
//! `cargo bench --bench trajectory`

use sharpsweep::config::Config;
use sharpsweep::train::{lambda0, train_run, Problem, RunSettings};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    faer::set_global_parallelism(faer::Par::Seq);
    let cfg = Config::from_toml_str(
        r#"
        [data]
        n_train = 4096
        [model]
        depth = [4]
        width = [512]
        [train]
        batch_size = 512
        steps = 10
        seeds = [1]
        [sharpness]
        measure_n = 2048
        tol = 1e-3
        max_iter = 200
        [grid]
        c = [4.0]
        "#,
    )
    .expect("config");
    cfg.validate().expect("valid config");
    let problem = Problem::<f32>::from_config(&cfg)
        .expect("Fashion-MNIST from dataset-fashion-mnist (scripts/setup.sh)");
    let repeats: usize = std::env::var("SHARPSWEEP_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let warm = RunSettings::new(&cfg, &problem, 4, 512, faer::Par::Seq);
    let cold = RunSettings {
        warm_start: false,
        ..warm.clone()
    };
    let t = Instant::now();
    let l0 = lambda0(&warm, &problem, 1);
    let l0_secs = t.elapsed().as_secs_f64();
    println!(
        "lambda0 = {:.4} ({} HVPs, residual {:.1e}, {:.2} s; computed once per (d, w, seed) and shared by every c)",
        l0.value, l0.hvps, l0.residual, l0_secs
    );
    // The top 4 (sharpness.k = 4: block Lanczos), warm and cold.
    let warm4 = RunSettings {
        k: sharpsweep::record::EigenCount::new(4).unwrap(),
        ..warm.clone()
    };
    let cold4 = RunSettings {
        k: sharpsweep::record::EigenCount::new(4).unwrap(),
        ..cold.clone()
    };
    // SHARPSWEEP_BENCH_TOPK=0: the k = 1 pair only (as `benches/reference.sh` runs it).
    let topk = std::env::var("SHARPSWEEP_BENCH_TOPK").map_or(true, |v| v != "0");
    let variants = [
        ("warm", &warm),
        ("cold", &cold),
        ("warm k=4", &warm4),
        ("cold k=4", &cold4),
    ];
    let mut rows = Vec::new();
    for (name, s) in variants.into_iter().take(if topk { 4 } else { 2 }) {
        rows.push((
            name,
            s,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ));
    }
    for _ in 0..repeats {
        for row in rows.iter_mut() {
            let t = Instant::now();
            let (rec, timing) = train_run(row.1, &problem, 4.0, 1, 1, &l0);
            row.2.push(t.elapsed().as_secs_f64());
            row.3.push(timing.train_s);
            row.4.push(timing.measure_s);
            // HVPs per measurement after initialization (steps 1..=10)
            let h: Vec<f64> = rec.hvps[1..].iter().map(|h| *h as f64).collect();
            row.5.push(h.iter().sum::<f64>() / h.len() as f64);
            // measurements after the first (the first starts cold in both variants)
            row.6
                .push(h[1..].iter().sum::<f64>() / (h.len() - 1) as f64);
            assert!(
                rec.residual[1..].iter().all(|r| *r <= 1e-3),
                "all measurements converged"
            );
        }
    }
    println!(
        "variant  total_s  train_s  measure_s  HVPs/measurement  HVPs/measurement(steps 2..10)"
    );
    let mut per = Vec::new();
    for (name, _, tot, tr, me, h, h2) in &rows {
        let (tot, tr, me, h, h2) = (
            median(tot.clone()),
            median(tr.clone()),
            median(me.clone()),
            median(h.clone()),
            median(h2.clone()),
        );
        println!("{name:8}  {tot:7.2}  {tr:7.2}  {me:9.2}  {h:16.1}  {h2:16.1}");
        per.push((tot, h2));
    }
    println!(
        "warm/cold: time {:.2}x, HVPs per tracked measurement cut {:.2}x (medians of {repeats})",
        per[0].0 / per[1].0,
        per[1].1 / per[0].1
    );
    if !topk {
        return;
    }
    println!(
        "k=4: warm/cold HVPs per tracked measurement cut {:.2}x; top-4/top-1 HVPs (warm) {:.2}x, time {:.2}x",
        per[3].1 / per[2].1,
        per[2].1 / per[0].1,
        per[2].0 / per[0].0
    );
}
