//! A run's checkpoint: everything it carries from one step to the next ([`RunCheckpoint`]:
//! θ_t, the optimizer's state, the minibatch stream's position, the record so far, the
//! warm-start eigenvectors), so that a resumed run continues bit for bit, and its byte
//! format ([`encode`], [`decode`]). The bytes carry a CRC-32, the config's SHA-256, the
//! precision and the run's key; bytes that fail any check are refused (the run starts
//! over), never trusted. Where the bytes are kept is the store's business
//! (`store::checkpoint`).

use crate::model::Float;
use crate::optim::{OptimizerState, Rule};
use crate::record::codec::{ByteReader, ByteWriter};
use crate::record::{RunRecord, TaskKey};
use crate::store::crc32;

/// Everything a run carries from one step to the next, as a checkpoint holds it: the
/// state after `t` steps (and after the measurement at t, if there was one). A run
/// continued from it is bit for bit the run that was not interrupted.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCheckpoint<T> {
    /// Steps made.
    pub t: usize,
    /// θ_t.
    pub params: Vec<T>,
    /// The optimizer's state.
    pub opt: OptimizerState<T>,
    /// Minibatch permutations drawn so far.
    pub epochs: u64,
    /// Position in the last permutation.
    pub cursor: usize,
    /// The record so far (steps after t unmeasured).
    pub record: RunRecord,
    /// The eigenvectors the next measurement warm-starts from: Hessian, Gauss-Newton,
    /// bottom, plain Hessian (Adam).
    pub warm: [Vec<Vec<f64>>; 4],
    /// Wall-clock seconds the run has taken so far.
    pub seconds: f64,
}

/// The first bytes of a checkpoint. Version 02: a k = 1 Lanczos measurement leaves two
/// warm vectors (its top two Ritz vectors, the tracked start's), not one.
const MAGIC: &[u8; 8] = b"SSCKPT02";

/// The first bytes of a checkpoint of the earlier version, whose warm start kept the top
/// eigenvector alone: continued by this program, its run would differ from both the
/// earlier program's and this one's, so it is refused.
const MAGIC_V1: &[u8; 8] = b"SSCKPT01";

fn vector<T: Float>(w: &mut ByteWriter, v: &[T]) {
    w.u64(v.len() as u64);
    v.iter().for_each(|x| w.f64(x.to_f64()));
}

fn read_vector<T: Float>(r: &mut ByteReader<'_>) -> Result<Vec<T>, String> {
    let n = r.usize()?;
    if n > r.0.len() / 8 {
        return Err(format!("a vector of {n} values in {} bytes", r.0.len()));
    }
    (0..n).map(|_| r.f64().map(T::of)).collect()
}

/// The bytes of a checkpoint of run `key` under the config `config_sha256`: the magic,
/// the payload's length (u64) and CRC-32 (u32), little-endian, then the payload.
pub fn encode<T: Float>(config_sha256: &str, key: &TaskKey, ck: &RunCheckpoint<T>) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.bytes(config_sha256.as_bytes());
    w.bytes(T::NAME.as_bytes());
    w.key(key);
    w.u64(ck.t as u64);
    w.u64(ck.epochs);
    w.u64(ck.cursor as u64);
    w.f64(ck.seconds);
    vector(&mut w, &ck.params);
    let (first, second, count) = ck.opt.parts();
    vector(&mut w, first);
    vector(&mut w, second);
    w.u64(count as u64);
    for vs in &ck.warm {
        w.u64(vs.len() as u64);
        vs.iter().for_each(|v| vector(&mut w, v));
    }
    w.record(&ck.record);
    let payload = w.0;
    let mut out = Vec::with_capacity(payload.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The payload of checkpoint bytes whose magic, length and checksum hold.
fn payload(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.starts_with(MAGIC_V1) {
        return Err(
            "a checkpoint of an earlier sharpsweep (format SSCKPT01, whose sharpness warm \
             start kept one vector; this program's keeps the top two Ritz vectors, estimator \
             lanczos-tracked-2): not continued"
                .into(),
        );
    }
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err("not a sharpsweep checkpoint (bad magic at byte 0)".into());
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = bytes
        .get(20..20usize.saturating_add(len))
        .ok_or_else(|| format!("cut short: {} of {} bytes", bytes.len(), len + 20))?;
    if crc32(payload) != crc {
        return Err("checksum mismatch in the payload at byte 20".into());
    }
    Ok(payload)
}

/// Reads the payload's header (config hash, precision, key) and checks that it is run
/// `key`'s under the config `config_sha256` in precision T.
fn check_header<T: Float>(
    r: &mut ByteReader<'_>,
    config_sha256: &str,
    key: &TaskKey,
) -> Result<(), String> {
    let text = |r: &mut ByteReader<'_>| -> Result<String, String> {
        let n = r.usize()?;
        Ok(String::from_utf8_lossy(r.take(n)?).into_owned())
    };
    let hash = text(r)?;
    if hash != config_sha256 {
        return Err(format!("written under config {hash}, not {config_sha256}"));
    }
    let precision = text(r)?;
    if precision != T::NAME {
        return Err(format!("precision {precision}, not {}", T::NAME));
    }
    let stored = r.key()?;
    if stored.identity() != key.identity() {
        return Err(format!("the checkpoint of {stored:?}, not of {key:?}"));
    }
    Ok(())
}

