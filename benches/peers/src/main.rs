//! Bench: Lightning DB beside its peers, in one run on one machine. redb's benchmark
//! workloads (1M entries, 24-byte keys, 150-byte values, caches larger than the data) on
//! redb, LMDB (through heed), `SQLite` (bundled, WAL mode, `synchronous=FULL`), lightning-btree used directly (a `Store` over a `PageFile` on
//! the real disk, durability by checkpoint) and the database (`lightning-db`: transactions,
//! WAL, background checkpoints), interleaved — every engine's round 1, then every
//! engine's round 2, ... — three rounds, medians; durable single-key commits beside the raw
//! `fdatasync` rate of the same disk, measured just before each engine's commits (a shared
//! machine's disk drifts by the minute). Figures are
//! `<engine>_<workload>`, plus `lightning_btree_vs_lmdb_<workload>` and
//! `lightning_btree_vs_redb_<workload>` (lightning's median over the peer's) and
//! `lightning_db_vs_lightning_btree_<workload>` (the database over its raw tree). Writes
//! `benchmark_results/<YYYY-MM-DD>/peers.json` and `.html` and prints a table.
//!
//! ```text
//! cargo bench -p lightning-peers
//! LIGHTNING_BENCH_QUICK=1 PEERS_ENTRIES=20000 cargo bench -p lightning-peers   # smoke run
//! ```
//! - `PEERS_ENTRIES` (default 1,000,000; 100,000 with `LIGHTNING_BENCH_QUICK`),
//!   `PEERS_ROUNDS` (default 3), `PEERS_SYNC_SECS` (seconds of durable commits, and of raw
//!   fdatasync before them, per engine per round; default 3, 0.5 quick).
//! - `LIGHTNING_BENCH_DIR`: the disk to measure (default: the system's temporary directory).
//! - `PEERS_ONLY=<engine>[,<engine>..]` (`redb`, `lmdb`, `sqlite`, `lightning_btree`, `lightning_db`): those
//!   engines alone, their medians printed and no report written (for profiling one engine).
//! - `LIGHTNING_BENCH_QUICK=1` marks the report as a smoke run not to be quoted.
//! - `PEERS_SUITE`: `redb` (the workloads above), `oltp` (YCSB, the thread matrix, contended
//!   transfers and the buffer pool's hit ratios: `oltp-peers.json`, see `oltp_main.rs`) or
//!   `all` (the default: both, redb's first).
#![expect(clippy::print_stdout, reason = "a bench binary reports on stdout")]

mod engine;
mod engines;
mod oltp;
mod oltp_main;
mod workload;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use lightning_testkit::bench::{Figure, machine, quick, temp_dir, write_report_with};

use crate::engine::{Engine, Result, Setup};
use crate::engines::{LightningBtree, LightningDb, Lmdb, Redb, Sqlite};
use crate::workload::{Data, KEY_LEN, VALUE_LEN, WORKLOADS};

/// The engine every ratio is about.
const SUBJECT: &str = LightningBtree::NAME;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "small counts from the environment"
)]
fn env_count(name: &str, default: usize) -> usize {
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let default = default as f64;
    env_num(name, default).max(1.0) as usize
}

/// Every engine, in the order they run in a round.
const ENGINES: [&str; 5] = [
    Redb::NAME,
    Lmdb::NAME,
    LightningBtree::NAME,
    LightningDb::NAME,
    Sqlite::NAME,
];

/// Something run once per engine per round, generic over the engine.
trait PerEngine {
    type Out;
    fn run<E: Engine>(&self, round: usize) -> Result<Self::Out>;
}

/// Runs `job` on the engine named `name`.
fn dispatch<J: PerEngine>(name: &str, job: &J, round: usize) -> Result<J::Out> {
    match name {
        Redb::NAME => job.run::<Redb>(round),
        Lmdb::NAME => job.run::<Lmdb>(round),
        LightningBtree::NAME => job.run::<LightningBtree>(round),
        LightningDb::NAME => job.run::<LightningDb>(round),
        Sqlite::NAME => job.run::<Sqlite>(round),
        other => Err(format!("{other}: not an engine of this bench").into()),
    }
}

/// The engines to run: all, or those `PEERS_ONLY` names.
fn selected() -> Result<Vec<&'static str>> {
    match std::env::var("PEERS_ONLY") {
        Ok(only) => only
            .split(',')
            .map(|name| {
                ENGINES
                    .iter()
                    .find(|e| **e == name.trim())
                    .copied()
                    .ok_or_else(|| {
                        format!("PEERS_ONLY={only}: {name} is not an engine of this bench").into()
                    })
            })
            .collect(),
        Err(_) => Ok(ENGINES.to_vec()),
    }
}

/// redb's workloads on one engine.
struct RedbSuite<'a> {
    base: &'a Path,
    setup: &'a Setup,
    data: &'a Data,
    sync_for: Duration,
}

