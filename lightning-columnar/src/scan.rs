//! Scans of a segment with projection and predicate pushdown.
//!
//! The predicate is split into conjuncts. A conjunct comparing a column with a constant
//! (`=`, `<`, `<=`, `>`, `>=`, and so `BETWEEN`), `IS [NOT] NULL` of a column or
//! `LIKE 'prefix%'` is *pushed down*: first against each chunk's zone map (a row group none
//! of whose rows can pass is never read), then on the encoded block by `lightning-compress`
//! (ranges on frame-of-reference offsets, dictionary codes, runs), and with the validity.
//! The other conjuncts run on decoded vectors afterwards. Columns are decoded only for row
//! groups with a surviving row, and the output keeps a selection vector of those rows.

use lightning_compress::{self as lc, FloatPredicate, Predicate, StringPredicate};

use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::expr::{BinaryOp, Expr, filter_owned};
use crate::segment::{ByteSource, Chunk, ChunkStats, SegmentReader};
use crate::types::{DataType, Scalar, Schema};
use crate::{Error, Result};

/// A conjunct the scan evaluates itself.
#[derive(Debug, Clone, PartialEq)]
enum Pushed {
    /// `column op constant` with the constant converted to the column's type.
    Cmp(usize, BinaryOp, Scalar),
    IsNull(usize, bool),
    Prefix(usize, Vec<u8>),
}

/// What a scan did, for `explain_analyze`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Row groups in the segment.
    pub row_groups: usize,
    /// Row groups skipped by zone maps.
    pub skipped_by_zone_maps: usize,
    /// Row groups all of whose rows the encoded predicates removed (no column decoded).
    pub emptied_by_encoded_predicates: usize,
    /// Conjuncts pushed down to zone maps and encoded blocks.
    pub pushed_conjuncts: usize,
    /// Conjuncts evaluated on decoded vectors.
    pub residual_conjuncts: usize,
    /// Column chunks decoded into vectors: the projected and residual-predicate columns of
    /// the row groups with a surviving row. Chunks a pushed conjunct reads on their encoded
    /// form are not counted, nor are any chunks of row groups the zone maps skipped or the
    /// encoded predicates emptied.
    pub chunks_decoded: u64,
    /// Rows produced.
    pub rows: u64,
    /// Row groups whose aggregates were computed on the encoded chunks, none decoded (sums
    /// and counts of columns without nulls in an aggregation without `GROUP BY` or
    /// predicate; [`parallel_aggregate`](crate::parallel_aggregate)). Their rows are counted
    /// in `rows`.
    pub aggregated_on_encoded: usize,
}

/// The rows of a row group the pushed-down conjuncts leave.
pub(crate) enum Survivors {
    /// No row.
    None,
    /// Every row (nothing pushed down).
    All,
    /// The rows whose bits are set.
    Some(Bitmap),
}

/// A scan of one segment: projected columns, rows passing a predicate.
#[derive(Debug)]
pub struct Scan<'r, S> {
    reader: &'r SegmentReader<S>,
    projection: Vec<usize>,
    pushed: Vec<Pushed>,
    residual: Option<Expr>,
    /// Columns the residual predicate reads.
    residual_columns: Vec<usize>,
    /// The pushed conjuncts as written, for `explain`.
    pushed_text: Vec<String>,
    stats: ScanStats,
}

fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        other => out.push(other),
    }
}

/// Adds the indices of the columns `e` reads to `out` (each once).
pub(crate) fn columns_of(e: &Expr, schema: &Schema, out: &mut Vec<usize>) -> Result<()> {
    match e {
        Expr::Column(c) => {
            let i = schema.index_of(c)?;
            if !out.contains(&i) {
                out.push(i);
            }
        }
        Expr::Literal(_) => {}
        Expr::Binary { left, right, .. } => {
            columns_of(left, schema, out)?;
            columns_of(right, schema, out)?;
        }
        Expr::Not(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::StartsWith(x, _)
        | Expr::Extract(_, x) => columns_of(x, schema, out)?,
    }
    Ok(())
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        o => o,
    }
}

