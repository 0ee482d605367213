//! Scans interleaved with writes, against `BTreeMap`: a cursor stepping both ways and a
//! range consumed from both ends, with inserts and removals between their steps. Each step
//! must return what the model holds at that moment: the next key after the last one
//! returned (a position kept across a write must be found again). `scaled(64)` cases of
//! 3,000 operations. Then `scan_with` against the model, and beside a writer thread.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(64)).unwrap_or(u32::MAX)))]

    /// `scan_with` hands out exactly the model's entries of a range, in order, and stops
    /// where its closure breaks; overflow values (above a quarter page) among them.
    #[test]
    fn scan_with_matches_the_model(
        keys in proptest::collection::vec((0u16..3000, 0usize..3), 0..1500),
        ranges in proptest::collection::vec((0u16..3000, 0u16..3000, 1usize..200), 20),
    ) {
        let tree = tree_with_cache(64);
        let mut model = BTreeMap::new();
        for (k, big) in keys {
            // One value in three is an overflow value.
            let v = if big == 0 { vec![k as u8; 1500 + usize::from(k)] } else { value(k, 1) };
            tree.insert(&key(k), &v).unwrap();
            model.insert(key(k), v);
        }
        for (a, b, limit) in ranges {
            let (lo, hi) = if key(a) <= key(b) { (key(a), key(b)) } else { (key(b), key(a)) };
            let mut got = Vec::new();
            let broke = tree
                .scan_with(lo.clone()..hi.clone(), |k, v| {
                    got.push((k.to_vec(), v.to_vec()));
                    if got.len() == limit { ControlFlow::Break(got.len()) } else { ControlFlow::Continue(()) }
                })
                .unwrap();
            let want: Vec<(Vec<u8>, Vec<u8>)> = model
                .range(lo..hi)
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(broke, (want.len() == limit).then_some(limit));
            prop_assert_eq!(got, want);
        }
    }
}

/// A scan beside a writer that inserts and removes other keys: every key the writer never
/// touches is handed out exactly once and in order, whatever the interleaving (the scan
/// finds its place again after each change, from the last key it handed out).
#[test]
fn scan_with_beside_a_writer_sees_every_stable_key_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tree = Arc::new(tree_with_cache(256));
    // Even keys stay; odd keys come and go.
    for i in (0..4000u16).step_by(2) {
        tree.insert(&key(i), &value(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (tree, stop) = (tree.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = (n.wrapping_mul(2_654_435_761) % 2000) as u16 * 2 + 1;
                if n % 3 == 2 {
                    tree.remove(&key(k)).unwrap();
                } else {
                    tree.insert(&key(k), &value(k, n as u8)).unwrap();
                }
                n = n.wrapping_add(1);
            }
            n
        })
    };
    let stable: Vec<Vec<u8>> = {
        let mut v: Vec<Vec<u8>> = (0..4000u16).step_by(2).map(key).collect();
        v.sort();
        v
    };
    for _ in 0..20 {
        let mut seen = Vec::new();
        let mut previous: Option<Vec<u8>> = None;
        tree.scan_with::<&[u8], ()>(.., |k, _| {
            assert!(previous.as_deref().is_none_or(|p| p < k), "out of order");
            previous = Some(k.to_vec());
            if stable.binary_search_by(|s| s.as_slice().cmp(k)).is_ok() {
                seen.push(k.to_vec());
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, stable);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
}

/// A checkpoint writes every leaf with its cells in key order (slot 0's cell last in the
/// page, each next one right below it, no gap; docs/format/btree.md), however the inserts
/// scattered them, so a scan reads a leaf's cells in address order. Read back from the
/// file and from the pool after the checkpoint, the entries are the model's.
#[test]
fn a_checkpoint_writes_leaves_with_their_cells_in_key_order() {
    let tree = tree_with_cache(4096);
    let mut model = BTreeMap::new();
    let mut x = 11u64;
    for _ in 0..6000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = (x >> 33) as u16 % 2000;
        if x.is_multiple_of(5) {
            tree.remove(&key(i)).unwrap();
            model.remove(&key(i));
        } else {
            let v = value(i, (x >> 8) as u8);
            tree.insert(&key(i), &v).unwrap();
            model.insert(key(i), v);
        }
    }
    let done = tree.checkpoint(lightning_page::Lsn::new(1)).unwrap();
    let file = tree.store().file();
    let mut leaves = 0;
    for &id in &done.dirty_pages {
        let (page, _) = file.read_page(id, None).unwrap();
        if page.page_type() != lightning_page::PageType::BTreeLeaf {
            continue;
        }
        leaves += 1;
        let p = page.payload();
        let u16_at = |at: usize| usize::from(u16::from_le_bytes([p[at], p[at + 1]]));
        let (count, cells_from, gap) = (u16_at(2), u16_at(4), u16_at(6));
        assert_eq!(gap, 0, "leaf {id} written with a gap among its cells");
        let mut above = p.len();
        for s in 0..count {
            let at = u16_at(16 + 6 * s);
            let klen = u16_at(at);
            assert_eq!(p[at + 2 + klen], 0, "inline values only");
            let vlen = u32::from_le_bytes(p[at + 3 + klen..at + 7 + klen].try_into().unwrap());
            let len = 2 + klen + 5 + vlen as usize;
            assert_eq!(
                at + len,
                above,
                "leaf {id}: slot {s}'s cell is not right below slot {}'s",
                s.wrapping_sub(1)
            );
            above = at;
        }
        assert_eq!(above, cells_from, "leaf {id}");
    }
    assert!(leaves > 20, "{leaves} leaves written");
    let all: Vec<(Vec<u8>, Vec<u8>)> = tree.range::<&[u8], _>(..).map(|e| e.unwrap()).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(all, expected);
    assert!(tree.check().unwrap().problems.is_empty());
}
