//! Checkpoints through the crash VFS: the durable image opens and checks after a power cut,
//! later writes never touch its pages; flipped bits are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, OpenMode, Vfs};
use lightning_page::{OpenOptions, PageFile, PageId, PageSize};
use lightning_testkit::{Rng, run_seeds, scaled};

use crate::{assert_same, tree_on};

fn reopen(vfs: &dyn Vfs, cache_pages: u64) -> BTree {
    let file = Arc::new(PageFile::open(vfs, "data.ldb".as_ref(), OpenOptions::default()).unwrap());
    let root = file.superblock().catalog_root.unwrap();
    BTree::open(
        Arc::new(Store::open(file, cache_pages * 4096).unwrap()),
        root,
    )
    .unwrap()
}

fn churn(tree: &BTree, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, rng: &mut Rng, ops: u64) {
    for _ in 0..ops {
        let k = format!("key{:04}", rng.below(3000)).into_bytes();
        if rng.chance(30) {
            tree.remove(&k).unwrap();
            model.remove(&k);
        } else {
            let len = if rng.chance(3) {
                3000 + rng.below(6000) as usize
            } else {
                rng.below(100) as usize
            };
            let v = rng.bytes(len);
            tree.insert(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
}

#[test]
fn the_checkpoint_image_survives_power_cuts_and_is_never_written_again() {
    let scenarios = run_seeds(
        "btree checkpoint",
        scaled(40),
        |seed| -> Result<(), String> {
            let vfs = CrashVfs::new(seed);
            let mut rng = Rng::new(seed);
            let tree = tree_on(&vfs, 16 + rng.below(48));
            let mut model = BTreeMap::new();
            let n = 500 + rng.below(1500);
            churn(&tree, &mut model, &mut rng, n);
            let cp = tree.checkpoint(7).map_err(|e| e.to_string())?;
            let image: BTreeSet<PageId> = tree.check().unwrap().reachable.into_iter().collect();
            assert!(
                cp.dirty_pages
                    .iter()
                    .all(|p| cp.superblock.page_count > p.get())
            );
            let durable = model.clone();
            // Writes after the checkpoint, with evictions writing pages back meanwhile.
            tree.store().record_writes(true);
            let n = 200 + rng.below(800);
            churn(&tree, &mut model, &mut rng, n);
            if rng.chance(50) {
                tree.store().record_writes(true);
            }
            let written = tree.store().record_writes(false);
            let touched: Vec<&PageId> = written.iter().filter(|p| image.contains(p)).collect();
            if !touched.is_empty() {
                return Err(format!(
                    "pages of the checkpoint image written after it: {touched:?}"
                ));
            }
            assert_same(&tree, &model);
            let mode = match rng.below(4) {
                0 => CrashMode::DropUnsynced,
                1 => CrashMode::RandomPrefix,
                2 => CrashMode::RandomSubset,
                _ => CrashMode::TornWrite { garbage: true },
            };
            drop(tree);
            vfs.crash(mode);
            let tree = reopen(&vfs, 32);
            let report = tree.check().map_err(|e| e.to_string())?;
            if !report.is_ok() {
                return Err(format!("after {mode:?}: {report}"));
            }
            assert_same(&tree, &durable);
            // The reopened tree works on: copy-on-write from its image, then another checkpoint.
            let mut model = durable;
            churn(&tree, &mut model, &mut rng, 300);
            tree.checkpoint(8).map_err(|e| e.to_string())?;
            drop(tree);
            vfs.crash(CrashMode::DropUnsynced);
            assert_same(&reopen(&vfs, 32), &model);
            Ok(())
        },
    );
    assert_eq!(scenarios, scaled(40));
}

#[test]
fn a_power_cut_inside_a_checkpoint_leaves_the_previous_image_or_the_new_one() {
    let (mut old, mut new) = (0, 0);
    let scenarios = run_seeds(
        "btree cut inside a checkpoint",
        scaled(40),
        |seed| -> Result<(), String> {
            let vfs = CrashVfs::new(seed);
            let mut rng = Rng::new(seed ^ 0x00c0_ffee);
            let tree = tree_on(&vfs, 16 + rng.below(48));
            let mut model = BTreeMap::new();
            let n = 300 + rng.below(700);
            churn(&tree, &mut model, &mut rng, n);
            tree.checkpoint(1).map_err(|e| e.to_string())?;
            let first = model.clone();
            let n = 100 + rng.below(900);
            churn(&tree, &mut model, &mut rng, n);
            // The power goes out at the n-th write or sync of the second checkpoint (page
            // writes, free list, superblock, syncs), or after it when it has fewer.
            vfs.inject(Fault {
                op: FaultOp::Any,
                nth: rng.below(120),
                permanent: true,
                kind: FaultKind::PowerCut,
            });
            let finished = tree.checkpoint(2).is_ok();
            drop(tree);
            let report = vfs.crash(if rng.chance(50) {
                CrashMode::RandomPrefix
            } else {
                CrashMode::TornWrite {
                    garbage: rng.chance(50),
                }
            });
            let tree = reopen(&vfs, 32);
            let check = tree.check().map_err(|e| e.to_string())?;
            if !check.is_ok() {
                return Err(format!("after {report:?}: {check}"));
            }
            let all: Vec<(Vec<u8>, Vec<u8>)> = tree
                .iter()
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            if all.iter().map(|(k, v)| (k, v)).eq(first.iter()) && !finished {
                old += 1;
            } else if all.iter().map(|(k, v)| (k, v)).eq(model.iter()) {
                new += 1;
            } else {
                return Err(format!(
                    "after {report:?}: the tree is neither checkpoint ({} entries)",
                    all.len()
                ));
            }
            Ok(())
        },
    );
    assert_eq!(scenarios, scaled(40));
    // Both outcomes occur: the cut really lands inside the checkpoint sometimes.
    assert!(
        old > 0 && new > 0,
        "previous image {old} times, new image {new} times"
    );
}

#[test]
fn a_flipped_bit_in_any_page_is_reported_by_check_and_by_the_read() {
    let vfs = CrashVfs::new(1);
    let tree = tree_on(&vfs, 64);
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(9);
    churn(&tree, &mut model, &mut rng, 600);
    tree.checkpoint(1).unwrap();
    let pages = tree.check().unwrap().reachable;
    drop(tree);
    vfs.crash(CrashMode::DropUnsynced);
    assert!(pages.len() > 10);
    for (n, page) in pages.iter().enumerate() {
        let file = vfs.open("data.ldb".as_ref(), OpenMode::ReadWrite).unwrap();
        let at = page.get() * PageSize::MIN.len() as u64 + rng.below(4096);
        let bit = 1u8 << (n % 8);
        let mut b = [0u8];
        file.read_at(&mut b, at).unwrap();
        file.write_at(&[b[0] ^ bit], at).unwrap();
        drop(file);
        // A cold cache: every page comes from the file again.
        let pf =
            Arc::new(PageFile::open(&vfs, "data.ldb".as_ref(), OpenOptions::default()).unwrap());
        let root = pf.superblock().catalog_root.unwrap();
        let store = Arc::new(Store::open(pf, 64 * 4096).unwrap());
        match BTree::open(store, root) {
            Err(e) => assert!(e.is_corruption() && *page == root, "page {page}: {e}"),
            Ok(tree) => {
                let report = tree.check().unwrap();
                assert!(
                    report
                        .problems
                        .iter()
                        .any(|p| p.what.contains("checksum") || p.page == *page),
                    "page {page}: {report}"
                );
                let scan: Result<Vec<_>, _> = tree.iter().collect();
                let err = scan.expect_err("a full scan reads every page");
                assert!(err.is_corruption(), "page {page}: {err}");
            }
        }
        // Restore the bit for the next page.
        let file = vfs.open("data.ldb".as_ref(), OpenMode::ReadWrite).unwrap();
        file.write_at(&b, at).unwrap();
    }
}
