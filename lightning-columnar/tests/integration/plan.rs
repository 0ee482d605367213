//! The plan builder: joins on either build side against the reference, `explain_analyze`'s
//! counts, and bad plans as errors naming the column.

use std::sync::Arc;

use lightning_columnar::segment::{SegmentId, SegmentReader};
use lightning_columnar::{
    Batch, BuildSide, Column, DataType, Error, Field, JoinType, PlanBuilder, Scalar, Schema,
    SortKey, col, count_star, lit, sum,
};
use lightning_testkit::Rng;
use proptest::prelude::*;

use crate::reference::{self, Rel};
use crate::tpch::segment;
use crate::tpch_plans::Db;

/// A table `{p}k` (nullable, skewed and duplicate keys), `{p}v` of `rows` rows.
fn keyed(seed: u64, p: &str, rows: usize) -> Batch {
    let mut rng = Rng::new(seed);
    let keys: Vec<Scalar> = (0..rows)
        .map(|_| {
            if rng.chance(10) {
                Scalar::Null
            } else if rng.chance(30) {
                Scalar::Int64(0)
            } else {
                Scalar::Int64(rng.below(40).cast_signed())
            }
        })
        .collect();
    let vals: Vec<Scalar> = (0..rows).map(|i| Scalar::Int64(i as i64)).collect();
    let schema = Arc::new(
        Schema::new(vec![
            Field::new(format!("{p}k"), DataType::Int64, true),
            Field::new(format!("{p}v"), DataType::Int64, false),
        ])
        .unwrap(),
    );
    Batch::new(
        schema,
        vec![
            Column::from_scalars(DataType::Int64, &keys).unwrap(),
            Column::from_scalars(DataType::Int64, &vals).unwrap(),
        ],
    )
    .unwrap()
}

