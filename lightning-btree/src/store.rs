//! The pages trees live in: a buffer pool over a page file, the allocator, and the
//! generation bookkeeping of copy-on-write checkpoints.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use lightning_cache::{BoxError, BufferPool, CacheStats, WriteBack};
use lightning_page::{
    CheckpointPlan, Lsn, PageAllocator, PageBuf, PageFile, PageId, PageType, Superblock,
};

use crate::node::{NO_PAGE, OVERFLOW_HEAD, pack_leaf, u64_at};
use crate::page_set::PageSet;
use crate::{Error, Result};

/// Bytes of dirty pages a checkpoint writes between two syncs of the page file. What it
/// writes sits in the OS's page cache until a sync sends it to the disk; one sync of the
/// whole image (hundreds of MiB) fills the disk's queue, and every WAL fsync that arrives
/// meanwhile waits behind all of it. Synced in steps, the queue ahead of a commit's fsync
/// holds at most one step: about 7 ms of writes at 300 MB/s, 22 ms at 90 MB/s.
pub const CHECKPOINT_SYNC_BYTES: u64 = 2 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The generation a checkpoint records and that generation's pages, which keep that
/// generation in their header whenever they are written until the checkpoint is durable.
type Frozen = (u64, Arc<PageSet>);

/// Stamps written pages with their generation and, when asked, records their ids.
#[derive(Debug, Default)]
struct Stamp {
    generation: AtomicU64,
    frozen: RwLock<Option<Frozen>>,
    recording: AtomicBool,
    written: Mutex<Vec<PageId>>,
}

impl WriteBack for Stamp {
    fn before_write(&self, page: PageId, _data: &PageBuf) -> std::result::Result<u64, BoxError> {
        if self.recording.load(Ordering::Relaxed) {
            lock(&self.written).push(page);
        }
        if let Some((generation, pages)) =
            &*self.frozen.read().unwrap_or_else(PoisonError::into_inner)
            && pages.contains(page)
        {
            return Ok(*generation);
        }
        Ok(self.generation.load(Ordering::Acquire))
    }

