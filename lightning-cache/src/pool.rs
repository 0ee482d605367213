//! The buffer pool: frames, a sharded page table, pin guards, SIEVE eviction, write-back.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64 as Counter, Ordering};
use std::sync::{Arc, PoisonError};

// The state machine's primitives: std's, or loom's under `--cfg loom` so that
// `tests/loom/main.rs` can check every interleaving of pins, loads and evictions. Counters stay
// std atomics: they are statistics, not state.
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(loom)]
use loom::thread::yield_now;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(loom))]
use std::thread::yield_now;

use lightning_page::{PageBuf, PageFile, PageId, PageType};

use crate::error::BoxError;
use crate::hints::Hints;
use crate::pins::{PIN_COUNT, Pins};
use crate::sieve::{SieveQueue, Verdict};
use crate::{Error, Result};

/// Decides what happens before a dirty page is written back: the database makes the WAL
/// durable up to the page's changes ("WAL before data") and says which checkpoint
/// generation the page belongs to.
pub trait WriteBack: Send + Sync {
    /// Called once for each dirty page about to be written, with its contents. Returns
    /// the generation to stamp on the page; an error keeps the page dirty and unwritten.
    fn before_write(&self, page: PageId, data: &PageBuf) -> std::result::Result<u64, BoxError>;

    /// Called just before [`before_write`](Self::before_write), under the frame's write
    /// lock (no reader sees the page meanwhile): may rewrite the page's bytes into a layout
    /// its readers take for the same contents (the B+tree packs a leaf's cells in key
    /// order, so that scans read them front to back). The default changes nothing.
    fn prepare(&self, page: PageId, data: &mut PageBuf) {
        let _ = (page, data);
    }
}

/// A [`WriteBack`] that stamps every page with one generation and has no other rule.
#[derive(Debug, Clone, Copy)]
pub struct FixedGeneration(pub u64);

impl WriteBack for FixedGeneration {
    fn before_write(&self, _page: PageId, _data: &PageBuf) -> std::result::Result<u64, BoxError> {
        Ok(self.0)
    }
}

/// Counters of the pool's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pins served from a frame.
    pub hits: u64,
    /// Pins that read the page from the file.
    pub misses: u64,
    /// Pages evicted to make room.
    pub evictions: u64,
    /// Dirty pages written back (by eviction or flush).
    pub write_backs: u64,
    /// Bytes read from the file.
    pub bytes_read: u64,
    /// Bytes written to the file.
    pub bytes_written: u64,
    /// Frames in the pool.
    pub frames: u64,
}

impl CacheStats {
    /// Hits over all pins (0 when there were none).
    #[expect(clippy::cast_precision_loss, reason = "a ratio")]
    pub fn hit_ratio(&self) -> f64 {
        let all = self.hits + self.misses;
        if all == 0 {
            0.0
        } else {
            self.hits as f64 / all as f64
        }
    }
}

const SHARDS: usize = 64;
const NO_PAGE: u64 = u64::MAX;

/// A multiplicative hash for page ids: they are dense integers, and `SipHash` would cost more
/// than the rest of the hit path.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

type Table = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

struct FrameData {
    /// The page held, once loaded.
    page: Option<PageId>,
    /// Its bytes; allocated when the frame first holds a page, so a large pool costs
    /// memory only for the pages it has held.
    buf: Option<PageBuf>,
    dirty: bool,
}

/// What a guard shows if its frame had no buffer, which cannot happen (a guard exists only
/// for a frame holding its page): an empty page, so that no path needs to panic.
fn no_page() -> &'static PageBuf {
    static EMPTY: std::sync::OnceLock<PageBuf> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| PageBuf::new(lightning_page::PageSize::MIN, PageType::Overflow))
}

/// Aligned to two cache lines so that pins of neighbouring frames by different threads do
/// not bounce one line between cores.
#[repr(align(128))]
struct Frame {
    /// Page the frame is assigned to (mirrors the page table), `NO_PAGE` when free.
    page: AtomicU64,
    /// Guards, claims and hint pins in flight holding the frame, and its FREE/EVICTED flags.
    pins: Pins,
    visited: AtomicBool,
    /// Pins served from this frame without a read (beside the pin word: no line of its own).
    hits: Counter,
    data: RwLock<FrameData>,
}

