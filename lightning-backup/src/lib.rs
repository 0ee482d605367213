//! Backups of a Lightning DB database: online full and incremental backups, verification of
//! every byte, restore of a chain, point-in-time recovery from archived WAL, and retention.
//!
//! A backup copies a database's durable checkpoint image — which is never overwritten while
//! it is one of the two retained images (ADR 004), and which the database keeps from being
//! replaced while the copy runs — and the log records that bring it to the backup's end
//! LSN. Writers keep committing throughout. An incremental backup copies only the pages
//! written since its parent's image: copy-on-write stamps every page with the checkpoint
//! generation that wrote it, and a page of an older generation is exactly as the parent
//! copied it.
//!
//! Every extent of pages and every file has a `blake3` hash in the backup's manifest, and the
//! manifest hashes itself; [`verify`] reads every byte and also checks each page's own
//! checksum, id and generation and each log record's checksum and sequence. [`restore`]
//! checks the same as it reads, and writes the database's superblock last, so an interrupted
//! or refused restore never leaves a directory that opens as a wrong database.
//!
//! The database side is the [`Source`] trait, which `lightning-db` implements
//! (`Database::backup`, and the `lightning backup`, `verify`, `restore`, `backups` and
//! `prune` commands). Formats: `docs/format/backup.md`; procedures:
//! `docs/runbooks/backup-restore-pitr.md`.
//!
//! ```
//! use lightning_backup::manifest::Manifest;
//! // A manifest that does not hash to its last line is refused.
//! let err = Manifest::decode(b"lightning-backup 1\nmanifest 00\n", "m".as_ref()).unwrap_err();
//! assert!(err.is_corruption());
//! ```
//!
//! # Feature flags
//!
//! None.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod error;
pub mod manifest;
mod read;
mod repo;
mod source;
mod write;

pub use error::{Error, Result};
pub use read::{
    DATA_FILE, LOCK_FILE, RESTORE_MARKER, RestoreOptions, RestoreReport, Target, VerifyReport,
    WAL_DIR, restore, verify,
};
pub use repo::{Entry, PruneReport, Repository, Retention, State, kept_by, prune};
pub use source::{Source, SourceError};
pub use write::{PAGES_SYNC_BYTES, Progress, backup};
