//! Reading in key order: a position (the branch path from the root and a slot in a leaf)
//! that reads cells in place and steps to the next leaf through its path, the `Range`
//! iterator (both ends) and the `Cursor`.
//!
//! A position is valid while the tree's version is the one it was taken at: every write
//! operation bumps the version under the tree's writer lock, so a reader that sees the
//! same version under the reader lock knows every page on its path is still what it read.
//! After a change the position is found again by a descent from the last key returned.

use std::ops::{Bound, ControlFlow};
use std::sync::atomic::Ordering;

use lightning_page::PageId;

use crate::node::{NodeView, ValRef};
use crate::tree::{BTree, MAX_DEPTH};
use crate::{Error, Result};

/// Which way a position moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Forward,
    Backward,
}

/// A place in the tree: the branches from the root with the child taken in each, the leaf,
/// and the slot of the next entry (forward) or one past it (backward).
#[derive(Debug)]
struct Pos {
    version: u64,
    path: Vec<(PageId, usize)>,
    leaf: PageId,
    slot: usize,
    valid: bool,
}

impl Default for Pos {
    fn default() -> Self {
        Pos {
            version: 0,
            path: Vec::new(),
            leaf: PageId::new(u64::MAX),
            slot: 0,
            valid: false,
        }
    }
}

/// Where in a leaf a bound puts the next entry: forward, the first slot at or after it;
/// backward, one past the last slot at or before it.
fn slot_for(v: &NodeView<'_>, bound: Bound<&[u8]>, dir: Dir) -> Result<usize> {
    Ok(match (bound, dir) {
        (Bound::Unbounded, Dir::Forward) => 0,
        (Bound::Unbounded, Dir::Backward) => v.count(),
        // At or after `k` forward, at or before it backward: the slot of `k` itself.
        (Bound::Included(k), Dir::Forward) | (Bound::Excluded(k), Dir::Backward) => {
            match v.search(k)? {
                Ok(i) | Err(i) => i,
            }
        }
        // Past `k` forward, through `k` backward: the slot after it.
        (Bound::Excluded(k), Dir::Forward) | (Bound::Included(k), Dir::Backward) => {
            match v.search(k)? {
                Ok(i) => i + 1,
                Err(i) => i,
            }
        }
    })
}

impl BTree {
    /// Places `pos` at `bound` going `dir`: a descent from the root. The caller holds the
    /// reader lock (`root`).
    fn seek_pos(&self, root: PageId, pos: &mut Pos, bound: Bound<&[u8]>, dir: Dir) -> Result<()> {
        pos.valid = false;
        pos.path.clear();
        pos.version = self.version.load(Ordering::Acquire);
        let mut id = root;
        for _ in 0..=MAX_DEPTH {
            enum Step {
                Down(usize, PageId),
                Leaf(usize),
            }
            let step = self.with_node(id, |v| {
                if v.is_leaf() {
                    return Ok(Step::Leaf(slot_for(&v, bound, dir)?));
                }
                let at = match (bound, dir) {
                    (Bound::Included(k) | Bound::Excluded(k), _) => v.route(k)?,
                    (Bound::Unbounded, Dir::Forward) => 0,
                    (Bound::Unbounded, Dir::Backward) => v.count(),
                };
                Ok(Step::Down(at, v.child(at)?))
            })?;
            match step {
                Step::Down(at, child) => {
                    pos.path.push((id, at));
                    id = child;
                }
                Step::Leaf(slot) => {
                    pos.leaf = id;
                    pos.slot = slot;
                    pos.valid = true;
                    return Ok(());
                }
            }
        }
        Err(Error::corrupt(
            id,
            "tree deeper than any valid tree (a cycle?)",
        ))
    }

