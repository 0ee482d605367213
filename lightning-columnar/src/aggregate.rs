//! Aggregates (count, count distinct, sum, min, max, avg) with or without hash group-by.
//! Nulls are skipped (`COUNT(*)` counts rows); with no group-by an empty input gives one
//! row (count 0, the others null).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::batch::Batch;
use crate::column::{Column, ColumnBuilder, Data};
use crate::expr::Expr;
use crate::types::{DataType, Field, MAX_DECIMAL_PRECISION, Physical, Scalar, Schema, f64_cmp};
use crate::{Error, Result};

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AggFunc {
    /// `COUNT(*)`: rows.
    CountStar,
    /// `COUNT(e)`: non-null values.
    Count,
    /// `COUNT(DISTINCT e)`.
    CountDistinct,
    /// `SUM(e)`: integers to i64, decimals to decimal(18, s), doubles to f64.
    Sum,
    /// `MIN(e)` (doubles: NaN above every number).
    Min,
    /// `MAX(e)`.
    Max,
    /// `AVG(e)` as f64.
    Avg,
}

/// An aggregate: a function of an expression, with an output name.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    func: AggFunc,
    expr: Option<Expr>,
    name: String,
}

impl Aggregate {
    /// The aggregate with another output name.
    #[must_use]
    pub fn alias(mut self, name: impl Into<String>) -> Aggregate {
        self.name = name.into();
        self
    }

    /// The function.
    pub fn func(&self) -> AggFunc {
        self.func
    }

    /// The argument (`None` for `COUNT(*)`).
    pub fn expr(&self) -> Option<&Expr> {
        self.expr.as_ref()
    }

    /// The output name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn output_type(&self, schema: &Schema) -> Result<DataType> {
        let Some(e) = &self.expr else {
            return Ok(DataType::Int64);
        };
        let t = e.data_type(schema)?;
        let bad = |why: &str| Error::Type {
            expr: format!("{:?}({e})", self.func),
            reason: why.into(),
        };
        Ok(match self.func {
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => DataType::Int64,
            AggFunc::Min | AggFunc::Max => t,
            AggFunc::Sum => match t {
                DataType::Int32 | DataType::Int64 => DataType::Int64,
                DataType::Float64 => DataType::Float64,
                DataType::Decimal { scale, .. } => DataType::Decimal {
                    precision: MAX_DECIMAL_PRECISION,
                    scale,
                },
                _ => return Err(bad("SUM needs a number")),
            },
            AggFunc::Avg => {
                if !t.is_numeric() {
                    return Err(bad("AVG needs a number"));
                }
                DataType::Float64
            }
        })
    }
}

fn agg(func: AggFunc, e: Expr, name: &str) -> Aggregate {
    Aggregate {
        name: format!("{name}({e})"),
        func,
        expr: Some(e),
    }
}

/// `COUNT(*)`
pub fn count_star() -> Aggregate {
    Aggregate {
        func: AggFunc::CountStar,
        expr: None,
        name: "count(*)".into(),
    }
}
/// `COUNT(e)`
pub fn count(e: Expr) -> Aggregate {
    agg(AggFunc::Count, e, "count")
}
/// `COUNT(DISTINCT e)`
pub fn count_distinct(e: Expr) -> Aggregate {
    agg(AggFunc::CountDistinct, e, "count_distinct")
}
/// `SUM(e)`
pub fn sum(e: Expr) -> Aggregate {
    agg(AggFunc::Sum, e, "sum")
}
/// `MIN(e)`
pub fn min(e: Expr) -> Aggregate {
    agg(AggFunc::Min, e, "min")
}
/// `MAX(e)`
pub fn max(e: Expr) -> Aggregate {
    agg(AggFunc::Max, e, "max")
}
/// `AVG(e)`
pub fn avg(e: Expr) -> Aggregate {
    agg(AggFunc::Avg, e, "avg")
}

