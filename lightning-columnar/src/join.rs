//! Hash joins (inner, left outer, semi, anti) on equality of one or more keys. A null key
//! never matches; an anti join keeps the probe rows without a match (`NOT EXISTS`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::aggregate::{GroupMap, PackedState, key_bytes};
use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::column::{Column, Data};
use crate::expr::Expr;
use crate::types::{DataType, Field, Schema};
use crate::{Error, Result};

/// Which rows a join produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinType {
    /// Probe rows paired with every matching build row.
    Inner,
    /// As inner, and probe rows without a match once, with null build columns.
    Left,
    /// Probe rows with at least one match, once.
    Semi,
    /// Probe rows without a match.
    Anti,
}

/// A hash table over the build side, probed one batch at a time.
#[derive(Debug)]
pub struct HashJoin {
    join_type: JoinType,
    build: Vec<Column>,
    probe_schema: Arc<Schema>,
    probe_keys: Vec<Expr>,
    /// Keys to the first build row with that key; `next` chains the others.
    table: Table,
    next: Vec<u32>,
    output: Arc<Schema>,
}

const NONE: u32 = u32::MAX;

/// The build side's keys.
#[derive(Debug)]
enum Table {
    /// One integer key (either width, as `i64`): hashed as the integer.
    Int(HashMap<i64, u32, PackedState>),
    /// Any other key, by its bytes ([`join_key`]).
    Bytes(GroupMap),
}

/// The integer of row `r` of an integer column (`i32` widened).
fn int_at(c: &Column, r: usize) -> i64 {
    match c.data() {
        Data::I32(v) => v.get(r).map_or(0, |x| i64::from(*x)),
        Data::I64(v) => v.get(r).copied().unwrap_or(0),
        _ => 0,
    }
}

/// Appends a join key: integers of either width as `i64`, so `i32` joins `i64`. `false`
/// when the value is null (no match).
fn join_key(c: &Column, r: usize, out: &mut Vec<u8>) -> bool {
    if !c.is_valid(r) {
        return false;
    }
    match (c.data(), c.data_type()) {
        (Data::I32(_), DataType::Int32) => {
            out.push(1);
            out.extend_from_slice(&int_at(c, r).to_le_bytes());
        }
        _ => key_bytes(c, r, out),
    }
    true
}

fn key_class(t: DataType) -> DataType {
    if t == DataType::Int32 {
        DataType::Int64
    } else {
        t
    }
}

/// The table over `rows` build rows keyed by `key_cols`, and the chains of rows sharing a
/// key (in build order).
fn build_table(key_cols: &[Column], rows: usize) -> Result<(Table, Vec<u32>)> {
    let mut next = vec![NONE; rows];
    let as_row = |r: usize| {
        u32::try_from(r).map_err(|_| Error::InvalidArgument {
            reason: "a join build side above 2^32 rows".into(),
        })
    };
    // Insert in reverse so chains list rows in build order.
    let table = match key_cols {
        [c] if key_class(c.data_type()) == DataType::Int64 => {
            let mut t: HashMap<i64, u32, PackedState> =
                HashMap::with_capacity_and_hasher(rows, PackedState::default());
            for (r, next_r) in next.iter_mut().enumerate().rev() {
                if c.is_valid(r) {
                    let row = as_row(r)?;
                    if let Some(head) = t.insert(int_at(c, r), row) {
                        *next_r = head;
                    }
                }
            }
            Table::Int(t)
        }
        _ => {
            let mut t = GroupMap::default();
            let mut buf = Vec::new();
            for (r, next_r) in next.iter_mut().enumerate().rev() {
                buf.clear();
                if key_cols.iter().all(|c| join_key(c, r, &mut buf)) {
                    let row = as_row(r)?;
                    if let Some(head) = t.get(&buf) {
                        *next_r = head;
                    }
                    t.insert(&buf, row);
                }
            }
            Table::Bytes(t)
        }
    };
    Ok((table, next))
}

