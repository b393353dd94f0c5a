//! The results journal: an append-only, checksummed log of the runs finished since the
//! last snapshot of the results file, kept beside it as `<file>.journal`.
//!
//! Layout: the magic line `sharpsweep-journal-3\n`, then frames of
//! `[u32 length][u32 CRC-32 of the payload][payload]` (little-endian). The first frame is
//! the header (config hash, steps and interpolation points); every later one is a
//! finished run: its key (c, depth, width, seed, sgd_seed, axis_point) and its record in the
//! [`codec`](crate::record::codec) encoding. Runs are named by key, not row, because the
//! file of an adaptive search gains rows as it goes. A reader takes
//! frames up to the first that is incomplete or fails its checksum: a killed writer or
//! a lost page cache can only cut or garble the tail, never change what precedes it.
//!
//! Durability: each frame is handed to the operating system with one `write` (it survives
//! a kill of the process); the file is `fsync`ed at most every [`SYNC_INTERVAL`] and before
//! every snapshot and close, so a power loss costs at most that much of the latest runs.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::durable::{crc32, sync_dir_of};
use super::lock::{Mechanism, WriterLock};
use crate::record::codec::{ByteReader, ByteWriter};
use crate::record::{EigenCount, RunRecord, TaskKey};

/// The first bytes of every journal.
const MAGIC: &[u8] = b"sharpsweep-journal-3\n";
/// The first bytes of a journal of the versions before `grid.axes`, whose keys have no
/// axis point (read as 0: their configs have no axes).
const MAGIC_V2: &[u8] = b"sharpsweep-journal-2\n";
/// Longest time between two `fsync`s of a journal that is being appended to.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Largest frame a reader accepts (a corrupt length must not allocate gigabytes).
const MAX_FRAME: usize = 1 << 30;

/// The journal of the results file at `path`: `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// What a journal belongs to: it is replayed only into a file of the same config and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    /// `config_sha256` of the results file.
    pub config_sha256: String,
    /// SGD steps per run.
    pub steps: usize,
    /// Interpolation points per run.
    pub interp: usize,
    /// Eigenvalues per measured spectrum (`sharpness.k`; written as a u64, 0 never read).
    pub k: EigenCount,
}

/// A journal read back: its header, the finished runs it holds in order, and the length of
/// its valid prefix in bytes (what follows is a torn or corrupt tail).
#[derive(Clone, Debug)]
pub struct JournalContents {
    /// The header.
    pub header: JournalHeader,
    /// (key, record) of each finished run, in the order they were appended.
    pub records: Vec<(TaskKey, RunRecord)>,
    /// Bytes of the file that hold whole, valid frames.
    pub valid_len: u64,
    /// Bytes after that (0 for a journal that was closed cleanly or killed between frames).
    pub discarded: u64,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn header_payload(h: &JournalHeader) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.bytes(h.config_sha256.as_bytes());
    w.u64(h.steps as u64);
    w.u64(h.interp as u64);
    w.u64(h.k.get() as u64);
    w.0
}

fn parse_header(payload: &[u8]) -> Result<JournalHeader, String> {
    let mut r = ByteReader(payload);
    let len = r.usize()?;
    let hash = String::from_utf8(r.take(len)?.to_vec()).map_err(|e| e.to_string())?;
    Ok(JournalHeader {
        config_sha256: hash,
        steps: r.usize()?,
        interp: r.usize()?,
        k: EigenCount::new(r.usize()?)
            .ok_or_else(|| "the journal header counts 0 eigenvalues".to_string())?,
    })
}

/// The next whole, valid frame's payload at `bytes[pos..]`, and the position after it.
fn next_frame(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(pos..pos + 8)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_FRAME {
        return None;
    }
    let payload = bytes.get(pos + 8..pos + 8 + len)?;
    (crc32(payload) == crc).then_some((payload, pos + 8 + len))
}

/// Parses journal bytes. `Err` when they do not start with a valid magic and header (not a
/// journal, or one cut inside its header: it holds no run then).
pub fn parse(bytes: &[u8]) -> Result<JournalContents, String> {
    let v2 = bytes.starts_with(MAGIC_V2);
    if !bytes.starts_with(MAGIC) && !v2 {
        return Err("not a sharpsweep journal (bad magic bytes)".into());
    }
    let (payload, mut pos) =
        next_frame(bytes, MAGIC.len()).ok_or("the journal header is incomplete or corrupt")?;
    let header = parse_header(payload)?;
    let mut records = Vec::new();
    while let Some((payload, next)) = next_frame(bytes, pos) {
        let mut r = ByteReader(payload);
        let key = if v2 {
            r.key_without_axis_point()
        } else {
            r.key()
        };
        let Ok(key) = key else { break };
        let Ok(rec) = r.record() else { break };
        if !r.0.is_empty() {
            break;
        }
        records.push((key, rec));
        pos = next;
    }
    Ok(JournalContents {
        header,
        records,
        valid_len: pos as u64,
        discarded: (bytes.len() - pos) as u64,
    })
}

