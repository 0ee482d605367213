//! `lightning demo`: a short mixed workload on a new database, from several threads at once
//! — durable and eventual commits, point reads, range scans, pessimistic transfers, a
//! snapshot audit — with a checkpoint in the middle; then a close and a reopen, and a check
//! that every acknowledged commit is there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lightning_db::{Database, Durability, Keyspace, Options, TxOptions};
use serde_json::json;

use crate::args::Format;
use crate::out::{self, CliError, Latencies, Outcome, Result, count, ms, size};

/// Accounts of the transfer workload, and what each starts with.
const ACCOUNTS: u64 = 100;
const OPENING_BALANCE: u64 = 1_000;
/// Rows a range scan reads, rows of one eventual commit.
const SCAN_ROWS: usize = 20;
const EVENT_BATCH: u64 = 10;

/// The kinds of work, in the order the summary lists them.
const KINDS: [&str; 6] = [
    "durable puts (Immediate)",
    "event batches (Eventual, x10)",
    "point reads",
    "range scans (20 rows)",
    "transfers (pessimistic)",
    "snapshot audits (100 accts)",
];

/// A small deterministic generator (xorshift), so runs differ only by timing.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn account(i: u64) -> Vec<u8> {
    format!("account:{i:03}").into_bytes()
}

fn balance(bytes: Option<&[u8]>) -> Result<u64> {
    let bytes = bytes.ok_or_else(|| CliError::Failed("an account vanished".into()))?;
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| CliError::Failed("an account balance is not 8 bytes".into()))?;
    Ok(u64::from_le_bytes(raw))
}

fn decode(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_le_bytes)
}

/// What one thread did.
#[derive(Default)]
struct Work {
    latencies: BTreeMap<&'static str, Latencies>,
    /// Acknowledged durable puts and deletes: key -> value (None: deleted).
    kv: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Acknowledged event keys.
    events: Vec<Vec<u8>>,
}

impl Work {
    fn time<T>(&mut self, kind: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let v = f()?;
        self.latencies.entry(kind).or_default().record(t.elapsed());
        Ok(v)
    }
}

struct Shared<'a> {
    db: &'a Database,
    kv: Keyspace,
    events: Keyspace,
    accounts: Keyspace,
    stop: AtomicBool,
    puts: AtomicU64,
    next_event: AtomicU64,
}

fn durable_writer(s: &Shared<'_>, seed: u64) -> Result<Work> {
    let mut w = Work::default();
    let mut rng = Rng(seed);
    let mut i = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        let delete = i > 10 && rng.below(10) == 0;
        let n = if delete { rng.below(i) } else { i };
        let key = format!("user:{n:08}").into_bytes();
        let value = format!("{{\"id\":{n},\"visits\":{}}}", rng.below(1000)).into_bytes();
        w.time(KINDS[0], || {
            let mut tx = s.db.begin_write_with(TxOptions {
                durability: Some(Durability::Immediate),
                ..TxOptions::default()
            })?;
            if delete {
                tx.delete(&s.kv, &key)?;
            } else {
                tx.put(&s.kv, &key, &value)?;
            }
            tx.commit()?;
            Ok(())
        })?;
        w.kv.insert(key, (!delete).then_some(value));
        if !delete {
            i += 1;
            s.puts.store(i, Ordering::Relaxed);
        }
    }
    Ok(w)
}

fn event_writer(s: &Shared<'_>) -> Result<Work> {
    let mut w = Work::default();
    while !s.stop.load(Ordering::Relaxed) {
        let first = s.next_event.fetch_add(EVENT_BATCH, Ordering::Relaxed);
        let keys: Vec<Vec<u8>> = (first..first + EVENT_BATCH)
            .map(|e| format!("event:{e:012}").into_bytes())
            .collect();
        w.time(KINDS[1], || {
            let mut tx = s.db.begin_write_with(TxOptions {
                durability: Some(Durability::Eventual),
                ..TxOptions::default()
            })?;
            for k in &keys {
                tx.put(&s.events, k, b"{\"type\":\"click\"}")?;
            }
            tx.commit()?;
            Ok(())
        })?;
        w.events.extend(keys);
    }
    Ok(w)
}

