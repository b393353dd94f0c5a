//! Mid-run checkpoints: the side files of runs in flight, `FILE.checkpoints/<run>.ckpt`
//! next to the results file FILE. A checkpoint holds everything a run carries from one
//! step to the next ([`RunCheckpoint`]: θ_t, the optimizer's state, the minibatch stream's
//! position, the record so far, the warm-start eigenvectors), so that a resumed run
//! continues bit for bit. Each file is written whole to a temporary name, `fsync`ed and
//! renamed over the last (an atomic replace): a kill leaves the previous checkpoint or the
//! new one, never a torn one. Its payload carries a CRC-32, the config's SHA-256, the
//! precision and the run's key; a file that fails any check is not used (the run starts
//! over), never trusted.

use super::journal::sync_dir_of;
use crate::model::Float;
use crate::optim::{OptimizerState, Rule};
use crate::record::codec::{ByteReader, ByteWriter};
use crate::record::TaskKey;
use crate::train::RunCheckpoint;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first bytes of a checkpoint file.
const MAGIC: &[u8; 8] = b"SSCKPT01";

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

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn vector<T: Float>(w: &mut ByteWriter, v: &[T]) {
    w.u64(v.len() as u64);
    v.iter().for_each(|x| w.f64(x.to_f64()));
}

fn read_vector<T: Float>(r: &mut ByteReader<'_>) -> Result<Vec<T>, String> {
    let n = r.usize()?;
    if n > r.0.len() / 8 {
        return Err(format!("a vector of {n} values in {} bytes", r.0.len()));
    }
    (0..n).map(|_| r.f64().map(T::of)).collect()
}

/// The bytes of a checkpoint of run `key` under the config `config_sha256`.
pub fn encode<T: Float>(config_sha256: &str, key: &TaskKey, ck: &RunCheckpoint<T>) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.bytes(config_sha256.as_bytes());
    w.bytes(T::NAME.as_bytes());
    w.key(key);
    w.u64(ck.t as u64);
    w.u64(ck.epochs);
    w.u64(ck.cursor as u64);
    w.f64(ck.seconds);
    vector(&mut w, &ck.params);
    let (first, second, count) = ck.opt.parts();
    vector(&mut w, first);
    vector(&mut w, second);
    w.u64(count as u64);
    for vs in &ck.warm {
        w.u64(vs.len() as u64);
        vs.iter().for_each(|v| vector(&mut w, v));
    }
    w.record(&ck.record);
    let payload = w.0;
    let mut out = Vec::with_capacity(payload.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The checkpoint in `bytes`, if it is one of run `key` under the config `config_sha256`
/// in precision T, for the optimizer `rule`; the error says what does not fit (with the
/// byte offset where the file is cut or corrupt).
pub fn decode<T: Float>(
    bytes: &[u8],
    config_sha256: &str,
    key: &TaskKey,
    rule: Rule,
) -> Result<RunCheckpoint<T>, String> {
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err("not a sharpsweep checkpoint (bad magic at byte 0)".into());
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = bytes
        .get(20..20usize.saturating_add(len))
        .ok_or_else(|| format!("cut short: {} of {} bytes", bytes.len(), len + 20))?;
    if crc32(payload) != crc {
        return Err("checksum mismatch in the payload at byte 20".into());
    }
    let mut r = ByteReader(payload);
    let text = |r: &mut ByteReader<'_>| -> Result<String, String> {
        let n = r.usize()?;
        Ok(String::from_utf8_lossy(r.take(n)?).into_owned())
    };
    let hash = text(&mut r)?;
    if hash != config_sha256 {
        return Err(format!("written under config {hash}, not {config_sha256}"));
    }
    let precision = text(&mut r)?;
    if precision != T::NAME {
        return Err(format!("precision {precision}, not {}", T::NAME));
    }
    let stored = r.key()?;
    if stored.identity() != key.identity() {
        return Err(format!("the checkpoint of {stored:?}, not of {key:?}"));
    }
    let (t, epochs, cursor, seconds) = (r.usize()?, r.u64()?, r.usize()?, r.f64()?);
    let params: Vec<T> = read_vector(&mut r)?;
    let first = read_vector(&mut r)?;
    let second = read_vector(&mut r)?;
    let opt = OptimizerState::from_parts(rule, params.len(), (first, second, r.usize()?))?;
    let mut warm: [Vec<Vec<f64>>; 4] = Default::default();
    for vs in warm.iter_mut() {
        let n = r.usize()?;
        if n > r.0.len() / 8 {
            return Err(format!("{n} vectors in {} bytes", r.0.len()));
        }
        *vs = (0..n)
            .map(|_| read_vector(&mut r))
            .collect::<Result<_, _>>()?;
    }
    let record = r.record()?;
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the record", r.0.len()));
    }
    Ok(RunCheckpoint {
        t,
        params,
        opt,
        epochs,
        cursor,
        record,
        warm,
        seconds,
    })
}

/// Writes the checkpoint of run `key` atomically (temporary file, `fsync`, rename over
/// the previous one, directory `fsync`), creating the directory when needed.
pub fn save<T: Float>(
    results: &Path,
    config_sha256: &str,
    key: &TaskKey,
    ck: &RunCheckpoint<T>,
) -> std::io::Result<()> {
    let path = checkpoint_path(results, key);
    std::fs::create_dir_all(checkpoint_dir(results))?;
    let tmp = temporary(&path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&encode(config_sha256, key, ck))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    sync_dir_of(&path)
}

