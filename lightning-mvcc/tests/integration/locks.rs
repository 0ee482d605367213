//! Pessimistic mode: deadlock cycles of 2 to 8 transactions each resolved with exactly one
//! victim, no victim without a cycle, timeouts, and lost updates prevented by locking.
//!
//! No test sleeps to let another thread get somewhere or bounds an elapsed time: a test that
//! needs a request to be waiting polls [`queued`] until the lock manager has counted it.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use lightning_mvcc::{
    Conflict, Error, Isolation, LockManager, LockMode, MemStore, NoLog, Timestamp, TxnId,
    TxnManager, TxnOptions,
};

fn key(i: u64) -> Vec<u8> {
    format!("k{i}").into_bytes()
}

/// Returns once `n` lock requests have had to wait on `m`. `LockStats::waits` counts a
/// request when it joins a queue, under the same lock-manager mutex that adds its wait-for
/// edges and runs the deadlock check, so from here on the `n`-th waiter is queued with its
/// edges in place (it may have been granted since, never the other way round).
fn queued(m: &LockManager, n: u64) {
    while m.stats().waits < n {
        std::thread::yield_now();
    }
}

#[test]
fn cycles_of_two_to_eight_have_exactly_one_victim_the_youngest() {
    for n in 2..=8u64 {
        for round in 0..5 {
            let m = LockManager::new(Duration::from_secs(10));
            let barrier = Barrier::new(usize::try_from(n).unwrap());
            let outcomes: Mutex<Vec<(u64, Result<(), String>)>> = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for id in 1..=n {
                    let (m, barrier, outcomes) = (&m, &barrier, &outcomes);
                    s.spawn(move || {
                        m.lock(TxnId::new(id), &key(id), LockMode::Exclusive)
                            .unwrap();
                        barrier.wait();
                        // Each waits for the next one's key: a cycle through all n.
                        let r = m.lock(TxnId::new(id), &key(id % n + 1), LockMode::Exclusive);
                        let outcome = r.map_err(|e| match e {
                            Error::Deadlock { txn } => format!("deadlock {txn}"),
                            other => other.to_string(),
                        });
                        outcomes.lock().unwrap().push((id, outcome));
                        m.release_all(TxnId::new(id));
                    });
                }
            });
            let outcomes = outcomes.into_inner().unwrap();
            let victims: Vec<&(u64, Result<(), String>)> =
                outcomes.iter().filter(|(_, r)| r.is_err()).collect();
            assert_eq!(victims.len(), 1, "n {n} round {round}: {outcomes:?}");
            assert_eq!(
                victims[0],
                &(n, Err(format!("deadlock {n}"))),
                "the youngest is the victim"
            );
            assert_eq!(m.stats().deadlocks, 1, "n {n}: one detection per cycle");
        }
    }
}

#[test]
fn a_chain_of_waits_without_a_cycle_has_no_victim() {
    let m = LockManager::new(Duration::from_secs(10));
    m.lock(TxnId::new(1), b"a", LockMode::Exclusive).unwrap();
    m.lock(TxnId::new(2), b"b", LockMode::Exclusive).unwrap();
    std::thread::scope(|s| {
        let t2 = s.spawn(|| {
            m.lock(TxnId::new(2), b"a", LockMode::Exclusive)?; // waits for 1
            m.release_all(TxnId::new(2));
            Ok::<(), Error>(())
        });
        let t3 = s.spawn(|| {
            m.lock(TxnId::new(3), b"b", LockMode::Exclusive)?; // waits for 2
            m.release_all(TxnId::new(3));
            Ok::<(), Error>(())
        });
        // Both wait (2 for 1, 3 for 2) before 1 lets go: the chain is complete.
        queued(&m, 2);
        m.release_all(TxnId::new(1));
        t2.join().unwrap().unwrap();
        t3.join().unwrap().unwrap();
    });
    assert_eq!(m.stats().deadlocks, 0);
    // 3 is queued behind 2 until 2 is done with `b`: it never gets in without waiting.
    assert_eq!(m.stats().waits, 2);
}

#[test]
fn lock_waits_time_out_with_a_retryable_error() {
    let mgr = TxnManager::with_lock_timeout(
        Arc::new(MemStore::new()),
        Timestamp::new(0),
        Duration::from_millis(40),
    );
    let pess = TxnOptions {
        isolation: Isolation::Snapshot,
        pessimistic: true,
    };
    let mut t1 = mgr.begin_with(pess);
    t1.put(b"x", b"1").unwrap();
    let mut t2 = mgr.begin_with(pess);
    let e = t2.put(b"x", b"2").unwrap_err();
    assert!(
        matches!(e, Error::LockTimeout { .. }) && e.is_retryable(),
        "{e}"
    );
    assert_eq!(mgr.locks().stats().timeouts, 1);
}

