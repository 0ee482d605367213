//! Transactions: read snapshots and write transactions over keyspaces.

use std::ops::{Bound, ControlFlow, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lightning_btree::BTree;
use lightning_mvcc::{
    CommitLog, Isolation, KeyRange, LogError, Lsn, Timestamp, Transaction, TxnOptions, VersionList,
    VersionStore, VersionValue, VisibleRef, WriteSet, visible_encoded,
};
use lightning_wal::{Appended, Wal};

use crate::db::{Database, Inner, Keyspace};
use crate::options::Durability;
use crate::store::{TreeStore, unstore};
use crate::{Error, Result, keys, record};

/// How a write transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOptions {
    /// The isolation level ([`Isolation::Snapshot`] by default).
    pub isolation: Isolation,
    /// Take key locks as it goes (writes and `get_for_update` lock exclusively, reads of a
    /// serializable transaction shared), waiting for them with deadlock detection and the
    /// lock timeout. Optimistic transactions (the default) take no lock and never wait.
    pub pessimistic: bool,
    /// When its commit counts as done; `None` takes [`Options::durability`](crate::Options::durability).
    pub durability: Option<Durability>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitInfo {
    /// The commit timestamp (the snapshot's, for a transaction that wrote nothing).
    pub ts: Timestamp,
    /// The LSN of its WAL record (`None` when it wrote nothing).
    pub lsn: Option<Lsn>,
}

/// Rows of a range or prefix: `(key, value)` in key order (or descending, from the `_rev`
/// methods). Streams from the trees in batches: memory stays bounded however large the
/// range. A storage failure is an `Err` item, and nothing follows it.
pub struct Iter<'a> {
    inner: Box<dyn Iterator<Item = Row> + 'a>,
}

/// One row of an [`Iter`].
type Row = Result<(Vec<u8>, Vec<u8>)>;

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// The user's key of a prefixed one.
fn strip(mut key: Vec<u8>) -> Vec<u8> {
    key.drain(..keys::PREFIX.min(key.len()));
    key
}

fn as_bytes<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn user_range<K: AsRef<[u8]>>(id: u32, range: &impl RangeBounds<K>) -> KeyRange {
    keys::range(
        id,
        as_bytes(range.start_bound()),
        as_bytes(range.end_bound()),
    )
}

impl Inner {
    /// The tree of a keyspace handle, checking that it is this database's and still there.
    pub(crate) fn resolve(&self, ks: &Keyspace) -> Result<Arc<BTree>> {
        if ks.instance != self.instance {
            return Err(Error::ForeignKeyspace {
                name: ks.name.to_string(),
            });
        }
        self.store
            .tree(ks.id)
            .ok_or_else(|| Error::KeyspaceDropped {
                name: ks.name.to_string(),
            })
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > self.max_key_len {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: self.max_key_len,
            });
        }
        Ok(())
    }
}

/// A conflict naming the user's key (or range), not the transaction layer's prefixed one.
fn user_keys(e: lightning_mvcc::Error) -> lightning_mvcc::Error {
    use lightning_mvcc::Conflict;
    let user = |k: Vec<u8>| strip(k);
    match e {
        lightning_mvcc::Error::Conflict(c) => lightning_mvcc::Error::Conflict(match c {
            Conflict::WriteWrite { key } => Conflict::WriteWrite { key: user(key) },
            Conflict::ReadWrite { key } => Conflict::ReadWrite { key: user(key) },
            Conflict::Phantom { start, end } => Conflict::Phantom {
                start: start.map(user),
                end: end.map(user),
            },
            other => other,
        }),
        other => other,
    }
}

fn no_overflow() -> Error {
    Error::Txn(lightning_mvcc::Error::Corrupt(
        "an overflow reference in a store that keeps values inline",
    ))
}

/// A version list that failed its checks, named by keyspace and key.
fn damaged_list(
    dir: &std::path::Path,
    keyspace: &str,
    key: &[u8],
    e: &lightning_mvcc::Error,
) -> Error {
    Error::Corruption {
        file: dir.join(crate::DATA_FILE),
        what: format!(
            "the version list of key {:?} in keyspace {keyspace:?}: {e}",
            String::from_utf8_lossy(key)
        ),
    }
}

fn visible_value(list: VersionList, read_ts: Timestamp) -> Result<Option<Vec<u8>>> {
    match list.into_visible(read_ts).map(|v| v.value) {
        Some(VersionValue::Value(v)) => Ok(Some(v)),
        Some(VersionValue::Tombstone) | None => Ok(None),
        Some(VersionValue::Overflow { .. }) => Err(Error::Txn(lightning_mvcc::Error::Corrupt(
            "an overflow reference in a store that keeps values inline",
        ))),
    }
}

