//! Bulk loading: a tree built bottom-up from sorted input, nodes filled to a fill factor.

use std::sync::atomic::Ordering;

use lightning_page::PageId;

use crate::node::{HEAD, Node, SLOT, Val, ValRef, separator};
use crate::store::Op;
use crate::tree::{BTree, MAX_VALUE_LEN, split};
use crate::{Error, Result};

/// A finished node waiting to be written: kept back one step so that the last node of a
/// level can be evened out with the one before it.
struct Pending {
    /// The separator between the previous node and this one (empty for the first).
    low: Vec<u8>,
    node: Node,
}

impl BTree {
    /// Builds the tree from `items`, which must be in strictly ascending key order, filling
    /// nodes to `fill` (0.5 to 1.0) of a page — 1.0 for a table that will only be read,
    /// less to leave room for inserts. The tree must be empty. Returns the number of
    /// entries loaded. Much faster than inserting one by one: every page is written once.
    pub fn bulk_load<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        fill: f64,
    ) -> Result<u64> {
        if !(0.5..=1.0).contains(&fill) {
            return Err(Error::BadFillFactor(fill));
        }
        let _writer = self.store.writer()?;
        let mut root = self
            .root
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.with_node(*root, |v| Ok(v.is_leaf() && v.count() == 0))? {
            return Err(Error::NotEmpty);
        }
        self.version.fetch_add(1, Ordering::Release);
        let mut op = Op::default();
        let mut count = 0;
        let old = *root;
        let result = self.bulk_op(&mut op, old, items, fill).map(|(n, top)| {
            count = n;
            if let Some(top) = top {
                *root = top;
                op.free(old);
            }
        });
        self.store.end(op, result)?;
        Ok(count)
    }

    /// Writes the levels of a bulk load; returns the entries loaded and the new root
    /// (`None` for no input).
    fn bulk_op<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        op: &mut Op,
        root: PageId,
        items: impl IntoIterator<Item = (K, V)>,
        fill: f64,
    ) -> Result<(u64, Option<PageId>)> {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "fill is in 0.5..=1.0 and capacity is at most 64 KiB"
        )]
        let target = ((self.limits.capacity as f64 * fill) as usize).max(self.limits.min_fill * 2);
        let target = target.min(self.limits.capacity);

        let mut level = Level::new(self, &mut *op, 0, target);
        let mut leaf: Vec<(Vec<u8>, Val)> = Vec::new();
        let mut size = HEAD;
        // The key before, kept in one buffer (nothing allocated per entry but the entry).
        let mut last: Option<Vec<u8>> = None;
        let mut count = 0u64;
        for (i, (k, v)) in items.into_iter().enumerate() {
            let (k, v) = (k.as_ref(), v.as_ref());
            if key_too_large(self, k)? || last.as_deref().is_some_and(|l| l >= k) {
                return Err(Error::NotSorted { index: i });
            }
            if v.len() as u64 > MAX_VALUE_LEN {
                return Err(Error::ValueTooLarge {
                    len: v.len(),
                    max: MAX_VALUE_LEN,
                });
            }
            // A cell's bytes in its leaf, as `Node::size` counts them.
            let cell_of = |val: ValRef<'_>| SLOT + 2 + k.len() + val.cell_len();
            let val = if cell_of(ValRef::Inline(v)) <= self.limits.max_cell {
                Val::Inline(v.to_vec())
            } else {
                Val::Overflow {
                    first: self.store.write_overflow(level.op, v)?,
                    len: v.len() as u64,
                }
            };
            let cell = cell_of(val.as_ref());
            if size + cell > target && !leaf.is_empty() {
                level.push(Node::Leaf(std::mem::take(&mut leaf)))?;
                size = HEAD;
            }
            size += cell;
            leaf.push((k.to_vec(), val));
            let last = last.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(k);
            count += 1;
        }
        if count == 0 {
            return Ok((0, None));
        }
        level.push(Node::Leaf(leaf))?;
        let mut children = level.finish()?;
        let mut height = 0u8;
        while children.len() > 1 {
            height += 1;
            let mut level = Level::new(self, &mut *op, height, target);
            let mut it = children.into_iter();
            let (_, first) = it
                .next()
                .ok_or_else(|| Error::corrupt(root, "bulk load lost a level"))?;
            let mut node = (first, Vec::new());
            let mut size = HEAD;
            for (low, child) in it {
                let cell = SLOT + 2 + low.len() + 8;
                if size + cell > target && !node.1.is_empty() {
                    level.push_branch(std::mem::replace(&mut node, (child, Vec::new())), low)?;
                    size = HEAD;
                    continue;
                }
                size += cell;
                node.1.push((low, child));
            }
            level.push_branch(node, Vec::new())?;
            children = level.finish()?;
        }
        Ok((count, children.first().map(|(_, top)| *top)))
    }
}

