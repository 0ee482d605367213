//! ORDER BY, with an optional LIMIT (top-k by selection, not a full sort).

use std::cmp::Ordering;

use crate::batch::Batch;
use crate::column::{Column, Data};
use crate::expr::Expr;
use crate::types::{Schema, f64_cmp};
use crate::{Error, Result};

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    expr: Expr,
    descending: bool,
    nulls_first: bool,
}

impl SortKey {
    /// Ascending, nulls last (the SQL default of most engines).
    pub fn asc(expr: Expr) -> SortKey {
        SortKey {
            expr,
            descending: false,
            nulls_first: false,
        }
    }

    /// Descending, nulls first (the reverse of ascending).
    pub fn desc(expr: Expr) -> SortKey {
        SortKey {
            expr,
            descending: true,
            nulls_first: true,
        }
    }

    /// The key expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the key sorts descending.
    pub fn is_descending(&self) -> bool {
        self.descending
    }

    /// Whether nulls come first.
    pub fn is_nulls_first(&self) -> bool {
        self.nulls_first
    }

    /// The same key with nulls placed first (`true`) or last.
    #[must_use]
    pub fn nulls_first(mut self, first: bool) -> SortKey {
        self.nulls_first = first;
        self
    }
}

/// Compares rows `a` and `b` of one key column: nulls by `nulls_first`, values by the
/// total order (doubles: NaN above every number), reversed when descending.
#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "`a` and `b` are below the column's length: `sort`, the one caller, compares
              entries of `order` (`0..n`, `n` the physical rows of the batch the key column
              was evaluated on, and an evaluated column has one value per physical row)"
)]
fn compare(col: &Column, key: &SortKey, a: usize, b: usize) -> Ordering {
    let (c, k) = (col, key);
    match (c.is_valid(a), c.is_valid(b)) {
        (false, false) => return Ordering::Equal,
        (false, true) => {
            return if k.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        (true, false) => {
            return if k.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        (true, true) => {}
    }
    let ord = match c.data() {
        Data::Bool(vals) => vals[a].cmp(&vals[b]),
        Data::I32(vals) => vals[a].cmp(&vals[b]),
        Data::I64(vals) => vals[a].cmp(&vals[b]),
        Data::F64(vals) => f64_cmp(vals[a], vals[b]),
        Data::Bytes { .. } => c.bytes(a).cmp(&c.bytes(b)),
    };
    if k.descending { ord.reverse() } else { ord }
}

/// Sorts the (selected) rows of `batches` (all of `schema`) by `keys`; ties keep input
/// order. With `limit`, only the first `limit` rows are produced, found by selection
/// (`O(n + k log k)`) rather than by sorting everything.
pub fn sort(
    schema: &std::sync::Arc<Schema>,
    batches: &[Batch],
    keys: &[SortKey],
    limit: Option<usize>,
) -> Result<Batch> {
    // Top-k over many batches: each batch's own first `k` rows first (a batch at a time,
    // in cache), then the first `k` of those. The rows of the answer are among them, and
    // ties still keep input order: each reduced batch keeps its rows in (key, input)
    // order and the reduced batches stay in input order.
    if let Some(k) = limit
        && k > 0
        && batches.len() > 1
        && batches.iter().any(|b| b.num_rows() > k.saturating_mul(2))
    {
        // The first `k` so far, merged batch by batch. Once there are `k`, a later row can
        // only enter by sorting strictly before the last of them (a tie loses to the
        // earlier row): with one integer key, the rows that cannot are dropped by one
        // comparison each before anything is sorted.
        let mut best: Option<Batch> = None;
        for b in batches {
            let b = match best.as_ref().and_then(|top| threshold(top, keys, k)) {
                Some(limit) => match beyond(b, keys, limit)? {
                    Some(fewer) => std::borrow::Cow::Owned(fewer),
                    None => std::borrow::Cow::Borrowed(b),
                },
                None => std::borrow::Cow::Borrowed(b),
            };
            let reduced = sort(schema, std::slice::from_ref(&*b), keys, Some(k))?;
            best = Some(match best {
                None => reduced,
                Some(top) => sort(schema, &[top, reduced], keys, Some(k))?,
            });
        }
        return best.map_or_else(|| sort(schema, &[], keys, Some(k)), Ok);
    }
    for b in batches {
        if b.schema() != schema {
            return Err(Error::SchemaMismatch {
                reason: format!("sorting a batch of {} with batches of {schema}", b.schema()),
            });
        }
    }
    // One batch without a selection is sorted where it is; otherwise the rows are gathered
    // into one batch first.
    let all: std::borrow::Cow<'_, Batch> = match batches {
        [b] if b.selection().is_none() => std::borrow::Cow::Borrowed(b),
        _ => {
            let mut columns: Vec<Column> = schema
                .fields()
                .iter()
                .map(|f| Column::nulls(f.data_type(), 0))
                .collect();
            for b in batches {
                let b = b.compact();
                for (acc, c) in columns.iter_mut().zip(b.columns()) {
                    acc.append(c)?;
                }
            }
            std::borrow::Cow::Owned(Batch::new(schema.clone(), columns)?)
        }
    };
    let key_cols = keys
        .iter()
        .map(|k| k.expr.eval_cow(&all))
        .collect::<Result<Vec<_>>>()?;
    let n = all.physical_rows();
    let mut order: Vec<u32> = (0..u32::try_from(n).unwrap_or(u32::MAX)).collect();
    // One integer key without nulls (a price, a date, an id): compared directly.
    if let ([c], [key]) = (key_cols.as_slice(), keys)
        && c.validity().is_none()
        && let Some(v) = c.i64s()
    {
        let desc = key.descending;
        let cmp = |a: &u32, b: &u32| {
            // INVARIANT: `order` holds `0..n`, `n` the physical rows of `all`, and `c` was
            // evaluated on `all`: one value per physical row.
            let (x, y) = (v[*a as usize], v[*b as usize]);
            let o = if desc { y.cmp(&x) } else { x.cmp(&y) };
            o.then(a.cmp(b))
        };
        select_and_sort(&mut order, limit, cmp);
    } else {
        let cmp = |a: &u32, b: &u32| {
            let (a, b) = (*a as usize, *b as usize);
            key_cols
                .iter()
                .zip(keys)
                .map(|(c, k)| compare(c, k, a, b))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.cmp(&b))
        };
        select_and_sort(&mut order, limit, cmp);
    }
    Batch::new(
        schema.clone(),
        all.columns().iter().map(|c| c.gather(&order)).collect(),
    )
}

