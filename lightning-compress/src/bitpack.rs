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

/// Unpacks `out.len()` values of `width` bits from `bytes` (which must hold
/// [`packed_len`] bytes; the caller checks).
pub(crate) fn unpack(bytes: &[u8], width: u32, out: &mut [u64]) {
    if width == 0 {
        out.fill(0);
        return;
    }
    let word = |i: usize| -> u64 {
        let mut a = [0u8; 8];
        if let Some(s) = bytes.get(i * 8..i * 8 + 8) {
            a.copy_from_slice(s);
        }
        u64::from_le_bytes(a)
    };
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let w = width as usize;
    for (i, o) in out.iter_mut().enumerate() {
        let bit = i * w;
        let (idx, off) = (bit / 64, bit % 64);
        let lo = word(idx) >> off;
        let v = if off + w > 64 {
            lo | (word(idx + 1) << (64 - off))
        } else {
            lo
        };
        *o = v & mask;
    }
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
