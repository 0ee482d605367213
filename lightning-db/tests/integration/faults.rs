//! I/O faults at every call: the N-th I/O call fails (once, or from then on) for every N
//! along a workload that opens, creates keyspaces, commits, checkpoints, runs GC, drops a
//! keyspace, closes and reopens. Each run ends in a working database or a clear error —
//! never a panic — and after a restart every acknowledged commit is there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lightning_db::page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_db::{Database, Error, Options};

fn options() -> Options {
    Options {
        page_size: 4096,
        cache_bytes: 256 << 10,
        checkpoint_interval_ms: 0,
        wal_segment_bytes: 64 << 10,
        ..Options::default()
    }
}

fn open(vfs: &Arc<CrashVfs>) -> lightning_db::Result<Database> {
    Database::open_with_vfs(vfs.clone(), Path::new("/db"), options())
}

/// What the workload saw: the acknowledged writes, and the errors it got.
#[derive(Debug, Default)]
struct Run {
    acked: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Writes whose commit failed after the last acknowledged one of their key: their
    /// outcome is unknown (the record may have reached the log), so either is right.
    unknown: BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>>,
    errors: Vec<String>,
}

fn workload(vfs: &Arc<CrashVfs>) -> Run {
    let mut run = Run::default();
    let note = |run: &mut Run, e: Error| {
        let msg = e.to_string();
        assert!(!msg.is_empty());
        run.errors.push(msg);
    };
    let db = match open(vfs) {
        Ok(db) => db,
        Err(e) => {
            note(&mut run, e);
            return run;
        }
    };
    let ks = match db.keyspace("main") {
        Ok(ks) => ks,
        Err(e) => {
            note(&mut run, e);
            return run;
        }
    };
    let step = |run: &mut Run, i: u32| -> lightning_db::Result<()> {
        let key = format!("key-{:03}", i % 40).into_bytes();
        let value = (i % 7 != 3)
            .then(|| vec![u8::try_from(i % 251).unwrap_or(0); 40 + (i as usize % 9) * 60]);
        let done = match &value {
            Some(v) => db.put(&ks, &key, v),
            None => db.delete(&ks, &key),
        };
        if done.is_ok() {
            run.unknown.remove(&key);
            run.acked.insert(key, value);
        } else {
            run.unknown.entry(key).or_default().push(value);
        }
        done.map(|_| ())
    };
    for i in 0..60u32 {
        if let Err(e) = step(&mut run, i) {
            note(&mut run, e);
        }
        let extra = match i {
            20 | 50 => db.checkpoint().err(),
            30 => db.gc().err(),
            40 => db
                .keyspace("scratch")
                .and_then(|s| db.put(&s, b"x", b"y"))
                .err()
                .or_else(|| db.drop_keyspace("scratch").err()),
            _ => None,
        };
        if let Some(e) = extra {
            note(&mut run, e);
        }
        // Reads go on after a write failure, unless the trees were left half changed.
        if let Err(e) = db.get(&ks, b"key-000") {
            assert!(
                matches!(e, Error::Damaged { .. } | Error::Btree(_) | Error::Page(_)),
                "{e}"
            );
        }
    }
    if let Err(e) = db.close() {
        note(&mut run, e);
    }
    run
}

fn verify(vfs: &Arc<CrashVfs>, run: &Run, what: &str) {
    let db = open(vfs).unwrap_or_else(|e| panic!("{what}: reopen: {e} (errors: {:?})", run.errors));
    if run.acked.is_empty() {
        return;
    }
    let ks = db
        .open_keyspace("main")
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for (k, v) in &run.acked {
        let got = db.get(&ks, k).unwrap();
        let maybe = run.unknown.get(k).is_some_and(|u| u.contains(&got));
        assert!(
            &got == v || maybe,
            "{what}: key {}: {got:?}",
            String::from_utf8_lossy(k)
        );
    }
    let problems = db.check().unwrap();
    assert!(problems.is_empty(), "{what}: {problems:?}");
}

