//! Early lock release (ADR 017): a commit whose log knows its record's LSN at once releases
//! its locks when logged and applies before its durability wait. The next holder of one of
//! its keys reads it at once; new snapshots see it only once it is durable; and once a
//! commit cannot be made durable, nothing from it on ever becomes visible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lightning_mvcc::{
    CommitLog, Error, Isolation, LogError, Lsn, MemStore, NoLog, Timestamp, TxnManager, TxnOptions,
    WriteSet,
};

/// A log whose records get their LSN when appended. `early`: it says so
/// ([`CommitLog::logged_lsn`]), so its commits take the early order. `blocks`: its `wait`
/// holds until the test opens the gate (and then reports durability) or fails it.
struct GateLog {
    early: bool,
    blocks: bool,
    next: AtomicU64,
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Default)]
struct Gate {
    open: bool,
    failing: bool,
    /// Waits in progress.
    waiting: usize,
}

impl GateLog {
    fn new(early: bool, blocks: bool) -> Self {
        GateLog {
            early,
            blocks,
            next: AtomicU64::new(1),
            gate: Mutex::new(Gate::default()),
            changed: Condvar::new(),
        }
    }

    /// Blocks until `n` waits are held at the gate.
    fn until_waiting(&self, n: usize) {
        let mut g = self.gate.lock().unwrap();
        while g.waiting < n {
            g = self.changed.wait(g).unwrap();
        }
    }

    fn open(&self) {
        self.gate.lock().unwrap().open = true;
        self.changed.notify_all();
    }

    fn fail(&self) {
        self.gate.lock().unwrap().failing = true;
        self.changed.notify_all();
    }
}

impl CommitLog for GateLog {
    type Ticket = Lsn;

    fn log(&self, _: &WriteSet, _: Timestamp) -> Result<Lsn, LogError> {
        Ok(Lsn::new(self.next.fetch_add(1, Ordering::SeqCst)))
    }

    fn wait(&self, lsn: Lsn) -> Result<Lsn, LogError> {
        if !self.blocks {
            return Ok(lsn);
        }
        let mut g = self.gate.lock().unwrap();
        g.waiting += 1;
        self.changed.notify_all();
        while !g.open && !g.failing {
            g = self.changed.wait(g).unwrap();
        }
        g.waiting -= 1;
        if g.failing {
            Err("injected fsync failure".into())
        } else {
            Ok(lsn)
        }
    }

    fn may_block(&self, _: &Lsn) -> bool {
        self.blocks
    }

    fn logged_lsn(&self, lsn: &Lsn) -> Option<Lsn> {
        self.early.then_some(*lsn)
    }
}

/// Opens the gate when dropped: a failed assertion does not leave a commit held at it (and
/// the test hanging on the thread's join).
struct OpenOnDrop<'a>(&'a GateLog);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

const PESSIMISTIC: TxnOptions = TxnOptions {
    isolation: Isolation::Snapshot,
    pessimistic: true,
};

/// A manager whose lock waits give up soon: a lock that was not released fails the test
/// rather than hanging it (only how long a failing run takes depends on it).
fn manager() -> TxnManager<MemStore> {
    let mgr = TxnManager::with_lock_timeout(
        Arc::new(MemStore::new()),
        Timestamp::new(0),
        Duration::from_secs(2),
    );
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"k", b"0").unwrap();
    t.commit(&NoLog).unwrap();
    mgr
}

fn read(mgr: &TxnManager<MemStore>, key: &[u8]) -> Option<Vec<u8>> {
    mgr.begin(Isolation::Snapshot).get(key).unwrap()
}

