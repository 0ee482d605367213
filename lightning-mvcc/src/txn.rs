//! Transactions: snapshot reads, buffered writes, and commit-time validation.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque, btree_map};

use std::iter::Peekable;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lightning_page::Lsn;

use crate::commit::{CommitLog, Committed, Slot, Span, WriteKey, WriteSet};
use crate::locks::{LockManager, LockMode, TxnId};
use crate::store::{KeyRange, VersionScan, VersionStore, in_range, range_is_empty};
use crate::versions::VersionValue;
use crate::{Conflict, Error, Result, Timestamp, TimestampOracle};

/// How strongly a transaction is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Reads from one snapshot; write-write conflicts abort (first committer wins). Allows
    /// write skew.
    #[default]
    Snapshot,
    /// Snapshot isolation plus validation of every key read and range scanned against the
    /// commits after the snapshot (backward OCC): no write skew, no phantoms.
    Serializable,
}

/// How a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnOptions {
    /// The isolation level.
    pub isolation: Isolation,
    /// Take key locks as it goes (exclusive on writes and `get_for_update`, shared on reads
    /// when serializable) instead of finding conflicts only at commit. Optimistic
    /// transactions (the default) take no lock and never wait.
    pub pessimistic: bool,
}

/// Counters of the transaction manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnStats {
    /// Transactions committed (with writes).
    pub commits: u64,
    /// Aborted by a write-write conflict (a key written or read with `get_for_update` was
    /// committed by another transaction after the snapshot).
    pub write_conflicts: u64,
    /// Aborted because a key read changed (serializable).
    pub read_conflicts: u64,
    /// Aborted because a scanned range changed (serializable).
    pub phantom_conflicts: u64,
    /// Transactions open now.
    pub active: u64,
    /// Exclusive locks taken while the previous holder's commit was logged but not yet
    /// applied, which the new holder then waited for (ADR 017). Not lock waits: the
    /// previous holder had released the lock.
    pub handoff_waits: u64,
    /// Total time of those waits.
    pub handoff_wait_time: Duration,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    write_conflicts: AtomicU64,
    read_conflicts: AtomicU64,
    phantom_conflicts: AtomicU64,
    active: AtomicU64,
    handoff_waits: AtomicU64,
    handoff_wait_ns: AtomicU64,
}

/// Keys of trimmed commits past which [`Garbage`] is freed on a thread of its own rather
/// than by the committing thread (about 5 ms of frees).
const FREE_ELSEWHERE: usize = 64 << 10;

/// What [`RecentCommits::trim`] took out, to be freed after the commit ordering is released.
#[derive(Default)]
#[must_use = "drop it outside the commit ordering"]
struct Garbage {
    keys: usize,
    index: Option<KeyIndex>,
    /// Large commits' write sets (see [`LARGE_COMMIT`]), freed with the rest.
    large: Vec<Arc<WriteSet>>,
}

/// Commits writing at least this many keys are not indexed key by key in the recent
/// commits: their write set (sorted) is kept whole and binary-searched by validation.
/// Indexing a bulk load's million keys (an index insert per key, and the same again to
/// trim them) was about a tenth of its commit.
const LARGE_COMMIT: usize = 4096;

/// The index of recent commits: a key's 64-bit hash -> the newest logged commit that wrote
/// a key with that hash. A hit is confirmed against the keys themselves (two keys may share
/// a hash); a miss needs no confirmation. `foldhash`, seeded per process, so keys chosen to
/// collide must still be chosen blind (and a collision costs a scan, never a wrong answer).
type KeyIndex = HashMap<u64, Timestamp, foldhash::fast::RandomState>;

/// Bytes of a key's record in [`RecentCommits::arena`] before the key: its hash (8 bytes)
/// and its length (4 bytes), little-endian.
const KEY_HEAD: usize = 12;

impl Drop for Garbage {
    /// Frees it: here when small; when large, on a short-lived thread, so that the commit
    /// that happened to trim a bulk load does not pay for freeing it (here after all if no
    /// thread can be started).
    fn drop(&mut self) {
        if self.keys < FREE_ELSEWHERE {
            return;
        }
        let work = (self.index.take(), std::mem::take(&mut self.large));
        let spawned = std::thread::Builder::new()
            .name("lightning-mvcc-free".into())
            .spawn(move || drop(work));
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "freeing trimmed commits on this thread");
        }
    }
}

/// A logged commit of fewer than [`LARGE_COMMIT`] keys: its keys are the `keys` records
/// from `start` (an absolute offset, see [`RecentCommits::base`]) of the arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ts: Timestamp,
    start: u64,
    keys: usize,
}

/// Write sets of recent commits, oldest first: what validation checks against.
///
/// The keys of small commits are copied end to end into one arena, not allocated key by
/// key: a committer allocated each key and whichever committer trimmed it freed it, and
/// with the system allocator frees across threads contend for the allocating thread's
/// arena lock (with four committing threads on two cores, that and the per-key index work
/// were a tenth of a commit).
#[derive(Default)]
struct RecentCommits {
    entries: VecDeque<Entry>,
    /// Each small commit's keys: per key its hash, its length, its bytes (see [`KEY_HEAD`]).
    arena: Vec<u8>,
    /// The absolute offset of `arena[0]`: dropping bytes at the front moves no entry's start.
    base: u64,
    /// The newest logged commit that wrote each key hash, so a key is checked against every
    /// commit after a snapshot in one lookup instead of a walk over those commits' write
    /// sets (which, under the log lock, grows with the number of concurrent transactions).
    latest: KeyIndex,
    /// Seeds the keys' hashes.
    hasher: foldhash::fast::RandomState,
    /// Commits of [`LARGE_COMMIT`] keys or more, oldest first, with their write sets (in
    /// key order), which are searched instead of indexed.
    large: VecDeque<(Timestamp, Arc<WriteSet>)>,
}

/// The keys of `entry` in `arena` (whose first byte is at absolute offset `base`), with
/// their hashes. Ends early, rather than panics, at a record that does not fit (which
/// [`RecentCommits::push`] never writes).
fn keys_in(arena: &[u8], base: u64, entry: Entry) -> impl Iterator<Item = (u64, &[u8])> {
    let mut at = entry
        .start
        .checked_sub(base)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(usize::MAX);
    (0..entry.keys).map_while(move |_| {
        let head = arena.get(at..at.checked_add(KEY_HEAD)?)?;
        let hash = u64::from_le_bytes(head.get(..8)?.try_into().ok()?);
        let len = u32::from_le_bytes(head.get(8..)?.try_into().ok()?) as usize;
        let key_at = at + KEY_HEAD;
        let key = arena.get(key_at..key_at.checked_add(len)?)?;
        at = key_at + len;
        Some((hash, key))
    })
}

