//! MNIST / Fashion-MNIST in the IDX format: `train-images-idx3-ubyte` (magic 0x00000803,
//! then n, rows, cols as big-endian u32, then n·rows·cols pixel bytes) and
//! `train-labels-idx1-ubyte` (magic 0x00000801, then n, then n label bytes). Each file may be
//! gzipped (`.gz`); gzip is recognised by its magic bytes `1f 8b`, not by the name. Only the
//! training split is read. Pixels become f32 in 0..=255, then each example is standardized.

use super::{
    standardize_examples, subset_description, subset_rows, DataError, Dataset, STANDARDIZATION_NOTE,
};
use crate::config::DataConfig;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Base name of the training images file (`.gz` is also tried).
pub const IMAGES_NAME: &str = "train-images-idx3-ubyte";
/// Base name of the training labels file (`.gz` is also tried).
pub const LABELS_NAME: &str = "train-labels-idx1-ubyte";
/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Classes of MNIST and Fashion-MNIST.
pub const CLASSES: usize = 10;

/// The contents of a file, decompressed if it was gzipped.
pub struct FileBytes {
    /// The file read.
    pub path: PathBuf,
    /// Its (decompressed) contents.
    pub bytes: Vec<u8>,
    /// Whether it was gzipped.
    pub gzipped: bool,
}

impl FileBytes {
    /// Suffix for lengths and offsets in messages.
    fn note(&self) -> &'static str {
        if self.gzipped {
            " (decompressed)"
        } else {
            ""
        }
    }
}

/// `dir/name.gz` if it exists, else `dir/name` if it exists, else a missing-file error.
pub fn find_file(dir: &Path, name: &str, what: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(DataError::MissingFile {
        path: raw,
        what: format!("{what}; also looked for {}", gz.display()),
    })
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes.
pub fn read_maybe_gzip(path: &Path) -> Result<FileBytes, DataError> {
    let raw = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile {
            path: path.to_path_buf(),
            what: "no such file".into(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut bytes = Vec::with_capacity(raw.len() * 2);
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(FileBytes {
            path: path.to_path_buf(),
            bytes,
            gzipped: true,
        })
    } else {
        Ok(FileBytes {
            path: path.to_path_buf(),
            bytes: raw,
            gzipped: false,
        })
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Checks the magic number and that the file is exactly `header_len + n·item_len` bytes;
/// returns the header's u32 fields after the magic.
fn check_header(
    file: &FileBytes,
    magic: u32,
    what: &'static str,
    dims: usize,
) -> Result<Vec<u32>, DataError> {
    let header_len = 4 + 4 * dims;
    let actual = file.bytes.len() as u64;
    let truncated_header = || DataError::Truncated {
        path: file.path.clone(),
        expected: header_len as u64,
        actual,
        note: file.note(),
    };
    if file.bytes.len() < 4 {
        return Err(truncated_header());
    }
    // The magic number first: a wrong kind of file is reported as such even when short.
    let found = be_u32(&file.bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: file.path.clone(),
            found,
            expected: magic,
            what,
        });
    }
    if file.bytes.len() < header_len {
        return Err(truncated_header());
    }
    let fields: Vec<u32> = (0..dims).map(|k| be_u32(&file.bytes, 4 + 4 * k)).collect();
    let expected = header_len as u64 + fields.iter().map(|&f| f as u64).product::<u64>();
    if actual < expected {
        return Err(DataError::Truncated {
            path: file.path.clone(),
            expected,
            actual,
            note: file.note(),
        });
    }
    if actual > expected {
        return Err(DataError::TrailingData {
            path: file.path.clone(),
            expected,
            actual,
            note: file.note(),
        });
    }
    Ok(fields)
}

/// An IDX images file: `n` images of `rows × cols` bytes.
pub struct IdxImages {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// The file with its header; pixels start at byte 16.
    pub file: FileBytes,
}

impl IdxImages {
    /// Pixel bytes of image `i` (row-major).
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.rows * self.cols;
        &self.file.bytes[16 + i * len..16 + (i + 1) * len]
    }
}

/// Parses an images file, checking magic number, dimensions and length.
pub fn parse_images(file: FileBytes) -> Result<IdxImages, DataError> {
    let fields = check_header(&file, IMAGES_MAGIC, "IDX images, 3 dimensions of u8", 3)?;
    let (n, rows, cols) = (fields[0] as usize, fields[1] as usize, fields[2] as usize);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: file.path.clone(),
            message: format!("image size {rows}×{cols} is empty"),
        });
    }
    Ok(IdxImages {
        n,
        rows,
        cols,
        file,
    })
}

/// Parses a labels file, checking magic number, length and that every label is < `classes`.
pub fn parse_labels(file: &FileBytes, classes: usize) -> Result<Vec<u8>, DataError> {
    check_header(file, LABELS_MAGIC, "IDX labels, 1 dimension of u8", 1)?;
    let labels = file.bytes[8..].to_vec();
    if let Some(k) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(DataError::LabelOutOfRange {
            path: file.path.clone(),
            offset: 8 + k as u64,
            label: labels[k],
            max: (classes - 1) as u8,
            note: file.note(),
        });
    }
    Ok(labels)
}

