//! The OLTP suite's run: every engine's round interleaved with the others', medians over
//! the rounds, the buffer pool's hit ratios (once: they are counts, not timings), a table on
//! stdout and `benchmark_results/<date>/oltp-peers.json` and `.html` with the machine.
//!
//! - `OLTP_PHASE_SECS` (each YCSB workload and the transfers; default 2, 0.3 quick),
//!   `OLTP_CELL_SECS` (each matrix cell; default 1, 0.2 quick), `OLTP_THREADS` (the
//!   matrix's thread counts, comma-separated; default `1,4,16,64`), `OLTP_YCSB_THREADS`
//!   (default 4); `PEERS_ENTRIES`, `PEERS_ROUNDS` and `PEERS_ONLY` as for redb's suite.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use lightning_testkit::bench::{Figure, machine, quick, temp_dir, write_report_with};

use crate::engine::{Engine, Result, Setup};
use crate::engines::{LightningDb, Lmdb, Redb, Sqlite};
use crate::oltp::{self, Config, Metric, Traces};
use crate::workload::{Data, KEY_LEN, VALUE_LEN};
use crate::{PerEngine, dispatch, env_count, env_num, format_value, median, rounds_text};

/// The suite on one engine, in a directory of its own.
struct OltpJob<'a> {
    base: &'a Path,
    setup: &'a Setup,
    data: &'a Data,
    traces: &'a Traces,
    cfg: &'a Config,
}

impl PerEngine for OltpJob<'_> {
    type Out = (String, Vec<Metric>);
    fn run<E: Engine>(&self, r: usize) -> Result<(String, Vec<Metric>)> {
        crate::in_own_dir::<E, _>(self.base, "oltp", r, |dir| {
            oltp::run::<E>(dir, self.setup, self.data, self.traces, self.cfg)
        })
    }
}

/// One engine's metrics over the rounds.
struct EngineRounds {
    name: &'static str,
    describe: String,
    rounds: Vec<Vec<Metric>>,
}

impl EngineRounds {
    /// The median of metric `name` over the rounds, and the rounds' values.
    fn median(&self, name: &str) -> Option<(f64, Vec<f64>)> {
        let values: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|r| r.iter().find(|m| m.name == name).map(|m| m.value))
            .collect();
        (!values.is_empty()).then(|| (median(&values), values))
    }
}

fn threads_from_env() -> Result<Vec<usize>> {
    match std::env::var("OLTP_THREADS") {
        Ok(list) => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| {
                        format!("OLTP_THREADS={list}: not a list of thread counts").into()
                    })
            })
            .collect(),
        Err(_) => Ok(vec![1, 4, 16, 64]),
    }
}