impl RecentCommits {
    /// Logs a commit of [`LARGE_COMMIT`] keys or more: its write set, whole.
    fn push_large(&mut self, ts: Timestamp, writes: Arc<WriteSet>) {
        self.large.push_back((ts, writes));
    }

    /// The large commits after `than`, newest first.
    fn large_after(&self, than: Timestamp) -> impl Iterator<Item = &WriteSet> {
        self.large
            .iter()
            .rev()
            .take_while(move |(t, _)| *t > than)
            .map(|(_, w)| &**w)
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// Logs a commit of fewer than [`LARGE_COMMIT`] keys.
    fn push<K: AsRef<[u8]>>(&mut self, ts: Timestamp, keys: impl IntoIterator<Item = K>) {
        let start = self.base + self.arena.len() as u64;
        let mut count = 0;
        for k in keys {
            let k = k.as_ref();
            let hash = self.hash(k);
            // Keys are far below 4 GiB (the database limits them); a longer one would be
            // recorded with a wrong length and only ever miss.
            let len = u32::try_from(k.len()).unwrap_or(u32::MAX);
            self.arena.extend_from_slice(&hash.to_le_bytes());
            self.arena.extend_from_slice(&len.to_le_bytes());
            self.arena.extend_from_slice(k);
            self.latest.insert(hash, ts);
            count += 1;
        }
        self.entries.push_back(Entry {
            ts,
            start,
            keys: count,
        });
    }

    /// The keys of `entry`, with their hashes.
    fn keys_of(&self, entry: Entry) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        keys_in(&self.arena, self.base, entry)
    }

    /// The keys of the small commits after `than`, newest commit first.
    fn keys_after(&self, than: Timestamp) -> impl Iterator<Item = &[u8]> + '_ {
        self.entries
            .iter()
            .rev()
            .take_while(move |e| e.ts > than)
            .flat_map(|e| self.keys_of(*e).map(|(_, k)| k))
    }

    /// Drops the commits at or before `oldest` (they precede every snapshot). Runs under
    /// the commit ordering, so its work is bounded by what stays, not by what goes: when
    /// more keys go than stay (a long snapshot ended behind many commits), the index is
    /// rebuilt from the commits that stay and the old one is handed back as [`Garbage`],
    /// to be freed outside the ordering.
    fn trim(&mut self, oldest: Timestamp) -> Garbage {
        let large_gone = self.large.iter().take_while(|(t, _)| *t <= oldest).count();
        let large: Vec<Arc<WriteSet>> = self.large.drain(..large_gone).map(|(_, w)| w).collect();
        let large_keys: usize = large.iter().map(|w| w.len()).sum();
        let mut garbage = Garbage {
            keys: large_keys,
            index: None,
            large,
        };
        let gone = self.entries.iter().take_while(|e| e.ts <= oldest).count();
        if gone == 0 {
            return garbage;
        }
        let going: usize = self.entries.iter().take(gone).map(|e| e.keys).sum();
        let staying: usize = self.entries.iter().skip(gone).map(|e| e.keys).sum();
        garbage.keys += going;
        if going > staying {
            self.entries.drain(..gone);
            let mut latest =
                KeyIndex::with_capacity_and_hasher(staying, foldhash::fast::RandomState::default());
            // Oldest first: a later commit of the same key overwrites.
            for e in &self.entries {
                for (hash, _) in self.keys_of(*e) {
                    latest.insert(hash, e.ts);
                }
            }
            garbage.index = Some(std::mem::replace(&mut self.latest, latest));
        } else {
            for e in self.entries.drain(..gone) {
                for (hash, _) in keys_in(&self.arena, self.base, e) {
                    if self.latest.get(&hash) == Some(&e.ts) {
                        self.latest.remove(&hash);
                    }
                }
            }
            // A long-lived snapshot can grow the log a lot; give the memory back once it
            // ends.
            if self.latest.capacity() > 4096 && self.latest.len() < self.latest.capacity() / 4 {
                self.latest.shrink_to_fit();
                self.entries.shrink_to_fit();
            }
        }
        self.compact();
        garbage
    }

    /// Drops the arena's bytes before the oldest entry once they are at least half of it
    /// (so each byte is moved at most about once), or all of it when no entry is left.
    fn compact(&mut self) {
        let end = self.base + self.arena.len() as u64;
        let front = self.entries.front().map_or(end, |e| e.start);
        let dead = usize::try_from(front.saturating_sub(self.base)).unwrap_or(usize::MAX);
        if dead >= self.arena.len() {
            self.arena.clear();
        } else if dead >= self.arena.len() / 2 {
            self.arena.drain(..dead);
        } else {
            return;
        }
        self.base = front;
        if self.arena.capacity() > (1 << 20) && self.arena.len() < self.arena.capacity() / 4 {
            self.arena.shrink_to_fit();
        }
    }

    /// Takes commit `ts` out (its log record never became durable: it never happened).
    fn remove(&mut self, ts: Timestamp) {
        self.large.retain(|(t, _)| *t != ts);
        let Some(at) = self.entries.iter().position(|e| e.ts == ts) else {
            return;
        };
        let Some(entry) = self.entries.remove(at) else {
            return;
        };
        // Its bytes stay in the arena, unreferenced, until the commits around them go.
        for (hash, _) in keys_in(&self.arena, self.base, entry) {
            if self.latest.get(&hash) == Some(&ts) {
                // The newest other commit that wrote a key of this hash, if one is logged.
                let newest = self
                    .entries
                    .iter()
                    .rev()
                    .find(|e| keys_in(&self.arena, self.base, **e).any(|(h, _)| h == hash))
                    .map(|e| e.ts);
                match newest {
                    Some(t) => self.latest.insert(hash, t),
                    None => self.latest.remove(&hash),
                };
            }
        }
    }

    /// The newest logged commit after `than` that wrote `key` (or, rarely, a key of the
    /// same hash).
    fn last_write_after(&self, key: &[u8], than: Timestamp) -> Option<Timestamp> {
        let small = self
            .latest
            .get(&self.hash(key))
            .copied()
            .filter(|t| *t > than);
        let large = self
            .large
            .iter()
            .rev()
            .take_while(|(t, _)| *t > than)
            .find(|(_, w)| w.contains(key))
            .map(|(t, _)| *t);
        small.max(large)
    }

    /// Whether a logged commit after `than` wrote `key`.
    fn written_after(&self, key: &[u8], than: Timestamp) -> bool {
        let hash = self.hash(key);
        let small = self.latest.get(&hash).is_some_and(|t| *t > than)
            && self
                .entries
                .iter()
                .rev()
                .take_while(|e| e.ts > than)
                .any(|e| self.keys_of(*e).any(|(h, k)| h == hash && k == key));
        small || self.large_after(than).any(|w| w.contains(key))
    }
}

