//! Expressions, filters and aggregates checked against the reference evaluator on random
//! data with nulls (empty inputs, all-null columns included).

use std::sync::Arc;

use lightning_columnar::{
    Aggregate, Batch, DataType, DatePart, Error, Expr, Field, HashAggregate, Scalar, Schema, avg,
    col, count, count_distinct, count_star, filter, lit, max, min, project, sum,
};
use lightning_testkit::Rng;
use proptest::prelude::*;

use crate::common::random_column;
use crate::reference::{self, Failed, cmp_rows, same};

pub(crate) fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("j", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("d", DataType::decimal(15, 2).unwrap(), true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Bool, true),
            Field::new("dt", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp, true),
            Field::new("k", DataType::Int32, false),
        ])
        .unwrap(),
    )
}

pub(crate) fn batch(seed: u64, rows: usize) -> Batch {
    let mut rng = Rng::new(seed);
    let schema = schema();
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "k" {
                // A low-cardinality, skewed grouping key.
                let v: Vec<Scalar> = (0..rows)
                    .map(|_| Scalar::Int32((rng.below(8) * rng.below(8) / 8) as i32))
                    .collect();
                return lightning_columnar::Column::from_scalars(DataType::Int32, &v).unwrap();
            }
            let pct = [0, 20, 60, 100][rng.below(4) as usize];
            random_column(&mut rng, f.data_type(), rows, pct)
        })
        .collect();
    Batch::new(schema, cols).unwrap()
}

fn numeric_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        Just(col("i")),
        Just(col("j")),
        Just(col("f")),
        Just(col("d")),
        Just(col("k")),
        (-20i32..20).prop_map(lit),
        (-1000i64..1000).prop_map(lit),
        (-100i32..100).prop_map(|v| lit(f64::from(v) / 8.0)),
        (-10_000i64..10_000).prop_map(|v| Expr::Literal(Scalar::decimal(v, 15, 2).unwrap())),
        Just(Expr::Literal(Scalar::Null)),
        Just(col("dt").extract(DatePart::Year)),
        Just(col("ts").extract(DatePart::Month)),
        Just(col("dt").extract(DatePart::Day)),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        (inner.clone(), inner, 0..4u8).prop_map(|(a, b, op)| match op {
            0 => a + b,
            1 => a - b,
            2 => a * b,
            _ => a / b,
        })
    })
}

pub(crate) fn bool_expr() -> impl Strategy<Value = Expr> {
    let cmp = (numeric_expr(), numeric_expr(), 0..6u8).prop_map(|(a, b, op)| match op {
        0 => a.equal(b),
        1 => a.not_equal(b),
        2 => a.lt(b),
        3 => a.lt_eq(b),
        4 => a.gt(b),
        _ => a.gt_eq(b),
    });
    let leaf = prop_oneof![
        3 => cmp,
        1 => Just(col("b")),
        1 => numeric_expr().prop_map(Expr::is_null),
        1 => numeric_expr().prop_map(Expr::is_not_null),
        1 => prop_oneof![Just("a"), Just("hé"), Just(""), Just("AIR")].prop_map(|p| col("s").starts_with(p)),
        1 => prop_oneof![Just("a"), Just("zz"), Just("MAIL")].prop_map(|p| col("s").lt(lit(p))),
        1 => (numeric_expr(), numeric_expr(), numeric_expr()).prop_map(|(a, b, c)| a.between(b, c)),
        1 => (numeric_expr(), proptest::collection::vec(prop_oneof![(-50i32..50).prop_map(Scalar::Int32), Just(Scalar::Null)], 0..4))
            .prop_map(|(a, list)| a.in_list(list)),
        1 => (-20_000i32..20_000).prop_map(|d| col("dt").gt_eq(Expr::Literal(Scalar::Date32(d)))),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
            inner.prop_map(|a| !a),
        ]
    })
}

