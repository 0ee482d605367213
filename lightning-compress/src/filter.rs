//! Predicates evaluated on encoded blocks, producing a selection without decoding every value
//! where the scheme allows: a constant block is judged once, a run-length block once per run,
//! a dictionary block once per distinct value (then by code), a frame-of-reference block in
//! its offset domain (the minimum is never added back) after a range check against its
//! bounds, and a delta block 1024 values at a time; when its header proves the values never
//! decrease, a range is located from per-chunk sums of the deltas.

use crate::bitpack::{select_range as select_packed, unpack};
use crate::block::{Cursor, Scheme, decode, header};
use crate::{Error, Result};

/// A comparison against constants, in the order-preserving `u64` domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `v == c`
    Eq(u64),
    /// `v < c`
    Lt(u64),
    /// `v <= c`
    Le(u64),
    /// `v > c`
    Gt(u64),
    /// `v >= c`
    Ge(u64),
    /// `lo <= v <= hi`
    Between(u64, u64),
    /// `v` is one of the values.
    In(Vec<u64>),
}

impl Predicate {
    /// Whether `v` passes.
    pub fn test(&self, v: u64) -> bool {
        match self {
            Predicate::Eq(c) => v == *c,
            Predicate::Lt(c) => v < *c,
            Predicate::Le(c) => v <= *c,
            Predicate::Gt(c) => v > *c,
            Predicate::Ge(c) => v >= *c,
            Predicate::Between(lo, hi) => *lo <= v && v <= *hi,
            Predicate::In(set) => set.contains(&v),
        }
    }

    /// The same predicate on offsets from `min`, where every value of the block lies in
    /// `min..=max`: `None` when the bounds alone decide it (`Some(true)`-like results are
    /// expressed as `Between(0, max - min)`).
    fn shifted(&self, min: u64, max: u64) -> Predicate {
        let span = max - min;
        let off = |c: u64| c.saturating_sub(min);
        match self {
            Predicate::Eq(c) if *c < min || *c > max => Predicate::In(Vec::new()),
            Predicate::Eq(c) => Predicate::Eq(c - min),
            Predicate::Lt(c) if *c <= min => Predicate::In(Vec::new()),
            Predicate::Lt(c) => Predicate::Lt(off(*c)),
            Predicate::Le(c) if *c < min => Predicate::In(Vec::new()),
            Predicate::Le(c) => Predicate::Le(off(*c).min(span)),
            Predicate::Gt(c) if *c >= max => Predicate::In(Vec::new()),
            Predicate::Gt(c) => Predicate::Gt(if *c < min {
                return Predicate::Between(0, span);
            } else {
                c - min
            }),
            Predicate::Ge(c) if *c > max => Predicate::In(Vec::new()),
            Predicate::Ge(c) => Predicate::Ge(off(*c)),
            Predicate::Between(lo, hi) if *hi < min || *lo > max || lo > hi => {
                Predicate::In(Vec::new())
            }
            Predicate::Between(lo, hi) => Predicate::Between(off(*lo), (hi.min(&max)) - min),
            Predicate::In(set) => Predicate::In(
                set.iter()
                    .filter(|c| **c >= min && **c <= max)
                    .map(|c| c - min)
                    .collect(),
            ),
        }
    }
}

impl Predicate {
    /// The predicate as an inclusive range `lo..=hi`, when it is one (`None` for `In` and for
    /// empty ranges, which take the general path).
    fn as_range(&self) -> Option<(u64, u64)> {
        match self {
            Predicate::Eq(c) => Some((*c, *c)),
            Predicate::Lt(c) => Some((0, c.checked_sub(1)?)),
            Predicate::Le(c) => Some((0, *c)),
            Predicate::Gt(c) => Some((c.checked_add(1)?, u64::MAX)),
            Predicate::Ge(c) => Some((*c, u64::MAX)),
            Predicate::Between(lo, hi) if lo <= hi => Some((*lo, *hi)),
            Predicate::Between(..) | Predicate::In(_) => None,
        }
    }
}

