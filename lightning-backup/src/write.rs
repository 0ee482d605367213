//! Taking a backup: the image's pages (all, or those written since the parent's image),
//! the log range that completes it, and the manifest written last.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use lightning_page::vfs::{OpenMode, Vfs, VfsFile};
use lightning_page::{PageAllocator, PageId, PageType};
use lightning_wal::Lsn;

use crate::manifest::{Extent, Kind, Manifest, WalFile};
use crate::repo::{self, Repository};
use crate::{Error, Result, Source};

/// Pages per extent: each extent has its own hash, so damage is named to within this many
/// pages, and a reader holds at most one extent in memory.
pub(crate) const EXTENT_PAGES: u64 = 256;

/// The pages file is synced every this many bytes while it is written, so that the kernel
/// never holds much of it dirty: a database's WAL fsync on the same disk then queues behind
/// one step, not behind the whole backup (as the database's checkpoints do, ADR 012).
pub const PAGES_SYNC_BYTES: u64 = 4 << 20;

/// Segment size of the log a backup carries.
const WAL_SEGMENT: u64 = 16 << 20;

/// Progress callback: bytes done so far of about how many.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn src(e: crate::SourceError) -> Error {
    Error::Source(e)
}

/// Takes a backup of `source` into the repository at `dest` (created when missing): a full
/// one, or with `incremental` the pages written since the newest complete backup of the
/// same database (a full one when there is none). Returns its manifest.
///
/// Files go to `dest/<id>/` and the manifest `dest/<id>.manifest` is written last
/// (temporary name, sync, rename, directory sync); until then a `dest/<id>.partial` marker
/// says the backup is incomplete, so a crash leaves either a complete, valid backup or one
/// that [`Repository::entries`] reports as incomplete and nothing uses.
pub fn backup(
    vfs: &dyn Vfs,
    source: &dyn Source,
    dest: &Path,
    incremental: bool,
    progress: Progress<'_>,
) -> Result<Manifest> {
    let span = tracing::info_span!("backup", dest = %dest.display(), incremental);
    let _span = span.enter();
    vfs.create_dir_all(dest)
        .map_err(|e| Error::io("create directory", dest, e))?;
    let repo = Repository::open(vfs, dest)?;
    let id = repo.next_id();
    let file = source.page_file();
    let sb = file.superblock();
    let parent = if incremental {
        repo.newest_complete(source.database_id())?
    } else {
        None
    };
    if let Some(p) = &parent
        && (p.page_size != sb.page_size.bytes() || p.generation > sb.generation)
    {
        {
            return Err(Error::Chain {
                id: p.id,
                reason: format!(
                    "the newest backup (generation {}, page size {}) is not an earlier image of \
                     this database (generation {}, page size {}): take a full backup",
                    p.generation,
                    p.page_size,
                    sb.generation,
                    sb.page_size.bytes()
                ),
            });
        }
    }
    let base_generation = parent.as_ref().map_or(0, |p| p.generation);

    let marker = repo::partial_path(dest, id);
    create_synced(vfs, &marker, b"")?;
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))?;
    let dir = repo::data_dir(dest, id);
    vfs.create_dir_all(&dir)
        .map_err(|e| Error::io("create directory", &dir, e))?;

    let pages = copy_pages(
        vfs,
        file,
        &sb,
        &dir,
        parent.as_ref().map(|_| base_generation),
        progress,
    )?;
    let (wal, image_time_us, end_time_us) = copy_wal(vfs, source, &sb, &dir)?;
    let (image_lsn, end) = (source.image_lsn(), source.end_lsn());
    let manifest = Manifest {
        id,
        kind: if parent.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        },
        parent: parent.as_ref().map(|p| p.id),
        database_id: source.database_id(),
        page_size: sb.page_size.bytes(),
        generation: sb.generation,
        base_generation,
        checkpoint_lsn: sb.checkpoint_lsn,
        image_lsn,
        image_time_us,
        end_lsn: end.max(sb.checkpoint_lsn),
        end_time_us: end_time_us.max(image_time_us),
        created_us: now_us(),
        page_count: sb.page_count,
        superblock: sb.slot().get(),
        live: pages.live,
        extents: pages.extents,
        pages_len: pages.len,
        pages_hash: pages.hash,
        wal,
    };
    let path = repo::manifest_path(dest, id);
    let tmp = path.with_extension("manifest-tmp");
    create_synced(vfs, &tmp, manifest.encode().as_bytes())?;
    vfs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename into place", &path, e))?;
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))?;
    vfs.remove(&marker)
        .map_err(|e| Error::io("remove", &marker, e))?;
    vfs.sync_dir(dest)
        .map_err(|e| Error::io("sync directory", dest, e))?;
    tracing::info!(
        id,
        kind = ?manifest.kind,
        generation = manifest.generation,
        end_lsn = %manifest.end_lsn,
        bytes = manifest.bytes(),
        "backup written"
    );
    Ok(manifest)
}

