//! Booleans and byte strings, built on the integer encodings.
//!
//! Booleans (and validity bitmaps) are 0/1 integers: the chooser bit-packs them at one bit,
//! or stores runs, or a constant. Strings are either a dictionary — the distinct strings once,
//! in sorted order, and integer codes encoded again — or the bytes as they are with their
//! lengths encoded as integers, or FSST: each string compressed with a symbol table of up to
//! 255 substrings of 1 to 8 bytes trained on the block; whichever is smallest.
//!
//! # String block layout (little-endian)
//!
//! | offset | size | field                                                           |
//! |-------:|-----:|-----------------------------------------------------------------|
//! | 0      | 1    | format version (1)                                              |
//! | 1      | 1    | kind: 0 plain, 1 dictionary, 2 FSST                             |
//! | 2      | 2    | reserved, zero                                                  |
//! | 4      | 4    | `n`, the number of strings                                      |
//! | 8      | ...  | plain: length-prefixed (4) integer block of the lengths, then the bytes (length-prefixed, 4) |
//! | 8      | ...  | dictionary: a nested plain string block of the `d` distinct strings (length-prefixed, 4), then a length-prefixed integer block of the `n` codes |
//! | 8      | ...  | FSST: the symbol table (length-prefixed, 4; layout in the `fsst` module), a length-prefixed integer block of the `n` compressed lengths, then the compressed bytes (length-prefixed, 4) |

use std::collections::HashMap;

use crate::block::{Cursor, MAX_VALUES, decode, encode, nested};
use crate::filter::{Predicate, Selection, filter};
use crate::fsst;
use crate::{Error, Result};

const VERSION: u8 = 1;
const PLAIN: u8 = 0;
const DICTIONARY: u8 = 1;
const FSST: u8 = 2;
/// Below this many bytes of text a symbol table does not pay for itself.
const FSST_MIN_BYTES: usize = 1024;

/// Encodes booleans (validity bitmaps too).
pub fn encode_bools(values: &[bool]) -> Result<Vec<u8>> {
    encode(&values.iter().map(|b| u64::from(*b)).collect::<Vec<_>>())
}

/// Decodes booleans, appending to `out`.
pub fn decode_bools(bytes: &[u8], out: &mut Vec<bool>) -> Result<()> {
    let mut ints = Vec::new();
    decode(bytes, &mut ints)?;
    if ints.iter().any(|v| *v > 1) {
        return Err(Error::Corrupt(
            "boolean block holds a value other than 0 or 1",
        ));
    }
    out.extend(ints.iter().map(|v| *v == 1));
    Ok(())
}

fn header(kind: u8, n: usize) -> Vec<u8> {
    let mut out = vec![VERSION, kind, 0, 0];
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    out
}

fn plain<S: AsRef<[u8]>>(values: &[S]) -> Result<Vec<u8>> {
    let mut out = header(PLAIN, values.len());
    nested(
        &mut out,
        &encode(
            &values
                .iter()
                .map(|s| s.as_ref().len() as u64)
                .collect::<Vec<_>>(),
        )?,
    );
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|s| s.as_ref().iter().copied())
        .collect();
    nested(&mut out, &bytes);
    Ok(out)
}

fn fsst_block<S: AsRef<[u8]>>(values: &[S]) -> Result<Vec<u8>> {
    let table = fsst::Table::train(values);
    let mut lengths = Vec::with_capacity(values.len());
    let mut codes = Vec::new();
    let mut scratch = Vec::new();
    for s in values {
        let before = codes.len();
        table.compress(s.as_ref(), &mut codes, &mut scratch);
        lengths.push((codes.len() - before) as u64);
    }
    let mut out = header(FSST, values.len());
    nested(&mut out, &table.to_bytes());
    nested(&mut out, &encode(&lengths)?);
    nested(&mut out, &codes);
    Ok(out)
}

