//! The page allocator with checkpoint generations, and the persisted free list.

use std::collections::{BTreeMap, BTreeSet};

use crate::page::{PageBuf, PageId, PageType};
use crate::page_file::PageFile;
use crate::superblock::Superblock;
use crate::{Error, Result};

const NEXT_OFF: usize = 0;
const COUNT_OFF: usize = NEXT_OFF + 8;
const RESERVED_OFF: usize = COUNT_OFF + 4;
const IDS_OFF: usize = RESERVED_OFF + 4;
const NONE: u64 = u64::MAX;

/// The first page the allocator hands out; pages 0 and 1 are the superblocks.
pub const FIRST_DATA_PAGE: PageId = PageId::new(2);

/// Allocates and frees pages under the copy-on-write generation rules.
///
/// Rules (DESIGN.md section 3, points 5 and 6), with `G` the current generation and `G-1`
/// the newest checkpoint that may be durable:
///
/// - a page allocated and freed inside generation `G` is referenced by no superblock, so
///   it is reusable at once;
/// - any other freed page may still be referenced by a durable (or in-flight) checkpoint
///   image, so it waits until the checkpoint of generation `G` is durable;
/// - a checkpoint persists the free list as the image of generation `G` sees it, in
///   free-list pages taken only from pages that are reusable now (never from a page some
///   durable image may reference). The previous checkpoint's free-list pages are free in
///   the new image and reusable once it is durable.
///
/// # Free-list page layout (payload of a [`PageType::FreeList`] page)
///
/// | offset | size  | field                                        |
/// |-------:|------:|----------------------------------------------|
/// | 0      | 8     | next free-list page id, `u64::MAX` for none  |
/// | 8      | 4     | `n`, the number of ids in this page          |
/// | 12     | 4     | reserved, zero                               |
/// | 16     | 8 * n | free page ids, strictly ascending            |
///
/// The chain itself climbs: each free-list page has a higher id than the one before it
/// (list pages are taken lowest-first, then from the end of the file), which also rules
/// out loops.
///
/// # Use
///
/// Pure bookkeeping: it does no I/O except in [`load`](Self::load),
/// [`write_free_list`](Self::write_free_list) and [`checkpoint`](Self::checkpoint). When
/// [`allocate`](Self::allocate) grows [`page_count`](Self::page_count), the caller extends
/// the file with [`PageFile::extend_to`] before writing the page.
///
/// ```
/// use lightning_page::{PageAllocator, PageFile, PageSize, vfs::MemVfs};
///
/// let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?;
/// let mut alloc = PageAllocator::load(&file)?;
/// let a = alloc.allocate();
/// alloc.free(a)?;                       // allocated in this generation: reusable at once
/// assert_eq!(alloc.allocate(), a);
/// file.extend_to(alloc.page_count())?;
/// let sb = alloc.checkpoint(&file, None, 0)?;
/// alloc.free(a)?;                       // now part of a durable image: waits a checkpoint
/// assert_ne!(alloc.allocate(), a);
/// alloc.checkpoint(&file, None, 0)?;
/// assert!(alloc.free_pages().any(|p| p == a));
/// # assert_eq!(sb.generation, 1);
/// # Ok::<(), lightning_page::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PageAllocator {
    generation: u64,
    page_count: u64,
    free: BTreeSet<PageId>,
    /// Freed pages waiting for the checkpoint of the generation they were freed in.
    pending: BTreeMap<PageId, u64>,
    /// Pages allocated in the current generation.
    fresh: BTreeSet<PageId>,
    /// Pages holding the free list of the newest started checkpoint.
    list_pages: Vec<PageId>,
    ids_per_page: usize,
}