/// The constant in the column's own type when the comparison means the same there.
fn convert(c: &Scalar, t: DataType) -> Option<Scalar> {
    let int = |c: &Scalar| match c {
        Scalar::Int32(v) => Some(i64::from(*v)),
        Scalar::Int64(v) => Some(*v),
        Scalar::Decimal {
            value, scale: 0, ..
        } => Some(*value),
        _ => None,
    };
    Some(match t {
        DataType::Int32 => Scalar::Int32(i32::try_from(int(c)?).ok()?),
        DataType::Int64 => Scalar::Int64(int(c)?),
        DataType::Decimal { precision, scale } => {
            let (v, s) = match c {
                Scalar::Decimal { value, scale, .. } => (*value, *scale),
                other => (int(other)?, 0),
            };
            let v = if s <= scale {
                v.checked_mul(10i64.checked_pow(u32::from(scale - s))?)?
            } else {
                return None;
            };
            Scalar::Decimal {
                value: v,
                precision,
                scale,
            }
        }
        DataType::Float64 => Scalar::Float64(match c {
            Scalar::Float64(v) => *v,
            _ => return None,
        }),
        DataType::Date32 | DataType::Timestamp | DataType::Bool => {
            (c.data_type() == Some(t)).then(|| c.clone())?
        }
        DataType::Utf8 => match c {
            Scalar::Utf8(_) => c.clone(),
            _ => return None,
        },
        DataType::Binary => match c {
            Scalar::Binary(_) => c.clone(),
            _ => return None,
        },
    })
}

fn push_down(e: &Expr, schema: &Schema) -> Option<Pushed> {
    let column = |x: &Expr| match x {
        Expr::Column(c) => schema.index_of(c).ok(),
        _ => None,
    };
    match e {
        Expr::Binary { op, left, right }
            if matches!(
                op,
                BinaryOp::Eq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq
            ) =>
        {
            let (i, op, c) = match (&**left, &**right) {
                (l, Expr::Literal(c)) => (column(l)?, *op, c),
                (Expr::Literal(c), r) => (column(r)?, flip(*op), c),
                _ => return None,
            };
            if c.is_null() {
                return None;
            }
            let t = schema.field(i)?.data_type();
            Some(Pushed::Cmp(i, op, convert(c, t)?))
        }
        Expr::IsNull(x) => Some(Pushed::IsNull(column(x)?, true)),
        Expr::IsNotNull(x) => Some(Pushed::IsNull(column(x)?, false)),
        Expr::StartsWith(x, p) => Some(Pushed::Prefix(column(x)?, p.clone())),
        _ => None,
    }
}

/// The column a pushed conjunct reads.
fn pushed_column(p: &Pushed) -> usize {
    match p {
        Pushed::Cmp(i, ..) | Pushed::IsNull(i, _) | Pushed::Prefix(i, _) => *i,
    }
}

/// Whether the zone map proves no row of the chunk passes.
fn refuted(p: &Pushed, stats: &ChunkStats, rows: u32) -> bool {
    let all_null = stats.null_count() == rows;
    match p {
        Pushed::IsNull(_, true) => stats.null_count() == 0,
        Pushed::IsNull(_, false) => all_null,
        _ if all_null => true,
        Pushed::Cmp(_, op, c) => {
            let lo = stats.min();
            let hi = stats.max();
            match op {
                BinaryOp::Eq => lo.is_some_and(|m| c < m) || hi.is_some_and(|m| c > m),
                BinaryOp::Lt => lo.is_some_and(|m| m >= c),
                BinaryOp::LtEq => lo.is_some_and(|m| m > c),
                BinaryOp::Gt => hi.is_some_and(|m| m <= c),
                _ => hi.is_some_and(|m| m < c),
            }
        }
        Pushed::Prefix(_, p) => {
            let bytes = |s: &Scalar| match s {
                Scalar::Utf8(x) => Some(x.as_bytes().to_vec()),
                Scalar::Binary(x) => Some(x.clone()),
                _ => None,
            };
            let below = stats
                .max()
                .and_then(bytes)
                .is_some_and(|m| m.as_slice() < p.as_slice() && !m.starts_with(p));
            let above = stats
                .min()
                .and_then(bytes)
                .is_some_and(|m| m.as_slice() > p.as_slice() && !m.starts_with(p));
            below || above
        }
    }
}

fn int_pred(op: BinaryOp, k: u64) -> Predicate {
    match op {
        BinaryOp::Eq => Predicate::Eq(k),
        BinaryOp::Lt => Predicate::Lt(k),
        BinaryOp::LtEq => Predicate::Le(k),
        BinaryOp::Gt => Predicate::Gt(k),
        _ => Predicate::Ge(k),
    }
}

