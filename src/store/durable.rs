//! The store's two durability tools, each written once: the CRC-32 that frames the
//! journal's records and a checkpoint's payload, and the atomic replace of a file (write
//! a temporary, `fsync` it, rename it over the file, `fsync` the directory) by which the
//! results file, its tables and the checkpoints change: a kill leaves the old file or the
//! new one, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The CRC-32 (IEEE 802.3, as zlib's `crc32`) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// `path` with `.tmp` appended: where a new version of it is written before the rename.
pub(super) fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Makes a directory entry change (create, rename, unlink) in the directory of `path`
/// durable.
pub(super) fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// A step of an atomic replace that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub(super) struct ReplaceError {
    /// What the replace was doing.
    pub step: &'static str,
    /// The system's error.
    #[source]
    pub source: std::io::Error,
}

impl From<ReplaceError> for std::io::Error {
    fn from(e: ReplaceError) -> Self {
        std::io::Error::new(e.source.kind(), e.to_string())
    }
}

fn step(step: &'static str) -> impl FnOnce(std::io::Error) -> ReplaceError {
    move |source| ReplaceError { step, source }
}

/// Puts the complete file `tmp` in place of `path`, atomically and durably: `fsync` it,
/// rename it over `path`, `fsync` the directory.
pub(super) fn replace_with(path: &Path, tmp: &Path) -> Result<(), ReplaceError> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(step("syncing the new file"))?;
    std::fs::rename(tmp, path).map_err(step("renaming the new file into place"))?;
    sync_dir_of(path).map_err(step("syncing the directory"))
}

/// Replaces the file at `path` by `bytes`, atomically and durably: written whole to
/// [`tmp_path`], then [`replace_with`].
pub(super) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), ReplaceError> {
    let tmp = tmp_path(path);
    File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(step("writing the new file"))?;
    replace_with(path, &tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn write_replacing_leaves_the_new_bytes_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_replacing(&path, b"old").unwrap();
        write_replacing(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!tmp_path(&path).exists());
        let missing = dir.path().join("no-such-dir").join("f");
        let e = write_replacing(&missing, b"x").unwrap_err();
        assert_eq!(e.step, "writing the new file");
    }
}