/// One shard of the page table, which the hit path does not lock (it follows [`Hints`]);
/// misses, loads and evictions change it under its lock. Aligned to keep shards off each
/// other's cache lines.
#[repr(align(128))]
struct Shard {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Counters {
    misses: Counter,
    evictions: Counter,
    write_backs: Counter,
    bytes_read: Counter,
    bytes_written: Counter,
}

/// A buffer pool over one [`PageFile`].
///
/// Pages are pinned through guards: [`PageRef`] (shared, many readers) and [`PageMut`]
/// (exclusive, one writer). A pinned frame is never evicted. Misses read through the page
/// file, which verifies every page's checksum. Eviction is SIEVE (see `docs/adr/006-…`),
/// whose hit path sets one bit. Dirty pages are written back on eviction and by
/// [`flush`](Self::flush), each time after the [`WriteBack`] hook agrees.
///
/// A thread must not pin a page it already holds a guard on: a writer waiting for the same
/// page (another thread's [`pin_mut`](Self::pin_mut), or [`flush`](Self::flush) writing it
/// back) can make the second pin wait for the first guard, which never goes.
///
/// ```
/// use std::sync::Arc;
/// use lightning_cache::{BufferPool, FixedGeneration};
/// use lightning_page::{PageFile, PageId, PageSize, PageType, vfs::MemVfs};
///
/// let file = Arc::new(PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?);
/// file.extend_to(10)?;
/// let pool = BufferPool::new(file, 4 * 4096, Arc::new(FixedGeneration(1)))?;
/// {
///     let mut page = pool.create(PageId::new(5), PageType::BTreeLeaf)?;
///     page.page_mut().set_payload(b"hello")?;
/// }
/// pool.flush()?;
/// assert_eq!(pool.pin(PageId::new(5))?.payload(), b"hello");
/// # Ok::<(), lightning_cache::Error>(())
/// ```
pub struct BufferPool {
    file: Arc<PageFile>,
    hook: Arc<dyn WriteBack>,
    frames: Box<[Frame]>,
    shards: Box<[Shard]>,
    /// The hit path's guesses, by page id.
    hints: Hints,
    /// Frames holding pages, in SIEVE order.
    queue: Mutex<SieveQueue>,
    /// Frames holding nothing.
    free: Mutex<Vec<u32>>,
    counters: Counters,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("file", &self.file.path())
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its structure consistent before it can panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BufferPool {
    /// Frame number `frame`. Every frame number the pool hands around (the free list, the
    /// page table, the SIEVE queue) comes from `0..n` in [`new`](Self::new), which made
    /// `frames` with those `n` frames; hints, the one outside source, go through `get`.
    #[inline]
    fn frame(&self, frame: u32) -> &Frame {
        // INVARIANT: `frame < self.frames.len()`: frame numbers come only from `0..n` in
        // `new`, where `frames` got its `n` frames, and `frames` never changes length.
        &self.frames[frame as usize]
    }

    /// The page table shard that holds `key`.
    #[inline]
    fn table(&self, key: u64) -> &Mutex<Table> {
        // INVARIANT: `shard_of` is `... % SHARDS`, and `new` made `SHARDS` shards.
        &self.shards[shard_of(key)].table
    }

    fn set_hint(&self, key: u64, frame: u32) {
        if let Some(slot) = self.hints.slot(key, true) {
            let value = frame.saturating_add(1);
            // Only write when it changes: a store dirties the cache line.
            if slot.load(Ordering::Relaxed) != value {
                slot.store(value, Ordering::Release);
            }
        }
    }

    /// The hit path: the frame the hint names, pinned, if it holds `key`. No lock: the pin
    /// comes first, so the frame cannot be evicted while it is checked (an eviction's last
    /// check fails on it), and a frame already being evicted or free refuses the pin.
    fn hit(&self, key: u64) -> Option<u32> {
        let frame = self
            .hints
            .slot(key, false)?
            .load(Ordering::Acquire)
            .checked_sub(1)?;
        let f = self.frames.get(frame as usize)?;
        if !f.pins.try_pin() {
            return None;
        }
        if f.page.load(Ordering::Acquire) != key {
            self.release(frame);
            return None;
        }
        if !f.visited.load(Ordering::Relaxed) {
            f.visited.store(true, Ordering::Relaxed);
        }
        f.hits.fetch_add(1, Ordering::Relaxed);
        Some(frame)
    }
}

fn shard_of(page: u64) -> usize {
    // Top bits of a multiplicative hash pick the shard.
    (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS
}

/// How a frame was obtained for a page.
enum Pinned {
    /// The page is in this frame (pinned once for the caller).
    Ready(u32),
    /// The caller claimed this empty frame and must fill it (pinned, write-locked by the caller next).
    Load(u32),
}

impl BufferPool {
    /// A pool of `capacity` bytes (rounded down to whole pages, at least 2) over `file`.
    pub fn new(file: Arc<PageFile>, capacity: u64, hook: Arc<dyn WriteBack>) -> Result<Self> {
        let page_size = file.page_size();
        let n = capacity / u64::from(page_size.bytes());
        if n < 2 {
            return Err(Error::CapacityTooSmall {
                bytes: capacity,
                page_size: page_size.bytes(),
            });
        }
        let n = u32::try_from(n.min(u64::from(u32::MAX - 1))).unwrap_or(u32::MAX - 1);
        let frames: Box<[Frame]> = (0..n)
            .map(|_| Frame {
                page: AtomicU64::new(NO_PAGE),
                pins: Pins::new(),
                visited: AtomicBool::new(false),
                hits: Counter::new(0),
                data: RwLock::new(FrameData {
                    page: None,
                    buf: None,
                    dirty: false,
                }),
            })
            .collect();
        Ok(BufferPool {
            file,
            hook,
            frames,
            shards: (0..SHARDS)
                .map(|_| Shard {
                    table: Mutex::new(Table::default()),
                })
                .collect(),
            hints: Hints::new(),
            queue: Mutex::new(SieveQueue::new(n as usize)),
            free: Mutex::new((0..n).rev().collect()),
            counters: Counters::default(),
        })
    }

    /// The page file under the pool.
    pub fn file(&self) -> &Arc<PageFile> {
        &self.file
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: self
                .frames
                .iter()
                .map(|f| f.hits.load(Ordering::Relaxed))
                .sum(),
            misses: c.misses.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            write_backs: c.write_backs.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            frames: self.frames.len() as u64,
        }
    }

    /// Pins `page` for reading, loading it if needed.
    pub fn pin(&self, page: PageId) -> Result<PageRef<'_>> {
        loop {
            let frame = self.acquire(page, true)?;
            let f = self.frame(frame);
            let data = f.data.read().unwrap_or_else(PoisonError::into_inner);
            if data.page == Some(page) {
                return Ok(PageRef { frame: f, data });
            }
            // The frame is not loaded yet (its loader has not taken the frame lock) or the
            // load failed: let the loader run, then try again (and see any error first hand).
            drop(data);
            self.release(frame);
            yield_now();
        }
    }

