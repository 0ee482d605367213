use lightning_page::PageId;

/// Boxed error a write-back hook returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `lightning-cache`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the page file failed, or a page read from disk is damaged.
    #[error(transparent)]
    Page(#[from] lightning_page::Error),

    /// Every frame is pinned: nothing can be evicted to make room.
    #[error(
        "buffer pool full: all {frames} frames are pinned; release page guards sooner or \
         give the pool more capacity"
    )]
    CacheFull {
        /// Frames in the pool.
        frames: usize,
    },

    /// The write-back hook refused to let a dirty page be written (for example, the WAL
    /// could not be made durable up to the page's changes). The page stays dirty.
    #[error("write-back of page {page} refused by the hook: {source}")]
    WriteBack {
        /// The page.
        page: PageId,
        /// The hook's error.
        #[source]
        source: BoxError,
    },

    /// A capacity that holds fewer than two pages.
    #[error("buffer pool capacity of {bytes} bytes holds fewer than 2 pages of {page_size} bytes")]
    CapacityTooSmall {
        /// The capacity asked for.
        bytes: u64,
        /// The page size.
        page_size: u32,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