    fn prepare(&self, page: PageId, data: &mut PageBuf) {
        pack_leaf(page, data);
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

/// A checkpoint past its switch: what it records, and its generation's pages.
#[derive(Debug)]
struct InFlight {
    plan: CheckpointPlan,
    root: Option<PageId>,
    lsn: Lsn,
    pages: Arc<PageSet>,
}

/// What one write operation did to the store, so that a failure can be undone: the pages
/// it allocated (given back if it fails), the pages it frees (given back only when it
/// succeeds: a page is written before its old copy is freed), and the bytes of the
/// current-generation pages it changed in place, as they were before.
#[derive(Debug, Default)]
pub(crate) struct Op {
    allocated: Vec<PageId>,
    frees: Vec<PageId>,
    before: Vec<(PageId, PageBuf)>,
}

impl Op {
    /// Frees `id` once the operation has succeeded.
    pub(crate) fn free(&mut self, id: PageId) {
        self.frees.push(id);
    }

    /// Keeps the bytes of `page` (page `id`) before the operation first changes it, unless
    /// the operation allocated it (then it is given back whole on failure).
    pub(crate) fn save(&mut self, id: PageId, page: &PageBuf) {
        if !self.allocated.contains(&id) && !self.before.iter().any(|(p, _)| *p == id) {
            self.before.push((id, page.clone()));
        }
    }
}

/// Pages for trees: a [`BufferPool`] over a [`PageFile`], its [`PageAllocator`], and the
/// set of pages allocated in the current generation (modified in place; every other page
/// is copied before a change).
///
/// A checkpoint ([`Store::checkpoint`]) ends the current generation at a quiet point (no
/// write operation in progress, a short exclusive section), then writes that
/// generation's dirty pages, the free list and the superblock while readers and writers
/// go on in the next generation: they copy every page of the image being written before
/// changing it, and the pages that image holds are reusable only after later checkpoints
/// (the allocator's rule). Pages of the image are never written again once it is durable.
///
/// Write operations are all or nothing: a failed one leaves the store and its trees as
/// they were. When a failure cannot be undone (the undo itself fails, or the allocator
/// refuses a free), the store is *poisoned*: every later operation and checkpoint fails
/// with [`Error::Poisoned`] saying why, so that no checkpoint makes damage durable.
///
/// Several trees may share a store (one pool, one allocator) and change concurrently, also
/// while one of them checkpoints. A checkpoint records one root in the superblock, so until
/// the catalog (the database crate) records every tree's root, only that tree can be
/// reopened from it, and `BTree::check`'s allocator cross-check assumes one tree per store.
pub struct Store {
    pool: BufferPool,
    alloc: Mutex<PageAllocator>,
    fresh: Mutex<PageSet>,
    stamp: Arc<Stamp>,
    /// Held shared by every write operation, exclusively by a checkpoint's switch.
    gate: RwLock<()>,
    /// Serializes checkpoints; holds one that failed after its switch, finished first by
    /// the next checkpoint.
    checkpoints: Mutex<Option<InFlight>>,
    poisoned: AtomicBool,
    poison_cause: Mutex<Option<String>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// A write operation in progress: the store's gate, held shared.
pub(crate) struct Writer<'a> {
    _gate: RwLockReadGuard<'a, ()>,
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
            fresh: Mutex::new(PageSet::default()),
            stamp,
            gate: RwLock::new(()),
            checkpoints: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            poison_cause: Mutex::new(None),
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

    /// Pages in the file's image and pages reusable now: how much a relocation of the
    /// file's tail could give back.
    pub(crate) fn space(&self) -> (u64, u64) {
        let stats = lock(&self.alloc).stats();
        (stats.page_count, stats.free)
    }

    /// Why the store refuses work, if it does (see [`Error::Poisoned`]).
    pub fn poisoned(&self) -> Option<String> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.poison_cause).clone()
    }

    /// Starts recording the ids of pages written to the file (for tests that assert what a
    /// checkpoint image is spared); returns what was recorded since the last call.
    pub fn record_writes(&self, on: bool) -> Vec<PageId> {
        self.stamp.recording.store(on, Ordering::Relaxed);
        std::mem::take(&mut *lock(&self.stamp.written))
    }

