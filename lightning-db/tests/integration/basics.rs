//! The public API's behaviour, one property per test.

use std::path::Path;
use std::sync::Arc;

use lightning_db::page::vfs::MemVfs;
use lightning_db::{Database, Durability, Error, Isolation, Options, TxOptions};

fn mem() -> Arc<MemVfs> {
    Arc::new(MemVfs::new())
}

fn small() -> Options {
    Options {
        page_size: 4096,
        cache_bytes: 4 << 20,
        checkpoint_interval_ms: 0,
        wal_segment_bytes: 64 << 10,
        ..Options::default()
    }
}

fn open(vfs: &Arc<MemVfs>) -> Database {
    Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap()
}

fn rows(it: lightning_db::Iter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.collect::<Result<_, _>>().unwrap()
}

fn keys(it: lightning_db::Iter<'_>) -> Vec<Vec<u8>> {
    rows(it).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn committed_writes_survive_a_reopen_and_rolled_back_ones_do_not() {
    let vfs = mem();
    let db = open(&vfs);
    let ks = db.keyspace("users").unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put(&ks, b"alice", b"1").unwrap();
    tx.put(&ks, b"bob", b"2").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put(&ks, b"carol", b"3").unwrap();
    drop(tx); // rolled back
    db.delete(&ks, b"bob").unwrap();
    drop(db);
    let db = open(&vfs);
    let ks = db.open_keyspace("users").unwrap();
    assert_eq!(db.get(&ks, b"alice").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(&ks, b"bob").unwrap(), None);
    assert_eq!(db.get(&ks, b"carol").unwrap(), None);
    assert_eq!(db.keyspaces(), vec!["users".to_owned()]);
}

#[test]
fn iteration_goes_both_ways_and_sees_the_transactions_own_writes() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    let other = db.keyspace("other").unwrap();
    for k in [&b"a1"[..], b"a2", b"a3", b"b1", b"\xff", b"\xff\xff"] {
        db.put(&ks, k, k).unwrap();
    }
    db.put(&other, b"a15", b"elsewhere").unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put(&ks, b"a25", b"mine").unwrap();
    tx.delete(&ks, b"a3").unwrap();
    assert_eq!(
        keys(tx.range(&ks, &b"a1"[..]..&b"b1"[..]).unwrap()),
        [&b"a1"[..], b"a2", b"a25"]
    );
    assert_eq!(
        keys(tx.range_rev(&ks, &b"a1"[..]..=&b"b1"[..]).unwrap()),
        [&b"b1"[..], b"a25", b"a2", b"a1"]
    );
    assert_eq!(
        keys(tx.prefix(&ks, b"a").unwrap()),
        [&b"a1"[..], b"a2", b"a25"]
    );
    assert_eq!(
        keys(tx.prefix_rev(&ks, b"a").unwrap()),
        [&b"a25"[..], b"a2", b"a1"]
    );
    assert_eq!(
        keys(tx.prefix(&ks, b"\xff").unwrap()),
        [&b"\xff"[..], b"\xff\xff"]
    );
    let all = keys(tx.range::<&[u8]>(&ks, ..).unwrap());
    assert_eq!(all.len(), 6, "{all:?}");
    tx.commit().unwrap();
    let snap = db.begin_read().unwrap();
    assert_eq!(
        keys(snap.range_rev::<&[u8]>(&ks, ..).unwrap()),
        [&b"\xff\xff"[..], b"\xff", b"b1", b"a25", b"a2", b"a1"]
    );
    assert_eq!(keys(snap.prefix(&other, b"").unwrap()), [&b"a15"[..]]);
    assert_eq!(
        keys(snap.prefix_rev(&ks, b"a").unwrap()),
        [&b"a25"[..], b"a2", b"a1"]
    );
    // An empty or inverted range yields nothing, in both directions.
    assert_eq!(
        keys(snap.range(&ks, &b"b"[..]..&b"a"[..]).unwrap()),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        keys(snap.range_rev(&ks, &b"a2"[..]..&b"a2"[..]).unwrap()),
        Vec::<Vec<u8>>::new()
    );
}

