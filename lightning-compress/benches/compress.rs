//! Bench: compression ratio and encode/decode speed (GB/s of decoded data, one core) per
//! distribution, and predicate evaluation on encoded data. Writes
//! `benchmark_results/<YYYY-MM-DD>/compress.json` and `.html`.
//!
//! ```text
//! cargo bench -p lightning-compress --bench compress
//! ```
//! Whole TPC-H tables, with lz4/zstd reference points, are in the `tpch` bench.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary reports on stdout and fails loudly"
)]
#![expect(
    clippy::cast_precision_loss,
    reason = "ratios and rates are floating point"
)]

use std::hint::black_box;
use std::time::Duration;

use lightning_compress::{
    FloatPredicate, Predicate, Scheme, StringPredicate, decode, decode_f64, decode_into,
    decode_strings, decode_strings_into, encode, encode_f64, encode_strings, explain, filter,
    filter_f64, filter_strings, scheme_of,
};
use lightning_testkit::Rng;
use lightning_testkit::bench::{Figure, quick, repeat, write_report};

/// `pred` (the range `lo..=hi`) on the encoded block, and the baseline: decode, then the
/// same range compared into a bitmap. G values/s each.
fn filter_speed(
    block: &[u8],
    n: usize,
    pred: &Predicate,
    (lo, hi): (u64, u64),
    budget: Duration,
) -> (f64, f64) {
    let (k, t) = repeat(budget, || {
        black_box(filter(black_box(block), pred).unwrap());
    });
    let on_encoded = k as f64 * n as f64 / t.as_secs_f64() / 1e9;
    let mut out = Vec::with_capacity(n);
    let mut bits = vec![0u64; n.div_ceil(64)];
    let (k, t) = repeat(budget, || {
        out.clear();
        decode(black_box(block), &mut out).unwrap();
        for (w, group) in bits.iter_mut().zip(out.chunks(64)) {
            *w = group.iter().enumerate().fold(0, |acc, (j, v)| {
                acc | (u64::from(v.wrapping_sub(lo) <= hi - lo) << j)
            });
        }
        black_box(&bits);
    });
    (on_encoded, k as f64 * n as f64 / t.as_secs_f64() / 1e9)
}

fn main() {
    let budget = Duration::from_millis(if quick() { 100 } else { 1000 });
    let n = 1 << 16;
    let mut rng = Rng::new(1);
    let cases: Vec<(&str, Vec<u64>)> = vec![
        (
            "sorted_timestamps",
            (0..n)
                .map(|i| 1_700_000_000_000 + i * 1000 + rng.below(10))
                .collect(),
        ),
        ("small_ints_0_100", (0..n).map(|_| rng.below(100)).collect()),
        (
            "low_cardinality_8",
            (0..n)
                .map(|_| {
                    [17, 42, 99, 1_000_003, 5, 8, 1 << 40, 77]
                        [usize::try_from(rng.below(8)).unwrap()]
                })
                .collect(),
        ),
        (
            "runs_of_1000",
            (0..n).map(|i| (i / 1000) * 7_777_777).collect(),
        ),
        ("random_u64", (0..n).map(|_| rng.next_u64()).collect()),
    ];
    let mut figures = Vec::new();
    for (name, values) in &cases {
        let raw = values.len() as f64 * 8.0;
        let block = encode(values).unwrap();
        let (k, t) = repeat(budget, || {
            black_box(encode(black_box(values)).unwrap());
        });
        let enc = k as f64 * raw / t.as_secs_f64() / 1e9;
        let mut out = Vec::with_capacity(values.len());
        let (k, t) = repeat(budget, || {
            out.clear();
            decode(black_box(&block), &mut out).unwrap();
        });
        let dec = k as f64 * raw / t.as_secs_f64() / 1e9;
        let (filt, base) = filter_speed(&block, values.len(), &Predicate::Lt(50), (0, 49), budget);
        // A range holding the middle third of the values (a key or time range).
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let third = (sorted[values.len() / 3], sorted[2 * values.len() / 3]);
        let pred = Predicate::Between(third.0, third.1);
        let (range, range_base) = filter_speed(&block, values.len(), &pred, third, budget);
        let how = explain(&block).unwrap();
        figures.push(Figure::new(
            format!("ratio_{name}"),
            raw / block.len() as f64,
            "x",
            how,
        ));
        figures.push(Figure::new(
            format!("encode_{name}"),
            enc,
            "GB/s",
            "of decoded data, one core",
        ));
        figures.push(Figure::new(
            format!("decode_{name}"),
            dec,
            "GB/s",
            "of decoded data, one core",
        ));
        figures.push(Figure::new(
            format!("filter_lt_{name}"),
            filt,
            "G values/s",
            format!(
                "predicate v < 50 on the encoded block; decode-then-filter {base:.3} G values/s ({:.2}x)",
                filt / base
            ),
        ));
        figures.push(Figure::new(
            format!("filter_range_{name}"),
            range,
            "G values/s",
            format!(
                "lo <= v <= hi holding the middle third of the values, on the encoded block; decode-then-filter {range_base:.3} G values/s ({:.2}x)",
                range / range_base
            ),
        ));
    }
    unpacking(&mut rng, budget, &mut figures);
    floats(&mut rng, n, budget, &mut figures);
    comments(budget, &mut figures);
    ship_modes(budget, &mut figures);
    let path = write_report("compress", &figures).unwrap();
    println!("wrote {}", path.display());
}

