//! The database through power cuts: seeded random workloads over several keyspaces and
//! threads, cut at a random I/O call (inside commits, checkpoints, GC, keyspace creation)
//! in every crash mode, sometimes cut again while recovery replays; then reopened and
//! checked.
//!
//! Beside the workers a thread takes checkpoints, runs GC, and creates, writes and drops a
//! scratch keyspace. Each transaction inserts keys of its own (never rewritten), spread over the keyspaces,
//! or deletes every key of an earlier transaction of its thread and writes a marker. After
//! each cut:
//! - no transaction is partly there (all of its keys, or none);
//! - every acknowledged `Immediate` commit is there (or was deleted by a later commit that
//!   is there);
//! - the commits that are there are a prefix of the acknowledged ones in timestamp order:
//!   `Eventual` and `None` commits go missing only as a suffix;
//! - `check()` finds every tree sound and no page leaked or reachable twice;
//! - while the workload ran, a reader never saw a transaction partly.
//!
//! 300 scenarios by default (`LIGHTNING_TEST_SCALE=N` for N times as many,
//! `LIGHTNING_TEST_SEED=S` to start at seed S).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lightning_db::page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_db::{Database, Durability, Isolation, Keyspace, Options, TxOptions};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};

const KEYSPACES: [&str; 3] = ["accounts", "orders", "events"];
const DIR: &str = "/chaos";

fn options(rng: &mut Rng) -> Options {
    Options {
        page_size: 4096,
        // Small enough that eviction writes pages between checkpoints.
        cache_bytes: [256 << 10, 256 << 10, 4 << 20][usize::try_from(rng.below(3)).unwrap_or(0)],
        wal_segment_bytes: 64 << 10,
        checkpoint_interval_ms: 0,
        flush_interval_ms: 1 + rng.below(5),
        ..Options::default()
    }
}

/// A transaction the workload committed (or tried to).
#[derive(Debug, Clone)]
struct Txn {
    /// Keys it inserted (keyspace index, key).
    keys: Vec<(usize, Vec<u8>)>,
    /// The transaction whose keys it deleted, and its marker key.
    deletes: Option<(u64, Vec<u8>)>,
}

/// An acknowledged commit.
#[derive(Debug, Clone, Copy)]
struct Ack {
    ts: u64,
    durability: Durability,
}

#[derive(Debug, Default)]
struct Log {
    /// Every transaction begun, by id (thread * 1e6 + sequence).
    txns: BTreeMap<u64, Txn>,
    acked: BTreeMap<u64, Ack>,
}

fn key(id: u64, i: usize) -> Vec<u8> {
    format!("t{id:08}-{i}").into_bytes()
}

fn marker(id: u64) -> Vec<u8> {
    format!("d{id:08}").into_bytes()
}

fn value(id: u64, i: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = format!("{id}:{i}:").into_bytes();
    v.resize(usize::try_from(10 + rng.below(900)).unwrap_or(10), b'v');
    v
}

