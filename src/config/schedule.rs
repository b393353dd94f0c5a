//! The measurement schedule of a run ([`Schedule`]): at which states t = 0..=T the
//! training loss and the sharpness are measured. Training, the cost model and the
//! validation of an adaptive search read it; the file records its outcome (a measured
//! loss is not NaN, a measured sharpness has `hvps` ≥ 0).
//!
//! The sharpness (with every spectrum the config asks for) is measured at t = 0, at T, at
//! every t ≤ `sharpness.dense_steps`, and after that either every `sharpness.every` steps
//! or, with `sharpness.per_decade` = N > 0, at the N log-spaced steps per decade
//! round(10^(j/N)), j = 0, 1, …. The training loss is measured wherever the sharpness is,
//! and every `train.loss_every` steps (0: nowhere else). With the defaults of the new keys
//! (`dense_steps` = 0, `per_decade` = 0) the sharpness steps are those of `every` alone.

use super::Config;

/// The early window 1..=T in which c_loss and c_sharp are decided, by default (`analyze
/// --early-window`) and always in an adaptive search: its steps must all be measured.
pub const EARLY_WINDOW: usize = 10;

/// The largest `sharpness.per_decade`.
pub const MAX_PER_DECADE: usize = 1000;

/// Which states of a run are measured (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// SGD steps T (the last state, always measured).
    pub steps: usize,
    /// Sharpness every this many steps after the dense part (`sharpness.every`, ≥ 1).
    pub every: usize,
    /// Sharpness at every t ≤ this (`sharpness.dense_steps`).
    pub dense_steps: usize,
    /// N > 0: log-spaced sharpness steps after the dense part (`sharpness.per_decade`).
    pub per_decade: usize,
    /// Loss every this many steps besides the sharpness steps (`train.loss_every`; 0: none).
    pub loss_every: usize,
}

impl Schedule {
    /// The schedule of `cfg`.
    pub fn of(cfg: &Config) -> Schedule {
        Schedule {
            steps: cfg.train.steps,
            every: cfg.sharpness.every.max(1),
            dense_steps: cfg.sharpness.dense_steps,
            per_decade: cfg.sharpness.per_decade,
            loss_every: cfg.train.loss_every,
        }
    }

    /// Whether state t's sharpness is measured (and its loss with it).
    pub fn sharpness_at(&self, t: usize) -> bool {
        if t == 0 || t == self.steps || t <= self.dense_steps {
            return true;
        }
        if self.per_decade > 0 {
            log_spaced(t, self.per_decade)
        } else {
            t % self.every.max(1) == 0
        }
    }

    /// Whether state t's training loss is measured: at the sharpness steps and every
    /// `loss_every` steps.
    pub fn loss_at(&self, t: usize) -> bool {
        (self.loss_every > 0 && t % self.loss_every == 0) || self.sharpness_at(t)
    }

    /// The first state of 1..=`upto` (at most T) whose sharpness is not measured.
    pub fn first_sparse(&self, upto: usize) -> Option<usize> {
        (1..=upto.min(self.steps)).find(|&t| !self.sharpness_at(t))
    }

    /// How many states have their sharpness measured.
    pub fn sharpness_count(&self) -> usize {
        let (t_max, dense) = (self.steps, self.dense_steps.min(self.steps));
        // t = 0..=dense, and T when it is past the dense part.
        let mut count = dense + 1 + usize::from(t_max > dense);
        if self.per_decade > 0 {
            let mut last = dense;
            for j in 0.. {
                let t = decade_step(j, self.per_decade);
                if t >= t_max {
                    break;
                }
                if t > last {
                    count += 1;
                    last = t;
                }
            }
        } else if t_max > dense + 1 {
            // Multiples of `every` in (dense, T).
            let every = self.every.max(1);
            count += (t_max - 1) / every - dense / every;
        }
        count
    }

    /// The schedule in words (the file's `conventions`): "loss on the training subset …;
    /// sharpness …".
    pub fn describe(&self) -> String {
        let dense = match self.dense_steps {
            0 => String::new(),
            d => format!("at every step t <= {d}, then "),
        };
        let sparse = match (self.per_decade, self.every) {
            (0, 1) => "every step".to_string(),
            (0, k) => format!("every {k} steps"),
            (n, _) => format!("{n} log-spaced steps per decade (t = round(10^(j/{n})))"),
        };
        let loss = match self.loss_every {
            0 => "at the sharpness steps".to_string(),
            1 => "every step".to_string(),
            k => format!("every {k} steps and at the sharpness steps"),
        };
        format!(
            "loss on the training subset {loss}; sharpness at t = 0, {dense}{sparse}, and at T (unmeasured: loss NaN, hvps -1)"
        )
    }

