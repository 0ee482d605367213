//! Segment round trips for every type, zone maps checked against the data, and hostile
//! bytes: truncated, bit-flipped and random segments are errors, never panics.

use std::sync::Arc;

use lightning_columnar::segment::{
    ByteSource, Encoding, SegmentId, SegmentReader, SegmentWriter, WriterOptions,
};
use lightning_columnar::{
    Batch, Column, DataType, Error, Expr, Field, Location, Scalar, Scan, Schema, col,
};
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

/// Bytes that a disk can change between reads: the first read of each range is clean, the
/// later ones come back with one bit flipped.
struct Rotting<'a> {
    bytes: &'a [u8],
    seen: std::cell::RefCell<std::collections::HashSet<u64>>,
}

impl ByteSource for Rotting<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        let mut out = self.bytes.read_at(offset, len)?.into_owned();
        if !self.seen.borrow_mut().insert(offset)
            && let Some(b) = out.get_mut(len / 2)
        {
            *b ^= 0x04;
        }
        Ok(out.into())
    }
}

#[test]
fn a_source_that_can_change_is_verified_on_every_read() {
    let bytes = small_segment();
    // In memory, bytes cannot change: a chunk's checksum is verified on its first read.
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(7)).unwrap();
    assert_eq!(r.read_column(1, 2).unwrap(), r.read_column(1, 2).unwrap());
    let src = Rotting {
        bytes: &bytes,
        seen: std::cell::RefCell::default(),
    };
    let r = SegmentReader::open(&src, SegmentId::new(7)).unwrap();
    r.read_column(1, 2).unwrap();
    let err = r.read_column(1, 2).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
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

/// A pushed-down conjunct on `field` with a constant of its type, so a scan runs the
/// encoded-block filters of `lightning-compress` on the chunk (and its zone map).
fn conjunct_on(field: &Field) -> Expr {
    let c = col(field.name());
    let k = |s: Scalar| Expr::Literal(s);
    match field.data_type() {
        DataType::Bool => c.equal(k(Scalar::Bool(true))),
        DataType::Int32 => c.gt_eq(k(Scalar::Int32(10))),
        DataType::Int64 => c.lt(k(Scalar::Int64(1500))),
        DataType::Float64 => c.gt(k(Scalar::Float64(3.0))),
        DataType::Decimal { precision, scale } => match Scalar::decimal(95_000, precision, scale) {
            Ok(v) => c.lt_eq(k(v)),
            Err(_) => c.is_not_null(),
        },
        DataType::Utf8 => c.gt_eq(k(Scalar::Utf8("MAIL".into()))),
        DataType::Binary => c.starts_with(b"a".to_vec()),
        DataType::Date32 => c.lt(k(Scalar::Date32(8010))),
        DataType::Timestamp => c.gt(k(Scalar::Timestamp(1_000_000_000))),
        _ => c.is_null(),
    }
}

/// What the fuzz target `columnar_segment` does with its bytes (keep the two alike): open,
/// decode every column of every row group, verify, summarise, and scan every column with a
/// pushed-down conjunct and every column projected. Whether everything succeeded; never
/// panics.
fn exercise(bytes: &[u8]) -> bool {
    let Ok(r) = SegmentReader::open(bytes, SegmentId::new(9)) else {
        return false;
    };
    let mut ok = true;
    for g in 0..r.row_groups().len() {
        for c in 0..r.schema().len() {
            ok &= r.read_column(g, c).is_ok();
        }
    }
    ok &= r.verify().is_ok();
    drop(r.layout_summary());
    let names: Vec<&str> = r.schema().fields().iter().map(Field::name).collect();
    for f in r.schema().fields() {
        let scanned = Scan::new(&r, &names, Some(conjunct_on(f))).and_then(|mut s| s.collect());
        ok &= scanned.is_ok();
    }
    ok
}

/// Recomputes the footer's checksum in the trailer and the trailer's own, so that damage
/// inside the footer (or to a chunk whose checksum was fixed in it) reaches the parsers and
/// decoders behind the checks.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let t = n - 32;
    let footer_at = u64::from_le_bytes(bytes[t..t + 8].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c(&bytes[footer_at..t]);
    bytes[t + 12..t + 16].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[t..t + 16]);
    bytes[t + 16..t + 20].copy_from_slice(&crc.to_le_bytes());
}

/// Replaces chunk `range`'s checksum in the footer by that of its new bytes; false when the
/// old checksum is not found exactly once in the footer.
fn fix_chunk_crc(bytes: &mut [u8], old: u32, range: std::ops::Range<usize>) -> bool {
    let t = bytes.len() - 32;
    let footer_at = u64::from_le_bytes(bytes[t..t + 8].try_into().unwrap()) as usize;
    let needle = old.to_le_bytes();
    let hits: Vec<usize> = (footer_at..t - 3)
        .filter(|i| bytes[*i..*i + 4] == needle)
        .collect();
    let [at] = hits[..] else { return false };
    let new = crc32c::crc32c(&bytes[range]);
    bytes[at..at + 4].copy_from_slice(&new.to_le_bytes());
    reseal(bytes);
    true
}