/// What [`PageAllocator::begin_checkpoint`] captured: the free list of the image of one
/// generation, and the pages it is to be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPlan {
    /// The generation the checkpoint records.
    pub generation: u64,
    /// Pages in that generation's image.
    pub page_count: u64,
    /// Pages the free list goes to, in chain order.
    pub list_pages: Vec<PageId>,
    /// The free pages of the image, ascending.
    pub free: Vec<PageId>,
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
            generation: sb.generation + 1,
            page_count: sb.page_count,
            free: BTreeSet::new(),
            pending: BTreeMap::new(),
            fresh: BTreeSet::new(),
            list_pages: Vec::new(),
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
            let p = page.payload();
            let (following, ids) = decode_list_page(p).map_err(|(what, e, f)| bad(what, e, f))?;
            let mut last = None;
            for raw in ids {
                let free = PageId::new(raw);
                if free < FIRST_DATA_PAGE || raw >= sb.page_count || last.is_some_and(|l| l >= free)
                {
                    return Err(bad(
                        "free page id out of range or order",
                        format!("ascending in 2..{}", sb.page_count),
                        raw.to_string(),
                    ));
                }
                if !alloc.free.insert(free) || alloc.is_list_page(free) {
                    return Err(bad(
                        "page listed free twice",
                        "each page once".into(),
                        raw.to_string(),
                    ));
                }
                last = Some(free);
            }
            next = following;
        }
        if let Some(p) = alloc.list_pages.iter().find(|p| alloc.free.contains(p)) {
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

    /// Pages reusable now, ascending.
    pub fn free_pages(&self) -> impl Iterator<Item = PageId> + '_ {
        self.free.iter().copied()
    }

    /// Freed pages waiting for a durable checkpoint, ascending.
    pub fn pending_pages(&self) -> impl Iterator<Item = PageId> + '_ {
        self.pending.keys().copied()
    }

    fn is_list_page(&self, id: PageId) -> bool {
        self.list_pages.binary_search(&id).is_ok()
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

    /// Ends the current generation `G` at a quiet point: captures the free list of `G`'s
    /// image, picks the pages it will be written to, and starts generation `G + 1`.
    /// Writers may continue at once; pages they free wait for checkpoint `G + 1`.
    pub fn begin_checkpoint(&mut self) -> CheckpointPlan {
        let generation = self.generation;
        let old_list = std::mem::take(&mut self.list_pages);
        // Free in G's image: reusable pages, pages freed up to G, and the old list pages.
        let mut image_free: BTreeSet<PageId> = self.free.clone();
        image_free.extend(
            self.pending
                .iter()
                .filter(|(_, g)| **g <= generation)
                .map(|(p, _)| *p),
        );
        image_free.extend(old_list.iter().copied());
        // List pages come from pages reusable now (no durable image references them) or
        // from the end of the file, and are not themselves free in the image. Taken lowest
        // first and then from the end, they ascend, as the chain format requires.
        let mut list = Vec::new();
        while list.len() * self.ids_per_page < image_free.len() {
            let id = if let Some(id) = self.free.pop_first() {
                image_free.remove(&id);
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
        CheckpointPlan {
            generation,
            page_count: self.page_count,
            list_pages: list,
            free: image_free.into_iter().collect(),
        }
    }

    /// Writes the plan's free list into its pages (extending the file if needed) and
    /// returns the root to record in the superblock.
    pub fn write_free_list(
        &self,
        file: &PageFile,
        plan: &CheckpointPlan,
    ) -> Result<Option<PageId>> {
        file.extend_to(plan.page_count)?;
        let mut chunks = plan.free.chunks(self.ids_per_page.max(1));
        for (i, id) in plan.list_pages.iter().enumerate() {
            let next = plan.list_pages.get(i + 1).map_or(NONE, |p| p.get());
            let ids = chunks.next().unwrap_or_default();
            let mut page = PageBuf::new(file.page_size(), PageType::FreeList);
            let body = page.body_mut();
            body[NEXT_OFF..COUNT_OFF].copy_from_slice(&next.to_le_bytes());
            // At most ids_per_page (< 8192) ids: the count always fits.
            let count = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            body[COUNT_OFF..RESERVED_OFF].copy_from_slice(&count.to_le_bytes());
            for (j, free) in ids.iter().enumerate() {
                let at = IDS_OFF + 8 * j;
                body[at..at + 8].copy_from_slice(&free.get().to_le_bytes());
            }
            page.set_payload_len(IDS_OFF + 8 * ids.len())?;
            file.write_page(*id, plan.generation, &mut page)?;
        }
        Ok(plan.list_pages.first().copied())
    }

    /// Marks checkpoint `generation` durable: pages freed up to it become reusable.
    pub fn checkpoint_durable(&mut self, generation: u64) {
        let ready: Vec<PageId> = self
            .pending
            .iter()
            .filter(|(_, g)| **g <= generation)
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
    pub fn checkpoint(
        &mut self,
        file: &PageFile,
        catalog_root: Option<PageId>,
        checkpoint_lsn: u64,
    ) -> Result<Superblock> {
        let plan = self.begin_checkpoint();
        let freelist_root = self.write_free_list(file, &plan)?;
        let sb = Superblock {
            generation: plan.generation,
            page_count: plan.page_count,
            freelist_root,
            catalog_root,
            checkpoint_lsn,
            ..file.superblock()
        };
        file.commit_superblock(sb)?;
        self.checkpoint_durable(plan.generation);
        Ok(sb)
    }
}

type DecodeError = (&'static str, String, String);

fn decode_list_page(
    p: &[u8],
) -> Result<(Option<PageId>, impl Iterator<Item = u64> + '_), DecodeError> {
    let Some(head) = p.get(..IDS_OFF) else {
        return Err((
            "free-list page too short",
            format!(">= {IDS_OFF} bytes"),
            p.len().to_string(),
        ));
    };
    let mut next = [0u8; 8];
    next.copy_from_slice(&head[NEXT_OFF..COUNT_OFF]);
    let next = u64::from_le_bytes(next);
    let count = u32::from_le_bytes([
        head[COUNT_OFF],
        head[COUNT_OFF + 1],
        head[COUNT_OFF + 2],
        head[COUNT_OFF + 3],
    ]);
    let ids = &p[IDS_OFF..];
    if ids.len() != 8 * count as usize {
        return Err((
            "free-list count disagrees with payload length",
            (8 * u64::from(count)).to_string(),
            ids.len().to_string(),
        ));
    }
    let following = if next == NONE {
        None
    } else {
        Some(PageId::new(next))
    };
    Ok((
        following,
        ids.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        }),
    ))
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
            ids_per_page,
        }
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
    fn pages_from_an_older_generation_wait_for_the_checkpoint() {
        let mut a = fresh_alloc(4);
        let p = a.allocate();
        let plan = a.begin_checkpoint();
        assert_eq!(plan.free, vec![]);
        a.free(p).unwrap();
        assert_eq!(a.pending_pages().collect::<Vec<_>>(), vec![p]);
        assert_ne!(a.allocate(), p);
        // Checkpoint of the generation p was freed in (2) begins: p is free in its image
        // but still not reusable until that checkpoint is durable.
        let plan2 = a.begin_checkpoint();
        assert!(plan2.free.contains(&p));
        assert!(!a.free_pages().any(|x| x == p));
        a.checkpoint_durable(plan.generation);
        assert!(
            !a.free_pages().any(|x| x == p),
            "durability of an older checkpoint is not enough"
        );
        a.checkpoint_durable(plan2.generation);
        assert!(a.free_pages().any(|x| x == p));
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
        let plan = a.begin_checkpoint();
        // 7 reusable pages, 2 ids per page: 3 list pages hold the other 4... and 4 ids
        // need 2 pages, so 3 pages is the fixed point: 3 pages, 4 free ids.
        assert!(plan.list_pages.len() * 2 >= plan.free.len());
        assert_eq!(plan.list_pages.len() + plan.free.len(), 7);
        for l in &plan.list_pages {
            assert!(!plan.free.contains(l));
        }
    }

    #[test]
    fn decoder_rejects_bad_counts() {
        let mut p = vec![0u8; IDS_OFF + 8];
        p[COUNT_OFF] = 2;
        assert!(decode_list_page(&p).is_err());
        assert!(decode_list_page(&p[..4]).is_err());
        p[COUNT_OFF] = 1;
        assert!(decode_list_page(&p).is_ok());
    }
}