    /// How many states have their training loss measured, at most (the sharpness steps
    /// and the multiples of `loss_every`, counted apart; never more than T + 1).
    pub fn loss_count(&self) -> usize {
        let extra = match self.loss_every {
            0 => 0,
            k => self.steps / k + 1,
        };
        (self.sharpness_count() + extra).min(self.steps + 1)
    }
}

/// round(10^(j/n)).
fn decade_step(j: usize, n: usize) -> usize {
    10f64.powf(j as f64 / n as f64).round() as usize
}

/// Whether t ≥ 1 is round(10^(j/n)) for some j ≥ 0: such j lie in
/// [n·log₁₀(t − ½), n·log₁₀(t + ½)), searched with a margin of one either side.
fn log_spaced(t: usize, n: usize) -> bool {
    let (lo, hi) = (t as f64 - 0.5, t as f64 + 0.5);
    let first = (n as f64 * lo.log10()).floor().max(1.0) as usize - 1;
    let last = (n as f64 * hi.log10()).ceil() as usize + 1;
    (first..=last).any(|j| decade_step(j, n) == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(steps: usize, every: usize, dense: usize, per_decade: usize) -> Schedule {
        Schedule {
            steps,
            every,
            dense_steps: dense,
            per_decade,
            loss_every: 1,
        }
    }

    fn sharpness_steps(s: &Schedule) -> Vec<usize> {
        (0..=s.steps).filter(|&t| s.sharpness_at(t)).collect()
    }

    #[test]
    fn every_k_alone_is_the_old_schedule() {
        let s = schedule(10, 3, 0, 0);
        assert_eq!(sharpness_steps(&s), [0, 3, 6, 9, 10]);
        assert_eq!(s.sharpness_count(), 5);
        let s = schedule(9, 3, 0, 0);
        assert_eq!(sharpness_steps(&s), [0, 3, 6, 9]);
        assert_eq!(s.sharpness_count(), 4);
        for t in 0..=10 {
            assert_eq!(schedule(10, 3, 0, 0).sharpness_at(t), t % 3 == 0 || t == 10);
        }
    }

    #[test]
    fn dense_early_then_every_k() {
        let s = schedule(30, 10, 4, 0);
        assert_eq!(sharpness_steps(&s), [0, 1, 2, 3, 4, 10, 20, 30]);
        assert_eq!(s.sharpness_count(), 8);
        assert_eq!(s.first_sparse(10), Some(5));
        assert_eq!(s.first_sparse(4), None);
        // A dense part longer than the run measures every step.
        let s = schedule(6, 10, 100, 0);
        assert_eq!(sharpness_steps(&s), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(s.sharpness_count(), 7);
        assert_eq!(s.first_sparse(10), None);
    }

    #[test]
    fn dense_early_then_log_spaced() {
        let s = schedule(1000, 1, 10, 10);
        let want = [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100, 126, 158,
            200, 251, 316, 398, 501, 631, 794, 1000,
        ];
        assert_eq!(sharpness_steps(&s), want);
        assert_eq!(s.sharpness_count(), want.len());
        // Without a dense part the log-spaced steps start at 1; T is always measured.
        let s = schedule(50, 1, 0, 4);
        assert_eq!(sharpness_steps(&s), [0, 1, 2, 3, 6, 10, 18, 32, 50]);
        assert_eq!(s.sharpness_count(), 9);
        assert_eq!(s.first_sparse(10), Some(4));
        // Many per decade: every step early, then sparser.
        let s = schedule(10_000, 1, 0, 100);
        assert!((1..=40).all(|t| s.sharpness_at(t)));
        assert!(!(9000..9200).all(|t| s.sharpness_at(t)));
        assert_eq!(s.sharpness_count(), sharpness_steps(&s).len());
    }

    #[test]
    fn the_loss_is_measured_every_loss_every_steps_and_with_the_sharpness() {
        let mut s = schedule(10, 4, 0, 0);
        assert!((0..=10).all(|t| s.loss_at(t)));
        assert_eq!(s.loss_count(), 11);
        s.loss_every = 3;
        let loss: Vec<usize> = (0..=10).filter(|&t| s.loss_at(t)).collect();
        assert_eq!(loss, [0, 3, 4, 6, 8, 9, 10]);
        assert!(s.loss_count() >= loss.len());
        s.loss_every = 0;
        let loss: Vec<usize> = (0..=10).filter(|&t| s.loss_at(t)).collect();
        assert_eq!(loss, sharpness_steps(&s));
        assert_eq!(s.loss_count(), loss.len());
    }

    #[test]
    fn log_spacing_matches_its_definition() {
        for n in [1, 3, 7, 10, 33, 100, MAX_PER_DECADE] {
            let mut want: Vec<usize> = (0..=(5 * n)).map(|j| decade_step(j, n)).collect();
            want.dedup();
            let got: Vec<usize> = (1..=100_000).filter(|&t| log_spaced(t, n)).collect();
            assert_eq!(got, want, "per decade {n}");
        }
    }
}