/// Per-group state of one aggregate.
#[derive(Debug, Clone)]
enum State {
    Count(Vec<i64>),
    /// Integer or decimal sums (exact), and whether any value was seen.
    SumInt(Vec<i128>, Vec<bool>),
    SumF64(Vec<f64>, Vec<bool>),
    /// Min or max of any type (`None`: no value yet).
    Best(Vec<Option<Scalar>>),
    BestI64(Vec<Option<i64>>),
    BestF64(Vec<Option<f64>>),
    Distinct(Vec<HashSet<Vec<u8>>>),
    /// Sums, counts, and the input's decimal scale.
    AvgInt(Vec<i128>, Vec<i64>, u8),
    AvgF64(Vec<f64>, Vec<i64>),
}

impl State {
    fn new(func: AggFunc, input: Option<DataType>) -> State {
        let t = input.unwrap_or(DataType::Int64);
        match func {
            AggFunc::CountStar | AggFunc::Count => State::Count(Vec::new()),
            AggFunc::CountDistinct => State::Distinct(Vec::new()),
            AggFunc::Sum if t == DataType::Float64 => State::SumF64(Vec::new(), Vec::new()),
            AggFunc::Sum => State::SumInt(Vec::new(), Vec::new()),
            AggFunc::Avg if t == DataType::Float64 => State::AvgF64(Vec::new(), Vec::new()),
            AggFunc::Avg => State::AvgInt(Vec::new(), Vec::new(), t.scale()),
            AggFunc::Min | AggFunc::Max => match t {
                DataType::Int64 | DataType::Decimal { .. } | DataType::Timestamp => {
                    State::BestI64(Vec::new())
                }
                DataType::Float64 => State::BestF64(Vec::new()),
                _ => State::Best(Vec::new()),
            },
        }
    }

    fn grow(&mut self, groups: usize) {
        match self {
            State::Count(v) => v.resize(groups, 0),
            State::SumInt(s, seen) => {
                s.resize(groups, 0);
                seen.resize(groups, false);
            }
            State::SumF64(s, seen) => {
                s.resize(groups, 0.0);
                seen.resize(groups, false);
            }
            State::Best(v) => v.resize(groups, None),
            State::BestI64(v) => v.resize(groups, None),
            State::BestF64(v) => v.resize(groups, None),
            State::Distinct(v) => v.resize(groups, HashSet::new()),
            State::AvgInt(s, c, _) => {
                s.resize(groups, 0);
                c.resize(groups, 0);
            }
            State::AvgF64(s, c) => {
                s.resize(groups, 0.0);
                c.resize(groups, 0);
            }
        }
    }
}

/// Group keys (their [`key_bytes`]) to group ids. Keys of up to 15 bytes — most: a few
/// integers, dates or short strings — are packed into a `u128` (length in the top byte)
/// and hashed with a seeded folded multiply, instead of hashing a byte string with `SipHash`.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupMap {
    small: HashMap<u128, u32, PackedState>,
    large: HashMap<Vec<u8>, u32>,
}

/// The longest key packed into a `u128`.
const PACKED_MAX: usize = 15;

fn pack_key(key: &[u8]) -> Option<u128> {
    if key.len() > PACKED_MAX {
        return None;
    }
    let mut b = [0u8; 16];
    // INVARIANT: `key.len() <= PACKED_MAX` (15), checked above, within the 16 bytes.
    b[..key.len()].copy_from_slice(key);
    b[15] = u8::try_from(key.len()).unwrap_or(0);
    Some(u128::from_le_bytes(b))
}

fn unpack_key(k: u128) -> Vec<u8> {
    let b = k.to_le_bytes();
    // INVARIANT: the length is clamped to PACKED_MAX (15), within the 16 bytes.
    b[..usize::from(b[15]).min(PACKED_MAX)].to_vec()
}

impl GroupMap {
    pub(crate) fn get(&self, key: &[u8]) -> Option<u32> {
        match pack_key(key) {
            Some(k) => self.small.get(&k).copied(),
            None => self.large.get(key).copied(),
        }
    }