    /// Moves `pos` to the next leaf going `dir` (its first slot forward, past its last
    /// backward) through the path, without a descent from the root. `false` past the end.
    fn step_leaf(&self, pos: &mut Pos, dir: Dir) -> Result<bool> {
        // In a sound tree only a root leaf is empty, so a step visits at most twice the
        // depth; a crafted tree must not make it walk without end.
        let mut visited = 0;
        loop {
            // Up to the deepest branch with a sibling in this direction.
            let next = loop {
                let Some((branch, at)) = pos.path.pop() else {
                    pos.valid = false;
                    return Ok(false);
                };
                let child = self.with_node(branch, |v| {
                    if v.is_leaf() {
                        return Err(Error::corrupt(branch, "a leaf on a branch path"));
                    }
                    let count = v.count();
                    let to = match dir {
                        Dir::Forward if at < count => Some(at + 1),
                        Dir::Backward if at > 0 && at <= count => Some(at - 1),
                        _ => None,
                    };
                    to.map(|i| v.child(i).map(|c| (i, c))).transpose()
                })?;
                if let Some((i, child)) = child {
                    pos.path.push((branch, i));
                    break child;
                }
            };
            // Down to the nearest leaf on that side.
            let mut id = next;
            loop {
                visited += 1;
                if visited > 4 * MAX_DEPTH || pos.path.len() > MAX_DEPTH {
                    return Err(Error::corrupt(
                        id,
                        "a scan found no end: the tree has a cycle or empty subtrees",
                    ));
                }
                let down = self.with_node(id, |v| {
                    if v.is_leaf() {
                        return Ok(Err(v.count()));
                    }
                    let at = match dir {
                        Dir::Forward => 0,
                        Dir::Backward => v.count(),
                    };
                    Ok(Ok((at, v.child(at)?)))
                })?;
                match down {
                    Ok((at, child)) => {
                        pos.path.push((id, at));
                        id = child;
                    }
                    Err(count) => {
                        pos.leaf = id;
                        pos.slot = match dir {
                            Dir::Forward => 0,
                            Dir::Backward => count,
                        };
                        if count > 0 {
                            return Ok(true);
                        }
                        break; // an empty leaf: try the next one
                    }
                }
            }
        }
    }

    /// The smallest entry.
    pub fn first(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.iter().next().transpose()
    }

    /// The largest entry.
    pub fn last(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.iter().next_back().transpose()
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
        RangeIn {
            tree: self,
            lo,
            hi,
            front: End::default(),
            back: End::default(),
            done: false,
        }
    }

    /// [`range`](Self::range) holding a handle to the tree instead of a borrow, for an
    /// iterator kept where no borrow of the tree lives long enough (the database's
    /// transactions hold their keyspace's tree by `Arc`).
    pub fn range_owned(
        self: &std::sync::Arc<Self>,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> OwnedRange {
        RangeIn {
            tree: std::sync::Arc::clone(self),
            lo,
            hi,
            front: End::default(),
            back: End::default(),
            done: false,
        }
    }

    /// Calls `f` on each entry with a key in `range`, ascending, with the key and value
    /// borrowed from their leaf (nothing is copied; a value in an overflow chain is read
    /// into a buffer first), until `f` returns [`ControlFlow::Break`]: returns its value,
    /// or `None` when the range ran out.
    ///
    /// The tree's reader lock is held for one leaf at a time, so `f` must not write to this
    /// tree (that would wait for itself), and writers run between leaves: each leaf is seen
    /// as of when the scan reaches it, as with [`range`](Self::range).
    ///
    /// ```
    /// # use std::{ops::ControlFlow, sync::Arc};
    /// # use lightning_btree::{BTree, Store};
    /// # use lightning_page::{PageFile, PageSize, vfs::MemVfs};
    /// # let file = PageFile::create(&MemVfs::new(), "t.ldb".as_ref(), PageSize::DEFAULT)?;
    /// # let tree = BTree::create(Arc::new(Store::open(Arc::new(file), 1 << 20)?))?;
    /// for k in [b"a", b"b", b"c", b"d"] {
    ///     tree.insert(k, b"value")?;
    /// }
    /// // The first two keys from "b" on, and their total value length.
    /// let mut total = 0;
    /// let mut seen = 0;
    /// tree.scan_with(&b"b"[..].., |_key, value| {
    ///     total += value.len();
    ///     seen += 1;
    ///     if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    /// })?;
    /// assert_eq!((seen, total), (2, 10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan_with<K: AsRef<[u8]>, B>(
        &self,
        range: impl std::ops::RangeBounds<K>,
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<B>,
    ) -> Result<Option<B>> {
        enum Stop<B> {
            End,
            Break(B),
            Overflow(PageId, u64),
            LeafEnd,
        }
        let hi = range.end_bound().map(|k| k.as_ref().to_vec());
        let mut pos = Pos::default();
        // The last key handed out (copied once per leaf, or for an overflow value), where
        // the scan starts again after a writer changed the tree.
        let mut last: Vec<u8> = Vec::new();
        let mut started = false;
        loop {
            self.store.check_usable()?;
            let root = self.read_root();
            if !pos.valid || pos.version != self.version.load(Ordering::Acquire) {
                let from = if started {
                    Bound::Excluded(last.as_slice())
                } else {
                    range.start_bound().map(AsRef::as_ref)
                };
                self.seek_pos(*root, &mut pos, from, Dir::Forward)?;
            }
            let stop = self.with_node(pos.leaf, |v| {
                if !v.is_leaf() {
                    return Err(Error::corrupt(pos.leaf, "a branch where a leaf belongs"));
                }
                let first_slot = pos.slot;
                while pos.slot < v.count() {
                    let k = v.key(pos.slot)?;
                    if !below_hi(&hi, k) {
                        return Ok(Stop::End);
                    }
                    let val = v.value(pos.slot)?;
                    pos.slot += 1;
                    match val {
                        ValRef::Inline(value) => {
                            if let ControlFlow::Break(b) = f(k, value) {
                                return Ok(Stop::Break(b));
                            }
                        }
                        ValRef::Overflow { first, len } => {
                            last.clear();
                            last.extend_from_slice(k);
                            return Ok(Stop::Overflow(first, len));
                        }
                    }
                }
                // Only a key handed out may be where the scan starts again (one the seek
                // passed may lie below the range).
                if pos.slot > first_slot {
                    last.clear();
                    last.extend_from_slice(v.key(pos.slot - 1)?);
                    started = true;
                }
                Ok(Stop::LeafEnd)
            })?;
            match stop {
                Stop::End => return Ok(None),
                Stop::Break(b) => return Ok(Some(b)),
                Stop::Overflow(first, len) => {
                    started = true;
                    let value = self.store.read_overflow(first, len)?;
                    drop(root);
                    if let ControlFlow::Break(b) = f(&last, &value) {
                        return Ok(Some(b));
                    }
                }
                Stop::LeafEnd => {
                    if !self.step_leaf(&mut pos, Dir::Forward)? {
                        return Ok(None);
                    }
                }
            }
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
            pos: Pos::default(),
            dir: Dir::Forward,
            key: Vec::new(),
            value: Vec::new(),
            spare: Vec::new(),
            on: false,
        }
    }