/// Bit-unpacking speed per width: a frame-of-reference block of 1024 values (one interleaved
/// chunk) decoded again and again into the same buffer, which stays in the L1 cache, as a
/// vectorized scan would use it. Best of five runs.
fn unpacking(rng: &mut Rng, budget: Duration, figures: &mut Vec<Figure>) {
    for width in [1u32, 3, 7, 12, 17, 25, 33, 48] {
        let values: Vec<u64> = (0..1024u64)
            .map(|i| {
                if i == 0 {
                    (1 << width) - 1
                } else {
                    rng.below(1 << width)
                }
            })
            .collect();
        let block = encode(&values).unwrap();
        assert_eq!(scheme_of(&block).unwrap(), Scheme::FrameOfReference);
        let mut out = [0u64; 1024];
        // The best of five slices of the budget: a kernel this short is easily disturbed by
        // the other core's work on a shared machine.
        let best = (0..5)
            .map(|_| {
                let (k, t) = repeat(budget / 5, || {
                    decode_into(black_box(&block), &mut out).unwrap();
                });
                k as f64 * 1024.0 / t.as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max);
        figures.push(Figure::new(
            format!("unpack_w{width}"),
            best,
            "G values/s",
            format!("1024 values of {width} bits into an L1-resident u64 buffer, one core"),
        ));
    }
}

/// Doubles: decimals and random bit patterns.
fn floats(rng: &mut Rng, n: u64, budget: Duration, figures: &mut Vec<Figure>) {
    let float_cases: Vec<(&str, Vec<f64>)> = vec![
        (
            "prices_2_decimals",
            (0..n)
                .map(|_| f64::from(u32::try_from(100 + rng.below(1_000_000)).unwrap()) / 100.0)
                .collect(),
        ),
        (
            "random_doubles",
            (0..n)
                .map(|_| f64::from_bits(rng.next_u64() >> 2))
                .collect(),
        ),
    ];
    for (name, values) in &float_cases {
        let raw = values.len() as f64 * 8.0;
        let block = encode_f64(values).unwrap();
        let mut out = Vec::with_capacity(values.len());
        let (k, t) = repeat(budget, || {
            out.clear();
            decode_f64(black_box(&block), &mut out).unwrap();
        });
        figures.push(Figure::new(
            format!("ratio_f64_{name}"),
            raw / block.len() as f64,
            "x",
            format!("{} bytes", block.len()),
        ));
        figures.push(Figure::new(
            format!("decode_f64_{name}"),
            k as f64 * raw / t.as_secs_f64() / 1e9,
            "GB/s",
            "of decoded data, one core",
        ));
        // v < 2500.0 on the encoded block against decoding then comparing.
        let pred = FloatPredicate::Lt(2500.0);
        let (k, t) = repeat(budget, || {
            black_box(filter_f64(black_box(&block), &pred).unwrap());
        });
        let filt = k as f64 * values.len() as f64 / t.as_secs_f64() / 1e9;
        let mut bits = vec![0u64; values.len().div_ceil(64)];
        let (k, t) = repeat(budget, || {
            out.clear();
            decode_f64(black_box(&block), &mut out).unwrap();
            for (w, group) in bits.iter_mut().zip(out.chunks(64)) {
                *w = group
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (j, v)| acc | (u64::from(*v < 2500.0) << j));
            }
            black_box(&bits);
        });
        let base = k as f64 * values.len() as f64 / t.as_secs_f64() / 1e9;
        figures.push(Figure::new(
            format!("filter_f64_lt_{name}"),
            filt,
            "G values/s",
            format!(
                "v < 2500.0 on the encoded block; decode-then-filter {base:.3} G values/s ({:.2}x)",
                filt / base
            ),
        ));
    }
}

