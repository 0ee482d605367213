use std::path::PathBuf;

use crate::PageId;

/// Everything that can go wrong in `lightning-page`.
///
/// One enum for the crate; higher crates wrap it. Messages say what failed, where, and
/// what to do. Corruption messages never contain user data, only file names, page ids and
/// the structural facts that disagreed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file system refused an operation.
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being attempted (`"read page 7 of"`, `"sync"`, ...).
        op: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Bytes read from disk are not what was written: a checksum, page id, page type or
    /// length did not match. The file needs a restore from backup or a repair.
    #[error(
        "corruption in {file}, page {page}: {what} (expected {expected}, found {found}); \
         restore the file from a backup"
    )]
    Corruption {
        /// The file holding the damaged page.
        file: PathBuf,
        /// The damaged page.
        page: PageId,
        /// Which check failed (`"checksum mismatch"`, `"page id mismatch"`, ...).
        what: &'static str,
        /// What the check expected.
        expected: String,
        /// What the page holds instead.
        found: String,
    },

    /// Neither superblock of a page file is valid (both torn, zeroed or garbage).
    #[error(
        "{file} has no valid superblock (page 0: {slot0}; page 1: {slot1}); it is not a \
         Lightning DB page file, or it is damaged beyond recovery: restore it from a backup"
    )]
    NoValidSuperblock {
        /// The page file.
        file: PathBuf,
        /// Why superblock slot 0 was rejected.
        slot0: String,
        /// Why superblock slot 1 was rejected.
        slot1: String,
    },

    /// The file was written by a format version this build does not understand.
    #[error(
        "{file} uses on-disk format version {found}, but this build reads version {supported}; \
         open it with a Lightning DB release that supports format {found}"
    )]
    UnsupportedFormatVersion {
        /// The page file.
        file: PathBuf,
        /// Version stored in the superblock.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },

    /// The file's page size is not the one the caller asked for.
    #[error(
        "{file} was created with {found}-byte pages but {expected}-byte pages were requested; \
         the page size is fixed at creation: open it without a page size or with {found}"
    )]
    PageSizeMismatch {
        /// The page file.
        file: PathBuf,
        /// The page size requested.
        expected: u32,
        /// The page size stored in the file.
        found: u32,
    },

    /// A page size outside 4 KiB..=64 KiB or not a power of two.
    #[error("invalid page size {0}: use a power of two from 4096 to 65536")]
    InvalidPageSize(u64),

    /// A page id at or past the end of the file.
    #[error("page {page} is past the end of {file}, which has {page_count} pages")]
    PageOutOfBounds {
        /// The page file.
        file: PathBuf,
        /// The page asked for.
        page: PageId,
        /// Pages in the file.
        page_count: u64,
    },

    /// A payload larger than a page can hold.
    #[error("payload of {len} bytes does not fit a page, which holds at most {max}")]
    PayloadTooLarge {
        /// The payload length given.
        len: usize,
        /// The largest payload a page of this size holds.
        max: usize,
    },

    /// An earlier `sync` of this file failed. Its data may be lost, and a retried fsync
    /// proves nothing, so the file refuses writes until it is reopened and recovered.
    #[error(
        "{file} refuses writes since an earlier sync failed ({cause}); close and reopen the \
         database to recover from the last durable state"
    )]
    Poisoned {
        /// The page file.
        file: PathBuf,
        /// The error the failed sync returned.
        cause: String,
    },

    /// A misuse of the allocator: freeing a page twice, a reserved page or one never
    /// allocated. A bug in the caller, reported instead of silently corrupting the free list.
    #[error("cannot free page {page}: {reason}")]
    InvalidFree {
        /// The page.
        page: PageId,
        /// Why the free was refused.
        reason: &'static str,
    },

    /// A checkpoint was begun and never reported durable: it is still running or it failed.
    #[error(
        "checkpoint {generation} was begun and has not finished; if it failed, reload the \
         allocator from the page file (reopen the database) before checkpointing again"
    )]
    CheckpointInFlight {
        /// The generation of the unfinished checkpoint.
        generation: u64,
    },

    /// A superblock the caller built that would not read back (a root outside its image,
    /// a page count below 2, ...). Nothing was written.
    #[error("refusing to write an invalid superblock: {what}")]
    InvalidSuperblock {
        /// What is wrong with it.
        what: String,
    },

    /// A superblock generation that does not follow the current one.
    #[error(
        "superblock generation {given} does not follow the current generation {current}; \
         checkpoints must advance the generation by exactly one"
    )]
    GenerationOutOfOrder {
        /// The generation of the durable superblock.
        current: u64,
        /// The generation given.
        given: u64,
    },

    /// Pages 0 and 1 hold the superblocks and change only through
    /// [`PageFile::commit_superblock`](crate::PageFile::commit_superblock).
    #[error("page {page} is a superblock page; write it with commit_superblock")]
    ReservedPage {
        /// The page.
        page: PageId,
    },

    /// The file was opened read-only.
    #[error("{file} is open read-only; open it read-write to change it")]
    ReadOnly {
        /// The page file.
        file: PathBuf,
    },
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

    /// `true` for [`Error::Corruption`] and [`Error::NoValidSuperblock`]: the bytes on disk
    /// are damaged and retrying cannot help.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corruption { .. } | Error::NoValidSuperblock { .. }
        )
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
