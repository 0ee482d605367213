//! The buffer pool of Lightning DB: frames holding pages of a
//! [`PageFile`](lightning_page::PageFile), pinned through guards, evicted by SIEVE, written
//! back through a hook the layer above supplies.
//!
//! - [`BufferPool::pin`] / [`BufferPool::pin_mut`] give a shared [`PageRef`] or an
//!   exclusive [`PageMut`]; a pinned frame is never evicted. A hit takes no lock but the
//!   frame's read lock: it follows a hint (an index by page id) to a frame, pins it with one
//!   atomic add and checks which page it holds; misses use a sharded page table.
//! - Misses read through the page file, which verifies every page's checksum.
//! - Eviction is SIEVE, chosen against exact LRU and CLOCK on zipfian, uniform and
//!   scan-mixed traces ([`sim`] and `docs/adr/006-buffer-pool-eviction.md`).
//! - Dirty pages are written back on eviction and by [`BufferPool::flush`], each time after
//!   the [`WriteBack`] hook agrees (the database enforces "WAL before data" there). A failing
//!   hook or write leaves the page dirty and returns the error.
//! - When every frame is pinned, a pin fails with [`Error::CacheFull`]; it never deadlocks.
//!   Full means every frame was pinned at one moment: a frame in transit (another thread's
//!   eviction or load, out of the eviction queue) or a sweep that saw frames pinned at
//!   different moments does not count, and the pin sweeps again, yielding, until the pool
//!   has a frame to give or is full at one moment.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use lightning_cache::{BufferPool, FixedGeneration};
//! use lightning_page::{PageFile, PageId, PageSize, PageType, vfs::MemVfs};
//!
//! let file = Arc::new(PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?);
//! file.extend_to(100)?;
//! let pool = BufferPool::new(file, 8 * 4096, Arc::new(FixedGeneration(1)))?;
//! for id in 2..100 {
//!     pool.create(PageId::new(id), PageType::Overflow)?.page_mut().set_payload(&id.to_le_bytes())?;
//! }
//! // 98 pages through 8 frames: most were evicted (and written back) on the way.
//! assert_eq!(pool.pin(PageId::new(7))?.payload(), 7u64.to_le_bytes());
//! assert!(pool.stats().evictions >= 90);
//! # Ok::<(), lightning_cache::Error>(())
//! ```
//!
//! # Feature flags
//!
//! - `trace` (off by default): [`trace`], a process-wide record of every page lookup
//!   (hit or miss), switched on and off at run time, for measuring the pool's hit ratio
//!   beside an offline optimum over the same accesses (the peer benchmarks do). Without the
//!   feature the lookup path has no trace code at all.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod error;
mod hints;
mod pins;
mod pool;
mod sieve;
pub mod sim;
#[cfg(feature = "trace")]
pub mod trace;

pub use error::{BoxError, Error, Result};
pub use pool::{BufferPool, CacheStats, FixedGeneration, PageMut, PageRef, WriteBack};
