//! Opening a database directory: its lock, the page file (created when missing), the trees
//! the catalog lists, and WAL recovery (`docs/format/database.md`, "Recovery").

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lightning_btree::BTree;
use lightning_mvcc::{Lsn, Timestamp, VersionStore};
use lightning_page::vfs::{OpenMode, Vfs, VfsLock};
use lightning_page::{PageFile, PageId, PageSize};
use lightning_wal::{Wal, WalOptions};

use crate::catalog::{self, Meta};
use crate::db::CatalogState;
use crate::db::{DATA_FILE, LOCK_FILE};
use crate::record;
use crate::store::TreeStore;
use crate::{Error, Options, Result};

pub(crate) fn new_db_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

pub(crate) fn wal_options(dir: &Path, opts: &Options) -> WalOptions {
    WalOptions {
        archive_dir: opts.wal_archive_dir.as_ref().map(|a| dir.join(a)),
        segment_size: opts.wal_segment_bytes,
        // Not `opts.max_txn_bytes`: records already in the log may have been written by an
        // open with a larger limit, and one read as over-long would be cut off as a torn
        // tail — an acknowledged commit lost, or a clean log refused. New transactions are
        // bounded by `max_txn_bytes` before they reach the log.
        max_record_size: u32::try_from(crate::options::MAX_TXN_BYTES_LIMIT).unwrap_or(u32::MAX),
        flush_interval: Duration::from_millis(opts.flush_interval_ms),
        ..WalOptions::default()
    }
}

/// A directory a restore (`lightning_backup::restore`) has not finished is no database.
pub(crate) fn refuse_unfinished_restore(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let marker = dir.join(lightning_backup::RESTORE_MARKER);
    if vfs
        .exists(&marker)
        .map_err(|e| Error::io("look for", &marker, e))?
    {
        return Err(Error::NotADatabase {
            dir: dir.to_path_buf(),
            reason: "a restore into it did not finish (it holds RESTORING): run the restore \
                     again with --force (RestoreOptions::overwrite)"
                .into(),
        });
    }
    Ok(())
}

/// Creates the directory if it may, and takes its lock.
pub(crate) fn lock_dir(
    vfs: &dyn Vfs,
    dir: &Path,
    data: &Path,
    opts: &Options,
) -> Result<Option<VfsLock>> {
    let lock_path = dir.join(LOCK_FILE);
    if opts.read_only {
        if !vfs
            .exists(data)
            .map_err(|e| Error::io("look for", data, e))?
        {
            return Err(Error::NotADatabase {
                dir: dir.to_path_buf(),
                reason: format!("{DATA_FILE} is missing (opened read-only: nothing is created)"),
            });
        }
        // No lock file (a copied database): nothing to lock, and nothing is created.
        if !vfs
            .exists(&lock_path)
            .map_err(|e| Error::io("look for", &lock_path, e))?
        {
            return Ok(None);
        }
    } else if opts.create_if_missing {
        vfs.create_dir_all(dir)
            .map_err(|e| Error::io("create the database directory", dir, e))?;
    } else if !vfs
        .exists(data)
        .map_err(|e| Error::io("look for", data, e))?
    {
        return Err(Error::NotADatabase {
            dir: dir.to_path_buf(),
            reason: format!("{DATA_FILE} is missing and create_if_missing is off"),
        });
    }
    let held = vfs.lock(&lock_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                dir: dir.to_path_buf(),
                holder: lock_holder(vfs, &lock_path),
            }
        } else {
            Error::io("lock", &lock_path, e)
        }
    })?;
    if !opts.read_only {
        // Who holds it, for the error another opener gets (informational: never synced,
        // and a failure to write it is no reason to refuse the open).
        let pid = format!("{}\n", std::process::id());
        let recorded = vfs.open(&lock_path, OpenMode::ReadWrite).and_then(|f| {
            f.set_len(0)?;
            f.write_at(pid.as_bytes(), 0)
        });
        if let Err(e) = recorded {
            tracing::debug!(error = %e, "could not record the process id in LOCK");
        }
    }
    Ok(Some(held))
}

