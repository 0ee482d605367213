//! What Lightning DB's storage layer does today, end to end, on a real directory.
//!
//! ```text
//! cargo run --release -p lightning-page --example demo [-- <directory>]
//! ```
//!
//! Without a directory it works in a temporary one and removes it afterwards. It creates a
//! page file, writes and checkpoints pages, reopens and verifies them, cuts the power
//! hundreds of times in the crash simulator, and shows a flipped bit being caught.
#![expect(clippy::print_stdout, reason = "a demo reports what it did")]

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, OsVfs};
use lightning_page::{OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType};

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
    let sb = alloc.checkpoint(&file, None, 1)?;
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
    let sb = alloc.checkpoint(&file, None, 2)?;
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
        alloc.checkpoint(&file, None, 1)?;
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: seed % 7,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        for id in ids.iter().step_by(2) {
            alloc.free(*id)?;
        }
        let acked = alloc.checkpoint(&file, None, 2).is_ok();
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
    flip_a_bit(&path, rows[rows.len() / 2].0)?;
    power_cuts(500)?;
    println!("done: {}", path.display());
    Ok(())
}
