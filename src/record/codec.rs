//! The byte encoding of a run record — little-endian, length-prefixed, NaN and infinities
//! exact — shared by the MPI messages and the results journal. A record is written
//! variable by variable in [`SCHEMA`] order, so a new schema variable needs nothing here.

use super::{Column, Kind, Role, RunRecord, TaskKey, SCHEMA};

/// Appends little-endian values to a byte buffer.
#[derive(Debug, Default)]
pub struct ByteWriter(pub Vec<u8>);

impl ByteWriter {
    /// A u64.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An f64, as its bits.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A length-prefixed column (its kind is known to the reader).
    pub fn column(&mut self, c: &Column) {
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
    /// A task key: c (its bits), depth, width, seed, sgd_seed, axis_point.
    pub fn key(&mut self, k: &TaskKey) {
        self.f64(k.c);
        self.u64(u64::from(k.depth));
        self.u64(u64::from(k.width));
        self.u64(k.seed);
        self.u64(k.sgd_seed);
        self.u64(u64::from(k.axis_point));
    }
    /// Every outcome variable of `rec`, in [`SCHEMA`] order.
    ///
    /// Panics only on a step count or depth beyond i32, which config validation and the
    /// results file refuse long before a record exists.
    pub fn record(&mut self, rec: &RunRecord) {
        for var in SCHEMA {
            if let Role::Outcome { get, .. } = var.role {
                let col = get(rec).unwrap_or_else(|e| panic!("{}: {e}", var.name));
                self.column(&col);
            }
        }
    }
}

/// Reads what [`ByteWriter`] wrote; every read checks the bytes left, so a truncated or
/// corrupt buffer is an error, never a panic.
#[derive(Debug)]
pub struct ByteReader<'a>(pub &'a [u8]);

impl<'a> ByteReader<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("needs {n} more bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    /// A u64.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A u64 that must fit a usize.
    pub fn usize(&mut self) -> Result<usize, String> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| format!("length {v}"))
    }
    /// A u64 that must fit a u32.
    pub fn u32(&mut self) -> Result<u32, String> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| format!("{v} is not a u32"))
    }
    /// An f64 from its bits.
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A length-prefixed column of `kind`.
    pub fn column(&mut self, kind: Kind) -> Result<Column, String> {
        let n = self.usize()?;
        // Every entry takes at least one byte: refuse lengths the buffer cannot hold.
        if n > self.0.len() {
            return Err(format!("{n} entries in {} bytes", self.0.len()));
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
                    .collect::<Result<_, String>>()?,
            ),
            Kind::I8 => Column::I8(self.take(n)?.iter().map(|b| *b as i8).collect()),
            Kind::Str => Column::Str(
                (0..n)
                    .map(|_| {
                        let len = self.usize()?;
                        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
                    })
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
    /// A key written by [`ByteWriter::key`].
    pub fn key(&mut self) -> Result<TaskKey, String> {
        let mut k = self.key_without_axis_point()?;
        k.axis_point = self.u32()?;
        Ok(k)
    }
    /// A key as versions before `grid.axes` wrote it (no axis point: 0).
    pub fn key_without_axis_point(&mut self) -> Result<TaskKey, String> {
        Ok(TaskKey {
            c: self.f64()?,
            depth: self.u32()?,
            width: self.u32()?,
            seed: self.u64()?,
            sgd_seed: self.u64()?,
            axis_point: 0,
        })
    }
    /// A record written by [`ByteWriter::record`].
    pub fn record(&mut self) -> Result<RunRecord, String> {
        let mut rec = RunRecord::default();
        for var in SCHEMA {
            if let Role::Outcome { set, .. } = var.role {
                let col = self.column(var.kind)?;
                set(&mut rec, col).map_err(|e| format!("{}: {e}", var.name))?;
            }
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::StopReason;
    use crate::record::RunStatus;

    #[test]
    fn records_round_trip_exactly_and_truncation_is_an_error() {
        let mut rec = RunRecord::unmeasured(3.5, 0.25, RunStatus::Diverged, 2, 1);
        rec.diverged_at = Some(4);
        rec.loss = vec![1.0, f64::NAN, f64::INFINITY];
        rec.sharpness = vec![2.0, -0.0, f64::NAN];
        rec.hvps = vec![30, -1, 7];
        rec.stop_reason = vec![Some(StopReason::Converged), None, None];
        rec.message = "λ ok".into();
        let mut w = ByteWriter::default();
        w.record(&rec);
        let back = ByteReader(&w.0).record().unwrap();
        assert_eq!(format!("{back:?}"), format!("{rec:?}"));
        for cut in [0, 1, 8, w.0.len() / 2, w.0.len() - 1] {
            assert!(ByteReader(&w.0[..cut]).record().is_err(), "cut {cut}");
        }
    }

    #[test]
    fn keys_carry_their_axis_point() {
        let key = TaskKey {
            c: 0.3,
            depth: 2,
            width: 9,
            seed: u64::MAX,
            sgd_seed: 4,
            axis_point: 7,
        };
        let mut w = ByteWriter::default();
        w.key(&key);
        assert_eq!(w.0.len(), 48);
        assert_eq!(ByteReader(&w.0).key().unwrap(), key);
        assert!(ByteReader(&w.0[..40]).key().is_err());
        let old = ByteReader(&w.0[..40]).key_without_axis_point().unwrap();
        assert_eq!(
            old,
            TaskKey {
                axis_point: 0,
                ..key
            }
        );
    }
}
