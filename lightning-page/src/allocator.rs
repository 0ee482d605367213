//! The page allocator with checkpoint generations, and the persisted free list.

use std::collections::{BTreeMap, BTreeSet};

use crate::page::{PageBuf, PageId, PageType};
use crate::page_file::PageFile;
use crate::superblock::Superblock;
use crate::{Error, Lsn, Result};

const NEXT_OFF: usize = 0;
const FREE_COUNT_OFF: usize = NEXT_OFF + 8;
const PENDING_COUNT_OFF: usize = FREE_COUNT_OFF + 4;
const IDS_OFF: usize = PENDING_COUNT_OFF + 4;
const NONE: u64 = u64::MAX;

/// The first page the allocator hands out; pages 0 and 1 are the superblocks.
pub const FIRST_DATA_PAGE: PageId = PageId::new(2);

/// Allocates and frees pages under the copy-on-write generation rules.
///
/// The page file keeps the images of the **two** newest durable checkpoints intact, so that
/// opening can fall back to the older superblock when the newer one is damaged (see
/// `docs/adr/004-two-retained-checkpoint-images.md`). With `G` the current generation:
///
/// - a page allocated and freed inside generation `G` is in no image, so it is reusable
///   at once;
/// - a page freed during `G` that an earlier image holds is in the image of checkpoint
///   `G - 1`; it becomes reusable once checkpoint `G + 1` is durable, when `G - 1` is no
///   longer one of the two retained images;
/// - a checkpoint persists both kinds — pages free in both retained images (reusable at
///   load) and pages freed during its generation (pending) — in free-list pages taken
///   only from pages reusable now. The previous checkpoint's free-list pages are pending
///   in the new image, like any page freed during its generation.
///
/// # Free-list page layout (payload of a [`PageType::FreeList`] page)
///
/// | offset | size  | field                                                  |
/// |-------:|------:|--------------------------------------------------------|
/// | 0      | 8     | next free-list page id, `u64::MAX` for none            |
/// | 8      | 4     | `f`, the number of reusable page ids in this page      |
/// | 12     | 4     | `p`, the number of pending page ids in this page       |
/// | 16     | 8 * f | reusable page ids, strictly ascending                  |
/// | ...    | 8 * p | pending page ids (freed during the checkpoint's generation), strictly ascending |
///
/// The chain fills pages with reusable ids first, then pending ids, and climbs: each
/// free-list page has a higher id than the one before it (list pages are taken
/// lowest-first, then from the end of the file), which also rules out loops.
///
/// # Use
///
/// Pure bookkeeping: it does no I/O except in [`load`](Self::load),
/// [`write_free_list`](Self::write_free_list) and [`checkpoint`](Self::checkpoint). When
/// [`allocate`](Self::allocate) grows [`page_count`](Self::page_count), the caller extends
/// the file with [`PageFile::extend_to`] before writing the page.
///
/// ```
/// use lightning_page::{Lsn, PageAllocator, PageFile, PageSize, vfs::MemVfs};
///
/// let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?;
/// let mut alloc = PageAllocator::load(&file)?;
/// let a = alloc.allocate();
/// alloc.free(a)?;                       // allocated in this generation: reusable at once
/// assert_eq!(alloc.allocate(), a);
/// file.extend_to(alloc.page_count())?;
/// let sb = alloc.checkpoint(&file, None, Lsn::new(0))?;
/// alloc.free(a)?;                       // in a durable image now: waits two checkpoints
/// assert_ne!(alloc.allocate(), a);
/// alloc.checkpoint(&file, None, Lsn::new(0))?;
/// assert!(!alloc.free_pages().any(|p| p == a));
/// alloc.checkpoint(&file, None, Lsn::new(0))?;
/// assert!(alloc.free_pages().any(|p| p == a));
/// # assert_eq!(sb.generation, 1);
/// # Ok::<(), lightning_page::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PageAllocator {
    generation: u64,
    page_count: u64,
    free: BTreeSet<PageId>,
    /// Freed pages an image may still hold, with the generation they were freed in.
    pending: BTreeMap<PageId, u64>,
    /// Pages allocated in the current generation.
    fresh: BTreeSet<PageId>,
    /// Pages holding the free list of the newest started checkpoint, ascending.
    list_pages: Vec<PageId>,
    /// A checkpoint that was begun and has not been reported durable.
    in_flight: Option<u64>,
    ids_per_page: usize,
}

