//! Node pages: a slotted layout read in place, and an owned form for changes.
//!
//! # Node layout (payload of a `BTreeLeaf` or `BTreeBranch` page, little-endian)
//!
//! | offset | size      | field                                                    |
//! |-------:|----------:|----------------------------------------------------------|
//! | 0      | 1         | node format version (2)                                  |
//! | 1      | 1         | level: 0 for a leaf, children's level + 1 for a branch   |
//! | 2      | 2         | `count`, cells in the node                               |
//! | 4      | 2         | `cells_from`: offset of the lowest cell                  |
//! | 6      | 2         | `gap`: bytes between `cells_from` and the end no cell uses |
//! | 8      | 8         | branch: the first (leftmost) child; leaf: zero           |
//! | 16     | 6 × count | slots, in key order: the cell's offset in the payload (2), |
//! |        |           | then the key's head: its first 4 bytes, zero-padded (4)  |
//! | ...    | ...       | free, up to `cells_from`                                 |
//! | `cells_from` | ... | cells, to the end of the payload, in any order           |
//!
//! Slots grow up from the header and cells down from the end, so an insert writes its cell
//! below the others and moves only the slots after its own; a removal leaves its cell's
//! bytes as `gap` (or gives them back to the free space if it was the lowest cell), and the
//! cells are packed again only when an insert finds the free space too small. A node uses
//! `16 + 6 × count + (payload length − cells_from − gap)` bytes.
//!
//! A binary search compares heads in the slot array and reads a cell's key only when the
//! heads are equal: most probes touch no cell (ADR 008 has the measurements). Heads compare
//! as big-endian integers; unequal heads order their keys the same way.
//!
//! Cells start with the key length (2) and the key. A leaf cell goes on with a flag byte:
//! 0 = inline value, then its length (4) and bytes; 1 = overflow value, then the first
//! overflow page (8) and the value length (8). A branch cell goes on with its child (8):
//! the child holding keys `>=` the cell's key (and below the next cell's key).
//!
//! # Overflow page layout (payload of an `Overflow` page)
//!
//! | offset | size | field                                      |
//! |-------:|-----:|--------------------------------------------|
//! | 0      | 8    | next page of the chain, `u64::MAX` for none |
//! | 8      | ...  | the next bytes of the value                |

use lightning_page::{PageBuf, PageId, PageType};

use crate::{Error, Result};

const VERSION: u8 = 2;
pub(crate) const HEAD: usize = 16;
/// Bytes of a slot: the cell's offset (2) and the key's head (4).
pub(crate) const SLOT: usize = 6;

/// The head of a key: its first four bytes, zero-padded, as a big-endian integer. Keys
/// whose heads differ compare as their heads do (a key shorter than four bytes pads with
/// zeros, which sort first, as a shorter prefix does); equal heads say nothing.
pub(crate) fn head(key: &[u8]) -> u32 {
    head_value(head_bytes(key))
}

/// A key's first four bytes, zero-padded: the head as a slot stores it.
fn head_bytes(key: &[u8]) -> [u8; 4] {
    // A key of four bytes or more (nearly every key) is one load; a loop over a shorter
    // length compiles to a call of `memcpy`, which was a tenth of a point read.
    if let Some(first) = key.first_chunk::<4>() {
        return *first;
    }
    let mut b = [0u8; 4];
    for (to, from) in b.iter_mut().zip(key) {
        *to = *from;
    }
    b
}

/// The integer of a stored head; big-endian, so that integers order as the bytes do.
#[expect(
    clippy::big_endian_bytes,
    reason = "a head orders as the key bytes it holds, most significant first"
)]
fn head_value(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// The head stored at `at` in `payload`, if it lies inside.
fn head_at(payload: &[u8], at: usize) -> Option<u32> {
    Some(head_value(payload.get(at..at + 4)?.try_into().ok()?))
}
pub(crate) const NO_PAGE: u64 = u64::MAX;
pub(crate) const OVERFLOW_HEAD: usize = 8;

/// A value as a leaf stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Inline(Vec<u8>),
    Overflow { first: PageId, len: u64 },
}

impl Val {
    /// Bytes of the value part of a leaf cell.
    pub(crate) fn cell_len(&self) -> usize {
        self.as_ref().cell_len()
    }

    pub(crate) fn as_ref(&self) -> ValRef<'_> {
        match self {
            Val::Inline(v) => ValRef::Inline(v),
            Val::Overflow { first, len } => ValRef::Overflow {
                first: *first,
                len: *len,
            },
        }
    }
}

/// A value read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValRef<'a> {
    Inline(&'a [u8]),
    Overflow { first: PageId, len: u64 },
}

