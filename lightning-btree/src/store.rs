//! The pages trees live in: a buffer pool over a page file, the allocator, and the
//! generation bookkeeping of copy-on-write checkpoints.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lightning_cache::{BoxError, BufferPool, CacheStats, WriteBack};
use lightning_page::{PageAllocator, PageBuf, PageFile, PageId, PageType, Superblock};

use crate::node::{NO_PAGE, OVERFLOW_HEAD, u64_at};
use crate::{Error, Result};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stamps written pages with the current generation and, when asked, records their ids.
#[derive(Debug, Default)]
struct Stamp {
    generation: AtomicU64,
    recording: AtomicBool,
    written: Mutex<Vec<PageId>>,
}

impl WriteBack for Stamp {
    fn before_write(&self, page: PageId, _data: &PageBuf) -> std::result::Result<u64, BoxError> {
        if self.recording.load(Ordering::Relaxed) {
            lock(&self.written).push(page);
        }
        Ok(self.generation.load(Ordering::Acquire))
    }
}

/// What a checkpoint made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The superblock now durable.
    pub superblock: Superblock,
    /// Pages of the frozen generation written by this checkpoint (the tree's dirty pages),
    /// ascending.
    pub dirty_pages: Vec<PageId>,
}

/// Pages for trees: a [`BufferPool`] over a [`PageFile`], its [`PageAllocator`], and the
/// set of pages allocated in the current generation (modified in place; every other page
/// is copied before a change).
///
/// A checkpoint ([`Store::checkpoint`]) writes the dirty pages stamped with the current
/// generation, then the free list and the superblock; pages of that image are never
/// written again (a change copies them to new pages), and the pages it frees become
/// reusable only after the next checkpoint is durable (the allocator's rule).
///
/// Several trees may share a store (one pool, one allocator) and change concurrently, also
/// while one of them checkpoints. A checkpoint records one root in the superblock, so until
/// the catalog (the database crate) records every tree's root, only that tree can be
/// reopened from it, and `BTree::check`'s allocator cross-check assumes one tree per store.
pub struct Store {
    pool: BufferPool,
    alloc: Mutex<PageAllocator>,
    fresh: Mutex<HashSet<PageId>>,
    stamp: Arc<Stamp>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a store over `file` (new or reopened) with a buffer pool of `cache_bytes`.
    pub fn open(file: Arc<PageFile>, cache_bytes: u64) -> Result<Self> {
        let alloc = PageAllocator::load(&file)?;
        let stamp = Arc::new(Stamp::default());
        stamp
            .generation
            .store(alloc.generation(), Ordering::Release);
        let pool = BufferPool::new(file, cache_bytes, stamp.clone())?;
        Ok(Store {
            pool,
            alloc: Mutex::new(alloc),
            fresh: Mutex::new(HashSet::new()),
            stamp,
        })
    }

    /// The page file.
    pub fn file(&self) -> &Arc<PageFile> {
        self.pool.file()
    }

