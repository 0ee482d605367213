//! A set of page ids as a bitmap: the store's pages of the current generation, asked about
//! on every in-place change, so a lookup is one bit of a dense array (a few KiB per GiB of
//! file) rather than a hash probe; it iterates in ascending order.

use lightning_page::PageId;

/// Page ids, one bit each, up to the largest inserted.
#[derive(Debug, Default, Clone)]
pub(crate) struct PageSet {
    words: Vec<u64>,
    len: usize,
}

impl PageSet {
    fn at(id: PageId) -> Option<(usize, u64)> {
        let i = usize::try_from(id.get() / 64).ok()?;
        Some((i, 1 << (id.get() % 64)))
    }

    /// Adds `id`; whether it was absent. An id too large to index (only a crafted one) is
    /// not recorded, and the page is then treated as of an older generation (copied).
    pub(crate) fn insert(&mut self, id: PageId) -> bool {
        let Some((i, bit)) = Self::at(id) else {
            return false;
        };
        if i >= self.words.len() {
            // Ids are dense page numbers of one file: grow to fit, with room to spare.
            self.words.resize((i + 1).next_power_of_two(), 0);
        }
        let Some(word) = self.words.get_mut(i) else {
            return false;
        };
        let fresh = *word & bit == 0;
        *word |= bit;
        self.len += usize::from(fresh);
        fresh
    }

    /// Removes `id`; whether it was there.
    pub(crate) fn remove(&mut self, id: PageId) -> bool {
        let Some((i, bit)) = Self::at(id) else {
            return false;
        };
        let Some(word) = self.words.get_mut(i) else {
            return false;
        };
        let was = *word & bit != 0;
        *word &= !bit;
        self.len -= usize::from(was);
        was
    }

    pub(crate) fn contains(&self, id: PageId) -> bool {
        Self::at(id).is_some_and(|(i, bit)| self.words.get(i).is_some_and(|w| w & bit != 0))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The ids, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = PageId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = u64::from(rest.trailing_zeros());
                rest &= rest - 1;
                Some(PageId::new(i as u64 * 64 + bit))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    proptest::proptest! {
        /// Inserts and removals against `BTreeSet`: membership, length, ascending order.
        #[test]
        fn a_page_set_is_a_set(ops in proptest::collection::vec((proptest::prelude::any::<bool>(), 0u64..5000), 0..400)) {
            let mut set = PageSet::default();
            let mut model = BTreeSet::new();
            for (add, id) in ops {
                let id = PageId::new(id);
                if add {
                    proptest::prop_assert_eq!(set.insert(id), model.insert(id));
                } else {
                    proptest::prop_assert_eq!(set.remove(id), model.remove(&id));
                }
                proptest::prop_assert_eq!(set.len(), model.len());
                proptest::prop_assert_eq!(set.contains(id), model.contains(&id));
            }
            proptest::prop_assert!(set.iter().eq(model.iter().copied()));
        }
    }

    #[test]
    fn ids_beyond_the_words_are_absent() {
        let mut set = PageSet::default();
        assert!(!set.contains(PageId::new(u64::MAX)));
        assert!(!set.remove(PageId::new(1 << 40)));
        assert!(set.insert(PageId::new(63)));
        assert!(set.insert(PageId::new(64)));
        assert_eq!(set.iter().map(PageId::get).collect::<Vec<_>>(), [63, 64]);
    }
}
