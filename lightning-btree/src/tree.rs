//! The tree: descent, insert with splits, delete with merge or redistribution, copy-on-write
//! of pages from older generations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lightning_page::{Lsn, PageId};

use crate::node::{
    HEAD, NO_PAGE, Node, NodeEdit, NodeView, SLOT, Val, ValRef, branch_cell, leaf_cell, separator,
};
use crate::store::{Checkpoint, Op, Store};
use crate::{Error, Result};

mod repack;
pub use repack::{REPACK_FILL, RepackStep};

/// Deepest tree a descent follows before calling the structure corrupt (a cycle).
pub(crate) const MAX_DEPTH: usize = 64;
/// Largest value stored (in an overflow chain).
pub const MAX_VALUE_LEN: u64 = 1 << 32;

/// Sizes derived from the page size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Payload bytes of a node.
    pub(crate) capacity: usize,
    /// Largest cell (slot included): a quarter of the space after the header.
    pub(crate) max_cell: usize,
    /// Longest key.
    pub(crate) max_key: usize,
    /// Nodes other than the root hold at least this many payload bytes.
    pub(crate) min_fill: usize,
}

impl Limits {
    pub(crate) fn new(capacity: usize) -> Self {
        let max_cell = (capacity - HEAD) / 4;
        Limits {
            capacity,
            max_cell,
            // A leaf cell with an overflow reference: slot 6, key length 2, flag 1, 16.
            max_key: max_cell - SLOT - 19,
            min_fill: capacity / 4,
        }
    }
}

/// What a change did to a node: where it is now (a copy, if it was of an older
/// generation), the right half if it split, and whether it fell below the fill bound.
#[derive(Debug)]
struct Change {
    page: PageId,
    split: Option<(Vec<u8>, PageId)>,
    underflow: bool,
}

/// An in-place removal's outcome.
enum Removed {
    Done(Change),
    Absent,
}

impl Change {
    fn none(page: PageId) -> Self {
        Change {
            page,
            split: None,
            underflow: false,
        }
    }
}

