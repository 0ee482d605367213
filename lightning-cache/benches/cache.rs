//! Bench: hit ratios of the eviction policies on zipfian, scan-mixed and uniform traces
//! (beside exact LRU and Belady's optimum), and hit-path throughput of the buffer pool.
//! Writes `benchmark_results/<YYYY-MM-DD>/cache.json` and `cache.html`.
//!
//! ```text
//! cargo bench -p lightning-cache --bench cache
//! ```
//! `LIGHTNING_BENCH_QUICK=1` runs a smaller configuration (100k pages) as a smoke test.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    reason = "ratios and rates are floating point"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lightning_cache::sim::{
    Clock, Lru, Policy, Sieve, belady_hits, steady_hit_ratio, uniform_trace, with_scans, zipf_trace,
};
use lightning_cache::{BufferPool, FixedGeneration};
use lightning_page::vfs::MemVfs;
use lightning_page::{PageFile, PageId, PageSize, PageType};
use lightning_testkit::bench::{Figure, quick, write_report};

fn policies(capacity: usize) -> Vec<Box<dyn Policy>> {
    vec![
        Box::new(Lru::new(capacity)),
        Box::new(Clock::new(capacity)),
        Box::new(Sieve::new(capacity)),
    ]
}

/// Steady-state hit ratios (after a warm-up of the first `warmup` accesses) of every policy
/// and of Belady on `trace`, at 5, 10 and 25 % of `pages`.
fn ratios(
    label: &str,
    trace: &[u64],
    pages: u64,
    warmup: usize,
    figures: &mut Vec<Figure>,
) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    for pct in [5u64, 10, 25] {
        let capacity = usize::try_from(pages * pct / 100).unwrap();
        let mut lru_sieve = (0.0, 0.0, 0.0);
        for mut p in policies(capacity) {
            let start = Instant::now();
            let r = steady_hit_ratio(p.as_mut(), trace, warmup);
            let name = p.name();
            figures.push(Figure::new(
                format!("hit_{label}_{pct}pct_{name}"),
                r * 100.0,
                "%",
                format!(
                    "{} accesses over {pages} pages, capacity {capacity}, hits counted after {warmup}; simulated in {:.1} s",
                    trace.len(),
                    start.elapsed().as_secs_f64()
                ),
            ));
            match name {
                "lru" => lru_sieve.0 = r,
                "sieve" => lru_sieve.1 = r,
                _ => {}
            }
        }
        let best = belady_hits(trace, capacity, warmup) as f64
            / (trace.len() - warmup.min(trace.len())).max(1) as f64;
        lru_sieve.2 = best;
        figures.push(Figure::new(
            format!("hit_{label}_{pct}pct_belady"),
            best * 100.0,
            "%",
            "offline optimum",
        ));
        out.push(lru_sieve);
    }
    out
}

/// Pin + unpin of cached pages by `threads` threads for `budget`; returns pins per second.
fn hit_path(threads: usize, budget: Duration, figures: &mut Vec<Figure>) -> f64 {
    let file =
        Arc::new(PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap());
    file.extend_to(1026).unwrap();
    let pool = Arc::new(BufferPool::new(file, 2048 * 4096, Arc::new(FixedGeneration(1))).unwrap());
    for id in 2..1026 {
        pool.create(PageId::new(id), PageType::Overflow).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, stop) = (Arc::clone(&pool), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (t as u64);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let g = pool.pin(PageId::new(2 + x % 1024)).unwrap();
                        std::hint::black_box(g.payload().len());
                    }
                    n += 256;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(budget);
    stop.store(true, Ordering::Relaxed);
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let rate = total as f64 / budget.as_secs_f64();
    figures.push(Figure::new(
        format!("hit_path_{threads}t"),
        rate,
        "pins/s",
        format!("pin + unpin of random cached pages (1024 pages, 2048 frames), {threads} threads"),
    ));
    rate
}

fn main() {
    let quick = quick();
    let pages: u64 = if quick { 100_000 } else { 1_000_000 };
    let n = usize::try_from(pages).unwrap();
    let len = 10 * n;
    let warmup = 2 * n;
    let mut figures = Vec::new();

    let zipf = zipf_trace(pages, 0.99, len, 1);
    let z = ratios("zipf", &zipf, pages, warmup, &mut figures);
    // A full sequential scan of every page after each `pages` reads.
    let scans = with_scans(&zipf, pages, n);
    let s = ratios("scan_mixed", &scans, pages, warmup, &mut figures);
    let uniform = uniform_trace(pages, len, 2);
    ratios("uniform", &uniform, pages, warmup, &mut figures);

    // Opening a 1 GiB pool (8 KiB pages): frames get their buffers when first used.
    let file =
        Arc::new(PageFile::create(&MemVfs::new(), "open.ldb".as_ref(), PageSize::DEFAULT).unwrap());
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let pool = BufferPool::new(file.clone(), 1 << 30, Arc::new(FixedGeneration(1))).unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e3);
        drop(pool);
    }
    opens.sort_by(f64::total_cmp);
    figures.push(Figure::new(
        "open_pool_1gib_ms",
        opens[2],
        "ms",
        "BufferPool::new with 1 GiB of 8 KiB frames, median of 5 (target < 10 ms)",
    ));

    let budget = Duration::from_millis(if quick { 200 } else { 1500 });
    let one = hit_path(1, budget, &mut figures);
    hit_path(2, budget, &mut figures);
    hit_path(4, budget, &mut figures);

    figures.push(Figure::new(
        "target_zipf_25pct_sieve",
        z[2].1 * 100.0,
        "%",
        "SIEVE hit ratio, zipf 0.99 at 25 % capacity (target >= 90 and >= LRU)",
    ));
    figures.push(Figure::new(
        "target_zipf_25pct_sieve_minus_lru",
        (z[2].1 - z[2].0) * 100.0,
        "points",
        "SIEVE - LRU, zipf 25 % (target >= 0)",
    ));
    for (i, pct) in [5, 10, 25].iter().enumerate() {
        figures.push(Figure::new(
            format!("target_scan_mixed_{pct}pct_sieve_minus_lru"),
            (s[i].1 - s[i].0) * 100.0,
            "points",
            "SIEVE - LRU on the scan-mixed trace (target >= 5)",
        ));
    }
    figures.push(Figure::new(
        "target_hit_path_1t",
        one / 1e6,
        "M pins/s",
        "one thread (target >= 10)",
    ));
    let path = write_report("cache", &figures).unwrap();
    println!("wrote {}", path.display());
}
