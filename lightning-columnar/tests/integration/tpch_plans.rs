//! TPC-H Q3, Q5, Q10 and Q12 at scale factor 0.01 (data from `tpchgen`), built with the
//! plan builder over segments, give exactly the reference evaluator's answers (the
//! reference joins by sorted search, groups by linear search and sorts rows stably).

use std::sync::Arc;

use lightning_columnar::segment::{SegmentId, SegmentReader};
use lightning_columnar::{
    Batch, BuildSide, Column, DataType, Expr, Field, JoinType, Plan, PlanBuilder, Scalar, Schema,
    SortKey, col, count, lit, sum,
};
use tpchgen::generators::{
    CustomerGenerator, NationGenerator, OrderGenerator, RegionGenerator, SupplierGenerator,
};

use crate::reference::{self, Rel};
use crate::tpch::{d, date, dec, lineitem, segment};

const SF: f64 = 0.01;

/// A batch of `fields` from rows of scalars.
fn table(fields: Vec<Field>, rows: &[Vec<Scalar>]) -> Batch {
    let schema = Arc::new(Schema::new(fields).unwrap());
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let vals: Vec<Scalar> = rows.iter().map(|r| r[i].clone()).collect();
            Column::from_scalars(f.data_type(), &vals).unwrap()
        })
        .collect();
    Batch::new(schema, columns).unwrap()
}

fn s(v: &str) -> Scalar {
    Scalar::Utf8(v.to_owned())
}

fn money(v: i64) -> Scalar {
    Scalar::decimal(v, 15, 2).unwrap()
}

fn f(name: &str, t: DataType) -> Field {
    Field::new(name, t, false)
}

fn customer() -> Batch {
    let rows: Vec<Vec<Scalar>> = CustomerGenerator::new(SF, 1, 1)
        .iter()
        .map(|c| {
            vec![
                Scalar::Int64(c.c_custkey),
                s(&c.c_name.to_string()),
                s(&c.c_address.to_string()),
                Scalar::Int64(c.c_nationkey),
                s(&c.c_phone.to_string()),
                money(c.c_acctbal.0),
                s(c.c_mktsegment),
                s(c.c_comment),
            ]
        })
        .collect();
    let u = DataType::Utf8;
    table(
        vec![
            f("c_custkey", DataType::Int64),
            f("c_name", u),
            f("c_address", u),
            f("c_nationkey", DataType::Int64),
            f("c_phone", u),
            f("c_acctbal", dec()),
            f("c_mktsegment", u),
            f("c_comment", u),
        ],
        &rows,
    )
}

fn orders() -> Batch {
    let rows: Vec<Vec<Scalar>> = OrderGenerator::new(SF, 1, 1)
        .iter()
        .map(|o| {
            vec![
                Scalar::Int64(o.o_orderkey),
                Scalar::Int64(o.o_custkey),
                Scalar::Date32(o.o_orderdate.to_unix_epoch()),
                s(o.o_orderpriority),
                Scalar::Int32(o.o_shippriority),
            ]
        })
        .collect();
    table(
        vec![
            f("o_orderkey", DataType::Int64),
            f("o_custkey", DataType::Int64),
            f("o_orderdate", DataType::Date32),
            f("o_orderpriority", DataType::Utf8),
            f("o_shippriority", DataType::Int32),
        ],
        &rows,
    )
}

fn nation() -> Batch {
    let rows: Vec<Vec<Scalar>> = NationGenerator::new(SF, 1, 1)
        .iter()
        .map(|n| {
            vec![
                Scalar::Int64(n.n_nationkey),
                s(n.n_name),
                Scalar::Int64(n.n_regionkey),
            ]
        })
        .collect();
    table(
        vec![
            f("n_nationkey", DataType::Int64),
            f("n_name", DataType::Utf8),
            f("n_regionkey", DataType::Int64),
        ],
        &rows,
    )
}

