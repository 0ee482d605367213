//! The model test: random operations against `std::collections::BTreeMap`, `check()` after
//! every batch. Two tests of `scaled(125)` cases of 4,000 operations each: 1,000,000
//! operations per run. Among them, rarely, checkpoints, and reopening the tree from its
//! last checkpoint after a power cut: it must hold the model as of that checkpoint.

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;

use lightning_page::vfs::{CrashMode, CrashVfs};

use crate::{assert_same, reopen_from, tree_on};

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>, usize),
    Remove(Vec<u8>),
    Get(Vec<u8>),
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>, bool),
    Checkpoint,
    /// One repacking step from the branch holding this key.
    Repack(Vec<u8>),
    /// Power cut, then the tree reopens from its last checkpoint.
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Dense small keys: many hits on existing keys.
        8 => (0u8..64, 0usize..4).prop_map(|(b, n)| std::iter::once(b).chain(std::iter::repeat_n(b'k', n)).collect()),
        2 => proptest::collection::vec(any::<u8>(), 0..40),
        // Long keys, up to the limit for 4 KiB pages (987 bytes).
        1 => (0u8..16, 100usize..=987).prop_map(|(b, n)| std::iter::once(b).chain(std::iter::repeat_n(b'L', n - 1)).collect()),
    ]
}

fn value_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        20 => 0usize..120,
        3 => 120usize..1200,
        // Overflow chains: beyond a quarter page, and across several pages.
        1 => 1200usize..20_000,
    ]
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
    ]
}

/// Checkpoints are rare (about one operation in 200, some 20 a case) and reopening half as
/// frequent, so most work happens between them, over many generations.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        200 => (key(), value_len()).prop_map(|(k, n)| Op::Insert(k, n)),
        140 => key().prop_map(Op::Remove),
        60 => key().prop_map(Op::Get),
        20 => (bound(), bound(), any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        2 => Just(Op::Checkpoint),
        3 => key().prop_map(Op::Repack),
        1 => Just(Op::Reopen),
    ]
}

fn value(key: &[u8], n: usize, salt: u64) -> Vec<u8> {
    (0..n)
        .map(|i| key.len() as u8 ^ (i as u8).wrapping_mul(31) ^ salt as u8)
        .collect()
}

fn valid_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a < b || (a == b && matches!((lo, hi), (Bound::Included(_), Bound::Included(_))))
        }
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: u32::try_from(lightning_testkit::scaled(125)).unwrap_or(u32::MAX),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_match_a_btreemap(ops in proptest::collection::vec(op(), 4000), cache in 32u64..256) {
        run(ops, cache)?;
    }

    #[test]
    fn random_operations_through_a_tiny_cache_match_a_btreemap(ops in proptest::collection::vec(op(), 4000), cache in 8u64..32) {
        run(ops, cache)?;
    }
}

fn run(ops: Vec<Op>, cache: u64) -> Result<(), TestCaseError> {
    let vfs = CrashVfs::new(cache);
    let mut tree = tree_on(&vfs, cache);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    // The model as of the last checkpoint, if there was one.
    let mut checkpointed: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Insert(k, n) => {
                let v = value(&k, n, i as u64);
                tree.insert(&k, &v).unwrap();
                model.insert(k, v);
            }
            Op::Remove(k) => {
                prop_assert_eq!(tree.remove(&k).unwrap(), model.remove(&k).is_some());
            }
            Op::Get(k) => {
                prop_assert_eq!(tree.get(&k).unwrap(), model.get(&k).cloned());
            }
            Op::Range(lo, hi, rev) => {
                if valid_range(&lo, &hi) {
                    let want: Vec<(Vec<u8>, Vec<u8>)> = model
                        .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let got: Vec<(Vec<u8>, Vec<u8>)> = if rev {
                        let mut g: Vec<_> = tree
                            .range((lo, hi))
                            .rev()
                            .collect::<Result<_, _>>()
                            .unwrap();
                        g.reverse();
                        g
                    } else {
                        tree.range((lo, hi)).collect::<Result<_, _>>().unwrap()
                    };
                    prop_assert_eq!(got, want);
                }
            }
            Op::Checkpoint => {
                tree.checkpoint(Lsn::new(i as u64)).unwrap();
                checkpointed = Some(model.clone());
            }
            Op::Repack(from) => {
                tree.repack_step(&from).unwrap();
            }
            Op::Reopen => {
                // Before the first checkpoint there is no tree on disk to reopen.
                if let Some(at_checkpoint) = &checkpointed {
                    drop(tree);
                    vfs.crash(CrashMode::DropUnsynced);
                    tree = reopen_from(&vfs, cache);
                    model.clone_from(at_checkpoint);
                    assert_same(&tree, &model);
                }
            }
        }
        if i % 500 == 499 {
            let report = tree.check().unwrap();
            prop_assert!(report.is_ok(), "after op {}: {}", i, report);
            prop_assert_eq!(report.entries, model.len() as u64);
        }
    }
    assert_same(&tree, &model);
    Ok(())
}
