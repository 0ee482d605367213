//! Online repacking: under one level-1 branch, runs of adjacent leaves not yet packed
//! rewritten into as few leaves as hold them at [`REPACK_FILL`] of a page, where that takes
//! a third of the run's leaves or more.
//!
//! Removals leave leaves between a quarter full (the fill bound, below which a leaf merges
//! with a neighbour) and full; after most of a data set is removed at random the tree settles
//! around a third full, and no merge fires. Repacking gives those pages back without an
//! offline step: each call is one all-or-nothing operation over one branch's leaves (tens of
//! pages), so writers wait for one step, readers not at all (copy-on-write, ADR 008).

use lightning_page::PageId;

use super::{BTree, Change, MAX_DEPTH, cell_size, no_child};
use crate::node::{Node, NodeView, Val, separator};
use crate::store::Op;
use crate::{Error, Result};

/// Fill of a repacked leaf: room for some inserts before it splits again.
pub const REPACK_FILL: f64 = 0.9;

/// A leaf below this percentage of a page is not packed yet: a run of them is repacked.
const LOOSE: usize = 90;

/// What one [`BTree::repack_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepackStep {
    /// Leaves looked at (their fill read in place, without decoding them).
    pub examined: u64,
    /// Leaves given back: those looked at minus those they were packed into (0 when they
    /// were full enough to stay).
    pub freed: u64,
    /// Where the next step starts: the lower bound of the next level-1 branch's keys;
    /// `None` after the tree's last branch (start again from the beginning).
    pub next: Option<Vec<u8>>,
}