/// One worker: transactions until `count` or the first error (the power is out).
fn worker(
    db: &Database,
    handles: &[Keyspace],
    thread: u64,
    seed: u64,
    count: u64,
    log: &Mutex<Log>,
    only: Option<Durability>,
) {
    let mut rng = Rng::new(seed ^ (thread << 32));
    let mut mine: Vec<u64> = Vec::new();
    for seq in 0..count {
        let id = thread * 1_000_000 + seq;
        let durability = only.unwrap_or(match rng.below(10) {
            0..=5 => Durability::Immediate,
            6..=8 => Durability::Eventual,
            _ => Durability::None,
        });
        let opts = TxOptions {
            isolation: if rng.chance(30) {
                Isolation::Serializable
            } else {
                Isolation::Snapshot
            },
            pessimistic: rng.chance(30),
            durability: Some(durability),
        };
        let Ok(mut tx) = db.begin_write_with(opts) else {
            return;
        };
        let deleting = !mine.is_empty() && rng.chance(20);
        let mut txn = Txn {
            keys: Vec::new(),
            deletes: None,
        };
        let ok = if deleting {
            let victim = mine.remove(usize::try_from(rng.below(mine.len() as u64)).unwrap_or(0));
            let victim_keys = lock(log).txns[&victim].keys.clone();
            txn.deletes = Some((victim, marker(id)));
            victim_keys
                .iter()
                .all(|(ks, k)| tx.delete(&handles[*ks], k).is_ok())
                && tx.put(&handles[0], &marker(id), b"deleted").is_ok()
        } else {
            let n = 1 + usize::try_from(rng.below(6)).unwrap_or(0);
            (0..n).all(|i| {
                let ks = i % handles.len();
                txn.keys.push((ks, key(id, i)));
                tx.put(&handles[ks], &key(id, i), &value(id, i, &mut rng))
                    .is_ok()
            })
        };
        lock(log).txns.insert(id, txn);
        if !ok {
            return;
        }
        match tx.commit() {
            Ok(c) => {
                lock(log).acked.insert(
                    id,
                    Ack {
                        ts: c.ts.get(),
                        durability,
                    },
                );
                if !deleting {
                    mine.push(id);
                }
            }
            Err(e) if e.is_retryable() => {}
            Err(_) => return,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks one snapshot: no transaction partly there. Returns the keys present per
/// keyspace.
fn present(db: &Database) -> Result<Vec<BTreeSet<Vec<u8>>>, String> {
    let snap = db.begin_read().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for name in KEYSPACES {
        let ks = db
            .open_keyspace(name)
            .map_err(|e| format!("keyspace {name}: {e}"))?;
        let keys: BTreeSet<Vec<u8>> = snap
            .range::<&[u8]>(&ks, ..)
            .map_err(|e| e.to_string())?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("scan of {name}: {e}"))?;
        out.push(keys);
    }
    Ok(out)
}

/// Whether transaction `txn` is there: `Some(true)` all of it, `Some(false)` none, `None`
/// part of it.
fn there(txn: &Txn, keys: &[BTreeSet<Vec<u8>>]) -> Option<bool> {
    let mut parts: Vec<bool> = txn
        .keys
        .iter()
        .map(|(ks, k)| keys[*ks].contains(k))
        .collect();
    if let Some((_, m)) = &txn.deletes {
        parts.push(keys[0].contains(m));
    }
    if parts.iter().all(|p| *p) {
        Some(true)
    } else if parts.iter().all(|p| !*p) {
        Some(false)
    } else {
        None
    }
}

fn verify(db: &Database, log: &Log) -> Result<u64, String> {
    let keys = present(db)?;
    // Inserting transactions deleted by a delete that is there.
    let mut deleted = BTreeSet::new();
    let mut state = BTreeMap::new();
    for (id, txn) in &log.txns {
        let s = there(txn, &keys)
            .ok_or_else(|| format!("transaction {id} is partly there: {txn:?}"))?;
        state.insert(*id, s);
        if s && let Some((victim, _)) = txn.deletes {
            deleted.insert(victim);
        }
    }
    let effective = |id: &u64| state[id] || deleted.contains(id);
    for (id, ack) in &log.acked {
        if ack.durability == Durability::Immediate && !effective(id) {
            return Err(format!(
                "acknowledged Immediate commit {id} (ts {}) is missing",
                ack.ts
            ));
        }
    }
    // Present commits are a prefix of the acknowledged ones in timestamp order.
    let by_ts: BTreeMap<u64, u64> = log.acked.iter().map(|(id, a)| (a.ts, *id)).collect();
    let mut gap: Option<u64> = None;
    for (ts, id) in &by_ts {
        match (effective(id), gap) {
            (false, None) => gap = Some(*ts),
            (true, Some(missing)) => {
                return Err(format!(
                    "commit {id} (ts {ts}) is there but the acknowledged commit at ts {missing} \
                     before it is not: not a prefix"
                ));
            }
            _ => {}
        }
    }
    let problems = db.check().map_err(|e| format!("check: {e}"))?;
    if !problems.is_empty() {
        return Err(format!("check found problems: {problems:?}"));
    }
    Ok(state.values().filter(|s| **s).count() as u64)
}

#[derive(Debug, Default)]
struct Tally {
    acked: AtomicU64,
    present: AtomicU64,
    recovery_cuts: AtomicU64,
    torn_reads: AtomicU64,
}

fn open(vfs: &Arc<CrashVfs>, opts: &Options) -> lightning_db::Result<Database> {
    Database::open_with_vfs(vfs.clone(), Path::new(DIR), opts.clone())
}

/// The workers, a checkpointer/GC thread and a reader, until the workers stop.
fn run_threads(
    db: &Database,
    seed: u64,
    threads: u64,
    per_thread: u64,
    log: &Mutex<Log>,
    tally: &Tally,
) {
    let handles: Option<Vec<Keyspace>> = KEYSPACES.iter().map(|n| db.keyspace(n).ok()).collect();
    if let Some(handles) = handles {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let handles = &handles;
                    s.spawn(move || worker(db, handles, t, seed, per_thread, log, None))
                })
                .collect();
            // Checkpoints and GC while the workers run.
            s.spawn(|| {
                let mut r = Rng::new(seed ^ 0x00c0_ffee);
                while !done.load(Ordering::Acquire) {
                    // Failures are the power cut's; the workers see them too.
                    let _ignored = match r.below(5) {
                        0 | 1 => db.checkpoint().map(|()| 0),
                        2 | 3 => db.gc(),
                        // A keyspace created, written and dropped (each durable by a
                        // checkpoint of its own).
                        _ => db
                            .keyspace("scratch")
                            .and_then(|ks| db.put(&ks, b"k", b"v"))
                            .and_then(|_| db.drop_keyspace("scratch"))
                            .map(|()| 0),
                    };
                    std::thread::yield_now();
                }
            });
            // A reader: every snapshot shows whole transactions.
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    if let Ok(keys) = present(db) {
                        let log = lock(log);
                        if log
                            .acked
                            .keys()
                            .any(|id| there(&log.txns[id], &keys).is_none())
                        {
                            tally.torn_reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::yield_now();
                }
            });
            for w in workers {
                drop(w.join());
            }
            done.store(true, Ordering::Release);
        });
    }
}