    /// Refuses work once poisoned.
    pub(crate) fn check_usable(&self) -> Result<()> {
        match self.poisoned() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        }
    }

    /// Poisons the store: `reason` is what every later call reports.
    fn poison(&self, reason: String) {
        tracing::error!(%reason, "B+tree store poisoned: it refuses every later operation");
        lock(&self.poison_cause).get_or_insert(reason);
        self.poisoned.store(true, Ordering::Release);
    }

    /// Starts a write operation: refused once poisoned; excludes a checkpoint's switch.
    pub(crate) fn writer(&self) -> Result<Writer<'_>> {
        self.check_usable()?;
        let gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        self.check_usable()?;
        Ok(Writer { _gate: gate })
    }

    /// Ends a write operation: on success applies its frees, on failure undoes it (and
    /// poisons the store if that fails). The caller still holds the tree's writer lock.
    pub(crate) fn end(&self, op: Op, result: Result<()>) -> Result<()> {
        match result {
            Ok(()) => {
                for id in op.frees {
                    if let Err(e) = self.free(id) {
                        self.poison(format!("an operation's page could not be freed: {e}"));
                        return Err(e);
                    }
                }
                Ok(())
            }
            Err(e) => {
                if let Err(undo) = self.undo(op) {
                    self.poison(format!(
                        "an operation failed ({e}) and undoing it failed too ({undo})"
                    ));
                }
                Err(e)
            }
        }
    }

    /// Puts back the pages a failed operation changed in place and gives back the pages it
    /// allocated.
    fn undo(&self, op: Op) -> Result<()> {
        for (id, bytes) in op.before.into_iter().rev() {
            let mut page = self.pool.pin_mut(id)?;
            *page.page_mut() = bytes;
        }
        for id in op.allocated.into_iter().rev() {
            self.free(id)?;
        }
        Ok(())
    }

    /// Makes the trees' state durable: at a quiet point (no write operation running) ends
    /// the current generation and calls `root` for the root to record; then, while readers
    /// and writers go on, writes that generation's dirty pages, the free list and a
    /// superblock recording the root and `lsn`, syncing before and after the superblock.
    ///
    /// A checkpoint that fails after its switch with a transient error (a failed write) is
    /// finished first by the next call, which then makes its own; when the page file
    /// refuses writes for good (a failed sync), the store is poisoned.
    pub fn checkpoint(
        &self,
        lsn: Lsn,
        root: impl FnOnce() -> Option<PageId>,
    ) -> Result<Checkpoint> {
        self.check_usable()?;
        let mut slot = lock(&self.checkpoints);
        if let Some(earlier) = slot.as_ref() {
            tracing::info!(
                generation = earlier.plan.generation,
                "finishing a checkpoint that failed part way"
            );
            self.finish(earlier)?;
            *slot = None;
        }
        let flight = {
            let _quiet = self.gate.write().unwrap_or_else(PoisonError::into_inner);
            self.check_usable()?;
            let root = root();
            // Lock order: the allocator, then the generation's page set (as `allocate` does).
            let mut alloc = lock(&self.alloc);
            let plan = alloc.begin_checkpoint()?;
            let pages = Arc::new(std::mem::take(&mut *lock(&self.fresh)));
            *self
                .stamp
                .frozen
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some((plan.generation, pages.clone()));
            self.stamp
                .generation
                .store(alloc.generation(), Ordering::Release);
            InFlight {
                plan,
                root,
                lsn,
                pages,
            }
        };
        let flight = slot.insert(flight);
        let done = self.finish(flight)?;
        *slot = None;
        Ok(done)
    }

    /// The part of a checkpoint after its switch: no lock held but the checkpoint's own.
    fn finish(&self, flight: &InFlight) -> Result<Checkpoint> {
        let previous = self.file().superblock();
        let result = self.write_image(flight);
        if let Err(e) = &result
            && self.file().is_poisoned()
        {
            self.poison(format!("checkpoint {} failed: {e}", flight.plan.generation));
        }
        let superblock = result?;
        {
            let mut alloc = lock(&self.alloc);
            alloc.checkpoint_durable(superblock.generation);
            // Give back the end of the file that neither retained image nor anything
            // allocated since uses (under the allocator's lock: allocation grows the file).
            let keep = alloc
                .page_count()
                .max(previous.page_count)
                .max(superblock.page_count);
            if let Err(e) = self.file().shrink_to(keep) {
                tracing::warn!(error = %e, "could not cut the page file to size after a checkpoint");
            }
        }
        *self
            .stamp
            .frozen
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // Ascending: the set iterates in order.
        let dirty_pages: Vec<PageId> = flight.pages.iter().collect();
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

    fn write_image(&self, flight: &InFlight) -> Result<Superblock> {
        let file = self.file();
        // The generation's pages, ascending: the work is in their number, not the pool's;
        // synced every `CHECKPOINT_SYNC_BYTES`, the last step by the superblock's sync.
        let step = usize::try_from(CHECKPOINT_SYNC_BYTES / u64::from(file.page_size().bytes()))
            .unwrap_or(usize::MAX)
            .max(1);
        let mut pages = flight.pages.iter().peekable();
        while pages.peek().is_some() {
            self.pool.flush_pages(pages.by_ref().take(step))?;
            if pages.peek().is_some() {
                file.sync()?;
            }
        }
        let freelist_root = flight.plan.write(file)?;
        let superblock = Superblock {
            generation: flight.plan.generation,
            page_count: flight.plan.page_count,
            freelist_root,
            catalog_root: flight.root,
            checkpoint_lsn: flight.lsn,
            ..file.superblock()
        };
        file.commit_superblock(superblock)?;
        Ok(superblock)
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Payload bytes of a page.
    pub(crate) fn capacity(&self) -> usize {
        self.pool.file().page_size().max_payload()
    }

    /// A new page of the current generation for `op`, the file grown to hold it.
    pub(crate) fn allocate(&self, op: &mut Op) -> Result<PageId> {
        let mut alloc = lock(&self.alloc);
        let id = alloc.allocate();
        if alloc.page_count() > self.pool.file().page_count() {
            // Grow in steps so that appends do not extend the file page by page.
            let step = (alloc.page_count() / 8).clamp(16, 4096);
            if let Err(e) = self.pool.file().extend_to(alloc.page_count() + step) {
                // Allocated in this generation: reusable at once.
                alloc.free(id)?;
                return Err(e.into());
            }
        }
        lock(&self.fresh).insert(id);
        op.allocated.push(id);
        Ok(id)
    }

    /// Returns a page: reusable at once if it was allocated in this generation, after the
    /// next durable checkpoints otherwise.
    fn free(&self, id: PageId) -> Result<()> {
        if lock(&self.fresh).remove(id) {
            // In no image: its cached bytes are garbage now, and must not be written back
            // over whatever the page holds next (the allocator writes free lists directly).
            // Discarded before the allocator may hand the page out again. A page of an
            // image keeps its frame: the image's checkpoint may still write it.
            self.pool.discard(id);
        }
        lock(&self.alloc).free(id)?;
        Ok(())
    }

    /// Whether `id` was allocated in the current generation (so it may change in place).
    pub(crate) fn is_fresh(&self, id: PageId) -> bool {
        lock(&self.fresh).contains(id)
    }

    /// Writes a value into a new chain of overflow pages; returns the first page.
    pub(crate) fn write_overflow(&self, op: &mut Op, value: &[u8]) -> Result<PageId> {
        let chunk = self.capacity() - OVERFLOW_HEAD;
        let pieces: Vec<&[u8]> = value.chunks(chunk).collect();
        let ids = pieces
            .iter()
            .map(|_| self.allocate(op))
            .collect::<Result<Vec<_>>>()?;
        let mut body = Vec::with_capacity(self.capacity());
        for (i, (piece, &id)) in pieces.iter().zip(&ids).enumerate() {
            let next = ids.get(i + 1).map_or(NO_PAGE, |p| p.get());
            body.clear();
            body.extend_from_slice(&next.to_le_bytes());
            body.extend_from_slice(piece);
            let mut page = self.pool.create(id, PageType::Overflow)?;
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
            let data = payload.get(OVERFLOW_HEAD..).unwrap_or_default();
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

    /// Frees the pages of an overflow chain when `op` succeeds.
    pub(crate) fn free_overflow(&self, op: &mut Op, first: PageId, len: u64) -> Result<()> {
        self.walk_overflow(first, len, |id, _| {
            op.free(id);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use lightning_page::{PageBuf, PageId, PageSize, PageType};

    use super::Op;

    fn page(byte: u8) -> PageBuf {
        let mut p = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        p.set_payload(&[byte; 8]).unwrap();
        p
    }

    /// The journal keeps, for every page the operation changes in place, the bytes from
    /// before its first change — one image per page, however many pages and changes — and
    /// none for a page the operation allocated (it is given back whole).
    #[test]
    fn the_journal_keeps_each_page_as_it_was_before_its_first_change() {
        let mut op = Op::default();
        let (a, b, c) = (PageId::new(5), PageId::new(6), PageId::new(7));
        op.allocated.push(c);
        op.save(a, &page(1));
        op.save(b, &page(2));
        op.save(a, &page(3));
        op.save(c, &page(4));
        op.save(b, &page(5));
        let kept: Vec<(PageId, Vec<u8>)> = op
            .before
            .iter()
            .map(|(id, p)| (*id, p.payload().to_vec()))
            .collect();
        assert_eq!(kept, [(a, vec![1; 8]), (b, vec![2; 8])]);
    }
}