impl ValRef<'_> {
    /// Bytes of the value part of a leaf cell.
    pub(crate) fn cell_len(self) -> usize {
        match self {
            ValRef::Inline(v) => 1 + 4 + v.len(),
            ValRef::Overflow { .. } => 1 + 16,
        }
    }

    /// The overflow chain a value is stored in, if it is not inline.
    pub(crate) fn overflow(self) -> Option<(PageId, u64)> {
        match self {
            ValRef::Inline(_) => None,
            ValRef::Overflow { first, len } => Some((first, len)),
        }
    }

    pub(crate) fn to_owned(self) -> Val {
        match self {
            ValRef::Inline(v) => Val::Inline(v.to_vec()),
            ValRef::Overflow { first, len } => Val::Overflow { first, len },
        }
    }
}

/// An owned node, decoded for a change and encoded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Leaf(Vec<(Vec<u8>, Val)>),
    Branch {
        level: u8,
        first: PageId,
        entries: Vec<(Vec<u8>, PageId)>,
    },
}

impl Node {
    /// Payload bytes the node takes.
    pub(crate) fn size(&self) -> usize {
        HEAD + match self {
            Node::Leaf(e) => e
                .iter()
                .map(|(k, v)| SLOT + 2 + k.len() + v.cell_len())
                .sum::<usize>(),
            Node::Branch { entries, .. } => {
                entries.iter().map(|(k, _)| SLOT + 2 + k.len() + 8).sum()
            }
        }
    }

    pub(crate) fn level(&self) -> u8 {
        match self {
            Node::Leaf(_) => 0,
            Node::Branch { level, .. } => *level,
        }
    }

    pub(crate) fn page_type(&self) -> PageType {
        match self {
            Node::Leaf(_) => PageType::BTreeLeaf,
            Node::Branch { .. } => PageType::BTreeBranch,
        }
    }

    /// Writes the node into `page` (whose payload area must be large enough: callers split
    /// nodes above the capacity first): the slots after the header, the cells packed at the
    /// end of the payload, which spans the whole page.
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`self.size() <= body.len()` is checked first, and `size` is exactly the header,
                  the slots and the cells written below: the header and slots lie in
                  `..HEAD + SLOT * count` and each cell at `at..` stays above them"
    )]
    pub(crate) fn encode(&self, page: &mut PageBuf) -> Result<()> {
        let size = self.size();
        let body = page.body_mut();
        let end = body.len();
        if size > end {
            // Only a crafted page can hold a cell above the size limit; the tree reports it
            // as corruption before getting here (see `BTree::write`).
            return Err(Error::corrupt(
                PageId::new(NO_PAGE),
                format!("a node of {size} bytes does not fit in a page"),
            ));
        }
        body.fill(0);
        body[0] = VERSION;
        body[1] = self.level();
        let count = match self {
            Node::Leaf(e) => e.len(),
            Node::Branch { entries, .. } => entries.len(),
        };
        body[2..4].copy_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_le_bytes());
        if let Node::Branch { first, .. } = self {
            body[8..16].copy_from_slice(&first.get().to_le_bytes());
        }
        // Cells from the end down, in key order.
        let mut at = end;
        let mut slot = HEAD;
        match self {
            Node::Leaf(entries) => {
                for (k, v) in entries {
                    at -= 2 + k.len() + v.cell_len();
                    put_slot(body, slot, at, k);
                    slot += SLOT;
                    write_leaf_cell(&mut body[at..], k, v.as_ref());
                }
            }
            Node::Branch { entries, .. } => {
                for (k, child) in entries {
                    at -= 2 + k.len() + 8;
                    put_slot(body, slot, at, k);
                    slot += SLOT;
                    let cell = &mut body[at..];
                    cell[..2].copy_from_slice(&offset(k.len()).to_le_bytes());
                    cell[2..2 + k.len()].copy_from_slice(k);
                    cell[2 + k.len()..10 + k.len()].copy_from_slice(&child.get().to_le_bytes());
                }
            }
        }
        body[4..6].copy_from_slice(&offset(at).to_le_bytes());
        page.set_payload_len(end)?;
        Ok(())
    }
}

/// Writes a leaf cell (key length, key, value part) at the start of `out`, which holds at
/// least `2 + key.len() + val.cell_len()` bytes.
#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "both callers pass `out` of at least the cell's `2 + key.len() + val.cell_len()`
              bytes: `leaf_cell` sizes it so, `Node::encode` passes the body from a cell offset
              it reserved that many bytes below the end for"
)]
fn write_leaf_cell(out: &mut [u8], key: &[u8], val: ValRef<'_>) {
    out[..2].copy_from_slice(&offset(key.len()).to_le_bytes());
    out[2..2 + key.len()].copy_from_slice(key);
    let rest = &mut out[2 + key.len()..];
    match val {
        ValRef::Inline(v) => {
            rest[0] = 0;
            rest[1..5].copy_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
            rest[5..5 + v.len()].copy_from_slice(v);
        }
        ValRef::Overflow { first, len } => {
            rest[0] = 1;
            rest[1..9].copy_from_slice(&first.get().to_le_bytes());
            rest[9..17].copy_from_slice(&len.to_le_bytes());
        }
    }
}

