//! The database against a model (`BTreeMap` per keyspace) through the public API, with
//! random transactions, rollbacks, checkpoints, GC, clean reopens, process crashes and
//! power cuts (recovery replays the WAL), checked after every step.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use lightning_db::page::vfs::{CrashMode, CrashVfs};
use lightning_db::{Database, Options};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// A transaction of writes (put when `Some`), committed or rolled back.
    Tx {
        writes: Vec<(usize, u8, Option<u8>)>,
        commit: bool,
    },
    Range {
        ks: usize,
        lo: Option<u8>,
        hi: Option<u8>,
        rev: bool,
    },
    Checkpoint,
    Gc,
    /// Closes and opens again.
    Reopen,
    /// The process dies (everything written survives, nothing is closed), or the power
    /// goes (only what was synced survives): every commit was `Immediate`, so the model
    /// holds either way.
    Crash {
        power: bool,
    },
}

const KEYSPACES: [&str; 3] = ["alpha", "beta", "gamma"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::collection::vec((0..3usize, any::<u8>(), proptest::option::of(any::<u8>())), 1..8), any::<bool>())
            .prop_map(|(writes, _)| Op::Tx { writes, commit: true }),
        1 => (proptest::collection::vec((0..3usize, any::<u8>(), proptest::option::of(any::<u8>())), 1..4))
            .prop_map(|writes| Op::Tx { writes, commit: false }),
        2 => (0..3usize, proptest::option::of(any::<u8>()), proptest::option::of(any::<u8>()), any::<bool>())
            .prop_map(|(ks, lo, hi, rev)| Op::Range { ks, lo, hi, rev }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Gc),
        1 => Just(Op::Reopen),
        2 => any::<bool>().prop_map(|power| Op::Crash { power }),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

fn value(k: u8, v: u8) -> Vec<u8> {
    // Some values span several hundred bytes, so trees split and merge.
    let mut out = format!("value-{k}-{v}-").into_bytes();
    out.resize(usize::from(v) * 3, b'.');
    out
}

fn options() -> Options {
    Options {
        page_size: 4096,
        cache_bytes: 1 << 20,
        checkpoint_interval_ms: 0,
        wal_segment_bytes: 64 << 10,
        ..Options::default()
    }
}

fn open(vfs: &Arc<CrashVfs>) -> Database {
    Database::open_with_vfs(vfs.clone(), Path::new("/db"), options()).unwrap()
}

fn check_all(db: &Database, model: &[BTreeMap<Vec<u8>, Vec<u8>>]) -> Result<(), TestCaseError> {
    let snap = db.begin_read().unwrap();
    for (i, name) in KEYSPACES.iter().enumerate() {
        let ks = db.keyspace(name).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = snap
            .range::<&[u8]>(&ks, ..)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = model[i]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(got, want, "keyspace {}", name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: u32::try_from(lightning_testkit::scaled(48)).unwrap_or(u32::MAX),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_database_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let vfs = Arc::new(CrashVfs::new(7));
        let mut db = open(&vfs);
        let mut model = vec![BTreeMap::new(); KEYSPACES.len()];
        for op in ops {
            match op {
                Op::Tx { writes, commit } => {
                    let handles: Vec<_> = KEYSPACES.iter().map(|n| db.keyspace(n).unwrap()).collect();
                    let mut tx = db.begin_write().unwrap();
                    let mut staged = model.clone();
                    for (ks, k, v) in writes {
                        if let Some(v) = v {
                            tx.put(&handles[ks], &key(k), &value(k, v)).unwrap();
                            staged[ks].insert(key(k), value(k, v));
                        } else {
                            tx.delete(&handles[ks], &key(k)).unwrap();
                            staged[ks].remove(&key(k));
                        }
                    }
                    if commit {
                        tx.commit().unwrap();
                        model = staged;
                    } else {
                        drop(tx);
                    }
                }
                Op::Range { ks, lo, hi, rev } => {
                    let handle = db.keyspace(KEYSPACES[ks]).unwrap();
                    let lo_b = lo.map_or(Bound::Unbounded, |k| Bound::Included(key(k)));
                    let hi_b = hi.map_or(Bound::Unbounded, |k| Bound::Excluded(key(k)));
                    if let (Some(l), Some(h)) = (lo, hi) && l >= h {
                        continue;
                    }
                    let snap = db.begin_read().unwrap();
                    let it = if rev {
                        snap.range_rev(&handle, (lo_b.clone(), hi_b.clone())).unwrap()
                    } else {
                        snap.range(&handle, (lo_b.clone(), hi_b.clone())).unwrap()
                    };
                    let got: Vec<Vec<u8>> = it.map(|r| r.unwrap().0).collect();
                    let mut want: Vec<Vec<u8>> = model[ks].range((lo_b, hi_b)).map(|(k, _)| k.clone()).collect();
                    if rev {
                        want.reverse();
                    }
                    prop_assert_eq!(got, want);
                }
                Op::Checkpoint => db.checkpoint().unwrap(),
                Op::Gc => {
                    db.gc().unwrap();
                }
                Op::Reopen => {
                    drop(db);
                    db = open(&vfs);
                }
                Op::Crash { power } => {
                    vfs.crash(if power { CrashMode::DropUnsynced } else { CrashMode::KeepPrefix(usize::MAX) });
                    // Its files are gone from under it: closing it writes nothing.
                    drop(db);
                    db = open(&vfs);
                }
            }
            check_all(&db, &model)?;
        }
        let problems = db.check().unwrap();
        prop_assert!(problems.is_empty(), "{:?}", problems);
    }
}
