//! Reads segments: the footer on open (checksummed and checked), then only the chunks asked
//! for, each verified against its checksum before it is decoded.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lightning_compress as lc;

use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::column::{Column, Data};
use crate::error::Location;
use crate::segment::format::{
    self, CHUNK_HEADER_LEN, ChunkMeta, FORMAT_VERSION, HEADER_LEN, HEADER_MAGIC, KIND_ALL_NULL,
    KIND_NO_NULLS, KIND_SOME_NULLS, RowGroupMeta, TRAILER_LEN, TRAILER_MAGIC,
};
use crate::segment::{ByteSource, SegmentId};
use crate::types::{DataType, Physical, Schema};
use crate::{Error, Result};

/// An open segment: its schema and footer in memory, its chunks read on demand.
#[derive(Debug)]
pub struct SegmentReader<S> {
    source: S,
    id: SegmentId,
    schema: Arc<Schema>,
    groups: Vec<RowGroupMeta>,
    rows: u64,
    size: u64,
    footer_len: u32,
    /// Per chunk (row group major): its checksum matched once. Consulted only for an
    /// [`immutable`](ByteSource::immutable) source, whose bytes cannot have changed since.
    verified: Vec<AtomicBool>,
}

impl<S: ByteSource> SegmentReader<S> {
    /// Opens the segment `id` held by `source`: reads and checks the header and trailer,
    /// verifies the footer's checksum, then parses and checks the footer (chunks must tile
    /// the bytes between header and footer). No chunk is read.
    pub fn open(source: S, id: SegmentId) -> Result<SegmentReader<S>> {
        let corrupt = |at, reason| Error::Corrupt {
            segment: id,
            at,
            reason,
        };
        let size = source.size().map_err(|e| Error::Io {
            segment: id,
            offset: 0,
            len: 0,
            source: e,
        })?;
        if size < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(corrupt(
                Location::Trailer,
                "shorter than a header and a trailer",
            ));
        }
        let read = |offset: u64, len: usize| {
            source.read_at(offset, len).map_err(|e| Error::Io {
                segment: id,
                offset,
                len: len as u64,
                source: e,
            })
        };
        check_header(&read(0, HEADER_LEN)?, id)?;
        let trailer_at = size - TRAILER_LEN as u64;
        let (footer_at, footer_len, footer_crc) =
            parse_trailer(&read(trailer_at, TRAILER_LEN)?, id, trailer_at)?;
        let footer = read(footer_at, footer_len as usize)?;
        let actual = crc32c::crc32c(&footer);
        if actual != footer_crc {
            return Err(Error::ChecksumMismatch {
                segment: id,
                at: Location::Footer,
                expected: footer_crc,
                actual,
            });
        }
        let (fields, groups, rows) =
            format::parse_footer(&footer).map_err(|r| corrupt(Location::Footer, r))?;
        // Chunks tile [HEADER_LEN, footer_at) in order.
        let mut at = HEADER_LEN as u64;
        for g in &groups {
            for c in &g.chunks {
                if c.offset != at || (c.len as usize) < CHUNK_HEADER_LEN {
                    return Err(corrupt(
                        Location::Footer,
                        "chunk offsets do not tile the segment",
                    ));
                }
                at += u64::from(c.len);
            }
        }
        if at != footer_at {
            return Err(corrupt(
                Location::Footer,
                "chunks do not end where the footer starts",
            ));
        }
        let schema = Schema::new(fields).map_err(|_| corrupt(Location::Footer, "bad schema"))?;
        drop(footer);
        let verified = (0..groups.len() * schema.len())
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(SegmentReader {
            source,
            id,
            schema: Arc::new(schema),
            groups,
            rows,
            size,
            footer_len,
            verified,
        })
    }

    /// The segment's id (named in every error).
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Total rows.
    pub fn num_rows(&self) -> u64 {
        self.rows
    }

    /// Total bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The row groups, with their chunks' offsets, encodings and zone maps.
    pub fn row_groups(&self) -> &[RowGroupMeta] {
        &self.groups
    }

    fn location(&self, row_group: usize, column: usize) -> Location {
        Location::Chunk {
            row_group: u32::try_from(row_group).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            name: self
                .schema
                .field(column)
                .map_or_else(String::new, |f| f.name().to_owned()),
        }
    }

    fn meta(&self, row_group: usize, column: usize) -> Result<(&RowGroupMeta, &ChunkMeta)> {
        let g = self
            .groups
            .get(row_group)
            .ok_or_else(|| Error::InvalidArgument {
                reason: format!(
                    "row group {row_group} is past the segment's {}",
                    self.groups.len()
                ),
            })?;
        let c = g.chunks.get(column).ok_or_else(|| Error::InvalidArgument {
            reason: format!(
                "column {column} is past the segment's {} columns",
                self.schema.len()
            ),
        })?;
        Ok((g, c))
    }

    /// Reads one chunk's bytes and verifies their checksum (nothing is decoded).
    pub fn chunk(&self, row_group: usize, column: usize) -> Result<Chunk<'_>> {
        let (g, meta) = self.meta(row_group, column)?;
        let at = self.location(row_group, column);
        let bytes = self
            .source
            .read_at(meta.offset, meta.len as usize)
            .map_err(|e| Error::Io {
                segment: self.id,
                offset: meta.offset,
                len: u64::from(meta.len),
                source: e,
            })?;
        let verified = self
            .verified
            .get(row_group * self.schema.len() + column)
            .filter(|_| self.source.immutable());
        if !verified.is_some_and(|v| v.load(Ordering::Relaxed)) {
            let actual = crc32c::crc32c(&bytes);
            if actual != meta.crc {
                return Err(Error::ChecksumMismatch {
                    segment: self.id,
                    at,
                    expected: meta.crc,
                    actual,
                });
            }
            if let Some(v) = verified {
                v.store(true, Ordering::Relaxed);
            }
        }
        // INVARIANT: `meta` found chunk `column` of the row group, and `parse_footer` gives
        // every row group one chunk per field of the schema, so `column < fields().len()`.
        let data_type = self.schema.fields()[column].data_type();
        Chunk::parse(
            bytes,
            self.id,
            at,
            data_type,
            g.rows as usize,
            meta.stats.null_count as usize,
        )
    }

    /// Reads and decodes one column of one row group.
    pub fn read_column(&self, row_group: usize, column: usize) -> Result<Column> {
        self.chunk(row_group, column)?.decode()
    }

    /// Reads the columns `columns` (schema indices, in that order) of one row group.
    pub fn read_row_group(&self, row_group: usize, columns: &[usize]) -> Result<Batch> {
        let schema = Arc::new(self.schema.project(columns)?);
        let cols = columns
            .iter()
            .map(|c| self.read_column(row_group, *c))
            .collect::<Result<Vec<_>>>()?;
        if cols.is_empty() {
            return Ok(Batch::empty(schema));
        }
        Batch::new(schema, cols)
    }

    /// Reads and decodes every chunk: a full check of the segment.
    pub fn verify(&self) -> Result<()> {
        for g in 0..self.groups.len() {
            for c in 0..self.schema.len() {
                self.read_column(g, c)?;
            }
        }
        Ok(())
    }

    /// A stable, human-readable account of the layout: sizes, row groups, and per chunk its
    /// offset, length, encoding and zone map.
    pub fn layout_summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "segment {}: format v{FORMAT_VERSION}, {} bytes, {} rows, {} row groups, footer {} bytes",
            self.id,
            self.size,
            self.rows,
            self.groups.len(),
            self.footer_len
        );
        let _ = writeln!(s, "schema {}", self.schema);
        for (i, g) in self.groups.iter().enumerate() {
            let _ = writeln!(s, "row group {i}: {} rows", g.rows);
            for (f, c) in self.schema.fields().iter().zip(&g.chunks) {
                let st = &c.stats;
                let show = |v: Option<&crate::Scalar>| v.map_or("-".into(), ToString::to_string);
                let _ = writeln!(
                    s,
                    "  {:<12} @{:<6} {:>6} B  {:<11} nulls {:<4} distinct~{:<5} min {} max {}",
                    f.name(),
                    c.offset,
                    c.len,
                    c.encoding.to_string(),
                    st.null_count,
                    st.distinct,
                    show(st.min()),
                    show(st.max()),
                );
            }
        }
        s
    }
}