#[test]
fn get_for_update_prevents_lost_updates() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let pess = TxnOptions {
        isolation: Isolation::Snapshot,
        pessimistic: true,
    };
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"counter", b"0").unwrap();
    t.commit(&NoLog).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    loop {
                        let mut t = mgr.begin_with(pess);
                        let attempt = (|| {
                            let v: u64 = String::from_utf8(t.get_for_update(b"counter")?.unwrap())
                                .unwrap()
                                .parse()
                                .unwrap();
                            t.put(b"counter", (v + 1).to_string().as_bytes())?;
                            Ok::<(), Error>(())
                        })();
                        match attempt.and_then(|()| t.commit(&NoLog).map(drop)) {
                            Ok(()) => break,
                            Err(e) if e.is_retryable() => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let mut t = mgr.begin(Isolation::Snapshot);
    assert_eq!(
        t.get(b"counter").unwrap().as_deref(),
        Some(&b"100"[..]),
        "no increment lost"
    );
}

/// The queueing that `get_for_update_prevents_lost_updates` may or may not run into,
/// forced: a second updater waits on the lock the first holds and is granted it when the
/// first commits. Its snapshot is stale by then, but it has observed nothing except keys it
/// holds exclusively (here: nothing at all before the wait, then `other`, locked, before
/// the second), so it moves its snapshot forward, reads the first's value and commits on
/// its first attempt: no conflict, no lost update.
#[test]
fn a_queued_updater_that_saw_only_locked_keys_moves_its_snapshot_and_commits() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let pess = TxnOptions {
        isolation: Isolation::Snapshot,
        pessimistic: true,
    };
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"counter", b"0").unwrap();
    t.put(b"other", b"7").unwrap();
    t.commit(&NoLog).unwrap();
    let mut first = mgr.begin_with(pess);
    assert_eq!(
        first.get_for_update(b"counter").unwrap().as_deref(),
        Some(&b"0"[..])
    );
    // Begun before `first` commits: its snapshot has counter = 0.
    let mut second = mgr.begin_with(pess);
    let before = second.read_ts();
    assert_eq!(
        second.get_for_update(b"other").unwrap().as_deref(),
        Some(&b"7"[..])
    );
    std::thread::scope(|s| {
        let waiter = s.spawn(move || {
            let v = second.get_for_update(b"counter")?;
            assert!(second.read_ts() > before, "the snapshot moved forward");
            second.put(b"counter", b"2")?;
            second.put(b"other", b"8")?;
            second.commit(&NoLog).map(|_| v)
        });
        queued(mgr.locks(), 1);
        first.put(b"counter", b"1").unwrap();
        first.commit(&NoLog).unwrap();
        assert_eq!(
            waiter.join().unwrap().unwrap().as_deref(),
            Some(&b"1"[..]),
            "the waiter read the holder's commit"
        );
    });
    let mut t = mgr.begin(Isolation::Snapshot);
    assert_eq!(t.get(b"counter").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(t.get(b"other").unwrap().as_deref(), Some(&b"8"[..]));
    let locks = mgr.locks().stats();
    assert_eq!((locks.waits, locks.timeouts, locks.deadlocks), (1, 0, 0));
    assert_eq!(mgr.stats().write_conflicts, 0);
}