    /// Pins `page` for writing, loading it if needed.
    pub fn pin_mut(&self, page: PageId) -> Result<PageMut<'_>> {
        loop {
            let frame = self.acquire(page, true)?;
            let f = self.frame(frame);
            let data = f.data.write().unwrap_or_else(PoisonError::into_inner);
            if data.page == Some(page) {
                return Ok(PageMut { frame: f, data });
            }
            drop(data);
            self.release(frame);
            yield_now();
        }
    }

    /// Pins a page that exists only in memory so far (just allocated): an empty page of
    /// `page_type`, dirty, without reading the file.
    pub fn create(&self, page: PageId, page_type: PageType) -> Result<PageMut<'_>> {
        loop {
            let frame = self.acquire(page, false)?;
            let f = self.frame(frame);
            let mut data = f.data.write().unwrap_or_else(PoisonError::into_inner);
            // The frame may have been given up by a failed load of `page` meanwhile.
            if f.page.load(Ordering::Acquire) != page.get() {
                drop(data);
                self.release(frame);
                yield_now();
                continue;
            }
            // The frame's previous page (evicted, so clean or written back) leaves a buffer
            // of the file's page size: zeroed and reused, not freed and allocated again.
            let size = self.file.page_size();
            match data.buf.as_mut() {
                Some(buf) if buf.size() == size.len() => buf.reset(page_type),
                _ => data.buf = Some(PageBuf::new(size, page_type)),
            }
            data.page = Some(page);
            data.dirty = true;
            return Ok(PageMut { frame: f, data });
        }
    }

    /// Drops one pin taken by this pool on `frame`. A frame a failed load gave up (no page,
    /// out of the table) goes back to the free list when its last pin goes.
    fn release(&self, frame: u32) {
        let f = self.frame(frame);
        if f.pins
            .unpin_to_free(|| f.page.load(Ordering::Acquire) == NO_PAGE)
        {
            lock(&self.free).push(frame);
        }
    }

    /// Finds or loads the frame for `page` and pins it once. With `read` false, a missing
    /// page is not read from the file (the caller initializes it).
    fn acquire(&self, page: PageId, read: bool) -> Result<u32> {
        #[cfg(feature = "trace")]
        crate::trace::record(page.get());
        match self.lookup_or_claim(page.get())? {
            Pinned::Ready(frame) => Ok(frame),
            Pinned::Load(frame) => {
                if read {
                    self.counters.misses.fetch_add(1, Ordering::Relaxed);
                    self.load(page, frame)?;
                } else {
                    // The caller fills the frame under its write lock; it is pinned until
                    // then, so it can join the eviction order now.
                    self.frame(frame).visited.store(false, Ordering::Relaxed);
                    lock(&self.queue).push(frame);
                }
                Ok(frame)
            }
        }
    }

    /// The hit path, or on a miss a claimed frame registered for `key`.
    fn lookup_or_claim(&self, key: u64) -> Result<Pinned> {
        if let Some(frame) = self.hit(key) {
            return Ok(Pinned::Ready(frame));
        }
        {
            let table = lock(self.table(key));
            if let Some(&frame) = table.get(&key) {
                let f = self.frame(frame);
                f.pins.pin();
                // Only write the bit when it changes: a store dirties the cache line.
                if !f.visited.load(Ordering::Relaxed) {
                    f.visited.store(true, Ordering::Relaxed);
                }
                drop(table);
                f.hits.fetch_add(1, Ordering::Relaxed);
                self.set_hint(key, frame);
                return Ok(Pinned::Ready(frame));
            }
        }
        let frame = self.take_frame()?;
        let f = self.frame(frame);
        let mut table = lock(self.table(key));
        if let Some(&other) = table.get(&key) {
            // Someone loaded it meanwhile: give our frame back and use theirs.
            let o = self.frame(other);
            o.pins.pin();
            o.visited.store(true, Ordering::Relaxed);
            drop(table);
            f.pins.clear_evicted();
            self.release(frame);
            return Ok(Pinned::Ready(other));
        }
        table.insert(key, frame);
        f.page.store(key, Ordering::Release);
        f.pins.clear_evicted();
        drop(table);
        self.set_hint(key, frame);
        Ok(Pinned::Load(frame))
    }

    /// Reads `page` into the claimed `frame`; on failure unregisters it and frees the frame.
    fn load(&self, page: PageId, frame: u32) -> Result<()> {
        let f = self.frame(frame);
        let mut data = f.data.write().unwrap_or_else(PoisonError::into_inner);
        data.page = None;
        match self.file.read_page(page, None) {
            Ok((buf, _)) => {
                self.counters
                    .bytes_read
                    .fetch_add(buf.size() as u64, Ordering::Relaxed);
                data.buf = Some(buf);
                data.page = Some(page);
                data.dirty = false;
                drop(data);
                f.visited.store(false, Ordering::Relaxed);
                lock(&self.queue).push(frame);
                Ok(())
            }
            Err(e) => {
                // Unregister under the shard lock, so no new pin can find the frame; pins
                // taken before (waiters on the data lock) see no page and let go.
                let mut table = lock(self.table(page.get()));
                table.remove(&page.get());
                f.page.store(NO_PAGE, Ordering::Release);
                drop(table);
                drop(data);
                self.release(frame);
                Err(e.into())
            }
        }
    }

    /// A frame holding nothing, pinned once for the caller: a free one, or an evicted one.
    fn take_frame(&self) -> Result<u32> {
        loop {
            if let Some(frame) = lock(&self.free).pop() {
                self.frame(frame).pins.claim_free();
                return Ok(frame);
            }
            let victim = {
                let mut queue = lock(&self.queue);
                let victim = queue.evict(|s| {
                    let f = self.frame(s);
                    if f.pins.count() > 0 {
                        Verdict::Pinned
                    } else if f.visited.swap(false, Ordering::Relaxed) {
                        Verdict::Spare
                    } else {
                        Verdict::Evict
                    }
                });
                if victim.is_none() && self.is_full(&queue, || {}) {
                    return Err(Error::CacheFull {
                        frames: self.frames.len(),
                    });
                }
                victim
            };
            let Some(victim) = victim else {
                // Some frame is in transit (another thread's eviction or load, a claim
                // about to go back to the free list) or was let go during the sweep: it
                // will be back in the queue or the free list after a bounded amount of
                // that thread's work.
                yield_now();
                continue;
            };
            if self.evict(victim)? {
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                return Ok(victim);
            }
        }
    }

    /// After a sweep that found every queued frame pinned: whether the pool is really full,
    /// that is, at one moment every frame was in the queue and pinned. The queue lock is
    /// held, so membership cannot change; each frame's pin word is read twice, and if no
    /// word changed, each frame stayed pinned from its first read to its second, and every
    /// first read came before every second one. A sweep alone proves nothing: its looks are
    /// spread over time, and a thread can let go of one frame and pin the next between them.
    /// `between` runs between the two reads (tests let go of a pin there).
    fn is_full(&self, queue: &SieveQueue, between: impl FnOnce()) -> bool {
        if queue.len() != self.frames.len() {
            return false;
        }
        let mut first = Vec::with_capacity(self.frames.len());
        for f in &self.frames {
            let word = f.pins.word();
            if word & PIN_COUNT == 0 {
                return false;
            }
            first.push(word);
        }
        between();
        self.frames
            .iter()
            .zip(first)
            .all(|(f, word)| f.pins.word() == word)
    }

    /// Empties `frame` (already out of the queue): claims it if no one holds it, writes it
    /// back if dirty, and unregisters its page. `Ok(false)` if it got pinned meanwhile (it
    /// goes back in the queue).
    fn evict(&self, frame: u32) -> Result<bool> {
        let f = self.frame(frame);
        let key = f.page.load(Ordering::Acquire);
        {
            let table = lock(self.table(key));
            if f.pins.count() != 0 {
                drop(table);
                lock(&self.queue).push(frame);
                return Ok(false);
            }
            f.pins.pin();
        }
        // Write back while the page is still registered, so no one reads a stale copy
        // from the file meanwhile; a pinner now waits on the frame lock.
        let mut data = f.data.write().unwrap_or_else(PoisonError::into_inner);
        if data.dirty
            && let Err(e) = self.write_back(&mut data)
        {
            drop(data);
            f.pins.unpin();
            lock(&self.queue).push(frame);
            return Err(e);
        }
        let mut table = lock(self.table(key));
        if !f.pins.mark_evicted() {
            // Pinned while we wrote (or by a hint now): it stays.
            drop(table);
            drop(data);
            f.pins.unpin();
            lock(&self.queue).push(frame);
            return Ok(false);
        }
        table.remove(&key);
        f.page.store(NO_PAGE, Ordering::Release);
        drop(table);
        data.page = None;
        Ok(true)
    }

    /// Writes one dirty frame's page after the hook agrees; clears `dirty` only on success.
    fn write_back(&self, data: &mut FrameData) -> Result<()> {
        let (Some(page), Some(buf)) = (data.page, data.buf.as_mut()) else {
            return Ok(());
        };
        self.hook.prepare(page, buf);
        let generation = self
            .hook
            .before_write(page, buf)
            .map_err(|source| Error::WriteBack { page, source })?;
        self.file.write_page(page, generation, buf)?;
        let size = buf.size() as u64;
        data.dirty = false;
        self.counters.write_backs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_written
            .fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Writes back every dirty page (each once, after the hook agrees). Pages stay cached.
    /// Waits for writers holding a page. Returns the first error after trying every page;
    /// pages that failed stay dirty. Durability is the caller's: follow with
    /// [`PageFile::sync`].
    pub fn flush(&self) -> Result<()> {
        self.flush_where(|_| true)
    }

    /// Writes back the dirty pages for which `select` says yes, as [`flush`](Self::flush)
    /// does for all: a checkpoint flushes the pages of the generation it records while
    /// writers go on changing pages of the next.
    pub fn flush_where(&self, mut select: impl FnMut(PageId) -> bool) -> Result<()> {
        let mut first_error = None;
        for (i, f) in self.frames.iter().enumerate() {
            let key = f.page.load(Ordering::Acquire);
            if key == NO_PAGE || !select(PageId::new(key)) {
                continue;
            }
            {
                let table = lock(self.table(key));
                if table.get(&key) != Some(&u32::try_from(i).unwrap_or(u32::MAX)) {
                    continue;
                }
                f.pins.pin();
            }
            // Look under a shared lock first: clean pages (most of them) never wait for,
            // or make wait, anyone.
            let dirty = f.data.read().unwrap_or_else(PoisonError::into_inner).dirty;
            if dirty {
                let mut data = f.data.write().unwrap_or_else(PoisonError::into_inner);
                if data.dirty
                    && let Err(e) = self.write_back(&mut data)
                {
                    tracing::warn!(page = key, error = %e, "write-back failed; the page stays dirty");
                    first_error.get_or_insert(e);
                }
            }
            self.release(u32::try_from(i).unwrap_or(u32::MAX));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes back those of `pages` that are cached and dirty, in the order given (a
    /// checkpoint passes its generation's pages in ascending order, so the file is written
    /// front to back); as [`flush_where`](Self::flush_where) with a set, but the work is in
    /// the number of pages named, not in the pool's size.
    pub fn flush_pages(&self, pages: impl IntoIterator<Item = PageId>) -> Result<()> {
        let mut first_error = None;
        for page in pages {
            let key = page.get();
            let frame = {
                let table = lock(self.table(key));
                let Some(&frame) = table.get(&key) else {
                    continue;
                };
                self.frame(frame).pins.pin();
                frame
            };
            let f = self.frame(frame);
            let dirty = f.data.read().unwrap_or_else(PoisonError::into_inner).dirty;
            if dirty {
                let mut data = f.data.write().unwrap_or_else(PoisonError::into_inner);
                // The frame was pinned while it held `page`; a failed load may have given
                // it up since (then it holds no page and nothing is written).
                if data.dirty
                    && data.page == Some(page)
                    && let Err(e) = self.write_back(&mut data)
                {
                    tracing::warn!(page = key, error = %e, "write-back failed; the page stays dirty");
                    first_error.get_or_insert(e);
                }
            }
            self.release(frame);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Forgets the changes to `page` not yet written back, if it is cached: its frame turns
    /// clean, so the page is never written from this copy. For a page the caller has just
    /// freed, whose bytes no longer matter, and which may be written next by someone other
    /// than the pool (a free list, say): a stale dirty copy written back later would
    /// overwrite that.
    pub fn discard(&self, page: PageId) {
        let key = page.get();
        let frame = {
            let table = lock(self.table(key));
            let Some(&frame) = table.get(&key) else {
                return;
            };
            self.frame(frame).pins.pin();
            frame
        };
        {
            let mut data = self
                .frame(frame)
                .data
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if data.page == Some(page) {
                data.dirty = false;
            }
        }
        self.release(frame);
    }

    /// Whether `page` is cached and dirty (for tests and diagnostics).
    pub fn is_dirty(&self, page: PageId) -> Option<bool> {
        let frame = *lock(self.table(page.get())).get(&page.get())?;
        let data = self
            .frame(frame)
            .data
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (data.page == Some(page)).then_some(data.dirty)
    }
}

/// A page pinned for reading. Dereferences to the [`PageBuf`].
pub struct PageRef<'a> {
    frame: &'a Frame,
    data: RwLockReadGuard<'a, FrameData>,
}

impl Deref for PageRef<'_> {
    type Target = PageBuf;
    fn deref(&self) -> &PageBuf {
        self.data.buf.as_ref().unwrap_or_else(|| no_page())
    }
}

impl Drop for PageRef<'_> {
    fn drop(&mut self) {
        self.frame.pins.unpin();
    }
}

impl std::fmt::Debug for PageRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageRef")
            .field("page", &self.data.page)
            .finish_non_exhaustive()
    }
}