/// The length of the leaf cell at `at` in `body`, if it lies inside.
fn leaf_cell_len_at(body: &[u8], at: usize) -> Option<usize> {
    let klen = u16_at(body, at)?;
    let flag_at = at + 2 + klen;
    let rest = match body.get(flag_at)? {
        0 => 1 + 4 + u32_at(body, flag_at + 1)?,
        1 => 1 + 16,
        _ => return None,
    };
    let len = 2 + klen + rest;
    (at + len <= body.len()).then_some(len)
}

/// Writes the slot at `slot`: cell offset `at`, the head of `key`. `slot + SLOT` must not
/// pass `body.len()`.
#[allow(
    clippy::allow_attributes,
    clippy::indexing_slicing,
    reason = "callers keep `slot + SLOT <= body.len()`: `Node::encode` writes slots inside the
              `HEAD + SLOT * count <= size <= body.len()` it checked, `NodeEdit::insert` only
              below the cell offset `at` it checked to lie inside `body`"
)]
fn put_slot(body: &mut [u8], slot: usize, at: usize, key: &[u8]) {
    body[slot..slot + 2].copy_from_slice(&offset(at).to_le_bytes());
    body[slot + 2..slot + SLOT].copy_from_slice(&head_bytes(key));
}

/// The bytes of a leaf cell (without its slot).
pub(crate) fn leaf_cell(key: &[u8], val: ValRef<'_>) -> Vec<u8> {
    let mut c = vec![0; 2 + key.len() + val.cell_len()];
    write_leaf_cell(&mut c, key, val);
    c
}

/// The length of the branch cell at `at` in `body`, if it lies inside.
fn branch_cell_len_at(body: &[u8], at: usize) -> Option<usize> {
    let len = 2 + u16_at(body, at)? + 8;
    (at + len <= body.len()).then_some(len)
}

/// The bytes of a branch cell (without its slot): `key` and the child holding the keys
/// from it on.
pub(crate) fn branch_cell(key: &[u8], child: PageId) -> Vec<u8> {
    let mut c = Vec::with_capacity(2 + key.len() + 8);
    c.extend_from_slice(&offset(key.len()).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(&child.get().to_le_bytes());
    c
}

/// In-place edits of a node page for the common changes, without decoding the node: an
/// insert writes its cell below the others and moves the slots after its own; a removal
/// moves the slots after its own and leaves its cell as gap; the cells are packed again only
/// when an insert finds too little free space. Leaves and branches alike (the cells' form
/// is the level's). Callers check that the node is valid (a `NodeView` of it) and that an
/// insert fits (its `size` plus the cell and its slot); on a page that is not (only a
/// crafted one), edits do nothing rather than panic.
pub(crate) struct NodeEdit<'a> {
    body: &'a mut [u8],
    /// A branch's cells (level above 0), else a leaf's.
    branch: bool,
    /// The payload's end: where the cells stop.
    end: usize,
    count: usize,
    cells_from: usize,
    gap: usize,
}

impl<'a> NodeEdit<'a> {
    pub(crate) fn new(page: &'a mut PageBuf) -> Self {
        let end = page.payload().len();
        let body = page.body_mut();
        let count = u16_at(body, 2).unwrap_or(0);
        let cells_from = u16_at(body, 4).unwrap_or(0);
        let gap = u16_at(body, 6).unwrap_or(0);
        let branch = body.get(1).is_some_and(|level| *level > 0);
        NodeEdit {
            body,
            branch,
            end,
            count,
            cells_from,
            gap,
        }
    }

    fn slot(&self, i: usize) -> usize {
        u16_at(self.body, HEAD + SLOT * i).unwrap_or(0)
    }

    /// The length of the cell at `at` among the first `end` bytes.
    fn cell_len_at(&self, end: usize, at: usize) -> Option<usize> {
        let body = self.body.get(..end)?;
        if self.branch {
            branch_cell_len_at(body, at)
        } else {
            leaf_cell_len_at(body, at)
        }
    }

    fn set_slot(&mut self, i: usize, at: usize) {
        if let Some(s) = self.body.get_mut(HEAD + SLOT * i..HEAD + SLOT * i + 2) {
            s.copy_from_slice(&offset(at).to_le_bytes());
        }
    }

    /// Bytes the node uses.
    fn used(&self) -> usize {
        (HEAD + SLOT * self.count + self.end)
            .saturating_sub(self.cells_from)
            .saturating_sub(self.gap)
    }

