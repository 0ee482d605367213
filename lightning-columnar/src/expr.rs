//! Scalar expressions over batches, evaluated a whole column at a time, with SQL null
//! semantics (three-valued logic; arithmetic and comparisons on a null give null).

#![expect(
    clippy::many_single_char_names,
    reason = "kernels read like the algebra: l and r operands, a and b their values"
)]

use std::fmt;

use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::column::{Column, Data};
use crate::date::civil_from_days;
use crate::types::{DataType, Field, MAX_DECIMAL_PRECISION, Scalar, Schema};
use crate::{Error, Result};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integers: truncating; by zero: null; decimals: a double)
    Div,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (three-valued)
    And,
    /// `OR` (three-valued)
    Or,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// A part of a date or timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatePart {
    /// The year.
    Year,
    /// The month, 1..=12.
    Month,
    /// The day of the month, 1..=31.
    Day,
}

/// A scalar expression.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// A column of the input, by name.
    Column(String),
    /// A constant.
    Literal(Scalar),
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT e` (null stays null).
    Not(Box<Expr>),
    /// `e IS NULL`
    IsNull(Box<Expr>),
    /// `e IS NOT NULL`
    IsNotNull(Box<Expr>),
    /// `e LIKE 'prefix%'` on utf8 or binary.
    StartsWith(Box<Expr>, Vec<u8>),
    /// `EXTRACT(part FROM e)` of a date or timestamp, as an `i32`.
    Extract(DatePart, Box<Expr>),
}

/// A column reference.
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(name.into())
}

/// A constant.
pub fn lit(value: impl Into<Scalar>) -> Expr {
    Expr::Literal(value.into())
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Scalar {
        Scalar::Bool(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Scalar {
        Scalar::Int32(v)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Scalar {
        Scalar::Int64(v)
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Scalar {
        Scalar::Float64(v)
    }
}
impl From<&str> for Scalar {
    fn from(v: &str) -> Scalar {
        Scalar::Utf8(v.to_owned())
    }
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary {
        op,
        left: Box::new(l),
        right: Box::new(r),
    }
}

impl Expr {
    /// `self = other`
    #[must_use]
    pub fn equal(self, other: Expr) -> Expr {
        bin(BinaryOp::Eq, self, other)
    }
    /// `self <> other`
    #[must_use]
    pub fn not_equal(self, other: Expr) -> Expr {
        bin(BinaryOp::NotEq, self, other)
    }
    /// `self < other`
    #[must_use]
    pub fn lt(self, other: Expr) -> Expr {
        bin(BinaryOp::Lt, self, other)
    }
    /// `self <= other`
    #[must_use]
    pub fn lt_eq(self, other: Expr) -> Expr {
        bin(BinaryOp::LtEq, self, other)
    }
    /// `self > other`
    #[must_use]
    pub fn gt(self, other: Expr) -> Expr {
        bin(BinaryOp::Gt, self, other)
    }
    /// `self >= other`
    #[must_use]
    pub fn gt_eq(self, other: Expr) -> Expr {
        bin(BinaryOp::GtEq, self, other)
    }
    /// `self AND other`
    #[must_use]
    pub fn and(self, other: Expr) -> Expr {
        bin(BinaryOp::And, self, other)
    }
    /// `self OR other`
    #[must_use]
    pub fn or(self, other: Expr) -> Expr {
        bin(BinaryOp::Or, self, other)
    }
    /// `self IS NULL`
    #[must_use]
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    /// `self IS NOT NULL`
    #[must_use]
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }
    /// `self BETWEEN low AND high` (`self >= low AND self <= high`).
    #[must_use]
    pub fn between(self, low: Expr, high: Expr) -> Expr {
        self.clone().gt_eq(low).and(self.lt_eq(high))
    }
    /// `self IN (values)`: true on a match; else null if `self` or a value is null; else
    /// false (`self = v1 OR self = v2 ...`; an empty list is false).
    #[must_use]
    pub fn in_list(self, values: Vec<Scalar>) -> Expr {
        values
            .into_iter()
            .map(|v| self.clone().equal(Expr::Literal(v)))
            .reduce(Expr::or)
            .unwrap_or(Expr::Literal(Scalar::Bool(false)))
    }
    /// `self LIKE 'prefix%'`
    #[must_use]
    pub fn starts_with(self, prefix: impl Into<Vec<u8>>) -> Expr {
        Expr::StartsWith(Box::new(self), prefix.into())
    }
    /// `EXTRACT(part FROM self)`
    #[must_use]
    pub fn extract(self, part: DatePart) -> Expr {
        Expr::Extract(part, Box::new(self))
    }

    fn type_err(&self, reason: impl Into<String>) -> Error {
        Error::Type {
            expr: self.to_string(),
            reason: reason.into(),
        }
    }

    /// The result type against an input schema.
    pub fn data_type(&self, schema: &Schema) -> Result<DataType> {
        Ok(match self {
            // INVARIANT: `index_of` returns the position of a field in `fields()`.
            Expr::Column(name) => schema.fields()[schema.index_of(name)?].data_type(),
            Expr::Literal(v) => v.data_type().unwrap_or(DataType::Bool),
            Expr::Not(e) => {
                let t = e.data_type(schema)?;
                if t != DataType::Bool {
                    return Err(self.type_err(format!("NOT needs a bool, not {t}")));
                }
                DataType::Bool
            }
            Expr::IsNull(e) | Expr::IsNotNull(e) => {
                e.data_type(schema)?;
                DataType::Bool
            }
            Expr::StartsWith(e, _) => match e.data_type(schema)? {
                DataType::Utf8 | DataType::Binary => DataType::Bool,
                t => return Err(self.type_err(format!("LIKE needs utf8 or binary, not {t}"))),
            },
            Expr::Extract(_, e) => match e.data_type(schema)? {
                DataType::Date32 | DataType::Timestamp => DataType::Int32,
                t => {
                    return Err(
                        self.type_err(format!("EXTRACT needs a date or timestamp, not {t}"))
                    );
                }
            },
            Expr::Binary { op, left, right } => {
                let (l, r) = (left.data_type(schema)?, right.data_type(schema)?);
                self.binary_type(*op, l, r, is_null_lit(left), is_null_lit(right))?
            }
        })
    }

    fn binary_type(
        &self,
        op: BinaryOp,
        l: DataType,
        r: DataType,
        lnull: bool,
        rnull: bool,
    ) -> Result<DataType> {
        // A null literal takes the other side's type.
        let (l, r) = match (lnull, rnull) {
            (true, false) => (r, r),
            (false, true) => (l, l),
            _ => (l, r),
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if l == DataType::Bool && r == DataType::Bool {
                    Ok(DataType::Bool)
                } else {
                    Err(self.type_err(format!("{} needs bools, not {l} and {r}", op.symbol())))
                }
            }
            _ if op.is_comparison() => {
                if comparable(l, r) {
                    Ok(DataType::Bool)
                } else {
                    Err(self.type_err(format!("cannot compare {l} with {r}")))
                }
            }
            _ => arith_type(op, l, r).ok_or_else(|| {
                self.type_err(format!(
                    "`{}` is not defined on {l} and {r}; cast to a common numeric type",
                    op.symbol()
                ))
            }),
        }
    }

    /// [`eval`](Self::eval), borrowing the batch's column for a bare column reference
    /// instead of copying it.
    pub(crate) fn eval_cow<'b>(&self, batch: &'b Batch) -> Result<std::borrow::Cow<'b, Column>> {
        match self {
            Expr::Column(name) => {
                let i = batch.schema().index_of(name)?;
                match batch.column(i) {
                    Some(c) => Ok(std::borrow::Cow::Borrowed(c)),
                    None => self.eval(batch).map(std::borrow::Cow::Owned),
                }
            }
            _ => self.eval(batch).map(std::borrow::Cow::Owned),
        }
    }

    /// Evaluates over every physical row of `batch` (the selection is not applied).
    pub fn eval(&self, batch: &Batch) -> Result<Column> {
        let rows = batch.physical_rows();
        let schema = batch.schema();
        let out_type = self.data_type(schema)?;
        match self {
            // INVARIANT: `index_of` returns the position of a field of the batch's schema, and
            // a batch holds one column per field (`Batch::new` checks it).
            Expr::Column(name) => Ok(batch.columns()[schema.index_of(name)?].clone()),
            Expr::Literal(v) => Column::repeat(out_type, v, rows),
            Expr::Not(e) => {
                let c = e.eval_cow(batch)?;
                let (v, valid) = bools(&c);
                Column::from_bools(v.iter().map(|b| !b).collect(), valid)
            }
            Expr::IsNull(e) | Expr::IsNotNull(e) => {
                let c = e.eval_cow(batch)?;
                let want = matches!(self, Expr::IsNotNull(_));
                Column::from_bools((0..rows).map(|i| c.is_valid(i) == want).collect(), None)
            }
            Expr::StartsWith(e, prefix) => {
                let c = e.eval_cow(batch)?;
                let v = (0..rows)
                    .map(|i| c.bytes(i).is_some_and(|b| b.starts_with(prefix)))
                    .collect();
                Column::from_bools(v, c.validity().cloned())
            }
            Expr::Extract(part, e) => {
                let c = e.eval_cow(batch)?;
                let days: Vec<i32> = match c.data() {
                    Data::I32(d) => d.clone(),
                    Data::I64(t) => t
                        .iter()
                        .map(|us| i32::try_from(us.div_euclid(86_400_000_000)).unwrap_or(i32::MAX))
                        .collect(),
                    _ => return Err(self.type_err("EXTRACT needs a date or timestamp")),
                };
                let v = days
                    .iter()
                    .map(|d| {
                        let (y, m, day) = civil_from_days(*d);
                        match part {
                            DatePart::Year => i32::try_from(y).unwrap_or(i32::MAX),
                            DatePart::Month => m.cast_signed(),
                            DatePart::Day => day.cast_signed(),
                        }
                    })
                    .collect();
                Column::from_i32(DataType::Int32, v, c.validity().cloned())
            }
            Expr::Binary { op, left, right }
                if !matches!(op, BinaryOp::And | BinaryOp::Or)
                    && (is_null_lit(left) || is_null_lit(right)) =>
            {
                Ok(Column::nulls(out_type, rows))
            }
            Expr::Binary { op, left, right } => {
                let l = left.eval_cow(batch)?;
                let r = right.eval_cow(batch)?;
                match op {
                    BinaryOp::And | BinaryOp::Or => logic(*op, &l, &r),
                    o if o.is_comparison() => compare(*o, &l, &r),
                    _ => self.arith(*op, &l, &r, out_type),
                }
            }
        }
    }

    fn arith(&self, op: BinaryOp, l: &Column, r: &Column, out: DataType) -> Result<Column> {
        let valid = and_validity(l, r);
        if out == DataType::Float64 {
            let (a, b) = (as_f64(l), as_f64(r));
            let v = a
                .iter()
                .zip(&b)
                .map(|(x, y)| match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    _ => x / y,
                })
                .collect();
            return Column::from_f64(v, valid);
        }
        let overflow = || Error::Overflow {
            expr: self.to_string(),
            result: out.to_string(),
        };
        let target = out.scale();
        let (sa, sb) = (l.data_type().scale(), r.data_type().scale());
        let (a, b) = if op == BinaryOp::Mul {
            (as_i64(l), as_i64(r))
        } else {
            (
                rescale(l, target, valid.as_ref()).ok_or_else(overflow)?,
                rescale(r, target, valid.as_ref()).ok_or_else(overflow)?,
            )
        };
        debug_assert!(op != BinaryOp::Mul || sa + sb == target);
        let (v, nulls) = int_kernel(op, &a, &b, valid.as_ref()).ok_or_else(overflow)?;
        let null_at = |i: usize| nulls.as_ref().is_some_and(|n| !n.get(i));
        if out.physical() == crate::types::Physical::I32 {
            let mut narrow = Vec::with_capacity(v.len());
            for (i, x) in v.iter().enumerate() {
                match i32::try_from(*x) {
                    Ok(n) => narrow.push(n),
                    Err(_) if null_at(i) => narrow.push(0),
                    Err(_) => return Err(overflow()),
                }
            }
            return Column::from_i32(out, narrow, nulls);
        }
        if let DataType::Decimal { .. } = out
            && v.iter().any(|x| x.unsigned_abs() >= 10u64.pow(18))
            && v.iter()
                .enumerate()
                .any(|(i, x)| !null_at(i) && x.unsigned_abs() >= 10u64.pow(18))
        {
            return Err(overflow());
        }
        Column::from_i64(out, v, nulls)
    }

    /// The output field of this expression under `name`.
    pub fn field(&self, name: &str, schema: &Schema) -> Result<Field> {
        let nullable = match self {
            // INVARIANT: `index_of` returns the position of a field in `fields()`.
            Expr::Column(c) => schema.fields()[schema.index_of(c)?].nullable(),
            Expr::IsNull(_) | Expr::IsNotNull(_) => false,
            Expr::Literal(v) => v.is_null(),
            _ => true,
        };
        Ok(Field::new(name, self.data_type(schema)?, nullable))
    }
}

fn is_null_lit(e: &Expr) -> bool {
    matches!(e, Expr::Literal(Scalar::Null))
}

fn comparable(l: DataType, r: DataType) -> bool {
    (l.is_numeric() && r.is_numeric())
        || l == r
        || matches!(
            (l, r),
            (DataType::Utf8, DataType::Binary) | (DataType::Binary, DataType::Utf8)
        )
}

/// The result type of arithmetic, `None` when undefined.
pub(crate) fn arith_type(op: BinaryOp, l: DataType, r: DataType) -> Option<DataType> {
    use DataType as T;
    if !l.is_numeric() || !r.is_numeric() {
        return None;
    }
    Some(match (l, r) {
        (T::Float64, _) | (_, T::Float64) => T::Float64,
        (T::Decimal { .. }, _) | (_, T::Decimal { .. }) => {
            let (sa, sb) = (l.scale(), r.scale());
            match op {
                BinaryOp::Div => T::Float64,
                BinaryOp::Mul if sa + sb <= MAX_DECIMAL_PRECISION => T::Decimal {
                    precision: MAX_DECIMAL_PRECISION,
                    scale: sa + sb,
                },
                BinaryOp::Mul => return None,
                _ => T::Decimal {
                    precision: MAX_DECIMAL_PRECISION,
                    scale: sa.max(sb),
                },
            }
        }
        (T::Int32, T::Int32) => T::Int32,
        _ => T::Int64,
    })
}

fn and_validity(l: &Column, r: &Column) -> Option<Bitmap> {
    match (l.validity(), r.validity()) {
        (None, None) => None,
        (Some(a), None) | (None, Some(a)) => Some(a.clone()),
        (Some(a), Some(b)) => {
            let mut v = a.clone();
            v.and_with(b);
            Some(v)
        }
    }
}

fn bools(c: &Column) -> (Vec<bool>, Option<Bitmap>) {
    (
        c.bools()
            .map_or_else(|| vec![false; c.len()], <[bool]>::to_vec),
        c.validity().cloned(),
    )
}

/// Three-valued AND / OR.
fn logic(op: BinaryOp, l: &Column, r: &Column) -> Result<Column> {
    let n = l.len();
    let (lv, rv) = (l.bools().unwrap_or_default(), r.bools().unwrap_or_default());
    let mut value = Vec::with_capacity(n);
    let mut valid = Bitmap::new(n, true);
    // Both sides have the batch's rows; were one shorter, `value` would be too and
    // `from_bools` would refuse it.
    for (i, (lb, rb)) in lv.iter().zip(rv).enumerate() {
        let (lk, rk) = (l.is_valid(i), r.is_valid(i));
        let (lt, lf) = (lk && *lb, lk && !*lb);
        let (rt, rf) = (rk && *rb, rk && !*rb);
        let (t, f) = if op == BinaryOp::And {
            (lt && rt, lf || rf)
        } else {
            (lt || rt, lf && rf)
        };
        value.push(t);
        if !t && !f {
            valid.set(i, false);
        }
    }
    Column::from_bools(value, Some(valid))
}

fn as_f64(c: &Column) -> Vec<f64> {
    #[expect(
        clippy::cast_precision_loss,
        reason = "mixing integers and doubles computes in doubles, as SQL does"
    )]
    match c.data() {
        Data::F64(v) => v.clone(),
        Data::I32(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Data::I64(v) => {
            let p = 10f64.powi(i32::from(c.data_type().scale()));
            v.iter().map(|x| *x as f64 / p).collect()
        }
        Data::Bool(v) => v.iter().map(|b| f64::from(u8::from(*b))).collect(),
        Data::Bytes { .. } => vec![0.0; c.len()],
    }
}

/// `f` over `a` and `b` row by row, and whether any row overflowed.
fn wrapped(a: &[i64], b: &[i64], f: impl Fn(i64, i64) -> (i64, bool)) -> (Vec<i64>, bool) {
    let mut any = false;
    let v: Vec<i64> = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let (r, o) = f(*x, *y);
            any |= o;
            r
        })
        .collect();
    (v, any)
}

/// `a op b` row by row on scaled integers, in one tight loop per operator; rows that
/// overflowed are looked at only if any did. The result's validity is `valid`'s, less the
/// rows divided by zero. `None` when a valid row overflows.
fn int_kernel(
    op: BinaryOp,
    a: &[i64],
    b: &[i64],
    valid: Option<&Bitmap>,
) -> Option<(Vec<i64>, Option<Bitmap>)> {
    let valid_at = |i: usize| valid.is_none_or(|v| v.get(i));
    let mut nulls = valid.cloned();
    let (mut v, any_overflow) = match op {
        BinaryOp::Add => wrapped(a, b, i64::overflowing_add),
        BinaryOp::Sub => wrapped(a, b, i64::overflowing_sub),
        BinaryOp::Mul => wrapped(a, b, i64::overflowing_mul),
        _ => {
            let mut n = nulls.take().unwrap_or_else(|| Bitmap::new(a.len(), true));
            let mut any = false;
            let v = a
                .iter()
                .zip(b.iter())
                .enumerate()
                .map(|(i, (x, y))| {
                    if *y == 0 {
                        n.set(i, false);
                        0
                    } else {
                        let (r, o) = x.overflowing_div(*y);
                        any |= o;
                        r
                    }
                })
                .collect();
            nulls = Some(n);
            (v, any)
        }
    };
    if any_overflow {
        let checked = |x: i64, y: i64| match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            _ if y == 0 => Some(0),
            _ => x.checked_div(y),
        };
        for (i, ((x, y), out)) in a.iter().zip(b.iter()).zip(&mut v).enumerate() {
            if checked(*x, *y).is_none() {
                if valid_at(i) {
                    return None;
                }
                *out = 0;
            }
        }
    }
    Some((v, nulls))
}

fn as_i64(c: &Column) -> std::borrow::Cow<'_, [i64]> {
    match c.data() {
        Data::I32(v) => v.iter().map(|x| i64::from(*x)).collect(),
        Data::I64(v) => std::borrow::Cow::Borrowed(v.as_slice()),
        _ => vec![0; c.len()].into(),
    }
}

/// The scaled integers of an integer or decimal column at scale `target` (>= its own);
/// `None` when a value of a row valid in `valid` (all rows: `None`) overflows.
fn rescale<'c>(
    c: &'c Column,
    target: u8,
    valid: Option<&Bitmap>,
) -> Option<std::borrow::Cow<'c, [i64]>> {
    let v = as_i64(c);
    let s = c.data_type().scale();
    if s == target {
        return Some(v);
    }
    let p = 10i64.pow(u32::from(target - s));
    v.iter()
        .enumerate()
        .map(|(i, x)| match x.checked_mul(p) {
            Some(y) => Some(y),
            None if valid.is_some_and(|v| !v.get(i)) => Some(0),
            None => None,
        })
        .collect()
}

fn cmp_result(op: BinaryOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering as O;
    match op {
        BinaryOp::Eq => o == O::Equal,
        BinaryOp::NotEq => o != O::Equal,
        BinaryOp::Lt => o == O::Less,
        BinaryOp::LtEq => o != O::Greater,
        BinaryOp::Gt => o == O::Greater,
        _ => o != O::Less,
    }
}

/// Comparisons: doubles by IEEE 754 (NaN compares false, `-0.0 = 0.0`), integers and
/// decimals exactly at a common scale, strings bytewise.
fn compare(op: BinaryOp, l: &Column, r: &Column) -> Result<Column> {
    let valid = and_validity(l, r);
    let n = l.len();
    let (lt, rt) = (l.data_type(), r.data_type());
    let v: Vec<bool> = if lt == DataType::Float64 || rt == DataType::Float64 {
        let (a, b) = (as_f64(l), as_f64(r));
        a.iter()
            .zip(&b)
            .map(|(x, y)| x.partial_cmp(y).is_some_and(|o| cmp_result(op, o)))
            .collect()
    } else if lt.is_numeric() && rt.is_numeric() {
        let (sa, sb) = (lt.scale(), rt.scale());
        let (a, b) = (as_i64(l), as_i64(r));
        if sa == sb {
            cmp_kernel(op, &a, &b)
        } else {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| {
                    let (x, y) = crate::types::align(i128::from(*x), sa, i128::from(*y), sb);
                    cmp_result(op, x.cmp(&y))
                })
                .collect()
        }
    } else {
        match (l.data(), r.data()) {
            (Data::Bool(a), Data::Bool(b)) => cmp_kernel(op, a, b),
            (Data::I32(a), Data::I32(b)) => cmp_kernel(op, a, b),
            (Data::I64(a), Data::I64(b)) => cmp_kernel(op, a, b),
            (Data::Bytes { .. }, Data::Bytes { .. }) => (0..n)
                .map(|i| cmp_result(op, l.bytes(i).cmp(&r.bytes(i))))
                .collect(),
            _ => {
                return Err(Error::Type {
                    expr: format!("{lt} {} {rt}", op.symbol()),
                    reason: "cannot compare these types".into(),
                });
            }
        }
    };
    Column::from_bools(v, valid)
}

/// One comparison loop per operator so the compiler vectorizes it.
fn cmp_kernel<T: PartialOrd + Copy>(op: BinaryOp, a: &[T], b: &[T]) -> Vec<bool> {
    let z = a.iter().zip(b);
    match op {
        BinaryOp::Eq => z.map(|(x, y)| x == y).collect(),
        BinaryOp::NotEq => z.map(|(x, y)| x != y).collect(),
        BinaryOp::Lt => z.map(|(x, y)| x < y).collect(),
        BinaryOp::LtEq => z.map(|(x, y)| x <= y).collect(),
        BinaryOp::Gt => z.map(|(x, y)| x > y).collect(),
        _ => z.map(|(x, y)| x >= y).collect(),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(c) => f.write_str(c),
            Expr::Literal(v) => write!(f, "{v}"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::IsNull(e) => write!(f, "({e} IS NULL)"),
            Expr::IsNotNull(e) => write!(f, "({e} IS NOT NULL)"),
            Expr::StartsWith(e, p) => {
                write!(f, "({e} LIKE '{}%')", String::from_utf8_lossy(p))
            }
            Expr::Extract(part, e) => write!(f, "EXTRACT({part:?} FROM {e})"),
        }
    }
}

macro_rules! arith_ops {
    ($($tr:ident $m:ident $op:ident),*) => {$(
        impl std::ops::$tr for Expr {
            type Output = Expr;
            fn $m(self, rhs: Expr) -> Expr {
                bin(BinaryOp::$op, self, rhs)
            }
        }
    )*};
}
arith_ops!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

/// Keeps the rows of `batch` (within its selection) for which `predicate` is true (not
/// false, not null).
pub fn filter(batch: &Batch, predicate: &Expr) -> Result<Batch> {
    filter_owned(batch.clone(), predicate)
}

/// [`filter`] of a batch the caller gives up: its columns move into the result.
pub(crate) fn filter_owned(batch: Batch, predicate: &Expr) -> Result<Batch> {
    let t = predicate.data_type(batch.schema())?;
    if t != DataType::Bool {
        return Err(predicate.type_err(format!("a filter needs a bool, not {t}")));
    }
    let c = predicate.eval(&batch)?;
    let v = c.bools().unwrap_or_default();
    let pass = |i: usize| v.get(i).copied().unwrap_or(false) && c.is_valid(i);
    let selection: Vec<u32> = match batch.selection() {
        Some(sel) => sel.iter().copied().filter(|i| pass(*i as usize)).collect(),
        None => (0..batch.physical_rows())
            .filter(|i| pass(*i))
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect(),
    };
    batch.with_selection(selection)
}

/// Evaluates `exprs` (each with its output name) over `batch`; the result keeps the input's
/// selection.
pub fn project(batch: &Batch, exprs: &[(String, Expr)]) -> Result<Batch> {
    let schema = batch.schema();
    let fields = exprs
        .iter()
        .map(|(n, e)| e.field(n, schema))
        .collect::<Result<Vec<_>>>()?;
    let columns = exprs
        .iter()
        .map(|(_, e)| e.eval(batch))
        .collect::<Result<Vec<_>>>()?;
    let out = Batch::new(std::sync::Arc::new(Schema::new(fields)?), columns)?;
    match batch.selection() {
        Some(sel) => out.with_selection(sel.to_vec()),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> Batch {
        let schema = Arc::new(
            Schema::new(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("p", DataType::decimal(15, 2).unwrap(), false),
                Field::new("s", DataType::Utf8, true),
                Field::new("d", DataType::Date32, false),
            ])
            .unwrap(),
        );
        Batch::new(
            schema,
            vec![
                Column::from_scalars(
                    DataType::Int32,
                    &[Scalar::Int32(1), Scalar::Null, Scalar::Int32(3)],
                )
                .unwrap(),
                Column::from_i64(DataType::decimal(15, 2).unwrap(), vec![150, 5, 1000], None)
                    .unwrap(),
                Column::from_scalars(
                    DataType::Utf8,
                    &[
                        Scalar::Utf8("PROMO x".into()),
                        Scalar::Utf8("y".into()),
                        Scalar::Null,
                    ],
                )
                .unwrap(),
                Column::from_i32(DataType::Date32, vec![0, 10_000, 10_500], None).unwrap(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn three_valued_logic() {
        let b = batch();
        let e = col("a").gt(lit(1)).or(col("p").lt(lit(1.0)));
        let c = e.eval(&b).unwrap();
        assert_eq!(
            (0..3).map(|i| c.value(i)).collect::<Vec<_>>(),
            vec![Scalar::Bool(false), Scalar::Bool(true), Scalar::Bool(true)]
        );
        let e = col("a").gt(lit(1)).and(lit(false));
        let c = e.eval(&b).unwrap();
        assert_eq!(c.value(1), Scalar::Bool(false));
        let e = !col("a").gt(lit(1));
        assert_eq!(e.eval(&b).unwrap().value(1), Scalar::Null);
        let f = filter(&b, &col("a").is_null().or(col("s").starts_with("PROMO"))).unwrap();
        assert_eq!(f.selection(), Some(&[0u32, 1][..]));
    }

    #[test]
    fn decimal_arithmetic_and_dates() {
        let b = batch();
        let e = col("p") * (lit(Scalar::decimal(100, 15, 2).unwrap()) - col("p"));
        let c = e.eval(&b).unwrap();
        assert_eq!(c.data_type(), DataType::decimal(18, 4).unwrap());
        assert_eq!(c.value(0).to_string(), "-0.7500");
        let e = col("d").extract(DatePart::Year);
        assert_eq!(e.eval(&b).unwrap().i32s().unwrap(), &[1970, 1997, 1998]);
        let e = col("a") / lit(0);
        assert_eq!(e.eval(&b).unwrap().null_count(), 3);
        assert!(matches!(
            (lit(i32::MAX) + col("a")).eval(&b),
            Err(Error::Overflow { .. })
        ));
        assert!(matches!(
            (col("s") + col("a")).eval(&b),
            Err(Error::Type { .. })
        ));
        let p = project(
            &b,
            &[(
                "x".into(),
                col("a").in_list(vec![Scalar::Int32(3), Scalar::Null]),
            )],
        )
        .unwrap();
        assert_eq!(
            p.rows(),
            vec![
                vec![Scalar::Null],
                vec![Scalar::Null],
                vec![Scalar::Bool(true)]
            ]
        );
    }
}
