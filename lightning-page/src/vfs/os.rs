use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{OpenMode, Vfs, VfsFile, VfsLock, lock_held, parent_dir};

/// The operating system's file system.
///
/// `sync` is `fdatasync`; creating or renaming a file also fsyncs its directory, so a file
/// that [`Vfs::open`] created is durably named by the time it returns, and
/// [`Vfs::create_dir_all`] fsyncs the parent of every directory it creates, so a new
/// directory is as durable as the files later created in it.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

impl OsVfs {
    /// The OS file system.
    pub fn new() -> Self {
        OsVfs
    }
}

#[derive(Debug)]
struct OsFile {
    file: File,
    path: PathBuf,
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        #[expect(
            clippy::disallowed_methods,
            reason = "this is the VFS seam the lint routes to"
        )]
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory fsync; NTFS journals metadata.
        let _ = dir;
        Ok(())
    }
}

impl Vfs for OsVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        let created = match mode {
            OpenMode::ReadOnly => false,
            OpenMode::ReadWrite => {
                opts.write(true);
                false
            }
            OpenMode::CreateNew => {
                opts.write(true).create_new(true);
                true
            }
            OpenMode::OpenOrCreate => {
                opts.write(true);
                match fs::metadata(path) {
                    Ok(_) => false,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        opts.create(true);
                        true
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let file = opts.open(path)?;
        if created {
            fsync_dir(&parent_dir(path))?;
        }
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)?;
        let (a, b) = (parent_dir(from), parent_dir(to));
        fsync_dir(&b)?;
        if a != b {
            fsync_dir(&a)?;
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                out.push(dir.join(entry.file_name()));
            }
        }
        out.sort();
        Ok(out)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // The directories that do not exist yet, innermost first.
        let mut missing = Vec::new();
        for a in dir.ancestors() {
            if a.as_os_str().is_empty() {
                break;
            }
            match fs::metadata(a) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(a),
                Err(e) => return Err(e),
            }
        }
        fs::create_dir_all(dir)?;
        // A new directory's name lives in its parent: fsync each parent, outermost first,
        // or a power cut can lose the directory and everything later made durable in it.
        for created in missing.iter().rev() {
            fsync_dir(&parent_dir(created))?;
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fsync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(VfsLock::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(lock_held(path)),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl VfsFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_write(
                    &self.file,
                    &buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn sync(&self) -> io::Result<()> {
        #[expect(
            clippy::disallowed_methods,
            reason = "this is the VFS seam the lint routes to"
        )]
        let r = self.file.sync_data();
        if let Err(e) = &r {
            tracing::error!(path = %self.path.display(), error = %e, "fdatasync failed");
        }
        r
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_vfs_conforms() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::run(&OsVfs, dir.path());
        super::super::conformance::missing_directories(&OsVfs, &dir.path().join("m"));
    }
}