#[test]
fn a_snapshot_does_not_see_later_commits() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    db.put(&ks, b"x", b"old").unwrap();
    let snap = db.begin_read().unwrap();
    db.put(&ks, b"x", b"new").unwrap();
    db.put(&ks, b"y", b"new").unwrap();
    assert_eq!(snap.get(&ks, b"x").unwrap(), Some(b"old".to_vec()));
    assert_eq!(snap.get(&ks, b"y").unwrap(), None);
    assert_eq!(keys(snap.range::<&[u8]>(&ks, ..).unwrap()), [b"x".to_vec()]);
    assert_eq!(db.get(&ks, b"x").unwrap(), Some(b"new".to_vec()));
}

#[test]
fn a_write_write_conflict_is_retryable_and_names_the_key() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    let mut a = db.begin_write().unwrap();
    let mut b = db.begin_write().unwrap();
    a.put(&ks, b"hot", b"a").unwrap();
    b.put(&ks, b"hot", b"b").unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("\"hot\""),
        "the user's key, unprefixed: {err}"
    );
    match &err {
        Error::Txn(lightning_db::mvcc::Error::Conflict(lightning_db::Conflict::WriteWrite {
            key,
        })) => {
            assert_eq!(key, b"hot");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.stats().tx.write_conflicts, 1);
}

#[test]
fn update_retries_conflicts_until_it_commits() {
    // Retries enough that four threads on one key cannot run out of them, whatever the
    // interleaving.
    let db = Database::open_with_vfs(
        mem(),
        Path::new("/db"),
        Options {
            max_update_attempts: 1000,
            ..small()
        },
    )
    .unwrap();
    let ks = db.keyspace("counter").unwrap();
    db.put(&ks, b"n", &0u64.to_le_bytes()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    db.update(|tx| {
                        let n = tx.get_for_update(&ks, b"n")?.unwrap();
                        let n = u64::from_le_bytes(n.try_into().unwrap());
                        tx.put(&ks, b"n", &(n + 1).to_le_bytes())
                    })
                    .unwrap();
                }
            });
        }
    });
    let n = db.get(&ks, b"n").unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(n.try_into().unwrap()),
        200,
        "no lost update"
    );
}

#[test]
fn serializable_transactions_refuse_write_skew() {
    let db = open(&mem());
    let ks = db.keyspace("doctors").unwrap();
    db.put(&ks, b"alice", b"on").unwrap();
    db.put(&ks, b"bob", b"on").unwrap();
    let opts = TxOptions {
        isolation: Isolation::Serializable,
        ..TxOptions::default()
    };
    let mut a = db.begin_write_with(opts).unwrap();
    let mut b = db.begin_write_with(opts).unwrap();
    assert_eq!(rows(a.range::<&[u8]>(&ks, ..).unwrap()).len(), 2);
    assert_eq!(rows(b.range::<&[u8]>(&ks, ..).unwrap()).len(), 2);
    a.put(&ks, b"alice", b"off").unwrap();
    b.put(&ks, b"bob", b"off").unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[test]
fn a_pessimistic_lock_conflict_ends_the_transaction_and_later_use_is_refused() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    db.put(&ks, b"x", b"0").unwrap();
    let opts = TxOptions {
        pessimistic: true,
        ..TxOptions::default()
    };
    let mut a = db.begin_write_with(opts).unwrap();
    let mut stale = db.begin_write_with(opts).unwrap();
    // A plain read of an unlocked key: the snapshot can no longer move forward (ADR 007).
    assert_eq!(stale.get(&ks, b"y").unwrap(), None);
    a.get_for_update(&ks, b"x").unwrap();
    a.put(&ks, b"x", b"1").unwrap();
    a.commit().unwrap();
    // `stale`'s snapshot predates a's commit: locking x finds it changed.
    let err = stale.get_for_update(&ks, b"x").unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let again = stale.put(&ks, b"y", b"1").unwrap_err();
    assert!(matches!(again, Error::TransactionAborted { .. }), "{again}");
    assert!(stale.commit().is_err());
    assert_eq!(db.get(&ks, b"y").unwrap(), None);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_while_the_first_holds_it() {
    let vfs = mem();
    let db = open(&vfs);
    let err = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("/db"), "{err}");
    drop(db);
    open(&vfs);
}

