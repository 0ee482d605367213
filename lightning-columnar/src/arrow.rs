//! Conversion of [`Batch`]es to and from Arrow [`RecordBatch`]es (feature `arrow`), so
//! results go straight to `DataFusion`, Polars or a Parquet writer, and Arrow data comes in.
//!
//! Fixed-width values move without a copy both ways: an `i32`/`i64`/`f64`/date/timestamp/
//! decimal column's `Vec` becomes the Arrow array's value buffer and back, and a validity
//! bitmap's words become the Arrow null buffer (both are least-significant-bit first). What
//! is copied: booleans (bit-packed in Arrow, one byte each here), string and binary offsets
//! (`usize` here, `i32`/`i64` in Arrow; the bytes themselves move without a copy), a batch
//! with a selection vector (gathered first), and Arrow buffers that are shared, sliced or
//! were not allocated as a `Vec` of their type (then copied, never refused).
//!
//! | Lightning          | Arrow                                          |
//! |--------------------|------------------------------------------------|
//! | bool               | Boolean                                        |
//! | i32 / i64 / f64    | Int32 / Int64 / Float64                        |
//! | decimal(p, s)      | Decimal64(p, s)                                |
//! | utf8 / binary      | Utf8 / Binary (LargeUtf8 / LargeBinary past 2 GiB; both read) |
//! | date32             | Date32                                         |
//! | timestamp          | Timestamp(Microsecond, UTC)                    |

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal64Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, LargeBinaryArray, LargeStringArray, PrimitiveArray,
    RecordBatch, StringArray,
};
use arrow_buffer::{
    ArrowNativeType, BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer,
};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema as ArrowSchema, TimeUnit};

use crate::bitmap::Bitmap;
use crate::column::Data;
use crate::{Batch, Column, DataType, Error, Field, Result, Schema};

/// The time zone Lightning timestamps are in.
const UTC: &str = "UTC";

fn arrow_error(e: &arrow_schema::ArrowError) -> Error {
    Error::SchemaMismatch {
        reason: format!("Arrow refused the conversion: {e}"),
    }
}

/// The Arrow type of a Lightning type (strings and binary with 32-bit offsets).
pub fn arrow_type(t: DataType) -> ArrowType {
    match t {
        DataType::Bool => ArrowType::Boolean,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::Float64 => ArrowType::Float64,
        DataType::Decimal { precision, scale } => {
            ArrowType::Decimal64(precision, i8::try_from(scale).unwrap_or(i8::MAX))
        }
        DataType::Utf8 => ArrowType::Utf8,
        DataType::Binary => ArrowType::Binary,
        DataType::Date32 => ArrowType::Date32,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
    }
}

/// The Lightning type of an Arrow type, or an error naming the column for types it has no
/// counterpart of.
fn lightning_type(column: &str, t: &ArrowType) -> Result<DataType> {
    Ok(match t {
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Decimal64(p, s) => DataType::decimal(
            *p,
            u8::try_from(*s).map_err(|_| Error::SchemaMismatch {
                reason: format!("column {column:?}: decimal scale {s} is negative"),
            })?,
        )?,
        ArrowType::Utf8 | ArrowType::LargeUtf8 => DataType::Utf8,
        ArrowType::Binary | ArrowType::LargeBinary => DataType::Binary,
        ArrowType::Date32 => DataType::Date32,
        ArrowType::Timestamp(TimeUnit::Microsecond, tz)
            if tz.as_deref().is_none_or(|z| z == UTC || z == "+00:00") =>
        {
            DataType::Timestamp
        }
        other => {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "column {column:?}: Arrow type {other} has no Lightning counterpart (cast it to one of bool, int32, int64, float64, decimal64, utf8, binary, date32, timestamp(us, UTC) first)"
                ),
            });
        }
    })
}

/// An Arrow schema for a Lightning one.
pub fn to_arrow_schema(schema: &Schema) -> ArrowSchema {
    ArrowSchema::new(
        schema
            .fields()
            .iter()
            .map(|f| ArrowField::new(f.name(), arrow_type(f.data_type()), f.nullable()))
            .collect::<Vec<_>>(),
    )
}

/// A Lightning schema for an Arrow one.
pub fn from_arrow_schema(schema: &ArrowSchema) -> Result<Schema> {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                Ok(Field::new(
                    f.name(),
                    lightning_type(f.name(), f.data_type())?,
                    f.is_nullable(),
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    )
}

fn nulls(validity: Option<Bitmap>) -> Option<NullBuffer> {
    validity.map(|v| {
        let (words, len) = v.into_words();
        NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(words), 0, len))
    })
}

fn primitive<T>(values: Vec<T::Native>, validity: Option<Bitmap>) -> PrimitiveArray<T>
where
    T: arrow_array::ArrowPrimitiveType,
{
    PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls(validity))
}

