//! Scans interleaved with writes, against `BTreeMap`: a cursor stepping both ways and a
//! range consumed from both ends, with inserts and removals between their steps. Each step
//! must return what the model holds at that moment: the next key after the last one
//! returned (entries read ahead from a leaf must not outlive a write). `scaled(64)` cases of
//! 3,000 operations.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;

use crate::tree_with_cache;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u8),
    Remove(u16),
    Seek(u16),
    Next,
    Prev,
    /// A new range over keys from the first to the second, taken from the front (`true`)
    /// or back by the following `Front`/`Back` steps.
    NewRange(u16, u16),
    Front,
    Back,
}

/// Keys share their first bytes in groups, so heads tie and whole keys decide.
fn key(i: u16) -> Vec<u8> {
    format!("key/{:03}/{i:05}", i % 7).into_bytes()
}

fn value(i: u16, n: u8) -> Vec<u8> {
    vec![n; 40 + usize::from(i % 60)]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u16..2000;
    prop_oneof![
        6 => (k.clone(), any::<u8>()).prop_map(|(k, n)| Op::Insert(k, n)),
        4 => k.clone().prop_map(Op::Remove),
        2 => k.clone().prop_map(Op::Seek),
        12 => Just(Op::Next),
        6 => Just(Op::Prev),
        1 => (k.clone(), k).prop_map(|(a, b)| Op::NewRange(a.min(b), a.max(b))),
        8 => Just(Op::Front),
        4 => Just(Op::Back),
    ]
}

/// The model's entry after (`forward`) or before `from`, within `lo..=hi`.
fn model_step(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: Bound<&Vec<u8>>,
    forward: bool,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let found = if forward {
        model.range::<Vec<u8>, _>((from, Bound::Unbounded)).next()
    } else {
        model
            .range::<Vec<u8>, _>((Bound::Unbounded, from))
            .next_back()
    };
    found.map(|(k, v)| (k.clone(), v.clone()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(64)).unwrap_or(u32::MAX)))]

    #[test]
    fn scans_between_writes_see_the_model_of_each_moment(
        preload in proptest::collection::vec(0u16..2000, 0..800),
        ops in proptest::collection::vec(op(), 3000),
    ) {
        let tree = tree_with_cache(64);
        let mut model = BTreeMap::new();
        for k in preload {
            tree.insert(&key(k), &value(k, 0)).unwrap();
            model.insert(key(k), value(k, 0));
        }
        let mut cursor = tree.cursor();
        let mut cursor_at: Option<Vec<u8>> = None;
        // The range: its bounds, the last key from each end, whether it ended.
        let mut range = tree.range(key(0)..=key(1999));
        let mut bounds = (key(0), key(1999));
        let (mut front, mut back): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        let mut range_done = false;
        let mut steps = 0u64;
        for op in ops {
            match op {
                Op::Insert(k, n) => {
                    tree.insert(&key(k), &value(k, n)).unwrap();
                    model.insert(key(k), value(k, n));
                }
                Op::Remove(k) => {
                    prop_assert_eq!(tree.remove(&key(k)).unwrap(), model.remove(&key(k)).is_some());
                }
                Op::Seek(k) => {
                    let got = cursor.seek(&key(k)).unwrap().map(|(k, v)| (k.to_vec(), v.to_vec()));
                    let want = model_step(&model, Bound::Included(&key(k)), true);
                    prop_assert_eq!(&got, &want);
                    cursor_at = got.map(|(k, _)| k);
                    steps += 1;
                }
                Op::Next | Op::Prev => {
                    let forward = matches!(op, Op::Next);
                    let got = if forward { cursor.next() } else { cursor.prev() }
                        .unwrap()
                        .map(|(k, v)| (k.to_vec(), v.to_vec()));
                    let want = cursor_at
                        .as_ref()
                        .and_then(|at| model_step(&model, Bound::Excluded(at), forward));
                    prop_assert_eq!(&got, &want, "{:?} from {:?}", op, cursor_at);
                    cursor_at = got.map(|(k, _)| k);
                    steps += 1;
                }
                Op::NewRange(a, b) => {
                    bounds = (key(a), key(b));
                    range = tree.range(key(a)..=key(b));
                    (front, back, range_done) = (None, None, false);
                }
                Op::Front | Op::Back => {
                    let forward = matches!(op, Op::Front);
                    let got = if forward { range.next() } else { range.next_back() }
                        .transpose()
                        .unwrap();
                    let from = if forward {
                        front.as_ref().map_or(Bound::Included(&bounds.0), Bound::Excluded)
                    } else {
                        back.as_ref().map_or(Bound::Included(&bounds.1), Bound::Excluded)
                    };
                    // Within the bounds, and short of what the other end returned.
                    let want = if range_done {
                        None
                    } else {
                        model_step(&model, from, forward).filter(|(k, _)| {
                            if forward {
                                *k <= bounds.1 && back.as_ref().is_none_or(|b| k < b)
                            } else {
                                *k >= bounds.0 && front.as_ref().is_none_or(|f| k > f)
                            }
                        })
                    };
                    prop_assert_eq!(&got, &want, "{:?} after {:?} / {:?}", op, front, back);
                    match got {
                        Some((k, _)) if forward => front = Some(k),
                        Some((k, _)) => back = Some(k),
                        None => range_done = true,
                    }
                    steps += 1;
                }
            }
        }
        // Most operations of a case are scan steps, each checked above.
        prop_assert!(steps > 1000, "{steps} scan steps");
    }
}
