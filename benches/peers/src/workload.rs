//! redb's benchmark workloads (`crates/redb-bench/benches/common.rs`: 24-byte random keys,
//! 150-byte values, one big write transaction, random reads, seeks of ten entries, reads from
//! several threads, removal of half the keys, the file's size), run on one engine with the
//! same keys, values and order as on every other.
//!
//! Every read is checked: a point read must find its key with its value, byte for byte, and
//! a seek must visit the entries the sorted key set says it must (their count and a checksum
//! over their keys and values). Removals must each find their key. So no engine wins by
//! doing less.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use lightning_testkit::Rng;
use lightning_testkit::bench::percentile;

use lightning_page::vfs::{OpenMode, OsVfs, Vfs};

use crate::engine::{Engine, Reader, Result, Setup, Writer};

/// Key length (redb's benchmark: 24).
pub(crate) const KEY_LEN: usize = 24;
/// Value length (redb's benchmark: 150).
pub(crate) const VALUE_LEN: usize = 150;
/// Entries a seek visits.
pub(crate) const SEEK_LEN: usize = 10;
/// Random bytes every value is a window of.
const POOL_LEN: usize = 1 << 20;

/// A workload's figure: its name (after the engine's), unit, and how it is measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload {
    /// Stable name: a figure is `<engine>_<name>`.
    pub(crate) name: &'static str,
    /// Unit of the figure.
    pub(crate) unit: &'static str,
    /// Whether more is better (rates) or less (sizes, latencies).
    pub(crate) higher_is_better: bool,
    /// How it is measured.
    pub(crate) how: &'static str,
}

/// Every workload, in the order they run on an engine.
pub(crate) const WORKLOADS: &[Workload] = &[
    Workload {
        name: "insert_random_1txn",
        unit: "ops/s",
        higher_is_better: true,
        how: "every key inserted in random order in one write transaction, then a durable commit (lightning: checkpoint), commit included",
    },
    Workload {
        name: "size_loaded_mib",
        unit: "MiB",
        higher_is_better: false,
        how: "size of the engine's files after the insert",
    },
    Workload {
        name: "get_random",
        unit: "ops/s",
        higher_is_better: true,
        how: "every key read once in random order, 1 thread, one read transaction; each must find its value",
    },
    Workload {
        name: "range_seek10",
        unit: "ops/s",
        higher_is_better: true,
        how: "entries/2 seeks to random keys, each reading the next 10 entries (one op = seek + 10), 1 thread; counts and a checksum of every entry verified",
    },
    Workload {
        name: "get_random_2threads",
        unit: "ops/s",
        higher_is_better: true,
        how: "2 threads, each reading every key once in its own random order in its own read transaction (lightning: both share one Arc<BTree>); total reads / wall time",
    },
    Workload {
        name: "get_random_4threads",
        unit: "ops/s",
        higher_is_better: true,
        how: "4 threads, each reading every key once in its own random order in its own read transaction; total reads / wall time (2 cores: what the engine does with more readers than cores)",
    },
    Workload {
        name: "remove_half_1txn",
        unit: "ops/s",
        higher_is_better: true,
        how: "half the keys removed in random order in one write transaction, then a durable commit; each must have been there",
    },
    Workload {
        name: "rewrite_1txn",
        unit: "ops/s",
        higher_is_better: true,
        how: "every remaining value rewritten with a new one in one write transaction, then a durable commit",
    },
    Workload {
        name: "file_size_mib",
        unit: "MiB",
        higher_is_better: false,
        how: "size of the engine's files after insert all, commit; remove half, commit; rewrite the rest, commit; remove half of the rest, commit (a quarter of the entries live)",
    },
    Workload {
        name: "file_size_settled_mib",
        unit: "MiB",
        higher_is_better: false,
        how: "size of the engine's files once it settles with nothing written, on the state file_size_mib measured: two more durable commits that change nothing (redb, LMDB, SQLite, the raw tree: old pages leave the retained images); lightning_db: what its background work does with no writes, GC and then checkpoints (one per checkpoint interval while they give space back: repacking loose leaves, moving pages off the file's tail), run back to back until the file stops shrinking; no compact()",
    },
    Workload {
        name: "live_data_mib",
        unit: "MiB",
        higher_is_better: false,
        how: "bytes of the keys and values live after the file-size phases (a quarter of the entries), the same for every engine: the reference file sizes are compared with",
    },
    Workload {
        name: "durable_insert_commit",
        unit: "ops/s",
        higher_is_better: true,
        how: "one new key per write transaction, each committed durably (fsync; lightning: insert + checkpoint), 1 thread, on the database left by the phases before",
    },
    Workload {
        name: "durable_insert_commit_p50_us",
        unit: "us",
        higher_is_better: false,
        how: "median latency of one insert + durable commit",
    },
    Workload {
        name: "nondurable_insert_commit",
        unit: "ops/s",
        higher_is_better: true,
        how: "one new key per write transaction, each committed non-durably (redb Durability::None, LMDB MDB_NOSYNC, SQLite synchronous=NORMAL, lightning_db Durability::None, lightning_btree no checkpoint), 1 thread, for the durable phase's time",
    },
    Workload {
        name: "nondurable_insert_commit_p50_us",
        unit: "us",
        higher_is_better: false,
        how: "median latency of one insert + non-durable commit",
    },
    Workload {
        name: "batch_insert_1000_durable",
        unit: "ops/s",
        higher_is_better: true,
        how: "write transactions of 1,000 new random keys each, each committed durably, 1 thread, for the durable phase's time (at least 3 batches); inserts per second",
    },
];

