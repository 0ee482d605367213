//! `Database::stats()`: what the database did so far, serde-serializable and as Prometheus
//! text (`docs/runbooks/monitoring.md` says what each figure means).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

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
    pub(crate) recovered_commits: AtomicU64,
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
}

/// The write-ahead log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WalStats {
    /// Records appended (one per commit with writes).
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
        let t = self.inner().mgr.stats();
        let l = self.inner().mgr.locks().stats();
        let w = self.inner().wal.stats();
        let c = self.inner().store.pages.cache_stats();
        let a = self.inner().store.pages.allocator().stats();
        let k = &self.inner().counters;
        let file = self.inner().store.pages.file();
        let page_size = u64::from(file.page_size().bytes());
        Stats {
            tx: TxStats {
                commits: t.commits,
                write_conflicts: t.write_conflicts,
                read_conflicts: t.read_conflicts,
                phantom_conflicts: t.phantom_conflicts,
                retries: k.retries.load(Ordering::Relaxed),
                active: t.active,
                recovered_commits: k.recovered_commits.load(Ordering::Relaxed),
            },
            lock: LockStats {
                waits: l.waits,
                wait_us: us(l.wait_time),
                deadlocks: l.deadlocks,
                timeouts: l.timeouts,
            },
            wal: WalStats {
                records: w.appends,
                bytes: w.bytes,
                fsyncs: w.syncs,
                records_per_fsync_x100: w.appends.saturating_mul(100) / w.syncs.max(1),
                fsync_max_us: w.sync_latency_max_us,
                fsync_total_us: w.sync_latency_total_us,
                last_lsn: w.last_lsn.get(),
                durable_lsn: w.durable_lsn.get(),
            },
            cache: CacheStats {
                hits: c.hits,
                misses: c.misses,
                evictions: c.evictions,
                write_backs: c.write_backs,
                hit_ratio: c.hit_ratio(),
                frames: c.frames,
            },
            checkpoint: CheckpointStats {
                count: k.checkpoints.load(Ordering::Relaxed),
                pages_written: k.checkpoint_pages.load(Ordering::Relaxed),
                last_us: k.checkpoint_us_last.load(Ordering::Relaxed),
                max_us: k.checkpoint_us_max.load(Ordering::Relaxed),
                total_us: k.checkpoint_us_total.load(Ordering::Relaxed),
                lsn: self.checkpoint_lsn().get(),
            },
            gc: GcStats {
                passes: self.inner().store.gc.passes.load(Ordering::Relaxed),
                versions_removed: self
                    .inner()
                    .store
                    .gc
                    .versions_removed
                    .load(Ordering::Relaxed),
                keys_removed: self.inner().store.gc.keys_removed.load(Ordering::Relaxed),
                pending_keys: self.inner().store.gc_pending(),
            },
            file: FileStats {
                pages: file.page_count(),
                page_size,
                data_bytes: file.page_count() * page_size,
                free_pages: a.free,
                pending_pages: a.pending,
                keyspaces: self.keyspaces().len() as u64,
            },
            read_only_reason: self.inner().store.failure(),
        }
    }
}

impl Stats {
    /// The figures in the Prometheus text exposition format (version 0.0.4): one metric
    /// per figure, named `lightning_<group>_<figure>`, counters ending in `_total`.
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
        let (tx, l, w, c, k, g, fi) = (
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
            f(l.waits),
        );
        metric(
            "lock_wait_seconds_total",
            "counter",
            "Time spent waiting for locks.",
            f(l.wait_us) / 1e6,
        );
        metric(
            "lock_deadlocks_total",
            "counter",
            "Deadlocks broken.",
            f(l.deadlocks),
        );
        metric(
            "lock_timeouts_total",
            "counter",
            "Lock waits that timed out.",
            f(l.timeouts),
        );
        metric(
            "wal_records_total",
            "counter",
            "WAL records appended.",
            f(w.records),
        );
        metric(
            "wal_bytes_total",
            "counter",
            "WAL payload bytes appended.",
            f(w.bytes),
        );
        metric("wal_fsyncs_total", "counter", "WAL fsyncs.", f(w.fsyncs));
        metric(
            "wal_fsync_seconds_total",
            "counter",
            "Time spent in WAL fsyncs.",
            f(w.fsync_total_us) / 1e6,
        );
        metric(
            "wal_fsync_max_seconds",
            "gauge",
            "Slowest WAL fsync.",
            f(w.fsync_max_us) / 1e6,
        );
        metric("wal_last_lsn", "gauge", "Last LSN appended.", f(w.last_lsn));
        metric(
            "wal_durable_lsn",
            "gauge",
            "Last LSN durable.",
            f(w.durable_lsn),
        );
        metric(
            "cache_hits_total",
            "counter",
            "Page lookups served from the cache.",
            f(c.hits),
        );
        metric(
            "cache_misses_total",
            "counter",
            "Page lookups that read the file.",
            f(c.misses),
        );
        metric(
            "cache_evictions_total",
            "counter",
            "Pages evicted.",
            f(c.evictions),
        );
        metric(
            "cache_write_backs_total",
            "counter",
            "Dirty pages written back by eviction.",
            f(c.write_backs),
        );
        metric(
            "cache_hit_ratio",
            "gauge",
            "Hits over lookups.",
            c.hit_ratio,
        );
        metric(
            "cache_frames",
            "gauge",
            "Pages the cache holds at most.",
            f(c.frames),
        );
        metric(
            "checkpoints_total",
            "counter",
            "Checkpoints taken.",
            f(k.count),
        );
        metric(
            "checkpoint_pages_total",
            "counter",
            "Pages written by checkpoints.",
            f(k.pages_written),
        );
        metric(
            "checkpoint_seconds_total",
            "counter",
            "Time spent in checkpoints.",
            f(k.total_us) / 1e6,
        );
        metric(
            "checkpoint_last_seconds",
            "gauge",
            "Duration of the last checkpoint.",
            f(k.last_us) / 1e6,
        );
        metric(
            "checkpoint_max_seconds",
            "gauge",
            "Duration of the slowest checkpoint.",
            f(k.max_us) / 1e6,
        );
        metric(
            "checkpoint_lsn",
            "gauge",
            "LSN the newest durable checkpoint covers.",
            f(k.lsn),
        );
        metric("gc_passes_total", "counter", "GC passes.", f(g.passes));
        metric(
            "gc_versions_removed_total",
            "counter",
            "Versions removed by GC.",
            f(g.versions_removed),
        );
        metric(
            "gc_keys_removed_total",
            "counter",
            "Deleted keys removed whole by GC.",
            f(g.keys_removed),
        );
        metric(
            "gc_pending_keys",
            "gauge",
            "Keys waiting for GC.",
            f(g.pending_keys),
        );
        metric(
            "file_pages",
            "gauge",
            "Pages in the page file.",
            f(fi.pages),
        );
        metric(
            "file_data_bytes",
            "gauge",
            "Bytes of the page file.",
            f(fi.data_bytes),
        );
        metric("file_free_pages", "gauge", "Free pages.", f(fi.free_pages));
        metric(
            "file_pending_pages",
            "gauge",
            "Pages freed but held for a retained checkpoint.",
            f(fi.pending_pages),
        );
        metric("keyspaces", "gauge", "Keyspaces.", f(fi.keyspaces));
        metric(
            "read_only",
            "gauge",
            "1 when the database refuses writes after a failure.",
            f(u64::from(self.read_only_reason.is_some())),
        );
        out
    }
}
