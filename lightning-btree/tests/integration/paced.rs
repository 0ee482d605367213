//! A checkpoint sends its dirty pages to the disk in bounded steps: between two syncs of
//! the page file it writes at most `CHECKPOINT_SYNC_BYTES` (plus the free list's pages
//! before the superblock), so a WAL fsync never queues behind a whole image. Counted
//! through a VFS that records the bytes written between syncs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lightning_btree::CHECKPOINT_SYNC_BYTES;
use lightning_page::Lsn;
use lightning_page::vfs::{MemVfs, OpenMode, Vfs, VfsFile, VfsLock};

#[derive(Debug, Default)]
struct Tally {
    /// Bytes written since the last sync.
    unsynced: u64,
    /// The most bytes written between two syncs.
    most: u64,
    written: u64,
    syncs: u64,
}

#[derive(Debug)]
struct TallyVfs {
    inner: MemVfs,
    tally: Arc<Mutex<Tally>>,
}

#[derive(Debug)]
struct TallyFile {
    inner: Box<dyn VfsFile>,
    tally: Arc<Mutex<Tally>>,
}

impl Vfs for TallyVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(TallyFile {
            inner: self.inner.open(path, mode)?,
            tally: self.tally.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        self.inner.lock(path)
    }
}

impl VfsFile for TallyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)?;
        let mut t = self.tally.lock().unwrap();
        t.unsynced += buf.len() as u64;
        t.written += buf.len() as u64;
        t.most = t.most.max(t.unsynced);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()?;
        let mut t = self.tally.lock().unwrap();
        t.unsynced = 0;
        t.syncs += 1;
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

#[test]
fn a_checkpoint_syncs_its_pages_in_bounded_steps() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let vfs = TallyVfs {
        inner: MemVfs::new(),
        tally: tally.clone(),
    };
    // A pool larger than the data: nothing is written before the checkpoint.
    let tree = crate::tree_on(&vfs, 8192);
    let value = [7u8; 100];
    for i in 0..60_000u32 {
        tree.insert(&i.to_be_bytes(), &value).unwrap();
    }
    *tally.lock().unwrap() = Tally::default();
    let cp = tree.checkpoint(Lsn::new(1)).unwrap();
    let t = tally.lock().unwrap();
    let image = cp.dirty_pages.len() as u64 * 4096;
    // The data is several steps' worth: a single sync of it all would show here.
    assert!(
        image >= 3 * CHECKPOINT_SYNC_BYTES,
        "{image} bytes of dirty pages: too few to need steps"
    );
    assert!(t.written >= image, "{t:?}: the image was written");
    // The free list's pages (a handful for a fresh file) join the last step.
    let slack = 16 * 4096;
    assert!(
        t.most <= CHECKPOINT_SYNC_BYTES + slack,
        "{t:?}: {} bytes went to the file between two syncs (step {CHECKPOINT_SYNC_BYTES})",
        t.most
    );
    assert!(
        t.syncs >= image / CHECKPOINT_SYNC_BYTES,
        "{t:?}: one sync per step"
    );
    crate::assert_same(
        &crate::reopen_from(&vfs.inner, 8192),
        &(0..60_000u32)
            .map(|i| (i.to_be_bytes().to_vec(), value.to_vec()))
            .collect(),
    );
}