/// A read-only snapshot of everything committed when it began. Never blocks and is never
/// blocked by writers; holds back GC of the versions it can see until dropped.
pub struct ReadTx<'db> {
    db: &'db Inner,
    read_ts: Timestamp,
    /// The keyspaces' trees when the snapshot began: it reads those (a keyspace dropped or
    /// rebuilt meanwhile stays readable to it; one created later is empty to it).
    trees: crate::store::TreeMap,
}

impl std::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTx")
            .field("read_ts", &self.read_ts)
            .finish()
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        self.db.mgr.oracle().end_read(self.read_ts);
    }
}

impl ReadTx<'_> {
    /// The snapshot's timestamp.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// The tree of `ks` as of the snapshot: `None` for a keyspace created after it began.
    fn tree_of(&self, ks: &Keyspace) -> Result<Option<&BTree>> {
        if ks.instance != self.db.instance {
            return Err(Error::ForeignKeyspace {
                name: ks.name.to_string(),
            });
        }
        self.db.store.check_readable()?;
        match self.trees.get(&ks.id) {
            Some(tree) => Ok(Some(tree)),
            None if self.db.store.tree(ks.id).is_some() => Ok(None),
            None => Err(Error::KeyspaceDropped {
                name: ks.name.to_string(),
            }),
        }
    }

    /// The value of `key` in `ks` at the snapshot.
    pub fn get(&self, ks: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(ks, key, <[u8]>::to_vec)
    }

    /// `f` of the value of `key` in `ks` at the snapshot, borrowed from its page (nothing
    /// copied unless `f` copies); `None` when the key has no value at the snapshot.
    pub fn get_with<R>(
        &self,
        ks: &Keyspace,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>> {
        let Some(tree) = self.tree_of(ks)? else {
            return Ok(None);
        };
        if self.db.store.has_overlay()
            && let Some(list) = self.db.store.overlay_versions(&keys::join(ks.id, key))
        {
            return Ok(visible_value(list, self.read_ts)?.map(|v| f(&v)));
        }
        let read_ts = self.read_ts;
        // The visible value straight from the encoded list in its leaf: nothing decoded.
        let found = tree.get_with(key, |bytes| match visible_encoded(bytes, read_ts) {
            Ok(VisibleRef::Value(v)) => Ok(Some(f(v))),
            Ok(VisibleRef::Absent) => Ok(None),
            Ok(VisibleRef::Overflow { .. }) => Err(no_overflow()),
            Err(e) => Err(self.damaged_list(ks, key, &e)),
        })?;
        found.unwrap_or(Ok(None))
    }

    /// Calls `f` on each row of `ks` in `range` at the snapshot, ascending, with the key and
    /// value borrowed from their page, until `f` returns [`ControlFlow::Break`]: returns its
    /// value, or `None` when the range ran out. The fastest way through a range: nothing is
    /// copied. `f` must not write to the database from this thread (a tree's lock is held
    /// for one page at a time).
    pub fn scan_with<K: AsRef<[u8]>, B>(
        &self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<B>,
    ) -> Result<Option<B>> {
        let Some(tree) = self.tree_of(ks)? else {
            return Ok(None);
        };
        if self.db.store.has_overlay() {
            for row in self.range(ks, range)? {
                let (k, v) = row?;
                if let ControlFlow::Break(b) = f(&k, &v) {
                    return Ok(Some(b));
                }
            }
            return Ok(None);
        }
        let read_ts = self.read_ts;
        let (lo, hi) = (as_bytes(range.start_bound()), as_bytes(range.end_bound()));
        let out = tree.scan_with::<&[u8], _>((lo, hi), |k, bytes| {
            match visible_encoded(bytes, read_ts) {
                Ok(VisibleRef::Value(v)) => match f(k, v) {
                    ControlFlow::Break(b) => ControlFlow::Break(Ok(b)),
                    ControlFlow::Continue(()) => ControlFlow::Continue(()),
                },
                Ok(VisibleRef::Absent) => ControlFlow::Continue(()),
                Ok(VisibleRef::Overflow { .. }) => ControlFlow::Break(Err(no_overflow())),
                Err(e) => ControlFlow::Break(Err(self.damaged_list(ks, k, &e))),
            }
        })?;
        out.transpose()
    }

    fn damaged_list(&self, ks: &Keyspace, key: &[u8], e: &lightning_mvcc::Error) -> Error {
        damaged_list(&self.db.dir, ks.name(), key, e)
    }

    fn scan(&self, ks: &Keyspace, range: KeyRange, rev: bool) -> Result<Iter<'_>> {
        self.tree_of(ks)?;
        let Some(tree) = self.trees.get(&ks.id) else {
            // Not in the snapshot: created after it began, so empty to it.
            return Ok(Iter {
                inner: Box::new(std::iter::empty()),
            });
        };
        if self.db.store.has_overlay() {
            return Ok(self.scan_overlaid(range, rev));
        }
        let Some((_, (lo, hi))) = keys::unprefix(&range) else {
            return Ok(Iter {
                inner: Box::new(std::iter::empty()),
            });
        };
        if lightning_mvcc::range_is_empty(&(lo.clone(), hi.clone())) {
            return Ok(Iter {
                inner: Box::new(std::iter::empty()),
            });
        }
        // The tree's own range, read in place: each row's visible value is cut out of its
        // encoded list (no decoding, no second copy).
        let rows = tree.range_owned(lo, hi);
        let read_ts = self.read_ts;
        let (dir, name) = (self.db.dir.clone(), ks.name.clone());
        let mut failed = false;
        let visible = move |row: lightning_btree::Result<(Vec<u8>, Vec<u8>)>| -> Option<Row> {
            if failed {
                return None;
            }
            let (key, mut bytes) = match row {
                Ok(kv) => kv,
                Err(e) => {
                    failed = true;
                    return Some(Err(e.into()));
                }
            };
            let at = match visible_encoded(&bytes, read_ts) {
                Ok(VisibleRef::Value(v)) => {
                    Ok((v.as_ptr() as usize - bytes.as_ptr() as usize, v.len()))
                }
                Ok(VisibleRef::Absent) => return None,
                Ok(VisibleRef::Overflow { .. }) => Err(no_overflow()),
                Err(e) => Err(damaged_list(&dir, &name, &key, &e)),
            };
            match at {
                Ok((start, len)) => {
                    bytes.copy_within(start..start + len, 0);
                    bytes.truncate(len);
                    Some(Ok((key, bytes)))
                }
                Err(e) => {
                    failed = true;
                    Some(Err(e))
                }
            }
        };
        Ok(Iter {
            inner: if rev {
                Box::new(rows.rev().filter_map(visible))
            } else {
                Box::new(rows.filter_map(visible))
            },
        })
    }

    /// A scan of a read-only open: the trees with the replayed commits laid over them.
    fn scan_overlaid(&self, range: KeyRange, rev: bool) -> Iter<'_> {
        let store: &TreeStore = &self.db.store;
        let rows = if rev {
            store.scan_rev(range)
        } else {
            store.scan(range)
        };
        let read_ts = self.read_ts;
        let mut failed = false;
        Iter {
            inner: Box::new(rows.filter_map(move |row| {
                if failed {
                    return None;
                }
                match row {
                    Ok((key, list)) => match visible_value(list, read_ts) {
                        Ok(Some(v)) => Some(Ok((strip(key), v))),
                        Ok(None) => None,
                        Err(e) => {
                            failed = true;
                            Some(Err(e))
                        }
                    },
                    Err(e) => {
                        failed = true;
                        Some(Err(unstore(e)))
                    }
                }
            })),
        }
    }

    /// The rows of `ks` in `range`, ascending.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<Iter<'_>> {
        self.scan(ks, user_range(ks.id, &range), false)
    }

    /// The rows of `ks` in `range`, descending.
    pub fn range_rev<K: AsRef<[u8]>>(
        &self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<Iter<'_>> {
        self.scan(ks, user_range(ks.id, &range), true)
    }

    /// The rows of `ks` whose keys start with `prefix`, ascending.
    pub fn prefix(&self, ks: &Keyspace, prefix: &[u8]) -> Result<Iter<'_>> {
        self.scan(ks, keys::prefix_range(ks.id, prefix), false)
    }

    /// The rows of `ks` whose keys start with `prefix`, descending.
    pub fn prefix_rev(&self, ks: &Keyspace, prefix: &[u8]) -> Result<Iter<'_>> {
        self.scan(ks, keys::prefix_range(ks.id, prefix), true)
    }
}

