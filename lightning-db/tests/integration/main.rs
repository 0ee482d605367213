//! Integration suite of lightning-db through its public API: the basics (keyspaces,
//! transactions, iteration both ways, reopen, the lock, bad input), a model test against
//! `BTreeMap` with reopens and checkpoints, isolation, GC and space.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod basics;
mod config_reference;
mod faults;
mod isolation;
mod kill;
mod model;
mod space;