    pub(crate) fn insert(&mut self, key: &[u8], id: u32) {
        match pack_key(key) {
            Some(k) => self.small.insert(k, id),
            None => self.large.insert(key.to_vec(), id),
        };
    }

    fn into_entries(self) -> impl Iterator<Item = (Vec<u8>, u32)> {
        self.small
            .into_iter()
            .map(|(k, id)| (unpack_key(k), id))
            .chain(self.large)
    }
}

/// Builds [`PackedHasher`]s with a seed drawn from the standard library's random state.
#[derive(Debug, Clone)]
pub(crate) struct PackedState(u64, u64);

impl Default for PackedState {
    fn default() -> Self {
        use std::hash::BuildHasher as _;
        let r = std::collections::hash_map::RandomState::new();
        PackedState(r.hash_one(1u8), r.hash_one(2u8))
    }
}

impl std::hash::BuildHasher for PackedState {
    type Hasher = PackedHasher;

    fn build_hasher(&self) -> PackedHasher {
        PackedHasher(self.0, self.1)
    }
}

/// A hasher for packed keys and integers: the two halves, each mixed with a seed,
/// multiplied into 128 bits and folded (foldhash's mixing step). Other input goes through
/// FNV-1a.
#[derive(Debug)]
pub(crate) struct PackedHasher(u64, u64);

