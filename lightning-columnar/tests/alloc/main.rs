//! Zero-copy is proven, not assumed: a counting global allocator (this binary only) shows
//! that a scan with a pushed-down predicate allocates per row group, never per row, and that
//! row groups skipped by zone maps and columns not projected are neither read nor decoded.
//!
//! Only allocations made on the measuring thread while it measures are counted (a
//! thread-local flag), so the harness and other test threads do not disturb the figures.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions
#![expect(
    unsafe_code,
    reason = "a GlobalAlloc impl is unsafe by definition; it forwards to System unchanged"
)]
#![expect(
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    reason = "test data and counters: small values"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use lightning_columnar::segment::{
    ByteSource, SegmentId, SegmentReader, SegmentWriter, WriterOptions,
};
use lightning_columnar::{
    Batch, Column, DataType, Expr, Field, Scalar, Scan, ScanStats, Schema, col, lit,
};

/// Forwards to [`System`]; counts on the current thread while [`measure`] runs.
struct CountingAlloc;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    // `try_with`: the thread's locals may already be gone while it exits.
    if ACTIVE.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
        let live = LIVE.try_with(|c| {
            c.set(c.get() + size as i64);
            c.get()
        });
        if let Ok(live) = live {
            let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
        }
    }
}

fn note_free(size: usize) {
    if ACTIVE.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE.try_with(|c| c.set(c.get() - size as i64));
    }
}

// SAFETY: every method forwards to `System` with the caller's layout and pointer
// unchanged; the bookkeeping touches only const-initialised thread-local cells, which
// never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: `ptr` came from `System` (every allocation here does) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller vouches for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// What the current thread allocated while [`measure`] ran.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Allocations (a `realloc` counts as one).
    allocs: u64,
    /// Bytes asked for, in total.
    bytes: u64,
    /// The most bytes live at once, counting from the start of the measurement.
    peak: i64,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Counts) {
    ALLOCS.with(|c| c.set(0));
    BYTES.with(|c| c.set(0));
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    let counts = Counts {
        allocs: ALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        peak: PEAK.with(Cell::get),
    };
    (out, counts)
}

const GROUP: usize = 10_000;

/// `rows` rows in row groups of [`GROUP`]: `id` ascending (zone maps can skip on it), `val`
/// cycling through 0..1000 in every row group (frame of reference: a predicate on it runs
/// on the packed offsets), `price` a decimal, `name` a nullable string nobody projects.
fn segment(rows: usize) -> Vec<u8> {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("val", DataType::Int64, false),
            Field::new("price", DataType::decimal(15, 2).unwrap(), false),
            Field::new("name", DataType::Utf8, true),
        ])
        .unwrap(),
    );
    let n = rows as i64;
    let names: Vec<Scalar> = (0..n)
        .map(|i| match i % 5 {
            0 => Scalar::Null,
            k => Scalar::Utf8(format!("name-{k}-{}", i % 97)),
        })
        .collect();
    let batch = Batch::new(
        schema.clone(),
        vec![
            Column::from_i64(DataType::Int64, (0..n).collect(), None).unwrap(),
            Column::from_i64(
                DataType::Int64,
                (0..n).map(|i| (i * 7919) % 1000).collect(),
                None,
            )
            .unwrap(),
            Column::from_i64(
                DataType::decimal(15, 2).unwrap(),
                (0..n).map(|i| 100_000 + (i * 31) % 50_000).collect(),
                None,
            )
            .unwrap(),
            Column::from_scalars(DataType::Utf8, &names).unwrap(),
        ],
    )
    .unwrap();
    let mut w = SegmentWriter::new(schema, WriterOptions::new().row_group_rows(GROUP)).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap()
}

/// `20_000 <= id < 40_000` (two row groups whatever the segment's size) and `val < 100`.
fn narrow() -> Expr {
    col("id")
        .gt_eq(lit(20_000i64))
        .and(col("id").lt(lit(40_000i64)))
        .and(col("val").lt(lit(100i64)))
}

