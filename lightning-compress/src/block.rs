//! Encoded blocks of integers: the schemes, their byte layout, the chooser and the decoder.
//!
//! # Block layout (little-endian)
//!
//! | offset | size | field                                        |
//! |-------:|-----:|----------------------------------------------|
//! | 0      | 1    | format version (2)                           |
//! | 1      | 1    | scheme ([`Scheme`])                          |
//! | 2      | 2    | reserved, zero                               |
//! | 4      | 4    | `n`, the number of values                    |
//! | 8      | ...  | the scheme's body                            |
//!
//! Bodies (values are `u64` in an order-preserving domain; `i64` maps by flipping the sign bit):
//!
//! - plain: `n` × 8 bytes;
//! - constant: the value (8);
//! - frame of reference: `min` (8), `width` (1), 7 zero bytes, `n` offsets from `min`
//!   bit-packed at `width`;
//! - delta: the first value (8), the smallest delta (8, wrapping), `width` (1), 7 zero bytes,
//!   `n - 1` deltas minus the smallest, bit-packed;
//! - run-length: the number of runs `r` (4), 4 zero bytes, then two nested blocks, each
//!   prefixed by its byte length (4): the `r` run values, then the `r` run lengths;
//! - dictionary: a nested block of the `d` distinct values, ascending, prefixed by its byte
//!   length (4); `width` (1), 7 zero bytes; `n` codes bit-packed at `width`.
//!
//! Nested blocks use only plain, constant, frame of reference or delta (no deeper cascades).

use crate::bitpack::{bits, pack, packed_len, sum_packed, unpack, unpack_plus};
use crate::{Error, Result};

/// The most values one block holds; a decoder refuses more (no unbounded allocation).
pub const MAX_VALUES: usize = 1 << 20;
const VERSION: u8 = 2;
const HEADER: usize = 8;

/// An encoding scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Values as they are.
    Plain,
    /// One value repeated.
    Constant,
    /// Offsets from the minimum, bit-packed.
    FrameOfReference,
    /// Differences between neighbours, frame-of-reference packed (sorted data).
    Delta,
    /// Runs of equal values: run values and lengths, each encoded again.
    RunLength,
    /// Distinct values once, and bit-packed codes.
    Dictionary,
    /// A frame of reference whose width fits most values; the few that do not (outliers)
    /// are stored apart as exceptions, so one large value does not widen every value.
    PatchedFrame,
}

impl Scheme {
    fn byte(self) -> u8 {
        match self {
            Scheme::Plain => 0,
            Scheme::Constant => 1,
            Scheme::FrameOfReference => 2,
            Scheme::Delta => 3,
            Scheme::RunLength => 4,
            Scheme::Dictionary => 5,
            Scheme::PatchedFrame => 6,
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0 => Scheme::Plain,
            1 => Scheme::Constant,
            2 => Scheme::FrameOfReference,
            3 => Scheme::Delta,
            4 => Scheme::RunLength,
            5 => Scheme::Dictionary,
            6 => Scheme::PatchedFrame,
            _ => return Err(Error::Corrupt("unknown scheme")),
        })
    }
}

/// Facts about a block that decide the scheme.
struct Stats {
    min: u64,
    max: u64,
    runs: usize,
    distinct: Option<Vec<u64>>,
    delta_range: Option<(u64, u64)>,
    /// Run values and lengths, once the chooser has split them.
    run_parts: Option<(Vec<u64>, Vec<u64>)>,
}