/// Encodes byte strings: the smallest of a dictionary, FSST, or plain bytes and lengths.
pub fn encode_strings<S: AsRef<[u8]>>(values: &[S]) -> Result<Vec<u8>> {
    if values.len() > MAX_VALUES {
        return Err(Error::TooManyValues {
            len: values.len(),
            max: MAX_VALUES,
        });
    }
    let text: usize = values.iter().map(|s| s.as_ref().len()).sum();
    let mut best = plain(values)?;
    if let Some((distinct, codes)) = dictionary(values) {
        let mut dict = header(DICTIONARY, values.len());
        nested(&mut dict, &plain(&distinct)?);
        nested(&mut dict, &encode(&codes)?);
        if dict.len() < best.len() {
            best = dict;
        }
    }
    // FSST replaces at most 8 bytes by one code byte, so it cannot get below an eighth of
    // the text: when the best block so far is that small, training a table cannot pay.
    if text >= FSST_MIN_BYTES && best.len() > text / 8 {
        let as_fsst = fsst_block(values)?;
        if as_fsst.len() < best.len() {
            best = as_fsst;
        }
    }
    Ok(best)
}

/// The distinct strings, ascending, and each value's code (its rank among them), when at
/// most half the values are distinct (else `None`, found early). One hash lookup per value;
/// only the distinct strings are sorted.
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "every id is below `seen.len()`: an id is handed out as `seen.len()` just before its string is pushed, and `order` is `0..seen.len()`; `rank` has `seen.len()` entries"
)]
fn dictionary<S: AsRef<[u8]>>(values: &[S]) -> Option<(Vec<&[u8]>, Vec<u64>)> {
    let limit = values.len() / 2;
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut first_ids = Vec::with_capacity(values.len());
    for v in values {
        let v = v.as_ref();
        let next = u32::try_from(seen.len()).ok()?;
        let id = *ids.entry(v).or_insert_with(|| {
            seen.push(v);
            next
        });
        if seen.len() > limit {
            return None;
        }
        first_ids.push(id);
    }
    let mut order: Vec<u32> = (0..u32::try_from(seen.len()).ok()?).collect();
    order.sort_unstable_by(|a, b| seen[*a as usize].cmp(seen[*b as usize]));
    let mut rank = vec![0u64; seen.len()];
    for (r, id) in order.iter().enumerate() {
        rank[*id as usize] = r as u64;
    }
    let distinct = order.iter().map(|id| seen[*id as usize]).collect();
    Some((
        distinct,
        first_ids.iter().map(|id| rank[*id as usize]).collect(),
    ))
}

/// Decodes a string block, appending every string's bytes to `data` and its end offset in
/// `data` to `ends`. On error the appended part is unspecified (callers roll back).
fn decode_flat(bytes: &[u8], depth: u8, data: &mut Vec<u8>, ends: &mut Vec<usize>) -> Result<()> {
    let mut c = Cursor { bytes, at: 0 };
    let [version, kind, _, _, n @ ..] = c.array::<8>()?;
    if version != VERSION {
        return Err(Error::Corrupt("unknown string block version"));
    }
    let n = u32::from_le_bytes(n) as usize;
    if n > MAX_VALUES {
        return Err(Error::Corrupt(
            "string block claims more values than a block holds",
        ));
    }
    match kind {
        PLAIN => {
            let mut lengths = Vec::new();
            decode(c.nested()?, &mut lengths)?;
            let bytes = c.nested()?;
            if lengths.len() != n {
                return Err(Error::Corrupt("string count disagrees with its lengths"));
            }
            let total = lengths
                .iter()
                .try_fold(0u64, |a, l| a.checked_add(*l))
                .ok_or(Error::Corrupt("string lengths overflow"))?;
            if total != bytes.len() as u64 {
                return Err(Error::Corrupt("string lengths disagree with the bytes"));
            }
            let mut end = data.len();
            data.extend_from_slice(bytes);
            for l in &lengths {
                // The lengths add up to the bytes present, so each fits.
                end += usize::try_from(*l).unwrap_or(0);
                ends.push(end);
            }
        }
        DICTIONARY if depth == 0 => decode_dictionary(&mut c, n, data, ends)?,
        FSST if depth == 0 => {
            let decoder = fsst::Decoder::from_bytes(c.nested()?)?;
            let mut lengths = Vec::new();
            decode(c.nested()?, &mut lengths)?;
            let compressed = c.nested()?;
            if lengths.len() != n {
                return Err(Error::Corrupt("string count disagrees with its lengths"));
            }
            let mut at = 0usize;
            for l in &lengths {
                let codes = usize::try_from(*l)
                    .ok()
                    .and_then(|l| compressed.get(at..at.checked_add(l)?))
                    .ok_or(Error::Corrupt("FSST lengths run past the bytes"))?;
                at += codes.len();
                decoder.decompress(codes, data)?;
                ends.push(data.len());
            }
            if at != compressed.len() {
                return Err(Error::Corrupt("FSST lengths disagree with the bytes"));
            }
        }
        _ => return Err(Error::Corrupt("unknown or nested string block kind")),
    }
    if c.at != bytes.len() {
        return Err(Error::Corrupt("trailing bytes after the string block"));
    }
    Ok(())
}

