//! Bit-packing: values of `width` bits each in 64-bit little-endian words.
//!
//! Every full chunk of [`CHUNK`] (1024) values is packed *interleaved* across 16 lanes:
//! value `i` of the chunk belongs to lane `i % 16` at row `i / 16`, each lane packs its 64
//! rows least significant bit first into `width` words, and word `k` of lane `l` is stored at
//! word index `k * 16 + l`. Unpacking a row is then the same shift and mask on 16 adjacent
//! words — straight vertical SIMD, no shuffles (the layout `FastLanes`, VLDB 2023, uses for
//! the same reason, without its transposition). The tail after the last full chunk is packed
//! sequentially: value `i` at bit `i * width`. Either way a chunk of 1024 values takes exactly
//! `128 * width` bytes, so `n` values take `ceil(n * width / 64)` words.
//!
//! The kernels are generic over the width, so every shift is a constant; on `x86_64` the same
//! code is also compiled with AVX2 enabled and chosen at run time when the CPU has it. Tests
//! check both against a one-value-at-a-time reference.

/// Values per interleaved chunk.
pub(crate) const CHUNK: usize = 1024;
/// Words side by side in a chunk.
const LANES: usize = 16;

/// Bytes `n` values of `width` bits take: whole 64-bit words.
pub(crate) fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(64) * 8
}

/// Bits needed to hold `v`.
pub(crate) fn bits(v: u64) -> u32 {
    64 - v.leading_zeros()
}

fn mask(width: u32) -> u64 {
    match width {
        0 => 0,
        64.. => u64::MAX,
        w => (1u64 << w) - 1,
    }
}

/// Appends `values` packed at `width` bits (higher bits are dropped) to `out`. `width` is at
/// most 64 (callers pass [`bits`] of a value).
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "a chunk's `words` holds `LANES * w` words and row `i / LANES < 64` starts at bit `(i / LANES) * w < 64 * w`, so `k < w` and, when the value straddles a word (`bit + w > 64 * (k + 1)`), `k + 1 < w`; the tail's `words` holds `ceil(len * w / 64)` words and value `i < len` ends at bit `(i + 1) * w <= len * w`, so `k` and a straddled `k + 1` are below that"
)]
pub(crate) fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let w = width as usize;
    let m = mask(width);
    let mut chunks = values.chunks_exact(CHUNK);
    let mut words = vec![0u64; LANES * w];
    for chunk in &mut chunks {
        words.fill(0);
        for (i, v) in chunk.iter().enumerate() {
            let (lane, bit) = (i % LANES, (i / LANES) * w);
            let (k, off) = (bit / 64, bit % 64);
            let v = v & m;
            words[k * LANES + lane] |= v << off;
            if off + w > 64 {
                words[(k + 1) * LANES + lane] |= v >> (64 - off);
            }
        }
        out.extend(words.iter().flat_map(|x| x.to_le_bytes()));
    }
    let tail = chunks.remainder();
    let mut words = vec![0u64; (tail.len() * w).div_ceil(64)];
    for (i, v) in tail.iter().enumerate() {
        let bit = i * w;
        let (k, off) = (bit / 64, bit % 64);
        let v = v & m;
        words[k] |= v << off;
        if off + w > 64 {
            words[k + 1] |= v >> (64 - off);
        }
    }
    out.extend(words.iter().flat_map(|x| x.to_le_bytes()));
}

/// Reads little-endian words from `src` into `words` (missing bytes read as zero).
fn load(src: &[u8], words: &mut [u64]) {
    let whole = words.len().min(src.len() / 8);
    let (present, missing) = words.split_at_mut(whole);
    for (w, b) in present.iter_mut().zip(src.chunks_exact(8)) {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        *w = u64::from_le_bytes(a);
    }
    missing.fill(0);
}

