//! The database (`lightning-db`) through its public API: one keyspace, each write a
//! [`WriteTx`] committed `Immediate` (its WAL record fsynced by group commit), each read a
//! [`ReadTx`] snapshot; background checkpoints by WAL size and interval, as a user gets them.

use std::ops::ControlFlow;
use std::path::Path;

use lightning_db::{Database, Keyspace, Options, ReadTx, WriteTx};

use crate::engine::{Engine, Reader, Result, Setup, Writer};

/// A database with one keyspace.
pub(crate) struct LightningDb {
    db: Database,
    ks: Keyspace,
    cache_bytes: u64,
}

/// Writes of one transaction.
pub(crate) struct DbWriter<'t> {
    tx: WriteTx<'t>,
    ks: &'t Keyspace,
}

/// Reads of one snapshot.
pub(crate) struct DbReader<'t> {
    tx: ReadTx<'t>,
    ks: &'t Keyspace,
}

impl Engine for LightningDb {
    const NAME: &'static str = "lightning_db";
    type Writer<'t> = DbWriter<'t>;
    type Reader<'t> = DbReader<'t>;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let db = Database::open(
            dir,
            Options {
                cache_bytes: setup.cache_bytes,
                // The bulk load and the removals are one transaction each.
                max_txn_bytes: 1 << 30,
                ..Options::default()
            },
        )?;
        let ks = db.keyspace("bench")?;
        Ok(LightningDb {
            db,
            ks,
            cache_bytes: setup.cache_bytes,
        })
    }

    fn describe(&self) -> String {
        let s = self.db.stats();
        format!(
            "lightning-db (Database on the OS file system), one keyspace, Immediate commits, Snapshot isolation, buffer pool {} MiB, {} KiB pages, background checkpoints every {} MiB of WAL or {} s; over the round: {} checkpoints, {} GC passes, {} cache misses",
            self.cache_bytes >> 20,
            s.file.page_size >> 10,
            self.db.options().checkpoint_wal_bytes >> 20,
            self.db.options().checkpoint_interval_ms / 1000,
            s.checkpoint.count,
            s.gc.passes,
            s.cache.misses
        )
    }

    fn write<R>(&self, f: impl FnOnce(&mut DbWriter<'_>) -> Result<R>) -> Result<R> {
        let mut w = DbWriter {
            tx: self.db.begin_write()?,
            ks: &self.ks,
        };
        let out = f(&mut w)?;
        w.tx.commit()?;
        Ok(out)
    }

    fn read<R>(&self, f: impl FnOnce(&mut DbReader<'_>) -> Result<R>) -> Result<R> {
        f(&mut DbReader {
            tx: self.db.begin_read()?,
            ks: &self.ks,
        })
    }
}

impl Writer for DbWriter<'_> {
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.tx.put(self.ks, key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let existed = self.tx.get(self.ks, key)?.is_some();
        self.tx.delete(self.ks, key)?;
        Ok(existed)
    }
}

impl Reader for DbReader<'_> {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.tx.get_with(self.ks, key, f)?)
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        // Rows borrowed from their pages, as the raw tree's engine reads them.
        let mut seen = 0;
        self.tx.scan_with(self.ks, start.., |k, v| {
            f(k, v);
            seen += 1;
            if seen == n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(seen)
    }
}
