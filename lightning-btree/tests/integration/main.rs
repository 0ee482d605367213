//! Integration tests of lightning-btree: the model test against `BTreeMap` (with
//! checkpoints and reopening from them), split/merge stress, bulk load, cursors,
//! corruption. Power cuts and I/O faults are in the crash suite (`tests/crash`).
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
#![expect(
    clippy::cast_possible_truncation,
    clippy::big_endian_bytes,
    reason = "test data: small counters into bytes; big-endian keys sort numerically"
)]

mod corruption;
mod generations;
mod hostile;
mod model;
mod nonblocking;
mod paced;
mod scans;
mod space;
mod stress;

use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::{MemVfs, Vfs};
use lightning_page::{PageFile, PageSize};

/// A tree in a fresh in-memory file with 4 KiB pages and a pool of `pages` frames.
pub(crate) fn tree_with_cache(pages: u64) -> BTree {
    let vfs = MemVfs::new();
    tree_on(&vfs, pages)
}

pub(crate) fn tree_on(vfs: &dyn Vfs, pages: u64) -> BTree {
    let file = Arc::new(PageFile::create(vfs, "data.ldb".as_ref(), PageSize::MIN).unwrap());
    BTree::create(Arc::new(Store::open(file, pages * 4096).unwrap())).unwrap()
}

/// The tree of the newest checkpoint in `vfs`'s `data.ldb`, with a pool of `pages` frames.
pub(crate) fn reopen_from(vfs: &dyn Vfs, pages: u64) -> BTree {
    let file = Arc::new(
        PageFile::open(
            vfs,
            "data.ldb".as_ref(),
            lightning_page::OpenOptions::default(),
        )
        .unwrap(),
    );
    let root = file.superblock().catalog_root.unwrap();
    BTree::open(Arc::new(Store::open(file, pages * 4096).unwrap()), root).unwrap()
}

/// Asserts the tree is sound and holds exactly `model`.
pub(crate) fn assert_same(tree: &BTree, model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
    let report = tree.check().unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, model.len() as u64, "{report}");
    let all: Vec<(Vec<u8>, Vec<u8>)> = tree.iter().collect::<Result<_, _>>().unwrap();
    assert!(
        all.iter().map(|(k, v)| (k, v)).eq(model.iter()),
        "full scan differs from the model"
    );
}
