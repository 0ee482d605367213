//! Bench: the measurements behind `docs/columnar-cost-model.md`, one core unless said.
//!
//! ```text
//! cargo bench -p lightning-columnar --bench cost_model        # 1 s per figure
//! LIGHTNING_BENCH_QUICK=1 cargo bench -p lightning-columnar --bench cost_model
//! ```
//! Prints one line per figure (nothing is written to `benchmark_results/`):
//! - the hash join built on the smaller and on the larger side of a 1:40 join;
//! - a predicate pushed down to the encoded blocks against the same predicate on decoded
//!   vectors (`NOT (v >= k)` is not pushed down), at three selectivities;
//! - zone-map skipping and scan speed against row-group size (the morsel);
//! - aggregation speed against batch size.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "rates are floating point; row counts are small"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
use lightning_columnar::{
    Batch, Column, DataType, Expr, Field, HashAggregate, HashJoin, JoinType, Scan, Schema, col,
    lit, parallel_aggregate, sum,
};
use lightning_testkit::Rng;
use lightning_testkit::bench::{quick, repeat};

const ROWS: usize = 1 << 20;

/// Seconds per run of `f`, over `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let (k, t) = repeat(budget, f);
    t.as_secs_f64() / k as f64
}

fn report(name: &str, secs: f64, rows: usize, detail: &str) {
    println!(
        "{name:<44} {:>9.3} ms  {:>8.1} M rows/s  {detail}",
        secs * 1e3,
        rows as f64 / secs / 1e6
    );
}

/// `id` ascending, `val` uniform in 0..1000 (unsorted), `price` a decimal.
fn table(rows: usize, rng: &mut Rng) -> Batch {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("val", DataType::Int64, false),
            Field::new("price", DataType::decimal(15, 2).unwrap(), false),
        ])
        .unwrap(),
    );
    let n = rows as i64;
    Batch::new(
        schema,
        vec![
            Column::from_i64(DataType::Int64, (0..n).collect(), None).unwrap(),
            Column::from_i64(
                DataType::Int64,
                (0..n).map(|_| rng.below(1000).cast_signed()).collect(),
                None,
            )
            .unwrap(),
            Column::from_i64(
                DataType::decimal(15, 2).unwrap(),
                (0..n)
                    .map(|_| 90_000 + rng.below(10_000_000).cast_signed())
                    .collect(),
                None,
            )
            .unwrap(),
        ],
    )
    .unwrap()
}

fn segment(batch: &Batch, group: usize) -> Vec<u8> {
    let mut w = SegmentWriter::new(
        batch.schema().clone(),
        WriterOptions::new().row_group_rows(group),
    )
    .unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap()
}

fn scan_rows(reader: &SegmentReader<&[u8]>, projection: &[&str], p: &Expr) -> usize {
    let mut s = Scan::new(reader, projection, Some(p.clone())).unwrap();
    s.collect().unwrap().iter().map(Batch::num_rows).sum()
}

fn main() {
    let budget = Duration::from_millis(if quick() { 150 } else { 1000 });
    let mut rng = Rng::new(17);
    let batch = table(ROWS, &mut rng);
    joins(budget, &mut rng);
    pushdown(budget, &batch);
    morsels(budget, &batch);
    batches(budget, &batch);
}

/// Build on 26,214 rows and probe with 1,126,400 (every probe row matches once), against
/// build on the 1,126,400 and probe with the 26,214.
fn joins(budget: Duration, rng: &mut Rng) {
    let small_rows = ROWS / 40;
    let key =
        |name: &str| Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]).unwrap());
    let (small_schema, large_schema) = (key("o_key"), key("l_key"));
    let small = Batch::new(
        small_schema.clone(),
        vec![Column::from_i64(DataType::Int64, (0..small_rows as i64).collect(), None).unwrap()],
    )
    .unwrap();
    let large: Vec<Batch> = (0..ROWS.div_ceil(102_400))
        .map(|_| {
            let keys = (0..102_400)
                .map(|_| rng.below(small_rows as u64).cast_signed())
                .collect();
            Batch::new(
                large_schema.clone(),
                vec![Column::from_i64(DataType::Int64, keys, None).unwrap()],
            )
            .unwrap()
        })
        .collect();
    let probe_rows: usize = large.iter().map(Batch::num_rows).sum();
    let small = vec![small];
    let (sk, lk) = (col("o_key"), col("l_key"));
    let t = time(budget, || {
        let j = HashJoin::new(
            &small_schema,
            &small,
            std::slice::from_ref(&sk),
            large_schema.clone(),
            vec![lk.clone()],
            JoinType::Inner,
        )
        .unwrap();
        for b in &large {
            black_box(j.probe(b).unwrap());
        }
    });
    report(
        "join_build_small_probe_large",
        t,
        probe_rows,
        &format!("build {small_rows} rows, probe {probe_rows}"),
    );
    let t = time(budget, || {
        let j = HashJoin::new(
            &large_schema,
            &large,
            std::slice::from_ref(&lk),
            small_schema.clone(),
            vec![sk.clone()],
            JoinType::Inner,
        )
        .unwrap();
        for b in &small {
            black_box(j.probe(b).unwrap());
        }
    });
    report(
        "join_build_large_probe_small",
        t,
        probe_rows,
        &format!("build {probe_rows} rows, probe {small_rows}"),
    );
}