/// What [`PageAllocator::begin_checkpoint`] captured: the free lists of the image of one
/// generation, and the pages they are to be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPlan {
    /// The generation the checkpoint records.
    pub generation: u64,
    /// Pages in that generation's image.
    pub page_count: u64,
    /// Pages the free list goes to, in chain order.
    pub list_pages: Vec<PageId>,
    /// Pages free in this image and the one before it (reusable when loaded), ascending.
    pub free: Vec<PageId>,
    /// Pages free in this image but held by the one before it, ascending.
    pub pending: Vec<PageId>,
    /// Page ids one free-list page holds.
    ids_per_page: usize,
}

impl CheckpointPlan {
    /// Writes the free lists into the plan's pages (extending the file if needed) and
    /// returns the root to record in the superblock. Needs no allocator: a checkpoint
    /// writes its free list while writers go on allocating. Writing again after a failure
    /// rewrites the same pages with the same bytes.
    pub fn write(&self, file: &PageFile) -> Result<Option<PageId>> {
        file.extend_to(self.page_count)?;
        let per_page = self.ids_per_page.max(1);
        let mut free = self.free.iter();
        let mut pending = self.pending.iter();
        for (i, id) in self.list_pages.iter().enumerate() {
            let next = self.list_pages.get(i + 1).map_or(NONE, |p| p.get());
            let f: Vec<PageId> = free.by_ref().take(per_page).copied().collect();
            let p: Vec<PageId> = pending.by_ref().take(per_page - f.len()).copied().collect();
            let mut page = PageBuf::new(file.page_size(), PageType::FreeList);
            // The length first: when the ids do not fit (a plan written to a file with
            // smaller pages than the allocator's), this is an error, not a write past the page.
            let len = IDS_OFF + 8 * (f.len() + p.len());
            page.set_payload_len(len)?;
            let body = page.body_mut();
            let max = body.len();
            let Some((head, ids)) = body.split_first_chunk_mut::<IDS_OFF>() else {
                return Err(Error::PayloadTooLarge { len, max });
            };
            head[NEXT_OFF..FREE_COUNT_OFF].copy_from_slice(&next.to_le_bytes());
            // At most ids_per_page (< 8192) ids: the counts always fit.
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
            head[FREE_COUNT_OFF..PENDING_COUNT_OFF].copy_from_slice(&count(f.len()));
            head[PENDING_COUNT_OFF..IDS_OFF].copy_from_slice(&count(p.len()));
            // `set_payload_len` checked that `ids` has room for all of them.
            for (slot, page_id) in ids.chunks_exact_mut(8).zip(f.iter().chain(&p)) {
                slot.copy_from_slice(&page_id.get().to_le_bytes());
            }
            file.write_page(*id, self.generation, &mut page)?;
        }
        Ok(self.list_pages.first().copied())
    }
}

/// Counts describing the allocator, for stats and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    /// The current generation.
    pub generation: u64,
    /// Pages in the file the allocator manages, including superblocks.
    pub page_count: u64,
    /// Pages reusable now.
    pub free: u64,
    /// Freed pages waiting for a durable checkpoint.
    pub pending: u64,
    /// Pages holding the persisted free list.
    pub list_pages: u64,
}

