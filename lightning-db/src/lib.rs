//! Lightning DB: an embedded transactional key-value database.
//!
//! Named keyspaces (B+trees) in one crash-safe directory, with multi-version concurrency
//! control: read snapshots that never block, write transactions at Snapshot or
//! Serializable isolation, optimistic or pessimistic, each commit one WAL record (group
//! commit), durable `Immediate`ly, `Eventual`ly (a background flusher) or at the next
//! checkpoint. Checkpoints run in the background while readers and writers go on; old
//! versions are garbage-collected; recovery replays the WAL above the newest checkpoint.
//!
//! ```
//! use lightning_db::{Database, Options, TxOptions, Isolation};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path(), Options::default())?;
//! let users = db.keyspace("users")?; // created on first use
//!
//! let mut tx = db.begin_write()?;
//! tx.put(&users, b"alice", b"1")?;
//! tx.put(&users, b"bob", b"2")?;
//! assert_eq!(tx.get(&users, b"alice")?, Some(b"1".to_vec())); // reads its own writes
//! tx.commit()?;
//!
//! let snap = db.begin_read()?;
//! let names: Vec<Vec<u8>> = snap
//!     .range(&users, b"a".as_slice()..b"c".as_slice())?
//!     .map(|row| row.map(|(k, _)| k))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(names, [b"alice".to_vec(), b"bob".to_vec()]);
//! drop(snap); // a snapshot borrows the database
//!
//! // Retried on conflicts:
//! db.update_with(
//!     TxOptions { isolation: Isolation::Serializable, ..TxOptions::default() },
//!     |tx| {
//!         let n = tx.get(&users, b"alice")?.unwrap_or_default();
//!         tx.put(&users, b"carol", &n)
//!     },
//! )?;
//! db.checkpoint()?;
//! assert_eq!(db.stats().tx.commits, 2);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Files
//! `LOCK` (held while open read-write: a second open is [`Error::Locked`]), `data.ldb`
//! (the page file: two superblocks, the catalog and every keyspace's tree) and `wal/`
//! (log segments). Formats: `docs/format/database.md`; design: `docs/ARCHITECTURE.md`.
//!
//! # Backups
//! [`Database::backup`] takes an online full or incremental backup into a backup directory
//! while writers go on; [`backup`] (the `lightning-backup` crate) verifies, restores and
//! recovers to a point in time, with WAL archiving turned on by
//! [`Options::wal_archive_dir`]. Procedures: `docs/runbooks/backup-restore-pitr.md`.
//!
//! # Limits
//! Keys up to the tree's limit for the page size (`Error::KeyTooLarge` says it; 2,000-odd
//! bytes at 8 KiB pages), a transaction's writes up to [`Options::max_txn_bytes`].
//!
//! # The family
//! The crates underneath are re-exported as modules, for users who reach below the
//! database: [`page`], [`cache`], [`wal`], [`btree`], [`mvcc`], [`compress`], [`columnar`],
//! [`backup`].
//! Their features are forwarded: `arrow` turns on `lightning-columnar/arrow`.
//!
//! # Features
//! - `arrow`: Arrow conversions of column batches (`lightning_db::columnar::arrow`).
//! - `cli`: the `lightning` command-line tool (`cargo install lightning-db --features cli`):
//!   `lightning demo` runs a mixed workload on a new database, reopens it and verifies
//!   every acknowledged commit; `stats`, `check`, `dump`, `keyspaces`, `compact`, `get`,
//!   `put`, `delete` and `bench` work on a database directory; `backup`, `verify`,
//!   `restore`, `backups` and `prune` on backups. `--format json` on every
//!   command that prints data; exit code 1 for a failure, 2 for a usage error. The library
//!   itself does not depend on it.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod backups;
mod catalog;
mod db;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod open;
mod options;
mod record;
mod stats;
mod store;
mod tx;

pub use db::{
    DATA_FILE, Database, Keyspace, LOCK_FILE, MAX_KEYSPACE_NAME, WAL_DIR, validate_keyspace_name,
};
pub use error::{Error, Result};
pub use lightning_mvcc::{Conflict, Isolation, Lsn, Timestamp};
pub use options::{Durability, Options};
pub use stats::{
    CacheStats, CheckpointStats, FileStats, GcStats, LockStats, Stats, TxStats, WalStats,
};
pub use tx::{CommitInfo, Iter, ReadTx, TxOptions, WriteBatch, WriteTx};

pub use backups::BackupSource;
pub use lightning_backup as backup;
pub use lightning_btree as btree;
pub use lightning_cache as cache;
pub use lightning_columnar as columnar;
pub use lightning_compress as compress;
pub use lightning_mvcc as mvcc;
pub use lightning_page as page;
pub use lightning_wal as wal;
