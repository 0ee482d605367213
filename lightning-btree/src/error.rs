use lightning_page::PageId;

/// Everything that can go wrong in `lightning-btree`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer pool failed: an I/O error, a page whose checksum does not match, or a
    /// full pool.
    #[error(transparent)]
    Cache(#[from] lightning_cache::Error),

    /// The page file or allocator failed.
    #[error(transparent)]
    Page(#[from] lightning_page::Error),

    /// A tree page decodes to something no valid tree holds.
    #[error(
        "corrupt B+tree page {page}: {what}; run check() for a full report and restore from a backup"
    )]
    Corruption {
        /// The page.
        page: PageId,
        /// What is wrong with it.
        what: String,
    },

    /// The store refuses work after a failure it could not undo (or a checkpoint that
    /// failed for good): its state in memory may be damaged, so nothing more is written.
    #[error(
        "the B+tree store refuses work after an earlier failure: {reason}; reopen it from the page file (its last checkpoint is intact)"
    )]
    Poisoned {
        /// What failed.
        reason: String,
    },

    /// A key longer than the tree's limit (about a quarter of a page).
    #[error(
        "key of {len} bytes exceeds the limit of {max} bytes for this page size; use shorter keys or a larger page size"
    )]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A value longer than the tree stores.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: u64,
    },

    /// Bulk loading needs strictly ascending keys.
    #[error(
        "bulk load input not strictly ascending at item {index}; sort and deduplicate the input"
    )]
    NotSorted {
        /// Position of the first item out of order.
        index: usize,
    },

    /// Bulk loading needs an empty tree.
    #[error("bulk load into a tree that is not empty; load into a new tree")]
    NotEmpty,

    /// A fill factor outside `0.5..=1.0`.
    #[error("fill factor {0} outside 0.5..=1.0")]
    BadFillFactor(f64),
}

impl Error {
    /// Whether the error reports damaged data (a page checksum, or a page that decodes to
    /// nothing valid), as opposed to I/O or usage errors.
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corruption { .. } => true,
            Error::Cache(lightning_cache::Error::Page(e)) | Error::Page(e) => e.is_corruption(),
            _ => false,
        }
    }

    pub(crate) fn corrupt(page: PageId, what: impl Into<String>) -> Self {
        Error::Corruption {
            page,
            what: what.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