impl HashJoin {
    /// Builds the table from `build` batches (of `build_schema`) keyed by `build_keys`, to
    /// be probed by batches of `probe_schema` keyed by `probe_keys` (pairwise equal types;
    /// i32 and i64 mix).
    pub fn new(
        build_schema: &Arc<Schema>,
        build: &[Batch],
        build_keys: &[Expr],
        probe_schema: Arc<Schema>,
        probe_keys: Vec<Expr>,
        join_type: JoinType,
    ) -> Result<HashJoin> {
        if build_keys.len() != probe_keys.len() || build_keys.is_empty() {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "a join needs as many build keys as probe keys, at least one ({} and {})",
                    build_keys.len(),
                    probe_keys.len()
                ),
            });
        }
        for (b, p) in build_keys.iter().zip(&probe_keys) {
            let (bt, pt) = (b.data_type(build_schema)?, p.data_type(&probe_schema)?);
            if key_class(bt) != key_class(pt) {
                return Err(Error::Type {
                    expr: format!("{p} = {b}"),
                    reason: format!("join keys must have one type, not {pt} and {bt}"),
                });
            }
        }
        let mut fields: Vec<Field> = probe_schema.fields().to_vec();
        if matches!(join_type, JoinType::Inner | JoinType::Left) {
            for f in build_schema.fields() {
                let name = if fields.iter().any(|g| g.name() == f.name()) {
                    format!("build.{}", f.name())
                } else {
                    f.name().to_owned()
                };
                let nullable = f.nullable() || join_type == JoinType::Left;
                fields.push(Field::new(name, f.data_type(), nullable));
            }
        }
        let output = Arc::new(Schema::new(fields)?);
        // One build batch of all build rows.
        let mut build_cols: Vec<Column> = build_schema
            .fields()
            .iter()
            .map(|f| Column::nulls(f.data_type(), 0))
            .collect();
        let mut key_cols: Vec<Column> = Vec::new();
        for b in build {
            if b.schema().as_ref() != build_schema.as_ref() {
                return Err(Error::SchemaMismatch {
                    reason: format!(
                        "a build batch of {} for a join over {build_schema}",
                        b.schema()
                    ),
                });
            }
            let b = b.compact();
            for (acc, c) in build_cols.iter_mut().zip(b.columns()) {
                acc.append(c)?;
            }
            let keys = build_keys
                .iter()
                .map(|k| k.eval(&b))
                .collect::<Result<Vec<_>>>()?;
            if key_cols.is_empty() {
                key_cols = keys;
            } else {
                for (acc, k) in key_cols.iter_mut().zip(&keys) {
                    acc.append(k)?;
                }
            }
        }
        let rows = build_cols.first().map_or(0, Column::len);
        let (table, next) = build_table(&key_cols, rows)?;
        Ok(HashJoin {
            join_type,
            build: build_cols,
            probe_schema,
            probe_keys,
            table,
            next,
            output,
        })
    }

    /// The output schema: probe columns, then (inner and left joins) build columns (a name
    /// the probe side has gets the prefix `build.`).
    pub fn schema(&self) -> &Arc<Schema> {
        &self.output
    }

    /// Build rows.
    pub fn build_rows(&self) -> usize {
        self.next.len()
    }

    /// Joins one probe batch.
    pub fn probe(&self, batch: &Batch) -> Result<Batch> {
        if batch.schema().as_ref() != self.probe_schema.as_ref() {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "a probe batch of {} for a join probed by {}",
                    batch.schema(),
                    self.probe_schema
                ),
            });
        }
        let keys = self
            .probe_keys
            .iter()
            .map(|k| k.eval_cow(batch))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<u32> = match batch.selection() {
            Some(s) => s.to_vec(),
            None => (0..u32::try_from(batch.physical_rows()).unwrap_or(u32::MAX)).collect(),
        };
        let mut probe_idx = Vec::with_capacity(rows.len());
        let mut build_idx: Vec<u32> = Vec::new();
        let mut buf = Vec::new();
        for r in rows {
            let first = match (&self.table, keys.as_slice()) {
                (Table::Int(t), [c]) if c.is_valid(r as usize) => {
                    t.get(&int_at(c, r as usize)).copied().unwrap_or(NONE)
                }
                (Table::Int(_), _) => NONE,
                (Table::Bytes(t), _) => {
                    buf.clear();
                    if keys.iter().all(|c| join_key(c, r as usize, &mut buf)) {
                        t.get(&buf).unwrap_or(NONE)
                    } else {
                        NONE
                    }
                }
            };
            match self.join_type {
                JoinType::Semi if first != NONE => probe_idx.push(r),
                JoinType::Anti if first == NONE => probe_idx.push(r),
                JoinType::Inner | JoinType::Left => {
                    let mut m = first;
                    while m != NONE {
                        probe_idx.push(r);
                        build_idx.push(m);
                        // INVARIANT: `m` is a build row (`< rows == next.len()`): the table and
                        // `next` hold only rows `build_table` iterated over `0..rows`.
                        m = self.next[m as usize];
                    }
                    if first == NONE && self.join_type == JoinType::Left {
                        probe_idx.push(r);
                        build_idx.push(NONE);
                    }
                }
                _ => {}
            }
        }
        let mut columns: Vec<Column> = batch
            .columns()
            .iter()
            .map(|c| c.gather(&probe_idx))
            .collect();
        if matches!(self.join_type, JoinType::Inner | JoinType::Left) {
            // INVARIANT: `from_fn` calls the closure with `i < build_idx.len()` only.
            let missing = Bitmap::from_fn(build_idx.len(), |i| build_idx[i] != NONE);
            let safe: Vec<u32> = build_idx
                .iter()
                .map(|i| if *i == NONE { 0 } else { *i })
                .collect();
            for c in &self.build {
                let g = if c.is_empty() {
                    Column::nulls(c.data_type(), safe.len())
                } else {
                    let g = c.gather(&safe);
                    if missing.all() {
                        g
                    } else {
                        let mut v = g
                            .validity()
                            .cloned()
                            .unwrap_or_else(|| Bitmap::new(safe.len(), true));
                        v.and_with(&missing);
                        g.with_validity(Some(v))?
                    }
                };
                columns.push(g);
            }
        }
        Batch::new(self.output.clone(), columns)
    }
}
