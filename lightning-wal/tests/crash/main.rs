//! Crash suite of lightning-wal: several threads append with mixed durability, the power is
//! cut at a random I/O call, the machine "reboots" under a random crash mode, and the log
//! is reopened — twice.
//!
//! Checked every time: every record whose `Immediate` append returned is present; the
//! recovered log is a gap-free prefix in LSN order; no record is partially visible (each
//! payload is whole and identifies its thread and sequence number); each thread's records
//! appear in its own order; reopening again gives the same log.
//!
//! 1,000 scenarios by default; `LIGHTNING_TEST_SCALE=N` runs N times as many,
//! `LIGHTNING_TEST_SEED=S` starts at seed `S` to replay a failure.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_testkit::{Rng, run_seeds, scaled};
use lightning_wal::{Durability, Lsn, Record, Wal, WalOptions};

const DIR: &str = "db/wal";

/// Payload of thread `t`'s `seq`-th record: identity, length, body derived from them.
fn payload(seed: u64, t: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![t];
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend(Rng::new(seed ^ (u64::from(t) << 40) ^ u64::from(seq)).bytes(len));
    p
}

fn identify(seed: u64, r: &Record) -> Result<(u8, u32), String> {
    let (&t, rest) = r.payload.split_first().ok_or("empty payload")?;
    let seq = u32::from_le_bytes(
        rest.get(..4)
            .ok_or("short payload")?
            .try_into()
            .map_err(|_| "short")?,
    );
    if r.payload != payload(seed, t, seq, r.payload.len() - 5) {
        return Err(format!("record {} is partially visible or altered", r.lsn));
    }
    Ok((t, seq))
}

fn read_all(wal: &Wal) -> Result<Vec<Record>, String> {
    wal.read_from(Lsn::new(1))
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// The recovered log is gap-free, whole, in each thread's order, and holds every
/// acknowledged record where it was acknowledged.
fn verify(
    seed: u64,
    mode: CrashMode,
    records: &[Record],
    acked: &BTreeMap<Lsn, (u8, u32)>,
) -> Result<(), String> {
    let mut identities = HashSet::new();
    let mut last_seq: BTreeMap<u8, u32> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.lsn != Lsn::new(i as u64 + 1) {
            return Err(format!("{mode:?}: gap: position {i} holds LSN {}", r.lsn));
        }
        let (t, seq) = identify(seed, r)?;
        if !identities.insert((t, seq)) {
            return Err(format!("{mode:?}: thread {t} record {seq} appears twice"));
        }
        if last_seq.get(&t).is_some_and(|&prev| prev >= seq) {
            return Err(format!(
                "{mode:?}: thread {t} records out of order at LSN {}",
                r.lsn
            ));
        }
        last_seq.insert(t, seq);
        if let Some(&(at, aseq)) = acked.get(&r.lsn)
            && (at, aseq) != (t, seq)
        {
            return Err(format!(
                "{mode:?}: LSN {} holds another record than was acknowledged",
                r.lsn
            ));
        }
    }
    for (lsn, who) in acked {
        if lsn.get() > records.len() as u64 {
            return Err(format!(
                "{mode:?}: acknowledged record {lsn} {who:?} lost (log ends at {})",
                records.len()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    acked: u64,
    recovered: u64,
    /// Scenarios where records after the last acknowledged one survived the cut.
    kept_unacked: u64,
    torn_tails: u64,
}

fn scenario(seed: u64, tally: &Mutex<Tally>) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let opts = WalOptions {
        segment_size: [4096, 8192, 65536][usize::try_from(rng.below(3)).unwrap()],
        preallocate: rng.chance(50),
        flush_interval: if rng.chance(30) {
            Duration::from_micros(200)
        } else {
            Duration::ZERO
        },
        buffer_limit: 2048,
        ..WalOptions::default()
    };
    let threads = 2 + rng.below(3);
    let per_thread = 5 + rng.below(20);
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth: rng.below(threads * per_thread * 3),
        permanent: true,
        kind: FaultKind::PowerCut,
    });

    let acked: Mutex<BTreeMap<Lsn, (u8, u32)>> = Mutex::new(BTreeMap::new());
    if let Ok(wal) = Wal::open(vfs.clone(), Path::new(DIR), opts.clone()) {
        std::thread::scope(|s| {
            for t in 0..threads {
                let (wal, acked) = (&wal, &acked);
                let mut trng = Rng::new(seed * 31 + t);
                s.spawn(move || {
                    let t = u8::try_from(t).unwrap();
                    for seq in 0..u32::try_from(per_thread).unwrap() {
                        let max_len = if trng.chance(10) { 6000 } else { 300 };
                        let len = usize::try_from(trng.below(max_len)).unwrap();
                        let durability = match trng.below(4) {
                            0 => Durability::Eventual,
                            1 => Durability::None,
                            _ => Durability::Immediate,
                        };
                        match wal.append(7, &payload(seed, t, seq, len), durability) {
                            Ok(a) if durability == Durability::Immediate => {
                                acked.lock().unwrap().insert(a.lsn(), (t, seq));
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        // The machine dies here: no clean shutdown reaches the device.
        drop(wal);
    }
    let mode = CrashMode::from_index(rng.next_u64());
    vfs.crash(mode);

    let acked = acked.into_inner().unwrap();
    let reopen = || {
        Wal::open(vfs.clone(), Path::new(DIR), opts.clone())
            .map_err(|e| format!("{mode:?}: reopen: {e}"))
    };
    let wal = reopen()?;
    let records = read_all(&wal)?;
    if wal.recovery().torn_tail.is_some() {
        tally.lock().unwrap().torn_tails += 1;
    }
    drop(wal);
    let again = read_all(&reopen()?)?;
    if again != records {
        return Err(format!("{mode:?}: reopening twice gave a different log"));
    }
    verify(seed, mode, &records, &acked)?;
    let mut tally = tally.lock().unwrap();
    tally.acked += acked.len() as u64;
    tally.recovered += records.len() as u64;
    tally.kept_unacked +=
        u64::from(records.len() as u64 > acked.keys().last().map_or(0, |l| l.get()));
    Ok(())
}

#[test]
fn power_cuts_under_concurrent_appends_lose_nothing_acknowledged() {
    let tally = Mutex::new(Tally::default());
    let ran = run_seeds("wal crash", scaled(1000), |seed| scenario(seed, &tally)).scenarios;
    let tally = tally.into_inner().unwrap();
    println!("wal crash: {ran} scenarios, {tally:?}");
    assert!(ran >= 1000);
    assert!(
        tally.acked > ran,
        "scenarios must acknowledge records before the cut: {tally:?}"
    );
    assert!(
        tally.torn_tails > ran / 100,
        "cuts must land mid-write often enough: {tally:?}"
    );
}
