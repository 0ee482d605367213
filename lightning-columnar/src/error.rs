use std::fmt;

use crate::segment::SegmentId;

/// Where in a segment something failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The fixed header at the start of the segment.
    Header,
    /// The fixed trailer at the end of the segment (footer offset, length and checksum).
    Trailer,
    /// The footer: schema, row groups, chunk offsets and statistics.
    Footer,
    /// One column chunk: a column of one row group.
    Chunk {
        /// Row group index.
        row_group: u32,
        /// Column index in the schema.
        column: u32,
        /// Column name from the schema.
        name: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header => f.write_str("the header"),
            Location::Trailer => f.write_str("the trailer"),
            Location::Footer => f.write_str("the footer"),
            Location::Chunk {
                row_group,
                column,
                name,
            } => write!(f, "column {column} `{name}` of row group {row_group}"),
        }
    }
}

/// Everything that can go wrong in `lightning-columnar`.
///
/// Segment bytes are untrusted: damage is [`Error::Corrupt`], [`Error::ChecksumMismatch`],
/// [`Error::Decode`] or [`Error::UnsupportedVersion`], each naming the segment and the part
/// of it (never a panic). The others are mistakes in what a caller asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading segment bytes from the byte source failed.
    #[error(
        "segment {segment}: reading {len} bytes at offset {offset} failed; check the storage the segment lives on"
    )]
    Io {
        /// The segment being read.
        segment: SegmentId,
        /// Byte offset of the read.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// What the byte source reported.
        #[source]
        source: std::io::Error,
    },

    /// The segment's bytes are structurally invalid (truncated, damaged or not a segment).
    #[error(
        "segment {segment} is corrupt in {at}: {reason}; restore the segment from a backup or rebuild it from its table"
    )]
    Corrupt {
        /// The segment.
        segment: SegmentId,
        /// The part of it that failed.
        at: Location,
        /// What was wrong (static: segment contents are never formatted into messages).
        reason: &'static str,
    },

    /// A stored checksum does not match the bytes it covers.
    #[error(
        "segment {segment}: checksum mismatch in {at}: stored {expected:#010x}, computed {actual:#010x}; the bytes were damaged, restore the segment from a backup"
    )]
    ChecksumMismatch {
        /// The segment.
        segment: SegmentId,
        /// The checksummed part.
        at: Location,
        /// The checksum stored in the segment.
        expected: u32,
        /// The checksum of the bytes read.
        actual: u32,
    },

    /// An encoded block inside a chunk whose checksum matched does not decode (the segment
    /// was written by a faulty writer).
    #[error(
        "segment {segment}: {at} does not decode ({source}); rebuild the segment from its table"
    )]
    Decode {
        /// The segment.
        segment: SegmentId,
        /// The chunk.
        at: Location,
        /// The decoder's report.
        #[source]
        source: lightning_compress::Error,
    },

    /// The segment was written in a format version this build cannot read.
    #[error(
        "segment {segment} has format version {found}; this build reads version {supported}: upgrade lightning-columnar"
    )]
    UnsupportedVersion {
        /// The segment.
        segment: SegmentId,
        /// Version found in the segment.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },

    /// Encoding a column while writing a segment failed.
    #[error("encoding column `{column}` failed ({source}); write smaller row groups")]
    Encode {
        /// The column name.
        column: String,
        /// The encoder's report.
        #[source]
        source: lightning_compress::Error,
    },

    /// A batch, column or value does not fit the schema it is used with.
    #[error("schema mismatch: {reason}")]
    SchemaMismatch {
        /// What did not fit, and what was expected.
        reason: String,
    },

    /// A column name that the schema does not have.
    #[error("no column named `{name}`; use one of the schema's field names")]
    UnknownColumn {
        /// The name asked for.
        name: String,
    },

    /// A join whose two sides both have a column of this name.
    #[error("column `{name}` is on both sides of the join; project one side to rename it")]
    AmbiguousColumn {
        /// The name on both sides.
        name: String,
    },

    /// An expression or plan whose types do not work together.
    #[error("type error in `{expr}`: {reason}")]
    Type {
        /// The expression, as displayed.
        expr: String,
        /// What is wrong and what would work.
        reason: String,
    },

    /// Arithmetic overflowed the result type for some row.
    #[error(
        "`{expr}` overflowed its {result} result; cast an operand to f64 or reduce a decimal's scale"
    )]
    Overflow {
        /// The expression, as displayed.
        expr: String,
        /// The result type.
        result: String,
    },

    /// An argument out of its allowed range (an option, an index).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Which argument, its allowed range.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
