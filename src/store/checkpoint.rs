//! Where mid-run checkpoints are kept: the side files of runs in flight,
//! `FILE.checkpoints/<run>.ckpt` next to the results file FILE. The store keeps their
//! bytes only (training encodes and decodes them). Each file is written whole to a
//! temporary name, `fsync`ed and renamed over the last (an atomic replace,
//! [`durable`](super::durable)): a kill leaves the previous checkpoint or the new one,
//! never a torn one.

use super::durable;
use crate::record::TaskKey;
use std::path::{Path, PathBuf};

/// The directory of `results`' checkpoints: `FILE.checkpoints`.
pub fn checkpoint_dir(results: &Path) -> PathBuf {
    let mut p = results.as_os_str().to_owned();
    p.push(".checkpoints");
    PathBuf::from(p)
}

/// The checkpoint file of run `key` of `results`: its depth, width, seeds, the bits of c
/// (exact, and a valid file name) and its `grid.axes` point.
pub fn checkpoint_path(results: &Path, key: &TaskKey) -> PathBuf {
    checkpoint_dir(results).join(format!(
        "d{}-w{}-s{}-g{}-c{:016x}-a{}.ckpt",
        key.depth,
        key.width,
        key.seed,
        key.sgd_seed,
        key.c.to_bits(),
        key.axis_point
    ))
}

/// Writes the checkpoint bytes of run `key` atomically (temporary file, `fsync`, rename
/// over the previous one, directory `fsync`), creating the directory when needed.
pub fn save_bytes(results: &Path, key: &TaskKey, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(checkpoint_dir(results))?;
    Ok(durable::write_replacing(
        &checkpoint_path(results, key),
        bytes,
    )?)
}

/// The checkpoint bytes of run `key`: `Ok(None)` when there is none, `Err` (naming the
/// file) when it cannot be read.
pub fn load_bytes(results: &Path, key: &TaskKey) -> Result<Option<Vec<u8>>, String> {
    let path = checkpoint_path(results, key);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Removes run `key`'s checkpoint (once its record is committed), and a temporary one a
/// kill left half-written; none is fine.
pub fn remove(results: &Path, key: &TaskKey) -> std::io::Result<()> {
    let path = checkpoint_path(results, key);
    for p in [durable::tmp_path(&path), path] {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the checkpoint directory of `results` with whatever it holds (a sweep whose
/// every run is in the file).
pub fn remove_all(results: &Path) {
    let _ = std::fs::remove_dir_all(checkpoint_dir(results));
}

/// Removes the checkpoint directory of `results` when it is empty (a sweep that ended).
pub fn remove_dir_if_empty(results: &Path) {
    let _ = std::fs::remove_dir(checkpoint_dir(results));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TaskKey {
        TaskKey {
            c: 2.5,
            depth: 3,
            width: 8,
            seed: 1,
            sgd_seed: 2,
            axis_point: 3,
        }
    }

    #[test]
    fn save_replaces_atomically_and_load_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.h5");
        let key = key();
        let point = TaskKey {
            axis_point: 0,
            ..key
        };
        assert_ne!(
            checkpoint_path(Path::new("r"), &point),
            checkpoint_path(Path::new("r"), &key)
        );
        assert!(load_bytes(&results, &key).unwrap().is_none());
        save_bytes(&results, &key, b"first").unwrap();
        save_bytes(&results, &key, b"later").unwrap();
        let back = load_bytes(&results, &key).unwrap().unwrap();
        assert_eq!(back, b"later");
        let names: Vec<_> = std::fs::read_dir(checkpoint_dir(&results))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
        // A temporary a kill left behind goes with the run's checkpoint.
        std::fs::write(durable::tmp_path(&checkpoint_path(&results, &key)), b"half").unwrap();
        std::fs::create_dir(checkpoint_path(&results, &point)).unwrap();
        let e = load_bytes(&results, &point).unwrap_err();
        assert!(e.contains("r.h5.checkpoints"), "{e}");
        std::fs::remove_dir(checkpoint_path(&results, &point)).unwrap();
        remove(&results, &key).unwrap();
        remove(&results, &key).unwrap();
        remove_dir_if_empty(&results);
        assert!(!checkpoint_dir(&results).exists());
        save_bytes(&results, &key, b"again").unwrap();
        remove_dir_if_empty(&results);
        assert!(checkpoint_dir(&results).exists(), "not empty: kept");
        remove_all(&results);
        assert!(!checkpoint_dir(&results).exists());
    }
}