fn region() -> Batch {
    let rows: Vec<Vec<Scalar>> = RegionGenerator::new(SF, 1, 1)
        .iter()
        .map(|r| vec![Scalar::Int64(r.r_regionkey), s(r.r_name)])
        .collect();
    table(
        vec![
            f("r_regionkey", DataType::Int64),
            f("r_name", DataType::Utf8),
        ],
        &rows,
    )
}

fn supplier() -> Batch {
    let rows: Vec<Vec<Scalar>> = SupplierGenerator::new(SF, 1, 1)
        .iter()
        .map(|x| vec![Scalar::Int64(x.s_suppkey), Scalar::Int64(x.s_nationkey)])
        .collect();
    table(
        vec![
            f("s_suppkey", DataType::Int64),
            f("s_nationkey", DataType::Int64),
        ],
        &rows,
    )
}

/// The TPC-H tables as segments and as reference relations.
pub(crate) struct Db {
    bytes: Vec<(&'static str, Vec<u8>)>,
    rels: Vec<(&'static str, Rel)>,
}

impl Db {
    pub(crate) fn new() -> Db {
        let tables = [
            ("lineitem", lineitem()),
            ("orders", orders()),
            ("customer", customer()),
            ("nation", nation()),
            ("region", region()),
            ("supplier", supplier()),
        ];
        let mut bytes = Vec::new();
        let mut rels = Vec::new();
        for (name, b) in tables {
            bytes.push((name, segment(&b)));
            rels.push((
                name,
                Rel {
                    schema: b.schema().as_ref().clone(),
                    rows: b.rows(),
                },
            ));
        }
        Db { bytes, rels }
    }

    pub(crate) fn readers(&self) -> Readers<'_> {
        Readers(
            self.bytes
                .iter()
                .enumerate()
                .map(|(i, (n, b))| {
                    let r = SegmentReader::open(b.as_slice(), SegmentId::new(i as u64 + 1));
                    (*n, r.unwrap())
                })
                .collect(),
        )
    }

    fn rel(&self, name: &str) -> &Rel {
        &self.rels.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

pub(crate) struct Readers<'b>(Vec<(&'static str, SegmentReader<&'b [u8]>)>);

impl<'b> Readers<'b> {
    /// The segment of table `t`.
    pub(crate) fn reader(&self, t: &str) -> &SegmentReader<&'b [u8]> {
        &self.0.iter().find(|(n, _)| *n == t).unwrap().1
    }

    /// A scan of table `t`.
    pub(crate) fn scan(&self, t: &str, cols: &[&str], p: Option<Expr>) -> PlanBuilder<'_> {
        PlanBuilder::scan(t, self.reader(t), cols, p).unwrap()
    }
}

fn revenue() -> Expr {
    col("l_extendedprice") * (d(100) - col("l_discount"))
}

fn on(l: &str, r: &str) -> Vec<(Expr, Expr)> {
    vec![(col(l), col(r))]
}

fn named(names: &[&str]) -> Vec<(String, Expr)> {
    names.iter().map(|n| ((*n).to_owned(), col(*n))).collect()
}

fn result(plan: &Plan<'_>) -> Vec<Vec<Scalar>> {
    plan.execute()
        .unwrap()
        .iter()
        .flat_map(Batch::rows)
        .collect()
}

/// Columns `names` of the reference rows.
fn pick(rel: &Rel, rows: Vec<Vec<Scalar>>, names: &[&str]) -> Vec<Vec<Scalar>> {
    let idx: Vec<usize> = names
        .iter()
        .map(|n| rel.schema.index_of(n).unwrap())
        .collect();
    rows.into_iter()
        .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
        .collect()
}

fn q3_predicates() -> (Expr, Expr, Expr) {
    (
        col("c_mktsegment").equal(lit("BUILDING")),
        col("o_orderdate").lt(date(1995, 3, 15)),
        col("l_shipdate").gt(date(1995, 3, 15)),
    )
}

const Q3_GROUP: [&str; 3] = ["l_orderkey", "o_orderdate", "o_shippriority"];
const Q3_OUT: [&str; 4] = ["l_orderkey", "revenue", "o_orderdate", "o_shippriority"];

pub(crate) fn q3_plan<'a>(r: &'a Readers<'_>) -> Plan<'a> {
    let (pc, po, pl) = q3_predicates();
    r.scan("customer", &["c_custkey"], Some(pc))
        .join(
            r.scan(
                "orders",
                &["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"],
                Some(po),
            ),
            on("c_custkey", "o_custkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            r.scan(
                "lineitem",
                &["l_orderkey", "l_extendedprice", "l_discount"],
                Some(pl),
            ),
            on("o_orderkey", "l_orderkey"),
            JoinType::Inner,
        )
        .unwrap()
        .aggregate(named(&Q3_GROUP), vec![sum(revenue()).alias("revenue")])
        .unwrap()
        .project(named(&Q3_OUT))
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
}

/// Group-by of `rel` by `group` with `aggs`, as a relation named group then aggregates.
fn ref_aggregate(rel: &Rel, group: &[&str], aggs: &[lightning_columnar::Aggregate]) -> Rel {
    let keys: Vec<Expr> = group.iter().map(|g| col(*g)).collect();
    let rows = reference::aggregate(&rel.schema, &rel.rows, &keys, aggs).unwrap();
    let mut fields: Vec<Field> = group
        .iter()
        .map(|g| rel.schema.fields()[rel.schema.index_of(g).unwrap()].clone())
        .collect();
    // Types of aggregate outputs do not matter to the reference: only names are looked up.
    fields.extend(
        aggs.iter()
            .map(|a| Field::new(a.name(), DataType::Int64, true)),
    );
    Rel {
        schema: Schema::new(fields).unwrap(),
        rows,
    }
}

fn ref_q3(db: &Db) -> Vec<Vec<Scalar>> {
    let (pc, po, pl) = q3_predicates();
    let c = reference::select(db.rel("customer"), &pc);
    let o = reference::select(db.rel("orders"), &po);
    let l = reference::select(db.rel("lineitem"), &pl);
    let co = reference::join(&c, &o, &on("c_custkey", "o_custkey"), JoinType::Inner);
    let joined = reference::join(&co, &l, &on("o_orderkey", "l_orderkey"), JoinType::Inner);
    let g = ref_aggregate(&joined, &Q3_GROUP, &[sum(revenue()).alias("revenue")]);
    let rows = pick(&g, g.rows.clone(), &Q3_OUT);
    reference::order_by(rows, &[(1, true), (2, false)], Some(10))
}

#[test]
fn q3() {
    let db = Db::new();
    let r = db.readers();
    let plan = q3_plan(&r);
    // customer (1,500 rows) is smaller than orders, orders than lineitem: both build left.
    assert_eq!(plan.build_sides(), vec![BuildSide::Left, BuildSide::Left]);
    let want = ref_q3(&db);
    assert_eq!(want.len(), 10);
    assert_eq!(result(&plan), want);
}

#[test]
fn q3_explain_snapshot() {
    let db = Db::new();
    let r = db.readers();
    insta::assert_snapshot!(q3_plan(&r).explain());
}

fn q5_order_dates() -> Expr {
    col("o_orderdate")
        .gt_eq(date(1994, 1, 1))
        .and(col("o_orderdate").lt(date(1995, 1, 1)))
}

fn q5_supplier_on() -> Vec<(Expr, Expr)> {
    vec![
        (col("l_suppkey"), col("s_suppkey")),
        (col("c_nationkey"), col("s_nationkey")),
    ]
}

#[test]
fn q5() {
    let db = Db::new();
    let r = db.readers();
    let asia = col("r_name").equal(lit("ASIA"));
    let nations = r
        .scan("nation", &["n_nationkey", "n_name", "n_regionkey"], None)
        .join(
            r.scan("region", &["r_regionkey"], Some(asia.clone())),
            on("n_regionkey", "r_regionkey"),
            JoinType::Semi,
        )
        .unwrap();
    let plan = r
        .scan("customer", &["c_custkey", "c_nationkey"], None)
        .join(
            r.scan(
                "orders",
                &["o_orderkey", "o_custkey"],
                Some(q5_order_dates()),
            ),
            on("c_custkey", "o_custkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            r.scan(
                "lineitem",
                &["l_orderkey", "l_suppkey", "l_extendedprice", "l_discount"],
                None,
            ),
            on("o_orderkey", "l_orderkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            r.scan("supplier", &["s_suppkey", "s_nationkey"], None),
            q5_supplier_on(),
            JoinType::Inner,
        )
        .unwrap()
        .join(nations, on("s_nationkey", "n_nationkey"), JoinType::Inner)
        .unwrap()
        .aggregate(named(&["n_name"]), vec![sum(revenue()).alias("revenue")])
        .unwrap()
        .sort(vec![SortKey::desc(col("revenue"))], None)
        .unwrap()
        .build();
    // Outermost first: nations (25) build against the supplier join, the supplier scan
    // (100) against the lineitem join, lineitem probes the customer-orders join, customer
    // builds against orders, and region builds the semi join.
    assert_eq!(
        plan.build_sides(),
        vec![
            BuildSide::Right,
            BuildSide::Right,
            BuildSide::Left,
            BuildSide::Left,
            BuildSide::Right
        ]
    );

    let n = reference::join(
        db.rel("nation"),
        &reference::select(db.rel("region"), &asia),
        &on("n_regionkey", "r_regionkey"),
        JoinType::Semi,
    );
    let o = reference::select(db.rel("orders"), &q5_order_dates());
    let co = reference::join(
        db.rel("customer"),
        &o,
        &on("c_custkey", "o_custkey"),
        JoinType::Inner,
    );
    let joined = reference::join(
        &co,
        db.rel("lineitem"),
        &on("o_orderkey", "l_orderkey"),
        JoinType::Inner,
    );
    let with_supp = reference::join(
        &joined,
        db.rel("supplier"),
        &q5_supplier_on(),
        JoinType::Inner,
    );
    let all = reference::join(
        &with_supp,
        &n,
        &on("s_nationkey", "n_nationkey"),
        JoinType::Inner,
    );
    let g = ref_aggregate(&all, &["n_name"], &[sum(revenue()).alias("revenue")]);
    let want = reference::order_by(g.rows, &[(1, true)], None);
    assert_eq!(want.len(), 5, "the five nations of ASIA");
    assert_eq!(result(&plan), want);
}

fn q10_order_dates() -> Expr {
    col("o_orderdate")
        .gt_eq(date(1993, 10, 1))
        .and(col("o_orderdate").lt(date(1994, 1, 1)))
}

const Q10_GROUP: [&str; 7] = [
    "c_custkey",
    "c_name",
    "c_acctbal",
    "c_phone",
    "n_name",
    "c_address",
    "c_comment",
];
const Q10_OUT: [&str; 8] = [
    "c_custkey",
    "c_name",
    "revenue",
    "c_acctbal",
    "n_name",
    "c_address",
    "c_phone",
    "c_comment",
];

#[test]
fn q10() {
    let db = Db::new();
    let r = db.readers();
    let returned = col("l_returnflag").equal(lit("R"));
    let plan = r
        .scan(
            "customer",
            &[
                "c_custkey",
                "c_name",
                "c_address",
                "c_nationkey",
                "c_phone",
                "c_acctbal",
                "c_comment",
            ],
            None,
        )
        .join(
            r.scan(
                "orders",
                &["o_orderkey", "o_custkey"],
                Some(q10_order_dates()),
            ),
            on("c_custkey", "o_custkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            r.scan(
                "lineitem",
                &["l_orderkey", "l_extendedprice", "l_discount"],
                Some(returned.clone()),
            ),
            on("o_orderkey", "l_orderkey"),
            JoinType::Inner,
        )
        .unwrap()
        .join(
            r.scan("nation", &["n_nationkey", "n_name"], None),
            on("c_nationkey", "n_nationkey"),
            JoinType::Inner,
        )
        .unwrap()
        .aggregate(named(&Q10_GROUP), vec![sum(revenue()).alias("revenue")])
        .unwrap()
        .project(named(&Q10_OUT))
        .unwrap()
        .sort(vec![SortKey::desc(col("revenue"))], Some(20))
        .unwrap()
        .build();
    assert_eq!(
        plan.build_sides(),
        vec![BuildSide::Right, BuildSide::Left, BuildSide::Left]
    );

    let o = reference::select(db.rel("orders"), &q10_order_dates());
    let l = reference::select(db.rel("lineitem"), &returned);
    let co = reference::join(
        db.rel("customer"),
        &o,
        &on("c_custkey", "o_custkey"),
        JoinType::Inner,
    );
    let joined = reference::join(&co, &l, &on("o_orderkey", "l_orderkey"), JoinType::Inner);
    let all = reference::join(
        &joined,
        db.rel("nation"),
        &on("c_nationkey", "n_nationkey"),
        JoinType::Inner,
    );
    let g = ref_aggregate(&all, &Q10_GROUP, &[sum(revenue()).alias("revenue")]);
    let rows = pick(&g, g.rows.clone(), &Q10_OUT);
    let want = reference::order_by(rows, &[(2, true)], Some(20));
    assert_eq!(want.len(), 20);
    assert_eq!(result(&plan), want);
}

fn q12_lineitem() -> Expr {
    col("l_shipmode")
        .in_list(vec![s("MAIL"), s("SHIP")])
        .and(col("l_commitdate").lt(col("l_receiptdate")))
        .and(col("l_shipdate").lt(col("l_commitdate")))
        .and(col("l_receiptdate").gt_eq(date(1994, 1, 1)))
        .and(col("l_receiptdate").lt(date(1995, 1, 1)))
}

/// `SUM(CASE WHEN p THEN 1 ELSE 0 END)` as `COUNT(p OR NULL)`: `p OR NULL` is true when `p`
/// is and null otherwise, and `COUNT` skips nulls.
fn q12_aggs() -> Vec<lightning_columnar::Aggregate> {
    let urgent = || {
        col("o_orderpriority")
            .equal(lit("1-URGENT"))
            .or(col("o_orderpriority").equal(lit("2-HIGH")))
    };
    let null = || Expr::Literal(Scalar::Null);
    vec![
        count(urgent().or(null())).alias("high_line_count"),
        count((!urgent()).or(null())).alias("low_line_count"),
    ]
}

#[test]
fn q12() {
    let db = Db::new();
    let r = db.readers();
    let plan = r
        .scan(
            "lineitem",
            &["l_orderkey", "l_shipmode"],
            Some(q12_lineitem()),
        )
        .join(
            r.scan("orders", &["o_orderkey", "o_orderpriority"], None),
            on("l_orderkey", "o_orderkey"),
            JoinType::Inner,
        )
        .unwrap()
        .aggregate(named(&["l_shipmode"]), q12_aggs())
        .unwrap()
        .sort(vec![SortKey::asc(col("l_shipmode"))], None)
        .unwrap()
        .build();
    assert_eq!(plan.build_sides(), vec![BuildSide::Right]);

    let l = reference::select(db.rel("lineitem"), &q12_lineitem());
    let lo = reference::join(
        &l,
        db.rel("orders"),
        &on("l_orderkey", "o_orderkey"),
        JoinType::Inner,
    );
    let g = ref_aggregate(&lo, &["l_shipmode"], &q12_aggs());
    let want = reference::order_by(g.rows, &[(0, false)], None);
    assert_eq!(want.len(), 2);
    assert_eq!(result(&plan), want);
}
