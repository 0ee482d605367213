//! The OLTP suite, beside redb's workloads: YCSB A/B/C/F (zipfian 0.99 and uniform), the
//! thread matrix (put, get, delete, range, batch at 1, 4, 16 and 64 threads) with latency
//! percentiles from `hdrhistogram`, contended pessimistic transfers (the database, which has
//! row locks), and the buffer pool's hit ratio beside an offline optimum over the same page
//! trace.
//!
//! Every operation is checked as in redb's workloads: a read must find its key with a value
//! of the right length, a seek must start at its (present) key, a delete must find its key,
//! and the transfers must conserve the total balance. So no engine wins by doing less.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lightning_cache::sim::{uniform_trace, zipf_trace};

use crate::engine::{Engine, Reader, Result, Writer};
use crate::workload::{Data, SEEK_LEN, VALUE_LEN, key_of};

/// One measured figure of a round.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    /// Stable name, after the engine's.
    pub(crate) name: String,
    /// Unit.
    pub(crate) unit: &'static str,
    /// How it was measured.
    pub(crate) how: String,
    /// The value.
    pub(crate) value: f64,
}

impl Metric {
    pub(crate) fn new(
        name: impl Into<String>,
        unit: &'static str,
        how: impl Into<String>,
        value: f64,
    ) -> Self {
        Metric {
            name: name.into(),
            unit,
            how: how.into(),
            value,
        }
    }
}

/// How long and how wide the suite runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Seconds of each YCSB workload.
    pub(crate) phase: Duration,
    /// Seconds of each matrix cell.
    pub(crate) cell: Duration,
    /// Thread counts of the matrix.
    pub(crate) threads: Vec<usize>,
    /// Threads of the YCSB workloads.
    pub(crate) ycsb_threads: usize,
}

/// Key indices every engine draws from, generated once per run.
pub(crate) struct Traces {
    zipf: Vec<u64>,
    uniform: Vec<u64>,
    /// Keys the matrix deletes, in order (a permutation of the loaded keys).
    deletions: Vec<u64>,
}

/// Accesses in each pre-generated trace (threads start at different offsets, wrapping).
const TRACE_LEN: usize = 1 << 21;

impl Traces {
    /// Traces over `n` loaded keys.
    pub(crate) fn new(n: usize) -> Self {
        let n64 = n as u64;
        let deletions = crate::workload::permutation(n, 11)
            .into_iter()
            .map(u64::from)
            .collect();
        Traces {
            zipf: zipf_trace(n64, 0.99, TRACE_LEN, 21),
            uniform: uniform_trace(n64, TRACE_LEN, 22),
            deletions,
        }
    }

    /// The zipfian (0.99, hot keys scattered over the key space) access sequence.
    pub(crate) fn zipf(&self) -> &[u64] {
        &self.zipf
    }
}

/// What a multi-threaded phase measured: operations, wall time and every operation's
/// latency.
pub(crate) struct Measured {
    pub(crate) ops: u64,
    took: Duration,
    hist: Histogram<u64>,
}

impl Measured {
    pub(crate) fn rate(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "a rate")]
        let ops = self.ops as f64;
        ops / self.took.as_secs_f64()
    }

    /// The latency at quantile `q`, microseconds.
    pub(crate) fn us(&self, q: f64) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "a latency")]
        let ns = self.hist.value_at_quantile(q) as f64;
        ns / 1e3
    }
}

fn histogram() -> Result<Histogram<u64>> {
    // 1 ns to 10 minutes, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000_000, 3)?)
}

/// Runs `op(thread, iteration)` on `threads` threads that start together, each until
/// `budget` has passed; `op` returns how many operations it did (a batch counts its
/// entries). Each call's latency goes into the histogram.
pub(crate) fn drive(
    threads: usize,
    budget: Duration,
    op: &(dyn Fn(usize, u64) -> Result<u64> + Sync),
) -> Result<Measured> {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || -> Result<(u64, Histogram<u64>)> {
                    let mut hist = histogram()?;
                    let mut ops = 0;
                    barrier.wait();
                    let start = Instant::now();
                    let mut i = 0u64;
                    // At least one operation each, so every thread's latency is seen.
                    while i == 0 || start.elapsed() < budget {
                        let t0 = Instant::now();
                        ops += op(t, i)?;
                        hist.record(u64::try_from(t0.elapsed().as_nanos())?.max(1))?;
                        i += 1;
                    }
                    Ok((ops, hist))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = Measured {
            ops: 0,
            took: Duration::ZERO,
            hist: histogram()?,
        };
        let mut first_error = None;
        for w in workers {
            match w.join() {
                Ok(Ok((ops, hist))) => {
                    total.ops += ops;
                    total.hist.add(&hist)?;
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| "a worker thread panicked".into());
                }
            }
        }
        total.took = start.elapsed();
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    })
}