fn key_too_large(tree: &BTree, k: &[u8]) -> Result<bool> {
    if k.len() > tree.limits.max_key {
        return Err(Error::KeyTooLarge {
            len: k.len(),
            max: tree.limits.max_key,
        });
    }
    Ok(false)
}

/// One level under construction: nodes are written as the next one completes; the last
/// two are evened out if the last would fall below the fill bound.
struct Level<'t> {
    tree: &'t BTree,
    op: &'t mut Op,
    height: u8,
    pending: Option<Pending>,
    /// Written nodes: the separator before each and its page.
    done: Vec<(Vec<u8>, PageId)>,
    /// Low key (first key) of the pending branch's next sibling, for branch levels.
    next_low: Vec<u8>,
    _target: usize,
}

impl<'t> Level<'t> {
    fn new(tree: &'t BTree, op: &'t mut Op, level: u8, target: usize) -> Self {
        Level {
            tree,
            op,
            height: level,
            pending: None,
            done: Vec::new(),
            next_low: Vec::new(),
            _target: target,
        }
    }

    fn emit(&mut self, p: Pending) -> Result<()> {
        let id = self.tree.store.allocate(self.op)?;
        self.tree.write(id, &p.node)?;
        self.done.push((p.low, id));
        Ok(())
    }

    /// A completed leaf.
    fn push(&mut self, node: Node) -> Result<()> {
        let low = match (&self.pending, &node) {
            (
                Some(Pending {
                    node: Node::Leaf(prev),
                    ..
                }),
                Node::Leaf(this),
            ) => match (prev.last(), this.first()) {
                (Some((l, _)), Some((r, _))) => separator(l, r),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if let Some(p) = self.pending.replace(Pending { low, node }) {
            self.emit(p)?;
        }
        Ok(())
    }

    /// A completed branch `(first child, entries)`; `next_low` is the separator before the
    /// branch that follows it.
    fn push_branch(
        &mut self,
        (first, entries): (PageId, Vec<(Vec<u8>, PageId)>),
        next_low: Vec<u8>,
    ) -> Result<()> {
        let low = std::mem::replace(&mut self.next_low, next_low);
        let node = Node::Branch {
            level: self.height,
            first,
            entries,
        };
        if let Some(p) = self.pending.replace(Pending { low, node }) {
            self.emit(p)?;
        }
        Ok(())
    }

    /// Writes the last node, evened out with the one before it when it is underfull.
    fn finish(mut self) -> Result<Vec<(Vec<u8>, PageId)>> {
        let Some(last) = self.pending.take() else {
            return Ok(self.done);
        };
        let limits = self.tree.limits;
        if last.node.size() >= limits.min_fill || self.done.is_empty() {
            self.emit(last)?;
            return Ok(self.done);
        }
        // Read the previous node back, combine, and split evenly (or keep one node).
        let Some((prev_low, prev_id)) = self.done.pop() else {
            return Ok(self.done);
        };
        let prev = self.tree.with_node(prev_id, crate::node::decode)?;
        let combined = match (prev, last.node) {
            (Node::Leaf(mut a), Node::Leaf(b)) => {
                a.extend(b);
                Node::Leaf(a)
            }
            (
                Node::Branch {
                    level,
                    first,
                    entries: mut a,
                },
                Node::Branch {
                    first: f2,
                    entries: b,
                    ..
                },
            ) => {
                a.push((last.low, f2));
                a.extend(b);
                Node::Branch {
                    level,
                    first,
                    entries: a,
                }
            }
            _ => return Err(Error::corrupt(prev_id, "bulk load mixed node kinds")),
        };
        if combined.size() <= limits.capacity {
            self.tree.write(prev_id, &combined)?;
            self.done.push((prev_low, prev_id));
        } else {
            let (left, sep, right) = split(combined);
            self.tree.write(prev_id, &left)?;
            self.done.push((prev_low, prev_id));
            self.emit(Pending {
                low: sep,
                node: right,
            })?;
        }
        Ok(self.done)
    }
}