/// Sets the bits of `values` (which start at value `start`, a multiple of 64) that pass, 64 at
/// a time without branches: one subtraction and one comparison per value for a range, one
/// table lookup for anything else.
fn select(sel: &mut Selection, start: usize, values: &[u64], pass: impl Fn(u64) -> bool) {
    for (w, group) in values.chunks(64).enumerate() {
        let mut word = 0u64;
        for (j, v) in group.iter().enumerate() {
            word |= u64::from(pass(*v)) << j;
        }
        if let Some(slot) = sel.words.get_mut(start / 64 + w) {
            *slot |= word;
        }
    }
}

/// Like [`select`] for a range predicate.
fn select_range(sel: &mut Selection, start: usize, values: &[u64], pred: &Predicate) {
    match pred.as_range() {
        Some((lo, hi)) => {
            let span = hi - lo;
            select(sel, start, values, |v| v.wrapping_sub(lo) <= span);
        }
        None => select(sel, start, values, |v| pred.test(v)),
    }
}

/// A selection: one bit per value of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    words: Vec<u64>,
    len: usize,
}

impl Selection {
    pub(crate) fn new(len: usize, all: bool) -> Self {
        let mut words = vec![if all { u64::MAX } else { 0 }; len.div_ceil(64)];
        if all
            && !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last = (1u64 << (len % 64)) - 1;
        }
        Selection { words, len }
    }

    /// Selects values `from..to` (clipped to the block), a word at a time.
    pub(crate) fn set_range(&mut self, from: usize, to: usize) {
        let to = to.min(self.len);
        let mut i = from;
        while i < to {
            let bit = i % 64;
            let take = (64 - bit).min(to - i);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            // INVARIANT: `i < to <= self.len`, and every constructor makes `words`
            // `len.div_ceil(64)` long, so `i / 64 < words.len()`.
            self.words[i / 64] |= mask;
            i += take;
        }
    }

    /// A selection of `values.len()` values, value `i` selected when `pass(values[i])`;
    /// 64 at a time without branches.
    pub(crate) fn of<T: Copy>(values: &[T], pass: impl Fn(T) -> bool) -> Self {
        let words = values
            .chunks(64)
            .map(|group| {
                group
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (j, v)| w | (u64::from(pass(*v)) << j))
            })
            .collect();
        Selection {
            words,
            len: values.len(),
        }
    }

    /// Sets or clears value `i` (ignored past the end).
    pub(crate) fn put(&mut self, i: usize, on: bool) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w = (*w & !(1 << (i % 64))) | (u64::from(on) << (i % 64));
        }
    }

    /// Whether value `i` is selected.
    pub fn get(&self, i: usize) -> bool {
        i < self.len
            && self
                .words
                .get(i / 64)
                .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// The bits, 64 values a word, least significant bit first; bits past
    /// [`len`](Self::len) are zero.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Selected values.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Values in the block.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block had no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

const CHUNK: usize = 1024;
/// The sign bit: deltas are stored as signed steps shifted into the order-preserving domain.
const SIGN: u64 = 1 << 63;

/// Evaluates `pred` on the encoded block.
pub fn filter(bytes: &[u8], pred: &Predicate) -> Result<Selection> {
    let (scheme, n, mut c) = header(bytes)?;
    match scheme {
        Scheme::Constant => {
            let v = c.u64()?;
            Ok(Selection::new(n, pred.test(v)))
        }
        Scheme::FrameOfReference => {
            let min = c.u64()?;
            let width = c.width()?;
            let packed = c.packed(n, width)?;
            let span = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width).saturating_sub(1)
            };
            let Some(max) = min.checked_add(span) else {
                // Offsets that wrap past u64::MAX (never written by the encoder): judge the
                // decoded values, as `decode` sees them.
                let mut values = Vec::with_capacity(n);
                decode(bytes, &mut values)?;
                let mut sel = Selection::new(n, false);
                select_range(&mut sel, 0, &values, pred);
                return Ok(sel);
            };
            let shifted = pred.shifted(min, max);
            let mut sel = Selection::new(n, false);
            if shifted == Predicate::In(Vec::new()) {
                return Ok(sel);
            }
            if let Some((lo, hi)) = shifted.as_range() {
                // Compare the packed offsets in place, never adding the minimum back.
                select_packed(packed, width, n, (lo, hi - lo, u64::MAX), &mut sel.words);
                return Ok(sel);
            }
            let mut buf = vec![0u64; CHUNK];
            let per_chunk_bytes = CHUNK * width as usize / 8;
            for (k, start) in (0..n).step_by(CHUNK).enumerate() {
                let m = CHUNK.min(n - start);
                let from = k * per_chunk_bytes;
                // INVARIANT: `m <= CHUNK = buf.len()`.
                let chunk = &mut buf[..m];
                unpack(packed.get(from..).unwrap_or_default(), width, chunk);
                select_range(&mut sel, start, chunk, &shifted);
            }
            Ok(sel)
        }
        Scheme::RunLength => {
            c.take(8)?;
            let (mut values, mut lengths) = (Vec::new(), Vec::new());
            decode(c.nested()?, &mut values)?;
            decode(c.nested()?, &mut lengths)?;
            let mut sel = Selection::new(n, false);
            let mut at = 0usize;
            for (v, l) in values.iter().zip(&lengths) {
                let l = usize::try_from(*l).map_err(|_| Error::Corrupt("run too long"))?;
                let end = at
                    .checked_add(l)
                    .filter(|e| *e <= n)
                    .ok_or(Error::Corrupt("runs past the value count"))?;
                if pred.test(*v) {
                    sel.set_range(at, end);
                }
                at = end;
            }
            if at != n {
                return Err(Error::Corrupt(
                    "run lengths do not add up to the value count",
                ));
            }
            Ok(sel)
        }
        Scheme::Dictionary => filter_dictionary(c, n, pred),
        Scheme::Plain => {
            // Compare the stored words in place: no decoded copy.
            let body = c.take(n.checked_mul(8).ok_or(Error::Corrupt("length overflow"))?)?;
            c.end(bytes)?;
            let words = body.as_chunks::<8>().0;
            Ok(match pred.as_range() {
                Some((lo, hi)) => {
                    Selection::of(words, |w| u64::from_le_bytes(w).wrapping_sub(lo) <= hi - lo)
                }
                None => Selection::of(words, |w| pred.test(u64::from_le_bytes(w))),
            })
        }
        Scheme::Delta => filter_delta(c, bytes, n, pred),
        Scheme::PatchedFrame => {
            let mut values = Vec::with_capacity(n);
            decode(bytes, &mut values)?;
            Ok(match pred.as_range() {
                Some((lo, hi)) => Selection::of(&values, |v| v.wrapping_sub(lo) <= hi - lo),
                None => Selection::of(&values, |v| pred.test(v)),
            })
        }
    }
}