/// Runs the scan, dropping each row group's batch once its rows are summed, as a consumer
/// streaming the scan would. Returns the rows, a checksum of `price` and the stats.
fn stream(reader: &SegmentReader<&[u8]>, projection: &[&str], p: Expr) -> (u64, i128, ScanStats) {
    let mut scan = Scan::new(reader, projection, Some(p)).unwrap();
    let (mut rows, mut sum) = (0u64, 0i128);
    for g in 0..reader.row_groups().len() {
        if let Some(b) = scan.row_group(g).unwrap() {
            rows += b.num_rows() as u64;
            let price = b.column(0).unwrap();
            match b.selection() {
                Some(sel) => {
                    for i in sel {
                        if let Scalar::Decimal { value, .. } = price.value(*i as usize) {
                            sum += i128::from(value);
                        }
                    }
                }
                None => panic!("val < 100 leaves a selection"),
            }
        }
    }
    (rows, sum, scan.stats().clone())
}

struct Run {
    rows: usize,
    groups: usize,
    out_rows: u64,
    stats: ScanStats,
    counts: Counts,
}

fn run(rows: usize, predicate: &dyn Fn() -> Expr) -> Run {
    let bytes = segment(rows);
    let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
    let p = predicate();
    // Once unmeasured, so one-time lazy initialisation (CPU feature detection) is not counted.
    let _ = stream(&reader, &["price", "val"], p.clone());
    let ((out_rows, _, stats), counts) = measure(|| stream(&reader, &["price", "val"], p));
    Run {
        rows,
        groups: reader.row_groups().len(),
        out_rows,
        stats,
        counts,
    }
}

#[test]
fn a_narrow_scan_allocates_the_same_whatever_the_segment_size() {
    let small = run(100_000, &narrow);
    let large = run(400_000, &narrow);
    eprintln!(
        "narrow: {} rows: {:?} {:?}; {} rows: {:?} {:?}",
        small.rows, small.counts, small.stats, large.rows, large.counts, large.stats
    );
    assert_eq!((small.groups, large.groups), (10, 40));
    // The same answer from the same two row groups; the rest skipped by zone maps.
    assert_eq!(small.out_rows, 2_000);
    assert_eq!(large.out_rows, small.out_rows);
    assert_eq!(small.stats.skipped_by_zone_maps, 8);
    assert_eq!(large.stats.skipped_by_zone_maps, 38);
    assert_eq!(
        large.stats.chunks_decoded, 4,
        "price and val of two row groups"
    );
    // 30 more row groups, all skipped by their zone maps: at most one allocation and
    // 64 bytes for each, and no more memory live at once.
    let extra = (large.groups - small.groups) as u64;
    assert!(
        large.counts.allocs <= small.counts.allocs + extra,
        "allocations grew from {} to {} with 4x the rows",
        small.counts.allocs,
        large.counts.allocs
    );
    assert!(
        large.counts.bytes <= small.counts.bytes + 64 * extra,
        "bytes allocated grew from {} to {} with 4x the rows",
        small.counts.bytes,
        large.counts.bytes
    );
    assert!(large.counts.peak <= small.counts.peak + 64 * extra as i64);
}

/// `val < 100`: a tenth of the rows of every row group, so every row group is read.
fn wide() -> Expr {
    col("val").lt(lit(100i64))
}

