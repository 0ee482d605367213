//! Writes segments from batches.

use std::sync::Arc;

use lightning_compress as lc;

use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::column::{Column, Data};
use crate::segment::format::{
    self, CHUNK_HEADER_LEN, ChunkMeta, Encoding, HEADER_LEN, KIND_ALL_NULL, KIND_NO_NULLS,
    KIND_SOME_NULLS, RowGroupMeta,
};
use crate::segment::stats;
use crate::types::Schema;
use crate::{Error, Result};

/// The default number of rows per row group (50 batches of 2048).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 102_400;

/// Options of a [`SegmentWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    row_group_rows: usize,
    threads: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            threads: 1,
        }
    }
}

impl WriterOptions {
    /// Default options: row groups of [`DEFAULT_ROW_GROUP_ROWS`], one thread.
    pub fn new() -> WriterOptions {
        WriterOptions::default()
    }

    /// Rows per row group, 1..=2^20 (the last row group may be smaller).
    #[must_use]
    pub fn row_group_rows(mut self, rows: usize) -> WriterOptions {
        self.row_group_rows = rows;
        self
    }

    /// Threads that encode the columns of a row group in parallel (at least 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> WriterOptions {
        self.threads = threads;
        self
    }
}

/// Builds a segment in memory: batches in, segment bytes out of [`SegmentWriter::finish`].
///
/// Rows are buffered until a row group is full; each full row group's columns are encoded
/// (by `lightning-compress`, statistics computed alongside) and appended.
#[derive(Debug)]
pub struct SegmentWriter {
    schema: Arc<Schema>,
    options: WriterOptions,
    pending: Vec<Column>,
    pending_rows: usize,
    out: Vec<u8>,
    groups: Vec<RowGroupMeta>,
    rows: u64,
}

impl SegmentWriter {
    /// A writer for segments of `schema`.
    pub fn new(schema: Arc<Schema>, options: WriterOptions) -> Result<SegmentWriter> {
        if options.row_group_rows == 0 || options.row_group_rows > lc::MAX_VALUES {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "row_group_rows is {}; it must be 1..={}",
                    options.row_group_rows,
                    lc::MAX_VALUES
                ),
            });
        }
        if options.threads == 0 {
            return Err(Error::InvalidArgument {
                reason: "threads must be at least 1".into(),
            });
        }
        let pending = schema
            .fields()
            .iter()
            .map(|f| Column::nulls(f.data_type(), 0))
            .collect();
        Ok(SegmentWriter {
            schema,
            options,
            pending,
            pending_rows: 0,
            out: format::header().to_vec(),
            groups: Vec::new(),
            rows: 0,
        })
    }

    /// The schema written.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Appends a batch's (selected) rows; its schema must equal the writer's.
    pub fn write(&mut self, batch: &Batch) -> Result<()> {
        if batch.schema().as_ref() != self.schema.as_ref() {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "the batch's schema {} differs from the segment's {}",
                    batch.schema(),
                    self.schema
                ),
            });
        }
        let batch = batch.compact();
        let rows = batch.num_rows();
        let mut start = 0;
        while start < rows {
            let take = (self.options.row_group_rows - self.pending_rows).min(rows - start);
            for (p, c) in self.pending.iter_mut().zip(batch.columns()) {
                p.append(&c.slice(start, take))?;
            }
            start += take;
            self.pending_rows += take;
            if self.pending_rows == self.options.row_group_rows {
                let full: Vec<Column> = self
                    .pending
                    .iter_mut()
                    .map(|p| std::mem::replace(p, Column::nulls(p.data_type(), 0)))
                    .collect();
                self.pending_rows = 0;
                self.flush(&full)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, columns: &[Column]) -> Result<()> {
        let rows = columns.first().map_or(0, Column::len);
        if rows == 0 {
            return Ok(());
        }
        let encoded: Vec<Result<(Vec<u8>, Encoding, stats::ChunkStats)>> =
            if self.options.threads > 1 && columns.len() > 1 {
                let threads = self.options.threads.min(columns.len());
                let per = columns.len().div_ceil(threads);
                std::thread::scope(|s| {
                    let handles: Vec<_> = columns
                        .chunks(per)
                        .zip(self.schema.fields().chunks(per))
                        .map(|(cols, fields)| {
                            s.spawn(move || {
                                cols.iter()
                                    .zip(fields)
                                    .map(|(c, f)| encode_chunk(c, f.name()))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| {
                            h.join().unwrap_or_else(|_| {
                                vec![Err(Error::InvalidArgument {
                                    reason: "an encoding thread panicked".into(),
                                })]
                            })
                        })
                        .collect()
                })
            } else {
                columns
                    .iter()
                    .zip(self.schema.fields())
                    .map(|(c, f)| encode_chunk(c, f.name()))
                    .collect()
            };
        let mut chunks = Vec::with_capacity(columns.len());
        for e in encoded {
            let (bytes, encoding, stats) = e?;
            chunks.push(ChunkMeta {
                offset: self.out.len() as u64,
                len: u32::try_from(bytes.len()).map_err(|_| Error::InvalidArgument {
                    reason: "a column chunk exceeds 4 GiB; write smaller row groups".into(),
                })?,
                crc: crc32c::crc32c(&bytes),
                encoding,
                stats,
            });
            self.out.extend_from_slice(&bytes);
        }
        self.groups.push(RowGroupMeta {
            // rows <= row_group_rows <= 2^20.
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            chunks,
        });
        self.rows += rows as u64;
        Ok(())
    }

    /// Writes the last row group, the footer and the trailer; returns the segment's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let rest = std::mem::take(&mut self.pending);
        self.flush(&rest)?;
        let footer = format::footer(self.schema.fields(), &self.groups, self.rows);
        let offset = self.out.len() as u64;
        let len = u32::try_from(footer.len()).map_err(|_| Error::InvalidArgument {
            reason: "the footer exceeds 4 GiB; write fewer row groups per segment".into(),
        })?;
        let crc = crc32c::crc32c(&footer);
        self.out.extend_from_slice(&footer);
        self.out
            .extend_from_slice(&format::trailer(offset, len, crc));
        debug_assert!(self.out.len() >= HEADER_LEN);
        Ok(self.out)
    }
}

/// Copies of `values` where null slots repeat the previous value (the first value for
/// leading nulls): free in a frame, a run or a dictionary.
fn filled<T: Copy>(values: &[T], validity: Option<&Bitmap>) -> Vec<T> {
    let Some(v) = validity else {
        return values.to_vec();
    };
    let Some(&first) = v.ones().next().and_then(|i| values.get(i)) else {
        return values.to_vec();
    };
    let mut last = first;
    values
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if v.get(i) {
                last = *x;
            }
            last
        })
        .collect()
}