fn rel(b: &Batch) -> Rel {
    Rel {
        schema: b.schema().as_ref().clone(),
        rows: b.rows(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    /// Whichever side is smaller is built (inner joins), and the output is the same rows,
    /// left columns first; empty sides included.
    #[test]
    fn joins_on_either_build_side_match_the_reference(
        seeds in any::<(u64, u64)>(), sizes in (0usize..300, 0usize..300), kind in 0usize..4,
    ) {
        let (l, r) = (keyed(seeds.0, "a", sizes.0), keyed(seeds.1, "b", sizes.1));
        let (lb, rb) = (segment(&l), segment(&r));
        let lr = SegmentReader::open(lb.as_slice(), SegmentId::new(1)).unwrap();
        let rr = SegmentReader::open(rb.as_slice(), SegmentId::new(2)).unwrap();
        let join_type = [JoinType::Inner, JoinType::Left, JoinType::Semi, JoinType::Anti][kind];
        let plan = PlanBuilder::scan("l", &lr, &["ak", "av"], None)
            .unwrap()
            .join(
                PlanBuilder::scan("r", &rr, &["bk", "bv"], None).unwrap(),
                vec![(col("ak"), col("bk"))],
                join_type,
            )
            .unwrap()
            .build();
        let want_side = if join_type == JoinType::Inner && sizes.0 < sizes.1 {
            BuildSide::Left
        } else {
            BuildSide::Right
        };
        prop_assert_eq!(plan.build_sides(), vec![want_side]);
        let mut got: Vec<Vec<Scalar>> = plan.execute().unwrap().iter().flat_map(Batch::rows).collect();
        let mut want = reference::join(&rel(&l), &rel(&r), &[(col("ak"), col("bk"))], join_type).rows;
        got.sort_by(|a, b| reference::cmp_rows(a, b));
        want.sort_by(|a, b| reference::cmp_rows(a, b));
        prop_assert_eq!(got, want);
    }
}

#[test]
fn explain_analyze_counts_rows_zone_maps_and_encodings() {
    let db = Db::new();
    let r = db.readers();
    // lineitem is in order-key order: 8 row groups of 8192, and keys below 2000 sit in the
    // first.
    let plan = r
        .scan(
            "lineitem",
            &["l_orderkey", "l_returnflag", "l_quantity"],
            Some(col("l_orderkey").lt(lit(2000i64))),
        )
        .filter(col("l_quantity").gt(lit(10i64)))
        .unwrap()
        .aggregate(
            vec![("l_returnflag".into(), col("l_returnflag"))],
            vec![count_star().alias("n"), sum(col("l_quantity")).alias("q")],
        )
        .unwrap()
        .sort(vec![SortKey::asc(col("l_returnflag"))], Some(2))
        .unwrap()
        .build();
    let explain = plan.explain();
    assert_eq!(explain.lines().count(), 4);
    // The scan's estimate is the rows of the row groups its zone maps leave.
    let scan_line = explain.lines().nth(3).unwrap();
    assert!(
        scan_line.ends_with("1 of 8 row groups left by zone maps  (est. 8192 rows)"),
        "{scan_line}"
    );
    assert_eq!(plan.estimated_rows(), 2);
    let a = plan.explain_analyze().unwrap();
    let ops = a.operators();
    assert_eq!(ops.len(), 4);
    assert_eq!(
        ops.iter().map(|m| m.depth).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    let lineitem = db_lineitem_rows();
    let scanned = lineitem
        .iter()
        .filter(|row| matches!(row[0], Scalar::Int64(k) if k < 2000))
        .count() as u64;
    let filtered = lineitem
        .iter()
        .filter(|row| matches!((&row[0], &row[1]), (Scalar::Int64(k), Scalar::Int64(q)) if *k < 2000 && *q > 10))
        .count() as u64;
    let (sort, agg, filter, scan) = (&ops[0], &ops[1], &ops[2], &ops[3]);
    assert!(
        scan.operator.starts_with("Scan lineitem"),
        "{}",
        scan.operator
    );
    assert_eq!(
        (scan.rows_in, scan.rows_out),
        (lineitem.len() as u64, scanned)
    );
    assert_eq!((filter.rows_in, filter.rows_out), (scanned, filtered));
    assert_eq!((agg.rows_in, agg.rows_out), (filtered, 3), "flags A, N, R");
    assert_eq!((sort.rows_in, sort.rows_out), (3, 2));
    let sm = scan.scan.as_ref().unwrap();
    assert_eq!(sm.stats.row_groups, 8);
    assert_eq!(sm.stats.skipped_by_zone_maps, 7);
    let names: Vec<&str> = sm.encodings.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["l_orderkey", "l_returnflag", "l_quantity"]);
    assert!(sm.encodings.iter().all(|(_, e)| e.len() == 1), "{sm:?}");
    assert_eq!(a.batches().iter().map(Batch::num_rows).sum::<usize>(), 2);
    // The report without times is the same on every run; with times it says "ms".
    let text = a.render(false);
    assert!(text.contains("skipped by zone maps 7"), "{text}");
    assert!(text.contains("encodings: l_orderkey: "), "{text}");
    assert!(!text.contains(" ms"));
    assert!(a.to_string().contains(" ms)"));
    assert_eq!(plan.explain_analyze().unwrap().render(false), text);
}

/// `(l_orderkey, l_quantity)` of every lineitem row.
fn db_lineitem_rows() -> Vec<Vec<Scalar>> {
    let b = crate::tpch::lineitem();
    let (k, q) = (
        b.schema().index_of("l_orderkey").unwrap(),
        b.schema().index_of("l_quantity").unwrap(),
    );
    b.rows()
        .into_iter()
        .map(|r| vec![r[k].clone(), r[q].clone()])
        .collect()
}

fn unknown(e: Error) -> String {
    match e {
        Error::UnknownColumn { name } => name,
        other => panic!("not an unknown column: {other}"),
    }
}

#[test]
fn bad_plans_are_errors_naming_the_column() {
    let db = Db::new();
    let r = db.readers();
    let li = r.reader("lineitem");
    let scan = |cols: &[&str], p| PlanBuilder::scan("lineitem", li, cols, p);
    assert_eq!(unknown(scan(&["l_nope"], None).unwrap_err()), "l_nope");
    assert_eq!(
        unknown(scan(&["l_orderkey"], Some(col("l_gone").gt(lit(1i64)))).unwrap_err()),
        "l_gone"
    );
    let ok = || scan(&["l_orderkey", "l_shipdate"], None).unwrap();
    // A column the scan does not produce.
    assert_eq!(
        unknown(ok().filter(col("l_quantity").gt(lit(1i64))).unwrap_err()),
        "l_quantity"
    );
    assert_eq!(
        unknown(ok().aggregate(vec![], vec![sum(col("l_tax"))]).unwrap_err()),
        "l_tax"
    );
    assert_eq!(
        unknown(ok().sort(vec![SortKey::asc(col("x"))], None).unwrap_err()),
        "x"
    );
    assert_eq!(
        unknown(ok().project(vec![("y".into(), col("z"))]).unwrap_err()),
        "z"
    );
    let orders = || r.scan("orders", &["o_orderkey", "o_orderdate"], None);
    assert_eq!(
        unknown(
            ok().join(
                orders(),
                vec![(col("l_orderkey"), col("o_nokey"))],
                JoinType::Inner
            )
            .unwrap_err()
        ),
        "o_nokey"
    );
    // Type mismatches name the expression and its column.
    let type_err = |e: Error, column: &str| match e {
        Error::Type { expr, .. } => assert!(expr.contains(column), "{expr}"),
        other => panic!("not a type error: {other}"),
    };
    type_err(ok().filter(col("l_orderkey")).unwrap_err(), "l_orderkey");
    type_err(
        ok().filter(col("l_shipdate").gt(lit("x"))).unwrap_err(),
        "l_shipdate",
    );
    type_err(
        scan(&["l_orderkey"], Some(col("l_shipmode").lt(lit(3i64)))).unwrap_err(),
        "l_shipmode",
    );
    type_err(
        ok().join(
            orders(),
            vec![(col("l_shipdate"), col("o_orderkey"))],
            JoinType::Inner,
        )
        .unwrap_err(),
        "l_shipdate",
    );
    type_err(
        ok().aggregate(vec![], vec![sum(col("l_shipdate"))])
            .unwrap_err(),
        "l_shipdate",
    );
    // A name on both sides of a join.
    let dup = r
        .scan("orders", &["o_orderkey"], None)
        .project(vec![("l_shipdate".into(), col("o_orderkey"))]);
    match ok()
        .join(
            dup.unwrap(),
            vec![(col("l_orderkey"), col("l_shipdate"))],
            JoinType::Inner,
        )
        .unwrap_err()
    {
        Error::AmbiguousColumn { name } => assert_eq!(name, "l_shipdate"),
        other => panic!("not ambiguous: {other}"),
    }
    // Join keys must pair up.
    assert!(matches!(
        ok().join(orders(), vec![], JoinType::Inner).unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}

/// Encodings are reported for the row groups the scan reads: a column constant in the first
/// row group and varied in the others shows one encoding when zone maps leave the first.
#[test]
fn explain_analyze_reports_the_encodings_of_row_groups_read() {
    let n = 3 * 8192;
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ])
        .unwrap(),
    );
    let b = Batch::new(
        schema,
        vec![
            Column::from_i64(DataType::Int64, (0..n).collect(), None).unwrap(),
            Column::from_i64(
                DataType::Int64,
                (0..n)
                    .map(|i| if i < 8192 { 7 } else { i * 7919 % 100_003 })
                    .collect(),
                None,
            )
            .unwrap(),
        ],
    )
    .unwrap();
    let bytes = segment(&b);
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(9)).unwrap();
    let encodings = |p| {
        let plan = PlanBuilder::scan("t", &r, &["v"], p).unwrap().build();
        let a = plan.explain_analyze().unwrap();
        a.operators()[0].scan.clone().unwrap().encodings
    };
    let first = encodings(Some(col("k").lt(lit(100i64))));
    let all = encodings(None);
    assert_eq!(first.len(), 2, "v, then the predicate's k: {first:?}");
    assert_eq!(first[0].1.len(), 1, "{first:?}");
    assert_eq!(all[0].1.len(), 2, "{all:?}");
    assert_eq!(all[0].1[0], first[0].1[0]);
}
