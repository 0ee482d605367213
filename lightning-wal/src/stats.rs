//! Counters and histograms of the log's work.

use std::time::Duration;

use crate::frame::Lsn;

/// Number of buckets in [`WalStats::records_per_sync`]: 1, 2, 3–4, 5–8, …, 513–1024, more.
pub const GROUP_BUCKETS: usize = 12;
/// Number of buckets in [`WalStats::sync_latency_us`]: < 2^k µs for k = 4..=19, then more.
pub const LATENCY_BUCKETS: usize = 17;

/// A snapshot of what the log has done since it was opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WalStats {
    /// Records appended.
    pub appends: u64,
    /// Payload bytes appended.
    pub bytes: u64,
    /// fsyncs that made records durable.
    pub syncs: u64,
    /// Histogram of records made durable per fsync (the group-commit group size): bucket
    /// `i` counts groups of `2^(i-1) + 1 ..= 2^i` records (bucket 0: exactly 1), the last
    /// bucket everything larger.
    pub records_per_sync: [u64; GROUP_BUCKETS],
    /// Histogram of fsync latency: bucket `i` counts syncs under `2^(i+4)` µs, the last
    /// bucket everything slower.
    pub sync_latency_us: [u64; LATENCY_BUCKETS],
    /// Sum of fsync latencies, µs.
    pub sync_latency_total_us: u64,
    /// Slowest fsync, µs.
    pub sync_latency_max_us: u64,
    /// Last LSN appended.
    pub last_lsn: Lsn,
    /// Last LSN durable.
    pub durable_lsn: Lsn,
    /// Times an appender (or a caller of `Appended::wait` or `Wal::sync`) found another
    /// thread writing or syncing the log and waited for it. Every such wait either polls or
    /// sleeps: `waits == waits_polled + waits_slept`. One call may wait more than once (a
    /// poll that ends without its record durable is followed by another wait, or by leading
    /// the next batch itself).
    pub waits: u64,
    /// Waits that polled the durable LSN (see `WalOptions::wait_spin`), however they ended.
    pub waits_polled: u64,
    /// Waits that slept on a condition variable.
    pub waits_slept: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    pub(crate) appends: u64,
    pub(crate) bytes: u64,
    syncs: u64,
    groups: [u64; GROUP_BUCKETS],
    latency: [u64; LATENCY_BUCKETS],
    latency_total_us: u64,
    latency_max_us: u64,
    pub(crate) waits: u64,
    pub(crate) waits_polled: u64,
    pub(crate) waits_slept: u64,
}

fn group_bucket(records: u64) -> usize {
    // ceil(log2(records)), capped.
    let b = (64 - records.saturating_sub(1).leading_zeros()) as usize;
    b.min(GROUP_BUCKETS - 1)
}

fn latency_bucket(us: u64) -> usize {
    let b = (64 - us.leading_zeros()) as usize;
    b.saturating_sub(4).min(LATENCY_BUCKETS - 1)
}

impl StatsInner {
    pub(crate) fn record_sync(&mut self, records: u64, time: Option<Duration>) {
        // INVARIANT: `group_bucket` caps its result at `GROUP_BUCKETS - 1`.
        self.groups[group_bucket(records)] += 1;
        if let Some(t) = time {
            self.syncs += 1;
            let us = u64::try_from(t.as_micros()).unwrap_or(u64::MAX);
            // INVARIANT: `latency_bucket` caps its result at `LATENCY_BUCKETS - 1`.
            self.latency[latency_bucket(us)] += 1;
            self.latency_total_us = self.latency_total_us.saturating_add(us);
            self.latency_max_us = self.latency_max_us.max(us);
        }
    }

    pub(crate) fn snapshot(&self, last_lsn: Lsn, durable_lsn: Lsn) -> WalStats {
        WalStats {
            appends: self.appends,
            bytes: self.bytes,
            syncs: self.syncs,
            records_per_sync: self.groups,
            sync_latency_us: self.latency,
            sync_latency_total_us: self.latency_total_us,
            sync_latency_max_us: self.latency_max_us,
            last_lsn,
            durable_lsn,
            waits: self.waits,
            waits_polled: self.waits_polled,
            waits_slept: self.waits_slept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let groups: Vec<usize> = [1u64, 2, 3, 4, 5, 8, 9, 1024, 1025, u64::MAX]
            .iter()
            .map(|&n| group_bucket(n))
            .collect();
        assert_eq!(groups, vec![0, 1, 2, 2, 3, 3, 4, 10, 11, 11]);
        let lat: Vec<usize> = [0u64, 15, 16, 31, 32, 100, 1 << 19, u64::MAX]
            .iter()
            .map(|&n| latency_bucket(n))
            .collect();
        assert_eq!(lat, vec![0, 0, 1, 1, 2, 3, 16, 16]);
    }
}
