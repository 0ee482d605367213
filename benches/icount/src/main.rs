//! Instruction counts of the hot paths, for the part of the performance gate that must hold
//! 5 % on a machine whose wall-clock figures swing 20–40 % between runs.
//!
//! `icount <path>` sets one hot path up, then runs its measured function — a
//! `#[inline(never)]` function named `hot_<path>` that does a fixed amount of work on fixed
//! data — once. `scripts/icount.py` runs each path under Valgrind's callgrind with collection
//! switched on only inside that function (`--toggle-collect`), so the count is the hot path's
//! instructions alone: not the setup, not the process's start, not other threads. With fixed
//! inputs and no clocks in the measured code, the count is the same from run to run to well
//! under 1 % (the script reports the spread it sees), which a 5 % gate needs.
//!
//! ```text
//! icount --list          # the paths, one per line
//! icount btree_get       # run one path (natively: a smoke run; under callgrind: a count)
//! python3 scripts/icount.py            # every path under callgrind, against the baselines
//! ```
//!
//! Every measured function checks what it did (keys found, bytes round-tripped) and fails the
//! run otherwise, so a path cannot get cheaper by doing less.
#![expect(clippy::print_stdout, reason = "a bench binary reports on stdout")]

use std::hint::black_box;
use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_cache::{BufferPool, FixedGeneration};
use lightning_db::{Database, Durability, Keyspace, Options, TxOptions};
use lightning_page::vfs::MemVfs;
use lightning_page::{PageFile, PageId, PageSize, PageType};
use lightning_wal::{Wal, WalOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Keys in the trees the B+tree paths run on.
const TREE_KEYS: u64 = 20_000;
/// Operations per measured call.
const OPS: u64 = 5_000;
/// Value length of the B+tree and database paths (the peer benchmarks' 150 bytes).
const VALUE_LEN: usize = 150;

/// A hot path: its name and what runs it.
type Path = (&'static str, fn() -> Result<()>);

/// The hot paths.
const PATHS: &[Path] = &[
    ("btree_get", btree_get),
    ("btree_insert", btree_insert),
    ("cache_pin", cache_pin),
    ("wal_append", wal_append),
    ("commit_no_fsync", commit_no_fsync),
    ("compress_encode", compress_encode),
    ("compress_decode", compress_decode),
];

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; flags other than `--list` are ignored.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in PATHS {
            println!("{name}");
        }
        return Ok(());
    }
    let named: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let run: Vec<&Path> = if named.is_empty() {
        PATHS.iter().collect()
    } else {
        let mut run = Vec::new();
        for n in named {
            run.push(
                PATHS
                    .iter()
                    .find(|(name, _)| name == n)
                    .ok_or_else(|| format!("no hot path {n:?}; `icount --list` lists them"))?,
            );
        }
        run
    };
    for (name, f) in run {
        f()?;
        println!("{name}: ok");
    }
    Ok(())
}

/// A 24-byte key: `i` scrambled (random order over the key space), then `i`.
fn key(i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    let s = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    k[..8].copy_from_slice(&s.to_le_bytes());
    k[8..16].copy_from_slice(&i.to_le_bytes());
    k
}

fn value(i: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut x = i;
    for b in &mut v {
        // A byte pattern: the low byte of a counter.
        *b = x.to_le_bytes()[0];
        x = x.wrapping_add(1);
    }
    v
}

/// A B+tree over an in-memory page file with a cache larger than the data, holding keys
/// `0..TREE_KEYS`.
fn tree() -> Result<BTree> {
    let file = Arc::new(PageFile::create(
        &MemVfs::new(),
        "icount.ldb".as_ref(),
        PageSize::DEFAULT,
    )?);
    let tree = BTree::create(Arc::new(Store::open(file, 256 << 20)?))?;
    for i in 0..TREE_KEYS {
        tree.insert(&key(i), &value(i))?;
    }
    Ok(tree)
}

fn btree_get() -> Result<()> {
    let tree = tree()?;
    let found = hot_btree_get(&tree)?;
    if found != OPS {
        return Err(format!("btree_get found {found} of {OPS} keys").into());
    }
    Ok(())
}

/// `OPS` point reads of present keys, spread over the tree.
#[inline(never)]
fn hot_btree_get(tree: &BTree) -> Result<u64> {
    let mut found = 0;
    for i in 0..OPS {
        let k = key(i * (TREE_KEYS / OPS) + i % 3);
        if let Some(v) = tree.get(black_box(&k))?
            && v.len() == VALUE_LEN
        {
            found += 1;
        }
    }
    Ok(found)
}

fn btree_insert() -> Result<()> {
    let tree = tree()?;
    hot_btree_insert(&tree)?;
    for i in TREE_KEYS..TREE_KEYS + OPS {
        if tree.get(&key(i))?.is_none() {
            return Err(format!("btree_insert: key {i} missing after the inserts").into());
        }
    }
    Ok(())
}