fn stats(values: &[u64], cascade: bool) -> Stats {
    let (mut min, mut max) = (u64::MAX, 0);
    let mut runs = usize::from(!values.is_empty());
    for (i, v) in values.iter().enumerate() {
        min = min.min(*v);
        max = max.max(*v);
        // INVARIANT: `i - 1` is in bounds: `i > 0` is tested first and `i < values.len()`
        // (from `enumerate`).
        if i > 0 && values[i - 1] != *v {
            runs += 1;
        }
    }
    let distinct = cascade.then(|| {
        let mut d = values.to_vec();
        d.sort_unstable();
        d.dedup();
        d
    });
    let delta_range = (values.len() >= 2).then(|| {
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        for w in values.windows(2) {
            // Deltas as signed numbers shifted into the order-preserving u64 domain.
            // INVARIANT: `windows(2)` yields slices of exactly two values.
            let d = w[1].wrapping_sub(w[0]) ^ (1 << 63);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        (lo, hi)
    });
    Stats {
        min,
        max,
        runs,
        distinct,
        delta_range,
        run_parts: None,
    }
}

/// Run values and run lengths; `runs` (from [`stats`]) sizes the vectors.
fn runs_of(values: &[u64], runs: usize) -> (Vec<u64>, Vec<u64>) {
    let mut run_values = Vec::with_capacity(runs);
    let mut run_lengths = Vec::with_capacity(runs);
    let mut start = 0;
    for (i, pair) in values.windows(2).enumerate() {
        // INVARIANT: `windows(2)` yields slices of exactly two values.
        if pair[0] != pair[1] {
            // INVARIANT: as above, `pair` holds two values.
            run_values.push(pair[0]);
            run_lengths.push((i + 1 - start) as u64);
            start = i + 1;
        }
    }
    if let Some(last) = values.last() {
        run_values.push(*last);
        run_lengths.push((values.len() - start) as u64);
    }
    (run_values, run_lengths)
}

/// Estimated body sizes: the smallest scheme, and its estimated body size.
fn choose(values: &[u64], cascade: bool) -> (Scheme, Stats, usize) {
    let n = values.len();
    let mut s = stats(values, cascade);
    if n == 0 {
        return (Scheme::Plain, s, 0);
    }
    let mut best = (Scheme::Plain, 8 * n);
    let mut consider = |scheme, size: usize| {
        if size < best.1 {
            best = (scheme, size);
        }
    };
    if n > 0 && s.min == s.max {
        consider(Scheme::Constant, 8);
    }
    if n > 0 {
        consider(
            Scheme::FrameOfReference,
            16 + packed_len(n, bits(s.max - s.min)),
        );
    }
    if let Some((lo, hi)) = s.delta_range {
        consider(Scheme::Delta, 24 + packed_len(n - 1, bits(hi - lo)));
    }
    if cascade && s.runs * 2 <= n {
        // Run values and lengths, each sized by the nested chooser (sorted keys with
        // repeats: run values delta-packed, lengths in a few bits).
        let (run_values, run_lengths) = runs_of(values, s.runs);
        consider(
            Scheme::RunLength,
            8 + 2 * (4 + HEADER) + choose(&run_values, false).2 + choose(&run_lengths, false).2,
        );
        s.run_parts = Some((run_values, run_lengths));
    }
    if cascade && let Some((width, exceptions)) = patch_width(values, s.min) {
        // Exceptions: positions and values, each frame-of-reference packed (estimate 2 x 8 bytes).
        consider(
            Scheme::PatchedFrame,
            16 + 8 + 16 * exceptions + packed_len(n, width),
        );
    }
    if let Some(d) = &s.distinct
        && d.len() * 2 <= n
        && d.len() > 1
    {
        let dict = 16 + packed_len(d.len(), bits(s.max - s.min));
        consider(
            Scheme::Dictionary,
            4 + 8 + 8 + dict + packed_len(n, bits(d.len() as u64 - 1)),
        );
    }
    (best.0, s, best.1)
}

/// The width that minimizes packed size plus exceptions, and how many values exceed it;
/// `None` when no value would be an exception (a plain frame is as good).
fn patch_width(values: &[u64], min: u64) -> Option<(u32, usize)> {
    let mut histogram = [0usize; 65];
    for v in values {
        // INVARIANT: `bits` of a `u64` is at most 64, and `histogram` has 65 entries.
        histogram[bits(v - min) as usize] += 1;
    }
    let n = values.len();
    let mut above = 0usize;
    let mut best: Option<(usize, u32, usize)> = None;
    for width in (0..=64u32).rev() {
        if above > 0 && above * 8 <= n {
            let size = packed_len(n, width) + 16 * above;
            if best.is_none_or(|(b, _, _)| size < b) {
                best = Some((size, width, above));
            }
        }
        // INVARIANT: `width` runs over `0..=64`, and `histogram` has 65 entries.
        above += histogram[width as usize];
    }
    best.map(|(_, w, e)| (w, e))
}

/// Encodes `values` with the smallest scheme (and cascades). At most [`MAX_VALUES`].
pub fn encode(values: &[u64]) -> Result<Vec<u8>> {
    if values.len() > MAX_VALUES {
        return Err(Error::TooManyValues {
            len: values.len(),
            max: MAX_VALUES,
        });
    }
    Ok(encode_with(values, true))
}

fn encode_with(values: &[u64], cascade: bool) -> Vec<u8> {
    let (scheme, s, _) = choose(values, cascade);
    let mut out = Vec::with_capacity(HEADER + 8 * values.len() / 4);
    out.extend_from_slice(&[VERSION, scheme.byte(), 0, 0]);
    // Callers bound blocks to MAX_VALUES, far below u32::MAX.
    out.extend_from_slice(
        &u32::try_from(values.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    match scheme {
        Scheme::Plain => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        // Every value equals the minimum (`choose` picks Constant only when `min == max`).
        Scheme::Constant => out.extend_from_slice(&s.min.to_le_bytes()),
        Scheme::FrameOfReference => {
            let width = bits(s.max - s.min);
            out.extend_from_slice(&s.min.to_le_bytes());
            out.extend_from_slice(&[u8::try_from(width).unwrap_or(64), 0, 0, 0, 0, 0, 0, 0]);
            let offsets: Vec<u64> = values.iter().map(|v| v - s.min).collect();
            pack(&offsets, width, &mut out);
        }
        Scheme::Delta => {
            let (lo, hi) = s.delta_range.unwrap_or((0, 0));
            let width = bits(hi - lo);
            // INVARIANT: `choose` picks Delta only when `delta_range` is `Some`, which
            // `stats` sets only for two or more values.
            out.extend_from_slice(&values[0].to_le_bytes());
            out.extend_from_slice(&lo.to_le_bytes());
            out.extend_from_slice(&[u8::try_from(width).unwrap_or(64), 0, 0, 0, 0, 0, 0, 0]);
            let deltas: Vec<u64> = values
                .windows(2)
                // INVARIANT: `windows(2)` yields slices of exactly two values.
                .map(|w| (w[1].wrapping_sub(w[0]) ^ (1 << 63)) - lo)
                .collect();
            pack(&deltas, width, &mut out);
        }
        Scheme::RunLength => {
            let (run_values, run_lengths) = s.run_parts.unwrap_or_else(|| runs_of(values, s.runs));
            out.extend_from_slice(
                &u32::try_from(run_values.len())
                    .unwrap_or(u32::MAX)
                    .to_le_bytes(),
            );
            out.extend_from_slice(&[0; 4]);
            nested(&mut out, &encode_with(&run_values, false));
            nested(&mut out, &encode_with(&run_lengths, false));
        }
        Scheme::PatchedFrame => {
            let (width, _) = patch_width(values, s.min).unwrap_or((64, 0));
            let limit = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            let (mut positions, mut outliers) = (Vec::new(), Vec::new());
            let offsets: Vec<u64> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let off = v - s.min;
                    if off > limit {
                        positions.push(i as u64);
                        outliers.push(*v);
                        0
                    } else {
                        off
                    }
                })
                .collect();
            out.extend_from_slice(&s.min.to_le_bytes());
            out.extend_from_slice(&[u8::try_from(width).unwrap_or(64), 0, 0, 0, 0, 0, 0, 0]);
            pack(&offsets, width, &mut out);
            nested(&mut out, &encode_with(&positions, false));
            nested(&mut out, &encode_with(&outliers, false));
        }
        Scheme::Dictionary => {
            let dict = s.distinct.unwrap_or_default();
            nested(&mut out, &encode_with(&dict, false));
            let width = bits(dict.len() as u64 - 1);
            out.extend_from_slice(&[u8::try_from(width).unwrap_or(64), 0, 0, 0, 0, 0, 0, 0]);
            let codes: Vec<u64> = values
                .iter()
                .map(|v| dict.partition_point(|d| d < v) as u64)
                .collect();
            pack(&codes, width, &mut out);
        }
    }
    out
}

/// Appends `block` prefixed by its byte length (4).
pub(crate) fn nested(out: &mut Vec<u8>, block: &[u8]) {
    out.extend_from_slice(&u32::try_from(block.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(block);
}

/// Reads a block without trusting it.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(Error::Corrupt("length overflow"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(Error::Corrupt("block cut short"))?;
        self.at = end;
        Ok(s)
    }

    /// The next `N` bytes, as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let a = self
            .bytes
            .get(self.at..)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or(Error::Corrupt("block cut short"))?;
        self.at += N;
        Ok(*a)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A width byte and its 7 zero bytes.
    pub(crate) fn width(&mut self) -> Result<u32> {
        let [w, ..] = self.array::<8>()?;
        let w = u32::from(w);
        if w > 64 {
            return Err(Error::Corrupt("bit width above 64"));
        }
        Ok(w)
    }

    pub(crate) fn packed(&mut self, n: usize, width: u32) -> Result<&'a [u8]> {
        self.take(packed_len(n, width))
    }

    /// Checks that the cursor consumed all of `bytes`.
    pub(crate) fn end(&self, bytes: &[u8]) -> Result<()> {
        if self.at == bytes.len() {
            Ok(())
        } else {
            Err(Error::Corrupt("trailing bytes after the block"))
        }
    }

    pub(crate) fn nested(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// A decoded header: scheme, count, and a cursor at the body.
pub(crate) fn header(bytes: &[u8]) -> Result<(Scheme, usize, Cursor<'_>)> {
    let mut c = Cursor { bytes, at: 0 };
    let [version, scheme, _, _, n @ ..] = c.array::<HEADER>()?;
    if version != VERSION {
        return Err(Error::Corrupt("unknown block format version"));
    }
    let scheme = Scheme::from_byte(scheme)?;
    let n = u32::from_le_bytes(n) as usize;
    if n > MAX_VALUES {
        return Err(Error::Corrupt(
            "block claims more values than a block holds",
        ));
    }
    Ok((scheme, n, c))
}

/// The scheme of an encoded block.
pub fn scheme_of(bytes: &[u8]) -> Result<Scheme> {
    header(bytes).map(|(s, _, _)| s)
}

/// Decodes a block, appending its values to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<u64>) -> Result<()> {
    decode_depth(bytes, out, 0)
}

/// Decodes a block into the front of a caller-provided buffer and returns the number of
/// values written. The buffer must hold at least the block's value count
/// ([`Error::BufferTooSmall`] otherwise, with nothing written). This is the fast path of a
/// vectorized scan: decoding blocks of 1024 values into one reused buffer keeps it in the L1
/// cache and writes each value once ([`decode`] first zero-fills the space it appends).
pub fn decode_into(bytes: &[u8], out: &mut [u64]) -> Result<usize> {
    decode_slice(bytes, out, 0)
}

fn decode_depth(bytes: &[u8], out: &mut Vec<u64>, depth: u8) -> Result<()> {
    let (scheme, n, mut c) = header(bytes)?;
    // Plain values and runs are appended as they are read; the other schemes are written into
    // zero-filled space.
    match scheme {
        Scheme::Plain => {
            let body = plain_body(&mut c, n)?;
            c.end(bytes)?;
            out.extend(body.iter().map(|b| u64::from_le_bytes(*b)));
            Ok(())
        }
        Scheme::RunLength if depth == 0 => {
            let (values, lengths) = runs(&mut c, n, depth)?;
            c.end(bytes)?;
            out.reserve(n);
            for (v, l) in values.iter().zip(&lengths) {
                // `runs` checked that the lengths add up to `n`.
                out.extend(std::iter::repeat_n(*v, usize::try_from(*l).unwrap_or(0)));
            }
            Ok(())
        }
        _ => {
            let start = out.len();
            out.resize(start + n, 0);
            // INVARIANT: `start` was `out.len()` before the resize, so `start..` is in bounds.
            match decode_slice(bytes, &mut out[start..], depth) {
                Ok(_) => Ok(()),
                Err(e) => {
                    out.truncate(start);
                    Err(e)
                }
            }
        }
    }
}

/// The `n` little-endian values of a plain block.
fn plain_body<'a>(c: &mut Cursor<'a>, n: usize) -> Result<&'a [[u8; 8]]> {
    let body = c.take(n.checked_mul(8).ok_or(Error::Corrupt("length overflow"))?)?;
    Ok(body.as_chunks::<8>().0)
}

