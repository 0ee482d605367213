//! Crash suite of lightning-wal: several threads append with mixed durability, then either
//! the power is cut at a random I/O call, or a random write or fsync fails and the process
//! restarts (reopens the log without a power cut), appends more and then loses power. The
//! machine "reboots" under a random crash mode and the log is reopened.
//!
//! Checked every time: every record whose `Immediate` append returned is present; the
//! recovered log is a gap-free prefix in LSN order; no record is partially visible (each
//! payload is whole and identifies its thread and sequence number); each thread's records
//! appear in its own order; a second power cut right after recovery, before any append,
//! changes nothing; reopening again gives the same log. In some scenarios a record an
//! fsync had made durable, in the last segment, then rots: opening must fail with a
//! corruption error naming its segment and offset, never take it for a torn tail. Across
//! the run the suite checks that its cuts really dropped unsynced writes and lost
//! written-but-unacknowledged records, and that failed fsyncs were followed by recovery.
//!
//! 1,000 scenarios by default; `LIGHTNING_TEST_SCALE=N` runs N times as many,
//! `LIGHTNING_TEST_SEED=S` starts at seed `S` to replay a failure.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_page::vfs::{CrashMode, CrashReport, CrashVfs, Fault, FaultKind, FaultOp, Vfs};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};
use lightning_wal::{Durability, Error, Lsn, Record, Wal, WalOptions};

mod archive;

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
    /// Scenarios whose cut lost records that had been appended (their append returned)
    /// but were not acknowledged durable.
    lost_unacked: u64,
    /// Power cuts that dropped some of the operations pending at the time.
    cuts_dropping_ops: u64,
    torn_tails: u64,
    /// Scenarios where a write or fsync failed and the log was reopened in-process.
    failed_io_restarts: u64,
    /// Of those, restarts whose reopened log was then appended to and acknowledged.
    acked_after_restart: u64,
    /// Durable records damaged on purpose and reported as corruption.
    rot_detected: u64,
    /// Acknowledged large records (see `LARGE`).
    large_acked: u64,
}

/// What one run of appending threads did.
#[derive(Default)]
struct Appends {
    acked: BTreeMap<Lsn, (u8, u32)>,
    /// The highest LSN whose append returned, whatever its durability.
    last_returned: Lsn,
    /// Acknowledged records of at least `LARGE` bytes (the log writes those from their
    /// own buffer, in three writes: header, payload, padding).
    large_acked: u64,
}

/// A large record's length: past the size from which the log writes a payload from its
/// own buffer (256 KiB).
const LARGE: u64 = 300 << 10;

/// `threads` threads append `per_thread` records each, with mixed durability and sizes,
/// until the first error; thread ids start at `first_thread`.
fn append_concurrently(
    wal: &Wal,
    seed: u64,
    first_thread: u64,
    threads: u64,
    per_thread: u64,
) -> Appends {
    let out = Mutex::new(Appends::default());
    std::thread::scope(|s| {
        for t in first_thread..first_thread + threads {
            let out = &out;
            let mut trng = Rng::new(seed * 31 + t);
            s.spawn(move || {
                let t = u8::try_from(t).unwrap();
                for seq in 0..u32::try_from(per_thread).unwrap() {
                    let len = if trng.chance(1) {
                        LARGE
                    } else {
                        let max_len = if trng.chance(10) { 6000 } else { 300 };
                        trng.below(max_len)
                    };
                    let len = usize::try_from(len).unwrap();
                    let durability = match trng.below(4) {
                        0 => Durability::Eventual,
                        1 => Durability::None,
                        _ => Durability::Immediate,
                    };
                    let Ok(a) = wal.append(7, &payload(seed, t, seq, len), durability) else {
                        return;
                    };
                    let mut out = out.lock().unwrap();
                    out.last_returned = out.last_returned.max(a.lsn());
                    if durability == Durability::Immediate {
                        out.acked.insert(a.lsn(), (t, seq));
                        out.large_acked += u64::from(len as u64 >= LARGE);
                    }
                }
            });
        }
    });
    out.into_inner().unwrap()
}

fn power_cut_at(vfs: &CrashVfs, nth: u64) {
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
}

/// The frames of one segment up to the log's last record: (offset, LSN, synced-through,
/// bytes covered by the checksum). The layout is `docs/format/wal.md`'s.
fn frames(bytes: &[u8], first: Lsn, last: Lsn) -> Vec<(u64, Lsn, Lsn, u64)> {
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let mut out = Vec::new();
    let (mut at, mut lsn) = (32usize, first);
    while lsn <= last && at + 40 <= bytes.len() {
        let len = u64::from(u32::from_le_bytes(
            bytes[at + 4..at + 8].try_into().unwrap(),
        ));
        assert_eq!(Lsn::new(u64_at(at + 8)), lsn, "frame walk out of step");
        out.push((at as u64, lsn, Lsn::new(u64_at(at + 16)), 40 + len));
        at += usize::try_from((40 + len).div_ceil(8) * 8).unwrap();
        lsn = lsn.next();
    }
    out
}