#[test]
fn a_second_open_through_the_os_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), small()).unwrap();
    let err = Database::open(dir.path(), small()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    // The holder recorded itself: this process.
    let me = format!("in use by process {}", std::process::id());
    assert!(err.to_string().contains(&me), "{err}");
    // A read-only open is refused the same way while a writer holds it.
    let ro = Options {
        read_only: true,
        ..small()
    };
    let err = Database::open(dir.path(), ro).unwrap_err();
    assert!(err.to_string().contains(&me), "{err}");
    db.close().unwrap();
    let db = Database::open(dir.path(), small()).unwrap();
    drop(db);
}

#[test]
fn keyspaces_are_created_listed_and_dropped_durably() {
    let vfs = mem();
    let db = open(&vfs);
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    for i in 0..2000u32 {
        db.put(&a, &format!("{i:05}").into_bytes(), b"value of a")
            .unwrap();
    }
    db.put(&b, b"k", b"v").unwrap();
    db.drop_keyspace("a").unwrap();
    let err = db.get(&a, b"k").unwrap_err();
    assert!(matches!(err, Error::KeyspaceDropped { .. }), "{err}");
    assert_eq!(db.keyspaces(), vec!["b".to_owned()]);
    // A new keyspace of the same name is empty, and reuses the emptied tree.
    let a2 = db.keyspace("a").unwrap();
    assert_eq!(
        rows(db.begin_read().unwrap().range::<&[u8]>(&a2, ..).unwrap()),
        vec![]
    );
    assert_ne!(a, a2, "a new id");
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
    drop(db);
    let db = open(&vfs);
    assert_eq!(db.keyspaces(), vec!["a".to_owned(), "b".to_owned()]);
    let b = db.open_keyspace("b").unwrap();
    assert_eq!(db.get(&b, b"k").unwrap(), Some(b"v".to_vec()));
    let a = db.open_keyspace("a").unwrap();
    assert_eq!(db.get(&a, b"00005").unwrap(), None);
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
}