    /// The entry at `pos` going `dir`, read in place and copied into `key` and `value`,
    /// with `pos` moved past it; `false` past the end. Finds the position again from
    /// `from` (the last key returned, or the scan's start) when the tree changed since.
    fn advance(
        &self,
        pos: &mut Pos,
        dir: Dir,
        from: Bound<&[u8]>,
        accept: impl Fn(&[u8]) -> bool,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<bool> {
        self.store.check_usable()?;
        let root = self.read_root();
        if !pos.valid || pos.version != self.version.load(Ordering::Acquire) {
            self.seek_pos(*root, pos, from, dir)?;
        }
        loop {
            let found = self.with_node(pos.leaf, |v| {
                if !v.is_leaf() {
                    return Err(Error::corrupt(pos.leaf, "a branch where a leaf belongs"));
                }
                let slot = match dir {
                    Dir::Forward if pos.slot < v.count() => pos.slot,
                    Dir::Backward if pos.slot > 0 && pos.slot <= v.count() => pos.slot - 1,
                    _ => return Ok(None),
                };
                let k = v.key(slot)?;
                if !accept(k) {
                    return Ok(Some(None));
                }
                key.clear();
                key.extend_from_slice(k);
                // An inline value is copied here; an overflow value's chain is read after
                // the leaf is let go.
                let overflow = match v.value(slot)? {
                    ValRef::Inline(bytes) => {
                        value.clear();
                        value.extend_from_slice(bytes);
                        None
                    }
                    ValRef::Overflow { first, len } => Some((first, len)),
                };
                Ok(Some(Some((slot, overflow))))
            })?;
            match found {
                Some(Some((slot, overflow))) => {
                    pos.slot = match dir {
                        Dir::Forward => slot + 1,
                        Dir::Backward => slot,
                    };
                    if let Some((first, len)) = overflow {
                        *value = self.store.read_overflow(first, len)?;
                    }
                    return Ok(true);
                }
                Some(None) => {
                    pos.valid = false;
                    return Ok(false);
                }
                None => {
                    if !self.step_leaf(pos, dir)? {
                        return Ok(false);
                    }
                }
            }
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

/// One end of a [`Range`]: its position and the last key it returned.
#[derive(Debug, Default)]
struct End {
    pos: Pos,
    last: Vec<u8>,
    started: bool,
}

/// Entries of a key range, from either end: an iterator of `Result<(key, value)>`.
///
/// It reads each entry in place from its leaf (taking the tree's read lock for that step
/// only) and moves to the next leaf through the path it keeps, so a scan of `n` entries
/// copies `n` keys and values and descends from the root once, unless a writer changes the
/// tree meanwhile (then it finds its place again from the last key it returned).
pub struct RangeIn<T> {
    tree: T,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front: End,
    back: End,
    done: bool,
}

/// [`RangeIn`] borrowing its tree: what [`BTree::range`] returns.
pub type Range<'t> = RangeIn<&'t BTree>;

/// [`RangeIn`] holding its tree, for an iterator that must outlive any borrow of it
/// ([`BTree::range_owned`]).
pub type OwnedRange = RangeIn<std::sync::Arc<BTree>>;

impl<T> std::fmt::Debug for RangeIn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range")
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .finish_non_exhaustive()
    }
}

impl<T: std::ops::Deref<Target = BTree>> RangeIn<T> {
    fn step(&mut self, dir: Dir) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return None;
        }
        let (this, other) = match dir {
            Dir::Forward => (&mut self.front, &self.back),
            Dir::Backward => (&mut self.back, &self.front),
        };
        let End { pos, last, started } = this;
        let from = if *started {
            Bound::Excluded(last.as_slice())
        } else {
            match dir {
                Dir::Forward => self.lo.as_ref().map(Vec::as_slice),
                Dir::Backward => self.hi.as_ref().map(Vec::as_slice),
            }
        };
        let (lo, hi) = (&self.lo, &self.hi);
        let accept = |k: &[u8]| match dir {
            Dir::Forward => below_hi(hi, k) && (!other.started || k < other.last.as_slice()),
            Dir::Backward => above_lo(lo, k) && (!other.started || k > other.last.as_slice()),
        };
        let mut key = Vec::new();
        let mut value = Vec::new();
        let found = self
            .tree
            .advance(pos, dir, from, accept, &mut key, &mut value);
        match found {
            Ok(true) => {
                *started = true;
                last.clear();
                last.extend_from_slice(&key);
                Some(Ok((key, value)))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<T: std::ops::Deref<Target = BTree>> Iterator for RangeIn<T> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(Dir::Forward)
    }
}

impl<T: std::ops::Deref<Target = BTree>> DoubleEndedIterator for RangeIn<T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(Dir::Backward)
    }
}