/// The body of a dictionary block: the distinct strings, then the codes, each string
/// appended to `data` with its end in `ends`.
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "`dict_ends` comes from `decode_flat` of a plain block into empty buffers: non-decreasing ends, the last `<= dict.len()`, so `entry(k)` is an in-bounds range of `dict` for `k < dict_ends.len()`, and every code was checked `< dict_ends.len()` = `padded.len()`; short entries are `<= 8` bytes (checked), and `data` was grown by `total + 8`, so each 8-byte store at `at <= start + total - len` fits"
)]
fn decode_dictionary(
    c: &mut Cursor<'_>,
    n: usize,
    data: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> Result<()> {
    let (mut dict, mut dict_ends) = (Vec::new(), Vec::new());
    decode_flat(c.nested()?, 1, &mut dict, &mut dict_ends)?;
    check_ascending(&dict, &dict_ends)?;
    let mut raw = Vec::new();
    decode(c.nested()?, &mut raw)?;
    if raw.len() != n {
        return Err(Error::Corrupt("string count disagrees with its codes"));
    }
    let codes: Vec<usize> = raw
        .iter()
        .map(|c| usize::try_from(*c).ok().filter(|k| *k < dict_ends.len()))
        .collect::<Option<_>>()
        .ok_or(Error::Corrupt("string code out of range"))?;
    let entry = |k: usize| (k.checked_sub(1).map_or(0, |p| dict_ends[p]), dict_ends[k]);
    if (0..dict_ends.len()).all(|k| entry(k).1 - entry(k).0 <= 8) {
        // Short entries (flags, modes, codes): each one is a single 8-byte copy from a
        // zero-padded copy of the entry, into a buffer with 8 bytes of slack.
        let padded: Vec<([u8; 8], usize)> = (0..dict_ends.len())
            .map(|k| {
                let (start, end) = entry(k);
                let mut w = [0u8; 8];
                w[..end - start].copy_from_slice(&dict[start..end]);
                (w, end - start)
            })
            .collect();
        let total: usize = codes.iter().map(|k| padded[*k].1).sum();
        let mut at = data.len();
        data.resize(at + total + 8, 0);
        ends.reserve(codes.len());
        for k in &codes {
            let (w, len) = &padded[*k];
            data[at..at + 8].copy_from_slice(w);
            at += len;
            ends.push(at);
        }
        data.truncate(at);
    } else {
        for k in &codes {
            let (start, end) = entry(*k);
            data.extend_from_slice(&dict[start..end]);
            ends.push(data.len());
        }
    }
    Ok(())
}

/// Decodes byte strings into caller-provided buffers: appends every string's bytes to `data`
/// and, per string, its end offset in `data` to `ends` (string `i` is
/// `data[ends[i - 1]..ends[i]]`, the first starting where `data` ended before the call). The
/// fast path: no allocation per string. On error both buffers are left as they were.
pub fn decode_strings_into(bytes: &[u8], data: &mut Vec<u8>, ends: &mut Vec<usize>) -> Result<()> {
    let (data_len, ends_len) = (data.len(), ends.len());
    decode_flat(bytes, 0, data, ends).inspect_err(|_| {
        data.truncate(data_len);
        ends.truncate(ends_len);
    })
}

/// Decodes byte strings, appending one `Vec` per string to `out` (see
/// [`decode_strings_into`] for the allocation-free form).
pub fn decode_strings(bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Result<()> {
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    decode_flat(bytes, 0, &mut data, &mut ends)?;
    let mut start = 0;
    out.extend(ends.iter().map(|end| {
        // INVARIANT: `decode_flat` into empty buffers pushes non-decreasing ends, each
        // `<= data.len()`, so `start..end` is in bounds.
        let s = data[start..*end].to_vec();
        start = *end;
        s
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn low_cardinality_strings_use_a_dictionary() {
        let flags: Vec<&str> = (0..10_000)
            .map(|i| ["AIR", "RAIL", "SHIP", "TRUCK", "MAIL"][i % 5])
            .collect();
        let block = encode_strings(&flags).unwrap();
        assert_eq!(block[1], DICTIONARY);
        assert!(block.len() < 10_000, "{} bytes", block.len());
        let mut back = Vec::new();
        decode_strings(&block, &mut back).unwrap();
        assert!(back.iter().zip(&flags).all(|(a, b)| a == b.as_bytes()));
    }

    #[test]
    fn high_cardinality_text_uses_fsst() {
        let words = [
            "slyly", "express", "pinto", "beans", "haggle", "final", "ideas", "along",
        ];
        let comments: Vec<String> = (0..20_000usize)
            .map(|i| {
                format!(
                    "{} {} {} #{i}",
                    words[i % 8],
                    words[(i / 8) % 8],
                    words[(i * 5 + 3) % 8]
                )
            })
            .collect();
        let raw: usize = comments.iter().map(String::len).sum();
        let block = encode_strings(&comments).unwrap();
        assert_eq!(block[1], FSST);
        assert!(block.len() * 2 < raw, "{} of {raw} bytes", block.len());
        let mut back = Vec::new();
        decode_strings(&block, &mut back).unwrap();
        assert!(back.iter().zip(&comments).all(|(a, b)| a == b.as_bytes()));
        assert_eq!(back.len(), comments.len());
        // Every cut and a bit flip in each byte of the header and table is an error or a
        // different (never a panicking) result.
        for cut in [1, 8, 12, block.len() / 2, block.len() - 1] {
            assert!(decode_strings(&block[..cut], &mut Vec::new()).is_err());
        }
        for at in 0..block.len().min(600) {
            let mut bad = block.clone();
            bad[at] ^= 0x5a;
            drop(decode_strings(&bad, &mut Vec::new()));
        }
    }

    #[test]
    fn validity_bitmaps_pack_to_bits_or_runs() {
        let mostly_valid: Vec<bool> = (0..8192).map(|i| i % 1000 != 0).collect();
        let block = encode_bools(&mostly_valid).unwrap();
        assert!(block.len() <= 8192 / 8 + 64, "{} bytes", block.len());
        let mut back = Vec::new();
        decode_bools(&block, &mut back).unwrap();
        assert_eq!(back, mostly_valid);
        let mut bad = Vec::new();
        assert!(decode_bools(&encode(&[0, 1, 2]).unwrap(), &mut bad).is_err());
    }

    proptest! {
        #[test]
        fn strings_round_trip(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..300), repeat in 1usize..4) {
            let values: Vec<Vec<u8>> = values.iter().cycle().take(values.len() * repeat).cloned().collect();
            let block = encode_strings(&values).unwrap();
            let mut back = Vec::new();
            decode_strings(&block, &mut back).unwrap();
            prop_assert_eq!(back, values);
        }

        #[test]
        fn flat_decoding_matches(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..300), repeat in 1usize..4, prefix in proptest::collection::vec(any::<u8>(), 0..5)) {
            let values: Vec<Vec<u8>> = values.iter().cycle().take(values.len() * repeat).cloned().collect();
            let block = encode_strings(&values).unwrap();
            let (mut data, mut ends) = (prefix.clone(), vec![prefix.len()]);
            decode_strings_into(&block, &mut data, &mut ends).unwrap();
            prop_assert_eq!(ends.len(), values.len() + 1);
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(&data[ends[i]..ends[i + 1]], v.as_slice());
            }
            // A damaged block leaves the buffers as they were.
            let (before_data, before_ends) = (data.clone(), ends.clone());
            if decode_strings_into(&block[..block.len() - 1], &mut data, &mut ends).is_err() {
                prop_assert_eq!(&data, &before_data);
                prop_assert_eq!(&ends, &before_ends);
            }
        }

        #[test]
        fn booleans_round_trip(values in proptest::collection::vec(any::<bool>(), 0..2000)) {
            let mut back = Vec::new();
            decode_bools(&encode_bools(&values).unwrap(), &mut back).unwrap();
            prop_assert_eq!(back, values);
        }

        #[test]
        fn hostile_string_blocks_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..300), values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..50), cut in any::<prop::sample::Index>()) {
            let mut out = Vec::new();
            drop(decode_strings(&junk, &mut out));
            let block = encode_strings(&values).unwrap();
            let n = cut.index(block.len());
            prop_assert!(decode_strings(&block[..n], &mut out).is_err());
        }
    }
}

