//! Logical types, fields, schemas and scalar values.

use std::cmp::Ordering;
use std::fmt;

use crate::{Error, Result};

/// The largest decimal precision: decimals are scaled `i64` values (18 digits always fit).
pub const MAX_DECIMAL_PRECISION: u8 = 18;

/// A column's logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `true` / `false`.
    Bool,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// IEEE 754 double.
    Float64,
    /// A decimal number stored as an `i64` scaled by `10^scale`, at most `precision` digits.
    Decimal {
        /// Total digits, 1..=18.
        precision: u8,
        /// Digits after the point, 0..=precision.
        scale: u8,
    },
    /// UTF-8 text.
    Utf8,
    /// Byte strings.
    Binary,
    /// Days since 1970-01-01 (`i32`).
    Date32,
    /// Microseconds since 1970-01-01 00:00:00 UTC (`i64`).
    Timestamp,
}

/// How values of a type are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Physical {
    Bool,
    I32,
    I64,
    F64,
    Bytes,
}

impl DataType {
    /// A decimal type, checked: `1 <= precision <= 18`, `scale <= precision`.
    pub fn decimal(precision: u8, scale: u8) -> Result<DataType> {
        if precision == 0 || precision > MAX_DECIMAL_PRECISION || scale > precision {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "decimal({precision},{scale}): precision must be 1..=18 and scale at most the precision"
                ),
            });
        }
        Ok(DataType::Decimal { precision, scale })
    }

    pub(crate) fn physical(self) -> Physical {
        match self {
            DataType::Bool => Physical::Bool,
            DataType::Int32 | DataType::Date32 => Physical::I32,
            DataType::Int64 | DataType::Decimal { .. } | DataType::Timestamp => Physical::I64,
            DataType::Float64 => Physical::F64,
            DataType::Utf8 | DataType::Binary => Physical::Bytes,
        }
    }

    /// Whether arithmetic applies (integers, doubles, decimals).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal { .. }
        )
    }

    /// The decimal scale, 0 for other types.
    pub(crate) fn scale(self) -> u8 {
        match self {
            DataType::Decimal { scale, .. } => scale,
            _ => 0,
        }
    }

    /// The on-disk tag (footer), see `docs/format/columnar.md`.
    pub(crate) fn tag(self) -> [u8; 3] {
        match self {
            DataType::Bool => [0, 0, 0],
            DataType::Int32 => [1, 0, 0],
            DataType::Int64 => [2, 0, 0],
            DataType::Float64 => [3, 0, 0],
            DataType::Decimal { precision, scale } => [4, precision, scale],
            DataType::Utf8 => [5, 0, 0],
            DataType::Binary => [6, 0, 0],
            DataType::Date32 => [7, 0, 0],
            DataType::Timestamp => [8, 0, 0],
        }
    }

    pub(crate) fn from_tag(tag: [u8; 3]) -> Option<DataType> {
        let plain = |t| (tag[1] == 0 && tag[2] == 0).then_some(t);
        match tag[0] {
            0 => plain(DataType::Bool),
            1 => plain(DataType::Int32),
            2 => plain(DataType::Int64),
            3 => plain(DataType::Float64),
            4 => DataType::decimal(tag[1], tag[2]).ok(),
            5 => plain(DataType::Utf8),
            6 => plain(DataType::Binary),
            7 => plain(DataType::Date32),
            8 => plain(DataType::Timestamp),
            _ => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Bool => f.write_str("bool"),
            DataType::Int32 => f.write_str("i32"),
            DataType::Int64 => f.write_str("i64"),
            DataType::Float64 => f.write_str("f64"),
            DataType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            DataType::Utf8 => f.write_str("utf8"),
            DataType::Binary => f.write_str("binary"),
            DataType::Date32 => f.write_str("date32"),
            DataType::Timestamp => f.write_str("timestamp"),
        }
    }
}

/// A named, typed column of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    name: String,
    data_type: DataType,
    nullable: bool,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Field {
        Field {
            name: name.into(),
            data_type,
            nullable,
        }
    }

    /// The column name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// Whether the column may hold nulls.
    pub fn nullable(&self) -> bool {
        self.nullable
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.nullable { "" } else { " not null" };
        write!(f, "{} {}{null}", self.name, self.data_type)
    }
}

