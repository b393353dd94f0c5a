//! Provenance of a results file: the root attributes written at creation ([`FileMeta`]),
//! read back as [`StoredMeta`], the `history` lines, and the format marker.

use std::fmt::Write as _;
use std::path::Path;

use ::hdf5::types::VarLenUnicode;
use ::hdf5::{File, Location};

use super::nc::{read_str_attr, write_num_attr, write_str_attr};
use super::{invalid, not_results, StoreError};

/// Value of the root attribute `sharpsweep_format` that marks a results file of this layout.
pub const FORMAT: &str = "sharpsweep-results-1";

/// Provenance written to the root attributes when a file is created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// The full TOML text of the config (attribute `config`).
    pub config_text: String,
    /// SHA-256 of the config text, hex (attribute `config_sha256`); resume checks it.
    pub config_sha256: String,
    /// Conventions as (key, value) pairs, in order: loss definition, parameterization,
    /// preprocessing, η rule, divergence threshold, sharpness method and tolerance,
    /// measurement set. Stored as the multi-line text attribute `conventions`
    /// ("key: value" lines) and each as attribute `convention_<key>`. Keys are made of
    /// ASCII letters, digits and `_`.
    pub conventions: Vec<(String, String)>,
    /// Version of sharpsweep (attribute `program_version`).
    pub program_version: String,
    /// Git commit the program was built from (attribute `git_commit`).
    pub git_commit: String,
    /// MPI library version string (attribute `mpi_version`).
    pub mpi_version: String,
    /// CPU features the program uses (attribute `cpu_features`).
    pub cpu_features: String,
    /// Number of MPI ranks of the creating job (attribute `ranks`).
    pub ranks: u32,
    /// Slurm job id of the creating job (attribute `slurm_job_id`, "" when none).
    pub slurm_job_id: Option<String>,
}

/// The root attributes of a results file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMeta {
    /// The provenance written at creation.
    pub meta: FileMeta,
    /// HDF5 library version that created the file (attribute `hdf5_version`).
    pub hdf5_version: String,
    /// The `history` attribute, one entry per line (creation, each resume, ...).
    pub history: Vec<String>,
    /// Runs read from the journal of a sweep still running or killed, not yet in the
    /// HDF5 file itself (0 for a closed file).
    pub journal_runs: usize,
}

/// The HDF5 library version, e.g. "1.10.8".
pub fn hdf5_library_version() -> String {
    let (a, b, c) = ::hdf5::library_version();
    format!("{a}.{b}.{c}")
}

/// Current UTC time as ISO 8601, e.g. "2026-11-28T20:00:00Z".
pub(crate) fn iso_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    iso_from_unix(secs)
}

/// ISO 8601 UTC text of a Unix time in seconds.
fn iso_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Refuses convention keys that are not ASCII letters, digits or `_`.
pub(crate) fn check_convention_keys(path: &Path, meta: &FileMeta) -> Result<(), StoreError> {
    for (key, _) in &meta.conventions {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid(
                path,
                format!("convention key {key:?} must be ASCII letters, digits or '_'"),
            ));
        }
    }
    Ok(())
}

/// The `conventions` text: one "key: value" line per pair, continuation lines of a
/// multi-line value indented by two spaces.
fn conventions_text(conventions: &[(String, String)]) -> String {
    let mut text = String::new();
    for (k, v) in conventions {
        let _ = writeln!(text, "{k}: {}", v.replace('\n', "\n  "));
    }
    text
}

/// Keys of the `conventions` text, in order.
fn conventions_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("  "))
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
        .collect()
}

/// "sharpsweep 0.1.0 (git abc, 4 ranks, slurm job 123)".
pub(crate) fn describe(meta: &FileMeta) -> String {
    let mut s = format!(
        "sharpsweep {} (git {}, {} rank{}",
        meta.program_version,
        if meta.git_commit.is_empty() {
            "unknown"
        } else {
            &meta.git_commit
        },
        meta.ranks,
        if meta.ranks == 1 { "" } else { "s" }
    );
    if let Some(id) = meta.slurm_job_id.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(s, ", slurm job {id}");
    }
    s.push(')');
    s
}

