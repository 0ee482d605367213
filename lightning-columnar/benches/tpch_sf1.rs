//! Bench: TPC-H `lineitem` at scale factor 1 (6M rows, generated in process by `tpchgen`)
//! through lightning-columnar beside `DuckDB` on the same rows in the same run (issue #17).
//!
//! ```text
//! pip install duckdb==2.0.1      # optional: without it only Lightning's figures are written
//! cargo bench -p lightning-columnar --bench tpch_sf1
//! LIGHTNING_BENCH_QUICK=1 cargo bench -p lightning-columnar --bench tpch_sf1   # SF 0.05
//! ```
//! `TPCH_SF` sets the scale factor, `TPCH_SECS` the time budget per query and thread count
//! (default 2 s; each figure is the median of the runs in it, at least three). Queries:
//! `sum_price` (`SUM(l_extendedprice)`, no filter), `sum_filtered` (the same over a 61-day
//! `l_shipdate` range, about 2.4 % of the rows, unsorted data), `q1`, `q6`; each on 1 and 2
//! threads; `join_count` (lineitem ⋈ orders on the order key, counted), `q3` (a plan:
//! customer ⋈ orders ⋈ lineitem) and `top10_price` on 1. Ingest: encoding every batch into a segment on 1 thread, and into two segments
//! on 2. `DuckDB` (through `scripts/duckdb-tpch.py`) loads the same rows from dbgen text
//! files written by this bench and runs the same queries with `SET threads`; its answers
//! must equal ours (the run fails otherwise). Writes `benchmark_results/<date>/tpch_sf1.json`.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    reason = "a bench binary: reports on stdout, fails loudly, figures are floats, runs step by step"
)]
#![expect(
    unsafe_code,
    reason = "the peak-memory counter is a GlobalAlloc, unsafe by definition; it forwards to System unchanged"
)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
use lightning_columnar::{
    Aggregate, Batch, Column, DataType, Expr, Field, HashJoin, JoinType, PlanBuilder, Scalar, Scan,
    Schema, SortKey, avg, col, count_star, lit, parallel_aggregate, sort, sum,
};
use lightning_testkit::bench::{Figure, quick, temp_dir, write_report};
use tpchgen::generators::{CustomerGenerator, LineItemGenerator, OrderGenerator};

const BATCH_ROWS: usize = 100_000;

/// The system allocator, counting the bytes live and the most live since the last
/// [`Peak::start`]: a query's peak memory is the peak over what was live before it.
struct Peak;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the counters only observe.
unsafe impl std::alloc::GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            MOST.fetch_max(live, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as it is.
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            let live = LIVE.fetch_add(new, Relaxed) + new;
            MOST.fetch_max(live, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Peak = Peak;

impl Peak {
    /// Starts a measurement: returns the bytes live now.
    fn start() -> usize {
        let live = LIVE.load(std::sync::atomic::Ordering::Relaxed);
        MOST.store(live, std::sync::atomic::Ordering::Relaxed);
        live
    }

    /// The most bytes live since [`start`](Self::start) above what was live then.
    fn since(base: usize) -> usize {
        MOST.load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(base)
    }
}

/// The compressed bytes of `columns` over every row group of `reader`.
fn read_bytes(reader: &SegmentReader<&[u8]>, columns: &[&str]) -> u64 {
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| reader.schema().index_of(c).unwrap())
        .collect();
    reader
        .row_groups()
        .iter()
        .map(|g| {
            idx.iter()
                .map(|i| u64::from(g.chunk(*i).unwrap().len()))
                .sum::<u64>()
        })
        .sum()
}

fn dec() -> DataType {
    DataType::decimal(15, 2).unwrap()
}

fn d(v: i64) -> Expr {
    Expr::Literal(Scalar::decimal(v, 15, 2).unwrap())
}

fn date(y: i32, m: u32, day: u32) -> Expr {
    Expr::Literal(Scalar::date(y, m, day).unwrap())
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(vec![
            Field::new("l_orderkey", DataType::Int64, false),
            Field::new("l_quantity", DataType::Int64, false),
            Field::new("l_extendedprice", dec(), false),
            Field::new("l_discount", dec(), false),
            Field::new("l_tax", dec(), false),
            Field::new("l_returnflag", DataType::Utf8, false),
            Field::new("l_linestatus", DataType::Utf8, false),
            Field::new("l_shipdate", DataType::Date32, false),
        ])
        .unwrap(),
    )
}

