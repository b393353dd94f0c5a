//! The eigensolvers' own cost and the threads of a rank (issue 9, items 3 and 4).
//!
//! 1. **Lanczos-20 outside the HVPs**: d = 4, w = 512 (and 256), synthetic CIFAR-10-shaped
//!    inputs (d_in = 3072, k = 10, as `benches/engine.rs`), measurement set m = 2048 (and
//!    4096, `measure_n`'s default), f32, one thread. A timed operator splits each Lanczos-20 into the time inside the HVPs and
//!    the rest (operator build, basis products, the tridiagonal eigenproblems). Two
//!    variants, interleaved: a fresh basis per measurement (`lanczos_top`, as every
//!    measurement did before the workspace) and one workspace reused by every measurement
//!    (`lanczos_top_in`, as a run does now).
//! 2. **Threads**: a whole run at d = 4, w = 1024 on real Fashion-MNIST (n = 4096,
//!    m = 2048, B = 512, `SHARPSWEEP_BENCH_STEPS` steps, default 5, λ every step, f32),
//!    with 1 and 2 threads (`--threads`), and its parts (an HVP, an SGD step): wall-clock
//!    medians of interleaved repeats, and the speed-up. `SHARPSWEEP_BENCH_THREADS="1 2 4 8 16"`
//!    on a bigger machine.
//!
//! `cargo bench --bench eigensolver` (≈ 7 minutes on 2 cores);
//! `SHARPSWEEP_BENCH_REPEATS` (default 5 for part 1, 3 for part 2);
//! `SHARPSWEEP_BENCH_PART=1`: part 1 only.

use faer::Par;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use sharpsweep::config::Config;
use sharpsweep::hessian::{
    lanczos_top, lanczos_top_in, EigenWorkspace, LanczosOptions, SymmetricOperator,
};
use sharpsweep::model::param::init_params;
use sharpsweep::model::{HvpOperator, MlpSpec, MlpWorkspace};
use sharpsweep::train::{lambda0, train_run, Problem, RunSettings};
use std::time::Instant;

const D_IN: usize = 3072;
const K: usize = 10;
const M_MEAS: usize = 2048;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// An operator that adds the wall time of its applications to `inside`.
struct Timed<'a, O> {
    op: O,
    inside: &'a mut f64,
}

impl<O: SymmetricOperator> SymmetricOperator for Timed<'_, O> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        let t = Instant::now();
        self.op.apply(x, y);
        *self.inside += t.elapsed().as_secs_f64();
    }
}

fn outside_hvps(repeats: usize) {
    println!("Lanczos-20, f32, one thread: medians of {repeats}");
    println!("d  w     m     variant           total_s  in_HVPs_s  outside_s  outside_share");
    let m_max = 2 * M_MEAS;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let x: Vec<f32> = (0..D_IN * m_max)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mut y = vec![0.0f32; K * m_max];
    for e in 0..m_max {
        y[e * K + (e * 7 + 3) % K] = 1.0;
    }
    let opts = LanczosOptions {
        tol: 0.0,
        max_iter: 20,
        max_basis: 100,
        seed: 0,
    };
    // (w, m): m = 4096 is `sharpness.measure_n`'s default.
    for (w, m) in [(256, M_MEAS), (512, M_MEAS), (512, 2 * M_MEAS)] {
        let spec = MlpSpec::new(D_IN, w, 4, K);
        let p = init_params::<f32>(&spec, 0);
        let mut ws = MlpWorkspace::<f32>::new(&spec, m, Par::Seq);
        let mut eig = EigenWorkspace::new(Par::Seq);
        // rows: (name, total, inside)
        let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
            ("fresh basis", Vec::new(), Vec::new()),
            ("reused workspace", Vec::new(), Vec::new()),
        ];
        for r in 0..=repeats {
            for (i, row) in rows.iter_mut().enumerate() {
                let mut inside = 0.0;
                let t = Instant::now();
                let op = HvpOperator::new(&p, &x, &y, m, &mut ws);
                let mut timed = Timed {
                    op,
                    inside: &mut inside,
                };
                let est = if i == 0 {
                    lanczos_top(&mut timed, None, &opts)
                } else {
                    lanczos_top_in(&mut timed, None, &opts, &mut eig)
                };
                let total = t.elapsed().as_secs_f64();
                assert_eq!(est.applications, 20);
                if r > 0 {
                    // the first round warms the workspace and the caches
                    row.1.push(total);
                    row.2.push(inside);
                }
            }
        }
        for (name, total, inside) in rows {
            let outside: Vec<f64> = total.iter().zip(&inside).map(|(t, i)| t - i).collect();
            let shares: Vec<f64> = total.iter().zip(&outside).map(|(t, o)| o / t).collect();
            println!(
                "4  {w:<4}  {m:<4}  {name:16}  {:7.3}  {:9.3}  {:9.3}  {:12.1}%",
                median(total),
                median(inside),
                median(outside),
                100.0 * median(shares)
            );
        }
    }
}

