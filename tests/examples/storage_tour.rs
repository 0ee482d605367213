//! What Lightning DB's storage layers do today, end to end, on a real directory.
//!
//! ```text
//! cargo run --release -p lightning-tests --example storage_tour [-- <directory>]
//! ```
//!
//! Without a directory it works in a temporary one and removes it afterwards. It creates a
//! page file, writes and checkpoints pages, reopens and verifies them, reads them through
//! the buffer pool, commits through the write-ahead log from several threads, shows flipped
//! bits being caught in a page and in the log, keeps 200,000 keys in a B+tree (checkpoint,
//! reopen, check, range scan), and cuts the power hundreds of times in the crash simulator.
#![expect(clippy::print_stdout, reason = "a demo reports what it did")]

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_cache::{BufferPool, FixedGeneration};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, OsVfs, Vfs};
use lightning_page::{OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType};
use lightning_wal::{Durability, Lsn, Wal, WalOptions};

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

/// Live pages and the tag of the row each holds.
type Rows = Vec<(PageId, u64)>;

fn payload(tag: u64) -> Vec<u8> {
    let mut p = format!("row {tag}: ").into_bytes();
    p.resize(200 + usize::try_from(tag % 1000).unwrap_or(0), b'x');
    p
}

fn write_row(file: &PageFile, alloc: &PageAllocator, id: PageId, tag: u64) -> Result<()> {
    let mut page = PageBuf::new(file.page_size(), PageType::BTreeLeaf);
    page.set_payload(&payload(tag))?;
    file.write_page(id, alloc.generation(), &mut page)?;
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Creates the file, writes 20,000 rows, checkpoints, then rewrites a third of them
/// copy-on-write and checkpoints again.
fn write_and_checkpoint(path: &Path) -> Result<Rows> {
    let start = Instant::now();
    let file = PageFile::create(&OsVfs, path, PageSize::DEFAULT)?;
    let mut alloc = PageAllocator::load(&file)?;
    let mut rows = Vec::new();
    for tag in 0..20_000u64 {
        let id = alloc.allocate();
        if id.get() >= file.page_count() {
            file.extend_to(alloc.page_count() + 1024)?;
        }
        write_row(&file, &alloc, id, tag)?;
        rows.push((id, tag));
    }
    let sb = alloc.checkpoint(&file, None, Lsn::new(1))?;
    println!(
        "  wrote {} pages of {} bytes and checkpointed generation {} in {:.0} ms",
        rows.len(),
        file.page_size(),
        sb.generation,
        ms(start)
    );
    for (id, tag) in rows.iter_mut().step_by(3) {
        alloc.free(*id)?;
        *id = alloc.allocate();
        file.extend_to(alloc.page_count())?;
        *tag += 1_000_000;
        write_row(&file, &alloc, *id, *tag)?;
    }
    let sb = alloc.checkpoint(&file, None, Lsn::new(2))?;
    println!(
        "  rewrote {} pages copy-on-write; checkpoint {} spans {} pages; allocator {:?}",
        rows.len().div_ceil(3),
        sb.generation,
        sb.page_count,
        alloc.stats()
    );
    Ok(rows)
}

fn reopen_and_verify(path: &Path, rows: &Rows) -> Result<()> {
    let start = Instant::now();
    let file = PageFile::open(&OsVfs, path, OpenOptions::default())?;
    for (id, tag) in rows {
        let (page, _) = file.read_page(*id, Some(PageType::BTreeLeaf))?;
        if page.payload() != payload(*tag) {
            return Err(format!("page {id} holds the wrong row").into());
        }
    }
    println!(
        "  reopened at generation {} and verified {} pages in {:.0} ms",
        file.superblock().generation,
        rows.len(),
        ms(start)
    );
    Ok(())
}

fn flip_a_bit(path: &Path, victim: PageId) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let at = usize::try_from(victim.get() * u64::from(PageSize::DEFAULT.bytes()) + 100)?;
    bytes[at] ^= 0x04;
    std::fs::write(path, &bytes)?;
    let file = PageFile::open(&OsVfs, path, OpenOptions::default())?;
    match file.read_page(victim, Some(PageType::BTreeLeaf)) {
        Err(e) => println!("  flipped one bit of page {victim}; reading it says:\n    {e}"),
        Ok(_) => return Err("a flipped bit went unnoticed".into()),
    }
    Ok(())
}