/// Low-cardinality strings (TPC-H `l_shipmode`, 7 values): a dictionary block filtered on its
/// codes against decoding every string and comparing.
fn ship_modes(budget: Duration, figures: &mut Vec<Figure>) {
    let values: Vec<String> = tpchgen::generators::LineItemGenerator::new(0.02, 1, 1)
        .iter()
        .take(1 << 16)
        .map(|li| li.l_shipmode.to_owned())
        .collect();
    let block = encode_strings(&values).unwrap();
    let pred = StringPredicate::Eq(b"MAIL".to_vec());
    let (k, t) = repeat(budget, || {
        black_box(filter_strings(black_box(&block), &pred).unwrap());
    });
    let filt = k as f64 * values.len() as f64 / t.as_secs_f64() / 1e9;
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    let mut bits = vec![0u64; values.len().div_ceil(64)];
    let (k, t) = repeat(budget, || {
        data.clear();
        ends.clear();
        decode_strings_into(black_box(&block), &mut data, &mut ends).unwrap();
        let mut start = 0;
        for (i, end) in ends.iter().enumerate() {
            let hit = &data[start..*end] == b"MAIL";
            bits[i / 64] = (bits[i / 64] & !(1 << (i % 64))) | (u64::from(hit) << (i % 64));
            start = *end;
        }
        black_box(&bits);
    });
    let base = k as f64 * values.len() as f64 / t.as_secs_f64() / 1e9;
    figures.push(Figure::new(
        "filter_strings_eq_l_shipmode",
        filt,
        "G values/s",
        format!(
            "l_shipmode = 'MAIL' on the dictionary block; decode-then-filter {base:.3} G values/s ({:.2}x)",
            filt / base
        ),
    ));
}

/// High-cardinality text: 65,536 TPC-H `l_comment` values (FSST).
fn comments(budget: Duration, figures: &mut Vec<Figure>) {
    let values: Vec<String> = tpchgen::generators::LineItemGenerator::new(0.02, 1, 1)
        .iter()
        .take(1 << 16)
        .map(|li| li.l_comment.to_owned())
        .collect();
    let raw = values.iter().map(String::len).sum::<usize>() as f64;
    let block = encode_strings(&values).unwrap();
    let (k, t) = repeat(budget, || {
        black_box(encode_strings(black_box(&values)).unwrap());
    });
    let enc = k as f64 * raw / t.as_secs_f64() / 1e9;
    let mut out = Vec::with_capacity(values.len());
    let (k, t) = repeat(budget, || {
        out.clear();
        decode_strings(black_box(&block), &mut out).unwrap();
    });
    let dec = k as f64 * raw / t.as_secs_f64() / 1e9;
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    let (k, t) = repeat(budget, || {
        data.clear();
        ends.clear();
        decode_strings_into(black_box(&block), &mut data, &mut ends).unwrap();
    });
    let flat = k as f64 * raw / t.as_secs_f64() / 1e9;
    figures.push(Figure::new(
        "ratio_strings_l_comment",
        raw / block.len() as f64,
        "x",
        format!("{} text bytes -> {} bytes (FSST)", raw, block.len()),
    ));
    figures.push(Figure::new(
        "encode_strings_l_comment",
        enc,
        "GB/s",
        "of text, one core (table training included)",
    ));
    figures.push(Figure::new(
        "decode_strings_l_comment",
        dec,
        "GB/s",
        "of text into one Vec<u8> per string, one core",
    ));
    figures.push(Figure::new(
        "decode_strings_into_l_comment",
        flat,
        "GB/s",
        "of text into caller-provided bytes + end offsets, one core",
    ));
}
