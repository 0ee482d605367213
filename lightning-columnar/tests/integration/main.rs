//! Integration suite of lightning-columnar: segment round trips, statistics, hostile bytes.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "test data: small counters and random bits"
)]

mod common;
mod segment;