    /// Writes the header fields this edit changes; returns the bytes the node uses.
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "the fields lie in `2..8`, and the body of any page is at least
                  `PageSize::MIN - HEADER_LEN` (4064) bytes"
    )]
    fn finish(self) -> usize {
        self.body[2..4].copy_from_slice(&offset(self.count).to_le_bytes());
        self.body[4..6].copy_from_slice(&offset(self.cells_from).to_le_bytes());
        self.body[6..8].copy_from_slice(&offset(self.gap).to_le_bytes());
        self.used()
    }

    /// Packs the cells at the end again (in slot order), leaving no gap. `false` if a cell
    /// cannot be read (a crafted page), with nothing changed.
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "`packed` has `end` bytes and `to <= at <= end`; `cell_len_at(end, from)` is
                  `Some(len)` only if `from + len <= end <= body.len()`; and `end` (the payload
                  length) never passes `body.len()`, as the payload is a prefix of the body"
    )]
    fn compact(&mut self) -> bool {
        let mut packed = vec![0u8; self.end];
        let mut at = self.end;
        let mut moved = Vec::with_capacity(self.count);
        for s in 0..self.count {
            let from = self.slot(s);
            let Some(len) = self.cell_len_at(self.end, from) else {
                return false;
            };
            let Some(to) = at.checked_sub(len) else {
                return false;
            };
            packed[to..at].copy_from_slice(&self.body[from..from + len]);
            moved.push(to);
            at = to;
        }
        if at < HEAD + SLOT * self.count {
            return false;
        }
        self.body[at..self.end].copy_from_slice(&packed[at..]);
        for (s, to) in moved.into_iter().enumerate() {
            self.set_slot(s, to);
        }
        self.cells_from = at;
        self.gap = 0;
        true
    }

    /// Whether the cells lie in slot order, each right below the one before, with no gap
    /// (as `encode` and `compact` lay them out).
    fn packed(&self) -> bool {
        if self.gap != 0 {
            return false;
        }
        let mut above = self.end;
        for s in 0..self.count {
            let at = self.slot(s);
            match self.cell_len_at(self.end, at) {
                Some(len) if at + len == above => above = at,
                _ => return false,
            }
        }
        above == self.cells_from
    }

    /// Inserts `cell` (of `key`) as slot `i`; returns the bytes the node uses.
    pub(crate) fn insert(mut self, i: usize, key: &[u8], cell: &[u8]) -> usize {
        let slots_end = HEAD + SLOT * (self.count + 1);
        if self.cells_from < slots_end + cell.len() && !self.compact() {
            return self.used();
        }
        let Some(at) = self.cells_from.checked_sub(cell.len()) else {
            return self.used();
        };
        if at < slots_end || i > self.count {
            return self.used();
        }
        // `cells_from` past the body (a crafted header): nothing to write into.
        let Some(to) = self.body.get_mut(at..at + cell.len()) else {
            return self.used();
        };
        to.copy_from_slice(cell);
        self.cells_from = at;
        self.body.copy_within(
            HEAD + SLOT * i..HEAD + SLOT * self.count,
            HEAD + SLOT * (i + 1),
        );
        put_slot(self.body, HEAD + SLOT * i, at, key);
        self.count += 1;
        self.finish()
    }

    /// Writes `cell` over the cell of slot `i`, which has the same length and key; returns
    /// the bytes the node uses (unchanged).
    pub(crate) fn overwrite(self, i: usize, cell: &[u8]) -> usize {
        let at = self.slot(i);
        if let Some(old) = self.body.get_mut(at..at + cell.len()) {
            old.copy_from_slice(cell);
        }
        self.used()
    }

    /// Removes slot `i` and its cell of `cell_len` bytes; returns the bytes the node uses.
    pub(crate) fn remove(mut self, i: usize, cell_len: usize) -> usize {
        if i >= self.count || HEAD + SLOT * self.count > self.body.len() {
            return self.used();
        }
        let gone = self.slot(i);
        self.body.copy_within(
            HEAD + SLOT * (i + 1)..HEAD + SLOT * self.count,
            HEAD + SLOT * i,
        );
        self.count -= 1;
        if gone == self.cells_from {
            self.cells_from += cell_len;
        } else {
            self.gap += cell_len;
        }
        // The last cell gone: nothing is left to be a gap.
        if self.count == 0 {
            self.cells_from = self.end;
            self.gap = 0;
        }
        self.finish()
    }
}

/// Lays the cells of leaf `page` out in key order again when in-place edits have scattered
/// them (the checkpoint's write-back does this, so that a scan after it reads each leaf's
/// cells in address order instead of missing the cache once per entry). Returns whether the
/// page changed; a page that is not a readable leaf is left as it is.
pub(crate) fn pack_leaf(id: PageId, page: &mut PageBuf) -> bool {
    if page.page_type() != PageType::BTreeLeaf
        || NodeView::new(id, PageType::BTreeLeaf, page.payload()).is_err()
    {
        return false;
    }
    let mut edit = NodeEdit::new(page);
    if edit.packed() || !edit.compact() {
        return false;
    }
    edit.finish();
    true
}

/// Offsets and lengths inside a payload (at most 64 KiB) fit in `u16`.
fn offset(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?)).ok()
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A node read in place from a page's payload, every access bounds-checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeView<'a> {
    page: PageId,
    payload: &'a [u8],
    level: u8,
    count: usize,
    cells_from: usize,
    gap: usize,
}