fn check_header(header: &[u8], id: SegmentId) -> Result<()> {
    let corrupt = |reason| Error::Corrupt {
        segment: id,
        at: Location::Header,
        reason,
    };
    // A source that breaks its contract and returns fewer (or more) bytes is damage too.
    let Ok(header) = <&[u8; HEADER_LEN]>::try_from(header) else {
        return Err(corrupt("the header is not 16 bytes"));
    };
    let [m0, m1, m2, m3, m4, m5, m6, m7, v0, v1, reserved @ ..] = *header;
    if [m0, m1, m2, m3, m4, m5, m6, m7] != HEADER_MAGIC {
        return Err(corrupt("not a column segment (bad magic)"));
    }
    let version = u16::from_le_bytes([v0, v1]);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            segment: id,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if reserved.iter().any(|b| *b != 0) {
        return Err(corrupt("reserved bytes are not zero"));
    }
    Ok(())
}

/// The footer's offset, length and checksum from a checked trailer found at `trailer_at`.
fn parse_trailer(t: &[u8], id: SegmentId, trailer_at: u64) -> Result<(u64, u32, u32)> {
    let corrupt = |reason| Error::Corrupt {
        segment: id,
        at: Location::Trailer,
        reason,
    };
    // In layout order. A source that breaks its contract and returns fewer (or more) bytes
    // than a trailer is damage too.
    let mut r = format::Reader::new(t);
    let covered = r.take(16).map_err(corrupt)?;
    let stored = r.u32().map_err(corrupt)?;
    let version = r.u16().map_err(corrupt)?;
    let reserved = r.u16().map_err(corrupt)?;
    let magic: [u8; 8] = r.array().map_err(corrupt)?;
    if r.remaining() != 0 {
        return Err(corrupt("the trailer is longer than 32 bytes"));
    }
    if magic != TRAILER_MAGIC {
        return Err(corrupt("bad trailer magic (truncated?)"));
    }
    let actual = crc32c::crc32c(covered);
    if stored != actual {
        return Err(Error::ChecksumMismatch {
            segment: id,
            at: Location::Trailer,
            expected: stored,
            actual,
        });
    }
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            segment: id,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if reserved != 0 {
        return Err(corrupt("reserved bytes are not zero"));
    }
    let mut r = format::Reader::new(covered);
    let footer_at = r.u64().map_err(corrupt)?;
    let footer_len = r.u32().map_err(corrupt)?;
    let footer_crc = r.u32().map_err(corrupt)?;
    if footer_at < HEADER_LEN as u64
        || footer_at.checked_add(u64::from(footer_len)) != Some(trailer_at)
    {
        return Err(corrupt(
            "the footer's offset and length do not end at the trailer",
        ));
    }
    Ok((footer_at, footer_len, footer_crc))
}

