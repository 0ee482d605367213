//! `Database::stats()`: what the database did so far, serde-serializable and as Prometheus
//! text (`docs/runbooks/monitoring.md` says what each figure means).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use lightning_wal::Wal;

use crate::Database;

/// Counters the database keeps itself (the layers below keep theirs).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) retries: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) checkpoint_us_total: AtomicU64,
    pub(crate) checkpoint_us_max: AtomicU64,
    pub(crate) checkpoint_us_last: AtomicU64,
    pub(crate) checkpoint_pages: AtomicU64,
    /// Leaves freed by the checkpoints' repacking walk.
    pub(crate) repacked_leaves: AtomicU64,
    /// Pages the checkpoints moved off the file's tail.
    pub(crate) relocated_pages: AtomicU64,
    pub(crate) recovered_commits: AtomicU64,
    /// The most pages the page file held (it only shrinks in checkpoints, so sampling at
    /// each checkpoint's start and at `stats()` sees every peak).
    pub(crate) peak_pages: AtomicU64,
}

impl Counters {
    pub(crate) fn checkpoint(&self, took: Duration, pages: u64) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_us_total.fetch_add(us, Ordering::Relaxed);
        self.checkpoint_us_max.fetch_max(us, Ordering::Relaxed);
        self.checkpoint_us_last.store(us, Ordering::Relaxed);
        self.checkpoint_pages.fetch_add(pages, Ordering::Relaxed);
    }
}

/// Transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxStats {
    /// Transactions committed with writes.
    pub commits: u64,
    /// Aborted by a write-write conflict.
    pub write_conflicts: u64,
    /// Aborted because a key read changed (serializable).
    pub read_conflicts: u64,
    /// Aborted because a scanned range changed (serializable).
    pub phantom_conflicts: u64,
    /// Whole transactions retried by `update` and `write`.
    pub retries: u64,
    /// Transactions open now (read and write).
    pub active: u64,
    /// Commits replayed from the WAL when the database opened.
    pub recovered_commits: u64,
}

/// Pessimistic locking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LockStats {
    /// Lock requests that had to wait.
    pub waits: u64,
    /// Total time spent waiting, µs.
    pub wait_us: u64,
    /// Deadlocks broken (a victim aborted).
    pub deadlocks: u64,
    /// Lock waits that timed out.
    pub timeouts: u64,
    /// Exclusive locks taken while the previous holder's commit was logged but not yet
    /// applied, which then waited for that commit (the previous holder releases its locks
    /// once its commit is logged, before its fsync: ADR 017). Not counted in `waits`.
    pub handoff_waits: u64,
    /// Total time of those waits, µs.
    pub handoff_wait_us: u64,
}

/// The write-ahead log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WalStats {
    /// Records appended (one per commit with writes, one per keyspace created or dropped).
    pub records: u64,
    /// Payload bytes appended.
    pub bytes: u64,
    /// fsyncs of the log.
    pub fsyncs: u64,
    /// Records made durable per fsync, on average ×100 (group commit's effect).
    pub records_per_fsync_x100: u64,
    /// Slowest fsync, µs.
    pub fsync_max_us: u64,
    /// Total fsync time, µs.
    pub fsync_total_us: u64,
    /// The last LSN appended.
    pub last_lsn: u64,
    /// The last LSN durable.
    pub durable_lsn: u64,
}

/// The page cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CacheStats {
    /// Page lookups served from memory.
    pub hits: u64,
    /// Page lookups that read the file.
    pub misses: u64,
    /// Pages evicted.
    pub evictions: u64,
    /// Dirty pages written back by eviction.
    pub write_backs: u64,
    /// hits / (hits + misses), 0 when nothing was looked up.
    pub hit_ratio: f64,
    /// Frames (pages the cache holds at most).
    pub frames: u64,
}

/// Checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointStats {
    /// Checkpoints taken by this open.
    pub count: u64,
    /// Pages they wrote.
    pub pages_written: u64,
    /// Duration of the last one, µs.
    pub last_us: u64,
    /// Duration of the slowest, µs.
    pub max_us: u64,
    /// Total duration, µs.
    pub total_us: u64,
    /// The LSN the newest durable checkpoint covers.
    pub lsn: u64,
    /// Leaves given back by repacking loose ones (ADR 012), over all checkpoints.
    pub repacked_leaves: u64,
    /// Pages moved off the file's tail so that it can be cut, over all checkpoints.
    pub relocated_pages: u64,
}

/// Garbage collection of old versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcStats {
    /// Passes run.
    pub passes: u64,
    /// Versions removed (superseded values and tombstones no snapshot can see).
    pub versions_removed: u64,
    /// Keys removed whole (deleted keys whose tombstone went).
    pub keys_removed: u64,
    /// Keys waiting for the next pass.
    pub pending_keys: u64,
}

/// Files and pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileStats {
    /// Pages in the page file.
    pub pages: u64,
    /// Bytes of a page.
    pub page_size: u64,
    /// Bytes of the page file.
    pub data_bytes: u64,
    /// The most bytes the page file held since the database was opened.
    pub peak_data_bytes: u64,
    /// Free pages (reusable now).
    pub free_pages: u64,
    /// Pages freed but held for a retained checkpoint image.
    pub pending_pages: u64,
    /// Keyspaces.
    pub keyspaces: u64,
}

/// Everything [`Database::stats`] reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Transactions.
    pub tx: TxStats,
    /// Pessimistic locking.
    pub lock: LockStats,
    /// The write-ahead log.
    pub wal: WalStats,
    /// The page cache.
    pub cache: CacheStats,
    /// Checkpoints.
    pub checkpoint: CheckpointStats,
    /// Version GC.
    pub gc: GcStats,
    /// Files.
    pub file: FileStats,
    /// Why the database refuses writes, if it does.
    pub read_only_reason: Option<String>,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Database {
    /// The database's figures so far.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let txn = inner.mgr.stats();
        let locks = inner.mgr.locks().stats();
        let wal = inner.wal().map(Wal::stats).unwrap_or_default();
        let cache = inner.store.pages.cache_stats();
        let alloc = inner.store.pages.allocator().stats();
        let k = &inner.counters;
        let file = inner.store.pages.file();
        let page_size = u64::from(file.page_size().bytes());
        Stats {
            tx: TxStats {
                commits: txn.commits,
                write_conflicts: txn.write_conflicts,
                read_conflicts: txn.read_conflicts,
                phantom_conflicts: txn.phantom_conflicts,
                retries: k.retries.load(Ordering::Relaxed),
                active: txn.active,
                recovered_commits: k.recovered_commits.load(Ordering::Relaxed),
            },
            lock: LockStats {
                waits: locks.waits,
                wait_us: us(locks.wait_time),
                deadlocks: locks.deadlocks,
                timeouts: locks.timeouts,
                handoff_waits: txn.handoff_waits,
                handoff_wait_us: us(txn.handoff_wait_time),
            },
            wal: WalStats {
                records: wal.appends,
                bytes: wal.bytes,
                fsyncs: wal.syncs,
                records_per_fsync_x100: wal.appends.saturating_mul(100) / wal.syncs.max(1),
                fsync_max_us: wal.sync_latency_max_us,
                fsync_total_us: wal.sync_latency_total_us,
                last_lsn: wal.last_lsn.get(),
                durable_lsn: wal.durable_lsn.get(),
            },
            cache: CacheStats {
                hits: cache.hits,
                misses: cache.misses,
                evictions: cache.evictions,
                write_backs: cache.write_backs,
                hit_ratio: cache.hit_ratio(),
                frames: cache.frames,
            },
            checkpoint: CheckpointStats {
                count: k.checkpoints.load(Ordering::Relaxed),
                pages_written: k.checkpoint_pages.load(Ordering::Relaxed),
                last_us: k.checkpoint_us_last.load(Ordering::Relaxed),
                max_us: k.checkpoint_us_max.load(Ordering::Relaxed),
                total_us: k.checkpoint_us_total.load(Ordering::Relaxed),
                lsn: self.checkpoint_lsn().get(),
                repacked_leaves: k.repacked_leaves.load(Ordering::Relaxed),
                relocated_pages: k.relocated_pages.load(Ordering::Relaxed),
            },
            gc: GcStats {
                passes: inner.store.gc.passes.load(Ordering::Relaxed),
                versions_removed: self
                    .inner()
                    .store
                    .gc
                    .versions_removed
                    .load(Ordering::Relaxed),
                keys_removed: inner.store.gc.keys_removed.load(Ordering::Relaxed),
                pending_keys: inner.store.gc_pending(),
            },
            file: FileStats {
                pages: file.page_count(),
                page_size,
                data_bytes: file.page_count() * page_size,
                peak_data_bytes: k
                    .peak_pages
                    .fetch_max(file.page_count(), Ordering::Relaxed)
                    .max(file.page_count())
                    * page_size,
                free_pages: alloc.free,
                pending_pages: alloc.pending,
                keyspaces: self.keyspaces().len() as u64,
            },
            read_only_reason: inner.store.failure(),
        }
    }
}

