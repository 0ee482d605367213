//! Crafted trees: node and overflow pages with valid checksums but hostile contents (cycles,
//! wrong levels, overlapping or out-of-range cells, unsorted keys, huge lengths). Every
//! operation returns a result — never a panic, a hang or an unbounded allocation.

use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::MemVfs;
use lightning_page::{Lsn, OpenOptions, PageAllocator, PageBuf, PageFile, PageSize, PageType};
use proptest::prelude::*;

/// One cell of a crafted node: key, then a value kind or child.
type Cell = (Vec<u8>, u8, u64, u64);

fn page() -> impl Strategy<Value = (PageType, Vec<u8>)> {
    let cell = (
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..6),
        0u8..3,
        2u64..8,
        prop_oneof![0u64..64, Just(u64::MAX), 5000u64..20_000],
    );
    (
        prop_oneof![
            Just(PageType::BTreeLeaf),
            Just(PageType::BTreeBranch),
            Just(PageType::Overflow)
        ],
        0u8..3,
        2u64..8,
        proptest::collection::vec(cell, 0..8),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(ty, level, first, cells, damage, reversed)| {
            (ty, craft(level, first, &cells, &damage, reversed))
        })
}

fn craft(
    level: u8,
    first: u64,
    cells: &[Cell],
    damage: &[(prop::sample::Index, u8)],
    reversed: bool,
) -> Vec<u8> {
    let mut p = vec![2, level];
    p.extend_from_slice(&(cells.len() as u16).to_le_bytes());
    // The cells start right after the slots (`cells_from`), with no gap among them.
    p.extend_from_slice(&((16 + 6 * cells.len()) as u16).to_le_bytes());
    p.extend_from_slice(&[0; 2]);
    p.extend_from_slice(&first.to_le_bytes());
    let slots_at = p.len();
    p.resize(slots_at + 6 * cells.len(), 0);
    let mut offsets = Vec::new();
    for (key, kind, page, len) in cells {
        // A slot: the cell's offset, then the key's head (first 4 bytes, zero-padded).
        let mut head = [0u8; 4];
        head[..key.len().min(4)].copy_from_slice(&key[..key.len().min(4)]);
        offsets.push((p.len(), head));
        p.extend_from_slice(&(key.len() as u16).to_le_bytes());
        p.extend_from_slice(key);
        if level == 0 {
            match kind {
                0 => {
                    let v = vec![b'v'; (*len % 50) as usize];
                    p.push(0);
                    p.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    p.extend_from_slice(&v);
                }
                1 => {
                    p.push(1);
                    p.extend_from_slice(&page.to_le_bytes());
                    p.extend_from_slice(&len.to_le_bytes());
                }
                _ => p.push(7),
            }
        } else {
            p.extend_from_slice(&page.to_le_bytes());
        }
    }
    if reversed {
        offsets.reverse();
    }
    for (i, (at, head)) in offsets.iter().enumerate() {
        let slot = slots_at + 6 * i;
        p[slot..slot + 2].copy_from_slice(&(*at as u16).to_le_bytes());
        p[slot + 2..slot + 6].copy_from_slice(head);
    }
    for (at, b) in damage {
        let i = at.index(p.len());
        p[i] = *b;
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(512)).unwrap_or(u32::MAX)))]

    #[test]
    fn crafted_trees_give_errors_never_panics(pages in proptest::collection::vec(page(), 6)) {
        let vfs = MemVfs::new();
        let path = "data.ldb".as_ref();
        {
            let file = PageFile::create(&vfs, path, PageSize::MIN).unwrap();
            let mut alloc = PageAllocator::load(&file).unwrap();
            let ids: Vec<_> = pages.iter().map(|_| alloc.allocate()).collect();
            file.extend_to(alloc.page_count()).unwrap();
            for (i, (id, (ty, payload))) in ids.iter().zip(&pages).enumerate() {
                // The root's type mostly agrees with its level byte, so that most cases get
                // past opening the tree into the operations.
                let ty = match (i, payload.get(1)) {
                    (0, Some(0)) if payload.len() % 4 != 0 => PageType::BTreeLeaf,
                    (0, Some(_)) if payload.len() % 4 != 0 => PageType::BTreeBranch,
                    _ => *ty,
                };
                let mut page = PageBuf::new(PageSize::MIN, ty);
                page.set_payload(&payload[..payload.len().min(4000)]).unwrap();
                file.write_page(*id, alloc.generation(), &mut page).unwrap();
            }
            alloc.checkpoint(&file, Some(ids[0]), Lsn::new(0)).unwrap();
        }
        let file = Arc::new(PageFile::open(&vfs, path, OpenOptions::default()).unwrap());
        let root = file.superblock().catalog_root.unwrap();
        let Ok(tree) = BTree::open(Arc::new(Store::open(file, 16 * 4096).unwrap()), root) else {
            return Ok(());
        };
        for key in [&b""[..], b"a", b"b", b"bb", b"c", b"zzz"] {
            drop(tree.get(key));
        }
        drop(tree.iter().take(100).collect::<Vec<_>>());
        drop(tree.iter().rev().take(100).collect::<Vec<_>>());
        let mut c = tree.cursor();
        drop(c.seek(b"b"));
        for _ in 0..5 {
            drop(c.next());
        }
        drop(c.prev());
        drop(tree.check());
        for (i, key) in [&b"a"[..], b"b", b"ab", b"ca"].iter().enumerate() {
            drop(tree.insert(key, &vec![1; if i == 2 { 3000 } else { 10 }]));
            drop(tree.remove(b"a"));
        }
        drop(tree.check());
        drop(tree.checkpoint(Lsn::new(1)));
    }
}

