//! Crash and fault suites of lightning-btree, through the crash VFS: I/O faults at every
//! position of a workload (and power cuts after them); power cuts around and inside
//! checkpoints, and the fallback to the older superblock.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
#![expect(
    clippy::cast_possible_truncation,
    clippy::print_stderr,
    reason = "test data: small counters; suites report what they ran"
)]

mod faults;
mod power_cuts;
