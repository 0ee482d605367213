//! Integration suite of lightning-mvcc: the classic anomalies, the commit log's order, the
//! lock manager, a
//! randomized history checker over the in-memory store whose seeds replay (one thread, a
//! seeded scheduler), large values through overflow references, and streaming scans.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod anomalies;
mod commit_log;
mod early_release;
mod history;
mod locks;
mod overflow;
mod scan;