/// Begins transactions and runs the commit pipeline: validate, stamp and log (under the
/// commit ordering), wait for durability, apply in timestamp order, publish.
pub struct TxnManager<S> {
    store: Arc<S>,
    oracle: TimestampOracle,
    locks: LockManager,
    next_id: AtomicU64,
    /// The commit ordering: validation, stamping and logging happen under this mutex.
    recent: Mutex<RecentCommits>,
    counters: Counters,
}

impl<S> std::fmt::Debug for TxnManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnManager")
            .field("oracle", &self.oracle)
            .finish_non_exhaustive()
    }
}

impl<S: VersionStore> TxnManager<S> {
    /// A manager over `store`, whose newest commit is `last_committed`.
    pub fn new(store: Arc<S>, last_committed: Timestamp) -> Self {
        Self::with_lock_timeout(store, last_committed, Duration::from_secs(5))
    }

    /// A manager whose pessimistic lock waits give up after `lock_timeout`.
    pub fn with_lock_timeout(
        store: Arc<S>,
        last_committed: Timestamp,
        lock_timeout: Duration,
    ) -> Self {
        TxnManager {
            store,
            oracle: TimestampOracle::new(last_committed),
            locks: LockManager::new(lock_timeout),
            next_id: AtomicU64::new(1),
            recent: Mutex::default(),
            counters: Counters::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The timestamp oracle (for the oldest active snapshot, when trimming versions).
    pub fn oracle(&self) -> &TimestampOracle {
        &self.oracle
    }

    /// The lock manager (for its stats).
    pub fn locks(&self) -> &LockManager {
        &self.locks
    }

    /// Starts an optimistic transaction reading from a snapshot of everything committed so far.
    pub fn begin(&self, isolation: Isolation) -> Transaction<'_, S> {
        self.begin_with(TxnOptions {
            isolation,
            pessimistic: false,
        })
    }

    /// Starts a transaction with `options`.
    pub fn begin_with(&self, options: TxnOptions) -> Transaction<'_, S> {
        self.counters.active.fetch_add(1, Ordering::Relaxed);
        Transaction {
            mgr: self,
            id: TxnId::new(self.next_id.fetch_add(1, Ordering::Relaxed)),
            pessimistic: options.pessimistic,
            locked: false,
            read_ts: self.oracle.begin_read(),
            isolation: options.isolation,
            writes: BTreeMap::new(),
            values: Vec::new(),
            garbage: 0,
            for_update: BTreeSet::new(),
            reads: BTreeSet::new(),
            ranges: Vec::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TxnStats {
        let c = &self.counters;
        TxnStats {
            commits: c.commits.load(Ordering::Relaxed),
            write_conflicts: c.write_conflicts.load(Ordering::Relaxed),
            read_conflicts: c.read_conflicts.load(Ordering::Relaxed),
            phantom_conflicts: c.phantom_conflicts.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            handoff_waits: c.handoff_waits.load(Ordering::Relaxed),
            handoff_wait_time: Duration::from_nanos(c.handoff_wait_ns.load(Ordering::Relaxed)),
        }
    }

    /// The early order's tail (ADR 017), for a commit logged at `lsn` whose locks are
    /// released: applied and published to lock holders now, visible to new snapshots once
    /// durable.
    fn apply_early<L: CommitLog + ?Sized>(
        &self,
        log: &L,
        ticket: L::Ticket,
        lsn: Lsn,
        ts: Timestamp,
        writes: &WriteSet,
        turn: Option<Turn<'_>>,
    ) -> Result<Committed> {
        let blocks = log.may_block(&ticket);
        self.oracle.wait_turn(ts);
        let applied = self
            .store
            .apply(ts, lsn, writes, self.oracle.oldest_active());
        finish_turn(turn, blocks && applied.is_ok());
        applied?;
        self.await_durable(log, ticket, ts, lsn, blocks)
    }

    /// The early order's end, for commit `ts` applied (and finished undurable if `blocks`):
    /// waits for its durability, or, if it asked for none, until it is visible.
    fn await_durable<L: CommitLog + ?Sized>(
        &self,
        log: &L,
        ticket: L::Ticket,
        ts: Timestamp,
        lsn: Lsn,
        blocks: bool,
    ) -> Result<Committed> {
        match log.wait(ticket) {
            Ok(_) if blocks => self.oracle.durable(ts),
            Ok(_) => self.visible(ts)?,
            Err(cause) => {
                // Applied but never durable: it, and whatever was applied after it (which
                // may have read it), stays invisible to new snapshots.
                self.oracle.stall();
                return Err(Error::NotDurable { ts, cause });
            }
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(Committed { ts, lsn: Some(lsn) })
    }

    /// Waits until commit `ts` (applied) is visible to new snapshots: every commit before
    /// it that waits for durability is durable (ADR 017). A commit returns only then, so a
    /// snapshot begun after it returns sees it.
    fn visible(&self, ts: Timestamp) -> Result<()> {
        self.oracle
            .wait_visible(ts)
            .map_err(|crate::Stalled| Error::NotDurable {
                ts,
                cause: "a commit before it could not be made durable, so it can never become \
                        visible"
                    .into(),
            })
    }

    /// Checks `txn` against the commits after its snapshot: write-write conflicts first
    /// (the most specific error) — keys written and keys read with `get_for_update`, in
    /// either mode — then, when serializable, keys read and ranges scanned.
    fn validate(
        &self,
        txn: &Transaction<'_, S>,
        writes: &WriteSet,
        log: &RecentCommits,
    ) -> Result<()> {
        let newer = || log.keys_after(txn.read_ts);
        if let Some(key) = writes
            .iter()
            .map(|(k, _)| k)
            .chain(txn.for_update.iter().map(Vec::as_slice))
            .find(|k| log.written_after(k, txn.read_ts))
        {
            self.counters
                .write_conflicts
                .fetch_add(1, Ordering::Relaxed);
            return Err(Error::Conflict(Conflict::WriteWrite { key: key.to_vec() }));
        }
        if txn.isolation != Isolation::Serializable {
            return Ok(());
        }
        if let Some(key) = txn.reads.iter().find(|k| log.written_after(k, txn.read_ts)) {
            self.counters.read_conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Conflict(Conflict::ReadWrite { key: key.clone() }));
        }
        if let Some(r) = txn.ranges.iter().find(|r| {
            newer().any(|k| in_range(r, k)) || log.large_after(txn.read_ts).any(|w| w.touches(r))
        }) {
            self.counters
                .phantom_conflicts
                .fetch_add(1, Ordering::Relaxed);
            let bound = |b: &Bound<Vec<u8>>| match b {
                Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
                Bound::Unbounded => None,
            };
            return Err(Error::Conflict(Conflict::Phantom {
                start: bound(&r.0),
                end: bound(&r.1),
            }));
        }
        Ok(())
    }
}

/// A transaction: reads from its snapshot (and its own writes), buffers writes until commit.
/// Dropping it without committing rolls it back.
pub struct Transaction<'m, S> {
    mgr: &'m TxnManager<S>,
    id: TxnId,
    pessimistic: bool,
    /// Whether this transaction took any lock (pessimistic ones only).
    locked: bool,
    read_ts: Timestamp,
    isolation: Isolation,
    /// The write set: each key written, with the places of its key and value in `values`
    /// (a `None` value: a delete). Keys of up to 38 bytes sit inside the map's nodes, and
    /// keys and values end to end in one buffer, which becomes the commit's [`WriteSet`]
    /// as it is: a write allocates nothing of its own (ADR 007).
    writes: BTreeMap<WriteKey, Slot>,
    /// The written keys and values, end to end; a value overwritten in the same
    /// transaction leaves its bytes behind as `garbage` until the buffer is compacted.
    values: Vec<u8>,
    /// Bytes of `values` no write refers to any more.
    garbage: usize,
    /// Keys read with `get_for_update`: validated at commit like the write set, in both
    /// modes.
    for_update: BTreeSet<Vec<u8>>,
    reads: BTreeSet<Vec<u8>>,
    ranges: Vec<KeyRange>,
}

impl<S> std::fmt::Debug for Transaction<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("read_ts", &self.read_ts)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

/// The value a version holds: inline, or read from the store's overflow pages.
fn resolve<S: VersionStore>(store: &S, value: VersionValue) -> Result<Option<Vec<u8>>> {
    match value {
        VersionValue::Value(v) => Ok(Some(v)),
        VersionValue::Tombstone => Ok(None),
        VersionValue::Overflow { page, len } => {
            let v = store.read_overflow(page, u64::from(len))?;
            if u64::try_from(v.len()).ok() != Some(u64::from(len)) {
                return Err(Error::Corrupt(
                    "an overflow chain holds another length than its reference says",
                ));
            }
            Ok(Some(v))
        }
    }
}

impl<S: VersionStore> Transaction<'_, S> {
    /// The snapshot this transaction reads.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// This transaction's id (younger transactions have higher ids).
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// This transaction's own write of `key`, if it wrote it: `Some(Some(value))` for a
    /// put, `Some(None)` for a delete. Reads nothing from the store and records no read.
    pub fn own_write(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes
            .get(key)
            .map(|slot| slot.value.map(|span| span.of(&self.values)))
    }

