//! The storage seam: what MVCC needs from the layer that keeps versions.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use lightning_page::{Lsn, PageId};

use crate::WriteSet;
use crate::versions::{Version, VersionList, VersionValue};
use crate::{Result, Timestamp};

/// A key range: start and end bounds.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// A streaming scan of a store: every key of a range with its versions, in key order
/// ([`VersionStore::scan`]).
pub type VersionScan<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, VersionList)>> + 'a>;

/// Whether no key can lie in `range` (start after end, or an empty half-open interval).
pub fn range_is_empty(range: &KeyRange) -> bool {
    match (&range.0, &range.1) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
        _ => false,
    }
}

/// Whether `key` lies in `range`.
pub fn in_range(range: &KeyRange, key: &[u8]) -> bool {
    let after_start = match &range.0 {
        Bound::Included(s) => key >= s.as_slice(),
        Bound::Excluded(s) => key > s.as_slice(),
        Bound::Unbounded => true,
    };
    let before_end = match &range.1 {
        Bound::Included(e) => key <= e.as_slice(),
        Bound::Excluded(e) => key < e.as_slice(),
        Bound::Unbounded => true,
    };
    after_start && before_end
}

/// Where versions live. The database implements it over B+trees; [`MemStore`] is the
/// in-memory implementation the tests use.
pub trait VersionStore: Send + Sync {
    /// The versions of `key`, newest first (empty if none).
    fn versions(&self, key: &[u8]) -> Result<VersionList>;
    /// Every key in `range` with its versions, in key order, as a stream.
    ///
    /// The stream reads the store as it goes, with memory bounded by the keys it holds
    /// at a time, not by the range (the database iterates keyspaces of many gigabytes
    /// through it: a B+tree cursor that re-seeks after the last key it returned). It must
    /// not keep [`apply`](Self::apply) waiting while it is alive: a transaction may scan
    /// while others commit, and a thread may hold a scan while it commits another
    /// transaction. Keys may therefore gain versions while the scan runs; readers pick
    /// their snapshot's version, which no later commit changes. An empty or inverted
    /// range yields nothing. A storage failure is an `Err` item; nothing follows it.
    fn scan(&self, range: KeyRange) -> VersionScan<'_>;

