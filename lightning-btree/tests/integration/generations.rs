//! Pages carry the generation that wrote them, whoever writes them (an eviction between
//! checkpoints or the checkpoint's flush): what incremental backups ("pages changed since
//! generation g") will rely on.

use std::collections::BTreeSet;

use lightning_page::{Lsn, PageId};

use crate::tree_with_cache;

#[test]
fn written_pages_carry_the_generation_of_the_checkpoint_that_holds_them() {
    // A pool of 12 frames: most pages are written by evictions before the checkpoint.
    let t = tree_with_cache(12);
    let value = [7u8; 100];
    for round in 1..=3u64 {
        for i in 0..2000u64 {
            let key = (i * 7919 % 2000 + round * 10_000).to_be_bytes();
            t.insert(&key, &value).unwrap();
        }
        let cp = t.checkpoint(Lsn::new(round)).unwrap();
        let generation = cp.superblock.generation;
        let file = t.store().file();
        assert!(!cp.dirty_pages.is_empty());
        for id in &cp.dirty_pages {
            let (_, header) = file.read_page(*id, None).unwrap();
            assert_eq!(
                header.generation, generation,
                "page {id} written by checkpoint"
            );
        }
        // Every page in use was written in some generation of this file, none later than
        // the checkpoint that holds it; this round's changes are in this generation.
        let alloc = t.store().allocator();
        let not_in_use: BTreeSet<PageId> = alloc
            .free_pages()
            .chain(alloc.pending_pages())
            .chain(alloc.list_pages().iter().copied())
            .collect();
        let mut this_round = 0;
        for raw in 2..cp.superblock.page_count {
            let id = PageId::new(raw);
            if not_in_use.contains(&id) {
                continue;
            }
            let (_, header) = file.read_page(id, None).unwrap();
            assert!(
                (1..=generation).contains(&header.generation),
                "page {id}: generation {} in image {generation}",
                header.generation
            );
            this_round += u64::from(header.generation == generation);
        }
        assert!(
            this_round > 0,
            "this round's changes are in generation {generation}"
        );
    }
}

/// The store says which generation it is writing (one past the durable checkpoint's), in
/// `generation()` and in its `Debug` output, and its cache figures count what reads did.
#[test]
fn the_store_reports_its_generation_and_its_cache() {
    let t = tree_with_cache(12);
    let s = t.store();
    assert_eq!(s.generation(), 1);
    assert!(format!("{s:?}").contains("generation: 1"), "{s:?}");
    t.insert(b"k", b"v").unwrap();
    for (lsn, generation) in [(1, 2), (2, 3)] {
        let cp = t.checkpoint(Lsn::new(lsn)).unwrap();
        assert_eq!(cp.superblock.generation + 1, generation);
        assert_eq!(s.generation(), generation);
    }
    assert!(format!("{s:?}").contains("generation: 3"), "{s:?}");
    let before = s.cache_stats();
    for _ in 0..10 {
        assert_eq!(t.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
    let after = s.cache_stats();
    assert!(after.hits >= before.hits + 10, "{before:?} -> {after:?}");
    assert_eq!(after.frames, 12);
}
