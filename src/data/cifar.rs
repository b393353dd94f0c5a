//! CIFAR-10, binary version: `data_batch_1.bin` … `data_batch_5.bin` in `data.dir`. Each
//! record is 1 label byte (0..=9) and 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each
//! row-major 32×32); the features keep this channel-major order. A batch normally holds
//! 10000 records; any whole number of records is accepted, and a source row counts across the
//! files in order.
//!
//! With `subset = "first"` only as many batch files are read as `n_train` needs; with
//! `subset = "random"` the subset is drawn from all five files, which must all be present.

use super::{
    standardize_examples, subset_description, subset_rows, DataError, Dataset, STANDARDIZATION_NOTE,
};
use crate::config::{DataConfig, SubsetKind};
use std::path::{Path, PathBuf};

/// Pixel bytes per image (3 channels × 32 × 32).
pub const IMAGE_LEN: usize = 3072;
/// Bytes per record (label + image).
pub const RECORD_LEN: usize = 1 + IMAGE_LEN;
/// Number of training batch files.
pub const BATCH_FILES: usize = 5;
/// Classes of CIFAR-10.
pub const CLASSES: usize = 10;

/// Path of training batch `k` (1-based) in `dir`.
pub fn batch_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("data_batch_{k}.bin"))
}

/// Number of records in a batch file, from its length; errors if it is missing or holds a
/// partial record.
fn record_count(path: &Path) -> Result<usize, DataError> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile {
            path: path.to_path_buf(),
            what: "CIFAR-10 training batch (binary version)".into(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let len = meta.len();
    let records = len / RECORD_LEN as u64;
    if len % RECORD_LEN as u64 != 0 {
        return Err(DataError::TruncatedRecord {
            path: path.to_path_buf(),
            record: records,
            offset: records * RECORD_LEN as u64,
            record_len: RECORD_LEN as u64,
            file_len: len,
        });
    }
    Ok(records as usize)
}

/// Reads one batch file and checks every label.
fn read_batch(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = bytes.len() as u64;
    if len % RECORD_LEN as u64 != 0 {
        // The file changed since its length was checked.
        let records = len / RECORD_LEN as u64;
        return Err(DataError::TruncatedRecord {
            path: path.to_path_buf(),
            record: records,
            offset: records * RECORD_LEN as u64,
            record_len: RECORD_LEN as u64,
            file_len: len,
        });
    }
    for (r, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        if record[0] as usize >= CLASSES {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                offset: (r * RECORD_LEN) as u64,
                label: record[0],
                max: (CLASSES - 1) as u8,
                note: "",
            });
        }
    }
    Ok(bytes)
}

