//! Leaving early without losing work: SIGTERM, SIGUSR1, SIGUSR2, SIGHUP and SIGINT, and
//! an optional wall-clock deadline, all set one flag; the master then hands out nothing
//! new, writes what finishes, and the process exits with [`EXIT_INCOMPLETE`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exit status of a sweep that stopped with runs left to do: "incomplete, resume me".
pub const EXIT_INCOMPLETE: i32 = 3;

/// The signals that drain a sweep.
pub const DRAIN_SIGNALS: [i32; 5] = [
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGHUP,
    libc::SIGINT,
];

/// What drained a sweep first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainCause {
    /// A signal (its number), and when it arrived (Unix seconds).
    Signal(i32, u64),
    /// The `--deadline` (or Slurm's end of the job less the margin) passed.
    Deadline,
}

/// 0: not drained; [`CAUSE_DEADLINE`]: the deadline; else the signal number.
static CAUSE: AtomicUsize = AtomicUsize::new(0);
/// Unix seconds at which the first drain signal arrived.
static CAUSE_AT: AtomicU64 = AtomicU64::new(0);
const CAUSE_DEADLINE: usize = usize::MAX;

/// Records `cause` unless an earlier one was recorded (async-signal-safe: atomics and
/// `clock_gettime` only).
fn note_cause(cause: usize) {
    if CAUSE
        .compare_exchange(0, cause, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
        && cause != CAUSE_DEADLINE
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        CAUSE_AT.store(now, Ordering::SeqCst);
    }
}

/// What drained this process first (`None` while nothing has).
pub fn drain_cause() -> Option<DrainCause> {
    match CAUSE.load(Ordering::SeqCst) {
        0 => None,
        CAUSE_DEADLINE => Some(DrainCause::Deadline),
        sig => Some(DrainCause::Signal(
            i32::try_from(sig).unwrap_or(0),
            CAUSE_AT.load(Ordering::SeqCst),
        )),
    }
}

/// How a drain by `cause` reads in the file's history and on stderr, with `deadline` the
/// sweep's deadline (a SIGTERM before it is a `scancel` or a preemption; at or after it,
/// the time limit).
pub fn describe_cause(cause: Option<DrainCause>, deadline: Option<SystemTime>) -> String {
    let name = |sig: i32| match sig {
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGUSR1 => "SIGUSR1".to_string(),
        libc::SIGUSR2 => "SIGUSR2".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        libc::SIGINT => "SIGINT".to_string(),
        s => format!("signal {s}"),
    };
    match cause {
        None => "drained".to_string(),
        Some(DrainCause::Deadline) => "drained at the deadline".to_string(),
        Some(DrainCause::Signal(libc::SIGTERM, at)) => {
            let deadline = deadline.and_then(|d| d.duration_since(UNIX_EPOCH).ok());
            match deadline {
                Some(d) if at >= d.as_secs() => {
                    "stopped at the time limit (SIGTERM after the deadline)".to_string()
                }
                Some(_) => "cancelled (SIGTERM before the deadline)".to_string(),
                None => "cancelled (SIGTERM)".to_string(),
            }
        }
        Some(DrainCause::Signal(libc::SIGINT, _)) => "interrupted (SIGINT)".to_string(),
        Some(DrainCause::Signal(sig, _)) => format!("drained on {}", name(sig)),
    }
}

/// A flag set by any drain signal, or when `deadline` passes; what set it first is
/// [`drain_cause`].
pub fn drain_flag(deadline: Option<SystemTime>) -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in DRAIN_SIGNALS {
        let f = Arc::clone(&flag);
        let action = move || {
            note_cause(sig as usize);
            f.store(true, Ordering::SeqCst);
        };
        // SAFETY: the action only touches atomics and reads the clock, which are
        // async-signal-safe.
        unsafe { signal_hook::low_level::register(sig, action) }?;
    }
    if let Some(deadline) = deadline {
        let f = Arc::clone(&flag);
        std::thread::spawn(move || {
            if let Ok(wait) = deadline.duration_since(SystemTime::now()) {
                std::thread::sleep(wait);
            }
            note_cause(CAUSE_DEADLINE);
            f.store(true, Ordering::Relaxed);
        });
    }
    Ok(flag)
}

/// Seconds before Slurm's end of the job at which a sweep with no `--deadline` stops
/// handing out work.
pub const SLURM_END_MARGIN: Duration = Duration::from_secs(120);

/// The deadline a sweep takes from Slurm when it was given none: the job's end time
/// (`SLURM_JOB_END_TIME`, a Unix time, set by recent Slurm versions) less
/// [`SLURM_END_MARGIN`].
pub fn slurm_deadline() -> Option<SystemTime> {
    let end: u64 = std::env::var("SLURM_JOB_END_TIME")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(end))?
        .checked_sub(SLURM_END_MARGIN)
}

/// `deadline` as an [`Instant`] (now, when it has passed).
pub fn instant_of(deadline: SystemTime) -> Instant {
    let now = Instant::now();
    // A deadline too far ahead for an `Instant` is as good as none: a century from now.
    let far = Duration::from_secs(100 * 365 * 86_400);
    deadline
        .duration_since(SystemTime::now())
        .map_or(now, |left| {
            now.checked_add(left.min(far))
                .or_else(|| now.checked_add(Duration::from_secs(86_400)))
                .unwrap_or(now)
        })
}