/// Value `i` of a sequentially packed run of words.
fn sequential(words: &[u64], w: usize, i: usize) -> u64 {
    let bit = i * w;
    let (k, off) = (bit / 64, bit % 64);
    let lo = words.get(k).map_or(0, |x| x >> off);
    let hi = if off + w > 64 {
        words.get(k + 1).map_or(0, |x| x << (64 - off))
    } else {
        0
    };
    (lo | hi) & if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

/// The `LANES * W` little-endian words of chunk `c`, borrowed from `bytes` when it holds
/// them all, else copied into `pad` with the missing bytes read as zero.
fn chunk_words<'a, const W: usize>(
    bytes: &'a [u8],
    c: usize,
    pad: &'a mut Vec<[u8; 8]>,
) -> &'a [[u8; 8]] {
    let len = CHUNK * W / 8;
    if let Some(src) = bytes.get(c * len..(c + 1) * len) {
        return src.as_chunks::<8>().0;
    }
    let rest = bytes.get(c * len..).unwrap_or_default();
    pad.clear();
    pad.extend(rest.as_chunks::<8>().0.iter().take(LANES * W));
    pad.resize(LANES * W, [0; 8]);
    pad
}

/// Row `row` of an interleaved chunk (`words` holds its `LANES * W` words): the values of
/// the 16 lanes, passed to `f` one lane at a time. Reading the words straight from the
/// block's bytes (no copy); with `W` a constant every mask is one.
#[expect(
    clippy::inline_always,
    reason = "the kernels must be inlined into each width's specialized loop"
)]
#[inline(always)]
fn row<const W: usize>(words: &[[u8; 8]], row: usize, mut emit: impl FnMut(usize, u64)) {
    let mask = if W == 64 { u64::MAX } else { (1u64 << W) - 1 };
    let bit = row * W;
    let (k, off) = (bit / 64, bit % 64);
    let Some(low) = words.get(k * LANES..k * LANES + LANES) else {
        return;
    };
    if off + W > 64 {
        let Some(high) = words.get((k + 1) * LANES..(k + 1) * LANES + LANES) else {
            return;
        };
        for (lane, (lo, hi)) in low.iter().zip(high).enumerate() {
            let (lo, hi) = (u64::from_le_bytes(*lo), u64::from_le_bytes(*hi));
            emit(lane, ((lo >> off) | (hi << (64 - off))) & mask);
        }
    } else {
        for (lane, lo) in low.iter().enumerate() {
            emit(lane, (u64::from_le_bytes(*lo) >> off) & mask);
        }
    }
}

/// Unpacks `out.len()` values (plus `base`, wrapping) of width `W`.
#[expect(
    clippy::inline_always,
    reason = "inlined into the portable and the AVX2 instantiation"
)]
#[inline(always)]
fn unpack_body<const W: usize>(bytes: &[u8], base: u64, out: &mut [u64]) {
    let mut chunks = out.chunks_exact_mut(CHUNK);
    let mut pad = Vec::new();
    let mut full = 0;
    for o in &mut chunks {
        let words = chunk_words::<W>(bytes, full, &mut pad);
        full += 1;
        // A fixed-size view: the row slices below need no bounds checks.
        let Ok(o) = <&mut [u64; CHUNK]>::try_from(o) else {
            continue;
        };
        for (r, o) in o.chunks_exact_mut(LANES).enumerate() {
            let Ok(o) = <&mut [u64; LANES]>::try_from(o) else {
                continue;
            };
            // INVARIANT: `row` passes lanes `l < LANES` (it enumerates at most `LANES` words),
            // and `o` is a `[u64; LANES]`.
            row::<W>(words, r, |l, v| o[l] = v.wrapping_add(base));
        }
    }
    let tail = chunks.into_remainder();
    let rest = bytes.get(full * CHUNK * W / 8..).unwrap_or_default();
    if tail.is_empty() {
        return;
    }
    let mut words = vec![0u64; (tail.len() * W).div_ceil(64)];
    load(rest, &mut words);
    for (i, o) in tail.iter_mut().enumerate() {
        *o = sequential(&words, W, i).wrapping_add(base);
    }
}