/// Cuts the power inside a checkpoint under every crash mode: an acknowledged checkpoint is
/// never lost, and the previous one is always there to fall back on.
fn power_cuts(scenarios: u64) -> Result<()> {
    let start = Instant::now();
    let mut outcomes = [0u32; 2];
    let path = Path::new("data.ldb");
    for seed in 0..scenarios {
        let vfs = CrashVfs::new(seed);
        let file = PageFile::create(&vfs, path, PageSize::MIN)?;
        let mut alloc = PageAllocator::load(&file)?;
        let ids: Vec<PageId> = (0..50).map(|_| alloc.allocate()).collect();
        file.extend_to(alloc.page_count())?;
        for id in &ids {
            write_row(&file, &alloc, *id, id.get())?;
        }
        alloc.checkpoint(&file, None, Lsn::new(1))?;
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: seed % 7,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        for id in ids.iter().step_by(2) {
            alloc.free(*id)?;
        }
        let acked = alloc.checkpoint(&file, None, Lsn::new(2)).is_ok();
        vfs.crash(CrashMode::from_index(seed / 7));
        let file = PageFile::open(&vfs, path, OpenOptions::default())?;
        let generation = file.superblock().generation;
        if generation < 1 || (acked && generation < 2) {
            return Err(format!("scenario {seed}: acknowledged checkpoint lost").into());
        }
        PageAllocator::load(&file)?;
        outcomes[usize::try_from(generation - 1)?] += 1;
    }
    println!(
        "  {scenarios} simulated power cuts during a checkpoint in {:.0} ms: {} recovered the \
         previous checkpoint, {} the new one, none lost an acknowledged one",
        ms(start),
        outcomes[0],
        outcomes[1]
    );
    Ok(())
}

/// Reads the rows through a buffer pool a tenth their size, hot rows more often.
fn through_the_cache(path: &Path, rows: &Rows) -> Result<()> {
    let file = Arc::new(PageFile::open(&OsVfs, path, OpenOptions::default())?);
    let frames = rows.len() as u64 / 10;
    let pool = BufferPool::new(
        file,
        frames * u64::from(PageSize::DEFAULT.bytes()),
        Arc::new(FixedGeneration(3)),
    )?;
    let start = Instant::now();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let reads = 200_000;
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Skewed: half the reads go to the first 5 % of rows.
        let n = rows.len() as u64;
        let i = if x.is_multiple_of(2) {
            (x >> 1) % (n / 20)
        } else {
            (x >> 1) % n
        };
        let (id, tag) = rows[usize::try_from(i)?];
        let page = pool.pin(id)?;
        if page.payload() != payload(tag) {
            return Err(format!("page {id} read through the cache holds the wrong row").into());
        }
    }
    let s = pool.stats();
    println!(
        "  {reads} skewed reads through a {frames}-frame buffer pool (SIEVE) in {:.0} ms: hit ratio {:.1} %, {} evictions",
        ms(start),
        s.hit_ratio() * 100.0,
        s.evictions
    );
    Ok(())
}

/// Commits from 8 threads through the WAL, reopens it, and catches a flipped bit mid-log.
fn through_the_wal(dir: &Path) -> Result<()> {
    let wal_dir = dir.join("wal");
    let wal = Arc::new(Wal::open(
        Arc::new(OsVfs),
        &wal_dir,
        WalOptions {
            segment_size: 1 << 20,
            ..WalOptions::default()
        },
    )?);
    let start = Instant::now();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || -> lightning_wal::Result<()> {
                for i in 0..250u64 {
                    wal.append(1, &payload(t * 1000 + i), Durability::Immediate)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "an appender panicked")??;
    }
    let stats = wal.stats();
    println!(
        "  8 threads made 2,000 commits durable through the WAL in {:.0} ms with {} fsyncs (group commit)",
        ms(start),
        stats.syncs
    );
    drop(wal);
    let wal = Wal::open(Arc::new(OsVfs), &wal_dir, WalOptions::default())?;
    let replayed = wal.read_from(Lsn::new(1))?.count();
    println!(
        "  reopened the WAL: {replayed} records replayable, last LSN {}",
        wal.recovery().last_lsn
    );
    drop(wal);
    let first = OsVfs
        .list(&wal_dir)?
        .into_iter()
        .next()
        .ok_or("no WAL segment")?;
    let mut bytes = std::fs::read(&first)?;
    bytes[500] ^= 0x01;
    std::fs::write(&first, &bytes)?;
    match Wal::open(Arc::new(OsVfs), &wal_dir, WalOptions::default()) {
        Err(e) => println!("  flipped one bit in the middle of the log; opening it says:\n    {e}"),
        Ok(_) => return Err("a flipped bit in a durable WAL record went unnoticed".into()),
    }
    Ok(())
}

