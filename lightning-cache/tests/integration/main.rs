//! Integration suite of lightning-cache.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod model;
mod pool;
mod stress;

use std::sync::Arc;

use lightning_cache::{BufferPool, FixedGeneration, WriteBack};
use lightning_page::vfs::{CrashVfs, MemVfs, Vfs};
use lightning_page::{PageFile, PageSize};

pub(crate) const PS: PageSize = PageSize::MIN;

pub(crate) fn file(vfs: &dyn Vfs, pages: u64) -> Arc<PageFile> {
    let f = PageFile::create(vfs, "data.ldb".as_ref(), PS).unwrap();
    f.extend_to(pages).unwrap();
    Arc::new(f)
}

pub(crate) fn pool(frames: u64, pages: u64) -> BufferPool {
    BufferPool::new(
        file(&MemVfs::new(), pages),
        frames * u64::from(PS.bytes()),
        Arc::new(FixedGeneration(1)),
    )
    .unwrap()
}

pub(crate) fn pool_on(
    vfs: &CrashVfs,
    frames: u64,
    pages: u64,
    hook: Arc<dyn WriteBack>,
) -> BufferPool {
    BufferPool::new(file(vfs, pages), frames * u64::from(PS.bytes()), hook).unwrap()
}