impl BTree {
    /// Repacks the leaves under the level-1 branch whose keys include `from` (`b""` for the
    /// first): each run of adjacent leaves below 90 % of a page goes into as few leaves as
    /// hold it at [`REPACK_FILL`] of a page when that takes a third of the run's leaves or
    /// more (a tree grown by random inserts, about 70 % full, is left alone), written to
    /// newly allocated pages (so a later
    /// [`relocate_tail`](Self::relocate_tail) has less to move), the old ones freed. The
    /// branch, and the levels above if it falls below the fill bound, change as after a
    /// merge. Values (overflow chains included) are moved as they are, never read.
    ///
    /// Call it with the returned [`RepackStep::next`] to walk the tree a branch at a time;
    /// [`checkpoint`](Self::checkpoint) does not call it (the database does, a budget per
    /// checkpoint). All or nothing, like every write operation.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lightning_btree::{BTree, Store};
    /// # use lightning_page::{PageFile, PageSize, vfs::MemVfs};
    /// # let file = PageFile::create(&MemVfs::new(), "t.ldb".as_ref(), PageSize::DEFAULT)?;
    /// # let tree = BTree::create(Arc::new(Store::open(Arc::new(file), 64 << 20)?))?;
    /// for i in 0..20_000u32 {
    ///     tree.insert(&i.to_be_bytes(), &[7; 100])?;
    /// }
    /// for i in (0..20_000u32).filter(|i| i % 4 != 0) {
    ///     tree.remove(&i.to_be_bytes())?; // three quarters gone: leaves a quarter full
    /// }
    /// let before = tree.check()?.leaves;
    /// let mut from = Vec::new();
    /// loop {
    ///     let step = tree.repack_step(&from)?;
    ///     match step.next {
    ///         Some(next) => from = next,
    ///         None => break,
    ///     }
    /// }
    /// let after = tree.check()?.leaves;
    /// assert!(after * 3 < before * 2, "{before} leaves before, {after} after");
    /// assert_eq!(tree.get(&4u32.to_be_bytes())?, Some(vec![7; 100]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repack_step(&self, from: &[u8]) -> Result<RepackStep> {
        let _writer = self.store.writer()?;
        let mut root = self.write_root();
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        let mut op = Op::default();
        let mut step = RepackStep {
            examined: 0,
            freed: 0,
            next: None,
        };
        let result = self
            .repack_rec(&mut op, *root, from, None, &mut step, 0)
            .and_then(|change| self.finish(&mut op, change));
        self.store.end(op, result.map(|new| *root = new))?;
        Ok(step)
    }

    /// Below branch (or leaf) `id`, whose keys are below `upper` (`None`: no bound).
    fn repack_rec(
        &self,
        op: &mut Op,
        id: PageId,
        from: &[u8],
        upper: Option<&[u8]>,
        step: &mut RepackStep,
        depth: usize,
    ) -> Result<Change> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                id,
                "tree deeper than any valid tree (a cycle?)",
            ));
        }
        // The branch's level, the children to look at, and the child's upper bound.
        let routed = self.with_node(id, |v| {
            if v.is_leaf() {
                return Ok(None);
            }
            let i = v.route(from)?;
            let child_upper = (i < v.count()).then(|| v.key(i)).transpose()?;
            let children = if v.level() == 1 {
                (0..=v.count())
                    .map(|c| v.child(c))
                    .collect::<Result<Vec<_>>>()?
            } else {
                vec![v.child(i)?]
            };
            Ok(Some((
                v.level(),
                i,
                children,
                child_upper.map(<[u8]>::to_vec),
            )))
        })?;
        let Some((level, i, children, child_upper)) = routed else {
            // The root is a leaf: nothing to pack it with.
            return Ok(Change::none(id));
        };
        if level > 1 {
            let child = *children.first().ok_or_else(|| no_child(id, i))?;
            let below = child_upper.as_deref().or(upper);
            let c = self.repack_rec(op, child, from, below, step, depth + 1)?;
            return self.child_changed(op, id, i, child, c);
        }
        step.next = upper.map(<[u8]>::to_vec);
        self.repack_leaves(op, id, &children, step)
    }

    /// Level-1 branch `id` with leaves `children`: the runs worth packing, packed.
    fn repack_leaves(
        &self,
        op: &mut Op,
        id: PageId,
        children: &[PageId],
        step: &mut RepackStep,
    ) -> Result<Change> {
        let cap = self.limits.capacity;
        let mut sizes = Vec::with_capacity(children.len());
        for &child in children {
            sizes.push(self.with_node(child, |v: NodeView<'_>| {
                if v.is_leaf() {
                    Ok(v.size())
                } else {
                    Err(Error::corrupt(child, "a branch where a leaf belongs"))
                }
            })?);
        }
        step.examined += children.len() as u64;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "REPACK_FILL is in 0.5..1 and capacity is at most 64 KiB"
        )]
        let target = ((cap as f64 * REPACK_FILL) as usize).max(self.limits.min_fill * 2);
        // Runs of adjacent leaves not yet packed (below `LOOSE` of a page), each worth
        // packing when that takes a third of its leaves or more.
        let loose: Vec<bool> = sizes.iter().map(|s| s * 100 < cap * LOOSE).collect();
        let mut worth = vec![false; children.len()];
        let mut i = 0;
        while i < children.len() {
            let run = loose.iter().skip(i).take_while(|l| **l).count().max(1);
            let bytes: usize = sizes.iter().skip(i).take(run).sum();
            if run >= 2 && bytes.div_ceil(target) * 3 <= run * 2 {
                worth.iter_mut().skip(i).take(run).for_each(|w| *w = true);
            }
            i += run;
        }
        if !worth.contains(&true) {
            return Ok(Change::none(id));
        }
        let Node::Branch { entries, .. } = self.load(id)? else {
            return Err(Error::corrupt(id, "changed from branch to leaf"));
        };
        // The separator before child `i` is `entries[i - 1].0`.
        let mut seps = entries.into_iter().map(|(k, _)| k);
        let mut pages: Vec<PageId> = Vec::with_capacity(children.len());
        let mut new_seps: Vec<Vec<u8>> = Vec::with_capacity(children.len());
        let mut i = 0;
        while i < children.len() {
            let run = worth.iter().skip(i).take_while(|w| **w).count().max(1);
            if i > 0 {
                new_seps.push(seps.next().ok_or_else(|| no_child(id, i))?);
            }
            // The separators inside the run are replaced.
            for _ in 1..run {
                seps.next().ok_or_else(|| no_child(id, i))?;
            }
            let group = children.get(i..i + run).ok_or_else(|| no_child(id, i))?;
            i += run;
            if run == 1 {
                pages.extend_from_slice(group);
                continue;
            }
            let mut entries = Vec::new();
            for &child in group {
                let Node::Leaf(e) = self.load(child)? else {
                    return Err(Error::corrupt(child, "a branch where a leaf belongs"));
                };
                entries.extend(e);
            }
            let leaves = pack(entries, target, self.limits.min_fill, cap);
            if leaves.len() >= run {
                // Nothing to gain (large cells): the run stays as it was. Its inner
                // separators are gone from `seps`, so rebuild them from the leaves' keys.
                for (n, &child) in group.iter().enumerate() {
                    if n > 0 {
                        new_seps.push(self.with_node(child, |v| v.key(0).map(<[u8]>::to_vec))?);
                    }
                    pages.push(child);
                }
                continue;
            }
            let mut prev_last: Option<Vec<u8>> = None;
            for leaf in leaves {
                if let (Some(last), Some((first, _))) = (&prev_last, leaf.first()) {
                    new_seps.push(separator(last, first));
                }
                prev_last = leaf.last().map(|(k, _)| k.clone());
                let page = self.store.allocate(op)?;
                self.write(page, &Node::Leaf(leaf))?;
                pages.push(page);
            }
            for &child in group {
                op.free(child);
            }
        }
        let freed = children.len().saturating_sub(pages.len());
        if freed == 0 {
            // Every run kept: nothing was written, the branch stays.
            return Ok(Change::none(id));
        }
        step.freed += freed as u64;
        let mut pages = pages.into_iter();
        let first = pages.next().ok_or_else(|| no_child(id, 0))?;
        let branch = Node::Branch {
            level: 1,
            first,
            entries: new_seps.into_iter().zip(pages).collect(),
        };
        self.store_node(op, id, branch)
    }
}

