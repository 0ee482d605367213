//! Random schemas and batches shared by the suites.

use std::sync::Arc;

use lightning_columnar::{Batch, Column, DataType, Field, Scalar, Schema};
use lightning_testkit::Rng;

/// Every type the crate has.
pub(crate) fn all_types() -> Vec<DataType> {
    vec![
        DataType::Bool,
        DataType::Int32,
        DataType::Int64,
        DataType::Float64,
        DataType::decimal(15, 2).unwrap(),
        DataType::Utf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Timestamp,
    ]
}

/// A schema of `n` columns of random types, named `c0..`.
pub(crate) fn random_schema(rng: &mut Rng, n: usize) -> Arc<Schema> {
    let types = all_types();
    let fields = (0..n)
        .map(|i| {
            let t = types[rng.below(types.len() as u64) as usize];
            Field::new(format!("c{i}"), t, rng.chance(70))
        })
        .collect();
    Arc::new(Schema::new(fields).unwrap())
}

/// A random non-null value of `t`; `mode` picks a distribution (0 narrow, 1 wide, 2 few
/// distinct, 3 sorted by `i`).
pub(crate) fn random_value(rng: &mut Rng, t: DataType, mode: u64, i: usize) -> Scalar {
    let narrow = |rng: &mut Rng| match mode {
        0 => rng.below(100).cast_signed() - 50,
        1 => rng.next_u64().cast_signed(),
        2 => (rng.below(5) * 1000).cast_signed(),
        _ => i as i64 * 3 + rng.below(3).cast_signed(),
    };
    match t {
        DataType::Bool => Scalar::Bool(if mode == 2 { true } else { rng.chance(50) }),
        DataType::Int32 => Scalar::Int32(narrow(rng) as i32),
        DataType::Date32 => Scalar::Date32((narrow(rng) % 40_000) as i32),
        DataType::Int64 => Scalar::Int64(narrow(rng)),
        DataType::Timestamp => Scalar::Timestamp(narrow(rng)),
        DataType::Decimal { precision, scale } => Scalar::Decimal {
            value: narrow(rng) % 1_000_000_000_000,
            precision,
            scale,
        },
        DataType::Float64 => Scalar::Float64(match (mode, rng.below(40)) {
            (_, 0) => f64::NAN,
            (_, 1) => -0.0,
            (_, 2) => f64::INFINITY,
            (1, _) => f64::from_bits(rng.next_u64()),
            _ => narrow(rng) as f64 / 100.0,
        }),
        DataType::Utf8 => {
            let words = ["", "a", "ab", "héllo", "zz", "AIR", "MAIL", "ünïcødé"];
            Scalar::Utf8(match mode {
                2 => words[rng.below(3) as usize].to_owned(),
                1 => (0..rng.below(80))
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect(),
                _ => format!(
                    "{}{}",
                    words[rng.below(words.len() as u64) as usize],
                    narrow(rng)
                ),
            })
        }
        DataType::Binary => Scalar::Binary(if mode == 2 {
            vec![0u8; rng.below(3) as usize]
        } else {
            let n = rng.below(20) as usize;
            rng.bytes(n)
        }),
        _ => unreachable!("a new type"),
    }
}

/// A column of `rows` values of `t`, each null with `null_pct` percent chance.
pub(crate) fn random_column(rng: &mut Rng, t: DataType, rows: usize, null_pct: u64) -> Column {
    let mode = rng.below(4);
    let values: Vec<Scalar> = (0..rows)
        .map(|i| {
            if rng.chance(null_pct) {
                Scalar::Null
            } else {
                random_value(rng, t, mode, i)
            }
        })
        .collect();
    Column::from_scalars(t, &values).unwrap()
}

/// A batch of `schema` with `rows` rows; nullable columns get nulls at a random rate among
/// 0, 10, 50 and 100 percent.
pub(crate) fn random_batch(rng: &mut Rng, schema: &Arc<Schema>, rows: usize) -> Batch {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let pct = if f.nullable() {
                [0, 10, 50, 100][rng.below(4) as usize]
            } else {
                0
            };
            random_column(rng, f.data_type(), rows, pct)
        })
        .collect();
    Batch::new(schema.clone(), cols).unwrap()
}
