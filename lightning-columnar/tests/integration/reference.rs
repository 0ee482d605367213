//! A naive, row-at-a-time reference evaluator with SQL semantics, written independently of
//! the engine's kernels: expressions on rows of scalars, and grouping by linear search.

use std::cmp::Ordering;

use lightning_columnar::{
    AggFunc, Aggregate, BinaryOp, DataType, DatePart, Expr, JoinType, Scalar, Schema,
};

/// Evaluation failed (overflow); the engine must fail too.
#[derive(Debug, PartialEq)]
pub(crate) struct Failed;

fn numeric(v: &Scalar) -> bool {
    matches!(
        v,
        Scalar::Int32(_) | Scalar::Int64(_) | Scalar::Float64(_) | Scalar::Decimal { .. }
    )
}

fn to_f64(v: &Scalar) -> f64 {
    match v {
        Scalar::Int32(x) => f64::from(*x),
        Scalar::Int64(x) => *x as f64,
        Scalar::Float64(x) => *x,
        Scalar::Decimal { value, scale, .. } => *value as f64 / 10f64.powi(i32::from(*scale)),
        _ => unreachable!("not a number"),
    }
}

/// (scaled integer, scale) of an integer or decimal.
fn to_scaled(v: &Scalar) -> (i128, u8) {
    match v {
        Scalar::Int32(x) => (i128::from(*x), 0),
        Scalar::Int64(x) => (i128::from(*x), 0),
        Scalar::Decimal { value, scale, .. } => (i128::from(*value), *scale),
        _ => unreachable!("not an exact number"),
    }
}

fn at_scale(v: i128, from: u8, to: u8) -> i128 {
    v * 10i128.pow(u32::from(to - from))
}

/// Days to (year, month, day) by walking 400-year cycles, years and months.
fn civil(days: i64) -> (i64, u32, u32) {
    let cycles = days.div_euclid(146_097);
    let mut d = days.rem_euclid(146_097);
    let mut y = 1970 + 400 * cycles;
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    loop {
        let len = if leap(y) { 366 } else { 365 };
        if d < len {
            break;
        }
        d -= len;
        y += 1;
    }
    let months = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut m = 0;
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    (y, m as u32 + 1, d as u32 + 1)
}

pub(crate) fn eval(e: &Expr, schema: &Schema, row: &[Scalar]) -> Result<Scalar, Failed> {
    Ok(match e {
        Expr::Column(c) => row[schema.index_of(c).unwrap()].clone(),
        Expr::Literal(v) => v.clone(),
        Expr::Not(x) => match eval(x, schema, row)? {
            Scalar::Bool(b) => Scalar::Bool(!b),
            _ => Scalar::Null,
        },
        Expr::IsNull(x) => Scalar::Bool(eval(x, schema, row)?.is_null()),
        Expr::IsNotNull(x) => Scalar::Bool(!eval(x, schema, row)?.is_null()),
        Expr::StartsWith(x, p) => match eval(x, schema, row)? {
            Scalar::Utf8(s) => Scalar::Bool(s.as_bytes().starts_with(p)),
            Scalar::Binary(s) => Scalar::Bool(s.starts_with(p)),
            _ => Scalar::Null,
        },
        Expr::Extract(part, x) => {
            let days = match eval(x, schema, row)? {
                Scalar::Date32(d) => i64::from(d),
                Scalar::Timestamp(t) => t.div_euclid(86_400_000_000),
                _ => return Ok(Scalar::Null),
            };
            let (y, m, d) = civil(days);
            Scalar::Int32(match part {
                DatePart::Year => y as i32,
                DatePart::Month => m as i32,
                DatePart::Day => d as i32,
                _ => unreachable!(),
            })
        }
        // Like the engine, an operation with a NULL literal is null without evaluating the
        // other side (AND and OR excepted).
        Expr::Binary { op, left, right }
            if !matches!(op, BinaryOp::And | BinaryOp::Or)
                && (matches!(**left, Expr::Literal(Scalar::Null))
                    || matches!(**right, Expr::Literal(Scalar::Null))) =>
        {
            Scalar::Null
        }
        Expr::Binary { op, left, right } => {
            let l = eval(left, schema, row)?;
            let r = eval(right, schema, row)?;
            binary(*op, &l, &r, result_type(e, schema))?
        }
        _ => unreachable!("a new expression"),
    })
}

fn result_type(e: &Expr, schema: &Schema) -> DataType {
    e.data_type(schema).unwrap()
}

