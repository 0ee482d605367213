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

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lightning_page::vfs::OsVfs;
use lightning_page::{OpenOptions, PageBuf, PageFile, PageId, PageSize, PageType};

struct Figure {
    name: String,
    value: f64,
    unit: &'static str,
    detail: String,
}

/// Repeats `f` until `budget` has passed; returns (iterations, elapsed).
fn repeat(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    (n, start.elapsed())
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap();
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap();
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

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

fn write_reports(quick: bool, figures: &[Figure]) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (y, m, d) = civil_date(i64::try_from(secs / 86_400).unwrap());
    let date = format!("{y:04}-{m:02}-{d:02}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../benchmark_results")
        .join(&date);
    std::fs::create_dir_all(&out).unwrap();

    let mut json = format!(
        "{{\n  \"suite\": \"page\",\n  \"date\": \"{date}\",\n  \"quick\": {quick},\n  \"figures\": [\n"
    );
    let mut rows = String::new();
    for (i, f) in figures.iter().enumerate() {
        let comma = if i + 1 < figures.len() { "," } else { "" };
        writeln!(
            json,
            "    {{\"name\": \"{}\", \"value\": {:.3}, \"unit\": \"{}\", \"detail\": \"{}\"}}{comma}",
            f.name, f.value, f.unit, f.detail
        )
        .unwrap();
        writeln!(
            rows,
            "<tr><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            f.name, f.value, f.unit, f.detail
        )
        .unwrap();
        println!(
            "{:<32} {:>14.3} {:<8} {}",
            f.name, f.value, f.unit, f.detail
        );
    }
    json.push_str("  ]\n}\n");
    std::fs::write(out.join("page.json"), json).unwrap();
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>lightning-page bench {date}</title>\
         <h1>lightning-page bench, {date}</h1><table border=1 cellpadding=4>\
         <tr><th>figure</th><th>value</th><th>unit</th><th>how</th></tr>\n{rows}</table>\n"
    );
    std::fs::write(out.join("page.html"), html).unwrap();
    println!("wrote {}", out.join("page.json").display());
}

fn main() {
    let quick = std::env::var_os("LIGHTNING_BENCH_QUICK").is_some();
    let budget = Duration::from_millis(if quick { 50 } else { 1500 });
    let mut figures = Vec::new();
    checksum_figures(budget, &mut figures);
    page_io_figures(budget, quick, &mut figures);
    write_reports(quick, &figures);
}