#[test]
fn bad_input_is_a_clear_error_and_the_database_stays_usable() {
    let vfs = mem();
    let db = open(&vfs);
    for name in ["", "has space", "slash/no", &"x".repeat(200)] {
        let err = db.keyspace(name).unwrap_err();
        assert!(
            matches!(err, Error::InvalidKeyspaceName { .. }),
            "{name:?}: {err}"
        );
    }
    let err = db.open_keyspace("missing").unwrap_err();
    assert!(matches!(err, Error::NoSuchKeyspace { .. }), "{err}");
    let ks = db.keyspace("k").unwrap();
    let long = vec![7u8; 5000];
    let err = db.put(&ks, &long, b"v").unwrap_err();
    assert!(matches!(err, Error::KeyTooLarge { len: 5000, .. }), "{err}");
    let huge = vec![0u8; 17 << 20];
    let err = db.put(&ks, b"k", &huge).unwrap_err();
    assert!(matches!(err, Error::TransactionTooLarge { .. }), "{err}");
    // A handle of another database.
    let other = Database::open_with_vfs(vfs.clone(), Path::new("/other"), small()).unwrap();
    let foreign = other.keyspace("k").unwrap();
    let err = db.get(&foreign, b"k").unwrap_err();
    assert!(matches!(err, Error::ForeignKeyspace { .. }), "{err}");
    let err = db.put(&foreign, b"k", b"v").unwrap_err();
    assert!(matches!(err, Error::ForeignKeyspace { .. }), "{err}");
    // A handle of a dropped keyspace, written to.
    let gone = db.keyspace("gone").unwrap();
    db.drop_keyspace("gone").unwrap();
    let err = db.put(&gone, b"k", b"v").unwrap_err();
    assert!(matches!(err, Error::KeyspaceDropped { .. }), "{err}");
    let mut tx = db.begin_write().unwrap();
    let err = tx.delete(&gone, b"k").unwrap_err();
    assert!(matches!(err, Error::KeyspaceDropped { .. }), "{err}");
    drop(tx);
    // Still usable.
    db.put(&ks, b"k", b"v").unwrap();
    assert_eq!(db.get(&ks, b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn options_out_of_range_and_a_missing_database_are_refused() {
    let vfs = mem();
    let err = Database::open_with_vfs(
        vfs.clone(),
        Path::new("/db"),
        Options {
            page_size: 1000,
            ..small()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "page_size",
                ..
            }
        ),
        "{err}"
    );
    let err = Database::open_with_vfs(
        vfs,
        Path::new("/nothing"),
        Options {
            create_if_missing: false,
            ..small()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.ldb"), vec![0x5a; 8192 * 3]).unwrap();
    let err = Database::open(dir.path(), small()).unwrap_err();
    assert!(err.to_string().contains("data.ldb"), "{err}");
}

#[test]
fn eventual_and_none_commits_become_durable_with_a_checkpoint() {
    let vfs = mem();
    let db = open(&vfs);
    let ks = db.keyspace("k").unwrap();
    for (i, d) in [Durability::Eventual, Durability::None]
        .into_iter()
        .enumerate()
    {
        let mut tx = db
            .begin_write_with(TxOptions {
                durability: Some(d),
                ..TxOptions::default()
            })
            .unwrap();
        tx.put(&ks, &[u8::try_from(i).unwrap()], b"v").unwrap();
        tx.commit().unwrap();
    }
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&vfs);
    let ks = db.open_keyspace("k").unwrap();
    assert_eq!(
        rows(db.begin_read().unwrap().range::<&[u8]>(&ks, ..).unwrap()).len(),
        2
    );
}

#[test]
fn gc_removes_versions_no_snapshot_can_see() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    db.put(&ks, b"x", b"1").unwrap();
    db.put(&ks, b"x", b"2").unwrap();
    let snap = db.begin_read().unwrap();
    db.put(&ks, b"x", b"3").unwrap();
    db.delete(&ks, b"gone").unwrap();
    db.put(&ks, b"gone", b"v").unwrap();
    db.delete(&ks, b"gone").unwrap();
    db.gc().unwrap();
    assert!(
        db.stored_versions(&ks, b"x").unwrap() >= 2,
        "the snapshot still sees 2"
    );
    assert_eq!(snap.get(&ks, b"x").unwrap(), Some(b"2".to_vec()));
    drop(snap);
    db.gc().unwrap();
    assert_eq!(db.stored_versions(&ks, b"x").unwrap(), 1);
    assert_eq!(
        db.stored_versions(&ks, b"gone").unwrap(),
        0,
        "the tombstone went too"
    );
    assert!(db.stats().gc.versions_removed >= 2);
}

#[test]
fn stats_serialize_and_render_as_prometheus_text() {
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    db.put(&ks, b"x", b"1").unwrap();
    db.checkpoint().unwrap();
    let stats = db.stats();
    assert_eq!(stats.tx.commits, 1);
    assert!(stats.checkpoint.count >= 2, "the keyspace's and ours");
    assert_eq!(stats.file.keyspaces, 1);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["tx"]["commits"], 1);
    let text = stats.to_prometheus();
    assert!(text.contains("\nlightning_tx_commits_total 1\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').unwrap();
        assert!(name.starts_with("lightning_"), "{line}");
        value.parse::<f64>().unwrap();
    }
}

#[test]
fn a_damaged_newest_superblock_falls_back_to_the_older_image_and_replays_the_wal_it_needs() {
    use lightning_db::page::vfs::{CrashVfs, Vfs};
    use lightning_db::page::{OpenOptions, PageFile};
    for extra_checkpoints in 0..3 {
        let vfs = Arc::new(CrashVfs::new(extra_checkpoints));
        let opts = small();
        let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), opts.clone()).unwrap();
        let ks = db.keyspace("k").unwrap();
        for round in 0..4u32 {
            for i in 0..300u32 {
                db.put(&ks, format!("{round}-{i:04}").as_bytes(), &[7u8; 100])
                    .unwrap();
            }
            db.checkpoint().unwrap();
        }
        for _ in 0..extra_checkpoints {
            db.put(&ks, b"late", b"v").unwrap();
            db.checkpoint().unwrap();
        }
        // Commits after the last checkpoint: the close's checkpoint covers them, the
        // older image does not.
        for i in 0..50u32 {
            db.put(&ks, format!("tail-{i}").as_bytes(), &[3u8; 2000])
                .unwrap();
        }
        db.close().unwrap();
        let data = Path::new("/db/data.ldb");
        let newest = {
            let vfs: &dyn Vfs = vfs.as_ref();
            PageFile::open(vfs, data, OpenOptions::default())
                .unwrap()
                .superblock()
        };
        // Rot in the newest superblock: opening must take the older image, whose WAL
        // records (above its LSN) are still there.
        vfs.corrupt(
            data,
            newest.slot().get() * 4096 + 100,
            &[0xde, 0xad, 0xbe, 0xef],
        )
        .unwrap();
        let older = {
            let vfs: &dyn Vfs = vfs.as_ref();
            PageFile::open(vfs, data, OpenOptions::default())
                .unwrap()
                .superblock()
        };
        assert_eq!(
            older.generation + 1,
            newest.generation,
            "the older image opens"
        );
        assert!(older.checkpoint_lsn < newest.checkpoint_lsn);
        let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), opts.clone())
            .unwrap_or_else(|e| panic!("{extra_checkpoints} extra checkpoints: {e}"));
        let ks = db.open_keyspace("k").unwrap();
        let n = db
            .begin_read()
            .unwrap()
            .range::<&[u8]>(&ks, ..)
            .unwrap()
            .count();
        assert_eq!(n, 1250 + usize::from(extra_checkpoints > 0));
        assert!(
            db.stats().tx.recovered_commits > 0,
            "the WAL above the older image replayed"
        );
        assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
    }
}