/// `val < k` on the encoded blocks against `NOT (val >= k)` on the decoded vectors; the
/// scan produces `price` (late materialisation) or `val` itself.
fn pushdown(budget: Duration, batch: &Batch) {
    let bytes = segment(batch, 102_400);
    let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
    for k in [10i64, 100, 500] {
        let pushed = col("val").lt(lit(k));
        let residual = Expr::Not(Box::new(col("val").gt_eq(lit(k))));
        for proj in ["price", "val"] {
            let mut out = 0;
            let t = time(budget, || out = scan_rows(&reader, &[proj], &pushed));
            report(
                &format!("scan_pushed_val_lt_{k}_project_{proj}"),
                t,
                ROWS,
                &format!("{out} rows pass, on the encoded block"),
            );
            let t = time(budget, || out = scan_rows(&reader, &[proj], &residual));
            report(
                &format!("scan_residual_val_lt_{k}_project_{proj}"),
                t,
                ROWS,
                &format!("{out} rows pass, on decoded vectors"),
            );
        }
    }
}

/// Row-group size: a 1 % key range (zone maps) and an unsorted 10 % predicate, one thread
/// and two (`parallel_aggregate`: `SUM(price)`).
fn morsels(budget: Duration, batch: &Batch) {
    for group in [16_384usize, 102_400, 1 << 20] {
        let bytes = segment(batch, group);
        let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
        let lo = (ROWS / 2) as i64;
        let range = col("id")
            .gt_eq(lit(lo))
            .and(col("id").lt(lit(lo + ROWS as i64 / 100)));
        let t = time(budget, || {
            black_box(scan_rows(&reader, &["price"], &range));
        });
        let s = {
            let mut s = Scan::new(&reader, &["price"], Some(range.clone())).unwrap();
            s.collect().unwrap();
            s.stats().clone()
        };
        report(
            &format!("scan_1pct_id_range_group_{group}"),
            t,
            ROWS,
            &format!(
                "{} of {} row groups decoded",
                s.row_groups - s.skipped_by_zone_maps,
                s.row_groups
            ),
        );
        let p = col("val").lt(lit(100i64));
        for threads in [1, 2] {
            let t = time(budget, || {
                black_box(
                    parallel_aggregate(
                        &reader,
                        &["price"],
                        Some(&p),
                        vec![],
                        vec![sum(col("price")).alias("s")],
                        threads,
                    )
                    .unwrap(),
                );
            });
            report(
                &format!("sum_where_val_lt_100_group_{group}_threads_{threads}"),
                t,
                ROWS,
                "parallel_aggregate, morsel = row group",
            );
        }
    }
}

/// SUM(price), SUM(val) over the same 2^20 rows cut into batches of different sizes.
fn batches(budget: Duration, batch: &Batch) {
    for rows in [1024usize, 2048, 16_384, 102_400, 1 << 20] {
        let parts: Vec<Batch> = (0..ROWS.div_ceil(rows))
            .map(|i| {
                let start = i * rows;
                let len = rows.min(ROWS - start);
                let cols = batch
                    .columns()
                    .iter()
                    .map(|c| c.slice(start, len))
                    .collect();
                Batch::new(batch.schema().clone(), cols).unwrap()
            })
            .collect();
        let t = time(budget, || {
            let mut h = HashAggregate::new(
                batch.schema().clone(),
                vec![],
                vec![sum(col("price")).alias("p"), sum(col("val")).alias("v")],
            )
            .unwrap();
            for b in &parts {
                h.push(b).unwrap();
            }
            black_box(h.finish().unwrap());
        });
        report(
            &format!("sum_two_columns_batch_{rows}"),
            t,
            ROWS,
            "HashAggregate without group-by",
        );
    }
}
