//! Typed column vectors with validity bitmaps.

use crate::bitmap::Bitmap;
use crate::types::{DataType, Physical, Scalar};
use crate::{Error, Result};

/// The values of a column, by physical representation. Null slots hold unspecified values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    /// String `i` is `data[offsets[i]..offsets[i + 1]]`; `offsets.len() == len + 1`.
    Bytes {
        data: Vec<u8>,
        offsets: Vec<usize>,
    },
}

impl Data {
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::Bytes { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    fn empty(p: Physical, cap: usize) -> Data {
        match p {
            Physical::Bool => Data::Bool(Vec::with_capacity(cap)),
            Physical::I32 => Data::I32(Vec::with_capacity(cap)),
            Physical::I64 => Data::I64(Vec::with_capacity(cap)),
            Physical::F64 => Data::F64(Vec::with_capacity(cap)),
            Physical::Bytes => {
                let mut offsets = Vec::with_capacity(cap + 1);
                offsets.push(0);
                Data::Bytes {
                    data: Vec::new(),
                    offsets,
                }
            }
        }
    }

    fn defaults(p: Physical, len: usize) -> Data {
        match p {
            Physical::Bool => Data::Bool(vec![false; len]),
            Physical::I32 => Data::I32(vec![0; len]),
            Physical::I64 => Data::I64(vec![0; len]),
            Physical::F64 => Data::F64(vec![0.0; len]),
            Physical::Bytes => Data::Bytes {
                data: Vec::new(),
                offsets: vec![0; len + 1],
            },
        }
    }
}

/// A column vector: values of one type and, when some are null, a validity bitmap
/// (bit set = a value). The values in null slots are unspecified.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    data_type: DataType,
    data: Data,
    validity: Option<Bitmap>,
}

fn mismatch(dt: DataType, what: &str) -> Error {
    Error::SchemaMismatch {
        reason: format!("a {dt} column cannot be built from {what}"),
    }
}