/// Reads the journal at `path` (`Ok(None)` when there is none).
pub fn read(path: &Path) -> std::io::Result<Option<Result<JournalContents, String>>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(parse(&bytes)))
}

/// How many finished runs the journal at `path` holds: 0 when it is absent, or holds only
/// its header (a sweep killed between creating it and writing its first snapshot), or is
/// cut inside its header; `None` when it cannot be read or parsed, so it may hold runs.
pub fn held_runs(path: &Path) -> Option<usize> {
    match read(path) {
        Ok(None) => Some(0),
        Ok(Some(Ok(c))) => Some(c.records.len()),
        Ok(Some(Err(_))) if std::fs::metadata(path).map_or(0, |m| m.len()) < 128 => Some(0),
        _ => None,
    }
}

/// Takes the writer's exclusive lock on the journal: two sweeps writing one results file
/// would interleave their runs. `flock`, or a lock file where the filesystem has no
/// `flock` ([`super::lock`]).
fn lock(file: &File, path: &Path) -> std::io::Result<WriterLock> {
    super::lock::acquire(file, path)
}

/// Where [`set_aside`] moves the journal at `path`: `<journal>.unusable`.
pub(super) fn aside_path(path: &Path) -> PathBuf {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".unusable");
    PathBuf::from(aside)
}

/// Moves an unusable journal (garbled header, or another sweep's) out of the way, to
/// `<journal>.unusable`, after making sure no live sweep holds it. Returns the new path.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let file = OpenOptions::new().write(true).open(path)?;
    let held = lock(&file, path)?;
    let aside = aside_path(path);
    std::fs::rename(path, &aside)?;
    sync_dir_of(path)?;
    drop(held);
    Ok(aside)
}

/// A journal open for appending (rank 0 only).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    header: JournalHeader,
    last_sync: Instant,
    unsynced: bool,
    /// The writer's lock (dropped after the file: a lock file goes last).
    lock: WriterLock,
}

