//! Model test of the allocator against a reference, across simulated power cuts.
//!
//! The reference is what the generation rules promise: a page in either of the two newest
//! durable checkpoint images is never handed out again; after any power cut the reopened
//! file holds one durable image, whose pages are intact and whose free, pending and
//! free-list pages are exactly the complement of the pages it uses; and when the newest
//! superblock rots, the older retained image is intact too.

use lightning_page::Lsn;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_page::{OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType};
use proptest::prelude::*;

const PATH: &str = "data.ldb";

#[derive(Debug, Clone)]
enum Cmd {
    Alloc,
    Free(prop::sample::Index),
    Checkpoint,
    /// Cut the power at the `nth` I/O call of a checkpoint, then crash with `mode`.
    CrashInCheckpoint {
        nth: u64,
        mode: u64,
    },
    /// Cut the power between checkpoints, with unsynced page writes pending.
    Crash {
        mode: u64,
    },
    /// Fail the `nth` write or sync of a checkpoint with EIO; then reload from the file.
    FailCheckpoint {
        nth: u64,
    },
    /// Bit rot destroys the newest superblock; the reopened file falls back a checkpoint.
    RotNewestSuperblock,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        10 => Just(Cmd::Alloc),
        6 => any::<prop::sample::Index>().prop_map(Cmd::Free),
        2 => Just(Cmd::Checkpoint),
        1 => (0u64..12, any::<u64>()).prop_map(|(nth, mode)| Cmd::CrashInCheckpoint { nth, mode }),
        1 => any::<u64>().prop_map(|mode| Cmd::Crash { mode }),
        1 => (0u64..8).prop_map(|nth| Cmd::FailCheckpoint { nth }),
        1 => Just(Cmd::RotNewestSuperblock),
    ]
}

struct Harness {
    vfs: CrashVfs,
    file: PageFile,
    alloc: PageAllocator,
    /// Pages in use now, with the tag written into each.
    in_use: BTreeMap<PageId, u64>,
    /// Generation each in-use page was allocated in.
    born: BTreeMap<PageId, u64>,
    /// The in-use set of each checkpoint image that was started, by generation.
    images: BTreeMap<u64, BTreeMap<PageId, u64>>,
    /// Newest checkpoint whose commit returned.
    durable: u64,
    /// Generations of the durable images the file must keep intact (one or two).
    retained: Vec<u64>,
    /// A checkpoint failed since the last durable one: its superblock write may have hit
    /// the older retained image's slot, so only the newest image is known to survive.
    checkpoint_failed: bool,
    /// Generation each page freed from an image was freed in.
    freed_in: BTreeMap<PageId, u64>,
    next_tag: u64,
}

fn payload(id: PageId, tag: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.get().to_le_bytes());
    b[8..].copy_from_slice(&tag.to_le_bytes());
    b
}

/// What the allocator hands out and holds back, for all-or-nothing comparisons.
fn allocator_state(
    a: &PageAllocator,
) -> (
    lightning_page::AllocatorStats,
    Vec<PageId>,
    Vec<PageId>,
    Vec<PageId>,
) {
    (
        a.stats(),
        a.free_pages().collect(),
        a.pending_pages().collect(),
        a.list_pages().to_vec(),
    )
}

impl Harness {
    fn new(seed: u64) -> Self {
        let vfs = CrashVfs::new(seed);
        let file = PageFile::create(&vfs, Path::new(PATH), PageSize::MIN).unwrap();
        let alloc = PageAllocator::load(&file).unwrap();
        Harness {
            vfs,
            file,
            alloc,
            in_use: BTreeMap::new(),
            born: BTreeMap::new(),
            images: BTreeMap::from([(0, BTreeMap::new())]),
            durable: 0,
            retained: vec![0],
            checkpoint_failed: false,
            freed_in: BTreeMap::new(),
            next_tag: 1,
        }
    }

