//! Large values through overflow references, as the database keeps them: a store that
//! writes values above a threshold to "pages" of its own and keeps `VersionValue::Overflow`
//! references in encoded version lists, frees the pages of trimmed versions, and resolves
//! references when transactions read them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lightning_mvcc::{
    Error, Isolation, KeyRange, Lsn, MAX_VALUE_LEN, NoLog, Timestamp, TxnManager, Version,
    VersionList, VersionScan, VersionStore, VersionValue, WriteSet,
};
use lightning_page::PageId;

/// Values longer than this go to overflow pages.
const INLINE_MAX: usize = 16;

/// A store of encoded version lists with an overflow area, like a B+tree's.
#[derive(Default)]
struct PagedStore {
    lists: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    pages: Mutex<HashMap<PageId, Vec<u8>>>,
    next_page: AtomicU64,
    /// Corrupt every overflow read by dropping its last byte.
    short_reads: bool,
}

impl PagedStore {
    fn decode(bytes: Option<&Vec<u8>>) -> lightning_mvcc::Result<VersionList> {
        bytes.map_or_else(|| Ok(VersionList::new()), |b| VersionList::decode(b))
    }

    fn pages(&self) -> usize {
        self.pages.lock().unwrap().len()
    }
}

impl VersionStore for PagedStore {
    fn versions(&self, key: &[u8]) -> lightning_mvcc::Result<VersionList> {
        Self::decode(self.lists.lock().unwrap().get(key))
    }

    /// Not streaming (a test store of a few keys): copies the range out at once.
    fn scan(&self, range: KeyRange) -> VersionScan<'_> {
        let lists = self.lists.lock().unwrap();
        let rows: Vec<_> = lists
            .range::<Vec<u8>, _>((range.0.as_ref(), range.1.as_ref()))
            .map(|(k, v)| Self::decode(Some(v)).map(|l| (k.clone(), l)))
            .collect();
        Box::new(rows.into_iter())
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        _lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> lightning_mvcc::Result<()> {
        let mut lists = self.lists.lock().unwrap();
        let mut pages = self.pages.lock().unwrap();
        for (key, value) in writes.iter() {
            let mut list = Self::decode(lists.get(key))?;
            let value = match value {
                None => VersionValue::Tombstone,
                Some(v) if v.len() <= INLINE_MAX => VersionValue::Value(v.to_vec()),
                Some(v) => {
                    let page = PageId::new(self.next_page.fetch_add(1, Ordering::Relaxed));
                    pages.insert(page, v.to_vec());
                    VersionValue::overflow(page, u64::try_from(v.len()).unwrap())?
                }
            };
            list.push(Version { commit_ts, value })?;
            for gone in list.trim(oldest_active) {
                if let Some((page, _)) = gone.value.as_overflow() {
                    pages.remove(&page);
                }
            }
            if list.is_empty() {
                lists.remove(key);
            } else {
                lists.insert(key.to_vec(), list.encode()?);
            }
        }
        Ok(())
    }

    fn read_overflow(&self, page: PageId, len: u64) -> lightning_mvcc::Result<Vec<u8>> {
        let mut v = self
            .pages
            .lock()
            .unwrap()
            .get(&page)
            .cloned()
            .ok_or(Error::Corrupt("overflow page missing"))?;
        assert_eq!(u64::try_from(v.len()).unwrap(), len);
        if self.short_reads {
            v.pop();
        }
        Ok(v)
    }
}

fn big(tag: u8) -> Vec<u8> {
    vec![tag; 1000]
}

#[test]
fn large_values_are_kept_in_overflow_pages_and_read_back() {
    let mgr = TxnManager::new(Arc::new(PagedStore::default()), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"big", &big(1)).unwrap();
    t.put(b"small", b"inline").unwrap();
    t.commit(&NoLog).unwrap();
    assert_eq!(mgr.store().pages(), 1);
    let stored = mgr.store().versions(b"big").unwrap();
    assert_eq!(
        stored.versions()[0].value.as_overflow().map(|(_, len)| len),
        Some(1000)
    );

    // An old snapshot keeps the first version's pages alive; a new one reads the update.
    let mut old = mgr.begin(Isolation::Snapshot);
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"big", &big(2)).unwrap();
    t.commit(&NoLog).unwrap();
    assert_eq!(old.get(b"big").unwrap(), Some(big(1)));
    let rows = old.scan((std::ops::Bound::Unbounded, std::ops::Bound::Unbounded));
    assert_eq!(
        rows.unwrap(),
        [
            (b"big".to_vec(), big(1)),
            (b"small".to_vec(), b"inline".to_vec())
        ]
    );
    assert_eq!(mgr.store().pages(), 2);
    drop(old);

    // The next write to the key trims the version nobody sees, and its pages go with it.
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"big", &big(3)).unwrap();
    t.commit(&NoLog).unwrap();
    let mut t = mgr.begin(Isolation::Snapshot);
    assert_eq!(t.get(b"big").unwrap(), Some(big(3)));
    assert_eq!(
        mgr.store().pages(),
        2,
        "the version before the newest is kept for the committing snapshot, the first freed"
    );
}

#[test]
fn an_overflow_chain_of_the_wrong_length_is_corruption_not_a_wrong_answer() {
    let store = PagedStore {
        short_reads: true,
        ..PagedStore::default()
    };
    let mgr = TxnManager::new(Arc::new(store), Timestamp::new(0));
    let mut t = mgr.begin(Isolation::Snapshot);
    t.put(b"big", &big(1)).unwrap();
    t.commit(&NoLog).unwrap();
    let mut t = mgr.begin(Isolation::Snapshot);
    assert!(matches!(t.get(b"big"), Err(Error::Corrupt(_))));
    let all = (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
    assert!(matches!(t.scan(all), Err(Error::Corrupt(_))));
}

#[test]
fn a_store_without_overflow_values_reports_a_reference_as_corruption() {
    let store = lightning_mvcc::MemStore::new();
    assert!(matches!(
        store.read_overflow(PageId::new(3), 10),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn the_value_limit_is_the_encodings() {
    assert_eq!(MAX_VALUE_LEN, u64::from(u32::MAX));
    assert!(matches!(
        VersionValue::overflow(PageId::new(1), MAX_VALUE_LEN + 1),
        Err(Error::ValueTooLarge { .. })
    ));
}
