//! Immutable column segments: the writer, the reader, the byte layout and zone maps.
//!
//! The byte layout is documented in [`format`](self) below and in `docs/format/columnar.md`.

mod format;
mod reader;
mod source;
mod stats;
mod writer;

use std::fmt;

pub use format::{ChunkMeta, Encoding, FORMAT_VERSION, RowGroupMeta};
pub use reader::{Chunk, SegmentReader};
pub use source::ByteSource;
pub(crate) use stats::canonical_f64_bits;
pub use stats::{ChunkStats, MAX_STAT_BYTES};
pub use writer::{DEFAULT_ROW_GROUP_ROWS, SegmentWriter, WriterOptions};

/// Names a segment in errors (the database uses its catalog id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(u64);

impl SegmentId {
    /// A segment id.
    pub const fn new(id: u64) -> SegmentId {
        SegmentId(id)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
