//! The same config gives the same file with any number of MPI ranks, and without mpirun.

mod common;
use common::*;

#[test]
fn identical_results_for_one_two_three_ranks_and_no_mpirun() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 4, 5);
    let cfg = cfg.to_str().unwrap();
    let out = sharpsweep(d, &["sweep", cfg, "--out", "plain.h5", "--quiet"]);
    expect_code(&out, 0, "sweep without mpirun");
    let reference = read(&d.join("plain.h5"));
    assert!(
        reference.records.iter().all(|r| r.is_some()),
        "every run finished"
    );
    assert_eq!(reference.keys.len(), 2 * 2 * 4);
    for np in [1, 2, 3] {
        let name = format!("np{np}.h5");
        let out = mpirun(d, np, &[], &["sweep", cfg, "--out", &name, "--quiet"]);
        expect_code(&out, 0, &format!("mpirun -np {np}"));
        let r = read(&d.join(&name));
        assert_same_data(&reference, &r, &format!("-np {np} vs no mpirun"));
        let meta = sharpsweep::store::read_results(&d.join(&name)).unwrap().1;
        assert_eq!(meta.meta.ranks, np as u32, "rank count recorded");
    }
}

#[test]
fn world_size_mismatch_is_refused() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 2, 2);
    // Emulates a binary whose MPI disagrees with the launcher about the world size.
    let out = mpirun(
        d,
        2,
        &["-x", "PMI_SIZE=5"],
        &["sweep", cfg.to_str().unwrap(), "--out", "x.h5"],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("world size mismatch") && err.contains("PMI_SIZE=5"),
        "{err}"
    );
    assert!(
        !d.join("x.h5").exists(),
        "nothing written on a refused start"
    );
}
