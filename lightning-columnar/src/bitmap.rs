//! A fixed-length bit vector: validity (1 = a value, 0 = null) and row masks.

/// A fixed-length bit vector, 64 bits a word, least significant bit first. Bits past the
/// length are always zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    /// `len` bits, all set to `on`.
    pub fn new(len: usize, on: bool) -> Bitmap {
        let mut b = Bitmap {
            words: vec![if on { u64::MAX } else { 0 }; len.div_ceil(64)],
            len,
        };
        b.clear_tail();
        b
    }

    /// The words and the length, moved out.
    #[cfg(feature = "arrow")]
    pub(crate) fn into_words(self) -> (Vec<u64>, usize) {
        (self.words, self.len)
    }

    /// `len` bits from `words` (least significant bit first), which must hold
    /// `len.div_ceil(64)` words; bits past `len` are cleared.
    pub(crate) fn from_words(mut words: Vec<u64>, len: usize) -> Bitmap {
        words.resize(len.div_ceil(64), 0);
        let mut b = Bitmap { words, len };
        b.clear_tail();
        b
    }

    /// One bit per boolean.
    pub fn from_bools(bits: &[bool]) -> Bitmap {
        let words = bits
            .chunks(64)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u64, |w, (j, b)| w | (u64::from(*b) << j))
            })
            .collect();
        Bitmap {
            words,
            len: bits.len(),
        }
    }

    /// Bits `i` with `pass(i)`, for `i` in `0..len`.
    pub fn from_fn(len: usize, pass: impl Fn(usize) -> bool) -> Bitmap {
        let mut words = vec![0u64; len.div_ceil(64)];
        for (w, word) in words.iter_mut().enumerate() {
            let base = w * 64;
            let end = (base + 64).min(len);
            let mut acc = 0u64;
            for i in base..end {
                acc |= u64::from(pass(i)) << (i - base);
            }
            *word = acc;
        }
        Bitmap { words, len }
    }

    fn clear_tail(&mut self) {
        if !self.len.is_multiple_of(64)
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << (self.len % 64)) - 1;
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `i` (false past the end).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        // INVARIANT: `words.len() == len.div_ceil(64)` (every constructor and `push`/`extend`
        // keep it), so `i < len` puts `i / 64` in range.
        i < self.len && (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Sets bit `i` (ignored past the end).
    #[inline]
    pub fn set(&mut self, i: usize, on: bool) {
        if i < self.len {
            // INVARIANT: `words.len() == len.div_ceil(64)` (every constructor and
            // `push`/`extend` keep it), so `i < len` puts `i / 64` in range.
            let w = &mut self.words[i / 64];
            *w = (*w & !(1 << (i % 64))) | (u64::from(on) << (i % 64));
        }
    }

    /// Appends one bit.
    pub fn push(&mut self, on: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, on);
    }

    /// Set bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether every bit is set.
    pub fn all(&self) -> bool {
        self.count_ones() == self.len
    }

    /// Whether any bit is set.
    pub fn any(&self) -> bool {
        self.words.iter().any(|w| *w != 0)
    }

    /// The words, 64 bits each (bits past the length are zero).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// `self &= other` (bits past the shorter length are cleared).
    pub fn and_with(&mut self, other: &Bitmap) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// `self |= other` (up to this bitmap's length).
    pub fn or_with(&mut self, other: &Bitmap) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.clear_tail();
    }

    /// Every bit flipped.
    #[must_use]
    pub fn not(&self) -> Bitmap {
        let mut b = Bitmap {
            words: self.words.iter().map(|w| !w).collect(),
            len: self.len,
        };
        b.clear_tail();
        b
    }

    /// The indices of the set bits, ascending.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, word)| {
            let mut bits = *word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let j = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + j)
            })
        })
    }

    /// Bits `start..start + len` (clipped).
    #[must_use]
    pub fn slice(&self, start: usize, len: usize) -> Bitmap {
        let end = start.saturating_add(len).min(self.len);
        Bitmap::from_fn(end.saturating_sub(start), |i| self.get(start + i))
    }

    /// The bits at `indices`, in order.
    #[must_use]
    pub fn gather(&self, indices: &[u32]) -> Bitmap {
        // INVARIANT: `from_fn` calls the closure with `i < indices.len()` only.
        Bitmap::from_fn(indices.len(), |i| self.get(indices[i] as usize))
    }

    /// Appends the bits of `other`.
    pub fn extend(&mut self, other: &Bitmap) {
        if self.len.is_multiple_of(64) {
            self.words.truncate(self.len / 64);
            self.words.extend_from_slice(&other.words);
            self.len += other.len;
            return;
        }
        for i in 0..other.len {
            self.push(other.get(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut b = Bitmap::new(70, true);
        assert_eq!(b.count_ones(), 70);
        b.set(3, false);
        b.set(69, false);
        assert!(!b.get(3) && b.get(4) && !b.get(69) && !b.get(70));
        assert_eq!(b.not().ones().collect::<Vec<_>>(), vec![3, 69]);
        let mut c = b.clone();
        c.extend(&Bitmap::from_bools(&[true, false]));
        assert_eq!(c.len(), 72);
        assert!(c.get(70) && !c.get(71));
        let mut d = Bitmap::new(64, true);
        d.extend(&Bitmap::new(3, true));
        assert_eq!(d.count_ones(), 67);
        assert_eq!(
            b.slice(2, 4),
            Bitmap::from_bools(&[true, false, true, true])
        );
        assert_eq!(b.gather(&[3, 0]), Bitmap::from_bools(&[false, true]));
        let mut e = Bitmap::new(70, false);
        e.or_with(&b);
        e.and_with(&Bitmap::new(10, true));
        assert_eq!(e.count_ones(), 9);
    }
}