impl std::hash::Hasher for PackedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.write_u128(u128::from(v));
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v.cast_unsigned());
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the halves of a 128-bit value, taken apart on purpose"
    )]
    fn write_u128(&mut self, v: u128) {
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        let m = u128::from(lo ^ self.0) * u128::from(hi ^ self.1);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// Hash aggregation: feed batches with [`HashAggregate::push`], combine per-thread states
/// with [`HashAggregate::merge`], then [`HashAggregate::finish`] into one batch (groups in
/// order of first appearance).
#[derive(Debug, Clone)]
pub struct HashAggregate {
    input: Arc<Schema>,
    group_by: Vec<(String, Expr)>,
    aggs: Vec<Aggregate>,
    output: Arc<Schema>,
    groups: GroupMap,
    keys: Vec<Vec<Scalar>>,
    states: Vec<State>,
    key_buf: Vec<u8>,
}

impl HashAggregate {
    /// An aggregation of batches of `input`, grouped by `group_by` (named expressions;
    /// empty: one group).
    pub fn new(
        input: Arc<Schema>,
        group_by: Vec<(String, Expr)>,
        aggs: Vec<Aggregate>,
    ) -> Result<HashAggregate> {
        let mut fields = Vec::with_capacity(group_by.len() + aggs.len());
        for (name, e) in &group_by {
            fields.push(Field::new(name, e.data_type(&input)?, true));
        }
        let mut states = Vec::with_capacity(aggs.len());
        for a in &aggs {
            let t = a.output_type(&input)?;
            let nullable = !matches!(
                a.func,
                AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct
            );
            fields.push(Field::new(&a.name, t, nullable));
            let input_type = a.expr.as_ref().map(|e| e.data_type(&input)).transpose()?;
            states.push(State::new(a.func, input_type));
        }
        let output = Arc::new(Schema::new(fields)?);
        let mut h = HashAggregate {
            input,
            group_by,
            aggs,
            output,
            groups: GroupMap::default(),
            keys: Vec::new(),
            states,
            key_buf: Vec::new(),
        };
        if h.group_by.is_empty() {
            h.groups.insert(&[], 0);
            h.keys.push(Vec::new());
            h.states.iter_mut().for_each(|s| s.grow(1));
        }
        Ok(h)
    }

    /// The output schema: the group-by columns, then the aggregates.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.output
    }

    /// Adds the (selected) rows of a batch.
    pub fn push(&mut self, batch: &Batch) -> Result<()> {
        if batch.schema().as_ref() != self.input.as_ref() {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "aggregating batches of {} with an aggregation over {}",
                    batch.schema(),
                    self.input
                ),
            });
        }
        if self.group_by.is_empty() {
            // One group: whole-column kernels, no per-row group ids.
            for (a, state) in self.aggs.iter().zip(&mut self.states) {
                let col = match &a.expr {
                    Some(e) => Some(e.eval_cow(batch)?),
                    None => None,
                };
                if !update_single(state, col.as_deref(), batch) {
                    let rows = selected_rows(batch);
                    update(state, a.func, col.as_deref(), &rows, &vec![0; rows.len()]);
                }
            }
            return Ok(());
        }
        let rows = selected_rows(batch);
        let gids = self.group_ids(batch, &rows)?;
        let groups = self.keys.len();
        for (a, state) in self.aggs.iter().zip(&mut self.states) {
            state.grow(groups);
            let col = match &a.expr {
                Some(e) => Some(e.eval_cow(batch)?),
                None => None,
            };
            update(state, a.func, col.as_deref(), &rows, &gids);
        }
        Ok(())
    }

    /// For an aggregation without `GROUP BY`: the aggregates (by index) whose input is a
    /// bare column of `i64` storage (integers, decimals, timestamps) or none (`COUNT(*)`),
    /// and that sum or count — the ones [`add_partial`](Self::add_partial) can take from a
    /// segment's encoded chunks without decoding them. `None` when any other aggregate is
    /// present.
    pub(crate) fn encoded_inputs(&self) -> Option<Vec<Option<usize>>> {
        if !self.group_by.is_empty() {
            return None;
        }
        self.aggs
            .iter()
            .map(|a| match (&a.func, &a.expr) {
                (AggFunc::CountStar, _) => Some(None),
                (AggFunc::Count | AggFunc::Sum | AggFunc::Avg, Some(Expr::Column(name))) => {
                    let i = self.input.index_of(name).ok()?;
                    let t = self.input.fields().get(i)?.data_type();
                    (t.physical() == Physical::I64).then_some(Some(i))
                }
                _ => None,
            })
            .collect()
    }

    /// Adds to aggregate `agg` (one of [`encoded_inputs`](Self::encoded_inputs)') the sum
    /// and count of `rows` non-null input values (for `COUNT(*)`, `rows` rows).
    pub(crate) fn add_partial(&mut self, agg: usize, sum: i128, rows: usize) {
        let n = i64::try_from(rows).unwrap_or(i64::MAX);
        // The single group of an aggregation without GROUP BY (the only kind `encoded_inputs`
        // accepts): the first of each state's vectors.
        match self.states.get_mut(agg) {
            Some(State::Count(v)) => {
                if let Some(c) = v.first_mut() {
                    *c += n;
                }
            }
            Some(State::SumInt(s, seen)) => {
                if let (Some(s), Some(seen)) = (s.first_mut(), seen.first_mut()) {
                    *s += sum;
                    *seen |= rows > 0;
                }
            }
            Some(State::AvgInt(s, counts, _)) => {
                if let (Some(s), Some(c)) = (s.first_mut(), counts.first_mut()) {
                    *s += sum;
                    *c += n;
                }
            }
            _ => {}
        }
    }

    fn group_ids(&mut self, batch: &Batch, rows: &[usize]) -> Result<Vec<u32>> {
        if self.group_by.is_empty() {
            return Ok(vec![0; rows.len()]);
        }
        let cols = self
            .group_by
            .iter()
            .map(|(_, e)| e.eval_cow(batch))
            .collect::<Result<Vec<_>>>()?;
        let mut gids = Vec::with_capacity(rows.len());
        for &r in rows {
            self.key_buf.clear();
            for c in &cols {
                key_bytes(c, r, &mut self.key_buf);
            }
            let id = if let Some(id) = self.groups.get(&self.key_buf) {
                id
            } else {
                let id = u32::try_from(self.keys.len()).map_err(|_| Error::InvalidArgument {
                    reason: "more than 2^32 groups".into(),
                })?;
                self.groups.insert(&self.key_buf, id);
                self.keys.push(cols.iter().map(|c| c.value(r)).collect());
                id
            };
            gids.push(id);
        }
        Ok(gids)
    }

    /// Folds another aggregation of the same query (another thread's) into this one.
    pub fn merge(&mut self, other: HashAggregate) -> Result<()> {
        if other.output != self.output || other.group_by != self.group_by {
            return Err(Error::InvalidArgument {
                reason: "merging aggregations of different queries".into(),
            });
        }
        // Map other's group ids to ours.
        let mut by_id: Vec<Option<Vec<u8>>> = vec![None; other.keys.len()];
        for (k, id) in other.groups.into_entries() {
            // INVARIANT: group ids are `0..keys.len()`: each is given as `keys.len()` just
            // before its key is pushed (`new`, `group_ids`, `merge`), and keys never shrink.
            by_id[id as usize] = Some(k);
        }
        let mut map = Vec::with_capacity(by_id.len());
        for (k, key) in by_id.into_iter().zip(other.keys) {
            let k = k.unwrap_or_default();
            let id = if let Some(id) = self.groups.get(&k) {
                id
            } else {
                let id = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                self.groups.insert(&k, id);
                self.keys.push(key);
                id
            };
            map.push(id as usize);
        }
        let groups = self.keys.len();
        for ((mine, theirs), a) in self.states.iter_mut().zip(other.states).zip(&self.aggs) {
            mine.grow(groups);
            merge_state(a.func, mine, theirs, &map);
        }
        Ok(())
    }

    /// The result: one row per group.
    pub fn finish(self) -> Result<Batch> {
        let mut columns = Vec::with_capacity(self.output.len());
        // The output's fields: one per group-by expression, then one per aggregate.
        let (key_fields, agg_fields) = self
            .output
            .fields()
            .split_at_checked(self.group_by.len())
            .unwrap_or_default();
        for (i, f) in key_fields.iter().enumerate() {
            // INVARIANT: every key holds one value per group-by expression (`group_ids`
            // builds them so; `merge` takes keys only from an equal `group_by`), and
            // `i < group_by.len()`.
            let vals: Vec<Scalar> = self.keys.iter().map(|k| k[i].clone()).collect();
            columns.push(Column::from_scalars(f.data_type(), &vals)?);
        }
        for ((a, state), f) in self.aggs.iter().zip(self.states).zip(agg_fields) {
            columns.push(finish_state(a, state, f.data_type())?);
        }
        Batch::new(self.output, columns)
    }
}

