//! The segment byte layout: header, chunks, footer and trailer (little-endian throughout).
//!
//! ```text
//! [header 16][chunk rg0.col0][chunk rg0.col1]...[chunk rgN.colM][footer][trailer 32]
//! ```
//!
//! # Header (offset 0)
//!
//! | offset | size | field                                   |
//! |-------:|-----:|-----------------------------------------|
//! | 0      | 8    | magic `LTNGCOLS`                        |
//! | 8      | 2    | format version ([`FORMAT_VERSION`])      |
//! | 10     | 6    | reserved, zero                          |
//!
//! # Column chunk (one column of one row group)
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0      | 1    | kind: 0 no nulls, 1 some nulls, 2 all null                   |
//! | 1      | 3    | reserved, zero                                               |
//! | 4      | 4    | `v`, validity block length (0 unless kind 1)                 |
//! | 8      | `v`  | validity: a `lightning-compress` boolean block, 1 = a value  |
//! | 8 + v  | rest | data block (kinds 0 and 1; empty for kind 2): an integer block of order-preserving keys (bool 0/1, i32/date32/i64/decimal/timestamp via `i64_key`), a float block (f64) or a string block (utf8/binary) |
//!
//! Null slots of the data block repeat the previous value (the first value, for leading
//! nulls), which costs nothing in a frame, a run or a dictionary.
//!
//! # Footer
//!
//! | size | field                                                                  |
//! |-----:|------------------------------------------------------------------------|
//! | 4    | column count `c`                                                       |
//! | per column: 2 + name + 4 | name length, UTF-8 name, type tag (3: kind, precision, scale), nullable (1: 0/1) |
//! | 4    | row group count `g`                                                    |
//! | per row group: 4 | rows (1..=2^20)                                              |
//! | per chunk of the row group, in column order: | offset (8), length (4), crc32c of the chunk (4), null count (4), distinct estimate (4), encoding (1), statistics flags (1: bit 0 min, bit 1 max), min, max (each present by its flag) |
//! | 8    | total rows                                                             |
//!
//! A statistic is 8 bytes for fixed-width types (`i64` for bool, integers, dates,
//! decimals and timestamps; the bits for f64) and a length (2, at most 64) then the bytes
//! for utf8 and binary. Chunks tile the bytes between header and footer exactly, in row
//! group then column order, so every byte is covered by a checksum.
//!
//! # Trailer (last 32 bytes)
//!
//! | offset | size | field                                         |
//! |-------:|-----:|-----------------------------------------------|
//! | 0      | 8    | footer offset                                 |
//! | 8      | 4    | footer length                                 |
//! | 12     | 4    | crc32c of the footer                          |
//! | 16     | 4    | crc32c of trailer bytes 0..16                 |
//! | 20     | 2    | format version                                |
//! | 22     | 2    | reserved, zero                                |
//! | 24     | 8    | magic `LTNGCOLE`                              |

use crate::segment::stats::{ChunkStats, MAX_STAT_BYTES};
use crate::types::{DataType, Field, MAX_NAME_LEN, Scalar};

/// The segment format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
pub(crate) const HEADER_MAGIC: [u8; 8] = *b"LTNGCOLS";
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"LTNGCOLE";
pub(crate) const HEADER_LEN: usize = 16;
pub(crate) const TRAILER_LEN: usize = 32;
pub(crate) const CHUNK_HEADER_LEN: usize = 8;

/// Chunk kinds.
pub(crate) const KIND_NO_NULLS: u8 = 0;
pub(crate) const KIND_SOME_NULLS: u8 = 1;
pub(crate) const KIND_ALL_NULL: u8 = 2;