fn reader(s: &Shared<'_>, seed: u64) -> Result<Work> {
    let mut w = Work::default();
    let mut rng = Rng(seed);
    while !s.stop.load(Ordering::Relaxed) {
        for _ in 0..8 {
            let key = format!("user:{:08}", rng.below(s.puts.load(Ordering::Relaxed)));
            w.time(KINDS[2], || Ok(s.db.get(&s.kv, key.as_bytes())?))?;
        }
        let from = format!(
            "event:{:012}",
            rng.below(s.next_event.load(Ordering::Relaxed))
        );
        w.time(KINDS[3], || {
            let tx = s.db.begin_read()?;
            let mut n = 0;
            for row in tx.range(&s.events, from.as_bytes()..)?.take(SCAN_ROWS) {
                row?;
                n += 1;
            }
            Ok(n)
        })?;
        let total = w.time(KINDS[5], || {
            let tx = s.db.begin_read()?;
            let mut total = 0;
            for row in tx.prefix(&s.accounts, b"account:")? {
                total += balance(Some(&row?.1))?;
            }
            Ok(total)
        })?;
        if total != ACCOUNTS * OPENING_BALANCE {
            return Err(CliError::Failed(format!(
                "a snapshot saw the accounts sum to {total}, not {}: a transfer was partly visible",
                ACCOUNTS * OPENING_BALANCE
            )));
        }
    }
    Ok(w)
}

fn transfers(s: &Shared<'_>, seed: u64) -> Result<Work> {
    let mut w = Work::default();
    let mut rng = Rng(seed);
    let opts = TxOptions {
        pessimistic: true,
        durability: Some(Durability::Eventual),
        ..TxOptions::default()
    };
    while !s.stop.load(Ordering::Relaxed) {
        let from = rng.below(ACCOUNTS);
        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + rng.below(50);
        w.time(KINDS[4], || {
            Ok(s.db.update_with(opts, |tx| {
                // A balance that does not decode counts as 0: the audits and the final
                // verification then report the sum as wrong.
                let a = decode(tx.get_for_update(&s.accounts, &account(from))?);
                let b = decode(tx.get_for_update(&s.accounts, &account(to))?);
                if a >= amount {
                    tx.put(&s.accounts, &account(from), &(a - amount).to_le_bytes())?;
                    tx.put(&s.accounts, &account(to), &(b + amount).to_le_bytes())?;
                }
                Ok(())
            })?)
        })?;
    }
    Ok(w)
}

/// Where the demo's database lives, and whether it is removed at the end.
struct Place {
    dir: PathBuf,
    temporary: bool,
}

