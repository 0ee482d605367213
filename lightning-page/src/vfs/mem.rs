use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::{OpenMode, Vfs, VfsFile, VfsLock, lock_held, parent_dir};

type Contents = Arc<RwLock<Vec<u8>>>;

/// An in-memory file system: every operation is immediately "durable" and nothing survives
/// the value being dropped. Cloning shares the same files. Unlike the other file systems it
/// does not check that a file's directory exists (a suite may create files without
/// creating their directory first).
#[derive(Debug, Default, Clone)]
pub struct MemVfs {
    inner: Arc<Mutex<Namespace>>,
}

#[derive(Debug, Default)]
struct Namespace {
    files: BTreeMap<PathBuf, Contents>,
    dirs: BTreeSet<PathBuf>,
    /// Names locked through [`Vfs::lock`].
    locks: BTreeSet<PathBuf>,
}

/// Releases a [`MemVfs`] lock when dropped.
#[derive(Debug)]
struct MemLock {
    inner: Arc<Mutex<Namespace>>,
    path: PathBuf,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .locks
            .remove(&self.path);
    }
}

impl Namespace {
    /// Whether `dir` exists: `.`, the empty path and roots always do.
    fn has_dir(&self, dir: &Path) -> bool {
        is_root(dir) || self.dirs.contains(dir)
    }
}

#[derive(Debug)]
struct MemFile {
    data: Contents,
    writable: bool,
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file: {}", path.display()),
    )
}

/// Whether `dir` exists without being created: `.`, the empty path, or a root (`/`).
pub(super) fn is_root(dir: &Path) -> bool {
    dir.as_os_str().is_empty() || dir == Path::new(".") || dir.parent().is_none()
}

/// The bytes of `data` a read of `buf.len()` bytes at `offset` returns, or `UnexpectedEof`
/// when they are not all there.
pub(super) fn check_read<'a>(data: &'a [u8], buf: &[u8], offset: u64) -> io::Result<&'a [u8]> {
    let start =
        usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    match start
        .checked_add(buf.len())
        .and_then(|end| data.get(start..end))
    {
        Some(bytes) => Ok(bytes),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "read past the end of the file",
        )),
    }
}

pub(super) fn apply_write(data: &mut Vec<u8>, buf: &[u8], offset: u64) -> io::Result<()> {
    let start =
        usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let end = start
        .checked_add(buf.len())
        .ok_or(io::ErrorKind::InvalidInput)?;
    if data.len() < end {
        data.resize(end, 0);
    }
    // INVARIANT: `data` was just grown to at least `end` bytes, and `start <= end`.
    data[start..end].copy_from_slice(buf);
    Ok(())
}

pub(super) fn to_len(len: u64) -> io::Result<usize> {
    usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))
}

impl MemVfs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn ns(&self) -> MutexGuard<'_, Namespace> {
        // A panic while holding the lock cannot leave the maps half-updated: every
        // mutation is a single insert or remove.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Vfs for MemVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut ns = self.ns();
        let data = match (ns.files.get(path), mode) {
            (Some(_), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            (Some(d), _) => d.clone(),
            (None, OpenMode::ReadOnly | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, OpenMode::CreateNew | OpenMode::OpenOrCreate) => {
                let d = Contents::default();
                ns.files.insert(path.to_path_buf(), d.clone());
                d
            }
        };
        Ok(Box::new(MemFile {
            data,
            writable: mode.writable(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut ns = self.ns();
        let data = ns.files.remove(from).ok_or_else(|| not_found(from))?;
        ns.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.ns()
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let ns = self.ns();
        Ok(ns.files.contains_key(path) || ns.has_dir(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .ns()
            .files
            .keys()
            .filter(|p| parent_dir(p) == dir)
            .cloned()
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut ns = self.ns();
        let mut missing = Vec::new();
        for a in dir.ancestors() {
            if ns.has_dir(a) {
                break;
            }
            if ns.files.contains_key(a) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", a.display()),
                ));
            }
            missing.push(a.to_path_buf());
        }
        ns.dirs.extend(missing);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        if !self.ns().locks.insert(path.to_path_buf()) {
            return Err(lock_held(path));
        }
        Ok(VfsLock::new(MemLock {
            inner: self.inner.clone(),
            path: path.to_path_buf(),
        }))
    }
}

impl MemFile {
    fn read_guard(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_guard(&self) -> io::Result<std::sync::RwLockWriteGuard<'_, Vec<u8>>> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file is open read-only",
            ));
        }
        Ok(self.data.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl VfsFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.read_guard();
        buf.copy_from_slice(check_read(&data, buf, offset)?);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        apply_write(&mut *self.write_guard()?, buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = to_len(len)?;
        self.write_guard()?.resize(len, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.read_guard().len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_vfs_conforms() {
        super::super::conformance::run(&MemVfs::new(), Path::new("/mem"));
    }
}
