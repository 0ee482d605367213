//! Bench: 1M inserts (random and sequential order), 1M random gets, a full scan and a bulk
//! load, 16-byte keys and 100-byte values, with a cache larger than the data and one at 10 %
//! of it; get and insert latencies (p50, p99, max) while another thread checkpoints a third
//! of the tree's pages, beside the same with no checkpoint; `std::collections::BTreeMap` in
//! the same run as the in-memory reference. The page
//! file is on the real disk (a temporary directory; `LIGHTNING_BENCH_DIR` picks where).
//! Writes `benchmark_results/<YYYY-MM-DD>/btree.json` and `.html`.
//!
//! ```text
//! cargo bench -p lightning-btree --bench btree
//! ```
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    clippy::big_endian_bytes,
    reason = "rates are floating point; big-endian keys sort numerically"
)]

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::OsVfs;
use lightning_page::{PageFile, PageSize};
use lightning_testkit::Rng;
use lightning_testkit::bench::{Figure, quick, temp_dir, write_report};

const VALUE: usize = 100;

fn key(i: u64) -> [u8; 16] {
    // A spread-out 16-byte key: the index scrambled, then the index (unique, and the
    // sequential order is the key order).
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    k
}

fn new_tree(dir: &tempfile::TempDir, name: &str, cache: u64) -> BTree {
    let path = dir.path().join(name);
    let file = Arc::new(PageFile::create(&OsVfs::new(), &path, PageSize::DEFAULT).unwrap());
    BTree::create(Arc::new(Store::open(file, cache).unwrap())).unwrap()
}

/// Two readers doing random gets while one writer inserts new keys, for a second: both
/// sides' rates (the tree-level lock lets readers run together and a writer between them).
fn mixed(tree: BTree, n: u64, value: &[u8], detail: &str, figures: &mut Vec<Figure>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tree = Arc::new(tree);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (tree, stop) = (tree.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(r + 10);
                let mut gets = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert!(tree.get(&key(rng.below(n))).unwrap().is_some());
                    gets += 1;
                }
                gets
            })
        })
        .collect();
    let mut writes = 0u64;
    while start.elapsed().as_secs_f64() < 1.0 {
        tree.insert(&key(n + writes), value).unwrap();
        writes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let gets: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    figures.push(Figure::new(
        "mixed_readers_get",
        rate(gets, elapsed),
        "ops/s",
        format!("2 reader threads together, beside 1 writer; {detail}"),
    ));
    figures.push(Figure::new(
        "mixed_writer_insert",
        rate(writes, elapsed),
        "ops/s",
        format!("1 writer beside 2 readers; {detail}"),
    ));
}

/// Latency of gets and inserts on this thread while another checkpoints the tree after a
/// third of its keys were rewritten (the checkpoint writes those pages and syncs twice on the
/// real disk): p50, p99 and the longest, in microseconds, beside the same figures with no
/// checkpoint running, and the checkpoint's own duration.
fn during_checkpoint(tree: BTree, n: u64, value: &[u8], detail: &str, figures: &mut Vec<Figure>) {
    let tree = Arc::new(tree);
    let mut rng = Rng::new(99);
    let measure = |rng: &mut Rng, ops: &mut Vec<(u64, u64)>, next: &mut u64| {
        let t = Instant::now();
        assert!(tree.get(&key(rng.below(n))).unwrap().is_some());
        let get = t.elapsed();
        let t = Instant::now();
        tree.insert(&key(*next), value).unwrap();
        *next += 1;
        let insert = t.elapsed();
        ops.push((
            u64::try_from(get.as_nanos()).unwrap_or(u64::MAX),
            u64::try_from(insert.as_nanos()).unwrap_or(u64::MAX),
        ));
    };
    let mut next = 2 * n;
    for round in 0..3 {
        for i in (0..n).step_by(3) {
            tree.insert(&key(i), &vec![round; value.len()]).unwrap();
        }
        // The same operations with no checkpoint running.
        let mut quiet = Vec::new();
        for _ in 0..20_000 {
            measure(&mut rng, &mut quiet, &mut next);
        }
        let checkpointer = {
            let tree = tree.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let cp = tree.checkpoint(Lsn::new(u64::from(round) + 10)).unwrap();
                (t.elapsed(), cp.dirty_pages.len())
            })
        };
        let mut during = Vec::new();
        while !checkpointer.is_finished() {
            measure(&mut rng, &mut during, &mut next);
        }
        let (took, pages) = checkpointer.join().unwrap();
        if round < 2 {
            continue; // warm-up rounds
        }
        let pct = |v: &mut Vec<u64>, p: f64| -> f64 {
            v.sort_unstable();
            if v.is_empty() {
                return 0.0;
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "an index into a non-empty vector"
            )]
            let i = ((v.len() - 1) as f64 * p).round() as usize;
            v[i] as f64 / 1_000.0
        };
        let what = format!(
            "{} operations of each kind during a checkpoint of {pages} dirty pages taking {:.1} ms; {detail}",
            during.len(),
            took.as_secs_f64() * 1e3
        );
        let quiet_what = format!(
            "{} operations of each kind, no checkpoint running; {detail}",
            quiet.len()
        );
        for (label, ops, what) in [
            ("quiet", &quiet, &quiet_what),
            ("during_checkpoint", &during, &what),
        ] {
            let mut gets: Vec<u64> = ops.iter().map(|o| o.0).collect();
            let mut inserts: Vec<u64> = ops.iter().map(|o| o.1).collect();
            for (op, v) in [("get", &mut gets), ("insert", &mut inserts)] {
                for (name, p) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
                    figures.push(Figure::new(
                        format!("{label}_{op}_{name}_us"),
                        pct(v, p),
                        "us",
                        what.clone(),
                    ));
                }
            }
        }
        figures.push(Figure::new(
            "checkpoint_ms",
            took.as_secs_f64() * 1e3,
            "ms",
            what.clone(),
        ));
        figures.push(Figure::new(
            "ops_during_checkpoint",
            during.len() as f64,
            "get+insert pairs",
            what,
        ));
    }
}

