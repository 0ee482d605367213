//! Model test of the allocator against a reference, across simulated power cuts.
//!
//! The reference is what the generation rules promise: a page in the newest durable
//! checkpoint's image is never handed out again before a newer checkpoint is durable, and
//! after any power cut the reopened file holds exactly one durable image, whose pages are
//! intact and whose free list is exactly the complement of the pages it uses.

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
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        10 => Just(Cmd::Alloc),
        6 => any::<prop::sample::Index>().prop_map(Cmd::Free),
        2 => Just(Cmd::Checkpoint),
        1 => (0u64..12, any::<u64>()).prop_map(|(nth, mode)| Cmd::CrashInCheckpoint { nth, mode }),
        1 => any::<u64>().prop_map(|mode| Cmd::Crash { mode }),
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
    next_tag: u64,
}

fn payload(id: PageId, tag: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.get().to_le_bytes());
    b[8..].copy_from_slice(&tag.to_le_bytes());
    b
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
        let durable_image = &self.images[&self.durable];
        prop_assert!(
            !durable_image.contains_key(&id),
            "page {} of the durable image reused",
            id
        );
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
        match self.alloc.checkpoint(&self.file, None, 0) {
            Ok(sb) => {
                self.durable = sb.generation;
                prop_assert_eq!(self.alloc.pending_pages().count(), 0);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn crash_and_reopen(&mut self, mode: u64) -> Result<(), TestCaseError> {
        self.vfs.crash(CrashMode::from_index(mode));
        self.file = PageFile::open(&self.vfs, Path::new(PATH), OpenOptions::default()).unwrap();
        let sb = self.file.superblock();
        prop_assert!(
            sb.generation >= self.durable,
            "acknowledged checkpoint {} lost",
            self.durable
        );
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
        self.durable = sb.generation;
        self.images.retain(|g, _| *g <= sb.generation);
        let free: BTreeSet<PageId> = self.alloc.free_pages().collect();
        let listed: BTreeSet<PageId> = self.alloc.list_pages().iter().copied().collect();
        let expected: BTreeSet<PageId> = (2..sb.page_count)
            .map(PageId::new)
            .filter(|p| !self.in_use.contains_key(p) && !listed.contains(p))
            .collect();
        prop_assert_eq!(
            free,
            expected,
            "recovered free list is not the complement of the image"
        );
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
