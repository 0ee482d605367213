//! The virtual file system every database file goes through.
//!
//! Nothing else in Lightning DB touches `std::fs` for database files: the page file, WAL
//! segments and backups all use a [`Vfs`], so the crash simulator ([`CrashVfs`]) and fault
//! injection reach every path. Three implementations:
//!
//! - [`OsVfs`]: the operating system. Positional reads and writes, `fdatasync` for
//!   [`VfsFile::sync`], and a directory fsync after every create (of a file or a
//!   directory) and rename so that the name is as durable as the data.
//! - [`MemVfs`]: in memory, for tests and ephemeral databases.
//! - [`CrashVfs`]: in memory with simulated power cuts, torn writes and injected faults.

mod crash;
mod mem;
mod os;

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

pub use crash::{CrashMode, CrashReport, CrashVfs, Fault, FaultKind, FaultOp, SECTOR};
pub use mem::MemVfs;
pub use os::OsVfs;

/// How [`Vfs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading only. Writes fail with `PermissionDenied`.
    ReadOnly,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// A new file; fails with `AlreadyExists` if the name is taken.
    CreateNew,
    /// The existing file, or a new empty one.
    OpenOrCreate,
}

impl OpenMode {
    /// Whether the mode permits writes.
    pub fn writable(self) -> bool {
        !matches!(self, OpenMode::ReadOnly)
    }
}

/// A file system: the namespace operations. Paths are used as given; `.`, the empty path
/// and roots are directories that always exist, others exist once
/// [`create_dir_all`](Vfs::create_dir_all) made them.
///
/// Durability is only promised where the calls say so: a create, rename or remove is
/// durable once its directory is synced ([`sync_dir`](Vfs::sync_dir)), a new directory once
/// its parent is. An implementation may do more (the OS one syncs directories eagerly); code
/// must not rely on it, and the crash simulator does not.
pub trait Vfs: Send + Sync + Debug {
    /// Opens or creates a file. Creating one in a directory that does not exist fails
    /// with `NotFound`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>>;
    /// Renames a file, replacing `to` if it exists; `to`'s directory must exist.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Whether a file exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The paths of the files directly in `dir`, sorted; `NotFound` if `dir` does not exist.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Creates a directory and its parents; succeeds if it exists. Each new directory is
    /// durable once its parent is synced.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the creates (of files and directories), renames and removes in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive advisory lock named by `path`, held until the returned guard is
    /// dropped; fails with `WouldBlock` while another guard holds it (in this process, or
    /// for the OS file system in any process). The OS file system creates `path` if it is
    /// missing and locks the file (`flock`); the in-memory ones keep a set of held names,
    /// which a simulated power cut empties (the holders died with the machine).
    fn lock(&self, path: &Path) -> io::Result<VfsLock>;
}

/// A held [`Vfs::lock`]: the lock is released when this is dropped.
#[derive(Debug)]
pub struct VfsLock {
    _held: Box<dyn Send + Sync + Debug>,
}

impl VfsLock {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(held: impl Send + Sync + Debug + 'static) -> Self {
        VfsLock {
            _held: Box::new(held),
        }
    }
}

/// The error of a [`Vfs::lock`] that another holder has.
pub(crate) fn lock_held(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("{} is locked by another holder", path.display()),
    )
}

/// An open file. All methods take `&self`: reads and writes are positional, so one handle
/// is shared across threads without a seek position.
pub trait VfsFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`; a read past the end fails with `UnexpectedEof`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`). After an error, the data written since
    /// the last successful sync may be lost even if a later sync succeeds.
    fn sync(&self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The directory a path lives in (`.` for a bare name), for [`Vfs::sync_dir`].
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! Behaviour every `Vfs` shares; run against each implementation.
    use super::*;

    pub(crate) fn run(vfs: &dyn Vfs, root: &Path) {
        locks(vfs, root);
        let dir = root.join("d");
        let nested = dir.join("e").join("f");
        assert!(!vfs.exists(&dir).unwrap());
        vfs.create_dir_all(&nested).unwrap();
        assert!(vfs.exists(&dir).unwrap() && vfs.exists(&dir.join("e")).unwrap());
        vfs.create_dir_all(&nested).unwrap();
        vfs.sync_dir(&nested).unwrap();
        assert!(vfs.list(&nested).unwrap().is_empty());
        let a = dir.join("a");
        assert!(!vfs.exists(&a).unwrap());
        assert_eq!(
            vfs.open(&a, OpenMode::ReadWrite).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let f = vfs.open(&a, OpenMode::CreateNew).unwrap();
        assert_eq!(
            vfs.open(&a, OpenMode::CreateNew).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(f.is_empty().unwrap());
        f.write_at(b"hello", 3).unwrap();
        assert_eq!(f.len().unwrap(), 8);
        let mut buf = [9u8; 8];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"\0\0\0hello");
        let mut past = [0u8; 4];
        assert_eq!(
            f.read_at(&mut past, 6).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        f.set_len(4).unwrap();
        assert_eq!(f.len().unwrap(), 4);
        f.set_len(6).unwrap();
        let mut buf = [9u8; 6];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"\0\0\0h\0\0");
        f.sync().unwrap();
        drop(f);

        let ro = vfs.open(&a, OpenMode::ReadOnly).unwrap();
        assert!(ro.write_at(b"x", 0).is_err());
        drop(ro);

        let b = dir.join("b");
        vfs.rename(&a, &b).unwrap();
        vfs.sync_dir(&dir).unwrap();
        assert!(!vfs.exists(&a).unwrap());
        assert_eq!(vfs.list(&dir).unwrap(), vec![b.clone()]);
        let f = vfs.open(&b, OpenMode::OpenOrCreate).unwrap();
        assert_eq!(f.len().unwrap(), 6);
        drop(f);
        vfs.remove(&b).unwrap();
        assert!(vfs.list(&dir).unwrap().is_empty());
        assert_eq!(vfs.remove(&b).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    /// What the OS and the crash simulator share, and [`MemVfs`] does not check: files
    /// live in directories that exist.
    /// One holder at a time; dropping the guard releases the lock; other names are
    /// independent.
    fn locks(vfs: &dyn Vfs, root: &Path) {
        vfs.create_dir_all(root).unwrap();
        let (a, b) = (root.join("LOCK"), root.join("OTHER"));
        let held = vfs.lock(&a).unwrap();
        let e = vfs.lock(&a).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        assert!(e.to_string().contains("LOCK"), "{e}");
        let other = vfs.lock(&b).unwrap();
        drop(held);
        let again = vfs.lock(&a).unwrap();
        drop((again, other));
    }

    pub(crate) fn missing_directories(vfs: &dyn Vfs, root: &Path) {
        let gone = root.join("nowhere");
        assert_eq!(
            vfs.open(&gone.join("x"), OpenMode::CreateNew)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound,
            "no file is created in a missing directory"
        );
        assert_eq!(vfs.list(&gone).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(vfs.sync_dir(&gone).is_err());
        vfs.create_dir_all(root).unwrap();
        let a = root.join("a");
        drop(vfs.open(&a, OpenMode::CreateNew).unwrap());
        assert_eq!(
            vfs.rename(&a, &gone.join("a")).unwrap_err().kind(),
            io::ErrorKind::NotFound,
            "no rename into a missing directory"
        );
        assert!(vfs.exists(&a).unwrap(), "a failed rename has no effect");
        vfs.remove(&a).unwrap();
    }
}
