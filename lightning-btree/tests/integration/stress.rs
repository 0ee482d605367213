//! Split/merge stress, bulk load, cursors, prefixes, large values, errors, readers beside a
//! writer.

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lightning_btree::Error;
use lightning_testkit::Rng;

use crate::{assert_same, tree_with_cache};

fn key_of(i: u64, len: usize) -> Vec<u8> {
    let mut k = i.to_be_bytes().to_vec();
    k.resize(len.max(8), b'x');
    k
}

#[test]
fn split_and_merge_under_every_insert_order_down_to_empty_and_back() {
    for len in [8usize, 200, 987] {
        for order in ["ascending", "descending", "random"] {
            let tree = tree_with_cache(32);
            let n = if len > 500 { 300 } else { 2000 };
            let mut ids: Vec<u64> = (0..n).collect();
            match order {
                "descending" => ids.reverse(),
                "random" => {
                    let mut rng = Rng::new(len as u64);
                    for i in (1..ids.len()).rev() {
                        ids.swap(i, rng.below(i as u64 + 1) as usize);
                    }
                }
                _ => {}
            }
            let mut model = BTreeMap::new();
            for round in 0u8..2 {
                for &i in &ids {
                    let (k, v) = (key_of(i, len), vec![round; (i % 50) as usize]);
                    tree.insert(&k, &v).unwrap();
                    model.insert(k, v);
                }
                assert_same(&tree, &model);
                assert!(
                    tree.check().unwrap().depth >= 2,
                    "{len}-byte keys {order}: the tree should have split"
                );
                // Delete everything (every other key first, then the rest): merges all the
                // way down to a single empty leaf.
                for &i in ids.iter().step_by(2).chain(ids.iter().skip(1).step_by(2)) {
                    assert!(tree.remove(&key_of(i, len)).unwrap());
                    model.remove(&key_of(i, len));
                }
                assert_same(&tree, &model);
                let report = tree.check().unwrap();
                assert_eq!(
                    (report.depth, report.leaves),
                    (1, 1),
                    "{len} {order}: {report}"
                );
                assert!(tree.is_empty().unwrap());
            }
        }
    }
}

#[test]
fn keys_over_the_limit_are_refused_and_change_nothing() {
    let tree = tree_with_cache(16);
    let max = tree.max_key_len();
    assert_eq!(max, 987);
    tree.insert(&vec![1; max], b"fits").unwrap();
    let err = tree.insert(&vec![2; max + 1], b"too long").unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLarge { len, max: m } if len == max + 1 && m == max),
        "{err}"
    );
    assert_eq!(tree.get(&vec![1; max]).unwrap(), Some(b"fits".to_vec()));
    assert!(tree.check().unwrap().is_ok());
}

#[test]
fn values_up_to_64_mib_go_through_overflow_chains() {
    let tree = tree_with_cache(256);
    let big: Vec<u8> = (0..64usize << 20)
        .map(|i| (i * 7 + i / 4093) as u8)
        .collect();
    tree.insert(b"big", &big).unwrap();
    tree.insert(b"small", b"s").unwrap();
    assert_eq!(tree.get(b"big").unwrap().as_deref(), Some(big.as_slice()));
    let report = tree.check().unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.overflow_pages >= (64 << 20) / 4096, "{report}");
    // Replacing and removing give the chain back: nothing leaks (check() counts pages).
    tree.insert(b"big", b"now small").unwrap();
    assert!(tree.check().unwrap().is_ok());
    assert!(tree.remove(b"big").unwrap());
    let report = tree.check().unwrap();
    assert!(report.is_ok() && report.overflow_pages == 0, "{report}");
}

#[test]
fn bulk_load_builds_a_sound_tree_at_any_fill_factor() {
    for (n, fill) in [
        (0u64, 1.0),
        (1, 1.0),
        (10_000, 1.0),
        (10_000, 0.5),
        (3_333, 0.8),
    ] {
        let tree = tree_with_cache(64);
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| {
                (
                    key_of(i * 3, 16),
                    if i % 500 == 7 {
                        vec![9; 5000]
                    } else {
                        i.to_le_bytes().to_vec()
                    },
                )
            })
            .collect();
        assert_eq!(tree.bulk_load(items.iter().cloned(), fill).unwrap(), n);
        let model: BTreeMap<Vec<u8>, Vec<u8>> = items.into_iter().collect();
        assert_same(&tree, &model);
        // The loaded tree takes ordinary changes afterwards.
        tree.insert(&key_of(1, 16), b"between").unwrap();
        tree.remove(&key_of(0, 16)).unwrap();
        assert!(tree.check().unwrap().is_ok());
    }
    let tree = tree_with_cache(16);
    let err = tree
        .bulk_load(
            [
                (b"b".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"2".to_vec()),
            ],
            1.0,
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotSorted { index: 1 }), "{err}");
    assert!(matches!(
        tree.bulk_load([(b"a", b"1")], 0.3),
        Err(Error::BadFillFactor(_))
    ));
    tree.insert(b"x", b"y").unwrap();
    assert!(matches!(
        tree.bulk_load([(b"a", b"1")], 1.0),
        Err(Error::NotEmpty)
    ));
}

