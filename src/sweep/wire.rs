//! The messages ranks exchange — work units and their outcomes — and their byte encoding:
//! little-endian, length-prefixed; NaN and infinities survive exactly. A run record travels
//! whole, variable by variable in [`SCHEMA`] order, so a new schema variable needs nothing
//! here.

use crate::record::{stop_code, stop_of_code, Column, InitKey, Kind, Role, RunRecord, SCHEMA};
use crate::train::Lambda0;

/// One piece of work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// Measure λ₀ of one network at initialization.
    Lambda0 {
        /// The network.
        init: InitKey,
    },
    /// Train task `task` with its network's λ₀.
    Run {
        /// Row of the run table.
        task: usize,
        /// λ₀ of the task's network.
        lambda0: Lambda0,
    },
}

/// What a unit produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// λ₀ of a network.
    Lambda0 {
        /// The network.
        init: InitKey,
        /// The estimate.
        est: Lambda0,
    },
    /// A finished run.
    Run {
        /// Row of the run table.
        task: usize,
        /// Its record.
        record: RunRecord,
    },
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn init(&mut self, k: &InitKey) {
        self.u64(u64::from(k.depth));
        self.u64(u64::from(k.width));
        self.u64(k.seed);
    }
    fn lambda0(&mut self, e: &Lambda0) {
        self.f64(e.value);
        self.u64(e.hvps as u64);
        self.f64(e.residual);
        self.u64(u64::from(e.converged));
        self.u64(stop_code(e.stop) as u8 as u64);
    }
    fn column(&mut self, c: &Column) {
        self.u64(c.len() as u64);
        match c {
            Column::F64(v) => v.iter().for_each(|x| self.f64(*x)),
            Column::I64(v) => v.iter().for_each(|x| self.u64(*x as u64)),
            Column::I32(v) => v
                .iter()
                .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes())),
            Column::I8(v) => v.iter().for_each(|x| self.0.push(*x as u8)),
            Column::Str(v) => v.iter().for_each(|s| self.bytes(s.as_bytes())),
        }
    }
}

