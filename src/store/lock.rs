//! The writer's lock on a results file: one sweep at a time may write it.
//!
//! The lock is `flock(LOCK_EX | LOCK_NB)` on the journal; it goes with the process however
//! it ends. Some cluster filesystems do not support `flock` (Lustre mounted without
//! `-o flock`, NFS without a lock daemon): it fails there with `ENOSYS`, `EOPNOTSUPP` or
//! `ENOLCK`. Then the lock degrades, it never blocks: a lock file `<journal>.lock` is
//! created with `O_CREAT | O_EXCL` and records who holds it (host, pid, Slurm job id and
//! restart count, start time). It is removed when the writer closes the file. A lock file
//! left by a writer that was killed is *stale* and is taken over, with a message, when
//!
//! - it was written on this host and its pid is gone, or
//! - it was written by an earlier start of this same Slurm job (same `SLURM_JOB_ID`, a
//!   lower `SLURM_RESTART_COUNT`: Slurm never runs two starts of one job at once, and a
//!   requeued start may land on another node), or
//! - the environment variable [`OVERRIDE_ENV`] is `1` (the user says no writer is alive).
//!
//! Any other lock file refuses a second writer, naming the holder.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Set to `1` to take over a lock file whose writer cannot be checked (another host) but
/// is known to be gone.
pub const OVERRIDE_ENV: &str = "SHARPSWEEP_TAKE_OVER_LOCK";

/// The lock file of the journal at `journal`: `<journal>.lock` (used only where `flock`
/// is not supported).
pub fn lock_file_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// How the writer's lock is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `flock` on the journal.
    Flock,
    /// A lock file, because `flock` failed with the error named.
    LockFile {
        /// Why `flock` could not be used (the OS error's text).
        flock_error: String,
    },
}

impl Mechanism {
    /// A short description for the file's history and messages.
    pub fn describe(&self) -> String {
        match self {
            Mechanism::Flock => "flock".to_string(),
            Mechanism::LockFile { flock_error } => {
                format!("lock file (flock unsupported here: {flock_error})")
            }
        }
    }
}

/// The writer's lock, held until dropped (a lock file is removed then).
#[derive(Debug)]
pub struct WriterLock {
    mechanism: Mechanism,
    lock_file: Option<PathBuf>,
}

impl WriterLock {
    /// How the lock is held.
    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if let Some(path) = self.lock_file.take() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Who holds a lock file: what it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// `SLURM_JOB_ID` (empty outside Slurm).
    pub slurm_job_id: String,
    /// `SLURM_RESTART_COUNT` (0 when unset).
    pub slurm_restart: u64,
    /// Start time, ISO 8601 UTC.
    pub started: String,
}

impl Holder {
    /// This process.
    fn me() -> Holder {
        let env = |k: &str| std::env::var(k).unwrap_or_default().trim().to_string();
        Holder {
            host: host_name(),
            pid: std::process::id(),
            slurm_job_id: env("SLURM_JOB_ID"),
            slurm_restart: env("SLURM_RESTART_COUNT").parse().unwrap_or(0),
            started: super::meta::iso_now(),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "sharpsweep writer lock\nhost={}\npid={}\nslurm_job_id={}\nslurm_restart_count={}\nstarted={}\n",
            self.host, self.pid, self.slurm_job_id, self.slurm_restart, self.started
        )
    }

    /// Parses a lock file's text; `None` when it is not one (torn or foreign).
    fn parse(text: &str) -> Option<Holder> {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Holder {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            slurm_job_id: field("slurm_job_id")?,
            slurm_restart: field("slurm_restart_count")?.parse().ok()?,
            started: field("started")?,
        })
    }

    fn describe(&self) -> String {
        let job = if self.slurm_job_id.is_empty() {
            String::new()
        } else {
            format!(
                ", Slurm job {} (restart {})",
                self.slurm_job_id, self.slurm_restart
            )
        };
        format!(
            "pid {} on {}{job}, since {}",
            self.pid, self.host, self.started
        )
    }

    /// Why the writer that left this lock is known to be gone (`None`: it may be alive).
    fn stale_because(&self, me: &Holder, overridden: bool) -> Option<String> {
        if self.host == me.host && !pid_alive(self.pid) {
            return Some(format!("its process {} is gone", self.pid));
        }
        if !self.slurm_job_id.is_empty()
            && self.slurm_job_id == me.slurm_job_id
            && self.slurm_restart < me.slurm_restart
        {
            return Some(format!(
                "it was left by an earlier start (restart {}) of this Slurm job",
                self.slurm_restart
            ));
        }
        overridden.then(|| format!("{OVERRIDE_ENV}=1"))
    }
}

/// This machine's host name.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (the last byte stays 0 when the name is cut).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "unknown-host".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists on this host.
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether a `flock` error means "not supported here" (and not "held by another").
fn unsupported(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) | Some(libc::ENOLCK)
    )
}

fn refused(path: &Path, holder: &str) -> std::io::Error {
    std::io::Error::new(
        ErrorKind::WouldBlock,
        format!(
            "another sweep is writing this results file (it holds the lock on {}{holder})",
            path.display()
        ),
    )
}

/// Takes the writer's exclusive lock for the journal `path`, open as `file`: `flock`, or
/// where that is not supported a lock file (see the module documentation). A writer that
/// holds it refuses us with an error of kind [`ErrorKind::WouldBlock`].
pub fn acquire(file: &File, path: &Path) -> std::io::Result<WriterLock> {
    // SAFETY: flock on a descriptor this File owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(WriterLock {
            mechanism: Mechanism::Flock,
            lock_file: None,
        });
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(refused(path, ""));
    }
    if !unsupported(&err) {
        return Err(err);
    }
    let overridden = std::env::var(OVERRIDE_ENV).is_ok_and(|v| v.trim() == "1");
    let lock = acquire_lock_file(path, &err.to_string(), &Holder::me(), overridden)?;
    eprintln!(
        "sharpsweep: flock is not supported for {} ({err}); the writer's lock is the lock file {}",
        path.display(),
        lock_file_path(path).display()
    );
    Ok(lock)
}

