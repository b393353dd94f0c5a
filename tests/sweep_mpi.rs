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

/// The last history line of a results file.
fn last_history(path: &std::path::Path) -> String {
    let history = sharpsweep::store::read_results(path).unwrap().1.history;
    history.last().cloned().unwrap_or_default()
}

/// Under mpirun the ranks of a node share one copy of the dataset: the files are read once
/// (each process counts its own loads, the sweep sums them over the ranks and says so on
/// stderr and in the file's history), and the results are bit for bit those of a sweep in
/// which every rank loads its own copy (SHARPSWEEP_DATA_PER_RANK=1). Checked with 4 ranks
/// in f32 and 2 ranks in f64; the pre-flight line reports the memory per rank and the
/// dataset once per node.
#[test]
fn one_dataset_load_per_node_and_the_same_results_as_per_rank_loading() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 3, 4);
    let cfg = cfg.to_str().unwrap();
    for (np, precision) in [(4, "f32"), (2, "f64")] {
        let set = format!("train.precision=\"{precision}\"");
        let sweep = |out: &str, extra: &[&str]| {
            let args = ["sweep", cfg, "--out", out, "--set", &set];
            let run = mpirun(d, np, extra, &args);
            expect_code(&run, 0, &format!("-np {np} {extra:?}"));
            String::from_utf8_lossy(&run.stderr).into_owned()
        };
        let shared_out = format!("shared{np}.h5");
        let own_out = format!("own{np}.h5");
        let shared = sweep(&shared_out, &[]);
        let own = sweep(&own_out, &["-x", "SHARPSWEEP_DATA_PER_RANK=1"]);
        let once = format!(
            "dataset read 1 time(s) for {np} rank(s) on 1 node(s): one shared read-only copy \
             per node"
        );
        let each =
            format!("dataset read {np} time(s) for {np} rank(s) on 1 node(s): one copy per rank");
        assert!(shared.contains(&once), "{shared}");
        assert!(own.contains(&each), "{own}");
        assert!(last_history(&d.join(&shared_out)).contains(&once));
        assert!(last_history(&d.join(&own_out)).contains(&each));
        for (stderr, data) in [
            (
                &shared,
                format!("once per node (its {np} ranks share one read-only copy)"),
            ),
            (&own, "counted in every rank".to_string()),
        ] {
            let line = stderr
                .lines()
                .find(|l| l.starts_with("sharpsweep: memory: largest run "))
                .unwrap_or_else(|| panic!("no pre-flight memory line in {stderr}"));
            assert!(line.contains(" GiB per rank without its data"), "{line}");
            assert!(line.contains(&data), "{line}");
            assert!(
                line.contains(&format!("for the node's {np} rank(s)")),
                "{line}"
            );
        }
        let (a, b) = (read(&d.join(&shared_out)), read(&d.join(&own_out)));
        assert!(a.records.iter().all(|r| r.is_some()), "every run finished");
        assert_same_data(
            &b,
            &a,
            &format!("-np {np} {precision}: shared vs per-rank data"),
        );
    }
}

/// A node whose dataset cannot be read stops every rank with the loader's error (none
/// waits for the shared copy), and a bad SHARPSWEEP_DATA_PER_RANK is refused by name.
#[test]
fn a_failed_shared_load_stops_every_rank_and_the_variable_is_checked() {
    let _turn = serial();
    let dir = tempdir();
    let d = dir.path();
    let cfg = tiny_config(d, "tiny.toml", 1, 2);
    let cfg = cfg.to_str().unwrap();
    let missing = format!("data.dir=\"{}\"", d.join("nowhere").display());
    let out = mpirun(
        d,
        2,
        &[],
        &["sweep", cfg, "--out", "x.h5", "--set", &missing],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing file"), "{err}");
    assert!(!d.join("x.h5").exists());
    let out = std::process::Command::new(bin())
        .args(["sweep", cfg, "--out", "y.h5"])
        .env("SHARPSWEEP_DATA_PER_RANK", "maybe")
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SHARPSWEEP_DATA_PER_RANK=\"maybe\""), "{err}");
    assert!(!d.join("y.h5").exists());
}