/// A B+tree of byte-string keys and values over the pages of a [`Store`].
///
/// Any number of readers run together; a writer excludes them for the duration of one
/// operation (a tree-level lock: `docs/adr/008-btree-structure-and-concurrency.md` has the measurements
/// and the path to latch coupling). Iterators and cursors take the lock once per leaf, so
/// long scans and a writer interleave; a scan sees each leaf as of when it reached it.
pub struct BTree {
    pub(crate) store: Arc<Store>,
    pub(crate) root: RwLock<PageId>,
    pub(crate) version: AtomicU64,
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for BTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BTree")
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

/// Sets child `i` (`0..=entries.len()`) of decoded branch `page` to `id`; a child past
/// the branch's entries is corruption (a child index from an earlier read of a page that
/// reads differently now).
pub(crate) fn set_child(
    page: PageId,
    first: &mut PageId,
    entries: &mut [(Vec<u8>, PageId)],
    i: usize,
    id: PageId,
) -> Result<()> {
    let child = match i.checked_sub(1) {
        None => first,
        Some(e) => &mut entries.get_mut(e).ok_or_else(|| no_child(page, i))?.1,
    };
    *child = id;
    Ok(())
}

/// Child `i` (`0..=entries.len()`) of decoded branch `page`.
pub(crate) fn child_of(
    page: PageId,
    first: PageId,
    entries: &[(Vec<u8>, PageId)],
    i: usize,
) -> Result<PageId> {
    match i.checked_sub(1) {
        None => Ok(first),
        Some(e) => entries
            .get(e)
            .map(|(_, c)| *c)
            .ok_or_else(|| no_child(page, i)),
    }
}

fn no_child(page: PageId, i: usize) -> Error {
    Error::corrupt(page, format!("child {i} past the branch's entries"))
}

/// Where an insert's descent is.
#[derive(Debug, Clone, Copy)]
struct Descent {
    /// Levels above.
    depth: usize,
    /// The node is known to be a leaf (a child of a level-1 branch).
    leaf: bool,
    /// The node is on the tree's rightmost path (every step took the last child).
    rightmost: bool,
}

/// Bytes a leaf cell takes, its slot included (what it adds to `Node::size`).
fn cell_size(key: &[u8], val: ValRef<'_>) -> usize {
    SLOT + 2 + key.len() + val.cell_len()
}

/// Splits an overfull node in two of about equal bytes; returns the left half, the key
/// that separates them in the parent, and the right half. The split point maximizes the
/// smaller half, so both stay above the fill bound even with keys at the size limit.
pub(crate) fn split(node: Node) -> (Node, Vec<u8>, Node) {
    split_with(node, None)
}

/// [`split`], or — with `append = Some(min)`, for a node that overflowed because a key was
/// added at the end of the tree's rightmost path (ascending inserts) — a split that leaves
/// the right half as small as the fill bound allows (the shortest tail of at least `min`
/// bytes), so that nodes filled in key order end up about three quarters full instead of
/// half. It falls back to the even split when no such tail leaves a left half of `min` too.
pub(crate) fn split_with(node: Node, append: Option<usize>) -> (Node, Vec<u8>, Node) {
    match node {
        Node::Leaf(mut e) => {
            let sizes: Vec<usize> = e.iter().map(|(k, v)| cell_size(k, v.as_ref())).collect();
            let total: usize = sizes.iter().sum();
            let mut best = (0, 1.min(e.len()));
            let mut run = 0;
            // Split point `i` leaves entries `..i` on the left: the sizes up to `i - 1`.
            for (i, before) in (1..e.len()).zip(&sizes) {
                run += before;
                let smaller = run.min(total - run);
                if smaller > best.0 {
                    best = (smaller, i);
                }
            }
            if let Some(min) = append {
                let mut tail = 0;
                for (i, size) in sizes.iter().enumerate().skip(1).rev() {
                    tail += size;
                    if tail >= min {
                        if total - tail >= min {
                            best = (tail, i);
                        }
                        break;
                    }
                }
            }
            let right = e.split_off(best.1);
            let sep = match (e.last(), right.first()) {
                (Some((l, _)), Some((r, _))) => separator(l, r),
                (_, Some((r, _))) => r.clone(),
                _ => Vec::new(),
            };
            (Node::Leaf(e), sep, Node::Leaf(right))
        }
        Node::Branch {
            level,
            first,
            mut entries,
        } => {
            // Entry `i` moves up; entries before it stay left, entries after it go right.
            let sizes: Vec<usize> = entries
                .iter()
                .map(|(k, _)| SLOT + 2 + k.len() + 8)
                .collect();
            let total: usize = sizes.iter().sum();
            let mut best = (0, 0);
            let mut run = 0;
            for (i, s) in sizes.iter().enumerate() {
                let smaller = run.min(total - run - s);
                if i == 0 || smaller > best.0 {
                    best = (smaller, i);
                }
                run += s;
            }
            if let Some(min) = append {
                // Entry `i` moves up: the right half holds the entries after it.
                let mut tail = 0;
                for (i, size) in sizes.iter().enumerate().skip(1).rev() {
                    if tail >= min {
                        if total - tail - size >= min {
                            best = (tail, i);
                        }
                        break;
                    }
                    tail += size;
                }
            }
            let mut right = entries.split_off(best.1.min(entries.len()));
            let (sep, right_first) = if right.is_empty() {
                (Vec::new(), first)
            } else {
                right.remove(0)
            };
            (
                Node::Branch {
                    level,
                    first,
                    entries,
                },
                sep,
                Node::Branch {
                    level,
                    first: right_first,
                    entries: right,
                },
            )
        }
    }
}

impl BTree {
    /// Creates an empty tree (one empty leaf) in `store`.
    pub fn create(store: Arc<Store>) -> Result<Self> {
        let limits = Limits::new(store.capacity());
        let tree = BTree {
            store,
            root: RwLock::new(PageId::new(NO_PAGE)),
            version: AtomicU64::new(0),
            limits,
        };
        {
            let _writer = tree.store.writer()?;
            let mut root = tree.write_root();
            let mut op = Op::default();
            let result = tree.store.allocate(&mut op).and_then(|id| {
                tree.write(id, &Node::Leaf(Vec::new()))?;
                Ok(id)
            });
            tree.store.end(op, result.map(|id| *root = id))?;
        }
        Ok(tree)
    }

    /// Opens the tree whose root is `root` (for example the root a checkpoint recorded).
    pub fn open(store: Arc<Store>, root: PageId) -> Result<Self> {
        let limits = Limits::new(store.capacity());
        let tree = BTree {
            store,
            root: RwLock::new(root),
            version: AtomicU64::new(0),
            limits,
        };
        tree.with_node(root, |_| Ok(()))?;
        Ok(tree)
    }

    /// The root page.
    pub fn root(&self) -> PageId {
        *self.read_root()
    }

    /// The store the tree lives in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The longest key this tree takes (about a quarter of a page).
    pub fn max_key_len(&self) -> usize {
        self.limits.max_key
    }

