//! The database: open and recovery, keyspaces, checkpoints, background work, close.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lightning_btree::BTree;
use lightning_mvcc::{Lsn, TxnManager, VersionStore};
use lightning_page::PageId;
use lightning_page::vfs::{OsVfs, Vfs, VfsLock};
use lightning_wal::Wal;

use crate::catalog::{self, Contents, Meta};
use crate::open::{lock_dir, open_page_file, open_trees, recover};
use crate::record;
use crate::stats::Counters;
use crate::store::{Applied, TreeStore, lock};
use crate::{Error, Options, Result};

/// The page file's name in the database directory.
pub const DATA_FILE: &str = lightning_backup::DATA_FILE;
/// The WAL directory's name in the database directory.
pub const WAL_DIR: &str = lightning_backup::WAL_DIR;
/// The lock file's name in the database directory.
pub const LOCK_FILE: &str = lightning_backup::LOCK_FILE;
/// The longest keyspace name, in bytes.
pub const MAX_KEYSPACE_NAME: usize = 128;
/// Keys one step of emptying a dropped keyspace removes (commits go on between steps).
const DROP_STEP: usize = 256;
/// Pages one step of a checkpoint's tail relocation moves (commits go on between steps).
const RELOCATE_STEP: u64 = 64;

/// A handle to a keyspace: a named, ordered map of byte keys to byte values. Cheap to
/// clone; valid for the database (and the open) it came from until the keyspace is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    pub(crate) id: u32,
    pub(crate) name: Arc<str>,
    pub(crate) instance: u64,
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Checks a keyspace name: 1 to [`MAX_KEYSPACE_NAME`] bytes of ASCII letters, digits, `_`,
/// `-`, `.` and `:`.
pub fn validate_keyspace_name(name: &str) -> Result<()> {
    let refuse = |reason| {
        Err(Error::InvalidKeyspaceName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_KEYSPACE_NAME {
        return refuse("it is too long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return refuse("it has a character outside the allowed set");
    }
    Ok(())
}

/// What the checkpoints of this open know.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// The newest commit the newest checkpoint's image holds (at or above its LSN).
    pub(crate) image_lsn: Lsn,
    /// The LSN of the newest durable checkpoint.
    newest: Lsn,
    /// The LSN of the checkpoint before it, once known: the WAL is kept from just above it
    /// (ADR 004), so that recovery can fall back to the older image.
    older: Option<Lsn>,
    /// WAL bytes appended when the newest checkpoint started.
    wal_bytes_at: u64,
    /// Where the repacking walk goes on: a keyspace id and a key in it.
    repack_at: (u32, Vec<u8>),
    /// Checkpoints still worth taking with nothing written, to give space back: set when
    /// one repacked or moved pages (their old pages leave the retained images two
    /// checkpoints later, and the file can be cut then), kept while a repacking walk is
    /// under way.
    space_work: u8,
}

/// The keyspaces as this open knows them.
#[derive(Debug)]
pub(crate) struct CatalogState {
    tree: BTree,
    /// Name -> (id, tree).
    keyspaces: BTreeMap<String, (u32, Arc<BTree>)>,
    /// The trees of dropped keyspaces and the old trees of rebuilt ones, each listed in the
    /// catalog as a spare for the next keyspace created. One that a reader may still hold
    /// (a snapshot that used a keyspace before it was dropped or rebuilt keeps reading that
    /// tree) is emptied by background GC once no one does.
    spares: Vec<Spare>,
    meta: Meta,
    /// The roots last written to the catalog, per keyspace id.
    written_roots: BTreeMap<u32, PageId>,
}

/// A spare tree.
#[derive(Debug)]
struct Spare {
    /// The root its catalog entry records (emptying and relocation move the root; the
    /// entry follows at the next checkpoint).
    recorded: PageId,
    tree: Arc<BTree>,
    emptied: bool,
}

/// Stops and wakes the background thread.
#[derive(Debug, Default)]
struct Background {
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Everything an open database holds.
pub(crate) struct Inner {
    /// Every file goes through it.
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) instance: u64,
    /// The WAL; `None` for a read-only open (its records were replayed into memory).
    wal: Option<Wal>,
    pub(crate) store: Arc<TreeStore>,
    pub(crate) mgr: TxnManager<TreeStore>,
    pub(crate) catalog: Mutex<CatalogState>,
    pub(crate) checkpoints: Mutex<Checkpoints>,
    pub(crate) counters: Counters,
    pub(crate) max_key_len: usize,
    closed: AtomicBool,
    background: Arc<Background>,
    _lock: Option<VfsLock>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The last handle: stops the background thread, then closes.
struct Handle {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(e) = shutdown(&self.inner, &self.thread) {
            tracing::error!(dir = %self.inner.dir.display(), error = %e, "closing the database failed; the next open recovers from the WAL");
        }
    }
}

/// An open database. `Send + Sync` and cheap to clone: every clone is the same database,
/// which closes when the last clone is dropped (or at [`close`](Self::close)).
#[derive(Clone)]
pub struct Database {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.inner.fmt(f)
    }
}

impl Database {
    pub(crate) fn inner(&self) -> &Inner {
        &self.handle.inner
    }
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

impl Database {
    /// Opens the database in `dir` (creating it when missing and
    /// [`Options::create_if_missing`] is set) on the operating system's file system.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Database> {
        Self::open_with_vfs(Arc::new(OsVfs::new()), dir.as_ref(), opts)
    }

    /// [`open`](Self::open) through `vfs` (the in-memory and crash-simulating file systems
    /// of `lightning_page::vfs`, for tests).
    pub fn open_with_vfs(vfs: Arc<dyn Vfs>, dir: &Path, opts: Options) -> Result<Database> {
        let span = tracing::info_span!("open", dir = %dir.display());
        let _span = span.enter();
        let started = Instant::now();
        opts.validate()?;
        let data = dir.join(DATA_FILE);
        let held = lock_dir(&*vfs, dir, &data, &opts)?;
        let wal_dir = dir.join(WAL_DIR);
        let file = Arc::new(open_page_file(&*vfs, dir, &data, &wal_dir, &opts)?);
        let sb = file.superblock();
        let pages = Arc::new(lightning_btree::Store::open(
            Arc::clone(&file),
            opts.cache_bytes,
        )?);
        let Some(catalog_root) = sb.catalog_root else {
            return Err(Error::NotADatabase {
                dir: dir.to_path_buf(),
                reason: format!("{DATA_FILE} has no catalog"),
            });
        };
        let catalog_tree = BTree::open(Arc::clone(&pages), catalog_root)?;
        let Contents {
            meta,
            keyspaces,
            spares,
        } = catalog::load(&catalog_tree, &data, dir)?;
        let store = TreeStore::new(
            Arc::clone(&pages),
            Applied {
                lsn: sb.checkpoint_lsn,
                ts: meta.last_ts,
            },
            data.clone(),
        );
        let store = Arc::new(if opts.read_only {
            store.read_only()
        } else {
            store
        });
        let (open_keyspaces, written_roots) = open_trees(&store, keyspaces)?;
        let max_key_len = catalog_tree.max_key_len();
        let image_ts = meta.last_ts;
        let spares = open_spares(&pages, &spares)?;
        let mut catalog = CatalogState::new(catalog_tree, open_keyspaces, spares, meta);
        catalog.written_roots = written_roots;
        let (wal, replayed) = recover(
            Arc::clone(&vfs),
            &wal_dir,
            &opts,
            &store,
            &mut catalog,
            image_ts,
            sb.checkpoint_lsn,
        )?;
        let last_ts = store.applied().ts;
        let mgr = TxnManager::with_lock_timeout(
            Arc::clone(&store),
            last_ts,
            Duration::from_millis(opts.lock_timeout_ms),
        );
        let wal_bytes = wal.as_ref().map_or(0, |w| w.stats().bytes);
        let inner = Arc::new(Inner {
            vfs,
            dir: dir.to_path_buf(),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            wal,
            store,
            mgr,
            catalog: Mutex::new(catalog),
            checkpoints: Mutex::new(Checkpoints {
                image_lsn: sb.checkpoint_lsn,
                newest: sb.checkpoint_lsn,
                older: None,
                wal_bytes_at: wal_bytes,
                repack_at: (0, Vec::new()),
                space_work: 0,
            }),
            counters: Counters::default(),
            max_key_len,
            closed: AtomicBool::new(false),
            background: Arc::default(),
            opts,
            _lock: held,
        });
        inner
            .counters
            .recovered_commits
            .store(replayed, Ordering::Relaxed);
        let thread = spawn_background(&inner)?;
        tracing::info!(
            replayed,
            last_ts = %last_ts,
            elapsed_ms = started.elapsed().as_millis(),
            "database opened"
        );
        Ok(Database {
            handle: Arc::new(Handle {
                inner,
                thread: Mutex::new(thread),
            }),
        })
    }

    /// Closes the database: stops background work, takes a final checkpoint, truncates the
    /// WAL and releases the lock. Other clones of this handle see [`Error::Closed`] from
    /// then on. Dropping the last clone does the same, logging a failure instead of
    /// returning it.
    pub fn close(self) -> Result<()> {
        shutdown(&self.handle.inner, &self.handle.thread)
    }
}

/// The catalog's spare trees. After a reopen a spare may hold what a dropped keyspace held
/// when the process stopped: each is emptied (again) before reuse, or by background GC.
fn open_spares(pages: &Arc<lightning_btree::Store>, roots: &[PageId]) -> Result<Vec<Spare>> {
    roots
        .iter()
        .map(|root| {
            Ok(Spare {
                recorded: *root,
                tree: Arc::new(BTree::open(Arc::clone(pages), *root)?),
                emptied: false,
            })
        })
        .collect()
}

/// A spare tree to reuse (one no reader holds), emptied, or a new tree; its catalog entry
/// goes.
fn take_spare_of(
    pages: &Arc<lightning_btree::Store>,
    spares: &mut Vec<Spare>,
    catalog_tree: &BTree,
) -> Result<Arc<BTree>> {
    let Some(at) = spares.iter().position(|s| Arc::strong_count(&s.tree) == 1) else {
        return Ok(Arc::new(BTree::create(Arc::clone(pages))?));
    };
    let spare = spares.swap_remove(at);
    catalog_tree.remove(&catalog::spare_key(spare.recorded))?;
    if !spare.emptied {
        empty_tree(&spare.tree, || None::<()>)?;
    }
    Ok(spare.tree)
}

impl CatalogState {
    fn new(
        tree: BTree,
        keyspaces: BTreeMap<String, (u32, Arc<BTree>)>,
        spares: Vec<Spare>,
        meta: Meta,
    ) -> Self {
        CatalogState {
            tree,
            keyspaces,
            spares,
            meta,
            written_roots: BTreeMap::new(),
        }
    }

    /// Replays a keyspace record: the catalog as it was after it. Idempotent: a record the
    /// image already holds (a create of an id below the next one to issue, a drop of a
    /// keyspace that is gone or was created again under a new id) changes nothing. The
    /// error says what is wrong; the caller adds the file and LSN.
    pub(crate) fn replay_ddl(
        &mut self,
        store: &TreeStore,
        ddl: record::Ddl,
    ) -> std::result::Result<(), String> {
        let failed = |e: Error| format!("replaying it failed: {e}");
        match ddl {
            record::Ddl::Create { id, name } => {
                validate_keyspace_name(&name).map_err(|e| e.to_string())?;
                if id < self.meta.next_id {
                    return Ok(());
                }
                if id != self.meta.next_id || id >= u32::MAX - 1 {
                    return Err(format!(
                        "keyspace {name:?} is created with id {id}, but the next id to issue \
                         is {}",
                        self.meta.next_id
                    ));
                }
                if self.keyspaces.contains_key(&name) {
                    return Err(format!(
                        "keyspace {name:?} is created with id {id} while it exists"
                    ));
                }
                let tree =
                    take_spare_of(&store.pages, &mut self.spares, &self.tree).map_err(failed)?;
                self.meta.next_id = id + 1;
                self.tree
                    .insert(catalog::META_KEY, &catalog::encode_meta(&self.meta))
                    .map_err(|e| failed(e.into()))?;
                self.tree
                    .insert(
                        &catalog::keyspace_key(&name),
                        &catalog::encode_keyspace(id, tree.root()),
                    )
                    .map_err(|e| failed(e.into()))?;
                self.written_roots.insert(id, tree.root());
                self.keyspaces.insert(name, (id, Arc::clone(&tree)));
                store.add_tree(id, tree);
            }
            record::Ddl::Drop { id, name } => {
                if self.keyspaces.get(&name).is_none_or(|(at, _)| *at != id) {
                    return Ok(());
                }
                let Some((_, tree)) = self.keyspaces.remove(&name) else {
                    return Ok(());
                };
                self.written_roots.remove(&id);
                store.remove_tree(id);
                self.tree
                    .remove(&catalog::keyspace_key(&name))
                    .map_err(|e| failed(e.into()))?;
                self.tree
                    .insert(&catalog::spare_key(tree.root()), b"")
                    .map_err(|e| failed(e.into()))?;
                self.spares.push(Spare {
                    recorded: tree.root(),
                    tree,
                    emptied: false,
                });
            }
        }
        Ok(())
    }

    /// The next keyspace id to issue.
    pub(crate) fn next_id(&self) -> u32 {
        self.meta.next_id
    }
}

/// Moves a spare's catalog entry from the root it recorded to the tree's root now.
fn follow_spare(cat: &mut CatalogState, recorded: PageId, now: PageId) -> Result<()> {
    if recorded == now {
        return Ok(());
    }
    cat.tree.remove(&catalog::spare_key(recorded))?;
    cat.tree.insert(&catalog::spare_key(now), b"")?;
    for spare in &mut cat.spares {
        if spare.recorded == recorded {
            spare.recorded = now;
        }
    }
    Ok(())
}

/// Removes every key of `tree`, [`DROP_STEP`] at a time, each step under the guard `gate`
/// returns (the store's write gate, so checkpoints see no step half done; none when the
/// caller already holds off every writer).
fn empty_tree<G>(tree: &BTree, gate: impl Fn() -> Option<G>) -> Result<()> {
    loop {
        let _step = gate();
        let batch: Vec<Vec<u8>> = tree
            .iter()
            .take(DROP_STEP)
            .map(|r| r.map(|(k, _)| k))
            .collect::<lightning_btree::Result<_>>()?;
        if batch.is_empty() {
            return Ok(());
        }
        for k in batch {
            tree.remove(&k)?;
        }
    }
}

/// Stops the background thread and closes: a final checkpoint, the WAL truncated.
fn shutdown(inner: &Arc<Inner>, thread: &Mutex<Option<JoinHandle<()>>>) -> Result<()> {
    if inner.closed.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    *lock(&inner.background.stop) = true;
    inner.background.wake.notify_all();
    if let Some(t) = lock(thread).take() {
        // A panicked background thread has nothing left to do.
        drop(t.join());
    }
    let Some(wal) = inner.wal.as_ref() else {
        return Ok(()); // read-only: nothing was written
    };
    if inner.store.failure().is_some() {
        // Nothing more may be written: the next open recovers from the WAL.
        return Ok(());
    }
    // Everything durable first, so that the final image claims every commit.
    wal.sync()?;
    inner.checkpoint_inner()?;
    wal.sync()?;
    tracing::info!(dir = %inner.dir.display(), "database closed");
    Ok(())
}

fn spawn_background(inner: &Arc<Inner>) -> Result<Option<JoinHandle<()>>> {
    if inner.opts.checkpoint_interval_ms == 0 || inner.opts.read_only {
        return Ok(None);
    }
    let worker = Arc::clone(inner);
    std::thread::Builder::new()
        .name("lightning-db-background".into())
        .spawn(move || background(&worker))
        .map(Some)
        .map_err(|e| Error::io("start the background thread for", &inner.dir, e))
}

fn background(inner: &Arc<Inner>) {
    let interval = Duration::from_millis(inner.opts.checkpoint_interval_ms);
    let tick = interval.min(Duration::from_millis(100));
    let mut last = Instant::now();
    loop {
        {
            let stop = lock(&inner.background.stop);
            let (stop, _) = inner
                .background
                .wake
                .wait_timeout(stop, tick)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *stop {
                return;
            }
        }
        if inner.store.failure().is_some() {
            continue;
        }
        let Ok(wal) = inner.wal() else { return };
        let written = wal
            .stats()
            .bytes
            .saturating_sub(lock(&inner.checkpoints).wal_bytes_at);
        let due_by_size = written >= inner.opts.checkpoint_wal_bytes;
        // With nothing written, a checkpoint is still due while it gives space back (a
        // repacking walk under way, pages moved that later checkpoints cut off the file).
        let due_by_time =
            last.elapsed() >= interval && (written > 0 || lock(&inner.checkpoints).space_work > 0);
        let retired = lock(&inner.catalog).spares.iter().any(|s| !s.emptied);
        if (inner.store.gc_queued() || retired)
            && let Err(e) = inner.gc()
        {
            tracing::warn!(error = %e, "background GC failed");
        }
        if due_by_size || due_by_time {
            last = Instant::now();
            if let Err(e) = inner.checkpoint_inner() {
                tracing::warn!(error = %e, "background checkpoint failed");
            }
        }
    }
}

impl Inner {
    /// The WAL, or `Error::ReadOnly` for a read-only open.
    pub(crate) fn wal(&self) -> Result<&Wal> {
        self.wal.as_ref().ok_or_else(|| Error::ReadOnly {
            reason: "the database was opened read-only".into(),
        })
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match self.store.failure() {
            Some(reason) => Err(Error::ReadOnly { reason }),
            None => Ok(()),
        }
    }

    /// Turns the database read-only, saying why.
    pub(crate) fn fail(&self, reason: String) {
        self.store.fail(reason);
    }

    pub(crate) fn keyspace(&self, name: &str) -> Result<Keyspace> {
        validate_keyspace_name(name)?;
        self.check_open()?;
        if let Some(ks) = self.existing_keyspace(name) {
            return Ok(ks);
        }
        self.check_writable()?;
        let mut checkpoints = lock(&self.checkpoints);
        let ks = {
            let mut cat = lock(&self.catalog);
            if let Some((id, _)) = cat.keyspaces.get(name) {
                return Ok(self.handle_of(*id, name));
            }
            let id = cat.meta.next_id;
            if id >= u32::MAX - 1 {
                return Err(Error::InvalidKeyspaceName {
                    name: name.to_owned(),
                    reason: "every keyspace id was used",
                });
            }
            let gate = self.store.write_gate();
            let tree = self.take_spare(&mut cat)?;
            cat.meta.next_id = id + 1;
            cat.tree
                .insert(catalog::META_KEY, &catalog::encode_meta(&cat.meta))?;
            cat.tree.insert(
                &catalog::keyspace_key(name),
                &catalog::encode_keyspace(id, tree.root()),
            )?;
            cat.written_roots.insert(id, tree.root());
            cat.keyspaces
                .insert(name.to_owned(), (id, Arc::clone(&tree)));
            self.store.add_tree(id, tree);
            drop(gate);
            self.handle_of(id, name)
        };
        // Commits to the keyspace may follow at once: it must be durable in the catalog
        // before any of them is, or their replay would find no keyspace. The log records
        // it too, before any of them: a replay from an older image (a point-in-time
        // restore) creates it where it was created.
        let ddl = record::Ddl::Create {
            id: ks.id,
            name: name.to_owned(),
        };
        let logged = self
            .log_ddl(&ddl)
            .and_then(|()| self.checkpoint_locked(&mut checkpoints));
        if let Err(e) = logged {
            self.fail(format!(
                "the checkpoint recording new keyspace {name:?} failed: {e}"
            ));
            return Err(e);
        }
        tracing::info!(keyspace = name, id = ks.id, "keyspace created");
        Ok(ks)
    }

    fn handle_of(&self, id: u32, name: &str) -> Keyspace {
        Keyspace {
            id,
            name: Arc::from(name),
            instance: self.instance,
        }
    }

    fn existing_keyspace(&self, name: &str) -> Option<Keyspace> {
        let cat = lock(&self.catalog);
        cat.keyspaces
            .get(name)
            .map(|(id, _)| self.handle_of(*id, name))
    }

    pub(crate) fn open_keyspace(&self, name: &str) -> Result<Keyspace> {
        validate_keyspace_name(name)?;
        self.check_open()?;
        self.existing_keyspace(name)
            .ok_or_else(|| Error::NoSuchKeyspace {
                name: name.to_owned(),
            })
    }

    pub(crate) fn keyspaces(&self) -> Vec<String> {
        lock(&self.catalog).keyspaces.keys().cloned().collect()
    }

    pub(crate) fn drop_keyspace(&self, name: &str) -> Result<()> {
        validate_keyspace_name(name)?;
        self.check_writable()?;
        let mut checkpoints = lock(&self.checkpoints);
        let (id, tree) = {
            let mut cat = lock(&self.catalog);
            let Some((id, tree)) = cat.keyspaces.remove(name) else {
                return Err(Error::NoSuchKeyspace {
                    name: name.to_owned(),
                });
            };
            cat.written_roots.remove(&id);
            self.store.remove_tree(id);
            (id, tree)
        };
        // A commit that found the tree before it left the store holds the gate while it
        // applies: once the quiet point is reached, no write to the tree is in flight and
        // none can start.
        drop(self.store.quiet());
        let recorded = (|| {
            let mut cat = lock(&self.catalog);
            let _gate = self.store.write_gate();
            cat.tree.remove(&catalog::keyspace_key(name))?;
            cat.tree.insert(&catalog::spare_key(tree.root()), b"")?;
            cat.spares.push(Spare {
                recorded: tree.root(),
                tree,
                emptied: false,
            });
            Ok(())
        })();
        // After every commit that wrote to it (the quiet point above), so that a replay
        // from an older image applies them to it and then drops it.
        let ddl = record::Ddl::Drop {
            id,
            name: name.to_owned(),
        };
        let done = recorded
            .and_then(|()| self.log_ddl(&ddl))
            .and_then(|()| self.checkpoint_locked(&mut checkpoints));
        if let Err(e) = done {
            self.fail(format!("dropping keyspace {name:?} failed: {e}"));
            return Err(e);
        }
        drop(checkpoints);
        tracing::info!(keyspace = name, id, "keyspace dropped");
        self.empty_retired()?;
        Ok(())
    }

    /// Appends a keyspace record to the WAL and syncs it.
    fn log_ddl(&self, ddl: &record::Ddl) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Err(Error::ReadOnly {
                reason: "the database was opened read-only".into(),
            });
        };
        let payload = record::encode_ddl(ddl);
        wal.append(record::KEYSPACE, &payload, lightning_wal::Durability::None)?;
        wal.sync()?;
        Ok(())
    }

    /// A spare tree to reuse, emptied (one no reader holds), or a new tree. Under the
    /// catalog lock and the write gate.
    fn take_spare(&self, cat: &mut CatalogState) -> Result<Arc<BTree>> {
        take_spare_of(&self.store.pages, &mut cat.spares, &cat.tree)
    }

    /// Empties the spare trees no reader holds any more. Commits go on between steps.
    pub(crate) fn empty_retired(&self) -> Result<()> {
        // Held here too while they are emptied, so that no keyspace creation takes them.
        let ready: Vec<Arc<BTree>> = {
            let cat = lock(&self.catalog);
            cat.spares
                .iter()
                .filter(|s| !s.emptied && Arc::strong_count(&s.tree) == 1)
                .map(|s| Arc::clone(&s.tree))
                .collect()
        };
        for tree in &ready {
            if let Err(e) = empty_tree(tree, || Some(self.store.write_gate())) {
                self.fail(format!("emptying a dropped keyspace's tree failed: {e}"));
                return Err(e);
            }
        }
        let mut cat = lock(&self.catalog);
        for spare in &mut cat.spares {
            if ready.iter().any(|t| Arc::ptr_eq(t, &spare.tree)) {
                spare.emptied = true;
            }
        }
        Ok(())
    }

    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        self.checkpoint_inner()
    }

    fn checkpoint_inner(&self) -> Result<()> {
        let mut checkpoints = lock(&self.checkpoints);
        self.checkpoint_locked(&mut checkpoints)
    }

    pub(crate) fn checkpoint_locked(&self, ck: &mut Checkpoints) -> Result<()> {
        if let Some(reason) = self.store.failure() {
            return Err(Error::ReadOnly { reason });
        }
        let span = tracing::info_span!("checkpoint");
        let _span = span.enter();
        let started = Instant::now();
        self.counters
            .peak_pages
            .fetch_max(self.store.pages.file().page_count(), Ordering::Relaxed);
        let wal = self.wal()?;
        let wal_bytes = wal.stats().bytes;
        let pages_before = self.store.pages.file().page_count();
        let (examined, freed) = self.repack_trees(ck)?;
        // Nothing written since the last checkpoint: the database is idle, and the tail is
        // worth moving down to a smaller free share (no writes to churn it up again).
        let idle = wal_bytes == ck.wal_bytes_at;
        let moved = self.relocate_tail(idle)?;
        let quiet = self.store.quiet();
        let applied = self.store.applied();
        let catalog_root = {
            let mut cat = lock(&self.catalog);
            let cat = &mut *cat;
            for (name, (id, tree)) in &cat.keyspaces {
                let root = tree.root();
                if cat.written_roots.get(id) != Some(&root) {
                    cat.tree.insert(
                        &catalog::keyspace_key(name),
                        &catalog::encode_keyspace(*id, root),
                    )?;
                    cat.written_roots.insert(*id, root);
                }
            }
            let moved: Vec<_> = cat
                .spares
                .iter()
                .map(|spare| (spare.recorded, spare.tree.root()))
                .collect();
            for (recorded, now) in moved {
                follow_spare(cat, recorded, now)?;
            }
            if cat.meta.last_ts != applied.ts {
                cat.meta.last_ts = applied.ts;
                cat.tree
                    .insert(catalog::META_KEY, &catalog::encode_meta(&cat.meta))?;
            }
            cat.tree.root()
        };
        // The image holds every commit up to `applied`, but claims only the LSN the WAL holds
        // durably: a crash may cut the log there, and records after a reopen get the LSNs
        // after it, which replay must not take for covered. The records between are in the
        // image and skipped by replay (their timestamps are at or below the catalog's). No
        // fsync inside the quiet point, where commits wait.
        let lsn = wal.durable_lsn().min(applied.lsn);
        let result = self.store.pages.checkpoint(lsn, move || {
            drop(quiet);
            Some(catalog_root)
        });
        let cp = match result {
            Ok(cp) => cp,
            Err(e) => {
                if let Some(reason) = self.store.pages.poisoned() {
                    self.fail(format!("a checkpoint failed for good: {reason}"));
                }
                return Err(e.into());
            }
        };
        let older = ck.newest;
        ck.older = Some(older);
        ck.newest = lsn;
        ck.image_lsn = applied.lsn;
        ck.wal_bytes_at = wal_bytes;
        // The older image (at `older`) needs the records above it.
        let truncated = wal.truncate_before(older.next()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "WAL truncation failed; the next checkpoint retries it");
            0
        });
        self.counters
            .repacked_leaves
            .fetch_add(freed, Ordering::Relaxed);
        self.counters
            .relocated_pages
            .fetch_add(moved, Ordering::Relaxed);
        let shrank = self.store.pages.file().page_count() < pages_before;
        ck.space_work = if freed > 0 || moved > 0 || shrank {
            3
        } else if ck.repack_at != (0, Vec::new()) {
            ck.space_work.max(1)
        } else {
            ck.space_work.saturating_sub(1)
        };
        let elapsed = started.elapsed();
        self.counters
            .checkpoint(elapsed, cp.dirty_pages.len() as u64);
        tracing::info!(
            lsn = %lsn,
            applied = %applied.lsn,
            pages = cp.dirty_pages.len(),
            truncated,
            repack_examined = examined,
            repack_freed = freed,
            relocated = moved,
            elapsed_us = elapsed.as_micros(),
            "checkpoint"
        );
        Ok(())
    }

    /// Moves tree pages from the end of the page file into free pages below it when an
    /// eighth of the file or more is free, so that the following checkpoints cut the file
    /// (a page leaves it once no retained image holds it). Commits go on meanwhile.
    /// When `idle` (nothing written since the last checkpoint), down to a thirty-second
    /// of the file free. Returns how many pages moved.
    fn relocate_tail(&self, idle: bool) -> Result<u64> {
        let stats = self.store.pages.allocator().stats();
        let (pages, free) = (stats.page_count, stats.free);
        let share = if idle { 32 } else { 8 };
        if free < 16 || free * share < pages {
            return Ok(0);
        }
        self.relocate_tail_by((pages / 16).max(64))
    }

    /// The next stretch of the repacking walk over the keyspaces' trees (ADR 012): leaves
    /// left loose by removals packed, a branch per step, each step one operation under the
    /// write gate (commits wait for one branch's leaves, tens of pages). Looks at about a
    /// sixteenth of the file's pages per checkpoint, so a walk over every tree takes some
    /// sixteen checkpoints. Returns leaves looked at and leaves freed.
    fn repack_trees(&self, ck: &mut Checkpoints) -> Result<(u64, u64)> {
        let budget = (self.store.pages.file().page_count() / 16).max(256);
        let trees: Vec<(u32, Arc<BTree>)> = {
            let cat = lock(&self.catalog);
            let mut trees: Vec<_> = cat
                .keyspaces
                .values()
                .map(|(id, t)| (*id, Arc::clone(t)))
                .collect();
            trees.sort_unstable_by_key(|(id, _)| *id);
            trees
        };
        let (mut examined, mut freed) = (0, 0);
        for (id, tree) in trees {
            if id < ck.repack_at.0 {
                continue;
            }
            if id > ck.repack_at.0 {
                ck.repack_at = (id, Vec::new());
            }
            while examined < budget {
                let step = {
                    let _gate = self.store.write_gate();
                    tree.repack_step(&ck.repack_at.1)?
                };
                examined += step.examined;
                freed += step.freed;
                if let Some(next) = step.next {
                    ck.repack_at.1 = next;
                } else {
                    // This tree is done: the next one, from its first key.
                    ck.repack_at = (id.saturating_add(1), Vec::new());
                    break;
                }
            }
            if examined >= budget {
                return Ok((examined, freed));
            }
        }
        // Every tree walked: the next walk starts from the first.
        ck.repack_at = (0, Vec::new());
        Ok((examined, freed))
    }

    /// Moves at most `budget` pages of the trees from the tail into free pages below it.
    /// Returns how many moved.
    fn relocate_tail_by(&self, budget: u64) -> Result<u64> {
        let mut left = budget;
        let trees: Vec<Arc<BTree>> = {
            let cat = lock(&self.catalog);
            cat.keyspaces
                .values()
                .map(|(_, t)| Arc::clone(t))
                .chain(cat.spares.iter().map(|s| Arc::clone(&s.tree)))
                .collect()
        };
        // In steps of `RELOCATE_STEP` pages, each one operation under the write gate: commits
        // wait for one step, not for the whole budget (the first checkpoint after the peer
        // bench's removals spends 75 ms relocating; in one operation every commit waited).
        for tree in trees {
            while left > 0 {
                let step = left.min(RELOCATE_STEP);
                let moved = {
                    let _gate = self.store.write_gate();
                    tree.relocate_tail(step)?.min(step)
                };
                left -= moved;
                if moved < step {
                    break; // nothing more of this tree in the tail
                }
            }
        }
        while left > 0 {
            let step = left.min(RELOCATE_STEP);
            let moved = {
                let cat = lock(&self.catalog);
                let _gate = self.store.write_gate();
                cat.tree.relocate_tail(step)?.min(step)
            };
            left -= moved;
            if moved < step {
                break;
            }
        }
        Ok(budget - left)
    }

    pub(crate) fn gc(&self) -> Result<u64> {
        self.check_writable()?;
        let span = tracing::debug_span!("gc");
        let _span = span.enter();
        self.empty_retired()?;
        self.store.gc_pass(self.mgr.oracle().oldest_active())
    }

    pub(crate) fn compact(&self) -> Result<()> {
        self.check_writable()?;
        let span = tracing::info_span!("compact");
        let _span = span.enter();
        self.gc()?;
        let mut checkpoints = lock(&self.checkpoints);
        let rebuilt = self.rebuild_trees();
        if let Err(e) = rebuilt {
            self.fail(format!("compaction failed: {e}"));
            return Err(e);
        }
        // The old trees, unless a snapshot still reads them (then GC empties them later).
        self.empty_retired()?;
        // The old trees' pages are free once two checkpoints passed; moving the new trees'
        // tail pages down lets the file shrink to them.
        // Until nothing moved, nothing waits for the retained images to pass it, and the
        // file stopped shrinking (at most 24 checkpoints).
        let mut pages = self.store.pages.file().page_count();
        for _ in 0..24 {
            let moved = self.relocate_tail_by(u64::MAX)?;
            self.checkpoint_locked(&mut checkpoints)?;
            let now = self.store.pages.file().page_count();
            let pending = self.store.pages.allocator().stats().pending;
            if moved == 0 && pending == 0 && now >= pages {
                break;
            }
            pages = now;
        }
        Ok(())
    }

    /// Rebuilds every keyspace's tree, packed, while commits wait: each tree is copied into
    /// an empty one (a spare when there is one) with its nodes filled to 90 %, swapped in,
    /// and the old one emptied and kept as a spare.
    fn rebuild_trees(&self) -> Result<()> {
        let _quiet = self.store.quiet();
        let mut cat = lock(&self.catalog);
        let cat = &mut *cat;
        for (name, (id, tree)) in &mut cat.keyspaces {
            let fresh = take_spare_of(&self.store.pages, &mut cat.spares, &cat.tree)?;
            let mut failure = None;
            let rows = tree.iter().map_while(|r| match r {
                Ok(row) => Some(row),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            });
            let loaded = fresh.bulk_load(rows, 0.9);
            if let Some(e) = failure {
                return Err(e.into());
            }
            loaded?;
            self.store.add_tree(*id, Arc::clone(&fresh));
            let old = std::mem::replace(tree, fresh);
            cat.tree.insert(&catalog::spare_key(old.root()), b"")?;
            cat.spares.push(Spare {
                recorded: old.root(),
                tree: old,
                emptied: false,
            });
            tracing::info!(keyspace = %name, "keyspace rebuilt");
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    pub(crate) fn id(&self) -> u64 {
        lock(&self.catalog).meta.db_id
    }

    pub(crate) fn checkpoint_lsn(&self) -> Lsn {
        lock(&self.checkpoints).newest
    }

    pub(crate) fn check(&self) -> Result<Vec<String>> {
        use std::collections::BTreeMap as Map;
        let _no_checkpoint = lock(&self.checkpoints);
        let _quiet = self.store.quiet();
        let cat = lock(&self.catalog);
        let mut problems = Vec::new();
        let mut owner: Map<PageId, String> = Map::new();
        let mut walk = |name: String, tree: &BTree| -> Result<()> {
            let report = tree.check_structure()?;
            for p in &report.problems {
                problems.push(format!("{name}: {p}"));
            }
            for page in report.reachable {
                if let Some(other) = owner.insert(page, name.clone()) {
                    problems.push(format!(
                        "page {page}: reachable from {other} and from {name}"
                    ));
                }
            }
            Ok(())
        };
        walk("the catalog".into(), &cat.tree)?;
        for (name, (_, tree)) in &cat.keyspaces {
            walk(format!("keyspace {name:?}"), tree)?;
        }
        for spare in &cat.spares {
            walk(
                format!("the spare tree recorded at page {}", spare.recorded),
                &spare.tree,
            )?;
        }
        let alloc = self.store.pages.allocator();
        let free: std::collections::BTreeSet<PageId> = alloc
            .free_pages()
            .chain(alloc.pending_pages())
            .chain(alloc.list_pages().iter().copied())
            .collect();
        for p in lightning_page::FIRST_DATA_PAGE.get()..alloc.page_count() {
            let p = PageId::new(p);
            match (owner.get(&p), free.contains(&p)) {
                (Some(name), true) => problems.push(format!(
                    "page {p}: reachable from {name} but free in the allocator"
                )),
                (None, false) => problems.push(format!(
                    "page {p}: allocated but reachable from no tree (leaked)"
                )),
                _ => {}
            }
        }
        Ok(problems)
    }

    pub(crate) fn stored_versions(&self, ks: &Keyspace, key: &[u8]) -> Result<usize> {
        let list = self
            .store
            .versions(&crate::keys::join(ks.id, key))
            .map_err(crate::store::unstore)?;
        Ok(list.versions().len())
    }
}

impl Database {
    /// How many versions of `key` in `ks` the database keeps now (for inspection tools
    /// and tests of version GC): superseded values and tombstones that an open snapshot
    /// may still see, or that GC has not reached yet, count too.
    pub fn stored_versions(&self, ks: &Keyspace, key: &[u8]) -> Result<usize> {
        self.inner().resolve(ks)?;
        self.inner().stored_versions(ks, key)
    }

    /// The handle of keyspace `name`, creating it (durably: a checkpoint records it) if it
    /// does not exist.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        self.inner().keyspace(name)
    }

    /// The handle of keyspace `name` if it exists ([`Error::NoSuchKeyspace`] if not).
    pub fn open_keyspace(&self, name: &str) -> Result<Keyspace> {
        self.inner().open_keyspace(name)
    }

    /// The names of every keyspace, sorted.
    pub fn keyspaces(&self) -> Vec<String> {
        self.inner().keyspaces()
    }

    /// Drops keyspace `name` and everything in it, durably. Transactions open on it see no
    /// more of it; handles to it become [`Error::KeyspaceDropped`]. Its tree is emptied and
    /// kept for the next keyspace created; its id is never reused.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.inner().drop_keyspace(name)
    }

    /// Makes everything committed so far durable in the page file and truncates the WAL
    /// below what the older of the two checkpoint images needs. Readers and writers go on
    /// while the pages are written; commits pause only while the catalog records the roots
    /// and the generation ends.
    pub fn checkpoint(&self) -> Result<()> {
        self.inner().checkpoint()
    }

    /// Removes the versions no open snapshot can see from the keys changed since the last
    /// pass (the background thread runs it too). Returns how many versions went.
    pub fn gc(&self) -> Result<u64> {
        self.inner().gc()
    }

    /// Runs GC, a checkpoint, and then moves pages off the end of the page file so that the
    /// file shrinks at the next checkpoints. Commits go on meanwhile.
    pub fn compact(&self) -> Result<()> {
        self.inner().compact()
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        self.inner().path()
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        self.inner().options()
    }

    /// The database's id, random at creation.
    pub fn id(&self) -> u64 {
        self.inner().id()
    }

    /// The LSN of the newest durable checkpoint.
    pub fn checkpoint_lsn(&self) -> Lsn {
        self.inner().checkpoint_lsn()
    }

    /// Checks the whole page file: every tree (the catalog's and each keyspace's) with all
    /// its invariants and checksums, no page reachable from two trees or twice from one,
    /// and every allocated page reachable or free (none leaked). Returns the problems
    /// found, each naming the keyspace and page; empty for a sound database. Holds off
    /// commits and checkpoints while it walks.
    pub fn check(&self) -> Result<Vec<String>> {
        self.inner().check()
    }
}