impl<'a> NodeView<'a> {
    /// Parses the header of a node page; `page_type` is the page's type.
    pub(crate) fn new(page: PageId, page_type: PageType, payload: &'a [u8]) -> Result<Self> {
        let bad = |what: &str| Error::corrupt(page, what.to_string());
        let Some(&[version, level, ..]) = payload.get(..HEAD) else {
            return Err(bad("node shorter than its header"));
        };
        if version != VERSION {
            return Err(Error::corrupt(
                page,
                format!(
                    "node format version {version} where version {VERSION} belongs (version 1, of unreleased builds before key heads in slots, is not read: load its data again)"
                ),
            ));
        }
        let is_leaf = match page_type {
            PageType::BTreeLeaf => true,
            PageType::BTreeBranch => false,
            other => return Err(bad(&format!("a {other} page where a tree node belongs"))),
        };
        if is_leaf != (level == 0) {
            return Err(bad("node level disagrees with its page type"));
        }
        let count = u16_at(payload, 2).unwrap_or(0);
        if HEAD + SLOT * count > payload.len() {
            return Err(bad("slot array runs past the payload"));
        }
        let cells_from = u16_at(payload, 4).unwrap_or(0);
        let gap = u16_at(payload, 6).unwrap_or(0);
        if cells_from < HEAD + SLOT * count || cells_from > payload.len() {
            return Err(bad("cells start inside the slot array or past the payload"));
        }
        if gap > payload.len() - cells_from {
            return Err(bad("gap larger than the cell area"));
        }
        Ok(NodeView {
            page,
            payload,
            level,
            count,
            cells_from,
            gap,
        })
    }

    pub(crate) fn level(&self) -> u8 {
        self.level
    }

    pub(crate) fn is_leaf(&self) -> bool {
        self.level == 0
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Bytes the node uses: header, slots and cells (not the free space or the gap).
    pub(crate) fn size(&self) -> usize {
        HEAD + SLOT * self.count + (self.payload.len() - self.cells_from - self.gap)
    }

    /// Where the cells start, and the unused bytes among them.
    #[cfg(test)]
    pub(crate) fn cell_area(&self) -> (usize, usize) {
        (self.cells_from, self.gap)
    }

    /// Whether the cells lie apart from each other and, with the gap, fill the cell area
    /// exactly (for `BTree::check`; a search or edit of overlapping cells would read or
    /// write one cell's bytes as another's). `None` when they do; else what is wrong.
    pub(crate) fn cells_problem(&self) -> Result<Option<String>> {
        let mut spans = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let (key_at, klen) = self.cell(i)?;
            let at = key_at - 2;
            let len = if self.is_leaf() {
                self.leaf_cell_len(i)?
            } else {
                2 + klen + 8
            };
            spans.push((at, len));
        }
        spans.sort_unstable();
        let mut end = self.cells_from;
        for (i, &(at, len)) in spans.iter().enumerate() {
            if at < end && i > 0 {
                return Ok(Some(format!("cells overlap at offset {at}")));
            }
            end = at + len;
        }
        if end > self.payload.len() {
            return Ok(Some("a cell runs past the payload".into()));
        }
        let used: usize = spans.iter().map(|(_, len)| len).sum();
        let area = self.payload.len() - self.cells_from - self.gap;
        if used != area {
            return Ok(Some(format!(
                "cells take {used} bytes but the header says {area} (from {} with a gap of {})",
                self.cells_from, self.gap
            )));
        }
        Ok(None)
    }

    fn bad(&self, what: &str) -> Error {
        Error::corrupt(self.page, what.to_string())
    }

    /// Where cell `i`'s key starts, and its length.
    fn cell(&self, i: usize) -> Result<(usize, usize)> {
        let at =
            u16_at(self.payload, HEAD + SLOT * i).ok_or_else(|| self.bad("slot out of range"))?;
        if at < self.cells_from {
            return Err(self.bad("cell offset below the cell area"));
        }
        let len = u16_at(self.payload, at).ok_or_else(|| self.bad("cell past the payload"))?;
        if at + 2 + len > self.payload.len() {
            return Err(self.bad("key runs past the payload"));
        }
        Ok((at + 2, len))
    }

