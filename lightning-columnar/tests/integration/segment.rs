//! Segment round trips for every type, zone maps checked against the data, and hostile
//! bytes: truncated, bit-flipped and random segments are errors, never panics.

use std::sync::Arc;

use lightning_columnar::segment::{
    ByteSource, Encoding, SegmentId, SegmentReader, SegmentWriter, WriterOptions,
};
use lightning_columnar::{Batch, Column, DataType, Error, Field, Location, Scalar, Schema};
use lightning_testkit::Rng;
use proptest::prelude::*;

use crate::common::{all_types, random_batch, random_column, random_schema};

fn write(batches: &[Batch], rows_per_group: usize) -> Vec<u8> {
    let schema = batches[0].schema().clone();
    let mut w =
        SegmentWriter::new(schema, WriterOptions::new().row_group_rows(rows_per_group)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap()
}

/// Every row of every batch, in order.
fn all_rows(batches: &[Batch]) -> Vec<Vec<Scalar>> {
    batches.iter().flat_map(Batch::rows).collect()
}

/// Reads every row group back, checks statistics against the data, returns the rows.
fn read_back(bytes: &[u8]) -> Vec<Vec<Scalar>> {
    let r = SegmentReader::open(bytes, SegmentId::new(1)).unwrap();
    r.verify().unwrap();
    let cols: Vec<usize> = (0..r.schema().len()).collect();
    let mut rows = Vec::new();
    for (g, meta) in r.row_groups().iter().enumerate() {
        let batch = r.read_row_group(g, &cols).unwrap();
        assert_eq!(batch.num_rows(), meta.rows() as usize);
        for (c, chunk) in meta.chunks().iter().enumerate() {
            check_stats(batch.column(c).unwrap(), chunk.stats(), chunk.encoding());
        }
        rows.extend(batch.rows());
    }
    rows
}

/// Zone maps agree with the data they describe.
fn check_stats(col: &Column, stats: &lightning_columnar::segment::ChunkStats, enc: Encoding) {
    let values: Vec<Scalar> = (0..col.len())
        .map(|i| col.value(i))
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(stats.null_count() as usize, col.len() - values.len());
    assert_eq!(enc == Encoding::AllNull, values.is_empty());
    let ordered: Vec<&Scalar> = values
        .iter()
        .filter(|v| !matches!(v, Scalar::Float64(f) if f.is_nan()))
        .collect();
    let min = ordered.iter().min_by(|a, b| a.total_cmp(b));
    let max = ordered.iter().max_by(|a, b| a.total_cmp(b));
    match col.data_type() {
        DataType::Utf8 | DataType::Binary => {
            if let (Some(lo), Some(m)) = (stats.min(), min) {
                assert!(lo <= *m, "string minimum is a lower bound");
            }
            if let Some(hi) = stats.max() {
                assert_eq!(Some(&hi), max);
            }
        }
        _ => {
            assert_eq!(stats.min(), min.copied());
            assert_eq!(stats.max(), max.copied());
        }
    }
    let mut distinct: Vec<&Scalar> = values.iter().collect();
    distinct.sort_by(|a, b| a.total_cmp(b));
    distinct.dedup_by(|a, b| a == b);
    let exact = distinct.len() as f64;
    let est = f64::from(stats.distinct_estimate());
    assert!(
        (est - exact).abs() <= exact * 0.15 + 2.0,
        "distinct estimate {est} for {exact}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random schemas (every type, nullable or not), random batch sizes and row groups.
    #[test]
    fn round_trips(seed in any::<u64>(), columns in 1usize..6, batches in 1usize..4,
                   rows in 0usize..1500, group in 1usize..900) {
        let mut rng = Rng::new(seed);
        let schema = random_schema(&mut rng, columns);
        let input: Vec<Batch> = (0..batches)
            .map(|_| {
                let n = rng.below(rows as u64 + 1) as usize;
                random_batch(&mut rng, &schema, n)
            })
            .collect();
        let bytes = write(&input, group);
        prop_assert_eq!(read_back(&bytes), all_rows(&input));
    }
}

#[test]
fn every_type_with_and_without_nulls() {
    let mut rng = Rng::new(7);
    for t in all_types() {
        for pct in [0, 1, 30, 99, 100] {
            let schema = Arc::new(Schema::new(vec![Field::new("x", t, pct > 0)]).unwrap());
            let col = random_column(&mut rng, t, 5000, pct);
            let batch = Batch::new(schema, vec![col]).unwrap();
            let bytes = write(std::slice::from_ref(&batch), 2048);
            assert_eq!(read_back(&bytes), batch.rows(), "{t} with {pct}% nulls");
        }
    }
}

#[test]
fn empty_segments_and_selections() {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ])
        .unwrap(),
    );
    let empty = Batch::empty(schema.clone());
    let bytes = write(std::slice::from_ref(&empty), 100);
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(2)).unwrap();
    assert_eq!((r.num_rows(), r.row_groups().len()), (0, 0));
    assert_eq!(r.schema(), &schema);
    // Only selected rows are written.
    let mut rng = Rng::new(3);
    let batch = random_batch(&mut rng, &schema, 10)
        .with_selection(vec![1, 4, 9])
        .unwrap();
    let bytes = write(std::slice::from_ref(&batch), 100);
    assert_eq!(read_back(&bytes), batch.rows());
}