/// Loads the training subset of an IDX dataset in `cfg.dir` (named `name` in the result).
pub fn load(cfg: &DataConfig, name: &str) -> Result<Dataset, DataError> {
    let images_path = find_file(&cfg.dir, IMAGES_NAME, "IDX training images")?;
    let labels_path = find_file(&cfg.dir, LABELS_NAME, "IDX training labels")?;
    let images = parse_images(read_maybe_gzip(&images_path)?)?;
    let labels_file = read_maybe_gzip(&labels_path)?;
    let all_labels = parse_labels(&labels_file, CLASSES)?;
    if all_labels.len() != images.n {
        return Err(DataError::CountMismatch {
            images: images_path,
            n_images: images.n,
            labels: labels_path,
            n_labels: all_labels.len(),
        });
    }
    if cfg.n_train > images.n {
        return Err(DataError::NotEnoughExamples {
            path: images_path,
            requested: cfg.n_train,
            available: images.n,
        });
    }

    let rows = subset_rows(images.n, cfg);
    let input_dim = images.rows * images.cols;
    let mut x = Vec::with_capacity(rows.len() * input_dim);
    for &r in &rows {
        x.extend(images.image(r).iter().map(|&p| p as f32));
    }
    standardize_examples(&mut x, input_dim);
    let labels = rows.iter().map(|&r| all_labels[r]).collect();
    let source = format!(
        "{name} training split: images {} ({}{} × {}×{}), labels {}{}; {}; {}",
        images_path.display(),
        if images.file.gzipped { "gzip, " } else { "" },
        images.n,
        images.rows,
        images.cols,
        labels_path.display(),
        if labels_file.gzipped { " (gzip)" } else { "" },
        subset_description(images.n, cfg),
        STANDARDIZATION_NOTE,
    );
    Ok(Dataset {
        name: name.to_string(),
        input_dim,
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
    use crate::config::{DatasetKind, SubsetKind};
    use flate2::write::GzEncoder;
    use std::io::Write;

    const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

    fn fashion(n_train: usize) -> DataConfig {
        DataConfig {
            dataset: DatasetKind::FashionMnist,
            dir: FASHION_DIR.into(),
            n_train,
            ..DataConfig::default()
        }
    }

    fn cfg_in(dir: &Path, n_train: usize) -> DataConfig {
        DataConfig {
            dir: dir.to_path_buf(),
            ..fashion(n_train)
        }
    }

    /// An IDX images file of `n` 2×3 images (pixel value = image index + position).
    fn images_bytes(n: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(IMAGES_MAGIC.to_be_bytes());
        b.extend(n.to_be_bytes());
        b.extend(2u32.to_be_bytes());
        b.extend(3u32.to_be_bytes());
        for i in 0..n {
            b.extend((0..6).map(|p| (i * 7 + p * 3) as u8));
        }
        b
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(LABELS_MAGIC.to_be_bytes());
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    fn write_pair(dir: &Path, images: &[u8], labels: &[u8]) {
        std::fs::write(dir.join(IMAGES_NAME), images).unwrap();
        std::fs::write(dir.join(LABELS_NAME), labels).unwrap();
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_real_fashion_mnist() {
        let d = super::super::load(&fashion(100)).unwrap();
        assert_eq!(d.name, "fashion-mnist");
        assert_eq!((d.input_dim, d.classes, d.n), (784, 10, 100));
        assert_eq!(d.x.len(), 784 * 100);
        assert_eq!(d.labels.len(), 100);
        assert!(d.labels.iter().all(|&l| l < 10));
        // The first Fashion-MNIST training image is an ankle boot (class 9).
        assert_eq!(d.labels[0], 9);
        assert_eq!(d.indices, (0..100).collect::<Vec<_>>());
        assert!(d.source.contains("60000"), "{}", d.source);
        for e in d.x.chunks(784) {
            let mean = e.iter().map(|&v| v as f64).sum::<f64>() / 784.0;
            let var = e.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 784.0;
            assert!(mean.abs() < 1e-5 && (var.sqrt() - 1.0).abs() < 1e-4);
        }
        // Several classes occur among the first 100.
        let distinct: std::collections::BTreeSet<u8> = d.labels.iter().copied().collect();
        assert!(distinct.len() >= 8, "{distinct:?}");
    }

    #[test]
    fn gzipped_and_raw_files_give_the_same_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        for name in [IMAGES_NAME, LABELS_NAME] {
            let raw = read_maybe_gzip(&Path::new(FASHION_DIR).join(format!("{name}.gz"))).unwrap();
            assert!(raw.gzipped);
            std::fs::write(tmp.path().join(name), &raw.bytes).unwrap();
        }
        let from_gz = super::super::load(&fashion(300)).unwrap();
        let from_raw = super::super::load(&cfg_in(tmp.path(), 300)).unwrap();
        assert_eq!(from_gz.x, from_raw.x);
        assert_eq!(from_gz.labels, from_raw.labels);
        assert!(from_raw.source.contains(tmp.path().to_str().unwrap()));
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes_not_name() {
        let tmp = tempfile::tempdir().unwrap();
        // Gzipped contents under the raw name.
        write_pair(
            tmp.path(),
            &gzip(&images_bytes(4)),
            &gzip(&labels_bytes(&[1, 2, 3, 4])),
        );
        let d = super::super::load(&cfg_in(tmp.path(), 4)).unwrap();
        assert_eq!(d.labels, vec![1, 2, 3, 4]);
        assert_eq!(d.input_dim, 6);
    }

    #[test]
    fn random_subset_is_seeded() {
        let with_seed = |seed| DataConfig {
            subset: SubsetKind::Random,
            subset_seed: seed,
            ..fashion(200)
        };
        let a = super::super::load(&with_seed(1)).unwrap();
        let b = super::super::load(&with_seed(1)).unwrap();
        let c = super::super::load(&with_seed(2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.indices, c.indices);
        assert_eq!(a.indices.len(), 200);
        assert!(a.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(
            *a.indices.last().unwrap() > 200,
            "drawn from the whole file"
        );
        assert!(a.source.contains("subset_seed = 1"), "{}", a.source);
        // The rows really are the ones named in `indices`.
        let first = super::super::load(&fashion(a.indices.last().unwrap() + 1)).unwrap();
        assert_eq!(first.select(&a.indices).x, a.x);
        assert_eq!(first.select(&a.indices).labels, a.labels);
    }

    #[test]
    fn wrong_magic_number_is_reported_with_values() {
        let tmp = tempfile::tempdir().unwrap();
        // Labels given where images belong.
        write_pair(tmp.path(), &labels_bytes(&[1, 2]), &labels_bytes(&[1, 2]));
        let err = super::super::load(&cfg_in(tmp.path(), 1)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    found: 0x801,
                    expected: 0x803,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(IMAGES_NAME), "{msg}");
        assert!(
            msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), &images_bytes(5), &labels_bytes(&[0, 1, 2, 3]));
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    n_images: 5,
                    n_labels: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(IMAGES_NAME) && msg.contains(LABELS_NAME),
            "{msg}"
        );
    }

    #[test]
    fn truncated_file_reports_expected_and_actual_length() {
        let tmp = tempfile::tempdir().unwrap();
        let mut images = images_bytes(5);
        images.truncate(images.len() - 4);
        write_pair(tmp.path(), &images, &labels_bytes(&[0; 5]));
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 46,
                    actual: 42,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(IMAGES_NAME) && msg.contains("46") && msg.contains("42"));

        // A gzipped file truncated mid-stream is a gzip error naming the file.
        let mut gz = gzip(&images_bytes(50));
        gz.truncate(gz.len() / 2);
        write_pair(tmp.path(), &gz, &labels_bytes(&[0; 50]));
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(err.to_string().contains(IMAGES_NAME));

        // Header cut short.
        write_pair(tmp.path(), &[0, 0], &labels_bytes(&[0; 5]));
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 16,
                actual: 2,
                ..
            }
        ));
    }

    #[test]
    fn trailing_data_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let mut labels = labels_bytes(&[0; 5]);
        labels.push(0);
        write_pair(tmp.path(), &images_bytes(5), &labels);
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(matches!(
            err,
            DataError::TrailingData {
                expected: 13,
                actual: 14,
                ..
            }
        ));
        assert!(err.to_string().contains(LABELS_NAME));
    }

    #[test]
    fn missing_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(IMAGES_NAME), images_bytes(2)).unwrap();
        let err = super::super::load(&cfg_in(tmp.path(), 1)).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
        assert!(err.to_string().contains(LABELS_NAME), "{err}");
    }

    #[test]
    fn label_out_of_range_names_offset() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), &images_bytes(4), &labels_bytes(&[0, 9, 10, 1]));
        let err = super::super::load(&cfg_in(tmp.path(), 2)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    offset: 10,
                    label: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("byte offset 10"), "{err}");
    }

    #[test]
    fn n_train_larger_than_file() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), &images_bytes(3), &labels_bytes(&[0, 1, 2]));
        let err = super::super::load(&cfg_in(tmp.path(), 4)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotEnoughExamples {
                    requested: 4,
                    available: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(IMAGES_NAME) && msg.contains("n_train"),
            "{msg}"
        );
    }

    #[test]
    fn small_file_values_are_standardized_pixels() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), &images_bytes(2), &labels_bytes(&[3, 4]));
        let d = super::super::load(&cfg_in(tmp.path(), 2)).unwrap();
        // Image 1 is 7, 10, 13, 16, 19, 22: mean 14.5, population std sqrt(26.25).
        let std = 26.25f64.sqrt();
        let expect: Vec<f32> = [7.0, 10.0, 13.0, 16.0, 19.0, 22.0]
            .iter()
            .map(|v: &f64| ((v - 14.5) / std) as f32)
            .collect();
        for (a, b) in d.x[6..].iter().zip(&expect) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
