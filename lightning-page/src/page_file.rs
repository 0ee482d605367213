//! The page file: fixed-size pages over a [`VfsFile`], with the superblock pair.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::page::{HEADER_LEN, Mismatch, PageBuf, PageHeader, PageId, PageSize, PageType};
use crate::superblock::{FORMAT_VERSION, Superblock};
use crate::vfs::{OpenMode, Vfs, VfsFile, parent_dir};
use crate::{Error, Result};

/// How to open an existing page file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// The page size the caller expects; `None` accepts whatever the file has.
    pub page_size: Option<PageSize>,
    /// Open for reading only.
    pub read_only: bool,
}

/// A file of fixed-size, checksummed pages whose pages 0 and 1 are the superblocks.
///
/// Reads verify every page (checksum, page id, type, length) and report damage as
/// [`Error::Corruption`] naming the file and page. After a failed sync the file is
/// *poisoned*: every later write and sync returns [`Error::Poisoned`], because a retried
/// fsync can report success for data that was lost.
///
/// ```
/// use lightning_page::{PageBuf, PageFile, PageId, PageSize, PageType, vfs::MemVfs};
///
/// let file = PageFile::create(&MemVfs::new(), "db/data.ldb".as_ref(), PageSize::MIN)?;
/// file.extend_to(3)?;
/// let mut page = PageBuf::new(file.page_size(), PageType::Overflow);
/// page.set_payload(b"hello")?;
/// file.write_page(PageId::new(2), 1, &mut page)?;
/// let (back, header) = file.read_page(PageId::new(2), Some(PageType::Overflow))?;
/// assert_eq!((back.payload(), header.generation), (&b"hello"[..], 1));
/// # Ok::<(), lightning_page::Error>(())
/// ```
#[derive(Debug)]
pub struct PageFile {
    path: PathBuf,
    file: Box<dyn VfsFile>,
    page_size: PageSize,
    page_count: AtomicU64,
    superblock: Mutex<Superblock>,
    poisoned: Mutex<Option<String>>,
    read_only: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are replaced whole, never left half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PageFile {
    /// Creates a page file holding only its initial superblock (generation 0).
    ///
    /// The file is built under a temporary name, synced, and renamed into place, so a
    /// power cut during creation leaves either no file or a complete one.
    pub fn create(vfs: &dyn Vfs, path: &Path, page_size: PageSize) -> Result<Self> {
        if vfs
            .exists(path)
            .map_err(|e| Error::io("check for", path, e))?
        {
            let e =
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a file is already there");
            return Err(Error::io("create page file", path, e));
        }
        let dir = parent_dir(path);
        vfs.create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".creating");
        let tmp = PathBuf::from(tmp);
        if vfs
            .exists(&tmp)
            .map_err(|e| Error::io("check for", &tmp, e))?
        {
            vfs.remove(&tmp)
                .map_err(|e| Error::io("remove stale", &tmp, e))?;
        }
        let file = vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let sb = Superblock::initial(page_size);
        let mut page = sb.to_page()?;
        file.write_at(page.seal(sb.slot(), sb.generation), 0)
            .map_err(|e| Error::io("write superblock of", &tmp, e))?;
        file.set_len(2 * u64::from(page_size.bytes()))
            .map_err(|e| Error::io("size", &tmp, e))?;
        file.sync().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(file);
        vfs.rename(&tmp, path)
            .map_err(|e| Error::io("rename into place", &tmp, e))?;
        vfs.sync_dir(&dir)
            .map_err(|e| Error::io("sync directory", &dir, e))?;
        tracing::info!(path = %path.display(), page_size = page_size.bytes(), "created page file");
        Self::open(
            vfs,
            path,
            OpenOptions {
                page_size: Some(page_size),
                read_only: false,
            },
        )
    }

