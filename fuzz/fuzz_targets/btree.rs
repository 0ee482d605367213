//! A B+tree whose node and overflow pages hold hostile payloads behind valid checksums: the
//! input is split into up to six payloads (a type byte, a 2-byte length, the bytes), written
//! as pages 2.., with page 2 the root. Opening the tree, reading, scanning both ways, moving
//! a cursor, changing it, checking it and checkpointing it must fail cleanly or work.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lightning_btree::{BTree, Store};
use lightning_page::vfs::MemVfs;
use lightning_page::{OpenOptions, PageAllocator, PageBuf, PageFile, PageSize, PageType};

fn pages(mut data: &[u8]) -> Vec<(PageType, Vec<u8>)> {
    let mut out = Vec::new();
    while out.len() < 6 && data.len() >= 3 {
        let ty = match data[0] % 3 {
            0 => PageType::BTreeLeaf,
            1 => PageType::BTreeBranch,
            _ => PageType::Overflow,
        };
        let len = usize::from(u16::from_le_bytes([data[1], data[2]])).min(4000);
        let body = &data[3..];
        let take = len.min(body.len());
        out.push((ty, body[..take].to_vec()));
        data = &body[take..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let pages = pages(data);
    if pages.is_empty() {
        return;
    }
    let vfs = MemVfs::new();
    let path = "data.ldb".as_ref();
    {
        let Ok(file) = PageFile::create(&vfs, path, PageSize::MIN) else {
            return;
        };
        let Ok(mut alloc) = PageAllocator::load(&file) else {
            return;
        };
        let ids: Vec<_> = pages.iter().map(|_| alloc.allocate()).collect();
        if file.extend_to(alloc.page_count()).is_err() {
            return;
        }
        for (id, (ty, payload)) in ids.iter().zip(&pages) {
            let mut page = PageBuf::new(PageSize::MIN, *ty);
            if page.set_payload(payload).is_err()
                || file.write_page(*id, alloc.generation(), &mut page).is_err()
            {
                return;
            }
        }
        if alloc
            .checkpoint(&file, Some(ids[0]), lightning_page::Lsn::ZERO)
            .is_err()
        {
            return;
        }
    }
    let Ok(file) = PageFile::open(&vfs, path, OpenOptions::default()) else {
        return;
    };
    let Some(root) = file.superblock().catalog_root else {
        return;
    };
    let Ok(store) = Store::open(Arc::new(file), 16 * 4096) else {
        return;
    };
    let Ok(tree) = BTree::open(Arc::new(store), root) else {
        return;
    };
    for key in [&b""[..], b"a", b"m", b"zz"] {
        let _ = tree.get(key);
    }
    let _ = tree.iter().take(100).count();
    let _ = tree.iter().rev().take(100).count();
    let mut c = tree.cursor();
    let _ = c.seek(b"b");
    for _ in 0..4 {
        let _ = c.next();
    }
    let _ = c.prev();
    let _ = tree.check();
    let _ = tree.insert(b"k", &[1; 3000]);
    let _ = tree.insert(b"a", b"v");
    let _ = tree.remove(b"m");
    let _ = tree.check();
    let _ = tree.checkpoint(lightning_page::Lsn::new(1));
});
