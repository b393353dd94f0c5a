//! Rank 0's progress report: a bar on a terminal, a plain line every few seconds otherwise
//! (Slurm logs).

use super::SweepOptions;
use std::io::IsTerminal;
use std::time::Instant;

/// Rank 0's progress: a bar on a terminal, a plain line every few seconds otherwise.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    start_done: usize,
    started: Instant,
    last_line: Instant,
    every: f64,
    quiet: bool,
    /// The total grows (an adaptive search).
    growing: bool,
}

impl Progress {
    pub(crate) fn new(total: usize, done: usize, diverged: usize, opts: &SweepOptions) -> Self {
        let bar = (!opts.quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {msg}, ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_position(done as u64);
            b.set_message(format!("{diverged} diverged"));
            b
        });
        Progress {
            bar,
            total,
            start_done: done,
            started: Instant::now(),
            last_line: Instant::now(),
            every: opts.progress_every,
            quiet: opts.quiet,
            growing: false,
        }
    }

    /// The runs to do changed (an adaptive search added a round): from now on the total
    /// is a floor ("N+"), and no ETA is given.
    pub(crate) fn set_total(&mut self, total: usize) {
        self.total = total;
        self.growing = true;
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
        }
    }

    pub(crate) fn update(&mut self, done: usize, diverged: usize) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            b.set_message(format!("{diverged} diverged"));
        } else if !self.quiet
            && self.every > 0.0
            && self.last_line.elapsed().as_secs_f64() >= self.every
        {
            self.last_line = Instant::now();
            let el = self.started.elapsed().as_secs_f64();
            let now = (done - self.start_done).max(1) as f64;
            let eta = el / now * self.total.saturating_sub(done) as f64;
            // A closed stderr (a log pipe gone) must never stop the sweep.
            use std::io::Write;
            let line = if self.growing {
                format!(
                    "sharpsweep: {done}/{}+ runs done, {diverged} diverged, {el:.0} s elapsed \
                     (adaptive search: more runs follow)",
                    self.total
                )
            } else {
                format!(
                    "sharpsweep: {done}/{} runs done, {diverged} diverged, {el:.0} s elapsed, ETA {eta:.0} s",
                    self.total
                )
            };
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
