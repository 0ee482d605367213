//! The anomalies of Adya's and Hermitage's catalogues as scripted interleavings, each with its
//! expected outcome at each isolation level. Snapshot forbids all but write skew (G2-item) and
//! predicate anti-dependency cycles (G2); Serializable forbids all.

use std::ops::Bound;
use std::sync::Arc;

use lightning_mvcc::{
    CommitLog, Committed, Conflict, Error, Isolation, LogError, Lsn, MemStore, NoLog, Timestamp,
    Transaction, TxnManager, TxnOptions, WriteSet,
};

type Mgr = TxnManager<MemStore>;

/// A log that fails, as a full or broken WAL does: in `log` (the record is refused) or in
/// `wait` (it was queued, the fsync failed).
#[derive(Debug)]
struct BrokenLog {
    in_wait: bool,
}

impl CommitLog for BrokenLog {
    type Ticket = ();

    fn log(&self, _: &WriteSet, _: Timestamp) -> Result<(), LogError> {
        if self.in_wait {
            Ok(())
        } else {
            Err("WAL full".into())
        }
    }

    fn wait(&self, (): ()) -> Result<Lsn, LogError> {
        Err("fsync failed".into())
    }
}

const BROKEN: [BrokenLog; 2] = [BrokenLog { in_wait: false }, BrokenLog { in_wait: true }];

/// x = 10, y = 20 committed.
fn setup() -> Mgr {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"x", b"10").unwrap();
    t.put(b"y", b"20").unwrap();
    t.commit(&NoLog).unwrap();
    mgr
}

fn get(t: &mut Transaction<'_, MemStore>, k: &str) -> Option<String> {
    t.get(k.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

fn committed(mgr: &Mgr, k: &str) -> Option<String> {
    let mut t = mgr.begin(Isolation::Snapshot);
    get(&mut t, k)
}

fn conflict(r: lightning_mvcc::Result<Committed>) -> Conflict {
    match r {
        Err(Error::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

const LEVELS: [Isolation; 2] = [Isolation::Snapshot, Isolation::Serializable];

#[test]
fn g0_dirty_write_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        t1.put(b"x", b"11").unwrap();
        t2.put(b"x", b"12").unwrap();
        t1.put(b"y", b"21").unwrap();
        t1.commit(&NoLog).unwrap();
        t2.put(b"y", b"22").unwrap();
        assert_eq!(
            conflict(t2.commit(&NoLog)),
            Conflict::WriteWrite { key: b"x".to_vec() }
        );
        assert_eq!(
            (committed(&mgr, "x"), committed(&mgr, "y")),
            (Some("11".into()), Some("21".into()))
        );
    }
}

#[test]
fn g1a_aborted_read_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        t1.put(b"x", b"101").unwrap();
        assert_eq!(get(&mut t2, "x").as_deref(), Some("10"));
        drop(t1); // rollback
        assert_eq!(get(&mut t2, "x").as_deref(), Some("10"));
        t2.commit(&NoLog).unwrap();
        assert_eq!(committed(&mgr, "x").as_deref(), Some("10"));
    }
}

#[test]
fn g1b_intermediate_read_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        t1.put(b"x", b"101").unwrap();
        assert_eq!(get(&mut t2, "x").as_deref(), Some("10"));
        t1.put(b"x", b"11").unwrap();
        t1.commit(&NoLog).unwrap();
        assert_eq!(
            get(&mut t2, "x").as_deref(),
            Some("10"),
            "never the intermediate 101"
        );
    }
}

#[test]
fn g1c_circular_information_flow_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        t1.put(b"x", b"11").unwrap();
        t2.put(b"y", b"22").unwrap();
        assert_eq!(get(&mut t1, "y").as_deref(), Some("20"));
        assert_eq!(get(&mut t2, "x").as_deref(), Some("10"));
        t1.commit(&NoLog).unwrap();
        let r2 = t2.commit(&NoLog);
        match level {
            // Neither saw the other: no information flowed in a circle.
            Isolation::Snapshot => assert!(r2.is_ok()),
            // The rw edges form a cycle (T1 read y before T2 wrote it and vice versa).
            Isolation::Serializable => {
                assert_eq!(conflict(r2), Conflict::ReadWrite { key: b"x".to_vec() });
            }
        }
    }
}

