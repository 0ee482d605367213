//! Integration suite of lightning-mvcc: the classic anomalies and a randomized history
//! checker over the in-memory store.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod anomalies;
mod history;
mod locks;
