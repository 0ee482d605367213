//! Multi-version concurrency control for Lightning DB.
//!
//! - [`TimestampOracle`]: read and commit timestamps, a watermark of fully applied commits
//!   and a visible one below the first commit still waiting for durability (a new snapshot
//!   reads there: it never sees half a commit, nor one that may yet be lost), and the oldest
//!   active snapshot for trimming.
//! - [`VersionList`]: a key's versions newest first, the visibility rule, trimming, and an
//!   encoding whose decoder treats bytes as untrusted. A value is at most
//!   [`MAX_VALUE_LEN`] bytes (4 GiB − 1), inline or in overflow pages — the limit the
//!   database enforces ([`Transaction::put`] refuses longer values); large values live in
//!   the store's overflow pages as [`VersionValue::Overflow`] references
//!   ([`VersionValue::overflow`], [`VersionValue::as_overflow`]), which transactions resolve
//!   through [`VersionStore::read_overflow`].
//! - [`TxnManager`] / [`Transaction`]: snapshot reads with read-your-own-writes, buffered
//!   writes, and a commit pipeline — validate, stamp and log the [`WriteSet`] under the
//!   commit ordering ([`CommitLog::log`], so the log's order is the commit-timestamp order),
//!   wait for durability outside it ([`CommitLog::wait`], which returns the record's
//!   [`Lsn`]), apply in timestamp order, publish. A log that knows the LSN when it queues
//!   the record ([`CommitLog::logged_lsn`]) gets the early order: the commit releases its
//!   locks once logged, applies, then waits for durability, and becomes visible to new
//!   snapshots once durable (ADR 017). A commit reports [`Committed`] `{ ts, lsn }`. [`Isolation::Snapshot`] aborts write-write conflicts
//!   (first committer wins); [`Isolation::Serializable`] also validates every key read and
//!   range scanned against the commits after the snapshot, so write skew and phantoms abort.
//!   Conflicts are retryable [`Error::Conflict`]s naming the key or range.
//! - [`Transaction::range`] streams a range ([`Scan`]): the store's versions merged with
//!   the transaction's own writes, read as it goes from the store's streaming
//!   [`VersionStore::scan`], so memory stays bounded however large the range
//!   ([`Transaction::scan`] collects one into a `Vec`). A serializable transaction records
//!   the whole range for validation when the scan starts.
//! - [`Transaction::get_for_update`] reads a key for a later update: the key is validated
//!   at commit like a written one, in both modes, so if anyone committed it after the
//!   snapshot the commit fails. Optimistic transactions (the default) take no lock and
//!   never wait, as in `RocksDB`'s optimistic transactions.
//! - Pessimistic mode ([`TxnOptions::pessimistic`]): exclusive key locks on writes and
//!   [`Transaction::get_for_update`], shared locks on serializable reads, FIFO queues,
//!   upgrades, a lock timeout, and deadlock detection when a wait begins: the youngest
//!   member of a cycle gets a retryable [`Error::Deadlock`] ([`LockManager`]). Locks are
//!   released when the commit is logged; the next holder waits for that commit's apply,
//!   never for its fsync, and reads it. Locks order
//!   pessimistic transactions among themselves; optimistic writers look at no lock. A
//!   pessimistic transaction's writes and `get_for_update` keys are validated at its commit
//!   too, so when an optimistic writer commits a key that a pessimistic transaction holds
//!   locked, the holder's commit fails with a conflict (design: ADR 007).
//!
//! It knows nothing of page layouts: storage is the [`VersionStore`] trait, with
//! [`MemStore`] for tests. It takes only the id types [`PageId`] and `Lsn` from
//! `lightning-page`.
//!
//! # Example
//!
//! ```
//! use std::ops::Bound;
//! use std::sync::{Arc, Mutex};
//! use lightning_mvcc::{
//!     CommitLog, Isolation, LogError, Lsn, MemStore, Timestamp, TxnManager, WriteSet,
//! };
//!
//! /// A log in memory: records in commit order, durable at once. (Over `lightning-wal`,
//! /// `log` appends without waiting and `wait` waits for the group commit's fsync.)
//! #[derive(Default)]
//! struct VecLog(Mutex<Vec<(Timestamp, WriteSet)>>);
//!
//! impl CommitLog for VecLog {
//!     type Ticket = Lsn;
//!     fn log(&self, writes: &WriteSet, ts: Timestamp) -> Result<Lsn, LogError> {
//!         let mut records = self.0.lock().map_err(|_| "the log's lock is poisoned")?;
//!         records.push((ts, writes.clone()));
//!         Ok(Lsn::new(u64::try_from(records.len())?))
//!     }
//!     fn wait(&self, lsn: Lsn) -> Result<Lsn, LogError> {
//!         Ok(lsn)
//!     }
//! }
//!
//! let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
//! let log = VecLog::default();
//! let mut t = mgr.begin(Isolation::Snapshot);
//! t.put(b"alice", b"10")?;
//! t.put(b"bob", b"20")?;
//! let committed = t.commit(&log)?;
//! assert_eq!(committed.lsn, Some(Lsn::new(1)));
//!
//! // Two transactions update the same key from the same snapshot: the second to commit loses.
//! let mut a = mgr.begin(Isolation::Snapshot);
//! let mut b = mgr.begin(Isolation::Snapshot);
//! a.put(b"alice", b"11")?;
//! b.put(b"alice", b"12")?;
//! a.commit(&log)?;
//! assert!(b.commit(&log).unwrap_err().is_retryable());
//!
//! // A range streams: the store is read as the rows are taken.
//! let mut r = mgr.begin(Isolation::Snapshot);
//! let mut total = 0;
//! for row in r.range((Bound::Unbounded, Bound::Unbounded)) {
//!     let (_key, value) = row?;
//!     total += std::str::from_utf8(&value).map_or(0, |v| v.parse::<u32>().unwrap_or(0));
//! }
//! assert_eq!(total, 31);
//! # Ok::<(), lightning_mvcc::Error>(())
//! ```
//!
//! # Feature flags
//!
//! None yet.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod commit;
mod error;
mod locks;
mod oracle;
mod store;
mod txn;
mod versions;

pub use commit::{CommitLog, Committed, LogError, NoLog, WriteSet};
pub use error::{Conflict, Error, Result};
/// The LSN a [`CommitLog`] returns and a commit reports, and the page id of
/// [`VersionValue::Overflow`] references (`lightning-page`'s).
pub use lightning_page::{Lsn, PageId};
pub use locks::{LockManager, LockMode, LockStats, TxnId};
pub use oracle::{Stalled, Timestamp, TimestampOracle};
pub use store::{KeyRange, MemStore, VersionScan, VersionStore, in_range, range_is_empty};
pub use txn::{Isolation, Scan, Transaction, TxnManager, TxnOptions, TxnStats};
pub use versions::{
    MAX_VALUE_LEN, Pushed, Version, VersionList, VersionValue, VisibleRef, push_encoded,
    visible_encoded,
};