/// Splits `entries` (in key order) into leaves of about `target` bytes, none above `cap`
/// and, when there are two or more, none below `min` (`target` is at least `2 * min`, a
/// cell at most `cap / 4`).
fn pack(
    entries: Vec<(Vec<u8>, Val)>,
    target: usize,
    min: usize,
    cap: usize,
) -> Vec<Vec<(Vec<u8>, Val)>> {
    let empty = Node::Leaf(Vec::new()).size();
    let mut leaves: Vec<(Vec<_>, usize)> = Vec::new();
    let mut cur = Vec::new();
    let mut size = empty;
    for (k, v) in entries {
        let cell = cell_size(&k, v.as_ref());
        if !cur.is_empty() && size + cell > target {
            leaves.push((std::mem::take(&mut cur), size));
            size = empty;
        }
        size += cell;
        cur.push((k, v));
    }
    if !cur.is_empty() {
        leaves.push((cur, size));
    }
    // The last leaf below the bound: joined with the one before, split evenly if too big.
    if leaves.len() >= 2
        && leaves.last().is_some_and(|(_, size)| *size < min)
        && let (Some((last, last_size)), Some((mut before, before_size))) =
            (leaves.pop(), leaves.pop())
    {
        let total = before_size + last_size - empty;
        before.extend(last);
        if total <= cap {
            leaves.push((before, total));
        } else {
            // At the first cell that takes the left half to half the bytes or more.
            let mut run = empty;
            let mut at = before.len();
            for (i, (k, v)) in before.iter().enumerate() {
                run += cell_size(k, v.as_ref());
                if run * 2 >= total + empty {
                    at = i + 1;
                    break;
                }
            }
            let right = before.split_off(at.min(before.len()));
            leaves.push((before, run));
            if !right.is_empty() {
                leaves.push((right, total + empty - run));
            }
        }
    }
    leaves.into_iter().map(|(leaf, _)| leaf).collect()
}