impl Journal {
    /// Creates (or empties) the journal at `path` with `header`, durably, and locks it
    /// for this process.
    pub fn create(path: &Path, header: &JournalHeader) -> std::io::Result<Journal> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let lock = match lock(&file, path) {
            Ok(l) => l,
            Err(e) => {
                // A refused start leaves nothing behind.
                if !existed {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        file.set_len(0)?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            header: header.clone(),
            last_sync: Instant::now(),
            unsynced: false,
            lock,
        };
        j.write_header()?;
        sync_dir_of(path)?;
        Ok(j)
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(frame(&header_payload(&self.header)));
        self.file.write_all(&bytes)?;
        self.file.sync_data()?;
        self.last_sync = Instant::now();
        self.unsynced = false;
        Ok(())
    }

    /// Reopens the journal at `path` for appending after its first `valid_len` bytes (a
    /// torn or corrupt tail is cut off).
    pub fn reopen(path: &Path, contents: &JournalContents) -> std::io::Result<Journal> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        let lock = lock(&file, path)?;
        file.set_len(contents.valid_len)?;
        file.seek(SeekFrom::End(0))?;
        file.sync_data()?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            header: contents.header.clone(),
            last_sync: Instant::now(),
            unsynced: false,
            lock,
        })
    }

    /// Appends the finished run `key` (one `write`), and `fsync`s when the last one is
    /// [`SYNC_INTERVAL`] old.
    pub fn append(&mut self, key: &TaskKey, rec: &RunRecord) -> std::io::Result<()> {
        let mut w = ByteWriter::default();
        w.key(key);
        w.record(rec);
        self.file.write_all(&frame(&w.0))?;
        self.unsynced = true;
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// How this writer holds its lock.
    pub fn lock_mechanism(&self) -> &Mechanism {
        self.lock.mechanism()
    }

    /// `fsync`s what was appended.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Empties the journal down to its header (its runs are in a durable snapshot now).
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.write_header()
    }

    /// Deletes the journal (after a final snapshot), durably.
    pub fn remove(self) -> std::io::Result<()> {
        let Journal {
            path, file, lock, ..
        } = self;
        drop(file);
        std::fs::remove_file(&path)?;
        drop(lock);
        sync_dir_of(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunStatus;

    fn header() -> JournalHeader {
        JournalHeader {
            config_sha256: "abc".into(),
            steps: 3,
            interp: 0,
            k: EigenCount::ONE,
        }
    }

    fn key(i: usize) -> TaskKey {
        TaskKey {
            c: i as f64 / 4.0,
            depth: 2,
            width: 8,
            seed: 1,
            sgd_seed: 1,
            axis_point: (i % 3) as u32,
        }
    }

    fn rec(x: f64) -> RunRecord {
        let mut r = RunRecord::unmeasured(x, 1.0 / x, RunStatus::Done, 3, 0);
        r.loss = vec![x, x / 2.0, f64::NAN, 0.1];
        r
    }

    #[test]
    fn every_cut_keeps_exactly_the_whole_frames_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.h5.journal");
        let mut j = Journal::create(&path, &header()).unwrap();
        let mut ends = vec![std::fs::metadata(&path).unwrap().len()];
        for i in 0..5 {
            j.append(&key(i * 2), &rec(i as f64 + 1.0)).unwrap();
            ends.push(std::fs::metadata(&path).unwrap().len());
        }
        j.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..=bytes.len() {
            match parse(&bytes[..cut]) {
                Err(_) => assert!(cut < ends[0] as usize, "cut {cut}"),
                Ok(c) => {
                    let whole = ends.iter().filter(|&&e| e as usize <= cut).count() - 1;
                    assert_eq!(c.records.len(), whole, "cut {cut}");
                    assert_eq!(c.valid_len, ends[whole], "cut {cut}");
                    for (k, (got, r)) in c.records.iter().enumerate() {
                        assert_eq!(*got, key(k * 2));
                        assert_eq!(r.lambda0, k as f64 + 1.0);
                    }
                }
            }
        }
        // A flipped bit in the third record drops it and everything after it.
        let mut bad = bytes.clone();
        bad[ends[2] as usize + 12] ^= 0x10;
        let c = parse(&bad).unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.discarded, bytes.len() as u64 - ends[2]);
    }

    #[test]
    fn the_header_keeps_its_bytes_and_refuses_a_count_of_zero() {
        // The eigenvalue count is the header's last u64, as before it was typed.
        let h = JournalHeader {
            k: EigenCount::new(3).unwrap(),
            ..header()
        };
        let payload = header_payload(&h);
        assert_eq!(payload[payload.len() - 8..], 3u64.to_le_bytes());
        assert_eq!(parse_header(&payload).unwrap(), h);
        let mut zero = payload.clone();
        let at = zero.len() - 8;
        zero[at..].copy_from_slice(&0u64.to_le_bytes());
        let err = parse_header(&zero).unwrap_err();
        assert!(err.contains("0 eigenvalues"), "{err}");
        let mut bytes = MAGIC.to_vec();
        bytes.extend(frame(&zero));
        assert!(parse(&bytes).is_err());
    }

    #[test]
    fn a_journal_of_the_version_before_axes_reads_with_axis_point_zero() {
        let mut bytes = MAGIC_V2.to_vec();
        bytes.extend(frame(&header_payload(&header())));
        for i in [0, 4] {
            let mut w = ByteWriter::default();
            let k = key(i);
            // The old key: c, depth, width, seed, sgd_seed.
            w.f64(k.c);
            w.u64(u64::from(k.depth));
            w.u64(u64::from(k.width));
            w.u64(k.seed);
            w.u64(k.sgd_seed);
            w.record(&rec(i as f64 + 1.0));
            bytes.extend(frame(&w.0));
        }
        let c = parse(&bytes).unwrap();
        assert_eq!(c.header, header());
        let keys: Vec<TaskKey> = c.records.iter().map(|r| r.0).collect();
        assert_eq!(
            keys,
            [0, 4].map(|i| TaskKey {
                axis_point: 0,
                ..key(i)
            })
        );
        assert_eq!(c.discarded, 0);
    }

    #[test]
    fn reopen_cuts_the_tail_and_reset_keeps_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.h5.journal");
        let mut j = Journal::create(&path, &header()).unwrap();
        j.append(&key(1), &rec(2.0)).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let c = read(&path).unwrap().unwrap().unwrap();
        assert_eq!((c.records.len(), c.discarded), (1, 6));
        let mut j = Journal::reopen(&path, &c).unwrap();
        j.append(&key(3), &rec(4.0)).unwrap();
        let c = read(&path).unwrap().unwrap().unwrap();
        assert_eq!(
            c.records.iter().map(|r| r.0).collect::<Vec<_>>(),
            [key(1), key(3)]
        );
        assert_eq!(c.discarded, 0);
        j.reset().unwrap();
        let c = read(&path).unwrap().unwrap().unwrap();
        assert!(c.records.is_empty());
        assert_eq!(c.header, header());
        // A second writer is refused while the first holds the journal.
        let err = Journal::reopen(&path, &c).unwrap_err();
        assert!(err.to_string().contains("another sweep"), "{err}");
        assert!(Journal::create(&path, &header()).is_err());
        j.remove().unwrap();
        assert!(read(&path).unwrap().is_none());
    }
}
