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

/// Each checkpoint's superblock records the LSN it was given, also after a reopen.
#[test]
fn checkpoints_record_their_lsn() {
    let vfs = lightning_page::vfs::MemVfs::new();
    let t = crate::tree_on(&vfs, 16);
    for lsn in [7u64, 9, 30] {
        t.insert(&lsn.to_be_bytes(), b"v").unwrap();
        let cp = t.checkpoint(Lsn::new(lsn)).unwrap();
        assert_eq!(cp.superblock.checkpoint_lsn, Lsn::new(lsn));
        assert_eq!(t.store().file().superblock().checkpoint_lsn, Lsn::new(lsn));
    }
    drop(t);
    let t = crate::reopen_from(&vfs, 16);
    assert_eq!(t.store().file().superblock().checkpoint_lsn, Lsn::new(30));
}

/// Within a generation a page is copied once, at its first change, and changed in place
/// after that: the root moves at the first insert after a checkpoint, not at the next.
#[test]
fn a_page_is_copied_once_per_generation() {
    let t = tree_with_cache(16);
    t.insert(b"a", b"1").unwrap();
    t.checkpoint(Lsn::new(1)).unwrap();
    let durable = t.root();
    t.insert(b"b", b"2").unwrap();
    let copied = t.root();
    assert_ne!(copied, durable, "the durable root is copied, not changed");
    for k in [&b"c"[..], b"d", b"e"] {
        t.insert(k, b"3").unwrap();
        assert_eq!(t.root(), copied, "the copy changes in place");
    }
    t.remove(b"a").unwrap();
    assert_eq!(t.root(), copied, "the copy changes in place");
}

/// The file grows ahead of the allocator in steps of an eighth of its pages (16 to 4096),
/// not page by page, and only when a page past its end is handed out.
#[test]
fn the_file_grows_in_steps_of_an_eighth() {
    let t = tree_with_cache(64);
    let file = t.store().file().clone();
    let mut grew = 0;
    for i in 0..20_000u64 {
        let before = file.page_count();
        t.insert(&(i * 2_654_435_761 % 1_000_003).to_be_bytes(), &[5u8; 90])
            .unwrap();
        let after = file.page_count();
        if after != before {
            // One page past the end was handed out: the allocator has `before + 1` pages.
            let needed = before + 1;
            assert_eq!(
                after,
                needed + (needed / 8).clamp(16, 4096),
                "grew from {before}"
            );
            grew += 1;
        }
        assert!(t.store().allocator().page_count() <= after);
    }
    assert!(
        grew >= 5 && file.page_count() > 16 * 8,
        "{grew} steps to {}",
        file.page_count()
    );
}
