//! Floating point: a decimal-aware scheme in the spirit of ALP (SIGMOD 2024), with
//! exceptions stored apart, and a raw fallback — an exact round trip for every bit pattern.
//!
//! Many stored doubles are decimals (prices, measurements): `v × 10^e` is an integer for a
//! small `e`. The scheme picks `e` on a sample, stores `round(v × 10^e)` as integers (encoded
//! again by the integer chooser), and keeps each value whose round trip is not bit-exact
//! (NaN payloads, -0.0, infinities, too many digits) as an exception: its position and bits.
//!
//! # Layout (little-endian)
//!
//! | offset | size | field                                                      |
//! |-------:|-----:|------------------------------------------------------------|
//! | 0      | 1    | format version (1)                                         |
//! | 1      | 1    | kind: 0 decimal, 1 raw bits                                |
//! | 2      | 1    | exponent `e` (0..=18)                                      |
//! | 3      | 1    | reserved, zero                                             |
//! | 4      | 4    | `n`, the number of values                                  |
//! | 8      | ...  | length-prefixed (4) integer block: the scaled integers (order-preserving `i64` keys), or the raw bits |
//! | ...    | ...  | decimal only: length-prefixed (4) integer blocks of exception positions, then of their bits |

use crate::block::{Cursor, MAX_VALUES, decode, encode, nested};
use crate::filter::{Predicate, Selection, filter};
use crate::{Error, Result, i64_from_key, i64_key};

const VERSION: u8 = 1;
const DECIMAL: u8 = 0;
const RAW: u8 = 1;
const MAX_EXPONENT: usize = 18;
const POW10: [f64; MAX_EXPONENT + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];
/// Integers up to 2^53 are exact doubles.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// The integer `v × 10^e` stands for, if it decodes back to exactly `v`. `e` is at most
/// [`MAX_EXPONENT`].
fn scaled(v: f64, e: usize) -> Option<i64> {
    // INVARIANT: both callers pass `e` from `0..=MAX_EXPONENT` (`best_exponent`'s range and
    // its result), and `POW10` has `MAX_EXPONENT + 1` entries.
    let d = (v * POW10[e]).round();
    // NaN fails this test too (`is_finite` and the bound exclude it).
    if !d.is_finite() || d.abs() >= EXACT {
        return None;
    }
    #[expect(clippy::cast_possible_truncation, reason = "|d| < 2^53 was checked")]
    let n = d as i64;
    #[expect(clippy::cast_precision_loss, reason = "|n| < 2^53: exact")]
    // INVARIANT: `e <= MAX_EXPONENT`, as for `d` above.
    let back = n as f64 / POW10[e];
    (back.to_bits() == v.to_bits()).then_some(n)
}

fn best_exponent(values: &[f64]) -> usize {
    let step = (values.len() / 256).max(1);
    let sample: Vec<f64> = values.iter().step_by(step).copied().collect();
    (0..=MAX_EXPONENT)
        .min_by_key(|e| sample.iter().filter(|v| scaled(**v, *e).is_none()).count() * 64 + e)
        .unwrap_or(0)
}