    /// [`scan`](Self::scan) in descending key order, with the same rules.
    ///
    /// The provided method collects the ascending scan and reverses it, so its memory grows
    /// with the range: a store that holds large ranges overrides it with a stream that
    /// walks backwards (as [`MemStore`] and the database's B+tree store do).
    fn scan_rev(&self, range: KeyRange) -> VersionScan<'_> {
        let rows: Result<Vec<_>> = self.scan(range).collect();
        match rows {
            Ok(rows) => Box::new(rows.into_iter().rev().map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
    /// Installs the writes of the commit at `commit_ts` (a `None` value deletes), and trims
    /// the written keys' versions no snapshot at or after `oldest_active` can see. Called in
    /// commit-timestamp order, which is also the order of the commits' log records: `lsn`
    /// is this commit's ([`CommitLog::wait`](crate::CommitLog::wait)'s), so a store that
    /// remembers the last one applied knows the LSN its contents reach — the LSN a
    /// checkpoint of it records, and above which recovery replays.
    fn apply(
        &self,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> Result<()>;

    /// The version of `key` a snapshot at `read_ts` sees. The default goes through
    /// [`versions`](Self::versions); stores override it to avoid copying the whole list.
    fn visible(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Version>> {
        Ok(self.versions(key)?.visible(read_ts).cloned())
    }

    /// The newest commit timestamp of `key`.
    fn latest_ts(&self, key: &[u8]) -> Result<Option<Timestamp>> {
        Ok(self.versions(key)?.latest_ts())
    }

    /// The value of `len` bytes kept in the overflow chain that starts at `page`, for a
    /// [`VersionValue::Overflow`] reference this store wrote (the database reads the B+tree's
    /// overflow pages here). Transactions call it to resolve the references they read and
    /// check the length they get back. The default is for stores that never write
    /// overflow references: meeting one there means the stored versions are corrupt.
    fn read_overflow(&self, page: PageId, len: u64) -> Result<Vec<u8>> {
        let _ = (page, len);
        Err(crate::Error::Corrupt(
            "an overflow reference in a store that keeps no overflow values",
        ))
    }
}

/// How many keys a [`MemStore`] scan copies out under one read lock.
const SCAN_BATCH: usize = 64;

/// A [`MemStore`] scan: copies up to [`SCAN_BATCH`] keys at a time under the read lock and
/// goes on after the last one, so it holds no lock between batches and no more than one
/// batch in memory.
struct MemScan<'a> {
    map: &'a RwLock<BTreeMap<Vec<u8>, VersionList>>,
    /// What is left to read: the next batch starts here.
    rest: KeyRange,
    batch: std::vec::IntoIter<(Vec<u8>, VersionList)>,
    done: bool,
    /// Descending key order.
    rev: bool,
}

impl MemScan<'_> {
    fn refill(&mut self) {
        // `BTreeMap::range` panics on an inverted range; the bounds come from the caller.
        if range_is_empty(&self.rest) {
            self.done = true;
            return;
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let range = map.range::<Vec<u8>, _>((self.rest.0.as_ref(), self.rest.1.as_ref()));
        let copy = |(k, v): (&Vec<u8>, &VersionList)| (k.clone(), v.clone());
        let rows: Vec<(Vec<u8>, VersionList)> = if self.rev {
            range.rev().take(SCAN_BATCH).map(copy).collect()
        } else {
            range.take(SCAN_BATCH).map(copy).collect()
        };
        drop(map);
        match rows.last() {
            Some((last, _)) if rows.len() == SCAN_BATCH => {
                if self.rev {
                    self.rest.1 = Bound::Excluded(last.clone());
                } else {
                    self.rest.0 = Bound::Excluded(last.clone());
                }
            }
            _ => self.done = true,
        }
        self.batch = rows.into_iter();
    }
}

impl Iterator for MemScan<'_> {
    type Item = Result<(Vec<u8>, VersionList)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.batch.next() {
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            self.refill();
        }
    }
}

/// An in-memory [`VersionStore`].
#[derive(Debug, Default)]
pub struct MemStore {
    map: RwLock<BTreeMap<Vec<u8>, VersionList>>,
    keep_all: bool,
}

impl MemStore {
    /// An empty store that trims versions no snapshot can see.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps every version ever written (for checking whole histories).
    pub fn keeping_all_versions() -> Self {
        MemStore {
            keep_all: true,
            ..Self::default()
        }
    }
}

impl VersionStore for MemStore {
    fn versions(&self, key: &[u8]) -> Result<VersionList> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).cloned().unwrap_or_default())
    }

    fn scan(&self, range: KeyRange) -> VersionScan<'_> {
        Box::new(MemScan {
            map: &self.map,
            rest: range,
            batch: Vec::new().into_iter(),
            done: false,
            rev: false,
        })
    }

    fn scan_rev(&self, range: KeyRange) -> VersionScan<'_> {
        Box::new(MemScan {
            map: &self.map,
            rest: range,
            batch: Vec::new().into_iter(),
            done: false,
            rev: true,
        })
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        _lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        // All or nothing: refuse before changing anything if any key has a newer version.
        if writes.iter().any(|(k, _)| {
            map.get(k)
                .and_then(VersionList::latest_ts)
                .is_some_and(|t| t >= commit_ts)
        }) {
            return Err(crate::Error::Corrupt(
                "commit applied out of timestamp order",
            ));
        }
        for (key, value) in writes.iter() {
            let value = value.map_or(VersionValue::Tombstone, |v| VersionValue::Value(v.to_vec()));
            let versions = map.entry(key.to_vec()).or_default();
            versions.push(Version { commit_ts, value })?;
            if !self.keep_all {
                versions.trim(oldest_active);
            }
            if versions.is_empty() {
                map.remove(key);
            }
        }
        Ok(())
    }

    fn visible(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Version>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).and_then(|v| v.visible(read_ts)).cloned())
    }

    fn latest_ts(&self, key: &[u8]) -> Result<Option<Timestamp>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).and_then(VersionList::latest_ts))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use proptest::prelude::*;

    fn bound(kind: u8, k: u8) -> Bound<Vec<u8>> {
        match kind % 3 {
            0 => Bound::Included(vec![k]),
            1 => Bound::Excluded(vec![k]),
            _ => Bound::Unbounded,
        }
    }

    fn store_of(keys: &BTreeSet<u8>) -> MemStore {
        let store = MemStore::new();
        let mut writes = WriteSet::new();
        for k in keys {
            writes.push(&[*k], Some(&[*k])).unwrap();
        }
        store
            .apply(Timestamp::new(1), Lsn::new(1), &writes, Timestamp::new(0))
            .unwrap();
        store
    }

    proptest! {
        /// Across batch boundaries, with every kind of bound (inverted ones included), a
        /// scan returns exactly the model's range, in order.
        #[test]
        fn a_scan_is_the_range_of_the_model(
            keys in proptest::collection::btree_set(any::<u8>(), 0..200),
            (sk, s, ek, e) in (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
        ) {
            let store = store_of(&keys);
            let range: KeyRange = (bound(sk, s), bound(ek, e));
            let got: Vec<Vec<u8>> = store
                .scan(range.clone())
                .map(|r| r.map(|(k, _)| k))
                .collect::<Result<_>>()
                .unwrap();
            let want: Vec<Vec<u8>> = keys
                .iter()
                .map(|k| vec![*k])
                .filter(|k| in_range(&range, k))
                .collect();
            prop_assert_eq!(&got, &want);
            let rev: Vec<Vec<u8>> = store
                .scan_rev(range)
                .map(|r| r.map(|(k, _)| k))
                .collect::<Result<_>>()
                .unwrap();
            prop_assert_eq!(rev, want.into_iter().rev().collect::<Vec<_>>());
        }
    }

    /// A scan holds no lock between items: a commit applied in the middle of one, on the
    /// same thread, goes through (it would deadlock on the store's lock otherwise), and the
    /// scan goes on after it.
    #[test]
    fn a_commit_goes_through_while_a_scan_is_open() {
        let keys: BTreeSet<u8> = (0..200).collect();
        let store = store_of(&keys);
        let mut scan = store.scan((Bound::Unbounded, Bound::Unbounded));
        assert_eq!(scan.next().unwrap().unwrap().0, vec![0]);
        store
            .apply(
                Timestamp::new(2),
                Lsn::new(2),
                &BTreeMap::from([(vec![250], Some(b"new".to_vec()))]).into(),
                Timestamp::new(0),
            )
            .unwrap();
        let rest: Vec<Vec<u8>> = scan.map(|r| r.unwrap().0).collect();
        assert_eq!(
            rest.len(),
            200,
            "199 old keys after the first, and the new one"
        );
        assert_eq!(rest.last(), Some(&vec![250]));
    }
}