/// The checkpoint in `bytes`, if it is one of run `key` under the config `config_sha256`
/// in precision T, for the optimizer `rule`; the error says what does not fit (with the
/// byte offset where the bytes are cut or corrupt).
pub fn decode<T: Float>(
    bytes: &[u8],
    config_sha256: &str,
    key: &TaskKey,
    rule: Rule,
) -> Result<RunCheckpoint<T>, String> {
    let mut r = ByteReader(payload(bytes)?);
    check_header::<T>(&mut r, config_sha256, key)?;
    let (t, epochs, cursor, seconds) = (r.usize()?, r.u64()?, r.usize()?, r.f64()?);
    let params: Vec<T> = read_vector(&mut r)?;
    let first = read_vector(&mut r)?;
    let second = read_vector(&mut r)?;
    let opt = OptimizerState::from_parts(rule, params.len(), (first, second, r.usize()?))?;
    let mut warm: [Vec<Vec<f64>>; 4] = Default::default();
    for vs in warm.iter_mut() {
        let n = r.usize()?;
        if n > r.0.len() / 8 {
            return Err(format!("{n} vectors in {} bytes", r.0.len()));
        }
        *vs = (0..n)
            .map(|_| read_vector(&mut r))
            .collect::<Result<_, _>>()?;
    }
    let record = r.record()?;
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the record", r.0.len()));
    }
    Ok(RunCheckpoint {
        t,
        params,
        opt,
        epochs,
        cursor,
        record,
        warm,
        seconds,
    })
}

#[cfg(test)]
mod run_tests {
    use super::super::{lambda0, train_run, train_run_checkpointed, Checkpoints, RunEnd};
    use super::super::{Problem, RunSettings};
    use super::*;
    use crate::config::Config;
    use crate::record::RunStatus;
    use faer::Par;

    const RUN: &str = r#"
        [data]
        n_train = 96
        [model]
        depth = [3]
        width = [16]
        [train]
        batch_size = 40
        steps = 13
        seeds = [2]
        [sharpness]
        measure_n = 64
        every = 3
        [grid]
        c = [1.0]
    "#;

    /// Every variable of `a` and `b`, bit for bit, but the wall-clock seconds.
    fn same(a: &RunRecord, b: &RunRecord) -> bool {
        let (mut a, mut b) = (a.clone(), b.clone());
        (a.seconds, b.seconds) = (0.0, 0.0);
        let enc = |r: &RunRecord| {
            let mut w = crate::record::codec::ByteWriter::default();
            w.record(r);
            w.0
        };
        enc(&a) == enc(&b)
    }