/// A position in the tree that moves by key: [`seek`](Self::seek), [`next`](Self::next),
/// [`prev`](Self::prev), [`first`](Self::first), [`last`](Self::last). It keeps its path
/// and its place in the leaf, and hands out the entry it stands on as slices of its own
/// buffers: moving along a leaf allocates nothing.
pub struct Cursor<'t> {
    tree: &'t BTree,
    pos: Pos,
    /// The direction `pos` was last moved in.
    dir: Dir,
    key: Vec<u8>,
    value: Vec<u8>,
    /// The key stepped from, kept as a spare buffer (a step allocates nothing).
    spare: Vec<u8>,
    on: bool,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("key", &self.key())
            .finish_non_exhaustive()
    }
}

impl Cursor<'_> {
    fn entry(&self) -> Option<(&[u8], &[u8])> {
        self.on
            .then_some((self.key.as_slice(), self.value.as_slice()))
    }

    /// The entry under the cursor.
    pub fn key(&self) -> Option<&[u8]> {
        self.entry().map(|(k, _)| k)
    }

    /// The value under the cursor.
    pub fn value(&self) -> Option<&[u8]> {
        self.entry().map(|(_, v)| v)
    }

    /// Moves from `from` going `dir`, fresh (a new descent).
    fn go(&mut self, from: Bound<&[u8]>, dir: Dir, reseek: bool) -> Result<Option<(&[u8], &[u8])>> {
        if reseek {
            self.pos.valid = false;
        }
        self.dir = dir;
        let found = self.tree.advance(
            &mut self.pos,
            dir,
            from,
            |_| true,
            &mut self.key,
            &mut self.value,
        );
        match found {
            Ok(on) => {
                self.on = on;
                Ok(self.entry())
            }
            Err(e) => {
                self.on = false;
                Err(e)
            }
        }
    }

    /// Moves to the first entry with a key `>= key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        self.go(Bound::Included(key), Dir::Forward, true)
    }

    /// Moves to the last entry with a key `<= key`.
    pub fn seek_for_prev(&mut self, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        self.go(Bound::Included(key), Dir::Backward, true)
    }

    /// Moves to the smallest entry.
    pub fn first(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.go(Bound::Unbounded, Dir::Forward, true)
    }

    /// Moves to the largest entry.
    pub fn last(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.go(Bound::Unbounded, Dir::Backward, true)
    }

    /// Moves one entry in `dir` from the current one.
    fn step(&mut self, dir: Dir) -> Result<Option<(&[u8], &[u8])>> {
        if !self.on {
            return Ok(None);
        }
        // Turning around: the position is past the current entry on the other side.
        let reseek = dir != self.dir;
        // The current key moves to `current`; the next entry's key goes into the spare.
        let mut current = std::mem::take(&mut self.spare);
        std::mem::swap(&mut current, &mut self.key);
        let moved = self
            .go(Bound::Excluded(&current), dir, reseek)
            .map(|e| e.is_some());
        self.spare = current;
        moved?;
        Ok(self.entry())
    }

    /// Moves to the next entry; `None` past the end (the cursor is then unpositioned).
    #[expect(
        clippy::should_implement_trait,
        reason = "a fallible step that lends its entry, not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.step(Dir::Forward)
    }

    /// Moves to the previous entry; `None` before the start.
    pub fn prev(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.step(Dir::Backward)
    }
}

impl<'t> IntoIterator for &'t BTree {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    type IntoIter = Range<'t>;

    fn into_iter(self) -> Range<'t> {
        self.iter()
    }
}