/// Encodes `values`: decimal scaling with exceptions when it pays, raw bits otherwise.
pub fn encode_f64(values: &[f64]) -> Result<Vec<u8>> {
    if values.len() > MAX_VALUES {
        return Err(Error::TooManyValues {
            len: values.len(),
            max: MAX_VALUES,
        });
    }
    let e = best_exponent(values);
    let mut ints = Vec::with_capacity(values.len());
    let (mut positions, mut bits) = (Vec::new(), Vec::new());
    let mut last = 0i64;
    for (i, v) in values.iter().enumerate() {
        if let Some(n) = scaled(*v, e) {
            last = n;
            ints.push(i64_key(n));
        } else {
            // Repeat the previous integer: it costs nothing in a frame or a run.
            ints.push(i64_key(last));
            positions.push(i as u64);
            bits.push(v.to_bits());
        }
    }
    let n = u32::try_from(values.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let decimal = {
        let mut out = vec![VERSION, DECIMAL, u8::try_from(e).unwrap_or(0), 0];
        out.extend_from_slice(&n);
        nested(&mut out, &encode(&ints)?);
        nested(&mut out, &encode(&positions)?);
        nested(&mut out, &encode(&bits)?);
        out
    };
    let raw_bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    let mut raw = vec![VERSION, RAW, 0, 0];
    raw.extend_from_slice(&n);
    nested(&mut raw, &encode(&raw_bits)?);
    Ok(if decimal.len() < raw.len() {
        decimal
    } else {
        raw
    })
}

/// Decodes a float block, appending to `out`.
pub fn decode_f64(bytes: &[u8], out: &mut Vec<f64>) -> Result<()> {
    let mut cursor = Cursor { bytes, at: 0 };
    let [version, kind, exponent, _, n @ ..] = cursor.array::<8>()?;
    if version != VERSION {
        return Err(Error::Corrupt("unknown float block version"));
    }
    let n = u32::from_le_bytes(n) as usize;
    if n > MAX_VALUES {
        return Err(Error::Corrupt(
            "float block claims more values than a block holds",
        ));
    }
    let mut ints = Vec::new();
    decode(cursor.nested()?, &mut ints)?;
    if ints.len() != n {
        return Err(Error::Corrupt(
            "float block count disagrees with its values",
        ));
    }
    let start = out.len();
    match kind {
        RAW => out.extend(ints.iter().map(|b| f64::from_bits(*b))),
        DECIMAL => {
            let e = usize::from(exponent);
            let p = *POW10
                .get(e)
                .ok_or(Error::Corrupt("float exponent out of range"))?;
            #[expect(
                clippy::cast_precision_loss,
                reason = "the encoder only stores |n| < 2^53"
            )]
            out.extend(ints.iter().map(|k| i64_from_key(*k) as f64 / p));
            let (mut positions, mut bits) = (Vec::new(), Vec::new());
            decode(cursor.nested()?, &mut positions)?;
            decode(cursor.nested()?, &mut bits)?;
            if positions.len() != bits.len() {
                out.truncate(start);
                return Err(Error::Corrupt("exception positions and values disagree"));
            }
            for (pos, b) in positions.iter().zip(&bits) {
                let Some(slot) = usize::try_from(*pos)
                    .ok()
                    .filter(|p| *p < n)
                    .map(|p| start + p)
                else {
                    out.truncate(start);
                    return Err(Error::Corrupt("exception position out of range"));
                };
                // INVARIANT: `slot = start + p` with `p < n`, and `out.len() == start + n`:
                // the `n` integers (`ints.len() == n` was checked) were appended above.
                out[slot] = f64::from_bits(*b);
            }
        }
        _ => return Err(Error::Corrupt("unknown float block kind")),
    }
    if cursor.at != bytes.len() {
        out.truncate(start);
        return Err(Error::Corrupt("trailing bytes after the float block"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let block = encode_f64(values).unwrap();
        let mut back = Vec::new();
        decode_f64(&block, &mut back).unwrap();
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        block
    }

    #[test]
    fn special_values_round_trip_exactly() {
        let nan_payload = f64::from_bits(0x7FF8_0000_0000_1234);
        round_trip(&[
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            nan_payload,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            1.5,
        ]);
        round_trip(&[]);
    }

    #[test]
    fn prices_compress_as_decimals() {
        let prices: Vec<f64> = (0..10_000)
            .map(|i| f64::from(1000 + (i * 37) % 90_000) / 100.0)
            .collect();
        let block = round_trip(&prices);
        assert_eq!(block[1], DECIMAL);
        assert!(block.len() * 3 < prices.len() * 8, "{} bytes", block.len());
    }

    proptest! {
        #[test]
        fn every_bit_pattern_round_trips(bits in proptest::collection::vec(any::<u64>(), 0..500)) {
            let values: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
            round_trip(&values);
        }

        #[test]
        fn decimals_with_outliers_round_trip(cents in proptest::collection::vec(-1_000_000i32..1_000_000, 0..500), odd in proptest::collection::vec(any::<u64>(), 0..10)) {
            let mut values: Vec<f64> = cents.iter().map(|c| f64::from(*c) / 100.0).collect();
            for (i, b) in odd.iter().enumerate() {
                if !values.is_empty() {
                    let at = (i * 7919) % values.len();
                    values[at] = f64::from_bits(*b);
                }
            }
            round_trip(&values);
        }

        #[test]
        fn hostile_float_blocks_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            drop(decode_f64(&junk, &mut out));
        }
    }
}

/// A comparison of doubles against constants, with IEEE 754 semantics: NaN passes nothing
/// (not even `Eq(NaN)`), `-0.0 == 0.0`.
#[derive(Debug, Clone, PartialEq)]
pub enum FloatPredicate {
    /// `v == c`
    Eq(f64),
    /// `v < c`
    Lt(f64),
    /// `v <= c`
    Le(f64),
    /// `v > c`
    Gt(f64),
    /// `v >= c`
    Ge(f64),
    /// `lo <= v <= hi`
    Between(f64, f64),
    /// `v` equals one of the values.
    In(Vec<f64>),
}

