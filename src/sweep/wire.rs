//! Byte encoding of the messages ranks exchange (work units and their outcomes).
//! Little-endian, length-prefixed; NaN and infinities survive exactly.

use super::schedule::{Lambda0Est, Outcome, Unit};
use crate::store::results::{RunRecord, RunStatus};

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|x| self.f64(*x));
    }
    fn est(&mut self, e: &Lambda0Est) {
        self.f64(e.value);
        self.u64(e.hvps as u64);
        self.f64(e.residual);
        self.u64(e.converged as u64);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> u64 {
        let (head, rest) = self.0.split_at(8);
        self.0 = rest;
        u64::from_le_bytes(head.try_into().expect("8 bytes"))
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }
    fn f64s(&mut self) -> Vec<f64> {
        let n = self.u64() as usize;
        (0..n).map(|_| self.f64()).collect()
    }
    fn est(&mut self) -> Lambda0Est {
        Lambda0Est {
            value: self.f64(),
            hvps: self.u64() as usize,
            residual: self.f64(),
            converged: self.u64() != 0,
        }
    }
}

/// Encodes a work unit.
pub fn encode_unit(u: &Unit) -> Vec<u8> {
    let mut w = Writer::default();
    match u {
        Unit::Lambda0 { line } => {
            w.u64(0);
            w.u64(*line as u64);
        }
        Unit::Run { task, lambda0 } => {
            w.u64(1);
            w.u64(*task as u64);
            w.est(lambda0);
        }
    }
    w.0
}

/// Decodes a work unit.
pub fn decode_unit(b: &[u8]) -> Unit {
    let mut r = Reader(b);
    match r.u64() {
        0 => Unit::Lambda0 {
            line: r.u64() as usize,
        },
        _ => Unit::Run {
            task: r.u64() as usize,
            lambda0: r.est(),
        },
    }
}

/// Encodes an outcome.
pub fn encode_outcome(o: &Outcome) -> Vec<u8> {
    let mut w = Writer::default();
    match o {
        Outcome::Lambda0 { line, est } => {
            w.u64(0);
            w.u64(*line as u64);
            w.est(est);
        }
        Outcome::Run { task, record: rec } => {
            w.u64(1);
            w.u64(*task as u64);
            w.f64(rec.lambda0);
            w.f64(rec.eta);
            w.u64(rec.status.code() as u64);
            w.u64(rec.diverged_at.map_or(u64::MAX, |v| v as u64));
            w.f64s(&rec.loss);
            w.f64s(&rec.sharpness);
            w.f64s(&rec.hvps.iter().map(|h| *h as f64).collect::<Vec<_>>());
            w.f64s(&rec.residual);
            w.f64s(
                &rec.converged
                    .iter()
                    .map(|c| *c as u8 as f64)
                    .collect::<Vec<_>>(),
            );
            w.f64s(&rec.interp_loss);
            w.f64(rec.seconds);
            w.u64(rec.message.len() as u64);
            w.0.extend_from_slice(rec.message.as_bytes());
        }
    }
    w.0
}

/// Decodes an outcome.
pub fn decode_outcome(b: &[u8]) -> Outcome {
    let mut r = Reader(b);
    match r.u64() {
        0 => Outcome::Lambda0 {
            line: r.u64() as usize,
            est: r.est(),
        },
        _ => {
            let task = r.u64() as usize;
            let lambda0 = r.f64();
            let eta = r.f64();
            let status = RunStatus::from_code(r.u64() as i8).unwrap_or(RunStatus::Failed);
            let d = r.u64();
            let diverged_at = (d != u64::MAX).then_some(d as u32);
            let loss = r.f64s();
            let sharpness = r.f64s();
            let hvps = r.f64s().into_iter().map(|h| h as i32).collect();
            let residual = r.f64s();
            let converged = r.f64s().into_iter().map(|c| c != 0.0).collect();
            let interp_loss = r.f64s();
            let seconds = r.f64();
            let n = r.u64() as usize;
            let message = String::from_utf8_lossy(&r.0[..n]).into_owned();
            Outcome::Run {
                task,
                record: RunRecord {
                    lambda0,
                    eta,
                    status,
                    diverged_at,
                    loss,
                    sharpness,
                    hvps,
                    residual,
                    converged,
                    interp_loss,
                    message,
                    seconds,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_exact() {
        let rec = RunRecord {
            lambda0: 3.5,
            eta: 0.25,
            status: RunStatus::Diverged,
            diverged_at: Some(4),
            loss: vec![1.0, f64::NAN, f64::INFINITY],
            sharpness: vec![2.0, -0.0, f64::NAN],
            hvps: vec![30, -1, 7],
            residual: vec![1e-4, f64::NAN, 0.0],
            converged: vec![true, false, true],
            interp_loss: vec![],
            message: "λ ok".into(),
            seconds: 1.5,
        };
        let o = Outcome::Run {
            task: 17,
            record: rec.clone(),
        };
        match decode_outcome(&encode_outcome(&o)) {
            Outcome::Run { task, record } => {
                assert_eq!(task, 17);
                assert_eq!(format!("{record:?}"), format!("{rec:?}"));
            }
            _ => panic!("wrong kind"),
        }
        let u = Unit::Run {
            task: 3,
            lambda0: Lambda0Est {
                value: 2.5,
                hvps: 12,
                residual: 1e-5,
                converged: true,
            },
        };
        assert_eq!(decode_unit(&encode_unit(&u)), u);
        assert_eq!(
            decode_unit(&encode_unit(&Unit::Lambda0 { line: 9 })),
            Unit::Lambda0 { line: 9 }
        );
    }
}