/// A leaf cell claiming an overflow value longer than `MAX_VALUE_LEN` is refused as such
/// before its chain is read or anything is allocated for it; at the limit it is not
/// refused for its length.
#[test]
fn an_overflow_value_claimed_above_the_limit_is_refused_before_reading() {
    for (len, above) in [
        (lightning_btree::MAX_VALUE_LEN + 1, true),
        (u64::MAX, true),
        (lightning_btree::MAX_VALUE_LEN, false),
    ] {
        let vfs = MemVfs::new();
        let path = "data.ldb".as_ref();
        {
            let file = PageFile::create(&vfs, path, PageSize::MIN).unwrap();
            let mut alloc = PageAllocator::load(&file).unwrap();
            let (leaf, other) = (alloc.allocate(), alloc.allocate());
            file.extend_to(alloc.page_count()).unwrap();
            let cells = [(b"k".to_vec(), 1, other.get(), len)];
            let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
            page.set_payload(&craft(0, 0, &cells, &[], false)).unwrap();
            file.write_page(leaf, alloc.generation(), &mut page)
                .unwrap();
            // Not an overflow page: reading the chain fails differently.
            let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
            page.set_payload(&craft(0, 0, &[], &[], false)).unwrap();
            file.write_page(other, alloc.generation(), &mut page)
                .unwrap();
            alloc.checkpoint(&file, Some(leaf), Lsn::new(0)).unwrap();
        }
        let file = Arc::new(PageFile::open(&vfs, path, OpenOptions::default()).unwrap());
        let root = file.superblock().catalog_root.unwrap();
        let tree = BTree::open(Arc::new(Store::open(file, 16 * 4096).unwrap()), root).unwrap();
        let e = tree.get(b"k").unwrap_err().to_string();
        assert_eq!(e.contains("above the limit"), above, "{len}: {e}");
    }
}

/// A tree whose root is one leaf page holding `payload` (checksum valid: a crafted page).
fn tree_of_one_leaf(payload: &[u8]) -> BTree {
    let vfs = MemVfs::new();
    let path = "data.ldb".as_ref();
    {
        let file = PageFile::create(&vfs, path, PageSize::MIN).unwrap();
        let mut alloc = PageAllocator::load(&file).unwrap();
        let leaf = alloc.allocate();
        file.extend_to(alloc.page_count()).unwrap();
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        page.set_payload(payload).unwrap();
        file.write_page(leaf, alloc.generation(), &mut page)
            .unwrap();
        alloc.checkpoint(&file, Some(leaf), Lsn::new(0)).unwrap();
    }
    let file = Arc::new(PageFile::open(&vfs, path, OpenOptions::default()).unwrap());
    let root = file.superblock().catalog_root.unwrap();
    BTree::open(Arc::new(Store::open(file, 16 * 4096).unwrap()), root).unwrap()
}

/// Leaf cells with inline five-byte values under `keys`.
fn cells_of(keys: &[&[u8]]) -> Vec<Cell> {
    keys.iter().map(|k| (k.to_vec(), 0, 0, 5)).collect()
}

/// A slot whose head is not its key's (a crafted page: the checksum is valid) sends a
/// search the wrong way; `check` names the slot, and reads return results, never panic.
#[test]
fn a_slot_head_that_disagrees_with_its_key_is_a_check_problem() {
    for wrong in [false, true] {
        let mut payload = craft(0, 0, &cells_of(&[b"apple", b"berry", b"melon"]), &[], false);
        if wrong {
            // Slot 1's head (bytes 2..6 of the slot at 16 + 6) says "zzzz".
            payload[16 + 6 + 2..16 + 6 + 6].copy_from_slice(b"zzzz");
        }
        let tree = tree_of_one_leaf(&payload);
        let report = tree.check().unwrap();
        let named = report
            .problems
            .iter()
            .any(|p| p.to_string().contains("slot 1 records a head"));
        assert_eq!(named, wrong, "{:?}", report.problems);
        assert_eq!(report.entries, 3);
        // With the right heads every key is found; with the wrong one "berry" is not (the
        // search trusts heads), which is what `check` is for.
        assert_eq!(tree.get(b"berry").unwrap().is_some(), !wrong);
        assert!(tree.get(b"apple").unwrap().is_some());
    }
}

/// Cells that overlap, or a header whose cell area disagrees with its cells, are `check`
/// problems (searches and in-place edits would read or write one cell's bytes as another's).
#[test]
fn overlapping_cells_and_a_wrong_gap_are_check_problems() {
    for damage in ["none", "overlap", "gap"] {
        let mut payload = craft(0, 0, &cells_of(&[b"apple", b"apply", b"berry"]), &[], false);
        match damage {
            // Slot 1 points at slot 0's cell: same head ("appl"), keys out of order.
            "overlap" => {
                let first = payload[16..18].to_vec();
                payload[22..24].copy_from_slice(&first);
            }
            // The header claims a 3-byte gap no cell leaves.
            "gap" => payload[6] = 3,
            _ => {}
        }
        let tree = tree_of_one_leaf(&payload);
        let report = tree.check().unwrap();
        let about_cells = report
            .problems
            .iter()
            .any(|p| p.what.contains("cells overlap") || p.what.contains("cells take"));
        assert_eq!(
            about_cells,
            damage != "none",
            "{damage}: {:?}",
            report.problems
        );
    }
}