impl PageAllocator {
    /// Loads the allocator from the file's durable superblock and its free list.
    ///
    /// Pages past the superblock's page count (written after that checkpoint) are
    /// forgotten: they belong to no durable image and are handed out again.
    pub fn load(file: &PageFile) -> Result<Self> {
        let sb = file.superblock();
        let ids_per_page = (file.page_size().max_payload() - IDS_OFF) / 8;
        let mut alloc = PageAllocator {
            generation: sb.generation.saturating_add(1),
            page_count: sb.page_count,
            free: BTreeSet::new(),
            pending: BTreeMap::new(),
            fresh: BTreeSet::new(),
            list_pages: Vec::new(),
            in_flight: None,
            ids_per_page,
        };
        let mut next = sb.freelist_root;
        while let Some(id) = next {
            let bad = |what, expected: String, found: String| Error::Corruption {
                file: file.path().to_path_buf(),
                page: id,
                what,
                expected,
                found,
            };
            if id < FIRST_DATA_PAGE || id.get() >= sb.page_count {
                return Err(bad(
                    "free-list page outside the image",
                    format!("2..{}", sb.page_count),
                    id.to_string(),
                ));
            }
            if let Some(prev) = alloc.list_pages.last()
                && *prev >= id
            {
                // Also rules out loops: the chain must climb.
                return Err(bad(
                    "free-list chain not ascending",
                    format!("a page after {prev}"),
                    id.to_string(),
                ));
            }
            let (page, header) = file.read_page(id, Some(PageType::FreeList))?;
            if header.generation > sb.generation {
                return Err(bad(
                    "free-list page newer than its superblock",
                    format!("generation <= {}", sb.generation),
                    header.generation.to_string(),
                ));
            }
            alloc.list_pages.push(id);
            let (following, free, pending) =
                decode_list_page(page.payload()).map_err(|(what, e, f)| bad(what, e, f))?;
            for (ids, is_pending) in [(free, false), (pending, true)] {
                let mut last = None;
                for raw in ids {
                    let p = PageId::new(raw);
                    if p < FIRST_DATA_PAGE || raw >= sb.page_count || last.is_some_and(|l| l >= p) {
                        return Err(bad(
                            "free page id out of range or order",
                            format!("ascending in 2..{}", sb.page_count),
                            raw.to_string(),
                        ));
                    }
                    let dup = alloc.free.contains(&p) || alloc.pending.contains_key(&p);
                    if dup {
                        return Err(bad(
                            "page listed free twice",
                            "each page once".into(),
                            raw.to_string(),
                        ));
                    }
                    if is_pending {
                        alloc.pending.insert(p, sb.generation);
                    } else {
                        alloc.free.insert(p);
                    }
                    last = Some(p);
                }
            }
            next = following;
        }
        if let Some(p) = alloc
            .list_pages
            .iter()
            .find(|p| alloc.free.contains(p) || alloc.pending.contains_key(p))
        {
            return Err(Error::Corruption {
                file: file.path().to_path_buf(),
                page: *p,
                what: "free-list page is listed as free",
                expected: "in use".into(),
                found: "free".into(),
            });
        }
        tracing::debug!(
            generation = alloc.generation,
            free = alloc.free.len(),
            pending = alloc.pending.len(),
            "allocator loaded"
        );
        Ok(alloc)
    }

    /// The current generation: pages written now carry it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Pages in use or free, including the superblocks: the file must be at least this long.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Hands out a page: the lowest reusable one, else a new one at the end of the file.
    pub fn allocate(&mut self) -> PageId {
        let id = self.free.pop_first().unwrap_or_else(|| {
            self.page_count += 1;
            PageId::new(self.page_count - 1)
        });
        self.fresh.insert(id);
        id
    }

    /// Returns a page. Freeing a superblock page, a page never handed out, a page already
    /// free or a free-list page is refused with [`Error::InvalidFree`].
    pub fn free(&mut self, id: PageId) -> Result<()> {
        let refuse = |reason| Err(Error::InvalidFree { page: id, reason });
        if id < FIRST_DATA_PAGE {
            return refuse("it is a superblock page");
        }
        if id.get() >= self.page_count {
            return refuse("it was never allocated (past the end of the file)");
        }
        if self.free.contains(&id) || self.pending.contains_key(&id) {
            return refuse("it is already free");
        }
        if self.is_list_page(id) {
            return refuse("it holds the free list");
        }
        if self.fresh.remove(&id) {
            self.free.insert(id);
        } else {
            self.pending.insert(id, self.generation);
        }
        Ok(())
    }

    fn is_list_page(&self, id: PageId) -> bool {
        self.list_pages.binary_search(&id).is_ok()
    }

