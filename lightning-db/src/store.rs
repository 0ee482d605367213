//! The version store: `lightning_mvcc::VersionStore` over one B+tree per keyspace.
//!
//! A keyspace's tree maps the user's key to its encoded version list
//! ([`VersionList::encode`], newest first; ADR 009). The transaction layer's keys carry a
//! 4-byte keyspace prefix ([`crate::keys`]) that routes them to a tree. Writes to a
//! keyspace that is gone (dropped while a transaction was open, or replayed from a WAL
//! record older than the drop) are skipped; reads of one find nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use lightning_btree::BTree;
use lightning_mvcc::{
    KeyRange, Lsn, Timestamp, Version, VersionList, VersionScan, VersionStore, VersionValue,
    WriteSet, push_encoded,
};

use crate::keys;

/// Rows a scan reads from its tree at a time (the tree is re-entered after each batch, so
/// commits go on between batches).
const SCAN_BATCH: usize = 64;
/// Keys remembered for the background GC; past it, the next pass walks every tree.
const GC_QUEUE_LIMIT: usize = 1 << 20;
/// Keys one GC step handles under the store's write gate.
const GC_STEP: usize = 128;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last commit applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) lsn: Lsn,
    pub(crate) ts: Timestamp,
}

/// GC counters.
#[derive(Debug, Default)]
pub(crate) struct GcCounters {
    pub(crate) passes: AtomicU64,
    pub(crate) versions_removed: AtomicU64,
    pub(crate) keys_removed: AtomicU64,
}

/// Keys written since the last pass whose lists have versions to collect: appended as
/// commits apply them (a push, not a hash-set insert, on the commit path), sorted and
/// deduplicated when the queue fills and when a pass takes them.
#[derive(Debug, Default)]
struct GcQueue {
    keys: Vec<Vec<u8>>,
    /// The queue overflowed: the next pass walks every tree.
    overflowed: bool,
}

impl GcQueue {
    /// Sorts the keys and drops repeats.
    fn compact(&mut self) {
        self.keys.sort_unstable();
        self.keys.dedup();
    }
}

/// Keyspace id -> its tree.
pub(crate) type TreeMap = Arc<HashMap<u32, Arc<BTree>>>;

/// Version lists in B+trees, one per keyspace, sharing one page store.
pub(crate) struct TreeStore {
    pub(crate) pages: Arc<lightning_btree::Store>,
    /// The keyspaces' trees, replaced whole on every change (keyspaces change rarely), so
    /// that a read snapshot takes the map once ([`tree_map`](Self::tree_map)) and then
    /// reaches its trees with no shared counter touched per read.
    trees: RwLock<TreeMap>,
    /// Held shared by every change to the trees (a commit's apply, a GC step, a keyspace
    /// being emptied), exclusively by a checkpoint while it records the roots and ends the
    /// generation: no tree changes between the roots it writes and its switch.
    gate: RwLock<()>,
    /// Serializes read-modify-write of version lists (apply against GC), and keeps the
    /// apply's buffer for encoded lists from one commit to the next (up to [`KEEP_BUFFER`]).
    rmw: Mutex<Vec<u8>>,
    applied: Mutex<Applied>,
    /// Commits applied by bulk loading an empty keyspace ([`TreeStore::load_into_empty`]).
    bulk_loads: AtomicU64,
    /// Set once a write failed in a way that leaves the trees unknown: no later write and
    /// no checkpoint may go on.
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Set when a commit could be neither applied whole nor undone: the trees in memory
    /// hold part of it, so reads are refused too (a reopen rebuilds them from the last
    /// checkpoint and the WAL).
    damaged: AtomicBool,
    gc_queue: Mutex<GcQueue>,
    /// Keys the queue holds before it overflows into a full pass ([`GC_QUEUE_LIMIT`]).
    gc_queue_limit: usize,
    pub(crate) gc: GcCounters,
    /// For a read-only open: the version lists of the keys the WAL replay changed, kept in
    /// memory over the trees (an empty list hides the tree's entry). `None`: commits are
    /// applied to the trees.
    overlay: Option<RwLock<BTreeMap<Vec<u8>, VersionList>>>,
    /// The page file, for errors.
    file: PathBuf,
}

impl std::fmt::Debug for TreeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

fn store_err(e: impl Into<crate::Error>) -> lightning_mvcc::Error {
    lightning_mvcc::Error::Store(Box::new(e.into()))
}