#[test]
fn writer_refuses_bad_input() {
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]).unwrap());
    assert!(matches!(
        SegmentWriter::new(schema.clone(), WriterOptions::new().row_group_rows(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(
        SegmentWriter::new(schema.clone(), WriterOptions::new().row_group_rows(1 << 21)).is_err()
    );
    let other = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]).unwrap());
    let mut w = SegmentWriter::new(schema, WriterOptions::new()).unwrap();
    let err = w.write(&Batch::empty(other)).unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
}

#[test]
fn parallel_encoding_writes_the_same_bytes() {
    let mut rng = Rng::new(11);
    let schema = random_schema(&mut rng, 7);
    let batch = random_batch(&mut rng, &schema, 20_000);
    let one = write(std::slice::from_ref(&batch), 3000);
    let mut w =
        SegmentWriter::new(schema, WriterOptions::new().row_group_rows(3000).threads(3)).unwrap();
    w.write(&batch).unwrap();
    assert_eq!(w.finish().unwrap(), one);
}

fn small_segment() -> Vec<u8> {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::decimal(15, 2).unwrap(), false),
            Field::new("mode", DataType::Utf8, true),
            Field::new("flag", DataType::Bool, true),
            Field::new("ship", DataType::Date32, false),
            Field::new("ratio", DataType::Float64, true),
            Field::new("blob", DataType::Binary, true),
            Field::new("at", DataType::Timestamp, true),
            Field::new("qty", DataType::Int32, false),
        ])
        .unwrap(),
    );
    let n = 3000;
    let modes = ["AIR", "MAIL", "SHIP", "TRUCK"];
    let cols = vec![
        Column::from_i64(DataType::Int64, (0..n).collect(), None).unwrap(),
        Column::from_i64(
            DataType::decimal(15, 2).unwrap(),
            (0..n).map(|i| 90_000 + (i * 7919) % 10_000).collect(),
            None,
        )
        .unwrap(),
        Column::from_scalars(
            DataType::Utf8,
            &(0..n)
                .map(|i| {
                    if i % 10 == 0 {
                        Scalar::Null
                    } else {
                        Scalar::Utf8(modes[(i % 4) as usize].into())
                    }
                })
                .collect::<Vec<_>>(),
        )
        .unwrap(),
        Column::from_scalars(
            DataType::Bool,
            &(0..n)
                .map(|i| {
                    if i < 1000 {
                        Scalar::Null
                    } else {
                        Scalar::Bool(i % 3 == 0)
                    }
                })
                .collect::<Vec<_>>(),
        )
        .unwrap(),
        Column::from_i32(
            DataType::Date32,
            (0..n).map(|i| 8000 + (i / 100) as i32).collect(),
            None,
        )
        .unwrap(),
        Column::from_f64((0..n).map(|i| (i % 100) as f64 / 4.0).collect(), None).unwrap(),
        Column::nulls(DataType::Binary, n as usize),
        Column::from_scalars(
            DataType::Timestamp,
            &(0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        Scalar::Null
                    } else {
                        Scalar::Timestamp(i * 1_000_000)
                    }
                })
                .collect::<Vec<_>>(),
        )
        .unwrap(),
        Column::from_i32(
            DataType::Int32,
            (0..n).map(|i| (i % 50) as i32 + 1).collect(),
            None,
        )
        .unwrap(),
    ];
    let batch = Batch::new(schema, cols).unwrap();
    write(&[batch], 1024)
}

