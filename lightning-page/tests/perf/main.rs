//! Perf suite of lightning-page (opt-in: `cargo nextest run --profile perf`).
//!
//! Scale tests: behaviour at sizes too large for every CI run. They assert correctness at
//! scale, never timings; figures come from `cargo bench -p lightning-page --bench page_io`.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use lightning_page::vfs::OsVfs;
use lightning_page::{OpenOptions, PageAllocator, PageFile, PageSize};

/// A million-page file (sparse on disk) with half its pages free: the free list spans about
/// a thousand chained pages and reloads exactly.
#[test]
fn million_page_free_list_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.ldb");
    let file = PageFile::create(&OsVfs, &path, PageSize::MIN).unwrap();
    let mut alloc = PageAllocator::load(&file).unwrap();
    let ids: Vec<_> = (0..1_000_000).map(|_| alloc.allocate()).collect();
    for id in ids.iter().step_by(2) {
        alloc.free(*id).unwrap();
    }
    file.extend_to(alloc.page_count()).unwrap();
    let sb = alloc
        .checkpoint(&file, None, lightning_page::Lsn::new(1))
        .unwrap();
    let before = alloc.stats();
    assert!(before.list_pages >= 980, "{before:?}");
    assert_eq!(before.free + before.list_pages, 500_000);
    drop(file);

    let file = PageFile::open(&OsVfs, &path, OpenOptions::default()).unwrap();
    assert_eq!(file.superblock(), sb);
    let loaded = PageAllocator::load(&file).unwrap();
    assert_eq!(
        loaded.free_pages().collect::<Vec<_>>(),
        alloc.free_pages().collect::<Vec<_>>()
    );
    assert_eq!(loaded.list_pages(), alloc.list_pages());
}