/// Parses a deadline: `+90s`, `+45m`, `+2h` (from now), a Unix time in seconds, or an
/// ISO 8601 UTC time `YYYY-MM-DDTHH:MM[:SS]Z`.
pub fn parse_deadline(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    let too_far = || format!("{s:?} is too far in the future");
    let at = |secs: u64| {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(too_far)
    };
    if let Some(rel) = s.strip_prefix('+') {
        let (num, unit) =
            rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        let secs = match unit {
            "" | "s" => Some(n),
            "m" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            _ => return Err(format!("bad duration unit in {s:?} (use s, m or h)")),
        }
        .ok_or_else(too_far)?;
        return SystemTime::now()
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(too_far);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        let unix: u64 = s.parse().map_err(|_| too_far())?;
        return at(unix);
    }
    let bad = || format!("bad deadline {s:?}: use +2h, a Unix time, or YYYY-MM-DDTHH:MM:SSZ");
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    // Unsigned decimal fields only: no signs, no spaces.
    let field = |x: &str| -> Result<i64, String> {
        if x.is_empty() || x.len() > 4 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let d: Vec<i64> = date.split('-').map(field).collect::<Result<_, _>>()?;
    let t: Vec<i64> = time.split(':').map(field).collect::<Result<_, _>>()?;
    if d.len() != 3 || !(2..=3).contains(&t.len()) {
        return Err(bad());
    }
    let (year, month, day) = (d[0], d[1], d[2]);
    let (hour, minute, second) = (t[0], t[1], t.get(2).copied().unwrap_or(0));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("{s:?}: month {month} is not in 1..=12")),
    };
    if !(1..=month_days).contains(&day) {
        return Err(format!(
            "{s:?}: day {day} is not in 1..={month_days} for month {month}"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "{s:?}: time {hour:02}:{minute:02}:{second:02} is out of range (00:00:00 to 23:59:59)"
        ));
    }
    // days from civil (Howard Hinnant's algorithm)
    let (y, m) = (if month <= 2 { year - 1 } else { year }, month);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).map_err(|_| format!("{s:?} is before 1970"))?;
    at(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_are_named_by_their_cause() {
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        let term = |t: u64| Some(DrainCause::Signal(libc::SIGTERM, t));
        assert_eq!(describe_cause(term(100), None), "cancelled (SIGTERM)");
        assert_eq!(
            describe_cause(term(100), at(200)),
            "cancelled (SIGTERM before the deadline)"
        );
        assert!(describe_cause(term(300), at(200)).starts_with("stopped at the time limit"));
        assert_eq!(
            describe_cause(Some(DrainCause::Signal(libc::SIGUSR1, 5)), at(200)),
            "drained on SIGUSR1"
        );
        assert_eq!(
            describe_cause(Some(DrainCause::Deadline), at(200)),
            "drained at the deadline"
        );
        assert_eq!(
            describe_cause(Some(DrainCause::Signal(libc::SIGINT, 5)), None),
            "interrupted (SIGINT)"
        );
    }

    #[test]
    fn deadlines_parse() {
        let t = parse_deadline("2026-11-28T20:00:00Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_896_000
        );
        assert_eq!(parse_deadline("1795896000").unwrap(), t);
        assert!(parse_deadline("+2h").unwrap() > SystemTime::now() + Duration::from_secs(7000));
        assert!(parse_deadline("tomorrow").is_err());
        assert!(parse_deadline("+3d").is_err());
        assert_eq!(
            parse_deadline("2024-02-29T23:59:59Z")
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_709_251_199
        );
    }

    #[test]
    fn overflowing_deadlines_are_errors_not_panics() {
        for s in [
            "+18446744073709551615",
            "18446744073709551615",
            "+5124095576030431h",
            "+307445734561825861m",
            "99999999999999999999999",
        ] {
            let e = parse_deadline(s).unwrap_err();
            assert!(e.contains("too far"), "{s}: {e}");
        }
        // A far deadline that parses still gives an Instant.
        let far = parse_deadline("+18446744073709h").unwrap();
        assert!(instant_of(far) > Instant::now());
    }

    #[test]
    fn impossible_dates_are_refused() {
        for (s, needle) in [
            ("2026-13-45T99:99Z", "month 13"),
            ("2026-00-10T10:00Z", "month 0"),
            ("2026-02-29T10:00Z", "day 29"),
            ("2026-04-31T10:00Z", "day 31"),
            ("2026-01-00T10:00Z", "day 0"),
            ("2026-01-01T24:00Z", "out of range"),
            ("2026-01-01T10:60Z", "out of range"),
            ("2026-01-01T10:00:60Z", "out of range"),
            ("2026-01-01T-5:00Z", "bad deadline"),
            ("2026-01-+1T05:00Z", "bad deadline"),
            ("-2026-01-01T05:00Z", "bad deadline"),
            ("1960-01-01T05:00Z", "before 1970"),
        ] {
            let e = parse_deadline(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
