//! Reading backups back: verify every byte, restore a chain into a new directory, and
//! point-in-time recovery from the backup's log and archived WAL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lightning_page::vfs::{OpenMode, Vfs, VfsFile};
use lightning_page::{PageBuf, PageId, PageType};
use lightning_wal::{Lsn, Record, RecordIter};

use crate::manifest::{Kind, Manifest};
use crate::repo::{self, Repository};
use crate::write::{Progress, open_read};
use crate::{Error, Result};

/// The page file's name in a database directory (as `lightning-db` names it).
pub const DATA_FILE: &str = "data.ldb";
/// The WAL directory's name in a database directory.
pub const WAL_DIR: &str = "wal";
/// The lock file's name in a database directory.
pub const LOCK_FILE: &str = "LOCK";
/// A file [`restore`] keeps in the database directory until the restore is complete;
/// `lightning-db` refuses to open a directory that holds it.
pub const RESTORE_MARKER: &str = "RESTORING";

/// Largest WAL record read back (the database's own limit is at most 1 GiB).
const MAX_RECORD: u32 = 1 << 30;
/// Segment size of a restored log.
const WAL_SEGMENT: u64 = 16 << 20;

pub(crate) fn read_manifest(vfs: &dyn Vfs, dest: &Path, id: u64) -> Result<Manifest> {
    let path = repo::manifest_path(dest, id);
    let bytes = read_all(vfs, &path)?;
    let m = Manifest::decode(&bytes, &path)?;
    if m.id != id {
        return Err(Error::corrupt(
            &path,
            format!("manifest of backup {} under the name of backup {id}", m.id),
        ));
    }
    Ok(m)
}

fn read_all(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>> {
    let (f, len) = open_read(vfs, path)?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| Error::corrupt(path, "too large"))?];
    f.read_at(&mut buf, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// What [`verify`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The backups checked: the chain, full first (or every backup, oldest first).
    pub chain: Vec<u64>,
    /// Bytes read and hashed.
    pub bytes: u64,
    /// Pages whose checksum, id and generation were checked.
    pub pages: u64,
    /// WAL records read back and checked.
    pub wal_records: u64,
}

/// Verifies backup `id` and every backup its chain needs — or, with `None`, every backup
/// in the repository (a damaged manifest anywhere is an error; interrupted backups are
/// passed over): the manifests' own hashes, every extent's and file's blake3, every
/// page's checksum, id and generation, and every WAL record's checksum and sequence.
/// Reads every byte.
pub fn verify(
    vfs: &Arc<dyn Vfs>,
    dest: &Path,
    id: Option<u64>,
    progress: Progress<'_>,
) -> Result<VerifyReport> {
    let repo = Repository::open(&**vfs, dest)?;
    let chain = if let Some(id) = id {
        repo.chain(id)?
    } else {
        {
            if let Some(e) = repo.damaged().next() {
                return Err(e);
            }
            let all: Vec<Manifest> = repo.complete().cloned().collect();
            if all.is_empty() {
                return Err(Error::NotFound {
                    dest: dest.to_path_buf(),
                    what: "at all".into(),
                });
            }
            for m in &all {
                repo.chain(m.id)?;
            }
            all
        }
    };
    let total: u64 = chain.iter().map(Manifest::bytes).sum();
    let mut report = VerifyReport {
        chain: chain.iter().map(|m| m.id).collect(),
        ..VerifyReport::default()
    };
    for m in &chain {
        let pages_path = repo::data_dir(dest, m.id).join(repo::PAGES);
        let file = open_pages(&**vfs, &pages_path, m)?;
        read_extents(&*file, &pages_path, m, &mut |_, buf| Ok(buf))?;
        report.pages += m.extents.iter().map(|e| e.count).sum::<u64>();
        report.bytes += m.pages_len;
        progress(report.bytes, total);
        report.wal_records += verify_wal(vfs, dest, m)?;
        report.bytes += m.wal.iter().map(|w| w.len).sum::<u64>();
        progress(report.bytes, total);
    }
    tracing::info!(backups = ?report.chain, bytes = report.bytes, "backups verified");
    Ok(report)
}

fn open_pages(vfs: &dyn Vfs, path: &Path, m: &Manifest) -> Result<Box<dyn VfsFile>> {
    let (f, len) = open_read(vfs, path)?;
    if len != m.pages_len {
        return Err(Error::corrupt(
            path,
            format!("{len} bytes, the manifest says {}", m.pages_len),
        ));
    }
    Ok(f)
}

