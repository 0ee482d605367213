//! The seam every engine under test implements: open on an empty directory, one write
//! transaction at a time that commits durably, read transactions (one per thread), and the
//! size of its files.
//!
//! The trait is shaped after redb's own benchmark harness (`crates/redb-bench/benches/common.rs`)
//! so that its workloads carry over, but with closures instead of transaction objects: an
//! engine opens whatever it needs (a transaction and a table for redb, a transaction for LMDB,
//! nothing for a bare B+tree), hands the closure a [`Writer`] or [`Reader`], then commits or
//! closes. That fits engines whose handles borrow one another (redb's `Table` borrows its
//! `WriteTransaction`) and ones that are not `Sync` (a `SQLite` connection per reader: the engine
//! keeps a pool and [`Engine::read`] takes one), so later the database (`lightning-db`) and
//! `SQLite` are one more `impl Engine` and one more line in `main`.

use std::path::Path;

/// Any error from any engine: the bench fails loudly on the first one.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A result with [`BoxError`].
pub(crate) type Result<T> = std::result::Result<T, BoxError>;

/// How every engine is set up for a run.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// Bytes of cache (buffer pool) an engine that has one gets: larger than the data.
    pub(crate) cache_bytes: u64,
    /// Bytes of address space an engine that maps its file (LMDB) may map.
    pub(crate) map_bytes: u64,
}

impl Setup {
    /// The setup for `data_bytes` of keys and values: a cache larger than the data and than
    /// every file the workloads leave (copy-on-write and free pages make those 4-5x the live
    /// data), so no engine evicts; LMDB's map only reserves address space.
    pub(crate) fn for_data(data_bytes: u64) -> Self {
        Setup {
            cache_bytes: (8 * data_bytes).max(256 << 20),
            // LMDB wants a whole number of OS pages (4 KiB here; 64 KiB covers the rest).
            map_bytes: (32 * data_bytes).max(1 << 30).next_multiple_of(64 << 10),
        }
    }
}

/// A database under test.
pub(crate) trait Engine: Sync + Sized {
    /// The prefix of its figures (`redb`, `lmdb`, `lightning_btree`).
    const NAME: &'static str;

    /// What a write transaction's closure writes through.
    type Writer<'t>: Writer;
    /// What a read transaction's closure reads through.
    type Reader<'t>: Reader;

    /// Creates a database in `dir` (empty, and the engine's alone).
    fn create(dir: &Path, setup: &Setup) -> Result<Self>;

    /// How it is configured, for the figures' details.
    fn describe(&self) -> String;

    /// Runs `f` in one write transaction, then commits it durably (fsync before returning);
    /// an error from `f` aborts the transaction if the engine can.
    fn write<R>(&self, f: impl FnMut(&mut Self::Writer<'_>) -> Result<R>) -> Result<R> {
        self.write_with(true, f)
    }

    /// Runs `f` in one write transaction and commits it: durably when `durable`, else with
    /// the engine's non-durable commit (redb `Durability::None`, LMDB `MDB_NOSYNC`, `SQLite`
    /// `synchronous=NORMAL`, the database `Durability::None`, the raw tree no checkpoint):
    /// visible at once, on disk with a later durable commit. Writers from several threads
    /// take turns where the engine has one writer at a time.
    fn write_with<R>(
        &self,
        durable: bool,
        f: impl FnMut(&mut Self::Writer<'_>) -> Result<R>,
    ) -> Result<R>;

    /// Runs `f` in one read transaction (a snapshot where the engine has them). Called from
    /// several threads at once by the multi-threaded workloads.
    fn read<R>(&self, f: impl FnOnce(&mut Self::Reader<'_>) -> Result<R>) -> Result<R>;

    /// Contended pessimistic transfers between `accounts` hot accounts on `threads` threads
    /// for `budget`, where the engine has row locks (`None` where it has one writer at a
    /// time, so nothing to contend on but that).
    fn contended(
        &self,
        threads: usize,
        accounts: u32,
        budget: std::time::Duration,
    ) -> Result<Option<Vec<crate::oltp::Metric>>> {
        let _ = (threads, accounts, budget);
        Ok(None)
    }

    /// What the engine does once writes stop, before the settled file size is measured:
    /// two more durable commits that change nothing (old pages leave the retained images).
    fn settle(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        for _ in 0..2 {
            self.write(|_| Ok(()))?;
        }
        Ok(())
    }

    /// Bytes of the files in `dir` (the directory given to [`create`](Engine::create)): what
    /// redb's benchmark reports as the database's size.
    fn disk_bytes(&self, dir: &Path) -> Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(dir)? {
            let meta = entry?.metadata()?;
            if meta.is_file() {
                total += meta.len();
            }
        }
        Ok(total)
    }
}

/// Writes inside one write transaction.
pub(crate) trait Writer {
    /// Reads `key` inside the transaction (its own writes included).
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Inserts or replaces.
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes; whether the key was there.
    fn remove(&mut self, key: &[u8]) -> Result<bool>;
}

/// Reads inside one read transaction.
pub(crate) trait Reader {
    /// Looks `key` up and, when found, returns `f` of its value (read in place where the
    /// engine allows it).
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;

    /// Calls `f` on up to `n` entries from the first key `>= start`, ascending; how many it
    /// visited.
    fn range_from(&mut self, start: &[u8], n: usize, f: impl FnMut(&[u8], &[u8])) -> Result<usize>;
}
