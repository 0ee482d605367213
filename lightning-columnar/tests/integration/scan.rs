//! Scans with projection and predicate pushdown (zone maps, encoded blocks, residual
//! predicates) against the reference evaluator.

use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
use lightning_columnar::{Batch, DataType, Expr, Field, Scalar, Scan, Schema, col, lit};
use proptest::prelude::*;
use std::sync::Arc;

use crate::operators::{batch, bool_expr};
use crate::reference;

fn segment(b: &Batch, group: usize) -> Vec<u8> {
    let mut w = SegmentWriter::new(
        b.schema().clone(),
        WriterOptions::new().row_group_rows(group),
    )
    .unwrap();
    w.write(b).unwrap();
    w.finish().unwrap()
}

/// Conjuncts the scan pushes down.
fn pushable() -> impl Strategy<Value = Expr> {
    let op = 0..5u8;
    let cmp = |e: Expr, c: Expr, op: u8| match op {
        0 => e.equal(c),
        1 => e.lt(c),
        2 => e.lt_eq(c),
        3 => e.gt(c),
        _ => e.gt_eq(c),
    };
    prop_oneof![
        ((-60i32..60), op.clone()).prop_map(move |(v, o)| cmp(col("i"), lit(v), o)),
        ((-60i32..60), op.clone()).prop_map(move |(v, o)| cmp(lit(v), col("k"), o)),
        ((-60i64..60), op.clone()).prop_map(move |(v, o)| cmp(col("j"), lit(v), o)),
        ((-6000i64..6000), op.clone()).prop_map(move |(v, o)| cmp(
            col("d"),
            Expr::Literal(Scalar::decimal(v, 15, 2).unwrap()),
            o
        )),
        ((-60i32..60), op.clone()).prop_map(move |(v, o)| cmp(col("d"), lit(v), o)),
        ((-80i32..80), op.clone()).prop_map(move |(v, o)| cmp(
            col("f"),
            lit(f64::from(v) / 4.0),
            o
        )),
        (
            prop_oneof![Just("a"), Just("ab3"), Just("héllo"), Just("zz")],
            op.clone()
        )
            .prop_map(move |(v, o)| cmp(col("s"), lit(v), o)),
        ((-40i32..40), op.clone()).prop_map(move |(v, o)| cmp(
            col("dt"),
            Expr::Literal(Scalar::Date32(v)),
            o
        )),
        ((-60i64..3000), op.clone()).prop_map(move |(v, o)| cmp(
            col("ts"),
            Expr::Literal(Scalar::Timestamp(v)),
            o
        )),
        any::<bool>().prop_map(|v| col("b").equal(lit(v))),
        prop_oneof![Just("i"), Just("s"), Just("f"), Just("dt")].prop_map(|c| col(c).is_null()),
        prop_oneof![Just("j"), Just("d"), Just("b")].prop_map(|c| col(c).is_not_null()),
        prop_oneof![Just("a"), Just("hé"), Just(""), Just("z")]
            .prop_map(|p| col("s").starts_with(p)),
    ]
}

