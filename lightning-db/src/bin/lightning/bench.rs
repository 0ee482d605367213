//! `lightning bench DIR`: a built-in workload on a keyspace of its own — 50 % point reads,
//! 30 % single-key durable commits, 10 % range scans, 10 % eventual batch commits — from
//! several threads for a fixed time; throughput and latency percentiles per kind. The full
//! comparison with other engines is the bench suite's (`cargo bench -p lightning-peers`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lightning_db::{Database, Durability, Options, TxOptions};
use serde_json::json;

use crate::args::Format;
use crate::out::{self, CliError, Latencies, Outcome, Result, count};

const KEYSPACE: &str = "lightning-bench";
const PRELOAD: u64 = 100_000;
const KINDS: [&str; 4] = [
    "point reads",
    "durable puts (Immediate)",
    "range scans (10 rows)",
    "batch commits (Eventual, 100 rows)",
];

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"bench:k:");
    k[8..].copy_from_slice(&i.to_le_bytes());
    k
}

/// `lightning bench DIR`.
#[expect(clippy::too_many_lines, reason = "setup, run, report")]
pub(crate) fn run(dir: &Path, seconds: f64, threads: usize, format: Format) -> Result<Outcome> {
    if !(0.5..=86_400.0).contains(&seconds) {
        return Err(CliError::Input(format!(
            "--seconds {seconds}: give 0.5 to 86400"
        )));
    }
    if !(1..=256).contains(&threads) {
        return Err(CliError::Input(format!(
            "--threads {threads}: give 1 to 256"
        )));
    }
    let db = Database::open(dir, Options::default())?;
    if db.keyspaces().iter().any(|k| k == KEYSPACE) {
        return Err(CliError::Input(format!(
            "{} already has a keyspace {KEYSPACE:?} (an interrupted bench?); drop it or use another directory",
            dir.display()
        )));
    }
    let ks = db.keyspace(KEYSPACE)?;
    let value = [0x5a_u8; 100];
    for chunk in (0..PRELOAD).collect::<Vec<_>>().chunks(10_000) {
        let mut tx = db.begin_write_with(TxOptions {
            durability: Some(Durability::None),
            ..TxOptions::default()
        })?;
        for &i in chunk {
            tx.put(&ks, &key(i), &value)?;
        }
        tx.commit()?;
    }
    db.checkpoint()?;
    let stop = AtomicBool::new(false);
    let next = AtomicU64::new(PRELOAD);
    let run_for = Duration::from_secs_f64(seconds);
    let bar = out::progress(1000, &format!("bench, {threads} threads"));
    let results: Vec<Result<BTreeMap<&'static str, Latencies>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (db, ks, stop, next) = (&db, &ks, &stop, &next);
                s.spawn(move || -> Result<BTreeMap<&'static str, Latencies>> {
                    let mut lat: BTreeMap<&'static str, Latencies> = BTreeMap::new();
                    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ (t as u64 + 1);
                    let mut rnd = || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let roll = rnd() % 10;
                        let t0 = Instant::now();
                        let kind = match roll {
                            0..=4 => {
                                let n = next.load(Ordering::Relaxed);
                                db.get(ks, &key(rnd() % n))?;
                                KINDS[0]
                            }
                            5..=7 => {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                db.put(ks, &key(i), &value)?;
                                KINDS[1]
                            }
                            8 => {
                                let tx = db.begin_read()?;
                                let from = key(rnd() % next.load(Ordering::Relaxed));
                                for row in tx.range(ks, from.as_slice()..)?.take(10) {
                                    row?;
                                }
                                KINDS[2]
                            }
                            _ => {
                                let mut tx = db.begin_write_with(TxOptions {
                                    durability: Some(Durability::Eventual),
                                    ..TxOptions::default()
                                })?;
                                let first = next.fetch_add(100, Ordering::Relaxed);
                                for i in first..first + 100 {
                                    tx.put(ks, &key(i), &value)?;
                                }
                                tx.commit()?;
                                KINDS[3]
                            }
                        };
                        lat.entry(kind).or_default().record(t0.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        let finished = || {
            handles
                .iter()
                .any(std::thread::ScopedJoinHandle::is_finished)
        };
        let waited: std::result::Result<(), std::convert::Infallible> =
            out::wait_out(&bar, run_for, finished, |_| Ok(()));
        let Ok(()) = waited;
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::Failed("a bench thread panicked".into())))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut all: BTreeMap<&'static str, Latencies> = BTreeMap::new();
    for r in results {
        for (k, l) in r? {
            all.entry(k).or_default().merge(l);
        }
    }
    let stats = db.stats();
    db.drop_keyspace(KEYSPACE)?;
    db.close()?;
    let secs = seconds;
    let mut w = out::stdout();
    let rows: Vec<(String, u64, f64, [f64; 4])> = KINDS
        .iter()
        .map(|k| {
            let mut l = all.remove(k).unwrap_or_default();
            l.sort();
            #[expect(clippy::cast_precision_loss, reason = "a rate")]
            let rate = l.len() as f64 / secs;
            (
                (*k).to_string(),
                l.len(),
                rate,
                [
                    l.quantile_us(0.5),
                    l.quantile_us(0.95),
                    l.quantile_us(0.99),
                    l.quantile_us(0.999),
                ],
            )
        })
        .collect();
    if format == Format::Json {
        let kinds: Vec<serde_json::Value> = rows
            .iter()
            .map(|(k, n, rate, q)| {
                json!({"kind": k, "ops": n, "ops_per_s": rate, "p50_us": q[0], "p95_us": q[1], "p99_us": q[2], "p999_us": q[3]})
            })
            .collect();
        out::json(
            &mut w,
            &json!({"dir": dir, "seconds": secs, "threads": threads, "operations": kinds,
                "cache_hit_ratio": stats.cache.hit_ratio, "wal_fsyncs": stats.wal.fsyncs}),
        )?;
    } else {
        writeln!(
            w,
            "lightning bench on {} ({threads} threads, {secs:.0} s)",
            dir.display()
        )?;
        writeln!(
            w,
            "{:<36}{:>9}{:>9}{:>8}{:>8}{:>8}",
            "", "ops/s", "p50 us", "p95", "p99", "p99.9"
        )?;
        for (k, _, rate, q) in &rows {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a rate"
            )]
            let rate = *rate as u64;
            writeln!(
                w,
                "  {k:<34}{:>9}{:>9}{:>8}{:>8}{:>8}",
                count(rate),
                out::us(q[0]),
                out::us(q[1]),
                out::us(q[2]),
                out::us(q[3])
            )?;
        }
        writeln!(
            w,
            "cache hit ratio {:.2} %, {} WAL fsyncs for {} records",
            stats.cache.hit_ratio * 100.0,
            count(stats.wal.fsyncs),
            count(stats.wal.records)
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}
