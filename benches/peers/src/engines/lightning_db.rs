//! The database (`lightning-db`) through its public API: one keyspace, each write a
//! [`WriteTx`] committed `Immediate` (its WAL record fsynced by group commit), each read a
//! [`ReadTx`] snapshot; background checkpoints by WAL size and interval, as a user gets them.

use std::ops::ControlFlow;
use std::path::Path;

use lightning_db::{Database, Durability, Keyspace, Options, ReadTx, TxOptions, WriteTx};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::{Engine, Reader, Result, Setup, Writer};
use crate::oltp::{Metric, drive};
use crate::workload::mix;

/// How many times a write transaction runs before a retryable error is the bench's error.
const MAX_ATTEMPTS: u32 = 100;

/// A database with one keyspace.
pub(crate) struct LightningDb {
    db: Database,
    ks: Keyspace,
    cache_bytes: u64,
    /// Write transactions run again after a retryable error.
    retries: AtomicU64,
}

/// Writes of one transaction.
pub(crate) struct DbWriter<'t> {
    tx: WriteTx<'t>,
    ks: &'t Keyspace,
}

/// Reads of one snapshot.
pub(crate) struct DbReader<'t> {
    tx: ReadTx<'t>,
    ks: &'t Keyspace,
}

impl Engine for LightningDb {
    const NAME: &'static str = "lightning_db";
    type Writer<'t> = DbWriter<'t>;
    type Reader<'t> = DbReader<'t>;

    fn create(dir: &Path, setup: &Setup) -> Result<Self> {
        let db = Database::open(
            dir,
            Options {
                cache_bytes: setup.cache_bytes,
                // The bulk load and the removals are one transaction each.
                max_txn_bytes: 1 << 30,
                ..Options::default()
            },
        )?;
        let ks = db.keyspace("bench")?;
        Ok(LightningDb {
            db,
            ks,
            cache_bytes: setup.cache_bytes,
            retries: AtomicU64::new(0),
        })
    }

    fn describe(&self) -> String {
        let s = self.db.stats();
        format!(
            "lightning-db (Database on the OS file system), one keyspace, Immediate commits (non-durable commits: Durability::None), Snapshot isolation, buffer pool {} MiB, {} KiB pages, background checkpoints every {} MiB of WAL or {} s; over the round: {} checkpoints, {} GC passes, {} cache misses, {} write transactions retried after a conflict",
            self.cache_bytes >> 20,
            s.file.page_size >> 10,
            self.db.options().checkpoint_wal_bytes >> 20,
            self.db.options().checkpoint_interval_ms / 1000,
            s.checkpoint.count,
            s.gc.passes,
            s.cache.misses,
            self.retries.load(Ordering::Relaxed)
        )
    }

    /// The background's work with nothing written, back to back: GC, then checkpoints
    /// until the data file has not shrunk over 8 of them (at most 64).
    fn settle(&self, dir: &Path) -> Result<()> {
        self.db.gc()?;
        let mut smallest = self.disk_bytes(dir)?;
        let mut still = 0;
        for _ in 0..64 {
            self.db.checkpoint()?;
            let now = self.disk_bytes(dir)?;
            if now < smallest {
                smallest = now;
                still = 0;
            } else {
                still += 1;
                if still == 8 {
                    break;
                }
            }
        }
        Ok(())
    }