/// The run values and run lengths of a run-length block of `n` values, checked: as many of
/// each as the block says, no empty run, lengths adding up to `n`.
fn runs(c: &mut Cursor<'_>, n: usize, depth: u8) -> Result<(Vec<u64>, Vec<u64>)> {
    let count = c.u32()? as usize;
    c.take(4)?;
    let (mut values, mut lengths) = (Vec::new(), Vec::new());
    decode_depth(c.nested()?, &mut values, depth + 1)?;
    decode_depth(c.nested()?, &mut lengths, depth + 1)?;
    if values.len() != count || lengths.len() != count {
        return Err(Error::Corrupt("run count disagrees with its blocks"));
    }
    let total = lengths
        .iter()
        .try_fold(0u64, |a, l| a.checked_add(*l))
        .ok_or(Error::Corrupt("run lengths overflow"))?;
    if total != n as u64 || lengths.contains(&0) {
        return Err(Error::Corrupt(
            "run lengths do not add up to the value count",
        ));
    }
    Ok((values, lengths))
}

fn decode_slice(bytes: &[u8], out: &mut [u64], depth: u8) -> Result<usize> {
    let (scheme, n, mut c) = header(bytes)?;
    let have = out.len();
    let out = out
        .get_mut(..n)
        .ok_or(Error::BufferTooSmall { need: n, have })?;
    match scheme {
        Scheme::Plain => {
            for (o, b) in out.iter_mut().zip(plain_body(&mut c, n)?) {
                *o = u64::from_le_bytes(*b);
            }
        }
        Scheme::Constant => {
            let v = c.u64()?;
            out.fill(v);
        }
        Scheme::FrameOfReference => {
            let min = c.u64()?;
            let width = c.width()?;
            let packed = c.packed(n, width)?;
            unpack_plus(packed, width, min, out);
        }
        Scheme::Delta => {
            let Some((head, rest)) = out.split_first_mut() else {
                return Err(Error::Corrupt("delta block without values"));
            };
            let first = c.u64()?;
            let lo = c.u64()?;
            let width = c.width()?;
            let packed = c.packed(n - 1, width)?;
            unpack(packed, width, rest);
            *head = first;
            let mut prev = first;
            for v in rest {
                let delta = v.wrapping_add(lo) ^ (1 << 63);
                prev = prev.wrapping_add(delta);
                *v = prev;
            }
        }
        Scheme::RunLength | Scheme::Dictionary | Scheme::PatchedFrame if depth > 0 => {
            return Err(Error::Corrupt("cascade nested too deep"));
        }
        Scheme::RunLength => {
            let (values, lengths) = runs(&mut c, n, depth)?;
            let mut at = 0;
            for (v, l) in values.iter().zip(&lengths) {
                // `runs` checked that the lengths add up to `n`.
                let end = at + usize::try_from(*l).unwrap_or(0);
                // INVARIANT: `at..end` lies in `0..n` = `0..out.len()`: `runs` checked that
                // the lengths add up to `n` without overflow, so every prefix sum is `<= n`.
                out[at..end].fill(*v);
                at = end;
            }
        }
        Scheme::PatchedFrame => decode_patched(&mut c, depth, out)?,
        Scheme::Dictionary => {
            let mut dict = Vec::new();
            decode_depth(c.nested()?, &mut dict, depth + 1)?;
            if !dict.is_sorted_by(|a, b| a < b) {
                return Err(Error::Corrupt("dictionary values not ascending"));
            }
            let width = c.width()?;
            let packed = c.packed(n, width)?;
            unpack(packed, width, out);
            for v in out.iter_mut() {
                *v = *dict
                    .get(usize::try_from(*v).unwrap_or(usize::MAX))
                    .ok_or(Error::Corrupt("dictionary code out of range"))?;
            }
        }
    }
    c.end(bytes)?;
    Ok(n)
}