/// The pages a backup copied.
struct PagesCopied {
    live: Vec<(u64, u64)>,
    extents: Vec<Extent>,
    len: u64,
    hash: [u8; 32],
}

/// Copies the image's superblock and its pages (only those written after generation `base`,
/// when given) into `dir/pages`, synced.
fn copy_pages(
    vfs: &dyn Vfs,
    file: &lightning_page::PageFile,
    sb: &lightning_page::Superblock,
    dir: &Path,
    base: Option<u64>,
    progress: Progress<'_>,
) -> Result<PagesCopied> {
    // The image's pages: everything below its page count that its free list does not list.
    let alloc = PageAllocator::load(file)?;
    let not_live: BTreeSet<PageId> = alloc.free_pages().chain(alloc.pending_pages()).collect();
    let live_ids: Vec<u64> = (2..sb.page_count)
        .filter(|p| !not_live.contains(&PageId::new(*p)))
        .collect();
    let live = runs(&live_ids);
    let ps = u64::from(sb.page_size.bytes());
    let total = live_ids.len() as u64 * ps;

    let pages_path = dir.join(repo::PAGES);
    let pages = vfs
        .open(&pages_path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &pages_path, e))?;
    let mut out = PagesOut {
        file: &*pages,
        path: &pages_path,
        offset: 0,
        whole: blake3::Hasher::new(),
        extents: Vec::new(),
        run: None,
        unsynced: 0,
    };
    let (superblock, _) = file.read_page(sb.slot(), Some(PageType::Superblock))?;
    out.push(sb.slot().get(), superblock.as_bytes())?;
    out.close_run();
    let mut done = 0u64;
    for &p in &live_ids {
        let (page, header) = file.read_page(PageId::new(p), None)?;
        if header.generation > sb.generation {
            return Err(Error::Source(
                format!(
                    "page {p} has generation {}, newer than the image's {}: the image changed \
                     under the backup",
                    header.generation, sb.generation
                )
                .into(),
            ));
        }
        if base.is_none_or(|b| header.generation > b) {
            out.push(p, page.as_bytes())?;
        }
        done += ps;
        if done.is_multiple_of(ps * EXTENT_PAGES) {
            progress(done, total);
        }
    }
    out.close_run();
    pages
        .sync()
        .map_err(|e| Error::io("sync", &pages_path, e))?;
    let copied = PagesCopied {
        live,
        len: out.offset,
        hash: *out.whole.clone().finalize().as_bytes(),
        extents: std::mem::take(&mut out.extents),
    };
    progress(total, total);
    Ok(copied)
}