    fn write_with<R>(
        &self,
        durable: bool,
        mut f: impl FnMut(&mut DbWriter<'_>) -> Result<R>,
    ) -> Result<R> {
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        // Optimistic transactions conflict when writers race on a key (YCSB's hot keys): a
        // retryable error runs the transaction again, as `Database::update` does for users.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut w = DbWriter {
                tx: self.db.begin_write_with(TxOptions {
                    durability: Some(durability),
                    ..TxOptions::default()
                })?,
                ks: &self.ks,
            };
            let done = f(&mut w).and_then(|out| Ok((w.tx.commit()?, out)));
            match done {
                Ok((_, out)) => return Ok(out),
                Err(e)
                    if attempts < MAX_ATTEMPTS
                        && e.downcast_ref::<lightning_db::Error>()
                            .is_some_and(lightning_db::Error::is_retryable) =>
                {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn contended(
        &self,
        threads: usize,
        accounts: u32,
        budget: std::time::Duration,
    ) -> Result<Option<Vec<Metric>>> {
        self.contended_figures(threads, accounts, budget).map(Some)
    }

    fn read<R>(&self, f: impl FnOnce(&mut DbReader<'_>) -> Result<R>) -> Result<R> {
        f(&mut DbReader {
            tx: self.db.begin_read()?,
            ks: &self.ks,
        })
    }
}

impl Writer for DbWriter<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tx.get(self.ks, key)?)
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.tx.put(self.ks, key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let existed = self.tx.get(self.ks, key)?.is_some();
        self.tx.delete(self.ks, key)?;
        Ok(existed)
    }
}

impl Reader for DbReader<'_> {
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.tx.get_with(self.ks, key, f)?)
    }

    fn range_from(
        &mut self,
        start: &[u8],
        n: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        // Rows borrowed from their pages, as the raw tree's engine reads them.
        let mut seen = 0;
        self.tx.scan_with(self.ks, start.., |k, v| {
            f(k, v);
            seen += 1;
            if seen == n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(seen)
    }
}

/// An account's key in the transfers.
fn account(a: u32) -> Vec<u8> {
    format!("account-{a:03}").into_bytes()
}

/// A balance as stored (8 bytes, little-endian); anything else reads as `i64::MIN`, which
/// the conservation check at the end cannot miss.
fn balance(v: Option<Vec<u8>>) -> i64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(i64::MIN, i64::from_le_bytes)
}

impl LightningDb {
    /// One transfer of `amount` from `from` to `to`: both rows locked with
    /// `get_for_update` (in the order drawn, so deadlocks can happen), committed durably.
    fn transfer(&self, ks: &Keyspace, from: u32, to: u32, amount: i64) -> lightning_db::Result<()> {
        let mut tx = self.db.begin_write_with(TxOptions {
            pessimistic: true,
            durability: Some(Durability::Immediate),
            ..TxOptions::default()
        })?;
        let a = balance(tx.get_for_update(ks, &account(from))?);
        let b = balance(tx.get_for_update(ks, &account(to))?);
        tx.put(ks, &account(from), &a.wrapping_sub(amount).to_le_bytes())?;
        tx.put(ks, &account(to), &b.wrapping_add(amount).to_le_bytes())?;
        tx.commit()?;
        Ok(())
    }
}

/// The contended workload's figures, by name, unit and how.
const CONTENDED: &str = "pessimistic transfers (get_for_update of both accounts in the drawn order, two puts, Immediate commit; a retryable error (deadlock, conflict, lock timeout) retries) between";