/// The WAL as the commit log: the record is appended under the commit ordering without
/// waiting, and an `Immediate` commit waits for its group commit's fsync outside it.
struct WalLog<'a> {
    wal: &'a Wal,
    durability: Durability,
}

impl CommitLog for WalLog<'_> {
    type Ticket = Appended;

    fn log(&self, writes: &WriteSet, commit_ts: Timestamp) -> Result<Appended, LogError> {
        let payload = record::encode(commit_ts, writes.iter());
        let durability = match self.durability {
            // Waited for in `wait`, outside the commit ordering.
            Durability::Immediate | Durability::None => lightning_wal::Durability::None,
            Durability::Eventual => lightning_wal::Durability::Eventual,
        };
        Ok(self.wal.append_owned(record::COMMIT, payload, durability)?)
    }

    fn wait(&self, appended: Appended) -> Result<Lsn, LogError> {
        if self.durability == Durability::Immediate {
            appended.wait()?;
        }
        Ok(appended.lsn())
    }

    /// An appended record's LSN is fixed: commits apply before their fsync (ADR 017).
    fn logged_lsn(&self, appended: &Appended) -> Option<Lsn> {
        Some(appended.lsn())
    }

    fn may_block(&self, _: &Appended) -> bool {
        self.durability == Durability::Immediate
    }
}