#[test]
fn otv_observed_transaction_vanishes_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        let mut t3 = mgr.begin(level);
        t1.put(b"x", b"11").unwrap();
        t1.put(b"y", b"19").unwrap();
        t2.put(b"x", b"12").unwrap();
        t2.put(b"y", b"18").unwrap();
        assert_eq!(get(&mut t3, "x").as_deref(), Some("10"));
        t1.commit(&NoLog).unwrap();
        assert_eq!(
            get(&mut t3, "y").as_deref(),
            Some("20"),
            "t3 keeps its snapshot"
        );
        assert!(t2.commit(&NoLog).is_err());
        assert_eq!(
            (get(&mut t3, "x").as_deref(), get(&mut t3, "y").as_deref()),
            (Some("10"), Some("20"))
        );
    }
}

fn range(a: &str, b: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (
        Bound::Included(a.as_bytes().to_vec()),
        Bound::Excluded(b.as_bytes().to_vec()),
    )
}

#[test]
fn pmp_predicate_many_preceders_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        assert!(t1.scan(range("p/", "p0")).unwrap().is_empty());
        t2.put(b"p/3", b"30").unwrap();
        t2.commit(&NoLog).unwrap();
        assert!(
            t1.scan(range("p/", "p0")).unwrap().is_empty(),
            "the predicate read repeats"
        );
    }
}

#[test]
fn pmp_write_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        // t1: value += 10 on every row.
        for k in ["x", "y"] {
            let v: u32 = get(&mut t1, k).unwrap().parse().unwrap();
            t1.put(k.as_bytes(), (v + 10).to_string().as_bytes())
                .unwrap();
        }
        // t2: delete where value = 20 (still sees y = 20).
        assert_eq!(get(&mut t2, "y").as_deref(), Some("20"));
        t2.delete(b"y").unwrap();
        t1.commit(&NoLog).unwrap();
        assert_eq!(
            conflict(t2.commit(&NoLog)),
            Conflict::WriteWrite { key: b"y".to_vec() }
        );
        assert_eq!(
            (committed(&mgr, "x"), committed(&mgr, "y")),
            (Some("20".into()), Some("30".into()))
        );
    }
}

#[test]
fn p4_lost_update_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        let a: u32 = get(&mut t1, "x").unwrap().parse().unwrap();
        let b: u32 = get(&mut t2, "x").unwrap().parse().unwrap();
        t1.put(b"x", (a + 1).to_string().as_bytes()).unwrap();
        t2.put(b"x", (b + 1).to_string().as_bytes()).unwrap();
        t1.commit(&NoLog).unwrap();
        assert_eq!(
            conflict(t2.commit(&NoLog)),
            Conflict::WriteWrite { key: b"x".to_vec() }
        );
        assert_eq!(committed(&mgr, "x").as_deref(), Some("11"));
    }
}

#[test]
fn g_single_read_skew_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        assert_eq!(get(&mut t1, "x").as_deref(), Some("10"));
        get(&mut t2, "x");
        get(&mut t2, "y");
        t2.put(b"x", b"12").unwrap();
        t2.put(b"y", b"18").unwrap();
        t2.commit(&NoLog).unwrap();
        assert_eq!(
            get(&mut t1, "y").as_deref(),
            Some("20"),
            "x + y stays 30 in t1's view"
        );
        t1.commit(&NoLog).unwrap();
    }
}

#[test]
fn g_single_with_predicate_dependencies_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        // t1: rows with values divisible by 5 (all keys; both are).
        assert_eq!(
            t1.scan((Bound::Unbounded, Bound::Unbounded)).unwrap().len(),
            2
        );
        t2.put(b"x", b"18").unwrap(); // no longer divisible by 5
        t2.commit(&NoLog).unwrap();
        let again = t1.scan((Bound::Unbounded, Bound::Unbounded)).unwrap();
        assert_eq!(again[0].1, b"10", "the predicate sees the snapshot");
    }
}