impl LightningDb {
    #[expect(clippy::cast_precision_loss, reason = "figures")]
    #[expect(clippy::too_many_lines, reason = "set up, run, check, eight figures")]
    pub(crate) fn contended_figures(
        &self,
        threads: usize,
        accounts: u32,
        budget: std::time::Duration,
    ) -> Result<Vec<Metric>> {
        const START: i64 = 1_000;
        let ks = self.db.keyspace("accounts")?;
        self.db.update(|tx| {
            for a in 0..accounts {
                tx.put(&ks, &account(a), &START.to_le_bytes())?;
            }
            Ok(())
        })?;
        let before = self.db.stats();
        let (attempts, retries) = (AtomicU64::new(0), AtomicU64::new(0));
        let m = drive(threads, budget, &|t, i| {
            let r = mix(i ^ ((t as u64) << 40));
            let from = u32::try_from(r % u64::from(accounts))?;
            let to = (from + 1 + u32::try_from((r >> 20) % u64::from(accounts - 1))?) % accounts;
            let amount = i64::try_from(1 + (r >> 40) % 10)?;
            loop {
                attempts.fetch_add(1, Ordering::Relaxed);
                match self.transfer(&ks, from, to, amount) {
                    Ok(()) => return Ok(1),
                    Err(e) if e.is_retryable() => {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })?;
        let after = self.db.stats();
        let total: i64 = {
            let tx = self.db.begin_read()?;
            let mut sum = 0i64;
            for a in 0..accounts {
                sum = sum.wrapping_add(balance(tx.get(&ks, &account(a))?));
            }
            sum
        };
        if total != START * i64::from(accounts) {
            return Err(format!(
                "transfers did not conserve money: {total} instead of {}",
                START * i64::from(accounts)
            )
            .into());
        }
        let attempts = attempts.load(Ordering::Relaxed).max(1) as f64;
        let lock = |f: fn(&lightning_db::Stats) -> u64| f(&after) - f(&before);
        let waits = lock(|s| s.lock.waits);
        let handoffs = lock(|s| s.lock.handoff_waits);
        let how = format!(
            "{CONTENDED} {accounts} accounts on {threads} threads for {:.1} s; {} committed of {attempts} attempts; total balance checked after",
            budget.as_secs_f64(),
            m.ops
        );
        let per_10k = |x: u64| x as f64 / attempts * 10_000.0;
        Ok(vec![
            Metric::new("transfers_ops", "ops/s", &how, m.rate()),
            Metric::new(
                "transfers_p50_us",
                "us",
                format!("median latency of a transfer, retries included: {how}"),
                m.us(0.5),
            ),
            Metric::new(
                "transfers_p99_us",
                "us",
                format!("99th percentile latency of a transfer, retries included: {how}"),
                m.us(0.99),
            ),
            Metric::new(
                "transfers_deadlocks_per_10k",
                "per 10k txns",
                format!(
                    "deadlocks broken (db.stats().lock.deadlocks) per 10,000 transactions started: {how}"
                ),
                per_10k(lock(|s| s.lock.deadlocks)),
            ),
            Metric::new(
                "transfers_retries_per_10k",
                "per 10k txns",
                format!(
                    "transactions that failed with a retryable error per 10,000 started: {how}"
                ),
                per_10k(retries.load(Ordering::Relaxed)),
            ),
            Metric::new(
                "transfers_lock_waits_per_10k",
                "per 10k txns",
                format!(
                    "lock requests that waited (db.stats().lock.waits) per 10,000 transactions: {how}"
                ),
                per_10k(waits),
            ),
            Metric::new(
                "transfers_lock_wait_mean_us",
                "us",
                format!("mean time of a lock wait (db.stats().lock.wait_us / waits): {how}"),
                lock(|s| s.lock.wait_us) as f64 / waits.max(1) as f64,
            ),
            Metric::new(
                "transfers_handoff_waits_per_10k",
                "per 10k txns",
                format!(
                    "locks taken that then waited for the previous holder's logged commit to be applied (db.stats().lock.handoff_waits; the holder released the lock before its fsync, ADR 017) per 10,000 transactions: {how}"
                ),
                per_10k(handoffs),
            ),
            Metric::new(
                "transfers_handoff_wait_mean_us",
                "us",
                format!(
                    "mean time of such a wait (db.stats().lock.handoff_wait_us / handoff_waits): {how}"
                ),
                lock(|s| s.lock.handoff_wait_us) as f64 / handoffs.max(1) as f64,
            ),
            Metric::new(
                "transfers_lock_timeouts",
                "count",
                format!("lock waits that timed out (db.stats().lock.timeouts): {how}"),
                lock(|s| s.lock.timeouts) as f64,
            ),
        ])
    }
}

/// The buffer pool's hit ratio on YCSB C (zipfian 0.99 point reads, one thread, one
/// snapshot) with a cache of each `percent` of the data file, beside two offline figures
/// over the same page trace (recorded by `lightning_cache::trace`) with the same number of
/// frames: a static cache of the most popular pages of the measured part (what the issue
/// asks for), and Belady's optimum (evict the page used furthest ahead), the bound for any
/// demand-paging policy. The first half of `zipf` warms the cache; the second is measured.
#[expect(clippy::cast_precision_loss, reason = "ratios")]
#[expect(
    clippy::too_many_lines,
    reason = "load, then per cache size: warm, measure, trace, the offline figures"
)]
pub(crate) fn pool_hit_ratios(
    dir: &Path,
    data: &crate::workload::Data,
    zipf: &[u64],
    percents: &[u64],
) -> Result<(String, Vec<Metric>)> {
    let n = data.len();
    let file_bytes = {
        let db = Database::open(
            dir,
            Options {
                cache_bytes: (4 * 200 * n as u64).max(64 << 20),
                max_txn_bytes: 1 << 30,
                ..Options::default()
            },
        )?;
        let ks = db.keyspace("bench")?;
        let mut tx = db.begin_write()?;
        for i in 0..n {
            let i = u32::try_from(i)?;
            tx.put(&ks, data.key(i), data.value(i, 0))?;
        }
        tx.commit()?;
        db.checkpoint()?;
        let bytes = db.stats().file.data_bytes;
        db.close()?;
        bytes
    };
    let (warm, measured) = zipf.split_at(zipf.len() / 2);
    let mut out = Vec::new();
    let mut describe = String::new();
    for &pct in percents {
        let page = u64::from(Options::default().page_size);
        let cache_bytes = (file_bytes * pct / 100).max(64 * page);
        let db = Database::open(
            dir,
            Options {
                cache_bytes,
                ..Options::default()
            },
        )?;
        let ks = db.open_keyspace("bench")?;
        let frames = db.stats().cache.frames;
        let tx = db.begin_read()?;
        let read = |i: u64| -> Result<()> {
            let i = u32::try_from(i)?;
            if tx.get_with(&ks, data.key(i), <[u8]>::len)? != Some(crate::workload::VALUE_LEN) {
                return Err(format!("pool run: key {i} not found with its value").into());
            }
            Ok(())
        };
        lightning_cache::trace::start();
        for &i in warm {
            read(i)?;
        }
        let mut trace = lightning_cache::trace::stop();
        let from = trace.len();
        let before = db.stats().cache;
        lightning_cache::trace::start();
        for &i in measured {
            read(i)?;
        }
        let tail = lightning_cache::trace::stop();
        let after = db.stats().cache;
        drop(tx);
        db.close()?;
        let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
        let online = hits as f64 / (hits + misses).max(1) as f64;
        // The static optimum: the `frames` pages the measured part looked up most, held
        // from the start.
        let mut counts: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for &p in &tail {
            *counts.entry(p).or_default() += 1;
        }
        let mut by_count: Vec<u64> = counts.into_values().collect();
        by_count.sort_unstable_by(|a, b| b.cmp(a));
        let best: u64 = by_count.iter().take(usize::try_from(frames)?).sum();
        let lookups = tail.len();
        let static_opt = best as f64 / lookups.max(1) as f64;
        trace.extend(tail);
        let belady = lightning_cache::sim::belady_hits(&trace, usize::try_from(frames)?, from)
            as f64
            / lookups.max(1) as f64;
        let how = format!(
            "YCSB C, zipfian 0.99 point reads of {n} loaded keys, 1 thread: {} reads warm the pool, then {} are measured ({lookups} page lookups traced, {} counted by the pool); cache = {pct} % of the {} MiB data file ({frames} frames of {} KiB)",
            warm.len(),
            measured.len(),
            hits + misses,
            file_bytes >> 20,
            page >> 10
        );
        out.push(Metric::new(
            format!("pool_hit_ratio_c{pct}"),
            "ratio",
            format!("the buffer pool's hit ratio (SIEVE): {how}"),
            online,
        ));
        out.push(Metric::new(
            format!("pool_static_optimum_c{pct}"),
            "ratio",
            format!(
                "offline optimum of a static cache (the most looked-up pages of the measured trace, as many as the frames): {how}"
            ),
            static_opt,
        ));
        out.push(Metric::new(
            format!("pool_belady_c{pct}"),
            "ratio",
            format!("Belady's offline optimum (evict the page needed furthest ahead) over the same trace: {how}"),
            belady,
        ));
        out.push(Metric::new(
            format!("pool_vs_static_optimum_c{pct}"),
            "ratio",
            format!("pool_hit_ratio_c{pct} / pool_static_optimum_c{pct}"),
            online / static_opt.max(f64::MIN_POSITIVE),
        ));
        describe = format!(
            "lightning-db, default options but the cache; data file {} MiB",
            file_bytes >> 20
        );
    }
    Ok((describe, out))
}
