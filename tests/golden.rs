//! The results file is unchanged by refactoring: sweeping `tests/golden/small.toml` and
//! analysing it gives, bit for bit, the file `tests/golden/small-v2.h5`, except for what
//! `golden_compare.py` lists (wall-clock seconds, version and machine provenance).
//! `small-v2.h5` was written by the tracked sharpness estimator (`lanczos-tracked-2`) with
//! the measurement schedule's defaults (loss every step, `train.loss_every` = 1);
//! `small-v1.h5` (written before the run record had one schema, estimator
//! `lanczos-warm-1`) is kept for the "earlier version reads and resumes" test.
//!
//! Regenerate the golden file (when the default numbers change on purpose) from the
//! repository root with the release binary:
//!
//! ```text
//! cargo build --release && d=$(mktemp -d) && cp tests/golden/small.toml $d/ && \
//!   (cd $d && $OLDPWD/target/release/sharpsweep sweep small.toml --out small-v2.h5 --quiet && \
//!    $OLDPWD/target/release/sharpsweep analyze small-v2.h5) && \
//!   cp $d/small-v2.h5 tests/golden/small-v2.h5 && git add -f tests/golden/small-v2.h5
//! ```

mod common;

use common::{expect_code, sharpsweep, tempdir};
use std::path::Path;
use std::process::Command;

#[test]
fn sweep_and_analysis_match_the_golden_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let d = tempdir();
    std::fs::copy(root.join("small.toml"), d.path().join("small.toml")).unwrap();
    // Same --out as when the golden file was made: the config text it records includes it.
    let out = sharpsweep(
        d.path(),
        &["sweep", "small.toml", "--out", "small-v2.h5", "--quiet"],
    );
    expect_code(&out, 0, "sweep");
    expect_code(
        &sharpsweep(d.path(), &["analyze", "small-v2.h5"]),
        0,
        "analyze",
    );
    let compare = Command::new("python3")
        .arg(root.parent().unwrap().join("golden_compare.py"))
        .arg(root.join("small-v2.h5"))
        .arg(d.path().join("small-v2.h5"))
        .output()
        .expect("python3 with h5py (scripts/setup.sh --python installs it)");
    let text = String::from_utf8_lossy(&compare.stdout);
    assert!(
        compare.status.success(),
        "results differ from the golden file:\n{text}\n{}",
        String::from_utf8_lossy(&compare.stderr)
    );
    assert!(text.contains("0 difference(s)"), "{text}");
}

/// A file written by the earlier version (no `stop_reason`, `search_round`, `eig`, spectra)
/// is read by every command and resumed: its runs keep every value, and the new variables
/// are added (read as never measured).
#[test]
fn a_file_of_the_earlier_version_reads_and_resumes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let d = tempdir();
    std::fs::copy(root.join("small.toml"), d.path().join("small.toml")).unwrap();
    std::fs::copy(root.join("small-v1.h5"), d.path().join("small-v1.h5")).unwrap();
    let path = d.path().join("small-v1.h5");
    for args in [
        &["inspect", "small-v1.h5"][..],
        &["analyze", "small-v1.h5", "--no-write"],
        &["plot", "small-v1.h5", "--out-dir", "figs"],
    ] {
        expect_code(&sharpsweep(d.path(), args), 0, args[0]);
    }
    let old = common::read(&path);
    assert_eq!(old.k.get(), 1);
    let out = sharpsweep(
        d.path(),
        &[
            "sweep",
            "small.toml",
            "--out",
            "small-v1.h5",
            "--resume",
            "--quiet",
        ],
    );
    // Its pending runs were skipped by stop_after_divergence: nothing is left to run.
    expect_code(&out, 0, "resume of the earlier version's file");
    let new = common::read(&path);
    assert_eq!(new.keys, old.keys);
    common::assert_same_data(&old, &new, "the earlier version's file, resumed");
    assert!(new
        .records
        .iter()
        .flatten()
        .all(|r| r.eigenvalues.iter().all(|x| x.is_nan())));
    let names = Command::new("python3")
        .args([
            "-c",
            "import h5py, sys; f = h5py.File(sys.argv[1]); print(sorted(f.keys()))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout);
    for v in ["'eig'", "'eigenvalues'", "'search_round'", "'stop_reason'"] {
        assert!(names.contains(v), "{v} added by the resume: {names}");
    }
}