impl Place {
    fn new(dir: Option<&Path>) -> Result<Place> {
        if let Some(d) = dir {
            if d.exists() {
                return Err(CliError::Input(format!(
                    "{} exists already; the demo creates a new database (give a new path, or none for a temporary one)",
                    d.display()
                )));
            }
            return Ok(Place {
                dir: d.to_path_buf(),
                temporary: false,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("lightning-demo-{}-{nanos:09}", std::process::id()));
        Ok(Place {
            dir,
            temporary: true,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.temporary
            && self.dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the demo's directory");
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

fn demo_options() -> Options {
    Options {
        cache_bytes: 64 << 20,
        // A short run: let the background thread checkpoint and collect versions during it.
        checkpoint_interval_ms: 2_000,
        checkpoint_wal_bytes: 8 << 20,
        ..Options::default()
    }
}

/// `lightning demo [DIR]`.
#[expect(clippy::too_many_lines, reason = "the demo, phase by phase")]
pub(crate) fn run(dir: Option<&Path>, seconds: f64, format: Format) -> Result<Outcome> {
    if !(0.5..=3600.0).contains(&seconds) {
        return Err(CliError::Input(format!(
            "--seconds {seconds}: give 0.5 to 3600"
        )));
    }
    let place = Place::new(dir)?;
    let started = Instant::now();
    let db = Database::open(&place.dir, demo_options())?;
    let shared = Shared {
        kv: db.keyspace("users")?,
        events: db.keyspace("events")?,
        accounts: db.keyspace("accounts")?,
        db: &db,
        stop: AtomicBool::new(false),
        puts: AtomicU64::new(0),
        next_event: AtomicU64::new(0),
    };
    db.update(|tx| {
        for i in 0..ACCOUNTS {
            tx.put(
                &shared.accounts,
                &account(i),
                &OPENING_BALANCE.to_le_bytes(),
            )?;
        }
        Ok(())
    })?;
    let run_for = Duration::from_secs_f64(seconds);
    let bar = out::progress(1000, "workload, 5 threads");
    let mut checkpoint_took = Duration::ZERO;
    let works: Vec<Result<Work>> = std::thread::scope(|scope| {
        let s = &shared;
        let handles = vec![
            scope.spawn(move || durable_writer(s, 0x9e37_79b9_7f4a_7c15)),
            scope.spawn(move || event_writer(s)),
            scope.spawn(move || reader(s, 0x2545_f491_4f6c_dd1d)),
            scope.spawn(move || transfers(s, 0x1234_5678_9abc_def1)),
            scope.spawn(move || transfers(s, 0x0fed_cba9_8765_4321)),
        ];
        let mut checkpointed = false;
        let finished = || {
            handles
                .iter()
                .any(std::thread::ScopedJoinHandle::is_finished)
        };
        let waited = out::wait_out(&bar, run_for, finished, |done| {
            if !checkpointed && done >= 0.5 {
                checkpointed = true;
                bar.set_message("checkpoint while writing".to_string());
                let c = Instant::now();
                db.checkpoint()?;
                checkpoint_took = c.elapsed();
                bar.set_message("workload, 5 threads".to_string());
            }
            Ok::<(), lightning_db::Error>(())
        });
        shared.stop.store(true, Ordering::Relaxed);
        if let Err(e) = waited {
            // The scope joins the workers, which the stop flag ends.
            return vec![Err(e.into())];
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::Failed("a workload thread panicked".into())))
            })
            .collect()
    });
    let elapsed = run_for.min(started.elapsed());
    let mut all = Work::default();
    for w in works {
        let w = w?;
        for (kind, l) in w.latencies {
            all.latencies.entry(kind).or_default().merge(l);
        }
        all.kv.extend(w.kv);
        all.events.extend(w.events);
    }
    // What the accounts hold at the end, from one snapshot.
    let balances: Vec<u64> = {
        let tx = db.begin_read()?;
        (0..ACCOUNTS)
            .map(|i| balance(tx.get(&shared.accounts, &account(i))?.as_deref()))
            .collect::<Result<_>>()?
    };
    let stats = db.stats();
    let (kv, events, accounts) = (
        shared.kv.clone(),
        shared.events.clone(),
        shared.accounts.clone(),
    );
    drop(shared);
    bar.set_message("close and reopen".to_string());
    let t = Instant::now();
    db.close()?;
    let close_took = t.elapsed();
    let t = Instant::now();
    let db = Database::open(&place.dir, demo_options())?;
    let reopen_took = t.elapsed();
    bar.set_message("verifying".to_string());
    let (kv, events, accounts) = (
        db.open_keyspace(kv.name())?,
        db.open_keyspace(events.name())?,
        db.open_keyspace(accounts.name())?,
    );
    let tx = db.begin_read()?;
    let mut missing = Vec::new();
    for (k, v) in &all.kv {
        if tx.get(&kv, k)?.as_ref() != v.as_ref() {
            missing.push(format!("users/{}", out::escape(k)));
        }
    }
    for k in &all.events {
        if tx.get(&events, k)?.is_none() {
            missing.push(format!("events/{}", out::escape(k)));
        }
    }
    let mut total = 0;
    for (i, expected) in balances.iter().enumerate() {
        let got = balance(tx.get(&accounts, &account(i as u64))?.as_deref())?;
        if got != *expected {
            missing.push(format!("accounts/{i}: {got}, acknowledged {expected}"));
        }
        total += got;
    }
    drop(tx);
    let files = (
        dir_bytes(&place.dir),
        dir_bytes(&place.dir.join(lightning_db::WAL_DIR)),
    );
    db.close()?;
    bar.finish_and_clear();
    for l in all.latencies.values_mut() {
        l.sort();
    }
    let secs = elapsed.as_secs_f64();
    let verified = missing.is_empty() && total == ACCOUNTS * OPENING_BALANCE;
    let mut w = out::stdout();
    if format == Format::Json {
        let kinds: Vec<serde_json::Value> = KINDS
            .iter()
            .map(|k| {
                let l = all.latencies.get(k).cloned().unwrap_or_default();
                #[expect(clippy::cast_precision_loss, reason = "a rate")]
                let rate = l.len() as f64 / secs;
                json!({"kind": k, "ops": l.len(), "ops_per_s": rate,
                    "p50_us": l.quantile_us(0.5), "p95_us": l.quantile_us(0.95), "p99_us": l.quantile_us(0.99)})
            })
            .collect();
        out::json(
            &mut w,
            &json!({
                "dir": place.dir, "kept": !place.temporary, "seconds": secs, "threads": 5,
                "operations": kinds,
                "checkpoint_ms": checkpoint_took.as_secs_f64() * 1e3,
                "close_ms": close_took.as_secs_f64() * 1e3,
                "reopen_ms": reopen_took.as_secs_f64() * 1e3,
                "stats": stats,
                "files": {"total_bytes": files.0 + files.1, "data_bytes": files.0, "wal_bytes": files.1},
                "verified": {"ok": verified, "keys": all.kv.len(), "events": all.events.len(),
                    "accounts": ACCOUNTS, "accounts_sum": total, "missing": missing},
            }),
        )?;
    } else {
        writeln!(w, "Lightning DB demo")?;
        writeln!(
            w,
            "database     {} ({})",
            place.dir.display(),
            if place.temporary {
                "temporary, removed now"
            } else {
                "kept"
            }
        )?;
        writeln!(w)?;
        writeln!(
            w,
            "{:<34}{:>9}{:>9}{:>8}{:>8}{:>8}",
            format!("{secs:.1} s on 5 threads"),
            "ops",
            "ops/s",
            "p50 us",
            "p95 us",
            "p99 us"
        )?;
        for k in KINDS {
            let l = all.latencies.get(k).cloned().unwrap_or_default();
            #[expect(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a rate"
            )]
            let rate = (l.len() as f64 / secs) as u64;
            writeln!(
                w,
                "  {k:<32}{:>9}{:>9}{:>8}{:>8}{:>8}",
                count(l.len()),
                count(rate),
                out::us(l.quantile_us(0.5)),
                out::us(l.quantile_us(0.95)),
                out::us(l.quantile_us(0.99))
            )?;
        }
        writeln!(w)?;
        writeln!(
            w,
            "transactions {} commits, {} retries, {} lock waits, {} deadlocks",
            count(stats.tx.commits),
            count(stats.tx.retries),
            count(stats.lock.waits),
            count(stats.lock.deadlocks)
        )?;
        #[expect(clippy::cast_precision_loss, reason = "a ratio")]
        let per_sync = stats.wal.records as f64 / stats.wal.fsyncs.max(1) as f64;
        writeln!(
            w,
            "wal          {} records, {} fsyncs ({per_sync:.1} records per fsync)",
            count(stats.wal.records),
            count(stats.wal.fsyncs)
        )?;
        writeln!(
            w,
            "cache        hit ratio {:.2} % ({} hits, {} misses)",
            stats.cache.hit_ratio * 100.0,
            count(stats.cache.hits),
            count(stats.cache.misses)
        )?;
        writeln!(
            w,
            "checkpoints  {} ({} pages written); the one mid-run took {}",
            count(stats.checkpoint.count),
            count(stats.checkpoint.pages_written),
            ms(checkpoint_took)
        )?;
        writeln!(
            w,
            "gc           {} old versions removed in {} passes",
            count(stats.gc.versions_removed),
            count(stats.gc.passes)
        )?;
        writeln!(
            w,
            "files        data.ldb {}, wal {}",
            size(files.0),
            size(files.1)
        )?;
        writeln!(
            w,
            "close        {}, reopen {}",
            ms(close_took),
            ms(reopen_took)
        )?;
        writeln!(w)?;
        if verified {
            writeln!(
                w,
                "verified after reopen: all {} acknowledged keys, {} events and\n  {} account balances (sum {}) are there",
                count(all.kv.len() as u64),
                count(all.events.len() as u64),
                ACCOUNTS,
                count(total)
            )?;
        } else {
            writeln!(
                w,
                "VERIFICATION FAILED after reopen: accounts sum {total}; {} missing or wrong:",
                missing.len()
            )?;
            for m in missing.iter().take(20) {
                writeln!(w, "  {m}")?;
            }
        }
    }
    w.flush()?;
    drop(w);
    if !verified {
        return Err(CliError::Failed(
            "acknowledged commits were missing after the reopen (this is a bug: please report it with the output above)".into(),
        ));
    }
    Ok(Outcome::Done)
}