/// Copies the log records from the image's checkpoint through the source's end into
/// `dir/wal`; returns the segments and the times of the image's last commit and of the end.
fn copy_wal(
    vfs: &dyn Vfs,
    source: &dyn Source,
    sb: &lightning_page::Superblock,
    dir: &Path,
) -> Result<(Vec<WalFile>, u64, u64)> {
    // The log: from the checkpoint's own record (so that the restored log reaches the
    // checkpoint LSN, as opening requires) through the end.
    let image_lsn = source.image_lsn();
    let end = source.end_lsn();
    let from = if sb.checkpoint_lsn == Lsn::ZERO {
        Lsn::new(1)
    } else {
        sb.checkpoint_lsn
    };
    let mut image_time_us = 0;
    let mut end_time_us = 0;
    let mut expected = from;
    let mut short = None;
    let records = source
        .wal_records(from)
        .map_err(src)?
        .take_while(|r| r.as_ref().map_or(true, |r| r.lsn <= end))
        .inspect(|r| {
            if let Ok(r) = r {
                if r.lsn != expected && short.is_none() {
                    short = Some(expected);
                }
                expected = r.lsn.next();
                if r.lsn == image_lsn {
                    image_time_us = r.time_us;
                }
                end_time_us = r.time_us;
            }
        });
    let wal_dir = dir.join(repo::WAL);
    let written = if end >= from {
        lightning_wal::write_log(vfs, &wal_dir, records, WAL_SEGMENT)?
    } else {
        drop(records);
        vfs.create_dir_all(&wal_dir)
            .map_err(|e| Error::io("create directory", &wal_dir, e))?;
        Vec::new()
    };
    if end >= from && (short.is_some() || expected != end.next()) {
        return Err(Error::Source(
            format!(
                "the log did not hold records {} to {end} the backup needs",
                short.unwrap_or(expected)
            )
            .into(),
        ));
    }
    let mut wal = Vec::new();
    for seg in written {
        let hash = hash_file(vfs, &seg.path)?;
        let name = seg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        wal.push(WalFile {
            name,
            len: seg.len,
            first: seg.first,
            last: seg.last,
            hash,
        });
    }
    Ok((wal, image_time_us, end_time_us))
}

/// Runs of consecutive ids: `(first, count)`.
fn runs(ids: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some((first, count)) if *first + *count == id => *count += 1,
            _ => out.push((id, 1)),
        }
    }
    out
}

/// The pages file being written: page runs become extents of at most [`EXTENT_PAGES`].
struct PagesOut<'a> {
    file: &'a dyn VfsFile,
    path: &'a Path,
    offset: u64,
    whole: blake3::Hasher,
    extents: Vec<Extent>,
    /// The extent being filled: first page, pages so far, its offset, its hasher.
    run: Option<(u64, u64, u64, blake3::Hasher)>,
    /// Bytes written since the last sync.
    unsynced: u64,
}

impl PagesOut<'_> {
    fn push(&mut self, id: u64, bytes: &[u8]) -> Result<()> {
        let extends = matches!(&self.run, Some((first, count, _, _)) if first + count == id && *count < EXTENT_PAGES);
        if !extends {
            self.close_run();
            self.run = Some((id, 0, self.offset, blake3::Hasher::new()));
        }
        self.file
            .write_at(bytes, self.offset)
            .map_err(|e| Error::io("write", self.path, e))?;
        self.offset += bytes.len() as u64;
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= PAGES_SYNC_BYTES {
            self.file
                .sync()
                .map_err(|e| Error::io("sync", self.path, e))?;
            self.unsynced = 0;
        }
        self.whole.update(bytes);
        if let Some((_, count, _, h)) = &mut self.run {
            *count += 1;
            h.update(bytes);
        }
        Ok(())
    }

    fn close_run(&mut self) {
        if let Some((first, count, offset, h)) = self.run.take() {
            self.extents.push(Extent {
                first,
                count,
                offset,
                hash: *h.finalize().as_bytes(),
            });
        }
    }
}

pub(crate) fn create_synced(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    if vfs
        .exists(path)
        .map_err(|e| Error::io("look for", path, e))?
    {
        vfs.remove(path).map_err(|e| Error::io("remove", path, e))?;
    }
    let f = vfs
        .open(path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_at(bytes, 0)
        .map_err(|e| Error::io("write", path, e))?;
    f.sync().map_err(|e| Error::io("sync", path, e))
}

/// Opens `path` for reading, with its length.
pub(crate) fn open_read(vfs: &dyn Vfs, path: &Path) -> Result<(Box<dyn VfsFile>, u64)> {
    let f = vfs
        .open(path, OpenMode::ReadOnly)
        .map_err(|e| Error::io("open", path, e))?;
    let len = f
        .len()
        .map_err(|e| Error::io("read the length of", path, e))?;
    Ok((f, len))
}

/// blake3 of a whole file, read in 1 MiB steps.
pub(crate) fn hash_file(vfs: &dyn Vfs, path: &Path) -> Result<[u8; 32]> {
    let (f, len) = open_read(vfs, path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        f.read_at(chunk, at)
            .map_err(|e| Error::io("read", path, e))?;
        h.update(chunk);
        at += n as u64;
    }
    Ok(*h.finalize().as_bytes())
}
