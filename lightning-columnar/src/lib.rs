//! Column segments and vectorized operators for Lightning DB's analytical tables.
//!
//! - **Types** ([`DataType`]): bool, i32, i64, f64, decimal (a scaled `i64` with precision
//!   and scale), utf8, binary, date32 and timestamp (microseconds); every column nullable or
//!   not ([`Field`], [`Schema`], [`Scalar`]).
//! - **Vectors** ([`Column`]): typed values with a validity [`Bitmap`]; a [`Batch`] is
//!   columns under a schema plus an optional selection vector, [`DEFAULT_BATCH_ROWS`] rows
//!   by default.
//! - **Segments** ([`segment`]): immutable, self-describing byte strings. A
//!   [`SegmentWriter`](segment::SegmentWriter) turns batches into row groups of about 100k
//!   rows, each column chunk encoded by `lightning-compress` with a zone map (min, max, null
//!   count, distinct estimate) in a checksummed footer. A
//!   [`SegmentReader`](segment::SegmentReader) reads through a
//!   [`ByteSource`](segment::ByteSource) (positional reads: the database implements it over
//!   page extents; slices and vectors implement it in memory), verifies the footer's
//!   checksum before parsing it and each chunk's before decoding it, and fetches only the
//!   chunks asked for. Segment bytes are untrusted: damage is an [`Error`] naming the
//!   segment, the row group and the column, never a panic. The byte layout is in
//!   `docs/format/columnar.md`.
//!
//! - **Operators**, a column at a time with SQL null semantics: expressions ([`Expr`]:
//!   arithmetic on integers, doubles and decimals, comparisons, three-valued `AND`/`OR`/`NOT`,
//!   `IS [NOT] NULL`, `BETWEEN`, `IN`, `LIKE 'prefix%'`, `EXTRACT`), [`filter`] (a selection
//!   vector) and [`project`]; [`Scan`] with projection and predicate pushdown (zone maps,
//!   then predicates on the encoded blocks, then the rest on decoded vectors); hash
//!   aggregation ([`HashAggregate`]: count, count distinct, sum, min, max, avg, with or without
//!   group-by, per-thread states merged); [`HashJoin`] (inner, left, semi, anti); [`sort`]
//!   with top-k; and [`parallel_aggregate`], morsel-driven over row groups on threads, which
//!   takes sums and counts of bare columns from the encoded chunks when there is nothing to
//!   filter or group ([`ScanStats::aggregated_on_encoded`]).
//! - **Zero-copy scans**: a [`Scan`] allocates per row group, never per row; it decodes only
//!   the projected (and residual-predicate) columns of row groups with a surviving row and
//!   moves the decoded vectors into its output. [`ScanStats::chunks_decoded`] counts them;
//!   the `alloc` test binary checks both with a counting global allocator.
//! - **Plans** ([`PlanBuilder`] -> [`Plan`]): scan (projection, pushed-down predicate) ->
//!   filter -> project -> aggregate / join -> sort or top-k -> batches, checked as they are
//!   built (an unknown column or a type mismatch is an [`Error`] naming it). Each node has an
//!   estimated row count from zone-map row counts; an inner join builds on the smaller side
//!   ([`BuildSide`], recorded in the plan). [`Plan::explain`] shows the plan as indented
//!   text; [`Plan::explain_analyze`] runs it and reports rows in and out and time per
//!   operator, row groups skipped by zone maps and the encodings of the columns read.
//!
//! The crate knows nothing of pages or transactions: it reads and writes bytes.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
//! use lightning_columnar::{Batch, Column, DataType, Field, Scalar, Schema};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::Utf8, true),
//! ])?);
//! let ids = Column::from_i64(DataType::Int64, (0..10_000).collect(), None)?;
//! let names: Vec<Scalar> = (0..10_000)
//!     .map(|i| if i % 3 == 0 { Scalar::Null } else { Scalar::Utf8(format!("n{}", i % 7)) })
//!     .collect();
//! let names = Column::from_scalars(DataType::Utf8, &names)?;
//! let batch = Batch::new(schema.clone(), vec![ids, names])?;
//!
//! let mut writer = SegmentWriter::new(schema, WriterOptions::new().row_group_rows(4096))?;
//! writer.write(&batch)?;
//! let bytes = writer.finish()?;
//!
//! let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1))?;
//! assert_eq!(reader.num_rows(), 10_000);
//! assert_eq!(reader.row_groups().len(), 3);
//! let stats = reader.row_groups()[0].chunks()[0].stats();
//! assert_eq!(stats.max(), Some(&Scalar::Int64(4095)));
//! let names = reader.read_column(0, 1)?;
//! assert_eq!(names.value(1), Scalar::Utf8("n1".into()));
//! assert_eq!(names.value(3), Scalar::Null);
//! # Ok::<(), lightning_columnar::Error>(())
//! ```
//!
//! A plan over that segment: the names seen more than 400 times among ids below 5,000.
//!
//! ```
//! # use std::sync::Arc;
//! # use lightning_columnar::segment::{SegmentId, SegmentReader, SegmentWriter, WriterOptions};
//! # use lightning_columnar::{Batch, Column, DataType, Field, Scalar, Schema};
//! use lightning_columnar::{PlanBuilder, SortKey, col, count_star, lit};
//! # let schema = Arc::new(Schema::new(vec![
//! #     Field::new("id", DataType::Int64, false),
//! #     Field::new("name", DataType::Utf8, true),
//! # ])?);
//! # let ids = Column::from_i64(DataType::Int64, (0..10_000).collect(), None)?;
//! # let names: Vec<Scalar> = (0..10_000)
//! #     .map(|i| if i % 3 == 0 { Scalar::Null } else { Scalar::Utf8(format!("n{}", i % 7)) })
//! #     .collect();
//! # let names = Column::from_scalars(DataType::Utf8, &names)?;
//! # let batch = Batch::new(schema.clone(), vec![ids, names])?;
//! # let mut writer = SegmentWriter::new(schema, WriterOptions::new().row_group_rows(4096))?;
//! # writer.write(&batch)?;
//! # let bytes = writer.finish()?;
//! # let reader = SegmentReader::open(bytes.as_slice(), SegmentId::new(1))?;
//! let plan = PlanBuilder::scan("t", &reader, &["name"], Some(col("id").lt(lit(5_000i64))))?
//!     .filter(col("name").is_not_null())?
//!     .aggregate(vec![("name".into(), col("name"))], vec![count_star().alias("n")])?
//!     .filter(col("n").gt(lit(400i64)))?
//!     .sort(vec![SortKey::asc(col("name"))], None)?
//!     .build();
//! assert!(plan.explain().starts_with("Sort by [name ASC NULLS LAST]"));
//! let report = plan.explain_analyze()?;
//! let scan = report.operators().last().and_then(|m| m.scan.as_ref());
//! assert_eq!(scan.map(|s| s.stats.skipped_by_zone_maps), Some(1));
//! assert_eq!(report.batches()[0].num_rows(), 7); // n0..n6, about 476 each
//! assert!(PlanBuilder::scan("t", &reader, &["nmae"], None).is_err());
//! # Ok::<(), lightning_columnar::Error>(())
//! ```
//!
//! # Feature flags
//!
//! - `arrow`: [`Batch::into_arrow`] and [`Batch::from_arrow`] (module [`arrow`]):
//!   conversion to and from Arrow `RecordBatch`es (`arrow-array` and `arrow-schema` only),
//!   moving fixed-width value buffers and validity bitmaps without a copy.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod aggregate;
#[cfg(feature = "arrow")]
#[cfg_attr(docsrs, doc(cfg(feature = "arrow")))]
pub mod arrow;
mod batch;
mod bitmap;
mod column;
mod date;
mod error;
mod expr;
mod join;
mod parallel;
mod plan;
mod scan;
pub mod segment;
mod sort;
mod types;

pub use aggregate::{
    AggFunc, Aggregate, HashAggregate, avg, count, count_distinct, count_star, max, min, sum,
};
pub use batch::{Batch, DEFAULT_BATCH_ROWS};
pub use bitmap::Bitmap;
pub use column::Column;
pub use error::{Error, Location, Result};
pub use expr::{BinaryOp, DatePart, Expr, col, filter, lit, project};
pub use join::{HashJoin, JoinType};
pub use parallel::parallel_aggregate;
pub use plan::{Analyzed, BuildSide, OperatorMetrics, Plan, PlanBuilder, ScanMetrics};
pub use scan::{Scan, ScanStats};
pub use sort::{SortKey, sort};
pub use types::{DataType, Field, MAX_DECIMAL_PRECISION, MAX_NAME_LEN, Scalar, Schema};