impl Column {
    pub(crate) fn from_parts(
        data_type: DataType,
        data: Data,
        validity: Option<Bitmap>,
    ) -> Result<Column> {
        let len = data.len();
        let ok = matches!(
            (data_type.physical(), &data),
            (Physical::Bool, Data::Bool(_))
                | (Physical::I32, Data::I32(_))
                | (Physical::I64, Data::I64(_))
                | (Physical::F64, Data::F64(_))
                | (Physical::Bytes, Data::Bytes { .. })
        );
        if !ok {
            return Err(mismatch(data_type, "values of another type"));
        }
        if let Some(v) = &validity
            && v.len() != len
        {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "validity has {} bits for {len} values; give one bit per value",
                    v.len()
                ),
            });
        }
        if let Data::Bytes { data, offsets } = &data {
            if offsets.first() != Some(&0)
                || !offsets.is_sorted()
                || offsets.last().copied() != Some(data.len())
            {
                return Err(Error::SchemaMismatch {
                    reason:
                        "string offsets must start at 0, never decrease and end at the data length"
                            .into(),
                });
            }
            if data_type == DataType::Utf8
                && offsets
                    .windows(2)
                    // INVARIANT: a window of 2 has two elements, and the offsets were just
                    // checked to never decrease and to end at `data.len()`.
                    .any(|w| std::str::from_utf8(&data[w[0]..w[1]]).is_err())
            {
                return Err(Error::SchemaMismatch {
                    reason: "a utf8 column holds bytes that are not UTF-8; use binary".into(),
                });
            }
        }
        Ok(Column {
            data_type,
            data,
            validity: validity.filter(|v| !v.all()),
        })
    }

    /// The type, the values and the validity, moved out.
    #[cfg(feature = "arrow")]
    pub(crate) fn into_parts(self) -> (DataType, Data, Option<Bitmap>) {
        (self.data_type, self.data, self.validity)
    }

    /// A column of booleans.
    pub fn from_bools(values: Vec<bool>, validity: Option<Bitmap>) -> Result<Column> {
        Column::from_parts(DataType::Bool, Data::Bool(values), validity)
    }

    /// A column of `i32`-backed values (`Int32`, `Date32`).
    pub fn from_i32(
        data_type: DataType,
        values: Vec<i32>,
        validity: Option<Bitmap>,
    ) -> Result<Column> {
        Column::from_parts(data_type, Data::I32(values), validity)
    }

    /// A column of `i64`-backed values (`Int64`, `Decimal` as scaled integers, `Timestamp`).
    pub fn from_i64(
        data_type: DataType,
        values: Vec<i64>,
        validity: Option<Bitmap>,
    ) -> Result<Column> {
        Column::from_parts(data_type, Data::I64(values), validity)
    }

    /// A column of doubles.
    pub fn from_f64(values: Vec<f64>, validity: Option<Bitmap>) -> Result<Column> {
        Column::from_parts(DataType::Float64, Data::F64(values), validity)
    }

    /// A column of strings (`Utf8`: each must be UTF-8) or byte strings (`Binary`).
    pub fn from_strings<S: AsRef<[u8]>>(
        data_type: DataType,
        values: &[S],
        validity: Option<Bitmap>,
    ) -> Result<Column> {
        let mut data = Vec::new();
        let mut offsets = Vec::with_capacity(values.len() + 1);
        offsets.push(0);
        for s in values {
            data.extend_from_slice(s.as_ref());
            offsets.push(data.len());
        }
        Column::from_parts(data_type, Data::Bytes { data, offsets }, validity)
    }

    /// `len` nulls.
    pub fn nulls(data_type: DataType, len: usize) -> Column {
        Column {
            data_type,
            data: Data::defaults(data_type.physical(), len),
            validity: (len > 0).then(|| Bitmap::new(len, false)),
        }
    }

    /// A column from scalars of `data_type` or null.
    pub fn from_scalars(data_type: DataType, values: &[Scalar]) -> Result<Column> {
        let mut b = ColumnBuilder::new(data_type, values.len());
        for v in values {
            b.push(v)?;
        }
        Ok(b.finish())
    }

    /// A column of `len` copies of `value` (null when `value` is null).
    pub fn repeat(data_type: DataType, value: &Scalar, len: usize) -> Result<Column> {
        if value.is_null() {
            return Ok(Column::nulls(data_type, len));
        }
        let mut one = ColumnBuilder::new(data_type, 1);
        one.push(value)?;
        let one = one.finish();
        Ok(one.gather(&vec![0; len]))
    }

    /// The type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// Number of values (nulls included).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The validity bitmap; `None` when no value is null.
    pub fn validity(&self) -> Option<&Bitmap> {
        self.validity.as_ref()
    }

    /// Whether value `i` is present (not null).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v.get(i))
    }

    /// Number of nulls.
    pub fn null_count(&self) -> usize {
        self.validity
            .as_ref()
            .map_or(0, |v| v.len() - v.count_ones())
    }

    pub(crate) fn data(&self) -> &Data {
        &self.data
    }

    /// The booleans of a `Bool` column.
    pub fn bools(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The values of an `i32`-backed column (`Int32`, `Date32`).
    pub fn i32s(&self) -> Option<&[i32]> {
        match &self.data {
            Data::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The values of an `i64`-backed column (`Int64`, `Decimal`, `Timestamp`).
    pub fn i64s(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The values of a `Float64` column.
    pub fn f64s(&self) -> Option<&[f64]> {
        match &self.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }

    /// String `i` of a `Utf8` or `Binary` column.
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        match &self.data {
            Data::Bytes { data, offsets } => {
                let (s, e) = (*offsets.get(i)?, *offsets.get(i + 1)?);
                data.get(s..e)
            }
            _ => None,
        }
    }

    /// Value `i` as a scalar (null for a null slot or past the end).
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`i < self.len()` is checked first; a string column's `offsets` has
                  `len() + 1` entries that never decrease and end at `data.len()` (checked by
                  `from_parts`, kept by every other constructor)"
    )]
    pub fn value(&self, i: usize) -> Scalar {
        if i >= self.len() || !self.is_valid(i) {
            return Scalar::Null;
        }
        match (&self.data, self.data_type) {
            (Data::Bool(v), _) => Scalar::Bool(v[i]),
            (Data::I32(v), DataType::Date32) => Scalar::Date32(v[i]),
            (Data::I32(v), _) => Scalar::Int32(v[i]),
            (Data::I64(v), DataType::Decimal { precision, scale }) => Scalar::Decimal {
                value: v[i],
                precision,
                scale,
            },
            (Data::I64(v), DataType::Timestamp) => Scalar::Timestamp(v[i]),
            (Data::I64(v), _) => Scalar::Int64(v[i]),
            (Data::F64(v), _) => Scalar::Float64(v[i]),
            (Data::Bytes { data, offsets }, dt) => {
                let b = &data[offsets[i]..offsets[i + 1]];
                if dt == DataType::Utf8 {
                    Scalar::Utf8(String::from_utf8_lossy(b).into_owned())
                } else {
                    Scalar::Binary(b.to_vec())
                }
            }
        }
    }

    /// The values at `indices`, in order; an index past the end gives a null.
    #[must_use]
    pub fn gather(&self, indices: &[u32]) -> Column {
        let mut in_range = true;
        let data = match &self.data {
            Data::Bool(v) => Data::Bool(gather_values(v, indices, &mut in_range)),
            Data::I32(v) => Data::I32(gather_values(v, indices, &mut in_range)),
            Data::I64(v) => Data::I64(gather_values(v, indices, &mut in_range)),
            Data::F64(v) => Data::F64(gather_values(v, indices, &mut in_range)),
            Data::Bytes { data, offsets } => {
                let mut out = Vec::new();
                let mut offs = Vec::with_capacity(indices.len() + 1);
                offs.push(0);
                for i in indices {
                    let i = *i as usize;
                    match offsets
                        .get(i)
                        .zip(offsets.get(i + 1))
                        .and_then(|(s, e)| data.get(*s..*e))
                    {
                        Some(b) => out.extend_from_slice(b),
                        None => in_range = false,
                    }
                    offs.push(out.len());
                }
                Data::Bytes {
                    data: out,
                    offsets: offs,
                }
            }
        };
        let len = self.len();
        let validity = match &self.validity {
            // `Bitmap::gather` gives 0 past the bitmap's end, which is the column's.
            Some(v) => Some(v.gather(indices)),
            None if in_range => None,
            None => Some(Bitmap::from_fn(indices.len(), |k| {
                indices.get(k).is_some_and(|i| (*i as usize) < len)
            })),
        };
        Column {
            data_type: self.data_type,
            data,
            validity: validity.filter(|v| !v.all()),
        }
    }

    /// Values `start..start + len` (clipped to the column).
    #[must_use]
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`start <= end <= self.len()` by the clipping at the top; a string column's
                  `offsets` has `len() + 1` entries that never decrease and end at
                  `data.len()` (checked by `from_parts`, kept by every other constructor)"
    )]
    pub fn slice(&self, start: usize, len: usize) -> Column {
        let start = start.min(self.len());
        let end = start.saturating_add(len).min(self.len());
        let data = match &self.data {
            Data::Bool(v) => Data::Bool(v[start..end].to_vec()),
            Data::I32(v) => Data::I32(v[start..end].to_vec()),
            Data::I64(v) => Data::I64(v[start..end].to_vec()),
            Data::F64(v) => Data::F64(v[start..end].to_vec()),
            Data::Bytes { data, offsets } => {
                let base = offsets[start];
                Data::Bytes {
                    data: data[base..offsets[end]].to_vec(),
                    offsets: offsets[start..=end].iter().map(|o| o - base).collect(),
                }
            }
        };
        Column {
            data_type: self.data_type,
            data,
            validity: self
                .validity
                .as_ref()
                .map(|v| v.slice(start, end - start))
                .filter(|v| !v.all()),
        }
    }

    /// Appends `other`'s values (same type).
    pub fn append(&mut self, other: &Column) -> Result<()> {
        if other.data_type != self.data_type {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "cannot append a {} column to a {} column",
                    other.data_type, self.data_type
                ),
            });
        }
        let before = self.len();
        match (&mut self.data, &other.data) {
            (Data::Bool(a), Data::Bool(b)) => a.extend_from_slice(b),
            (Data::I32(a), Data::I32(b)) => a.extend_from_slice(b),
            (Data::I64(a), Data::I64(b)) => a.extend_from_slice(b),
            (Data::F64(a), Data::F64(b)) => a.extend_from_slice(b),
            (
                Data::Bytes { data, offsets },
                Data::Bytes {
                    data: d2,
                    offsets: o2,
                },
            ) => {
                let base = data.len();
                data.extend_from_slice(d2);
                offsets.extend(o2.iter().skip(1).map(|o| o + base));
            }
            _ => return Err(mismatch(self.data_type, "values of another type")),
        }
        match (&mut self.validity, &other.validity) {
            (None, None) => {}
            (Some(a), None) => a.extend(&Bitmap::new(other.len(), true)),
            (mine, theirs) => {
                let mut v = mine.take().unwrap_or_else(|| Bitmap::new(before, true));
                v.extend(theirs.as_ref().unwrap_or(&Bitmap::new(other.len(), true)));
                *mine = Some(v);
            }
        }
        Ok(())
    }

    /// The same values with `validity` (`None`: no nulls), checked for length.
    pub fn with_validity(self, validity: Option<Bitmap>) -> Result<Column> {
        Column::from_parts(self.data_type, self.data, validity)
    }
}

