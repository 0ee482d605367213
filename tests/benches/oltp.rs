//! Bench: durable transactions through the transactional stack — MVCC transactions whose
//! commit log is the WAL (appended under the commit ordering, then waited for: each commit
//! returns after the fsync that covers it, as an `Immediate` append), on the real disk. Writes
//! `benchmark_results/<YYYY-MM-DD>/oltp.json` and `oltp.html`.
//!
//! ```text
//! cargo bench -p lightning-tests --bench oltp
//! ```
//! Two workloads: one fresh key of 100 bytes per transaction (the "durable single-insert
//! commit" other embedded engines are measured by), and a transfer between two of 100,000
//! accounts (read two, write two). `LIGHTNING_BENCH_QUICK=1` shortens each point;
//! `LIGHTNING_BENCH_DIR` picks the disk.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    reason = "throughput figures are floating point"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lightning_mvcc::{
    CommitLog, Error, Isolation, LogError, MemStore, Timestamp, TxnManager, WriteSet,
};
use lightning_page::vfs::OsVfs;
use lightning_testkit::Rng;
use lightning_testkit::bench::{Figure, percentile, quick, temp_dir, write_report};
use lightning_wal::{Appended, Durability, Lsn, Wal, WalOptions};

const ACCOUNTS: u64 = 100_000;

fn record(ts: Timestamp, writes: &WriteSet) -> Vec<u8> {
    let mut out = ts.get().to_le_bytes().to_vec();
    for (k, v) in writes.iter() {
        out.extend_from_slice(&u32::try_from(k.len()).unwrap().to_le_bytes());
        out.extend_from_slice(k);
        let v = v.unwrap_or_default();
        out.extend_from_slice(&u32::try_from(v.len()).unwrap().to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The WAL as the commit log: appended under the commit ordering without waiting, waited
/// for (the group commit's fsync) outside it.
struct WalLog<'a> {
    wal: &'a Wal,
}

impl CommitLog for WalLog<'_> {
    type Ticket = Appended;

    fn log(&self, writes: &WriteSet, ts: Timestamp) -> Result<Appended, LogError> {
        Ok(self.wal.append(1, &record(ts, writes), Durability::None)?)
    }

    fn wait(&self, appended: Appended) -> Result<Lsn, LogError> {
        appended.wait()?;
        Ok(appended.lsn())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    Insert,
    Transfer,
}

/// `threads` clients running `work` for `budget`; returns commits per second.
fn run(work: Work, threads: u64, budget: Duration, figures: &mut Vec<Figure>) -> f64 {
    let dir = temp_dir().unwrap();
    let wal = Wal::open(
        Arc::new(OsVfs),
        &dir.path().join("wal"),
        WalOptions {
            segment_size: 64 << 20,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let durable = WalLog { wal: &wal };
    if work == Work::Transfer {
        for chunk in 0..ACCOUNTS / 1000 {
            let mut t = mgr.begin(Isolation::Snapshot);
            for i in chunk * 1000..(chunk + 1) * 1000 {
                t.put(&i.to_le_bytes(), &1000i64.to_le_bytes()).unwrap();
            }
            t.commit(&durable).unwrap();
        }
    }
    let syncs_before = wal.stats().syncs;
    let stop = AtomicBool::new(false);
    let aborts = AtomicU64::new(0);
    let start = Instant::now();
    let mut lat: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (mgr, durable, stop, aborts) = (&mgr, &durable, &stop, &aborts);
                s.spawn(move || {
                    let mut rng = Rng::new(t);
                    let value = vec![0x42u8; 100];
                    let mut lat = Vec::new();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        let mut txn = mgr.begin(Isolation::Snapshot);
                        match work {
                            Work::Insert => {
                                seq += 1;
                                let key = [t.to_le_bytes(), seq.to_le_bytes()].concat();
                                txn.put(&key, &value).unwrap();
                            }
                            Work::Transfer => {
                                let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
                                for (k, delta) in [(a, -1i64), (b, 1)] {
                                    let key = k.to_le_bytes();
                                    let v = txn.get(&key).unwrap().unwrap();
                                    let bal = i64::from_le_bytes(v.try_into().unwrap());
                                    txn.put(&key, &(bal + delta).to_le_bytes()).unwrap();
                                }
                            }
                        }
                        match txn.commit(durable) {
                            Ok(_) => lat.push(u64::try_from(began.elapsed().as_micros()).unwrap()),
                            Err(Error::Conflict(_)) => {
                                aborts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(budget);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let n = lat.len();
    let rate = n as f64 / secs;
    let syncs = wal.stats().syncs - syncs_before;
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    let (name, what) = match work {
        Work::Insert => ("insert", "one fresh 100-byte key per transaction"),
        Work::Transfer => ("transfer", "read two of 100,000 accounts, write both"),
    };
    figures.push(Figure::new(
        format!("durable_{name}_txns_{threads}t"),
        rate,
        "commits/s",
        format!(
            "{n} snapshot-isolated transactions ({what}) by {threads} threads, each an Immediate WAL append; p50 {p50} us, p99 {p99} us; {:.1} commits per fsync; {} aborted by conflicts",
            n as f64 / syncs.max(1) as f64,
            aborts.load(Ordering::Relaxed)
        ),
    ));
    rate
}

fn main() {
    let budget = Duration::from_millis(if quick() { 200 } else { 2000 });
    let mut figures = Vec::new();
    for work in [Work::Insert, Work::Transfer] {
        let one = run(work, 1, budget, &mut figures);
        run(work, 4, budget, &mut figures);
        let sixteen = run(work, 16, budget, &mut figures);
        figures.push(Figure::new(
            format!(
                "{}_16t_vs_1t",
                if work == Work::Insert {
                    "insert"
                } else {
                    "transfer"
                }
            ),
            sixteen / one,
            "ratio",
            "16-thread / 1-thread durable transactions",
        ));
    }
    let path = write_report("oltp", &figures).unwrap();
    println!("wrote {}", path.display());
}