/// The exact sum of a block's values and how many there are, computed on the encoded form
/// where the scheme allows — a frame of reference sums its packed offsets without
/// unpacking them into memory (`n × min` plus the offsets), a constant multiplies, runs
/// multiply each value by its length — and by decoding otherwise. Signed values summed in
/// the order-preserving domain ([`i64_key`](crate::i64_key)) give the sum of the `i64`s
/// minus `n × 2^63`. Malformed bytes are [`Error::Corrupt`], as for [`decode`].
pub fn sum(bytes: &[u8]) -> Result<(u128, usize)> {
    let (scheme, n, mut c) = header(bytes)?;
    let total = match scheme {
        Scheme::Plain => plain_body(&mut c, n)?
            .iter()
            .map(|b| u128::from(u64::from_le_bytes(*b)))
            .sum(),
        Scheme::Constant => u128::from(c.u64()?) * n as u128,
        Scheme::FrameOfReference => {
            let min = c.u64()?;
            let width = c.width()?;
            let packed = c.packed(n, width)?;
            u128::from(min) * n as u128 + sum_packed(packed, width, n)
        }
        Scheme::RunLength => {
            let (values, lengths) = runs(&mut c, n, 0)?;
            values
                .iter()
                .zip(&lengths)
                .map(|(v, l)| u128::from(*v) * u128::from(*l))
                .sum()
        }
        _ => {
            let mut all = vec![0u64; n];
            decode_slice(bytes, &mut all, 0)?;
            return Ok((all.iter().map(|v| u128::from(*v)).sum(), n));
        }
    };
    c.end(bytes)?;
    Ok((total, n))
}