#[test]
fn g_single_write_variant_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        assert_eq!(get(&mut t1, "x").as_deref(), Some("10"));
        t2.put(b"x", b"12").unwrap();
        t2.put(b"y", b"18").unwrap();
        t2.commit(&NoLog).unwrap();
        t1.delete(b"y").unwrap();
        assert_eq!(
            conflict(t1.commit(&NoLog)),
            Conflict::WriteWrite { key: b"y".to_vec() }
        );
    }
}

#[test]
fn g2_item_write_skew_is_allowed_by_snapshot_only() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        for t in [&mut t1, &mut t2] {
            get(t, "x");
            get(t, "y");
        }
        t1.put(b"x", b"11").unwrap();
        t2.put(b"y", b"21").unwrap();
        t1.commit(&NoLog).unwrap();
        let r2 = t2.commit(&NoLog);
        match level {
            Isolation::Snapshot => assert!(r2.is_ok(), "snapshot isolation allows write skew"),
            Isolation::Serializable => {
                assert_eq!(conflict(r2), Conflict::ReadWrite { key: b"x".to_vec() });
            }
        }
    }
}

/// Write skew through `get_for_update`, both optimistic: t1 reads x for update, t2 reads y,
/// changes x (an optimistic put looks at no lock) and commits, t1 writes y. Both committing
/// gives {x = 11, y = 21}, which no serial order gives (t1 first: t2 would have read y = 21;
/// t2 first: t1 would have read x = 11). The key read for update is validated at commit like
/// a write: t1 must abort.
#[test]
fn g2_item_write_skew_through_an_optimistic_get_for_update_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        let x = t1.get_for_update(b"x").unwrap();
        assert_eq!(x.as_deref(), Some(&b"10"[..]));
        assert_eq!(get(&mut t2, "y").as_deref(), Some("20"));
        t2.put(b"x", b"11").unwrap();
        t2.commit(&NoLog).unwrap();
        t1.put(b"y", b"21").unwrap();
        assert_eq!(
            conflict(t1.commit(&NoLog)),
            Conflict::WriteWrite { key: b"x".to_vec() },
            "{level:?}: x was read for update and changed by a newer commit"
        );
        assert_eq!(
            (committed(&mgr, "x"), committed(&mgr, "y")),
            (Some("11".into()), Some("20".into()))
        );
    }
}

/// The same script with t1 pessimistic (its `get_for_update` holds x's lock) and t2
/// optimistic in the same manager: t2's put looks at no lock and commits, so t1's lock does
/// not keep x unchanged. t1's commit validates the keys it read for update, as it validates
/// its writes, and aborts (ADR 007).
#[test]
fn g2_item_write_skew_through_a_pessimistic_get_for_update_and_an_optimistic_writer_is_prevented() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin_with(TxnOptions {
            isolation: level,
            pessimistic: true,
        });
        let mut t2 = mgr.begin(level);
        let x = t1.get_for_update(b"x").unwrap();
        assert_eq!(x.as_deref(), Some(&b"10"[..]));
        assert_eq!(get(&mut t2, "y").as_deref(), Some("20"));
        t2.put(b"x", b"11").unwrap();
        t2.commit(&NoLog).unwrap();
        t1.put(b"y", b"21").unwrap();
        assert_eq!(
            conflict(t1.commit(&NoLog)),
            Conflict::WriteWrite { key: b"x".to_vec() },
            "{level:?}: x was read for update and changed by a newer commit"
        );
        assert_eq!(
            (committed(&mgr, "x"), committed(&mgr, "y")),
            (Some("11".into()), Some("20".into()))
        );
    }
}

