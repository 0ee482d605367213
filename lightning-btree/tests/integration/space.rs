//! Space: pages freed by removals are reused, and a free tail of the file is given back at
//! a checkpoint once no retained image holds it.

use lightning_page::Lsn;
use std::collections::BTreeMap;

use lightning_page::vfs::MemVfs;

use crate::{assert_same, reopen_from, tree_on};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

#[test]
fn checkpoints_give_back_the_free_tail_of_the_file() {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 256);
    for i in 0..20_000 {
        tree.insert(&key(i), &[7; 100]).unwrap();
    }
    tree.checkpoint(Lsn::new(1)).unwrap();
    let full = tree.store().file().page_count();
    for i in 0..20_000 {
        assert!(tree.remove(&key(i)).unwrap());
    }
    // Freed pages leave the two retained images after two more checkpoints; then the last
    // live pages move down out of the tail, leave the images in turn, and the file is cut.
    for lsn in 2..10 {
        tree.checkpoint(Lsn::new(lsn)).unwrap();
    }
    let empty = tree.store().file().page_count();
    assert!(
        empty * 20 < full,
        "{full} pages with 20,000 entries, still {empty} pages when empty"
    );
    assert_same(&tree, &BTreeMap::new());
    // The cut file reopens, and grows again.
    drop(tree);
    let tree = reopen_from(&vfs, 64);
    assert_same(&tree, &BTreeMap::new());
    let mut model = BTreeMap::new();
    for i in 0..5_000 {
        tree.insert(&key(i), &[9; 100]).unwrap();
        model.insert(key(i), vec![9; 100]);
    }
    tree.checkpoint(Lsn::new(10)).unwrap();
    assert_same(&tree, &model);
    drop(tree);
    assert_same(&reopen_from(&vfs, 64), &model);
}

#[test]
fn removals_make_room_that_later_inserts_reuse() {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 256);
    let mut model = BTreeMap::new();
    let mut sizes = Vec::new();
    for round in 0..8u8 {
        for i in 0..5_000 {
            tree.insert(&key(i), &[round; 100]).unwrap();
            model.insert(key(i), vec![round; 100]);
        }
        tree.checkpoint(Lsn::new(u64::from(round) * 2 + 1)).unwrap();
        for i in (0..5_000).step_by(2) {
            tree.remove(&key(i)).unwrap();
            model.remove(&key(i));
        }
        tree.checkpoint(Lsn::new(u64::from(round) * 2 + 2)).unwrap();
        sizes.push(tree.store().file().page_count());
    }
    assert_same(&tree, &model);
    // Steady state: the file stops growing once freed pages come back.
    let (early, late) = (sizes[3], sizes[7]);
    assert!(late <= early + early / 10, "file kept growing: {sizes:?}");
}

/// Moving live pages out of the tail reads the branches and the leaves it moves, not every
/// leaf: a checkpoint in a file with free room below calls it, so reading the whole tree
/// there made every small commit cost a full walk.
#[test]
fn relocating_the_tail_reads_only_the_leaves_it_moves() {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 4096);
    for i in 0..40_000 {
        tree.insert(&key(i), &[7; 100]).unwrap();
    }
    tree.checkpoint(Lsn::new(1)).unwrap();
    // Free about a tenth of the leaves, low in the file (keys were inserted in order), and
    // let the frees leave the retained images.
    for i in 0..4_000 {
        assert!(tree.remove(&key(i)).unwrap());
    }
    for lsn in 2..5 {
        tree.store()
            .checkpoint(Lsn::new(lsn), || Some(tree.root()))
            .unwrap();
    }
    let report = tree.check().unwrap();
    let before = tree.store().cache_stats();
    let moved = tree.relocate_tail(u64::MAX).unwrap();
    let after = tree.store().cache_stats();
    let pins = (after.hits + after.misses) - (before.hits + before.misses);
    assert!(moved > 0, "some pages were in the tail");
    assert!(
        moved * 4 < report.leaves,
        "{moved} moved of {} leaves: most stay",
        report.leaves
    );
    // Each moved leaf: looked at, decoded, written to its new page (three pins); each
    // branch: read, maybe rewritten. Reading every leaf would be 2,000 pins more.
    assert!(
        pins <= 3 * moved + 2 * report.branches + 4,
        "{pins} pins to move {moved} pages of a tree of {} branches and {} leaves",
        report.branches,
        report.leaves
    );
    let model: BTreeMap<Vec<u8>, Vec<u8>> =
        (4_000..40_000).map(|i| (key(i), vec![7; 100])).collect();
    assert_same(&tree, &model);
}

/// Leaves and branches per entry for inserts in `order`: (leaves, branches, entries).
fn shape(order: impl Iterator<Item = u32>) -> (u64, u64, u64) {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 4096);
    for i in order {
        tree.insert(&key(i), &[7; 150]).unwrap();
    }
    let report = tree.check().unwrap();
    assert!(report.is_ok(), "{report}");
    (report.leaves, report.branches, report.entries)
}