/// A comparison of byte strings (lexicographic, as `[u8]` orders them) against constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringPredicate {
    /// `s == c`
    Eq(Vec<u8>),
    /// `s < c`
    Lt(Vec<u8>),
    /// `s <= c`
    Le(Vec<u8>),
    /// `s > c`
    Gt(Vec<u8>),
    /// `s >= c`
    Ge(Vec<u8>),
    /// `lo <= s <= hi`
    Between(Vec<u8>, Vec<u8>),
    /// `s` is one of the strings.
    In(Vec<Vec<u8>>),
    /// `s` starts with the prefix (SQL `LIKE 'prefix%'`).
    StartsWith(Vec<u8>),
}

impl StringPredicate {
    /// Whether `s` passes.
    pub fn test(&self, s: &[u8]) -> bool {
        match self {
            StringPredicate::Eq(c) => s == c.as_slice(),
            StringPredicate::Lt(c) => s < c.as_slice(),
            StringPredicate::Le(c) => s <= c.as_slice(),
            StringPredicate::Gt(c) => s > c.as_slice(),
            StringPredicate::Ge(c) => s >= c.as_slice(),
            StringPredicate::Between(lo, hi) => lo.as_slice() <= s && s <= hi.as_slice(),
            StringPredicate::In(set) => set.iter().any(|c| c.as_slice() == s),
            StringPredicate::StartsWith(p) => s.starts_with(p),
        }
    }

