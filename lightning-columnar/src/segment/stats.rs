//! Zone maps: per-chunk minimum, maximum, null count and a distinct-count estimate.

use crate::column::{Column, Data};
use crate::types::{DataType, Scalar, f64_cmp};

/// Longest string bound a zone map keeps. A longer minimum is cut to a prefix (still a lower
/// bound); a longer maximum is dropped (no upper bound).
pub const MAX_STAT_BYTES: usize = 64;

/// Statistics of one column chunk, written with it and read back from the footer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkStats {
    pub(crate) null_count: u32,
    pub(crate) distinct: u32,
    pub(crate) min: Option<Scalar>,
    pub(crate) max: Option<Scalar>,
}

impl ChunkStats {
    /// Nulls in the chunk.
    pub fn null_count(&self) -> u32 {
        self.null_count
    }

    /// Estimated number of distinct non-null values (a `HyperLogLog` of 1024 registers,
    /// about 3 % standard error; exact for booleans).
    pub fn distinct_estimate(&self) -> u32 {
        self.distinct
    }

    /// A lower bound of the non-null values (the minimum, or a prefix of it for long
    /// strings); `None` when unknown (all null, all NaN).
    pub fn min(&self) -> Option<&Scalar> {
        self.min.as_ref()
    }

    /// The maximum of the non-null values (NaN excluded); `None` when unknown (all null, all
    /// NaN, or a string longer than [`MAX_STAT_BYTES`]).
    pub fn max(&self) -> Option<&Scalar> {
        self.max.as_ref()
    }
}

/// A `HyperLogLog` sketch with 2^10 registers.
struct Hll {
    registers: Vec<u8>,
}

const HLL_BITS: u32 = 10;

impl Hll {
    fn new() -> Hll {
        Hll {
            registers: vec![0; 1 << HLL_BITS],
        }
    }

    #[inline]
    fn add(&mut self, hash: u64) {
        let idx = (hash >> (64 - HLL_BITS)) as usize;
        let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = u8::try_from(rest.leading_zeros() + 1).unwrap_or(u8::MAX);
        // INVARIANT: `idx` is the top HLL_BITS bits of the hash, below 2^HLL_BITS, the
        // length `new` gives `registers` (never resized).
        let r = &mut self.registers[idx];
        *r = (*r).max(rank);
    }

    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an estimate: small counts, rounded"
    )]
    fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let zeros = self
            .registers
            .iter()
            .map(|r| usize::from(*r == 0))
            .sum::<usize>();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }
}

/// splitmix64's finalizer: a cheap, well-mixed 64-bit hash of an integer.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over bytes, then mixed.
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h ^ b.len() as u64)
}