#[test]
fn a_read_only_open_replays_into_memory_and_writes_nothing() {
    use lightning_db::page::vfs::{CrashMode, CrashVfs, Vfs};
    let vfs = Arc::new(CrashVfs::new(5));
    let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap();
    let ks = db.keyspace("k").unwrap();
    for i in 0..200u32 {
        db.put(&ks, format!("key-{i:03}").as_bytes(), b"checkpointed")
            .unwrap();
    }
    db.checkpoint().unwrap();
    // After the checkpoint, only in the WAL: overwrites, deletes and new keys.
    for i in (0..200u32).step_by(3) {
        db.put(&ks, format!("key-{i:03}").as_bytes(), b"replayed")
            .unwrap();
    }
    for i in (1..200u32).step_by(3) {
        db.delete(&ks, format!("key-{i:03}").as_bytes()).unwrap();
    }
    db.put(&ks, b"key-999", b"new").unwrap();
    // The process dies: no close, no checkpoint.
    vfs.crash(CrashMode::KeepPrefix(usize::MAX));
    drop(db);
    let files = |vfs: &CrashVfs| {
        let v: &dyn Vfs = vfs;
        let mut all = Vec::new();
        for dir in ["/db", "/db/wal"] {
            for p in v.list(Path::new(dir)).unwrap() {
                let c = vfs.contents(&p);
                all.push((p, c));
            }
        }
        all
    };
    let before = files(&vfs);
    let ro = Options {
        read_only: true,
        ..small()
    };
    let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), ro.clone()).unwrap();
    let ks = db.open_keyspace("k").unwrap();
    let want = |i: u32| match i % 3 {
        0 => Some(b"replayed".to_vec()),
        1 => None,
        _ => Some(b"checkpointed".to_vec()),
    };
    for i in 0..200u32 {
        assert_eq!(
            db.get(&ks, format!("key-{i:03}").as_bytes()).unwrap(),
            want(i),
            "{i}"
        );
    }
    let snap = db.begin_read().unwrap();
    let fwd = rows(snap.range::<&[u8]>(&ks, ..).unwrap());
    let mut expect: Vec<(Vec<u8>, Vec<u8>)> = (0..200u32)
        .filter_map(|i| want(i).map(|v| (format!("key-{i:03}").into_bytes(), v)))
        .collect();
    expect.push((b"key-999".to_vec(), b"new".to_vec()));
    assert_eq!(fwd, expect);
    let mut back = rows(snap.range_rev::<&[u8]>(&ks, ..).unwrap());
    back.reverse();
    assert_eq!(back, expect);
    // scan_with over the replayed overlay sees the same rows, and stops at a break.
    let mut seen = Vec::new();
    let stopped = snap
        .scan_with(&ks, &b""[..].., |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            if k == b"key-999" {
                std::ops::ControlFlow::Break(seen.len())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(stopped, Some(expect.len()));
    assert_eq!(seen, expect);
    drop(snap);
    assert!(matches!(
        db.put(&ks, b"x", b"y"),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(db.checkpoint(), Err(Error::ReadOnly { .. })));
    assert!(matches!(db.keyspace("new"), Err(Error::ReadOnly { .. })));
    assert!(db.check().unwrap().is_empty());
    db.close().unwrap();
    assert_eq!(files(&vfs), before, "a read-only open changed a file");
    assert_eq!(vfs.pending_ops(), 0, "nothing written");
    // A read-write open recovers the same.
    let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap();
    let ks = db.open_keyspace("k").unwrap();
    assert_eq!(
        rows(db.begin_read().unwrap().range::<&[u8]>(&ks, ..).unwrap()),
        expect
    );
    // Nothing to open read-only where no database is.
    let err = Database::open_with_vfs(vfs, Path::new("/none"), ro).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
}

#[test]
fn the_database_is_send_sync_and_cheap_to_share() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Database>();
    shareable::<lightning_db::Keyspace>();
    let db = open(&mem());
    let ks = db.keyspace("k").unwrap();
    let other = db.clone();
    std::thread::spawn(move || other.put(&ks, b"from", b"a thread").unwrap())
        .join()
        .unwrap();
    let ks = db.open_keyspace("k").unwrap();
    assert_eq!(db.get(&ks, b"from").unwrap(), Some(b"a thread".to_vec()));
}

#[test]
fn background_checkpoints_start_by_wal_size_and_truncate_the_wal() {
    let vfs = mem();
    let db = Database::open_with_vfs(
        vfs.clone(),
        Path::new("/db"),
        Options {
            checkpoint_interval_ms: 3_600_000, // the size trigger only
            checkpoint_wal_bytes: 1 << 20,
            ..small()
        },
    )
    .unwrap();
    let ks = db.keyspace("k").unwrap();
    let at_start = db.stats().checkpoint.count;
    for i in 0..4000u32 {
        db.put(&ks, format!("{i:06}").as_bytes(), &[1; 1000])
            .unwrap();
    }
    // 4 MB of WAL: the background thread checkpoints (it looks every 100 ms); wait for
    // it with a generous bound (the assertion is that it happens, not how fast).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.stats().checkpoint.count == at_start && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = db.stats();
    assert!(stats.checkpoint.count > at_start, "{:?}", stats.checkpoint);
    assert!(stats.checkpoint.lsn > 0);
    drop(db);
    let db = open(&vfs);
    let ks = db.open_keyspace("k").unwrap();
    assert_eq!(
        db.begin_read()
            .unwrap()
            .range::<&[u8]>(&ks, ..)
            .unwrap()
            .count(),
        4000
    );
}

#[test]
fn a_snapshot_keeps_its_keyspaces_through_drops_rebuilds_and_creations() {
    let db = open(&mem());
    let a = db.keyspace("a").unwrap();
    for i in 0..500u32 {
        db.put(&a, format!("{i:04}").as_bytes(), &[5; 50]).unwrap();
    }
    let snap = db.begin_read().unwrap();
    // A scan open across a compaction (every tree rebuilt and the old ones retired).
    let mut scan = snap.range::<&[u8]>(&a, ..).unwrap();
    assert_eq!(scan.next().unwrap().unwrap().0, b"0000".to_vec());
    db.compact().unwrap();
    assert_eq!(scan.count(), 499, "the scan reads the tree it began on");
    // Created after the snapshot: empty to it.
    let b = db.keyspace("b").unwrap();
    db.put(&b, b"k", b"v").unwrap();
    assert_eq!(snap.get(&b, b"k").unwrap(), None);
    assert_eq!(snap.range::<&[u8]>(&b, ..).unwrap().count(), 0);
    // Dropped after the snapshot: still there for it, gone for new snapshots.
    db.drop_keyspace("a").unwrap();
    db.gc().unwrap(); // would empty the retired tree if no one held it
    assert_eq!(snap.get(&a, b"0007").unwrap(), Some(vec![5; 50]));
    let mut n = 0;
    snap.scan_with(&a, &b"0100"[..]..&b"0200"[..], |k, v| {
        assert_eq!(v, &[5; 50][..]);
        assert!(k >= &b"0100"[..] && k < &b"0200"[..]);
        n += 1;
        std::ops::ControlFlow::<()>::Continue(())
    })
    .unwrap();
    assert_eq!(n, 100);
    // A break stops the scan and comes back; a keyspace the snapshot predates scans empty.
    let found = snap
        .scan_with(&a, &b"0100"[..].., |k, _| {
            if k == b"0123" {
                std::ops::ControlFlow::Break(k.to_vec())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(found, Some(b"0123".to_vec()));
    let none = snap
        .scan_with(&b, &b""[..].., |_, _| std::ops::ControlFlow::Break(()))
        .unwrap();
    assert_eq!(none, None, "b was created after the snapshot");
    assert!(matches!(
        db.get(&a, b"0007"),
        Err(Error::KeyspaceDropped { .. })
    ));
    drop(snap);
    db.gc().unwrap();
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
    // The dropped tree was emptied once free, and is reused.
    let c = db.keyspace("c").unwrap();
    assert_eq!(
        db.begin_read()
            .unwrap()
            .range::<&[u8]>(&c, ..)
            .unwrap()
            .count(),
        0
    );
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
}

/// A commit larger than the next open's `max_txn_bytes` is still read back: the limit bounds
/// new transactions, not the log's records. Before the fix the record was taken for a torn
/// tail: after a crash the acknowledged commit was cut off (silently lost), and after a clean
/// close the open was refused ("the WAL ends at LSN 1, below the checkpoint's LSN 2").
#[test]
fn a_commit_larger_than_the_next_opens_max_txn_bytes_survives_a_crash_and_a_close() {
    use lightning_db::page::vfs::{CrashMode, CrashVfs};
    let big = Options {
        max_txn_bytes: 4 << 20,
        ..small()
    };
    let little = Options {
        max_txn_bytes: 64 << 10,
        ..small()
    };
    let value = vec![7u8; 1000];
    for crash in [true, false] {
        let vfs = Arc::new(CrashVfs::new(5));
        let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), big.clone()).unwrap();
        let ks = db.keyspace("k").unwrap();
        let mut tx = db.begin_write().unwrap();
        for i in 0..1000u32 {
            tx.put(&ks, &i.to_le_bytes(), &value).unwrap();
        }
        tx.commit().unwrap();
        if crash {
            vfs.crash(CrashMode::KeepPrefix(usize::MAX));
            drop(db);
        } else {
            db.close().unwrap();
        }
        let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), little.clone())
            .unwrap_or_else(|e| panic!("crash {crash}: {e}"));
        let ks = db.open_keyspace("k").unwrap();
        for i in [0u32, 500, 999] {
            assert_eq!(
                db.get(&ks, &i.to_le_bytes()).unwrap().as_deref(),
                Some(&value[..]),
                "crash {crash}: key {i}"
            );
        }
        // The smaller limit still holds for new transactions.
        let mut tx = db.begin_write().unwrap();
        let mut refused = None;
        for i in 0..1000u32 {
            if let Err(e) = tx.put(&ks, &(i + 5000).to_le_bytes(), &value) {
                refused = Some(e);
                break;
            }
        }
        assert!(
            matches!(refused, Some(Error::TransactionTooLarge { .. })),
            "crash {crash}: {refused:?}"
        );
    }
}