/// How a chunk's data block is encoded (from its block header; for `explain` and layout
/// summaries — the decoder reads the block itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Integers: plain.
    Plain,
    /// Integers: one value.
    Constant,
    /// Integers: frame of reference, bit-packed.
    FrameOfReference,
    /// Integers: deltas.
    Delta,
    /// Integers: runs.
    RunLength,
    /// Integers: dictionary.
    Dictionary,
    /// Integers: frame of reference with exceptions.
    PatchedFrame,
    /// Doubles as scaled decimals.
    FloatDecimal,
    /// Doubles as raw bits.
    FloatRaw,
    /// Strings: bytes and lengths.
    StringPlain,
    /// Strings: dictionary.
    StringDictionary,
    /// Strings: FSST.
    StringFsst,
    /// No data block: every value is null.
    AllNull,
}

impl Encoding {
    pub(crate) fn byte(self) -> u8 {
        match self {
            Encoding::Plain => 0,
            Encoding::Constant => 1,
            Encoding::FrameOfReference => 2,
            Encoding::Delta => 3,
            Encoding::RunLength => 4,
            Encoding::Dictionary => 5,
            Encoding::PatchedFrame => 6,
            Encoding::FloatDecimal => 16,
            Encoding::FloatRaw => 17,
            Encoding::StringPlain => 32,
            Encoding::StringDictionary => 33,
            Encoding::StringFsst => 34,
            Encoding::AllNull => 255,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Encoding> {
        Some(match b {
            0 => Encoding::Plain,
            1 => Encoding::Constant,
            2 => Encoding::FrameOfReference,
            3 => Encoding::Delta,
            4 => Encoding::RunLength,
            5 => Encoding::Dictionary,
            6 => Encoding::PatchedFrame,
            16 => Encoding::FloatDecimal,
            17 => Encoding::FloatRaw,
            32 => Encoding::StringPlain,
            33 => Encoding::StringDictionary,
            34 => Encoding::StringFsst,
            255 => Encoding::AllNull,
            _ => return None,
        })
    }

    pub(crate) fn of_integers(s: lightning_compress::Scheme) -> Encoding {
        use lightning_compress::Scheme as S;
        match s {
            S::Constant => Encoding::Constant,
            S::FrameOfReference => Encoding::FrameOfReference,
            S::Delta => Encoding::Delta,
            S::RunLength => Encoding::RunLength,
            S::Dictionary => Encoding::Dictionary,
            S::PatchedFrame => Encoding::PatchedFrame,
            _ => Encoding::Plain,
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Plain => "plain",
            Encoding::Constant => "constant",
            Encoding::FrameOfReference => "for",
            Encoding::Delta => "delta",
            Encoding::RunLength => "rle",
            Encoding::Dictionary => "dict",
            Encoding::PatchedFrame => "patched-for",
            Encoding::FloatDecimal => "alp",
            Encoding::FloatRaw => "f64-raw",
            Encoding::StringPlain => "str-plain",
            Encoding::StringDictionary => "str-dict",
            Encoding::StringFsst => "fsst",
            Encoding::AllNull => "all-null",
        })
    }
}

/// Where one chunk is and what it holds, as the footer records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkMeta {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) encoding: Encoding,
    pub(crate) stats: ChunkStats,
}

impl ChunkMeta {
    /// Byte offset in the segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the chunk takes no bytes (never: a chunk has at least its header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data block's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The zone map.
    pub fn stats(&self) -> &ChunkStats {
        &self.stats
    }
}

/// One row group as the footer records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGroupMeta {
    pub(crate) rows: u32,
    pub(crate) chunks: Vec<ChunkMeta>,
}

impl RowGroupMeta {
    /// Rows in the row group.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Its chunks, one per column, in schema order.
    pub fn chunks(&self) -> &[ChunkMeta] {
        &self.chunks
    }

    /// The chunk of column `i`.
    pub fn chunk(&self, i: usize) -> Option<&ChunkMeta> {
        self.chunks.get(i)
    }
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&HEADER_MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

pub(crate) fn trailer(footer_offset: u64, footer_len: u32, footer_crc: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&footer_offset.to_le_bytes());
    t[8..12].copy_from_slice(&footer_len.to_le_bytes());
    t[12..16].copy_from_slice(&footer_crc.to_le_bytes());
    let crc = crc32c::crc32c(&t[..16]);
    t[16..20].copy_from_slice(&crc.to_le_bytes());
    t[20..22].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    t[24..].copy_from_slice(&TRAILER_MAGIC);
    t
}