/// A write transaction: reads from its snapshot and its own writes, buffers writes until
/// [`commit`](Self::commit). Dropping it rolls it back.
pub struct WriteTx<'db> {
    db: &'db Inner,
    txn: Transaction<'db, TreeStore>,
    durability: Durability,
    /// Bytes its WAL record would take.
    bytes: u64,
    /// The error that ended it, if one did.
    aborted: Option<String>,
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("txn", &self.txn)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl WriteTx<'_> {
    /// The snapshot's timestamp.
    pub fn read_ts(&self) -> Timestamp {
        self.txn.read_ts()
    }

    fn usable(&self) -> Result<()> {
        match &self.aborted {
            Some(cause) => Err(Error::TransactionAborted {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Passes `r` on; an error that leaves the transaction unusable (a conflict found
    /// early, a deadlock, a lock timeout, a storage failure) ends it.
    fn track<T>(&mut self, r: lightning_mvcc::Result<T>) -> Result<T> {
        r.map_err(|e| {
            let e = unstore(user_keys(e));
            if !matches!(&e, Error::Txn(lightning_mvcc::Error::ValueTooLarge { .. })) {
                self.aborted = Some(e.to_string());
            }
            e
        })
    }

    /// The value of `key` in `ks`: this transaction's own write, else the snapshot's.
    pub fn get(&mut self, ks: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.usable()?;
        self.db.resolve(ks)?;
        let r = self.txn.get(&keys::join(ks.id, key));
        self.track(r)
    }

    /// Reads `key` for a later update: if another transaction commits a change to it after
    /// this one's snapshot, this one's commit fails with a retryable conflict. A
    /// pessimistic transaction also locks the key exclusively; one at Snapshot isolation
    /// that has so far read only keys it locked this way does not fail when it waited for
    /// the lock behind another writer's commit: its snapshot moves forward and it reads
    /// that commit's value ([`read_ts`](Self::read_ts) reports the moved snapshot).
    pub fn get_for_update(&mut self, ks: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.usable()?;
        self.db.resolve(ks)?;
        self.db.check_key(key)?;
        let r = self.txn.get_for_update(&keys::join(ks.id, key));
        self.track(r)
    }

    fn account(&mut self, full: &[u8], value: Option<usize>) -> Result<()> {
        let user_len = full.len() - keys::PREFIX;
        let before = self
            .txn
            .own_write(full)
            .map_or(0, |v| record::write_len(user_len, v.map(<[u8]>::len)));
        let after = self.bytes - before + record::write_len(user_len, value);
        let max = self.db.opts.max_txn_bytes;
        if after + record::HEADER > max {
            return Err(Error::TransactionTooLarge {
                len: after + record::HEADER,
                max,
            });
        }
        self.bytes = after;
        Ok(())
    }

    /// Writes `value` at `key` in `ks`.
    pub fn put(&mut self, ks: &Keyspace, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(ks, key, Some(value))
    }

    /// Deletes `key` from `ks` (nothing happens if it is absent).
    pub fn delete(&mut self, ks: &Keyspace, key: &[u8]) -> Result<()> {
        self.write(ks, key, None)
    }

    /// A put (`Some`) or a delete (`None`), its size counted against `max_txn_bytes`.
    fn write(&mut self, ks: &Keyspace, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.usable()?;
        self.db.resolve(ks)?;
        self.db.check_key(key)?;
        // The prefixed key on the stack when it is short (nothing allocated per write).
        let mut short = [0u8; 64];
        let long;
        let full: &[u8] = if let Some(buf) = short.get_mut(..keys::PREFIX + key.len()) {
            let (prefix, rest) = buf.split_at_mut(keys::PREFIX);
            prefix.copy_from_slice(&keys::prefix(ks.id));
            rest.copy_from_slice(key);
            buf
        } else {
            long = keys::join(ks.id, key);
            &long
        };
        self.write_prefixed(full, key.len(), value)
    }

    /// [`write`](Self::write) of `full`, the prefixed key of a `key_len`-byte key.
    fn write_prefixed(&mut self, full: &[u8], key_len: usize, value: Option<&[u8]>) -> Result<()> {
        let len = record::write_len(key_len, value.map(<[u8]>::len));
        if self.bytes + len + record::HEADER > self.db.opts.max_txn_bytes {
            // Near the limit, what the write replaces decides whether it fits: look first.
            let before = self.bytes;
            self.account(full, value.map(<[u8]>::len))?;
            let r = match value {
                Some(v) => self.txn.put(full, v),
                None => self.txn.delete(full),
            };
            if r.is_err() {
                self.bytes = before;
            }
            return self.track(r);
        }
        // It fits whatever it replaces (a replaced write only gives bytes back): write, then
        // count, with one lookup of the write set instead of two.
        let replaced = self.txn.write(full, value);
        let replaced = self.track(replaced)?;
        let freed = replaced.map_or(0, |v| record::write_len(key_len, v));
        self.bytes = self.bytes.saturating_sub(freed) + len;
        Ok(())
    }

    fn scan(&mut self, ks: &Keyspace, range: KeyRange, rev: bool) -> Result<Iter<'_>> {
        self.usable()?;
        self.db.resolve(ks)?;
        let rows = if rev {
            self.txn.range_rev(range)
        } else {
            self.txn.range(range)
        };
        Ok(Iter {
            inner: Box::new(rows.map(|row| row.map(|(k, v)| (strip(k), v)).map_err(unstore))),
        })
    }

    /// The rows of `ks` in `range`, ascending, with this transaction's own writes.
    pub fn range<K: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<Iter<'_>> {
        self.scan(ks, user_range(ks.id, &range), false)
    }

    /// The rows of `ks` in `range`, descending, with this transaction's own writes.
    pub fn range_rev<K: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<Iter<'_>> {
        self.scan(ks, user_range(ks.id, &range), true)
    }

    /// The rows of `ks` whose keys start with `prefix`, ascending.
    pub fn prefix(&mut self, ks: &Keyspace, prefix: &[u8]) -> Result<Iter<'_>> {
        self.scan(ks, keys::prefix_range(ks.id, prefix), false)
    }

    /// The rows of `ks` whose keys start with `prefix`, descending.
    pub fn prefix_rev(&mut self, ks: &Keyspace, prefix: &[u8]) -> Result<Iter<'_>> {
        self.scan(ks, keys::prefix_range(ks.id, prefix), true)
    }

    /// Commits: validates against the commits since the snapshot, appends one WAL record
    /// with the whole write set, waits for its durability, applies it, publishes it.
    ///
    /// A conflict is a retryable error and nothing of the transaction is kept. A failure
    /// of the log or of applying turns the database read-only
    /// ([`Error::CommitFailed`]): the commit's outcome is then known only after a reopen.
    pub fn commit(self) -> Result<CommitInfo> {
        self.usable()?;
        let db = self.db;
        if self.txn.has_writes() {
            db.check_writable()?;
        }
        let log = WalLog {
            wal: db.wal()?,
            durability: self.durability,
        };
        let span = tracing::trace_span!("commit", read_ts = %self.txn.read_ts());
        let _span = span.enter();
        match self.txn.commit(&log) {
            Ok(c) => Ok(CommitInfo {
                ts: c.ts,
                lsn: c.lsn,
            }),
            Err(
                e @ (lightning_mvcc::Error::LogFailed { .. }
                | lightning_mvcc::Error::NotDurable { .. }),
            ) => {
                db.fail(format!("a commit's WAL write failed: {e}"));
                Err(Error::CommitFailed {
                    cause: e.to_string(),
                })
            }
            Err(e @ lightning_mvcc::Error::Store(_)) => {
                let e = unstore(e);
                db.fail(format!("applying a commit failed: {e}"));
                Err(Error::CommitFailed {
                    cause: e.to_string(),
                })
            }
            Err(e) => Err(Error::Txn(user_keys(e))),
        }
    }

    /// Rolls back (the same as dropping it).
    pub fn rollback(self) {}
}