/// The exact sum and the count of the block's values at the positions whose bits are set
/// in `selected` (64 positions a word, least significant bit first, as
/// [`Selection::words`](crate::Selection::words) lays them out; bits past the block's values
/// are ignored). A frame of reference reads only the selected offsets from the packed
/// words; a constant multiplies; other schemes are decoded first. Malformed bytes are
/// [`Error::Corrupt`], as for [`decode`].
pub fn sum_selected(bytes: &[u8], selected: &[u64]) -> Result<(u128, usize)> {
    let (scheme, n, mut c) = header(bytes)?;
    let positions = || {
        selected
            .iter()
            .enumerate()
            .flat_map(move |(k, w)| {
                let mut w = *w;
                std::iter::from_fn(move || {
                    if w == 0 {
                        return None;
                    }
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    Some(k * 64 + b)
                })
            })
            .take_while(move |i| *i < n)
    };
    let (total, count) = match scheme {
        Scheme::Constant => {
            let v = c.u64()?;
            let count = positions().count();
            (u128::from(v) * count as u128, count)
        }
        Scheme::FrameOfReference => {
            let min = c.u64()?;
            let width = c.width()?;
            let packed = c.packed(n, width)?;
            let (mut total, mut count) = (0u128, 0usize);
            for i in positions() {
                total += u128::from(crate::bitpack::get(packed, width, n, i));
                count += 1;
            }
            (total + u128::from(min) * count as u128, count)
        }
        _ => {
            let mut all = vec![0u64; n];
            decode_slice(bytes, &mut all, 0)?;
            let (mut total, mut count) = (0u128, 0usize);
            for i in positions() {
                // INVARIANT: `positions` stops before `n` (`take_while(i < n)`), and `all`
                // holds `n` values.
                total += u128::from(all[i]);
                count += 1;
            }
            return Ok((total, count));
        }
    };
    c.end(bytes)?;
    Ok((total, count))
}