/// Power cuts under 4 threads appending to the WAL: no acknowledged commit is ever lost.
fn wal_power_cuts(scenarios: u64) -> Result<()> {
    let start = Instant::now();
    let mut acked_total = 0;
    for seed in 0..scenarios {
        let vfs = Arc::new(CrashVfs::new(seed));
        let opts = WalOptions {
            segment_size: 8192,
            flush_interval: std::time::Duration::ZERO,
            ..WalOptions::default()
        };
        let wal = Wal::open(vfs.clone(), Path::new("wal"), opts.clone())?;
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: seed % 40,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        let acked = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (wal, acked) = (&wal, &acked);
                s.spawn(move || {
                    for i in 0..20 {
                        match wal.append(1, &payload(t * 100 + i), Durability::Immediate) {
                            Ok(a) => {
                                if let Ok(mut v) = acked.lock() {
                                    v.push(a.lsn());
                                }
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        drop(wal);
        vfs.crash(CrashMode::from_index(seed));
        let wal = Wal::open(vfs, Path::new("wal"), opts)?;
        let last = wal.recovery().last_lsn;
        let acked = acked.into_inner().map_err(|_| "poisoned")?;
        if let Some(lost) = acked.iter().find(|l| **l > last) {
            return Err(format!("scenario {seed}: acknowledged commit {lost} lost").into());
        }
        acked_total += acked.len();
    }
    println!(
        "  {scenarios} simulated power cuts under 4 concurrent WAL appenders in {:.0} ms: {acked_total} acknowledged commits, none lost",
        ms(start)
    );
    Ok(())
}

/// A key-value table in a B+tree on disk: inserts, a checkpoint, more writes (copy-on-write),
/// a reopen from the checkpoint, the integrity check and a range scan.
fn in_a_btree(dir: &Path) -> Result<()> {
    let path = dir.join("kv.ldb");
    let key = |i: u64| format!("user:{i:08}").into_bytes();
    let n = 200_000u64;
    let start = Instant::now();
    let file = Arc::new(PageFile::create(&OsVfs, &path, PageSize::DEFAULT)?);
    let tree = BTree::create(Arc::new(Store::open(file, 64 << 20)?))?;
    for i in 0..n {
        tree.insert(
            &key((i * 7919) % n),
            format!("{{\"visits\": {i}}}").as_bytes(),
        )?;
    }
    let cp = tree.checkpoint(Lsn::new(1))?;
    println!(
        "  B+tree: {n} keys inserted in random order and checkpointed in {:.0} ms (generation {}, {} pages written)",
        ms(start),
        cp.superblock.generation,
        cp.dirty_pages.len()
    );
    // After the checkpoint: changes copy pages, the checkpoint image stays as it was.
    for i in 0..1000 {
        tree.remove(&key(i))?;
    }
    drop(tree);
    let start = Instant::now();
    let file = Arc::new(PageFile::open(&OsVfs, &path, OpenOptions::default())?);
    let root = file
        .superblock()
        .catalog_root
        .ok_or("the checkpoint recorded no root")?;
    let tree = BTree::open(Arc::new(Store::open(file, 64 << 20)?), root)?;
    let report = tree.check()?;
    println!(
        "  reopened at the checkpoint (the 1,000 removals after it are not in it) and checked in {:.0} ms: {report}",
        ms(start).round()
    );
    if !report.is_ok() || report.entries != n {
        return Err(format!("the reopened tree is not what was checkpointed: {report}").into());
    }
    let page: Vec<String> = tree
        .range(key(4242)..key(4245))
        .map(|e| {
            e.map(|(k, v)| {
                format!(
                    "{} = {}",
                    String::from_utf8_lossy(&k),
                    String::from_utf8_lossy(&v)
                )
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    println!(
        "  range user:00004242..user:00004245 -> {}",
        page.join(", ")
    );
    Ok(())
}

fn main() -> Result<()> {
    let (dir, _temp) = if let Some(d) = std::env::args_os().nth(1) {
        (PathBuf::from(d), None)
    } else {
        let t = tempfile::tempdir()?;
        (t.path().to_path_buf(), Some(t))
    };
    let path = dir.join("data.ldb");
    if path.exists() {
        return Err(format!("{} already exists; give an empty directory", path.display()).into());
    }
    println!("Lightning DB storage demo in {}", dir.display());
    let rows = write_and_checkpoint(&path)?;
    reopen_and_verify(&path, &rows)?;
    through_the_cache(&path, &rows)?;
    flip_a_bit(&path, rows[rows.len() / 2].0)?;
    through_the_wal(&dir)?;
    in_a_btree(&dir)?;
    power_cuts(500)?;
    wal_power_cuts(300)?;
    println!("done: {}", path.display());
    Ok(())
}
