//! Writes TPC-H `lineitem.tbl` and `orders.tbl` (dbgen's `|`-separated text) generated
//! in-process with `tpchgen`, for loading the same rows into other engines (see
//! `scripts/duckdb-columns.py`).
//!
//! ```text
//! cargo run --release -p lightning-compress --example tpch-tbl -- <dir> [scale factor, default 1]
//! ```
#![expect(
    clippy::print_stdout,
    reason = "a command-line tool reports what it wrote"
)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use tpchgen::generators::{LineItemGenerator, OrderGenerator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: tpch-tbl <dir> [scale factor]")?);
    let sf: f64 = args.next().map_or(Ok(1.0), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("lineitem.tbl");
    let mut out = BufWriter::new(File::create(&path)?);
    for row in LineItemGenerator::new(sf, 1, 1).iter() {
        writeln!(out, "{row}")?;
    }
    out.flush()?;
    println!("wrote {}", path.display());
    let path = dir.join("orders.tbl");
    let mut out = BufWriter::new(File::create(&path)?);
    for row in OrderGenerator::new(sf, 1, 1).iter() {
        writeln!(out, "{row}")?;
    }
    out.flush()?;
    println!("wrote {}", path.display());
    Ok(())
}