/// Where thread `t`'s `i`-th access falls in a trace: threads start spread over it.
fn at(trace: &[u64], threads: usize, t: usize, i: u64) -> u32 {
    let len = trace.len().max(1);
    let start = t * (len / threads.max(1));
    let i = usize::try_from(i).unwrap_or(0);
    u32::try_from(trace[(start + i) % len]).unwrap_or(0)
}

/// `(name, percent of reads, read-modify-write)` of the YCSB core workloads run here.
const YCSB: [(&str, u64, bool); 4] = [
    ("a", 50, false),
    ("b", 95, false),
    ("c", 100, false),
    ("f", 50, true),
];

/// A read that must find `i` with a value of the bench's length.
fn must_read<E: Engine>(engine: &E, data: &Data, i: u32) -> Result<u64> {
    match engine.read(|r| r.get(data.key(i), |v| v.len() == VALUE_LEN))? {
        Some(true) => Ok(1),
        Some(false) => Err(format!("{}: key {i} has a value of the wrong length", E::NAME).into()),
        None => Err(format!("{}: key {i} is missing", E::NAME).into()),
    }
}

/// The suite's matrix operations, in the order they run (deletions last: the reads before
/// them may pick any loaded key).
const MATRIX: [(&str, &str); 5] = [
    (
        "get",
        "a read transaction with one point read of a random (uniform) loaded key, which must be found",
    ),
    (
        "range",
        "a read transaction with a seek to a random loaded key and the next 10 entries (fewer only at the end of the keys); one op = seek + entries",
    ),
    (
        "put",
        "a write transaction inserting one new key, committed durably",
    ),
    (
        "batch",
        "a write transaction inserting 100 new keys, committed durably; ops are inserts, latency is per transaction",
    ),
    (
        "delete",
        "a write transaction removing one loaded key (each key once; it must be there), committed durably",
    ),
];