    /// Whether this transaction has written anything yet.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Reads `key`: this transaction's own write if any, else the snapshot's version. A
    /// pessimistic serializable transaction takes a shared lock first.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.own_write(key) {
            return Ok(v.map(<[u8]>::to_vec));
        }
        if self.pessimistic && self.isolation == Isolation::Serializable {
            self.locked = true;
            self.mgr.locks.lock(self.id, key, LockMode::Shared)?;
        }
        if self.tracks_reads() {
            self.reads.insert(key.to_vec());
        }
        let store = &*self.mgr.store;
        store
            .visible(key, self.read_ts)?
            .map_or(Ok(None), |v| resolve(store, v.value))
    }

    /// Streams every key in `range` with its value, in key order: the snapshot's versions
    /// merged with this transaction's own writes (a write replaces the stored value, a
    /// delete hides it). Memory stays bounded by what the store's scan holds at a time
    /// ([`VersionStore::scan`]), whatever the size of the range; overflow values are read
    /// as they are reached. A storage failure is an `Err` item, and nothing follows it.
    ///
    /// A serializable transaction records the whole range for validation when the scan
    /// starts, however far it is iterated: at commit, a change committed after the
    /// snapshot anywhere in it is a [`Conflict::Phantom`].
    pub fn range(&mut self, range: KeyRange) -> Scan<'_, S> {
        self.range_in(range, false)
    }

    /// [`range`](Self::range) in descending key order: the same rows, last key first, with
    /// the same bounded memory when the store walks backwards
    /// ([`VersionStore::scan_rev`]), and the same validation of the range.
    pub fn range_rev(&mut self, range: KeyRange) -> Scan<'_, S> {
        self.range_in(range, true)
    }

    fn range_in(&mut self, range: KeyRange, rev: bool) -> Scan<'_, S> {
        let empty = range_is_empty(&range);
        let store = &*self.mgr.store;
        // `BTreeMap::range` panics on an inverted range: an empty range reads nothing.
        let (stored, writes): (VersionScan<'_>, _) = if empty {
            (Box::new(std::iter::empty()), None)
        } else {
            self.ranges.push(range.clone());
            let writes = self.writes.range::<[u8], _>((
                range.0.as_ref().map(Vec::as_slice),
                range.1.as_ref().map(Vec::as_slice),
            ));
            let stored = if rev {
                store.scan_rev(range)
            } else {
                store.scan(range)
            };
            (stored, Some(writes))
        };
        let mut scan = Scan {
            store,
            values: &self.values,
            read_ts: self.read_ts,
            stored: stored.peekable(),
            writes,
            write_peek: None,
            rev,
            failed: false,
        };
        scan.write_peek = scan.next_write();
        scan
    }

    /// [`range`](Self::range) collected into a `Vec`.
    pub fn scan(&mut self, range: KeyRange) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.range(range).collect()
    }

    /// Writes `value` at `key` (visible to this transaction at once, to others on commit).
    /// A value longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) is refused with
    /// [`Error::ValueTooLarge`] before anything else happens. A pessimistic transaction locks
    /// the key first.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(key, Some(value)).map(|_| ())
    }

    /// Writes `value` at `key` (`None`: deletes it) like [`put`](Self::put) and
    /// [`delete`](Self::delete), and returns the length of this transaction's write of `key`
    /// that it replaced, if any (`Some(None)`: a delete), so a caller that accounts for its
    /// write set's size looks the key up once, not twice.
    pub fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Option<Option<usize>>> {
        if let Some(v) = value {
            crate::versions::value_len(v.len())?;
        }
        self.lock_for_write(key)?;
        // One search of the map, whether the key is new or written before.
        let replaced = match self.writes.entry(WriteKey::new(key)) {
            btree_map::Entry::Occupied(mut written) => {
                let slot = written.get_mut();
                let old = slot.value;
                slot.value = match (old, value) {
                    // A value no longer than the one it replaces takes its place.
                    (Some(span), Some(v)) if v.len() <= span.len => {
                        let at = span.at;
                        if let Some(dst) = self.values.get_mut(at..at + v.len()) {
                            dst.copy_from_slice(v);
                        }
                        self.garbage += span.len - v.len();
                        Some(Span { at, len: v.len() })
                    }
                    (old, v) => {
                        self.garbage += old.map_or(0, |s| s.len);
                        v.map(|v| push_bytes(&mut self.values, v))
                    }
                };
                Some(old.map(|s| s.len))
            }
            btree_map::Entry::Vacant(new) => {
                if self.values.capacity() == 0 {
                    // One allocation for a small transaction's key and value.
                    let need = key.len() + value.map_or(0, <[u8]>::len);
                    self.values.reserve(need.max(FIRST_BUFFER));
                }
                new.insert(Slot {
                    key_at: push_bytes(&mut self.values, key).at,
                    value: value.map(|v| push_bytes(&mut self.values, v)),
                });
                None
            }
        };
        if self.garbage > COMPACT_AT && self.garbage > self.values.len() / 2 {
            self.compact_values();
        }
        Ok(replaced)
    }

    /// Copies the keys and live values into a new buffer, dropping the overwritten values'
    /// bytes.
    fn compact_values(&mut self) {
        let mut live = Vec::with_capacity(self.values.len() - self.garbage);
        for (key, slot) in &mut self.writes {
            slot.key_at = push_bytes(&mut live, key.as_bytes()).at;
            if let Some(span) = &mut slot.value {
                *span = push_bytes(&mut live, span.of(&self.values));
            }
        }
        self.values = live;
        self.garbage = 0;
    }

    /// Deletes `key`. A pessimistic transaction locks the key first.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.write(key, None).map(|_| ())
    }

    /// Reads `key` for a later update. If another transaction commits a change to `key`
    /// after this one's snapshot, this one does not commit: its commit fails with a
    /// retryable [`Conflict::WriteWrite`] naming the key, as if it had written the key. (A
    /// transaction that writes nothing at all commits at its snapshot, unchecked: its reads
    /// are one consistent snapshot.)
    ///
    /// - Optimistic (as in `RocksDB`'s optimistic transactions): takes no lock and never
    ///   waits; the key is only registered for that check at commit.
    /// - Pessimistic: also locks the key exclusively (waiting in line, with deadlock
    ///   detection and the lock timeout) and fails at once with a conflict if the key already
    ///   changed since the snapshot, so no other pessimistic transaction can change it
    ///   before this one ends — unless, at Snapshot isolation, everything the transaction
    ///   has seen so far was a key it holds exclusively and untouched since its snapshot:
    ///   then the snapshot moves forward ([`read_ts`](Self::read_ts) grows) and the read
    ///   returns the newest committed value (ADR 007). Optimistic writers look at no lock:
    ///   one can still commit the key meanwhile, and then the check at commit aborts this
    ///   transaction.
    pub fn get_for_update(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.pessimistic {
            self.exclusive(key)?;
        }
        self.for_update.insert(key.to_vec());
        self.get(key)
    }

    fn lock_for_write(&mut self, key: &[u8]) -> Result<()> {
        if self.pessimistic {
            self.exclusive(key)
        } else {
            Ok(())
        }
    }

    /// Takes the exclusive lock, then checks that no version newer than the snapshot was
    /// committed meanwhile: holding the lock from here on is worthless if the snapshot is
    /// already stale, and without this check lost updates slip through.
    ///
    /// A stale snapshot is not always fatal: a pessimistic snapshot-isolation transaction
    /// that has observed nothing but keys it holds exclusively (no plain read of an unlocked
    /// key, no scan) moves its snapshot forward to the newest published commit and checks
    /// again — provided no commit after its snapshot touched any key it read or wrote
    /// (pessimistic writers cannot, holding no lock on them; an optimistic writer takes no
    /// lock and can). Then nothing it saw differs in the newer snapshot. This is what makes
    /// waiting for a lock worth it: without it, the transaction that waited for a hot key
    /// would nearly always find the holder's commit newer than its snapshot and abort.
    fn exclusive(&mut self, key: &[u8]) -> Result<()> {
        self.locked = true;
        self.mgr.locks.lock(self.id, key, LockMode::Exclusive)?;
        // The previous holder released the lock once its commit was logged (ADR 017): wait
        // for that commit to be applied, so that the check below finds it in the store and
        // the refresh can read it. A wait for a commit, not for a lock: it is in no cycle.
        let pending = self
            .mgr
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_write_after(key, self.read_ts);
        if let Some(ts) = pending
            && !self.mgr.oracle.is_applied(ts)
        {
            let c = &self.mgr.counters;
            c.handoff_waits.fetch_add(1, Ordering::Relaxed);
            let start = Instant::now();
            self.mgr.oracle.wait_applied(ts);
            let took = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            c.handoff_wait_ns.fetch_add(took, Ordering::Relaxed);
        }
        let mut stale = self.stale(key)?;
        if stale && self.may_refresh() {
            // The newer snapshot first, then the check: a commit at or below it is in the
            // store or the recent commits by now, and one above it is the commit
            // validation's to find.
            // The applied watermark, not the visible one: the commits it holds over the
            // visible one are durable before anything this transaction commits.
            let newer = self.mgr.oracle.begin_read_applied();
            let mut seen = self
                .reads
                .iter()
                .chain(&self.for_update)
                .map(Vec::as_slice)
                .chain(self.writes.keys().map(WriteKey::as_bytes));
            let untouched = loop {
                match seen.next() {
                    None => break true,
                    Some(k) if self.stale(k)? => break false,
                    Some(_) => {}
                }
            };
            if untouched {
                self.mgr.oracle.end_read(self.read_ts);
                tracing::trace!(from = %self.read_ts, to = %newer, "snapshot moved forward after a lock wait");
                self.read_ts = newer;
                stale = self.stale(key)?;
            } else {
                self.mgr.oracle.end_read(newer);
            }
        }
        if stale {
            self.mgr
                .counters
                .write_conflicts
                .fetch_add(1, Ordering::Relaxed);
            return Err(Error::Conflict(Conflict::WriteWrite { key: key.to_vec() }));
        }
        Ok(())
    }

    /// Whether a version of `key` newer than the snapshot was committed (in the store, or
    /// stamped and on its way there).
    fn stale(&self, key: &[u8]) -> Result<bool> {
        let newer_in_store = self
            .mgr
            .store
            .latest_ts(key)?
            .is_some_and(|t| t > self.read_ts);
        let newer_in_flight = {
            let recent = self
                .mgr
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            recent.written_after(key, self.read_ts)
        };
        Ok(newer_in_store || newer_in_flight)
    }

    /// Whether plain reads are remembered: serializable validation checks them, and a
    /// pessimistic transaction's snapshot refresh (ADR 007) looks at them. An optimistic
    /// snapshot-isolation transaction uses neither, so its reads cost no copy of the key.
    fn tracks_reads(&self) -> bool {
        self.pessimistic || self.isolation == Isolation::Serializable
    }

    /// Whether the snapshot may move forward: a pessimistic snapshot-isolation transaction
    /// whose every read was of a key it had locked exclusively (`get_for_update` locks
    /// before it reads) and that scanned nothing. Its writes are locked too (pessimistic
    /// writes lock first).
    fn may_refresh(&self) -> bool {
        self.pessimistic
            && self.isolation == Isolation::Snapshot
            && self.ranges.is_empty()
            && self.reads.iter().all(|k| self.for_update.contains(k))
    }

    /// Commits through `log`: validates against the commits after the snapshot, stamps a
    /// commit timestamp and logs the write set ([`CommitLog::log`]) under the commit
    /// ordering — so the log's order is the timestamps' — then, outside it, waits for the
    /// record to be durable ([`CommitLog::wait`]), applies the writes in timestamp order and
    /// publishes them. Returns the commit timestamp and the record's LSN.
    ///
    /// A read-only transaction commits at its snapshot with no validation and logs nothing
    /// (`lsn` is `None`). If either phase of the log fails the commit is aborted with
    /// [`Error::LogFailed`] or [`Error::NotDurable`]: nothing of it is applied or published
    /// and it causes no conflicts.
    pub fn commit<L: CommitLog + ?Sized>(mut self, log: &L) -> Result<Committed> {
        if self.writes.is_empty() {
            return Ok(Committed {
                ts: self.read_ts,
                lsn: None,
            });
        }
        let mgr = self.mgr;
        let writes = Arc::new(WriteSet::from_buffer(
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.values),
        ));
        // Whatever happens once a timestamp is issued (an error, a panic in the log or the
        // store), it must be finished, or every later commit waits for its turn forever.
        // Declared before the ordering's guard, so that on a panic the guard goes first:
        // finishing waits for the earlier commits, and one whose log failed needs the guard
        // to leave the recent commits.
        let turn: Option<Turn<'_>>;
        // What trimming the recent commits took out: declared before the ordering's guard,
        // so it is freed after the guard is released, whichever way this returns.
        let _garbage: Garbage;
        let (commit_ts, ticket) = {
            let mut recent = mgr.recent.lock().unwrap_or_else(PoisonError::into_inner);
            mgr.validate(&self, &writes, &recent)?;
            // The oldest snapshot only moves forward: read once here, it is a safe (at worst
            // slightly early) bound for the trim below and for a fast-path apply.
            let (ts, oldest) = mgr.oracle.issue_commit_oldest();
            turn = Some(Turn {
                oracle: &mgr.oracle,
                ts,
                undurable: false,
            });
            // Logged under the ordering: the next commit is stamped only after this record
            // is in the log, so log order is timestamp order.
            match log.log(&writes, ts) {
                Ok(ticket) => {
                    if writes.len() >= LARGE_COMMIT {
                        recent.push_large(ts, Arc::clone(&writes));
                    } else {
                        recent.push(ts, writes.iter().map(|(k, _)| k));
                    }
                    // Commits at or before the oldest snapshot cannot conflict with any
                    // transaction.
                    _garbage = recent.trim(oldest);
                    let blocks = log.may_block(&ticket);
                    if let Some(lsn) = log.logged_lsn(&ticket)
                        && mgr.oracle.is_turn(ts)
                        && (!blocks || writes.len() <= APPLY_IN_ORDERING)
                    {
                        // The early order with nothing before it in flight: applied and
                        // published under the ordering, as below, so that its locks are
                        // released with the commit already applied and the next holder
                        // has nothing to wait for (ADR 017).
                        let applied = mgr.store.apply(ts, lsn, &writes, oldest);
                        finish_turn(turn, blocks && applied.is_ok());
                        drop(recent);
                        applied?;
                        self.release_locks();
                        return mgr.await_durable(log, ticket, ts, lsn, blocks);
                    }
                    if !blocks && mgr.oracle.is_turn(ts) {
                        // Nothing to wait for and nothing before it in flight: apply and
                        // publish now, under the ordering, so that no thread waits for the
                        // turn of a commit whose thread was descheduled between its log
                        // record and its apply (on few cores, that convoy is what made
                        // throughput fall as threads were added).
                        let lsn = match log.wait(ticket) {
                            Ok(lsn) => lsn,
                            Err(cause) => {
                                recent.remove(ts);
                                drop(recent);
                                drop(turn);
                                return Err(Error::NotDurable { ts, cause });
                            }
                        };
                        let applied = mgr.store.apply(ts, lsn, &writes, oldest);
                        drop(turn);
                        drop(recent);
                        applied?;
                        self.release_locks();
                        // Earlier commits may be applied but not durable yet (ADR 017).
                        mgr.visible(ts)?;
                        mgr.counters.commits.fetch_add(1, Ordering::Relaxed);
                        return Ok(Committed { ts, lsn: Some(lsn) });
                    }
                    (ts, ticket)
                }
                Err(cause) => {
                    // Not logged: it never happened (it was never among the recent commits).
                    drop(recent);
                    drop(turn);
                    return Err(Error::LogFailed { ts, cause });
                }
            }
        };
        // Logged: a transaction that takes one of its keys' locks from here on waits for it
        // to be applied (see `exclusive`), not for the lock (ADR 017).
        self.release_locks();
        if let Some(lsn) = log.logged_lsn(&ticket) {
            return mgr.apply_early(log, ticket, lsn, commit_ts, &writes, turn);
        }
        let lsn = match log.wait(ticket) {
            Ok(lsn) => lsn,
            Err(cause) => {
                // Not durable, not applied: it never happened. Its write set leaves the
                // recent commits, so it causes no conflicts.
                let mut recent = mgr.recent.lock().unwrap_or_else(PoisonError::into_inner);
                recent.remove(commit_ts);
                drop(recent);
                drop(turn);
                return Err(Error::NotDurable {
                    ts: commit_ts,
                    cause,
                });
            }
        };
        mgr.oracle.wait_turn(commit_ts);
        let applied = mgr
            .store
            .apply(commit_ts, lsn, &writes, mgr.oracle.oldest_active());
        drop(turn);
        applied?;
        mgr.visible(commit_ts)?;
        mgr.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(Committed {
            ts: commit_ts,
            lsn: Some(lsn),
        })
    }
}