    /// Pages reusable now, ascending.
    pub fn free_pages(&self) -> impl Iterator<Item = PageId> + '_ {
        self.free.iter().copied()
    }

    /// Freed pages waiting for a durable checkpoint, ascending.
    pub fn pending_pages(&self) -> impl Iterator<Item = PageId> + '_ {
        self.pending.keys().copied()
    }

    /// Pages holding the free list of the newest started checkpoint, ascending (chain order).
    pub fn list_pages(&self) -> &[PageId] {
        &self.list_pages
    }

    /// Counts for stats.
    pub fn stats(&self) -> AllocatorStats {
        AllocatorStats {
            generation: self.generation,
            page_count: self.page_count,
            free: self.free.len() as u64,
            pending: self.pending.len() as u64,
            list_pages: self.list_pages.len() as u64,
        }
    }

    /// Ends the current generation `G` at a quiet point: captures the free lists of `G`'s
    /// image, picks the pages they will be written to, and starts generation `G + 1`.
    /// Writers may continue at once.
    ///
    /// Only one checkpoint may be in flight: until [`checkpoint_durable`](Self::checkpoint_durable)
    /// reports it, another `begin_checkpoint` fails with [`Error::CheckpointInFlight`]. A
    /// checkpoint that fails part way is finished by trying its remaining steps again with
    /// the same plan ([`CheckpointPlan::write`], then the superblock): the plan and the
    /// image it describes stay valid while writers go on in the next generation, because
    /// nothing that image holds is reused before the checkpoint is durable.
    pub fn begin_checkpoint(&mut self) -> Result<CheckpointPlan> {
        if let Some(generation) = self.in_flight {
            return Err(Error::CheckpointInFlight { generation });
        }
        let generation = self.generation;
        // Give back the free tail: pages at the end of the file that no retained image holds
        // leave the image (the file is cut to size once the checkpoint is durable).
        while self.page_count > FIRST_DATA_PAGE.get()
            && self.free.last() == Some(&PageId::new(self.page_count - 1))
        {
            self.free.pop_last();
            self.page_count -= 1;
        }
        let old_list = std::mem::take(&mut self.list_pages);
        // Freed in earlier generations: free in this image and the one before it.
        let mut free: BTreeSet<PageId> = self.free.clone();
        free.extend(
            self.pending
                .iter()
                .filter(|(_, g)| **g < generation)
                .map(|(p, _)| *p),
        );
        // Freed during this generation (or the previous list): the image before still holds them.
        let mut pending: BTreeSet<PageId> = self
            .pending
            .iter()
            .filter(|(_, g)| **g >= generation)
            .map(|(p, _)| *p)
            .collect();
        pending.extend(old_list.iter().copied());
        // List pages come from pages reusable now (no retained image holds them) or from
        // the end of the file, and are not themselves free in the image. Taken lowest
        // first and then from the end, they ascend, as the chain format requires.
        let mut list = Vec::new();
        while list.len() * self.ids_per_page < free.len() + pending.len() {
            let id = if let Some(id) = self.free.pop_first() {
                free.remove(&id);
                id
            } else {
                self.page_count += 1;
                PageId::new(self.page_count - 1)
            };
            list.push(id);
        }
        for p in old_list {
            self.pending.insert(p, generation);
        }
        self.list_pages.clone_from(&list);
        self.fresh.clear();
        self.generation = generation + 1;
        self.in_flight = Some(generation);
        Ok(CheckpointPlan {
            generation,
            page_count: self.page_count,
            list_pages: list,
            free: free.into_iter().collect(),
            pending: pending.into_iter().collect(),
            ids_per_page: self.ids_per_page,
        })
    }

    /// Writes the plan's free lists into its pages (extending the file if needed) and
    /// returns the root to record in the superblock. The same as [`CheckpointPlan::write`].
    pub fn write_free_list(
        &self,
        file: &PageFile,
        plan: &CheckpointPlan,
    ) -> Result<Option<PageId>> {
        plan.write(file)
    }

    /// Marks checkpoint `generation` durable. The image before it is no longer the older
    /// of the two retained images, so pages freed before `generation` become reusable.
    pub fn checkpoint_durable(&mut self, generation: u64) {
        if self.in_flight == Some(generation) {
            self.in_flight = None;
        }
        let ready: Vec<PageId> = self
            .pending
            .iter()
            .filter(|(_, g)| **g < generation)
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            self.pending.remove(&p);
            self.free.insert(p);
        }
    }

    /// A whole checkpoint in one call: [`begin_checkpoint`](Self::begin_checkpoint),
    /// [`write_free_list`](Self::write_free_list), [`PageFile::commit_superblock`] (which
    /// syncs the pages written before it) and [`checkpoint_durable`](Self::checkpoint_durable).
    /// Returns the superblock now durable.
    ///
    /// All or nothing: when a step fails, the allocator is as it was before the call (no
    /// page was handed out meanwhile), so the caller may simply try again.
    pub fn checkpoint(
        &mut self,
        file: &PageFile,
        catalog_root: Option<PageId>,
        checkpoint_lsn: Lsn,
    ) -> Result<Superblock> {
        let before = self.clone();
        let result = self.begin_checkpoint().and_then(|plan| {
            let freelist_root = plan.write(file)?;
            let sb = Superblock {
                generation: plan.generation,
                page_count: plan.page_count,
                freelist_root,
                catalog_root,
                checkpoint_lsn,
                ..file.superblock()
            };
            file.commit_superblock(sb)?;
            Ok(sb)
        });
        match result {
            Ok(sb) => {
                self.checkpoint_durable(sb.generation);
                Ok(sb)
            }
            Err(e) => {
                *self = before;
                Err(e)
            }
        }
    }
}