/// Appends a value's group-key bytes: a validity byte, then a fixed width or a
/// length-prefixed string (equal values give equal bytes; `-0.0` and NaNs canonical).
#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "callers pass a row `r < c.len()`: a row of the batch `c` was evaluated on (its
              selection, checked below its rows by `with_selection`, or `0..physical_rows`;
              an evaluated column has one value per physical row), or a join's build row,
              below the build rows the appended key columns also have; a string column's
              `offsets` has `len() + 1` entries that never decrease and end at `data.len()`"
)]
pub(crate) fn key_bytes(c: &Column, r: usize, out: &mut Vec<u8>) {
    if !c.is_valid(r) {
        out.push(0);
        return;
    }
    out.push(1);
    match c.data() {
        Data::Bool(v) => out.push(u8::from(v[r])),
        Data::I32(v) => out.extend_from_slice(&v[r].to_le_bytes()),
        Data::I64(v) => out.extend_from_slice(&v[r].to_le_bytes()),
        Data::F64(v) => {
            out.extend_from_slice(&crate::segment::canonical_f64_bits(v[r]).to_le_bytes());
        }
        Data::Bytes { data, offsets } => {
            let s = &data[offsets[r]..offsets[r + 1]];
            // The length as a LEB128 varint (one byte below 128): prefix-free, and short
            // keys stay short enough to be packed (see `GroupMap`).
            let mut len = s.len();
            while len >= 0x80 {
                out.push(u8::try_from(len & 0x7f).unwrap_or(0) | 0x80);
                len >>= 7;
            }
            out.push(u8::try_from(len).unwrap_or(0));
            out.extend_from_slice(s);
        }
    }
}

