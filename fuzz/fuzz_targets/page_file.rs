//! A whole page file of hostile bytes: opening it (superblocks), loading the allocator (free
//! list) and reading pages must fail cleanly or work, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_page::vfs::{MemVfs, OpenMode, Vfs};
use lightning_page::{OpenOptions, PageAllocator, PageFile, PageId};

fuzz_target!(|data: &[u8]| {
    let vfs = MemVfs::new();
    let path = std::path::Path::new("data.ldb");
    let Ok(f) = vfs.open(path, OpenMode::CreateNew) else {
        return;
    };
    if f.write_at(data, 0).is_err() {
        return;
    }
    if let Ok(file) = PageFile::open(&vfs, path, OpenOptions::default()) {
        let _ = PageAllocator::load(&file);
        for id in 0..file.page_count().min(64) {
            let _ = file.read_page(PageId::new(id), None);
        }
    }
});