    fn check_partition(&self) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        let groups: [(&str, Vec<PageId>); 4] = [
            ("in use", self.in_use.keys().copied().collect()),
            ("free", self.alloc.free_pages().collect()),
            ("pending", self.alloc.pending_pages().collect()),
            ("list", self.alloc.list_pages().to_vec()),
        ];
        for (name, ids) in groups {
            for id in ids {
                prop_assert!(
                    seen.insert(id),
                    "page {} counted twice (again as {})",
                    id,
                    name
                );
            }
        }
        let all: BTreeSet<PageId> = (2..self.alloc.page_count()).map(PageId::new).collect();
        prop_assert_eq!(seen, all, "pages leaked or invented");
        Ok(())
    }

    fn alloc(&mut self) -> Result<(), TestCaseError> {
        let id = self.alloc.allocate();
        prop_assert!(
            !self.in_use.contains_key(&id),
            "page {} handed out twice",
            id
        );
        for g in &self.retained {
            prop_assert!(
                !self.images[g].contains_key(&id),
                "page {} of retained image {} reused",
                id,
                g
            );
        }
        self.file.extend_to(self.alloc.page_count()).unwrap();
        let tag = self.next_tag;
        self.next_tag += 1;
        let mut page = PageBuf::new(self.file.page_size(), PageType::Overflow);
        page.set_payload(&payload(id, tag)).unwrap();
        self.file
            .write_page(id, self.alloc.generation(), &mut page)
            .unwrap();
        self.in_use.insert(id, tag);
        self.born.insert(id, self.alloc.generation());
        Ok(())
    }

    /// Frees the in-use page at position `pick` modulo the number in use.
    fn free(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.in_use.is_empty() {
            return Ok(());
        }
        let id = *self.in_use.keys().nth(pick % self.in_use.len()).unwrap();
        self.alloc.free(id).unwrap();
        self.in_use.remove(&id);
        let fresh = self.born.remove(&id) == Some(self.alloc.generation());
        if !fresh {
            self.freed_in.insert(id, self.alloc.generation());
        }
        let now = self.alloc.free_pages().any(|p| p == id);
        let pending = self.alloc.pending_pages().any(|p| p == id);
        prop_assert_eq!(
            (now, pending),
            (fresh, !fresh),
            "page {} freed (fresh: {})",
            id,
            fresh
        );
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<bool, TestCaseError> {
        self.images
            .insert(self.alloc.generation(), self.in_use.clone());
        let Ok(sb) = self.alloc.checkpoint(&self.file, None, Lsn::new(0)) else {
            self.checkpoint_failed = true;
            return Ok(false);
        };
        self.durable = sb.generation;
        self.checkpoint_failed = false;
        self.retained.push(sb.generation);
        if self.retained.len() > 2 {
            self.retained.remove(0);
        }
        // Still pending: only what was freed during this generation (and the old free-list
        // pages, which the model does not track).
        for p in self.alloc.pending_pages() {
            if let Some(g) = self.freed_in.get(&p) {
                prop_assert_eq!(*g, sb.generation, "page {} pending too long", p);
            }
        }
        let pending: BTreeSet<PageId> = self.alloc.pending_pages().collect();
        self.freed_in.retain(|p, _| pending.contains(p));
        Ok(true)
    }

    fn crash_and_reopen(&mut self, mode: u64) -> Result<(), TestCaseError> {
        self.reopen(mode, false)
    }

    /// Crashes, reopens and checks the recovered image; `rotted` says the newest superblock
    /// was destroyed, so the older retained image must come back.
    fn reopen(&mut self, mode: u64, rotted: bool) -> Result<(), TestCaseError> {
        self.vfs.crash(CrashMode::from_index(mode));
        self.file = PageFile::open(&self.vfs, Path::new(PATH), OpenOptions::default()).unwrap();
        let sb = self.file.superblock();
        if rotted {
            prop_assert_eq!(
                Some(&sb.generation),
                self.retained.first(),
                "fallback to the older image"
            );
        } else {
            prop_assert!(
                sb.generation >= self.durable,
                "acknowledged checkpoint {} lost",
                self.durable
            );
        }
        let Some(image) = self.images.get(&sb.generation).cloned() else {
            return Err(TestCaseError::fail(format!(
                "generation {} was never checkpointed",
                sb.generation
            )));
        };
        self.alloc = PageAllocator::load(&self.file).unwrap();
        for (id, tag) in &image {
            let (page, _) = self.file.read_page(*id, Some(PageType::Overflow)).unwrap();
            prop_assert_eq!(
                page.payload(),
                &payload(*id, *tag)[..],
                "page {} of the image overwritten",
                id
            );
        }
        self.in_use = image;
        self.born = self.in_use.keys().map(|id| (*id, 0)).collect();
        // After a fallback only the recovered image is known intact; otherwise the one
        // before it (if it was durable) is retained too.
        let older = sb
            .generation
            .checked_sub(1)
            .filter(|g| !rotted && !self.checkpoint_failed && self.retained.contains(g));
        self.checkpoint_failed = false;
        self.retained = older.into_iter().chain([sb.generation]).collect();
        self.durable = sb.generation;
        self.images.retain(|g, _| *g <= sb.generation);
        let mut seen: BTreeSet<PageId> = self.in_use.keys().copied().collect();
        for p in self
            .alloc
            .free_pages()
            .chain(self.alloc.pending_pages())
            .chain(self.alloc.list_pages().iter().copied())
        {
            prop_assert!(seen.insert(p), "recovered page {} both used and free", p);
        }
        prop_assert_eq!(
            seen,
            (2..sb.page_count).map(PageId::new).collect::<BTreeSet<_>>(),
            "recovered lists are not the complement of the image"
        );
        for (p, g) in &self.freed_in {
            if *g == sb.generation && !self.in_use.contains_key(p) {
                prop_assert!(
                    self.alloc.pending_pages().any(|x| x == *p),
                    "page {} freed during {} not pending",
                    p,
                    g
                );
            }
        }
        self.freed_in.clear();
        for p in self.alloc.pending_pages() {
            self.freed_in.insert(p, sb.generation);
        }
        Ok(())
    }

    fn run(&mut self, cmd: &Cmd) -> Result<(), TestCaseError> {
        match cmd {
            Cmd::Alloc => self.alloc()?,
            Cmd::Free(ix) => self.free(ix.index(usize::MAX))?,
            Cmd::Checkpoint => {
                prop_assert!(self.checkpoint()?, "checkpoint without faults failed");
            }
            Cmd::CrashInCheckpoint { nth, mode } => {
                self.vfs.inject(Fault {
                    op: FaultOp::Any,
                    nth: *nth,
                    permanent: true,
                    kind: FaultKind::PowerCut,
                });
                self.checkpoint()?;
                self.crash_and_reopen(*mode)?;
            }
            Cmd::Crash { mode } => self.crash_and_reopen(*mode)?,
            Cmd::FailCheckpoint { nth } => {
                self.vfs.inject(Fault {
                    op: FaultOp::Write,
                    nth: *nth,
                    permanent: false,
                    kind: FaultKind::Io,
                });
                self.vfs.inject(Fault {
                    op: FaultOp::Sync,
                    nth: *nth,
                    permanent: false,
                    kind: FaultKind::Io,
                });
                let before = allocator_state(&self.alloc);
                if !self.checkpoint()? {
                    // All or nothing: the failed checkpoint left the allocator as it was.
                    prop_assert_eq!(allocator_state(&self.alloc), before);
                    self.vfs.clear_faults();
                    if self.file.is_poisoned() {
                        // A failed sync: the file refuses writes for good; reopen.
                        self.crash_and_reopen(0)?;
                    } else {
                        // A failed write: the next checkpoint simply works.
                        prop_assert!(
                            self.checkpoint()?,
                            "the checkpoint after a failed write failed"
                        );
                    }
                }
                self.vfs.clear_faults();
            }
            Cmd::RotNewestSuperblock => {
                if self.retained.len() == 2 {
                    let slot = self.durable % 2;
                    self.vfs
                        .corrupt(Path::new(PATH), slot * 4096 + 100, b"rot")
                        .unwrap();
                    self.reopen(0, true)?;
                }
            }
        }
        self.check_partition()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(128)).unwrap_or(u32::MAX)))]

    #[test]
    fn allocator_matches_the_generation_model(seed in any::<u64>(), cmds in prop::collection::vec(cmd(), 1..250)) {
        let mut h = Harness::new(seed);
        for c in &cmds {
            h.run(c)?;
        }
        // Finally: one more crash of every kind must still recover the last durable image.
        h.crash_and_reopen(seed)?;
    }
}

#[test]
fn thousands_of_pages_survive_a_checkpoint_and_reopen() {
    let mut h = Harness::new(7);
    for _ in 0..3000 {
        h.alloc().unwrap();
    }
    for i in 0..1500usize {
        h.free(i * 7919).unwrap();
    }
    assert!(h.checkpoint().unwrap());
    // 1500 free ids need several chained free-list pages (506 ids per 4 KiB page).
    assert!(h.alloc.list_pages().len() >= 3, "{:?}", h.alloc.stats());
    h.crash_and_reopen(0).unwrap();
    h.check_partition().unwrap();
}