fn put_stat(out: &mut Vec<u8>, s: &Scalar) {
    match s {
        Scalar::Bool(b) => put_u64(out, u64::from(*b)),
        Scalar::Int32(v) | Scalar::Date32(v) => put_u64(out, i64::from(*v).cast_unsigned()),
        Scalar::Int64(v) | Scalar::Timestamp(v) | Scalar::Decimal { value: v, .. } => {
            put_u64(out, v.cast_unsigned());
        }
        Scalar::Float64(v) => put_u64(out, v.to_bits()),
        Scalar::Utf8(s) => put_bytes_stat(out, s.as_bytes()),
        Scalar::Binary(b) => put_bytes_stat(out, b),
        Scalar::Null => {}
    }
}

fn put_bytes_stat(out: &mut Vec<u8>, b: &[u8]) {
    let b = b.get(..MAX_STAT_BYTES).unwrap_or(b);
    put_u16(out, u16::try_from(b.len()).unwrap_or(0));
    out.extend_from_slice(b);
}

/// Encodes the footer.
pub(crate) fn footer(fields: &[Field], groups: &[RowGroupMeta], rows: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, u32::try_from(fields.len()).unwrap_or(u32::MAX));
    for f in fields {
        // Schema::new bounds names to MAX_NAME_LEN bytes.
        put_u16(&mut out, u16::try_from(f.name().len()).unwrap_or(0));
        out.extend_from_slice(f.name().as_bytes());
        out.extend_from_slice(&f.data_type().tag());
        out.push(u8::from(f.nullable()));
    }
    put_u32(&mut out, u32::try_from(groups.len()).unwrap_or(u32::MAX));
    for g in groups {
        put_u32(&mut out, g.rows);
        for c in &g.chunks {
            put_u64(&mut out, c.offset);
            put_u32(&mut out, c.len);
            put_u32(&mut out, c.crc);
            put_u32(&mut out, c.stats.null_count);
            put_u32(&mut out, c.stats.distinct);
            out.push(c.encoding.byte());
            out.push(u8::from(c.stats.min.is_some()) | (u8::from(c.stats.max.is_some()) << 1));
            if let Some(m) = &c.stats.min {
                put_stat(&mut out, m);
            }
            if let Some(m) = &c.stats.max {
                put_stat(&mut out, m);
            }
        }
    }
    put_u64(&mut out, rows);
    out
}

/// Reads untrusted bytes; every failure is a static reason.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

