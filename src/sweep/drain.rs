//! Leaving early without losing work: SIGTERM, SIGUSR1, SIGUSR2, SIGHUP and SIGINT, and
//! an optional wall-clock deadline, all set one flag; the master then hands out nothing
//! new, writes what finishes, and the process exits with [`EXIT_INCOMPLETE`].

use std::sync::atomic::{AtomicBool, Ordering};
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

/// A flag set by any drain signal, or when `deadline` passes.
pub fn drain_flag(deadline: Option<SystemTime>) -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in DRAIN_SIGNALS {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    if let Some(deadline) = deadline {
        let f = Arc::clone(&flag);
        std::thread::spawn(move || {
            if let Ok(wait) = deadline.duration_since(SystemTime::now()) {
                std::thread::sleep(wait);
            }
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
    (UNIX_EPOCH + Duration::from_secs(end)).checked_sub(SLURM_END_MARGIN)
}

/// `deadline` as an [`Instant`] (now, when it has passed).
pub fn instant_of(deadline: SystemTime) -> Instant {
    let now = Instant::now();
    deadline
        .duration_since(SystemTime::now())
        .map_or(now, |left| now + left)
}

/// Parses a deadline: `+90s`, `+45m`, `+2h` (from now), a Unix time in seconds, or an
/// ISO 8601 UTC time `YYYY-MM-DDTHH:MM[:SS]Z`.
pub fn parse_deadline(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('+') {
        let (num, unit) =
            rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        let secs = match unit {
            "" | "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return Err(format!("bad duration unit in {s:?} (use s, m or h)")),
        };
        return Ok(SystemTime::now() + Duration::from_secs(secs));
    }
    if let Ok(unix) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(unix));
    }
    let bad = || format!("bad deadline {s:?}: use +2h, a Unix time, or YYYY-MM-DDTHH:MM:SSZ");
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3 || !(2..=3).contains(&t.len()) {
        return Err(bad());
    }
    // days from civil (Howard Hinnant's algorithm)
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t.get(2).copied().unwrap_or(0);
    u64::try_from(secs)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