fn better(func: AggFunc, o: std::cmp::Ordering) -> bool {
    if func == AggFunc::Min {
        o.is_lt()
    } else {
        o.is_gt()
    }
}

/// The batch's rows: its selection, or every row.
fn selected_rows(batch: &Batch) -> Vec<usize> {
    match batch.selection() {
        Some(s) => s.iter().map(|r| *r as usize).collect(),
        None => (0..batch.physical_rows()).collect(),
    }
}

/// The exact sum of `values`, vectorised: each value splits into its high 32 bits (signed)
/// and its low 32 bits (unsigned), summed apart in 64-bit lanes that cannot overflow within
/// a run of 2^20 values, then combined in 128 bits.
pub(crate) fn sum_i64(values: impl Iterator<Item = i64>) -> i128 {
    const RUN: usize = 1 << 20;
    let mut total = 0i128;
    let (mut lo, mut hi, mut n) = (0u64, 0i64, 0usize);
    for x in values {
        lo += x.cast_unsigned() & 0xffff_ffff;
        hi += x >> 32;
        n += 1;
        if n == RUN {
            total += (i128::from(hi) << 32) + i128::from(lo);
            (lo, hi, n) = (0, 0, 0);
        }
    }
    total + (i128::from(hi) << 32) + i128::from(lo)
}

/// The exact sum of `ints`, or of the rows `sel` picks.
fn sum_selected(ints: &[i64], sel: Option<&[u32]>) -> i128 {
    match sel {
        None => sum_i64(ints.iter().copied()),
        Some(sel) => sum_i64(sel.iter().filter_map(|&r| ints.get(r as usize).copied())),
    }
}

/// [`update`] for the single group of an aggregation without `GROUP BY`, over the whole
/// batch at once; `false` when the state or the column is not one of the kernels' (the
/// caller then takes the row-at-a-time path).
#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "index 0 of a state's vectors: called only for an aggregation without GROUP BY,
              whose states `HashAggregate::new` grew to one group (and `merge` only grows)"
)]
fn update_single(state: &mut State, col: Option<&Column>, batch: &Batch) -> bool {
    let sel = batch.selection();
    let n = i64::try_from(batch.num_rows()).unwrap_or(i64::MAX);
    match (state, col) {
        (State::Count(v), None) => v[0] += n,
        (State::Count(v), Some(c)) if c.validity().is_none() => v[0] += n,
        (State::SumInt(s, seen), Some(c)) if c.validity().is_none() => {
            let Some(ints) = c.i64s() else { return false };
            s[0] += sum_selected(ints, sel);
            seen[0] |= n > 0;
        }
        (State::AvgInt(s, counts, _), Some(c)) if c.validity().is_none() => {
            let Some(ints) = c.i64s() else { return false };
            s[0] += sum_selected(ints, sel);
            counts[0] += n;
        }
        _ => return false,
    }
    true
}

