//! The cost of committing results: one finished run appended to the journal (what every
//! record pays), and a snapshot of the whole HDF5 file (what the spacing rule amortizes:
//! snapshots are at least 2 s and 40 of their own durations apart), for files of the
//! quickstart's size (414 runs × 11 steps) and ten times larger.
//!
//! `cargo bench --bench store`

use criterion::{criterion_group, criterion_main, Criterion};
use sharpsweep::hessian::StopReason;
use sharpsweep::record::{Results, RunRecord, RunStatus, TaskKey};
use sharpsweep::store::{FileMeta, ResultsFile};

fn record(steps: usize) -> RunRecord {
    let m = steps + 1;
    let mut r = RunRecord::unmeasured(12.5, 0.16, RunStatus::Done, steps, 0);
    r.loss = (0..m).map(|t| 0.05 / (1.0 + t as f64)).collect();
    r.sharpness = (0..m).map(|t| 12.5 - 0.1 * t as f64).collect();
    r.hvps = vec![23; m];
    r.residual = vec![8e-4; m];
    r.converged = vec![true; m];
    r.stop_reason = vec![Some(StopReason::Converged); m];
    r.seconds = 0.1;
    r
}

fn file(
    dir: &std::path::Path,
    name: &str,
    runs: usize,
    steps: usize,
) -> (ResultsFile, Vec<TaskKey>) {
    let keys = (0..runs)
        .map(|i| TaskKey {
            c: 2f64.powf(0.25 * (i % 23) as f64),
            depth: 2 + (i / 23 % 3) as u32,
            width: 32,
            seed: (i / 69) as u64,
            sgd_seed: (i / 69) as u64,
            axis_point: 0,
        })
        .collect();
    let results = Results {
        k: sharpsweep::record::EigenCount::ONE,
        steps,
        interp_alpha: Vec::new(),
        keys,
        records: vec![None; runs],
        axes: Default::default(),
    };
    let meta = FileMeta {
        config_text: "[train]\nsteps = 10\n".into(),
        config_sha256: "bench".into(),
        ranks: 1,
        ..Default::default()
    };
    let mut f = ResultsFile::create(&dir.join(name), &meta, &results, true).unwrap();
    let rec = record(steps);
    for k in &results.keys {
        f.write_record(k, &rec).unwrap();
    }
    f.flush().unwrap();
    (f, results.keys)
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(10);
    let (mut small, keys) = file(dir.path(), "small.h5", 414, 10);
    let mut i = 0;
    c.bench_function("commit one record (journal append)", |b| {
        b.iter(|| {
            small.write_record(&keys[i % 414], &rec).unwrap();
            i += 1;
        })
    });
    c.bench_function("snapshot of 414 runs x 11 steps", |b| {
        b.iter(|| small.flush().unwrap())
    });
    let (mut large, _) = file(dir.path(), "large.h5", 4140, 10);
    c.bench_function("snapshot of 4140 runs x 11 steps", |b| {
        b.iter(|| large.flush().unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = store
}
criterion_main!(benches);