/// Reads every extent of `m`'s pages file, checks its hash and each page, and hands each
/// extent to `each` (its first page id, a buffer holding its pages' bytes), which returns a
/// buffer to read the next extent into; then checks the file's hash (over the extent hashes,
/// `docs/format/backup.md`).
fn read_extents(
    file: &dyn VfsFile,
    path: &Path,
    m: &Manifest,
    each: &mut dyn FnMut(u64, Vec<u8>) -> Result<Vec<u8>>,
) -> Result<()> {
    let ps = usize::try_from(m.page_size).unwrap_or(usize::MAX);
    let mut whole = blake3::Hasher::new();
    let mut superblocks = 0;
    let mut buf = Vec::new();
    for e in &m.extents {
        let at = |what: String| {
            Error::corrupt(
                path,
                format!(
                    "the extent of pages {}..{} at offset {}: {what}",
                    e.first,
                    e.first + e.count,
                    e.offset
                ),
            )
        };
        let len = usize::try_from(e.count)
            .ok()
            .and_then(|c| c.checked_mul(ps))
            .ok_or_else(|| at("too large".into()))?;
        buf.resize(len, 0);
        file.read_at(&mut buf, e.offset)
            .map_err(|err| Error::io("read", path, err))?;
        if blake3::hash(&buf).as_bytes() != &e.hash {
            return Err(at("its blake3 hash does not match the manifest".into()));
        }
        whole.update(&e.hash);
        for (i, page) in buf.chunks_exact(ps).enumerate() {
            let id = e.first + i as u64;
            let superblock = id < 2;
            let header = PageBuf::verify(
                page,
                path,
                PageId::new(id),
                superblock.then_some(PageType::Superblock),
            )
            .map_err(|err| at(err.to_string()))?;
            if superblock {
                if id != m.superblock || header.generation != m.generation {
                    return Err(at(format!(
                        "a superblock of slot {id}, generation {}; the manifest names slot {} of generation {}",
                        header.generation, m.superblock, m.generation
                    )));
                }
                superblocks += 1;
            } else if header.generation > m.generation
                || (m.kind == Kind::Incremental && header.generation <= m.base_generation)
            {
                return Err(at(format!(
                    "page {id} has generation {}, outside this backup's {}..={}",
                    header.generation,
                    m.base_generation + 1,
                    m.generation
                )));
            }
        }
        buf = each(e.first, buf)?;
    }
    if superblocks != 1 {
        return Err(Error::corrupt(
            path,
            format!("{superblocks} superblocks, not one"),
        ));
    }
    if whole.finalize().as_bytes() != &m.pages_hash {
        return Err(Error::corrupt(
            path,
            "the file's blake3 hash (over its extents' hashes) does not match the manifest",
        ));
    }
    Ok(())
}

/// The first record a backup's log holds.
fn log_start(m: &Manifest) -> Lsn {
    if m.checkpoint_lsn == Lsn::ZERO {
        Lsn::new(1)
    } else {
        m.checkpoint_lsn
    }
}

