//! lightning-backup integration suite (the database-level suites are in the workspace's
//! `tests/e2e/backup.rs`).

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod retention;
