//! Bench: durable commits per second and commit latency under group commit, throughput of
//! `Eventual` and `None` appends, and the raw fdatasync limit of the same disk, all in one
//! run. Writes `benchmark_results/<YYYY-MM-DD>/wal.json` and `wal.html`.
//!
//! ```text
//! cargo bench -p lightning-wal --bench wal_commit
//! ```
//! `LIGHTNING_BENCH_QUICK=1` shortens every measurement (a smoke run). The temporary files
//! go to `LIGHTNING_BENCH_DIR` if set (to measure a particular disk), else the system's
//! temporary directory.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lightning_page::vfs::{OpenMode, OsVfs, Vfs};
use lightning_testkit::bench::{Figure, percentile, quick, temp_dir, write_report};
use lightning_wal::{Durability, Wal, WalOptions};

/// The physical limit: 128-byte appends to a preallocated (written and synced) file, each
/// followed by fdatasync. Returns syncs per second.
fn raw_fdatasync(budget: Duration, figures: &mut Vec<Figure>) -> f64 {
    let dir = temp_dir().unwrap();
    let path = dir.path().join("raw");
    let file = OsVfs.open(&path, OpenMode::CreateNew).unwrap();
    let len = 64u64 << 20;
    let zeros = vec![0u8; 1 << 20];
    for at in (0..len).step_by(zeros.len()) {
        file.write_at(&zeros, at).unwrap();
    }
    file.sync().unwrap();
    let rec = [7u8; 128];
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut at = 0;
    while start.elapsed() < budget && at + 128 < len {
        let t = Instant::now();
        file.write_at(&rec, at).unwrap();
        file.sync().unwrap();
        lat.push(u64::try_from(t.elapsed().as_micros()).unwrap());
        at += 128;
    }
    let n = lat.len();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    figures.push(Figure::new(
        "raw_fdatasync_128b",
        rate,
        "syncs/s",
        format!("{n} pwrite+fdatasync on a preallocated file; p50 {p50} us, p99 {p99} us"),
    ));
    figures.push(Figure::new(
        "raw_fdatasync_128b_p50",
        p50 as f64,
        "us",
        "latency of one pwrite+fdatasync",
    ));
    rate
}

/// How a durable-commit run is set up beyond threads and record size.
#[derive(Clone, Copy, Default)]
struct Setup {
    /// Waiters never poll (`WalOptions::wait_spin` zero).
    no_poll: bool,
    /// A CPU-bound thread runs beside the appenders.
    cpu_work: bool,
}

/// A CPU-bound loop until `stop`; returns rounds done.
fn cpu_work(stop: &AtomicBool) -> u64 {
    let (mut x, mut rounds) = (1u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        for i in 0..1000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        }
        std::hint::black_box(x);
        rounds += 1;
    }
    rounds
}

/// CPU-bound rounds per second of one thread with the machine otherwise idle.
fn cpu_work_alone(budget: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || cpu_work(&stop))
    };
    std::thread::sleep(budget);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap() as f64 / budget.as_secs_f64()
}

/// `threads` appenders doing `Immediate` appends of `size` bytes for `budget`. Returns
/// commits per second, and the CPU-bound thread's rounds per second if there was one.
fn durable_commits(
    threads: usize,
    size: usize,
    budget: Duration,
    setup: Setup,
    figures: &mut Vec<Figure>,
) -> (f64, f64) {
    let dir = temp_dir().unwrap();
    let opts = WalOptions {
        segment_size: 64 << 20,
        wait_spin: if setup.no_poll {
            Duration::ZERO
        } else {
            WalOptions::default().wait_spin
        },
        ..WalOptions::default()
    };
    let wal = Arc::new(Wal::open(Arc::new(OsVfs), &dir.path().join("wal"), opts).unwrap());
    // Warm up: the first segment's creation and preallocation are not part of the figure.
    wal.append(0, b"warm", Durability::Immediate).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                let payload = vec![0x5Au8; size];
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    wal.append(1, &payload, Durability::Immediate).unwrap();
                    lat.push(u64::try_from(t.elapsed().as_micros()).unwrap());
                }
                lat
            })
        })
        .collect();
    let cpu = setup.cpu_work.then(|| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || cpu_work(&stop))
    });
    std::thread::sleep(budget);
    stop.store(true, Ordering::Relaxed);
    let cpu_rate = cpu.map_or(0.0, |c| c.join().unwrap() as f64 / budget.as_secs_f64());
    let mut lat: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let stats = wal.stats();
    let n = lat.len();
    let rate = n as f64 / elapsed;
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    let per_sync = n as f64 / stats.syncs.max(1) as f64;
    let mut name = format!("durable_commits_{threads}t_{size}b");
    let mut how = String::new();
    if setup.no_poll {
        name.push_str("_no_poll");
        how.push_str(", waiters always sleep (wait_spin 0)");
    }
    if setup.cpu_work {
        name.push_str("_beside_cpu_work");
        how.push_str(", beside a CPU-bound thread");
    }
    figures.push(Figure::new(
        &name,
        rate,
        "commits/s",
        format!("{n} Immediate appends by {threads} threads{how}; p50 {p50} us, p99 {p99} us; {per_sync:.1} records per fsync"),
    ));
    figures.push(Figure::new(
        format!("{name}_p50"),
        p50 as f64,
        "us",
        "commit latency",
    ));
    figures.push(Figure::new(
        format!("{name}_p99"),
        p99 as f64,
        "us",
        "commit latency",
    ));
    (rate, cpu_rate)
}

