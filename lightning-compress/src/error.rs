/// Everything that can go wrong in `lightning-compress`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An encoded block is malformed (truncated, crafted or damaged).
    #[error("corrupt encoded block: {0}")]
    Corrupt(&'static str),
    /// More values than one block holds.
    #[error("{len} values exceed the block limit of {max}")]
    TooManyValues {
        /// Values given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A caller-provided buffer is shorter than the block's value count.
    #[error(
        "the output buffer holds {have} values but the block has {need}; pass a buffer of at least {need} (at most MAX_VALUES)"
    )]
    BufferTooSmall {
        /// Values in the block.
        need: usize,
        /// Values the buffer holds.
        have: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