/// Offsets as Arrow wants them: `i32` when they fit, else `None` (the large variant).
fn offsets_i32(offsets: &[usize]) -> Option<OffsetBuffer<i32>> {
    let last = *offsets.last()?;
    i32::try_from(last).ok()?;
    let v: Vec<i32> = offsets
        .iter()
        .map(|&o| i32::try_from(o).unwrap_or(i32::MAX))
        .collect();
    Some(OffsetBuffer::new(ScalarBuffer::from(v)))
}

fn offsets_i64(offsets: &[usize]) -> OffsetBuffer<i64> {
    let v: Vec<i64> = offsets
        .iter()
        .map(|&o| i64::try_from(o).unwrap_or(i64::MAX))
        .collect();
    OffsetBuffer::new(ScalarBuffer::from(v))
}

/// An Arrow array holding `column`, moving its buffers (see the module docs).
pub fn column_to_arrow(column: Column) -> Result<ArrayRef> {
    let (data_type, data, validity) = column.into_parts();
    let array: ArrayRef = match (data_type, data) {
        (DataType::Bool, Data::Bool(values)) => {
            let mut bits = arrow_buffer::BooleanBufferBuilder::new(values.len());
            bits.append_slice(&values);
            Arc::new(BooleanArray::new(bits.finish(), nulls(validity)))
        }
        (DataType::Int32, Data::I32(v)) => Arc::new(primitive::<Int32Type>(v, validity)),
        (DataType::Date32, Data::I32(v)) => Arc::new(primitive::<Date32Type>(v, validity)),
        (DataType::Int64, Data::I64(v)) => Arc::new(primitive::<Int64Type>(v, validity)),
        (DataType::Timestamp, Data::I64(v)) => {
            Arc::new(primitive::<TimestampMicrosecondType>(v, validity).with_timezone(UTC))
        }
        (DataType::Decimal { precision, scale }, Data::I64(v)) => Arc::new(
            primitive::<Decimal64Type>(v, validity)
                .with_precision_and_scale(precision, i8::try_from(scale).unwrap_or(i8::MAX))
                .map_err(|e| arrow_error(&e))?,
        ),
        (DataType::Float64, Data::F64(v)) => Arc::new(primitive::<Float64Type>(v, validity)),
        (t @ (DataType::Utf8 | DataType::Binary), Data::Bytes { data, offsets }) => {
            let values = Buffer::from_vec(data);
            let text = t == DataType::Utf8;
            match offsets_i32(&offsets) {
                Some(o) if text => Arc::new(
                    StringArray::try_new(o, values, nulls(validity))
                        .map_err(|e| arrow_error(&e))?,
                ),
                Some(o) => Arc::new(
                    BinaryArray::try_new(o, values, nulls(validity))
                        .map_err(|e| arrow_error(&e))?,
                ),
                None if text => Arc::new(
                    LargeStringArray::try_new(offsets_i64(&offsets), values, nulls(validity))
                        .map_err(|e| arrow_error(&e))?,
                ),
                None => Arc::new(
                    LargeBinaryArray::try_new(offsets_i64(&offsets), values, nulls(validity))
                        .map_err(|e| arrow_error(&e))?,
                ),
            }
        }
        (t, _) => {
            return Err(Error::SchemaMismatch {
                reason: format!("a {t} column holds values of another representation"),
            });
        }
    };
    Ok(array)
}

/// `buffer` as a `Vec<T>`: moved when it is a whole, unshared `Vec<T>` allocation, copied
/// otherwise.
fn into_vec<T: ArrowNativeType>(buffer: ScalarBuffer<T>) -> Vec<T> {
    let len = buffer.len();
    match buffer.into_inner().into_vec::<T>() {
        Ok(v) if v.len() == len => v,
        Ok(v) => v.get(..len).unwrap_or(&v).to_vec(),
        Err(shared) => ScalarBuffer::<T>::new(shared, 0, len).to_vec(),
    }
}

/// The validity of `nulls`, its words moved when they are a whole, unshared `Vec<u64>`
/// allocation starting at bit 0, copied otherwise.
fn take_validity(nulls: Option<NullBuffer>) -> Option<Bitmap> {
    let bits = nulls?.into_inner();
    let (offset, len) = (bits.offset(), bits.len());
    if offset == 0 {
        match bits.into_inner().into_vec::<u64>() {
            Ok(words) if words.len() >= len.div_ceil(64) => {
                return Some(Bitmap::from_words(words, len));
            }
            Ok(words) => {
                let b = BooleanBuffer::new(Buffer::from_vec(words), 0, len);
                return Some(Bitmap::from_fn(len, |i| b.value(i)));
            }
            Err(shared) => {
                let b = BooleanBuffer::new(shared, 0, len);
                return Some(Bitmap::from_fn(len, |i| b.value(i)));
            }
        }
    }
    Some(Bitmap::from_fn(len, |i| bits.value(i)))
}

fn cast<'a, A: 'static>(array: &'a ArrayRef, column: &str) -> Result<&'a A> {
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| Error::SchemaMismatch {
            reason: format!(
                "column {column:?}: an Arrow array of type {} does not hold what its type says",
                array.data_type()
            ),
        })
}