#[test]
fn g2_predicate_anti_dependency_cycle_is_allowed_by_snapshot_only() {
    for level in LEVELS {
        let mgr = setup();
        let mut t1 = mgr.begin(level);
        let mut t2 = mgr.begin(level);
        // Both read the predicate "rows under p/" (empty) and insert a row matching it.
        assert!(t1.scan(range("p/", "p0")).unwrap().is_empty());
        assert!(t2.scan(range("p/", "p0")).unwrap().is_empty());
        t1.put(b"p/1", b"30").unwrap();
        t2.put(b"p/2", b"42").unwrap();
        t1.commit(&NoLog).unwrap();
        let r2 = t2.commit(&NoLog);
        match level {
            Isolation::Snapshot => assert!(r2.is_ok(), "snapshot isolation allows G2"),
            Isolation::Serializable => assert!(matches!(conflict(r2), Conflict::Phantom { .. })),
        }
    }
}

#[test]
fn a_failed_log_commits_nothing_and_blocks_nothing() {
    for broken in &BROKEN {
        let mgr = setup();
        let mut t1 = mgr.begin(Isolation::Snapshot);
        t1.put(b"x", b"99").unwrap();
        let e = t1.commit(broken).unwrap_err();
        match (&e, broken.in_wait) {
            (Error::LogFailed { ts, cause }, false) | (Error::NotDurable { ts, cause }, true) => {
                assert_eq!(*ts, Timestamp::new(2));
                assert!(e.to_string().contains(&cause.to_string()), "{e}");
            }
            _ => panic!("the wrong error for a log failing in {broken:?}: {e}"),
        }
        assert!(!e.is_retryable());
        assert_eq!(committed(&mgr, "x").as_deref(), Some("10"));
        let mut t2 = mgr.begin(Isolation::Snapshot);
        t2.put(b"z", b"1").unwrap();
        t2.commit(&NoLog).unwrap();
        assert_eq!(committed(&mgr, "z").as_deref(), Some("1"));
    }
}

#[test]
fn trimming_on_write_keeps_what_active_snapshots_see() {
    use lightning_mvcc::VersionStore;
    let mgr = setup();
    let mut reader = mgr.begin(Isolation::Snapshot);
    for i in 0..50 {
        let mut t = mgr.begin(Isolation::Snapshot);
        t.put(b"x", i.to_string().as_bytes()).unwrap();
        t.commit(&NoLog).unwrap();
    }
    assert_eq!(
        get(&mut reader, "x").as_deref(),
        Some("10"),
        "the old snapshot still reads its version"
    );
    // Trimming works below the oldest active snapshot: everything from the reader's version
    // on stays while it lives.
    assert_eq!(mgr.store().versions(b"x").unwrap().versions().len(), 51);
    drop(reader);
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"x", b"last").unwrap();
    t.commit(&NoLog).unwrap();
    // Left: the new version and the one the committing transaction's own snapshot sees.
    assert_eq!(mgr.store().versions(b"x").unwrap().versions().len(), 2);
}

#[test]
fn a_failed_commit_causes_no_conflicts_for_others() {
    for broken in &BROKEN {
        let mgr = setup();
        let mut t2 = mgr.begin(Isolation::Serializable);
        let mut t1 = mgr.begin(Isolation::Snapshot);
        t1.put(b"x", b"99").unwrap();
        assert!(t1.commit(broken).is_err());
        assert_eq!(get(&mut t2, "x").as_deref(), Some("10"));
        t2.put(b"x", b"11").unwrap();
        t2.commit(&NoLog).unwrap();
        assert_eq!(committed(&mgr, "x").as_deref(), Some("11"));
    }
}

#[test]
fn a_failed_commit_leaves_the_earlier_writers_conflicts_in_place() {
    for (level, broken) in LEVELS
        .into_iter()
        .flat_map(|l| BROKEN.iter().map(move |b| (l, b)))
    {
        let mgr = setup();
        // An old snapshot keeps every later commit in the conflict log.
        let mut late = mgr.begin(level);
        let mut t1 = mgr.begin(Isolation::Snapshot);
        t1.put(b"x", b"11").unwrap();
        t1.commit(&NoLog).unwrap();
        // A later writer of the same key whose log fails: it never happened,
        // and the log must still know that `t1` wrote `x`.
        let mut t2 = mgr.begin(Isolation::Snapshot);
        t2.put(b"x", b"12").unwrap();
        assert!(t2.commit(broken).is_err());
        late.put(b"x", b"lost update").unwrap();
        assert_eq!(
            conflict(late.commit(&NoLog)),
            Conflict::WriteWrite { key: b"x".to_vec() }
        );
        assert_eq!(committed(&mgr, "x").as_deref(), Some("11"));
    }
}

