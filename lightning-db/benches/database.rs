//! Bench: the database's own figures (issue #14), on the real disk.
//!
//! - `commits_<n>_threads`: non-durable (`Durability::None`) single-key commits from 1, 4, 16
//!   and 64 threads on one database for a fixed time: throughput and p50/p99 latency.
//! - `checkpoint_*`: a single-key committer runs (`Eventual`) while a checkpoint writes at
//!   least `DIRTY_MIB` of dirty pages: commit latency p50/p99/max during it, the
//!   checkpoint's duration and pages.
//! - `close_ms`, `open_after_close_ms`: closing the database of the previous phase (its
//!   final checkpoint included) and opening it again, with its size.
//! - `recovery_ms`: a child process (this binary again) writes `WAL_MIB` of WAL without a
//!   checkpoint and is killed with SIGKILL; the open that replays it is timed.
//!
//! ```text
//! cargo bench -p lightning-db --bench database
//! LIGHTNING_BENCH_QUICK=1 cargo bench -p lightning-db --bench database   # smoke run
//! ```
//! Sizes: `DB_DIRTY_MIB` (default 320, quick 32), `DB_WAL_MIB` (default 256, quick 16),
//! `DB_SECS` per thread count (default 3, quick 0.5). `LIGHTNING_BENCH_DIR` picks the disk.
//! Writes `benchmark_results/<date>/database.json`.
#![expect(clippy::print_stdout, reason = "a bench binary reports on stdout")]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures are floats"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lightning_db::{Database, Durability, Options, TxOptions};
use lightning_testkit::bench::{Figure, percentile, quick, temp_dir, write_report};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CHILD: &str = "LIGHTNING_DB_BENCH_CHILD";
const VALUE: usize = 150;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn key(i: u64) -> [u8; 24] {
    let mut k = [b'k'; 24];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    k[8..16].copy_from_slice(&i.to_le_bytes());
    k
}