#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "each `r` is a row of the batch `col` was evaluated on (below its length, as in
              `key_bytes`; `ints_of` keeps the length), each `g` a group id below
              `keys.len()`, the length `push` grew every state to just before"
)]
fn update(state: &mut State, func: AggFunc, col: Option<&Column>, rows: &[usize], gids: &[u32]) {
    let valid = |r: usize| col.is_none_or(|c| c.is_valid(r));
    let pairs = rows.iter().zip(gids).map(|(r, g)| (*r, *g as usize));
    match state {
        State::Count(v) => {
            for (r, g) in pairs {
                v[g] += i64::from(valid(r));
            }
        }
        State::SumInt(s, seen) => {
            let Some(c) = col else { return };
            let ints = ints_of(c);
            for (r, g) in pairs {
                if c.is_valid(r) {
                    s[g] += i128::from(ints[r]);
                    seen[g] = true;
                }
            }
        }
        State::AvgInt(s, counts, _) => {
            let Some(c) = col else { return };
            let ints = ints_of(c);
            for (r, g) in pairs {
                if c.is_valid(r) {
                    s[g] += i128::from(ints[r]);
                    counts[g] += 1;
                }
            }
        }
        State::SumF64(s, seen) => {
            let Some(v) = col.and_then(Column::f64s) else {
                return;
            };
            for (r, g) in pairs {
                if valid(r) {
                    s[g] += v[r];
                    seen[g] = true;
                }
            }
        }
        State::AvgF64(s, c) => {
            let Some(v) = col.and_then(Column::f64s) else {
                return;
            };
            for (r, g) in pairs {
                if valid(r) {
                    s[g] += v[r];
                    c[g] += 1;
                }
            }
        }
        State::BestI64(b) => {
            let Some(v) = col.and_then(Column::i64s) else {
                return;
            };
            for (r, g) in pairs {
                if valid(r) && b[g].is_none_or(|cur| better(func, v[r].cmp(&cur))) {
                    b[g] = Some(v[r]);
                }
            }
        }
        State::BestF64(b) => {
            let Some(v) = col.and_then(Column::f64s) else {
                return;
            };
            for (r, g) in pairs {
                if valid(r) && b[g].is_none_or(|cur| better(func, f64_cmp(v[r], cur))) {
                    b[g] = Some(v[r]);
                }
            }
        }
        State::Best(b) => {
            let Some(c) = col else { return };
            for (r, g) in pairs {
                if valid(r) {
                    let v = c.value(r);
                    if b[g]
                        .as_ref()
                        .is_none_or(|cur| better(func, v.total_cmp(cur)))
                    {
                        b[g] = Some(v);
                    }
                }
            }
        }
        State::Distinct(sets) => {
            let Some(c) = col else { return };
            let mut buf = Vec::new();
            for (r, g) in pairs {
                if valid(r) {
                    buf.clear();
                    key_bytes(c, r, &mut buf);
                    if !sets[g].contains(&buf) {
                        sets[g].insert(buf.clone());
                    }
                }
            }
        }
    }
}

/// The values of an integer or decimal column as `i64`s.
fn ints_of(c: &Column) -> std::borrow::Cow<'_, [i64]> {
    match c.data() {
        Data::I32(v) => v.iter().map(|x| i64::from(*x)).collect(),
        Data::I64(v) => std::borrow::Cow::Borrowed(v.as_slice()),
        _ => vec![0; c.len()].into(),
    }
}

#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "`i` indexes `theirs`, whose vectors have one common length of at most
              `other.keys.len() == map.len()` (states grow to the key count, never past it);
              `map` at `i` is one of our group ids, below the length `merge` grew `mine` to"
)]
fn merge_state(func: AggFunc, mine: &mut State, theirs: State, map: &[usize]) {
    match (mine, theirs) {
        (State::Count(a), State::Count(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]] += v;
            }
        }
        (State::SumInt(a, sa), State::SumInt(b, sb)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]] += v;
                sa[map[i]] |= sb[i];
            }
        }
        (State::SumF64(a, sa), State::SumF64(b, sb)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]] += v;
                sa[map[i]] |= sb[i];
            }
        }
        (State::AvgInt(a, ca, _), State::AvgInt(b, cb, _)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]] += v;
                ca[map[i]] += cb[i];
            }
        }
        (State::AvgF64(a, ca), State::AvgF64(b, cb)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]] += v;
                ca[map[i]] += cb[i];
            }
        }
        (State::Distinct(a), State::Distinct(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                a[map[i]].extend(v);
            }
        }
        (State::BestI64(a), State::BestI64(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                let g = map[i];
                if let Some(v) = v
                    && a[g].is_none_or(|cur| better(func, v.cmp(&cur)))
                {
                    a[g] = Some(v);
                }
            }
        }
        (State::BestF64(a), State::BestF64(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                let g = map[i];
                if let Some(v) = v
                    && a[g].is_none_or(|cur| better(func, f64_cmp(v, cur)))
                {
                    a[g] = Some(v);
                }
            }
        }
        (State::Best(a), State::Best(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                let g = map[i];
                if let Some(v) = v
                    && a[g]
                        .as_ref()
                        .is_none_or(|cur| better(func, v.total_cmp(cur)))
                {
                    a[g] = Some(v);
                }
            }
        }
        _ => {}
    }
}

