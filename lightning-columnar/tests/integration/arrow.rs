//! Arrow conversion (feature `arrow`): every type round-trips through a `RecordBatch` with
//! its nulls, fixed-width buffers and validity words move without a copy (the same
//! pointers before, in Arrow and after), and Arrow data that was built by Arrow, sliced or
//! of a type without a counterpart is converted or refused with the column's name.

use std::sync::Arc;

use arrow_array::{Array, Int8Array, Int64Array, RecordBatch, StringArray};
use lightning_columnar::{Batch, Bitmap, Column, DataType, Field, Schema};

fn every_type(rows: usize) -> Batch {
    let nulls = Bitmap::from_fn(rows, |i| i % 5 != 3);
    let text: Vec<String> = (0..rows).map(|i| format!("row {i} — ü")).collect();
    let bytes: Vec<Vec<u8>> = (0..rows).map(|i| vec![0xff, i as u8, 0]).collect();
    let fields = vec![
        Field::new("b", DataType::Bool, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("dec", DataType::decimal(12, 2).unwrap(), true),
        Field::new("s", DataType::Utf8, true),
        Field::new("bin", DataType::Binary, false),
        Field::new("d", DataType::Date32, false),
        Field::new("ts", DataType::Timestamp, true),
    ];
    let columns = vec![
        Column::from_bools((0..rows).map(|i| i % 3 == 0).collect(), Some(nulls.clone())).unwrap(),
        Column::from_i32(
            DataType::Int32,
            (0..rows as i32).map(|i| i * 7 - 50).collect(),
            Some(nulls.clone()),
        )
        .unwrap(),
        Column::from_i64(
            DataType::Int64,
            (0..rows as i64).map(|i| i << 33).collect(),
            Some(nulls.clone()),
        )
        .unwrap(),
        Column::from_f64(
            (0..rows).map(|i| i as f64 / 8.0 - 1.5).collect(),
            Some(nulls.clone()),
        )
        .unwrap(),
        Column::from_i64(
            DataType::decimal(12, 2).unwrap(),
            (0..rows as i64).map(|i| i * 12_345).collect(),
            Some(nulls.clone()),
        )
        .unwrap(),
        Column::from_strings(DataType::Utf8, &text, Some(nulls.clone())).unwrap(),
        Column::from_strings(DataType::Binary, &bytes, None).unwrap(),
        Column::from_i32(
            DataType::Date32,
            (0..rows as i32).map(|i| 19_000 + i).collect(),
            None,
        )
        .unwrap(),
        Column::from_i64(
            DataType::Timestamp,
            (0..rows as i64)
                .map(|i| 1_700_000_000_000_000 + i)
                .collect(),
            Some(nulls),
        )
        .unwrap(),
    ];
    Batch::new(Arc::new(Schema::new(fields).unwrap()), columns).unwrap()
}

/// Where a column's fixed-width values and its validity words live.
fn pointers(batch: &Batch) -> Vec<(Option<usize>, Option<usize>)> {
    batch
        .columns()
        .iter()
        .map(|c| {
            let values = c
                .i32s()
                .map(|v| v.as_ptr() as usize)
                .or_else(|| c.i64s().map(|v| v.as_ptr() as usize))
                .or_else(|| c.f64s().map(|v| v.as_ptr() as usize));
            (values, c.validity().map(|v| v.words().as_ptr() as usize))
        })
        .collect()
}

#[test]
fn every_type_round_trips_through_arrow_without_copying_fixed_width_buffers() {
    let batch = every_type(1000);
    let rows = batch.rows();
    let before = pointers(&batch);
    assert!(before.iter().filter(|(v, _)| v.is_some()).count() >= 6);
    let rb = batch.into_arrow().unwrap();
    assert_eq!(rb.num_rows(), 1000);
    assert_eq!(rb.num_columns(), 9);
    // In Arrow: the same allocations.
    for (i, (values, validity)) in before.iter().enumerate() {
        let data = rb.column(i).to_data();
        if let Some(p) = values {
            assert_eq!(
                data.buffers()[0].as_ptr() as usize,
                *p,
                "column {i}'s values were copied into Arrow"
            );
        }
        if let Some(p) = validity {
            let nulls = rb.column(i).nulls().unwrap();
            assert_eq!(
                nulls.buffer().as_ptr() as usize,
                *p,
                "column {i}'s validity was copied into Arrow"
            );
            assert_eq!(nulls.null_count(), 200);
        }
    }
    assert_eq!(
        rb.schema().field(4).data_type(),
        &arrow_schema::DataType::Decimal64(12, 2)
    );
    // And back: the same allocations again, the same rows.
    let back = Batch::from_arrow(rb).unwrap();
    assert_eq!(
        pointers(&back),
        before,
        "buffers were copied on the way back"
    );
    assert_eq!(back.rows(), rows);
    assert_eq!(back.schema().fields()[8].data_type(), DataType::Timestamp);
}

#[test]
fn a_selection_is_gathered_and_arrow_built_and_sliced_arrays_come_in() {
    let batch = every_type(100).with_selection(vec![1, 5, 99]).unwrap();
    let expected = batch.rows();
    let rb = batch.into_arrow().unwrap();
    assert_eq!(rb.num_rows(), 3);
    assert_eq!(Batch::from_arrow(rb).unwrap().rows(), expected);

    // Built by Arrow, then sliced (offsets and validity not at 0).
    let ints = Int64Array::from(vec![Some(1), None, Some(3), Some(4), None, Some(6)]).slice(1, 4);
    let text = StringArray::from(vec![
        Some("a"),
        Some("bb"),
        None,
        Some("dddd"),
        Some("e"),
        Some("f"),
    ])
    .slice(1, 4);
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("n", arrow_schema::DataType::Int64, true),
        arrow_schema::Field::new("t", arrow_schema::DataType::Utf8, true),
    ]));
    let rb = RecordBatch::try_new(schema, vec![Arc::new(ints), Arc::new(text)]).unwrap();
    let b = Batch::from_arrow(rb).unwrap();
    let n = b.column(0).unwrap();
    let t = b.column(1).unwrap();
    assert_eq!(
        (0..4).map(|i| n.is_valid(i)).collect::<Vec<_>>(),
        [false, true, true, false]
    );
    assert_eq!(&n.i64s().unwrap()[1..3], &[3, 4]);
    assert_eq!(t.bytes(0), Some(&b"bb"[..]));
    assert!(!t.is_valid(1));
    assert_eq!(t.bytes(2), Some(&b"dddd"[..]));
    assert_eq!(t.bytes(3), Some(&b"e"[..]));
}

#[test]
fn an_arrow_type_without_a_counterpart_is_refused_by_name() {
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "tiny",
        arrow_schema::DataType::Int8,
        false,
    )]));
    let rb = RecordBatch::try_new(schema, vec![Arc::new(Int8Array::from(vec![1i8, 2]))]).unwrap();
    let e = Batch::from_arrow(rb).unwrap_err().to_string();
    assert!(e.contains("\"tiny\"") && e.contains("Int8"), "{e}");
    let _ = Int64Array::from(vec![1i64]).len();
}