fn binary(op: BinaryOp, l: &Scalar, r: &Scalar, out: DataType) -> Result<Scalar, Failed> {
    let truth = |v: &Scalar| match v {
        Scalar::Bool(b) => Some(*b),
        _ => None,
    };
    match op {
        BinaryOp::And => {
            return Ok(match (truth(l), truth(r)) {
                (Some(false), _) | (_, Some(false)) => Scalar::Bool(false),
                (Some(true), Some(true)) => Scalar::Bool(true),
                _ => Scalar::Null,
            });
        }
        BinaryOp::Or => {
            return Ok(match (truth(l), truth(r)) {
                (Some(true), _) | (_, Some(true)) => Scalar::Bool(true),
                (Some(false), Some(false)) => Scalar::Bool(false),
                _ => Scalar::Null,
            });
        }
        _ => {}
    }
    if l.is_null() || r.is_null() {
        return Ok(Scalar::Null);
    }
    let cmp = |o: Option<Ordering>| {
        Scalar::Bool(o.is_some_and(|o| match op {
            BinaryOp::Eq => o.is_eq(),
            BinaryOp::NotEq => o.is_ne(),
            BinaryOp::Lt => o.is_lt(),
            BinaryOp::LtEq => o.is_le(),
            BinaryOp::Gt => o.is_gt(),
            _ => o.is_ge(),
        }))
    };
    let is_cmp = matches!(
        op,
        BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq
    );
    if is_cmp {
        if numeric(l) && numeric(r) {
            if matches!(l, Scalar::Float64(_)) || matches!(r, Scalar::Float64(_)) {
                return Ok(cmp(to_f64(l).partial_cmp(&to_f64(r))));
            }
            let ((a, sa), (b, sb)) = (to_scaled(l), to_scaled(r));
            let s = sa.max(sb);
            return Ok(cmp(Some(at_scale(a, sa, s).cmp(&at_scale(b, sb, s)))));
        }
        return Ok(cmp(Some(l.total_cmp(r))));
    }
    // Arithmetic.
    if out == DataType::Float64 {
        let (a, b) = (to_f64(l), to_f64(r));
        return Ok(Scalar::Float64(match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            _ => a / b,
        }));
    }
    let ((a, sa), (b, sb)) = (to_scaled(l), to_scaled(r));
    let v = match op {
        BinaryOp::Mul => a * b,
        BinaryOp::Div if b == 0 => return Ok(Scalar::Null),
        BinaryOp::Div => a / b,
        _ => {
            let s = sa.max(sb);
            let (a, b) = (at_scale(a, sa, s), at_scale(b, sb, s));
            if op == BinaryOp::Add { a + b } else { a - b }
        }
    };
    Ok(match out {
        DataType::Int32 => Scalar::Int32(i32::try_from(v).map_err(|_| Failed)?),
        DataType::Int64 => Scalar::Int64(i64::try_from(v).map_err(|_| Failed)?),
        DataType::Decimal { precision, scale } => {
            if v.unsigned_abs() >= 10u128.pow(18) {
                return Err(Failed);
            }
            Scalar::Decimal {
                value: v as i64,
                precision,
                scale,
            }
        }
        _ => unreachable!("arithmetic type"),
    })
}