/// A delta block (first value, smallest delta, packed deltas). Values are rebuilt 1024 at a
/// time into one buffer and compared, never decoded whole. When the header alone proves the
/// values never decrease (every delta non-negative, and the largest possible sum cannot wrap)
/// a range predicate selects one contiguous run: each chunk's last value comes from a plain
/// sum of its deltas, so a chunk wholly below or inside the range is never prefix-summed, and
/// the first chunk starting above it ends the scan.
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "`deltas` and `values` hold CHUNK values; every bound is `m` or `md`, both `CHUNK.min(..)`, and `m >= 1` because `start < n`, so `..m`, `..m - 1` and `m - 1` are in bounds"
)]
fn filter_delta(mut c: Cursor<'_>, bytes: &[u8], n: usize, pred: &Predicate) -> Result<Selection> {
    if n == 0 {
        return Err(Error::Corrupt("delta block without values"));
    }
    let first = c.u64()?;
    let lo = c.u64()?;
    let width = c.width()?;
    let packed = c.packed(n - 1, width)?;
    c.end(bytes)?;
    // A stored delta `d` stands for `(d + lo) ^ SIGN` as a signed step (see `encode`).
    let step = |d: u64| d.wrapping_add(lo) ^ SIGN;
    let max_stored = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let never_decreasing = lo >= SIGN
        && lo.checked_add(max_stored).is_some_and(|top| {
            // Every step is `d + lo - SIGN` in 0..=top - SIGN; the values never wrap if even
            // the largest steps cannot carry `first` past u64::MAX.
            let total = u128::from(top - SIGN) * (n as u128 - 1);
            u128::from(first) + total <= u128::from(u64::MAX)
        });
    let range = pred.as_range().filter(|_| never_decreasing);
    let mut sel = Selection::new(n, false);
    let mut deltas = vec![0u64; CHUNK];
    let mut values = vec![0u64; CHUNK];
    let per_chunk_bytes = CHUNK * width as usize / 8;
    // `cur` is the first value of each chunk of values; chunk `k` of deltas leads from it
    // to the values after it, its last delta to the next chunk's first value.
    let mut cur = first;
    for (k, start) in (0..n).step_by(CHUNK).enumerate() {
        let m = CHUNK.min(n - start);
        let md = CHUNK.min(n - 1 - start);
        unpack(
            packed.get(k * per_chunk_bytes..).unwrap_or_default(),
            width,
            &mut deltas[..md],
        );
        if let Some((plo, phi)) = range {
            if cur > phi {
                break;
            }
            let inner = &deltas[..m - 1];
            let sum = inner
                .iter()
                .fold(0u64, |a, d| a.wrapping_add(*d))
                .wrapping_add((lo - SIGN).wrapping_mul(inner.len() as u64));
            let last = cur.wrapping_add(sum);
            if last < plo {
                // Wholly below the range.
            } else if cur >= plo && last <= phi {
                sel.set_range(start, start + m);
            } else {
                prefix_sum(cur, inner, step, &mut values[..m]);
                select_range(&mut sel, start, &values[..m], pred);
            }
            if md == m {
                cur = last.wrapping_add(step(deltas[m - 1]));
            }
        } else {
            prefix_sum(cur, &deltas[..m - 1], step, &mut values[..m]);
            select_range(&mut sel, start, &values[..m], pred);
            if md == m {
                cur = values[m - 1].wrapping_add(step(deltas[m - 1]));
            }
        }
    }
    Ok(sel)
}