/// Evaluates a pushed conjunct on a chunk's encoded data: one bit per row.
fn on_encoded(p: &Pushed, chunk: &Chunk<'_>) -> Result<Bitmap> {
    let rows = chunk.rows();
    let validity = chunk.validity()?;
    if let Pushed::IsNull(_, want_null) = p {
        return Ok(match validity {
            None => Bitmap::new(rows, !want_null),
            Some(v) if *want_null => v.not(),
            Some(v) => v,
        });
    }
    if chunk.all_null() {
        return Ok(Bitmap::new(rows, false));
    }
    let block = chunk.data_block();
    let sel = match p {
        Pushed::Cmp(_, op, c) => match c {
            Scalar::Int64(v) | Scalar::Timestamp(v) | Scalar::Decimal { value: v, .. } => {
                lc::filter(block, &int_pred(*op, lc::i64_key(*v)))
            }
            Scalar::Date32(v) | Scalar::Int32(v) => {
                lc::filter(block, &int_pred(*op, lc::i64_key(i64::from(*v))))
            }
            Scalar::Bool(b) => lc::filter(block, &int_pred(*op, u64::from(*b))),
            Scalar::Float64(v) => lc::filter_f64(
                block,
                &match op {
                    BinaryOp::Eq => FloatPredicate::Eq(*v),
                    BinaryOp::Lt => FloatPredicate::Lt(*v),
                    BinaryOp::LtEq => FloatPredicate::Le(*v),
                    BinaryOp::Gt => FloatPredicate::Gt(*v),
                    _ => FloatPredicate::Ge(*v),
                },
            ),
            Scalar::Utf8(_) | Scalar::Binary(_) => {
                let b = match c {
                    Scalar::Utf8(s) => s.as_bytes().to_vec(),
                    Scalar::Binary(b) => b.clone(),
                    _ => Vec::new(),
                };
                lc::filter_strings(
                    block,
                    &match op {
                        BinaryOp::Eq => StringPredicate::Eq(b),
                        BinaryOp::Lt => StringPredicate::Lt(b),
                        BinaryOp::LtEq => StringPredicate::Le(b),
                        BinaryOp::Gt => StringPredicate::Gt(b),
                        _ => StringPredicate::Ge(b),
                    },
                )
            }
            _ => lc::filter(block, &Predicate::In(Vec::new())),
        },
        Pushed::Prefix(_, prefix) => {
            lc::filter_strings(block, &StringPredicate::StartsWith(prefix.clone()))
        }
        Pushed::IsNull(..) => lc::filter(block, &Predicate::In(Vec::new())),
    }
    .map_err(|e| chunk.decode_error(e))?;
    if sel.len() != rows {
        return Err(chunk.corrupt_error("the data block's length disagrees with the rows"));
    }
    // The same layout (64 values a word, least significant bit first): copied a word at a
    // time.
    let mut bits = Bitmap::from_words(sel.words().to_vec(), rows);
    if let Some(v) = validity {
        bits.and_with(&v);
    }
    Ok(bits)
}