/// Writes the root attributes of a file: format marker, CF conventions, title, the
/// provenance of `meta`, the HDF5 version that created the file, and the `history` text.
pub(crate) fn write_root_attrs(
    file: &File,
    path: &Path,
    meta: &FileMeta,
    hdf5_version: &str,
    history: &str,
) -> Result<(), StoreError> {
    let root: &Location = file;
    let s = |name: &str, value: &str| write_str_attr(root, path, name, value);
    s("sharpsweep_format", FORMAT)?;
    s("Conventions", "CF-1.8")?;
    s(
        "title",
        "sharpsweep: early training dynamics (loss and sharpness) of MLPs over a grid",
    )?;
    s("config", &meta.config_text)?;
    s("config_sha256", &meta.config_sha256)?;
    s("conventions", &conventions_text(&meta.conventions))?;
    for (k, v) in &meta.conventions {
        s(&format!("convention_{k}"), v)?;
    }
    s("program_version", &meta.program_version)?;
    s("git_commit", &meta.git_commit)?;
    s("mpi_version", &meta.mpi_version)?;
    s("hdf5_version", hdf5_version)?;
    s("cpu_features", &meta.cpu_features)?;
    write_num_attr(root, path, "ranks", i64::from(meta.ranks))?;
    s("slurm_job_id", meta.slurm_job_id.as_deref().unwrap_or(""))?;
    s("history", history)
}

/// Refuses a file without this layout's `sharpsweep_format` marker.
pub(crate) fn check_format(file: &File, path: &Path) -> Result<(), StoreError> {
    let format = file
        .attr("sharpsweep_format")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(|_| not_results(path, "no `sharpsweep_format` attribute"))?;
    if format.as_str() != FORMAT {
        return Err(not_results(
            path,
            format!(
                "format {:?}, this program reads {FORMAT:?}",
                format.as_str()
            ),
        ));
    }
    Ok(())
}

/// Reads the root attributes back.
pub(crate) fn read_meta(file: &File, path: &Path) -> Result<StoredMeta, StoreError> {
    let s = |name: &str| read_str_attr(file, path, name);
    let conventions = conventions_keys(&s("conventions")?)
        .into_iter()
        .map(|k| {
            let v = s(&format!("convention_{k}"))?;
            Ok((k, v))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let ranks = file
        .attr("ranks")
        .and_then(|a| a.read_scalar::<i64>())
        .map_err(|_| not_results(path, "attribute `ranks` missing"))?;
    let slurm = s("slurm_job_id")?;
    Ok(StoredMeta {
        meta: FileMeta {
            config_text: s("config")?,
            config_sha256: s("config_sha256")?,
            conventions,
            program_version: s("program_version")?,
            git_commit: s("git_commit")?,
            mpi_version: s("mpi_version")?,
            cpu_features: s("cpu_features")?,
            ranks: u32::try_from(ranks).map_err(|_| not_results(path, "bad `ranks`"))?,
            slurm_job_id: (!slurm.is_empty()).then_some(slurm),
        },
        hdf5_version: s("hdf5_version")?,
        history: s("history")?.lines().map(str::to_string).collect(),
        journal_runs: 0,
    })
}

/// The config the results file at `path` records (`stored`, with its runs `results`),
/// checked against the file itself: the `config` attribute must parse and hash to
/// `config_sha256`, and its `grid.axes` must be the file's `axes`. A file whose attributes
/// were edited or damaged is refused naming the attribute, rather than analyzed or
/// resumed with the wrong settings.
pub fn file_config(
    path: &Path,
    stored: &StoredMeta,
    results: &crate::record::Results,
) -> Result<crate::config::Config, StoreError> {
    let meta = &stored.meta;
    let cfg = crate::config::Config::from_toml_str(&meta.config_text).map_err(|e| {
        invalid(
            path,
            format!("attribute `config` is not a readable config ({e})"),
        )
    })?;
    if cfg.identity().1 != meta.config_sha256 {
        return Err(invalid(
            path,
            format!(
                "attribute `config` does not hash to `config_sha256` ({}): the file's attributes were edited",
                meta.config_sha256
            ),
        ));
    }
    if cfg.axes() != results.axes {
        return Err(invalid(
            path,
            "attribute `axes` does not match the config's `grid.axes`: the file's attributes were edited",
        ));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_from_unix(1_795_896_000), "2026-11-28T20:00:00Z");
    }

    #[test]
    fn conventions_text_round_trips_keys() {
        let c = vec![
            ("a".to_string(), "x\ny".to_string()),
            ("b_2".to_string(), "z: w".to_string()),
        ];
        assert_eq!(conventions_keys(&conventions_text(&c)), vec!["a", "b_2"]);
    }
}
