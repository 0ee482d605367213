//! The crate's one error type.

use std::path::PathBuf;

use lightning_wal::Lsn;

/// What a backup, verify, restore or recovery could not do, where, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system refused an operation.
    #[error("backup I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being attempted.
        op: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A backup's bytes do not match what its manifest promises (or the manifest itself is
    /// damaged). Nothing is restored from a damaged backup.
    #[error(
        "backup corruption in {file}: {what}; this backup cannot be trusted: verify the \
         others with `lightning verify` and restore from an intact one"
    )]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Which check failed, and where in the file.
        what: String,
    },

    /// A backup that was cut short (its manifest was never written).
    #[error(
        "backup {id} in {dest} is incomplete (it was interrupted); it is not used: take a \
         new backup, and prune removes the leftover"
    )]
    Incomplete {
        /// The backup repository.
        dest: PathBuf,
        /// The backup's id.
        id: u64,
    },

    /// No complete backup with that id, or none at all.
    #[error("{dest} holds no complete backup {what}")]
    NotFound {
        /// The backup repository.
        dest: PathBuf,
        /// What was looked for.
        what: String,
    },

    /// The backups of a chain do not fit together.
    #[error("backup chain broken at backup {id}: {reason}")]
    Chain {
        /// The backup where the chain breaks.
        id: u64,
        /// What does not fit.
        reason: String,
    },

    /// Recovery needs log records that no source holds.
    #[error(
        "point-in-time recovery needs WAL records {from} to {to}, which are in no backup and \
         no archive given (archived segments missing or pruned); recover to a point before \
         LSN {from}, or give the directory that holds them"
    )]
    WalGap {
        /// First missing record.
        from: Lsn,
        /// Last missing record needed.
        to: Lsn,
    },

    /// The recovery target lies before the oldest usable backup.
    #[error("cannot recover to {target}: {reason}")]
    Target {
        /// The target as given.
        target: String,
        /// Why it cannot be reached.
        reason: String,
    },

    /// Restore would overwrite something.
    #[error(
        "{dir} is not empty; restore writes only into a new or empty directory (pass the \
         overwrite flag, `--force` on the command line, to replace what is there)"
    )]
    NotEmpty {
        /// The destination.
        dir: PathBuf,
    },

    /// A page of the database image is damaged or unreadable.
    #[error(transparent)]
    Page(#[from] lightning_page::Error),

    /// The log could not be read or written.
    #[error(transparent)]
    Wal(#[from] lightning_wal::Error),

    /// The database being backed up failed.
    #[error("the database being backed up failed: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn io(
        op: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            op: op.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            what: what.into(),
        }
    }

    /// True for damage to a backup's bytes or manifest (as opposed to I/O or usage errors).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corruption { .. } => true,
            Error::Page(e) => e.is_corruption(),
            Error::Wal(e) => e.is_corruption(),
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