fn finish_state(a: &Aggregate, state: State, t: DataType) -> Result<Column> {
    let overflow = || Error::Overflow {
        expr: a.name.clone(),
        result: t.to_string(),
    };
    Ok(match state {
        State::Count(v) => Column::from_i64(DataType::Int64, v, None)?,
        State::Distinct(sets) => Column::from_i64(
            DataType::Int64,
            sets.iter()
                .map(|s| i64::try_from(s.len()).unwrap_or(i64::MAX))
                .collect(),
            None,
        )?,
        State::SumInt(sums, seen) => {
            let mut out = Vec::with_capacity(sums.len());
            for (s, ok) in sums.iter().zip(&seen) {
                let v = if *ok {
                    i64::try_from(*s).map_err(|_| overflow())?
                } else {
                    0
                };
                if matches!(t, DataType::Decimal { .. }) && v.unsigned_abs() >= 10u64.pow(18) {
                    return Err(overflow());
                }
                out.push(v);
            }
            Column::from_i64(t, out, Some(crate::Bitmap::from_bools(&seen)))?
        }
        State::SumF64(sums, seen) => {
            Column::from_f64(sums, Some(crate::Bitmap::from_bools(&seen)))?
        }
        State::AvgInt(sums, counts, scale) => avg_column(&sums, &counts, scale)?,
        State::AvgF64(sums, counts) => {
            #[expect(clippy::cast_precision_loss, reason = "an average is a double")]
            let v = sums
                .iter()
                .zip(&counts)
                .map(|(s, c)| if *c > 0 { s / *c as f64 } else { 0.0 })
                .collect();
            let valid: Vec<bool> = counts.iter().map(|c| *c > 0).collect();
            Column::from_f64(v, Some(crate::Bitmap::from_bools(&valid)))?
        }
        State::BestI64(b) => {
            let valid: Vec<bool> = b.iter().map(Option::is_some).collect();
            Column::from_i64(
                t,
                b.into_iter().map(Option::unwrap_or_default).collect(),
                Some(crate::Bitmap::from_bools(&valid)),
            )?
        }
        State::BestF64(b) => {
            let valid: Vec<bool> = b.iter().map(Option::is_some).collect();
            Column::from_f64(
                b.into_iter().map(Option::unwrap_or_default).collect(),
                Some(crate::Bitmap::from_bools(&valid)),
            )?
        }
        State::Best(b) => {
            let mut builder = ColumnBuilder::new(t, b.len());
            for v in b {
                builder.push(&v.unwrap_or(Scalar::Null))?;
            }
            builder.finish()
        }
    })
}

fn avg_column(sums: &[i128], counts: &[i64], scale: u8) -> Result<Column> {
    let p = 10f64.powi(i32::from(scale));
    #[expect(clippy::cast_precision_loss, reason = "an average is a double")]
    let v = sums
        .iter()
        .zip(counts)
        .map(|(s, c)| {
            if *c > 0 {
                *s as f64 / *c as f64 / p
            } else {
                0.0
            }
        })
        .collect();
    let valid: Vec<bool> = counts.iter().map(|c| *c > 0).collect();
    Column::from_f64(v, Some(crate::Bitmap::from_bools(&valid)))
}
