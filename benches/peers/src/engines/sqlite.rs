//! `SQLite` (bundled, through `rusqlite`): one `WITHOUT ROWID` table of blob keys and values,
//! WAL journal mode with `synchronous=FULL` (a commit is durable when it returns: the WAL is
//! fsynced at every commit), a page cache of [`Setup::cache_bytes`], one prepared (cached)
//! statement per operation.
//!
//! A connection is not `Sync`: writes go through one connection behind a mutex (`SQLite` has
//! one writer at a time anyway), reads through a pool of connections, one per reading thread
//! at a time, each read in its own `BEGIN` … `COMMIT` (a snapshot in WAL mode).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::engine::{Engine, Reader, Result, Setup, Writer};

/// A database file, its writer connection and the idle reader connections.
pub(crate) struct Sqlite {
    path: PathBuf,
    cache_kib: u64,
    /// The writer connection and whether it runs `synchronous=FULL` (else `NORMAL`).
    writer: Mutex<(Connection, bool)>,
    readers: Mutex<Vec<Connection>>,
}

/// Writes of one transaction.
pub(crate) struct SqliteWriter<'t> {
    conn: &'t Connection,
}

/// Reads of one transaction.
pub(crate) struct SqliteReader<'t> {
    conn: &'t Connection,
}

fn connect(path: &Path, cache_kib: u64) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // journal_mode returns the mode it set: a row, so query it.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite refused WAL mode (got {mode})").into());
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous=FULL; PRAGMA cache_size=-{cache_kib}; PRAGMA temp_store=MEMORY;"
    ))?;
    // Statements are prepared once per connection and reused from its cache.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| "a SQLite connection's lock is poisoned".into())
}

impl Engine for Sqlite {
    const NAME: &'static str = "sqlite";
    type Writer<'t> = SqliteWriter<'t>;
    type Reader<'t> = SqliteReader<'t>;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let path = dir.join("data.sqlite");
        let cache_kib = setup.cache_bytes >> 10;
        let conn = connect(&path, cache_kib)?;
        conn.execute_batch(
            "CREATE TABLE bench (k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(Sqlite {
            path,
            cache_kib,
            writer: Mutex::new((conn, true)),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn describe(&self) -> String {
        format!(
            "SQLite {} (bundled, rusqlite), WAL journal, synchronous=FULL (non-durable commits: NORMAL), cache {} MiB, one WITHOUT ROWID table, cached prepared statements",
            rusqlite::version(),
            self.cache_kib >> 10
        )
    }

    fn write_with<R>(
        &self,
        durable: bool,
        mut f: impl FnMut(&mut SqliteWriter<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut guard = lock(&self.writer)?;
        let (conn, full) = &mut *guard;
        if *full != durable {
            // synchronous=NORMAL in WAL mode: no fsync at commit, the WAL is synced at
            // checkpoints (SQLite's documented non-durable mode).
            conn.execute_batch(if durable {
                "PRAGMA synchronous=FULL"
            } else {
                "PRAGMA synchronous=NORMAL"
            })?;
            *full = durable;
        }
        let conn = &*conn;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let out = f(&mut SqliteWriter { conn });
        match out {
            Ok(out) => {
                conn.execute_batch("COMMIT")?;
                Ok(out)
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                Err(e)
            }
        }
    }

    fn read<R>(&self, f: impl FnOnce(&mut SqliteReader<'_>) -> Result<R>) -> Result<R> {
        let idle = lock(&self.readers)?.pop();
        let conn = match idle {
            Some(c) => c,
            None => connect(&self.path, self.cache_kib)?,
        };
        conn.execute_batch("BEGIN")?;
        let out = f(&mut SqliteReader { conn: &conn });
        conn.execute_batch("COMMIT")?;
        lock(&self.readers)?.push(conn);
        out
    }
}

impl Writer for SqliteWriter<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT v FROM bench WHERE k = ?1")?;
        Ok(stmt.query_row(params![key], |row| row.get(0)).optional()?)
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO bench (k, v) VALUES (?1, ?2)")?
            .execute(params![key, value])?;
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM bench WHERE k = ?1")?
            .execute(params![key])?;
        Ok(n == 1)
    }
}

impl Reader for SqliteReader<'_> {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT v FROM bench WHERE k = ?1")?;
        // The value borrowed from the row (no copy), as the other engines read in place.
        Ok(stmt
            .query_row(params![key], |row| Ok(f(row.get_ref(0)?.as_blob()?)))
            .optional()?)
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT k, v FROM bench WHERE k >= ?1 ORDER BY k LIMIT ?2")?;
        let mut rows = stmt.query(params![start, i64::try_from(n)?])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            f(row.get_ref(0)?.as_blob()?, row.get_ref(1)?.as_blob()?);
            seen += 1;
        }
        Ok(seen)
    }
}