/// Distinct 1,000-byte values `tx` still takes before `max_txn_bytes` refuses one.
fn room_left(tx: &mut lightning_db::WriteTx<'_>, ks: &lightning_db::Keyspace) -> u32 {
    let value = vec![3u8; 1000];
    for i in 0..10_000u32 {
        match tx.put(ks, &i.to_le_bytes(), &value) {
            Ok(()) => {}
            Err(Error::TransactionTooLarge { .. }) => return i,
            Err(e) => panic!("put {i}: {e}"),
        }
    }
    panic!("max_txn_bytes never refused a write");
}

#[test]
fn a_key_written_again_in_a_transaction_counts_once_against_max_txn_bytes() {
    let vfs = mem();
    let opts = Options {
        max_txn_bytes: 64 << 10,
        ..small()
    };
    let db = Database::open_with_vfs(vfs, Path::new("/db"), opts).unwrap();
    let ks = db.keyspace("k").unwrap();
    let value = vec![1u8; 1000];
    // The room beside one write of `same`.
    let mut tx = db.begin_write().unwrap();
    tx.put(&ks, b"same", &value).unwrap();
    let once = room_left(&mut tx, &ks);
    assert!(once > 10, "{once}");
    // Written 1,000 times (a megabyte if each counted): the same room.
    let mut tx = db.begin_write().unwrap();
    for _ in 0..1000 {
        tx.put(&ks, b"same", &value).unwrap();
    }
    assert_eq!(room_left(&mut tx, &ks), once);
    // At the limit, rewriting a key already in the write set with a value of the same size
    // still fits, and a delete of it gives its value's bytes back.
    tx.put(&ks, b"same", &[2u8; 1000]).unwrap();
    tx.delete(&ks, b"same").unwrap();
    tx.put(&ks, &u32::MAX.to_le_bytes(), &value).unwrap();
    tx.commit().unwrap();
    assert_eq!(db.get(&ks, b"same").unwrap(), None);
}