/// Sorts `order` by `cmp`, or, with a `limit` below its length, keeps only the first
/// `limit` (selected in linear time, then sorted).
fn select_and_sort(
    order: &mut Vec<u32>,
    limit: Option<usize>,
    cmp: impl Fn(&u32, &u32) -> Ordering + Copy,
) {
    match limit {
        Some(k) if k < order.len() => {
            if k > 0 {
                order.select_nth_unstable_by(k - 1, cmp);
            }
            order.truncate(k);
            order.sort_unstable_by(cmp);
        }
        _ => order.sort_unstable_by(cmp),
    }
}

/// With one integer key: the key of the last of the `k` rows of `top` (sorted), once it
/// holds `k` rows.
fn threshold(top: &Batch, keys: &[SortKey], k: usize) -> Option<i64> {
    let [key] = keys else { return None };
    if top.num_rows() < k || top.selection().is_some() {
        return None;
    }
    let c = key.expr.eval_cow(top).ok()?;
    if c.validity().is_some() {
        return None;
    }
    c.i64s()?.last().copied()
}

/// The (selected) rows of `b` whose one integer key sorts strictly before `limit`, as a
/// batch of their own; `None` when the key is not an integer column without nulls.
fn beyond(b: &Batch, keys: &[SortKey], limit: i64) -> Result<Option<Batch>> {
    let [key] = keys else { return Ok(None) };
    let c = key.expr.eval_cow(b)?;
    let Some(v) = c.i64s().filter(|_| c.validity().is_none()) else {
        return Ok(None);
    };
    let before = |x: i64| {
        if key.descending { x > limit } else { x < limit }
    };
    let keep: Vec<u32> = match b.selection() {
        Some(sel) => sel
            .iter()
            .copied()
            .filter(|r| v.get(*r as usize).is_some_and(|x| before(*x)))
            .collect(),
        None => (0..u32::try_from(v.len()).unwrap_or(u32::MAX))
            .filter(|r| v.get(*r as usize).is_some_and(|x| before(*x)))
            .collect(),
    };
    Ok(Some(Batch::new(
        b.schema().clone(),
        b.columns().iter().map(|c| c.gather(&keep)).collect(),
    )?))
}