#[test]
fn a_failed_io_call_anywhere_ends_in_a_working_database_or_a_clear_error() {
    // A clean run: how many calls, and that it works at all.
    let vfs = Arc::new(CrashVfs::new(1));
    let clean = workload(&vfs);
    assert!(clean.errors.is_empty(), "{:?}", clean.errors);
    let calls = vfs.io_calls();
    verify(&vfs, &clean, "clean");
    let mut failed_runs = 0;
    let mut scenarios = 0;
    for nth in 0..calls {
        for permanent in [false, true] {
            for kind in [FaultKind::Io, FaultKind::NoSpace] {
                if kind == FaultKind::NoSpace && nth % 3 != 0 {
                    continue;
                }
                let vfs = Arc::new(CrashVfs::new(nth));
                vfs.inject(Fault {
                    op: FaultOp::Any,
                    nth,
                    permanent,
                    kind,
                });
                let run = workload(&vfs);
                failed_runs += u64::from(!run.errors.is_empty());
                // The process restarts: what it wrote is still there; the fault is gone.
                vfs.crash(CrashMode::KeepPrefix(usize::MAX));
                verify(
                    &vfs,
                    &run,
                    &format!("call {nth}, permanent {permanent}, {kind:?}"),
                );
                scenarios += 1;
            }
        }
    }
    println!("{scenarios} fault scenarios over {calls} I/O calls; {failed_runs} saw errors");
    assert!(
        scenarios >= calls * 2 && failed_runs * 2 >= scenarios,
        "{failed_runs} of {scenarios}"
    );
}

/// A commit whose apply fails after its first key went into its tree (the second key's leaf
/// cannot be read: the cache is small and the leaf was evicted) is undone whole: a snapshot
/// taken after the failure sees neither key's new value, and the database refuses writes.
#[test]
fn a_commit_whose_apply_fails_midway_is_not_partly_visible() {
    let mut failed_midway = 0;
    for nth in 0..4 {
        let vfs = Arc::new(CrashVfs::new(nth));
        let db = open(&vfs).unwrap();
        let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
        let key = |i: u32| format!("key-{i:05}").into_bytes();
        let mut batch = lightning_db::WriteBatch::new();
        for i in 0..2_000 {
            batch
                .put(&a, &key(i), &[1; 100])
                .put(&b, &key(i), &[1; 100]);
        }
        db.write(&batch).unwrap();
        db.checkpoint().unwrap();
        // Key 7 of `a` is read last, so its leaf is cached; key 1,500 of `b` was not read
        // since the checkpoint, so its leaf was evicted by the reads of `a`.
        for i in 0..2_000 {
            db.get(&a, &key(i)).unwrap();
        }
        db.get(&a, &key(7)).unwrap();
        vfs.inject(Fault {
            op: FaultOp::Read,
            nth,
            permanent: true,
            kind: FaultKind::Io,
        });
        let mut tx = db.begin_write().unwrap();
        tx.put(&a, &key(7), &[2; 100]).unwrap();
        tx.put(&b, &key(1_500), &[2; 100]).unwrap();
        let outcome = tx.commit();
        vfs.clear_faults();
        let snap = db.begin_read().unwrap();
        let seen = (
            snap.get(&a, &key(7)).unwrap(),
            snap.get(&b, &key(1_500)).unwrap(),
        );
        match outcome {
            Ok(_) => assert_eq!(seen, (Some(vec![2; 100]), Some(vec![2; 100]))),
            Err(e) => {
                assert!(matches!(e, Error::CommitFailed { .. }), "{e}");
                assert_eq!(
                    seen,
                    (Some(vec![1; 100]), Some(vec![1; 100])),
                    "fault {nth}"
                );
                assert!(matches!(
                    db.put(&a, &key(1), &[3]),
                    Err(Error::ReadOnly { .. })
                ));
                failed_midway += 1;
            }
        }
    }
    assert!(failed_midway > 0, "no apply failed after its first key");
}

/// The key and value of row `j` of a bulk load.
fn bulk_row(j: u32) -> (Vec<u8>, Vec<u8>) {
    (
        format!("key-{j:05}").into_bytes(),
        format!("value of row {j}").into_bytes(),
    )
}

/// Puts 5,000 rows in one transaction, in a scrambled order, into `ks`.
fn bulk_load(db: &Database, ks: &lightning_db::Keyspace) -> lightning_db::Result<()> {
    let mut tx = db.begin_write()?;
    for i in 0..5_000u32 {
        let (k, v) = bulk_row((i * 7_919) % 5_000);
        tx.put(ks, &k, &v)?;
    }
    tx.commit().map(|_| ())
}

/// Every row of `ks` as a snapshot of `db` sees it, in key order.
fn rows(db: &Database, ks: &lightning_db::Keyspace) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snap = db.begin_read().unwrap();
    snap.range::<&[u8]>(ks, ..)
        .unwrap()
        .collect::<lightning_db::Result<_>>()
        .unwrap()
}

