//! Isolation through the public API, with durable commits, at every level and in both
//! modes (optimistic, pessimistic): the classic anomalies as scripted interleavings, and
//! randomized concurrent histories checked against the commit timestamps.
//!
//! The history checker knows each transaction's snapshot (`read_ts`) and, for commits,
//! its commit timestamp, so the state any timestamp saw is the committed writes up to it
//! in timestamp order. Every transaction, committed or not, must read its snapshot (and
//! its own writes); no two committed transactions that overlap in time may write the same
//! key (first committer wins); and a committed serializable transaction must read what was
//! there just before its commit timestamp — the serial order is the timestamp order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lightning_db::page::vfs::MemVfs;
use lightning_db::{Database, Error, Isolation, Keyspace, Options, TxOptions};
use lightning_testkit::{Rng, scaled};

fn open() -> Database {
    Database::open_with_vfs(
        Arc::new(MemVfs::new()),
        Path::new("/iso"),
        Options {
            page_size: 4096,
            cache_bytes: 4 << 20,
            checkpoint_interval_ms: 0,
            wal_segment_bytes: 256 << 10,
            // Scripted pessimistic conflicts wait for this, then fail retryably.
            lock_timeout_ms: 20,
            ..Options::default()
        },
    )
    .unwrap()
}

const MODES: [(Isolation, bool); 4] = [
    (Isolation::Snapshot, false),
    (Isolation::Snapshot, true),
    (Isolation::Serializable, false),
    (Isolation::Serializable, true),
];

fn opts(level: Isolation, pessimistic: bool) -> TxOptions {
    TxOptions {
        isolation: level,
        pessimistic,
        durability: None,
    }
}

/// x = 10, y = 20.
fn setup() -> (Database, Keyspace) {
    let db = open();
    let ks = db.keyspace("k").unwrap();
    db.put(&ks, b"x", b"10").unwrap();
    db.put(&ks, b"y", b"20").unwrap();
    (db, ks)
}

fn val(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn lost_updates_are_prevented_at_every_level_and_mode() {
    for (level, pessimistic) in MODES {
        let (db, ks) = setup();
        let mut t1 = db.begin_write_with(opts(level, pessimistic)).unwrap();
        let mut t2 = db.begin_write_with(opts(level, pessimistic)).unwrap();
        let a = t1.get_for_update(&ks, b"x");
        let b = t2.get_for_update(&ks, b"x");
        // Pessimistic: the second lock waits, times out, and ends t2.
        let r1 = a
            .and_then(|_| t1.put(&ks, b"x", b"11"))
            .and_then(|()| t1.commit().map(|_| ()));
        let r2 = b
            .and_then(|_| t2.put(&ks, b"x", b"12"))
            .and_then(|()| t2.commit().map(|_| ()));
        assert!(
            r1.is_ok() != r2.is_ok(),
            "{level:?} pessimistic={pessimistic}: exactly one of two read-modify-writes commits ({r1:?}, {r2:?})"
        );
        let err = r1.err().or(r2.err()).unwrap();
        assert!(err.is_retryable(), "{err}");
    }
}

#[test]
fn dirty_reads_and_non_repeatable_reads_never_happen() {
    for (level, pessimistic) in MODES {
        let (db, ks) = setup();
        let mut reader = db.begin_write_with(opts(level, pessimistic)).unwrap();
        assert_eq!(val(reader.get(&ks, b"x").unwrap()), Some("10".into()));
        let mut writer = db.begin_write().unwrap();
        writer.put(&ks, b"x", b"99").unwrap();
        // G1a/G1b: uncommitted (and later aborted) writes are invisible.
        assert_eq!(val(reader.get(&ks, b"y").unwrap()), Some("20".into()));
        drop(writer);
        db.put(&ks, b"x", b"11").unwrap();
        // A committed change after the snapshot is invisible too (repeatable read).
        assert_eq!(val(reader.get(&ks, b"x").unwrap()), Some("10".into()));
        let snap = db.begin_read().unwrap();
        assert_eq!(val(snap.get(&ks, b"x").unwrap()), Some("11".into()));
    }
}

#[test]
fn write_skew_is_allowed_by_snapshot_and_refused_by_serializable() {
    for (level, pessimistic) in MODES {
        let (db, ks) = setup();
        let mut t1 = db.begin_write_with(opts(level, pessimistic)).unwrap();
        let mut t2 = db.begin_write_with(opts(level, pessimistic)).unwrap();
        let r = (|| {
            t1.get(&ks, b"x")?;
            t1.get(&ks, b"y")?;
            t2.get(&ks, b"x")?;
            t2.get(&ks, b"y")?;
            t1.put(&ks, b"x", b"-1")?;
            t2.put(&ks, b"y", b"-1")?;
            Ok::<_, Error>(())
        })();
        let c1 = r.and_then(|()| t1.commit().map(|_| ()));
        let c2 = t2.commit().map(|_| ());
        match level {
            Isolation::Snapshot => assert!(c1.is_ok() && c2.is_ok(), "{c1:?} {c2:?}"),
            Isolation::Serializable => assert!(
                c1.is_err() || c2.is_err(),
                "serializable pessimistic={pessimistic}: write skew committed"
            ),
        }
    }
}

#[test]
fn phantoms_are_refused_by_serializable() {
    for (level, pessimistic) in MODES {
        let (db, ks) = setup();
        let mut t1 = db.begin_write_with(opts(level, pessimistic)).unwrap();
        let seen = t1.prefix(&ks, b"").unwrap().count();
        assert_eq!(seen, 2);
        db.put(&ks, b"z", b"30").unwrap(); // a phantom in t1's range
        t1.put(&ks, b"count", seen.to_string().as_bytes()).unwrap();
        let c = t1.commit();
        if level == Isolation::Snapshot {
            assert!(c.is_ok(), "{c:?}");
        } else {
            let e = c.unwrap_err();
            assert!(e.is_retryable() && e.to_string().contains("range"), "{e}");
        }
    }
}

/// One transaction of a history, as its client saw it.
#[derive(Debug, Clone)]
struct Seen {
    level: Isolation,
    read_ts: u64,
    commit_ts: Option<u64>,
    /// In order: a read of a key, a scan of a range, or a write.
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    Read(Vec<u8>, Option<Vec<u8>>),
    Scan(Option<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>)>),
    Write(Vec<u8>, Option<Vec<u8>>),
}

