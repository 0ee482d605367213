use crate::{LogError, Timestamp};

/// Everything that can go wrong in `lightning-mvcc`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Validation failed: another transaction committed a conflicting change after this
    /// one's snapshot. Retry the transaction.
    #[error("transaction conflict: {0}; retry the transaction")]
    Conflict(Conflict),

    /// This transaction was chosen to break a deadlock (the youngest in a wait-for cycle).
    /// Its locks are released on rollback; retry it.
    #[error("transaction {txn} was chosen as the victim of a deadlock; roll it back and retry")]
    Deadlock {
        /// The victim.
        txn: crate::TxnId,
    },

    /// A lock wait ran into the lock timeout.
    #[error("gave up waiting for a lock after {waited:?}; retry the transaction")]
    LockTimeout {
        /// How long it waited.
        waited: std::time::Duration,
    },

    /// A value is longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN), the most a version
    /// holds (inline or in overflow pages). Nothing was written.
    #[error(
        "a value of {len} bytes is longer than the largest a version holds ({max} bytes); \
         split it into smaller values"
    )]
    ValueTooLarge {
        /// The value's length.
        len: u64,
        /// The limit, [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
        max: u64,
    },

    /// A key has more versions than a version list can encode.
    #[error(
        "a key has {count} versions, more than a version list holds ({max}); end the \
         long-lived snapshots that keep old versions from being trimmed"
    )]
    TooManyVersions {
        /// The number of versions.
        count: u64,
        /// The limit.
        max: u64,
    },

    /// A version list read from storage is malformed.
    #[error("corrupt version list: {0}")]
    Corrupt(&'static str),

    /// The version store failed to read or write (an I/O error, a damaged page, a store
    /// that refuses writes after an earlier failure). The cause says what and where.
    #[error("the version store failed: {0}")]
    Store(#[source] LogError),

    /// The commit log refused the commit's record ([`CommitLog::log`] failed): the
    /// transaction did not commit, and nothing of it was applied or published.
    ///
    /// [`CommitLog::log`]: crate::CommitLog::log
    #[error(
        "commit {ts} could not be logged, so nothing of it was applied: {cause}; the log is \
         likely unusable: stop writing and reopen the database"
    )]
    LogFailed {
        /// The commit timestamp it was given (never published).
        ts: Timestamp,
        /// What the log reported.
        cause: LogError,
    },

    /// The commit's record was logged, but waiting for it to become durable failed
    /// ([`CommitLog::wait`]): the transaction was not applied or published, yet its record
    /// may survive in the log and be replayed after a restart.
    ///
    /// [`CommitLog::wait`]: crate::CommitLog::wait
    #[error(
        "commit {ts} was logged but could not be made durable, so it was not applied, though \
         its record may still be replayed after a restart: {cause}; stop writing and reopen \
         the database to learn its outcome"
    )]
    NotDurable {
        /// The commit timestamp it was given (never published).
        ts: Timestamp,
        /// What the log reported.
        cause: LogError,
    },
}

/// Which validation failed, naming the key or range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// A key this transaction wrote, or read with `get_for_update`, was written and
    /// committed by another transaction after this one's snapshot (first committer wins).
    WriteWrite {
        /// The key.
        key: Vec<u8>,
    },
    /// A key this transaction read was changed by a commit after its snapshot
    /// (serializable only).
    ReadWrite {
        /// The key.
        key: Vec<u8>,
    },
    /// A range this transaction scanned gained, lost or changed a key by a commit after its
    /// snapshot (serializable only).
    Phantom {
        /// Start of the range (inclusive), if bounded.
        start: Option<Vec<u8>>,
        /// End of the range (exclusive), if bounded.
        end: Option<Vec<u8>>,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        match self {
            Conflict::WriteWrite { key } => {
                write!(f, "key {:?} was written by a newer commit", show(key))
            }
            Conflict::ReadWrite { key } => write!(
                f,
                "key {:?} read by this transaction changed since its snapshot",
                show(key)
            ),
            Conflict::Phantom { start, end } => write!(
                f,
                "range {:?}..{:?} scanned by this transaction changed since its snapshot",
                start.as_deref().map(show),
                end.as_deref().map(show)
            ),
        }
    }
}

impl Error {
    /// Whether retrying the transaction can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Conflict(_) | Error::Deadlock { .. } | Error::LockTimeout { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
