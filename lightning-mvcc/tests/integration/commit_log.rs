//! The commit log: records reach it in commit-timestamp order (`log` runs under the commit
//! ordering), durability is waited for outside it, and each commit reports — and hands the
//! store — its record's LSN, in the same order.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lightning_mvcc::{
    CommitLog, Isolation, LogError, Lsn, MemStore, Timestamp, TxnManager, VersionList, VersionScan,
    VersionStore, WriteSet,
};

/// A log in memory: the timestamps of its records, in the order they were appended; a
/// record's LSN is its position after [`FIRST_LSN`] - 1 (a log truncated before, so that
/// LSNs and timestamps differ).
const FIRST_LSN: u64 = 1001;

#[derive(Default)]
struct RecordingLog {
    records: Mutex<Vec<Timestamp>>,
}

impl RecordingLog {
    fn append(&self, ts: Timestamp) -> Lsn {
        let mut records = self.records.lock().unwrap();
        records.push(ts);
        Lsn::new(FIRST_LSN - 1 + u64::try_from(records.len()).unwrap())
    }

    fn records(&self) -> Vec<Timestamp> {
        self.records.lock().unwrap().clone()
    }
}

impl CommitLog for RecordingLog {
    type Ticket = Lsn;

    fn log(&self, _: &WriteSet, ts: Timestamp) -> Result<Lsn, LogError> {
        Ok(self.append(ts))
    }

    fn wait(&self, lsn: Lsn) -> Result<Lsn, LogError> {
        // Other commits log and wait meanwhile: the waits are not ordered.
        std::thread::yield_now();
        Ok(lsn)
    }
}

/// A store that records the `(commit ts, lsn)` of every apply, in order.
#[derive(Default)]
struct ApplyOrder {
    inner: MemStore,
    applied: Mutex<Vec<(Timestamp, Lsn)>>,
}

impl VersionStore for ApplyOrder {
    fn versions(&self, key: &[u8]) -> lightning_mvcc::Result<VersionList> {
        self.inner.versions(key)
    }

    fn scan(&self, range: lightning_mvcc::KeyRange) -> VersionScan<'_> {
        self.inner.scan(range)
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> lightning_mvcc::Result<()> {
        self.applied.lock().unwrap().push((commit_ts, lsn));
        self.inner.apply(commit_ts, lsn, writes, oldest_active)
    }
}

/// Many threads committing at once: the log holds their records in strictly increasing
/// timestamp order, each commit reports the LSN of its own record, and the store is handed
/// the commits in timestamp order with increasing LSNs.
#[test]
fn records_reach_the_log_in_timestamp_order_and_commits_report_their_lsn() {
    let mgr = TxnManager::new(Arc::new(ApplyOrder::default()), Timestamp::new(0));
    let log = RecordingLog::default();
    let reported: Mutex<Vec<(Timestamp, Lsn)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (mgr, log, reported) = (&mgr, &log, &reported);
            s.spawn(move || {
                for i in 0..300u64 {
                    let mut txn = mgr.begin(Isolation::Snapshot);
                    txn.put(format!("t{t}-{i}").as_bytes(), b"v").unwrap();
                    let c = txn.commit(log).unwrap();
                    reported.lock().unwrap().push((c.ts, c.lsn.unwrap()));
                }
            });
        }
    });
    let records = log.records();
    assert_eq!(records.len(), 1200);
    if let Some([earlier, later]) = records.windows(2).find(|w| w[0] >= w[1]) {
        panic!("commit {later} was logged after commit {earlier}");
    }
    for (ts, lsn) in reported.into_inner().unwrap() {
        let at = usize::try_from(lsn.get() - FIRST_LSN).unwrap();
        assert_eq!(records[at], ts, "commit {ts} reported LSN {lsn}");
    }
    let applied = mgr.store().applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 1200);
    assert!(
        applied
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "applied out of order"
    );
}

/// A log whose first append holds on until a second one begins — or, as happens when the
/// second commit cannot be stamped before the first is logged, until it gives up waiting.
#[derive(Default)]
struct HoldingLog {
    log: RecordingLog,
    /// Appends begun so far.
    begun: Mutex<u64>,
    changed: Condvar,
}

/// How long the first append waits for a second: only the commit under test's duration
/// depends on it, never its outcome.
const HOLD: Duration = Duration::from_millis(300);

impl CommitLog for HoldingLog {
    type Ticket = Lsn;

    fn log(&self, writes: &WriteSet, ts: Timestamp) -> Result<Lsn, LogError> {
        let mut begun = self.begun.lock().unwrap();
        *begun += 1;
        if *begun == 1 {
            // Hold the first commit inside its log step, then append.
            self.changed.notify_all();
            let (guard, _) = self
                .changed
                .wait_timeout_while(begun, HOLD, |n| *n < 2)
                .unwrap();
            drop(guard);
            return self.log.log(writes, ts);
        }
        // A later one appends before it lets the first go on.
        let lsn = self.log.log(writes, ts);
        self.changed.notify_all();
        drop(begun);
        lsn
    }

    fn wait(&self, lsn: Lsn) -> Result<Lsn, LogError> {
        Ok(lsn)
    }
}

/// Regression: the log step ran after the commit ordering was released, so a commit
/// stamped later could reach the log first. Here the first commit is held inside its log
/// step while a second one commits: the second must not get into the log before it.
#[test]
fn a_commit_stamped_later_cannot_reach_the_log_first() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let log = HoldingLog::default();
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            let mut t = mgr.begin(Isolation::Snapshot);
            t.put(b"a", b"1").unwrap();
            t.commit(&log).unwrap().ts
        });
        // The first commit is inside its log step (stamped, holding on) before the second
        // begins.
        let mut begun = log.begun.lock().unwrap();
        while *begun == 0 {
            begun = log.changed.wait(begun).unwrap();
        }
        drop(begun);
        let second = s.spawn(|| {
            let mut t = mgr.begin(Isolation::Snapshot);
            t.put(b"b", b"2").unwrap();
            t.commit(&log).unwrap().ts
        });
        let (first, second) = (first.join().unwrap(), second.join().unwrap());
        assert!(first < second);
        assert_eq!(
            log.log.records(),
            [first, second],
            "log order must be commit-timestamp order"
        );
    });
}