/// Checks the files of `m`'s log against the manifest and reads every record back.
fn verify_wal(vfs: &Arc<dyn Vfs>, dest: &Path, m: &Manifest) -> Result<u64> {
    let dir = repo::data_dir(dest, m.id).join(repo::WAL);
    for w in &m.wal {
        let path = dir.join(&w.name);
        let bytes = read_all(&**vfs, &path)?;
        if bytes.len() as u64 != w.len || blake3::hash(&bytes).as_bytes() != &w.hash {
            return Err(Error::corrupt(
                &path,
                format!(
                    "{} bytes whose blake3 hash does not match the manifest ({} bytes)",
                    bytes.len(),
                    w.len
                ),
            ));
        }
    }
    let listed = match vfs.list(&dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    if let Some(extra) = listed.iter().find(|p| {
        !m.wal
            .iter()
            .any(|w| p.file_name().is_some_and(|n| n == w.name.as_str()))
    }) {
        return Err(Error::corrupt(extra, "a file the manifest does not list"));
    }
    let from = log_start(m);
    if m.end_lsn < from {
        return if m.wal.is_empty() {
            Ok(0)
        } else {
            Err(Error::corrupt(&dir, "records past the backup's end"))
        };
    }
    let (_, records) = lightning_wal::read_only(Arc::clone(vfs), &dir, MAX_RECORD, from)?;
    let mut expected = from;
    for r in records {
        let r = r?;
        if r.lsn != expected || r.lsn > m.end_lsn {
            return Err(Error::corrupt(
                &dir,
                format!("record {} where {expected} was expected", r.lsn),
            ));
        }
        expected = r.lsn.next();
    }
    if expected != m.end_lsn.next() {
        return Err(Error::corrupt(
            &dir,
            format!(
                "the log ends before LSN {}, the backup's end {}",
                expected, m.end_lsn
            ),
        ));
    }
    Ok(expected.get() - from.get())
}

/// How far to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The newest state the backups and the given log directories hold.
    Latest,
    /// Through this LSN, exactly.
    Lsn(Lsn),
    /// Through the last commit at or before this wall-clock time (µs since the epoch).
    TimeUs(u64),
}

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The backup to restore (with its chain); by default the newest one, or for a
    /// recovery target the newest one at or before it.
    pub backup: Option<u64>,
    /// How far to recover; `None` is the chosen backup's own end.
    pub target: Option<Target>,
    /// Further directories of WAL segments to recover from: archives
    /// (`Options::wal_archive_dir`), or a surviving `wal/` of the lost database.
    pub wal_dirs: Vec<PathBuf>,
    /// Replace a database already in the destination.
    pub overwrite: bool,
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The backups restored, full first.
    pub chain: Vec<u64>,
    /// The state the restored database opens at: its last log record.
    pub lsn: Lsn,
    /// That record's wall-clock time (µs since the epoch).
    pub time_us: u64,
    /// Log records after the image that opening the database replays.
    pub records_replayed: u64,
    /// Pages written.
    pub pages: u64,
    /// Bytes read from the backups and log directories.
    pub bytes: u64,
}