    /// The codes `first..end` of a sorted dictionary whose strings pass, for every predicate
    /// but `In` (the passing strings of a sorted list are consecutive).
    fn code_range(&self, dict: &Strings<'_>) -> Option<(usize, usize)> {
        let first_not = |pass_before: &dyn Fn(&[u8]) -> bool| dict.partition_point(pass_before);
        let (first, end) = match self {
            StringPredicate::Eq(c) => (
                first_not(&|s| s < c.as_slice()),
                first_not(&|s| s <= c.as_slice()),
            ),
            StringPredicate::Lt(c) => (0, first_not(&|s| s < c.as_slice())),
            StringPredicate::Le(c) => (0, first_not(&|s| s <= c.as_slice())),
            StringPredicate::Gt(c) => (first_not(&|s| s <= c.as_slice()), dict.len()),
            StringPredicate::Ge(c) => (first_not(&|s| s < c.as_slice()), dict.len()),
            StringPredicate::Between(lo, hi) => (
                first_not(&|s| s < lo.as_slice()),
                first_not(&|s| s <= hi.as_slice()),
            ),
            StringPredicate::StartsWith(p) => (
                first_not(&|s| s < p.as_slice()),
                first_not(&|s| s < p.as_slice() || s.starts_with(p)),
            ),
            StringPredicate::In(_) => return None,
        };
        Some((first, end.max(first)))
    }
}