/// The bits of a double with `-0.0` as `0.0` and every NaN as one NaN (equal values hash
/// equal).
#[inline]
pub(crate) fn canonical_f64_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Computes the statistics of a column.
#[expect(clippy::too_many_lines, reason = "one arm per physical type")]
pub(crate) fn compute(col: &Column) -> ChunkStats {
    let valid = |i: usize| col.is_valid(i);
    let null_count = u32::try_from(col.null_count()).unwrap_or(u32::MAX);
    let mut hll = Hll::new();
    let dt = col.data_type();
    let (min, max, distinct) = match col.data() {
        Data::Bool(v) => {
            let (mut t, mut f) = (false, false);
            for (i, b) in v.iter().enumerate() {
                if valid(i) {
                    if *b {
                        t = true;
                    } else {
                        f = true;
                    }
                }
            }
            let min = if f { Some(false) } else { t.then_some(true) };
            let max = if t { Some(true) } else { f.then_some(false) };
            (
                min.map(Scalar::Bool),
                max.map(Scalar::Bool),
                u64::from(t) + u64::from(f),
            )
        }
        Data::I32(v) => {
            let mut mm: Option<(i32, i32)> = None;
            for (i, x) in v.iter().enumerate() {
                if valid(i) {
                    mm = Some(mm.map_or((*x, *x), |(a, b)| (a.min(*x), b.max(*x))));
                    hll.add(mix64(u64::from(x.cast_unsigned())));
                }
            }
            let wrap = |x: i32| {
                if dt == DataType::Date32 {
                    Scalar::Date32(x)
                } else {
                    Scalar::Int32(x)
                }
            };
            (mm.map(|m| wrap(m.0)), mm.map(|m| wrap(m.1)), hll.estimate())
        }
        Data::I64(v) => {
            let mut mm: Option<(i64, i64)> = None;
            for (i, x) in v.iter().enumerate() {
                if valid(i) {
                    mm = Some(mm.map_or((*x, *x), |(a, b)| (a.min(*x), b.max(*x))));
                    hll.add(mix64(x.cast_unsigned()));
                }
            }
            let wrap = |x: i64| match dt {
                DataType::Decimal { precision, scale } => Scalar::Decimal {
                    value: x,
                    precision,
                    scale,
                },
                DataType::Timestamp => Scalar::Timestamp(x),
                _ => Scalar::Int64(x),
            };
            (mm.map(|m| wrap(m.0)), mm.map(|m| wrap(m.1)), hll.estimate())
        }
        Data::F64(v) => {
            let mut mm: Option<(f64, f64)> = None;
            for (i, x) in v.iter().enumerate() {
                if valid(i) {
                    hll.add(mix64(canonical_f64_bits(*x)));
                    if !x.is_nan() {
                        mm = Some(mm.map_or((*x, *x), |(a, b)| {
                            (
                                if f64_cmp(*x, a).is_lt() { *x } else { a },
                                if f64_cmp(*x, b).is_gt() { *x } else { b },
                            )
                        }));
                    }
                }
            }
            (
                mm.map(|m| Scalar::Float64(m.0)),
                mm.map(|m| Scalar::Float64(m.1)),
                hll.estimate(),
            )
        }
        Data::Bytes { data, offsets } => {
            let mut mm: Option<(&[u8], &[u8])> = None;
            for (i, w) in offsets.windows(2).enumerate() {
                if valid(i) {
                    // INVARIANT: a window of 2 has two elements, and a column's offsets never
                    // decrease and end at `data.len()` (checked by `Column::from_parts`, kept
                    // by every other constructor).
                    let s = &data[w[0]..w[1]];
                    hll.add(hash_bytes(s));
                    mm = Some(mm.map_or((s, s), |(a, b)| (a.min(s), b.max(s))));
                }
            }
            let (min, max) = match mm {
                None => (None, None),
                Some((lo, hi)) if dt == DataType::Utf8 => {
                    let lo = String::from_utf8_lossy(lo);
                    let hi = String::from_utf8_lossy(hi);
                    (
                        Some(Scalar::Utf8(truncate_utf8(&lo, MAX_STAT_BYTES).to_owned())),
                        (hi.len() <= MAX_STAT_BYTES).then(|| Scalar::Utf8(hi.into_owned())),
                    )
                }
                Some((lo, hi)) => (
                    Some(Scalar::Binary(
                        lo.get(..MAX_STAT_BYTES).unwrap_or(lo).to_vec(),
                    )),
                    (hi.len() <= MAX_STAT_BYTES).then(|| Scalar::Binary(hi.to_vec())),
                ),
            };
            (min, max, hll.estimate())
        }
    };
    let non_null = col.len() as u64 - u64::from(null_count);
    let distinct = distinct.min(non_null);
    // At least one distinct value when any value is present.
    let distinct = if non_null > 0 { distinct.max(1) } else { 0 };
    ChunkStats {
        null_count,
        distinct: u32::try_from(distinct).unwrap_or(u32::MAX),
        min,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitmap::Bitmap;

    #[test]
    fn a_truncated_string_statistic_ends_on_a_character_boundary() {
        // "é" is two bytes: a cut inside it backs off to before it.
        let s = format!("{}é", "a".repeat(MAX_STAT_BYTES - 1));
        assert_eq!(
            truncate_utf8(&s, MAX_STAT_BYTES),
            "a".repeat(MAX_STAT_BYTES - 1)
        );
        assert_eq!(truncate_utf8("日本語", 4), "日");
        assert_eq!(truncate_utf8("日本語", 6), "日本");
        assert_eq!(truncate_utf8("short", MAX_STAT_BYTES), "short");
        assert_eq!(truncate_utf8("日", 2), "");
    }

    #[test]
    fn estimates_are_close() {
        for n in [1u64, 10, 100, 1000, 10_000, 100_000] {
            let values: Vec<i64> = (0..200_000).map(|i| (i % n).cast_signed()).collect();
            let c = Column::from_i64(DataType::Int64, values, None).unwrap();
            let s = compute(&c);
            let d = f64::from(s.distinct);
            #[expect(clippy::cast_precision_loss, reason = "test numbers")]
            let exact = n as f64;
            assert!((d - exact).abs() <= exact * 0.1 + 1.0, "{n}: {d}");
            assert_eq!(s.min, Some(Scalar::Int64(0)));
        }
    }

    #[test]
    fn strings_and_nulls() {
        let long = "é".repeat(40);
        let c = Column::from_strings(
            DataType::Utf8,
            &["b", long.as_str(), "a"],
            Some(Bitmap::from_bools(&[true, true, false])),
        )
        .unwrap();
        let s = compute(&c);
        assert_eq!(s.null_count, 1);
        assert_eq!(s.min, Some(Scalar::Utf8("b".into())));
        assert_eq!(s.max, None);
        let all_null = compute(&Column::nulls(DataType::Float64, 5));
        assert_eq!(
            (all_null.min, all_null.max, all_null.distinct),
            (None, None, 0)
        );
        let nan = compute(&Column::from_f64(vec![f64::NAN, -0.0, 0.0], None).unwrap());
        assert_eq!(nan.distinct, 2);
        assert_eq!(nan.max, Some(Scalar::Float64(0.0)));
    }
}
