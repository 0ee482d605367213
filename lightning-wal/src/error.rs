use std::path::PathBuf;

/// Everything that can go wrong in `lightning-wal`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system refused an operation.
    #[error("WAL I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being attempted.
        op: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The log is damaged where it cannot be a torn tail: a bad record followed by records
    /// written after it was durable, a missing segment, or a damaged archive index.
    #[error(
        "WAL corruption in {file} at offset {offset}: {what} ({detail}); the log cannot be \
         replayed past this point: restore from a backup"
    )]
    Corruption {
        /// The segment (or archive index) holding the damage.
        file: PathBuf,
        /// Byte offset of the damaged record (line number for the archive index).
        offset: u64,
        /// Which check failed.
        what: &'static str,
        /// What was expected and found.
        detail: String,
    },

    /// An earlier write or fsync of the log failed. Records since the last successful sync
    /// may be lost and a retried fsync proves nothing, so the log refuses all further work.
    #[error(
        "the WAL refuses writes since an earlier write or sync failed ({cause}); reopen the database to recover"
    )]
    Poisoned {
        /// The first failure.
        cause: String,
    },

    /// A record larger than the configured maximum.
    #[error("WAL record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The payload length given.
        len: usize,
        /// The configured maximum.
        max: u32,
    },

    /// Options that cannot work.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(&'static str),

    /// The log was closed.
    #[error("the WAL is closed")]
    Closed,
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

    /// `true` when the bytes on disk are damaged and retrying cannot help.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
