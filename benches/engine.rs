//! Engine throughput: SGD step, gradient, cached HVP and a fixed 20-step Lanczos on the
//! CIFAR-10-shaped synthetic problem (d_in = 3072, k = 10, f32, one thread), plus faer's
//! own matmul at the dominant shapes as the roofline. Results and their reading are in
//! `benches/README.md`.
//!
//! Flop counts (ReLU, sp, no bias; derived from the matmuls in `src/model/mlp.rs`; layer l
//! has W_l of rows_l × cols_l, layer 0 is d_in → w, the readout w → k; S = Σ_l rows·cols =
//! `macs_per_example`, S₀ = w·d_in the first layer, S₁ = S − S₀ the rest):
//! - `forward`: one matmul W_l·a_{l−1} per layer → 2·m·S.
//! - `backward` (with gradient): per layer the weight gradient δ_l·a_{l−1}ᵀ (2·m·rows·cols),
//!   and for l > 0 the input gradient W_lᵀ·δ_l (2·m·rows·cols) → 2·m·(2·S − S₀).
//! - gradient = forward + backward = 2·m·(3·S − S₀) = 2·m·(2·S₀ + 3·S₁).
//! - cached HVP (`r_forward` + `r_backward`, forward/backward cached in `HvpOperator`):
//!   layer 0: V₀·x and R(δ₀)·xᵀ (2 matmuls); layer l > 0: V_l·a, W_l·R(a) (R-forward),
//!   R(δ_l)·aᵀ, δ_l·R(a)ᵀ (R-gradient), V_lᵀ·δ_l, W_lᵀ·R(δ_l) (R-input-gradient): 6 matmuls
//!   → 2·m·(2·S₀ + 6·S₁). (Not 4·S₁: six products per layer above the first, as in
//!   SCIENCE.md's "≈ 6 matmuls per layer".)
//! - Lanczos-20 = operator build (forward + backward without weight gradients,
//!   2·m·(S + S₁)) + 20 cached HVPs + full reorthogonalization in f64 (≈ 8·P·Σ_{j≤20} j,
//!   memory-bound, not counted in the throughput figure).
//! - SGD step on a batch B: gradient 2·B·(3·S − S₀) + the update (2·P, negligible).
//!
//! Grid: d ∈ {4, 8}, w ∈ {256, 512, 1024}. The Lanczos group runs w = 1024 only when
//! `SHARPSWEEP_BENCH_FULL` is set (it costs ≈ 10 samples × 10–25 s per point on one core).

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use sharpsweep::hessian::{lanczos_top, LanczosOptions, SymmetricOperator};
use sharpsweep::model::param::init_params;
use sharpsweep::model::{HvpOperator, MlpSpec, MlpWorkspace};
use std::hint::black_box;
use std::time::Duration;

const D_IN: usize = 3072;
const K: usize = 10;
const M_MEAS: usize = 2048;
const BATCH: usize = 512;
const DEPTHS: [usize; 2] = [4, 8];
const WIDTHS: [usize; 3] = [256, 512, 1024];
const ETA: f32 = 1e-3;

fn full_grid() -> bool {
    std::env::var_os("SHARPSWEEP_BENCH_FULL").is_some()
}

/// Column-major d_in × m Gaussian inputs and one-hot k × m targets.
fn data(m: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x: Vec<f32> = (0..D_IN * m)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mut y = vec![0.0f32; K * m];
    for e in 0..m {
        y[e * K + (e * 7 + 3) % K] = 1.0;
    }
    (x, y)
}

/// (S₀, S₁): first-layer and remaining multiply–adds per example.
fn macs(spec: &MlpSpec) -> (u64, u64) {
    let s0 = (spec.input_dim * spec.width) as u64;
    (s0, spec.macs_per_example() as u64 - s0)
}

fn grad_flops(spec: &MlpSpec, m: usize) -> u64 {
    let (s0, s1) = macs(spec);
    2 * m as u64 * (2 * s0 + 3 * s1)
}