    pub(crate) fn key(&self, i: usize) -> Result<&'a [u8]> {
        let (at, len) = self.cell(i)?;
        // INVARIANT: `at + len <= payload.len()`: `cell` returns `(key_at, len)` only after
        // checking `key_at + len <= payload.len()` (offsets and lengths are `u16`s: no overflow).
        Ok(&self.payload[at..at + len])
    }

    /// The value of leaf cell `i`.
    pub(crate) fn value(&self, i: usize) -> Result<ValRef<'a>> {
        let (at, len) = self.cell(i)?;
        let at = at + len;
        match self.payload.get(at) {
            Some(0) => {
                let n = u32_at(self.payload, at + 1)
                    .ok_or_else(|| self.bad("value length past the payload"))?;
                let v = self
                    .payload
                    .get(at + 5..at + 5 + n)
                    .ok_or_else(|| self.bad("value runs past the payload"))?;
                Ok(ValRef::Inline(v))
            }
            Some(1) => {
                let first = u64_at(self.payload, at + 1)
                    .ok_or_else(|| self.bad("overflow reference past the payload"))?;
                let len = u64_at(self.payload, at + 9)
                    .ok_or_else(|| self.bad("overflow reference past the payload"))?;
                Ok(ValRef::Overflow {
                    first: PageId::new(first),
                    len,
                })
            }
            _ => Err(self.bad("unknown value flag")),
        }
    }

    /// The head slot `i` records (checked against the key by `BTree::check`).
    pub(crate) fn slot_head(&self, i: usize) -> Option<u32> {
        head_at(self.payload, HEAD + SLOT * i + 2)
    }

    /// Bytes of leaf cell `i` (key length, key, value part), for an in-place removal.
    pub(crate) fn leaf_cell_len(&self, i: usize) -> Result<usize> {
        let (_, len) = self.cell(i)?;
        Ok(2 + len + self.value(i)?.cell_len())
    }

    /// Where child pointer `i` of a branch sits in the payload (8 bytes, little-endian).
    pub(crate) fn child_offset(&self, i: usize) -> Result<usize> {
        let at = if i == 0 {
            8
        } else {
            let (at, len) = self.cell(i - 1)?;
            at + len
        };
        if at + 8 > self.payload.len() {
            return Err(self.bad("child pointer past the payload"));
        }
        Ok(at)
    }

    /// Child `i` of a branch, `0..=count`: 0 is the first child, `i` the child of cell `i - 1`.
    pub(crate) fn child(&self, i: usize) -> Result<PageId> {
        let raw = if i == 0 {
            u64_at(self.payload, 8)
        } else {
            let (at, len) = self.cell(i - 1)?;
            u64_at(self.payload, at + len)
        };
        raw.map(PageId::new)
            .ok_or_else(|| self.bad("child pointer past the payload"))
    }

    /// Binary search among the keys: `Ok(i)` if key `i` equals `key`, else `Err(i)` where it
    /// would go.
    pub(crate) fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let want = head(key);
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // `new` checked that the slot array lies inside the payload.
            let got = head_at(self.payload, HEAD + SLOT * mid + 2).unwrap_or(0);
            let order = match got.cmp(&want) {
                std::cmp::Ordering::Equal => self.key(mid)?.cmp(key),
                unequal => unequal,
            };
            match order {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// The child of a branch whose range holds `key`: after every cell key `<= key`.
    pub(crate) fn route(&self, key: &[u8]) -> Result<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i + 1,
            Err(i) => i,
        })
    }

    /// Decodes the whole node for a change.
    pub(crate) fn decode(self) -> Result<Node> {
        if self.is_leaf() {
            let mut e = Vec::with_capacity(self.count);
            for i in 0..self.count {
                e.push((self.key(i)?.to_vec(), self.value(i)?.to_owned()));
            }
            Ok(Node::Leaf(e))
        } else {
            let mut e = Vec::with_capacity(self.count);
            for i in 0..self.count {
                e.push((self.key(i)?.to_vec(), self.child(i + 1)?));
            }
            Ok(Node::Branch {
                level: self.level,
                first: self.child(0)?,
                entries: e,
            })
        }
    }
}

/// Decodes a node read in place (a function, so it can be passed for any lifetime).
pub(crate) fn decode(view: NodeView<'_>) -> Result<Node> {
    view.decode()
}