/// The process id a read-write open recorded in `LOCK`, if it is there and (where the
/// system shows it) that process still runs.
fn lock_holder(vfs: &dyn Vfs, lock_path: &Path) -> Option<u32> {
    let f = vfs.open(lock_path, OpenMode::ReadOnly).ok()?;
    let len = usize::try_from(f.len().ok()?).ok()?;
    if len == 0 || len > 32 {
        return None;
    }
    let mut buf = vec![0u8; len];
    f.read_at(&mut buf, 0).ok()?;
    let pid: u32 = std::str::from_utf8(&buf).ok()?.trim().parse().ok()?;
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() && !proc_dir.join(pid.to_string()).exists() {
        return None; // a process that is gone: a read-only open holds the lock now
    }
    Some(pid)
}

/// The trees of the catalog's keyspaces, added to `store`; and their roots.
pub(crate) type OpenTrees = (BTreeMap<String, (u32, Arc<BTree>)>, BTreeMap<u32, PageId>);

pub(crate) fn open_trees(
    store: &TreeStore,
    keyspaces: BTreeMap<String, (u32, PageId)>,
) -> Result<OpenTrees> {
    let mut open = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for (name, (id, root)) in keyspaces {
        let tree = Arc::new(BTree::open(Arc::clone(&store.pages), root)?);
        store.add_tree(id, Arc::clone(&tree));
        roots.insert(id, root);
        open.insert(name, (id, tree));
    }
    Ok((open, roots))
}

/// Opens the page file (read-only for a read-only open), or creates the database when there is none (or when its creation
/// was cut off before its first checkpoint: nothing was ever committed to it).
pub(crate) fn open_page_file(
    vfs: &dyn Vfs,
    dir: &Path,
    data: &Path,
    wal_dir: &Path,
    opts: &Options,
) -> Result<PageFile> {
    refuse_unfinished_restore(vfs, dir)?;
    if opts.read_only {
        let ro = lightning_page::OpenOptions {
            page_size: None,
            read_only: true,
        };
        return Ok(PageFile::open(vfs, data, ro)?);
    }
    let exists = vfs
        .exists(data)
        .map_err(|e| Error::io("look for", data, e))?;
    if exists {
        let file = PageFile::open(vfs, data, lightning_page::OpenOptions::default())?;
        if file.superblock().catalog_root.is_some() {
            return Ok(file);
        }
        if file.superblock().generation > 0 {
            return Err(Error::NotADatabase {
                dir: dir.to_path_buf(),
                reason: format!("{DATA_FILE} has checkpoints but no catalog"),
            });
        }
        tracing::warn!(dir = %dir.display(), "the database's creation was cut off before its first checkpoint; creating it again");
        drop(file);
        // Its WAL can hold nothing: the open that created it never returned.
        if let Ok(segments) = vfs.list(wal_dir) {
            for s in segments {
                vfs.remove(&s).map_err(|e| Error::io("remove", &s, e))?;
            }
        }
        vfs.remove(data)
            .map_err(|e| Error::io("remove the unfinished", data, e))?;
    } else if !opts.create_if_missing {
        return Err(Error::NotADatabase {
            dir: dir.to_path_buf(),
            reason: format!("{DATA_FILE} is missing"),
        });
    }
    let page_size = PageSize::new(u64::from(opts.page_size))?;
    let file = Arc::new(PageFile::create(vfs, data, page_size)?);
    let pages = Arc::new(lightning_btree::Store::open(
        Arc::clone(&file),
        opts.cache_bytes,
    )?);
    let catalog_tree = BTree::create(Arc::clone(&pages))?;
    let meta = Meta {
        next_id: 1,
        last_ts: Timestamp::new(0),
        db_id: new_db_id(),
    };
    catalog_tree.insert(catalog::META_KEY, &catalog::encode_meta(&meta))?;
    let root = catalog_tree.root();
    pages.checkpoint(Lsn::ZERO, move || Some(root))?;
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync the directory", dir, e))?;
    tracing::info!(dir = %dir.display(), page_size = opts.page_size, "created a new database");
    drop(catalog_tree);
    drop(pages);
    let file = Arc::into_inner(file).ok_or_else(|| Error::NotADatabase {
        dir: dir.to_path_buf(),
        reason: "the new page file is still in use".into(),
    })?;
    Ok(file)
}