/// A page pinned for writing. Reading goes through `Deref`; [`page_mut`](Self::page_mut)
/// marks it dirty.
pub struct PageMut<'a> {
    frame: &'a Frame,
    data: RwLockWriteGuard<'a, FrameData>,
}

impl PageMut<'_> {
    /// The page, for changing; marks it dirty.
    pub fn page_mut(&mut self) -> &mut PageBuf {
        self.data.dirty = true;
        self.data.buf.get_or_insert_with(|| no_page().clone())
    }

    /// Whether the page has changes not yet written back.
    pub fn is_dirty(&self) -> bool {
        self.data.dirty
    }
}

impl Deref for PageMut<'_> {
    type Target = PageBuf;
    fn deref(&self) -> &PageBuf {
        self.data.buf.as_ref().unwrap_or_else(|| no_page())
    }
}

impl Drop for PageMut<'_> {
    fn drop(&mut self) {
        self.frame.pins.unpin();
    }
}

impl std::fmt::Debug for PageMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageMut")
            .field("page", &self.data.page)
            .field("dirty", &self.data.dirty)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lightning_page::vfs::MemVfs;
    use lightning_page::{PageBuf, PageFile, PageId, PageSize, PageType};

    use super::{BufferPool, FixedGeneration, lock};
    use crate::Error;

    fn pool(frames: u64) -> BufferPool {
        let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
        file.extend_to(8).unwrap();
        BufferPool::new(
            Arc::new(file),
            frames * u64::from(PageSize::MIN.bytes()),
            Arc::new(FixedGeneration(1)),
        )
        .unwrap()
    }

    /// A page created in a frame that held another page (evicted, its buffer reused) starts
    /// as a new page: the type asked for, an empty payload, every byte zero.
    #[test]
    fn a_page_created_in_an_evicted_frame_starts_empty() {
        let pool = pool(2);
        for (id, byte) in [(2, 0xAB), (3, 0xCD)] {
            let mut p = pool.create(PageId::new(id), PageType::BTreeLeaf).unwrap();
            p.page_mut().set_payload(&[byte; 500]).unwrap();
        }
        pool.flush().unwrap();
        // Two frames, both full: one of the pages is evicted (clean, written back) to make
        // room, and its buffer is reused.
        let b = pool.create(PageId::new(4), PageType::BTreeBranch).unwrap();
        assert_eq!(pool.stats().evictions, 1);
        assert_eq!(*b, PageBuf::new(PageSize::MIN, PageType::BTreeBranch));
        drop(b);
        // The evicted page kept its bytes: they were written back before the frame was
        // reused.
        for (id, byte) in [(2, 0xAB), (3, 0xCD)] {
            let p = pool.pin(PageId::new(id)).unwrap();
            assert_eq!(p.payload(), &[byte; 500][..]);
        }
    }

    /// Every frame pinned at one moment is a full pool; a pin let go and taken again
    /// between the two looks (the same count, so a look at the counts alone sees nothing)
    /// is not, and neither is a frame out of the eviction queue.
    #[test]
    fn full_means_every_frame_pinned_at_one_moment() {
        let pool = pool(2);
        let a = pool.create(PageId::new(2), PageType::Overflow).unwrap();
        let b = pool.create(PageId::new(3), PageType::Overflow).unwrap();
        drop(a);
        let a = pool.pin(PageId::new(2)).unwrap();
        assert!(pool.is_full(&lock(&pool.queue), || {}));
        assert!(matches!(
            pool.pin(PageId::new(4)),
            Err(Error::CacheFull { frames: 2 })
        ));
        let mut a = Some(a);
        let queue = lock(&pool.queue);
        assert!(!pool.is_full(&queue, || {
            drop(a.take());
            a = Some(pool.pin(PageId::new(2)).unwrap());
        }));
        drop(queue);
        lock(&pool.queue).remove(0);
        assert!(!pool.is_full(&lock(&pool.queue), || {}));
        lock(&pool.queue).push(0);
        drop((a, b));
        assert!(!pool.is_full(&lock(&pool.queue), || {}));
        assert!(pool.create(PageId::new(4), PageType::Overflow).is_ok());
    }
}