/// `lineitem`'s columns the queries read, in batches; and their raw bytes (8 per integer
/// and decimal, 4 per date, the strings' bytes).
fn lineitem(sf: f64) -> (Vec<Batch>, u64) {
    let schema = schema();
    let mut batches = Vec::new();
    let mut raw = 0u64;
    let mut rows = LineItemGenerator::new(sf, 1, 1).iter().peekable();
    while rows.peek().is_some() {
        let (mut okey, mut qty, mut price, mut disc, mut tax) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut flag, mut status, mut ship) = (vec![], vec![], vec![]);
        for l in rows.by_ref().take(BATCH_ROWS) {
            okey.push(l.l_orderkey);
            qty.push(l.l_quantity);
            price.push(l.l_extendedprice.0);
            disc.push(l.l_discount.0);
            tax.push(l.l_tax.0);
            flag.push(l.l_returnflag.to_owned());
            status.push(l.l_linestatus.to_owned());
            ship.push(l.l_shipdate.to_unix_epoch());
        }
        raw += qty.len() as u64 * (5 * 8 + 4 + 2);
        batches.push(
            Batch::new(
                schema.clone(),
                vec![
                    Column::from_i64(DataType::Int64, okey, None).unwrap(),
                    Column::from_i64(DataType::Int64, qty, None).unwrap(),
                    Column::from_i64(dec(), price, None).unwrap(),
                    Column::from_i64(dec(), disc, None).unwrap(),
                    Column::from_i64(dec(), tax, None).unwrap(),
                    Column::from_strings(DataType::Utf8, &flag, None).unwrap(),
                    Column::from_strings(DataType::Utf8, &status, None).unwrap(),
                    Column::from_i32(DataType::Date32, ship, None).unwrap(),
                ],
            )
            .unwrap(),
        );
    }
    (batches, raw)
}

/// `orders`' keys, in batches.
fn orders(sf: f64) -> (Arc<Schema>, Vec<Batch>) {
    let schema =
        Arc::new(Schema::new(vec![Field::new("o_orderkey", DataType::Int64, false)]).unwrap());
    let keys: Vec<i64> = OrderGenerator::new(sf, 1, 1)
        .iter()
        .map(|o| o.o_orderkey)
        .collect();
    let batches = keys
        .chunks(BATCH_ROWS)
        .map(|c| {
            Batch::new(
                schema.clone(),
                vec![Column::from_i64(DataType::Int64, c.to_vec(), None).unwrap()],
            )
            .unwrap()
        })
        .collect();
    (schema, batches)
}

