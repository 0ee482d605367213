//! Reading in key order: scans that find one leaf at a time by descent, the `Range`
//! iterator (both ends) and the `Cursor`.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use lightning_page::PageId;

use crate::node::Val;
use crate::tree::{BTree, Entries, MAX_DEPTH};
use crate::{Error, Result};

/// What a scan finds in a node: a leaf's entries, or the children to visit in order.
enum Found {
    Leaf(Vec<(Vec<u8>, Val)>),
    Children(Vec<PageId>),
}

impl BTree {
    /// The entries of the first leaf (in key order) with a key after `bound`: those keys
    /// and their values, ascending. `None` when no key is after `bound`.
    pub(crate) fn leaf_after(&self, bound: Bound<&[u8]>) -> Result<Option<Entries>> {
        self.store.check_usable()?;
        let root = self.read_root();
        self.scan(*root, bound, true, 0, &mut 0)
    }

    /// The entries of the last leaf with a key before `bound`, ascending.
    pub(crate) fn leaf_before(&self, bound: Bound<&[u8]>) -> Result<Option<Entries>> {
        self.store.check_usable()?;
        let root = self.read_root();
        self.scan(*root, bound, false, 0, &mut 0)
    }

    fn scan(
        &self,
        id: PageId,
        bound: Bound<&[u8]>,
        forward: bool,
        depth: usize,
        visited: &mut usize,
    ) -> Result<Option<Entries>> {
        // In a sound tree only the first child tried at each level can come back empty, so a
        // scan visits at most about twice the depth; a crafted tree (children pointing back
        // up) must not make it walk an exponential number of paths.
        *visited += 1;
        if depth > MAX_DEPTH || *visited > 4 * MAX_DEPTH {
            return Err(Error::corrupt(
                id,
                "a scan found no end: the tree has a cycle or empty subtrees",
            ));
        }
        let found = self.with_node(id, |v| {
            let key = match bound {
                Bound::Included(k) | Bound::Excluded(k) => Some(k),
                Bound::Unbounded => None,
            };
            if v.is_leaf() {
                let range = match (key.map(|k| v.search(k)).transpose()?, bound, forward) {
                    (None, _, _) => 0..v.count(),
                    (Some(Ok(i)), Bound::Excluded(_), true) => i + 1..v.count(),
                    (Some(Ok(i) | Err(i)), _, true) => i..v.count(),
                    (Some(Ok(i)), Bound::Included(_), false) => 0..i + 1,
                    (Some(Ok(i) | Err(i)), _, false) => 0..i,
                };
                let mut out = Vec::with_capacity(range.len());
                for i in range {
                    out.push((v.key(i)?.to_vec(), v.value(i)?.to_owned()));
                }
                Ok(Found::Leaf(out))
            } else {
                let at = match key {
                    Some(k) => v.route(k)?,
                    None if forward => 0,
                    None => v.count(),
                };
                let ids: Result<Vec<PageId>> = if forward {
                    (at..=v.count()).map(|i| v.child(i)).collect()
                } else {
                    (0..=at).rev().map(|i| v.child(i)).collect()
                };
                Ok(Found::Children(ids?))
            }
        })?;
        match found {
            Found::Leaf(e) if e.is_empty() => Ok(None),
            Found::Leaf(e) => e
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Val::Inline(v) => v,
                        Val::Overflow { first, len } => self.store.read_overflow(first, len)?,
                    };
                    Ok((k, v))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Found::Children(ids) => {
                for child in ids {
                    if let Some(e) = self.scan(child, bound, forward, depth + 1, visited)? {
                        return Ok(Some(e));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The smallest entry.
    pub fn first(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .leaf_after(Bound::Unbounded)?
            .and_then(|e| e.into_iter().next()))
    }

    /// The largest entry.
    pub fn last(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .leaf_before(Bound::Unbounded)?
            .and_then(|e| e.into_iter().next_back()))
    }

    /// Whether the tree holds no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.first()?.is_none())
    }

    /// Entries with keys in `range`, ascending (or descending with `.rev()`). Bounds are
    /// anything that views as bytes: `tree.range(&b"a"[..]..&b"m"[..])`,
    /// `tree.range(key.to_vec()..)`, `tree.range((Bound::Excluded(k), Bound::Unbounded))`.
    pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(&self, range: R) -> Range<'_> {
        let own = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        self.range_of(own(range.start_bound()), own(range.end_bound()))
    }

    /// Every entry, ascending (or descending with `.rev()`).
    pub fn iter(&self) -> Range<'_> {
        self.range_of(Bound::Unbounded, Bound::Unbounded)
    }

    fn range_of(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Range<'_> {
        Range {
            tree: self,
            lo,
            hi,
            front: VecDeque::new(),
            back: VecDeque::new(),
            front_last: None,
            back_last: None,
            done: false,
        }
    }

    /// Entries whose keys start with `prefix`, ascending.
    pub fn prefix(&self, prefix: &[u8]) -> Range<'_> {
        let mut end = prefix.to_vec();
        // The first key after every key with this prefix: drop trailing 0xff bytes and add
        // one to the last byte; with nothing left, there is no upper bound.
        while end.last() == Some(&u8::MAX) {
            end.pop();
        }
        let hi = match end.last_mut() {
            Some(b) => {
                *b += 1;
                Bound::Excluded(end)
            }
            None => Bound::Unbounded,
        };
        self.range_of(Bound::Included(prefix.to_vec()), hi)
    }

    /// A cursor, not yet positioned.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            tree: self,
            batch: Vec::new(),
            at: 0,
            version: 0,
        }
    }
}

