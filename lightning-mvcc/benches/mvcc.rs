//! Bench: commit validation throughput, lock acquire+release latency, and deadlock detection
//! latency. Writes `benchmark_results/<YYYY-MM-DD>/mvcc.json` and `mvcc.html`.
//!
//! ```text
//! cargo bench -p lightning-mvcc --bench mvcc
//! ```
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(clippy::cast_precision_loss, reason = "rates are floating point")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use lightning_mvcc::{
    Error, Isolation, LockManager, LockMode, MemStore, NoLog, Timestamp, TxnId, TxnManager,
};
use lightning_testkit::Rng;
use lightning_testkit::bench::{Figure, percentile, quick, write_report};

/// Optimistic read-2-write-2 transactions over `keys` keys from `threads` threads.
fn validation(threads: u64, keys: u64, budget: Duration, figures: &mut Vec<Figure>) {
    let mgr = Arc::new(TxnManager::new(
        Arc::new(MemStore::new()),
        Timestamp::new(0),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (commits, aborts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (mgr, stop, commits, aborts) = (
                Arc::clone(&mgr),
                Arc::clone(&stop),
                Arc::clone(&commits),
                Arc::clone(&aborts),
            );
            std::thread::spawn(move || {
                let mut rng = Rng::new(t);
                while !stop.load(Ordering::Relaxed) {
                    let mut txn = mgr.begin(Isolation::Snapshot);
                    for _ in 0..2 {
                        let k = rng.below(keys).to_le_bytes();
                        txn.get(&k).unwrap();
                        txn.put(&k, b"value").unwrap();
                    }
                    match txn.commit(&NoLog) {
                        Ok(_) => commits.fetch_add(1, Ordering::Relaxed),
                        Err(_) => aborts.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(budget);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let (c, a) = (
        commits.load(Ordering::Relaxed),
        aborts.load(Ordering::Relaxed),
    );
    let label = if keys <= 100 { "high" } else { "low" };
    figures.push(Figure::new(
        format!("commits_{threads}t_{label}_contention"),
        c as f64 / budget.as_secs_f64(),
        "commits/s",
        format!("read 2 + write 2 of {keys} keys, in-memory store, no WAL; {:.1} % aborted by conflicts", 100.0 * a as f64 / (a + c).max(1) as f64),
    ));
}

fn lock_latency(figures: &mut Vec<Figure>) {
    let m = LockManager::new(Duration::from_secs(1));
    let n = 200_000u64;
    let start = Instant::now();
    for i in 0..n {
        m.lock(TxnId::new(i), &i.to_le_bytes(), LockMode::Exclusive)
            .unwrap();
        m.release_all(TxnId::new(i));
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    figures.push(Figure::new(
        "lock_acquire_release",
        ns,
        "ns",
        format!("{n} uncontended exclusive lock + release_all, one thread"),
    ));
}

/// 32 pairs of threads (64 in all) repeatedly closing two-way cycles; the latency from the
/// cycle's closing request to the victim's error.
fn deadlock_latency(rounds: u64, figures: &mut Vec<Figure>) {
    let m = Arc::new(LockManager::new(Duration::from_secs(10)));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let pairs = 32u64;
    let handles: Vec<_> = (0..pairs)
        .map(|p| {
            let (m, samples) = (Arc::clone(&m), Arc::clone(&samples));
            std::thread::spawn(move || {
                for r in 0..rounds {
                    let base = (r * pairs + p) * 2 + 1;
                    let (older_id, younger_id) = (TxnId::new(base), TxnId::new(base + 1));
                    let (a, b) = (
                        format!("a{p}-{r}").into_bytes(),
                        format!("b{p}-{r}").into_bytes(),
                    );
                    let barrier = Arc::new(Barrier::new(2));
                    let closed = Arc::new(Mutex::new(None::<Instant>));
                    let (m2, b2, barrier2, closed2) = (
                        Arc::clone(&m),
                        b.clone(),
                        Arc::clone(&barrier),
                        Arc::clone(&closed),
                    );
                    let a2 = a.clone();
                    let younger = std::thread::spawn(move || {
                        m2.lock(younger_id, &b2, LockMode::Exclusive).unwrap();
                        barrier2.wait();
                        std::thread::sleep(Duration::from_micros(200));
                        *closed2.lock().unwrap() = Some(Instant::now());
                        let r = m2.lock(younger_id, &a2, LockMode::Exclusive);
                        let done = Instant::now();
                        m2.release_all(younger_id);
                        (r, done)
                    });
                    m.lock(older_id, &a, LockMode::Exclusive).unwrap();
                    barrier.wait();
                    let older = m.lock(older_id, &b, LockMode::Exclusive);
                    let (r, done) = younger.join().unwrap();
                    assert!(matches!(r, Err(Error::Deadlock { .. })) && older.is_ok());
                    m.release_all(older_id);
                    let start = closed.lock().unwrap().unwrap();
                    samples
                        .lock()
                        .unwrap()
                        .push(u64::try_from(done.duration_since(start).as_micros()).unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut s = Arc::try_unwrap(samples).unwrap().into_inner().unwrap();
    let n = s.len();
    let (p50, p99) = (percentile(&mut s, 0.5), percentile(&mut s, 0.99));
    figures.push(Figure::new("deadlock_detection_p50", p50 as f64, "us", format!("{n} two-way cycles closed by 64 threads at once; from the closing request to the victim's error")));
    figures.push(Figure::new(
        "deadlock_detection_p99",
        p99 as f64,
        "us",
        "target p99 < 100,000 us",
    ));
}

fn main() {
    let budget = Duration::from_millis(if quick() { 200 } else { 1000 });
    let mut figures = Vec::new();
    for threads in [1, 4, 16, 64] {
        validation(threads, 1_000_000, budget, &mut figures);
        validation(threads, 10, budget, &mut figures);
    }
    lock_latency(&mut figures);
    deadlock_latency(if quick() { 5 } else { 30 }, &mut figures);
    let path = write_report("mvcc", &figures).unwrap();
    println!("wrote {}", path.display());
}