/// The body of a patched frame: the frame, then the exceptions written over it.
fn decode_patched(c: &mut Cursor<'_>, depth: u8, out: &mut [u64]) -> Result<()> {
    let n = out.len();
    let min = c.u64()?;
    let width = c.width()?;
    let packed = c.packed(n, width)?;
    unpack_plus(packed, width, min, out);
    let (mut positions, mut outliers) = (Vec::new(), Vec::new());
    decode_depth(c.nested()?, &mut positions, depth + 1)?;
    decode_depth(c.nested()?, &mut outliers, depth + 1)?;
    if positions.len() != outliers.len() {
        return Err(Error::Corrupt("exception positions and values disagree"));
    }
    for (p, v) in positions.iter().zip(&outliers) {
        let slot = usize::try_from(*p)
            .ok()
            .and_then(|p| out.get_mut(p))
            .ok_or(Error::Corrupt("exception position out of range"))?;
        *slot = *v;
    }
    Ok(())
}

/// A human-readable account of a block's encoding (scheme, cascade, sizes).
pub fn explain(bytes: &[u8]) -> Result<String> {
    let (scheme, n, mut c) = header(bytes)?;
    let inner = match scheme {
        Scheme::RunLength => {
            c.take(8)?;
            let v = c.nested()?;
            let l = c.nested()?;
            format!(" [values: {}; lengths: {}]", explain(v)?, explain(l)?)
        }
        Scheme::Dictionary => format!(" [dictionary: {}]", explain(c.nested()?)?),
        Scheme::PatchedFrame => {
            c.take(16)?;
            let width = u32::from(bytes.get(16).copied().unwrap_or(0));
            c.packed(n, width)?;
            format!(" [exceptions: {}]", explain(c.nested()?)?)
        }
        _ => String::new(),
    };
    Ok(format!(
        "{scheme:?} of {n} values in {} bytes{inner}",
        bytes.len()
    ))
}