/// Whether a list still holds versions a later GC pass may remove.
fn collectable(list: &VersionList) -> bool {
    list.versions().len() > 1
        || list
            .versions()
            .first()
            .is_some_and(|v| v.value == VersionValue::Tombstone)
}

impl TreeStore {
    pub(crate) fn new(pages: Arc<lightning_btree::Store>, applied: Applied, file: PathBuf) -> Self {
        TreeStore {
            pages,
            trees: RwLock::default(),
            gate: RwLock::default(),
            rmw: Mutex::default(),
            applied: Mutex::new(applied),
            bulk_loads: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            damaged: AtomicBool::new(false),
            gc_queue: Mutex::default(),
            gc_queue_limit: GC_QUEUE_LIMIT,
            gc: GcCounters::default(),
            overlay: None,
            file,
        }
    }

    /// Makes this a read-only store: commits (the WAL replay) go to an overlay in memory,
    /// never into the trees.
    pub(crate) fn read_only(mut self) -> Self {
        self.overlay = Some(RwLock::default());
        self
    }

    /// Whether this is a read-only store with an overlay.
    pub(crate) fn has_overlay(&self) -> bool {
        self.overlay.is_some()
    }

    /// The overlay's list for `key` (prefixed), when the store has an overlay holding it.
    pub(crate) fn overlay_versions(&self, key: &[u8]) -> Option<VersionList> {
        let overlay = self.overlay.as_ref()?;
        overlay
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The overlay's rows in `range`, in scan order (empty without an overlay).
    fn overlay_rows(&self, range: &KeyRange, rev: bool) -> VecDeque<(Vec<u8>, VersionList)> {
        let Some(overlay) = self.overlay.as_ref() else {
            return VecDeque::new();
        };
        let map = overlay.read().unwrap_or_else(PoisonError::into_inner);
        if lightning_mvcc::range_is_empty(range) {
            return VecDeque::new();
        }
        let rows = map.range::<Vec<u8>, _>((range.0.as_ref(), range.1.as_ref()));
        let copy = |(k, v): (&Vec<u8>, &VersionList)| (k.clone(), v.clone());
        if rev {
            rows.rev().map(copy).collect()
        } else {
            rows.map(copy).collect()
        }
    }

    /// Applies a replayed commit to the overlay.
    fn apply_to_overlay(
        &self,
        overlay: &RwLock<BTreeMap<Vec<u8>, VersionList>>,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
    ) -> lightning_mvcc::Result<()> {
        let mut map = overlay.write().unwrap_or_else(PoisonError::into_inner);
        for (key, value) in writes.iter() {
            let Some((id, user)) = keys::split(key) else {
                continue;
            };
            let Some(tree) = self.tree(id) else { continue };
            let mut list = match map.get(key) {
                Some(list) => list.clone(),
                None => self.read_list(&tree, id, user)?,
            };
            let value = value.map_or(VersionValue::Tombstone, |v| VersionValue::Value(v.to_vec()));
            list.push(Version { commit_ts, value })?;
            list.trim(commit_ts);
            map.insert(key.to_vec(), list);
        }
        drop(map);
        *lock(&self.applied) = Applied { lsn, ts: commit_ts };
        Ok(())
    }

    /// Holds off checkpoints while the trees change.
    pub(crate) fn write_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The quiet point of a checkpoint: no tree changes while it is held.
    pub(crate) fn quiet(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn applied(&self) -> Applied {
        *lock(&self.applied)
    }

    /// The tree of keyspace `id`, if it exists.
    pub(crate) fn tree(&self, id: u32) -> Option<Arc<BTree>> {
        self.trees
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub(crate) fn add_tree(&self, id: u32, tree: Arc<BTree>) {
        let mut map = self.trees.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::clone(&map);
        next.insert(id, tree);
        *map = Arc::new(next);
    }

    pub(crate) fn remove_tree(&self, id: u32) -> Option<Arc<BTree>> {
        let mut map = self.trees.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::clone(&map);
        let gone = next.remove(&id);
        *map = Arc::new(next);
        gone
    }

    /// The trees as they are now, for a read snapshot to hold.
    pub(crate) fn tree_map(&self) -> TreeMap {
        Arc::clone(&self.trees.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every keyspace's id and tree.
    pub(crate) fn trees(&self) -> Vec<(u32, Arc<BTree>)> {
        let mut all: Vec<_> = self
            .trees
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, t)| (*id, Arc::clone(t)))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Why the store refuses writes, if it does.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.failed.load(Ordering::Acquire) {
            lock(&self.failure).clone()
        } else {
            None
        }
    }

    /// Refuses every later write and checkpoint, saying why.
    pub(crate) fn fail(&self, reason: String) {
        let mut f = lock(&self.failure);
        if f.is_none() {
            tracing::error!(%reason, "the database turns read-only");
            *f = Some(reason);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// Refuses reads once the trees in memory hold part of a commit.
    pub(crate) fn check_readable(&self) -> crate::Result<()> {
        if self.damaged.load(Ordering::Acquire) {
            return Err(crate::Error::Damaged {
                reason: self.failure().unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn check_writable(&self) -> lightning_mvcc::Result<()> {
        match self.failure() {
            Some(reason) => Err(store_err(crate::Error::ReadOnly { reason })),
            None => Ok(()),
        }
    }

    fn decode(&self, id: u32, user: &[u8], bytes: &[u8]) -> lightning_mvcc::Result<VersionList> {
        VersionList::decode(bytes).map_err(|e| self.damaged(id, user, &e))
    }

    /// The error for the damaged version list of `user` in keyspace `id`.
    fn damaged(&self, id: u32, user: &[u8], e: &lightning_mvcc::Error) -> lightning_mvcc::Error {
        store_err(crate::Error::Corruption {
            file: self.file.clone(),
            what: format!(
                "the version list of key {:?} in keyspace {id}: {e}",
                String::from_utf8_lossy(user)
            ),
        })
    }

    fn read_list(&self, tree: &BTree, id: u32, user: &[u8]) -> lightning_mvcc::Result<VersionList> {
        match tree.get(user).map_err(store_err)? {
            Some(bytes) => self.decode(id, user, &bytes),
            None => Ok(VersionList::new()),
        }
    }

    /// Writes `list` at `user` (removing the key when it is empty).
    fn write_list(tree: &BTree, user: &[u8], list: &VersionList) -> lightning_mvcc::Result<()> {
        if list.is_empty() {
            tree.remove(user).map_err(store_err)?;
        } else {
            tree.insert(user, &list.encode()?).map_err(store_err)?;
        }
        Ok(())
    }

    fn queue_for_gc(&self, keys: Vec<Vec<u8>>) {
        if keys.is_empty() {
            return;
        }
        let mut q = lock(&self.gc_queue);
        for k in keys {
            if q.keys.len() >= self.gc_queue_limit {
                // Full: drop the repeats; if that leaves it over three quarters full, give
                // up on it (so that it is not sorted again on every later key).
                q.compact();
                if q.keys.len() >= self.gc_queue_limit / 4 * 3 {
                    q.overflowed = true;
                    break;
                }
            }
            q.keys.push(k);
        }
    }

    /// Keys waiting for the background GC (each once).
    pub(crate) fn gc_pending(&self) -> u64 {
        let mut q = lock(&self.gc_queue);
        q.compact();
        q.keys.len() as u64
    }

    /// Whether any key waits for the background GC.
    pub(crate) fn gc_queued(&self) -> bool {
        !lock(&self.gc_queue).keys.is_empty()
    }

    /// Removes the versions no snapshot at or after `oldest` can see, from the keys queued
    /// since the last pass (or from every key, after the queue overflowed). Commits go on
    /// between steps of [`GC_STEP`] keys. Returns the versions removed.
    pub(crate) fn gc_pass(&self, oldest: Timestamp) -> crate::Result<u64> {
        let (queued, overflowed) = {
            let mut q = lock(&self.gc_queue);
            (
                std::mem::take(&mut q.keys),
                std::mem::take(&mut q.overflowed),
            )
        };
        let mut keys = queued;
        keys.sort_unstable();
        keys.dedup();
        let mut removed = 0;
        let mut again = Vec::new();
        for chunk in keys.chunks(GC_STEP) {
            removed += self.gc_keys(chunk.iter().map(Vec::as_slice), oldest, &mut again)?;
        }
        if overflowed {
            for (id, tree) in self.trees() {
                let mut from: Bound<Vec<u8>> = Bound::Unbounded;
                loop {
                    let batch: Vec<Vec<u8>> = tree
                        .range::<&[u8], _>((from.as_ref().map(Vec::as_slice), Bound::Unbounded))
                        .take(GC_STEP)
                        .map(|r| r.map(|(k, _)| keys::join(id, &k)))
                        .collect::<lightning_btree::Result<_>>()?;
                    let Some(last) = batch.last() else { break };
                    // INVARIANT: `keys::join` put a `keys::PREFIX`-byte keyspace prefix in
                    // front of every key of `batch`, so `last` is at least that long.
                    from = Bound::Excluded(last[keys::PREFIX..].to_vec());
                    removed += self.gc_keys(batch.iter().map(Vec::as_slice), oldest, &mut again)?;
                }
            }
        }
        self.queue_for_gc(again);
        self.gc.passes.fetch_add(1, Ordering::Relaxed);
        Ok(removed)
    }

    fn gc_keys<'k>(
        &self,
        keys: impl Iterator<Item = &'k [u8]>,
        oldest: Timestamp,
        again: &mut Vec<Vec<u8>>,
    ) -> crate::Result<u64> {
        let mut removed = 0;
        for key in keys {
            let Some((id, user)) = keys::split(key) else {
                continue;
            };
            let Some(tree) = self.tree(id) else { continue };
            // The gate and the read-modify-write lock per key, not per step: a commit's
            // apply waits for one key's GC at most (a whole step's was hundreds of µs, more
            // than a durable commit's fsync).
            let _gate = self.write_gate();
            if let Some(reason) = self.failure() {
                return Err(crate::Error::ReadOnly { reason });
            }
            let _rmw = lock(&self.rmw);
            let mut list = self.read_list(&tree, id, user).map_err(unstore)?;
            let gone = list.trim(oldest).len() as u64;
            if gone > 0 {
                // One write per key: all or nothing on its own, and the list stays valid
                // whichever way it goes, so a failure here needs no undo.
                if let Err(e) = Self::write_list(&tree, user, &list) {
                    let e = unstore(e);
                    self.fail(format!("a GC write failed: {e}"));
                    return Err(e);
                }
                removed += gone;
                self.gc.versions_removed.fetch_add(gone, Ordering::Relaxed);
                if list.is_empty() {
                    self.gc.keys_removed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if collectable(&list) {
                again.push(key.to_vec());
            }
        }
        Ok(removed)
    }
}

/// A version list as it was before a commit changed it: the tree, the key, the bytes.
/// The largest buffer for encoded version lists that an apply keeps for the next one: a
/// single-key commit then allocates none, and a huge list's buffer is not held forever.
const KEEP_BUFFER: usize = 64 << 10;

/// A write to put back if a later one of the commit fails: the tree, the key, and where its
/// old list lies in the commit's undo buffer (`None`: the key had no list).
type Undo<'k> = (Arc<BTree>, &'k [u8], Option<(usize, usize)>);

/// The fewest writes for which a commit into an empty keyspace is bulk loaded
/// ([`TreeStore::load_into_empty`]); below it, key by key is as fast.
const BULK_APPLY_MIN: usize = 4096;

/// How full a bulk-loaded tree's pages are: room for about a fifth more in each leaf
/// before later inserts split it.
const BULK_FILL: f64 = 0.8;

impl TreeStore {
    /// Applies a large commit that only puts keys into one keyspace whose tree is empty (a
    /// load into a new or emptied keyspace) by building the tree bottom up from the sorted
    /// writes ([`BTree::bulk_load`]): every page is written once, filled to [`BULK_FILL`],
    /// instead of one descent and one leaf edit per key. All or nothing, as a bulk load
    /// is. `None` when the commit is not such a one: the caller applies it key by key.
    fn load_into_empty(
        &self,
        commit_ts: Timestamp,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> Option<lightning_mvcc::Result<()>> {
        if writes.len() < BULK_APPLY_MIN {
            return None;
        }
        let (first, _) = writes.get(0)?;
        let (last, _) = writes.get(writes.len() - 1)?;
        let (id, _) = keys::split(first)?;
        // The keys are sorted: the first and the last in one keyspace means all are.
        if keys::split(last)?.0 != id {
            return None;
        }
        // The tree first (one descent), then the writes (a pass over all of them): a large
        // commit into a keyspace that has keys is turned away without reading its writes.
        let tree = self.tree(id)?;
        match tree.is_empty() {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(store_err(e))),
        }
        if writes.iter().any(|(_, v)| v.is_none()) {
            return None;
        }
        // Each key's new list (one version), end to end in one buffer.
        let mut lists = Vec::new();
        let mut spans = Vec::with_capacity(writes.len());
        let mut one = Vec::new();
        for (_, value) in writes.iter() {
            if let Err(e) = push_encoded(None, commit_ts, value, oldest_active, &mut one) {
                return Some(Err(e));
            }
            spans.push((lists.len(), one.len()));
            lists.extend_from_slice(&one);
        }
        let items = writes.iter().zip(&spans).map(|((key, _), &(at, len))| {
            let user = keys::split(key).map_or(key, |(_, user)| user);
            // INVARIANT: the span was taken from this buffer, so `get` finds it.
            (user, lists.get(at..at + len).unwrap_or_default())
        });
        match tree.bulk_load(items, BULK_FILL) {
            Ok(_) => Some(Ok(())),
            // No entry, but not a bare empty leaf either (refused before anything changed).
            Err(lightning_btree::Error::NotEmpty) => None,
            Err(e) => Some(Err(store_err(e))),
        }
    }
}

/// Puts back the lists `undo` saved (in `bytes`), last write first; stops at the first
/// failure.
fn undo_writes(undo: Vec<Undo<'_>>, bytes: &[u8]) -> lightning_btree::Result<()> {
    for (tree, user, old) in undo.into_iter().rev() {
        match old {
            // INVARIANT: the span was taken from this buffer, so `get` finds it.
            Some((at, len)) => tree.insert(user, bytes.get(at..at + len).unwrap_or_default())?,
            None => {
                tree.remove(user)?;
            }
        }
    }
    Ok(())
}

/// The database error inside an `mvcc::Error::Store`, or the mvcc error itself.
pub(crate) fn unstore(e: lightning_mvcc::Error) -> crate::Error {
    match e {
        lightning_mvcc::Error::Store(cause) => match cause.downcast::<crate::Error>() {
            Ok(e) => *e,
            Err(other) => crate::Error::Txn(lightning_mvcc::Error::Store(other)),
        },
        e => crate::Error::Txn(e),
    }
}

impl VersionStore for TreeStore {
    fn versions(&self, key: &[u8]) -> lightning_mvcc::Result<VersionList> {
        self.check_readable().map_err(store_err)?;
        if let Some(list) = self.overlay_versions(key) {
            return Ok(list);
        }
        let Some((id, user)) = keys::split(key) else {
            return Ok(VersionList::new());
        };
        match self.tree(id) {
            Some(tree) => self.read_list(&tree, id, user),
            None => Ok(VersionList::new()),
        }
    }

    fn scan(&self, range: KeyRange) -> VersionScan<'_> {
        self.scan_dir(range, false)
    }

    fn scan_rev(&self, range: KeyRange) -> VersionScan<'_> {
        self.scan_dir(range, true)
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> lightning_mvcc::Result<()> {
        if let Some(overlay) = &self.overlay {
            return self.apply_to_overlay(overlay, commit_ts, lsn, writes);
        }
        let _gate = self.write_gate();
        self.check_writable()?;
        let mut rmw = lock(&self.rmw);
        if let Some(loaded) = self.load_into_empty(commit_ts, writes, oldest_active) {
            if let Err(e) = &loaded {
                // The tree is as it was (a bulk load is all or nothing), but what the log
                // says is committed is not in it: refuse writes, as a failed apply does.
                self.fail(format!("applying commit {commit_ts} failed: {e}"));
            } else {
                *lock(&self.applied) = Applied { lsn, ts: commit_ts };
                self.bulk_loads.fetch_add(1, Ordering::Relaxed);
            }
            return loaded;
        }
        // The lists as they were, to put back if a later write of the commit fails: a
        // commit is applied whole or not at all.
        let mut undo: Vec<Undo<'_>> = Vec::new();
        // The old lists, end to end (one buffer, not an allocation per key).
        let mut undo_bytes: Vec<u8> = Vec::new();
        let mut gc = Vec::new();
        let mut outcome = Ok(());
        // The tree of the keyspace written last: a commit's keys come sorted, so keyspace by
        // keyspace, and the tree map is looked up once per keyspace, not once per key.
        let mut current: Option<(u32, Arc<BTree>)> = None;
        let mut encoded = std::mem::take(&mut *rmw);
        for (i, (key, value)) in writes.iter().enumerate() {
            // Nothing after the last write can fail: it needs no undo, so its old list is
            // read in place instead of copied out (a single-key commit copies nothing).
            let last = i + 1 == writes.len();
            let Some((id, user)) = keys::split(key) else {
                continue;
            };
            let tree = match &current {
                Some((at, tree)) if *at == id => Arc::clone(tree),
                _ => {
                    let Some(tree) = self.tree(id) else { continue };
                    current = Some((id, Arc::clone(&tree)));
                    tree
                }
            };
            let step = (|| {
                // The new list straight from the old one's bytes, into a buffer reused
                // from key to key: nothing decoded, nothing allocated per version.
                let mut push = |old: Option<&[u8]>| {
                    push_encoded(old, commit_ts, value, oldest_active, &mut encoded)
                };
                let (pushed, old) = if last {
                    let pushed = match tree.get_with(user, |old| push(Some(old))) {
                        Ok(Some(pushed)) => pushed,
                        Ok(None) => push(None),
                        Err(e) => return Err(store_err(e)),
                    };
                    (pushed, None)
                } else {
                    let mut old = None;
                    let pushed = match tree.get_with(user, |bytes| {
                        old = Some((undo_bytes.len(), bytes.len()));
                        undo_bytes.extend_from_slice(bytes);
                        push(Some(bytes))
                    }) {
                        Ok(Some(pushed)) => pushed,
                        Ok(None) => push(None),
                        Err(e) => return Err(store_err(e)),
                    };
                    (pushed, Some(old))
                };
                let pushed = pushed.map_err(|e| match e {
                    lightning_mvcc::Error::Corrupt(_) => self.damaged(id, user, &e),
                    other => other,
                })?;
                if pushed.collectable {
                    gc.push(key.to_vec());
                }
                if let Some(old) = old {
                    undo.push((Arc::clone(&tree), user, old));
                }
                if pushed.empty {
                    tree.remove(user).map_err(store_err)?;
                } else {
                    tree.insert(user, &encoded).map_err(store_err)?;
                }
                Ok(())
            })();
            if let Err(e) = step {
                outcome = Err(e);
                break;
            }
        }
        if let Err(e) = outcome {
            // The failed write changed nothing (tree writes are all or nothing); put back
            // the ones before it. If that fails too, the trees are unknown: refuse writes.
            let reason = match undo_writes(undo, &undo_bytes) {
                Ok(()) => format!("applying commit {commit_ts} failed: {e}"),
                Err(u) => {
                    self.damaged.store(true, Ordering::Release);
                    format!(
                        "applying commit {commit_ts} failed ({e}) and undoing it failed too ({u})"
                    )
                }
            };
            self.fail(reason);
            return Err(e);
        }
        *lock(&self.applied) = Applied { lsn, ts: commit_ts };
        if encoded.capacity() <= KEEP_BUFFER {
            *rmw = encoded;
        }
        drop(rmw);
        self.queue_for_gc(gc);
        Ok(())
    }
}

impl TreeStore {
    fn scan_dir(&self, range: KeyRange, rev: bool) -> VersionScan<'_> {
        let Some((id, (lo, hi))) = keys::unprefix(&range) else {
            return Box::new(std::iter::empty());
        };
        let Some(tree) = self.tree(id) else {
            return Box::new(std::iter::empty());
        };
        let overlay = self.overlay_rows(&range, rev);
        let scan = TreeScan {
            store: self,
            tree,
            id,
            lo,
            hi,
            rev,
            batch: VecDeque::new(),
            done: false,
        };
        if overlay.is_empty() {
            return Box::new(scan);
        }
        Box::new(Overlaid {
            tree: scan.peekable(),
            overlay,
            rev,
        })
    }
}

/// A keyspace's rows in a range, read from its tree [`SCAN_BATCH`] at a time.
struct TreeScan<'s> {
    store: &'s TreeStore,
    tree: Arc<BTree>,
    id: u32,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    rev: bool,
    batch: VecDeque<lightning_mvcc::Result<(Vec<u8>, VersionList)>>,
    done: bool,
}

impl TreeScan<'_> {
    fn refill(&mut self) {
        if let Err(e) = self.store.check_readable() {
            self.batch.push_back(Err(store_err(e)));
            self.done = true;
            return;
        }
        if lightning_mvcc::range_is_empty(&(self.lo.clone(), self.hi.clone())) {
            self.done = true;
            return;
        }
        let range = self.tree.range::<&[u8], _>((
            self.lo.as_ref().map(Vec::as_slice),
            self.hi.as_ref().map(Vec::as_slice),
        ));
        let rows: Vec<lightning_btree::Result<(Vec<u8>, Vec<u8>)>> = if self.rev {
            range.rev().take(SCAN_BATCH).collect()
        } else {
            range.take(SCAN_BATCH).collect()
        };
        if rows.len() < SCAN_BATCH {
            self.done = true;
        }
        for row in rows {
            match row {
                Ok((user, bytes)) => {
                    let decoded = self.store.decode(self.id, &user, &bytes);
                    let failed = decoded.is_err();
                    let next = Bound::Excluded(user.clone());
                    self.batch
                        .push_back(decoded.map(|list| (keys::join(self.id, &user), list)));
                    if self.rev {
                        self.hi = next;
                    } else {
                        self.lo = next;
                    }
                    if failed {
                        self.done = true;
                        return;
                    }
                }
                Err(e) => {
                    self.batch.push_back(Err(store_err(e)));
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl Iterator for TreeScan<'_> {
    type Item = lightning_mvcc::Result<(Vec<u8>, VersionList)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.batch.pop_front() {
                return Some(row);
            }
            if self.done {
                return None;
            }
            self.refill();
        }
    }
}

/// A tree's rows with the overlay's laid over them (read-only opens): the overlay's list
/// replaces the tree's for the same key, an empty one hides it.
struct Overlaid<'s> {
    tree: std::iter::Peekable<TreeScan<'s>>,
    overlay: VecDeque<(Vec<u8>, VersionList)>,
    rev: bool,
}

impl Iterator for Overlaid<'_> {
    type Item = lightning_mvcc::Result<(Vec<u8>, VersionList)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let tree_key = match self.tree.peek() {
                Some(Ok((k, _))) => Some(k.as_slice()),
                Some(Err(_)) => return self.tree.next(),
                None => None,
            };
            let over_key = self.overlay.front().map(|(k, _)| k.as_slice());
            let take_overlay = match (tree_key, over_key) {
                (None, None) => return None,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(t), Some(o)) => {
                    if t == o {
                        self.tree.next();
                        true
                    } else {
                        (o < t) != self.rev
                    }
                }
            };
            if !take_overlay {
                return self.tree.next();
            }
            match self.overlay.pop_front() {
                Some((_, list)) if list.is_empty() => {}
                Some(row) => return Some(Ok(row)),
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use lightning_page::vfs::MemVfs;
    use lightning_page::{PageFile, PageSize};

    fn store(queue_limit: usize) -> TreeStore {
        let vfs = MemVfs::new();
        let file = PageFile::create(&vfs, Path::new("/t"), PageSize::new(4096).unwrap()).unwrap();
        let pages = Arc::new(lightning_btree::Store::open(Arc::new(file), 4 << 20).unwrap());
        let tree = Arc::new(BTree::create(Arc::clone(&pages)).unwrap());
        let mut store = TreeStore::new(pages, Applied::default(), PathBuf::from("/t"));
        store.gc_queue_limit = queue_limit;
        store.add_tree(1, tree);
        store
    }

    /// Three versions of each of `n` keys, applied with no snapshot old enough to keep
    /// them from GC but none removed at apply time (oldest active 0).
    fn three_versions(store: &TreeStore, n: u32) {
        for round in 0..3u64 {
            let writes: WriteSet = (0..n)
                .map(|i| {
                    (
                        keys::join(1, format!("key-{i:04}").as_bytes()),
                        Some(vec![0; 8]),
                    )
                })
                .collect::<BTreeMap<_, _>>()
                .into();
            let ts = Timestamp::new(round + 1);
            store
                .apply(ts, Lsn::new(round + 1), &writes, Timestamp::new(0))
                .unwrap();
        }
    }

    fn versions_left(store: &TreeStore, n: u32) -> usize {
        (0..n)
            .map(|i| {
                let key = keys::join(1, format!("key-{i:04}").as_bytes());
                store.versions(&key).unwrap().versions().len()
            })
            .sum()
    }

    #[test]
    fn a_gc_queue_that_overflowed_is_made_up_for_by_a_pass_over_every_tree() {
        // 300 keys against a queue of 50: most keys never made it into the queue.
        let store = store(50);
        three_versions(&store, 300);
        assert_eq!(store.gc_pending(), 50);
        assert_eq!(versions_left(&store, 300), 900);
        let removed = store.gc_pass(Timestamp::new(10)).unwrap();
        assert_eq!(removed, 600, "two old versions of every key, queued or not");
        assert_eq!(versions_left(&store, 300), 300);
        assert_eq!(store.gc_pending(), 0);
        // Nothing left: a second pass removes nothing.
        assert_eq!(store.gc_pass(Timestamp::new(10)).unwrap(), 0);
    }

    #[test]
    fn a_gc_queue_within_its_limit_collects_the_queued_keys() {
        let store = store(1000);
        three_versions(&store, 300);
        assert_eq!(store.gc_pending(), 300);
        assert_eq!(store.gc_pass(Timestamp::new(10)).unwrap(), 600);
        assert_eq!(versions_left(&store, 300), 300);
    }

    #[test]
    fn keys_queued_again_take_no_more_room_in_the_gc_queue() {
        // 300 keys, each queued twice (600 pushes: the first write leaves nothing to
        // collect), against a queue of 500: repeats are dropped when it fills, so it holds
        // them all and does not overflow.
        let store = store(500);
        three_versions(&store, 300);
        assert!(!lock(&store.gc_queue).overflowed);
        assert_eq!(store.gc_pending(), 300);
        assert_eq!(store.gc_pass(Timestamp::new(10)).unwrap(), 600);
        assert_eq!(versions_left(&store, 300), 300);
        assert!(!store.gc_queued());
    }

    /// A large commit of puts into an empty keyspace is bulk loaded and reads back whole
    /// (each key's one version, at the commit); one that is too small, deletes a key, or
    /// goes into a keyspace that has keys is applied key by key, and reads back too.
    #[test]
    #[expect(
        clippy::big_endian_bytes,
        reason = "keys whose byte order is their number order, as a write set sorts them"
    )]
    fn a_large_commit_into_an_empty_keyspace_is_bulk_loaded() {
        let store = store(1 << 20);
        let n = u32::try_from(BULK_APPLY_MIN).unwrap() + 10;
        let puts = |range: std::ops::Range<u32>, value: u8| -> WriteSet {
            range
                .map(|i| (keys::join(1, &i.to_be_bytes()), Some(vec![value; 40])))
                .collect::<BTreeMap<_, _>>()
                .into()
        };
        let check = |range: std::ops::Range<u32>, ts: u64, value: u8| {
            for i in range {
                let list = store.versions(&keys::join(1, &i.to_be_bytes())).unwrap();
                let newest = list.visible(Timestamp::new(u64::MAX)).unwrap();
                assert_eq!(newest.commit_ts, Timestamp::new(ts), "key {i}");
                assert_eq!(
                    newest.value,
                    VersionValue::Value(vec![value; 40]),
                    "key {i}"
                );
            }
        };
        let loads = || store.bulk_loads.load(Ordering::Relaxed);
        // Too small: key by key, though the keyspace is empty.
        let small = puts(0..10, 1);
        store
            .apply(Timestamp::new(1), Lsn::new(1), &small, Timestamp::new(0))
            .unwrap();
        assert_eq!(loads(), 0);
        for i in 0..10u32 {
            store.tree(1).unwrap().remove(&i.to_be_bytes()).unwrap();
        }
        assert!(store.tree(1).unwrap().is_empty().unwrap());
        // A delete among the puts: key by key.
        let mut with_delete = WriteSet::new();
        for (k, v) in puts(0..n, 2).iter() {
            let delete = k.ends_with(&7u32.to_be_bytes());
            with_delete.push(k, if delete { None } else { v }).unwrap();
        }
        assert!(
            store
                .load_into_empty(Timestamp::new(2), &with_delete, Timestamp::new(0))
                .is_none()
        );
        // Puts into two keyspaces, both empty: key by key.
        store.add_tree(
            2,
            Arc::new(BTree::create(Arc::clone(&store.pages)).unwrap()),
        );
        let two: WriteSet = (0..n)
            .map(|i| (keys::join(1 + i % 2, &i.to_be_bytes()), Some(vec![2; 40])))
            .collect::<BTreeMap<_, _>>()
            .into();
        assert!(
            store
                .load_into_empty(Timestamp::new(2), &two, Timestamp::new(0))
                .is_none()
        );
        // Puts only, into the empty keyspace: loaded.
        let big = puts(0..n, 3);
        store
            .apply(Timestamp::new(3), Lsn::new(3), &big, Timestamp::new(0))
            .unwrap();
        assert_eq!(loads(), 1);
        assert_eq!(store.applied().lsn, Lsn::new(3));
        check(0..n, 3, 3);
        // The keyspace has keys now: key by key.
        let more = puts(n / 2..n + n / 2, 4);
        store
            .apply(Timestamp::new(4), Lsn::new(4), &more, Timestamp::new(0))
            .unwrap();
        assert_eq!(loads(), 1);
        check(0..n / 2, 3, 3);
        check(n / 2..n + n / 2, 4, 4);
    }
}
