//! The B+tree of Lightning DB: byte-string keys and values in slotted pages of a buffer
//! pool, with copy-on-write checkpoints and an integrity checker.
//!
//! - [`Store`]: the pages trees live in — a buffer pool over a page file, the allocator, and
//!   which pages belong to the current checkpoint generation.
//! - [`BTree`]: `get`, `insert` (upsert), `remove`, [`range`](BTree::range) in both
//!   directions over any `RangeBounds`, [`prefix`](BTree::prefix), `first`/`last`, a
//!   [`Cursor`] with seek, next and prev, and [`bulk_load`](BTree::bulk_load) from sorted
//!   input with a fill factor.
//! - Nodes split when full and merge with, or borrow from, a neighbour when below a quarter
//!   full; separators are the shortest keys that separate (suffix truncation). Keys up to
//!   [`BTree::max_key_len`] (about a quarter of a page); values beyond a quarter page go to
//!   chains of overflow pages, up to [`MAX_VALUE_LEN`].
//! - Copy-on-write per generation: a page of an older generation is copied before it
//!   changes (and its parent, up to the root), so [`BTree::checkpoint`] leaves a durable
//!   image that later writes never touch.
//! - Every write operation is all or nothing: after an I/O error it is undone, and when the
//!   undo is impossible the [`Store`] refuses all further work ([`Error::Poisoned`]) so no
//!   checkpoint makes damage durable. A checkpoint blocks writers only while it switches
//!   generations; readers and writers go on while it writes and syncs (ADR 009).
//! - [`BTree::check`] verifies every invariant and reports damage as [`Problem`]s; every
//!   decoder treats page bytes as untrusted ([`Error::Corruption`]).
//!
//! Layout of node and overflow pages: `docs/format/btree.md`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use lightning_btree::{BTree, Store};
//! use lightning_page::{PageFile, PageSize, vfs::MemVfs};
//!
//! let file = Arc::new(PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?);
//! let tree = BTree::create(Arc::new(Store::open(file, 1 << 20)?))?;
//! for i in 0u32..1000 {
//!     tree.insert(&i.to_be_bytes(), format!("value {i}").as_bytes())?;
//! }
//! assert_eq!(tree.get(&7u32.to_be_bytes())?, Some(b"value 7".to_vec()));
//! let tail: Vec<_> = tree.range(&990u32.to_be_bytes()[..]..).rev().take(2).collect::<Result<_, _>>()?;
//! assert_eq!(tail[0].0, 999u32.to_be_bytes());
//! assert!(tree.check()?.is_ok());
//! # Ok::<(), lightning_btree::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod bulk;
mod check;
mod error;
mod iter;
mod node;
mod page_set;
mod store;
mod tree;

pub use check::{CheckReport, Problem};
pub use error::{Error, Result};
pub use iter::{Cursor, OwnedRange, Range, RangeIn};
pub use store::{CHECKPOINT_SYNC_BYTES, Checkpoint, Store};
pub use tree::{BTree, MAX_VALUE_LEN, REPACK_FILL, RepackStep};