#[test]
fn ascending_inserts_fill_nodes_to_about_three_quarters() {
    // A 4 KiB leaf holds about 22 cells of 11-byte keys and 150-byte values; split evenly,
    // ascending inserts would leave every leaf half full (about 11 entries).
    let (leaves, branches, entries) = shape(0..20_000);
    let per_leaf = entries / leaves;
    assert!(
        per_leaf >= 15,
        "{per_leaf} entries per leaf ({leaves} leaves, {branches} branches)"
    );
    // Descending and random orders keep the even split.
    let (desc_leaves, _, _) = shape((0..20_000).rev());
    assert!(desc_leaves > leaves, "descending: {desc_leaves} leaves");
    let mut rng = lightning_testkit::Rng::new(9);
    let mut shuffled: Vec<u32> = (0..20_000).collect();
    for i in (1..shuffled.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).unwrap();
        shuffled.swap(i, j);
    }
    let (random_leaves, _, _) = shape(shuffled.into_iter());
    assert!(random_leaves > leaves, "random: {random_leaves} leaves");
}

/// A pseudo-random permutation of `0..n` (a fixed seed: the same every run).
fn shuffled(n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, usize::try_from(x % (i as u64 + 1)).unwrap());
    }
    order
}

/// Walks the whole tree with `repack_step`; leaves examined and freed.
fn repack_all(tree: &lightning_btree::BTree) -> (u64, u64) {
    let (mut examined, mut freed) = (0, 0);
    let mut from = Vec::new();
    loop {
        let step = tree.repack_step(&from).unwrap();
        examined += step.examined;
        freed += step.freed;
        match step.next {
            Some(next) => {
                assert!(
                    next > from,
                    "the walk moves forward: {next:?} after {from:?}"
                );
                from = next;
            }
            None => return (examined, freed),
        }
    }
}

/// Three quarters of the entries removed at random leave the leaves about a third full,
/// above the merge bound; repacking gives back more than half of them, online, and the
/// tree holds the same entries, checks clean and reopens after checkpoints.
#[test]
fn repacking_gives_back_the_leaves_random_removals_left_sparse() {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 4096);
    let mut model = BTreeMap::new();
    for i in shuffled(40_000) {
        tree.insert(&key(i), &[7; 150]).unwrap();
        model.insert(key(i), vec![7; 150]);
    }
    tree.checkpoint(Lsn::new(1)).unwrap();
    for i in shuffled(40_000).into_iter().take(30_000) {
        assert!(tree.remove(&key(i)).unwrap());
        model.remove(&key(i));
    }
    let before = tree.check().unwrap();
    assert!(before.is_ok(), "{before}");
    let (examined, freed) = repack_all(&tree);
    let after = tree.check().unwrap();
    assert!(after.is_ok(), "{after}");
    // A branch that fell below the fill bound merges with a neighbour, whose leaves the
    // next step then looks at again.
    assert!(
        (before.leaves..before.leaves * 2).contains(&examined),
        "every leaf looked at once or twice: {examined} of {}",
        before.leaves
    );
    assert_eq!(
        after.leaves,
        before.leaves - freed,
        "the freed leaves are gone"
    );
    assert!(
        after.leaves * 2 < before.leaves,
        "{} leaves before, {} after",
        before.leaves,
        after.leaves
    );
    // 10,000 entries of 8 + 150 bytes and a slot: at most 90 % of a 4 KiB page each leaf,
    // and the last of each branch may be fuller or emptier.
    let packed_min: u64 = (10_000 * (6 + 2 + 11 + 150 + 1)) / 4096;
    assert!(after.leaves >= packed_min, "{} leaves", after.leaves);
    assert_same(&tree, &model);
    // Packed enough: a second walk changes nothing.
    assert_eq!(repack_all(&tree).1, 0, "a second walk frees nothing");
    for lsn in 2..6 {
        tree.checkpoint(Lsn::new(lsn)).unwrap();
    }
    drop(tree);
    let tree = reopen_from(&vfs, 256);
    assert_same(&tree, &model);
    assert!(tree.check().unwrap().is_ok());
}

/// A tree grown by random inserts (leaves half to fully full, about 70 % on average) is
/// left nearly as it is: packing it would only make the next inserts split the leaves again.
#[test]
fn repacking_leaves_a_tree_of_half_full_leaves_alone() {
    let vfs = MemVfs::new();
    let tree = tree_on(&vfs, 4096);
    for i in shuffled(20_000) {
        tree.insert(&key(i), &[7; 150]).unwrap();
    }
    let leaves = tree.check().unwrap().leaves;
    let (examined, freed) = repack_all(&tree);
    assert_eq!(
        examined, leaves,
        "no branch merged, so each leaf looked at once"
    );
    // Only the odd run of two or three leaves just above half full is worth packing.
    assert!(freed * 100 < leaves, "{freed} of {leaves} leaves freed");
    assert_eq!(tree.check().unwrap().leaves, leaves - freed);
}