type DecodeError = (&'static str, String, String);

/// A decoded free-list page: the next page of the chain, reusable ids, pending ids.
type ListPage = (Option<PageId>, Vec<u64>, Vec<u64>);

/// Splits a free-list page payload into (next page, reusable ids, pending ids).
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "`head = p.get(..IDS_OFF)` succeeded, so `p` and `head` hold at least IDS_OFF bytes and every fixed offset below it is in bounds; `split` is clamped to `all.len()`"
)]
fn decode_list_page(p: &[u8]) -> Result<ListPage, DecodeError> {
    let Some(head) = p.get(..IDS_OFF) else {
        return Err((
            "free-list page too short",
            format!(">= {IDS_OFF} bytes"),
            p.len().to_string(),
        ));
    };
    let mut next = [0u8; 8];
    next.copy_from_slice(&head[NEXT_OFF..FREE_COUNT_OFF]);
    let next = u64::from_le_bytes(next);
    let count = |o: usize| {
        u64::from(u32::from_le_bytes([
            head[o],
            head[o + 1],
            head[o + 2],
            head[o + 3],
        ]))
    };
    let (f, pend) = (count(FREE_COUNT_OFF), count(PENDING_COUNT_OFF));
    let ids = &p[IDS_OFF..];
    if ids.len() as u64 != 8 * (f + pend) {
        return Err((
            "free-list counts disagree with payload length",
            (8 * (f + pend)).to_string(),
            ids.len().to_string(),
        ));
    }
    let all: Vec<u64> = ids
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect();
    let split = usize::try_from(f).unwrap_or(all.len()).min(all.len());
    let following = if next == NONE {
        None
    } else {
        Some(PageId::new(next))
    };
    Ok((following, all[..split].to_vec(), all[split..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_alloc(ids_per_page: usize) -> PageAllocator {
        PageAllocator {
            generation: 1,
            page_count: 2,
            free: BTreeSet::new(),
            pending: BTreeMap::new(),
            fresh: BTreeSet::new(),
            list_pages: Vec::new(),
            in_flight: None,
            ids_per_page,
        }
    }

    #[test]
    fn a_plan_written_to_a_file_with_smaller_pages_is_an_error_not_a_panic() {
        let vfs = MemVfs::new();
        let big = PageFile::create(&vfs, "big.ldb".as_ref(), PageSize::MAX).unwrap();
        let small = PageFile::create(&vfs, "small.ldb".as_ref(), PageSize::MIN).unwrap();
        let mut alloc = PageAllocator::load(&big).unwrap();
        // 1000 ids fit one 64 KiB free-list page, not a 4 KiB one.
        let pages: Vec<PageId> = (0..1000).map(|_| alloc.allocate()).collect();
        big.extend_to(alloc.page_count()).unwrap();
        alloc.checkpoint(&big, None, Lsn::new(0)).unwrap();
        for p in pages {
            alloc.free(p).unwrap(); // in a durable image: pending, listed by the next plan
        }
        let plan = alloc.begin_checkpoint().unwrap();
        let r = plan.write(&small);
        assert!(
            matches!(r, Err(Error::PayloadTooLarge { max: 4064, .. })),
            "{r:?}"
        );
        assert!(plan.write(&big).is_ok());
    }

    #[test]
    fn pages_freed_in_their_own_generation_are_reusable_at_once() {
        let mut a = fresh_alloc(4);
        let p = a.allocate();
        a.free(p).unwrap();
        assert_eq!(a.free_pages().collect::<Vec<_>>(), vec![p]);
        assert_eq!(a.allocate(), p);
    }

    #[test]
    fn pages_of_an_image_wait_until_two_newer_checkpoints_are_durable() {
        let mut a = fresh_alloc(4);
        let p = a.allocate();
        let plan1 = a.begin_checkpoint().unwrap(); // image 1 holds p
        a.checkpoint_durable(plan1.generation);
        a.free(p).unwrap(); // freed during generation 2
        assert_eq!(a.pending_pages().collect::<Vec<_>>(), vec![p]);
        assert_ne!(a.allocate(), p);
        let plan2 = a.begin_checkpoint().unwrap();
        assert!(
            plan2.pending.contains(&p) && !plan2.free.contains(&p),
            "{plan2:?}"
        );
        a.checkpoint_durable(plan2.generation);
        assert!(!a.free_pages().any(|x| x == p), "image 1 is still retained");
        let plan3 = a.begin_checkpoint().unwrap();
        assert!(plan3.free.contains(&p), "{plan3:?}");
        assert!(
            !a.free_pages().any(|x| x == p),
            "not before checkpoint 3 is durable"
        );
        a.checkpoint_durable(plan3.generation);
        assert!(a.free_pages().any(|x| x == p));
    }

    #[test]
    fn only_one_checkpoint_in_flight() {
        let mut a = fresh_alloc(4);
        let plan = a.begin_checkpoint().unwrap();
        assert!(matches!(
            a.begin_checkpoint(),
            Err(Error::CheckpointInFlight { generation: 1 })
        ));
        a.checkpoint_durable(plan.generation);
        assert!(a.begin_checkpoint().is_ok());
    }

    #[test]
    fn invalid_frees_are_refused() {
        let mut a = fresh_alloc(4);
        let p = a.allocate();
        for bad in [PageId::new(0), PageId::new(1), PageId::new(99)] {
            assert!(matches!(a.free(bad), Err(Error::InvalidFree { .. })));
        }
        a.free(p).unwrap();
        assert!(matches!(
            a.free(p),
            Err(Error::InvalidFree {
                reason: "it is already free",
                ..
            })
        ));
    }

    #[test]
    fn list_pages_come_from_reusable_pages_and_cover_the_image() {
        let mut a = fresh_alloc(2);
        let pages: Vec<_> = (0..10).map(|_| a.allocate()).collect();
        for p in &pages[..7] {
            a.free(*p).unwrap(); // fresh: reusable at once
        }
        let plan = a.begin_checkpoint().unwrap();
        // 7 reusable pages, 2 ids per page: 3 list pages hold the other 4.
        assert!(plan.list_pages.len() * 2 >= plan.free.len());
        assert_eq!(plan.list_pages.len() + plan.free.len(), 7);
        for l in &plan.list_pages {
            assert!(!plan.free.contains(l));
        }
    }

    #[test]
    fn decoder_rejects_bad_counts() {
        let mut p = vec![0u8; IDS_OFF + 8];
        p[FREE_COUNT_OFF] = 2;
        assert!(decode_list_page(&p).is_err());
        assert!(decode_list_page(&p[..4]).is_err());
        p[FREE_COUNT_OFF] = 0;
        p[PENDING_COUNT_OFF] = 1;
        let (_, f, pend) = decode_list_page(&p).unwrap();
        assert_eq!((f.len(), pend.len()), (0, 1));
        // The error says how long the ids should be and are: 8 bytes each.
        p[FREE_COUNT_OFF] = 2;
        let (what, expected, found) = decode_list_page(&p).unwrap_err();
        assert_eq!(what, "free-list counts disagree with payload length");
        assert_eq!((expected.as_str(), found.as_str()), ("24", "8"));
    }

    /// A checkpoint records the catalog root it is given, a new one or none, not the
    /// previous superblock's.
    #[test]
    fn a_checkpoint_records_the_catalog_root_it_is_given() {
        let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
        let mut a = PageAllocator::load(&file).unwrap();
        let (x, y) = (a.allocate(), a.allocate());
        for (root, lsn) in [(Some(x), 1), (Some(y), 2), (None, 3)] {
            let sb = a.checkpoint(&file, root, Lsn::new(lsn)).unwrap();
            assert_eq!((sb.catalog_root, sb.checkpoint_lsn), (root, Lsn::new(lsn)));
            assert_eq!(file.superblock(), sb);
        }
    }

    use crate::PageSize;
    use crate::vfs::MemVfs;

    /// A page file of `file_pages` pages whose durable superblock (generation 1, image of
    /// `image_pages` pages) roots a free list of the given pages: (page id, next page or
    /// `None`, free ids, pending ids, header generation).
    type ListPage<'a> = (u64, Option<u64>, &'a [u64], &'a [u64], u64);

    fn file_with_list(file_pages: u64, image_pages: u64, list: &[ListPage<'_>]) -> PageFile {
        let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
        file.extend_to(file_pages).unwrap();
        for &(id, next, free, pending, generation) in list {
            let mut page = PageBuf::new(PageSize::MIN, PageType::FreeList);
            let body = page.body_mut();
            body[NEXT_OFF..FREE_COUNT_OFF].copy_from_slice(&next.unwrap_or(NONE).to_le_bytes());
            let count = |n: usize| u32::try_from(n).unwrap().to_le_bytes();
            body[FREE_COUNT_OFF..PENDING_COUNT_OFF].copy_from_slice(&count(free.len()));
            body[PENDING_COUNT_OFF..IDS_OFF].copy_from_slice(&count(pending.len()));
            for (j, raw) in free.iter().chain(pending).enumerate() {
                body[IDS_OFF + j * 8..IDS_OFF + j * 8 + 8].copy_from_slice(&raw.to_le_bytes());
            }
            page.set_payload_len(IDS_OFF + (free.len() + pending.len()) * 8)
                .unwrap();
            file.write_page(PageId::new(id), generation, &mut page)
                .unwrap();
        }
        file.commit_superblock(Superblock {
            generation: 1,
            page_count: image_pages,
            freelist_root: list.first().map(|l| PageId::new(l.0)),
            ..file.superblock()
        })
        .unwrap();
        file
    }

    fn refused(file: &PageFile) -> &'static str {
        match PageAllocator::load(file) {
            Err(Error::Corruption { what, .. }) => what,
            other => panic!("{other:?}"),
        }
    }

    /// Every rule `load` applies to a free list on disk, each broken alone, next to the
    /// same list unbroken: a damaged list is corruption naming what is wrong, never a
    /// source of pages handed out twice.
    #[test]
    fn load_refuses_every_kind_of_damaged_free_list() {
        let ok = file_with_list(
            12,
            10,
            &[(3, Some(4), &[5], &[6], 1), (4, None, &[7], &[], 0)],
        );
        let a = PageAllocator::load(&ok).unwrap();
        assert_eq!(
            a.free_pages().collect::<Vec<_>>(),
            [PageId::new(5), PageId::new(7)]
        );
        assert_eq!(a.pending_pages().collect::<Vec<_>>(), [PageId::new(6)]);
        assert_eq!(a.list_pages(), [PageId::new(3), PageId::new(4)]);

        let outside = "free-list page outside the image";
        // The next page past the image (the file has it, the image does not).
        let f = file_with_list(
            12,
            10,
            &[(3, Some(10), &[5], &[], 1), (10, None, &[], &[], 1)],
        );
        assert_eq!(refused(&f), outside);
        let f = file_with_list(12, 10, &[(3, Some(1), &[5], &[], 1)]);
        assert!(matches!(refused(&f), "free-list page outside the image"));
        let f = file_with_list(
            12,
            10,
            &[(4, Some(3), &[5], &[], 1), (3, None, &[], &[], 1)],
        );
        assert_eq!(refused(&f), "free-list chain not ascending");
        let f = file_with_list(12, 10, &[(3, None, &[5], &[], 2)]);
        assert_eq!(refused(&f), "free-list page newer than its superblock");
        let order = "free page id out of range or order";
        for (free, pending) in [
            (&[1u64][..], &[][..]),
            (&[10], &[]),
            (&[6, 5], &[]),
            (&[5, 5], &[]),
            (&[], &[1]),
            (&[], &[10]),
            (&[], &[7, 6]),
        ] {
            let f = file_with_list(12, 10, &[(3, None, free, pending, 1)]);
            assert_eq!(refused(&f), order, "{free:?} {pending:?}");
        }
        let twice = "page listed free twice";
        for list in [
            [
                (3, Some(4), &[5u64][..], &[][..], 1),
                (4, None, &[5], &[], 1),
            ],
            [(3, Some(4), &[], &[5], 1), (4, None, &[], &[5], 1)],
            [(3, Some(4), &[5], &[], 1), (4, None, &[], &[5], 1)],
        ] {
            assert_eq!(refused(&file_with_list(12, 10, &list)), twice);
        }
        let f = file_with_list(12, 10, &[(3, None, &[3], &[], 1)]);
        assert_eq!(refused(&f), "free-list page is listed as free");
        let f = file_with_list(
            12,
            10,
            &[(3, Some(4), &[], &[4], 1), (4, None, &[], &[], 1)],
        );
        assert_eq!(refused(&f), "free-list page is listed as free");
    }

    /// A page that holds the durable free list cannot be freed by the caller: it is the
    /// allocator's own.
    #[test]
    fn a_free_list_page_cannot_be_freed() {
        let f = file_with_list(12, 10, &[(3, None, &[5], &[], 1)]);
        let mut a = PageAllocator::load(&f).unwrap();
        assert!(matches!(
            a.free(PageId::new(3)),
            Err(Error::InvalidFree {
                reason: "it holds the free list",
                ..
            })
        ));
        a.free(PageId::new(4)).unwrap();
    }

    /// Free pages at the end of the file leave the image at the next checkpoint, down to
    /// the last page in use; a free page below it stays listed.
    #[test]
    fn the_free_tail_leaves_the_image_at_the_next_checkpoint() {
        let mut a = fresh_alloc(8);
        let pages: Vec<_> = (0..8).map(|_| a.allocate()).collect(); // pages 2..10
        for p in [pages[1], pages[5], pages[6], pages[7]] {
            a.free(p).unwrap();
        }
        let plan = a.begin_checkpoint().unwrap();
        assert_eq!(plan.page_count, 7, "pages 7, 8 and 9 leave");
        let kept = |p: &PageId| plan.free.contains(p) || plan.list_pages.contains(p);
        assert!(kept(&pages[1]), "{plan:?}");
        assert!(!pages[5..].iter().any(kept), "{plan:?}");
        assert_eq!(a.page_count(), 7);
    }

    /// A checkpoint whose free and pending lists together fill more than one list page, at
    /// the real page capacity, reloads to the same lists on as few list pages as they need.
    #[test]
    fn free_and_pending_lists_spanning_list_pages_round_trip() {
        let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
        let mut a = PageAllocator::load(&file).unwrap();
        let per_page = (PageSize::MIN.max_payload() - IDS_OFF) / 8;
        let old: Vec<_> = (0..500).map(|_| a.allocate()).collect();
        a.checkpoint(&file, None, Lsn::new(1)).unwrap();
        let new: Vec<_> = (0..600).map(|_| a.allocate()).collect();
        for p in &new[..300] {
            a.free(*p).unwrap(); // allocated in this generation: free at once
        }
        for p in &old {
            a.free(*p).unwrap(); // held by the durable image: pending
        }
        let (free, pending): (Vec<_>, Vec<_>) =
            (a.free_pages().collect(), a.pending_pages().collect());
        assert_eq!((free.len(), pending.len()), (300, 500));
        a.checkpoint(&file, None, Lsn::new(2)).unwrap();
        let b = PageAllocator::load(&file).unwrap();
        // 300 free pages less the list pages, and 500 pending: two pages of `per_page` ids.
        assert!((per_page + 1..=2 * per_page).contains(&798), "{per_page}");
        assert_eq!(b.list_pages().len(), 2);
        // The list pages came out of the free pages.
        let mut reloaded: Vec<_> = b
            .free_pages()
            .chain(b.list_pages().iter().copied())
            .collect();
        reloaded.sort();
        assert_eq!(reloaded, free);
        assert_eq!(b.pending_pages().collect::<Vec<_>>(), pending);
    }

    /// `write_free_list` writes the plan's list and returns its first page, the root the
    /// superblock must record.
    #[test]
    fn write_free_list_returns_the_root_it_wrote() {
        let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
        let mut a = PageAllocator::load(&file).unwrap();
        let pages: Vec<_> = (0..6).map(|_| a.allocate()).collect();
        a.free(pages[1]).unwrap();
        a.free(pages[2]).unwrap();
        let plan = a.begin_checkpoint().unwrap();
        let root = a.write_free_list(&file, &plan).unwrap();
        assert!(root.is_some());
        assert_eq!(root, plan.list_pages.first().copied());
        let (page, _) = file
            .read_page(root.unwrap(), Some(PageType::FreeList))
            .unwrap();
        assert!(decode_list_page(page.payload()).is_ok());
    }
}