#[test]
fn a_scan_of_every_row_group_allocates_per_row_group_not_per_row() {
    let small = run(100_000, &wide);
    let large = run(400_000, &wide);
    eprintln!(
        "wide: {} rows: {:?} {:?}; {} rows: {:?} {:?}",
        small.rows, small.counts, small.stats, large.rows, large.counts, large.stats
    );
    assert_eq!(small.out_rows, 10_000);
    assert_eq!(large.out_rows, 40_000);
    assert_eq!(large.stats.skipped_by_zone_maps, 0);
    assert_eq!(
        large.stats.chunks_decoded,
        2 * 40,
        "price and val of every row group"
    );
    for r in [&small, &large] {
        let per_group = r.counts.allocs as f64 / r.groups as f64;
        // A row group is 10,000 rows of which 1,000 survive: a per-row allocation would
        // be >= 1,000 per group.
        assert!(
            per_group <= 40.0,
            "{per_group} allocations per row group of {GROUP} rows ({} rows)",
            r.rows
        );
        // Decoded vectors are 8 bytes a value; the encoded predicate's result, the
        // selection vector (4 bytes per surviving row) and temporaries come to less than
        // another 8: 2 columns x 8 + 8 = 24 bytes per row at most.
        let per_row = r.counts.bytes as f64 / r.rows as f64;
        assert!(
            per_row <= 24.0,
            "{per_row} bytes allocated per row ({} rows)",
            r.rows
        );
    }
    // The per-group figure does not depend on how many groups there are.
    assert!(large.counts.allocs <= 4 * small.counts.allocs + 4);
    // Each row group's batch is dropped before the next is read: what is live at once is
    // one row group's working set, whatever the segment's size.
    assert!(
        large.counts.peak <= small.counts.peak + 4096,
        "peak live bytes grew from {} to {}",
        small.counts.peak,
        large.counts.peak
    );
}

/// Records the byte ranges a reader asks for (recorded outside any measurement).
struct Recording<'a> {
    bytes: &'a [u8],
    reads: RefCell<Vec<(u64, usize)>>,
}

impl ByteSource for Recording<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        self.reads.borrow_mut().push((offset, len));
        self.bytes.read_at(offset, len)
    }
}

#[test]
fn skipped_row_groups_and_unprojected_columns_are_never_read_or_decoded() {
    let bytes = segment(100_000);
    let src = Recording {
        bytes: &bytes,
        reads: RefCell::new(Vec::new()),
    };
    let reader = SegmentReader::open(&src, SegmentId::new(1)).unwrap();
    src.reads.borrow_mut().clear();
    let mut scan = Scan::new(&reader, &["price"], Some(narrow())).unwrap();
    let out = scan.collect().unwrap();
    assert_eq!(out.iter().map(Batch::num_rows).sum::<usize>(), 2_000);
    let stats = scan.stats().clone();
    assert_eq!(stats.skipped_by_zone_maps, 8);
    // Only `price` is decoded, in the two row groups left: `id` and `val` are judged on
    // their encoded blocks, `name` is not touched.
    assert_eq!(stats.chunks_decoded, 2);
    let mut read: Vec<(usize, usize)> = Vec::new();
    for (offset, len) in src.reads.borrow().iter() {
        let found = reader.row_groups().iter().enumerate().find_map(|(g, m)| {
            m.chunks()
                .iter()
                .position(|c| c.offset() == *offset && c.len() as usize == *len)
                .map(|c| (g, c))
        });
        read.push(found.expect("every read is one whole chunk"));
    }
    read.sort_unstable();
    read.dedup();
    // Row groups 2 and 3: `id` and `val` for the pushed conjuncts, `price` to decode.
    assert_eq!(read, vec![(2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2)]);

    // And the allocator agrees: decoding `price` of two row groups is 2 x 80,000 bytes and
    // the encoded predicates with their bitmaps and selection about 50,000 a row group;
    // decoding `id` or `val` too would add another 160,000, the string column more.
    let bytes_src: &[u8] = &bytes;
    let reader = SegmentReader::open(bytes_src, SegmentId::new(1)).unwrap();
    drop(
        Scan::new(&reader, &["price"], Some(narrow()))
            .unwrap()
            .collect()
            .unwrap(),
    );
    let (_, counts) = measure(|| {
        Scan::new(&reader, &["price"], Some(narrow()))
            .unwrap()
            .collect()
            .unwrap()
    });
    eprintln!("price only: {counts:?}");
    assert!(
        counts.bytes < 2 * (2 * 80_000),
        "{} bytes for one decoded column of two row groups",
        counts.bytes
    );
}