fn predicate() -> impl Strategy<Value = Expr> {
    (
        proptest::collection::vec(pushable(), 1..4),
        proptest::option::of(bool_expr()),
    )
        .prop_map(|(mut parts, residual)| {
            parts.extend(residual);
            parts.into_iter().reduce(Expr::and).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scans_match_the_reference(p in predicate(), seed in any::<u64>(), rows in 0usize..700,
                                 group in 1usize..300) {
        let b = batch(seed, rows);
        if p.data_type(b.schema()).is_err() {
            return Ok(()); // an ill-typed residual, refused by Scan::new
        }
        let bytes = segment(&b, group);
        let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
        let want: Result<Vec<Vec<Scalar>>, _> = b
            .rows()
            .into_iter()
            .filter_map(|row| match reference::eval(&p, b.schema(), &row) {
                Ok(Scalar::Bool(true)) => Some(Ok(vec![row[8].clone(), row[4].clone(), row[0].clone()])),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect();
        let mut scan = Scan::new(&r, &["k", "s", "i"], Some(p.clone())).unwrap();
        let got = scan.collect().map(|bs| bs.iter().flat_map(Batch::rows).collect::<Vec<_>>());
        match (got, want) {
            (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "{}", p),
            (Err(lightning_columnar::Error::Overflow { .. }), _) | (_, Err(_)) => {}
            (got, want) => prop_assert!(false, "{p}: {got:?} vs {want:?}"),
        }
        let s = scan.stats();
        prop_assert!(s.pushed_conjuncts >= 1);
        prop_assert!(s.skipped_by_zone_maps + s.emptied_by_encoded_predicates <= s.row_groups);
    }
}

#[test]
fn zone_maps_skip_row_groups_of_sorted_data() {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("day", DataType::Date32, false),
            Field::new("price", DataType::decimal(15, 2).unwrap(), false),
        ])
        .unwrap(),
    );
    let n = 100_000;
    let b = Batch::new(
        schema,
        vec![
            lightning_columnar::Column::from_i32(
                DataType::Date32,
                (0..n).map(|i| i / 100).collect(),
                None,
            )
            .unwrap(),
            lightning_columnar::Column::from_i64(
                DataType::decimal(15, 2).unwrap(),
                (0..n).map(|i| i64::from(i % 977) * 100).collect(),
                None,
            )
            .unwrap(),
        ],
    )
    .unwrap();
    let bytes = segment(&b, 10_000);
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
    let p = col("day")
        .between(
            Expr::Literal(Scalar::Date32(250)),
            Expr::Literal(Scalar::Date32(349)),
        )
        .and(col("price").lt(lit(10)));
    let mut scan = Scan::new(&r, &["price"], Some(p)).unwrap();
    let out = scan.collect().unwrap();
    let rows: usize = out.iter().map(Batch::num_rows).sum();
    // Days 250..=349 are rows 25,000..35,000; price < 10.00 is i % 977 < 10.
    assert_eq!(rows, (25_000..35_000).filter(|i| i % 977 < 10).count());
    let s = scan.stats();
    assert_eq!(
        (s.row_groups, s.skipped_by_zone_maps, s.pushed_conjuncts),
        (10, 8, 3)
    );
    assert_eq!(s.residual_conjuncts, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    /// Morsel-driven aggregation on 1 to 4 threads equals the reference on the filtered rows.
    #[test]
    fn parallel_aggregation_matches_the_reference(
        p in proptest::collection::vec(pushable(), 0..3), seed in any::<u64>(),
        rows in 0usize..1500, group in 1usize..300, threads in 1usize..5, keyed in any::<bool>(),
    ) {
        use lightning_columnar::{count_distinct, count_star, max, min, parallel_aggregate, sum};
        let b = batch(seed, rows);
        let bytes = segment(&b, group);
        let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
        let predicate = p.into_iter().reduce(Expr::and);
        let group_by: Vec<(String, Expr)> = if keyed { vec![("k".into(), col("k"))] } else { vec![] };
        let aggs = vec![
            count_star().alias("n"),
            sum(col("d")).alias("sd"),
            min(col("s")).alias("ms"),
            max(col("f")).alias("mf"),
            count_distinct(col("i")).alias("di"),
        ];
        let (got, stats) = parallel_aggregate(
            &r, &["k", "d", "s", "f", "i"], predicate.as_ref(), group_by.clone(), aggs.clone(), threads,
        ).unwrap();
        let kept: Vec<Vec<Scalar>> = b
            .rows()
            .into_iter()
            .filter(|row| predicate.as_ref().is_none_or(|p| reference::eval(p, b.schema(), row) == Ok(Scalar::Bool(true))))
            .collect();
        prop_assert_eq!(stats.rows as usize, kept.len());
        let keys: Vec<Expr> = group_by.iter().map(|(_, e)| e.clone()).collect();
        let mut want = reference::aggregate(b.schema(), &kept, &keys, &aggs).unwrap();
        let mut got = got.rows();
        got.sort_by(|x, y| reference::cmp_rows(x, y));
        want.sort_by(|x, y| reference::cmp_rows(x, y));
        prop_assert_eq!(got, want);
    }

    /// Sums, averages and counts of bare columns without a predicate or `GROUP BY` are
    /// taken from the encoded chunks of row groups without nulls (the others are decoded):
    /// the answer equals the reference either way.
    #[test]
    fn sums_on_encoded_chunks_match_the_reference(
        seed in any::<u64>(), rows in 0usize..1500, group in 1usize..300, threads in 1usize..4,
        p in proptest::collection::vec(pushable(), 0..3),
    ) {
        use lightning_columnar::{avg, count, count_star, parallel_aggregate, sum};
        let b = batch(seed, rows);
        let bytes = segment(&b, group);
        let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
        let predicate = p.into_iter().reduce(Expr::and);
        let aggs = vec![
            count_star().alias("n"),
            sum(col("d")).alias("sd"),
            avg(col("j")).alias("aj"),
            avg(col("d")).alias("ad"),
            count(col("j")).alias("cj"),
        ];
        let (got, stats) = parallel_aggregate(
            &r, &["d", "j"], predicate.as_ref(), vec![], aggs.clone(), threads,
        ).unwrap();
        let kept: Vec<Vec<Scalar>> = b
            .rows()
            .into_iter()
            .filter(|row| predicate.as_ref().is_none_or(|p| reference::eval(p, b.schema(), row) == Ok(Scalar::Bool(true))))
            .collect();
        prop_assert_eq!(stats.rows as usize, kept.len());
        let no_nulls = b.column(b.schema().index_of("d").unwrap()).unwrap().null_count() == 0
            && b.column(b.schema().index_of("j").unwrap()).unwrap().null_count() == 0;
        if no_nulls && stats.residual_conjuncts == 0 {
            // Every row group is skipped, emptied, or aggregated on its encoded chunks.
            prop_assert_eq!(
                stats.aggregated_on_encoded + stats.skipped_by_zone_maps + stats.emptied_by_encoded_predicates,
                r.row_groups().len()
            );
            prop_assert_eq!(stats.chunks_decoded, 0);
        }
        let want = reference::aggregate(b.schema(), &kept, &[], &aggs).unwrap();
        prop_assert_eq!(got.rows(), want);
    }
}