type WriteRange<'t> = btree_map::Range<'t, WriteKey, Slot>;

/// The most writes a durable commit in the early order applies under the commit ordering
/// when its turn has come (ADR 017). A larger one applies after the ordering is released, as
/// it always did: applying a 1,000-key batch under the ordering holds every other committer
/// for as long (batched durable commits on 16 threads: 10 % fewer).
const APPLY_IN_ORDERING: usize = 64;

/// The capacity a transaction's byte buffer starts with: a small transaction's keys and
/// values fit it, so the buffer is allocated once.
const FIRST_BUFFER: usize = 512;

/// Garbage in a transaction's value buffer below which it is never compacted (it is
/// compacted once garbage is also more than half of it). Small under unit tests, so they
/// compact.
const COMPACT_AT: usize = if cfg!(test) { 256 } else { 1 << 20 };

/// Appends `value` to `values` and returns where it lies.
fn push_bytes(values: &mut Vec<u8>, value: &[u8]) -> Span {
    let at = values.len();
    values.extend_from_slice(value);
    Span {
        at,
        len: value.len(),
    }
}

/// A transaction's streaming scan ([`Transaction::range`], [`Transaction::range_rev`]):
/// `(key, value)` in key order (or descending), the snapshot's versions merged with the
/// transaction's own writes.
pub struct Scan<'t, S> {
    store: &'t S,
    /// The transaction's value buffer, which its writes' spans index.
    values: &'t [u8],
    read_ts: Timestamp,
    stored: Peekable<VersionScan<'t>>,
    /// The transaction's writes in the range (`None` for an empty range), not yet taken.
    writes: Option<WriteRange<'t>>,
    /// The next of the transaction's writes, in scan order.
    write_peek: Option<(&'t [u8], Option<&'t [u8]>)>,
    /// Descending key order.
    rev: bool,
    /// A storage error was returned: the scan is over.
    failed: bool,
}