/// The columns of `customer` and `orders` Q3 reads, each as one segment.
fn q3_tables(sf: f64) -> (Vec<u8>, Vec<u8>) {
    let cs = Arc::new(
        Schema::new(vec![
            Field::new("c_custkey", DataType::Int64, false),
            Field::new("c_mktsegment", DataType::Utf8, false),
        ])
        .unwrap(),
    );
    let (mut key, mut seg) = (vec![], vec![]);
    for c in CustomerGenerator::new(sf, 1, 1).iter() {
        key.push(c.c_custkey);
        seg.push(c.c_mktsegment.to_owned());
    }
    let customer = Batch::new(
        cs.clone(),
        vec![
            Column::from_i64(DataType::Int64, key, None).unwrap(),
            Column::from_strings(DataType::Utf8, &seg, None).unwrap(),
        ],
    )
    .unwrap();
    let os = Arc::new(
        Schema::new(vec![
            Field::new("o_orderkey", DataType::Int64, false),
            Field::new("o_custkey", DataType::Int64, false),
            Field::new("o_orderdate", DataType::Date32, false),
            Field::new("o_shippriority", DataType::Int32, false),
        ])
        .unwrap(),
    );
    let (mut okey, mut cust, mut date, mut prio) = (vec![], vec![], vec![], vec![]);
    for o in OrderGenerator::new(sf, 1, 1).iter() {
        okey.push(o.o_orderkey);
        cust.push(o.o_custkey);
        date.push(o.o_orderdate.to_unix_epoch());
        prio.push(o.o_shippriority);
    }
    let orders = Batch::new(
        os.clone(),
        vec![
            Column::from_i64(DataType::Int64, okey, None).unwrap(),
            Column::from_i64(DataType::Int64, cust, None).unwrap(),
            Column::from_i32(DataType::Date32, date, None).unwrap(),
            Column::from_i32(DataType::Int32, prio, None).unwrap(),
        ],
    )
    .unwrap();
    let seg = |schema: Arc<Schema>, b: &Batch| {
        let mut w = SegmentWriter::new(schema, WriterOptions::new()).unwrap();
        w.write(b).unwrap();
        w.finish().unwrap()
    };
    (seg(cs, &customer), seg(os, &orders))
}

fn encode(batches: &[Batch]) -> Vec<u8> {
    let mut w = SegmentWriter::new(schema(), WriterOptions::new()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap()
}

struct Query {
    name: &'static str,
    what: &'static str,
    columns: &'static [&'static str],
    predicate: Option<Expr>,
    group_by: Vec<(String, Expr)>,
    aggs: Vec<Aggregate>,
}

fn queries() -> Vec<Query> {
    let disc_price = || col("l_extendedprice") * (d(100) - col("l_discount"));
    vec![
        Query {
            name: "sum_price",
            what: "SELECT SUM(l_extendedprice) FROM lineitem",
            columns: &["l_extendedprice"],
            predicate: None,
            group_by: vec![],
            aggs: vec![sum(col("l_extendedprice")).alias("s")],
        },
        Query {
            name: "sum_filtered",
            what: "SELECT SUM(l_extendedprice) FROM lineitem WHERE l_shipdate >= DATE '1994-03-01' AND l_shipdate < DATE '1994-05-01'",
            columns: &["l_extendedprice"],
            predicate: Some(
                col("l_shipdate")
                    .gt_eq(date(1994, 3, 1))
                    .and(col("l_shipdate").lt(date(1994, 5, 1))),
            ),
            group_by: vec![],
            aggs: vec![sum(col("l_extendedprice")).alias("s")],
        },
        Query {
            name: "q1",
            what: "TPC-H Q1",
            columns: &[
                "l_returnflag",
                "l_linestatus",
                "l_quantity",
                "l_extendedprice",
                "l_discount",
                "l_tax",
            ],
            predicate: Some(col("l_shipdate").lt_eq(date(1998, 9, 2))),
            group_by: vec![
                ("l_returnflag".into(), col("l_returnflag")),
                ("l_linestatus".into(), col("l_linestatus")),
            ],
            aggs: vec![
                sum(col("l_quantity")).alias("sum_qty"),
                sum(col("l_extendedprice")).alias("sum_base_price"),
                sum(disc_price()).alias("sum_disc_price"),
                sum(disc_price() * (d(100) + col("l_tax"))).alias("sum_charge"),
                avg(col("l_quantity")).alias("avg_qty"),
                avg(col("l_extendedprice")).alias("avg_price"),
                avg(col("l_discount")).alias("avg_disc"),
                count_star().alias("count_order"),
            ],
        },
        Query {
            name: "q6",
            what: "TPC-H Q6",
            columns: &["l_extendedprice", "l_discount"],
            predicate: Some(
                col("l_shipdate")
                    .gt_eq(date(1994, 1, 1))
                    .and(col("l_shipdate").lt(date(1995, 1, 1)))
                    .and(col("l_discount").between(d(5), d(7)))
                    .and(col("l_quantity").lt(lit(24i64))),
            ),
            group_by: vec![],
            aggs: vec![sum(col("l_extendedprice") * col("l_discount")).alias("revenue")],
        },
    ]
}