impl Stats {
    /// The figures in the Prometheus text exposition format (version 0.0.4): one metric
    /// per figure, named `lightning_<group>_<figure>`, counters ending in `_total`.
    #[expect(clippy::too_many_lines, reason = "one statement per metric")]
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP lightning_{name} {help}");
            let _ = writeln!(out, "# TYPE lightning_{name} {kind}");
            let _ = writeln!(out, "lightning_{name} {value}");
        };
        #[expect(
            clippy::cast_precision_loss,
            reason = "metrics are floats in Prometheus"
        )]
        let f = |v: u64| v as f64;
        let (tx, lk, wal, cache, ck, gc, file) = (
            &self.tx,
            &self.lock,
            &self.wal,
            &self.cache,
            &self.checkpoint,
            &self.gc,
            &self.file,
        );
        metric(
            "tx_commits_total",
            "counter",
            "Transactions committed with writes.",
            f(tx.commits),
        );
        metric(
            "tx_write_conflicts_total",
            "counter",
            "Transactions aborted by a write-write conflict.",
            f(tx.write_conflicts),
        );
        metric(
            "tx_read_conflicts_total",
            "counter",
            "Serializable transactions aborted because a key they read changed.",
            f(tx.read_conflicts),
        );
        metric(
            "tx_phantom_conflicts_total",
            "counter",
            "Serializable transactions aborted because a range they scanned changed.",
            f(tx.phantom_conflicts),
        );
        metric(
            "tx_retries_total",
            "counter",
            "Transactions retried by update and write.",
            f(tx.retries),
        );
        metric("tx_active", "gauge", "Transactions open now.", f(tx.active));
        metric(
            "tx_recovered_commits",
            "gauge",
            "Commits replayed from the WAL at open.",
            f(tx.recovered_commits),
        );
        metric(
            "lock_waits_total",
            "counter",
            "Lock requests that waited.",
            f(lk.waits),
        );
        metric(
            "lock_wait_seconds_total",
            "counter",
            "Time spent waiting for locks.",
            f(lk.wait_us) / 1e6,
        );
        metric(
            "lock_deadlocks_total",
            "counter",
            "Deadlocks broken.",
            f(lk.deadlocks),
        );
        metric(
            "lock_timeouts_total",
            "counter",
            "Lock waits that timed out.",
            f(lk.timeouts),
        );
        metric(
            "lock_handoff_waits_total",
            "counter",
            "Locks taken that waited for the previous holder's logged commit to be applied.",
            f(lk.handoff_waits),
        );
        metric(
            "lock_handoff_wait_seconds_total",
            "counter",
            "Time spent waiting for previous holders' logged commits to be applied.",
            f(lk.handoff_wait_us) / 1e6,
        );
        metric(
            "wal_records_total",
            "counter",
            "WAL records appended.",
            f(wal.records),
        );
        metric(
            "wal_bytes_total",
            "counter",
            "WAL payload bytes appended.",
            f(wal.bytes),
        );
        metric("wal_fsyncs_total", "counter", "WAL fsyncs.", f(wal.fsyncs));
        metric(
            "wal_fsync_seconds_total",
            "counter",
            "Time spent in WAL fsyncs.",
            f(wal.fsync_total_us) / 1e6,
        );
        metric(
            "wal_fsync_max_seconds",
            "gauge",
            "Slowest WAL fsync.",
            f(wal.fsync_max_us) / 1e6,
        );
        metric(
            "wal_last_lsn",
            "gauge",
            "Last LSN appended.",
            f(wal.last_lsn),
        );
        metric(
            "wal_durable_lsn",
            "gauge",
            "Last LSN durable.",
            f(wal.durable_lsn),
        );
        metric(
            "cache_hits_total",
            "counter",
            "Page lookups served from the cache.",
            f(cache.hits),
        );
        metric(
            "cache_misses_total",
            "counter",
            "Page lookups that read the file.",
            f(cache.misses),
        );
        metric(
            "cache_evictions_total",
            "counter",
            "Pages evicted.",
            f(cache.evictions),
        );
        metric(
            "cache_write_backs_total",
            "counter",
            "Dirty pages written back by eviction.",
            f(cache.write_backs),
        );
        metric(
            "cache_hit_ratio",
            "gauge",
            "Hits over lookups.",
            cache.hit_ratio,
        );
        metric(
            "cache_frames",
            "gauge",
            "Pages the cache holds at most.",
            f(cache.frames),
        );
        metric(
            "checkpoints_total",
            "counter",
            "Checkpoints taken.",
            f(ck.count),
        );
        metric(
            "checkpoint_pages_total",
            "counter",
            "Pages written by checkpoints.",
            f(ck.pages_written),
        );
        metric(
            "checkpoint_repacked_leaves_total",
            "counter",
            "Leaves given back by repacking loose leaves in checkpoints.",
            f(ck.repacked_leaves),
        );
        metric(
            "checkpoint_relocated_pages_total",
            "counter",
            "Pages checkpoints moved off the file's tail.",
            f(ck.relocated_pages),
        );
        metric(
            "checkpoint_seconds_total",
            "counter",
            "Time spent in checkpoints.",
            f(ck.total_us) / 1e6,
        );
        metric(
            "checkpoint_last_seconds",
            "gauge",
            "Duration of the last checkpoint.",
            f(ck.last_us) / 1e6,
        );
        metric(
            "checkpoint_max_seconds",
            "gauge",
            "Duration of the slowest checkpoint.",
            f(ck.max_us) / 1e6,
        );
        metric(
            "checkpoint_lsn",
            "gauge",
            "LSN the newest durable checkpoint covers.",
            f(ck.lsn),
        );
        metric("gc_passes_total", "counter", "GC passes.", f(gc.passes));
        metric(
            "gc_versions_removed_total",
            "counter",
            "Versions removed by GC.",
            f(gc.versions_removed),
        );
        metric(
            "gc_keys_removed_total",
            "counter",
            "Deleted keys removed whole by GC.",
            f(gc.keys_removed),
        );
        metric(
            "gc_pending_keys",
            "gauge",
            "Keys waiting for GC.",
            f(gc.pending_keys),
        );
        metric(
            "file_pages",
            "gauge",
            "Pages in the page file.",
            f(file.pages),
        );
        metric(
            "file_peak_data_bytes",
            "gauge",
            "Most bytes the page file held since the open.",
            f(file.peak_data_bytes),
        );
        metric(
            "file_data_bytes",
            "gauge",
            "Bytes of the page file.",
            f(file.data_bytes),
        );
        metric(
            "file_free_pages",
            "gauge",
            "Free pages.",
            f(file.free_pages),
        );
        metric(
            "file_pending_pages",
            "gauge",
            "Pages freed but held for a retained checkpoint.",
            f(file.pending_pages),
        );
        metric("keyspaces", "gauge", "Keyspaces.", f(file.keyspaces));
        metric(
            "read_only",
            "gauge",
            "1 when the database refuses writes after a failure.",
            f(u64::from(self.read_only_reason.is_some())),
        );
        out
    }
}