impl<S> std::fmt::Debug for Scan<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("read_ts", &self.read_ts)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Where a scan's next row comes from.
enum Source {
    /// The transaction's own write; `shadows` when it replaces a stored key.
    Write {
        shadows: bool,
    },
    Stored,
}

impl<'t, S: VersionStore> Scan<'t, S> {
    fn fail(&mut self, e: Error) -> Result<(Vec<u8>, Vec<u8>)> {
        self.failed = true;
        Err(e)
    }

    fn next_write(&mut self) -> Option<(&'t [u8], Option<&'t [u8]>)> {
        let writes = self.writes.as_mut()?;
        let (key, slot) = if self.rev {
            writes.next_back()
        } else {
            writes.next()
        }?;
        let values = self.values;
        Some((key.as_bytes(), slot.value.map(|span| span.of(values))))
    }

    /// Takes the peeked write and peeks the one after it.
    fn take_write(&mut self) -> Option<(&'t [u8], Option<&'t [u8]>)> {
        let taken = self.write_peek.take();
        self.write_peek = self.next_write();
        taken
    }
}

impl<S: VersionStore> Iterator for Scan<'_, S> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let stored_key = match self.stored.peek() {
                Some(Err(_)) => {
                    return match self.stored.next() {
                        Some(Err(e)) => Some(self.fail(e)),
                        _ => None,
                    };
                }
                Some(Ok((k, _))) => Some(k.as_slice()),
                None => None,
            };
            let write_key = self.write_peek.map(|(k, _)| k);
            let source = match (stored_key, write_key) {
                (None, None) => return None,
                (None, Some(_)) => Source::Write { shadows: false },
                // The write comes first when it is at or before the stored key in scan
                // order.
                (Some(s), Some(w)) if (w <= s && !self.rev) || (w >= s && self.rev) => {
                    Source::Write { shadows: w == s }
                }
                (Some(_), _) => Source::Stored,
            };
            match source {
                Source::Write { shadows } => {
                    if shadows {
                        self.stored.next();
                    }
                    match self.take_write() {
                        Some((key, Some(value))) => {
                            return Some(Ok((key.to_vec(), value.to_vec())));
                        }
                        Some((_, None)) => {} // deleted by this transaction
                        None => return None,
                    }
                }
                Source::Stored => match self.stored.next() {
                    Some(Ok((key, versions))) => {
                        let Some(version) = versions.into_visible(self.read_ts) else {
                            continue; // committed after the snapshot
                        };
                        match resolve(self.store, version.value) {
                            Ok(Some(value)) => return Some(Ok((key, value))),
                            Ok(None) => {} // a tombstone
                            Err(e) => return Some(self.fail(e)),
                        }
                    }
                    Some(Err(e)) => return Some(self.fail(e)),
                    None => return None,
                },
            }
        }
    }
}