/// The median of the runs of `f` that fit in `budget` (at least three).
fn median_secs(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 3 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        runs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A result as text `DuckDB`'s script prints the same way: scaled integers for decimals
/// (their unscaled value), counts as integers, rows sorted.
fn answer(b: &Batch) -> Vec<String> {
    let mut rows: Vec<String> = b
        .rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .filter_map(|v| match v {
                    Scalar::Decimal { value, .. } => Some(value.to_string()),
                    Scalar::Int64(v) => Some(v.to_string()),
                    Scalar::Utf8(s) => Some(s.clone()),
                    _ => None, // averages: doubles, compared by the sums and counts
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

fn duckdb(dir: &Path, sf: f64, secs: f64) -> Option<serde_json::Value> {
    let available = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        println!(
            "duckdb (Python) not installed: only Lightning's figures (pip install duckdb==2.0.1)"
        );
        return None;
    }
    let tbl = dir.join("lineitem.tbl");
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tbl).unwrap());
    for row in LineItemGenerator::new(sf, 1, 1).iter() {
        writeln!(out, "{row}").unwrap();
    }
    out.flush().unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("orders.tbl")).unwrap());
    for row in OrderGenerator::new(sf, 1, 1).iter() {
        writeln!(out, "{row}").unwrap();
    }
    out.flush().unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("customer.tbl")).unwrap());
    for row in CustomerGenerator::new(sf, 1, 1).iter() {
        writeln!(out, "{row}").unwrap();
    }
    out.flush().unwrap();
    println!(
        "wrote {} (and orders.tbl, customer.tbl) in {:.1} s",
        tbl.display(),
        t.elapsed().as_secs_f64()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/duckdb-tpch.py");
    let json = dir.join("duckdb.json");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&tbl)
        .arg(&json)
        .arg(secs.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
    Some(serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap())
}