#[test]
fn layout_summary_snapshot() {
    let bytes = small_segment();
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(7)).unwrap();
    insta::assert_snapshot!(r.layout_summary());
}

#[test]
fn every_byte_is_covered_by_a_check() {
    let bytes = small_segment();
    let mut rng = Rng::new(5);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 1 << rng.below(8);
        let opened = SegmentReader::open(bad.as_slice(), SegmentId::new(7));
        let result = opened.and_then(|r| r.verify());
        assert!(result.is_err(), "a flip at byte {at} went unnoticed");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small_segment();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        let result = SegmentReader::open(cut, SegmentId::new(7)).and_then(|r| r.verify());
        assert!(result.is_err(), "truncated to {len}");
    }
}

#[test]
fn errors_name_the_segment_and_column() {
    let bytes = small_segment();
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(7)).unwrap();
    let chunk = r.row_groups()[1].chunk(2).unwrap().clone();
    let mut bad = bytes.clone();
    bad[chunk.offset() as usize + 9] ^= 0x10;
    let r = SegmentReader::open(bad.as_slice(), SegmentId::new(7)).unwrap();
    // Other chunks still read.
    r.read_column(1, 1).unwrap();
    let err = r.read_column(1, 2).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        Error::ChecksumMismatch {
            at: Location::Chunk {
                row_group: 1,
                column: 2,
                ..
            },
            ..
        }
    ));
    assert!(
        msg.contains("segment #7") && msg.contains("column 2 `mode` of row group 1"),
        "{msg}"
    );
    // A damaged footer is named as such.
    let mut bad = bytes.clone();
    let footer_at = bytes.len() - 40;
    bad[footer_at] ^= 1;
    let err = SegmentReader::open(bad.as_slice(), SegmentId::new(7)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                at: Location::Footer,
                ..
            }
        ),
        "{err}"
    );
    // Another version is refused as such.
    let mut newer = bytes.clone();
    newer[8] = 2;
    let err = SegmentReader::open(newer.as_slice(), SegmentId::new(7)).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
}

/// Counts the bytes a reader asks for.
struct Counting<'a> {
    bytes: &'a [u8],
    read: std::cell::Cell<u64>,
}

impl ByteSource for Counting<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        self.read.set(self.read.get() + len as u64);
        self.bytes.read_at(offset, len)
    }
}

#[test]
fn reads_only_the_chunks_asked_for() {
    let bytes = small_segment();
    let src = Counting {
        bytes: &bytes,
        read: 0.into(),
    };
    let r = SegmentReader::open(&src, SegmentId::new(7)).unwrap();
    let after_open = src.read.get();
    let footer = r.row_groups()[0].chunk(0).unwrap().offset(); // == header length
    assert!(
        after_open < bytes.len() as u64 / 4,
        "open read {after_open} bytes"
    );
    r.read_column(2, 4).unwrap();
    let chunk = r.row_groups()[2].chunk(4).unwrap();
    assert_eq!(src.read.get() - after_open, u64::from(chunk.len()));
    assert_eq!(footer, 16);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random damage (bytes overwritten, cut, extended) never panics; most is an error.
    #[test]
    fn hostile_bytes_never_panic(seed in any::<u64>(), flips in 1usize..8, cut in any::<prop::sample::Index>()) {
        let bytes = small_segment();
        let mut rng = Rng::new(seed);
        let mut bad = bytes.clone();
        for _ in 0..flips {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] = rng.next_u64() as u8;
        }
        if rng.chance(30) {
            bad.truncate(cut.index(bad.len() + 1));
        }
        if let Ok(r) = SegmentReader::open(bad.as_slice(), SegmentId::new(9)) {
            drop(r.verify());
            for g in 0..r.row_groups().len() {
                for c in 0..r.schema().len() {
                    drop(r.read_column(g, c));
                }
            }
        }
        // Random bytes with a valid-looking frame.
        let n = rng.below(400) as usize;
        let junk = rng.bytes(n);
        drop(SegmentReader::open(junk.as_slice(), SegmentId::new(9)));
    }
}