/// The values at `indices`; the default value for an index past the end, which also clears
/// `in_range`.
fn gather_values<T: Copy + Default>(values: &[T], indices: &[u32], in_range: &mut bool) -> Vec<T> {
    indices
        .iter()
        .map(|i| {
            values.get(*i as usize).copied().unwrap_or_else(|| {
                *in_range = false;
                T::default()
            })
        })
        .collect()
}

/// Builds a column value by value.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    data_type: DataType,
    data: Data,
    validity: Bitmap,
}

impl ColumnBuilder {
    pub(crate) fn new(data_type: DataType, cap: usize) -> ColumnBuilder {
        ColumnBuilder {
            data_type,
            data: Data::empty(data_type.physical(), cap),
            validity: Bitmap::default(),
        }
    }

    /// Appends a value of the builder's type, or null.
    pub(crate) fn push(&mut self, v: &Scalar) -> Result<()> {
        let dt = self.data_type;
        let valid = !v.is_null();
        match (&mut self.data, v) {
            (Data::Bool(d), Scalar::Null) => d.push(false),
            (Data::I32(d), Scalar::Null) => d.push(0),
            (Data::I64(d), Scalar::Null) => d.push(0),
            (Data::F64(d), Scalar::Null) => d.push(0.0),
            (Data::Bytes { offsets, .. }, Scalar::Null) => {
                offsets.push(offsets.last().copied().unwrap_or(0));
            }
            (Data::Bool(d), Scalar::Bool(b)) => d.push(*b),
            (Data::I32(d), Scalar::Int32(x)) if dt == DataType::Int32 => d.push(*x),
            (Data::I32(d), Scalar::Date32(x)) if dt == DataType::Date32 => d.push(*x),
            (Data::I64(d), Scalar::Int64(x)) if dt == DataType::Int64 => d.push(*x),
            (Data::I64(d), Scalar::Timestamp(x)) if dt == DataType::Timestamp => d.push(*x),
            (Data::I64(d), Scalar::Decimal { value, scale, .. }) if dt.scale() == *scale => {
                if !matches!(dt, DataType::Decimal { .. }) {
                    return Err(mismatch(dt, "a decimal"));
                }
                d.push(*value);
            }
            (Data::F64(d), Scalar::Float64(x)) => d.push(*x),
            (Data::Bytes { data, offsets }, Scalar::Utf8(s)) if dt == DataType::Utf8 => {
                data.extend_from_slice(s.as_bytes());
                offsets.push(data.len());
            }
            (Data::Bytes { data, offsets }, Scalar::Binary(s)) if dt == DataType::Binary => {
                data.extend_from_slice(s);
                offsets.push(data.len());
            }
            (_, other) => {
                return Err(mismatch(
                    dt,
                    &format!(
                        "a {}",
                        other.data_type().map_or("null".into(), |t| t.to_string())
                    ),
                ));
            }
        }
        self.validity.push(valid);
        Ok(())
    }