/// `out[0] = first`, then each value the previous plus the next step.
fn prefix_sum(first: u64, deltas: &[u64], step: impl Fn(u64) -> u64, out: &mut [u64]) {
    let Some((head, rest)) = out.split_first_mut() else {
        return;
    };
    let mut v = first;
    *head = v;
    for (o, d) in rest.iter_mut().zip(deltas) {
        v = v.wrapping_add(step(*d));
        *o = v;
    }
}

/// A dictionary block: a range predicate becomes a range of codes (the dictionary is
/// ascending) compared packed; anything else is judged once per distinct value.
fn filter_dictionary(mut c: Cursor<'_>, n: usize, pred: &Predicate) -> Result<Selection> {
    let mut dict = Vec::new();
    decode(c.nested()?, &mut dict)?;
    if !dict.is_sorted_by(|a, b| a < b) {
        return Err(Error::Corrupt("dictionary values not ascending"));
    }
    let width = c.width()?;
    let packed = c.packed(n, width)?;
    let mut sel = Selection::new(n, false);
    if let Some((lo, hi)) = pred.as_range() {
        // The dictionary is ascending: the matching values have consecutive codes,
        // so the predicate becomes a range of codes compared packed.
        let first = dict.partition_point(|v| *v < lo);
        let end = dict.partition_point(|v| *v <= hi);
        let last_code = (dict.len() as u64).wrapping_sub(1);
        let codes = if first < end {
            (first as u64, (end - first - 1) as u64)
        } else {
            // Nothing matches: an empty range (`lo` past every code) still checks
            // the codes.
            (u64::MAX, 0)
        };
        if select_packed(
            packed,
            width,
            n,
            (codes.0, codes.1, last_code),
            &mut sel.words,
        ) || dict.is_empty() && n > 0
        {
            return Err(Error::Corrupt("dictionary code out of range"));
        }
        return Ok(sel);
    }
    let matching: Vec<bool> = dict.iter().map(|v| pred.test(*v)).collect();
    let mut buf = vec![0u64; CHUNK];
    let per_chunk_bytes = CHUNK * width as usize / 8;
    for (k, start) in (0..n).step_by(CHUNK).enumerate() {
        let m = CHUNK.min(n - start);
        // INVARIANT: `m <= CHUNK = buf.len()`.
        let chunk = &mut buf[..m];
        unpack(
            packed.get(k * per_chunk_bytes..).unwrap_or_default(),
            width,
            chunk,
        );
        if chunk.iter().any(|code| *code >= matching.len() as u64) {
            return Err(Error::Corrupt("dictionary code out of range"));
        }
        select(&mut sel, start, chunk, |code| {
            matching
                .get(usize::try_from(code).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or(false)
        });
    }
    Ok(sel)
}
