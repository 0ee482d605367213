//! Bench: backups, verification, restores and point-in-time recovery (issue #18), on the
//! real disk, beside the disk's own sequential bandwidth measured in the same run.
//!
//! - `disk_write_mb_s`, `disk_read_mb_s`: a file of the database's size written in 1 MiB
//!   steps and fsynced, then read back (after dropping the page cache when this process
//!   may; the figures say which); `disk_copy_paced_mb_s`: that file copied in 1 MiB steps
//!   with an fsync every `PAGES_SYNC_BYTES`, as a backup writes (the disk's figure for a
//!   copy paced so that commits on the same disk keep moving); `disk_copy_mb_s`: the same
//!   copy unpaced, one fsync at the end (what the disk allows a restore).
//! - `backup_full_mb_s`: a full backup of the loaded database while a writer commits
//!   `Immediate` single-key transactions; `backup_commit_p99_us` and `_max_us`: those
//!   commits' latency during the backup.
//! - `backup_incremental_ms` after updating keys in 1 % of the leaves, and the bytes it
//!   copied; `verify_mb_s` over the chain; `restore_mb_s`, and `rto_restore_open_ms`: the
//!   restore and the first open of the restored database.
//! - `pitr_replay_ms`: `DB_WAL_MIB` MiB of commits archived after the full backup, recovered
//!   to the latest point (restore + open, which replays them); `rpo_lost_commits`: the
//!   acknowledged `Immediate` commits missing from that recovery (must be 0).
//! - `restore_vs_disk_copy`, `backup_vs_disk_copy_paced`, `verify_vs_disk_read`: each
//!   operation's rate over what the disk allows it in the same run.
//!
//! ```text
//! cargo bench -p lightning-db --bench backup
//! LIGHTNING_BENCH_QUICK=1 cargo bench -p lightning-db --bench backup   # smoke run
//! ```
//! Sizes: `DB_MIB` (default 1024, quick 48), `DB_WAL_MIB` (default 256, quick 16).
//! `LIGHTNING_BENCH_DIR` picks the disk. Writes `benchmark_results/<date>/backup.json`.
#![expect(clippy::print_stdout, reason = "a bench binary reports on stdout")]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "figures are floats"
)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lightning_db::backup::{self, RestoreOptions, Target};
use lightning_db::page::vfs::{OpenMode, OsVfs, Vfs};
use lightning_db::{Database, Durability, Options, TxOptions};
use lightning_testkit::bench::{Figure, percentile, quick, temp_dir, write_report};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const VALUE: usize = 1000;