#[test]
fn empty_and_inverted_ranges_scan_to_nothing() {
    let mgr = setup();
    let mut t = mgr.begin(Isolation::Serializable);
    let k = |s: &str| s.as_bytes().to_vec();
    assert!(
        t.scan((Bound::Excluded(k("a")), Bound::Excluded(k("a"))))
            .unwrap()
            .is_empty()
    );
    assert!(
        t.scan((Bound::Included(k("y")), Bound::Included(k("x"))))
            .unwrap()
            .is_empty()
    );
    assert!(
        t.scan((Bound::Included(k("b")), Bound::Excluded(k("a"))))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        t.scan((Bound::Included(k("x")), Bound::Included(k("x"))))
            .unwrap()
            .len(),
        1
    );
}

/// A commit of 5,000 keys: past the size from which the recent commits keep a write set
/// whole and search it instead of indexing it key by key (4,096).
fn bulk_commit(mgr: &Mgr, prefix: &str) {
    let mut t = mgr.begin(Isolation::Snapshot);
    for i in 0..5_000 {
        t.put(format!("{prefix}{i:05}").as_bytes(), b"v").unwrap();
    }
    t.commit(&NoLog).unwrap();
}

#[test]
fn a_large_commit_conflicts_as_a_small_one_does() {
    for level in LEVELS {
        let mgr = setup();
        // Written over by the bulk commit after their snapshots: a write, a read for
        // update, a read (a conflict when serializable), a scanned range (likewise).
        let mut writer = mgr.begin(level);
        let mut for_update = mgr.begin(level);
        let mut reader = mgr.begin(level);
        let mut scanner = mgr.begin(level);
        // Not touched by it: a key after its last, a range between two of its keys.
        let mut beside = mgr.begin(level);
        let mut between = mgr.begin(level);
        assert!(reader.get(b"b/02500").unwrap().is_none());
        assert!(for_update.get_for_update(b"b/04999").unwrap().is_none());
        assert!(
            scanner
                .scan(range("b/03001", "b/03001a"))
                .unwrap()
                .is_empty()
        );
        assert!(
            between
                .scan(range("b/03000a", "b/03001"))
                .unwrap()
                .is_empty()
        );
        assert!(beside.get(b"b/05000").unwrap().is_none());
        bulk_commit(&mgr, "b/");
        writer.put(b"b/00000", b"w").unwrap();
        assert_eq!(
            conflict(writer.commit(&NoLog)),
            Conflict::WriteWrite {
                key: b"b/00000".to_vec()
            },
            "{level:?}: the first key of the bulk commit"
        );
        for_update.put(b"z0", b"1").unwrap();
        assert_eq!(
            conflict(for_update.commit(&NoLog)),
            Conflict::WriteWrite {
                key: b"b/04999".to_vec()
            },
            "{level:?}: the last key of the bulk commit, read for update"
        );
        // Each writes a key of its own: no conflict among them.
        for (t, k) in [
            (&mut reader, "z1"),
            (&mut scanner, "z2"),
            (&mut beside, "z3"),
            (&mut between, "z4"),
        ] {
            t.put(k.as_bytes(), b"1").unwrap();
        }
        let (r_reader, r_scanner) = (reader.commit(&NoLog), scanner.commit(&NoLog));
        match level {
            Isolation::Snapshot => assert!(r_reader.is_ok() && r_scanner.is_ok()),
            Isolation::Serializable => {
                assert_eq!(
                    conflict(r_reader),
                    Conflict::ReadWrite {
                        key: b"b/02500".to_vec()
                    }
                );
                assert!(matches!(conflict(r_scanner), Conflict::Phantom { .. }));
            }
        }
        assert!(beside.commit(&NoLog).is_ok(), "{level:?}");
        assert!(between.commit(&NoLog).is_ok(), "{level:?}");
    }
}