impl<'r, S: ByteSource> Scan<'r, S> {
    /// A scan of `reader` producing the columns named in `projection` (in that order) of
    /// the rows where `predicate` (a bool expression over the segment's columns) is true.
    pub fn new(
        reader: &'r SegmentReader<S>,
        projection: &[&str],
        predicate: Option<Expr>,
    ) -> Result<Scan<'r, S>> {
        let schema = reader.schema();
        let projection = projection
            .iter()
            .map(|n| schema.index_of(n))
            .collect::<Result<Vec<_>>>()?;
        let mut parts = Vec::new();
        if let Some(p) = predicate {
            let t = p.data_type(schema)?;
            if t != DataType::Bool {
                return Err(Error::Type {
                    expr: p.to_string(),
                    reason: format!("a scan predicate must be a bool, not {t}"),
                });
            }
            conjuncts(p, &mut parts);
        }
        let mut pushed = Vec::new();
        let mut pushed_text = Vec::new();
        let mut rest = Vec::new();
        for c in parts {
            match push_down(&c, schema) {
                Some(p) => {
                    pushed.push(p);
                    pushed_text.push(c.to_string());
                }
                None => rest.push(c),
            }
        }
        let mut residual_columns = Vec::new();
        for r in &rest {
            columns_of(r, schema, &mut residual_columns)?;
        }
        let stats = ScanStats {
            row_groups: reader.row_groups().len(),
            pushed_conjuncts: pushed.len(),
            residual_conjuncts: rest.len(),
            ..ScanStats::default()
        };
        Ok(Scan {
            reader,
            projection,
            pushed,
            residual: rest.into_iter().reduce(Expr::and),
            residual_columns,
            pushed_text,
            stats,
        })
    }

    /// The conjuncts pushed down to zone maps and encoded blocks, as written.
    pub(crate) fn pushed_text(&self) -> &[String] {
        &self.pushed_text
    }

    /// The conjuncts evaluated on decoded vectors, joined by `AND`.
    pub(crate) fn residual(&self) -> Option<&Expr> {
        self.residual.as_ref()
    }

    /// Whether the zone maps of row group `g` prove that no row of it passes.
    fn refuted_by_zone_maps(&self, g: usize) -> bool {
        let Some(meta) = self.reader.row_groups().get(g) else {
            return false;
        };
        self.pushed.iter().any(|p| {
            meta.chunk(pushed_column(p))
                .is_some_and(|c| refuted(p, c.stats(), meta.rows()))
        })
    }

    /// The row groups the zone maps do not rule out (those the scan will read).
    pub(crate) fn zone_map_survivors(&self) -> Vec<usize> {
        (0..self.reader.row_groups().len())
            .filter(|g| !self.refuted_by_zone_maps(*g))
            .collect()
    }

    /// What the scan did so far.
    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// The surviving rows of row group `g` (`None` when zone maps or encoded predicates
    /// remove every row), with the projected columns and a selection vector.
    pub fn row_group(&mut self, g: usize) -> Result<Option<Batch>> {
        let meta = self
            .reader
            .row_groups()
            .get(g)
            .ok_or_else(|| Error::InvalidArgument {
                reason: format!("row group {g} is past the segment's row groups"),
            })?;
        let rows = meta.rows() as usize;
        let mask = match self.pushed_mask(g)? {
            Survivors::None => return Ok(None),
            Survivors::All => None,
            Survivors::Some(m) => Some(m),
        };
        // Decode the projected columns and those of the residual predicate.
        let mut needed = self.projection.clone();
        for c in &self.residual_columns {
            if !needed.contains(c) {
                needed.push(*c);
            }
        }
        let mut batch = self.reader.read_row_group(g, &needed)?;
        self.stats.chunks_decoded += needed.len() as u64;
        if let Some(m) = &mask
            && !m.all()
        {
            let sel: Vec<u32> = m
                .ones()
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect();
            batch = batch.with_selection(sel)?;
        }
        if let Some(r) = &self.residual {
            batch = filter_owned(batch, r)?;
        }
        if batch.is_empty() {
            return Ok(None);
        }
        debug_assert!(batch.physical_rows() == rows);
        // Keep the projected columns only: the decoded vectors move, nothing is copied.
        if needed.len() > self.projection.len() {
            let keep: Vec<usize> = (0..self.projection.len()).collect();
            let schema = std::sync::Arc::new(batch.schema().project(&keep)?);
            let (_, mut columns, selection) = batch.into_parts();
            columns.truncate(keep.len());
            batch = Batch::new(schema, columns)?;
            if let Some(s) = selection {
                batch = batch.with_selection(s)?;
            }
        }
        self.stats.rows += batch.num_rows() as u64;
        Ok(Some(batch))
    }

    /// What the pushed-down conjuncts leave of row group `g`, decoding no column (a row
    /// group the zone maps or the predicates on encoded blocks empty is counted in the stats
    /// as [`row_group`](Self::row_group) counts it).
    pub(crate) fn pushed_mask(&mut self, g: usize) -> Result<Survivors> {
        if self.refuted_by_zone_maps(g) {
            self.stats.skipped_by_zone_maps += 1;
            return Ok(Survivors::None);
        }
        let mut mask: Option<Bitmap> = None;
        for p in &self.pushed {
            let chunk = self.reader.chunk(g, pushed_column(p))?;
            let bits = on_encoded(p, &chunk)?;
            match &mut mask {
                None => mask = Some(bits),
                Some(m) => m.and_with(&bits),
            }
            if mask.as_ref().is_some_and(|m| !m.any()) {
                self.stats.emptied_by_encoded_predicates += 1;
                return Ok(Survivors::None);
            }
        }
        Ok(mask.map_or(Survivors::All, Survivors::Some))
    }

    /// Whether part of the predicate is evaluated on decoded vectors.
    pub(crate) fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// Every row group's surviving rows, in order.
    pub fn collect(&mut self) -> Result<Vec<Batch>> {
        let mut out = Vec::new();
        for g in 0..self.reader.row_groups().len() {
            if let Some(b) = self.row_group(g)? {
                out.push(b);
            }
        }
        Ok(out)
    }
}