fn take_primitive<T>(array: ArrayRef, column: &str) -> Result<(Vec<T::Native>, Option<Bitmap>)>
where
    T: arrow_array::ArrowPrimitiveType,
{
    let prim = cast::<PrimitiveArray<T>>(&array, column)?.clone();
    // The clone shares the buffers with `array`: drop that so they can move.
    drop(array);
    let (_, values, nulls) = prim.into_parts();
    Ok((into_vec(values), take_validity(nulls)))
}

fn usize_offsets<O: ArrowNativeType + TryInto<usize>>(o: &OffsetBuffer<O>) -> Result<Vec<usize>> {
    o.iter()
        .map(|x| {
            (*x).try_into().map_err(|_| Error::SchemaMismatch {
                reason: "a string offset does not fit in memory".into(),
            })
        })
        .collect()
}

/// A Lightning column holding `array` (of the Lightning type `data_type`), moving its
/// buffers where it can (see the module docs).
fn column_from_arrow(array: ArrayRef, data_type: DataType, column: &str) -> Result<Column> {
    let (data, validity) = match data_type {
        DataType::Bool => {
            let values = cast::<BooleanArray>(&array, column)?
                .values()
                .iter()
                .collect::<Vec<bool>>();
            let nulls = array.nulls().cloned();
            drop(array);
            (Data::Bool(values), take_validity(nulls))
        }
        DataType::Int32 => {
            let (v, n) = take_primitive::<Int32Type>(array, column)?;
            (Data::I32(v), n)
        }
        DataType::Date32 => {
            let (v, n) = take_primitive::<Date32Type>(array, column)?;
            (Data::I32(v), n)
        }
        DataType::Int64 => {
            let (v, n) = take_primitive::<Int64Type>(array, column)?;
            (Data::I64(v), n)
        }
        DataType::Timestamp => {
            let (v, n) = take_primitive::<TimestampMicrosecondType>(array, column)?;
            (Data::I64(v), n)
        }
        DataType::Decimal { .. } => {
            let (v, n) = take_primitive::<Decimal64Type>(array, column)?;
            (Data::I64(v), n)
        }
        DataType::Float64 => {
            let (v, n) = take_primitive::<Float64Type>(array, column)?;
            (Data::F64(v), n)
        }
        DataType::Utf8 | DataType::Binary => {
            let nulls = array.nulls().cloned();
            let (offsets, values) = match array.data_type() {
                ArrowType::Utf8 => {
                    let a = cast::<StringArray>(&array, column)?;
                    (usize_offsets(a.offsets())?, a.values().clone())
                }
                ArrowType::LargeUtf8 => {
                    let a = cast::<LargeStringArray>(&array, column)?;
                    (usize_offsets(a.offsets())?, a.values().clone())
                }
                ArrowType::Binary => {
                    let a = cast::<BinaryArray>(&array, column)?;
                    (usize_offsets(a.offsets())?, a.values().clone())
                }
                _ => {
                    let a = cast::<LargeBinaryArray>(&array, column)?;
                    (usize_offsets(a.offsets())?, a.values().clone())
                }
            };
            drop(array);
            let (first, last) = (
                offsets.first().copied().unwrap_or(0),
                offsets.last().copied().unwrap_or(0),
            );
            // Offsets that start past 0 (a sliced array): rebased, and the bytes cut to them.
            let data = if first == 0 && last == values.len() {
                values.into_vec::<u8>().unwrap_or_else(|b| b.to_vec())
            } else {
                values
                    .get(first..last)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            };
            let offsets = offsets.iter().map(|o| o - first).collect();
            (Data::Bytes { data, offsets }, take_validity(nulls))
        }
    };
    Column::from_parts(data_type, data, validity).map_err(|e| match e {
        Error::SchemaMismatch { reason } => Error::SchemaMismatch {
            reason: format!("column {column:?}: {reason}"),
        },
        other => other,
    })
}

impl Batch {
    /// This batch as an Arrow `RecordBatch`, moving its buffers (a batch with a selection
    /// vector is gathered first).
    pub fn into_arrow(self) -> Result<RecordBatch> {
        let batch = if self.selection().is_some() {
            self.compact()
        } else {
            self
        };
        let rows = batch.num_rows();
        let (schema, columns, _) = batch.into_parts();
        let arrow_schema = Arc::new(to_arrow_schema(&schema));
        let arrays = columns
            .into_iter()
            .map(column_to_arrow)
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new_with_options(
            arrow_schema,
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| arrow_error(&e))
    }

    /// A batch holding an Arrow `RecordBatch`, moving its buffers where it can. Arrow types
    /// without a Lightning counterpart are an error naming the column.
    pub fn from_arrow(batch: RecordBatch) -> Result<Batch> {
        let schema = Arc::new(from_arrow_schema(batch.schema_ref())?);
        let columns: Vec<ArrayRef> = batch.columns().to_vec();
        drop(batch);
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(array, f)| column_from_arrow(array, f.data_type(), f.name()))
            .collect::<Result<Vec<_>>>()?;
        Batch::new(schema, columns)
    }
}