fn encode_data(col: &Column) -> lc::Result<(Vec<u8>, Encoding)> {
    let validity = col.validity();
    Ok(match col.data() {
        Data::Bool(v) => {
            let block = lc::encode_bools(&filled(v, validity))?;
            let e = Encoding::of_integers(lc::scheme_of(&block)?);
            (block, e)
        }
        Data::I32(v) => {
            let keys: Vec<u64> = filled(v, validity)
                .iter()
                .map(|x| lc::i64_key(i64::from(*x)))
                .collect();
            let block = lc::encode(&keys)?;
            let e = Encoding::of_integers(lc::scheme_of(&block)?);
            (block, e)
        }
        Data::I64(v) => {
            let keys: Vec<u64> = filled(v, validity)
                .iter()
                .map(|x| lc::i64_key(*x))
                .collect();
            let block = lc::encode(&keys)?;
            let e = Encoding::of_integers(lc::scheme_of(&block)?);
            (block, e)
        }
        Data::F64(v) => {
            let block = lc::encode_f64(&filled(v, validity))?;
            let e = if block.get(1) == Some(&0) {
                Encoding::FloatDecimal
            } else {
                Encoding::FloatRaw
            };
            (block, e)
        }
        Data::Bytes { data, offsets } => {
            // INVARIANT: a window of 2 has two elements, and a column's offsets never decrease
            // and end at `data.len()` (checked by `Column::from_parts`, kept by every other
            // constructor).
            let strings: Vec<&[u8]> = offsets.windows(2).map(|w| &data[w[0]..w[1]]).collect();
            let block = lc::encode_strings(&filled(&strings, validity))?;
            let e = match block.get(1) {
                Some(1) => Encoding::StringDictionary,
                Some(2) => Encoding::StringFsst,
                _ => Encoding::StringPlain,
            };
            (block, e)
        }
    })
}

/// One column chunk's bytes, its encoding and its statistics.
fn encode_chunk(col: &Column, name: &str) -> Result<(Vec<u8>, Encoding, stats::ChunkStats)> {
    let stats = stats::compute(col);
    let err = |source| Error::Encode {
        column: name.to_owned(),
        source,
    };
    let mut out = Vec::with_capacity(CHUNK_HEADER_LEN);
    if col.null_count() == col.len() {
        out.extend_from_slice(&[KIND_ALL_NULL, 0, 0, 0, 0, 0, 0, 0]);
        return Ok((out, Encoding::AllNull, stats));
    }
    let (data, encoding) = encode_data(col).map_err(err)?;
    match col.validity() {
        None => {
            out.extend_from_slice(&[KIND_NO_NULLS, 0, 0, 0, 0, 0, 0, 0]);
        }
        Some(v) => {
            let bits: Vec<bool> = (0..v.len()).map(|i| v.get(i)).collect();
            let block = lc::encode_bools(&bits).map_err(err)?;
            out.extend_from_slice(&[KIND_SOME_NULLS, 0, 0, 0]);
            format::put_u32(&mut out, u32::try_from(block.len()).unwrap_or(u32::MAX));
            out.extend_from_slice(&block);
        }
    }
    out.extend_from_slice(&data);
    Ok((out, encoding, stats))
}