/// One thread appending 4 KiB records with `durability` until `total` bytes, then a sync.
fn buffered_throughput(durability: Durability, total: usize, figures: &mut Vec<Figure>) {
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
    wal.append(0, b"warm", Durability::Immediate).unwrap();
    let payload = vec![0xA5u8; 4096];
    let start = Instant::now();
    for _ in 0..total / payload.len() {
        wal.append(1, &payload, durability).unwrap();
    }
    wal.sync().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let label = if durability == Durability::Eventual {
        "eventual"
    } else {
        "none"
    };
    figures.push(Figure::new(
        format!("{label}_4k_throughput"),
        total as f64 / secs / 1e6,
        "MB/s",
        format!("{} MB of 4 KiB {durability:?} appends from one thread, then one sync, in {secs:.2} s (segment creation included)", total >> 20),
    ));
}

fn main() {
    let quick = quick();
    let budget = Duration::from_millis(if quick { 200 } else { 2000 });
    let mut figures = Vec::new();
    let raw = raw_fdatasync(budget, &mut figures);
    let mut one = [0.0; 2];
    let mut sixteen = [0.0; 2];
    for (i, size) in [128usize, 4096].into_iter().enumerate() {
        for threads in [1usize, 4, 16, 64] {
            let (rate, _) = durable_commits(threads, size, budget, Setup::default(), &mut figures);
            if threads == 1 {
                one[i] = rate;
            }
            if threads == 16 {
                sixteen[i] = rate;
            }
        }
    }
    // What polling waiters buy, and what they cost a CPU-bound thread beside them.
    let no_poll = Setup {
        no_poll: true,
        cpu_work: false,
    };
    durable_commits(16, 128, budget, no_poll, &mut figures);
    let alone = cpu_work_alone(budget);
    for no_poll in [false, true] {
        let setup = Setup {
            no_poll,
            cpu_work: true,
        };
        let (_, beside) = durable_commits(16, 128, budget, setup, &mut figures);
        figures.push(Figure::new(
            if no_poll {
                "cpu_work_beside_16t_no_poll"
            } else {
                "cpu_work_beside_16t"
            },
            beside / alone,
            "ratio",
            "a CPU-bound thread's progress beside 16 committing threads / alone",
        ));
    }
    let total = if quick { 16 << 20 } else { 256 << 20 };
    buffered_throughput(Durability::Eventual, total, &mut figures);
    buffered_throughput(Durability::None, total, &mut figures);
    figures.push(Figure::new(
        "target_1t_vs_raw_128b",
        one[0] / raw,
        "ratio",
        "1-thread durable commits / raw fdatasync rate (target >= 0.8)",
    ));
    figures.push(Figure::new(
        "target_16t_vs_1t_128b",
        sixteen[0] / one[0],
        "ratio",
        "16-thread / 1-thread durable commits (target >= 8)",
    ));
    figures.push(Figure::new(
        "target_16t_vs_1t_4k",
        sixteen[1] / one[1],
        "ratio",
        "16-thread / 1-thread durable commits, 4 KiB records",
    ));
    let path = write_report("wal", &figures).unwrap();
    println!("wrote {}", path.display());
}