/// The engine's column against the reference, row by row.
fn check_expr(e: &Expr, b: &Batch) -> Result<(), TestCaseError> {
    let schema = b.schema();
    if e.data_type(schema).is_err() {
        // e.g. a decimal product past scale 18: refused before any row is read.
        let refused = matches!(e.eval(b), Err(Error::Type { .. }));
        prop_assert!(refused);
        return Ok(());
    }
    let expected: Result<Vec<Scalar>, Failed> = b
        .rows()
        .iter()
        .map(|r| reference::eval(e, schema, r))
        .collect();
    match (e.eval(b), expected) {
        (Ok(c), Ok(want)) => {
            prop_assert_eq!(c.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                prop_assert_eq!(&c.value(i), w, "row {} of {}", i, e);
            }
        }
        (Err(Error::Overflow { .. }), Err(Failed)) => {}
        (got, want) => prop_assert!(false, "{e}: engine {got:?}, reference {want:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn numeric_expressions(e in numeric_expr(), seed in any::<u64>(), rows in 0usize..300) {
        check_expr(&e, &batch(seed, rows))?;
    }

    #[test]
    fn predicates_and_filters(e in bool_expr(), seed in any::<u64>(), rows in 0usize..300) {
        let b = batch(seed, rows);
        check_expr(&e, &b)?;
        // filter keeps exactly the rows where the reference says true.
        if let Ok(f) = filter(&b, &e) {
            let want: Vec<Vec<Scalar>> = b
                .rows()
                .into_iter()
                .filter(|r| reference::eval(&e, b.schema(), r) == Ok(Scalar::Bool(true)))
                .collect();
            prop_assert_eq!(f.rows(), want);
            // A second filter applies within the first's selection.
            let g = filter(&f, &col("k").gt(lit(2))).unwrap();
            prop_assert!(g.rows().iter().all(|r| r[8] > Scalar::Int32(2)));
            prop_assert_eq!(g.compact().rows(), g.rows());
        }
    }
}

fn agg_strategy() -> impl Strategy<Value = Aggregate> {
    let arg = prop_oneof![
        Just(col("i")),
        Just(col("j")),
        Just(col("f")),
        Just(col("d")),
        Just(col("d") * lit(Scalar::decimal(3, 15, 1).unwrap())),
        Just(col("i") + col("k")),
    ];
    let any_arg = prop_oneof![
        arg.clone(),
        Just(col("s")),
        Just(col("b")),
        Just(col("dt")),
        Just(col("ts"))
    ];
    prop_oneof![
        Just(count_star()),
        any_arg.clone().prop_map(count),
        any_arg.clone().prop_map(count_distinct),
        any_arg.clone().prop_map(min),
        any_arg.prop_map(max),
        arg.clone().prop_map(sum),
        arg.prop_map(avg),
    ]
}

fn named(aggs: Vec<Aggregate>) -> Vec<Aggregate> {
    aggs.into_iter()
        .enumerate()
        .map(|(i, a)| a.alias(format!("a{i}")))
        .collect()
}

fn sorted(mut rows: Vec<Vec<Scalar>>) -> Vec<Vec<Scalar>> {
    rows.sort_by(|a, b| cmp_rows(a, b));
    rows
}

fn assert_same_rows(
    got: &[Vec<Scalar>],
    want: &[Vec<Scalar>],
    approx: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        prop_assert!(
            g.len() == w.len() && g.iter().zip(w).all(|(x, y)| same(x, y, approx)),
            "engine {:?} reference {:?}",
            g,
            w
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn aggregates_match_the_reference(
        aggs in proptest::collection::vec(agg_strategy(), 1..5),
        keys in 0usize..3,
        seed in any::<u64>(),
        rows in 0usize..400,
        split in any::<prop::sample::Index>(),
    ) {
        let b = batch(seed, rows);
        let key_exprs: Vec<Expr> = [col("k"), col("s"), col("b")][..keys].to_vec();
        let group_by: Vec<(String, Expr)> =
            key_exprs.iter().enumerate().map(|(i, e)| (format!("g{i}"), e.clone())).collect();
        let aggs = named(aggs);
        if HashAggregate::new(b.schema().clone(), group_by.clone(), aggs.clone()).is_err() {
            return Ok(());
        }
        let want = reference::aggregate(b.schema(), &b.rows(), &key_exprs, &aggs);
        let run = |parts: &[Batch]| -> lightning_columnar::Result<Vec<Vec<Scalar>>> {
            let mut total: Option<HashAggregate> = None;
            for p in parts {
                let mut h = HashAggregate::new(b.schema().clone(), group_by.clone(), aggs.clone())?;
                h.push(p)?;
                match &mut total {
                    None => total = Some(h),
                    Some(t) => t.merge(h)?,
                }
            }
            Ok(total.unwrap().finish()?.rows())
        };
        let one = run(std::slice::from_ref(&b));
        match (&one, &want) {
            (Ok(got), Ok(want)) => assert_same_rows(&sorted(got.clone()), &sorted(want.clone()), false)?,
            (Err(Error::Overflow { .. }), Err(Failed)) => return Ok(()),
            (got, want) => prop_assert!(false, "engine {got:?}, reference {want:?}"),
        }
        // The same, split in two at a random row, aggregated apart and merged (doubles
        // may differ in the last bits: another summation order).
        let at = split.index(rows + 1);
        let parts = [b.compact().with_selection((0..at as u32).collect()).unwrap(),
                     b.compact().with_selection((at as u32..rows as u32).collect()).unwrap()];
        if let (Ok(merged), Ok(want)) = (run(&parts), &want) {
            assert_same_rows(&sorted(merged), &sorted(want.clone()), true)?;
        }
    }
}

#[test]
fn empty_input_gives_one_row_without_group_by() {
    let b = batch(1, 0);
    let mut h = HashAggregate::new(
        b.schema().clone(),
        vec![],
        named(vec![
            count_star(),
            sum(col("d")),
            min(col("s")),
            avg(col("i")),
        ]),
    )
    .unwrap();
    h.push(&b).unwrap();
    assert_eq!(
        h.finish().unwrap().rows(),
        vec![vec![
            Scalar::Int64(0),
            Scalar::Null,
            Scalar::Null,
            Scalar::Null
        ]]
    );
    let g = HashAggregate::new(
        b.schema().clone(),
        vec![("k".into(), col("k"))],
        vec![count_star()],
    )
    .unwrap();
    assert_eq!(g.finish().unwrap().num_rows(), 0);
}

#[test]
fn projection_keeps_the_selection() {
    let b = filter(&batch(2, 100), &col("k").equal(lit(0))).unwrap();
    let p = project(
        &b,
        &[("x".into(), col("j") + lit(1i64)), ("k".into(), col("k"))],
    )
    .unwrap();
    assert_eq!(p.num_rows(), b.num_rows());
    assert!(p.rows().iter().all(|r| r[1] == Scalar::Int32(0)));
    assert!(!p.schema().field(1).unwrap().nullable());
}