/// The lock-file fallback for the journal `path`, as `me`.
fn acquire_lock_file(
    path: &Path,
    flock_error: &str,
    me: &Holder,
    overridden: bool,
) -> std::io::Result<WriterLock> {
    let lock_path = lock_file_path(path);
    // Two tries: the second after taking over a stale lock.
    for _ in 0..2 {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&lock_path)
        {
            Ok(mut f) => {
                let lock = WriterLock {
                    mechanism: Mechanism::LockFile {
                        flock_error: flock_error.to_string(),
                    },
                    lock_file: Some(lock_path.clone()),
                };
                // From here on, dropping `lock` removes the file: a failed write leaves
                // nothing behind.
                f.write_all(me.to_text().as_bytes())?;
                f.sync_all()?;
                super::durable::sync_dir_of(&lock_path)?;
                return Ok(lock);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut text = String::new();
                match File::open(&lock_path) {
                    Ok(mut f) => {
                        f.read_to_string(&mut text)?;
                    }
                    // Removed between our two calls: its writer just closed; try again.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                let holder = Holder::parse(&text);
                let stale = match &holder {
                    Some(h) => h.stale_because(me, overridden),
                    None => overridden.then(|| format!("{OVERRIDE_ENV}=1")),
                };
                let who = holder.as_ref().map_or_else(
                    || "an unreadable lock file".to_string(),
                    |h| format!("held by {}", h.describe()),
                );
                let Some(why) = stale else {
                    return Err(refused(
                        &lock_path,
                        &format!(
                            ": {who}; if that sweep is known to be gone, set {OVERRIDE_ENV}=1 to take the lock over"
                        ),
                    ));
                };
                eprintln!(
                    "sharpsweep: taking over the stale lock file {} ({who}): {why}",
                    lock_path.display()
                );
                match std::fs::remove_file(&lock_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(refused(
        &lock_path,
        ": another writer took it over at the same moment",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            slurm_job_id: String::new(),
            slurm_restart: 0,
            started: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// A pid that exists on no host: above the kernel's maximum (2^22).
    const GONE: u32 = 99_999_999;

    #[test]
    fn a_lock_file_refuses_a_live_holder_and_goes_with_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("r.h5.journal");
        let first = acquire_lock_file(&j, "ENOSYS", &me(), false).unwrap();
        assert!(matches!(first.mechanism(), Mechanism::LockFile { .. }));
        let text = std::fs::read_to_string(lock_file_path(&j)).unwrap();
        assert_eq!(Holder::parse(&text).unwrap().pid, std::process::id());
        // This process is alive: a second writer is refused and changes nothing.
        let err = acquire_lock_file(&j, "ENOSYS", &me(), false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(err.to_string().contains("another sweep"), "{err}");
        assert!(err.to_string().contains(OVERRIDE_ENV), "{err}");
        assert_eq!(std::fs::read_to_string(lock_file_path(&j)).unwrap(), text);
        drop(first);
        assert!(!lock_file_path(&j).exists());
        drop(acquire_lock_file(&j, "ENOSYS", &me(), false).unwrap());
    }

    #[test]
    fn stale_locks_are_taken_over_and_live_ones_on_other_hosts_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("r.h5.journal");
        let write = |h: &Holder| std::fs::write(lock_file_path(&j), h.to_text()).unwrap();
        // Same host, pid gone.
        write(&Holder { pid: GONE, ..me() });
        let l = acquire_lock_file(&j, "ENOSYS", &me(), false).unwrap();
        let text = std::fs::read_to_string(lock_file_path(&j)).unwrap();
        assert_eq!(Holder::parse(&text).unwrap().pid, std::process::id());
        drop(l);
        // Another host: cannot be checked, refused, unless overridden.
        let other = Holder {
            host: "elsewhere-node".into(),
            pid: GONE,
            ..me()
        };
        write(&other);
        assert!(acquire_lock_file(&j, "ENOSYS", &me(), false).is_err());
        drop(acquire_lock_file(&j, "ENOSYS", &me(), true).unwrap());
        // An earlier start of this Slurm job, on another node: stale. The same start
        // (same restart count) is not.
        let me1 = Holder {
            slurm_job_id: "4242".into(),
            slurm_restart: 1,
            ..me()
        };
        write(&Holder {
            slurm_job_id: "4242".into(),
            slurm_restart: 0,
            ..other.clone()
        });
        drop(acquire_lock_file(&j, "ENOSYS", &me1, false).unwrap());
        write(&Holder {
            slurm_job_id: "4242".into(),
            slurm_restart: 1,
            ..other
        });
        assert!(acquire_lock_file(&j, "ENOSYS", &me1, false).is_err());
    }

    #[test]
    fn flock_errors_that_mean_unsupported() {
        for e in [libc::ENOSYS, libc::EOPNOTSUPP, libc::ENOLCK] {
            assert!(unsupported(&std::io::Error::from_raw_os_error(e)));
        }
        assert!(!unsupported(&std::io::Error::from_raw_os_error(
            libc::EWOULDBLOCK
        )));
        assert!(!unsupported(&std::io::Error::from_raw_os_error(
            libc::EBADF
        )));
    }
}