    /// The buffer pool's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.pool.stats()
    }

    /// The current generation: pages allocated now belong to it.
    pub fn generation(&self) -> u64 {
        lock(&self.alloc).generation()
    }

    /// A copy of the allocator's state, for [`BTree::check`](crate::BTree::check).
    pub fn allocator(&self) -> PageAllocator {
        lock(&self.alloc).clone()
    }

    /// Starts recording the ids of pages written to the file (for tests that assert what a
    /// checkpoint image is spared); returns what was recorded since the last call.
    pub fn record_writes(&self, on: bool) -> Vec<PageId> {
        self.stamp.recording.store(on, Ordering::Relaxed);
        std::mem::take(&mut *lock(&self.stamp.written))
    }

    /// Writes every dirty page (stamped with the current generation), then the free list
    /// and a superblock recording `root` and `lsn`, syncing before and after the
    /// superblock. The caller makes sure no tree changes meanwhile
    /// ([`BTree::checkpoint`](crate::BTree::checkpoint) holds the tree's writer lock).
    pub fn checkpoint(&self, root: Option<PageId>, lsn: u64) -> Result<Checkpoint> {
        // Lock order: the allocator, then the generation's page set (as `allocate` does).
        let mut alloc = lock(&self.alloc);
        let mut fresh = lock(&self.fresh);
        self.pool.flush()?;
        let superblock = alloc.checkpoint(self.pool.file(), root, lsn)?;
        self.stamp
            .generation
            .store(alloc.generation(), Ordering::Release);
        let mut dirty_pages: Vec<PageId> = fresh.drain().collect();
        dirty_pages.sort_unstable();
        tracing::debug!(
            generation = superblock.generation,
            pages = dirty_pages.len(),
            "checkpoint durable"
        );
        Ok(Checkpoint {
            superblock,
            dirty_pages,
        })
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Payload bytes of a page.
    pub(crate) fn capacity(&self) -> usize {
        self.pool.file().page_size().max_payload()
    }

    /// A new page of the current generation, the file grown to hold it.
    pub(crate) fn allocate(&self) -> Result<PageId> {
        let mut alloc = lock(&self.alloc);
        let id = alloc.allocate();
        if alloc.page_count() > self.pool.file().page_count() {
            // Grow in steps so that appends do not extend the file page by page.
            let step = (alloc.page_count() / 8).clamp(16, 4096);
            self.pool.file().extend_to(alloc.page_count() + step)?;
        }
        lock(&self.fresh).insert(id);
        Ok(id)
    }

    /// Returns a page: reusable at once if it was allocated in this generation, after the
    /// next durable checkpoint otherwise.
    pub(crate) fn free(&self, id: PageId) -> Result<()> {
        lock(&self.fresh).remove(&id);
        lock(&self.alloc).free(id)?;
        Ok(())
    }

    /// Whether `id` was allocated in the current generation (so it may change in place).
    pub(crate) fn is_fresh(&self, id: PageId) -> bool {
        lock(&self.fresh).contains(&id)
    }

    /// Writes a value into a new chain of overflow pages; returns the first page.
    pub(crate) fn write_overflow(&self, value: &[u8]) -> Result<PageId> {
        let chunk = self.capacity() - OVERFLOW_HEAD;
        let pieces: Vec<&[u8]> = value.chunks(chunk).collect();
        let ids = pieces
            .iter()
            .map(|_| self.allocate())
            .collect::<Result<Vec<_>>>()?;
        let mut body = Vec::with_capacity(self.capacity());
        for (i, piece) in pieces.iter().enumerate() {
            let next = ids.get(i + 1).map_or(NO_PAGE, |p| p.get());
            body.clear();
            body.extend_from_slice(&next.to_le_bytes());
            body.extend_from_slice(piece);
            let mut page = self.pool.create(ids[i], PageType::Overflow)?;
            page.page_mut().set_payload(&body)?;
        }
        ids.first()
            .copied()
            .ok_or_else(|| Error::corrupt(PageId::new(NO_PAGE), "empty overflow value"))
    }

    /// Reads an overflow chain of `len` bytes starting at `first`, calling `page` for each
    /// page of the chain; the chain must hold exactly `len` bytes.
    pub(crate) fn walk_overflow(
        &self,
        first: PageId,
        len: u64,
        mut page: impl FnMut(PageId, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if len > crate::MAX_VALUE_LEN {
            return Err(Error::corrupt(
                first,
                format!("overflow value of {len} bytes claimed, above the limit"),
            ));
        }
        let chunk = (self.capacity() - OVERFLOW_HEAD) as u64;
        let pages = len.div_ceil(chunk).max(1);
        let mut seen = HashSet::new();
        let mut id = first;
        let mut left = len;
        for i in 0..pages {
            if !seen.insert(id) {
                return Err(Error::corrupt(id, "overflow chain loops back on itself"));
            }
            let p = self.pool.pin(id)?;
            if p.page_type() != PageType::Overflow {
                return Err(Error::corrupt(
                    id,
                    format!("a {} page in an overflow chain", p.page_type()),
                ));
            }
            let payload = p.payload();
            let next = u64_at(payload, 0)
                .ok_or_else(|| Error::corrupt(id, "overflow page without a header"))?;
            let data = &payload[OVERFLOW_HEAD.min(payload.len())..];
            let want = usize::try_from(left.min(chunk)).unwrap_or(usize::MAX);
            if data.len() != want {
                return Err(Error::corrupt(
                    id,
                    format!(
                        "overflow page holds {} bytes, the value needs {want} here",
                        data.len()
                    ),
                ));
            }
            page(id, data)?;
            left -= want as u64;
            let last = i + 1 == pages;
            match (last, next) {
                (true, NO_PAGE) => {}
                (true, _) => {
                    return Err(Error::corrupt(id, "overflow chain longer than its value"));
                }
                (false, NO_PAGE) => {
                    return Err(Error::corrupt(id, "overflow chain shorter than its value"));
                }
                (false, n) => id = PageId::new(n),
            }
        }
        Ok(())
    }

    /// The value in an overflow chain.
    pub(crate) fn read_overflow(&self, first: PageId, len: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 26));
        self.walk_overflow(first, len, |_, data| {
            out.extend_from_slice(data);
            Ok(())
        })?;
        Ok(out)
    }

    /// Frees the pages of an overflow chain.
    pub(crate) fn free_overflow(&self, first: PageId, len: u64) -> Result<()> {
        let mut ids = Vec::new();
        self.walk_overflow(first, len, |id, _| {
            ids.push(id);
            Ok(())
        })?;
        ids.into_iter().try_for_each(|id| self.free(id))
    }
}