fn threads(repeats: usize) {
    let steps = env_usize("SHARPSWEEP_BENCH_STEPS", 5);
    let counts: Vec<usize> = std::env::var("SHARPSWEEP_BENCH_THREADS")
        .unwrap_or_else(|_| "1 2".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let cfg = Config::from_toml_str(&format!(
        r#"
        [data]
        n_train = 4096
        [model]
        depth = [4]
        width = [1024]
        [train]
        batch_size = 512
        steps = {steps}
        seeds = [1]
        [sharpness]
        measure_n = 2048
        tol = 1e-3
        max_iter = 200
        [grid]
        c = [4.0]
        "#
    ))
    .expect("config");
    cfg.validate().expect("valid config");
    let problem = Problem::<f32>::from_config(&cfg)
        .expect("Fashion-MNIST from dataset-fashion-mnist (scripts/setup.sh)");
    let par = |t: usize| if t <= 1 { Par::Seq } else { Par::rayon(t) };
    let base = RunSettings::new(&cfg, &problem, 4, 1024, Par::Seq);
    let l0 = lambda0(&base, &problem, 1);
    println!(
        "\nd = 4, w = 1024, Fashion-MNIST, {steps} steps, f32: wall-clock medians of {repeats}"
    );
    println!("threads  run_s  speedup  hvp_s  speedup  sgd_step_s  speedup  HVPs");
    let spec = base.spec.clone();
    let p = init_params::<f32>(&spec, 0);
    let n = p.len();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
        .collect();
    let mut hv = vec![0.0; n];
    let mut grad = vec![0.0f32; n];
    // (threads, run times, HVP times, SGD step times, HVPs of the run)
    type Row = (usize, Vec<f64>, Vec<f64>, Vec<f64>, i32);
    let mut rows: Vec<Row> = counts
        .iter()
        .map(|&t| (t, Vec::new(), Vec::new(), Vec::new(), 0))
        .collect();
    for _ in 0..repeats {
        for row in rows.iter_mut() {
            let s = RunSettings {
                par: par(row.0),
                ..base.clone()
            };
            let t = Instant::now();
            let (rec, _) = train_run(&s, &problem, 4.0, 1, 1, &l0);
            row.1.push(t.elapsed().as_secs_f64());
            row.4 = rec.hvps[1..].iter().sum();
            let mut ws = MlpWorkspace::<f32>::new(&spec, M_MEAS, par(row.0));
            let mut op = HvpOperator::new(&p, &problem.x_meas, &problem.y_meas, M_MEAS, &mut ws);
            op.apply(&v, &mut hv);
            let t = Instant::now();
            op.apply(&v, &mut hv);
            row.2.push(t.elapsed().as_secs_f64());
            let mut wb = MlpWorkspace::<f32>::new(&spec, 512, par(row.0));
            let (xb, yb) = (&problem.x_train[..784 * 512], &problem.y_train[..10 * 512]);
            wb.loss_and_grad(&p, xb, yb, 512, &mut grad);
            let t = Instant::now();
            wb.loss_and_grad(&p, xb, yb, 512, &mut grad);
            row.3.push(t.elapsed().as_secs_f64());
        }
    }
    let (r1, h1, s1) = (
        median(rows[0].1.clone()),
        median(rows[0].2.clone()),
        median(rows[0].3.clone()),
    );
    for (t, run, hvp, sgd, hvps) in rows {
        let (run, hvp, sgd) = (median(run), median(hvp), median(sgd));
        println!(
            "{t:7}  {run:5.2}  {:7.2}  {hvp:5.3}  {:7.2}  {sgd:10.4}  {:7.2}  {hvps}",
            r1 / run,
            h1 / hvp,
            s1 / sgd
        );
    }
}

fn main() {
    faer::set_global_parallelism(Par::Seq);
    let repeats = env_usize("SHARPSWEEP_BENCH_REPEATS", 0);
    outside_hvps(if repeats > 0 { repeats } else { 5 });
    if std::env::var("SHARPSWEEP_BENCH_PART").map_or(true, |p| p != "1") {
        threads(if repeats > 0 { repeats } else { 3 });
    }
}