    pub(crate) fn read_root(&self) -> RwLockReadGuard<'_, PageId> {
        self.root.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_root(&self) -> RwLockWriteGuard<'_, PageId> {
        self.root.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on node `id` read in place.
    pub(crate) fn with_node<R>(
        &self,
        id: PageId,
        f: impl FnOnce(NodeView<'_>) -> Result<R>,
    ) -> Result<R> {
        let page = self.store.pool().pin(id)?;
        let view = NodeView::new(id, page.page_type(), page.payload())?;
        f(view)
    }

    fn load(&self, id: PageId) -> Result<Node> {
        self.with_node(id, crate::node::decode)
    }

    pub(crate) fn write(&self, id: PageId, node: &Node) -> Result<()> {
        self.fits(id, node)?;
        let mut page = self.store.pool().create(id, node.page_type())?;
        node.encode(page.page_mut())
    }

    /// Writes `node` over the node at `id` if that page belongs to the current generation
    /// (in place, in its cached frame), else to a new page — copy-on-write: `id` goes back
    /// to the allocator, reusable once no retained checkpoint image holds it. Returns where
    /// the node is now.
    /// A node above a page can only come from a crafted page (a cell above the limit).
    fn fits(&self, id: PageId, node: &Node) -> Result<()> {
        if node.size() > self.limits.capacity {
            return Err(Error::corrupt(
                id,
                "holds a cell above the size limit: the node cannot be split into pages",
            ));
        }
        Ok(())
    }

    fn put(&self, op: &mut Op, id: PageId, node: &Node) -> Result<PageId> {
        self.fits(id, node)?;
        if self.store.is_fresh(id) {
            let mut page = self.store.pool().pin_mut(id)?;
            op.save(id, &page);
            if page.page_type() == node.page_type() {
                node.encode(page.page_mut())?;
                return Ok(id);
            }
            drop(page);
            self.write(id, node)?;
            return Ok(id);
        }
        // Write the copy before the original is freed (when the operation succeeds).
        let copy = self.store.allocate(op)?;
        self.write(copy, node)?;
        op.free(id);
        Ok(copy)
    }

    /// Writes `node` to `id` or its copy, splitting it when it exceeds a page.
    fn store_node(&self, op: &mut Op, id: PageId, node: Node) -> Result<Change> {
        self.store_node_with(op, id, node, false)
    }

    /// [`store_node`](Self::store_node); `append` when the node grew at the end of the
    /// tree's rightmost path (its split then keeps the left half full, see [`split_with`]).
    fn store_node_with(&self, op: &mut Op, id: PageId, node: Node, append: bool) -> Result<Change> {
        let size = node.size();
        if size <= self.limits.capacity {
            let page = self.put(op, id, &node)?;
            return Ok(Change {
                page,
                split: None,
                underflow: size < self.limits.min_fill,
            });
        }
        let (left, sep, right) = split_with(node, append.then_some(self.limits.min_fill));
        let page = self.put(op, id, &left)?;
        let other = self.store.allocate(op)?;
        self.write(other, &right)?;
        Ok(Change {
            page,
            split: Some((sep, other)),
            underflow: false,
        })
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Calls `f` on the value stored under `key` without copying it (an inline value is
    /// borrowed from its pinned page; a value in an overflow chain is read into a buffer
    /// first) and returns what `f` returns; `None` when the key is absent.
    ///
    /// `f` runs while the tree's reader lock is held: it must not write to this tree (that
    /// would wait for itself), and a long `f` delays writers.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lightning_btree::{BTree, Store};
    /// # use lightning_page::{PageFile, PageSize, vfs::MemVfs};
    /// # let file = PageFile::create(&MemVfs::new(), "t.ldb".as_ref(), PageSize::DEFAULT)?;
    /// # let tree = BTree::create(Arc::new(Store::open(Arc::new(file), 1 << 20)?))?;
    /// tree.insert(b"k", b"a value")?;
    /// assert_eq!(tree.get_with(b"k", |v| v.len())?, Some(7));
    /// assert_eq!(tree.get_with(b"absent", |v| v.len())?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.store.check_usable()?;
        let root = self.read_root();
        let mut id = *root;
        let mut f = Some(f);
        for _ in 0..MAX_DEPTH {
            enum Step<R> {
                Down(PageId),
                Done(Option<R>),
                Overflow(PageId, u64),
            }
            let step = self.with_node(id, |v| {
                if v.is_leaf() {
                    Ok(match v.search(key)? {
                        Ok(i) => match v.value(i)? {
                            ValRef::Inline(bytes) => Step::Done(f.take().map(|f| f(bytes))),
                            ValRef::Overflow { first, len } => Step::Overflow(first, len),
                        },
                        Err(_) => Step::Done(None),
                    })
                } else {
                    Ok(Step::Down(v.child(v.route(key)?)?))
                }
            })?;
            match step {
                Step::Down(child) => id = child,
                Step::Done(out) => return Ok(out),
                Step::Overflow(first, len) => {
                    let value = self.store.read_overflow(first, len)?;
                    return Ok(f.take().map(|f| f(&value)));
                }
            }
        }
        Err(Error::corrupt(
            id,
            "tree deeper than any valid tree (a cycle?)",
        ))
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > self.limits.max_key {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: self.limits.max_key,
            });
        }
        Ok(())
    }