/// Runs the suite on a new `E` in `dir`: the engine's description and its figures, in the
/// same order every round.
#[expect(
    clippy::too_many_lines,
    reason = "the suite's phases, step by step, in order"
)]
pub(crate) fn run<E: Engine>(
    dir: &std::path::Path,
    setup: &crate::engine::Setup,
    data: &Data,
    traces: &Traces,
    cfg: &Config,
) -> Result<(String, Vec<Metric>)> {
    let n = data.len();
    let engine = E::create(dir, setup)?;
    let mut out = Vec::new();
    // Load, untimed (redb's suite measures it).
    engine.write(|w| {
        for i in 0..n {
            let i = u32::try_from(i)?;
            w.insert(data.key(i), data.value(i, 0))?;
        }
        Ok(())
    })?;

    // YCSB.
    for (name, read_pct, rmw) in YCSB {
        for (dist, trace) in [("zipf", &traces.zipf), ("uniform", &traces.uniform)] {
            let threads = cfg.ycsb_threads;
            let engine = &engine;
            let m = drive(threads, cfg.phase, &|t, i| {
                let key = at(trace, threads, t, i);
                // The read/write choice: a hash of the access, the same on every engine.
                let roll = crate::workload::mix(i ^ ((t as u64) << 40)) % 100;
                if roll < read_pct {
                    return must_read(engine, data, key);
                }
                let version = 5 + (i % 250);
                engine.write_with(false, |w| {
                    if rmw {
                        let old = w.get(data.key(key))?;
                        if old.map(|v| v.len()) != Some(VALUE_LEN) {
                            return Err(format!("{}: read-modify-write of key {key} found no value of the bench's length", E::NAME).into());
                        }
                    }
                    w.insert(data.key(key), data.value(key, version))
                })?;
                Ok(1)
            })?;
            let what = match (read_pct, rmw) {
                (100, _) => "reads only".to_owned(),
                (_, true) => format!(
                    "{read_pct} % reads, {} % read-modify-writes (a write transaction reading the key, then writing it)",
                    100 - read_pct
                ),
                _ => format!("{read_pct} % reads, {} % updates", 100 - read_pct),
            };
            let how = format!(
                "YCSB {} ({what}), {dist} key choice{} over the {n} loaded keys, {threads} threads for {:.1} s; each op its own transaction, writes committed non-durably",
                name.to_uppercase(),
                if dist == "zipf" {
                    " (0.99, hot keys scattered)"
                } else {
                    ""
                },
                cfg.phase.as_secs_f64()
            );
            let base = format!("ycsb_{name}_{dist}");
            out.push(Metric::new(format!("{base}_ops"), "ops/s", &how, m.rate()));
            out.push(Metric::new(
                format!("{base}_p50_us"),
                "us",
                format!("median latency of one op: {how}"),
                m.us(0.5),
            ));
            out.push(Metric::new(
                format!("{base}_p99_us"),
                "us",
                format!("99th percentile latency of one op: {how}"),
                m.us(0.99),
            ));
        }
    }

    // Untimed: a durable commit, so the matrix's first durable cell does not pay for
    // flushing what the non-durable YCSB writes left (seen: redb's and the raw tree's first
    // durable put took about a second).
    engine.write(|_| Ok(()))?;

    // The matrix.
    let next_key = AtomicU64::new(u64::try_from(n)? + 1_000_000_000);
    let next_delete = AtomicU64::new(0);
    for (op, what) in MATRIX {
        for &threads in &cfg.threads {
            let engine = &engine;
            let (next_key, next_delete) = (&next_key, &next_delete);
            let uniform = &traces.uniform;
            let m = drive(threads, cfg.cell, &|t, i| match op {
                "get" => must_read(engine, data, at(uniform, threads, t, i)),
                "range" => {
                    let key = at(uniform, threads, t, i);
                    let seen = engine.read(|r| {
                        let mut first = None;
                        let seen = r.range_from(data.key(key), SEEK_LEN, |k, v| {
                            if first.is_none() {
                                first = Some(k == data.key(key) && v.len() == VALUE_LEN);
                            }
                        })?;
                        if first != Some(true) {
                            return Err(format!(
                                "{}: a seek to key {key} did not start at it",
                                E::NAME
                            )
                            .into());
                        }
                        Ok(seen)
                    })?;
                    // One op: the seek and its entries, as in redb's suite.
                    Ok(u64::from(seen > 0))
                }
                "put" | "batch" => {
                    let count = if op == "put" { 1 } else { 100 };
                    let first = next_key.fetch_add(count, Ordering::Relaxed);
                    engine.write(|w| {
                        for k in first..first + count {
                            w.insert(&key_of(k), data.value(u32::try_from(k % (1 << 31))?, 4))?;
                        }
                        Ok(())
                    })?;
                    Ok(count)
                }
                _ => {
                    let at = usize::try_from(next_delete.fetch_add(1, Ordering::Relaxed))?;
                    let key = *traces.deletions.get(at).ok_or(
                        "the matrix's deletions used every loaded key: raise PEERS_ENTRIES",
                    )?;
                    let key = u32::try_from(key)?;
                    if !engine.write(|w| w.remove(data.key(key)))? {
                        return Err(
                            format!("{}: delete of key {key} found nothing", E::NAME).into()
                        );
                    }
                    Ok(1)
                }
            })?;
            let how = format!(
                "{what}; {threads} threads for {:.1} s, over {n} loaded keys",
                cfg.cell.as_secs_f64()
            );
            let base = format!("{op}_t{threads}");
            out.push(Metric::new(format!("{base}_ops"), "ops/s", &how, m.rate()));
            for (q, label) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (0.999, "p999")] {
                out.push(Metric::new(
                    format!("{base}_{label}_us"),
                    "us",
                    format!("{label} latency of one transaction: {how}"),
                    m.us(q),
                ));
            }
        }
    }

    // Contended pessimistic transfers, where the engine has row locks.
    if let Some(figures) = engine.contended(16, 100, cfg.phase)? {
        out.extend(figures);
    }
    Ok((engine.describe(), out))
}