impl FloatPredicate {
    /// Whether `v` passes.
    #[expect(
        clippy::float_cmp,
        reason = "a predicate compares exactly, as SQL does"
    )]
    pub fn test(&self, v: f64) -> bool {
        match self {
            FloatPredicate::Eq(c) => v == *c,
            FloatPredicate::Lt(c) => v < *c,
            FloatPredicate::Le(c) => v <= *c,
            FloatPredicate::Gt(c) => v > *c,
            FloatPredicate::Ge(c) => v >= *c,
            FloatPredicate::Between(lo, hi) => *lo <= v && v <= *hi,
            FloatPredicate::In(set) => set.contains(&v),
        }
    }

    /// The same predicate on the stored integer keys of a decimal block, where key `k`
    /// decodes to `value(k)`, a non-decreasing function of `k` (the keys preserve order, and
    /// converting and dividing by a positive power of ten are monotone). `None` for `In`.
    fn on_keys(&self, value: &dyn Fn(u64) -> f64) -> Option<Predicate> {
        // The first key whose value passes `pass`, which holds for a suffix of the keys.
        let first = |pass: &dyn Fn(f64) -> bool| {
            let (mut lo, mut hi) = (0u64, u64::MAX);
            if !pass(value(hi)) {
                return None;
            }
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if pass(value(mid)) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Some(lo)
        };
        let none = Predicate::In(Vec::new());
        let all = Predicate::Ge(0);
        // Keys below `end` (all keys for `None`).
        let below = |end: Option<u64>| end.map_or(all.clone(), Predicate::Lt);
        let from = |start: Option<u64>| start.map_or(none.clone(), Predicate::Ge);
        let between = |start: Option<u64>, end: Option<u64>| match (start, end) {
            (Some(s), None) => Predicate::Ge(s),
            (Some(s), Some(e)) if s < e => Predicate::Between(s, e - 1),
            _ => none.clone(),
        };
        Some(match self {
            FloatPredicate::In(_) => return None,
            p if p.has_nan() => none,
            FloatPredicate::Lt(c) => below(first(&|v| v >= *c)),
            FloatPredicate::Le(c) => below(first(&|v| v > *c)),
            FloatPredicate::Gt(c) => from(first(&|v| v > *c)),
            FloatPredicate::Ge(c) => from(first(&|v| v >= *c)),
            FloatPredicate::Eq(c) => between(first(&|v| v >= *c), first(&|v| v > *c)),
            FloatPredicate::Between(lo, hi) => between(first(&|v| v >= *lo), first(&|v| v > *hi)),
        })
    }

    fn has_nan(&self) -> bool {
        match self {
            FloatPredicate::Eq(c)
            | FloatPredicate::Lt(c)
            | FloatPredicate::Le(c)
            | FloatPredicate::Gt(c)
            | FloatPredicate::Ge(c) => c.is_nan(),
            FloatPredicate::Between(lo, hi) => lo.is_nan() || hi.is_nan(),
            FloatPredicate::In(_) => false,
        }
    }
}

/// Evaluates `pred` on an encoded float block. On a decimal block the predicate becomes a
/// range of the scaled integers (found by binary search over the decoding function itself, so
/// it agrees with [`decode_f64`] bit for bit), evaluated on the integer block without decoding
/// it; then each exception is judged on its own value. Raw blocks and `In` are decoded and
/// tested value by value.
pub fn filter_f64(bytes: &[u8], pred: &FloatPredicate) -> Result<Selection> {
    let mut cursor = Cursor { bytes, at: 0 };
    let [version, kind, exponent, _, n @ ..] = cursor.array::<8>()?;
    if version != VERSION {
        return Err(Error::Corrupt("unknown float block version"));
    }
    let n = u32::from_le_bytes(n) as usize;
    let decoded = |pred: &FloatPredicate| -> Result<Selection> {
        let mut values = Vec::new();
        decode_f64(bytes, &mut values)?;
        // One loop per comparison, so the predicate is not matched per value.
        Ok(match pred {
            FloatPredicate::Lt(c) => Selection::of(&values, |v| v < *c),
            FloatPredicate::Le(c) => Selection::of(&values, |v| v <= *c),
            FloatPredicate::Gt(c) => Selection::of(&values, |v| v > *c),
            FloatPredicate::Ge(c) => Selection::of(&values, |v| v >= *c),
            other => Selection::of(&values, |v| other.test(v)),
        })
    };
    if kind != DECIMAL {
        return decoded(pred);
    }
    let p = *POW10
        .get(usize::from(exponent))
        .ok_or(Error::Corrupt("float exponent out of range"))?;
    #[expect(
        clippy::cast_precision_loss,
        reason = "the same conversion decode_f64 makes"
    )]
    let value = |k: u64| i64_from_key(k) as f64 / p;
    let Some(on_keys) = pred.on_keys(&value) else {
        return decoded(pred);
    };
    let mut sel = filter(cursor.nested()?, &on_keys)?;
    if sel.len() != n {
        return Err(Error::Corrupt(
            "float block count disagrees with its values",
        ));
    }
    let (mut positions, mut bits) = (Vec::new(), Vec::new());
    decode(cursor.nested()?, &mut positions)?;
    decode(cursor.nested()?, &mut bits)?;
    if positions.len() != bits.len() {
        return Err(Error::Corrupt("exception positions and values disagree"));
    }
    if cursor.at != bytes.len() {
        return Err(Error::Corrupt("trailing bytes after the float block"));
    }
    for (pos, b) in positions.iter().zip(&bits) {
        let at = usize::try_from(*pos)
            .ok()
            .filter(|at| *at < n)
            .ok_or(Error::Corrupt("exception position out of range"))?;
        sel.put(at, pred.test(f64::from_bits(*b)));
    }
    Ok(sel)
}