    /// Inserts `value` under `key`, replacing any value there.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        if value.len() as u64 > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let _writer = self.store.writer()?;
        let mut root = self.write_root();
        self.version.fetch_add(1, Ordering::Release);
        let mut op = Op::default();
        let result = self.insert_op(&mut op, *root, key, value);
        self.store.end(op, result.map(|new| *root = new))
    }

    fn insert_op(&self, op: &mut Op, root: PageId, key: &[u8], value: &[u8]) -> Result<PageId> {
        let val = if cell_size(key, ValRef::Inline(value)) <= self.limits.max_cell {
            ValRef::Inline(value)
        } else {
            ValRef::Overflow {
                first: self.store.write_overflow(op, value)?,
                len: value.len() as u64,
            }
        };
        // A replaced overflow value's pages are freed (when the operation succeeds) where
        // the leaf is changed, read before the change.
        let at = Descent {
            depth: 0,
            leaf: false,
            rightmost: true,
        };
        let change = self.insert_rec(op, root, key, val, at)?;
        self.finish(op, change)
    }

    fn insert_rec(
        &self,
        op: &mut Op,
        id: PageId,
        key: &[u8],
        val: ValRef<'_>,
        at: Descent,
    ) -> Result<Change> {
        let Descent {
            depth,
            leaf,
            rightmost,
        } = at;
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                id,
                "tree deeper than any valid tree (a cycle?)",
            ));
        }
        // A child of a level-1 branch is a leaf: no need to look before changing it.
        let routed = if leaf {
            None
        } else {
            self.route_edge(id, key)?
        };
        let Some((idx, child, child_leaf, last)) = routed else {
            if let Some(done) = self.insert_in_place(op, id, key, val)? {
                return Ok(done);
            }
            let Node::Leaf(mut e) = self.load(id)? else {
                return Err(Error::corrupt(id, "a branch where a leaf belongs"));
            };
            let mut appended = false;
            let old = match e.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                // INVARIANT: `binary_search_by` returns `Ok(i)` only for an `i < e.len()`.
                Ok(i) => Some(std::mem::replace(&mut e[i].1, val.to_owned())),
                Err(i) => {
                    appended = i == e.len();
                    e.insert(i, (key.to_vec(), val.to_owned()));
                    None
                }
            };
            if let Some(Val::Overflow { first, len }) = &old {
                self.store.free_overflow(op, *first, *len)?;
            }
            return self.store_node_with(op, id, Node::Leaf(e), rightmost && appended);
        };
        let rightmost = rightmost && last;
        let below = Descent {
            depth: depth + 1,
            leaf: child_leaf,
            rightmost,
        };
        let c = self.insert_rec(op, child, key, val, below)?;
        // A replaced value can be shorter: the child may underflow on an insert too.
        self.child_changed_with(op, id, idx, child, c, rightmost)
    }

    /// The common insert without decoding the leaf: a leaf of the current generation with
    /// room for the cell gets it in place (a replaced value's cell goes first). `None` when
    /// the general path must run (a copy, a split).
    fn insert_in_place(
        &self,
        op: &mut Op,
        id: PageId,
        key: &[u8],
        val: ValRef<'_>,
    ) -> Result<Option<Change>> {
        if !self.store.is_fresh(id) {
            return Ok(None);
        }
        let cell = leaf_cell(key, val);
        let mut page = self.store.pool().pin_mut(id)?;
        let view = NodeView::new(id, page.page_type(), page.payload())?;
        if !view.is_leaf() {
            return Err(Error::corrupt(id, "a branch where a leaf belongs"));
        }
        // A replaced value: its overflow chain (if any) and its cell's bytes.
        let (slot, old) = match view.search(key)? {
            Ok(i) => (i, Some((view.value(i)?.overflow(), view.leaf_cell_len(i)?))),
            Err(i) => (i, None),
        };
        let freed = old.as_ref().map_or(0, |(_, len)| len + SLOT);
        let new_len = view.size() - freed + SLOT + cell.len();
        if new_len > self.limits.capacity {
            return Ok(None);
        }
        if let Some((Some((first, len)), _)) = &old {
            // Read (and fail) before anything changes.
            self.store.free_overflow(op, *first, *len)?;
        }
        if new_len < self.limits.min_fill {
            // A rebalance follows, which can fail: keep the leaf to put back. Otherwise
            // nothing after this edit can fail, and the edit needs no undo.
            op.save(id, &page);
        }
        let len = match old {
            // A value of the same cell size is written over the old one.
            Some((_, cell_len)) if cell_len == cell.len() => {
                NodeEdit::new(page.page_mut()).overwrite(slot, &cell)
            }
            Some((_, cell_len)) => {
                NodeEdit::new(page.page_mut()).remove(slot, cell_len);
                NodeEdit::new(page.page_mut()).insert(slot, key, &cell)
            }
            None => NodeEdit::new(page.page_mut()).insert(slot, key, &cell),
        };
        Ok(Some(Change {
            page: id,
            split: None,
            underflow: len < self.limits.min_fill,
        }))
    }

    /// The common removal without decoding the leaf: in place in a leaf of the current
    /// generation. `Some(Removed::Absent)` when the key is not there.
    fn remove_in_place(&self, op: &mut Op, id: PageId, key: &[u8]) -> Result<Option<Removed>> {
        if !self.store.is_fresh(id) {
            return Ok(None);
        }
        let mut page = self.store.pool().pin_mut(id)?;
        let view = NodeView::new(id, page.page_type(), page.payload())?;
        if !view.is_leaf() {
            return Err(Error::corrupt(id, "a branch where a leaf belongs"));
        }
        let Ok(i) = view.search(key)? else {
            return Ok(Some(Removed::Absent));
        };
        let overflow = view.value(i)?.overflow();
        let cell_len = view.leaf_cell_len(i)?;
        if let Some((first, len)) = overflow {
            // Read (and fail) before anything changes.
            self.store.free_overflow(op, first, len)?;
        }
        if view.size() - cell_len - SLOT < self.limits.min_fill {
            // A rebalance follows, which can fail: keep the leaf to put back. Otherwise
            // nothing after this edit can fail, and the edit needs no undo.
            op.save(id, &page);
        }
        let len = NodeEdit::new(page.page_mut()).remove(i, cell_len);
        let change = Change {
            page: id,
            split: None,
            underflow: len < self.limits.min_fill,
        };
        Ok(Some(Removed::Done(change)))
    }

    /// For a branch, the child whose range holds `key` (index and page); `None` for a leaf.
    /// Reads the node in place, without decoding it.
    /// Also says whether the child is a leaf (the branch is at level 1).
    /// [`route`](Self::route), and whether the child is the branch's last.
    fn route_edge(&self, id: PageId, key: &[u8]) -> Result<Option<(usize, PageId, bool, bool)>> {
        self.with_node(id, |v| {
            if v.is_leaf() {
                return Ok(None);
            }
            let i = v.route(key)?;
            Ok(Some((i, v.child(i)?, v.level() == 1, i == v.count())))
        })
    }

    fn route(&self, id: PageId, key: &[u8]) -> Result<Option<(usize, PageId, bool)>> {
        self.with_node(id, |v| {
            if v.is_leaf() {
                return Ok(None);
            }
            let i = v.route(key)?;
            Ok(Some((i, v.child(i)?, v.level() == 1)))
        })
    }

    /// Installs the root after a change: a new root above a split, and a root branch with
    /// a single child replaced by that child.
    fn finish(&self, op: &mut Op, change: Change) -> Result<PageId> {
        if change.split.is_none() && !change.underflow {
            // The root is the same node (maybe in a new page): it lost no separator (only a
            // merge below the fill bound does that), and nothing here needs to read it.
            return Ok(change.page);
        }
        let mut root = change.page;
        if let Some((sep, right)) = change.split {
            let level = self.with_node(change.page, |v| Ok(v.level()))?;
            let id = self.store.allocate(op)?;
            self.write(
                id,
                &Node::Branch {
                    level: level.saturating_add(1),
                    first: change.page,
                    entries: vec![(sep, right)],
                },
            )?;
            root = id;
        }
        loop {
            let only = self.with_node(root, |v| {
                (!v.is_leaf() && v.count() == 0)
                    .then(|| v.child(0))
                    .transpose()
            })?;
            let Some(child) = only else {
                return Ok(root);
            };
            op.free(root);
            root = child;
        }
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        let _writer = self.store.writer()?;
        let mut root = self.write_root();
        self.version.fetch_add(1, Ordering::Release);
        let mut op = Op::default();
        let mut found = false;
        let result = self.remove_op(&mut op, *root, key).map(|new| {
            if let Some(new) = new {
                *root = new;
                found = true;
            }
        });
        self.store.end(op, result)?;
        Ok(found)
    }

    /// The new root after removing `key`; `None` when it is not there.
    fn remove_op(&self, op: &mut Op, root: PageId, key: &[u8]) -> Result<Option<PageId>> {
        let Some(change) = self.remove_rec(op, root, key, 0, false)? else {
            return Ok(None);
        };
        self.finish(op, change).map(Some)
    }

    fn remove_rec(
        &self,
        op: &mut Op,
        id: PageId,
        key: &[u8],
        depth: usize,
        leaf: bool,
    ) -> Result<Option<Change>> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                id,
                "tree deeper than any valid tree (a cycle?)",
            ));
        }
        let routed = if leaf { None } else { self.route(id, key)? };
        let Some((idx, child, child_leaf)) = routed else {
            match self.remove_in_place(op, id, key)? {
                Some(Removed::Done(change)) => return Ok(Some(change)),
                Some(Removed::Absent) => return Ok(None),
                None => {}
            }
            let Node::Leaf(mut e) = self.load(id)? else {
                return Err(Error::corrupt(id, "a branch where a leaf belongs"));
            };
            let Ok(i) = e.binary_search_by(|(k, _)| k.as_slice().cmp(key)) else {
                return Ok(None);
            };
            let (_, old) = e.remove(i);
            if let Val::Overflow { first, len } = old {
                self.store.free_overflow(op, first, len)?;
            }
            return Ok(Some(self.store_node(op, id, Node::Leaf(e))?));
        };
        let Some(c) = self.remove_rec(op, child, key, depth + 1, child_leaf)? else {
            return Ok(None);
        };
        Ok(Some(self.child_changed(op, id, idx, child, c)?))
    }

    /// Branch `id` after its child `idx` (page `child`) changed as `c` says: the child's new
    /// page, the right half of a split, a rebalance if it fell below the fill bound.
    fn child_changed(
        &self,
        op: &mut Op,
        id: PageId,
        idx: usize,
        child: PageId,
        c: Change,
    ) -> Result<Change> {
        self.child_changed_with(op, id, idx, child, c, false)
    }

    /// [`child_changed`](Self::child_changed); `append` when child `idx` is the last on the
    /// tree's rightmost path (a split of it adds a separator at the branch's end).
    fn child_changed_with(
        &self,
        op: &mut Op,
        id: PageId,
        idx: usize,
        child: PageId,
        c: Change,
        append: bool,
    ) -> Result<Change> {
        if c.page == child && c.split.is_none() && !c.underflow {
            return Ok(Change::none(id));
        }
        if c.split.is_none() && !c.underflow {
            // Only the child's page changed (it was copied): rewrite that one pointer.
            return self.repoint(op, id, idx, c.page);
        }
        if !c.underflow
            && let Some((sep, right)) = &c.split
            && let Some(done) = self.split_in_place(op, id, idx, c.page, sep, *right)?
        {
            return Ok(done);
        }
        let Node::Branch {
            level,
            mut first,
            mut entries,
        } = self.load(id)?
        else {
            return Err(Error::corrupt(id, "changed from branch to leaf"));
        };
        set_child(id, &mut first, &mut entries, idx, c.page)?;
        if let Some((sep, right)) = c.split {
            entries.insert(idx, (sep, right));
        }
        if c.underflow {
            self.rebalance(op, id, &mut first, &mut entries, idx)?;
        }
        self.store_node_with(
            op,
            id,
            Node::Branch {
                level,
                first,
                entries,
            },
            append && !c.underflow,
        )
    }

    /// The common step above a split without decoding the branch: in a branch of the current
    /// generation with room for the new separator, child `idx` is set to `left` (the split
    /// child, maybe copied) and the cell (`sep`, `right`) goes in after it. `None` when the
    /// general path must run (a copy of the branch, or a split of it).
    fn split_in_place(
        &self,
        op: &mut Op,
        id: PageId,
        idx: usize,
        left: PageId,
        sep: &[u8],
        right: PageId,
    ) -> Result<Option<Change>> {
        if !self.store.is_fresh(id) {
            return Ok(None);
        }
        let cell = branch_cell(sep, right);
        let mut page = self.store.pool().pin_mut(id)?;
        let view = NodeView::new(id, page.page_type(), page.payload())?;
        if view.is_leaf() {
            return Err(Error::corrupt(id, "changed from branch to leaf"));
        }
        let new_len = view.size() + SLOT + cell.len();
        if new_len > self.limits.capacity || idx > view.count() {
            return Ok(None);
        }
        let at = view.child_offset(idx)?;
        if new_len < self.limits.min_fill {
            // Below the fill bound (a small root, say): the caller goes on to steps that
            // can fail, so keep the branch to put back.
            op.save(id, &page);
        }
        // INVARIANT: `at + 8 <= payload.len() <= body.len()`: `child_offset` checked the first
        // against this page's payload, which is a prefix of its body.
        page.page_mut().body_mut()[at..at + 8].copy_from_slice(&left.get().to_le_bytes());
        let len = NodeEdit::new(page.page_mut()).insert(idx, sep, &cell);
        Ok(Some(Change {
            page: id,
            split: None,
            underflow: len < self.limits.min_fill,
        }))
    }

    /// Branch `id` with child pointer `idx` set to `to`, nothing else changed: in place if
    /// the branch belongs to the current generation, else in a byte copy of it (no decode).
    /// Unless the branch is below the fill bound, nothing after this step in an operation
    /// can fail (the levels above see no change, or a pointer change like this one), so an
    /// in-place edit needs no undo copy.
    fn repoint(&self, op: &mut Op, id: PageId, idx: usize, to: PageId) -> Result<Change> {
        let target = if self.store.is_fresh(id) {
            id
        } else {
            self.store.allocate(op)?
        };
        let (page_type, copy) = if target == id {
            (None, None)
        } else {
            let p = self.store.pool().pin(id)?;
            (Some(p.page_type()), Some(p.payload().to_vec()))
        };
        let mut page = match page_type {
            Some(t) => {
                let mut page = self.store.pool().create(target, t)?;
                page.page_mut()
                    .set_payload(copy.as_deref().unwrap_or_default())?;
                page
            }
            None => self.store.pool().pin_mut(id)?,
        };
        let view = NodeView::new(id, page.page_type(), page.payload())?;
        if view.is_leaf() {
            return Err(Error::corrupt(id, "changed from branch to leaf"));
        }
        let at = view.child_offset(idx)?;
        let underflow = view.size() < self.limits.min_fill;
        if target == id && underflow {
            // Below the fill bound (a small root, say): the caller goes on to steps that
            // can fail, so keep the branch to put back.
            op.save(id, &page);
        }
        // INVARIANT: `at + 8 <= payload.len() <= body.len()`: `child_offset` checked the first
        // against this page's payload, which is a prefix of its body.
        page.page_mut().body_mut()[at..at + 8].copy_from_slice(&to.get().to_le_bytes());
        if target != id {
            op.free(id);
        }
        Ok(Change {
            page: target,
            split: None,
            underflow,
        })
    }

    /// Child `idx` fell below the fill bound: merge it with a neighbour if both fit in one
    /// page, else move entries over from the neighbour so both are about equally full.
    fn rebalance(
        &self,
        op: &mut Op,
        id: PageId,
        first: &mut PageId,
        entries: &mut Vec<(Vec<u8>, PageId)>,
        idx: usize,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (l, r) = if idx > 0 { (idx - 1, idx) } else { (0, 1) };
        let (lid, rid) = (
            child_of(id, *first, entries, l)?,
            child_of(id, *first, entries, r)?,
        );
        let sep = entries.get(r - 1).ok_or_else(|| no_child(id, r))?.0.clone();
        let combined = match (self.load(lid)?, self.load(rid)?) {
            (Node::Leaf(mut a), Node::Leaf(b)) => {
                a.extend(b);
                Node::Leaf(a)
            }
            (
                Node::Branch {
                    level,
                    first: f1,
                    entries: mut e1,
                },
                Node::Branch {
                    level: level2,
                    first: f2,
                    entries: e2,
                },
            ) if level == level2 => {
                e1.push((sep, f2));
                e1.extend(e2);
                Node::Branch {
                    level,
                    first: f1,
                    entries: e1,
                }
            }
            _ => return Err(Error::corrupt(lid, "neighbouring nodes of different kinds")),
        };
        if combined.size() <= self.limits.capacity {
            let page = self.put(op, lid, &combined)?;
            set_child(id, first, entries, l, page)?;
            entries.remove(r - 1);
            op.free(rid);
        } else {
            let (left, sep, right) = split(combined);
            let lp = self.put(op, lid, &left)?;
            let rp = self.put(op, rid, &right)?;
            set_child(id, first, entries, l, lp)?;
            set_child(id, first, entries, r, rp)?;
            // INVARIANT: `r - 1 < entries.len()`: `entries[r - 1]` was read above (`sep`), and
            // nothing on this path has removed an entry since.
            entries[r - 1].0 = sep;
        }
        Ok(())
    }

    /// Moves node pages from the end of the file into free pages below it, at most
    /// `budget` of them, so that later checkpoints can cut the file (a page leaves the
    /// file once no retained image holds it). Reads only the branches and the leaves it
    /// moves; overflow chains stay where they are. Returns how many pages moved. All or
    /// nothing, like every write operation. [`checkpoint`](Self::checkpoint) calls it when
    /// an eighth of the file or more is free.
    pub fn relocate_tail(&self, budget: u64) -> Result<u64> {
        let (pages, free) = self.store.space();
        let cutoff = pages.saturating_sub(free);
        if free == 0 || budget == 0 {
            return Ok(0);
        }
        let _writer = self.store.writer()?;
        let mut root = self.write_root();
        self.version.fetch_add(1, Ordering::Release);
        let mut op = Op::default();
        let mut left = budget;
        let result = self.relocate(&mut op, *root, cutoff, &mut left, 0);
        self.store.end(op, result.map(|new| *root = new))?;
        Ok(budget - left)
    }

    fn relocate(
        &self,
        op: &mut Op,
        id: PageId,
        cutoff: u64,
        left: &mut u64,
        depth: usize,
    ) -> Result<PageId> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                id,
                "tree deeper than any valid tree (a cycle?)",
            ));
        }
        let children = self.with_node(id, |v| {
            if v.is_leaf() {
                return Ok(None);
            }
            (0..=v.count())
                .map(|i| v.child(i))
                .collect::<Result<Vec<_>>>()
                .map(|c| Some((v.level(), c)))
        })?;
        let Some((level, children)) = children else {
            // A leaf: moved if it is in the tail.
            if id.get() < cutoff || *left == 0 {
                return Ok(id);
            }
            let node = self.load(id)?;
            let to = self.store.allocate(op)?;
            self.write(to, &node)?;
            op.free(id);
            *left -= 1;
            return Ok(to);
        };
        let mut moved = Vec::new();
        for (i, child) in children.iter().enumerate() {
            if *left == 0 {
                break;
            }
            if level == 1 && child.get() < cutoff {
                // A leaf below the tail stays: not read at all (a checkpoint's relocation
                // reads the branches and the leaves it moves, not the whole tree).
                continue;
            }
            let to = self.relocate(op, *child, cutoff, left, depth + 1)?;
            if to != *child {
                moved.push((i, to));
            }
        }
        let in_tail = id.get() >= cutoff && *left > 0;
        if moved.is_empty() && !in_tail {
            return Ok(id);
        }
        let Node::Branch {
            level,
            mut first,
            mut entries,
        } = self.load(id)?
        else {
            return Err(Error::corrupt(id, "changed from branch to leaf"));
        };
        for (i, to) in moved {
            set_child(id, &mut first, &mut entries, i, to)?;
        }
        let node = Node::Branch {
            level,
            first,
            entries,
        };
        if in_tail {
            let to = self.store.allocate(op)?;
            self.write(to, &node)?;
            op.free(id);
            *left -= 1;
            Ok(to)
        } else {
            self.put(op, id, &node)
        }
    }

    /// Makes everything written so far durable: the tree's dirty pages (of the generation
    /// that ends now), then the free list and a superblock recording the root and `lsn`.
    /// Writers are held off only while the generation switches (no operation in
    /// progress); readers and writers go on while the pages are written and synced. The
    /// pages of the new image are never written again.
    pub fn checkpoint(&self, lsn: Lsn) -> Result<Checkpoint> {
        let (pages, free) = self.store.space();
        if free >= 16 && free * 8 >= pages {
            // Room below the tail: move some of it down, so later checkpoints cut the file.
            self.relocate_tail((pages / 16).max(64))?;
        }
        self.store.checkpoint(lsn, || Some(*self.read_root()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_the_entries_is_corruption() {
        let page = PageId::new(4);
        let mut first = PageId::new(5);
        let mut entries = vec![(b"m".to_vec(), PageId::new(6))];
        assert_eq!(child_of(page, first, &entries, 0).unwrap(), first);
        assert_eq!(child_of(page, first, &entries, 1).unwrap(), PageId::new(6));
        set_child(page, &mut first, &mut entries, 1, PageId::new(7)).unwrap();
        assert_eq!(entries[0].1, PageId::new(7));
        for i in [2, usize::MAX] {
            assert!(matches!(
                child_of(page, first, &entries, i),
                Err(Error::Corruption { .. })
            ));
            assert!(matches!(
                set_child(page, &mut first, &mut entries, i, PageId::new(8)),
                Err(Error::Corruption { .. })
            ));
        }
        assert_eq!((first, entries[0].1), (PageId::new(5), PageId::new(7)));
    }
}