/// Finishes a commit timestamp when dropped (after waiting for its turn), on every path.
struct Turn<'a> {
    oracle: &'a TimestampOracle,
    ts: Timestamp,
    /// Applied before its log record is durable: finished as undurable.
    undurable: bool,
}

/// Finishes `turn` (waiting for it first), as undurable if `undurable`.
fn finish_turn(turn: Option<Turn<'_>>, undurable: bool) {
    if let Some(mut t) = turn {
        t.undurable = undurable;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.oracle.wait_turn(self.ts);
        if self.undurable {
            self.oracle.finish_undurable(self.ts);
        } else {
            self.oracle.finish(self.ts);
        }
    }
}

impl<S> Transaction<'_, S> {
    /// Releases every lock it holds.
    fn release_locks(&mut self) {
        if self.locked {
            self.mgr.locks.release_all(self.id);
            self.locked = false;
        }
    }
}

impl<S> Drop for Transaction<'_, S> {
    fn drop(&mut self) {
        // Rollback, or a commit that failed before it was logged (a commit that logged its
        // record has released them).
        self.release_locks();
        self.mgr.oracle.end_read(self.read_ts);
        self.mgr.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<u32>) -> Vec<[u8; 4]> {
        range.map(u32::to_le_bytes).collect()
    }

    fn logged(log: &RecentCommits) -> usize {
        log.entries.iter().map(|e| e.keys).sum()
    }

    #[test]
    fn trimming_a_bulk_commit_rebuilds_the_index_from_what_stays() {
        let mut log = RecentCommits::default();
        log.push(Timestamp::new(1), keys(0..100_000));
        log.push(Timestamp::new(2), keys(50_000..50_010));
        log.push(Timestamp::new(3), keys(200_000..200_005));
        let garbage = log.trim(Timestamp::new(1));
        // The bulk commit went, whole, to be freed elsewhere with the old index.
        assert_eq!(garbage.keys, 100_000);
        assert!(garbage.index.is_some(), "rebuilt, not removed key by key");
        assert_eq!(logged(&log), 15);
        assert_eq!(log.latest.len(), 15);
        assert!(
            log.latest.capacity() < 1024,
            "the new index fits what stays"
        );
        // Validation is unchanged: the commits that stay are seen, the one gone is not.
        assert!(log.written_after(&50_005u32.to_le_bytes(), Timestamp::new(1)));
        assert!(!log.written_after(&50_005u32.to_le_bytes(), Timestamp::new(2)));
        assert!(log.written_after(&200_004u32.to_le_bytes(), Timestamp::new(2)));
        assert!(!log.written_after(&7_000u32.to_le_bytes(), Timestamp::new(0)));
        drop(garbage);
        // Fewer going than staying: removed key by key, the index kept.
        log.push(Timestamp::new(4), keys(300_000..300_100));
        let garbage = log.trim(Timestamp::new(2));
        assert_eq!(garbage.keys, 10);
        assert!(garbage.index.is_none());
        assert_eq!(log.latest.len(), 105);
        assert!(log.written_after(&200_000u32.to_le_bytes(), Timestamp::new(2)));
        assert_eq!(log.trim(Timestamp::new(2)).keys, 0, "nothing more to go");
    }

    #[test]
    #[expect(
        clippy::big_endian_bytes,
        reason = "keys whose byte order is their number order, as a write set sorts them"
    )]
    fn a_large_commit_is_searched_until_trimmed_or_removed() {
        let writes = |range: std::ops::Range<u32>| {
            let map: BTreeMap<Vec<u8>, Option<Vec<u8>>> = range
                .map(|i| (i.to_be_bytes().to_vec(), Some(Vec::new())))
                .collect();
            Arc::new(WriteSet::from(map))
        };
        let mut log = RecentCommits::default();
        log.push_large(Timestamp::new(1), writes(0..10_000));
        log.push(Timestamp::new(2), keys(50_000..50_010));
        log.push_large(Timestamp::new(3), writes(20_000..30_000));
        assert!(log.latest.len() == 10, "large commits are not indexed");
        let key = |i: u32| i.to_be_bytes();
        assert!(log.written_after(&key(9_999), Timestamp::new(0)));
        assert!(!log.written_after(&key(9_999), Timestamp::new(1)));
        assert!(!log.written_after(&key(10_000), Timestamp::new(0)));
        assert!(log.written_after(&key(20_000), Timestamp::new(2)));
        // Trimmed: gone from validation, handed back to be freed elsewhere.
        let garbage = log.trim(Timestamp::new(1));
        assert_eq!(garbage.keys, 10_000);
        assert_eq!(garbage.large.len(), 1);
        assert!(!log.written_after(&key(5), Timestamp::new(0)));
        // Removed (its log record failed): gone too.
        log.remove(Timestamp::new(3));
        assert!(!log.written_after(&key(20_000), Timestamp::new(0)));
        assert!(log.written_after(&50_000u32.to_le_bytes(), Timestamp::new(0)));
    }

    /// Two keys may share a hash: a hit in the index is confirmed against the keys.
    #[test]
    fn an_index_hit_is_confirmed_against_the_keys() {
        let mut log = RecentCommits::default();
        log.push(Timestamp::new(2), keys(0..3));
        // As if key 7 shared its hash with a key commit 2 wrote: the index says 2, the
        // keys say no.
        let hash = log.hash(&7u32.to_le_bytes());
        log.latest.insert(hash, Timestamp::new(2));
        assert!(!log.written_after(&7u32.to_le_bytes(), Timestamp::new(1)));
        assert!(log.written_after(&1u32.to_le_bytes(), Timestamp::new(1)));
        assert!(!log.written_after(&1u32.to_le_bytes(), Timestamp::new(2)));
    }

    /// A stream of commits, each trimmed two commits later: the arena's front is dropped as
    /// it goes (it stays small), and the keys still there are found where they were.
    #[test]
    fn the_arena_drops_its_front_and_keeps_finding_keys() {
        let mut log = RecentCommits::default();
        for i in 1..=10_000u32 {
            log.push(Timestamp::new(u64::from(i)), keys(i * 3..i * 3 + 3));
            let garbage = log.trim(Timestamp::new(u64::from(i.saturating_sub(2))));
            assert_eq!(garbage.keys, if i > 2 { 3 } else { 0 });
            assert!(
                log.arena.len() <= 4 * 3 * (KEY_HEAD + 4),
                "{}",
                log.arena.len()
            );
            let t = |n: u32| Timestamp::new(u64::from(n));
            // Commits i - 1 and i stay: their keys are found after i - 2, not after i.
            for k in (i.saturating_sub(1).max(1) * 3)..(i * 3 + 3) {
                assert!(
                    log.written_after(&k.to_le_bytes(), t(i.saturating_sub(2))),
                    "{i} {k}"
                );
                assert!(!log.written_after(&k.to_le_bytes(), t(i)));
            }
            assert_eq!(log.keys_after(t(i - 1)).count(), 3);
        }
        assert!(log.base > 0, "the front was dropped");
    }

    #[test]
    fn a_key_rewritten_by_a_commit_that_stays_keeps_its_newest_timestamp() {
        let mut log = RecentCommits::default();
        log.push(Timestamp::new(1), keys(0..10));
        log.push(Timestamp::new(2), keys(5..6));
        log.push(Timestamp::new(3), keys(5..6));
        // Rebuilt (10 keys go, 2 stay): key 5 must map to commit 3, not 2.
        let garbage = log.trim(Timestamp::new(1));
        assert!(garbage.index.is_some());
        assert!(log.written_after(&5u32.to_le_bytes(), Timestamp::new(2)));
        assert!(!log.written_after(&5u32.to_le_bytes(), Timestamp::new(3)));
    }

    proptest::proptest! {
        /// A transaction's own writes (puts of every length over earlier ones, in place
        /// when no longer and appended when longer; deletes; puts after deletes; short keys
        /// kept inline and long ones on the heap) read back as a model map says, through
        /// `write`'s result, `own_write` and a scan, and commit as that map. The value
        /// buffer's garbage is counted exactly, and compaction (at a small threshold under
        /// test) keeps the buffer within twice the live bytes.
        #[test]
        fn own_writes_read_back_through_overwrites_and_compaction(
            ops in proptest::collection::vec((0u8..6, proptest::option::of(0usize..200)), 1..200),
        ) {
            let mgr = TxnManager::new(Arc::new(crate::MemStore::new()), Timestamp::new(0));
            let mut tx = mgr.begin(Isolation::Snapshot);
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for (i, (k, len)) in ops.iter().enumerate() {
                let key = vec![*k; usize::from(*k) * 10];
                let value = len.map(|n| vec![u8::try_from(i % 251).unwrap(); n]);
                let replaced = tx.write(&key, value.as_deref()).unwrap();
                let before = model.insert(key, value);
                proptest::prop_assert_eq!(replaced, before.map(|v| v.map(|v| v.len())));
                for (k, v) in &model {
                    proptest::prop_assert_eq!(tx.own_write(k), Some(v.as_deref()));
                }
                let live: usize = model.keys().map(Vec::len).sum::<usize>()
                    + model.values().flatten().map(Vec::len).sum::<usize>();
                proptest::prop_assert_eq!(tx.values.len() - tx.garbage, live);
                proptest::prop_assert!(tx.values.len() <= (live + COMPACT_AT).max(2 * live));
            }
            let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect();
            let all = (Bound::Unbounded, Bound::Unbounded);
            proptest::prop_assert_eq!(tx.scan(all.clone()).unwrap(), expected.clone());
            tx.commit(&crate::NoLog).unwrap();
            let mut read = mgr.begin(Isolation::Snapshot);
            proptest::prop_assert_eq!(read.scan(all).unwrap(), expected);
        }
    }
}