/// The checkpoint of run `key`: `Ok(None)` when there is none, `Err` (naming the file and
/// the problem) when there is one that cannot be used.
pub fn load<T: Float>(
    results: &Path,
    config_sha256: &str,
    key: &TaskKey,
    rule: Rule,
) -> Result<Option<RunCheckpoint<T>>, String> {
    let path = checkpoint_path(results, key);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    decode(&bytes, config_sha256, key, rule)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The temporary name a checkpoint is written to before its rename.
fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Removes run `key`'s checkpoint (once its record is committed), and a temporary one a
/// kill left half-written; none is fine.
pub fn remove(results: &Path, key: &TaskKey) -> std::io::Result<()> {
    let path = checkpoint_path(results, key);
    for p in [temporary(&path), path] {
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
    use crate::optim::AdamParams;
    use crate::record::{RunRecord, RunStatus};

    fn sample() -> (TaskKey, RunCheckpoint<f32>, Rule) {
        let key = TaskKey {
            c: 2.5,
            depth: 3,
            width: 8,
            seed: 1,
            sgd_seed: 2,
            axis_point: 3,
        };
        let rule = Rule::Adam(AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        });
        let params = vec![0.5f32, -1.25, f32::MIN_POSITIVE];
        let mut opt = OptimizerState::new(rule, 3, Some(&[1.0f32, 2.0, 3.0]));
        let mut p = params.clone();
        opt.step(&mut p, &[0.1, 0.2, 0.3], 0.01);
        let mut record = RunRecord::unmeasured(3.0, 0.5, RunStatus::Done, 4, 0);
        record.loss[1] = 0.25;
        let ck = RunCheckpoint {
            t: 2,
            params: p,
            opt,
            epochs: 1,
            cursor: 64,
            record,
            warm: [vec![vec![1.0, -0.0]], vec![], vec![vec![f64::NAN]], vec![]],
            seconds: 1.5,
        };
        (key, ck, rule)
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_what_is_not_theirs() {
        let (key, ck, rule) = sample();
        let bytes = encode("abc", &key, &ck);
        let back: RunCheckpoint<f32> = decode(&bytes, "abc", &key, rule).unwrap();
        assert_eq!(back.params, ck.params);
        assert_eq!(back.opt, ck.opt);
        assert_eq!(back.warm[0], ck.warm[0]);
        assert!(back.warm[2][0][0].is_nan());
        assert_eq!((back.t, back.epochs, back.cursor), (2, 1, 64));
        assert_eq!(back.record.loss[1], 0.25);
        let err = |r: Result<RunCheckpoint<f32>, String>| r.unwrap_err();
        assert!(err(decode(&bytes, "xyz", &key, rule)).contains("config abc"));
        let other = TaskKey { c: 2.0, ..key };
        assert!(err(decode(&bytes, "abc", &other, rule)).contains("not of"));
        let point = TaskKey {
            axis_point: 0,
            ..key
        };
        assert!(err(decode(&bytes, "abc", &point, rule)).contains("not of"));
        assert_ne!(
            checkpoint_path(Path::new("r"), &point),
            checkpoint_path(Path::new("r"), &key)
        );
        let f64s = decode::<f64>(&bytes, "abc", &key, rule).unwrap_err();
        assert!(f64s.contains("precision f32"), "{f64s}");
        assert!(err(decode(&bytes, "abc", &key, Rule::Sgd)).contains("optimizer state"));
        // Every cut and every flipped byte is refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode::<f32>(&bytes[..cut], "abc", &key, rule).is_err());
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode::<f32>(&bad, "abc", &key, rule).is_err(), "byte {i}");
        }
    }

    #[test]
    fn save_replaces_atomically_and_load_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.h5");
        let (key, ck, rule) = sample();
        assert!(load::<f32>(&results, "abc", &key, rule).unwrap().is_none());
        save(&results, "abc", &key, &ck).unwrap();
        let mut later = ck.clone();
        later.t = 3;
        save(&results, "abc", &key, &later).unwrap();
        let back = load::<f32>(&results, "abc", &key, rule).unwrap().unwrap();
        assert_eq!(back.t, 3);
        let names: Vec<_> = std::fs::read_dir(checkpoint_dir(&results))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
        // A temporary a kill left behind goes with the run's checkpoint.
        std::fs::write(temporary(&checkpoint_path(&results, &key)), b"half").unwrap();
        std::fs::write(checkpoint_path(&results, &key), b"garbage").unwrap();
        let e = load::<f32>(&results, "abc", &key, rule).unwrap_err();
        assert!(
            e.contains("r.h5.checkpoints") && e.contains("bad magic"),
            "{e}"
        );
        remove(&results, &key).unwrap();
        remove(&results, &key).unwrap();
        remove_dir_if_empty(&results);
        assert!(!checkpoint_dir(&results).exists());
        save(&results, "abc", &key, &ck).unwrap();
        remove_dir_if_empty(&results);
        assert!(checkpoint_dir(&results).exists(), "not empty: kept");
        remove_all(&results);
        assert!(!checkpoint_dir(&results).exists());
    }
}
