//! The storage seam: what MVCC needs from the layer that keeps versions.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use lightning_page::PageId;

use crate::versions::{Version, VersionList, VersionValue};
use crate::{Result, Timestamp};

/// A key range: start and end bounds.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

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
    /// Every key in `range` with its versions, in key order.
    fn scan(&self, range: &KeyRange) -> Result<Vec<(Vec<u8>, VersionList)>>;
    /// Installs the writes of the commit at `commit_ts` (a `None` value deletes), and trims
    /// the written keys' versions no snapshot at or after `oldest_active` can see. Called in
    /// commit-timestamp order.
    fn apply(
        &self,
        commit_ts: Timestamp,
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
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

    fn scan(&self, range: &KeyRange) -> Result<Vec<(Vec<u8>, VersionList)>> {
        if range_is_empty(range) {
            return Ok(Vec::new());
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map
            .range::<Vec<u8>, _>((range.0.as_ref(), range.1.as_ref()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
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
        for (key, value) in writes {
            let value = value
                .clone()
                .map_or(VersionValue::Tombstone, VersionValue::Value);
            let versions = map.entry(key.clone()).or_default();
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