/// Rots one byte of a record in the last segment that a later frame there says was
/// durable, and demands that opening reports exactly that record. `false` if the last
/// segment holds no such record.
fn rot_a_durable_record(
    vfs: &CrashVfs,
    opts: &WalOptions,
    rng: &mut Rng,
    last: Lsn,
) -> Result<bool, String> {
    let Some(segment) = vfs.list(Path::new(DIR)).unwrap().into_iter().max() else {
        return Ok(false);
    };
    let first: u64 = segment
        .file_stem()
        .and_then(|s| s.to_str()?.parse().ok())
        .ok_or("segment name")?;
    let bytes = vfs.contents(&segment).ok_or("segment vanished")?;
    let frames = frames(&bytes, Lsn::new(first), last);
    let vouched: Vec<_> = frames
        .iter()
        .filter(|(_, lsn, _, _)| {
            frames
                .iter()
                .any(|(_, l, synced, _)| l > lsn && synced >= lsn)
        })
        .collect();
    if vouched.is_empty() {
        return Ok(false);
    }
    let &(offset, lsn, _, covered) =
        vouched[usize::try_from(rng.below(vouched.len() as u64)).unwrap()];
    let at = offset + 4 + rng.below(covered - 4);
    let old = bytes[usize::try_from(at).unwrap()];
    vfs.corrupt(&segment, at, &[old ^ (1 << rng.below(8))])
        .map_err(|e| e.to_string())?;
    match Wal::open(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()) {
        Err(Error::Corruption {
            file, offset: got, ..
        }) if file == segment && got == offset => Ok(true),
        Err(e) => Err(format!(
            "record {lsn} rotted at byte {at}: wrong error {e} (expected corruption of {} at {offset})",
            segment.display()
        )),
        Ok(wal) => Err(format!(
            "record {lsn}, durable, rotted at byte {at} of {} and the log opened, ending at {}",
            segment.display(),
            wal.recovery().last_lsn
        )),
    }
}

fn options(rng: &mut Rng) -> WalOptions {
    WalOptions {
        segment_size: [4096, 8192, 65536][usize::try_from(rng.below(3)).unwrap()],
        preallocate: rng.chance(50),
        flush_interval: if rng.chance(30) {
            Duration::from_micros(200)
        } else {
            Duration::ZERO
        },
        buffer_limit: 2048,
        ..WalOptions::default()
    }
}

fn scenario(seed: u64, tally: &Mutex<Tally>) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let opts = options(&mut rng);
    let dir = Path::new(DIR);
    let threads = 2 + rng.below(3);
    let per_thread = 5 + rng.below(20);
    // Most scenarios lose power at a random call; the rest see a write or fsync fail, as
    // a dying disk does, and restart the process before the power goes.
    let failed_io = rng.chance(30);
    if failed_io {
        vfs.inject(Fault {
            op: if rng.chance(75) {
                FaultOp::Sync
            } else {
                FaultOp::Write
            },
            nth: rng.below(threads * per_thread),
            permanent: rng.chance(50),
            kind: FaultKind::Io,
        });
    } else {
        power_cut_at(&vfs, rng.below(threads * per_thread * 3));
    }

    let mut run = Appends::default();
    if let Ok(wal) = Wal::open(vfs.clone(), dir, opts.clone()) {
        run = append_concurrently(&wal, seed, 0, threads, per_thread);
        // The process dies here: no clean shutdown reaches the device.
        drop(wal);
    }
    let mut acked = run.acked;
    let mut large_acked = run.large_acked;
    let mut restarted = false;
    if failed_io {
        // The process restarts without a power cut: the OS may still hold pages whose
        // fsync failed, readable but never to reach the disk. Recovery must not trust
        // them; new records go in and are acknowledged; then the power goes.
        vfs.clear_faults();
        let wal = Wal::open(vfs.clone(), dir, opts.clone())
            .map_err(|e| format!("reopen after a failed write or fsync: {e}"))?;
        power_cut_at(&vfs, rng.below(threads * 20));
        let more = append_concurrently(&wal, seed, 10, threads, 5);
        drop(wal);
        restarted = true;
        tally.lock().unwrap().acked_after_restart += u64::from(!more.acked.is_empty());
        acked.extend(more.acked);
        large_acked += more.large_acked;
    }
    let mode = CrashMode::from_index(rng.next_u64());
    let report = vfs.crash(mode);

    let reopen =
        || Wal::open(vfs.clone(), dir, opts.clone()).map_err(|e| format!("{mode:?}: reopen: {e}"));
    let wal = reopen()?;
    let records = read_all(&wal)?;
    let torn = wal.recovery().torn_tail.is_some();
    let last = wal.recovery().last_lsn;
    drop(wal);
    verify(seed, mode, &records, &acked)?;
    // Recovery's own writes are durable once open returns: a second cut now, before any
    // append, must find the same log.
    let second = CrashMode::from_index(rng.next_u64());
    let second_report = vfs.crash(second);
    let again = read_all(&reopen()?)?;
    if again != records {
        return Err(format!(
            "{mode:?}: a {second:?} cut right after recovery changed the log ({} records, then {})",
            records.len(),
            again.len()
        ));
    }
    let again = read_all(&reopen()?)?;
    if again != records {
        return Err(format!("{mode:?}: reopening twice gave a different log"));
    }
    let rotted = rng.chance(25) && rot_a_durable_record(&vfs, &opts, &mut rng, last)?;

    let mut tally = tally.lock().unwrap();
    tally.acked += acked.len() as u64;
    tally.recovered += records.len() as u64;
    let last_acked = acked.keys().last().map_or(0, |l| l.get());
    tally.kept_unacked += u64::from(records.len() as u64 > last_acked);
    tally.lost_unacked += u64::from(!restarted && (records.len() as u64) < run.last_returned.get());
    tally.cuts_dropping_ops += u64::from(dropped_some(report));
    tally.torn_tails += u64::from(torn);
    tally.failed_io_restarts += u64::from(restarted);
    tally.rot_detected += u64::from(rotted);
    tally.large_acked += large_acked;
    Ok(Outcome::crash(report.pending, report.kept)
        .and(Outcome::crash(second_report.pending, second_report.kept)))
}

