//! Integration suite of lightning-mvcc: the classic anomalies, the lock manager, a
//! randomized history checker over the in-memory store whose seeds replay (one thread, a
//! seeded scheduler), and large values through overflow references.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod anomalies;
mod history;
mod locks;
mod overflow;