fn scenario(seed: u64, tally: &Tally) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let opts = options(&mut rng);
    let threads = 1 + rng.below(3);
    let per_thread = 10 + rng.below(50);
    let log = Mutex::new(Log::default());
    // The cut comes at a random call from the very start (inside creation, the first
    // checkpoints, the workload, or the close).
    let nth = rng.below(400 + threads * per_thread * 16);
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    if let Ok(db) = open(&vfs, &opts) {
        run_threads(&db, seed, threads, per_thread, &log, tally);
        // If the cut did not come yet, it comes in a burst of non-durable commits large
        // enough to evict dirty pages (written, not synced), or while closing.
        if vfs.io_calls() <= nth && rng.chance(70) {
            if let Some(handles) = KEYSPACES
                .iter()
                .map(|n| db.keyspace(n).ok())
                .collect::<Option<Vec<_>>>()
            {
                worker(
                    &db,
                    &handles,
                    9,
                    seed,
                    40 + rng.below(80),
                    &log,
                    Some(Durability::None),
                );
            }
            vfs.inject(Fault {
                op: FaultOp::Any,
                nth: rng.below(8),
                permanent: true,
                kind: FaultKind::PowerCut,
            });
        }
        drop(db);
    }
    let report = vfs.crash(CrashMode::from_index(rng.next_u64()));
    let mut outcome = Outcome::crash(report.pending, report.kept);
    // Sometimes the power goes again while recovery replays.
    if rng.chance(30) {
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: rng.below(200),
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        if let Ok(db) = open(&vfs, &opts) {
            drop(db);
        }
        let again = vfs.crash(CrashMode::from_index(rng.next_u64()));
        outcome = outcome.and(Outcome::crash(again.pending, again.kept));
        tally.recovery_cuts.fetch_add(1, Ordering::Relaxed);
    }
    let log = log
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let db = match open(&vfs, &opts) {
        Ok(db) => db,
        // Cut before the database's creation finished: nothing was ever acknowledged.
        Err(_) if log.acked.is_empty() && log.txns.is_empty() => return Ok(outcome),
        Err(e) => return Err(format!("reopen after the cut: {e}")),
    };
    if db.keyspaces().len() < KEYSPACES.len() {
        if log.txns.is_empty() {
            return Ok(outcome);
        }
        return Err(format!(
            "keyspaces {:?} after the cut, with transactions begun",
            db.keyspaces()
        ));
    }
    let present = verify(&db, &log)?;
    tally
        .acked
        .fetch_add(log.acked.len() as u64, Ordering::Relaxed);
    tally.present.fetch_add(present, Ordering::Relaxed);
    // The database takes more work after recovery.
    let ks = db.open_keyspace(KEYSPACES[1]).map_err(|e| e.to_string())?;
    db.put(&ks, b"after", b"recovery")
        .map_err(|e| format!("a commit after recovery: {e}"))?;
    Ok(outcome)
}

#[test]
fn the_database_survives_power_cuts_in_every_mode() {
    let tally = Tally::default();
    let count = scaled(300);
    let run = run_seeds("database chaos", count, |seed| scenario(seed, &tally));
    println!("{run}; {tally:?}");
    assert_eq!(run.scenarios, count, "{run}");
    assert_eq!(
        tally.torn_reads.load(Ordering::Relaxed),
        0,
        "a reader saw a transaction partly"
    );
    assert!(
        tally.acked.load(Ordering::Relaxed) > count * 5,
        "commits before the cuts: {tally:?}"
    );
    assert!(
        tally.recovery_cuts.load(Ordering::Relaxed) > count / 10,
        "{tally:?}"
    );
    run.assert_dropping(30);
}