/// Restores into `to` (a new or empty directory): the chain of the chosen backup, verified
/// as it is read, then the log through the target, and the superblock last. A
/// [`RESTORE_MARKER`] file stays in `to` until all of it is durable, so a crash or an
/// error part-way leaves a directory that does not open as a database (run the restore
/// again with `overwrite`), never a wrong one. `Database::open` on `to` then replays the
/// log. `to` is locked as a database is, so a database open there is never overwritten.
pub fn restore(
    vfs: &Arc<dyn Vfs>,
    dest: &Path,
    to: &Path,
    opts: &RestoreOptions,
    progress: Progress<'_>,
) -> Result<RestoreReport> {
    let span = tracing::info_span!("restore", dest = %dest.display(), to = %to.display());
    let _span = span.enter();
    let repo = Repository::open(&**vfs, dest)?;
    let target = opts.target;
    let base = choose_base(&repo, opts.backup, target)?;
    let chain = repo.chain(base.id)?;
    let last = chain.last().cloned().ok_or_else(|| Error::NotFound {
        dest: dest.to_path_buf(),
        what: "to restore".into(),
    })?;

    vfs.create_dir_all(to)
        .map_err(|e| Error::io("create directory", to, e))?;
    let _lock = vfs
        .lock(&to.join(LOCK_FILE))
        .map_err(|e| Error::io("lock (is a database open there?)", to.join(LOCK_FILE), e))?;
    let data = to.join(DATA_FILE);
    let wal_dir = to.join(WAL_DIR);
    clear_destination(&**vfs, to, &wal_dir, opts.overwrite)?;
    let marker = to.join(RESTORE_MARKER);
    crate::write::create_synced(
        &**vfs,
        &marker,
        b"a restore into this directory has not finished\n",
    )?;
    vfs.sync_dir(to)
        .map_err(|e| Error::io("sync directory", to, e))?;
    let outcome = (|| {
        // Every byte of the chain is checked, even the logs of earlier backups that the
        // restore does not replay: a damaged backup is refused whole.
        for m in &chain {
            verify_wal(vfs, dest, m)?;
        }
        let pages = write_pages(&**vfs, dest, &data, &chain, progress)?;
        let (lsn, time_us, replayed, wal_bytes) =
            write_log(vfs, dest, &wal_dir, &last, target, &opts.wal_dirs)?;
        // Last: the superblock, once everything it points at is durable.
        vfs.sync_dir(to)
            .map_err(|e| Error::io("sync directory", to, e))?;
        let f = vfs
            .open(&data, OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", &data, e))?;
        f.write_at(
            &pages.superblock,
            last.superblock * u64::from(last.page_size),
        )
        .map_err(|e| Error::io("write the superblock of", &data, e))?;
        f.sync().map_err(|e| Error::io("sync", &data, e))?;
        vfs.remove(&marker)
            .map_err(|e| Error::io("remove", &marker, e))?;
        vfs.sync_dir(to)
            .map_err(|e| Error::io("sync directory", to, e))?;
        Ok(RestoreReport {
            chain: chain.iter().map(|m| m.id).collect(),
            lsn,
            time_us,
            records_replayed: replayed,
            pages: pages.written,
            bytes: pages.bytes + wal_bytes,
        })
    })();
    match outcome {
        Ok(report) => {
            tracing::info!(chain = ?report.chain, lsn = %report.lsn, replayed = report.records_replayed, "restored");
            Ok(report)
        }
        Err(e) => {
            // Leave nothing that looks like a database (it would not open anyway: the
            // superblock is written last).
            if let Err(clean) = clear_destination(&**vfs, to, &wal_dir, true) {
                tracing::warn!(error = %clean, "could not remove what the failed restore wrote");
            }
            Err(e)
        }
    }
}

fn choose_base(
    repo: &Repository,
    backup: Option<u64>,
    target: Option<Target>,
) -> Result<&Manifest> {
    let fits = |m: &Manifest| match target {
        None | Some(Target::Latest) => true,
        Some(Target::Lsn(l)) => m.image_lsn <= l,
        Some(Target::TimeUs(t)) => m.image_time_us <= t,
    };
    let describe = || match target {
        Some(Target::Lsn(l)) => format!("LSN {l}"),
        Some(Target::TimeUs(t)) => format!("time {t} µs"),
        _ => "the latest state".into(),
    };
    if let Some(id) = backup {
        let m = repo.manifest(id)?;
        if !fits(m) {
            return Err(Error::Target {
                target: describe(),
                reason: format!(
                    "backup {id} already holds commits through LSN {} (time {} µs)",
                    m.image_lsn, m.image_time_us
                ),
            });
        }
        return Ok(m);
    }
    let newest = repo.newest()?;
    repo.complete()
        .filter(|m| m.database_id == newest.database_id && fits(m))
        .last()
        .ok_or_else(|| Error::Target {
            target: describe(),
            reason: "every backup is newer than that: the oldest already holds later commits"
                .into(),
        })
}

fn clear_destination(vfs: &dyn Vfs, to: &Path, wal_dir: &Path, overwrite: bool) -> Result<()> {
    let listed = |dir: &Path| -> Result<Vec<PathBuf>> {
        match vfs.list(dir) {
            Ok(l) => Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("list", dir, e)),
        }
    };
    let mut present: Vec<PathBuf> = listed(to)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_none_or(|n| n != LOCK_FILE && n != RESTORE_MARKER)
        })
        .collect();
    present.extend(listed(wal_dir)?);
    if present.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::NotEmpty {
            dir: to.to_path_buf(),
        });
    }
    for p in present {
        vfs.remove(&p).map_err(|e| Error::io("remove", &p, e))?;
    }
    vfs.sync_dir(to)
        .map_err(|e| Error::io("sync directory", to, e))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

struct PagesWritten {
    superblock: Vec<u8>,
    written: u64,
    bytes: u64,
}

/// One extent's pages bound for the restored file: `buf[range]` at byte `at`.
struct PageWrite {
    at: u64,
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
}

/// Extents queued between the thread that reads and checks the chain and the one that writes.
const WRITE_QUEUE: usize = 8;