#[test]
fn a_lock_is_free_once_its_commit_is_logged_and_new_snapshots_wait_for_durability() {
    let mgr = manager();
    let log = GateLog::new(true, true);
    std::thread::scope(|s| {
        let _open = OpenOnDrop(&log);
        let first = s.spawn(|| {
            let mut t = mgr.begin_with(PESSIMISTIC);
            assert_eq!(t.get_for_update(b"k").unwrap().as_deref(), Some(&b"0"[..]));
            t.put(b"k", b"1").unwrap();
            t.commit(&log)
        });
        log.until_waiting(1);
        // Applied, not durable: a new snapshot does not see it.
        let mut reader = mgr.begin(Isolation::Snapshot);
        assert_eq!(reader.get(b"k").unwrap().as_deref(), Some(&b"0"[..]));
        // The lock is free, and its next holder reads the commit: whatever it commits is
        // logged after it.
        let mut second = mgr.begin_with(PESSIMISTIC);
        assert_eq!(
            second.get_for_update(b"k").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(mgr.locks().stats().waits, 0, "the lock was taken at once");
        drop(second);
        log.open();
        let committed = first.join().unwrap().unwrap();
        // Durable: it returned, and a snapshot begun now sees it; the older one does not.
        assert_eq!(mgr.oracle().watermark(), committed.ts);
        assert_eq!(read(&mgr, b"k").as_deref(), Some(&b"1"[..]));
        assert_eq!(reader.get(b"k").unwrap().as_deref(), Some(&b"0"[..]));
    });
}

#[test]
fn a_lock_taken_before_the_previous_holders_commit_is_applied_waits_for_that_commit() {
    let mgr = manager();
    // An earlier commit in the plain order holds its durability wait before its apply, so
    // the pessimistic commit after it is logged (its lock released) but cannot apply yet.
    let plain = GateLog::new(false, true);
    let early = GateLog::new(true, true);
    std::thread::scope(|s| {
        let _open = OpenOnDrop(&plain);
        let _open_early = OpenOnDrop(&early);
        let before = s.spawn(|| {
            let mut t = mgr.begin(Isolation::Snapshot);
            t.put(b"other", b"x").unwrap();
            t.commit(&plain)
        });
        plain.until_waiting(1);
        let holder = s.spawn(|| {
            let mut t = mgr.begin_with(PESSIMISTIC);
            t.get_for_update(b"k").unwrap();
            t.put(b"k", b"1").unwrap();
            t.commit(&early)
        });
        // The holder's record is logged (and its lock released); it waits for its turn.
        while early.next.load(Ordering::SeqCst) == 1 {
            std::thread::yield_now();
        }
        let next = s.spawn(|| {
            let mut t = mgr.begin_with(PESSIMISTIC);
            let seen = t.get_for_update(b"k");
            (seen, mgr.stats().handoff_waits)
        });
        // Once `next` waits for the holder's commit (or has given up, which fails below),
        // let the earlier commit go on.
        while mgr.stats().handoff_waits == 0 && !next.is_finished() {
            std::thread::yield_now();
        }
        plain.open();
        before.join().unwrap().unwrap();
        let (seen, handoffs) = next.join().unwrap();
        assert_eq!(seen.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(handoffs, 1);
        assert_eq!(mgr.locks().stats().waits, 0);
        // The holder's commit, applied after its turn came, waits for its durability:
        // until then new snapshots do not see it.
        early.until_waiting(1);
        assert_eq!(read(&mgr, b"k").as_deref(), Some(&b"0"[..]));
        early.open();
        holder.join().unwrap().unwrap();
        assert_eq!(read(&mgr, b"k").as_deref(), Some(&b"1"[..]));
    });
}

#[test]
fn after_a_commit_that_cannot_be_made_durable_nothing_becomes_visible() {
    let mgr = manager();
    let failing = GateLog::new(true, true);
    failing.fail();
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"k", b"1").unwrap();
    assert!(matches!(t.commit(&failing), Err(Error::NotDurable { .. })));
    assert_eq!(read(&mgr, b"k").as_deref(), Some(&b"0"[..]));
    // Later commits may have read it (a lock handed on); none is shown, whichever way it is
    // logged, and each says so rather than return as if visible.
    let quick = GateLog::new(true, false);
    let plain = GateLog::new(false, true);
    plain.open();
    let logs: [(&str, &dyn CommitLog<Ticket = Lsn>); 2] = [("a", &quick), ("c", &plain)];
    for (key, log) in logs {
        let mut t = mgr.begin(Isolation::Snapshot);
        t.put(key.as_bytes(), b"v").unwrap();
        let e = t.commit(log).unwrap_err();
        assert!(matches!(e, Error::NotDurable { .. }), "{key}: {e}");
        assert_eq!(read(&mgr, key.as_bytes()), None, "{key}");
    }
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"b", b"v").unwrap();
    assert!(matches!(t.commit(&NoLog), Err(Error::NotDurable { .. })));
    assert_eq!(read(&mgr, b"b"), None);
}