/// `OPS` inserts of new keys, spread over the tree (splits included).
#[inline(never)]
fn hot_btree_insert(tree: &BTree) -> Result<()> {
    for i in TREE_KEYS..TREE_KEYS + OPS {
        tree.insert(black_box(&key(i)), &value(i))?;
    }
    Ok(())
}

fn cache_pin() -> Result<()> {
    let file = Arc::new(PageFile::create(
        &MemVfs::new(),
        "pool.ldb".as_ref(),
        PageSize::MIN,
    )?);
    let pool = BufferPool::new(file, 4096 * 4096, Arc::new(FixedGeneration(1)))?;
    for id in 2..2 + 1024 {
        drop(pool.create(PageId::new(id), PageType::Overflow)?);
    }
    let pinned = hot_cache_pin(&pool)?;
    if pinned != 4 * OPS {
        return Err(format!("cache_pin pinned {pinned} of {} pages", 4 * OPS).into());
    }
    Ok(())
}

/// `4 * OPS` pins and unpins of resident pages.
#[inline(never)]
fn hot_cache_pin(pool: &BufferPool) -> Result<u64> {
    let mut pinned = 0;
    for i in 0..4 * OPS {
        let page = pool.pin(PageId::new(2 + (i * 7) % 1024))?;
        black_box(&page);
        pinned += 1;
    }
    Ok(pinned)
}

fn wal_append() -> Result<()> {
    let wal = Wal::open(
        Arc::new(MemVfs::new()),
        "wal".as_ref(),
        WalOptions::default(),
    )?;
    let payload = value(7);
    hot_wal_append(&wal, &payload)?;
    Ok(())
}

/// `OPS` appends of a 150-byte record, not synced (framing, checksums, buffering).
#[inline(never)]
fn hot_wal_append(wal: &Wal, payload: &[u8]) -> Result<()> {
    for _ in 0..OPS {
        wal.append(1, black_box(payload), lightning_wal::Durability::None)?;
    }
    Ok(())
}

fn commit_no_fsync() -> Result<()> {
    let db = Database::open_with_vfs(
        Arc::new(MemVfs::new()),
        "db".as_ref(),
        Options {
            // No checkpoint inside the measured commits (the interval and the WAL size
            // would otherwise start one on another thread, at a moment that varies).
            checkpoint_interval_ms: 3_600_000,
            ..Options::default()
        },
    )?;
    let ks = db.keyspace("icount")?;
    // Warm: the keyspace's tree has pages and the WAL a segment.
    for i in 0..100 {
        db.put(&ks, &key(i), &value(i))?;
    }
    hot_commit_no_fsync(&db, &ks)?;
    let tx = db.begin_read()?;
    for i in 1_000..1_000 + OPS / 5 {
        if tx.get(&ks, &key(i))?.is_none() {
            return Err(format!("commit_no_fsync: key {i} missing after its commit").into());
        }
    }
    Ok(())
}

/// `OPS / 5` single-key write transactions committed with `Durability::None`: begin,
/// put, validate, WAL record, apply to the tree, publish.
#[inline(never)]
fn hot_commit_no_fsync(db: &Database, ks: &Keyspace) -> Result<()> {
    let opts = TxOptions {
        durability: Some(Durability::None),
        ..TxOptions::default()
    };
    for i in 1_000..1_000 + OPS / 5 {
        let mut tx = db.begin_write_with(opts)?;
        tx.put(ks, black_box(&key(i)), &value(i))?;
        tx.commit()?;
    }
    Ok(())
}

/// 256 Ki values a column might hold: small deltas with an outlier every 1,000.
fn column() -> Vec<u64> {
    let mut v = Vec::with_capacity(1 << 18);
    let mut x = 1_000_000u64;
    for i in 0..1u64 << 18 {
        x += i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        v.push(if i % 1000 == 999 { x << 20 } else { x });
    }
    v
}

fn compress_encode() -> Result<()> {
    let values = column();
    let bytes = hot_compress_encode(&values)?;
    let mut back = Vec::new();
    lightning_compress::decode(&bytes, &mut back)?;
    if back != values {
        return Err("compress_encode: the block does not decode to its values".into());
    }
    Ok(())
}

/// Encoding 256 Ki values (scheme choice included).
#[inline(never)]
fn hot_compress_encode(values: &[u64]) -> Result<Vec<u8>> {
    Ok(lightning_compress::encode(black_box(values))?)
}

fn compress_decode() -> Result<()> {
    let values = column();
    let bytes = lightning_compress::encode(&values)?;
    let mut back = Vec::with_capacity(values.len());
    hot_compress_decode(&bytes, &mut back)?;
    if back != values {
        return Err("compress_decode: the block does not decode to its values".into());
    }
    Ok(())
}

/// Decoding 256 Ki values.
#[inline(never)]
fn hot_compress_decode(bytes: &[u8], out: &mut Vec<u64>) -> Result<()> {
    Ok(lightning_compress::decode(black_box(bytes), out)?)
}