/// Strings stored back to back with their end offsets.
struct Strings<'a> {
    data: &'a [u8],
    ends: &'a [usize],
}

impl Strings<'_> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// String `i`; callers pass `i < self.len()`.
    #[expect(
        clippy::allow_attributes,
        reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
    )]
    #[allow(
        clippy::indexing_slicing,
        reason = "callers pass `i < self.len()` (binary search below `len`, `1..len`, `0..len`), and every `Strings` is built from the output of `decode_flat` into empty buffers: non-decreasing `ends`, each `<= data.len()`"
    )]
    fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        &self.data[start..self.ends[i]]
    }

    /// The first index whose string does not pass `pred` (which must hold for a prefix).
    fn partition_point(&self, pred: &dyn Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// A dictionary must be strictly ascending: ranges of codes rely on it.
fn check_ascending(data: &[u8], ends: &[usize]) -> Result<()> {
    let dict = Strings { data, ends };
    if (1..dict.len()).all(|i| dict.get(i - 1) < dict.get(i)) {
        Ok(())
    } else {
        Err(Error::Corrupt("string dictionary not strictly ascending"))
    }
}

/// Evaluates `pred` on an encoded string block. On a dictionary block the predicate is judged
/// on the distinct strings only (by binary search: they are sorted) and becomes a range or set
/// of codes, which is evaluated on the encoded codes without decoding them; plain and FSST
/// blocks are decoded into one flat buffer and tested string by string.
pub fn filter_strings(bytes: &[u8], pred: &StringPredicate) -> Result<Selection> {
    let mut c = Cursor { bytes, at: 0 };
    let [version, kind, _, _, n @ ..] = c.array::<8>()?;
    if version != VERSION {
        return Err(Error::Corrupt("unknown string block version"));
    }
    let n = u32::from_le_bytes(n) as usize;
    if kind != DICTIONARY {
        let (mut data, mut ends) = (Vec::new(), Vec::new());
        decode_flat(bytes, 0, &mut data, &mut ends)?;
        let strings = Strings {
            data: &data,
            ends: &ends,
        };
        let all: Vec<usize> = (0..strings.len()).collect();
        return Ok(Selection::of(&all, |i| pred.test(strings.get(i))));
    }
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    decode_flat(c.nested()?, 1, &mut data, &mut ends)?;
    check_ascending(&data, &ends)?;
    let dict = Strings {
        data: &data,
        ends: &ends,
    };
    let codes = c.nested()?;
    if c.at != bytes.len() {
        return Err(Error::Corrupt("trailing bytes after the string block"));
    }
    let on_codes = match pred.code_range(&dict) {
        Some((first, end)) if first < end => Predicate::Between(first as u64, (end - 1) as u64),
        Some(_) => Predicate::In(Vec::new()),
        None => Predicate::In(
            (0..dict.len())
                .filter(|i| pred.test(dict.get(*i)))
                .map(|i| i as u64)
                .collect(),
        ),
    };
    let sel = filter(codes, &on_codes)?;
    if sel.len() != n {
        return Err(Error::Corrupt("string count disagrees with its codes"));
    }
    // A code past the dictionary is damage, as when decoding (no string to compare).
    if filter(codes, &Predicate::Ge(dict.len() as u64))?.count() > 0 {
        return Err(Error::Corrupt("string code out of range"));
    }
    Ok(sel)
}
