//! The results file is unchanged by refactoring: sweeping `tests/golden/small.toml` and
//! analysing it gives, bit for bit, the file `tests/golden/small-v1.h5` that the program
//! wrote before the run record had one schema, except for what `golden_compare.py` lists
//! (wall-clock seconds, version and machine provenance, and the variables and attributes
//! added since: `stop_reason`, `units`).

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
        &["sweep", "small.toml", "--out", "small-v1.h5", "--quiet"],
    );
    expect_code(&out, 0, "sweep");
    expect_code(
        &sharpsweep(d.path(), &["analyze", "small-v1.h5"]),
        0,
        "analyze",
    );
    let compare = Command::new("python3")
        .arg(root.parent().unwrap().join("golden_compare.py"))
        .arg(root.join("small-v1.h5"))
        .arg(d.path().join("small-v1.h5"))
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