fn below_hi(hi: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match hi {
        Bound::Included(h) => k <= h.as_slice(),
        Bound::Excluded(h) => k < h.as_slice(),
        Bound::Unbounded => true,
    }
}

fn above_lo(lo: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match lo {
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
        Bound::Unbounded => true,
    }
}

/// Entries of a key range, from either end: an iterator of `Result<(key, value)>`.
///
/// It reads one leaf at a time (taking the tree's read lock for that leaf only).
pub struct Range<'t> {
    tree: &'t BTree,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front: VecDeque<(Vec<u8>, Vec<u8>)>,
    back: VecDeque<(Vec<u8>, Vec<u8>)>,
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Range<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range")
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .finish_non_exhaustive()
    }
}

impl Iterator for Range<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some((k, v)) = self.front.pop_front() {
                let before_back = self.back_last.as_ref().is_none_or(|b| k < *b);
                if !below_hi(&self.hi, &k) || !before_back {
                    self.done = true;
                    return None;
                }
                self.front_last = Some(k.clone());
                return Some(Ok((k, v)));
            }
            let bound = match &self.front_last {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => self.lo.as_ref().map(Vec::as_slice),
            };
            match self.tree.leaf_after(bound) {
                Ok(Some(e)) => self.front = e.into(),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some((k, v)) = self.back.pop_back() {
                let after_front = self.front_last.as_ref().is_none_or(|f| k > *f);
                if !above_lo(&self.lo, &k) || !after_front {
                    self.done = true;
                    return None;
                }
                self.back_last = Some(k.clone());
                return Some(Ok((k, v)));
            }
            let bound = match &self.back_last {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => self.hi.as_ref().map(Vec::as_slice),
            };
            match self.tree.leaf_before(bound) {
                Ok(Some(e)) => self.back = e.into(),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// A position in the tree that moves by key: [`seek`](Self::seek), [`next`](Self::next),
/// [`prev`](Self::prev), [`first`](Self::first), [`last`](Self::last). It keeps the leaf it
/// stands on and reads it again only when the tree changed or it steps off the leaf.
pub struct Cursor<'t> {
    tree: &'t BTree,
    batch: Vec<(Vec<u8>, Vec<u8>)>,
    at: usize,
    version: u64,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("key", &self.key())
            .finish_non_exhaustive()
    }
}

impl Cursor<'_> {
    fn load(
        &mut self,
        batch: Option<Vec<(Vec<u8>, Vec<u8>)>>,
        at_end: bool,
    ) -> Option<(&[u8], &[u8])> {
        self.batch = batch.unwrap_or_default();
        self.at = if at_end {
            self.batch.len().saturating_sub(1)
        } else {
            0
        };
        self.entry()
    }

    fn entry(&self) -> Option<(&[u8], &[u8])> {
        self.batch
            .get(self.at)
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    fn fresh(&mut self) -> bool {
        let now = self.tree.version.load(Ordering::Acquire);
        let same = now == self.version;
        self.version = now;
        same
    }

    /// The entry under the cursor.
    pub fn key(&self) -> Option<&[u8]> {
        self.entry().map(|(k, _)| k)
    }

    /// The value under the cursor.
    pub fn value(&self) -> Option<&[u8]> {
        self.entry().map(|(_, v)| v)
    }

    /// Moves to the first entry with a key `>= key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        self.fresh();
        let batch = self.tree.leaf_after(Bound::Included(key))?;
        Ok(self.load(batch, false))
    }

    /// Moves to the last entry with a key `<= key`.
    pub fn seek_for_prev(&mut self, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        self.fresh();
        let batch = self.tree.leaf_before(Bound::Included(key))?;
        Ok(self.load(batch, true))
    }

    /// Moves to the smallest entry.
    pub fn first(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.fresh();
        let batch = self.tree.leaf_after(Bound::Unbounded)?;
        Ok(self.load(batch, false))
    }

    /// Moves to the largest entry.
    pub fn last(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.fresh();
        let batch = self.tree.leaf_before(Bound::Unbounded)?;
        Ok(self.load(batch, true))
    }

    /// Moves to the next entry; `None` past the end (the cursor is then unpositioned).
    #[expect(
        clippy::should_implement_trait,
        reason = "a fallible step that lends its entry, not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        let Some(current) = self.key().map(<[u8]>::to_vec) else {
            return Ok(None);
        };
        if self.fresh() && self.at + 1 < self.batch.len() {
            self.at += 1;
            return Ok(self.entry());
        }
        let batch = self.tree.leaf_after(Bound::Excluded(&current))?;
        Ok(self.load(batch, false))
    }

    /// Moves to the previous entry; `None` before the start.
    pub fn prev(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        let Some(current) = self.key().map(<[u8]>::to_vec) else {
            return Ok(None);
        };
        if self.fresh() && self.at > 0 {
            self.at -= 1;
            return Ok(self.entry());
        }
        let batch = self.tree.leaf_before(Bound::Excluded(&current))?;
        Ok(self.load(batch, true))
    }
}

impl<'t> IntoIterator for &'t BTree {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    type IntoIter = Range<'t>;

    fn into_iter(self) -> Range<'t> {
        self.iter()
    }
}