/// Writes applied together by [`Database::write`]: all or none.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    ops: Vec<(Keyspace, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, ks: &Keyspace, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops
            .push((ks.clone(), key.to_vec(), Some(value.to_vec())));
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, ks: &Keyspace, key: &[u8]) -> &mut Self {
        self.ops.push((ks.clone(), key.to_vec(), None));
        self
    }

    /// Writes in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl Database {
    /// A read-only snapshot of everything committed so far.
    pub fn begin_read(&self) -> Result<ReadTx<'_>> {
        self.inner().check_open()?;
        let inner = self.inner();
        // The trees first: a keyspace that appears after them is newer than the snapshot.
        let trees = inner.store.tree_map();
        Ok(ReadTx {
            db: inner,
            read_ts: inner.mgr.oracle().begin_read(),
            trees,
        })
    }

    /// An optimistic write transaction at Snapshot isolation, with the database's default
    /// durability.
    pub fn begin_write(&self) -> Result<WriteTx<'_>> {
        self.begin_write_with(TxOptions::default())
    }

    /// A write transaction with `options`.
    pub fn begin_write_with(&self, options: TxOptions) -> Result<WriteTx<'_>> {
        let inner = self.inner();
        inner.check_writable()?;
        Ok(WriteTx {
            db: inner,
            txn: inner.mgr.begin_with(TxnOptions {
                isolation: options.isolation,
                pessimistic: options.pessimistic,
            }),
            durability: options.durability.unwrap_or(inner.opts.durability),
            bytes: 0,
            aborted: None,
        })
    }

    /// Runs `f` in a write transaction and commits it, retrying the whole transaction when
    /// `f` or the commit fails with a retryable error (conflict, deadlock, lock timeout), at
    /// most [`Options::max_update_attempts`](crate::Options::max_update_attempts) times;
    /// then the last error is returned. `f` may run more than once: keep side effects out of it.
    pub fn update<T>(&self, f: impl FnMut(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        self.update_with(TxOptions::default(), f)
    }

    /// [`update`](Self::update) with `options`.
    pub fn update_with<T>(
        &self,
        options: TxOptions,
        mut f: impl FnMut(&mut WriteTx<'_>) -> Result<T>,
    ) -> Result<T> {
        let attempts = self.inner().opts.max_update_attempts;
        let mut attempt = 1;
        loop {
            let mut tx = self.begin_write_with(options)?;
            let outcome = f(&mut tx).and_then(|v| tx.commit().map(|_| v));
            match outcome {
                Err(e) if e.is_retryable() && attempt < attempts => {
                    self.inner()
                        .counters
                        .retries
                        .fetch_add(1, Ordering::Relaxed);
                    // Back off a little more each time, so that the winner can finish.
                    let spins = 1u32 << attempt.min(10);
                    for _ in 0..spins {
                        std::hint::spin_loop();
                    }
                    std::thread::yield_now();
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Commits `batch` as one transaction (retried on conflicts like [`update`](Self::update)).
    pub fn write(&self, batch: &WriteBatch) -> Result<CommitInfo> {
        let attempts = self.inner().opts.max_update_attempts;
        let mut attempt = 1;
        loop {
            let mut tx = self.begin_write()?;
            for (ks, key, value) in &batch.ops {
                match value {
                    Some(v) => tx.put(ks, key, v)?,
                    None => tx.delete(ks, key)?,
                }
            }
            match tx.commit() {
                Err(e) if e.is_retryable() && attempt < attempts => {
                    self.inner()
                        .counters
                        .retries
                        .fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Writes `value` at `key` in `ks`, committed at once.
    pub fn put(&self, ks: &Keyspace, key: &[u8], value: &[u8]) -> Result<CommitInfo> {
        let mut batch = WriteBatch::new();
        batch.put(ks, key, value);
        self.write(&batch)
    }

    /// Deletes `key` from `ks`, committed at once.
    pub fn delete(&self, ks: &Keyspace, key: &[u8]) -> Result<CommitInfo> {
        let mut batch = WriteBatch::new();
        batch.delete(ks, key);
        self.write(&batch)
    }

    /// The value of `key` in `ks` now.
    pub fn get(&self, ks: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.begin_read()?.get(ks, key)
    }
}