/// The shortest key `s` with `left < s <= right` (suffix truncation of separators):
/// `right`'s shortest prefix greater than `left`.
pub(crate) fn separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    let common = left.iter().zip(right).take_while(|(a, b)| a == b).count();
    right.get(..=common).unwrap_or(right).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_page::PageSize;

    #[test]
    fn nodes_round_trip_through_pages() {
        let leaf = Node::Leaf(vec![
            (b"a".to_vec(), Val::Inline(b"1".to_vec())),
            (
                b"bb".to_vec(),
                Val::Overflow {
                    first: PageId::new(9),
                    len: 100_000,
                },
            ),
            (Vec::new(), Val::Inline(Vec::new())),
        ]);
        let branch = Node::Branch {
            level: 2,
            first: PageId::new(5),
            entries: vec![
                (b"m".to_vec(), PageId::new(6)),
                (b"t".to_vec(), PageId::new(7)),
            ],
        };
        for node in [leaf, branch] {
            let mut page = PageBuf::new(PageSize::MIN, node.page_type());
            node.encode(&mut page).unwrap();
            let view = NodeView::new(PageId::new(3), node.page_type(), page.payload()).unwrap();
            assert_eq!(view.size(), node.size());
            assert_eq!(view.decode().unwrap(), node);
        }
    }

    #[test]
    fn in_place_branch_inserts_match_decoded_inserts() {
        let mut first = PageId::new(1);
        let mut model: Vec<(Vec<u8>, PageId)> = Vec::new();
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeBranch);
        let node = |first, model: &Vec<(Vec<u8>, PageId)>| Node::Branch {
            level: 1,
            first,
            entries: model.clone(),
        };
        node(first, &model).encode(&mut page).unwrap();
        let mut x = 11u64;
        // Inserts that had to pack the cells first (after removals left gaps).
        let mut packed = 0;
        for step in 0..2000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let [a, b, low, ..] = x.to_le_bytes();
            let key = vec![a >> 5, 9, 9, b >> 1];
            let view =
                NodeView::new(PageId::new(2), PageType::BTreeBranch, page.payload()).unwrap();
            let len = match view.search(&key).unwrap() {
                Ok(i) => {
                    // Removals leave gaps, so that later inserts pack the cells.
                    let (_, klen) = view.cell(i).unwrap();
                    model.remove(i);
                    NodeEdit::new(&mut page).remove(i, 2 + klen + 8)
                }
                Err(i) if view.size() + 64 < 4000 => {
                    // A split of child `i`: the child pointer moves to the left half (maybe
                    // a copy), and the separator goes in with the right half.
                    let left = PageId::new(u64::from(low) + 100);
                    let right = PageId::new(x % 10_000);
                    let at = view.child_offset(i).unwrap();
                    let cell = branch_cell(&key, right);
                    let (cells_from, _) = view.cell_area();
                    if cells_from < HEAD + SLOT * (view.count() + 1) + cell.len() {
                        packed += 1;
                    }
                    page.body_mut()[at..at + 8].copy_from_slice(&left.get().to_le_bytes());
                    if i == 0 {
                        first = left;
                    } else {
                        model[i - 1].1 = left;
                    }
                    model.insert(i, (key, right));
                    NodeEdit::new(&mut page).insert(i, &model[i].0, &cell)
                }
                Err(_) => continue,
            };
            let want = node(first, &model);
            assert_eq!(len, want.size(), "step {step}");
            let view =
                NodeView::new(PageId::new(2), PageType::BTreeBranch, page.payload()).unwrap();
            assert_eq!(view.decode().unwrap(), want, "step {step}");
            assert_eq!(view.cells_problem().unwrap(), None, "step {step}");
        }
        assert!(packed > 10, "only {packed} inserts packed the cells first");
    }

    #[test]
    fn in_place_leaf_edits_match_decoded_edits() {
        let mut model: Vec<(Vec<u8>, Val)> = Vec::new();
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        Node::Leaf(Vec::new()).encode(&mut page).unwrap();
        let mut x = 7u64;
        // Inserts that found too little free space below the cells (they pack them first).
        let mut packed = 0;
        // Copies that `pack_leaf` changed.
        let mut repacked = 0;
        for step in 0..3000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let [a, b, ..] = x.to_le_bytes();
            // Short keys (heads padded with zeros) and longer ones sharing their head, so
            // that searches decide by heads and by whole keys.
            let key = if b % 3 == 0 {
                vec![a >> 4, b]
            } else {
                vec![a >> 4, 7, 7, 7, b]
            };
            let view = NodeView::new(PageId::new(2), PageType::BTreeLeaf, page.payload()).unwrap();
            let found = view.search(&key).unwrap();
            assert_eq!(
                found,
                model.binary_search_by(|(k, _)| k.as_slice().cmp(&key)),
                "step {step}"
            );
            let len = match found {
                Ok(i) if step % 3 == 0 => {
                    let cell = view.leaf_cell_len(i).unwrap();
                    model.remove(i);
                    NodeEdit::new(&mut page).remove(i, cell)
                }
                Ok(i) if step % 3 == 1 => {
                    // A value of the same cell size written over the old one.
                    let val = match view.value(i).unwrap() {
                        ValRef::Inline(old) => Val::Inline(vec![a ^ 0x5a; old.len()]),
                        ValRef::Overflow { len, .. } => Val::Overflow {
                            first: PageId::new(x % 777),
                            len,
                        },
                    };
                    let cell = leaf_cell(&key, val.as_ref());
                    assert_eq!(cell.len(), view.leaf_cell_len(i).unwrap());
                    model[i].1 = val;
                    NodeEdit::new(&mut page).overwrite(i, &cell)
                }
                Err(i) if view.size() + 64 < 4000 => {
                    let val = if x.is_multiple_of(5) {
                        Val::Overflow {
                            first: PageId::new(x % 1000),
                            len: x % 99_999,
                        }
                    } else {
                        Val::Inline(vec![a; usize::from(b % 20)])
                    };
                    let cell = leaf_cell(&key, val.as_ref());
                    let (cells_from, _) = view.cell_area();
                    if cells_from < HEAD + SLOT * (view.count() + 1) + cell.len() {
                        packed += 1;
                    }
                    let len = NodeEdit::new(&mut page).insert(i, &key, &cell);
                    model.insert(i, (key, val));
                    len
                }
                _ => continue,
            };
            let node = Node::Leaf(model.clone());
            assert_eq!(len, node.size());
            let view = NodeView::new(PageId::new(2), PageType::BTreeLeaf, page.payload()).unwrap();
            assert_eq!(view.size(), node.size());
            assert_eq!(view.decode().unwrap(), node, "step {step}");
            if step % 25 == 0 {
                let mut copy = page.clone();
                repacked += usize::from(pack_leaf(PageId::new(2), &mut copy));
                let view =
                    NodeView::new(PageId::new(2), PageType::BTreeLeaf, copy.payload()).unwrap();
                assert_eq!(
                    view.decode().unwrap(),
                    node,
                    "step {step}: packing lost an entry"
                );
                assert_eq!(view.cells_problem().unwrap(), None, "step {step}");
                assert_eq!(
                    view.cell_area().1,
                    0,
                    "step {step}: a gap left after packing"
                );
                let cells: Vec<usize> =
                    (0..view.count()).map(|i| view.cell(i).unwrap().0).collect();
                assert!(
                    cells.windows(2).all(|w| w[0] > w[1]),
                    "step {step}: cells not in key order from the end down: {cells:?}"
                );
                assert!(
                    !pack_leaf(PageId::new(2), &mut copy),
                    "a packed leaf packed again"
                );
            }
        }
        assert!(model.len() > 20);
        // Deterministic: several sampled copies were scattered, and packing changed them.
        assert!(repacked > 3, "{repacked} leaves needed packing");
        // Deterministic (a fixed sequence): the packing path ran, more than once.
        assert!(packed > 1, "{packed} inserts packed the cells first");
    }

    #[test]
    fn separators_are_the_shortest_between() {
        assert_eq!(separator(b"abc", b"abd"), b"abd");
        assert_eq!(separator(b"abc", b"b"), b"b");
        assert_eq!(separator(b"a", b"abcdef"), b"ab");
        assert_eq!(separator(b"", b"x"), b"x");
    }

    proptest::proptest! {
        /// Random payloads, and valid nodes with flipped bits or cut short, decode to errors
        /// or to something; never a panic.
        #[test]
        fn any_payload_decodes_or_errors(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            keys in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30), 1..20),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            leaf in proptest::prelude::any::<bool>(),
        ) {
            let node = if leaf {
                Node::Leaf(keys.iter().map(|k| (k.clone(), Val::Inline(k.clone()))).collect())
            } else {
                Node::Branch { level: 1, first: PageId::new(2), entries: keys.iter().map(|k| (k.clone(), PageId::new(3))).collect() }
            };
            let mut page = PageBuf::new(PageSize::MIN, node.page_type());
            node.encode(&mut page).unwrap();
            let mut flipped = page.payload().to_vec();
            let bit = flip.index(flipped.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            let short = &page.payload()[..cut.index(page.payload().len())];
            for bytes in [&junk[..], &flipped[..], short] {
                for t in [PageType::BTreeLeaf, PageType::BTreeBranch, PageType::Overflow] {
                    if let Ok(v) = NodeView::new(PageId::new(2), t, bytes) {
                        drop(v.decode());
                        drop(v.search(b"key"));
                        drop(v.route(b"key"));
                        for i in 0..=v.count() {
                            drop((v.key(i), v.value(i), v.child(i)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn edits_of_a_crafted_header_change_nothing() {
        let cell = leaf_cell(b"k", ValRef::Inline(b"v"));
        // `cells_from` past the body: an insert would write its cell out there.
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        Node::Leaf(Vec::new()).encode(&mut page).unwrap();
        page.body_mut()[4..6].copy_from_slice(&u16::MAX.to_le_bytes());
        let before = page.clone();
        NodeEdit::new(&mut page).insert(0, b"k", &cell);
        assert_eq!(page.payload(), before.payload());
        // `count` past the body: a removal would move slots from out there.
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        Node::Leaf(vec![(b"k".to_vec(), Val::Inline(b"v".to_vec()))])
            .encode(&mut page)
            .unwrap();
        page.body_mut()[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        let before = page.clone();
        NodeEdit::new(&mut page).remove(0, cell.len());
        assert_eq!(page.payload(), before.payload());
    }

    #[test]
    fn short_payloads_are_errors() {
        for len in 0..HEAD {
            let bytes = vec![VERSION; len];
            let got = NodeView::new(PageId::new(2), PageType::BTreeLeaf, &bytes);
            assert!(
                matches!(got, Err(Error::Corruption { .. })),
                "{len} bytes: {got:?}"
            );
        }
    }

    #[test]
    fn hostile_payloads_are_errors() {
        for bytes in [
            vec![],
            vec![1, 0, 255, 255],
            vec![
                2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0,
            ],
        ] {
            if let Ok(v) = NodeView::new(PageId::new(2), PageType::BTreeLeaf, &bytes) {
                for i in 0..v.count() {
                    assert!(v.key(i).is_err() || v.value(i).is_err());
                }
            }
        }
    }
}