fn options() -> Options {
    Options {
        cache_bytes: 3 << 30,
        max_txn_bytes: 64 << 20,
        // The phases checkpoint themselves.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        ..Options::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// Single-key commits from `threads` threads for `secs`.
fn commits(dir: &Path, threads: u64, secs: f64, figures: &mut Vec<Figure>) -> Result<f64> {
    let db = Database::open(dir, options())?;
    let ks = db.keyspace("t")?;
    let stop = AtomicBool::new(false);
    let lat = Mutex::new(Vec::new());
    let tx_opts = TxOptions {
        durability: Some(Durability::None),
        ..TxOptions::default()
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (db, ks, stop, lat) = (&db, &ks, &stop, &lat);
            s.spawn(move || {
                let mut mine = Vec::with_capacity(1 << 20);
                let mut i = t << 40;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let mut tx = db.begin_write_with(tx_opts).expect("begin");
                    tx.put(ks, &key(i), &[7; VALUE]).expect("put");
                    tx.commit().expect("commit");
                    mine.push(t0.elapsed().as_nanos() as u64);
                    i += 1;
                }
                lat.lock().expect("lock").extend(mine);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = lat.into_inner()?;
    let rate = lat.len() as f64 / elapsed;
    let how = format!(
        "single-key put + commit (Durability::None, Snapshot, optimistic), {threads} threads, {secs} s, 24-byte keys, 150-byte values, on the OS file system"
    );
    figures.push(Figure::new(
        format!("commits_{threads}_threads"),
        rate,
        "ops/s",
        how.clone(),
    ));
    figures.push(Figure::new(
        format!("commits_{threads}_threads_p50_us"),
        us(percentile(&mut lat, 0.5)),
        "us",
        how.clone(),
    ));
    figures.push(Figure::new(
        format!("commits_{threads}_threads_p99_us"),
        us(percentile(&mut lat, 0.99)),
        "us",
        how,
    ));
    db.close()?;
    Ok(rate)
}

/// Loads `mib` MiB of keys and values without a checkpoint (all of it dirty in the cache).
fn load(db: &Database, mib: u64) -> Result<u64> {
    let ks = db.keyspace("data")?;
    let n = (mib << 20) / (24 + VALUE as u64);
    let mut i = 0;
    while i < n {
        let mut tx = db.begin_write_with(TxOptions {
            durability: Some(Durability::None),
            ..TxOptions::default()
        })?;
        for j in i..(i + 2000).min(n) {
            tx.put(&ks, &key(j), &[(j % 251) as u8; VALUE])?;
        }
        tx.commit()?;
        i += 2000;
    }
    Ok(n)
}

fn checkpoint_phase(dir: &Path, dirty_mib: u64, figures: &mut Vec<Figure>) -> Result<()> {
    let db = Database::open(dir, options())?;
    let t = Instant::now();
    let n = load(&db, dirty_mib)?;
    println!(
        "loaded {n} entries ({dirty_mib} MiB) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ks = db.keyspace("data")?;
    let stop = AtomicBool::new(false);
    let mut lat = Vec::new();
    let mut took = Duration::ZERO;
    let before = db.stats().checkpoint;
    std::thread::scope(|s| -> Result<()> {
        let committer = s.spawn(|| {
            let mut lat = Vec::new();
            let mut i = 1u64 << 50;
            let opts = TxOptions {
                durability: Some(Durability::Eventual),
                ..TxOptions::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let mut tx = db.begin_write_with(opts).expect("begin");
                tx.put(&ks, &key(i), &[1; VALUE]).expect("put");
                tx.commit().expect("commit");
                lat.push(t0.elapsed().as_nanos() as u64);
                i += 1;
            }
            lat
        });
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        db.checkpoint()?;
        took = t.elapsed();
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        lat = committer.join().map_err(|_| "committer panicked")?;
        Ok(())
    })?;
    let after = db.stats().checkpoint;
    let pages = after.pages_written - before.pages_written;
    let page = db.stats().file.page_size;
    let how = format!(
        "single-key Eventual commits on one thread while db.checkpoint() writes {} MiB of dirty pages ({pages} pages) after a {dirty_mib} MiB load",
        (pages * page) >> 20
    );
    figures.push(Figure::new("checkpoint_ms", ms(took), "ms", how.clone()));
    figures.push(Figure::new(
        "checkpoint_dirty_mib",
        (pages * page) as f64 / f64::from(1 << 20),
        "MiB",
        how.clone(),
    ));
    figures.push(Figure::new(
        "checkpoint_commits_during",
        lat.len() as f64,
        "commits",
        how.clone(),
    ));
    for (name, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        figures.push(Figure::new(
            format!("checkpoint_commit_{name}_us"),
            us(percentile(&mut lat, q)),
            "us",
            how.clone(),
        ));
    }
    let size = db.stats().file.data_bytes;
    let t = Instant::now();
    db.close()?;
    let close = t.elapsed();
    figures.push(Figure::new(
        "close_ms",
        ms(close),
        "ms",
        format!(
            "Database::close of a {} MiB database just checkpointed (final checkpoint, WAL sync)",
            size >> 20
        ),
    ));
    let t = Instant::now();
    let db = Database::open(dir, options())?;
    let open = t.elapsed();
    figures.push(Figure::new(
        "open_after_close_ms",
        ms(open),
        "ms",
        format!(
            "Database::open after a clean close, {} MiB page file",
            size >> 20
        ),
    ));
    drop(db);
    Ok(())
}

/// The child of the recovery phase: writes `mib` MiB of WAL, prints `done`, waits to be
/// killed.
fn child(dir: &str, mib: u64) -> Result<()> {
    let db = Database::open(dir, options())?;
    let ks = db.keyspace("wal")?;
    let mut i = 0u64;
    while db.stats().wal.bytes < mib << 20 {
        let mut tx = db.begin_write_with(TxOptions {
            durability: Some(Durability::None),
            ..TxOptions::default()
        })?;
        for _ in 0..100 {
            tx.put(&ks, &key(i % 200_000), &[(i % 251) as u8; VALUE])?;
            i += 1;
        }
        tx.commit()?;
    }
    std::thread::sleep(Duration::from_millis(50));
    println!("done {}", db.stats().wal.bytes);
    std::thread::sleep(Duration::from_secs(3600));
    Ok(())
}

fn recovery_phase(dir: &Path, mib: u64, figures: &mut Vec<Figure>) -> Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD, format!("{}:{mib}", dir.display()))
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut written = 0u64;
    for line in BufReader::new(out).lines() {
        if let Some(n) = line?.strip_prefix("done ") {
            written = n.parse()?;
            break;
        }
    }
    child.kill()?;
    child.wait()?;
    let t = Instant::now();
    let db = Database::open(dir, options())?;
    let took = t.elapsed();
    let replayed = db.stats().tx.recovered_commits;
    figures.push(Figure::new(
        "recovery_ms",
        ms(took),
        "ms",
        format!(
            "Database::open after SIGKILL with {} MiB of WAL above the checkpoint ({replayed} commits of 100 writes replayed)",
            written >> 20
        ),
    ));
    db.close()?;
    Ok(())
}

fn main() -> Result<()> {
    if let Ok(spec) = std::env::var(CHILD) {
        let (dir, mib) = spec.rsplit_once(':').ok_or("bad child spec")?;
        return child(dir, mib.parse()?);
    }
    let q = quick();
    let dirty = env_f64("DB_DIRTY_MIB", if q { 32.0 } else { 320.0 }) as u64;
    let wal = env_f64("DB_WAL_MIB", if q { 16.0 } else { 256.0 }) as u64;
    let secs = env_f64("DB_SECS", if q { 0.5 } else { 3.0 });
    let base = temp_dir()?;
    let mut figures = Vec::new();
    let mut rates = Vec::new();
    for threads in [1, 4, 16, 64] {
        let dir = base.path().join(format!("commits-{threads}"));
        rates.push(commits(&dir, threads, secs, &mut figures)?);
        std::fs::remove_dir_all(&dir)?;
    }
    figures.push(Figure::new(
        "commits_4_vs_1_thread",
        rates[1] / rates[0],
        "ratio",
        "non-durable single-key commits/s at 4 threads over 1 thread",
    ));
    figures.push(Figure::new(
        "commits_16_vs_1_thread",
        rates[2] / rates[0],
        "ratio",
        "non-durable single-key commits/s at 16 threads over 1 thread",
    ));
    let dir = base.path().join("checkpoint");
    checkpoint_phase(&dir, dirty, &mut figures)?;
    std::fs::remove_dir_all(&dir)?;
    let dir = base.path().join("recovery");
    recovery_phase(&dir, wal, &mut figures)?;
    let path = write_report("database", &figures)?;
    println!("wrote {}", path.display());
    Ok(())
}