fn main() {
    let sf: f64 = std::env::var("TPCH_SF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 0.05 } else { 1.0 });
    let secs: f64 = std::env::var("TPCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 0.3 } else { 2.0 });
    let budget = Duration::from_secs_f64(secs);
    let t = Instant::now();
    let (batches, raw) = lineitem(sf);
    let rows: usize = batches.iter().map(Batch::num_rows).sum();
    println!(
        "lineitem SF {sf}: {rows} rows ({} MB of the queried columns) generated in {:.1} s",
        raw / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    let mut figures = Vec::new();
    let how = |extra: &str| {
        format!(
            "TPC-H lineitem SF {sf} ({rows} rows, 8 columns, {} MB raw); {extra}",
            raw / 1_000_000
        )
    };

    // Ingest: 1 thread, then 2 threads (two segments).
    let ingest1 = median_secs(Duration::ZERO, || drop(encode(&batches)));
    let half = batches.len() / 2;
    let ingest2 = median_secs(Duration::ZERO, || {
        std::thread::scope(|s| {
            let a = s.spawn(|| encode(&batches[..half]));
            let b = s.spawn(|| encode(&batches[half..]));
            drop((a.join().unwrap(), b.join().unwrap()));
        });
    });
    let bytes = encode(&batches);
    for (threads, took) in [(1, ingest1), (2, ingest2)] {
        figures.push(Figure::new(
            format!("lightning_ingest_{threads}t_rows_per_s"),
            rows as f64 / took,
            "rows/s",
            how(&format!("batches of {BATCH_ROWS} rows encoded into segments (row groups of the default size), {threads} thread(s); median of 3")),
        ));
    }
    figures.push(Figure::new(
        "lightning_segment_mb",
        bytes.len() as f64 / 1e6,
        "MB",
        how(&format!(
            "segment bytes for the 8 columns; raw {} MB",
            raw / 1_000_000
        )),
    ));
    let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();

    let mut ours = std::collections::BTreeMap::new();
    for q in queries() {
        for threads in [1usize, 2] {
            let run = || {
                parallel_aggregate(
                    &reader,
                    q.columns,
                    q.predicate.as_ref(),
                    q.group_by.clone(),
                    q.aggs.clone(),
                    threads,
                )
                .unwrap()
            };
            let base = Peak::start();
            let (result, stats) = run();
            let peak = Peak::since(base);
            let took = median_secs(budget, || drop(run()));
            if threads == 1 {
                let mut cols: Vec<&str> = q.columns.to_vec();
                if let Some(p) = &q.predicate {
                    for c in predicate_columns(p) {
                        if !cols.contains(&c) {
                            cols.push(c);
                        }
                    }
                }
                let read = read_bytes(&reader, &cols);
                figures.push(Figure::new(
                    format!("lightning_{}_peak_mb", q.name),
                    peak as f64 / 1e6,
                    "MB",
                    how(&format!("{}: the most heap bytes live during the query on 1 thread, above those live before it (a counting global allocator); the query reads {:.1} MB of compressed chunks", q.what, read as f64 / 1e6)),
                ));
                figures.push(Figure::new(
                    format!("lightning_{}_peak_over_read", q.name),
                    peak as f64 / read as f64,
                    "ratio",
                    "peak memory over the compressed bytes of the columns the query reads (issue #17: below 2)",
                ));
            }
            println!(
                "lightning {:<13} {threads}t {:>8.2} ms  {:>7.0} M rows/s  ({} rows passed)",
                q.name,
                took * 1e3,
                rows as f64 / took / 1e6,
                stats.rows
            );
            figures.push(Figure::new(
                format!("lightning_{}_{threads}t_ms", q.name),
                took * 1e3,
                "ms",
                how(&format!("{}; {threads} thread(s); {} of {rows} rows passed the filter; median of the runs in {secs} s", q.what, stats.rows)),
            ));
            ours.insert(q.name, answer(&result));
        }
    }

    // A full scan: every column of every row group decoded.
    let full = schema();
    let all: Vec<&str> = full.fields().iter().map(Field::name).collect();
    // Streamed: each row group's batch is dropped before the next is decoded, as an operator
    // consuming the scan would (collecting them all measures page faults instead).
    let scan_all = || {
        let mut scan = Scan::new(&reader, &all, None).unwrap();
        let mut rows = 0;
        for g in 0..reader.row_groups().len() {
            rows += scan.row_group(g).unwrap().map_or(0, |b| b.num_rows());
        }
        rows
    };
    let took = median_secs(budget, || {
        std::hint::black_box(scan_all());
    });
    println!(
        "lightning {:<13} 1t {:>8.2} ms  {:>7.1} ms per GB of raw column data",
        "scan_all",
        took * 1e3,
        took * 1e3 / (raw as f64 / 1e9)
    );
    figures.push(Figure::new(
        "lightning_scan_all_ms_per_gb",
        took * 1e3 / (raw as f64 / 1e9),
        "ms/GB",
        how(&format!("all 8 columns of every row group decoded into a batch, one row group at a time ({} MB raw), 1 thread; median of the runs in {secs} s (issue #17: below 50)", raw / 1_000_000)),
    ));

    // lineitem ⋈ orders on the order key, counted: orders built into a hash table, the
    // segment's l_orderkey scanned and probed (one thread).
    let (orders_schema, order_batches) = orders(sf);
    let probe_schema =
        Arc::new(Schema::new(vec![Field::new("l_orderkey", DataType::Int64, false)]).unwrap());
    let join = || -> u64 {
        let j = HashJoin::new(
            &orders_schema,
            &order_batches,
            &[col("o_orderkey")],
            probe_schema.clone(),
            vec![col("l_orderkey")],
            JoinType::Inner,
        )
        .unwrap();
        let mut scan = Scan::new(&reader, &["l_orderkey"], None).unwrap();
        scan.collect()
            .unwrap()
            .iter()
            .map(|b| j.probe(b).unwrap().num_rows() as u64)
            .sum()
    };
    let joined = join();
    let took = median_secs(budget, || {
        std::hint::black_box(join());
    });
    println!(
        "lightning {:<13} 1t {:>8.2} ms  {:>7.1} M probe rows/s  ({joined} rows joined)",
        "join_count",
        took * 1e3,
        rows as f64 / took / 1e6
    );
    figures.push(Figure::new(
        "lightning_join_count_1t_ms",
        took * 1e3,
        "ms",
        how(&format!("SELECT COUNT(*) FROM lineitem JOIN orders ON l_orderkey = o_orderkey: build on orders' {} keys (in memory), probe with l_orderkey scanned from the segment; 1 thread; median of the runs in {secs} s", order_batches.iter().map(Batch::num_rows).sum::<usize>())),
    ));
    ours.insert("join_count", vec![joined.to_string()]);
    // TPC-H Q3: customer ⋈ orders ⋈ lineitem, grouped, top 10 by revenue (a plan, 1 thread).
    let (customer_bytes, orders_bytes) = q3_tables(sf);
    let customer = SegmentReader::open(customer_bytes.as_slice(), SegmentId::new(2)).unwrap();
    let orders_seg = SegmentReader::open(orders_bytes.as_slice(), SegmentId::new(3)).unwrap();
    let q3 = || {
        let named = |names: &[&str]| -> Vec<(String, Expr)> {
            names.iter().map(|n| ((*n).to_owned(), col(*n))).collect()
        };
        let on = |l: &str, r: &str| vec![(col(l), col(r))];
        PlanBuilder::scan(
            "customer",
            &customer,
            &["c_custkey"],
            Some(col("c_mktsegment").equal(lit("BUILDING"))),
        )
        .unwrap()
        .join(
            PlanBuilder::scan(
                "orders",
                &orders_seg,
                &["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"],
                Some(col("o_orderdate").lt(date(1995, 3, 15))),
            )
            .unwrap(),
            on("c_custkey", "o_custkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            PlanBuilder::scan(
                "lineitem",
                &reader,
                &["l_orderkey", "l_extendedprice", "l_discount"],
                Some(col("l_shipdate").gt(date(1995, 3, 15))),
            )
            .unwrap(),
            on("o_orderkey", "l_orderkey"),
            JoinType::Inner,
        )
        .unwrap()
        .aggregate(
            named(&["l_orderkey", "o_orderdate", "o_shippriority"]),
            vec![sum(col("l_extendedprice") * (d(100) - col("l_discount"))).alias("revenue")],
        )
        .unwrap()
        .project(named(&[
            "l_orderkey",
            "revenue",
            "o_orderdate",
            "o_shippriority",
        ]))
        .unwrap()
        .sort(
            vec![
                SortKey::desc(col("revenue")),
                SortKey::asc(col("o_orderdate")),
            ],
            Some(10),
        )
        .unwrap()
        .build()
        .execute()
        .unwrap()
    };
    let q3_rows = q3();
    let took = median_secs(budget, || drop(q3()));
    println!("lightning {:<13} 1t {:>8.2} ms", "q3", took * 1e3);
    figures.push(Figure::new(
        "lightning_q3_1t_ms",
        took * 1e3,
        "ms",
        how(&format!("TPC-H Q3 (customer ⋈ orders ⋈ lineitem, BUILDING, 1995-03-15, top 10 by revenue) as a plan over three segments; 1 thread; median of the runs in {secs} s")),
    ));
    let mut q3_answer: Vec<String> = q3_rows.iter().flat_map(answer).collect();
    q3_answer.sort();
    ours.insert("q3", q3_answer);
    // Top-k: the ten largest prices.
    let price_schema =
        Arc::new(Schema::new(vec![Field::new("l_extendedprice", dec(), false)]).unwrap());
    let top_k = || {
        let mut scan = Scan::new(&reader, &["l_extendedprice"], None).unwrap();
        let batches = scan.collect().unwrap();
        sort(
            &price_schema,
            &batches,
            &[SortKey::desc(col("l_extendedprice"))],
            Some(10),
        )
        .unwrap()
    };
    let top = top_k();
    let took = median_secs(budget, || drop(top_k()));
    println!("lightning {:<13} 1t {:>8.2} ms", "top10_price", took * 1e3);
    figures.push(Figure::new(
        "lightning_top10_price_1t_ms",
        took * 1e3,
        "ms",
        how(&format!("SELECT l_extendedprice FROM lineitem ORDER BY l_extendedprice DESC LIMIT 10: the column scanned, top-k sort; 1 thread; median of the runs in {secs} s")),
    ));
    ours.insert("top10_price", answer(&top));

    let dir = temp_dir().unwrap();
    let duck_extra = duckdb(dir.path(), sf, secs);
    if let Some(duck) = &duck_extra {
        figures.push(Figure::new(
            "duckdb_load_rows_per_s",
            rows as f64 / duck["load_s"].as_f64().unwrap(),
            "rows/s",
            how("DuckDB loading the same rows from dbgen text (read_csv into a table), its default threads"),
        ));
        for q in queries() {
            let want = &ours[q.name];
            let got: Vec<String> = duck["answers"][q.name]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(&got, want, "{}: DuckDB and Lightning disagree", q.name);
            for threads in [1, 2] {
                let duck_ms = duck["seconds"][q.name][threads.to_string()]
                    .as_f64()
                    .unwrap()
                    * 1e3;
                let ours_ms = figures
                    .iter()
                    .find(|f| f.name == format!("lightning_{}_{threads}t_ms", q.name))
                    .map_or(f64::NAN, |f| f.value);
                println!(
                    "duckdb    {:<13} {threads}t {duck_ms:>8.2} ms  (Lightning / DuckDB speed: {:.2})",
                    q.name,
                    duck_ms / ours_ms
                );
                figures.push(Figure::new(
                    format!("duckdb_{}_{threads}t_ms", q.name),
                    duck_ms,
                    "ms",
                    how(&format!("DuckDB 2.0.1 (Python), {}; SET threads = {threads}; median of the runs in {secs} s; answers equal Lightning's", q.what)),
                ));
                figures.push(Figure::new(
                    format!("lightning_vs_duckdb_{}_{threads}t", q.name),
                    duck_ms / ours_ms,
                    "ratio",
                    "DuckDB's time over Lightning's in the same run (above 1: Lightning is faster)",
                ));
            }
        }
    }
    if let Some(duck) = &duck_extra {
        for (name, what) in [
            ("join_count", "the join count"),
            ("q3", "TPC-H Q3"),
            ("top10_price", "the top 10 prices"),
        ] {
            let got: Vec<String> = duck["answers"][name]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(&got, &ours[name], "{name}: DuckDB and Lightning disagree");
            for threads in [1, 2] {
                let duck_ms = duck["seconds"][name][threads.to_string()].as_f64().unwrap() * 1e3;
                println!("duckdb    {name:<13} {threads}t {duck_ms:>8.2} ms");
                figures.push(Figure::new(
                    format!("duckdb_{name}_{threads}t_ms"),
                    duck_ms,
                    "ms",
                    how(&format!("DuckDB 2.0.1 (Python), {what}; SET threads = {threads}; median of the runs in {secs} s; answers equal Lightning's")),
                ));
            }
            let ours_ms = figures
                .iter()
                .find(|f| f.name == format!("lightning_{name}_1t_ms"))
                .map_or(f64::NAN, |f| f.value);
            let duck_ms = duck["seconds"][name]["1"].as_f64().unwrap() * 1e3;
            figures.push(Figure::new(
                format!("lightning_vs_duckdb_{name}_1t"),
                duck_ms / ours_ms,
                "ratio",
                "DuckDB's time over Lightning's in the same run, 1 thread each (above 1: Lightning is faster)",
            ));
        }
    }
    let path = write_report("tpch_sf1", &figures).unwrap();
    println!("wrote {}", path.display());
}

/// The column names a predicate reads.
fn predicate_columns(e: &Expr) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Column(name) => out.push(name.as_str()),
            Expr::Binary { left, right, .. } => stack.extend([&**left, &**right]),
            Expr::Not(x)
            | Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::StartsWith(x, _)
            | Expr::Extract(_, x) => stack.push(x),
            _ => {}
        }
    }
    out
}