fn rate(n: u64, t: std::time::Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

#[expect(clippy::too_many_lines, reason = "one bench, step by step")]
fn main() {
    let n: u64 = if quick() { 100_000 } else { 1_000_000 };
    let value = vec![7u8; VALUE];
    let mut rng = Rng::new(1);
    let mut order: Vec<u64> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, usize::try_from(rng.below(i as u64 + 1)).unwrap());
    }
    let data_bytes = n * (16 + VALUE as u64);
    let mut figures = Vec::new();
    let dir = temp_dir().unwrap();

    // The in-memory reference.
    let t = Instant::now();
    let mut map = BTreeMap::new();
    for i in &order {
        map.insert(key(*i).to_vec(), value.clone());
    }
    let map_insert = rate(n, t.elapsed());
    let t = Instant::now();
    for i in &order {
        black_box(map.get(&key(*i)[..]));
    }
    let map_get = rate(n, t.elapsed());
    let t = Instant::now();
    black_box(map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    let map_scan = rate(n, t.elapsed());
    drop(map);
    for (name, v) in [
        ("insert_random", map_insert),
        ("get_random", map_get),
        ("scan", map_scan),
    ] {
        figures.push(Figure::new(
            format!("btreemap_{name}"),
            v,
            "ops/s",
            "std BTreeMap<Vec<u8>, Vec<u8>>, the in-memory reference",
        ));
    }

    for (label, cache) in [
        ("cache_2x", data_bytes * 2),
        ("cache_10pct", data_bytes / 10),
    ] {
        let detail = format!(
            "{n} entries, 16-byte keys, {VALUE}-byte values, 8 KiB pages, cache {} MB",
            cache / 1_000_000
        );
        let tree = new_tree(&dir, &format!("random-{label}"), cache);
        let t = Instant::now();
        for i in &order {
            tree.insert(&key(*i), &value).unwrap();
        }
        figures.push(Figure::new(
            format!("{label}_insert_random"),
            rate(n, t.elapsed()),
            "ops/s",
            detail.clone(),
        ));
        let t = Instant::now();
        for i in &order {
            black_box(tree.get(&key(*i)).unwrap());
        }
        figures.push(Figure::new(
            format!("{label}_get_random"),
            rate(n, t.elapsed()),
            "ops/s",
            detail.clone(),
        ));
        let t = Instant::now();
        let scanned = tree
            .iter()
            .map(|e| black_box(e.unwrap()))
            .fold(0u64, |n, _| n + 1);
        assert_eq!(scanned, n);
        figures.push(Figure::new(
            format!("{label}_scan"),
            rate(n, t.elapsed()),
            "entries/s",
            detail.clone(),
        ));
        let report = tree.check().unwrap();
        assert!(report.is_ok(), "{report}");
        println!("{label}: random-order tree {report}");
        if label == "cache_2x" {
            mixed(tree, n, &value, &detail, &mut figures);
            let tree = new_tree(&dir, "checkpoint-cache_2x", cache);
            tree.bulk_load(
                {
                    let mut sorted: Vec<[u8; 16]> = (0..n).map(key).collect();
                    sorted.sort_unstable();
                    sorted
                }
                .iter()
                .map(|k| (*k, &value)),
                0.8,
            )
            .unwrap();
            tree.checkpoint(Lsn::new(1)).unwrap();
            during_checkpoint(tree, n, &value, &detail, &mut figures);
        } else {
            drop(tree);
        }

        let tree = new_tree(&dir, &format!("sequential-{label}"), cache);
        let mut sorted: Vec<[u8; 16]> = (0..n).map(key).collect();
        sorted.sort_unstable();
        let t = Instant::now();
        for k in &sorted {
            tree.insert(k, &value).unwrap();
        }
        figures.push(Figure::new(
            format!("{label}_insert_sequential"),
            rate(n, t.elapsed()),
            "ops/s",
            detail.clone(),
        ));
        drop(tree);

        let tree = new_tree(&dir, &format!("bulk-{label}"), cache);
        let t = Instant::now();
        tree.bulk_load(sorted.iter().map(|k| (k, &value)), 1.0)
            .unwrap();
        figures.push(Figure::new(
            format!("{label}_bulk_load"),
            rate(n, t.elapsed()),
            "entries/s",
            format!("{detail}, fill factor 1.0"),
        ));
        let report = tree.check().unwrap();
        assert!(report.is_ok() && report.entries == n, "{report}");
        println!("{label}: bulk-loaded tree {report}");
    }
    let path = write_report("btree", &figures).unwrap();
    println!("wrote {}", path.display());
}