    /// Runs `text` at c uninterrupted, then with a checkpoint every 4 steps, and continues
    /// from each checkpoint (through the file format): every continuation is the
    /// uninterrupted run, bit for bit.
    fn check<T: Float>(text: &str, c: f64) {
        let cfg = Config::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        let problem = Problem::<T>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 3, 16, Par::Seq);
        let l0 = lambda0(&s, &problem, 2);
        let (whole, _) = train_run(&s, &problem, c, 2, 2, &l0);
        if whole.status == RunStatus::Done {
            for t in 0..=s.steps {
                let (loss, sharp) = (s.schedule.loss_at(t), s.schedule.sharpness_at(t));
                assert_eq!(!whole.loss[t].is_nan(), loss, "{text}: loss at {t}");
                assert_eq!(whole.hvps[t] >= 0, sharp, "{text}: hvps at {t}");
            }
        }
        let key = TaskKey {
            c,
            depth: 3,
            width: 16,
            seed: 2,
            sgd_seed: 2,
            axis_point: 0,
        };
        let mut saved: Vec<Vec<u8>> = Vec::new();
        let mut save = |ck: &RunCheckpoint<T>| {
            saved.push(encode("h", &key, ck));
            false
        };
        let ckpt = Checkpoints {
            every: 4,
            resume: None,
            save: &mut save,
        };
        let RunEnd::Finished(with, _) = train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt)
        else {
            panic!("not interrupted")
        };
        assert!(same(&with, &whole), "checkpointing changes the run");
        assert_eq!(saved.len(), 3, "checkpoints at 4, 8, 12");
        for bytes in &saved {
            let ck: RunCheckpoint<T> = decode(bytes, "h", &key, s.rule).unwrap();
            let at = ck.t;
            let mut never = |_: &RunCheckpoint<T>| false;
            let ckpt = Checkpoints {
                every: 4,
                resume: Some(ck),
                save: &mut never,
            };
            let RunEnd::Finished(rest, _) =
                train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt)
            else {
                panic!("not interrupted")
            };
            assert!(
                same(&rest, &whole),
                "{text}: resumed at {at}: {rest:?}\nvs {whole:?}"
            );
        }
        // A save that answers "stop" interrupts the run there.
        let mut stop = |_: &RunCheckpoint<T>| true;
        let ckpt = Checkpoints {
            every: 4,
            resume: None,
            save: &mut stop,
        };
        let end = train_run_checkpointed(&s, &problem, (c, 2, 2), &l0, ckpt);
        assert_eq!(end, RunEnd::Interrupted(4));
    }

    /// The tracked start's second vector travels in the checkpoint: every checkpoint after
    /// a warm k = 1 measurement holds the top two Ritz vectors, a continuation from it is
    /// the uninterrupted run bit for bit (in `check`), and one from the top vector alone
    /// (what the earlier format held) is not.
    #[test]
    fn the_second_warm_vector_is_carried_and_needed() {
        let text = RUN.replace("every = 3", "every = 1");
        check::<f64>(&text, 3.0);
        let cfg = Config::from_toml_str(&text).unwrap();
        let problem = Problem::<f64>::from_config(&cfg).unwrap();
        let s = RunSettings::new(&cfg, &problem, 3, 16, Par::Seq);
        let l0 = lambda0(&s, &problem, 2);
        let (whole, _) = train_run(&s, &problem, 3.0, 2, 2, &l0);
        let mut saved: Vec<RunCheckpoint<f64>> = Vec::new();
        let mut save = |ck: &RunCheckpoint<f64>| {
            saved.push(ck.clone());
            false
        };
        let ckpt = Checkpoints {
            every: 4,
            resume: None,
            save: &mut save,
        };
        train_run_checkpointed(&s, &problem, (3.0, 2, 2), &l0, ckpt);
        assert_eq!(saved.len(), 3);
        for mut ck in saved {
            let at = ck.t;
            assert_eq!(ck.warm[0].len(), 2, "at {at}: the top two Ritz vectors");
            ck.warm[0].truncate(1);
            let mut never = |_: &RunCheckpoint<f64>| false;
            let ckpt = Checkpoints {
                every: 4,
                resume: Some(ck),
                save: &mut never,
            };
            let RunEnd::Finished(rest, _) =
                train_run_checkpointed(&s, &problem, (3.0, 2, 2), &l0, ckpt)
            else {
                panic!("not interrupted")
            };
            assert!(!same(&rest, &whole), "resumed at {at} without u2");
        }
    }

    #[test]
    fn a_run_continued_from_any_checkpoint_is_the_uninterrupted_run_bitwise() {
        check::<f32>(RUN, 2.0);
        check::<f64>(RUN, 2.0);
        let momentum = RUN.replace(
            "seeds = [2]",
            "seeds = [2]\noptimizer = \"momentum\"\nmomentum = 0.9\nwarmup_steps = 5",
        );
        check::<f32>(&momentum, 1.5);
        let adam = RUN
            .replace("seeds = [2]", "seeds = [2]\noptimizer = \"adam\"")
            .replace("every = 3", "every = 3\npreconditioned = true");
        check::<f32>(&adam, 8.0);
        let spectra = RUN.replace(
            "every = 3",
            "every = 1\nk = 2\noperator = \"both\"\nbottom = true",
        );
        check::<f32>(&spectra, 3.0);
        // A run that diverges after its last checkpoint.
        check::<f32>(RUN, 40.0);
        // The authors' protocol, whose measurements consume minibatches of the stream.
        let notebook = RUN.replace("every = 3", "every = 3\nprotocol = \"authors-notebook\"");
        check::<f32>(&notebook, 2.0);
        // Dense early, then log-spaced (0..=2, 3, 6, 10, 13), the loss at even steps too:
        // the checkpoints at 4, 8 and 12 fall between sharpness steps.
        let schedule = RUN
            .replace("seeds = [2]", "seeds = [2]\nloss_every = 2")
            .replace("every = 3", "dense_steps = 2\nper_decade = 4");
        check::<f32>(&schedule, 2.0);
        check::<f32>(
            &schedule.replace(
                "per_decade = 4",
                "per_decade = 4\nprotocol = \"authors-notebook\"",
            ),
            2.0,
        );
        // The loss only where the sharpness is (the schedule before `train.loss_every`).
        check::<f64>(
            &RUN.replace("seeds = [2]", "seeds = [2]\nloss_every = 0"),
            2.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::AdamParams;
    use crate::record::RunStatus;

    fn sample() -> (TaskKey, RunCheckpoint<f32>, Rule) {
        let key = TaskKey {
            c: 2.5,
            depth: 3,
            width: 8,
            seed: 1,
            sgd_seed: 2,
            axis_point: 3,
        };
        let rule = Rule::Adam(AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        });
        let params = vec![0.5f32, -1.25, f32::MIN_POSITIVE];
        let mut opt = OptimizerState::new(rule, 3, Some(&[1.0f32, 2.0, 3.0]));
        let mut p = params.clone();
        opt.step(&mut p, &[0.1, 0.2, 0.3], 0.01);
        let mut record = RunRecord::unmeasured(3.0, 0.5, RunStatus::Done, 4, 0);
        record.loss[1] = 0.25;
        let ck = RunCheckpoint {
            t: 2,
            params: p,
            opt,
            epochs: 1,
            cursor: 64,
            record,
            warm: [vec![vec![1.0, -0.0]], vec![], vec![vec![f64::NAN]], vec![]],
            seconds: 1.5,
        };
        (key, ck, rule)
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_what_is_not_theirs() {
        let (key, ck, rule) = sample();
        let bytes = encode("abc", &key, &ck);
        let back: RunCheckpoint<f32> = decode(&bytes, "abc", &key, rule).unwrap();
        assert_eq!(back.params, ck.params);
        assert_eq!(back.opt, ck.opt);
        assert_eq!(back.warm[0], ck.warm[0]);
        assert!(back.warm[2][0][0].is_nan());
        assert_eq!((back.t, back.epochs, back.cursor), (2, 1, 64));
        assert_eq!(back.record.loss[1], 0.25);
        let err = |r: Result<RunCheckpoint<f32>, String>| r.unwrap_err();
        assert!(err(decode(&bytes, "xyz", &key, rule)).contains("config abc"));
        let other = TaskKey { c: 2.0, ..key };
        assert!(err(decode(&bytes, "abc", &other, rule)).contains("not of"));
        let point = TaskKey {
            axis_point: 0,
            ..key
        };
        assert!(err(decode(&bytes, "abc", &point, rule)).contains("not of"));
        assert!(err(decode(b"garbage", "abc", &key, rule)).contains("bad magic"));
        // The earlier format (one warm vector for the k = 1 sharpness) is refused by name.
        let mut v1 = bytes.clone();
        v1[..8].copy_from_slice(b"SSCKPT01");
        let old = err(decode(&v1, "abc", &key, rule));
        assert!(old.contains("earlier sharpsweep (format SSCKPT01"), "{old}");
        let f64s = decode::<f64>(&bytes, "abc", &key, rule).unwrap_err();
        assert!(f64s.contains("precision f32"), "{f64s}");
        assert!(err(decode(&bytes, "abc", &key, Rule::Sgd)).contains("optimizer state"));
        // Every cut and every flipped byte is refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode::<f32>(&bytes[..cut], "abc", &key, rule).is_err());
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode::<f32>(&bad, "abc", &key, rule).is_err(), "byte {i}");
        }
    }
}
