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
///
/// Two stages overlap: this thread reads and checks the pages and groups them into extents;
/// a writer thread hashes each extent, writes it and syncs every [`PAGES_SYNC_BYTES`], so
/// the disk writes while the next extents are read (one thread doing both left the disk idle
/// during every read and the reads idle during every sync: ADR 013).
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

    let pages_path = dir.join(repo::PAGES);
    let pages = vfs
        .open(&pages_path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &pages_path, e))?;
    let (send, receive) = std::sync::mpsc::sync_channel::<Chunk>(WRITE_QUEUE);
    let (read, written) = std::thread::scope(|s| {
        let (pages, path) = (&*pages, &pages_path);
        let writer = s.spawn(move || write_chunks(pages, path, receive));
        let read = read_chunks(file, sb, &live, base, &send, progress);
        drop(send);
        let written = writer.join().unwrap_or_else(|_| {
            Err(Error::Source(
                format!("the thread writing {} stopped", pages_path.display()).into(),
            ))
        });
        (read, written)
    });
    // A writer that failed stopped taking extents: its error is the cause.
    let (extents, hash, len) = written?;
    read?;
    Ok(PagesCopied {
        live,
        extents,
        len,
        hash,
    })
}

/// Extents queued between the reading and the writing thread (each at most
/// [`EXTENT_PAGES`] pages).
const WRITE_QUEUE: usize = 8;

/// Consecutive pages bound for one extent of the pages file.
struct Chunk {
    first: u64,
    count: u64,
    offset: u64,
    bytes: Vec<u8>,
    /// blake3 of `bytes`, set when sent.
    hash: [u8; 32],
}

/// Reads the superblock and the pages to copy, checks them, and sends them in extents.
/// Returns early (without an error) when the writer stopped: its error says why.
fn read_chunks(
    file: &lightning_page::PageFile,
    sb: &lightning_page::Superblock,
    live: &[(u64, u64)],
    base: Option<u64>,
    send: &std::sync::mpsc::SyncSender<Chunk>,
    progress: Progress<'_>,
) -> Result<()> {
    let ps = u64::from(sb.page_size.bytes());
    let total = live.iter().map(|(_, n)| n).sum::<u64>() * ps;
    let (superblock, _) = file.read_page(sb.slot(), Some(PageType::Superblock))?;
    let mut next = Next {
        send,
        offset: 0,
        chunk: None,
        ps,
    };
    if !next.flush(Chunk {
        first: sb.slot().get(),
        count: 1,
        offset: 0,
        bytes: superblock.as_bytes().to_vec(),
        hash: [0; 32],
    }) {
        return Ok(());
    }
    let mut done = 0u64;
    for &(run_first, run_count) in live {
        let mut at = run_first;
        while at < run_first + run_count {
            let count = (run_first + run_count - at).min(EXTENT_PAGES);
            let mut buf = Vec::new();
            let headers = file.read_pages(PageId::new(at), count, &mut buf)?;
            if let Some(h) = headers.iter().find(|h| h.generation > sb.generation) {
                return Err(Error::Source(
                    format!(
                        "page {} has generation {}, newer than the image's {}: the image \
                         changed under the backup",
                        h.page_id, h.generation, sb.generation
                    )
                    .into(),
                ));
            }
            let wanted = |g: u64| base.is_none_or(|b| g > b);
            if headers.iter().all(|h| wanted(h.generation)) {
                // The whole run (every page of a full backup): its buffer is the extent.
                if !next.close()
                    || !next.flush(Chunk {
                        first: at,
                        count,
                        offset: 0,
                        bytes: buf,
                        hash: [0; 32],
                    })
                {
                    return Ok(());
                }
            } else {
                for (h, page) in headers.iter().zip(buf.chunks_exact(to_usize(ps))) {
                    if wanted(h.generation) && !next.push(h.page_id.get(), page) {
                        return Ok(());
                    }
                }
            }
            at += count;
            done += count * ps;
            progress(done, total);
        }
    }
    if !next.close() {
        return Ok(());
    }
    progress(total, total);
    Ok(())
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Groups the pages to copy into extents and sends them, each at its offset in the file.
/// `false` from a method: the writer stopped.
struct Next<'a> {
    send: &'a std::sync::mpsc::SyncSender<Chunk>,
    /// Where the next extent goes.
    offset: u64,
    /// The extent being filled.
    chunk: Option<Chunk>,
    ps: u64,
}

impl Next<'_> {
    /// Adds one page, starting a new extent when it does not extend the open one.
    fn push(&mut self, id: u64, page: &[u8]) -> bool {
        let extends =
            matches!(&self.chunk, Some(c) if c.first + c.count == id && c.count < EXTENT_PAGES);
        if !extends {
            if !self.close() {
                return false;
            }
            self.chunk = Some(Chunk {
                first: id,
                count: 0,
                offset: 0,
                bytes: Vec::with_capacity(to_usize(self.ps * EXTENT_PAGES)),
                hash: [0; 32],
            });
        }
        if let Some(c) = &mut self.chunk {
            c.bytes.extend_from_slice(page);
            c.count += 1;
        }
        true
    }

    /// Sends the open extent, if any.
    fn close(&mut self) -> bool {
        match self.chunk.take() {
            Some(c) => self.flush(c),
            None => true,
        }
    }

    /// Hashes a whole extent and sends it at the next offset. (The reading thread hashes:
    /// the writing thread waits on syncs, and hashing there left the disk idle meanwhile.)
    fn flush(&mut self, mut chunk: Chunk) -> bool {
        chunk.hash = *blake3::hash(&chunk.bytes).as_bytes();
        chunk.offset = self.offset;
        self.offset += chunk.count * self.ps;
        self.send.send(chunk).is_ok()
    }
}

/// Writes the extents it receives (hashed; the file's hash is over their hashes), syncing every
/// [`PAGES_SYNC_BYTES`] and at the end. Returns the extents, the file's hash and length.
fn write_chunks(
    file: &dyn VfsFile,
    path: &Path,
    receive: std::sync::mpsc::Receiver<Chunk>,
) -> Result<(Vec<Extent>, [u8; 32], u64)> {
    let mut whole = blake3::Hasher::new();
    let mut extents = Vec::new();
    let mut unsynced = 0u64;
    let mut len = 0u64;
    for chunk in receive {
        let mut at = 0usize;
        while at < chunk.bytes.len() {
            // Up to the next sync point, so that no more than PAGES_SYNC_BYTES is ever
            // written and unsynced.
            let room = usize::try_from(PAGES_SYNC_BYTES - unsynced).unwrap_or(usize::MAX);
            let step = room.min(chunk.bytes.len() - at);
            // INVARIANT: `at + step <= chunk.bytes.len()`: `at < len` (the loop condition)
            // and `step <= len - at` (the line above).
            file.write_at(&chunk.bytes[at..at + step], chunk.offset + at as u64)
                .map_err(|e| Error::io("write", path, e))?;
            at += step;
            unsynced += step as u64;
            if unsynced >= PAGES_SYNC_BYTES {
                file.sync().map_err(|e| Error::io("sync", path, e))?;
                unsynced = 0;
            }
        }
        len = chunk.offset + chunk.bytes.len() as u64;
        // The file's hash covers its bytes through its extents' hashes: one pass over the
        // bytes, not two.
        whole.update(&chunk.hash);
        extents.push(Extent {
            first: chunk.first,
            count: chunk.count,
            offset: chunk.offset,
            hash: chunk.hash,
        });
    }
    file.sync().map_err(|e| Error::io("sync", path, e))?;
    Ok((extents, *whole.finalize().as_bytes(), len))
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
