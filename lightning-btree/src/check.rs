//! `check()`: every invariant of the tree, verified by walking all of it.

use std::collections::BTreeSet;
use std::fmt;

use lightning_page::{FIRST_DATA_PAGE, PageId};

use crate::Result;
use crate::node::{NodeView, ValRef};
use crate::tree::{BTree, MAX_DEPTH};

/// One violated invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The page it was found on.
    pub page: PageId,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {}: {}", self.page, self.what)
    }
}

/// What [`BTree::check`] found: counts, and every problem (empty for a sound tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Entries in the tree.
    pub entries: u64,
    /// Leaf pages.
    pub leaves: u64,
    /// Branch pages.
    pub branches: u64,
    /// Overflow pages.
    pub overflow_pages: u64,
    /// Levels (1 for a tree that is one leaf).
    pub depth: u32,
    /// Every page reachable from the root, ascending.
    pub reachable: Vec<PageId>,
    /// Violated invariants.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether no invariant is violated.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} entries, depth {}, {} leaves, {} branches, {} overflow pages: {}",
            self.entries,
            self.depth,
            self.leaves,
            self.branches,
            self.overflow_pages,
            if self.is_ok() {
                "ok".to_string()
            } else {
                format!("{} problems", self.problems.len())
            }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

struct Walk<'a> {
    tree: &'a BTree,
    seen: BTreeSet<PageId>,
    report: CheckReport,
    page_count: u64,
}

