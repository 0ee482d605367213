//! Crash and fault suites of lightning-btree: I/O faults at every position of a workload
//! (and power cuts after them) through the crash VFS.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
#![expect(
    clippy::cast_possible_truncation,
    clippy::print_stderr,
    reason = "test data: small counters; suites report what they ran"
)]

mod faults;
