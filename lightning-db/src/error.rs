//! The database's one error type.

use std::path::PathBuf;

/// What went wrong, where, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An [`Options`](crate::Options) field is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The field's name.
        option: &'static str,
        /// Why the value is refused, and what is accepted.
        reason: String,
    },

    /// Another handle (in this process or another) has the database open.
    #[error(
        "the database at {dir} is in use by {} (its LOCK file is held); close it there \
         first, or work on a copy",
        holder.map_or_else(|| "another open handle".to_string(), |pid| format!("process {pid}"))
    )]
    Locked {
        /// The database directory.
        dir: PathBuf,
        /// The process that holds it, when it recorded itself (read-write opens write their
        /// process id into `LOCK`) and is still running.
        holder: Option<u32>,
    },

    /// The directory holds no database and `create_if_missing` is off, or holds something
    /// else.
    #[error("{dir} is not a Lightning DB database: {reason}")]
    NotADatabase {
        /// The directory.
        dir: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },

    /// The catalog was written by a newer version of Lightning DB.
    #[error(
        "the database at {dir} has catalog format version {found}, newer than this build \
         supports ({supported}); open it with a newer Lightning DB"
    )]
    UnsupportedFormat {
        /// The directory.
        dir: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// Bytes on disk that fail their checks: a catalog entry, a version list, a WAL record.
    #[error(
        "corrupt {file}: {what}; restore from a backup (the other checkpoint image may still open)"
    )]
    Corruption {
        /// The file (or file and record) holding the damage.
        file: PathBuf,
        /// What is damaged, and where in the file.
        what: String,
    },

    /// A keyspace name that is empty, too long, or has characters outside the allowed set.
    #[error(
        "invalid keyspace name {name:?}: {reason}; use 1 to {max} bytes of letters, digits, \
         '_', '-', '.' and ':'",
        max = crate::MAX_KEYSPACE_NAME
    )]
    InvalidKeyspaceName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No keyspace has this name (and the call does not create one).
    #[error("no keyspace named {name:?}; create it with Database::keyspace")]
    NoSuchKeyspace {
        /// The name.
        name: String,
    },

    /// The keyspace was dropped after the handle was taken.
    #[error("keyspace {name:?} was dropped; take a new handle with Database::keyspace")]
    KeyspaceDropped {
        /// The name.
        name: String,
    },

    /// A keyspace handle from another database (or an earlier open of this one).
    #[error(
        "the handle of keyspace {name:?} belongs to another database or an earlier open of \
         this one; take a handle from this database with Database::keyspace"
    )]
    ForeignKeyspace {
        /// The name.
        name: String,
    },

    /// A key longer than the page size allows.
    #[error(
        "a key of {len} bytes is longer than the {max} bytes this database's page size allows; \
         use shorter keys (or a database with larger pages)"
    )]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A transaction's writes would not fit one WAL record.
    #[error(
        "the transaction's writes take {len} bytes, more than one commit holds ({max} bytes, \
         option `max_txn_bytes`); split the work into smaller transactions"
    )]
    TransactionTooLarge {
        /// The bytes its write set would take.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// A transaction error: a conflict, deadlock or lock timeout (retryable, see
    /// [`Error::is_retryable`]), or a value too large.
    #[error(transparent)]
    Txn(lightning_mvcc::Error),

    /// The transaction failed earlier and must be rolled back.
    #[error(
        "the transaction cannot go on after an earlier error ({cause}); drop it and start a \
         new one"
    )]
    TransactionAborted {
        /// The earlier error.
        cause: String,
    },

    /// The database refuses writes: opened read-only, or an earlier write or fsync failed.
    #[error(
        "the database refuses writes: {reason}; reads go on, and a reopen recovers every \
         acknowledged commit"
    )]
    ReadOnly {
        /// Why.
        reason: String,
    },

    /// A commit could be neither applied whole nor undone after a failure: the trees in
    /// memory hold part of it, so reads are refused as well as writes.
    #[error(
        "the database refuses reads and writes: {reason}; reopen it (recovery rebuilds \
         every acknowledged commit from the checkpoint and the WAL)"
    )]
    Damaged {
        /// What failed.
        reason: String,
    },

    /// The database was closed.
    #[error("the database was closed; open it again")]
    Closed,

    /// A commit whose outcome is unknown: its record reached the WAL, but making it durable
    /// or applying it failed. The database turned read-only.
    #[error(
        "commit failed after it reached the log ({cause}); the database turned read-only; \
         reopen it to learn whether the commit survived"
    )]
    CommitFailed {
        /// What failed.
        cause: String,
    },

    /// The page file.
    #[error(transparent)]
    Page(#[from] lightning_page::Error),

    /// The B+trees.
    #[error(transparent)]
    Btree(#[from] lightning_btree::Error),

    /// The write-ahead log.
    #[error(transparent)]
    Wal(#[from] lightning_wal::Error),

    /// A backup, verification or restore (`lightning_backup`).
    #[error(transparent)]
    Backup(#[from] lightning_backup::Error),

    /// A file operation outside the page file and WAL (the directory, the lock).
    #[error("could not {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the transaction may succeed: a conflict, a deadlock, a lock timeout.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Txn(e) if e.is_retryable())
    }

    /// Whether the error reports damaged bytes on disk.
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corruption { .. } => true,
            Error::Page(e) => e.is_corruption(),
            Error::Btree(e) => e.is_corruption(),
            Error::Wal(e) => e.is_corruption(),
            Error::Backup(e) => e.is_corruption(),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl From<lightning_mvcc::Error> for Error {
    fn from(e: lightning_mvcc::Error) -> Self {
        Error::Txn(e)
    }
}

/// `Result` with the database's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