fn run_client(
    db: &Database,
    ks: &Keyspace,
    client: u64,
    seed: u64,
    mode: (Isolation, bool),
    out: &Mutex<Vec<Seen>>,
) {
    let mut rng = Rng::new(seed ^ (client << 40));
    for n in 0..30u64 {
        let Ok(mut tx) = db.begin_write_with(opts(mode.0, mode.1)) else {
            return;
        };
        let mut record = Seen {
            level: mode.0,
            read_ts: tx.read_ts().get(),
            commit_ts: None,
            ops: Vec::new(),
        };
        let mut failed = false;
        for i in 0..=rng.below(5) {
            let key = format!("k{}", rng.below(6)).into_bytes();
            let r = match rng.below(10) {
                0..=3 => tx.get(ks, &key).map(|v| record.ops.push(Op::Read(key, v))),
                4 => tx
                    .get_for_update(ks, &key)
                    .map(|v| record.ops.push(Op::Read(key, v))),
                5 => {
                    let from = format!("k{}", rng.below(6)).into_bytes();
                    tx.range(ks, (Bound::Included(from.clone()), Bound::Unbounded))
                        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                        .map(|rows| record.ops.push(Op::Scan(Some(from), rows)))
                }
                6 => tx
                    .delete(ks, &key)
                    .map(|()| record.ops.push(Op::Write(key, None))),
                _ => {
                    let v = format!("c{client}-t{n}-{i}").into_bytes();
                    tx.put(ks, &key, &v)
                        .map(|()| record.ops.push(Op::Write(key, Some(v))))
                }
            };
            if let Err(e) = r {
                assert!(e.is_retryable(), "{e}");
                failed = true;
                break;
            }
        }
        // A pessimistic snapshot transaction that has seen only keys it locked may have
        // moved its snapshot forward after a lock wait (ADR 007): hold it to the last one.
        record.read_ts = tx.read_ts().get();
        if !failed {
            match tx.commit() {
                Ok(c) => record.commit_ts = Some(c.ts.get()),
                Err(e) => assert!(e.is_retryable(), "{e}"),
            }
        }
        out.lock().unwrap().push(record);
    }
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// The committed state at `ts`: every committed write up to it, in timestamp order.
fn state_at(commits: &[(u64, &Seen)], ts: u64) -> State {
    let mut s = State::new();
    for (_, t) in commits.iter().take_while(|(c, _)| *c <= ts) {
        for op in &t.ops {
            if let Op::Write(k, v) = op {
                match v {
                    Some(v) => s.insert(k.clone(), v.clone()),
                    None => s.remove(k),
                };
            }
        }
    }
    s
}

/// Whether `t`'s reads are those of `base` with its own writes laid over as it went.
fn reads_match(t: &Seen, base: &State) -> Result<(), String> {
    let mut mine = base.clone();
    for op in &t.ops {
        match op {
            Op::Read(k, v) => {
                if mine.get(k) != v.as_ref() {
                    return Err(format!(
                        "read {} = {v:?}, expected {:?}",
                        String::from_utf8_lossy(k),
                        mine.get(k)
                    ));
                }
            }
            Op::Scan(from, rows) => {
                let want: Vec<(Vec<u8>, Vec<u8>)> = mine
                    .range::<Vec<u8>, _>((
                        from.clone().map_or(Bound::Unbounded, Bound::Included),
                        Bound::Unbounded,
                    ))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if &want != rows {
                    return Err(format!(
                        "scan from {from:?} saw {rows:?}, expected {want:?}"
                    ));
                }
            }
            Op::Write(k, v) => {
                match v {
                    Some(v) => mine.insert(k.clone(), v.clone()),
                    None => mine.remove(k),
                };
            }
        }
    }
    Ok(())
}

fn check(history: &[Seen]) -> Result<(), String> {
    let mut commits: Vec<(u64, &Seen)> = history
        .iter()
        .filter(|t| t.ops.iter().any(|o| matches!(o, Op::Write(..))))
        .filter_map(|t| t.commit_ts.map(|c| (c, t)))
        .collect();
    commits.sort_by_key(|(c, _)| *c);
    // The setup commit is not in the history: every snapshot starts after it.
    for t in history {
        reads_match(t, &state_at(&commits, t.read_ts))
            .map_err(|e| format!("snapshot {} ({:?}): {e}", t.read_ts, t.level))?;
    }
    for (i, (c1, t1)) in commits.iter().enumerate() {
        let w1: Vec<&Vec<u8>> = t1
            .ops
            .iter()
            .filter_map(|o| {
                if let Op::Write(k, _) = o {
                    Some(k)
                } else {
                    None
                }
            })
            .collect();
        for (c2, t2) in &commits[i + 1..] {
            let overlap = t2.read_ts < *c1;
            let shared = t2
                .ops
                .iter()
                .any(|o| matches!(o, Op::Write(k, _) if w1.contains(&k)));
            if overlap && shared {
                return Err(format!(
                    "commits {c1} and {c2} overlap in time and wrote the same key"
                ));
            }
        }
        if t1.level == Isolation::Serializable {
            reads_match(t1, &state_at(&commits, c1 - 1)).map_err(|e| {
                format!("serializable commit {c1} is not at its timestamp in the serial order: {e}")
            })?;
        }
    }
    Ok(())
}

#[test]
fn concurrent_histories_pass_the_checker_at_every_level_and_mode() {
    let mut committed = 0;
    let mut aborted = 0;
    for seed in 0..scaled(6) {
        for mode in MODES {
            let db = open();
            let ks = db.keyspace("h").unwrap();
            let history = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for client in 0..4 {
                    let (db, ks, history) = (&db, &ks, &history);
                    s.spawn(move || run_client(db, ks, client, seed, mode, history));
                }
            });
            let history = history.into_inner().unwrap();
            committed += history.iter().filter(|t| t.commit_ts.is_some()).count();
            aborted += history.iter().filter(|t| t.commit_ts.is_none()).count();
            check(&history).unwrap_or_else(|e| panic!("seed {seed}, {mode:?}: {e}"));
        }
    }
    println!("{committed} transactions committed, {aborted} aborted, all histories checked");
    assert!(
        committed > 500 && aborted > 0,
        "{committed} committed, {aborted} aborted"
    );
}

#[test]
fn the_checker_finds_a_stale_read() {
    // A transaction that claims to have read a value its snapshot did not hold.
    let w = Seen {
        level: Isolation::Snapshot,
        read_ts: 1,
        commit_ts: Some(2),
        ops: vec![Op::Write(b"k0".to_vec(), Some(b"new".to_vec()))],
    };
    let stale = Seen {
        level: Isolation::Snapshot,
        read_ts: 2,
        commit_ts: None,
        ops: vec![Op::Read(b"k0".to_vec(), None)],
    };
    assert!(check(&[w.clone(), stale]).is_err());
    // Two overlapping commits of one key.
    let other = Seen {
        read_ts: 1,
        commit_ts: Some(3),
        ..w.clone()
    };
    assert!(check(&[w.clone(), other]).unwrap_err().contains("overlap"));
    // A serializable commit whose read changed before its commit.
    let skew = Seen {
        level: Isolation::Serializable,
        read_ts: 1,
        commit_ts: Some(3),
        ops: vec![
            Op::Read(b"k0".to_vec(), None),
            Op::Write(b"k1".to_vec(), Some(b"v".to_vec())),
        ],
    };
    assert!(check(&[w, skew]).unwrap_err().contains("serial order"));
}
