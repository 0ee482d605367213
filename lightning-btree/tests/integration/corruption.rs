//! Corruption of a checkpointed tree: a flipped bit in any page is reported. (Power cuts
//! around checkpoints are in the crash suite, `tests/crash`.)

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::{CrashMode, CrashVfs, OpenMode, Vfs};
use lightning_page::{OpenOptions, PageFile, PageSize};
use lightning_testkit::Rng;

use crate::tree_on;

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
fn a_flipped_bit_in_any_page_is_reported_by_check_and_by_the_read() {
    let vfs = CrashVfs::new(1);
    let tree = tree_on(&vfs, 64);
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(9);
    churn(&tree, &mut model, &mut rng, 600);
    tree.checkpoint(Lsn::new(1)).unwrap();
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
