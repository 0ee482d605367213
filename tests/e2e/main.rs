//! End-to-end suite: the stack as it exists today, on the real file system.
//!
//! As crates land this suite grows to cover them together; today it drives the page file
//! and allocator through the OS VFS and checks on-disk damage from outside the engine, and
//! (`oltp`) runs MVCC transactions whose durability step is the WAL through power cuts.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod backup;
mod chaos;
mod oltp;

use std::collections::BTreeMap;
use std::path::Path;

use lightning_page::vfs::OsVfs;
use lightning_page::{
    Error, Lsn, OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType,
};
use lightning_testkit::Rng;

fn write_tagged(file: &PageFile, alloc: &PageAllocator, id: PageId, tag: u64) {
    let mut page = PageBuf::new(file.page_size(), PageType::BTreeLeaf);
    let mut payload = tag.to_le_bytes().to_vec();
    payload.resize(
        usize::try_from(tag % 3000).unwrap() + 8,
        u8::try_from(tag % 251).unwrap(),
    );
    page.set_payload(&payload).unwrap();
    file.write_page(id, alloc.generation(), &mut page).unwrap();
}

fn check_tagged(file: &PageFile, id: PageId, tag: u64) {
    let (page, _) = file.read_page(id, Some(PageType::BTreeLeaf)).unwrap();
    assert_eq!(page.payload()[..8], tag.to_le_bytes(), "page {id}");
    assert_eq!(
        page.payload().len(),
        usize::try_from(tag % 3000).unwrap() + 8
    );
}

#[test]
fn lifecycle_on_the_os_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").join("data.ldb");
    // A leftover from a creation cut short is cleaned up, not mistaken for a database.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(dir.path().join("db/data.ldb.creating"), b"half").unwrap();

    let mut rng = Rng::new(1);
    let mut live = BTreeMap::new();
    {
        let file = PageFile::create(&OsVfs, &path, PageSize::DEFAULT).unwrap();
        let mut alloc = PageAllocator::load(&file).unwrap();
        for tag in 0..1000 {
            let id = alloc.allocate();
            file.extend_to(alloc.page_count()).unwrap();
            write_tagged(&file, &alloc, id, tag);
            live.insert(id, tag);
        }
        alloc
            .checkpoint(&file, live.keys().next().copied(), Lsn::new(100))
            .unwrap();
        let victims: Vec<PageId> = live.keys().copied().filter(|_| rng.chance(50)).collect();
        for id in &victims {
            alloc.free(*id).unwrap();
            live.remove(id);
        }
        // Copy-on-write: rewritten pages go to new pages; the old ones wait a checkpoint.
        for tag in 1000..1200 {
            let id = alloc.allocate();
            file.extend_to(alloc.page_count()).unwrap();
            write_tagged(&file, &alloc, id, tag);
            live.insert(id, tag);
        }
        alloc
            .checkpoint(&file, live.keys().next().copied(), Lsn::new(200))
            .unwrap();
    }
    assert!(!dir.path().join("db/data.ldb.creating").exists());

    let file = PageFile::open(
        &OsVfs,
        &path,
        OpenOptions {
            page_size: None,
            read_only: true,
        },
    )
    .unwrap();
    let sb = file.superblock();
    assert_eq!(
        (sb.generation, sb.checkpoint_lsn, sb.page_size),
        (2, Lsn::new(200), PageSize::DEFAULT)
    );
    for (id, tag) in &live {
        check_tagged(&file, *id, *tag);
    }
    let alloc = PageAllocator::load(&file).unwrap();
    let stats = alloc.stats();
    let used = live.len() as u64 + stats.free + stats.pending + stats.list_pages + 2;
    assert_eq!(
        used, sb.page_count,
        "every page is live, free, pending or free-list: {stats:?}"
    );
    drop(file);

    // Damage 50 random live pages on disk, one byte each: every one is reported, by name.
    let mut bytes = std::fs::read(&path).unwrap();
    let ids: Vec<PageId> = live.keys().copied().collect();
    let mut damaged = Vec::new();
    for _ in 0..50 {
        let id = ids[usize::try_from(rng.below(ids.len() as u64)).unwrap()];
        let at = usize::try_from(id.get() * 8192 + rng.below(8192)).unwrap();
        bytes[at] ^= 1 << rng.below(8);
        damaged.push(id);
    }
    std::fs::write(&path, &bytes).unwrap();
    let file = PageFile::open(&OsVfs, &path, OpenOptions::default()).unwrap();
    for id in damaged {
        match file.read_page(id, Some(PageType::BTreeLeaf)) {
            Err(Error::Corruption { file: f, page, .. }) => {
                assert_eq!((f.as_path(), page), (path.as_path(), id));
            }
            // Two flips of the same bit cancel out; then the page must be intact.
            Ok(_) => check_tagged(&file, id, live[&id]),
            Err(e) => panic!("page {id}: unexpected {e}"),
        }
    }
}

#[test]
fn a_directory_or_foreign_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = PageFile::open(&OsVfs, dir.path(), OpenOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "just some text, not a database\n".repeat(400)).unwrap();
    let e = PageFile::open(&OsVfs, Path::new(&foreign), OpenOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NoValidSuperblock { .. }), "{e}");
    assert!(e.to_string().contains("notes.txt"), "{e}");
}