/// Writes the chain's pages into `data` (sized to the final image), the final image's
/// superblock aside for the caller to write last.
///
/// Two stages overlap, as in the backup (ADR 013): this thread reads each extent and checks
/// its hash and every page; a writer thread writes the extents it is sent and hands their
/// buffers back, so the disk writes while the next extent is read and checked.
fn write_pages(
    vfs: &dyn Vfs,
    dest: &Path,
    data: &Path,
    chain: &[Manifest],
    progress: Progress<'_>,
) -> Result<PagesWritten> {
    let last = chain.last().ok_or_else(|| Error::NotFound {
        dest: dest.to_path_buf(),
        what: "to restore".into(),
    })?;
    let out = vfs
        .open(data, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", data, e))?;
    out.set_len(last.page_count * u64::from(last.page_size))
        .map_err(|e| Error::io("size", data, e))?;
    let (send, receive) = std::sync::mpsc::sync_channel::<PageWrite>(WRITE_QUEUE);
    let (give_back, take_back) = std::sync::mpsc::channel::<Vec<u8>>();
    let (read, written) = std::thread::scope(|s| {
        let out = &*out;
        let writer = s.spawn(move || -> Result<()> {
            for w in receive {
                // The reader sends ranges inside their buffers; one that is not would be a
                // page left unwritten, so it is an error, not an empty write.
                let bytes = w.buf.get(w.range.clone()).ok_or_else(|| {
                    Error::Source(
                        format!(
                            "bytes {:?} of a {}-byte extent bound for {}",
                            w.range,
                            w.buf.len(),
                            data.display()
                        )
                        .into(),
                    )
                })?;
                out.write_at(bytes, w.at)
                    .map_err(|e| Error::io("write", data, e))?;
                // The reader may have finished: a buffer nobody takes back is dropped.
                drop(give_back.send(w.buf));
            }
            Ok(())
        });
        let read = read_chain(vfs, dest, chain, last, &send, &take_back, progress);
        drop(send);
        let written = writer.join().unwrap_or_else(|_| {
            Err(Error::Source(
                format!("the thread writing {} stopped", data.display()).into(),
            ))
        });
        (read, written)
    });
    // A writer that failed stopped taking extents: its error is the cause.
    written?;
    let pages = read?;
    out.sync().map_err(|e| Error::io("sync", data, e))?;
    Ok(pages)
}

/// The reading half of [`write_pages`]: reads and checks every backup of the chain, sends
/// the pages the final image uses to the writer, and checks that every page of that image
/// came from some backup.
fn read_chain(
    vfs: &dyn Vfs,
    dest: &Path,
    chain: &[Manifest],
    last: &Manifest,
    send: &std::sync::mpsc::SyncSender<PageWrite>,
    take_back: &std::sync::mpsc::Receiver<Vec<u8>>,
    progress: Progress<'_>,
) -> Result<PagesWritten> {
    let ps = u64::from(last.page_size);
    let mut written = vec![false; usize::try_from(last.page_count).unwrap_or(0)];
    let mut superblock = Vec::new();
    let total: u64 = chain.iter().map(|m| m.pages_len).sum();
    let mut bytes = 0u64;
    let mut count = 0u64;
    for m in chain {
        let path = repo::data_dir(dest, m.id).join(repo::PAGES);
        let file = open_pages(vfs, &path, m)?;
        let is_last = m.id == last.id;
        read_extents(&*file, &path, m, &mut |first, buf| {
            let mut id = first;
            let mut from = 0usize;
            // Superblock slots: the final image's superblock is written last, by the caller.
            while id < 2 {
                let Some(page) = buf.get(from..from + to_usize(ps)) else {
                    return Ok(buf);
                };
                if is_last && id == last.superblock {
                    superblock = page.to_vec();
                }
                (id, from) = (id + 1, from + to_usize(ps));
            }
            // Pages past the final image's file are pages that image no longer uses.
            let end = (id + (buf.len() - from) as u64 / ps).min(last.page_count);
            if id >= end {
                return Ok(buf);
            }
            let n = end - id;
            let Some(slots) = written.get_mut(to_usize(id)..to_usize(end)) else {
                return Ok(buf);
            };
            slots.fill(true);
            count += n;
            // n pages fit: end <= id + (buf.len() - from) / ps.
            let range = from..from + to_usize(n * ps);
            if send
                .send(PageWrite {
                    at: id * ps,
                    buf,
                    range,
                })
                .is_err()
            {
                return Err(Error::Source("the restore's writing thread stopped".into()));
            }
            Ok(take_back.try_recv().unwrap_or_default())
        })?;
        bytes += m.pages_len;
        progress(bytes, total);
    }
    for &(first, n) in &last.live {
        if let Some(missing) = (first..first + n).find(|&p| {
            !usize::try_from(p)
                .ok()
                .and_then(|i| written.get(i))
                .copied()
                .unwrap_or(false)
        }) {
            return Err(Error::Chain {
                id: last.id,
                reason: format!("page {missing} of its image is in no backup of the chain"),
            });
        }
    }
    Ok(PagesWritten {
        superblock,
        written: count,
        bytes,
    })
}

/// Writes the restored log: records from the last backup's checkpoint through the target,
/// from the backup's own log and the given directories. Returns the last LSN, its time,
/// the records after the image, and bytes read.
fn write_log(
    vfs: &Arc<dyn Vfs>,
    dest: &Path,
    wal_dir: &Path,
    last: &Manifest,
    target: Option<Target>,
    extra: &[PathBuf],
) -> Result<(Lsn, u64, u64, u64)> {
    let from = log_start(last);
    let mut dirs = vec![repo::data_dir(dest, last.id).join(repo::WAL)];
    dirs.extend(extra.iter().cloned());
    let limit = match target {
        None => last.end_lsn,
        Some(Target::Lsn(l)) => l,
        Some(Target::Latest | Target::TimeUs(_)) => Lsn::new(u64::MAX - 1),
    };
    let mut merged = Merged::new(vfs, dirs, from, limit)?;
    merged.image_lsn = last.image_lsn;
    if let Some(Target::TimeUs(t)) = target {
        merged.until_time = Some(t);
    }
    let written = if last.end_lsn >= from || !extra.is_empty() {
        lightning_wal::write_log(&**vfs, wal_dir, &mut merged, WAL_SEGMENT)?
    } else {
        vfs.create_dir_all(wal_dir)
            .map_err(|e| Error::io("create directory", wal_dir, e))?;
        Vec::new()
    };
    if let Some(e) = merged.error.take() {
        return Err(e);
    }
    let reached = Lsn::new(merged.next.get() - 1);
    let needed = match target {
        Some(Target::Lsn(l)) => l,
        _ => last.end_lsn.max(last.image_lsn),
    };
    if reached < needed && needed >= from {
        return Err(Error::WalGap {
            from: reached.next(),
            to: needed,
        });
    }
    let time = if reached > last.image_lsn {
        merged.last_time
    } else {
        last.image_time_us
    };
    let bytes = written.iter().map(|s| s.len).sum();
    Ok((
        reached.max(last.checkpoint_lsn),
        time,
        merged.after_image,
        bytes,
    ))
}

/// Records in LSN order from several log directories, each record once, stopping at a
/// limit, at a time, or where no directory has the next record.
struct Merged {
    vfs: Arc<dyn Vfs>,
    /// Directories and the LSN ranges they hold.
    dirs: Vec<(PathBuf, Lsn, Lsn)>,
    cur: Option<RecordIter>,
    tried: Vec<usize>,
    next: Lsn,
    limit: Lsn,
    until_time: Option<u64>,
    image_lsn: Lsn,
    last_time: u64,
    after_image: u64,
    error: Option<Error>,
}

impl Merged {
    fn new(vfs: &Arc<dyn Vfs>, dirs: Vec<PathBuf>, from: Lsn, limit: Lsn) -> Result<Merged> {
        let mut ranges = Vec::new();
        for dir in dirs {
            let (rec, _) = lightning_wal::read_only(
                Arc::clone(vfs),
                &dir,
                MAX_RECORD,
                Lsn::new(u64::MAX - 1),
            )?;
            if rec.last_lsn >= rec.first_lsn {
                ranges.push((dir, rec.first_lsn, rec.last_lsn));
            }
        }
        Ok(Merged {
            vfs: Arc::clone(vfs),
            dirs: ranges,
            cur: None,
            tried: Vec::new(),
            next: from,
            limit,
            until_time: None,
            image_lsn: Lsn::ZERO,
            last_time: 0,
            after_image: 0,
            error: None,
        })
    }
}

impl Iterator for Merged {
    type Item = lightning_wal::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next > self.limit {
                return None;
            }
            if let Some(it) = &mut self.cur {
                match it.next() {
                    Some(Ok(r)) if r.lsn == self.next => {
                        if r.lsn > self.image_lsn && self.until_time.is_some_and(|t| r.time_us > t)
                        {
                            self.limit = Lsn::ZERO;
                            return None;
                        }
                        self.next = r.lsn.next();
                        self.tried.clear();
                        self.last_time = r.time_us;
                        if r.lsn > self.image_lsn {
                            self.after_image += 1;
                        }
                        return Some(Ok(r));
                    }
                    Some(Ok(r)) if r.lsn < self.next => continue,
                    Some(Err(e)) => return Some(Err(e)),
                    _ => self.cur = None,
                }
            }
            let next = self.next;
            let pick = self.dirs.iter().enumerate().find(|(i, (_, first, last))| {
                *first <= next && next <= *last && !self.tried.contains(i)
            });
            let (i, dir) = match pick {
                Some((i, (dir, _, _))) => (i, dir.clone()),
                None => return None,
            };
            self.tried.push(i);
            match lightning_wal::read_only(Arc::clone(&self.vfs), &dir, MAX_RECORD, next) {
                Ok((_, it)) => self.cur = Some(it),
                Err(e) => {
                    self.error = Some(e.into());
                    return None;
                }
            }
        }
    }
}
