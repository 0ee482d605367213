//! LMDB through heed: one unnamed database of raw bytes, the default flags (a commit syncs
//! the data file before it returns), a map of [`Setup::map_bytes`]. LMDB has no cache of its
//! own: it reads through the OS page cache of its memory map.

use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes;
use heed::{
    CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, FlagSetMode, RoTxn, RwTxn, WithTls,
};
use std::sync::Mutex;

use crate::engine::{Engine, Reader, Result, Setup, Writer};

/// An LMDB environment with one database.
pub(crate) struct Lmdb {
    env: Env,
    db: Database<'static, Bytes, Bytes>,
    map_bytes: u64,
    /// Whether `MDB_NOSYNC` is on (non-durable commits).
    nosync: Mutex<bool>,
}

/// Writes in one write transaction.
pub(crate) struct LmdbWriter<'t> {
    db: Database<'static, Bytes, Bytes>,
    txn: RwTxn<'t>,
}

/// Reads in one read transaction.
pub(crate) struct LmdbReader<'t> {
    db: Database<'static, Bytes, Bytes>,
    txn: RoTxn<'t, WithTls>,
}

impl Engine for Lmdb {
    const NAME: &'static str = "lmdb";
    type Writer<'t> = LmdbWriter<'t>;
    type Reader<'t> = LmdbReader<'t>;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(usize::try_from(setup.map_bytes)?);
        #[expect(unsafe_code, reason = "heed's open is unsafe: LMDB maps the file")]
        // SAFETY: heed asks that the file is not opened twice by this process at once, not
        // truncated or written by anyone else while mapped, and the map not used after the
        // file changes under it. The directory is this engine's alone, fresh, and only this
        // `Env` opens it.
        let env = unsafe { options.open(dir)? };
        let db = env
            .create_databases_and_commit(env.write_txn()?, |opener, txn| {
                let db = opener.create_database::<Bytes, Bytes>(txn, None)?;
                Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(db))
            })?
            .unwrap_commit();
        Ok(Lmdb {
            env,
            db,
            map_bytes: setup.map_bytes,
            nosync: Mutex::new(false),
        })
    }

    fn describe(&self) -> String {
        format!(
            "LMDB (heed 0.23), default flags (sync on commit; non-durable commits: MDB_NOSYNC), map {} MiB, 4 KiB pages, OS page cache",
            self.map_bytes >> 20
        )
    }

    fn write_with<R>(
        &self,
        durable: bool,
        mut f: impl FnMut(&mut LmdbWriter<'_>) -> Result<R>,
    ) -> Result<R> {
        {
            // LMDB's sync mode is the environment's: switched when a write asks for the other
            // one (the workloads switch between phases, never while writes are in flight).
            let mut nosync = self.nosync.lock().map_err(|_| "LMDB mode lock poisoned")?;
            if *nosync == durable {
                let mode = if durable {
                    FlagSetMode::Disable
                } else {
                    FlagSetMode::Enable
                };
                #[expect(unsafe_code, reason = "heed marks changing LMDB's flags unsafe")]
                // SAFETY: heed's concern is the unsafe flags (NO_SYNC among them) losing data
                // on a crash; that is what a non-durable commit means here, and a durable
                // commit switches syncing back on (and its commit syncs everything before it).
                unsafe {
                    self.env.set_flags(EnvFlags::NO_SYNC, mode)?;
                }
                *nosync = !durable;
            }
        }
        let mut writer = LmdbWriter {
            db: self.db,
            txn: self.env.write_txn()?,
        };
        let out = f(&mut writer)?;
        writer.txn.commit()?;
        Ok(out)
    }

    fn read<R>(&self, f: impl FnOnce(&mut LmdbReader<'_>) -> Result<R>) -> Result<R> {
        let mut reader = LmdbReader {
            db: self.db,
            txn: self.env.read_txn()?,
        };
        f(&mut reader)
    }
}

impl Writer for LmdbWriter<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(&self.txn, key)?.map(<[u8]>::to_vec))
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put(&mut self.txn, key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.db.delete(&mut self.txn, key)?)
    }
}

impl Reader for LmdbReader<'_> {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.db.get(&self.txn, key)?.map(f))
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let range = (Bound::Included(start), Bound::Unbounded);
        let mut seen = 0;
        for entry in self.db.range(&self.txn, &range)?.take(n) {
            let (k, v) = entry?;
            f(k, v);
            seen += 1;
        }
        Ok(seen)
    }
}