/// A load of 5,000 rows in one transaction into a new keyspace (bulk loaded, ADR 012) reads
/// back whole and in order, is invisible to a snapshot taken before it, and comes back whole
/// after a crash that keeps only synced data (the WAL replay loads it again).
#[test]
fn a_bulk_load_into_a_new_keyspace_reads_back_and_survives_a_crash() {
    let vfs = Arc::new(CrashVfs::new(1));
    let db = open(&vfs).unwrap();
    let ks = db.keyspace("bulk").unwrap();
    let before = db.begin_read().unwrap();
    bulk_load(&db, &ks).unwrap();
    let want: Vec<(Vec<u8>, Vec<u8>)> = (0..5_000).map(bulk_row).collect();
    assert_eq!(rows(&db, &ks), want);
    assert_eq!(before.get(&ks, &bulk_row(10).0).unwrap(), None);
    drop(before);
    // Power fails before any checkpoint: the load is only in the (synced) WAL.
    vfs.crash(CrashMode::DropUnsynced);
    drop(db);
    let db = open(&vfs).unwrap();
    let ks = db.open_keyspace("bulk").unwrap();
    assert_eq!(rows(&db, &ks), want);
    assert_eq!(
        db.stats().tx.recovered_commits,
        1,
        "the load, replayed from the WAL"
    );
}

/// A bulk load whose page writes fail (the cache is smaller than the load, so it evicts
/// dirty pages as it goes) leaves the keyspace empty and the database refusing writes.
#[test]
fn a_bulk_load_whose_writes_fail_leaves_the_keyspace_empty() {
    let mut failed_in_apply = 0;
    for nth in 0..8 {
        let vfs = Arc::new(CrashVfs::new(nth));
        let db = open(&vfs).unwrap();
        let ks = db.keyspace("bulk").unwrap();
        vfs.inject(Fault {
            op: FaultOp::Write,
            nth,
            permanent: true,
            kind: FaultKind::Io,
        });
        let outcome = bulk_load(&db, &ks);
        vfs.clear_faults();
        match outcome {
            Ok(()) => assert_eq!(rows(&db, &ks).len(), 5_000, "fault {nth}"),
            Err(Error::CommitFailed { .. }) => {
                assert_eq!(rows(&db, &ks), Vec::new(), "fault {nth}");
                assert!(matches!(
                    db.put(&ks, b"k", b"v"),
                    Err(Error::ReadOnly { .. })
                ));
                failed_in_apply += 1;
            }
            // The WAL's write or fsync failed first: nothing was applied.
            Err(e) => assert_eq!(rows(&db, &ks), Vec::new(), "fault {nth}: {e}"),
        }
    }
    assert!(failed_in_apply > 0, "no bulk load failed in its apply");
}

/// A commit is applied before its WAL fsync returns (ADR 017), so that the next holder of
/// its locks need not wait for the fsync. When that fsync fails the commit must still never
/// be shown: the caller gets an error, a snapshot taken after it reads the old value, writes
/// stop, and after a restart the value is whichever the log kept.
#[test]
fn a_commit_whose_fsync_fails_is_applied_but_never_shown() {
    use lightning_db::{Durability, TxOptions};
    let vfs = Arc::new(CrashVfs::new(7));
    let db = open(&vfs).unwrap();
    let ks = db.keyspace("main").unwrap();
    db.put(&ks, b"k", b"old").unwrap();
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: true,
        kind: FaultKind::Io,
    });
    let mut tx = db
        .begin_write_with(TxOptions {
            pessimistic: true,
            durability: Some(Durability::Immediate),
            ..TxOptions::default()
        })
        .unwrap();
    assert_eq!(
        tx.get_for_update(&ks, b"k").unwrap().as_deref(),
        Some(&b"old"[..])
    );
    tx.put(&ks, b"k", b"new").unwrap();
    let e = tx.commit().unwrap_err();
    assert!(matches!(e, Error::CommitFailed { .. }), "{e}");
    assert_eq!(db.get(&ks, b"k").unwrap().as_deref(), Some(&b"old"[..]));
    let refused = db.put(&ks, b"other", b"v").unwrap_err();
    assert!(matches!(refused, Error::ReadOnly { .. }), "{refused}");
    assert_eq!(db.get(&ks, b"other").unwrap(), None);
    drop(db);
    vfs.clear_faults();
    vfs.crash(CrashMode::KeepPrefix(usize::MAX));
    let db = open(&vfs).unwrap();
    let ks = db.open_keyspace("main").unwrap();
    let got = db.get(&ks, b"k").unwrap();
    assert!(
        got.as_deref() == Some(&b"old"[..]) || got.as_deref() == Some(&b"new"[..]),
        "{got:?}"
    );
}