pub(crate) type Parse<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or("length overflow")?;
        let s = self.bytes.get(self.at..end).ok_or("cut short")?;
        self.at = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Parse<[u8; N]> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| "cut short")
    }

    pub(crate) fn u8(&mut self) -> Parse<u8> {
        let [b] = self.array()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Parse<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Parse<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Parse<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

fn read_stat(r: &mut Reader<'_>, dt: DataType) -> Parse<Scalar> {
    let fixed = |r: &mut Reader<'_>| r.u64().map(u64::cast_signed);
    let narrow = |v: i64| i32::try_from(v).map_err(|_| "a statistic is out of its type's range");
    Ok(match dt {
        DataType::Bool => match fixed(r)? {
            0 => Scalar::Bool(false),
            1 => Scalar::Bool(true),
            _ => return Err("a boolean statistic is neither 0 nor 1"),
        },
        DataType::Int32 => Scalar::Int32(narrow(fixed(r)?)?),
        DataType::Date32 => Scalar::Date32(narrow(fixed(r)?)?),
        DataType::Int64 => Scalar::Int64(fixed(r)?),
        DataType::Timestamp => Scalar::Timestamp(fixed(r)?),
        DataType::Decimal { precision, scale } => Scalar::Decimal {
            value: fixed(r)?,
            precision,
            scale,
        },
        DataType::Float64 => {
            let v = f64::from_bits(r.u64()?);
            if v.is_nan() {
                return Err("a double statistic is NaN");
            }
            Scalar::Float64(v)
        }
        DataType::Utf8 | DataType::Binary => {
            let n = usize::from(r.u16()?);
            if n > MAX_STAT_BYTES {
                return Err("a string statistic is longer than 64 bytes");
            }
            let b = r.take(n)?.to_vec();
            if dt == DataType::Utf8 {
                Scalar::Utf8(String::from_utf8(b).map_err(|_| "a text statistic is not UTF-8")?)
            } else {
                Scalar::Binary(b)
            }
        }
    })
}

/// The parsed footer: fields, row groups and total rows, structurally checked (not yet
/// against the segment's size: see the reader).
pub(crate) fn parse_footer(bytes: &[u8]) -> Parse<(Vec<Field>, Vec<RowGroupMeta>, u64)> {
    let mut r = Reader::new(bytes);
    let columns = r.u32()? as usize;
    // Each column takes at least 6 footer bytes: bound allocations by what is present.
    if columns > r.remaining() / 6 {
        return Err("column count larger than the footer can hold");
    }
    let mut fields = Vec::with_capacity(columns);
    for _ in 0..columns {
        let n = usize::from(r.u16()?);
        if n > MAX_NAME_LEN {
            return Err("a column name is longer than names may be");
        }
        let name = std::str::from_utf8(r.take(n)?).map_err(|_| "a column name is not UTF-8")?;
        let dt = DataType::from_tag(r.array()?).ok_or("unknown column type")?;
        let nullable = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err("a nullable flag is neither 0 nor 1"),
        };
        if fields.iter().any(|f: &Field| f.name() == name) {
            return Err("two columns share a name");
        }
        fields.push(Field::new(name, dt, nullable));
    }
    let groups = r.u32()? as usize;
    // Each row group takes at least 4 + 26 bytes per column.
    if groups > r.remaining() / (4 + 26 * columns) {
        return Err("row group count larger than the footer can hold");
    }
    let mut out = Vec::with_capacity(groups);
    let mut total = 0u64;
    for _ in 0..groups {
        let rows = r.u32()?;
        if rows == 0 || rows as usize > lightning_compress::MAX_VALUES {
            return Err("a row group's row count is 0 or above 2^20");
        }
        total += u64::from(rows);
        let mut chunks = Vec::with_capacity(columns);
        for f in &fields {
            let offset = r.u64()?;
            let len = r.u32()?;
            let crc = r.u32()?;
            let null_count = r.u32()?;
            let distinct = r.u32()?;
            let encoding = Encoding::from_byte(r.u8()?).ok_or("unknown chunk encoding")?;
            let flags = r.u8()?;
            if flags > 3 {
                return Err("unknown statistics flags");
            }
            let min = if flags & 1 == 1 {
                Some(read_stat(&mut r, f.data_type())?)
            } else {
                None
            };
            let max = if flags & 2 == 2 {
                Some(read_stat(&mut r, f.data_type())?)
            } else {
                None
            };
            if let (Some(a), Some(b)) = (&min, &max)
                && a > b
                && !matches!(f.data_type(), DataType::Utf8 | DataType::Binary)
            {
                return Err("a chunk's minimum is above its maximum");
            }
            if null_count > rows || distinct > rows - null_count {
                return Err("a chunk's null or distinct count exceeds its rows");
            }
            if !f.nullable() && null_count > 0 {
                return Err("a column that is not nullable has nulls");
            }
            if (encoding == Encoding::AllNull) != (null_count == rows) {
                return Err("a chunk's encoding disagrees with its null count");
            }
            chunks.push(ChunkMeta {
                offset,
                len,
                crc,
                encoding,
                stats: ChunkStats {
                    null_count,
                    distinct,
                    min,
                    max,
                },
            });
        }
        out.push(RowGroupMeta { rows, chunks });
    }
    let stored_total = r.u64()?;
    if stored_total != total {
        return Err("total rows disagree with the row groups");
    }
    if r.remaining() != 0 {
        return Err("bytes after the footer's end");
    }
    Ok((fields, out, total))
}