/// The longest column name a segment stores.
pub const MAX_NAME_LEN: usize = 1024;

/// An ordered list of fields with distinct names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Schema {
    fields: Vec<Field>,
}

impl Schema {
    /// A schema; names must be distinct and at most [`MAX_NAME_LEN`] bytes.
    pub fn new(fields: Vec<Field>) -> Result<Schema> {
        for (i, f) in fields.iter().enumerate() {
            if f.name.len() > MAX_NAME_LEN {
                return Err(Error::InvalidArgument {
                    reason: format!("column {i}: names are at most {MAX_NAME_LEN} bytes"),
                });
            }
            if fields.iter().take(i).any(|g| g.name == f.name) {
                return Err(Error::InvalidArgument {
                    reason: format!("column name `{}` appears twice in the schema", f.name),
                });
            }
        }
        Ok(Schema { fields })
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Field `i`.
    pub fn field(&self, i: usize) -> Option<&Field> {
        self.fields.get(i)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The index of the field named `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| Error::UnknownColumn {
                name: name.to_owned(),
            })
    }

    /// The schema of the columns at `indices`, in that order.
    pub fn project(&self, indices: &[usize]) -> Result<Schema> {
        let fields = indices
            .iter()
            .map(|i| {
                self.fields
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| Error::InvalidArgument {
                        reason: format!(
                            "column index {i} is past the schema's {} columns",
                            self.len()
                        ),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Schema::new(fields)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{field}")?;
        }
        f.write_str(")")
    }
}

/// One value of any type, or null.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Scalar {
    /// SQL null (of any type).
    Null,
    /// A boolean.
    Bool(bool),
    /// An `i32`.
    Int32(i32),
    /// An `i64`.
    Int64(i64),
    /// A double.
    Float64(f64),
    /// A decimal: `value / 10^scale`.
    Decimal {
        /// The scaled integer.
        value: i64,
        /// Digits of the type.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// Text.
    Utf8(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// Days since 1970-01-01.
    Date32(i32),
    /// Microseconds since the epoch.
    Timestamp(i64),
}

impl Scalar {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// The type of a non-null value (`None` for null).
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Scalar::Null => return None,
            Scalar::Bool(_) => DataType::Bool,
            Scalar::Int32(_) => DataType::Int32,
            Scalar::Int64(_) => DataType::Int64,
            Scalar::Float64(_) => DataType::Float64,
            Scalar::Decimal {
                precision, scale, ..
            } => DataType::Decimal {
                precision: *precision,
                scale: *scale,
            },
            Scalar::Utf8(_) => DataType::Utf8,
            Scalar::Binary(_) => DataType::Binary,
            Scalar::Date32(_) => DataType::Date32,
            Scalar::Timestamp(_) => DataType::Timestamp,
        })
    }

    /// A decimal value, checked against its type.
    pub fn decimal(value: i64, precision: u8, scale: u8) -> Result<Scalar> {
        DataType::decimal(precision, scale)?;
        Ok(Scalar::Decimal {
            value,
            precision,
            scale,
        })
    }

    /// A date from a calendar date (proleptic Gregorian); `None` when it does not exist.
    pub fn date(year: i32, month: u32, day: u32) -> Option<Scalar> {
        crate::date::days_from_civil(year, month, day).map(Scalar::Date32)
    }

    /// The total order used by sorting, min and max: nulls first, then values; doubles
    /// with NaN above every number and `-0.0 == 0.0`; decimals of different scales by value.
    /// Values of different types order by type.
    pub fn total_cmp(&self, other: &Scalar) -> Ordering {
        use Scalar as S;
        match (self, other) {
            (S::Null, S::Null) => Ordering::Equal,
            (S::Null, _) => Ordering::Less,
            (_, S::Null) => Ordering::Greater,
            (S::Bool(a), S::Bool(b)) => a.cmp(b),
            (S::Int32(a), S::Int32(b)) | (S::Date32(a), S::Date32(b)) => a.cmp(b),
            (S::Int64(a), S::Int64(b)) | (S::Timestamp(a), S::Timestamp(b)) => a.cmp(b),
            (S::Float64(a), S::Float64(b)) => f64_cmp(*a, *b),
            (
                S::Decimal {
                    value: a,
                    scale: sa,
                    ..
                },
                S::Decimal {
                    value: b,
                    scale: sb,
                    ..
                },
            ) => {
                let (a, b) = align(i128::from(*a), *sa, i128::from(*b), *sb);
                a.cmp(&b)
            }
            (S::Utf8(a), S::Utf8(b)) => a.cmp(b),
            (S::Binary(a), S::Binary(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Int32(_) => 2,
            Scalar::Int64(_) => 3,
            Scalar::Float64(_) => 4,
            Scalar::Decimal { .. } => 5,
            Scalar::Utf8(_) => 6,
            Scalar::Binary(_) => 7,
            Scalar::Date32(_) => 8,
            Scalar::Timestamp(_) => 9,
        }
    }
}

/// Both scaled integers at the larger scale.
pub(crate) fn align(a: i128, sa: u8, b: i128, sb: u8) -> (i128, i128) {
    let p = |d: u8| 10i128.pow(u32::from(d));
    match sa.cmp(&sb) {
        Ordering::Less => (a * p(sb - sa), b),
        Ordering::Greater => (a, b * p(sa - sb)),
        Ordering::Equal => (a, b),
    }
}

/// The order of doubles used by sorting, min and max: NaN above everything, `-0.0 == 0.0`.
pub(crate) fn f64_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Equality in the total order (so NaN equals NaN, `-0.0` equals `0.0`, and null equals null).
impl PartialEq for Scalar {
    fn eq(&self, other: &Scalar) -> bool {
        self.rank() == other.rank() && self.total_cmp(other) == Ordering::Equal
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("NULL"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int32(v) => write!(f, "{v}"),
            Scalar::Int64(v) => write!(f, "{v}"),
            Scalar::Float64(v) => write!(f, "{v:?}"),
            Scalar::Decimal { value, scale, .. } => {
                if *scale == 0 {
                    return write!(f, "{value}");
                }
                let p = 10u64.pow(u32::from(*scale));
                let sign = if *value < 0 { "-" } else { "" };
                let abs = value.unsigned_abs();
                write!(
                    f,
                    "{sign}{}.{:0width$}",
                    abs / p,
                    abs % p,
                    width = usize::from(*scale)
                )
            }
            Scalar::Utf8(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Scalar::Binary(b) => {
                f.write_str("x'")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
            Scalar::Date32(d) => {
                let (y, m, day) = crate::date::civil_from_days(*d);
                write!(f, "DATE '{y:04}-{m:02}-{day:02}'")
            }
            Scalar::Timestamp(t) => write!(f, "TIMESTAMP {t}us"),
        }
    }
}

impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Scalar) -> Option<Ordering> {
        Some(self.total_cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for t in [
            DataType::Bool,
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::decimal(15, 2).unwrap(),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp,
        ] {
            assert_eq!(DataType::from_tag(t.tag()), Some(t));
        }
        assert_eq!(DataType::from_tag([4, 19, 2]), None);
        assert_eq!(DataType::from_tag([1, 1, 0]), None);
        assert_eq!(DataType::from_tag([9, 0, 0]), None);
    }

    #[test]
    fn schema_checks_names() {
        let f = Field::new("a", DataType::Int32, true);
        assert!(Schema::new(vec![f.clone(), f.clone()]).is_err());
        let s = Schema::new(vec![f, Field::new("b", DataType::Utf8, false)]).unwrap();
        assert_eq!(s.index_of("b").unwrap(), 1);
        assert!(matches!(s.index_of("c"), Err(Error::UnknownColumn { .. })));
        assert_eq!(s.to_string(), "(a i32, b utf8 not null)");
    }

    #[test]
    fn scalar_order_and_display() {
        assert!(Scalar::Float64(f64::NAN) > Scalar::Float64(f64::INFINITY));
        assert_eq!(Scalar::Float64(-0.0), Scalar::Float64(0.0));
        assert!(Scalar::Null < Scalar::Int32(i32::MIN));
        let a = Scalar::decimal(150, 5, 2).unwrap();
        let b = Scalar::decimal(15, 5, 1).unwrap();
        assert_eq!(a.total_cmp(&b), Ordering::Equal);
        assert_eq!(Scalar::decimal(-5, 5, 2).unwrap().to_string(), "-0.05");
        assert_eq!(
            Scalar::date(1998, 12, 1).unwrap().to_string(),
            "DATE '1998-12-01'"
        );
    }
}