impl PerEngine for RedbSuite<'_> {
    type Out = workload::Run;
    fn run<E: Engine>(&self, r: usize) -> Result<workload::Run> {
        round::<E>(self.base, r, self.setup, self.data, self.sync_for)
    }
}

/// One engine's round in a directory of its own, removed afterwards.
fn round<E: Engine>(
    base: &Path,
    round: usize,
    setup: &Setup,
    data: &Data,
    sync_for: Duration,
) -> Result<workload::Run> {
    in_own_dir::<E, _>(base, "round", round, |dir| {
        workload::run::<E>(dir, setup, data, sync_for)
    })
}

/// Runs `f` on a new directory `<base>/<suite>-<engine>-<round>`, removed afterwards, and
/// prints how long it took.
fn in_own_dir<E: Engine, T>(
    base: &Path,
    suite: &str,
    round: usize,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let dir = base.join(format!("{suite}-{}-{round}", E::NAME));
    std::fs::create_dir(&dir)?;
    let t = Instant::now();
    let out = f(&dir)?;
    std::fs::remove_dir_all(&dir)?;
    println!(
        "{suite} {}: {} done in {:.1} s",
        round + 1,
        E::NAME,
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// One engine's results over the rounds.
struct Results {
    name: &'static str,
    describe: String,
    /// Per workload, per round.
    rounds: Vec<Vec<f64>>,
    /// Per round: the raw fdatasync rate measured just before its durable commits.
    fdatasync: Vec<f64>,
}

impl Results {
    fn new(name: &'static str) -> Self {
        Results {
            name,
            describe: String::new(),
            rounds: vec![Vec::new(); WORKLOADS.len()],
            fdatasync: Vec::new(),
        }
    }

    fn add(&mut self, run: workload::Run) {
        self.describe = run.describe;
        for (w, v) in self.rounds.iter_mut().zip(run.figures) {
            w.push(v);
        }
        self.fdatasync.push(run.fdatasync);
    }

    fn median(&self, workload: usize) -> f64 {
        median(&self.rounds[workload])
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

fn rounds_text(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format_value(*v)).collect();
    parts.join(", ")
}

fn format_value(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn main() -> Result<()> {
    let suite = std::env::var("PEERS_SUITE").unwrap_or_default();
    match suite.trim() {
        "redb" => redb_suite(),
        "oltp" => oltp_main::oltp_suite(),
        "" | "all" => {
            redb_suite()?;
            oltp_main::oltp_suite()
        }
        other => Err(format!("PEERS_SUITE={other}: expected redb, oltp or all").into()),
    }
}

/// redb's workloads on every engine: `peers.json`.
#[expect(clippy::too_many_lines, reason = "one bench, step by step")]
fn redb_suite() -> Result<()> {
    let n = env_count("PEERS_ENTRIES", if quick() { 100_000 } else { 1_000_000 });
    let rounds = env_count("PEERS_ROUNDS", 3);
    let sync_for =
        Duration::from_secs_f64(env_num("PEERS_SYNC_SECS", if quick() { 0.5 } else { 3.0 }));
    let data_bytes = (n * (KEY_LEN + VALUE_LEN)) as u64;
    let setup = Setup::for_data(data_bytes);
    let dir = temp_dir()?;
    println!(
        "{n} entries ({} MiB of keys and values), {rounds} rounds, {:.1} s of durable commits per engine per round, in {}",
        data_bytes >> 20,
        sync_for.as_secs_f64(),
        dir.path().display()
    );
    let t = Instant::now();
    let data = Data::new(n);
    println!(
        "generated keys and orders in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let only = selected()?;
    let mut engines: Vec<Results> = only.iter().map(|name| Results::new(name)).collect();
    let job = RedbSuite {
        base: dir.path(),
        setup: &setup,
        data: &data,
        sync_for,
    };
    for r in 0..rounds {
        // Interleaved: every engine's round r before any engine's round r + 1.
        for e in &mut engines {
            e.add(dispatch(e.name, &job, r)?);
        }
    }
    if engines.len() < ENGINES.len() {
        // A profiling run of some engines: their figures printed, no report written.
        for (w, workload) in WORKLOADS.iter().enumerate() {
            for e in &engines {
                println!(
                    "{:<52}{:>14} ({})",
                    format!("{}_{}", e.name, workload.name),
                    format_value(e.median(w)),
                    rounds_text(&e.rounds[w])
                );
            }
        }
        return Ok(());
    }

    let shape = format!(
        "{n} entries, {KEY_LEN}-byte keys, {VALUE_LEN}-byte values; median of {rounds} interleaved rounds"
    );
    let mut figures = Vec::new();
    let fdatasync: Vec<f64> = engines
        .iter()
        .flat_map(|e| e.fdatasync.iter().copied())
        .collect();
    let raw = median(&fdatasync);
    figures.push(Figure::new(
        "raw_fdatasync_4k",
        raw,
        "syncs/s",
        format!(
            "pwrite of 4 KiB + fdatasync on a preallocated file of the same disk, {:.1} s just before each engine's durable commits; median of all {} ({})",
            sync_for.as_secs_f64(),
            fdatasync.len(),
            rounds_text(&fdatasync)
        ),
    ));
    let subject = engines
        .iter()
        .find(|e| e.name == SUBJECT)
        .ok_or("no subject engine")?;
    for (w, workload) in WORKLOADS.iter().enumerate() {
        for e in &engines {
            figures.push(Figure::new(
                format!("{}_{}", e.name, workload.name),
                e.median(w),
                workload.unit,
                format!(
                    "{}; {shape} ({}); {}",
                    workload.how,
                    rounds_text(&e.rounds[w]),
                    e.describe
                ),
            ));
        }
        // The database over the raw tree it is built on: what transactions, MVCC and the
        // WAL cost.
        if let Some(database) = engines.iter().find(|e| e.name == LightningDb::NAME) {
            figures.push(Figure::new(
                format!("{}_vs_{SUBJECT}_{}", LightningDb::NAME, workload.name),
                database.median(w) / subject.median(w),
                "ratio",
                format!(
                    "{0}_{1} / {SUBJECT}_{1}, medians of the same run (the database over its raw B+tree)",
                    LightningDb::NAME,
                    workload.name
                ),
            ));
        }
        for peer in engines
            .iter()
            .filter(|e| e.name != SUBJECT && e.name != LightningDb::NAME)
        {
            let better = if workload.higher_is_better {
                "above 1: lightning-btree is faster"
            } else {
                "below 1: lightning-btree is smaller/faster"
            };
            figures.push(Figure::new(
                format!("{SUBJECT}_vs_{}_{}", peer.name, workload.name),
                subject.median(w) / peer.median(w),
                "ratio",
                format!(
                    "{SUBJECT}_{0} / {1}_{0}, medians of the same run ({better})",
                    workload.name, peer.name
                ),
            ));
        }
    }
    let durable = WORKLOADS
        .iter()
        .position(|w| w.name == "durable_insert_commit")
        .ok_or("no durable workload")?;
    // Each round's durable commits over the raw rate measured just before them: the disk of
    // a shared machine drifts, a reference from another moment would not be one.
    let beside = |e: &Results| {
        let ratios: Vec<f64> = e.rounds[durable]
            .iter()
            .zip(&e.fdatasync)
            .map(|(d, raw)| d / raw)
            .collect();
        (median(&ratios), ratios)
    };
    for e in &engines {
        let (ratio, ratios) = beside(e);
        figures.push(Figure::new(
            format!("{}_durable_vs_fdatasync", e.name),
            ratio,
            "ratio",
            format!(
                "durable single-key commits/s over the raw 4 KiB fdatasync rate measured just before them, per round ({}; fdatasync {}), median",
                rounds_text(&ratios),
                rounds_text(&e.fdatasync)
            ),
        ));
    }
    // The table: a row per workload, a column per engine, then the ratios.
    let mut table = format!(
        "\n{:<36}{:>14}{:>14}{:>14}{:>17}{:>10}{:>10}{:>14}{:>9}\n",
        "workload (median)",
        "redb",
        "lmdb",
        "sqlite",
        "lightning_btree",
        "vs lmdb",
        "vs redb",
        "lightning_db",
        "vs tree"
    );
    for (w, workload) in WORKLOADS.iter().enumerate() {
        let at = |name: &str| {
            engines
                .iter()
                .find(|e| e.name == name)
                .map_or(f64::NAN, |e| e.median(w))
        };
        let l = at(SUBJECT);
        let _ = writeln!(
            table,
            "{:<36}{:>14}{:>14}{:>14}{:>17}{:>10.2}{:>10.2}{:>14}{:>9.2}",
            format!("{} ({})", workload.name, workload.unit),
            format_value(at(Redb::NAME)),
            format_value(at(Lmdb::NAME)),
            format_value(at(Sqlite::NAME)),
            format_value(l),
            l / at(Lmdb::NAME),
            l / at(Redb::NAME),
            format_value(at(LightningDb::NAME)),
            at(LightningDb::NAME) / l,
        );
    }
    let _ = writeln!(
        table,
        "{:<36}{:>14}   (durable commits of each engine / this: {})",
        "raw_fdatasync_4k (syncs/s)",
        format_value(raw),
        engines
            .iter()
            .map(|e| format!("{} {:.2}", e.name, beside(e).0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{table}");
    let path = write_report_with("peers", &figures, &machine(dir.path()))?;
    println!("wrote {}", path.display());
    Ok(())
}
