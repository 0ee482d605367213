//! Bit-packing: `n` values of `width` bits each, least significant bit first, in 64-bit
//! little-endian words. The unpacking loop works on one 64-value group at a time with a fixed
//! width, which the compiler unrolls and vectorizes.

/// Bytes `n` values of `width` bits take: whole 64-bit words.
pub(crate) fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(64) * 8
}

/// Bits needed to hold `v`.
pub(crate) fn bits(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Appends `values` packed at `width` bits (every value must fit) to `out`.
pub(crate) fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut words = vec![0u64; (values.len() * width as usize).div_ceil(64)];
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    for (i, v) in values.iter().enumerate() {
        let bit = i * width as usize;
        let (w, off) = (bit / 64, u32::try_from(bit % 64).unwrap_or(0));
        let v = v & mask;
        words[w] |= v << off;
        if off + width > 64 {
            words[w + 1] |= v >> (64 - off);
        }
    }
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

/// Unpacks one group of 64 values of `W` bits from `W` words. With `W` a constant and
/// fixed-size arrays, every shift and index is known at compile time: the loop unrolls into
/// straight-line code the compiler vectorizes.
#[expect(
    clippy::inline_always,
    reason = "the kernel must be inlined into each width's loop"
)]
#[inline(always)]
fn unpack_group<const W: usize>(words: &[u64; 65], base: u64, out: &mut [u64; 64]) {
    let mask = if W == 64 { u64::MAX } else { (1u64 << W) - 1 };
    for (i, o) in out.iter_mut().enumerate() {
        let bit = i * W;
        let (idx, off) = (bit / 64, bit % 64);
        let lo = words[idx] >> off;
        let v = if off + W > 64 {
            lo | (words[idx + 1] << (64 - off))
        } else {
            lo
        };
        *o = (v & mask).wrapping_add(base);
    }
}

fn unpack_fixed<const W: usize>(bytes: &[u8], base: u64, out: &mut [u64]) {
    let mut words = [0u64; 65];
    let mut group = [0u64; 64];
    for (g, chunk) in out.chunks_mut(64).enumerate() {
        // Group g starts at word g * W (64 values of W bits fill exactly W words).
        let start = g * W * 8;
        match bytes.get(start..start + W * 8) {
            Some(src) => {
                for (w, b) in words.iter_mut().zip(src.chunks_exact(8)) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    *w = u64::from_le_bytes(a);
                }
            }
            None => {
                // The last, partial group: read what is there.
                for (k, w) in words.iter_mut().enumerate().take(W) {
                    let at = start + k * 8;
                    *w = bytes.get(at..at + 8).map_or(0, |b| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        u64::from_le_bytes(a)
                    });
                }
            }
        }
        // Full groups are written in place; only the last, partial one goes through a copy.
        if let Ok(full) = <&mut [u64; 64]>::try_from(&mut *chunk) {
            unpack_group::<W>(&words, base, full);
        } else {
            unpack_group::<W>(&words, base, &mut group);
            chunk.copy_from_slice(&group[..chunk.len()]);
        }
    }
}

macro_rules! dispatch {
    ($width:expr, $bytes:expr, $base:expr, $out:expr, $($w:literal)*) => {
        match $width {
            $($w => unpack_fixed::<$w>($bytes, $base, $out),)*
            _ => $out.fill($base),
        }
    };
}

/// Unpacks `out.len()` values of `width` bits from `bytes` (which must hold
/// [`packed_len`] bytes; the caller checks). Runs a kernel specialized for the width.
pub(crate) fn unpack(bytes: &[u8], width: u32, out: &mut [u64]) {
    unpack_plus(bytes, width, 0, out);
}

/// Like [`unpack`], adding `base` (wrapping) to every value in the same pass: a frame of
/// reference decodes in one pass over the output.
pub(crate) fn unpack_plus(bytes: &[u8], width: u32, base: u64, out: &mut [u64]) {
    dispatch!(width, bytes, base, out,
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_round_trips(width in 0u32..=64, raw in proptest::collection::vec(any::<u64>(), 0..300)) {
            let mask = if width == 64 { u64::MAX } else if width == 0 { 0 } else { (1u64 << width) - 1 };
            let values: Vec<u64> = raw.iter().map(|v| v & mask).collect();
            let mut out = Vec::new();
            pack(&values, width, &mut out);
            prop_assert_eq!(out.len(), packed_len(values.len(), width));
            let mut back = vec![0u64; values.len()];
            unpack(&out, width, &mut back);
            prop_assert_eq!(back, values);
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
}