    /// Opens an existing page file and picks its newest valid superblock.
    pub fn open(vfs: &dyn Vfs, path: &Path, opts: OpenOptions) -> Result<Self> {
        let mode = if opts.read_only {
            OpenMode::ReadOnly
        } else {
            OpenMode::ReadWrite
        };
        let file = vfs
            .open(path, mode)
            .map_err(|e| Error::io("open page file", path, e))?;
        let len = file
            .len()
            .map_err(|e| Error::io("read the length of", path, e))?;
        let (sb, version) = read_superblocks(&*file, path, len)?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedFormatVersion {
                file: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if let Some(expected) = opts.page_size
            && expected != sb.page_size
        {
            return Err(Error::PageSizeMismatch {
                file: path.to_path_buf(),
                expected: expected.bytes(),
                found: sb.page_size.bytes(),
            });
        }
        let ps = u64::from(sb.page_size.bytes());
        if len % ps != 0 {
            tracing::warn!(path = %path.display(), len, page_size = ps, "page file length is not a whole number of pages; ignoring the partial page at the end");
        }
        let page_count = len / ps;
        if page_count < sb.page_count {
            return Err(Error::Corruption {
                file: path.to_path_buf(),
                page: PageId::new(page_count),
                what: "file shorter than its checkpoint (truncated)",
                expected: format!("{} pages", sb.page_count),
                found: format!("{page_count} pages"),
            });
        }
        tracing::debug!(path = %path.display(), generation = sb.generation, page_count, "opened page file");
        Ok(PageFile {
            path: path.to_path_buf(),
            file,
            page_size: sb.page_size,
            page_count: AtomicU64::new(page_count),
            superblock: Mutex::new(sb),
            poisoned: Mutex::new(None),
            read_only: opts.read_only,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page size.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Pages in the file, including the two superblocks.
    pub fn page_count(&self) -> u64 {
        self.page_count.load(Ordering::Acquire)
    }

    /// The newest durable superblock.
    pub fn superblock(&self) -> Superblock {
        *lock(&self.superblock)
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly {
                file: self.path.clone(),
            });
        }
        if let Some(cause) = lock(&self.poisoned).clone() {
            return Err(Error::Poisoned {
                file: self.path.clone(),
                cause,
            });
        }
        Ok(())
    }

    fn check_bounds(&self, id: PageId) -> Result<()> {
        let page_count = self.page_count();
        if id.get() >= page_count {
            return Err(Error::PageOutOfBounds {
                file: self.path.clone(),
                page: id,
                page_count,
            });
        }
        Ok(())
    }

    /// Reads and verifies page `id`; with `expected`, a page of another type is corruption.
    pub fn read_page(
        &self,
        id: PageId,
        expected: Option<PageType>,
    ) -> Result<(PageBuf, PageHeader)> {
        self.check_bounds(id)?;
        let mut buf = vec![0u8; self.page_size.len()].into_boxed_slice();
        self.file
            .read_at(&mut buf, self.page_size.offset_of(id))
            .map_err(|e| Error::io(format!("read page {id} of"), &self.path, e))?;
        PageBuf::from_disk(buf, &self.path, id, expected)
    }

    /// Reads the `count` consecutive pages from `first` into `buf` (resized to hold them) in
    /// one read and verifies each (checksum, own id; pages 0 and 1 must be superblocks),
    /// returning their headers in order. For sequential copies (backups): one system call
    /// per run instead of one per page.
    pub fn read_pages(
        &self,
        first: PageId,
        count: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<PageHeader>> {
        let ps = self.page_size.len();
        buf.clear();
        if count == 0 {
            return Ok(Vec::new());
        }
        self.check_bounds(PageId::new(first.get().saturating_add(count - 1)))?;
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(ps))
            .ok_or_else(|| Error::PageOutOfBounds {
                file: self.path.clone(),
                page: PageId::new(first.get().saturating_add(count - 1)),
                page_count: self.page_count(),
            })?;
        buf.resize(len, 0);
        self.file
            .read_at(buf, self.page_size.offset_of(first))
            .map_err(|e| {
                Error::io(
                    format!("read pages {first}..{} of", first.get() + count),
                    &self.path,
                    e,
                )
            })?;
        buf.chunks_exact(ps)
            .enumerate()
            .map(|(i, page)| {
                let id = PageId::new(first.get() + i as u64);
                let expected = (id.get() < 2).then_some(PageType::Superblock);
                PageBuf::verify(page, &self.path, id, expected)
            })
            .collect()
    }

    /// Stamps `page` with `id`, `generation` and its checksum, and writes it.
    ///
    /// Pages 0 and 1 are refused: superblocks change only through
    /// [`commit_superblock`](Self::commit_superblock).
    pub fn write_page(&self, id: PageId, generation: u64, page: &mut PageBuf) -> Result<()> {
        self.check_writable()?;
        self.check_bounds(id)?;
        if id.get() < 2 {
            return Err(Error::ReservedPage { page: id });
        }
        if page.size() != self.page_size.len() {
            return Err(Error::PayloadTooLarge {
                len: page.size(),
                max: self.page_size.len(),
            });
        }
        let bytes = page.seal(id, generation);
        self.file
            .write_at(bytes, self.page_size.offset_of(id))
            .map_err(|e| Error::io(format!("write page {id} of"), &self.path, e))
    }

    /// Grows the file to at least `page_count` pages (new pages read as never written).
    pub fn extend_to(&self, page_count: u64) -> Result<()> {
        self.check_writable()?;
        if page_count <= self.page_count() {
            return Ok(());
        }
        let len = page_count
            .checked_mul(u64::from(self.page_size.bytes()))
            .ok_or_else(|| Error::PageOutOfBounds {
                file: self.path.clone(),
                page: PageId::new(page_count),
                page_count: self.page_count(),
            })?;
        self.file
            .set_len(len)
            .map_err(|e| Error::io(format!("extend to {page_count} pages"), &self.path, e))?;
        self.page_count.fetch_max(page_count, Ordering::AcqRel);
        Ok(())
    }

    /// Cuts the file to `page_count` pages, giving the space back; never below the page
    /// count of the durable superblock (the older retained image's pages beyond it must be
    /// free in both images: the caller's rule).
    pub fn shrink_to(&self, page_count: u64) -> Result<()> {
        self.check_writable()?;
        let page_count = page_count.max(self.superblock().page_count).max(2);
        if page_count >= self.page_count() {
            return Ok(());
        }
        let len = page_count * u64::from(self.page_size.bytes());
        self.file
            .set_len(len)
            .map_err(|e| Error::io(format!("cut to {page_count} pages"), &self.path, e))?;
        self.page_count.store(page_count, Ordering::Release);
        Ok(())
    }

    /// Whether a failed sync has poisoned the file (every later write and sync fails).
    pub fn is_poisoned(&self) -> bool {
        lock(&self.poisoned).is_some()
    }

    /// Makes every page written so far durable. A failure poisons the file.
    pub fn sync(&self) -> Result<()> {
        self.check_writable()?;
        self.file.sync().map_err(|e| {
            tracing::error!(path = %self.path.display(), error = %e, "page file sync failed; refusing further writes");
            *lock(&self.poisoned) = Some(e.to_string());
            Error::io("sync", &self.path, e)
        })
    }

    /// Durably installs the superblock of the next checkpoint.
    ///
    /// Syncs the pages written so far, writes `sb` to its slot (page `generation % 2`, so the
    /// previous superblock stays intact), and syncs again. `sb.generation` must be the
    /// current generation plus one. On any failure the previous superblock remains the
    /// durable one. A failed sync poisons the file; a failed superblock write does not: the
    /// slot it may have torn holds no durable superblock, and the next attempt (the same
    /// generation) rewrites that slot whole.
    pub fn commit_superblock(&self, sb: Superblock) -> Result<()> {
        self.check_writable()?;
        let current = self.superblock();
        if current.generation.checked_add(1) != Some(sb.generation) {
            return Err(Error::GenerationOutOfOrder {
                current: current.generation,
                given: sb.generation,
            });
        }
        if sb.page_size != self.page_size {
            return Err(Error::PageSizeMismatch {
                file: self.path.clone(),
                expected: self.page_size.bytes(),
                found: sb.page_size.bytes(),
            });
        }
        if sb.page_count > self.page_count() {
            return Err(Error::PageOutOfBounds {
                file: self.path.clone(),
                page: PageId::new(sb.page_count - 1),
                page_count: self.page_count(),
            });
        }
        let slot = sb.slot();
        let mut page = sb.to_page()?;
        // Refuse what would not read back: a superblock that fails its own checks would
        // make open fall back to the older one after its pages had been reused.
        if let Err(m) = Superblock::decode(page.payload()) {
            return Err(Error::InvalidSuperblock {
                what: m.to_string(),
            });
        }
        self.sync()?;
        self.file
            .write_at(
                page.seal(slot, sb.generation),
                self.page_size.offset_of(slot),
            )
            .map_err(|e| Error::io(format!("write superblock {slot} of"), &self.path, e))?;
        self.sync()?;
        *lock(&self.superblock) = sb;
        tracing::debug!(path = %self.path.display(), generation = sb.generation, "superblock committed");
        Ok(())
    }
}

/// Reads both superblock slots and returns the newest valid one with its format version.
/// Why one superblock slot was rejected; an I/O error is not a rejection but an error.
type Slot = std::result::Result<(Superblock, u32), String>;

/// Reads both superblock slots and returns the newest valid one with its format version.
///
/// Falling back to the older slot when the newer one is damaged is safe because the
/// allocator keeps both retained images intact (ADR 004). A failed read is an error, never a
/// reason to fall back: a transient fault must not roll the database back a checkpoint.
fn read_superblocks(file: &dyn VfsFile, path: &Path, len: u64) -> Result<(Superblock, u32)> {
    let slot0 = read_slot0(file, path, len)?;
    let candidates: Vec<PageSize> = match &slot0 {
        Ok((sb, _)) => vec![sb.page_size],
        Err(_) => PageSize::ALL.to_vec(),
    };
    // Report the most telling failure: one where a whole page could be read, if any.
    let mut slot1 = Err(String::from("no page size gives a valid page 1"));
    let mut telling = false;
    for ps in candidates {
        match read_slot(file, path, len, PageId::new(1), ps)? {
            Ok(found) => {
                slot1 = Ok(found);
                break;
            }
            Err(why) if !telling => {
                telling = !why.contains("too short");
                slot1 = Err(format!("with {ps}-byte pages: {why}"));
            }
            Err(_) => {}
        }
    }
    match (slot0, slot1) {
        (Ok(a), Ok(b)) => Ok(if b.0.generation > a.0.generation {
            b
        } else {
            a
        }),
        (Ok(a), Err(why)) => {
            tracing::warn!(path = %path.display(), why, "superblock in page 1 is invalid; using page 0");
            Ok(a)
        }
        (Err(why), Ok(b)) => {
            tracing::warn!(path = %path.display(), why, "superblock in page 0 is invalid; using page 1");
            Ok(b)
        }
        (Err(slot0), Err(slot1)) => Err(Error::NoValidSuperblock {
            file: path.to_path_buf(),
            slot0,
            slot1,
        }),
    }
}

fn read_slot0(file: &dyn VfsFile, path: &Path, len: u64) -> Result<Slot> {
    let min = PageSize::MIN.len();
    if len < min as u64 {
        return Ok(Err(format!("file is {len} bytes, shorter than one page")));
    }
    let mut head = vec![0u8; min];
    file.read_at(&mut head, 0)
        .map_err(|e| Error::io("read superblock 0 of", path, e))?;
    match Superblock::decode(head.get(HEADER_LEN..).unwrap_or_default()) {
        Ok((sb, _)) => read_slot(file, path, len, PageId::new(0), sb.page_size),
        Err(m) => Ok(Err(m.to_string())),
    }
}

fn read_slot(
    file: &dyn VfsFile,
    path: &Path,
    len: u64,
    slot: PageId,
    ps: PageSize,
) -> Result<Slot> {
    let offset = ps.offset_of(slot);
    if len < offset + u64::from(ps.bytes()) {
        return Ok(Err(format!(
            "file is {len} bytes, too short for page {slot} of {ps} bytes"
        )));
    }
    let mut buf = vec![0u8; ps.len()];
    file.read_at(&mut buf, offset)
        .map_err(|e| Error::io(format!("read superblock {slot} of"), path, e))?;
    Ok(check_slot(&buf, slot, ps))
}

fn check_slot(buf: &[u8], slot: PageId, ps: PageSize) -> Slot {
    let header = PageHeader::decode_verified(buf, slot, Some(PageType::Superblock))
        .map_err(|m| m.to_string())?;
    let payload = buf
        .get(HEADER_LEN..HEADER_LEN + header.payload_len as usize)
        .unwrap_or_default();
    let (sb, version) = Superblock::decode(payload).map_err(|m| m.to_string())?;
    if sb.page_size != ps {
        return Err(Mismatch::new(
            "superblock page size differs from its position",
            ps,
            sb.page_size,
        )
        .to_string());
    }
    if sb.slot() != slot || header.generation != sb.generation {
        return Err(Mismatch::new(
            "superblock generation in the wrong slot",
            slot,
            sb.generation,
        )
        .to_string());
    }
    Ok((sb, version))
}

#[cfg(test)]
mod tests {
    use super::check_slot;
    use crate::{Lsn, PageId, PageSize, Superblock};

    /// A superblock is valid only in the slot its generation names and only under a page
    /// header of its own generation: either mismatch alone is refused.
    #[test]
    fn a_superblock_must_sit_in_its_own_slot_under_its_own_generation() {
        let ps = PageSize::MIN;
        let sb = Superblock {
            generation: 2,
            checkpoint_lsn: Lsn::new(5),
            page_count: 4,
            ..Superblock::initial(ps)
        };
        let page = sb.to_page().unwrap();
        let sealed = |slot: u64, generation: u64| page.sealed_bytes(PageId::new(slot), generation);
        assert_eq!(check_slot(&sealed(0, 2), PageId::new(0), ps).unwrap().0, sb);
        let wrong_slot = check_slot(&sealed(1, 2), PageId::new(1), ps).unwrap_err();
        assert!(wrong_slot.contains("wrong slot"), "{wrong_slot}");
        let wrong_generation = check_slot(&sealed(0, 4), PageId::new(0), ps).unwrap_err();
        assert!(
            wrong_generation.contains("wrong slot"),
            "{wrong_generation}"
        );
    }
}
