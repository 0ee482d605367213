//! lightning-btree used directly: a [`BTree`] in a [`Store`] (buffer pool of
//! [`Setup::cache_bytes`]) over a [`PageFile`] of 8 KiB pages on the real disk ([`OsVfs`]).
//! There is no transaction: writes go straight into the tree, and a commit is
//! [`BTree::checkpoint`], which writes the dirty pages, the free list and a superblock, and
//! syncs before and after the superblock. Reads take no snapshot; every reader thread shares
//! the one tree.

use lightning_page::Lsn;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lightning_btree::{BTree, Store};
use lightning_page::vfs::OsVfs;
use lightning_page::{PageFile, PageSize};

use crate::engine::{Engine, Reader, Result, Setup, Writer};

/// A B+tree in its own page file.
pub(crate) struct LightningBtree {
    tree: Arc<BTree>,
    /// The LSN the next checkpoint records (there is no WAL here: a counter of commits).
    lsn: AtomicU64,
    cache_bytes: u64,
    /// Writers take turns (the tree itself would let them interleave).
    writer: Mutex<()>,
}

/// Writes into the shared tree.
pub(crate) struct TreeWriter<'t> {
    tree: &'t BTree,
}

/// Reads from the shared tree.
pub(crate) struct TreeReader<'t> {
    tree: &'t BTree,
}

impl Engine for LightningBtree {
    const NAME: &'static str = "lightning_btree";
    type Writer<'t> = TreeWriter<'t>;
    type Reader<'t> = TreeReader<'t>;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let file = PageFile::create(&OsVfs::new(), &dir.join("data.ldb"), PageSize::DEFAULT)?;
        let store = Store::open(Arc::new(file), setup.cache_bytes)?;
        let tree = BTree::create(Arc::new(store))?;
        tree.checkpoint(Lsn::new(1))?;
        Ok(LightningBtree {
            tree: Arc::new(tree),
            lsn: AtomicU64::new(2),
            cache_bytes: setup.cache_bytes,
            writer: Mutex::new(()),
        })
    }

    fn describe(&self) -> String {
        let stats = self.tree.store().cache_stats();
        format!(
            "lightning-btree direct (Store over PageFile on OsVfs), buffer pool {} MiB, {} KiB pages, commit = checkpoint (non-durable commit: none); pool over the round: {} misses, {} evictions",
            self.cache_bytes >> 20,
            PageSize::DEFAULT.bytes() >> 10,
            stats.misses,
            stats.evictions
        )
    }

    fn write_with<R>(
        &self,
        durable: bool,
        mut f: impl FnMut(&mut TreeWriter<'_>) -> Result<R>,
    ) -> Result<R> {
        // One writer at a time, as a transaction would be.
        let _writer = self.writer.lock().map_err(|_| "writer lock poisoned")?;
        let out = f(&mut TreeWriter { tree: &self.tree })?;
        if durable {
            self.tree
                .checkpoint(Lsn::new(self.lsn.fetch_add(1, Ordering::Relaxed)))?;
        }
        Ok(out)
    }

    fn read<R>(&self, f: impl FnOnce(&mut TreeReader<'_>) -> Result<R>) -> Result<R> {
        f(&mut TreeReader { tree: &self.tree })
    }
}

impl Writer for TreeWriter<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key)?)
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.tree.insert(key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.tree.remove(key)?)
    }
}

impl Reader for TreeReader<'_> {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.tree.get_with(key, f)?)
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        // Entries borrowed from their leaf, nothing copied.
        let mut seen = 0;
        self.tree.scan_with(start.., |k, v| {
            f(k, v);
            seen += 1;
            if seen == n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(seen)
    }
}
