//! The write-ahead log of Lightning DB.
//!
//! The log holds only committed transactions, one framed record per commit, so recovery
//! needs no undo: replay the records after the checkpoint LSN, in order.
//!
//! - **Frames** carry length, crc32c over header and payload, LSN, time, type and the LSN up
//!   to which the log was durable when they were written ([`Record`] is what comes back).
//! - **Segments** `<first LSN>.wal` of [`WalOptions::segment_size`], created with a header,
//!   preallocated, synced and directory-synced before records go in.
//! - **Group commit**: while one leader writes and fsyncs, later appenders queue; the next
//!   leader writes them all with one write and one fsync. [`Durability`] per append. A
//!   waiter polls for a fast fsync rather than sleeping ([`WalOptions::wait_spin`]): on a
//!   fast disk waking a sleeping thread costs about as much as the fsync.
//! - **Recovery**: [`Wal::open`] validates the log; a torn tail (damage no fsync had covered)
//!   ends it and is cut off; damage to records an fsync had covered is
//!   [`Error::Corruption`] naming segment and offset — never a silent skip.
//! - **Poisoning**: after a failed write or fsync every later call fails with
//!   [`Error::Poisoned`]; a failed fsync is never retried and assumed to have worked.
//! - **Truncation and archiving**: [`Wal::truncate_before`] drops (or archives, with an index
//!   of LSN and time ranges for point-in-time recovery) segments a checkpoint covers;
//!   [`prune_archive`] removes archived segments a retention policy no longer needs.
//! - **Export**: [`write_log`] writes records read elsewhere as a log of their own, with
//!   their LSNs and times (backups and point-in-time recovery carry log ranges this way).
//!
//! All files go through a [`Vfs`](lightning_page::vfs::Vfs), so the crash simulator of
//! `lightning-page` exercises every path. The byte layouts are documented on the functions
//! that encode them and in `docs/format/wal.md`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use lightning_page::vfs::{CrashMode, CrashVfs};
//! use lightning_wal::{Durability, Lsn, Wal, WalOptions};
//!
//! let vfs = Arc::new(CrashVfs::new(1));
//! let dir = "db/wal".as_ref();
//! let wal = Wal::open(vfs.clone(), dir, WalOptions::default())?;
//! let acked = wal.append(1, b"commit 1", Durability::Immediate)?.lsn();
//! wal.append(1, b"commit 2 (not yet durable)", Durability::None)?;
//! drop(wal);
//!
//! vfs.crash(CrashMode::DropUnsynced);
//! let wal = Wal::open(vfs, dir, WalOptions::default())?;
//! assert!(wal.recovery().last_lsn >= acked);
//! let first = wal.read_from(Lsn::new(1))?.next().expect("one record")?;
//! assert_eq!(first.payload, b"commit 1");
//! # Ok::<(), lightning_wal::Error>(())
//! ```
//!
//! # Feature flags
//!
//! None yet.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod archive;
mod error;
mod export;
mod frame;
mod scan;
mod stats;
mod wal;

pub use archive::{ArchivedSegment, last_lsn_at, load_index, segments_through};
pub use error::{Error, Result};
pub use export::{WrittenSegment, prune_archive, write_log};
pub use frame::{Lsn, Record};
pub use scan::{RecordIter, TornTail};
pub use stats::{GROUP_BUCKETS, LATENCY_BUCKETS, WalStats};
pub use wal::{Appended, Durability, Recovery, Wal, WalOptions, read_only};
