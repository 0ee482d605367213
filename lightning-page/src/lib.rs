//! Pages, the page file, the page allocator and the VFS: the bottom layer of Lightning DB.
//!
//! - [`PageBuf`], [`PageHeader`], [`PageId`], [`PageSize`], [`PageType`]: fixed-size pages
//!   (4 KiB to 64 KiB) whose header carries type, own id, generation, payload length and a
//!   crc32c over the whole page;
//! - [`PageFile`]: reads (verified) and writes pages of one file, and commits the two
//!   alternating [`Superblock`]s in pages 0 and 1;
//! - [`PageAllocator`]: hands out and takes back pages under the copy-on-write checkpoint
//!   rules, and persists the free list in pages;
//! - [`vfs`]: the file-system seam every database file goes through, with an OS, an
//!   in-memory and a crash-simulating implementation.
//!
//! Bytes from disk are untrusted: damage is reported as [`Error::Corruption`] naming the
//! file and page, never a panic. The byte layouts are documented in the modules that read
//! them and collected in `docs/format/`.
//!
//! # Example
//!
//! ```
//! use lightning_page::{Lsn, OpenOptions, PageAllocator, PageBuf, PageFile, PageSize, PageType};
//! use lightning_page::vfs::{CrashMode, CrashVfs};
//!
//! let vfs = CrashVfs::new(42);
//! let path = "db/data.ldb".as_ref();
//! let file = PageFile::create(&vfs, path, PageSize::DEFAULT)?;
//! let mut alloc = PageAllocator::load(&file)?;
//!
//! let id = alloc.allocate();
//! file.extend_to(alloc.page_count())?;
//! let mut page = PageBuf::new(file.page_size(), PageType::Catalog);
//! page.set_payload(b"durable")?;
//! file.write_page(id, alloc.generation(), &mut page)?;
//! alloc.checkpoint(&file, Some(id), Lsn::ZERO)?;    // syncs pages, then the superblock
//!
//! vfs.crash(CrashMode::RandomSubset);           // power cut
//! let file = PageFile::open(&vfs, path, OpenOptions::default())?;
//! let root = file.superblock().catalog_root.expect("checkpointed");
//! let (page, _) = file.read_page(root, Some(PageType::Catalog))?;
//! assert_eq!(page.payload(), b"durable");
//! # Ok::<(), lightning_page::Error>(())
//! ```
//!
//! # Feature flags
//!
//! None yet: everything, including the crash-simulating VFS that higher crates' tests use,
//! is always built. It has no dependencies of its own.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod allocator;
mod error;
mod lsn;
mod page;
mod page_file;
mod superblock;
pub mod vfs;

pub use allocator::{AllocatorStats, CheckpointPlan, FIRST_DATA_PAGE, PageAllocator};
pub use error::{Error, Result};
pub use lsn::Lsn;
pub use page::{HEADER_LEN, PageBuf, PageHeader, PageId, PageSize, PageType};
pub use page_file::{OpenOptions, PageFile};
pub use superblock::{EncryptionParams, FORMAT_VERSION, Superblock};