impl Walk<'_> {
    fn problem(&mut self, page: PageId, what: impl Into<String>) {
        self.report.problems.push(Problem {
            page,
            what: what.into(),
        });
    }

    /// Claims `id` for the walk: it must be a data page not seen before.
    fn claim(&mut self, id: PageId, from: PageId) -> bool {
        if id < FIRST_DATA_PAGE || id.get() >= self.page_count {
            self.problem(
                from,
                format!("points to page {id}, outside the file's data pages"),
            );
            return false;
        }
        if !self.seen.insert(id) {
            self.problem(id, "reachable more than once");
            return false;
        }
        true
    }

    /// Checks the subtree at `id`, whose keys must lie in `lo..hi` (`lo` inclusive, `hi`
    /// exclusive, `None` for no bound) at `level`.
    /// Records a problem with the node's cell area; `false` if its cells cannot be read.
    fn cell_area(&mut self, id: PageId, view: &NodeView<'_>) -> bool {
        match view.cells_problem() {
            Ok(None) => true,
            Ok(Some(what)) => {
                self.problem(id, what);
                true
            }
            Err(e) => {
                self.problem(id, e.to_string());
                false
            }
        }
    }

    fn node(
        &mut self,
        id: PageId,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        level: Option<u8>,
        root: bool,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            self.problem(id, "deeper than any valid tree");
            return;
        }
        let page = match self.tree.store.pool().pin(id) {
            Ok(p) => p,
            Err(e) => return self.problem(id, format!("cannot be read: {e}")),
        };
        let view = match NodeView::new(id, page.page_type(), page.payload()) {
            Ok(v) => v,
            Err(e) => return self.problem(id, e.to_string()),
        };
        if let Some(l) = level
            && view.level() != l
        {
            self.problem(
                id,
                format!("at level {}, its parent expects {l}", view.level()),
            );
        }
        if view.is_leaf() {
            self.report.leaves += 1;
        } else {
            self.report.branches += 1;
        }
        if !root && view.size() < self.tree.limits.min_fill {
            self.problem(
                id,
                format!(
                    "underfull: {} bytes, the bound is {}",
                    view.size(),
                    self.tree.limits.min_fill
                ),
            );
        }
        if !self.cell_area(id, &view) {
            return;
        }
        let mut keys = Vec::with_capacity(view.count());
        for i in 0..view.count() {
            match view.key(i) {
                Ok(k) => keys.push(k.to_vec()),
                Err(e) => return self.problem(id, e.to_string()),
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if view.slot_head(i) != Some(crate::node::head(k)) {
                // A search compares heads first: a wrong one sends it the wrong way.
                self.problem(id, format!("slot {i} records a head that is not its key's"));
            }
            if let Some(prev) = i.checked_sub(1).and_then(|j| keys.get(j))
                && prev >= k
            {
                self.problem(id, format!("keys {} and {} out of order", i - 1, i));
            }
            if lo.is_some_and(|lo| k.as_slice() < lo) || hi.is_some_and(|hi| k.as_slice() >= hi) {
                self.problem(
                    id,
                    format!("key {i} outside the bounds its parent's separators set"),
                );
            }
        }
        if view.is_leaf() {
            self.report.entries += keys.len() as u64;
            let overflow: Vec<(PageId, u64)> = (0..view.count())
                .filter_map(|i| match view.value(i) {
                    Ok(ValRef::Overflow { first, len }) => Some(Ok((first, len))),
                    Ok(ValRef::Inline(_)) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()
                .unwrap_or_else(|e| {
                    self.problem(id, e.to_string());
                    Vec::new()
                });
            drop(page);
            for (first, len) in overflow {
                self.chain(id, first, len);
            }
            return;
        }
        let children: Vec<PageId> = match (0..=view.count()).map(|i| view.child(i)).collect() {
            Ok(c) => c,
            Err(e) => return self.problem(id, e.to_string()),
        };
        let child_level = view.level().checked_sub(1);
        drop(page);
        for (i, child) in children.into_iter().enumerate() {
            if !self.claim(child, id) {
                continue;
            }
            // Child `i` lies between keys `i - 1` and `i`; the first and last children
            // between those and the parent's bounds.
            let clo = i
                .checked_sub(1)
                .and_then(|j| keys.get(j))
                .map_or(lo, |k| Some(k.as_slice()));
            let chi = keys.get(i).map_or(hi, |k| Some(k.as_slice()));
            self.node(child, clo, chi, child_level, false, depth + 1);
        }
    }

    fn chain(&mut self, leaf: PageId, first: PageId, len: u64) {
        let mut pages = Vec::new();
        let result = self.tree.store.walk_overflow(first, len, |id, _| {
            pages.push(id);
            Ok(())
        });
        if let Err(e) = result {
            self.problem(leaf, format!("overflow value at page {first}: {e}"));
        }
        for p in pages {
            if self.claim(p, leaf) {
                self.report.overflow_pages += 1;
            }
        }
    }
}

impl BTree {
    /// Walks the whole tree and verifies every invariant: page types and checksums, node
    /// format, key order within and across nodes (separator bounds), levels, fill bounds,
    /// child links, overflow chains, no page reachable twice, and — the tree being the only
    /// user of its store — that every allocated page is reachable or free. Damage is
    /// reported, never a panic; the `Err` case is only for failing to lock or read the
    /// allocator state.
    pub fn check(&self) -> Result<CheckReport> {
        let root = self.read_root();
        let alloc = self.store.allocator();
        let mut walk = self.walk(*root, alloc.page_count());
        let free: BTreeSet<PageId> = alloc
            .free_pages()
            .chain(alloc.pending_pages())
            .chain(alloc.list_pages().iter().copied())
            .collect();
        for p in FIRST_DATA_PAGE.get()..alloc.page_count() {
            let p = PageId::new(p);
            match (walk.seen.contains(&p), free.contains(&p)) {
                (true, true) => {
                    walk.problem(p, "reachable from the tree but free in the allocator");
                }
                (false, false) => {
                    walk.problem(p, "allocated but not reachable from the tree (leaked)");
                }
                _ => {}
            }
        }
        walk.report.reachable = walk.seen.into_iter().collect();
        Ok(walk.report)
    }

    /// [`check`](Self::check) without its allocator cross-check, for a tree that shares its
    /// store with others: every invariant of the tree itself, and every page reachable from
    /// it ([`CheckReport::reachable`]), for the owner of the store to cross-check the union
    /// of its trees against the allocator.
    pub fn check_structure(&self) -> Result<CheckReport> {
        let root = self.read_root();
        let page_count = self.store.allocator().page_count();
        let walk = self.walk(*root, page_count);
        let mut report = walk.report;
        report.reachable = walk.seen.into_iter().collect();
        Ok(report)
    }

    fn walk(&self, root: PageId, page_count: u64) -> Walk<'_> {
        let mut walk = Walk {
            tree: self,
            seen: BTreeSet::new(),
            report: CheckReport::default(),
            page_count,
        };
        if walk.claim(root, root) {
            walk.node(root, None, None, None, true, 0);
        }
        walk.report.depth = match self.with_node(root, |v| Ok(v.level())) {
            Ok(l) => u32::from(l) + 1,
            Err(_) => 0,
        };
        walk
    }
}
