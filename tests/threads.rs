//! `--threads` changes the speed, not the numbers: a sweep with two threads per rank
//! writes, bit for bit, the variables of the same sweep with one.

mod common;

use common::{assert_same_data, expect_code, read, sharpsweep, tempdir};

#[test]
fn two_threads_write_one_threads_file() {
    let d = tempdir();
    // P = 784·64 + 64·64 + 64·10 ≈ 55 k parameters: two fixed reduction blocks, so the
    // eigensolver's dot products and basis products really split over the threads; the
    // activations of the measurement set (64 × 512) too.
    let text = r#"
[data]
dataset = "fashion-mnist"
n_train = 512
[model]
depth = [3]
width = [64]
[train]
batch_size = 128
steps = 4
seeds = [1]
[sharpness]
measure_n = 512
tol = 1e-4
[grid]
c = [2.0, 64.0]
"#;
    std::fs::write(d.path().join("t.toml"), text).unwrap();
    for t in ["1", "2"] {
        let out = sharpsweep(
            d.path(),
            &[
                "sweep",
                "t.toml",
                "--out",
                &format!("t{t}.h5"),
                "--quiet",
                "--threads",
                t,
            ],
        );
        expect_code(&out, 0, &format!("sweep --threads {t}"));
    }
    let (one, two) = (read(&d.path().join("t1.h5")), read(&d.path().join("t2.h5")));
    assert_eq!(
        one.records.iter().flatten().count(),
        2,
        "both runs finished"
    );
    let hvps: i32 = one
        .records
        .iter()
        .flatten()
        .flat_map(|r| r.hvps.iter())
        .filter(|h| **h > 0)
        .sum();
    assert!(hvps > 10, "the runs measured the sharpness ({hvps} HVPs)");
    assert_same_data(&one, &two, "--threads 2 against --threads 1");
}