/// Equality for comparing results: the total order's, and doubles within a relative 1e-9
/// when `approx`.
pub(crate) fn same(a: &Scalar, b: &Scalar, approx: bool) -> bool {
    match (a, b) {
        (Scalar::Float64(x), Scalar::Float64(y)) if approx && x.is_finite() && y.is_finite() => {
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

pub(crate) fn cmp_rows(a: &[Scalar], b: &[Scalar]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Group-by and aggregates, row at a time.
pub(crate) fn aggregate(
    schema: &Schema,
    rows: &[Vec<Scalar>],
    group_by: &[Expr],
    aggs: &[Aggregate],
) -> Result<Vec<Vec<Scalar>>, Failed> {
    let mut groups: Vec<(Vec<Scalar>, Vec<usize>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let key = group_by
            .iter()
            .map(|e| eval(e, schema, row))
            .collect::<Result<Vec<_>, _>>()?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    if group_by.is_empty() && groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut row = key;
        for a in aggs {
            let values: Vec<Scalar> = match a.expr() {
                Some(e) => members
                    .iter()
                    .map(|m| eval(e, schema, &rows[*m]))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .collect(),
                None => vec![Scalar::Bool(true); members.len()],
            };
            let in_type = a.expr().map(|e| e.data_type(schema).unwrap());
            row.push(finish(a.func(), &values, in_type)?);
        }
        out.push(row);
    }
    Ok(out)
}

fn finish(func: AggFunc, values: &[Scalar], t: Option<DataType>) -> Result<Scalar, Failed> {
    let n = values.len() as i64;
    Ok(match func {
        AggFunc::CountStar | AggFunc::Count => Scalar::Int64(n),
        AggFunc::CountDistinct => {
            let mut v = values.to_vec();
            v.sort_by(Scalar::total_cmp);
            v.dedup();
            Scalar::Int64(v.len() as i64)
        }
        AggFunc::Min => values
            .iter()
            .min_by(|a, b| a.total_cmp(b))
            .cloned()
            .unwrap_or(Scalar::Null),
        AggFunc::Max => values
            .iter()
            .rev()
            .max_by(|a, b| a.total_cmp(b))
            .cloned()
            .unwrap_or(Scalar::Null),
        _ if values.is_empty() => Scalar::Null,
        AggFunc::Sum if t == Some(DataType::Float64) => {
            Scalar::Float64(values.iter().map(to_f64).sum())
        }
        AggFunc::Sum => {
            let s: i128 = values.iter().map(|v| to_scaled(v).0).sum();
            match t {
                Some(DataType::Decimal { scale, .. }) => {
                    if s.unsigned_abs() >= 10u128.pow(18) {
                        return Err(Failed);
                    }
                    Scalar::Decimal {
                        value: s as i64,
                        precision: 18,
                        scale,
                    }
                }
                _ => Scalar::Int64(i64::try_from(s).map_err(|_| Failed)?),
            }
        }
        AggFunc::Avg if t == Some(DataType::Float64) => {
            Scalar::Float64(values.iter().map(to_f64).sum::<f64>() / n as f64)
        }
        AggFunc::Avg => {
            let s: i128 = values.iter().map(|v| to_scaled(v).0).sum();
            let scale = t.map_or(0, |t| match t {
                DataType::Decimal { scale, .. } => scale,
                _ => 0,
            });
            Scalar::Float64(s as f64 / n as f64 / 10f64.powi(i32::from(scale)))
        }
        _ => unreachable!("a new aggregate"),
    })
}

/// A relation for the reference queries: a schema (names and types only) and rows.
pub(crate) struct Rel {
    pub(crate) schema: Schema,
    pub(crate) rows: Vec<Vec<Scalar>>,
}

/// The rows of `r` where `predicate` is true.
pub(crate) fn select(r: &Rel, predicate: &Expr) -> Rel {
    Rel {
        schema: r.schema.clone(),
        rows: r
            .rows
            .iter()
            .filter(|row| eval(predicate, &r.schema, row) == Ok(Scalar::Bool(true)))
            .cloned()
            .collect(),
    }
}

/// A join by sorting the right side's keys and searching them for each left row (no
/// hashing): inner and left give left columns then right ones, semi and anti left ones.
/// Null keys never match.
pub(crate) fn join(l: &Rel, r: &Rel, on: &[(Expr, Expr)], kind: JoinType) -> Rel {
    let key = |e: &[&Expr], s: &Schema, row: &[Scalar]| -> Option<Vec<Scalar>> {
        let k: Vec<Scalar> = e.iter().map(|e| eval(e, s, row).unwrap()).collect();
        (!k.iter().any(Scalar::is_null)).then_some(k)
    };
    let lk: Vec<&Expr> = on.iter().map(|(l, _)| l).collect();
    let rk: Vec<&Expr> = on.iter().map(|(_, r)| r).collect();
    let mut index: Vec<(Vec<Scalar>, usize)> = r
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| key(&rk, &r.schema, row).map(|k| (k, i)))
        .collect();
    index.sort_by(|a, b| cmp_rows(&a.0, &b.0).then(a.1.cmp(&b.1)));
    let keep_right = matches!(kind, JoinType::Inner | JoinType::Left);
    let mut fields = l.schema.fields().to_vec();
    if keep_right {
        fields.extend(r.schema.fields().iter().cloned());
    }
    let mut rows = Vec::new();
    for row in &l.rows {
        let matches: Vec<usize> = match key(&lk, &l.schema, row) {
            None => Vec::new(),
            Some(k) => {
                let start = index.partition_point(|(x, _)| cmp_rows(x, &k).is_lt());
                index[start..]
                    .iter()
                    .take_while(|(x, _)| cmp_rows(x, &k).is_eq())
                    .map(|(_, i)| *i)
                    .collect()
            }
        };
        match kind {
            JoinType::Inner | JoinType::Left => {
                for m in &matches {
                    rows.push(row.iter().chain(&r.rows[*m]).cloned().collect());
                }
                if matches.is_empty() && kind == JoinType::Left {
                    let nulls = std::iter::repeat_n(Scalar::Null, r.schema.len());
                    rows.push(row.iter().cloned().chain(nulls).collect());
                }
            }
            JoinType::Semi if !matches.is_empty() => rows.push(row.clone()),
            JoinType::Anti if matches.is_empty() => rows.push(row.clone()),
            _ => {}
        }
    }
    Rel {
        schema: Schema::new(fields).unwrap(),
        rows,
    }
}

/// Rows in the order of `keys` (column index, descending), a stable full sort, then the
/// first `limit`.
pub(crate) fn order_by(
    mut rows: Vec<Vec<Scalar>>,
    keys: &[(usize, bool)],
    limit: Option<usize>,
) -> Vec<Vec<Scalar>> {
    rows.sort_by(|a, b| {
        keys.iter()
            .map(|(i, desc)| {
                let o = a[*i].total_cmp(&b[*i]);
                if *desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    if let Some(n) = limit {
        rows.truncate(n);
    }
    rows
}