fn dropped_some(report: CrashReport) -> bool {
    report.kept < report.pending
}

#[test]
fn power_cuts_under_concurrent_appends_lose_nothing_acknowledged() {
    let tally = Mutex::new(Tally::default());
    let run = run_seeds("wal crash", scaled(1000), |seed| scenario(seed, &tally));
    let ran = run.scenarios;
    let tally = tally.into_inner().unwrap();
    println!("{run}; {tally:?}");
    assert!(ran >= 1000);
    assert!(
        tally.acked > ran,
        "scenarios must acknowledge records before the cut: {tally:?}"
    );
    assert!(
        tally.torn_tails > ran / 100,
        "cuts must land mid-write often enough: {tally:?}"
    );
    run.assert_dropping(5);
    assert!(
        tally.cuts_dropping_ops > ran / 20 && tally.lost_unacked > ran / 20,
        "cuts must drop unsynced writes and lose unacknowledged records: {tally:?}"
    );
    assert!(
        tally.failed_io_restarts > ran / 5 && tally.acked_after_restart > ran / 10,
        "failed writes and fsyncs must be followed by restarts that append: {tally:?}"
    );
    assert!(
        tally.rot_detected > ran / 20,
        "durable records must rot in the last segment often enough: {tally:?}"
    );
    assert!(
        tally.large_acked > ran / 10,
        "large records (written from their own buffer) must be acknowledged often enough: {tally:?}"
    );
}

/// A log of `records` durable records after a power cut, as a fresh file system.
fn durable_log(seed: u64, opts: &WalOptions) -> (Arc<CrashVfs>, u64) {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let records = 3 + rng.below(40);
    let wal = Wal::open(vfs.clone(), Path::new(DIR), opts.clone()).unwrap();
    for seq in 0..records {
        let len = usize::try_from(20 + rng.below(400)).unwrap();
        wal.append(
            1,
            &payload(seed, 0, u32::try_from(seq).unwrap(), len),
            Durability::Immediate,
        )
        .unwrap();
    }
    drop(wal);
    vfs.crash(CrashMode::DropUnsynced);
    (vfs, records)
}

/// Opening rewrites the last segment's valid bytes (ADR 005, point 3). A power cut inside
/// that rewrite, at every I/O call of the open, in the crash modes that tear writes, must
/// leave every record that was durable before it: the rewrite goes to a new file that
/// replaces the segment, never over durable bytes.
#[test]
fn a_power_cut_while_the_log_reopens_keeps_every_durable_record() {
    let opts = WalOptions {
        segment_size: 8192,
        ..WalOptions::default()
    };
    let mut cuts = 0;
    let mut torn = 0;
    for seed in 0..scaled(6) {
        // Count the calls of a clean open, then cut at each of them.
        let (vfs, _) = durable_log(seed, &opts);
        let before = vfs.io_calls();
        drop(Wal::open(vfs.clone(), Path::new(DIR), opts.clone()).unwrap());
        let calls = vfs.io_calls() - before;
        for nth in 0..calls {
            for mode in [CrashMode::TornWrite { garbage: true }, CrashMode::Arbitrary] {
                let (vfs, records) = durable_log(seed, &opts);
                power_cut_at(&vfs, nth);
                drop(Wal::open(vfs.clone(), Path::new(DIR), opts.clone()));
                let report = vfs.crash(mode);
                cuts += 1;
                torn += u64::from(dropped_some(report));
                let wal = Wal::open(vfs.clone(), Path::new(DIR), opts.clone())
                    .unwrap_or_else(|e| panic!("seed {seed}, cut at call {nth} ({mode:?}): {e}"));
                let got = read_all(&wal).unwrap();
                assert_eq!(
                    got.len() as u64,
                    records,
                    "seed {seed}, cut at call {nth} ({mode:?})"
                );
                for r in &got {
                    identify(seed, r).unwrap();
                }
            }
        }
    }
    println!("{cuts} cuts inside a reopen, {torn} of them dropping or tearing writes");
    assert!(
        cuts > 50 && torn > cuts / 10,
        "{cuts} cuts, {torn} dropping"
    );
}
