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
use std::path::PathBuf;
use std::time::Instant;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, OsVfs};
use lightning_page::{OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType};

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

fn payload(tag: u64) -> Vec<u8> {
    let mut p = format!("row {tag}: ").into_bytes();
    p.resize(200 + usize::try_from(tag % 1000).unwrap_or(0), b'x');
    p
}

fn main() -> Result<()> {
    let (dir, _temp) = match std::env::args_os().nth(1) {
        Some(d) => (PathBuf::from(d), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let path = dir.join("data.ldb");
    if path.exists() {
        return Err(format!("{} already exists; give an empty directory", path.display()).into());
    }
    println!("Lightning DB storage demo in {}", dir.display());

    // 1. Create, write 20,000 pages, checkpoint.
    let start = Instant::now();
    let file = PageFile::create(&OsVfs, &path, PageSize::DEFAULT)?;
    let mut alloc = PageAllocator::load(&file)?;
    let mut live = Vec::new();
    for tag in 0..20_000u64 {
        let id = alloc.allocate();
        if id.get() >= file.page_count() {
            file.extend_to(alloc.page_count() + 1024)?;
        }
        let mut page = PageBuf::new(file.page_size(), PageType::BTreeLeaf);
        page.set_payload(&payload(tag))?;
        file.write_page(id, alloc.generation(), &mut page)?;
        live.push((id, tag));
    }
    let sb = alloc.checkpoint(&file, None, 1)?;
    println!(
        "  wrote {} pages of {} bytes and checkpointed generation {} in {:.0} ms",
        live.len(),
        file.page_size(),
        sb.generation,
        start.elapsed().as_secs_f64() * 1e3
    );

    // 2. Copy-on-write churn: replace a third of the pages, checkpoint again.
    for (id, tag) in live.iter_mut().step_by(3) {
        alloc.free(*id)?;
        *id = alloc.allocate();
        file.extend_to(alloc.page_count())?;
        *tag += 1_000_000;
        let mut page = PageBuf::new(file.page_size(), PageType::BTreeLeaf);
        page.set_payload(&payload(*tag))?;
        file.write_page(*id, alloc.generation(), &mut page)?;
    }
    let sb = alloc.checkpoint(&file, None, 2)?;
    println!(
        "  rewrote {} pages copy-on-write; checkpoint {} has {} pages, stats {:?}",
        live.len().div_ceil(3),
        sb.generation,
        sb.page_count,
        alloc.stats()
    );
    drop(file);

    // 3. Reopen and verify every page.
    let start = Instant::now();
    let file = PageFile::open(&OsVfs, &path, OpenOptions::default())?;
    for (id, tag) in &live {
        let (page, _) = file.read_page(*id, Some(PageType::BTreeLeaf))?;
        if page.payload() != payload(*tag) {
            return Err(format!("page {id} holds the wrong row").into());
        }
    }
    println!(
        "  reopened at generation {} and verified {} pages in {:.0} ms",
        file.superblock().generation,
        live.len(),
        start.elapsed().as_secs_f64() * 1e3
    );

    // 4. A flipped bit on disk is caught and named.
    drop(file);
    let mut bytes = std::fs::read(&path)?;
    let victim = live[live.len() / 2].0;
    let at = usize::try_from(victim.get() * u64::from(PageSize::DEFAULT.bytes()) + 100)?;
    bytes[at] ^= 0x04;
    std::fs::write(&path, &bytes)?;
    let file = PageFile::open(&OsVfs, &path, OpenOptions::default())?;
    match file.read_page(victim, Some(PageType::BTreeLeaf)) {
        Err(e) => println!("  flipped one bit of page {victim}; reading it says:\n    {e}"),
        Ok(_) => return Err("a flipped bit went unnoticed".into()),
    }

    // 5. Power cuts in the crash simulator: every acknowledged checkpoint survives.
    let start = Instant::now();
    let mut outcomes = [0u32; 2];
    let scenarios = 500u64;
    for seed in 0..scenarios {
        let vfs = CrashVfs::new(seed);
        let f = PageFile::create(&vfs, "data.ldb".as_ref(), PageSize::MIN)?;
        let mut a = PageAllocator::load(&f)?;
        let ids: Vec<PageId> = (0..50).map(|_| a.allocate()).collect();
        f.extend_to(a.page_count())?;
        for id in &ids {
            f.write_page(
                *id,
                a.generation(),
                &mut PageBuf::new(PageSize::MIN, PageType::Overflow),
            )?;
        }
        a.checkpoint(&f, None, 1)?;
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: seed % 7,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        for id in ids.iter().step_by(2) {
            a.free(*id)?;
        }
        let acked = a.checkpoint(&f, None, 2).is_ok();
        vfs.crash(CrashMode::from_index(seed / 7));
        let f = PageFile::open(&vfs, "data.ldb".as_ref(), OpenOptions::default())?;
        let g = f.superblock().generation;
        if g < 1 || (acked && g < 2) {
            return Err(format!("scenario {seed}: acknowledged checkpoint lost").into());
        }
        PageAllocator::load(&f)?;
        outcomes[usize::try_from(g - 1)?] += 1;
    }
    println!(
        "  {scenarios} simulated power cuts during a checkpoint in {:.0} ms: {} recovered the previous checkpoint, {} the new one, none lost an acknowledged one",
        start.elapsed().as_secs_f64() * 1e3,
        outcomes[0],
        outcomes[1]
    );
    println!("done: {}", path.display());
    Ok(())
}