/// Loads the CIFAR-10 training subset from `cfg.dir`.
pub fn load(cfg: &DataConfig) -> Result<Dataset, DataError> {
    // Which files to read, and how many records each holds.
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    let mut available = 0;
    for k in 1..=BATCH_FILES {
        if cfg.subset == SubsetKind::First && available >= cfg.n_train {
            break;
        }
        let path = batch_path(&cfg.dir, k);
        let count = record_count(&path)?;
        available += count;
        files.push((path, count));
    }
    if cfg.n_train > available {
        return Err(DataError::NotEnoughExamples {
            path: cfg.dir.join("data_batch_{1..5}.bin"),
            requested: cfg.n_train,
            available,
        });
    }

    let rows = subset_rows(available, cfg);
    let mut x = Vec::with_capacity(rows.len() * IMAGE_LEN);
    let mut labels = Vec::with_capacity(rows.len());
    let mut next = 0; // position in `rows`
    let mut file_start = 0; // source row of the current file's first record
    for (path, count) in &files {
        let file_end = file_start + count;
        if next < rows.len() && rows[next] < file_end {
            let bytes = read_batch(path)?;
            while next < rows.len() && rows[next] < file_end {
                let at = (rows[next] - file_start) * RECORD_LEN;
                labels.push(bytes[at]);
                x.extend(bytes[at + 1..at + RECORD_LEN].iter().map(|&p| p as f32));
                next += 1;
            }
        }
        file_start = file_end;
    }
    debug_assert_eq!(next, rows.len());
    standardize_examples(&mut x, IMAGE_LEN);

    let names: Vec<String> = files
        .iter()
        .map(|(p, c)| format!("{} ({c} records)", p.display()))
        .collect();
    let source = format!(
        "cifar10 training batches: {}; {}; {}",
        names.join(", "),
        subset_description(available, cfg),
        STANDARDIZATION_NOTE
    );
    Ok(Dataset {
        name: "cifar10".into(),
        input_dim: IMAGE_LEN,
        classes: CLASSES,
        n: rows.len(),
        x,
        labels,
        indices: rows,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetKind;

    /// A batch of `n` records; record r has label (r + salt) % 10 and pixels (r·3 + p) % 251.
    fn batch(n: usize, salt: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(n * RECORD_LEN);
        for r in 0..n {
            b.push(((r + salt) % 10) as u8);
            b.extend((0..IMAGE_LEN).map(|p| ((r * 3 + p + salt) % 251) as u8));
        }
        b
    }

    fn cfg(dir: &Path, n_train: usize) -> DataConfig {
        DataConfig {
            dataset: DatasetKind::Cifar10,
            dir: dir.to_path_buf(),
            n_train,
            ..DataConfig::default()
        }
    }

    #[test]
    fn reads_records_across_batch_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(batch_path(tmp.path(), 1), batch(3, 0)).unwrap();
        std::fs::write(batch_path(tmp.path(), 2), batch(4, 5)).unwrap();
        // Batches 3..5 are absent: the first 5 records only need files 1 and 2.
        let d = super::super::load(&cfg(tmp.path(), 5)).unwrap();
        assert_eq!((d.n, d.input_dim, d.classes), (5, 3072, 10));
        assert_eq!(d.labels, vec![0, 1, 2, 5, 6]);
        assert_eq!(d.indices, vec![0, 1, 2, 3, 4]);
        // Record 1 of file 2, standardized, in file (channel-major) order.
        let mut expect: Vec<f32> = (0..IMAGE_LEN).map(|p| ((3 + p + 5) % 251) as f32).collect();
        standardize_examples(&mut expect, IMAGE_LEN);
        assert_eq!(&d.x[4 * IMAGE_LEN..], &expect[..]);
        assert!(d.source.contains("data_batch_2.bin"), "{}", d.source);
        assert!(!d.source.contains("data_batch_3.bin"), "{}", d.source);
    }

    #[test]
    fn random_subset_needs_all_batches() {
        let tmp = tempfile::tempdir().unwrap();
        for k in 1..=4 {
            std::fs::write(batch_path(tmp.path(), k), batch(2, k)).unwrap();
        }
        let mut c = cfg(tmp.path(), 3);
        c.subset = SubsetKind::Random;
        let err = super::super::load(&c).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
        assert!(err.to_string().contains("data_batch_5.bin"), "{err}");

        std::fs::write(batch_path(tmp.path(), 5), batch(2, 5)).unwrap();
        let a = super::super::load(&c).unwrap();
        assert_eq!(a, super::super::load(&c).unwrap());
        c.subset_seed = 1;
        let b = super::super::load(&c).unwrap();
        assert_ne!(a.indices, b.indices);
        // Each row's label matches the file it came from.
        for (&row, &label) in a.indices.iter().zip(&a.labels) {
            let (k, r) = (row / 2 + 1, row % 2);
            assert_eq!(label as usize, (r + k) % 10);
        }
    }

    #[test]
    fn truncated_record_names_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = batch(3, 0);
        b.truncate(2 * RECORD_LEN + 100);
        std::fs::write(batch_path(tmp.path(), 1), b).unwrap();
        let err = super::super::load(&cfg(tmp.path(), 1)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TruncatedRecord {
                    record: 2,
                    offset: 6146,
                    file_len: 6246,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("data_batch_1.bin") && msg.contains("offset 6146"),
            "{msg}"
        );
    }

    #[test]
    fn label_out_of_range_names_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = batch(3, 0);
        b[RECORD_LEN] = 10;
        std::fs::write(batch_path(tmp.path(), 1), b).unwrap();
        let err = super::super::load(&cfg(tmp.path(), 1)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    offset: 3073,
                    label: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("data_batch_1.bin"));
    }

    #[test]
    fn n_train_larger_than_all_batches() {
        let tmp = tempfile::tempdir().unwrap();
        for k in 1..=BATCH_FILES {
            std::fs::write(batch_path(tmp.path(), k), batch(2, k)).unwrap();
        }
        let err = super::super::load(&cfg(tmp.path(), 11)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotEnoughExamples {
                    requested: 11,
                    available: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("n_train = 11"), "{err}");
    }

    #[test]
    fn missing_first_batch_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = super::super::load(&cfg(tmp.path(), 1)).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }));
        assert!(err.to_string().contains("data_batch_1.bin"));
    }
}
