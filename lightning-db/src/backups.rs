//! The database side of backups (`lightning-backup`): a checkpoint image held still while
//! it is copied, and the log range that completes it.

use std::path::Path;
use std::sync::MutexGuard;

use lightning_backup::manifest::Manifest;
use lightning_backup::{Source, SourceError};
use lightning_mvcc::Lsn;
use lightning_page::PageFile;
use lightning_wal::Record;

use crate::Result;
use crate::db::{Checkpoints, Database, Inner};
use crate::store::lock;

/// A database's newest checkpoint image, held still for a backup to copy.
///
/// Taking one runs a checkpoint and makes the log durable; while it lives no other
/// checkpoint starts (background checkpoints wait, [`Database::checkpoint`] and keyspace
/// changes block), so no page of the image is reused. Commits and reads go on. Drop it
/// when the copy is done. [`Database::backup`] does all of this.
pub struct BackupSource<'a> {
    inner: &'a Inner,
    _checkpoints: MutexGuard<'a, Checkpoints>,
    image_lsn: Lsn,
    end_lsn: Lsn,
}

impl std::fmt::Debug for BackupSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupSource")
            .field("image_lsn", &self.image_lsn)
            .field("end_lsn", &self.end_lsn)
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub(crate) fn backup_source(&self) -> Result<BackupSource<'_>> {
        self.check_writable()?;
        let mut checkpoints = lock(&self.checkpoints);
        self.checkpoint_locked(&mut checkpoints)?;
        let image_lsn = checkpoints.image_lsn;
        let wal = self.wal()?;
        wal.sync()?;
        let end_lsn = wal.durable_lsn().max(image_lsn);
        tracing::info!(image_lsn = %image_lsn, end_lsn = %end_lsn, "backup source held");
        Ok(BackupSource {
            inner: self,
            _checkpoints: checkpoints,
            image_lsn,
            end_lsn,
        })
    }
}

impl Source for BackupSource<'_> {
    fn database_id(&self) -> u64 {
        self.inner.id()
    }

    fn page_file(&self) -> &PageFile {
        self.inner.store.pages.file()
    }

    fn image_lsn(&self) -> Lsn {
        self.image_lsn
    }

    fn end_lsn(&self) -> Lsn {
        self.end_lsn
    }

    fn wal_records(
        &self,
        from: Lsn,
    ) -> Result<Box<dyn Iterator<Item = lightning_wal::Result<Record>> + '_>, SourceError> {
        let wal = self.inner.wal().map_err(|e| Box::new(e) as SourceError)?;
        let records = wal
            .read_from(from)
            .map_err(|e| Box::new(e) as SourceError)?;
        Ok(Box::new(records))
    }
}

impl Database {
    /// Holds the newest checkpoint image still for a backup driver of one's own (see
    /// [`BackupSource`]); [`backup`](Self::backup) is the usual way.
    pub fn backup_source(&self) -> Result<BackupSource<'_>> {
        self.inner().backup_source()
    }

    /// Takes an online backup into the backup repository `dest` (created when missing): a
    /// full one, or with `incremental` only the pages written since the newest backup of
    /// this database there. Writers keep committing; checkpoints wait until the copy is
    /// done. Restoring it gives the state at the returned manifest's `end_lsn`, which
    /// covers every commit acknowledged before the call.
    ///
    /// ```
    /// use lightning_db::{Database, Options};
    /// use lightning_db::backup::{RestoreOptions, restore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path().join("db"), Options::default())?;
    /// let ks = db.keyspace("k")?;
    /// db.put(&ks, b"a", b"1")?;
    /// let full = db.backup(dir.path().join("backups"), false)?;
    /// db.put(&ks, b"b", b"2")?;
    /// let incr = db.backup(dir.path().join("backups"), true)?;
    /// assert_eq!(incr.parent, Some(full.id));
    ///
    /// let vfs: std::sync::Arc<dyn lightning_db::page::vfs::Vfs> =
    ///     std::sync::Arc::new(lightning_db::page::vfs::OsVfs::new());
    /// let to = dir.path().join("restored");
    /// restore(&vfs, &dir.path().join("backups"), &to, &RestoreOptions::default(), &mut |_, _| {})?;
    /// let back = Database::open(&to, Options::default())?;
    /// let ks = back.open_keyspace("k")?;
    /// assert_eq!(back.get(&ks, b"b")?, Some(b"2".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>, incremental: bool) -> Result<Manifest> {
        self.backup_with_progress(dest, incremental, &mut |_, _| {})
    }

    /// [`backup`](Self::backup), calling `progress(bytes done, bytes in all)` as it goes.
    pub fn backup_with_progress(
        &self,
        dest: impl AsRef<Path>,
        incremental: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Manifest> {
        let source = self.backup_source()?;
        let vfs = std::sync::Arc::clone(&self.inner().vfs);
        Ok(lightning_backup::backup(
            &*vfs,
            &source,
            dest.as_ref(),
            incremental,
            progress,
        )?)
    }
}