/// A message that does not decode (a bug or a version mismatch between ranks).
#[derive(Debug, thiserror::Error)]
#[error("malformed message between ranks: {0}")]
pub struct WireError(String);

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(WireError(format!(
                "needs {n} more bytes, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn usize(&mut self) -> Result<usize, WireError> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| WireError(format!("length {v}")))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| WireError(format!("{v} is not a u32")))
    }
    fn f64(&mut self) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn init(&mut self) -> Result<InitKey, WireError> {
        Ok(InitKey {
            depth: self.u32()?,
            width: self.u32()?,
            seed: self.u64()?,
        })
    }
    fn lambda0(&mut self) -> Result<Lambda0, WireError> {
        Ok(Lambda0 {
            value: self.f64()?,
            hvps: self.usize()?,
            residual: self.f64()?,
            converged: self.u64()? != 0,
            stop: stop_of_code(self.u64()? as i8).map_err(WireError)?,
        })
    }
    fn column(&mut self, kind: Kind) -> Result<Column, WireError> {
        let n = self.usize()?;
        // Every entry takes at least one byte: refuse lengths the message cannot hold.
        if n > self.0.len() {
            return Err(WireError(format!("{n} entries in {} bytes", self.0.len())));
        }
        Ok(match kind {
            Kind::F64 => Column::F64((0..n).map(|_| self.f64()).collect::<Result<_, _>>()?),
            Kind::I64 => Column::I64(
                (0..n)
                    .map(|_| self.u64().map(|v| v as i64))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::I32 => Column::I32(
                (0..n)
                    .map(|_| Ok(i32::from_le_bytes(self.take(4)?.try_into().expect("4"))))
                    .collect::<Result<_, WireError>>()?,
            ),
            Kind::I8 => Column::I8(self.take(n)?.iter().map(|b| *b as i8).collect()),
            Kind::Str => Column::Str(
                (0..n)
                    .map(|_| {
                        let len = self.usize()?;
                        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
                    })
                    .collect::<Result<_, WireError>>()?,
            ),
        })
    }
}

/// Encodes a work unit.
pub fn encode_unit(u: &Unit) -> Vec<u8> {
    let mut w = Writer::default();
    match u {
        Unit::Lambda0 { init } => {
            w.u64(0);
            w.init(init);
        }
        Unit::Run { task, lambda0 } => {
            w.u64(1);
            w.u64(*task as u64);
            w.lambda0(lambda0);
        }
    }
    w.0
}

/// Decodes a work unit.
pub fn decode_unit(b: &[u8]) -> Result<Unit, WireError> {
    let mut r = Reader(b);
    Ok(match r.u64()? {
        0 => Unit::Lambda0 { init: r.init()? },
        1 => Unit::Run {
            task: r.usize()?,
            lambda0: r.lambda0()?,
        },
        other => return Err(WireError(format!("unit kind {other}"))),
    })
}

/// Encodes an outcome; a run record goes whole, every [`SCHEMA`] outcome variable.
pub fn encode_outcome(o: &Outcome) -> Vec<u8> {
    let mut w = Writer::default();
    match o {
        Outcome::Lambda0 { init, est } => {
            w.u64(0);
            w.init(init);
            w.lambda0(est);
        }
        Outcome::Run { task, record } => {
            w.u64(1);
            w.u64(*task as u64);
            for var in SCHEMA {
                if let Role::Outcome { get, .. } = var.role {
                    // Only a step or depth beyond i32 could fail here, and the config
                    // validation refuses those long before a record exists.
                    let col = get(record).unwrap_or_else(|e| panic!("{}: {e}", var.name));
                    w.column(&col);
                }
            }
        }
    }
    w.0
}

/// Decodes an outcome.
pub fn decode_outcome(b: &[u8]) -> Result<Outcome, WireError> {
    let mut r = Reader(b);
    Ok(match r.u64()? {
        0 => Outcome::Lambda0 {
            init: r.init()?,
            est: r.lambda0()?,
        },
        1 => {
            let task = r.usize()?;
            let mut record = RunRecord::default();
            for var in SCHEMA {
                if let Role::Outcome { set, .. } = var.role {
                    let col = r.column(var.kind)?;
                    set(&mut record, col).map_err(|e| WireError(format!("{}: {e}", var.name)))?;
                }
            }
            Outcome::Run { task, record }
        }
        other => return Err(WireError(format!("outcome kind {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::StopReason;
    use crate::record::RunStatus;

    fn record() -> RunRecord {
        let mut rec = RunRecord::unmeasured(3.5, 0.25, RunStatus::Diverged, 2, 1);
        rec.diverged_at = Some(4);
        rec.loss = vec![1.0, f64::NAN, f64::INFINITY];
        rec.sharpness = vec![2.0, -0.0, f64::NAN];
        rec.hvps = vec![30, -1, 7];
        rec.converged = vec![true, false, true];
        rec.stop_reason = vec![
            Some(StopReason::Converged),
            None,
            Some(StopReason::NonFinite),
        ];
        rec.message = "λ ok".into();
        rec.seconds = 1.5;
        rec
    }

    #[test]
    fn round_trips_are_exact() {
        let rec = record();
        let o = Outcome::Run {
            task: 17,
            record: rec.clone(),
        };
        match decode_outcome(&encode_outcome(&o)).unwrap() {
            Outcome::Run { task, record } => {
                assert_eq!(task, 17);
                assert_eq!(format!("{record:?}"), format!("{rec:?}"));
            }
            _ => panic!("wrong kind"),
        }
        let est = Lambda0 {
            value: 2.5,
            hvps: 12,
            residual: 1e-5,
            converged: true,
            stop: Some(StopReason::InvariantSubspace),
        };
        let u = Unit::Run {
            task: 3,
            lambda0: est,
        };
        assert_eq!(decode_unit(&encode_unit(&u)).unwrap(), u);
        let init = InitKey {
            depth: 4,
            width: 64,
            seed: u64::MAX,
        };
        let u = Unit::Lambda0 { init };
        assert_eq!(decode_unit(&encode_unit(&u)).unwrap(), u);
        let o = Outcome::Lambda0 { init, est };
        assert_eq!(decode_outcome(&encode_outcome(&o)).unwrap(), o);
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let bytes = encode_outcome(&Outcome::Run {
            task: 1,
            record: record(),
        });
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert!(decode_outcome(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_unit(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