/// `SplitMix64`'s finalizer: a bijection of `u64`, so distinct inputs give distinct keys.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Key `i`: 24 random-looking bytes, unique per `i` (the first 8 are a bijection of `i`).
pub(crate) fn key_of(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&mix(i).to_le_bytes());
    k[8..16].copy_from_slice(&mix(i ^ 0xA5A5_0000_0000_0000).to_le_bytes());
    k[16..].copy_from_slice(&mix(i ^ 0x5A5A_0000_0000_0000).to_le_bytes());
    k
}

fn as_index(i: u64) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// A random permutation of `0..n`.
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<u32> = (0..n)
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    for i in (1..v.len()).rev() {
        v.swap(i, as_index(rng.below(i as u64 + 1)));
    }
    v
}

/// What an entry adds to a seek's checksum.
fn entry_sum(key: &[u8], value: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    u64::from_le_bytes(first)
        .wrapping_add(u64::from(value[0]))
        .wrapping_add(u64::from(value[value.len() - 1]) << 8)
}

/// The keys, values and orders every engine gets, generated once per run.
pub(crate) struct Data {
    keys: Vec<[u8; KEY_LEN]>,
    pool: Vec<u8>,
    /// Point reads: every index once.
    read_order: Vec<u32>,
    /// Reads from two and four threads: a permutation each.
    thread_orders: [Vec<u32>; 4],
    /// Removals: the first half goes in `remove_half_1txn`, the rest is rewritten, then its
    /// first half goes too.
    removal_order: Vec<u32>,
    /// Seek keys (indices) and what the seeks must visit in all: entries and checksum.
    seeks: Vec<u32>,
    seek_entries: u64,
    seek_sum: u64,
}

impl Data {
    /// Generates `n` keys and every order.
    pub(crate) fn new(n: usize) -> Self {
        let keys: Vec<[u8; KEY_LEN]> = (0..n as u64).map(key_of).collect();
        let mut rng = Rng::new(7);
        let pool = rng.bytes(POOL_LEN);
        let mut data = Data {
            keys,
            pool,
            read_order: permutation(n, 1),
            thread_orders: [
                permutation(n, 2),
                permutation(n, 3),
                permutation(n, 8),
                permutation(n, 9),
            ],
            removal_order: permutation(n, 4),
            seeks: Vec::new(),
            seek_entries: 0,
            seek_sum: 0,
        };
        // Seeks: to keys at random positions of the sorted key set; what each must visit
        // follows from that position.
        let mut sorted: Vec<u32> = (0..n).map(|i| u32::try_from(i).unwrap_or(0)).collect();
        sorted.sort_unstable_by_key(|&i| data.keys[i as usize]);
        assert!(
            sorted
                .windows(2)
                .all(|w| data.keys[w[0] as usize] < data.keys[w[1] as usize]),
            "keys are unique"
        );
        let mut rng = Rng::new(5);
        for _ in 0..n / 2 {
            let at = as_index(rng.below(n as u64));
            data.seeks.push(sorted[at]);
            for &i in &sorted[at..(at + SEEK_LEN).min(n)] {
                data.seek_entries += 1;
                data.seek_sum = data
                    .seek_sum
                    .wrapping_add(entry_sum(data.key(i), data.value(i, 0)));
            }
        }
        data
    }

    /// Entries loaded.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn key(&self, i: u32) -> &[u8] {
        &self.keys[i as usize]
    }

    /// The value of key `i` in its `version`-th write: a window of the random pool.
    pub(crate) fn value(&self, i: u32, version: u64) -> &[u8] {
        let at = as_index(mix(u64::from(i) ^ (version << 40)) % (POOL_LEN - VALUE_LEN) as u64);
        &self.pool[at..at + VALUE_LEN]
    }
}

