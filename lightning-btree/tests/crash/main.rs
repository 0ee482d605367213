//! Crash and fault suites of lightning-btree, through the crash VFS: I/O faults at every
//! position of a workload (and power cuts after them); power cuts around and inside
//! checkpoints, and the fallback to the older superblock.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
#![expect(
    clippy::cast_possible_truncation,
    clippy::print_stderr,
    reason = "test data: small counters; suites report what they ran"
)]

mod faults;
mod power_cuts;

use std::collections::BTreeMap;

use lightning_btree::BTree;

/// The tree is sound (`check()` clean, allocator cross-check included) and holds exactly
/// `model`.
fn same(tree: &BTree, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), String> {
    let report = tree.check().map_err(|e| format!("check: {e}"))?;
    if !report.is_ok() {
        return Err(format!("check: {report}"));
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = tree
        .iter()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("scan: {e}"))?;
    if !all.iter().map(|(k, v)| (k, v)).eq(model.iter()) {
        return Err(format!(
            "full scan ({} entries) differs from the model ({} entries)",
            all.len(),
            model.len()
        ));
    }
    Ok(())
}
