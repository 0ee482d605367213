//! Checkpoints do not block the tree: while a checkpoint waits inside its fsync, readers
//! and writers finish their operations. Counted, not timed: the sync is held by a gate
//! that only the test opens, after its operations completed.

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lightning_page::vfs::{MemVfs, OpenMode, Vfs, VfsFile};

use crate::{assert_same, tree_on};

/// Holds every sync while closed.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// Syncs waiting at the gate now.
    waiting: u32,
    /// Whether a waiting sync gave up on the test (it would otherwise hang forever when
    /// the tree blocks the test's operations behind the checkpoint).
    gave_up: bool,
}

/// How long a held sync waits before giving up: only a deadlock breaker, never reached
/// when checkpoints do not block.
const GIVE_UP: Duration = Duration::from_secs(20);

impl Gate {
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        if !s.closed {
            return;
        }
        s.waiting += 1;
        self.changed.notify_all();
        while s.closed {
            let (next, timeout) = self.changed.wait_timeout(s, GIVE_UP).unwrap();
            s = next;
            if timeout.timed_out() && s.closed {
                s.gave_up = true;
                s.closed = false;
            }
        }
        s.waiting -= 1;
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
    }

    /// Waits until a sync is held at the gate.
    fn wait_for_sync(&self) {
        let mut s = self.state.lock().unwrap();
        while s.waiting == 0 && !s.gave_up {
            s = self.changed.wait(s).unwrap();
        }
    }

    /// Whether a sync is still held (it has not given up).
    fn holding(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.waiting > 0 && s.closed
    }

    fn open(&self) {
        self.state.lock().unwrap().closed = false;
        self.changed.notify_all();
    }
}

#[derive(Debug)]
struct GateVfs {
    inner: MemVfs,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GateFile {
    inner: Box<dyn VfsFile>,
    gate: Arc<Gate>,
}

impl Vfs for GateVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(GateFile {
            inner: self.inner.open(path, mode)?,
            gate: self.gate.clone(),
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
    fn lock(&self, path: &Path) -> io::Result<lightning_page::vfs::VfsLock> {
        self.inner.lock(path)
    }
}

impl VfsFile for GateFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

#[test]
fn readers_and_writers_finish_while_a_checkpoint_waits_in_its_sync() {
    let gate = Arc::new(Gate::default());
    let vfs = GateVfs {
        inner: MemVfs::new(),
        gate: gate.clone(),
    };
    // A pool smaller than the data: operations during the checkpoint also evict.
    let tree = Arc::new(tree_on(&vfs, 48));
    let mut model = BTreeMap::new();
    for i in 0..3000 {
        let v = format!("value {i}").into_bytes();
        tree.insert(&key(i), &v).unwrap();
        model.insert(key(i), v);
    }
    tree.checkpoint(Lsn::new(1)).unwrap();
    // Dirty pages for the next checkpoint to write.
    for i in (0..3000).step_by(3) {
        let v = format!("second {i}").into_bytes();
        tree.insert(&key(i), &v).unwrap();
        model.insert(key(i), v);
    }
    let image = model.clone();
    gate.close();
    let checkpointer = {
        let tree = tree.clone();
        std::thread::spawn(move || tree.checkpoint(Lsn::new(2)))
    };
    gate.wait_for_sync();
    let mut done = 0u32;
    for i in 0..500u32 {
        let k = key(i * 7 % 3000);
        assert_eq!(tree.get(&k).unwrap(), model.get(&k).cloned());
        let (k, v) = (key(3000 + i), format!("during {i}").into_bytes());
        tree.insert(&k, &v).unwrap();
        model.insert(k, v);
        if i % 5 == 0 {
            let k = key(i * 3);
            assert!(tree.remove(&k).unwrap());
            model.remove(&k);
        }
        done += 1;
    }
    let held = gate.holding();
    gate.open();
    let cp = checkpointer.join().unwrap().unwrap();
    assert!(
        held,
        "the checkpoint's sync gave up waiting: the {done} operations could not finish while it was held"
    );
    assert_eq!(done, 500);
    assert!(!cp.dirty_pages.is_empty());
    assert_same(&tree, &model);
    // The checkpoint recorded the tree as it was at its switch, not what came during it.
    let back = crate::reopen_from(&vfs.inner, 64);
    assert_same(&back, &image);
}
