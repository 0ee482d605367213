//! lightning-backup integration suite (the database-level suites are in the workspace's
//! `tests/e2e/backup.rs`).

mod retention;
