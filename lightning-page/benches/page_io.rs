//! Bench: crc32c checksum throughput and verified page I/O through the OS VFS.
//!
//! `cargo bench -p lightning-page --bench page_io` writes
//! `benchmark_results/<YYYY-MM-DD>/page.json` and `page.html` at the workspace root and
//! prints the same figures. `LIGHTNING_BENCH_QUICK=1` shortens every measurement (a smoke
//! run, not figures to quote).
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    reason = "throughput figures are floating point"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use lightning_testkit::bench::{Figure, quick, repeat, write_report};

use lightning_page::vfs::OsVfs;
use lightning_page::{OpenOptions, PageBuf, PageFile, PageId, PageSize, PageType};

fn checksum_figures(budget: Duration, figures: &mut Vec<Figure>) {
    for size in [4096usize, 8192, 65536] {
        let buf: Vec<u8> = (0..size)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect();
        let (n, t) = repeat(budget, || {
            black_box(crc32c::crc32c(black_box(&buf)));
        });
        figures.push(Figure {
            name: format!("crc32c_{}k", size / 1024),
            value: (n as f64 * size as f64) / t.as_secs_f64() / 1e9,
            unit: "GB/s",
            detail: format!("{n} checksums of {size} bytes in {:.3} s", t.as_secs_f64()),
        });
    }
}

fn page_io_figures(budget: Duration, quick: bool, figures: &mut Vec<Figure>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.ldb");
    let ps = PageSize::DEFAULT;
    let pages: u64 = if quick { 512 } else { 16_384 }; // 128 MiB at 8 KiB pages
    let file = PageFile::create(&OsVfs, &path, ps).unwrap();
    file.extend_to(pages + 2).unwrap();
    let mut page = PageBuf::new(ps, PageType::BTreeLeaf);
    page.set_payload(&vec![0xAB; ps.max_payload()]).unwrap();
    let mb = (pages * u64::from(ps.bytes())) as f64 / 1e6;

    let start = Instant::now();
    for id in 2..pages + 2 {
        file.write_page(PageId::new(id), 1, &mut page).unwrap();
    }
    let write = start.elapsed();
    let start = Instant::now();
    file.sync().unwrap();
    let sync = start.elapsed();
    figures.push(Figure {
        name: "page_write_seq_8k".into(),
        value: mb / write.as_secs_f64(),
        unit: "MB/s",
        detail: format!(
            "{pages} sealed 8 KiB pages (checksum + pwrite) in {:.3} s, before sync",
            write.as_secs_f64()
        ),
    });
    figures.push(Figure {
        name: "page_write_then_fdatasync_8k".into(),
        value: mb / (write + sync).as_secs_f64(),
        unit: "MB/s",
        detail: format!(
            "the same pages made durable: fdatasync took {:.3} s",
            sync.as_secs_f64()
        ),
    });
    drop(file);

    let file = PageFile::open(&OsVfs, &path, OpenOptions::default()).unwrap();
    let start = Instant::now();
    for id in 2..pages + 2 {
        black_box(
            file.read_page(PageId::new(id), Some(PageType::BTreeLeaf))
                .unwrap(),
        );
    }
    let read = start.elapsed();
    figures.push(Figure {
        name: "page_read_verified_seq_8k".into(),
        value: mb / read.as_secs_f64(),
        unit: "MB/s",
        detail: format!(
            "{pages} pages read and verified (pread + crc32c + header checks), from the OS cache"
        ),
    });
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let (count, elapsed) = repeat(budget, || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = PageId::new(2 + state % pages);
        black_box(file.read_page(id, None).unwrap());
    });
    figures.push(Figure {
        name: "page_read_verified_random_8k".into(),
        value: count as f64 / elapsed.as_secs_f64(),
        unit: "pages/s",
        detail: format!(
            "{count} random verified reads in {:.3} s, from the OS cache",
            elapsed.as_secs_f64()
        ),
    });
}

fn main() {
    let quick = quick();
    let budget = Duration::from_millis(if quick { 50 } else { 1500 });
    let mut figures = Vec::new();
    checksum_figures(budget, &mut figures);
    page_io_figures(budget, quick, &mut figures);
    let path = write_report("page", &figures).unwrap();
    println!("wrote {}", path.display());
}