/// The WAL segments of a crashed database, oldest first.
fn wal_segments(vfs: &lightning_db::page::vfs::CrashVfs) -> Vec<std::path::PathBuf> {
    use lightning_db::page::vfs::Vfs;
    let v: &dyn Vfs = vfs;
    let mut all = v.list(Path::new("/db/wal")).unwrap();
    all.sort();
    all
}

/// A database with a checkpoint, then enough commits after it to fill several WAL segments,
/// and a crash (everything written survives).
fn crashed_with_a_long_wal(checkpoint_late: bool) -> Arc<lightning_db::page::vfs::CrashVfs> {
    use lightning_db::page::vfs::{CrashMode, CrashVfs};
    let vfs = Arc::new(CrashVfs::new(7));
    let db = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap();
    let ks = db.keyspace("k").unwrap();
    let value = [b'v'; 150];
    for i in 0..100u32 {
        db.put(&ks, format!("early-{i:04}").as_bytes(), &value)
            .unwrap();
    }
    if !checkpoint_late {
        db.checkpoint().unwrap();
    }
    for i in 0..1500u32 {
        db.put(&ks, format!("late-{i:04}").as_bytes(), &value)
            .unwrap();
    }
    if checkpoint_late {
        db.checkpoint().unwrap();
        db.put(&ks, b"after", b"checkpoint").unwrap();
    }
    vfs.crash(CrashMode::KeepPrefix(usize::MAX));
    drop(db);
    vfs
}

#[test]
fn wal_segments_removed_under_a_checkpoint_are_corruption_not_silent_loss() {
    use lightning_db::page::vfs::Vfs;
    // The oldest segment, which replay from the checkpoint needs, removed by hand.
    let vfs = crashed_with_a_long_wal(false);
    let segments = wal_segments(&vfs);
    assert!(segments.len() >= 3, "{segments:?}");
    let v: &dyn Vfs = &*vfs;
    v.remove(&segments[0]).unwrap();
    let err = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, what }
            if file.ends_with("wal") && what.contains("removed too early")),
        "{err}"
    );

    // The newest segments, which hold the checkpoint's own LSN, removed.
    let vfs = crashed_with_a_long_wal(true);
    let segments = wal_segments(&vfs);
    assert!(segments.len() >= 3, "{segments:?}");
    let v: &dyn Vfs = &*vfs;
    for s in &segments[1..] {
        v.remove(s).unwrap();
    }
    let err = Database::open_with_vfs(vfs.clone(), Path::new("/db"), small()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, what }
            if file.ends_with("wal") && what.contains("segments the checkpoint needs are missing")),
        "{err}"
    );
}
