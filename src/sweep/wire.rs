//! The messages ranks exchange — work units and their outcomes — and their byte encoding
//! ([`crate::record::codec`]: little-endian, length-prefixed, NaN and infinities exact). A
//! run record travels whole, so a new schema variable needs nothing here.

use crate::record::codec::{ByteReader, ByteWriter};
use crate::record::{stop_code, stop_of_code, InitKey, RunRecord, TaskKey};
use crate::train::Lambda0;

/// One piece of work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// Measure λ₀ of one network at initialization.
    Lambda0 {
        /// The network.
        init: InitKey,
    },
    /// Train one run with its network's λ₀.
    Run {
        /// The master's number for the task (returned with its outcome).
        task: usize,
        /// What to run.
        key: TaskKey,
        /// λ₀ of the task's network.
        lambda0: Lambda0,
    },
}

/// What a unit produced. (A run's record is large, but an outcome is built once and moved
/// once: boxing it would buy nothing.)
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
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
        /// The master's number for the task.
        task: usize,
        /// What ran.
        key: TaskKey,
        /// Its record.
        record: RunRecord,
    },
}

/// A message that does not decode (a bug or a version mismatch between ranks).
#[derive(Debug, thiserror::Error)]
#[error("malformed message between ranks: {0}")]
pub struct WireError(String);

fn write_init(w: &mut ByteWriter, k: &InitKey) {
    w.u64(u64::from(k.depth));
    w.u64(u64::from(k.width));
    w.u64(u64::from(k.axis_point));
    w.u64(k.seed);
}

fn write_lambda0(w: &mut ByteWriter, e: &Lambda0) {
    w.f64(e.value);
    w.u64(e.hvps as u64);
    w.f64(e.residual);
    w.u64(u64::from(e.converged));
    w.u64(stop_code(e.stop) as u8 as u64);
}

fn read_init(r: &mut ByteReader) -> Result<InitKey, String> {
    Ok(InitKey {
        depth: r.u32()?,
        width: r.u32()?,
        axis_point: r.u32()?,
        seed: r.u64()?,
    })
}

fn read_lambda0(r: &mut ByteReader) -> Result<Lambda0, String> {
    Ok(Lambda0 {
        value: r.f64()?,
        hvps: r.usize()?,
        residual: r.f64()?,
        converged: r.u64()? != 0,
        stop: stop_of_code(r.u64()? as i8)?,
    })
}

/// Encodes a work unit.
pub fn encode_unit(u: &Unit) -> Vec<u8> {
    let mut w = ByteWriter::default();
    match u {
        Unit::Lambda0 { init } => {
            w.u64(0);
            write_init(&mut w, init);
        }
        Unit::Run { task, key, lambda0 } => {
            w.u64(1);
            w.u64(*task as u64);
            w.key(key);
            write_lambda0(&mut w, lambda0);
        }
    }
    w.0
}

/// Decodes a work unit.
pub fn decode_unit(b: &[u8]) -> Result<Unit, WireError> {
    let mut r = ByteReader(b);
    let unit = match r.u64().map_err(WireError)? {
        0 => Unit::Lambda0 {
            init: read_init(&mut r).map_err(WireError)?,
        },
        1 => Unit::Run {
            task: r.usize().map_err(WireError)?,
            key: r.key().map_err(WireError)?,
            lambda0: read_lambda0(&mut r).map_err(WireError)?,
        },
        other => return Err(WireError(format!("unit kind {other}"))),
    };
    Ok(unit)
}

/// Encodes an outcome; a run record goes whole ([`ByteWriter::record`]).
pub fn encode_outcome(o: &Outcome) -> Vec<u8> {
    let mut w = ByteWriter::default();
    match o {
        Outcome::Lambda0 { init, est } => {
            w.u64(0);
            write_init(&mut w, init);
            write_lambda0(&mut w, est);
        }
        Outcome::Run { task, key, record } => {
            w.u64(1);
            w.u64(*task as u64);
            w.key(key);
            w.record(record);
        }
    }
    w.0
}

/// Decodes an outcome.
pub fn decode_outcome(b: &[u8]) -> Result<Outcome, WireError> {
    let mut r = ByteReader(b);
    let outcome = match r.u64().map_err(WireError)? {
        0 => Outcome::Lambda0 {
            init: read_init(&mut r).map_err(WireError)?,
            est: read_lambda0(&mut r).map_err(WireError)?,
        },
        1 => Outcome::Run {
            task: r.usize().map_err(WireError)?,
            key: r.key().map_err(WireError)?,
            record: r.record().map_err(WireError)?,
        },
        other => return Err(WireError(format!("outcome kind {other}"))),
    };
    Ok(outcome)
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
        let key = TaskKey {
            c: 2f64.powf(0.3),
            depth: 4,
            width: 64,
            seed: u64::MAX,
            sgd_seed: 7,
            axis_point: 5,
        };
        let o = Outcome::Run {
            task: 17,
            key,
            record: rec.clone(),
        };
        match decode_outcome(&encode_outcome(&o)).unwrap() {
            Outcome::Run {
                task,
                key: k,
                record,
            } => {
                assert_eq!(task, 17);
                assert_eq!(k, key);
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
            key,
            lambda0: est,
        };
        assert_eq!(decode_unit(&encode_unit(&u)).unwrap(), u);
        let init = InitKey {
            depth: 4,
            width: 64,
            axis_point: 3,
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
            key: TaskKey::default(),
            record: record(),
        });
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert!(decode_outcome(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_unit(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