    pub(crate) fn finish(self) -> Column {
        Column {
            data_type: self.data_type,
            data: self.data,
            validity: Some(self.validity).filter(|v| !v.all()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_slice_gather_append() {
        let vals = [
            Scalar::Utf8("a".into()),
            Scalar::Null,
            Scalar::Utf8("ccc".into()),
        ];
        let col = Column::from_scalars(DataType::Utf8, &vals).unwrap();
        assert_eq!(col.len(), 3);
        assert_eq!(col.null_count(), 1);
        assert_eq!((0..3).map(|i| col.value(i)).collect::<Vec<_>>(), vals);
        let sliced = col.slice(1, 5);
        assert_eq!(sliced.value(1), vals[2]);
        let gathered = col.gather(&[2, 2, 0]);
        assert_eq!(gathered.value(0), vals[2]);
        assert!(gathered.validity().is_none());
        let mut appended = gathered.clone();
        appended.append(&col).unwrap();
        assert_eq!(appended.len(), 6);
        assert_eq!(appended.value(4), Scalar::Null);
        assert_eq!(appended.value(5), vals[2]);
        assert!(Column::from_scalars(DataType::Int32, &[Scalar::Int64(1)]).is_err());
        assert!(Column::from_strings(DataType::Utf8, &[[0xffu8]], None).is_err());
        let d = DataType::decimal(5, 2).unwrap();
        let r = Column::repeat(d, &Scalar::decimal(150, 5, 2).unwrap(), 3).unwrap();
        assert_eq!(r.i64s().unwrap(), &[150, 150, 150]);
        assert_eq!(Column::nulls(d, 2).null_count(), 2);
    }

    #[test]
    fn gather_past_the_end_gives_nulls() {
        let ints = Column::from_i64(DataType::Int64, vec![7, 8], None).unwrap();
        let g = ints.gather(&[1, 2, u32::MAX, 0]);
        assert_eq!(
            (0..4).map(|i| g.value(i)).collect::<Vec<_>>(),
            [
                Scalar::Int64(8),
                Scalar::Null,
                Scalar::Null,
                Scalar::Int64(7)
            ]
        );
        let strs = Column::from_scalars(DataType::Utf8, &[Scalar::Utf8("x".into()), Scalar::Null])
            .unwrap();
        let g = strs.gather(&[5, 0, 1]);
        assert_eq!(
            (0..3).map(|i| g.value(i)).collect::<Vec<_>>(),
            [Scalar::Null, Scalar::Utf8("x".into()), Scalar::Null]
        );
        assert_eq!(g.bytes(0), Some(&[][..]));
        assert!(ints.gather(&[0, 1]).validity().is_none());
    }
}
