//! redb: one table of `&[u8]` to `&[u8]`, a cache of [`Setup::cache_bytes`], the default
//! durability (`Immediate`: a commit is durable when it returns).

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::{Engine, Reader, Result, Setup, Writer};

const TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("bench");

/// A redb database in one file.
pub(crate) struct Redb {
    db: Database,
    cache_bytes: u64,
}

/// Writes through the table opened in the write transaction.
pub(crate) struct RedbWriter<'t> {
    table: redb::Table<'t, &'static [u8], &'static [u8]>,
}

/// Reads through the table opened in the read transaction.
pub(crate) struct RedbReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Engine for Redb {
    const NAME: &'static str = "redb";
    type Writer<'t> = RedbWriter<'t>;
    type Reader<'t> = RedbReader;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(usize::try_from(setup.cache_bytes)?)
            .create(dir.join("data.redb"))?;
        // The table exists before the first read transaction opens it.
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Redb {
            db,
            cache_bytes: setup.cache_bytes,
        })
    }

    fn describe(&self) -> String {
        format!(
            "redb 4, cache {} MiB, Durability::Immediate (non-durable commits: Durability::None), 4 KiB pages",
            self.cache_bytes >> 20
        )
    }

    fn write_with<R>(
        &self,
        durable: bool,
        mut f: impl FnMut(&mut RedbWriter<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut txn = self.db.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None)?;
        }
        let out = {
            let mut writer = RedbWriter {
                table: txn.open_table(TABLE)?,
            };
            f(&mut writer)?
        };
        txn.commit()?;
        Ok(out)
    }

    fn read<R>(&self, f: impl FnOnce(&mut RedbReader) -> Result<R>) -> Result<R> {
        let txn = self.db.begin_read()?;
        let mut reader = RedbReader {
            table: txn.open_table(TABLE)?,
        };
        f(&mut reader)
    }
}

impl Writer for RedbWriter<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(ReadableTable::get(&self.table, key)?.map(|v| v.value().to_vec()))
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.table.insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.table.remove(key)?.is_some())
    }
}

impl Reader for RedbReader {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        // The trait's lifetime-bound accessor, as redb's own benchmark calls it (the inherent
        // `get` returns a reference-counted guard).
        Ok(ReadableTable::get(&self.table, key)?.map(|v| f(v.value())))
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let mut seen = 0;
        for entry in ReadableTable::range(&self.table, start..)?.take(n) {
            let (k, v) = entry?;
            f(k.value(), v.value());
            seen += 1;
        }
        Ok(seen)
    }
}
