//! TPC-H Q1 and Q6 at scale factor 0.01 (data from `tpchgen`): the engine, scanning a
//! segment on two threads, gives exactly the reference evaluator's answers.

use std::sync::Arc;

use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
use lightning_columnar::{
    Batch, Column, DataType, Expr, Field, Scalar, Schema, avg, col, count_star, lit,
    parallel_aggregate, sum,
};
use tpchgen::generators::LineItemGenerator;

use crate::reference;

pub(crate) fn dec() -> DataType {
    DataType::decimal(15, 2).unwrap()
}

pub(crate) fn d(v: i64) -> Expr {
    Expr::Literal(Scalar::decimal(v, 15, 2).unwrap())
}

pub(crate) fn date(y: i32, m: u32, day: u32) -> Expr {
    Expr::Literal(Scalar::date(y, m, day).unwrap())
}

/// `lineitem` at SF 0.01 (60,175 rows) as one batch.
pub(crate) fn lineitem() -> Batch {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("l_orderkey", DataType::Int64, false),
            Field::new("l_quantity", DataType::Int64, false),
            Field::new("l_extendedprice", dec(), false),
            Field::new("l_discount", dec(), false),
            Field::new("l_tax", dec(), false),
            Field::new("l_returnflag", DataType::Utf8, false),
            Field::new("l_linestatus", DataType::Utf8, false),
            Field::new("l_shipdate", DataType::Date32, false),
            Field::new("l_suppkey", DataType::Int64, false),
            Field::new("l_commitdate", DataType::Date32, false),
            Field::new("l_receiptdate", DataType::Date32, false),
            Field::new("l_shipmode", DataType::Utf8, false),
        ])
        .unwrap(),
    );
    let (mut ok, mut qty, mut price, mut disc, mut tax) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut flag, mut status, mut ship) = (vec![], vec![], vec![]);
    let (mut supp, mut commit, mut receipt, mut mode) = (vec![], vec![], vec![], vec![]);
    for l in LineItemGenerator::new(0.01, 1, 1).iter() {
        ok.push(l.l_orderkey);
        qty.push(l.l_quantity);
        price.push(l.l_extendedprice.0);
        disc.push(l.l_discount.0);
        tax.push(l.l_tax.0);
        flag.push(l.l_returnflag.to_owned());
        status.push(l.l_linestatus.to_owned());
        ship.push(l.l_shipdate.to_unix_epoch());
        supp.push(l.l_suppkey);
        commit.push(l.l_commitdate.to_unix_epoch());
        receipt.push(l.l_receiptdate.to_unix_epoch());
        mode.push(l.l_shipmode.to_owned());
    }
    Batch::new(
        schema,
        vec![
            Column::from_i64(DataType::Int64, ok, None).unwrap(),
            Column::from_i64(DataType::Int64, qty, None).unwrap(),
            Column::from_i64(dec(), price, None).unwrap(),
            Column::from_i64(dec(), disc, None).unwrap(),
            Column::from_i64(dec(), tax, None).unwrap(),
            Column::from_strings(DataType::Utf8, &flag, None).unwrap(),
            Column::from_strings(DataType::Utf8, &status, None).unwrap(),
            Column::from_i32(DataType::Date32, ship, None).unwrap(),
            Column::from_i64(DataType::Int64, supp, None).unwrap(),
            Column::from_i32(DataType::Date32, commit, None).unwrap(),
            Column::from_i32(DataType::Date32, receipt, None).unwrap(),
            Column::from_strings(DataType::Utf8, &mode, None).unwrap(),
        ],
    )
    .unwrap()
}

/// `b` written as a segment of 8192-row row groups.
pub(crate) fn segment(b: &Batch) -> Vec<u8> {
    let mut w = SegmentWriter::new(
        b.schema().clone(),
        WriterOptions::new().row_group_rows(8192),
    )
    .unwrap();
    w.write(b).unwrap();
    w.finish().unwrap()
}

fn run(
    b: &Batch,
    columns: &[&str],
    predicate: &Expr,
    group_by: Vec<(String, Expr)>,
    aggs: Vec<lightning_columnar::Aggregate>,
) {
    let bytes = segment(b);
    let r = SegmentReader::open(bytes.as_slice(), SegmentId::new(1)).unwrap();
    let rows = b.rows();
    let kept: Vec<Vec<Scalar>> = rows
        .into_iter()
        .filter(|row| reference::eval(predicate, b.schema(), row) == Ok(Scalar::Bool(true)))
        .collect();
    let keys: Vec<Expr> = group_by.iter().map(|(_, e)| e.clone()).collect();
    let mut want = reference::aggregate(b.schema(), &kept, &keys, &aggs).unwrap();
    let (got, stats) = parallel_aggregate(&r, columns, Some(predicate), group_by, aggs, 2).unwrap();
    assert_eq!(stats.rows as usize, kept.len());
    let mut got = got.rows();
    got.sort_by(|x, y| reference::cmp_rows(x, y));
    want.sort_by(|x, y| reference::cmp_rows(x, y));
    // Averages are doubles summed in another order on two threads.
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g.iter().zip(w).all(|(x, y)| reference::same(x, y, true)),
            "{g:?} vs {w:?}"
        );
    }
    assert!(!want.is_empty());
}

#[test]
fn q1() {
    let b = lineitem();
    let one = || d(100);
    let disc_price = col("l_extendedprice") * (one() - col("l_discount"));
    run(
        &b,
        &[
            "l_returnflag",
            "l_linestatus",
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_tax",
        ],
        &col("l_shipdate").lt_eq(date(1998, 9, 2)),
        vec![
            ("l_returnflag".into(), col("l_returnflag")),
            ("l_linestatus".into(), col("l_linestatus")),
        ],
        vec![
            sum(col("l_quantity")).alias("sum_qty"),
            sum(col("l_extendedprice")).alias("sum_base_price"),
            sum(disc_price.clone()).alias("sum_disc_price"),
            sum(disc_price * (one() + col("l_tax"))).alias("sum_charge"),
            avg(col("l_quantity")).alias("avg_qty"),
            avg(col("l_extendedprice")).alias("avg_price"),
            avg(col("l_discount")).alias("avg_disc"),
            count_star().alias("count_order"),
        ],
    );
}

#[test]
fn q6() {
    let b = lineitem();
    let p = col("l_shipdate")
        .gt_eq(date(1994, 1, 1))
        .and(col("l_shipdate").lt(date(1995, 1, 1)))
        .and(col("l_discount").between(d(5), d(7)))
        .and(col("l_quantity").lt(lit(24i64)));
    run(
        &b,
        &["l_extendedprice", "l_discount"],
        &p,
        vec![],
        vec![sum(col("l_extendedprice") * col("l_discount")).alias("revenue")],
    );
}