fn hvp_flops(spec: &MlpSpec, m: usize) -> u64 {
    let (s0, s1) = macs(spec);
    2 * m as u64 * (2 * s0 + 6 * s1)
}

fn build_flops(spec: &MlpSpec, m: usize) -> u64 {
    let (s0, s1) = macs(spec);
    2 * m as u64 * (s0 + 2 * s1)
}

/// CPU time of the calling thread. The passes run on one thread (`Par::Seq`), and this
/// machine's 2 cores are shared with other jobs: wall time would measure the scheduler.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always present on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `iters` runs of `f`, timed in thread CPU time (for `Bencher::iter_custom`).
fn cpu_timed<R>(iters: u64, mut f: impl FnMut() -> R) -> Duration {
    let t0 = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - t0
}

fn id(d: usize, w: usize) -> String {
    format!("d{d}_w{w}")
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);
    g
}

fn engine(c: &mut Criterion) {
    faer::set_global_parallelism(Par::Seq);
    let (x, y) = data(M_MEAS, 1);
    let (xb, yb) = (&x[..D_IN * BATCH], &y[..K * BATCH]);

    {
        let mut g = configure(c, "sgd_step_b512");
        for d in DEPTHS {
            for w in WIDTHS {
                let spec = MlpSpec::new(D_IN, w, d, K);
                let mut p = init_params::<f32>(&spec, 0);
                let mut grad = vec![0.0f32; p.len()];
                let mut ws = MlpWorkspace::<f32>::new(&spec, BATCH, Par::Seq);
                g.throughput(Throughput::Elements(grad_flops(&spec, BATCH)));
                g.bench_function(BenchmarkId::from_parameter(id(d, w)), |b| {
                    b.iter_custom(|n| {
                        cpu_timed(n, || {
                            let loss = ws.loss_and_grad(&p, xb, yb, BATCH, &mut grad);
                            for (pi, gi) in p.iter_mut().zip(&grad) {
                                *pi -= ETA * *gi;
                            }
                            black_box(loss)
                        })
                    })
                });
            }
        }
        g.finish();
    }

    {
        let mut g = configure(c, "grad_m2048");
        for d in DEPTHS {
            for w in WIDTHS {
                let spec = MlpSpec::new(D_IN, w, d, K);
                let p = init_params::<f32>(&spec, 0);
                let mut grad = vec![0.0f32; p.len()];
                let mut ws = MlpWorkspace::<f32>::new(&spec, M_MEAS, Par::Seq);
                g.throughput(Throughput::Elements(grad_flops(&spec, M_MEAS)));
                g.bench_function(BenchmarkId::from_parameter(id(d, w)), |b| {
                    b.iter_custom(|n| {
                        cpu_timed(n, || ws.loss_and_grad(&p, &x, &y, M_MEAS, &mut grad))
                    })
                });
            }
        }
        g.finish();
    }

    {
        let mut g = configure(c, "hvp_cached_m2048");
        for d in DEPTHS {
            for w in WIDTHS {
                let spec = MlpSpec::new(D_IN, w, d, K);
                let p = init_params::<f32>(&spec, 0);
                let mut ws = MlpWorkspace::<f32>::new(&spec, M_MEAS, Par::Seq);
                let mut op = HvpOperator::new(&p, &x, &y, M_MEAS, &mut ws);
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
                let v: Vec<f64> = (0..p.len())
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect();
                let mut hv = vec![0.0f64; p.len()];
                g.throughput(Throughput::Elements(hvp_flops(&spec, M_MEAS)));
                g.bench_function(BenchmarkId::from_parameter(id(d, w)), |b| {
                    b.iter_custom(|n| {
                        cpu_timed(n, || {
                            op.apply(&v, &mut hv);
                            black_box(hv[0])
                        })
                    })
                });
            }
        }
        g.finish();
    }

    {
        let mut g = configure(c, "lanczos20_m2048");
        let opts = LanczosOptions {
            tol: 0.0,
            max_iter: 20,
            max_basis: 64,
            seed: 0,
        };
        for d in DEPTHS {
            for w in WIDTHS {
                if w > 512 && !full_grid() {
                    continue;
                }
                let spec = MlpSpec::new(D_IN, w, d, K);
                let p = init_params::<f32>(&spec, 0);
                let mut ws = MlpWorkspace::<f32>::new(&spec, M_MEAS, Par::Seq);
                g.throughput(Throughput::Elements(
                    build_flops(&spec, M_MEAS) + 20 * hvp_flops(&spec, M_MEAS),
                ));
                g.bench_function(BenchmarkId::from_parameter(id(d, w)), |b| {
                    b.iter_custom(|n| {
                        cpu_timed(n, || {
                            let mut op = HvpOperator::new(&p, &x, &y, M_MEAS, &mut ws);
                            let est = lanczos_top(&mut op, None, &opts);
                            assert_eq!(est.applications, 20);
                            black_box(est.value)
                        })
                    })
                });
            }
        }
        g.finish();
    }

    {
        // The roofline: faer alone at the shapes the passes are made of. "fwd_first":
        // (w × d_in)·(d_in × m), the first-layer forward/R-forward; "grad_first":
        // (w × m)·(m × d_in) with the right factor a transposed view of the column-major
        // inputs, the first-layer weight gradient; "hidden": (w × w)·(w × m).
        let mut g = configure(c, "faer_matmul_f32");
        let xm = MatRef::from_column_major_slice(&x, D_IN, M_MEAS);
        for w in WIDTHS {
            let a1 = Mat::<f32>::from_fn(w, D_IN, |i, j| ((i * 7 + j * 3) % 13) as f32 - 6.0);
            let mut out1 = Mat::<f32>::zeros(w, M_MEAS);
            g.throughput(Throughput::Elements((2 * w * D_IN * M_MEAS) as u64));
            g.bench_function(BenchmarkId::new("fwd_first", w), |b| {
                b.iter_custom(|n| {
                    cpu_timed(n, || {
                        matmul(
                            out1.as_mut(),
                            Accum::Replace,
                            a1.as_ref(),
                            xm,
                            1.0f32,
                            Par::Seq,
                        );
                        black_box(out1[(0, 0)])
                    })
                })
            });
            let dl = Mat::<f32>::from_fn(w, M_MEAS, |i, j| ((i * 5 + j * 11) % 17) as f32 - 8.0);
            let mut gw = Mat::<f32>::zeros(w, D_IN);
            g.bench_function(BenchmarkId::new("grad_first", w), |b| {
                b.iter_custom(|n| {
                    cpu_timed(n, || {
                        matmul(
                            gw.as_mut(),
                            Accum::Replace,
                            dl.as_ref(),
                            xm.transpose(),
                            1.0f32,
                            Par::Seq,
                        );
                        black_box(gw[(0, 0)])
                    })
                })
            });
            let a2 = Mat::<f32>::from_fn(w, w, |i, j| ((i * 7 + j * 3) % 13) as f32 - 6.0);
            let h = Mat::<f32>::from_fn(w, M_MEAS, |i, j| ((i * 3 + j * 5) % 11) as f32 - 5.0);
            let mut out2 = Mat::<f32>::zeros(w, M_MEAS);
            g.throughput(Throughput::Elements((2 * w * w * M_MEAS) as u64));
            g.bench_function(BenchmarkId::new("hidden", w), |b| {
                b.iter_custom(|n| {
                    cpu_timed(n, || {
                        matmul(
                            out2.as_mut(),
                            Accum::Replace,
                            a2.as_ref(),
                            h.as_ref(),
                            1.0f32,
                            Par::Seq,
                        );
                        black_box(out2[(0, 0)])
                    })
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