/// The OLTP suite on every selected engine: `oltp-peers.json`.
#[expect(clippy::too_many_lines, reason = "one suite, step by step")]
pub(crate) fn oltp_suite() -> Result<()> {
    let n = env_count("PEERS_ENTRIES", if quick() { 100_000 } else { 1_000_000 });
    let rounds = env_count("PEERS_ROUNDS", 3);
    let cfg = Config {
        phase: Duration::from_secs_f64(env_num("OLTP_PHASE_SECS", if quick() { 0.3 } else { 2.0 })),
        cell: Duration::from_secs_f64(env_num("OLTP_CELL_SECS", if quick() { 0.2 } else { 1.0 })),
        threads: threads_from_env()?,
        ycsb_threads: env_count("OLTP_YCSB_THREADS", 4),
    };
    let data_bytes = (n * (KEY_LEN + VALUE_LEN)) as u64;
    let setup = Setup::for_data(data_bytes);
    let dir = temp_dir()?;
    println!(
        "OLTP suite: {n} entries, {rounds} rounds, YCSB {:.1} s on {} threads, matrix cells {:.1} s at {:?} threads, in {}",
        cfg.phase.as_secs_f64(),
        cfg.ycsb_threads,
        cfg.cell.as_secs_f64(),
        cfg.threads,
        dir.path().display()
    );
    let t = Instant::now();
    let data = Data::new(n);
    let traces = Traces::new(n);
    println!(
        "generated keys and traces in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let job = OltpJob {
        base: dir.path(),
        setup: &setup,
        data: &data,
        traces: &traces,
        cfg: &cfg,
    };
    let mut engines: Vec<EngineRounds> = crate::selected()?
        .into_iter()
        .map(|name| EngineRounds {
            name,
            describe: String::new(),
            rounds: Vec::new(),
        })
        .collect();
    for r in 0..rounds {
        for e in &mut engines {
            let (describe, metrics) = dispatch(e.name, &job, r)?;
            e.describe = describe;
            e.rounds.push(metrics);
        }
    }
    let mut pool = None;
    if engines.iter().any(|e| e.name == LightningDb::NAME) {
        let pool_dir = dir.path().join("pool");
        std::fs::create_dir(&pool_dir)?;
        let t = Instant::now();
        pool = Some(crate::engines::pool_hit_ratios(
            &pool_dir,
            &data,
            traces.zipf(),
            &[10, 25, 100],
        )?);
        std::fs::remove_dir_all(&pool_dir)?;
        println!(
            "buffer pool hit ratios in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    let shape = format!(
        "{n} entries, {KEY_LEN}-byte keys, {VALUE_LEN}-byte values; median of {rounds} interleaved rounds"
    );
    let mut figures = Vec::new();
    for e in &engines {
        let Some(first) = e.rounds.first() else {
            continue;
        };
        for m in first {
            let Some((value, values)) = e.median(&m.name) else {
                continue;
            };
            figures.push(Figure::new(
                format!("{}_{}", e.name, m.name),
                value,
                m.unit,
                format!(
                    "{}; {shape} ({}); {}",
                    m.how,
                    rounds_text(&values),
                    e.describe
                ),
            ));
        }
    }
    // The database over each peer, for every throughput.
    if let Some(db) = engines.iter().find(|e| e.name == LightningDb::NAME) {
        for m in db.rounds.first().into_iter().flatten() {
            if !m.name.ends_with("_ops") || m.name.starts_with("transfers") {
                continue;
            }
            for peer in engines
                .iter()
                .filter(|e| [Redb::NAME, Lmdb::NAME, Sqlite::NAME].contains(&e.name))
            {
                if let (Some((ours, _)), Some((theirs, _))) =
                    (db.median(&m.name), peer.median(&m.name))
                {
                    figures.push(Figure::new(
                        format!("{}_vs_{}_{}", LightningDb::NAME, peer.name, m.name),
                        ours / theirs,
                        "ratio",
                        format!(
                            "{0}_{2} / {1}_{2}, medians of the same run (above 1: the database is faster)",
                            LightningDb::NAME,
                            peer.name,
                            m.name
                        ),
                    ));
                }
            }
        }
    }
    if let Some((describe, metrics)) = &pool {
        for m in metrics {
            figures.push(Figure::new(
                format!("{}_{}", LightningDb::NAME, m.name),
                m.value,
                m.unit,
                format!("{}; {describe}; one run", m.how),
            ));
        }
    }

    // The table: throughput and p99 per workload, an engine per column.
    let mut table = format!("\n{:<30}", "workload (median)");
    for e in &engines {
        let _ = write!(table, "{:>24}", e.name);
    }
    table.push('\n');
    let names: Vec<String> = engines
        .first()
        .and_then(|e| e.rounds.first())
        .map(|r| r.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    for name in names.iter().filter(|n| n.ends_with("_ops")) {
        let base = name.trim_end_matches("_ops");
        let _ = write!(table, "{base:<30}");
        for e in &engines {
            let ops = e.median(name).map_or(f64::NAN, |m| m.0);
            let p99 = e
                .median(&format!("{base}_p99_us"))
                .map_or(f64::NAN, |m| m.0);
            let _ = write!(
                table,
                "{:>24}",
                format!("{}/s p99 {}us", format_value(ops), format_value(p99))
            );
        }
        table.push('\n');
    }
    for e in &engines {
        for name in e
            .rounds
            .first()
            .into_iter()
            .flatten()
            .map(|m| &m.name)
            .filter(|n| n.starts_with("transfers"))
        {
            let _ = writeln!(
                table,
                "{}_{name:<36}{:>14}",
                e.name,
                format_value(e.median(name).map_or(f64::NAN, |m| m.0))
            );
        }
    }
    if let Some((_, metrics)) = &pool {
        for m in metrics {
            let _ = writeln!(table, "lightning_db_{:<40}{:>10.4}", m.name, m.value);
        }
    }
    println!("{table}");
    if engines.len() < crate::ENGINES.len() {
        return Ok(());
    }
    let path = write_report_with("oltp-peers", &figures, &machine(dir.path()))?;
    println!("wrote {}", path.display());
    Ok(())
}