/// The same wait, but the waiter read an unlocked key first (or scanned, or is
/// serializable): what it saw may differ in a newer snapshot, so its stale snapshot is a
/// conflict (retryable), not a lost update, and it succeeds on retry.
#[test]
fn a_queued_updater_that_read_an_unlocked_key_aborts_its_stale_snapshot() {
    for how in ["plain read", "scan", "serializable"] {
        let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
        let pess = TxnOptions {
            isolation: if how == "serializable" {
                Isolation::Serializable
            } else {
                Isolation::Snapshot
            },
            pessimistic: true,
        };
        let mut t = mgr.begin(Isolation::Snapshot);
        t.put(b"counter", b"0").unwrap();
        t.put(b"other", b"7").unwrap();
        t.commit(&NoLog).unwrap();
        let mut first = mgr.begin_with(pess);
        assert_eq!(
            first.get_for_update(b"counter").unwrap().as_deref(),
            Some(&b"0"[..])
        );
        let mut second = mgr.begin_with(pess);
        match how {
            "scan" => {
                let rows: Vec<_> = second
                    .range((
                        std::ops::Bound::Included(b"o".to_vec()),
                        std::ops::Bound::Unbounded,
                    ))
                    .collect();
                assert_eq!(rows.len(), 1, "{how}");
            }
            _ => assert_eq!(
                second.get(b"other").unwrap().as_deref(),
                Some(&b"7"[..]),
                "{how}"
            ),
        }
        std::thread::scope(|s| {
            let waiter = s.spawn(move || second.get_for_update(b"counter").map(drop));
            queued(mgr.locks(), 1);
            first.put(b"counter", b"1").unwrap();
            first.commit(&NoLog).unwrap();
            match waiter.join().unwrap() {
                Err(Error::Conflict(c)) => assert_eq!(
                    c,
                    Conflict::WriteWrite {
                        key: b"counter".to_vec()
                    },
                    "{how}"
                ),
                other => panic!("{how}: the stale updater must conflict, got {other:?}"),
            }
        });
        let mut retry = mgr.begin_with(pess);
        assert_eq!(
            retry.get_for_update(b"counter").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        retry.put(b"counter", b"2").unwrap();
        retry.commit(&NoLog).unwrap();
        let mut t = mgr.begin(Isolation::Snapshot);
        assert_eq!(t.get(b"counter").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(mgr.stats().write_conflicts, 1, "{how}");
    }
}

#[test]
fn a_deadlock_between_transactions_aborts_the_younger_and_the_older_commits() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let pess = TxnOptions {
        isolation: Isolation::Snapshot,
        pessimistic: true,
    };
    let mut older = mgr.begin_with(pess);
    let mut younger = mgr.begin_with(pess);
    older.put(b"a", b"1").unwrap();
    younger.put(b"b", b"2").unwrap();
    std::thread::scope(|s| {
        let o = s.spawn(move || {
            older.put(b"b", b"1")?;
            older.commit(&NoLog)
        });
        // The older waits for `b` first, so the younger's request closes the cycle and it
        // is the victim at once (not woken as one).
        queued(mgr.locks(), 1);
        let e = younger.put(b"a", b"2").unwrap_err();
        assert!(
            matches!(e, Error::Deadlock { .. }) && e.is_retryable(),
            "{e}"
        );
        drop(younger); // rollback releases its locks
        o.join().unwrap().unwrap();
    });
    assert_eq!(mgr.locks().stats().deadlocks, 1);
}

/// An optimistic `get_for_update` takes no lock: it returns at once on the thread that
/// holds the key's lock in another (pessimistic) transaction. Were it to wait, it could
/// only end in a lock timeout here, since the holder cannot go on.
#[test]
fn an_optimistic_get_for_update_never_waits_for_a_lock() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"k", b"0").unwrap();
    t.commit(&NoLog).unwrap();
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        let mut holder = mgr.begin_with(TxnOptions {
            isolation: level,
            pessimistic: true,
        });
        assert_eq!(
            holder.get_for_update(b"k").unwrap().as_deref(),
            Some(&b"0"[..])
        );
        let mut optimistic = mgr.begin(level);
        assert_eq!(
            optimistic.get_for_update(b"k").unwrap().as_deref(),
            Some(&b"0"[..]),
            "{level:?}"
        );
        // A read-only optimistic transaction commits at its snapshot.
        optimistic.commit(&NoLog).unwrap();
        drop(holder);
    }
    let stats = mgr.locks().stats();
    assert_eq!((stats.waits, stats.timeouts), (0, 0), "{stats:?}");
}

/// Two shared requests queued behind a writer are both granted when it leaves. The lock
/// timeout is an hour: a waiter that missed its wake-up is not granted late (after its
/// timeout) and passed, it hangs the test until nextest's slow-timeout fails it.
#[test]
fn shared_waiters_behind_a_writer_are_all_granted_when_it_leaves() {
    let m = LockManager::new(Duration::from_secs(3600));
    m.lock(TxnId::new(1), b"k", LockMode::Exclusive).unwrap();
    std::thread::scope(|s| {
        let readers: Vec<_> = (2..=3u64)
            .map(|id| {
                s.spawn({
                    let m = &m;
                    move || m.lock(TxnId::new(id), b"k", LockMode::Shared)
                })
            })
            .collect();
        queued(&m, 2);
        m.release_all(TxnId::new(1));
        for r in readers {
            r.join().unwrap().unwrap();
        }
    });
    let stats = m.stats();
    assert_eq!((stats.waits, stats.timeouts), (2, 0), "{stats:?}");
}
