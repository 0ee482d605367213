//! Streaming scans: a transaction's range merges the snapshot with its own writes, reads
//! the store as it goes (memory bounded by the store's batch, not the range), and records
//! the whole range for serializable validation however far it is iterated.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lightning_mvcc::{
    Conflict, Error, Isolation, KeyRange, Lsn, MemStore, NoLog, Timestamp, TxnManager, VersionList,
    VersionScan, VersionStore, WriteSet, in_range,
};
use proptest::prelude::*;

const ALL: (Bound<Vec<u8>>, Bound<Vec<u8>>) = (Bound::Unbounded, Bound::Unbounded);

/// A store that counts the rows its scans hand out.
#[derive(Default)]
struct CountingStore {
    inner: MemStore,
    pulled: AtomicU64,
}

impl VersionStore for CountingStore {
    fn versions(&self, key: &[u8]) -> lightning_mvcc::Result<VersionList> {
        self.inner.versions(key)
    }

    fn scan(&self, range: KeyRange) -> VersionScan<'_> {
        Box::new(self.inner.scan(range).inspect(|_| {
            self.pulled.fetch_add(1, Ordering::Relaxed);
        }))
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> lightning_mvcc::Result<()> {
        self.inner.apply(commit_ts, lsn, writes, oldest_active)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn filled(n: u64) -> TxnManager<CountingStore> {
    let mgr = TxnManager::new(Arc::new(CountingStore::default()), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    for i in 0..n {
        t.put(&key(i), b"v").unwrap();
    }
    t.commit(&NoLog).unwrap();
    mgr
}

/// Regression: `Transaction::scan` collected the store's whole range before returning the
/// first row. Taking three rows of 10,000 now pulls three from the store (and one more it
/// peeks at to merge with the transaction's writes).
#[test]
fn a_scan_pulls_from_the_store_only_what_it_returns() {
    let mgr = filled(10_000);
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(&key(1), b"mine").unwrap();
    let first: Vec<_> = t.range(ALL).take(3).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        first,
        [
            (key(0), b"v".to_vec()),
            (key(1), b"mine".to_vec()),
            (key(2), b"v".to_vec())
        ]
    );
    let pulled = mgr.store().pulled.load(Ordering::Relaxed);
    assert!(pulled <= 4, "{pulled} rows pulled from the store for 3");
    // And the whole range, streamed, is all of it.
    assert_eq!(t.range(ALL).count(), 10_000);
}

/// A scan left open does not hold up commits of other transactions on the same thread.
#[test]
fn a_commit_goes_through_while_another_transactions_scan_is_open() {
    let mgr = filled(500);
    let mut reader = mgr.begin(Isolation::Snapshot);
    let mut scan = reader.range(ALL);
    assert_eq!(scan.next().unwrap().unwrap().0, key(0));
    let mut writer = mgr.begin(Isolation::Snapshot);
    writer.put(&key(250), b"new").unwrap();
    writer.put(&key(9999), b"new").unwrap();
    writer.commit(&NoLog).unwrap();
    // The rest of the scan still reads the reader's snapshot.
    let rest: Vec<_> = scan.collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.len(), 499);
    assert!(rest.iter().all(|(_, v)| v == b"v"));
}

/// Serializable: the range is recorded when the scan starts, not when it ends, so a scan
/// dropped after one row (or before any) still catches a phantom anywhere in its range.
#[test]
fn a_serializable_scan_records_its_whole_range_however_far_it_is_read() {
    for rows in [0, 1] {
        let mgr = filled(10);
        let mut t1 = mgr.begin(Isolation::Serializable);
        let range: KeyRange = (Bound::Included(key(0)), Bound::Excluded(key(100)));
        assert_eq!(t1.range(range).take(rows).count(), rows);
        let mut t2 = mgr.begin(Isolation::Snapshot);
        t2.put(&key(50), b"phantom").unwrap();
        t2.commit(&NoLog).unwrap();
        t1.put(b"elsewhere", b"x").unwrap();
        match t1.commit(&NoLog) {
            Err(Error::Conflict(Conflict::Phantom { start, end })) => {
                assert_eq!((start, end), (Some(key(0)), Some(key(100))));
            }
            other => panic!("{rows} rows read: expected a phantom, got {other:?}"),
        }
    }
}

fn bound(kind: u8, k: u8) -> Bound<Vec<u8>> {
    match kind % 3 {
        0 => Bound::Included(vec![k]),
        1 => Bound::Excluded(vec![k]),
        _ => Bound::Unbounded,
    }
}

proptest! {
    /// The merged view is the model's: committed keys (some deleted by later commits),
    /// overwritten, deleted and added by the transaction, over any range.
    #[test]
    fn a_scan_is_the_snapshot_merged_with_the_transactions_writes(
        committed in proptest::collection::vec((0u8..60, proptest::option::of(any::<u8>())), 0..80),
        mine in proptest::collection::vec((0u8..60, proptest::option::of(any::<u8>())), 0..30),
        after in proptest::collection::vec((0u8..60, any::<u8>()), 0..10),
        (sk, s, ek, e) in (any::<u8>(), 0u8..64, any::<u8>(), 0u8..64),
    ) {
        let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in &committed {
            let mut t = mgr.begin(Isolation::Snapshot);
            if let Some(v) = v {
                t.put(&[*k], &[*v]).unwrap();
                model.insert(vec![*k], vec![*v]);
            } else {
                t.delete(&[*k]).unwrap();
                model.remove(&vec![*k]);
            }
            t.commit(&NoLog).unwrap();
        }
        let mut t = mgr.begin(Isolation::Snapshot);
        for (k, v) in &mine {
            if let Some(v) = v {
                t.put(&[*k], &[*v, 0]).unwrap();
                model.insert(vec![*k], vec![*v, 0]);
            } else {
                t.delete(&[*k]).unwrap();
                model.remove(&vec![*k]);
            }
        }
        // Commits after the snapshot are invisible to it.
        for (k, v) in &after {
            let mut other = mgr.begin(Isolation::Snapshot);
            other.put(&[*k], &[*v, 1, 1]).unwrap();
            other.commit(&NoLog).unwrap();
        }
        let range: KeyRange = (bound(sk, s), bound(ek, e));
        let got = t.scan(range.clone()).unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = model
            .into_iter()
            .filter(|(k, _)| in_range(&range, k))
            .collect();
        prop_assert_eq!(&got, &want);
        // Backwards: the same rows, last first.
        let rev = t.range_rev(range).collect::<lightning_mvcc::Result<Vec<_>>>().unwrap();
        prop_assert_eq!(rev, want.into_iter().rev().collect::<Vec<_>>());
    }
}

#[test]
fn a_reverse_scan_streams_from_a_store_that_walks_backwards() {
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    for i in 0..1000 {
        t.put(&key(i), b"v").unwrap();
    }
    t.commit(&NoLog).unwrap();
    let mut t = mgr.begin(Isolation::Snapshot);
    t.delete(&key(999)).unwrap();
    t.put(&key(5000), b"mine").unwrap();
    let first: Vec<Vec<u8>> = t.range_rev(ALL).take(3).map(|r| r.unwrap().0).collect();
    assert_eq!(first, vec![key(5000), key(998), key(997)]);
}
