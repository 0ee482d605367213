//! Lightweight column encodings for Lightning DB's columnar segments.
//!
//! [`encode`] picks, per block of up to [`MAX_VALUES`] values, the smallest of: plain,
//! constant, frame of reference with bit-packing (patched for outliers), delta (sorted data), run-length (run values
//! and lengths encoded again) and dictionary (distinct values encoded again, codes
//! bit-packed) — a one-level cascade in the spirit of `BtrBlocks`; [`explain`] shows the choice.
//! [`decode`] appends to a `Vec`, [`decode_into`] writes into a caller's buffer (the fast
//! path for scans: 1024-value blocks into one reused buffer unpack at 5–9 G values/s with AVX2).
//! Both treat their input as untrusted: malformed bytes are [`Error::Corrupt`], never a
//! panic or an allocation beyond the block limit. [`filter`] evaluates a [`Predicate`] on the
//! encoded block (once per run; a range on the packed offsets of a frame or the packed codes
//! of a dictionary, without decoding; a delta block 1024 values at a time, a range on sorted
//! values located from sums of the deltas) and returns a [`Selection`]; [`filter_f64`] and
//! [`filter_strings`] do the same for doubles (a range of the scaled integers) and strings (a
//! range or set of dictionary codes). [`sum`] adds a block's values on the encoded form where
//! the scheme allows (a frame of reference sums its packed offsets without unpacking them).
//!
//! Values are `u64`; [`i64_key`] maps signed values into the same order-preserving domain.
//! Doubles: [`encode_f64`] scales decimals to integers (in the spirit of ALP) with exceptions
//! for values that do not round-trip, or stores raw bits; every bit pattern round-trips.
//!
//! Booleans and validity bitmaps go through the integer chooser (one bit, runs or a
//! constant); byte strings through [`encode_strings`] (a dictionary, FSST — a trained table
//! of up to 255 short substrings, each replaced by one byte — or bytes and encoded lengths;
//! the smallest).
//!
//! A patched frame keeps a few outliers apart so one large value does not widen every value.
//!
//! # Example
//!
//! ```
//! use lightning_compress::{Predicate, Scheme, decode, encode, filter, scheme_of};
//!
//! let prices: Vec<u64> = (0..10_000).map(|i| 1_000 + i % 50).collect();
//! let block = encode(&prices)?;
//! assert_eq!(scheme_of(&block)?, Scheme::FrameOfReference);
//! assert!(block.len() < prices.len()); // under a byte per value
//! let mut back = Vec::new();
//! decode(&block, &mut back)?;
//! assert_eq!(back, prices);
//! let cheap = filter(&block, &Predicate::Lt(1_010))?;
//! assert_eq!(cheap.count(), 10_000 / 50 * 10);
//! # Ok::<(), lightning_compress::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
// The one `unsafe` is in `bitpack`: calling the AVX2 instantiation of a kernel after the
// CPU was checked for AVX2 (the workspace denies `unsafe_code` everywhere else).
#![doc(test(attr(deny(warnings))))]

mod bitpack;
mod block;
mod error;
mod filter;
mod float;
mod fsst;
mod strings;

pub use block::{
    MAX_VALUES, Scheme, decode, decode_into, encode, explain, scheme_of, sum, sum_selected,
};
pub use error::{Error, Result};
pub use filter::{Predicate, Selection, filter};
pub use float::{FloatPredicate, decode_f64, encode_f64, filter_f64};
pub use strings::{
    StringPredicate, decode_bools, decode_strings, decode_strings_into, encode_bools,
    encode_strings, filter_strings,
};

/// Maps an `i64` into the `u64` domain so that order is preserved (flip the sign bit).
pub fn i64_key(v: i64) -> u64 {
    u64::from_le_bytes(v.to_le_bytes()) ^ (1 << 63)
}

/// The inverse of [`i64_key`].
pub fn i64_from_key(k: u64) -> i64 {
    i64::from_le_bytes((k ^ (1 << 63)).to_le_bytes())
}
