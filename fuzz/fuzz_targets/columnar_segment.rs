//! A column segment of hostile bytes: opening it, decoding every column of every row group
//! and scanning every column with a pushed-down predicate must fail cleanly or work, never
//! panic. (`thousands_of_damaged_segments_are_errors_never_panics` in
//! lightning-columnar/tests/integration/segment.rs runs the same body without cargo-fuzz.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_columnar::segment::{SegmentId, SegmentReader};
use lightning_columnar::{DataType, Expr, Field, Scalar, Scan, col};

/// A pushed-down conjunct on `field` with a constant of its type.
fn conjunct_on(field: &Field) -> Expr {
    let c = col(field.name());
    let k = |s: Scalar| Expr::Literal(s);
    match field.data_type() {
        DataType::Bool => c.equal(k(Scalar::Bool(true))),
        DataType::Int32 => c.gt_eq(k(Scalar::Int32(10))),
        DataType::Int64 => c.lt(k(Scalar::Int64(1500))),
        DataType::Float64 => c.gt(k(Scalar::Float64(3.0))),
        DataType::Decimal { precision, scale } => match Scalar::decimal(95_000, precision, scale) {
            Ok(v) => c.lt_eq(k(v)),
            Err(_) => c.is_not_null(),
        },
        DataType::Utf8 => c.gt_eq(k(Scalar::Utf8("MAIL".into()))),
        DataType::Binary => c.starts_with(b"a".to_vec()),
        DataType::Date32 => c.lt(k(Scalar::Date32(8010))),
        DataType::Timestamp => c.gt(k(Scalar::Timestamp(1_000_000_000))),
        _ => c.is_null(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = SegmentReader::open(data, SegmentId::new(9)) else {
        return;
    };
    for g in 0..r.row_groups().len() {
        for c in 0..r.schema().len() {
            let _ = r.read_column(g, c);
        }
    }
    let _ = r.verify();
    let _ = r.layout_summary();
    let names: Vec<&str> = r.schema().fields().iter().map(Field::name).collect();
    for f in r.schema().fields() {
        let _ = Scan::new(&r, &names, Some(conjunct_on(f))).and_then(|mut s| s.collect());
    }
});