/// One column chunk whose checksum matched: its validity and data blocks, not yet decoded.
#[derive(Debug)]
pub struct Chunk<'a> {
    bytes: Cow<'a, [u8]>,
    segment: SegmentId,
    at: Location,
    data_type: DataType,
    rows: usize,
    kind: u8,
    nulls: usize,
    validity: std::ops::Range<usize>,
}

impl<'a> Chunk<'a> {
    fn parse(
        bytes: Cow<'a, [u8]>,
        segment: SegmentId,
        at: Location,
        data_type: DataType,
        rows: usize,
        nulls: usize,
    ) -> Result<Chunk<'a>> {
        let corrupt = |reason| Error::Corrupt {
            segment,
            at: at.clone(),
            reason,
        };
        let mut r = format::Reader::new(&bytes);
        let [kind, r0, r1, r2, v0, v1, v2, v3] = r.array::<CHUNK_HEADER_LEN>().map_err(corrupt)?;
        if [r0, r1, r2] != [0, 0, 0] {
            return Err(corrupt("reserved chunk bytes are not zero"));
        }
        let vlen = u32::from_le_bytes([v0, v1, v2, v3]) as usize;
        let expected_kind = if nulls == 0 {
            KIND_NO_NULLS
        } else if nulls == rows {
            KIND_ALL_NULL
        } else {
            KIND_SOME_NULLS
        };
        if kind != expected_kind {
            return Err(corrupt("the chunk kind disagrees with its null count"));
        }
        if (kind == KIND_SOME_NULLS) != (vlen > 0) {
            return Err(corrupt(
                "a validity block where none belongs, or none where one does",
            ));
        }
        if vlen > r.remaining() {
            return Err(corrupt("the validity block runs past the chunk"));
        }
        if kind == KIND_ALL_NULL && r.remaining() != 0 {
            return Err(corrupt("bytes after an all-null chunk's header"));
        }
        Ok(Chunk {
            segment,
            data_type,
            rows,
            kind,
            nulls,
            validity: CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + vlen,
            at,
            bytes,
        })
    }

    pub(crate) fn decode_error(&self, source: lc::Error) -> Error {
        Error::Decode {
            segment: self.segment,
            at: self.at.clone(),
            source,
        }
    }

    pub(crate) fn corrupt_error(&self, reason: &'static str) -> Error {
        Error::Corrupt {
            segment: self.segment,
            at: self.at.clone(),
            reason,
        }
    }

    /// Rows in the chunk.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The data block (empty for an all-null chunk).
    pub(crate) fn data_block(&self) -> &[u8] {
        // INVARIANT: `validity.end` is `CHUNK_HEADER_LEN + vlen <= bytes.len()`: `parse`, the
        // only constructor, took the header and rejected a `vlen` above what remained.
        &self.bytes[self.validity.end..]
    }

    /// The validity bitmap: `None` when no value is null.
    pub fn validity(&self) -> Result<Option<Bitmap>> {
        match self.kind {
            KIND_NO_NULLS => Ok(None),
            KIND_ALL_NULL => Ok(Some(Bitmap::new(self.rows, false))),
            _ => {
                let mut bits = Vec::with_capacity(self.rows);
                // INVARIANT: `validity` is `CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + vlen`, within
                // `bytes`: `parse`, the only constructor, rejected a `vlen` past the chunk.
                lc::decode_bools(&self.bytes[self.validity.clone()], &mut bits)
                    .map_err(|e| self.decode_error(e))?;
                if bits.len() != self.rows {
                    return Err(
                        self.corrupt_error("the validity block's length disagrees with the rows")
                    );
                }
                let v = Bitmap::from_bools(&bits);
                let nulls = v.len() - v.count_ones();
                if nulls != self.nulls {
                    return Err(
                        self.corrupt_error("the validity block disagrees with the null count")
                    );
                }
                Ok(Some(v))
            }
        }
    }

    /// Whether no value is null.
    pub fn no_nulls(&self) -> bool {
        self.kind == KIND_NO_NULLS
    }

    /// Whether every value is null.
    pub fn all_null(&self) -> bool {
        self.kind == KIND_ALL_NULL
    }

    /// Decodes the chunk into a column.
    pub fn decode(&self) -> Result<Column> {
        let validity = self.validity()?;
        if self.all_null() {
            return Ok(Column::nulls(self.data_type, self.rows));
        }
        let data = self.decode_data()?;
        if data.len() != self.rows {
            return Err(self.corrupt_error("the data block's length disagrees with the rows"));
        }
        Column::from_parts(self.data_type, data, validity)
            .map_err(|_| self.corrupt_error("a utf8 chunk holds bytes that are not UTF-8"))
    }

    fn decode_data(&self) -> Result<Data> {
        let block = self.data_block();
        let err = |e| self.decode_error(e);
        Ok(match self.data_type.physical() {
            Physical::Bool => {
                let mut out = Vec::with_capacity(self.rows);
                lc::decode_bools(block, &mut out).map_err(err)?;
                Data::Bool(out)
            }
            Physical::I32 => {
                let keys = self.decode_keys(block)?;
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    out.push(
                        i32::try_from(lc::i64_from_key(k))
                            .map_err(|_| self.corrupt_error("an i32 value out of range"))?,
                    );
                }
                Data::I32(out)
            }
            Physical::I64 => {
                let keys = self.decode_keys(block)?;
                // Same size and alignment: collected in place.
                Data::I64(keys.into_iter().map(lc::i64_from_key).collect())
            }
            Physical::F64 => {
                let mut out = Vec::with_capacity(self.rows);
                lc::decode_f64(block, &mut out).map_err(err)?;
                Data::F64(out)
            }
            Physical::Bytes => {
                let mut data = Vec::new();
                let mut ends = Vec::with_capacity(self.rows);
                lc::decode_strings_into(block, &mut data, &mut ends).map_err(err)?;
                let mut offsets = Vec::with_capacity(ends.len() + 1);
                offsets.push(0);
                offsets.extend_from_slice(&ends);
                Data::Bytes { data, offsets }
            }
        })
    }

    fn decode_keys(&self, block: &[u8]) -> Result<Vec<u64>> {
        let mut keys = vec![0u64; self.rows];
        let n = lc::decode_into(block, &mut keys).map_err(|e| self.decode_error(e))?;
        if n != self.rows {
            return Err(self.corrupt_error("the data block's length disagrees with the rows"));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::segment::{SegmentWriter, WriterOptions};
    use crate::types::Field;

    fn segment() -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]).unwrap());
        let col = Column::from_i64(DataType::Int64, vec![1, 2, 3], None).unwrap();
        let mut w = SegmentWriter::new(schema.clone(), WriterOptions::new()).unwrap();
        w.write(&Batch::new(schema, vec![col]).unwrap()).unwrap();
        w.finish().unwrap()
    }

    /// A source that breaks the `read_at` contract: reads of `cut` bytes return a quarter.
    #[derive(Debug)]
    struct Short {
        bytes: Vec<u8>,
        cut: usize,
    }

    impl ByteSource for Short {
        fn size(&self) -> io::Result<u64> {
            self.bytes.size()
        }

        fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
            let got = self.bytes.read_at(offset, len)?;
            Ok(if len == self.cut {
                Cow::Owned(got[..len / 4].to_vec())
            } else {
                got
            })
        }
    }

    fn corrupt_at(r: Result<SegmentReader<Short>>) -> Location {
        match r {
            Err(Error::Corrupt { at, .. }) => at,
            other => panic!("expected a corruption error, got {other:?}"),
        }
    }

    #[test]
    fn short_reads_of_the_header_or_trailer_are_corruption() {
        let bytes = segment();
        assert!(SegmentReader::open(&bytes, SegmentId::new(1)).is_ok());
        let header = Short {
            bytes: bytes.clone(),
            cut: HEADER_LEN,
        };
        assert_eq!(
            corrupt_at(SegmentReader::open(header, SegmentId::new(1))),
            Location::Header
        );
        let trailer = Short {
            bytes,
            cut: TRAILER_LEN,
        };
        assert_eq!(
            corrupt_at(SegmentReader::open(trailer, SegmentId::new(1))),
            Location::Trailer
        );
        assert!(check_header(&[0; HEADER_LEN + 1], SegmentId::new(1)).is_err());
        assert!(parse_trailer(&[], SegmentId::new(1), 0).is_err());
    }

    #[test]
    fn a_chunk_shorter_than_its_header_is_corruption() {
        let at = Location::Footer;
        for len in 0..CHUNK_HEADER_LEN {
            let r = Chunk::parse(
                Cow::Owned(vec![0; len]),
                SegmentId::new(1),
                at.clone(),
                DataType::Int64,
                1,
                0,
            );
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{len} bytes");
        }
        // A validity length past the chunk's end.
        let mut bytes = vec![1, 0, 0, 0, 9, 0, 0, 0];
        bytes.extend_from_slice(&[0; 8]);
        let r = Chunk::parse(
            Cow::Owned(bytes),
            SegmentId::new(1),
            at,
            DataType::Int64,
            2,
            1,
        );
        assert!(matches!(r, Err(Error::Corrupt { .. })));
    }
}
