//! Integration suite of lightning-columnar: segment round trips, statistics, hostile bytes,
//! operators and plans against a reference evaluator, TPC-H.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::many_single_char_names,
    reason = "test data: small counters and random bits; the reference reads like the algebra"
)]

#[cfg(feature = "arrow")]
mod arrow;
mod common;
mod join_sort;
mod operators;
mod plan;
mod reference;
mod scan;
mod segment;
mod tpch;
mod tpch_plans;
