//! What a database gives the backup driver: a pinned checkpoint image and its log.

use lightning_page::PageFile;
use lightning_wal::{Lsn, Record};

/// An error of the database being backed up.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// A database's durable checkpoint image, held still while a backup copies it, and the log
/// records that complete it.
///
/// `lightning-db` implements it (`Database::backup_source`): it takes a checkpoint, keeps
/// further checkpoints from starting while the source lives (so no page of the image is
/// reused: ADR 004 keeps the two newest images intact), and makes the log durable through
/// [`end_lsn`](Self::end_lsn). Writers keep committing meanwhile.
pub trait Source {
    /// The database's id (backups of different databases never chain).
    fn database_id(&self) -> u64;

    /// The page file. Its [`superblock`](PageFile::superblock) is the image to copy, and
    /// no page of that image changes while the source lives.
    fn page_file(&self) -> &PageFile;

    /// The newest commit whose effects the image holds: at or above the image's checkpoint
    /// LSN (a checkpoint claims only what the log had made durable, ADR 012).
    fn image_lsn(&self) -> Lsn;

    /// The last durable log record the backup copies (at or above
    /// [`image_lsn`](Self::image_lsn)).
    fn end_lsn(&self) -> Lsn;

    /// The log's records from `from` on, in order, each once.
    fn wal_records(
        &self,
        from: Lsn,
    ) -> Result<Box<dyn Iterator<Item = lightning_wal::Result<Record>> + '_>, SourceError>;
}