/// Opens the WAL (read-only: only reads it) and replays it above the checkpoint's LSN.
pub(crate) fn recover(
    vfs: Arc<dyn Vfs>,
    wal_dir: &Path,
    opts: &Options,
    store: &TreeStore,
    catalog: &mut CatalogState,
    image_ts: Timestamp,
    checkpoint: Lsn,
) -> Result<(Option<Wal>, u64)> {
    if opts.read_only {
        let max = wal_options(wal_dir, opts).max_record_size;
        let (recovery, records) = lightning_wal::read_only(vfs, wal_dir, max, checkpoint.next())?;
        let n = replay(
            &recovery, records, store, catalog, image_ts, checkpoint, wal_dir,
        )?;
        store.fail("the database was opened read-only".into());
        Ok((None, n))
    } else {
        let db_dir = wal_dir.parent().unwrap_or(wal_dir);
        let wal = Wal::open(vfs, wal_dir, wal_options(db_dir, opts))?;
        let records = wal.read_from(checkpoint.next())?;
        let n = replay(
            wal.recovery(),
            records,
            store,
            catalog,
            image_ts,
            checkpoint,
            wal_dir,
        )?;
        Ok((Some(wal), n))
    }
}

/// Replays the WAL records above `from` into the trees and the catalog (keyspaces created
/// and dropped). Returns how many commits it applied. `image_ts` is the last commit
/// timestamp the image holds.
pub(crate) fn replay(
    recovery: &lightning_wal::Recovery,
    records: lightning_wal::RecordIter,
    store: &TreeStore,
    catalog: &mut CatalogState,
    image_ts: Timestamp,
    from: Lsn,
    wal_dir: &Path,
) -> Result<u64> {
    let span = tracing::info_span!("recovery", from = %from);
    let _span = span.enter();
    let last = recovery.last_lsn;
    if last < from {
        return Err(Error::Corruption {
            file: wal_dir.to_path_buf(),
            what: format!(
                "the WAL ends at LSN {last}, below the checkpoint's LSN {from}: segments the \
                 checkpoint needs are missing"
            ),
        });
    }
    let first = recovery.first_lsn;
    if first > from.next() {
        return Err(Error::Corruption {
            file: wal_dir.to_path_buf(),
            what: format!(
                "the WAL starts at LSN {first}, but the checkpoint needs the records from LSN \
                 {}: segments were removed too early",
                from.next()
            ),
        });
    }
    let mut applied = 0;
    let mut last_ts = image_ts;
    for rec in records {
        let rec = rec?;
        let at = |what: String| Error::Corruption {
            file: wal_dir.to_path_buf(),
            what: format!("the record at LSN {}: {what}", rec.lsn),
        };
        if rec.record_type == record::KEYSPACE {
            let ddl = record::decode_ddl(&rec.payload).map_err(at)?;
            tracing::debug!(lsn = %rec.lsn, ?ddl, "replaying a keyspace record");
            catalog.replay_ddl(store, ddl).map_err(at)?;
            continue;
        }
        if rec.record_type != record::COMMIT {
            return Err(at(format!("unknown record type {}", rec.record_type)));
        }
        let commit = record::decode(&rec.payload).map_err(at)?;
        if commit.ts <= image_ts {
            // Already in the image: the checkpoint held it but claimed only the LSN the
            // WAL had made durable.
            continue;
        }
        if commit.ts <= last_ts {
            return Err(at(format!(
                "commit timestamp {} is not above the one before it ({last_ts})",
                commit.ts
            )));
        }
        if let Some(id) = commit
            .writes
            .iter()
            .filter_map(|(k, _)| crate::keys::split(k).map(|(id, _)| id))
            .find(|id| *id == 0 || *id >= catalog.next_id())
        {
            return Err(at(format!(
                "a write to keyspace {id}, which the catalog never issued (next id {})",
                catalog.next_id()
            )));
        }
        store
            .apply(commit.ts, rec.lsn, &commit.writes, commit.ts)
            .map_err(crate::store::unstore)?;
        last_ts = commit.ts;
        applied += 1;
    }
    Ok(applied)
}