fn env_u64(name: &str, default: u64) -> u64 {
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

fn options(archive: &Path) -> Options {
    Options {
        cache_bytes: 2 << 30,
        max_txn_bytes: 64 << 20,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 64 << 20,
        wal_archive_dir: Some(archive.to_path_buf()),
        ..Options::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Drops the page cache if this process may; says whether it did.
fn drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .and_then(|mut f| f.write_all(b"3\n"))
        .is_ok()
}

fn disk(dir: &Path, bytes: u64, figures: &mut Vec<Figure>) -> Result<bool> {
    let path = dir.join("bandwidth");
    let vfs = OsVfs::new();
    let chunk = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let f = vfs.open(&path, OpenMode::CreateNew)?;
    for i in 0..bytes >> 20 {
        f.write_at(&chunk, i << 20)?;
    }
    f.sync()?;
    let write = t.elapsed();
    drop(f);
    let dropped = drop_caches();
    let t = Instant::now();
    let f = vfs.open(&path, OpenMode::ReadOnly)?;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..bytes >> 20 {
        f.read_at(&mut buf, i << 20)?;
    }
    let read = t.elapsed();
    // Plain copies, source cold, no hashing, no checks: what the disk allows an operation
    // that reads and writes the same disk. One unpaced, one fsync at the end (a restore's
    // writes; its reference); one with a backup's pacing, an fsync every PAGES_SYNC_BYTES
    // (what the disk allows a copy that keeps commits on the same disk moving).
    let mut copy = |paced: bool| -> Result<Duration> {
        drop_caches();
        let copy_path = dir.join("bandwidth-copy");
        let t = Instant::now();
        let to = vfs.open(&copy_path, OpenMode::CreateNew)?;
        let mut unsynced = 0u64;
        for i in 0..bytes >> 20 {
            f.read_at(&mut buf, i << 20)?;
            to.write_at(&buf, i << 20)?;
            unsynced += 1 << 20;
            if paced && unsynced >= backup::PAGES_SYNC_BYTES {
                to.sync()?;
                unsynced = 0;
            }
        }
        to.sync()?;
        let took = t.elapsed();
        drop(to);
        std::fs::remove_file(&copy_path)?;
        Ok(took)
    };
    let copy_paced = copy(true)?;
    let copy_unpaced = copy(false)?;
    drop(f);
    std::fs::remove_file(&path)?;
    figures.push(Figure::new(
        "disk_write_mb_s",
        mb_s(bytes, write),
        "MB/s",
        format!("{} MiB written in 1 MiB steps, one fsync", bytes >> 20),
    ));
    figures.push(Figure::new(
        "disk_read_mb_s",
        mb_s(bytes, read),
        "MB/s",
        format!(
            "read back in 1 MiB steps ({})",
            if dropped {
                "page cache dropped first"
            } else {
                "page cache NOT dropped: no permission"
            }
        ),
    ));
    figures.push(Figure::new(
        "disk_copy_paced_mb_s",
        mb_s(bytes, copy_paced),
        "MB/s",
        format!(
            "{} MiB copied file to file in 1 MiB steps, an fsync every {} MiB (a backup's \
             pacing), source cold, no hashing",
            bytes >> 20,
            backup::PAGES_SYNC_BYTES >> 20
        ),
    ));
    figures.push(Figure::new(
        "disk_copy_mb_s",
        mb_s(bytes, copy_unpaced),
        "MB/s",
        format!(
            "{} MiB copied file to file in 1 MiB steps, one fsync at the end (a restore's \
             writes), source cold, no hashing",
            bytes >> 20
        ),
    ));
    Ok(dropped)
}

fn load(db: &Database, mib: u64) -> Result<u64> {
    let ks = db.keyspace("data")?;
    let n = (mib << 20) / (24 + VALUE as u64);
    let mut i = 0;
    while i < n {
        let mut tx = db.begin_write_with(TxOptions {
            durability: Some(Durability::None),
            ..TxOptions::default()
        })?;
        for _ in 0..20_000.min(n - i) {
            tx.put(&ks, &key(i), &[(i % 251) as u8; VALUE])?;
            i += 1;
        }
        tx.commit()?;
    }
    db.checkpoint()?;
    Ok(n)
}

#[expect(
    clippy::too_many_lines,
    reason = "the phases in order, each reporting its figures"
)]
fn main() -> Result<()> {
    let (db_mib, wal_mib) = if quick() {
        (48, 16)
    } else {
        (env_u64("DB_MIB", 1024), env_u64("DB_WAL_MIB", 256))
    };
    let tmp = temp_dir()?;
    let (dir, dest, archive) = (
        tmp.path().join("db"),
        tmp.path().join("backups"),
        tmp.path().join("archive"),
    );
    std::fs::create_dir_all(&dir)?;
    let mut figures = Vec::new();
    let dropped = disk(tmp.path(), db_mib << 20, &mut figures)?;
    let cache_note = if dropped {
        "page cache dropped before reads"
    } else {
        "page cache warm"
    };

    let db = Database::open(&dir, options(&archive))?;
    let n = load(&db, db_mib)?;
    let ks = db.keyspace("data")?;
    let file_bytes = std::fs::metadata(dir.join("data.ldb"))?.len();
    println!("loaded {n} keys, data.ldb {} MiB", file_bytes >> 20);

    // A full backup while a writer commits durably.
    drop_caches();
    let stop = AtomicBool::new(false);
    let lat = Mutex::new(Vec::new());
    let acked = AtomicU64::new(0);
    let (full, full_time) = std::thread::scope(|s| -> Result<_> {
        let (db, ks, stop, lat, acked) = (&db, &ks, &stop, &lat, &acked);
        s.spawn(move || {
            let mut mine = Vec::new();
            let mut i = 1u64 << 40;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                if db.put(ks, &key(i), b"during the backup").is_ok() {
                    mine.push(t0.elapsed().as_nanos() as u64);
                    acked.store(i, Ordering::Relaxed);
                }
                i += 1;
            }
            if let Ok(mut l) = lat.lock() {
                l.extend(mine);
            }
        });
        let t = Instant::now();
        let m = db.backup(&dest, false);
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        Ok((m?, took))
    })?;
    let mut lat = lat.into_inner()?;
    let commits = lat.len();
    figures.push(Figure::new("backup_full_mb_s", mb_s(full.bytes(), full_time), "MB/s", format!("full backup of a {} MiB database ({} MiB copied), {cache_note}, with a writer committing", file_bytes >> 20, full.bytes() >> 20)));
    figures.push(Figure::new(
        "backup_full_ms",
        ms(full_time),
        "ms",
        "the same backup's duration",
    ));
    figures.push(Figure::new(
        "backup_commit_p99_us",
        percentile(&mut lat, 0.99) as f64 / 1e3,
        "us",
        format!("{commits} Immediate single-key commits during the full backup"),
    ));
    figures.push(Figure::new(
        "backup_commit_max_us",
        lat.iter().max().copied().unwrap_or(0) as f64 / 1e3,
        "us",
        "the longest of them",
    ));

    // An incremental backup takes in what the writer changed during the full one; then 1 %
    // of the leaves change, and the next incremental backup is timed.
    db.backup(&dest, true)?;
    let leaves = file_bytes / 8192;
    let changes = (leaves / 100).max(1);
    let mut tx = db.begin_write()?;
    for j in 0..changes {
        tx.put(&ks, &key(j * (n / changes)), &[1u8; VALUE])?;
    }
    tx.commit()?;
    let t = Instant::now();
    let incr = db.backup(&dest, true)?;
    let incr_time = t.elapsed();
    let copied: u64 = incr.extents.iter().map(|e| e.count).sum();
    figures.push(Figure::new("backup_incremental_ms", ms(incr_time), "ms", format!("incremental backup after {changes} keys in as many leaves (1 % of ~{leaves} pages) changed: {copied} pages copied of {}", incr.live_pages())));
    figures.push(Figure::new(
        "backup_incremental_mib",
        incr.bytes() as f64 / f64::from(1u32 << 20),
        "MiB",
        "bytes the incremental backup holds (pages and WAL)",
    ));

    // Commits after the backups, archived: what point-in-time recovery replays.
    let wal_target = wal_mib << 20;
    let mut written = 0u64;
    let mut i = 1u64 << 41;
    while written < wal_target {
        let mut tx = db.begin_write_with(TxOptions {
            durability: Some(Durability::None),
            ..TxOptions::default()
        })?;
        for _ in 0..100 {
            tx.put(&ks, &key(i), &[3u8; VALUE])?;
            i += 1;
            written += (24 + VALUE + 13) as u64;
        }
        tx.commit()?;
    }
    let last_durable = 1u64 << 42;
    db.put(&ks, &key(last_durable), b"the last acknowledged commit")?;
    db.close()?;

    let vfs: Arc<dyn Vfs> = Arc::new(OsVfs::new());
    drop_caches();
    let t = Instant::now();
    let report = backup::verify(&vfs, &dest, None, &mut |_, _| {})?;
    figures.push(Figure::new("verify_mb_s", mb_s(report.bytes, t.elapsed()), "MB/s", format!("the three backups, every byte hashed and every page and record checked ({} MiB), {cache_note}", report.bytes >> 20)));

    drop_caches();
    let to = tmp.path().join("restored");
    let t = Instant::now();
    let r = backup::restore(
        &vfs,
        &dest,
        &to,
        &RestoreOptions {
            backup: Some(incr.id),
            ..RestoreOptions::default()
        },
        &mut |_, _| {},
    )?;
    let restore_time = t.elapsed();
    let back = Database::open(
        &to,
        Options {
            wal_archive_dir: None,
            ..options(&archive)
        },
    )?;
    let rto = t.elapsed();
    back.close()?;
    figures.push(Figure::new(
        "restore_mb_s",
        mb_s(r.bytes, restore_time),
        "MB/s",
        format!(
            "restore of the chain (full + two incrementals, {} MiB read), {cache_note}",
            r.bytes >> 20
        ),
    ));
    figures.push(Figure::new(
        "rto_restore_open_ms",
        ms(rto),
        "ms",
        "restore of the chain and the first open of the restored database",
    ));

    std::fs::remove_dir_all(&to)?;
    let t = Instant::now();
    let opts = RestoreOptions {
        target: Some(Target::Latest),
        wal_dirs: vec![archive.clone(), dir.join("wal")],
        ..RestoreOptions::default()
    };
    let r = backup::restore(&vfs, &dest, &to, &opts, &mut |_, _| {})?;
    let back = Database::open(
        &to,
        Options {
            wal_archive_dir: None,
            ..options(&archive)
        },
    )?;
    let pitr = t.elapsed();
    let lost = u64::from(back.get(&ks_of(&back)?, &key(last_durable))?.is_none())
        + u64::from(
            back.get(&ks_of(&back)?, &key(acked.load(Ordering::Relaxed)))?
                .is_none(),
        );
    back.close()?;
    figures.push(Figure::new("pitr_replay_ms", ms(pitr), "ms", format!("restore to the latest point and open: {} records ({} MiB of commits) replayed from the archive and the log", r.records_replayed, wal_mib)));
    figures.push(Figure::new("rpo_lost_commits", lost as f64, "commits", "acknowledged Immediate commits missing after recovering to the latest point (the last one, and the last one during the backup)"));
    // Each copy beside what the disk allows the same operation in this run (the issue's goal:
    // within 80 %). A restore and a backup read and write the same disk, so their reference
    // is a plain copy on it, not the write rate alone (ADR 013).
    for (name, of, reference, what) in [
        (
            "restore_vs_disk_copy",
            "restore_mb_s",
            "disk_copy_mb_s",
            "restore over a plain unpaced copy",
        ),
        (
            "backup_vs_disk_copy_paced",
            "backup_full_mb_s",
            "disk_copy_paced_mb_s",
            "full backup over a plain copy with the backup's pacing",
        ),
        (
            "verify_vs_disk_read",
            "verify_mb_s",
            "disk_read_mb_s",
            "verify over a plain cold read",
        ),
    ] {
        let at = |n: &str| {
            figures
                .iter()
                .find(|f| f.name == n)
                .map_or(f64::NAN, |f| f.value)
        };
        let ratio = at(of) / at(reference);
        figures.push(Figure::new(
            name,
            ratio,
            "ratio",
            format!("{what}, both measured in this run ({of} / {reference})"),
        ));
    }
    write_report("backup", &figures)?;
    Ok(())
}

fn ks_of(db: &Database) -> Result<lightning_db::Keyspace> {
    Ok(db.open_keyspace("data")?)
}