fn rate(ops: usize, took: Duration) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let ops = ops as f64;
    ops / took.as_secs_f64()
}

#[expect(clippy::cast_precision_loss, reason = "a size in MiB")]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// Reads `order`, each key must hold its value of `version`; how many did.
fn read_all<R: Reader>(r: &mut R, data: &Data, order: &[u32], version: u64) -> Result<usize> {
    let mut ok = 0;
    for &i in order {
        if r.get(data.key(i), |v| v == data.value(i, version))? == Some(true) {
            ok += 1;
        }
    }
    Ok(ok)
}

/// The disk's limit: 4 KiB writes (a page) into a preallocated file, each followed by
/// `fdatasync`, for `budget`. Syncs per second.
pub(crate) fn raw_fdatasync(dir: &Path, budget: Duration) -> Result<f64> {
    const PAGE: usize = 4096;
    const LEN: u64 = 64 << 20;
    let path = dir.join("raw-fdatasync");
    let file = OsVfs.open(&path, OpenMode::CreateNew)?;
    let chunk = vec![0u8; 1 << 20];
    for at in (0..LEN).step_by(chunk.len()) {
        file.write_at(&chunk, at)?;
    }
    file.sync()?;
    let page = [7u8; PAGE];
    let (mut syncs, mut at) = (0u32, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget || syncs < 3 {
        file.write_at(&page, at)?;
        file.sync()?;
        syncs += 1;
        at = (at + PAGE as u64) % LEN;
    }
    let took = start.elapsed();
    drop(file);
    OsVfs.remove(&path)?;
    Ok(f64::from(syncs) / took.as_secs_f64())
}

/// Every key of each order read by a thread of its own (its own read transaction), all
/// starting together: the wall time and how many reads found their value.
fn parallel_reads<E: Engine>(
    engine: &E,
    data: &Data,
    orders: &[Vec<u32>],
) -> Result<(Duration, usize)> {
    let barrier = Barrier::new(orders.len() + 1);
    std::thread::scope(|s| {
        let readers: Vec<_> = orders
            .iter()
            .map(|order| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    engine.read(|r| read_all(r, data, order, 0))
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        let mut found = 0;
        for r in readers {
            found += r.join().map_err(|_| "a reader thread panicked")??;
        }
        Ok((t.elapsed(), found))
    })
}

/// What one engine's round measured.
pub(crate) struct Run {
    /// The engine's configuration and what it reported.
    pub(crate) describe: String,
    /// One figure per [`WORKLOADS`] entry, in that order.
    pub(crate) figures: Vec<f64>,
    /// The raw fdatasync rate of the disk just before the durable commits.
    pub(crate) fdatasync: f64,
}

/// Runs every workload of [`WORKLOADS`] on a new `E` in `dir`; the figures in that order.
#[expect(
    clippy::too_many_lines,
    reason = "the workloads, step by step, in order"
)]
pub(crate) fn run<E: Engine>(
    dir: &Path,
    setup: &Setup,
    data: &Data,
    sync_for: Duration,
) -> Result<Run> {
    let n = data.len();
    let engine = E::create(dir, setup)?;
    let mut out = Vec::new();

    // 1. Insert every key in random order in one write transaction.
    let t = Instant::now();
    engine.write(|w| {
        for i in 0..data.len() {
            let i = u32::try_from(i)?;
            w.insert(data.key(i), data.value(i, 0))?;
        }
        Ok(())
    })?;
    out.push(rate(n, t.elapsed()));
    out.push(mib(engine.disk_bytes(dir)?));

    // 2. Random point reads, one thread.
    let t = Instant::now();
    let found = engine.read(|r| read_all(r, data, &data.read_order, 0))?;
    out.push(rate(n, t.elapsed()));
    assert_eq!(found, n, "{}: point reads found every key", E::NAME);

    // 3. Seek + 10 entries, one thread.
    let t = Instant::now();
    let (entries, sum) = engine.read(|r| {
        let (mut entries, mut sum) = (0u64, 0u64);
        for &i in &data.seeks {
            let seen = r.range_from(data.key(i), SEEK_LEN, |k, v| {
                sum = sum.wrapping_add(entry_sum(k, v));
            })?;
            entries += seen as u64;
        }
        Ok((entries, sum))
    })?;
    out.push(rate(data.seeks.len(), t.elapsed()));
    assert_eq!(
        (entries, sum),
        (data.seek_entries, data.seek_sum),
        "{}: seeks visited the expected entries",
        E::NAME
    );

    // 4. Random point reads, two then four threads at once.
    for threads in [2, 4] {
        let (took, found) = parallel_reads(&engine, data, &data.thread_orders[..threads])?;
        out.push(rate(threads * n, took));
        assert_eq!(
            found,
            threads * n,
            "{}: {threads} threads found every key",
            E::NAME
        );
    }

    // 5. Remove half the keys in one write transaction.
    let (gone, kept) = data.removal_order.split_at(n / 2);
    let t = Instant::now();
    let removed = engine.write(|w| {
        let mut removed = 0;
        for &i in gone {
            removed += usize::from(w.remove(data.key(i))?);
        }
        Ok(removed)
    })?;
    out.push(rate(gone.len(), t.elapsed()));
    assert_eq!(
        removed,
        gone.len(),
        "{}: every removal found its key",
        E::NAME
    );

    // 6. Rewrite every remaining value, then remove half of those: the file's size.
    let t = Instant::now();
    engine.write(|w| {
        for &i in kept {
            w.insert(data.key(i), data.value(i, 1))?;
        }
        Ok(())
    })?;
    out.push(rate(kept.len(), t.elapsed()));
    let (gone_too, live) = kept.split_at(kept.len() / 2);
    let removed = engine.write(|w| {
        let mut removed = 0;
        for &i in gone_too {
            removed += usize::from(w.remove(data.key(i))?);
        }
        Ok(removed)
    })?;
    assert_eq!(removed, gone_too.len(), "{}: second removals", E::NAME);
    out.push(mib(engine.disk_bytes(dir)?));
    engine.settle(dir)?;
    out.push(mib(engine.disk_bytes(dir)?));
    out.push(mib(u64::try_from(live.len() * (KEY_LEN + VALUE_LEN))?));
    // Untimed: a sample of the final state holds what it must.
    engine.read(|r| {
        let sample: Vec<u32> = live.iter().step_by(16).copied().collect();
        assert_eq!(
            read_all(r, data, &sample, 1)?,
            sample.len(),
            "rewritten values"
        );
        for &i in gone.iter().chain(gone_too).step_by(16) {
            assert!(
                r.get(data.key(i), |_| ())?.is_none(),
                "removed keys are gone"
            );
        }
        Ok(())
    })?;

    // 7. Durable single-key commits for `sync_for`, just after the disk's raw rate.
    let fdatasync = raw_fdatasync(dir, sync_for)?;
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < sync_for || latencies.len() < 3 {
        let i = u64::try_from(n + latencies.len())?;
        let t = Instant::now();
        engine.write(|w| w.insert(&key_of(i), data.value(u32::try_from(i)?, 2)))?;
        latencies.push(u64::try_from(t.elapsed().as_nanos())?);
    }
    out.push(rate(latencies.len(), start.elapsed()));
    #[expect(clippy::cast_precision_loss, reason = "a latency in microseconds")]
    out.push(percentile(&mut latencies, 0.5) as f64 / 1e3);
    let mut next = u64::try_from(n + latencies.len())?;

    // 8. Non-durable single-key commits, as long.
    latencies.clear();
    let start = Instant::now();
    while start.elapsed() < sync_for || latencies.len() < 3 {
        let t = Instant::now();
        engine.write_with(false, |w| {
            w.insert(&key_of(next), data.value(u32::try_from(next)?, 2))
        })?;
        next += 1;
        latencies.push(u64::try_from(t.elapsed().as_nanos())?);
    }
    out.push(rate(latencies.len(), start.elapsed()));
    #[expect(clippy::cast_precision_loss, reason = "a latency in microseconds")]
    out.push(percentile(&mut latencies, 0.5) as f64 / 1e3);

    // 9. Batches of 1,000 new keys, each committed durably.
    let (mut batches, start) = (0usize, Instant::now());
    while start.elapsed() < sync_for || batches < 3 {
        engine.write(|w| {
            for _ in 0..1000 {
                w.insert(&key_of(next), data.value(u32::try_from(next)?, 3))?;
                next += 1;
            }
            Ok(())
        })?;
        batches += 1;
    }
    out.push(rate(batches * 1000, start.elapsed()));
    // Untimed: the last batch is there.
    engine.read(|r| {
        let last = next - 1;
        let want = data.value(u32::try_from(last)?, 3);
        assert_eq!(
            r.get(&key_of(last), |v| v == want)?,
            Some(true),
            "{}: the last batch's key",
            E::NAME
        );
        Ok::<_, crate::engine::BoxError>(())
    })?;

    debug_assert_eq!(out.len(), WORKLOADS.len());
    Ok(Run {
        describe: engine.describe(),
        figures: out,
        fdatasync,
    })
}