/// Sets bit `i` of `sel` (one word per 64 values) for every value `v` with
/// `v - lo <= span` (wrapping): a range test in one comparison. Returns whether any value
/// exceeds `limit` (with `CHECK`; without it the full chunks skip the test and the result
/// only covers the tail).
#[expect(
    clippy::inline_always,
    reason = "inlined into the portable and the AVX2 instantiation"
)]
#[inline(always)]
fn select_body<const W: usize, const CHECK: bool>(
    bytes: &[u8],
    n: usize,
    (lo, span, limit): (u64, u64, u64),
    sel: &mut [u64],
) -> bool {
    let mut over = false;
    let full = n / CHUNK;
    let mut pad = Vec::new();
    for c in 0..full {
        let words = chunk_words::<W>(bytes, c, &mut pad);
        let Some(out) = sel.get_mut(c * 16..c * 16 + 16) else {
            break;
        };
        let mut too_big = 0u64;
        for (q, slot) in out.iter_mut().enumerate() {
            let mut word = 0u64;
            for r in 0..4 {
                let mut bits = 0u64;
                row::<W>(words, q * 4 + r, |l, v| {
                    bits |= u64::from(v.wrapping_sub(lo) <= span) << l;
                    if CHECK {
                        too_big |= u64::from(v > limit);
                    }
                });
                word |= bits << (r * 16);
            }
            *slot = word;
        }
        over |= too_big != 0;
    }
    let rest = bytes.get(full * CHUNK * W / 8..).unwrap_or_default();
    let m = (n - full * CHUNK) * W;
    let mut tail = vec![0u64; m.div_ceil(64)];
    load(rest, &mut tail);
    for i in 0..n - full * CHUNK {
        let v = sequential(&tail, W, i);
        over |= v > limit;
        if v.wrapping_sub(lo) <= span
            && let Some(slot) = sel.get_mut((full * CHUNK + i) / 64)
        {
            *slot |= 1 << (i % 64);
        }
    }
    over
}

/// The sum of the first `n` values packed at width `W`, without materialising them: each
/// full chunk is summed in 16 lane accumulators (64 rows of `W` bits each cannot overflow
/// a lane for `W <= 58`), added into 128 bits once per chunk.
#[expect(
    clippy::inline_always,
    reason = "inlined into the portable and the AVX2 instantiation"
)]
#[inline(always)]
fn sum_body<const W: usize>(bytes: &[u8], n: usize) -> u128 {
    let full = n / CHUNK;
    let mut pad = Vec::new();
    let mut total = 0u128;
    let mut buf = [0u64; CHUNK];
    for c in 0..full {
        let words = chunk_words::<W>(bytes, c, &mut pad);
        if W <= 58 {
            let mut acc = [0u64; LANES];
            for r in 0..CHUNK / LANES {
                // INVARIANT: `row` passes lanes `l < LANES` (it enumerates at most `LANES`
                // words), and `acc` is a `[u64; LANES]`.
                row::<W>(words, r, |l, v| acc[l] += v);
            }
            total += acc.iter().map(|a| u128::from(*a)).sum::<u128>();
        } else {
            for (r, o) in buf.chunks_exact_mut(LANES).enumerate() {
                // INVARIANT: `row` passes lanes `l < LANES`, and `chunks_exact_mut(LANES)`
                // makes `o` exactly `LANES` long.
                row::<W>(words, r, |l, v| o[l] = v);
            }
            total += buf.iter().map(|v| u128::from(*v)).sum::<u128>();
        }
    }
    let rest = bytes.get(full * CHUNK * W / 8..).unwrap_or_default();
    let m = (n - full * CHUNK) * W;
    let mut tail = vec![0u64; m.div_ceil(64)];
    load(rest, &mut tail);
    for i in 0..n - full * CHUNK {
        total += u128::from(sequential(&tail, W, i));
    }
    total
}

