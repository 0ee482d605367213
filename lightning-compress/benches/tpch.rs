//! Bench: every column of TPC-H `lineitem` and `orders`, generated in-process by `tpchgen`, encoded in row
//! groups of 100,000 values; compressed size against raw binary (fixed-width columns at their
//! width, strings as bytes plus u32 offsets). The same raw bytes of each row group also go
//! through lz4 (`lz4_flex`, block format) and zstd (level 3) as reference points in the same
//! run. Writes `benchmark_results/<date>/tpch.json`.
//!
//! ```text
//! cargo bench -p lightning-compress --bench tpch             # scale factor 0.1
//! LIGHTNING_TPCH_SF=1 cargo bench -p lightning-compress --bench tpch
//! ```
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(clippy::cast_precision_loss, reason = "ratios are floating point")]

use std::hint::black_box;
use std::time::Instant;

use lightning_compress::{decode_into, decode_strings_into, encode, encode_strings, i64_key};
use lightning_testkit::bench::{Figure, write_report};
use tpchgen::generators::{LineItemGenerator, OrderGenerator};

const GROUP: usize = 100_000;

#[derive(Default)]
struct Column {
    ints: Vec<u64>,
    strings: Vec<String>,
    /// The row group in the raw layout: fixed-width little-endian values, or u32 end offsets
    /// followed by the string bytes.
    raw_bytes: Vec<u8>,
    raw: u64,
    encoded: u64,
    lz4: u64,
    zstd: u64,
    /// Seconds spent encoding and decoding (ours), and decompressing (lz4, zstd).
    encode_s: f64,
    decode_s: f64,
    lz4_decode_s: f64,
    zstd_decode_s: f64,
    /// Reused decode buffers.
    out: Vec<u64>,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Column {
    fn int(&mut self, v: i64, width: usize) {
        self.ints.push(i64_key(v));
        self.raw_bytes.extend_from_slice(&v.to_le_bytes()[..width]);
        self.raw += width as u64;
    }

    fn string(&mut self, s: &str) {
        self.strings.push(s.to_owned());
        self.raw += s.len() as u64 + 4;
    }

    fn flush(&mut self) {
        if !self.ints.is_empty() {
            let t = Instant::now();
            let block = encode(&self.ints).unwrap();
            self.encode_s += t.elapsed().as_secs_f64();
            self.out.resize(self.ints.len(), 0);
            let t = Instant::now();
            let n = decode_into(black_box(&block), &mut self.out).unwrap();
            self.decode_s += t.elapsed().as_secs_f64();
            assert_eq!(&self.out[..n], &self.ints[..]);
            self.encoded += block.len() as u64;
            self.ints.clear();
        }
        if !self.strings.is_empty() {
            let t = Instant::now();
            let block = encode_strings(&self.strings).unwrap();
            self.encode_s += t.elapsed().as_secs_f64();
            self.bytes.clear();
            self.ends.clear();
            let t = Instant::now();
            decode_strings_into(black_box(&block), &mut self.bytes, &mut self.ends).unwrap();
            self.decode_s += t.elapsed().as_secs_f64();
            assert_eq!(self.ends.len(), self.strings.len());
            self.encoded += block.len() as u64;
            let mut end = 0u32;
            for s in &self.strings {
                end += u32::try_from(s.len()).unwrap();
                self.raw_bytes.extend_from_slice(&end.to_le_bytes());
            }
            for s in &self.strings {
                self.raw_bytes.extend_from_slice(s.as_bytes());
            }
            self.strings.clear();
        }
        if !self.raw_bytes.is_empty() {
            let lz4 = lz4_flex::block::compress(&self.raw_bytes);
            let t = Instant::now();
            let back = lz4_flex::block::decompress(black_box(&lz4), self.raw_bytes.len()).unwrap();
            self.lz4_decode_s += t.elapsed().as_secs_f64();
            assert_eq!(back.len(), self.raw_bytes.len());
            let zstd = zstd::bulk::compress(&self.raw_bytes, 3).unwrap();
            let t = Instant::now();
            let back = zstd::bulk::decompress(black_box(&zstd), self.raw_bytes.len()).unwrap();
            self.zstd_decode_s += t.elapsed().as_secs_f64();
            assert_eq!(back.len(), self.raw_bytes.len());
            self.lz4 += lz4.len() as u64;
            self.zstd += zstd.len() as u64;
            self.raw_bytes.clear();
        }
    }
}

const LINEITEM: [&str; 16] = [
    "l_orderkey",
    "l_partkey",
    "l_suppkey",
    "l_linenumber",
    "l_quantity",
    "l_extendedprice",
    "l_discount",
    "l_tax",
    "l_returnflag",
    "l_linestatus",
    "l_shipdate",
    "l_commitdate",
    "l_receiptdate",
    "l_shipinstruct",
    "l_shipmode",
    "l_comment",
];

const ORDERS: [&str; 9] = [
    "o_orderkey",
    "o_custkey",
    "o_orderstatus",
    "o_totalprice",
    "o_orderdate",
    "o_orderpriority",
    "o_clerk",
    "o_shippriority",
    "o_comment",
];

fn main() {
    let sf: f64 = std::env::var("LIGHTNING_TPCH_SF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1);
    let mut figures = Vec::new();

    let (cols, rows, secs) = table(
        LINEITEM.len(),
        LineItemGenerator::new(sf, 1, 1).iter(),
        |cols, li| {
            cols[0].int(li.l_orderkey, 8);
            cols[1].int(li.l_partkey, 8);
            cols[2].int(li.l_suppkey, 8);
            cols[3].int(i64::from(li.l_linenumber), 4);
            cols[4].int(li.l_quantity, 8);
            cols[5].int(li.l_extendedprice.into_inner(), 8);
            cols[6].int(li.l_discount.into_inner(), 8);
            cols[7].int(li.l_tax.into_inner(), 8);
            cols[8].string(li.l_returnflag);
            cols[9].string(li.l_linestatus);
            cols[10].int(i64::from(li.l_shipdate.to_unix_epoch()), 4);
            cols[11].int(i64::from(li.l_commitdate.to_unix_epoch()), 4);
            cols[12].int(i64::from(li.l_receiptdate.to_unix_epoch()), 4);
            cols[13].string(li.l_shipinstruct);
            cols[14].string(li.l_shipmode);
            cols[15].string(li.l_comment);
        },
    );
    report(
        &mut figures,
        "lineitem",
        &LINEITEM,
        &cols,
        &format!(
            "SF {sf}: {rows} rows, generated and encoded in {secs:.1} s (reference at SF 1: DuckDB 3.6x, Parquet+zstd 4.3-4.7x; target 5x)"
        ),
    );

    let (cols, rows, secs) = table(
        ORDERS.len(),
        OrderGenerator::new(sf, 1, 1).iter(),
        |cols, o| {
            cols[0].int(o.o_orderkey, 8);
            cols[1].int(o.o_custkey, 8);
            cols[2].string(o.o_orderstatus.as_str());
            cols[3].int(o.o_totalprice.into_inner(), 8);
            cols[4].int(i64::from(o.o_orderdate.to_unix_epoch()), 4);
            cols[5].string(o.o_orderpriority);
            cols[6].string(&o.o_clerk.to_string());
            cols[7].int(i64::from(o.o_shippriority), 4);
            cols[8].string(o.o_comment);
        },
    );
    report(
        &mut figures,
        "orders",
        &ORDERS,
        &cols,
        &format!("SF {sf}: {rows} rows, generated and encoded in {secs:.1} s"),
    );

    let path = write_report("tpch", &figures).unwrap();
    println!("wrote {}", path.display());
}

/// Generates and encodes a table in row groups of [`GROUP`]: its columns, rows and seconds.
fn table<T>(
    width: usize,
    rows: impl Iterator<Item = T>,
    fill: impl Fn(&mut [Column], T),
) -> (Vec<Column>, usize, f64) {
    let start = Instant::now();
    let mut cols: Vec<Column> = (0..width).map(|_| Column::default()).collect();
    let mut n = 0usize;
    for row in rows {
        fill(&mut cols, row);
        n += 1;
        if n.is_multiple_of(GROUP) {
            cols.iter_mut().for_each(Column::flush);
        }
    }
    cols.iter_mut().for_each(Column::flush);
    (cols, n, start.elapsed().as_secs_f64())
}

/// Adds a table's figures: overall ratio and sizes (ours, lz4, zstd-3), then each column.
fn report(figures: &mut Vec<Figure>, table: &str, names: &[&str], cols: &[Column], detail: &str) {
    let (raw, enc): (u64, u64) = cols
        .iter()
        .fold((0, 0), |(r, e), c| (r + c.raw, e + c.encoded));
    let lz4: u64 = cols.iter().map(|c| c.lz4).sum();
    let zstd: u64 = cols.iter().map(|c| c.zstd).sum();
    let mb = |b: u64| b as f64 / 1e6;
    figures.push(Figure::new(
        format!("{table}_ratio"),
        raw as f64 / enc.max(1) as f64,
        "x",
        format!(
            "{detail}: {:.1} MB raw -> {:.1} MB encoded",
            mb(raw),
            mb(enc)
        ),
    ));
    figures.push(Figure::new(
        format!("{table}_encoded_mb"),
        mb(enc),
        "MB",
        "",
    ));
    figures.push(Figure::new(
        format!("{table}_lz4_mb"),
        mb(lz4),
        "MB",
        format!(
            "lz4 block format on the raw bytes of each column and row group ({:.2}x)",
            raw as f64 / lz4.max(1) as f64
        ),
    ));
    figures.push(Figure::new(
        format!("{table}_zstd_mb"),
        mb(zstd),
        "MB",
        format!(
            "zstd level 3 on the raw bytes of each column and row group ({:.2}x)",
            raw as f64 / zstd.max(1) as f64
        ),
    ));
    for (name, c) in names.iter().zip(cols) {
        let gbs = |secs: f64| c.raw as f64 / secs.max(1e-9) / 1e9;
        figures.push(Figure::new(
            format!("encode_{name}"),
            gbs(c.encode_s),
            "GB/s",
            "of raw column data, one core (choosing the scheme included)",
        ));
        figures.push(Figure::new(
            format!("decode_{name}"),
            gbs(c.decode_s),
            "GB/s",
            format!(
                "of raw column data into caller buffers, one core; lz4 {:.2} GB/s, zstd-3 {:.2} GB/s decompressing the same bytes",
                gbs(c.lz4_decode_s),
                gbs(c.zstd_decode_s)
            ),
        ));
        figures.push(Figure::new(
            format!("ratio_{name}"),
            c.raw as f64 / c.encoded.max(1) as f64,
            "x",
            format!(
                "{:.2} MB -> {:.2} MB (lz4 {:.2} MB, zstd-3 {:.2} MB)",
                mb(c.raw),
                mb(c.encoded),
                mb(c.lz4),
                mb(c.zstd)
            ),
        ));
    }
}