#[test]
fn cursors_and_prefixes_walk_across_leaves_both_ways() {
    let tree = tree_with_cache(32);
    let mut model = BTreeMap::new();
    for i in 0..3000u64 {
        let k = format!(
            "{}/{i:05}",
            ["apple", "apply", "banana", "band"][(i % 4) as usize]
        )
        .into_bytes();
        tree.insert(&k, &i.to_le_bytes()).unwrap();
        model.insert(k, i.to_le_bytes().to_vec());
    }
    let mut c = tree.cursor();
    let mut seen = Vec::new();
    let mut at = c.seek(b"b").unwrap().map(|(k, _)| k.to_vec());
    while let Some(k) = at {
        seen.push(k);
        at = c.next().unwrap().map(|(k, _)| k.to_vec());
    }
    let want: Vec<Vec<u8>> = model
        .range(b"b".to_vec()..)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(seen, want);
    // Backwards from the end, and turning around mid-way.
    let mut back = Vec::new();
    let mut at = c.last().unwrap().map(|(k, _)| k.to_vec());
    while let Some(k) = at {
        back.push(k);
        at = c.prev().unwrap().map(|(k, _)| k.to_vec());
    }
    back.reverse();
    assert!(back.iter().eq(model.keys()));
    c.seek(b"apply/00500").unwrap();
    c.next().unwrap();
    c.prev().unwrap();
    assert_eq!(c.key(), Some(&b"apply/00501"[..]));
    assert_eq!(
        c.seek_for_prev(b"apply/00500")
            .unwrap()
            .map(|(k, _)| k.to_vec()),
        Some(b"apply/00497".to_vec())
    );
    // A change between steps is seen by the next step.
    tree.insert(b"apply/00498", b"new").unwrap();
    assert_eq!(
        c.next().unwrap().map(|(k, _)| k.to_vec()),
        Some(b"apply/00498".to_vec())
    );
    model.insert(b"apply/00498".to_vec(), b"new".to_vec());
    let prefixed: Vec<Vec<u8>> = tree.prefix(b"band").map(|e| e.unwrap().0).collect();
    assert_eq!(prefixed.len(), 750);
    assert!(prefixed.iter().all(|k| k.starts_with(b"band")));
    assert_eq!(tree.prefix(b"app").count(), 1501);
    assert_eq!(tree.prefix(b"").count(), model.len());
    assert_eq!(
        tree.first().unwrap().map(|e| e.0),
        model.keys().next().cloned()
    );
    assert_eq!(
        tree.last().unwrap().map(|e| e.0),
        model.keys().next_back().cloned()
    );
    let mut both = tree.range::<&[u8], _>((Bound::Included(&b"b"[..]), Bound::Excluded(&b"c"[..])));
    let (f, b) = (
        both.next().unwrap().unwrap().0,
        both.next_back().unwrap().unwrap().0,
    );
    assert!(f.starts_with(b"banana") && b.starts_with(b"band"));
    assert_eq!(both.count(), 1498);
}

#[test]
fn readers_make_progress_beside_a_writer() {
    let tree = Arc::new(tree_with_cache(128));
    for i in 0..5000u64 {
        tree.insert(&key_of(i, 16), &i.to_le_bytes()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (tree, stop) = (tree.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(r);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    let i = rng.below(5000);
                    // Keys below 5000 are never removed: always found, with their value.
                    assert_eq!(
                        tree.get(&key_of(i, 16)).unwrap(),
                        Some(i.to_le_bytes().to_vec())
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 5000..20_000u64 {
        tree.insert(&key_of(i, 16), &i.to_le_bytes()).unwrap();
        if i % 3 == 0 {
            tree.remove(&key_of(i - 1, 16)).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(tree.check().unwrap().is_ok());
}

/// Point reads of keys that never change, while a writer keeps splitting and merging the
/// very leaves that hold them: odd keys with large values go in between the even ones and
/// out again. Every read must find its key with its value, whatever the interleaving. (A
/// lock-free read validated by the tree's version was tried: this test failed 7 of 7 runs
/// with the validation removed or the writer's version bump dropped.)
#[test]
fn point_reads_beside_splits_and_merges_of_their_own_leaves() {
    let tree = Arc::new(tree_with_cache(512));
    let stable = 2000u64;
    for i in 0..stable {
        tree.insert(&key_of(2 * i, 16), &(2 * i).to_le_bytes())
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (tree, stop) = (tree.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + r);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    let k = 2 * rng.below(stable);
                    let got = tree.get_with(&key_of(k, 16), <[u8]>::to_vec).unwrap();
                    assert_eq!(got, Some(k.to_le_bytes().to_vec()), "key {k}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut rng = Rng::new(7);
    for _ in 0..20 {
        let mut odd: Vec<u64> = (0..stable).map(|i| 2 * i + 1).collect();
        for i in (1..odd.len()).rev() {
            odd.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &k in &odd {
            tree.insert(&key_of(k, 16), &[k as u8; 300]).unwrap();
        }
        for &k in &odd {
            assert!(tree.remove(&key_of(k, 16)).unwrap());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(tree.check().unwrap().is_ok());
}

#[test]
fn two_trees_share_a_store_while_one_checkpoints() {
    let one = tree_with_cache(64);
    let store = one.store().clone();
    let two = Arc::new(lightning_btree::BTree::create(store).unwrap());
    let one = Arc::new(one);
    let writer = {
        let two = two.clone();
        std::thread::spawn(move || {
            for i in 0..3000u64 {
                // Overflow values: several allocations per insert.
                two.insert(&key_of(i, 16), &vec![i as u8; 5000]).unwrap();
            }
        })
    };
    for i in 0..3000u64 {
        one.insert(&key_of(i, 24), b"one").unwrap();
        if i % 10 == 0 {
            // Takes the allocator and the generation's page set in the same order as the
            // other tree's allocations: no deadlock.
            one.checkpoint(Lsn::new(i)).unwrap();
        }
    }
    writer.join().unwrap();
    for i in (0..3000u64).step_by(7) {
        assert_eq!(
            one.get(&key_of(i, 24)).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(two.get(&key_of(i, 16)).unwrap(), Some(vec![i as u8; 5000]));
    }
}