fn sum_fixed<const W: usize>(kernel: Kernel, bytes: &[u8], n: usize) -> u128 {
    match kernel {
        Kernel::Portable => sum_body::<W>(bytes, n),
        #[cfg(target_arch = "x86_64")]
        #[expect(unsafe_code, reason = "calling a function compiled for AVX2")]
        // SAFETY: `Kernel::Avx2` is only constructed after `is_x86_feature_detected!("avx2")`
        // returned true, so the CPU executes the AVX2 instructions of this instantiation.
        Kernel::Avx2 => unsafe { avx2::sum::<W>(bytes, n) },
    }
}

/// Which instantiation of the kernels runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Compiled for the baseline target (SSE2 on `x86_64`).
    Portable,
    /// Compiled with AVX2 enabled; only chosen when the CPU has it.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Kernel> {
        let mut all = vec![Kernel::Portable];
        if Kernel::best() != Kernel::Portable {
            all.push(Kernel::best());
        }
        all
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) fn unpack<const W: usize>(bytes: &[u8], base: u64, out: &mut [u64]) {
        super::unpack_body::<W>(bytes, base, out);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sum<const W: usize>(bytes: &[u8], n: usize) -> u128 {
        super::sum_body::<W>(bytes, n)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn select<const W: usize>(
        bytes: &[u8],
        n: usize,
        range: (u64, u64, u64),
        sel: &mut [u64],
    ) -> bool {
        if range.2 == u64::MAX {
            super::select_body::<W, false>(bytes, n, range, sel)
        } else {
            super::select_body::<W, true>(bytes, n, range, sel)
        }
    }
}

fn unpack_fixed<const W: usize>(kernel: Kernel, bytes: &[u8], base: u64, out: &mut [u64]) {
    match kernel {
        Kernel::Portable => unpack_body::<W>(bytes, base, out),
        #[cfg(target_arch = "x86_64")]
        #[expect(unsafe_code, reason = "calling a function compiled for AVX2")]
        // SAFETY: `Kernel::Avx2` is only constructed after `is_x86_feature_detected!("avx2")`
        // returned true, so the CPU executes the AVX2 instructions of this instantiation.
        Kernel::Avx2 => unsafe { avx2::unpack::<W>(bytes, base, out) },
    }
}

fn select_fixed<const W: usize>(
    kernel: Kernel,
    bytes: &[u8],
    n: usize,
    range: (u64, u64, u64),
    sel: &mut [u64],
) -> bool {
    match kernel {
        // No value exceeds `u64::MAX`: skip the test (a frame of reference).
        Kernel::Portable if range.2 == u64::MAX => select_body::<W, false>(bytes, n, range, sel),
        Kernel::Portable => select_body::<W, true>(bytes, n, range, sel),
        #[cfg(target_arch = "x86_64")]
        #[expect(unsafe_code, reason = "calling a function compiled for AVX2")]
        // SAFETY: `Kernel::Avx2` is only constructed after `is_x86_feature_detected!("avx2")`
        // returned true, so the CPU executes the AVX2 instructions of this instantiation.
        Kernel::Avx2 => unsafe { avx2::select::<W>(bytes, n, range, sel) },
    }
}

macro_rules! by_width {
    ($width:expr, $f:ident, $zero:expr, $args:tt, $($w:literal)*) => {
        match $width {
            $($w => $f::<$w> $args,)*
            _ => $zero,
        }
    };
}

/// Unpacks `out.len()` values of `width` bits from `bytes` (which should hold
/// [`packed_len`] bytes; missing bytes read as zero bits).
pub(crate) fn unpack(bytes: &[u8], width: u32, out: &mut [u64]) {
    unpack_plus(bytes, width, 0, out);
}

/// Like [`unpack`], adding `base` (wrapping) to every value in the same pass: a frame of
/// reference decodes in one pass over the output.
pub(crate) fn unpack_plus(bytes: &[u8], width: u32, base: u64, out: &mut [u64]) {
    unpack_with(Kernel::best(), bytes, width, base, out);
}

pub(crate) fn unpack_with(kernel: Kernel, bytes: &[u8], width: u32, base: u64, out: &mut [u64]) {
    by_width!(width, unpack_fixed, out.fill(base), (kernel, bytes, base, out),
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64);
}

/// Ors into `sel` (one bit per value, `n.div_ceil(64)` words; full chunks overwrite their 16
/// words) the values among the first `n` packed at `width` with `lo <= v <= lo + span`,
/// without materializing them. Returns whether any value exceeds `limit` (a dictionary
/// passes its largest code to find codes out of range).
pub(crate) fn select_range(
    bytes: &[u8],
    width: u32,
    n: usize,
    range: (u64, u64, u64),
    sel: &mut [u64],
) -> bool {
    select_with(Kernel::best(), bytes, width, n, range, sel)
}

/// Width 0: every value is 0, so all pass or none do, and none exceeds any limit.
fn select_zero(n: usize, (lo, span, _): (u64, u64, u64), sel: &mut [u64]) -> bool {
    if 0u64.wrapping_sub(lo) <= span {
        for (k, w) in sel.iter_mut().enumerate() {
            let left = n.saturating_sub(k * 64);
            *w = if left >= 64 {
                u64::MAX
            } else {
                (1u64 << left) - 1
            };
        }
    }
    false
}

pub(crate) fn select_with(
    kernel: Kernel,
    bytes: &[u8],
    width: u32,
    n: usize,
    range: (u64, u64, u64),
    sel: &mut [u64],
) -> bool {
    by_width!(width, select_fixed, select_zero(n, range, sel), (kernel, bytes, n, range, sel),
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64)
}

/// Value `i` of `n` values packed at `width` in `bytes` (missing bytes read as zero bits):
/// the interleaved layout for full chunks, the sequential one for the tail.
pub(crate) fn get(bytes: &[u8], width: u32, n: usize, i: usize) -> u64 {
    let w = width as usize;
    if w == 0 || i >= n {
        return 0;
    }
    let word = |k: usize| {
        bytes.get(k * 8..k * 8 + 8).map_or(0, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let (chunk, at) = (i / CHUNK, i % CHUNK);
    let first = chunk * CHUNK * w / 64;
    let (stride, lane, bit) = if (chunk + 1) * CHUNK <= n {
        (LANES, at % LANES, (at / LANES) * w)
    } else {
        (1, 0, at * w)
    };
    let (k, off) = (bit / 64, bit % 64);
    let lo = word(first + k * stride + lane) >> off;
    let hi = if off + w > 64 {
        word(first + (k + 1) * stride + lane) << (64 - off)
    } else {
        0
    };
    (lo | hi) & mask(width)
}

/// The sum of the first `n` values packed at `width` in `bytes` (missing bytes read as
/// zero bits), exact.
pub(crate) fn sum_packed(bytes: &[u8], width: u32, n: usize) -> u128 {
    sum_with(Kernel::best(), bytes, width, n)
}

pub(crate) fn sum_with(kernel: Kernel, bytes: &[u8], width: u32, n: usize) -> u128 {
    by_width!(width, sum_fixed, 0, (kernel, bytes, n),
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One value at a time, straight from the layout description.
    fn reference(bytes: &[u8], width: u32, n: usize) -> Vec<u64> {
        let w = width as usize;
        let word = |k: usize| {
            bytes.get(k * 8..k * 8 + 8).map_or(0, |b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            })
        };
        (0..n)
            .map(|i| {
                let (chunk, j) = (i / CHUNK, i % CHUNK);
                let first = chunk * CHUNK * w / 64;
                let (stride, lane, bit) = if (chunk + 1) * CHUNK <= n {
                    (LANES, j % LANES, (j / LANES) * w)
                } else {
                    (1, 0, j * w)
                };
                let (k, off) = (bit / 64, bit % 64);
                let lo = word(first + k * stride + lane) >> off;
                let hi = if off + w > 64 {
                    word(first + (k + 1) * stride + lane) << (64 - off)
                } else {
                    0
                };
                (lo | hi) & mask(width)
            })
            .collect()
    }

    fn values(width: u32, raw: &[u64]) -> Vec<u64> {
        raw.iter().map(|v| v & mask(width)).collect()
    }

    proptest! {
        #[test]
        fn pack_round_trips_on_every_kernel(
            width in 0u32..=64,
            raw in proptest::collection::vec(any::<u64>(), 0..3000),
            base in any::<u64>(),
        ) {
            let values = values(width, &raw);
            let mut out = Vec::new();
            pack(&values, width, &mut out);
            prop_assert_eq!(out.len(), packed_len(values.len(), width));
            prop_assert_eq!(&reference(&out, width, values.len()), &values);
            for kernel in Kernel::available() {
                let mut back = vec![0u64; values.len()];
                unpack_with(kernel, &out, width, base, &mut back);
                let want: Vec<u64> = values.iter().map(|v| v.wrapping_add(base)).collect();
                prop_assert_eq!(back, want, "{:?}", kernel);
            }
        }

        #[test]
        fn get_reads_each_value(
            width in 0u32..=64,
            raw in proptest::collection::vec(any::<u64>(), 0..3000),
        ) {
            let values = values(width, &raw);
            let mut out = Vec::new();
            pack(&values, width, &mut out);
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(get(&out, width, values.len(), i), *v, "value {}", i);
            }
        }

        #[test]
        fn sums_match_the_values_on_every_kernel(
            width in 0u32..=64,
            raw in proptest::collection::vec(any::<u64>(), 0..3000),
        ) {
            let values = values(width, &raw);
            let mut out = Vec::new();
            pack(&values, width, &mut out);
            let want: u128 = values.iter().map(|v| u128::from(*v)).sum();
            for kernel in Kernel::available() {
                prop_assert_eq!(sum_with(kernel, &out, width, values.len()), want, "{:?}", kernel);
            }
        }

        #[test]
        fn select_matches_the_values_on_every_kernel(
            width in 0u32..=64,
            raw in proptest::collection::vec(any::<u64>(), 0..3000),
            lo in any::<u64>(),
            span in any::<u64>(),
            limit in any::<u64>(),
        ) {
            let values = values(width, &raw);
            // Bounds drawn from the data as often as not, so ranges hit.
            let lo = if values.is_empty() || lo % 2 == 0 { lo & mask(width) } else { values[usize::try_from(lo / 2).unwrap_or(0) % values.len()] };
            let span = span & mask(width);
            let limit = limit & mask(width);
            let mut out = Vec::new();
            pack(&values, width, &mut out);
            for kernel in Kernel::available() {
                let mut sel = vec![0u64; values.len().div_ceil(64)];
                let over = select_with(kernel, &out, width, values.len(), (lo, span, limit), &mut sel);
                for (i, v) in values.iter().enumerate() {
                    prop_assert_eq!(sel[i / 64] >> (i % 64) & 1 == 1, v.wrapping_sub(lo) <= span, "{:?} value {}", kernel, i);
                }
                prop_assert_eq!(over, values.iter().any(|v| *v > limit), "{:?}", kernel);
            }
        }
    }

    #[test]
    fn widths() {
        assert_eq!(
            (bits(0), bits(1), bits(255), bits(256), bits(u64::MAX)),
            (0, 1, 8, 9, 64)
        );
        assert_eq!(packed_len(1024, 3), 384);
    }

    #[test]
    fn short_input_reads_as_zero_bits() {
        let mut out = vec![9u64; 2048];
        unpack(&[0xff; 10], 7, &mut out);
        assert_eq!(out[0], 0x7f);
        assert!(out[200..].iter().all(|v| *v == 0));
    }
}