/// Damages one chunk of `bad` (a copy of `good`) with flips, an overwritten byte or another
/// chunk's bytes, and fixes its checksum; false when that checksum could not be fixed.
fn damage_chunk(
    bad: &mut [u8],
    good: &[u8],
    chunks: &[std::ops::Range<usize>],
    rng: &mut Rng,
) -> bool {
    let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
    let c = chunks[pick(rng, chunks.len())].clone();
    let old = crc32c::crc32c(&good[c.clone()]);
    match rng.below(3) {
        0 => {
            for _ in 0..=rng.below(3) {
                let at = c.start + pick(rng, c.len());
                bad[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = c.start + pick(rng, c.len());
            bad[at] = rng.next_u64() as u8;
        }
        _ => {
            let d = chunks[pick(rng, chunks.len())].clone();
            let len = c.len().min(d.len());
            let into = c.start + pick(rng, c.len() - len + 1);
            bad.copy_within(d.start..d.start + len, into);
        }
    }
    fix_chunk_crc(bad, old, c)
}

/// Runs `exercise` on `bytes`, failing with `what` if it panics; returns its verdict.
fn survives(bytes: &[u8], what: &str) -> bool {
    std::panic::catch_unwind(|| exercise(bytes)).unwrap_or_else(|_| panic!("panicked on {what}"))
}

/// Deterministic stand-in for the fuzz target (cargo-fuzz is not always installed): a few
/// thousand damaged copies of a valid segment. Unsealed damage (bit flips, overwritten
/// bytes, truncations, splices of other bytes) must be an error; damage behind resealed
/// checksums (inside a chunk with its checksum fixed, inside the footer with the footer's
/// fixed; splices of two segments) may decode to something, but never panics.
#[test]
fn thousands_of_damaged_segments_are_errors_never_panics() {
    let good = small_segment();
    assert!(exercise(&good));
    let other = {
        let mut rng = Rng::new(77);
        let schema = random_schema(&mut rng, 5);
        let b = random_batch(&mut rng, &schema, 2500);
        write(&[b], 700)
    };
    assert!(exercise(&other));
    let r = SegmentReader::open(good.as_slice(), SegmentId::new(9)).unwrap();
    let chunks: Vec<std::ops::Range<usize>> = r
        .row_groups()
        .iter()
        .flat_map(lightning_columnar::segment::RowGroupMeta::chunks)
        .map(|c| c.offset() as usize..(c.offset() + u64::from(c.len())) as usize)
        .collect();
    let t = good.len() - 32;
    let footer_at = u64::from_le_bytes(good[t..t + 8].try_into().unwrap()) as usize;
    let mut rng = Rng::new(2026);
    let (mut refused, mut resealed, mut decoded) = (0, 0, 0);
    let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
    for i in 0..6000 {
        let mut bad = good.clone();
        let kind = i % 6;
        let what = format!("mutation {i} (kind {kind})");
        match kind {
            // Bit flips anywhere.
            0 => {
                for _ in 0..=rng.below(4) {
                    let at = pick(&mut rng, bad.len());
                    bad[at] ^= 1 << rng.below(8);
                }
            }
            // Truncation, then perhaps junk appended.
            1 => {
                bad.truncate(pick(&mut rng, good.len()));
                if rng.chance(30) {
                    let n = pick(&mut rng, 64);
                    bad.extend(rng.bytes(n));
                }
            }
            // A run of bytes copied over another place.
            2 => {
                let len = 1 + pick(&mut rng, 200);
                let from = pick(&mut rng, good.len() - len);
                let to = pick(&mut rng, good.len() - len);
                bad.copy_within(from..from + len, to);
            }
            // Inside one chunk, its checksum fixed.
            3 => {
                if !damage_chunk(&mut bad, &good, &chunks, &mut rng) {
                    continue;
                }
                resealed += 1;
            }
            // Inside the footer, its checksum fixed.
            4 => {
                for _ in 0..=rng.below(3) {
                    let at = footer_at + pick(&mut rng, t - footer_at);
                    if rng.chance(50) {
                        bad[at] ^= 1 << rng.below(8);
                    } else {
                        bad[at] = rng.next_u64() as u8;
                    }
                }
                reseal(&mut bad);
                resealed += 1;
            }
            // The front of one segment and the back of another.
            _ => {
                let cut = pick(&mut rng, good.len());
                let back = pick(&mut rng, other.len());
                bad.truncate(cut);
                bad.extend_from_slice(&other[back..]);
            }
        }
        let ok = survives(&bad, &what);
        let changed = bad != good;
        if ok {
            decoded += 1;
        } else {
            refused += 1;
        }
        if kind <= 2 && changed {
            assert!(!ok, "{what} went unnoticed");
        }
    }
    eprintln!("damaged segments: {refused} refused, {decoded} decoded, {resealed} resealed");
    assert!(resealed > 1800, "{resealed} resealed mutations");
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
        exercise(&bad);
        // Random bytes with a valid-looking frame.
        let n = rng.below(400) as usize;
        let junk = rng.bytes(n);
        drop(SegmentReader::open(junk.as_slice(), SegmentId::new(9)));
    }
}
