//! Backups, restores and point-in-time recovery of a live database (`lightning-backup`
//! through `lightning-db`): every restored database is compared with a model of the
//! committed history at the LSN the restore reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lightning_db::backup::{self, Error as BackupError, RestoreOptions, Target};
use lightning_db::page::vfs::{
    CrashMode, CrashVfs, Fault, FaultKind, FaultOp, MemVfs, OpenMode, Vfs,
};
use lightning_db::{Database, Durability, Lsn, Options, TxOptions};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};

const KEYSPACES: [&str; 2] = ["accounts", "events"];

/// Committed write sets by LSN: `(keyspace index, key, value or deletion)`.
type History = BTreeMap<u64, Vec<(usize, Vec<u8>, Option<Vec<u8>>)>>;
/// The contents of every keyspace.
type State = Vec<BTreeMap<Vec<u8>, Vec<u8>>>;

fn options() -> Options {
    Options {
        page_size: 4096,
        cache_bytes: 1 << 20,
        wal_segment_bytes: 64 << 10,
        checkpoint_wal_bytes: 1 << 20,
        checkpoint_interval_ms: 0,
        ..Options::default()
    }
}

fn model_at(history: &History, lsn: Lsn) -> State {
    let mut state = vec![BTreeMap::new(); KEYSPACES.len()];
    for (_, writes) in history.range(..=lsn.get()) {
        for (ks, key, value) in writes {
            match value {
                Some(v) => state[*ks].insert(key.clone(), v.clone()),
                None => state[*ks].remove(key),
            };
        }
    }
    state
}

fn contents(db: &Database) -> Result<State, String> {
    let snap = db.begin_read().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for name in KEYSPACES {
        let ks = db
            .open_keyspace(name)
            .map_err(|e| format!("keyspace {name}: {e}"))?;
        let rows: BTreeMap<Vec<u8>, Vec<u8>> = snap
            .range::<&[u8]>(&ks, ..)
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("scan of {name}: {e}"))?;
        out.push(rows);
    }
    Ok(out)
}

/// One commit of 1..4 random writes; records it in `history` under its LSN.
fn commit_one(db: &Database, rng: &mut Rng, history: &Mutex<History>) -> lightning_db::Result<()> {
    let durability = [
        Durability::Immediate,
        Durability::Eventual,
        Durability::None,
    ][usize::try_from(rng.below(3)).unwrap_or(0)];
    let mut tx = db.begin_write_with(TxOptions {
        durability: Some(durability),
        ..TxOptions::default()
    })?;
    let mut writes = Vec::new();
    for _ in 0..=rng.below(3) {
        let ks_i = usize::try_from(rng.below(2)).unwrap_or(0);
        let ks = db.open_keyspace(KEYSPACES[ks_i])?;
        let key = format!("k{:04}", rng.below(400)).into_bytes();
        if rng.chance(20) {
            tx.delete(&ks, &key)?;
            writes.push((ks_i, key, None));
        } else {
            let len = usize::try_from(8 + rng.below(300)).unwrap_or(8);
            let value = rng.bytes(len);
            tx.put(&ks, &key, &value)?;
            writes.push((ks_i, key, Some(value)));
        }
    }
    let info = tx.commit()?;
    if let Some(lsn) = info.lsn {
        // Later writes to the same key within the transaction win, as in the database.
        history.lock().unwrap().insert(lsn.get(), writes);
    }
    Ok(())
}

fn open_dir(vfs: &Arc<dyn Vfs>, dir: &Path) -> lightning_db::Result<Database> {
    Database::open_with_vfs(
        Arc::clone(vfs),
        dir,
        Options {
            create_if_missing: false,
            ..options()
        },
    )
}

#[test]
fn backups_taken_under_a_running_workload_restore_to_their_end_lsn_for_chains_of_1_to_10() {
    let mem: Arc<dyn Vfs> = Arc::new(MemVfs::new());
    let db = Database::open_with_vfs(Arc::clone(&mem), "db".as_ref(), options()).unwrap();
    for name in KEYSPACES {
        db.keyspace(name).unwrap();
    }
    let history = Mutex::new(History::new());
    let stop = AtomicBool::new(false);
    let manifests = std::thread::scope(|s| {
        for t in 0..2u64 {
            let (db, history, stop) = (&db, &history, &stop);
            s.spawn(move || {
                let mut rng = Rng::new(17 + t);
                while !stop.load(Ordering::Relaxed) {
                    match commit_one(db, &mut rng, history) {
                        Err(e) if e.is_retryable() => {}
                        other => other.unwrap(),
                    }
                }
            });
        }
        let mut manifests = Vec::new();
        for i in 0..10 {
            // Let the writers change pages between backups.
            let seen = history.lock().unwrap().len();
            while history.lock().unwrap().len() < seen + 150 {
                std::thread::yield_now();
            }
            manifests.push(db.backup("backups", i > 0).unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        manifests
    });
    let history = history.into_inner().unwrap();
    assert_eq!(manifests[0].kind, backup::manifest::Kind::Full);
    for pair in manifests.windows(2) {
        assert_eq!(
            pair[1].parent,
            Some(pair[0].id),
            "each incremental builds on the one before"
        );
        assert!(pair[1].end_lsn > pair[0].end_lsn);
    }
    // A full backup copies every page of its image (and the superblock).
    let full_pages = manifests[0].extents.iter().map(|e| e.count).sum::<u64>();
    assert_eq!(full_pages, manifests[0].live_pages() + 1);
    // With the writers stopped, one changed key: the next incremental copies its path (and
    // the catalog and free list the checkpoint rewrote), not the image.
    let ks = db.open_keyspace(KEYSPACES[0]).unwrap();
    // A tree of a known size, whatever the writers' interleaving made of the others (at
    // 94 pages, the 24 a checkpoint rewrites for one put were over a quarter).
    let bulk = db.keyspace("bulk").unwrap();
    let mut tx = db.begin_write().unwrap();
    for i in 0..3000u32 {
        tx.put(&bulk, format!("b{i:05}").as_bytes(), &[7u8; 300])
            .unwrap();
    }
    tx.commit().unwrap();
    db.backup("backups", true).unwrap(); // takes in the writers' last commits
    db.put(&ks, b"k0001", b"one change").unwrap();
    let one = db.backup("backups", true).unwrap();
    let copied = one.extents.iter().map(|e| e.count).sum::<u64>();
    assert!(
        copied * 4 < one.live_pages(),
        "an incremental after one change copied {copied} of {} pages",
        one.live_pages()
    );

    let mut restored = 0;
    for m in &manifests {
        let report = backup::verify(&mem, "backups".as_ref(), Some(m.id), &mut |_, _| {}).unwrap();
        assert_eq!(report.chain.len() as u64, m.id, "chain of backup {}", m.id);
        let to = PathBuf::from(format!("restored-{}", m.id));
        let opts = RestoreOptions {
            backup: Some(m.id),
            ..RestoreOptions::default()
        };
        let r = backup::restore(&mem, "backups".as_ref(), &to, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(r.lsn, m.end_lsn);
        let back = open_dir(&mem, &to).unwrap();
        let want = model_at(&history, m.end_lsn);
        assert_eq!(
            contents(&back).unwrap(),
            want,
            "backup {} restored at {}",
            m.id,
            m.end_lsn
        );
        assert!(back.check().unwrap().is_empty());
        back.close().unwrap();
        restored += 1;
    }
    assert_eq!(restored, 10);
    db.close().unwrap();
}

/// Every record's time, from the directories that hold the log.
fn record_times(vfs: &Arc<dyn Vfs>, dirs: &[&str]) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        let (_, records) =
            lightning_db::wal::read_only(Arc::clone(vfs), dir.as_ref(), 1 << 30, Lsn::new(1))
                .unwrap();
        for r in records {
            let r = r.unwrap();
            out.insert(r.lsn.get(), r.time_us);
        }
    }
    out
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one history, then each kind of target in turn"
)]
fn point_in_time_recovery_reaches_every_target_lsn_and_time_exactly() {
    let mem: Arc<dyn Vfs> = Arc::new(MemVfs::new());
    let opts = Options {
        wal_archive_dir: Some("/archive".into()),
        ..options()
    };
    let db = Database::open_with_vfs(Arc::clone(&mem), "db".as_ref(), opts).unwrap();
    for name in KEYSPACES {
        db.keyspace(name).unwrap();
    }
    let history = Mutex::new(History::new());
    let mut rng = Rng::new(5);
    let mut bases = Vec::new();
    for round in 0..4 {
        for _ in 0..400 {
            commit_one(&db, &mut rng, &history).unwrap();
        }
        db.checkpoint().unwrap();
        if round < 3 {
            bases.push(db.backup("backups", round > 0).unwrap());
        }
    }
    let history = history.into_inner().unwrap();
    let archived = lightning_db::wal::load_index(&*mem, "/archive".as_ref()).unwrap();
    assert!(
        archived.len() > 3,
        "segments were archived: {}",
        archived.len()
    );
    let times = record_times(&mem, &["/archive", "db/wal"]);
    let last = *history.keys().next_back().unwrap();
    let first_target = bases[0].image_lsn.get();
    let wal_dirs = vec![PathBuf::from("/archive"), PathBuf::from("db/wal")];

    let targets = scaled(12);
    for i in 0..targets {
        let by_time = i % 2 == 1;
        let lsn = first_target + rng.below(last - first_target + 1);
        let (target, expected) = if by_time {
            let t = times[&lsn];
            // The last record of the prefix whose times are all at or before `t`.
            let reached = times
                .range(bases[0].checkpoint_lsn.get().max(1)..)
                .take_while(|(_, time)| **time <= t)
                .last()
                .map(|(l, _)| *l)
                .unwrap();
            (Target::TimeUs(t), reached)
        } else {
            (Target::Lsn(Lsn::new(lsn)), lsn)
        };
        let to = PathBuf::from(format!("pitr-{i}"));
        let opts = RestoreOptions {
            target: Some(target),
            wal_dirs: wal_dirs.clone(),
            ..RestoreOptions::default()
        };
        let r = backup::restore(&mem, "backups".as_ref(), &to, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(r.lsn.get(), expected, "target {target:?}");
        let back = open_dir(&mem, &to).unwrap();
        assert_eq!(
            contents(&back).unwrap(),
            model_at(&history, r.lsn),
            "target {target:?}"
        );
        back.close().unwrap();
    }
    // The latest point: everything committed.
    let opts = RestoreOptions {
        target: Some(Target::Latest),
        wal_dirs: wal_dirs.clone(),
        ..RestoreOptions::default()
    };
    let r = backup::restore(
        &mem,
        "backups".as_ref(),
        "latest".as_ref(),
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.lsn.get(), last);
    let back = open_dir(&mem, "latest".as_ref()).unwrap();
    assert_eq!(contents(&back).unwrap(), model_at(&history, r.lsn));
    back.close().unwrap();

    // Before the oldest backup: refused.
    let early = RestoreOptions {
        target: Some(Target::Lsn(Lsn::new(bases[0].image_lsn.get() - 1))),
        wal_dirs: wal_dirs.clone(),
        ..RestoreOptions::default()
    };
    let e = backup::restore(
        &mem,
        "backups".as_ref(),
        "early".as_ref(),
        &early,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, BackupError::Target { .. }), "{e}");
    // Past what the backups hold, with no archive: a gap, named.
    let no_archive = RestoreOptions {
        target: Some(Target::Lsn(Lsn::new(last))),
        ..RestoreOptions::default()
    };
    let e = backup::restore(
        &mem,
        "backups".as_ref(),
        "gap".as_ref(),
        &no_archive,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, BackupError::WalGap { .. }), "{e}");
    assert!(
        open_dir(&mem, "gap".as_ref()).is_err(),
        "a refused restore leaves no database"
    );

    // Retention: keep the newest chain only; its window still recovers, and the archive
    // lost only segments below the oldest kept backup's checkpoint.
    let policy = backup::Retention {
        keep_full: Some(1),
        max_age_us: None,
        now_us: 0,
    };
    let pruned = backup::prune(
        &*mem,
        "backups".as_ref(),
        &policy,
        &[PathBuf::from("/archive")],
    )
    .unwrap();
    assert_eq!(
        pruned.kept,
        vec![1, 2, 3],
        "one chain: the full backup and its incrementals"
    );
    db.close().unwrap();
    let mid = Lsn::new(bases[2].image_lsn.get() + 1);
    let after = RestoreOptions {
        target: Some(Target::Lsn(mid)),
        wal_dirs,
        ..RestoreOptions::default()
    };
    let r = backup::restore(
        &mem,
        "backups".as_ref(),
        "after-prune".as_ref(),
        &after,
        &mut |_, _| {},
    )
    .unwrap();
    let back = open_dir(&mem, "after-prune".as_ref()).unwrap();
    assert_eq!(contents(&back).unwrap(), model_at(&history, r.lsn));
}

/// Every keyspace's contents, by name.
type Named = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn all_contents(db: &Database) -> Named {
    let snap = db.begin_read().unwrap();
    db.keyspaces()
        .into_iter()
        .map(|name| {
            let ks = db.open_keyspace(&name).unwrap();
            let rows = snap
                .range::<&[u8]>(&ks, ..)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (name, rows)
        })
        .collect()
}

#[test]
fn point_in_time_recovery_replays_keyspaces_created_and_dropped_after_the_backup() {
    let mem: Arc<dyn Vfs> = Arc::new(MemVfs::new());
    let opts = Options {
        wal_archive_dir: Some("/archive".into()),
        ..options()
    };
    let db = Database::open_with_vfs(Arc::clone(&mem), "db".as_ref(), opts).unwrap();
    let put = |name: &str, key: &str, value: &str| {
        let ks = db.open_keyspace(name).unwrap();
        let mut tx = db.begin_write().unwrap();
        tx.put(&ks, key.as_bytes(), value.as_bytes()).unwrap();
        tx.commit().unwrap().lsn.unwrap().get()
    };
    db.keyspace("accounts").unwrap();
    db.keyspace("doomed").unwrap();
    put("accounts", "a", "1");
    put("doomed", "d", "old");
    db.backup("backups", false).unwrap();
    // (expected keyspaces and rows, the LSN after which they hold)
    let mut points: Vec<(u64, Named)> = Vec::new();
    let mut snapshot = |lsn: u64| points.push((lsn, all_contents(&db)));
    snapshot(put("doomed", "d2", "more"));
    db.keyspace("late").unwrap();
    snapshot(db.stats().wal.last_lsn); // created, empty
    snapshot(put("late", "l", "x"));
    db.drop_keyspace("doomed").unwrap();
    snapshot(db.stats().wal.last_lsn); // dropped, nothing committed since
    snapshot(put("accounts", "a", "2"));
    db.keyspace("doomed").unwrap(); // again: a new id, empty
    snapshot(put("doomed", "d", "new"));
    db.drop_keyspace("late").unwrap();
    snapshot(db.stats().wal.last_lsn);
    db.close().unwrap();
    assert_eq!(points.len(), 7);
    let (latest, _) = *points.last().unwrap();
    let wal_dirs = vec![PathBuf::from("/archive"), PathBuf::from("db/wal")];
    let mut restored = 0;
    for (i, (lsn, expected)) in points.iter().enumerate() {
        let target = if *lsn == latest {
            Target::Latest
        } else {
            Target::Lsn(Lsn::new(*lsn))
        };
        let opts = RestoreOptions {
            target: Some(target),
            wal_dirs: wal_dirs.clone(),
            ..RestoreOptions::default()
        };
        let to = PathBuf::from(format!("ddl-{i}"));
        let r = backup::restore(&mem, "backups".as_ref(), &to, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(r.lsn.get(), *lsn, "target {target:?}");
        let back = open_dir(&mem, &to).unwrap();
        assert_eq!(&all_contents(&back), expected, "target {target:?}");
        // The restored catalog is whole: a keyspace created now gets a fresh id, and the
        // database checks clean after a reopen.
        back.keyspace("after-restore").unwrap();
        back.close().unwrap();
        let again = open_dir(&mem, &to).unwrap();
        assert!(again.keyspaces().contains(&"after-restore".to_owned()));
        assert!(again.check().unwrap().is_empty(), "target {target:?}");
        again.close().unwrap();
        restored += 1;
    }
    assert_eq!(restored, 7);
}

/// Flips one bit of `path` at bit `bit`.
fn flip(vfs: &dyn Vfs, path: &Path, bit: u64) {
    let f = vfs.open(path, OpenMode::ReadWrite).unwrap();
    let mut b = [0u8; 1];
    f.read_at(&mut b, bit / 8).unwrap();
    b[0] ^= 1 << (bit % 8);
    f.write_at(&b, bit / 8).unwrap();
}

fn files_under(vfs: &dyn Vfs, dir: &Path, out: &mut Vec<PathBuf>) {
    for f in vfs.list(dir).unwrap_or_default() {
        out.push(f);
    }
    for sub in ["000001", "000002", "000001/wal", "000002/wal"] {
        if dir.file_name().is_some_and(|n| n == "backups") {
            for f in vfs.list(&dir.join(sub)).unwrap_or_default() {
                out.push(f);
            }
        }
    }
}

#[test]
fn every_sampled_bit_flip_in_a_backup_is_found_by_verify_and_refused_by_restore() {
    let mem = Arc::new(MemVfs::new());
    let vfs: Arc<dyn Vfs> = mem.clone();
    let db = Database::open_with_vfs(Arc::clone(&vfs), "db".as_ref(), options()).unwrap();
    for name in KEYSPACES {
        db.keyspace(name).unwrap();
    }
    let history = Mutex::new(History::new());
    let mut rng = Rng::new(9);
    for _ in 0..300 {
        commit_one(&db, &mut rng, &history).unwrap();
    }
    db.backup("backups", false).unwrap();
    for _ in 0..100 {
        commit_one(&db, &mut rng, &history).unwrap();
    }
    db.backup("backups", true).unwrap();
    db.close().unwrap();
    let mut files = Vec::new();
    files_under(&*vfs, "backups".as_ref(), &mut files);
    assert!(
        files.len() >= 6,
        "manifests, pages and WAL of both backups: {files:?}"
    );
    let per_file = scaled(24);
    let mut flips = 0;
    for (i, path) in files.iter().enumerate() {
        let len = vfs.open(path, OpenMode::ReadOnly).unwrap().len().unwrap();
        for j in 0..per_file {
            // Spread over the file: evenly, plus a random offset within each stretch.
            let stretch = (len * 8) / per_file;
            let bit = j * stretch + rng.below(stretch.max(1));
            flip(&*vfs, path, bit);
            let v = backup::verify(&vfs, "backups".as_ref(), None, &mut |_, _| {});
            assert!(v.is_err(), "verify missed bit {bit} of {}", path.display());
            let to = PathBuf::from(format!("r-{i}-{j}"));
            let r = backup::restore(
                &vfs,
                "backups".as_ref(),
                &to,
                &RestoreOptions::default(),
                &mut |_, _| {},
            );
            assert!(r.is_err(), "restore took bit {bit} of {}", path.display());
            assert!(
                open_dir(&vfs, &to).is_err(),
                "a refused restore leaves no database"
            );
            flip(&*vfs, path, bit);
            flips += 1;
        }
    }
    assert_eq!(flips, files.len() as u64 * per_file);
    // Unflipped, everything checks out again.
    backup::verify(&vfs, "backups".as_ref(), None, &mut |_, _| {}).unwrap();
}

/// A power cut at a random moment of an incremental backup, then of a restore, then of the
/// first open of the restored database.
#[expect(
    clippy::too_many_lines,
    reason = "three cuts in sequence, each checked where it lands"
)]
fn crash_scenario(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let crash = Arc::new(CrashVfs::new(seed));
    let vfs: Arc<dyn Vfs> = crash.clone();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let db =
        Database::open_with_vfs(Arc::clone(&vfs), "db".as_ref(), options()).map_err(|x| e(&x))?;
    for name in KEYSPACES {
        db.keyspace(name).map_err(|x| e(&x))?;
    }
    let history = Mutex::new(History::new());
    for _ in 0..150 {
        commit_one(&db, &mut rng, &history).map_err(|x| e(&x))?;
    }
    let calls = crash.io_calls();
    let full = db.backup("backups", false).map_err(|x| e(&x))?;
    // Cuts land anywhere in a backup's calls (and a little past them).
    let backup_calls = crash.io_calls() - calls;
    for _ in 0..80 {
        commit_one(&db, &mut rng, &history).map_err(|x| e(&x))?;
    }
    // Cut the power somewhere inside the incremental backup (or just after it).
    crash.inject(Fault {
        op: FaultOp::Any,
        nth: rng.below(backup_calls + backup_calls / 8),
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    let incr = db.backup("backups", true).ok();
    drop(db);
    let mut outcome = Outcome::NONE;
    let report = crash.crash(CrashMode::from_index(rng.next_u64()));
    crash.clear_faults();
    outcome = outcome.and(Outcome::crash(report.pending, report.kept));
    let history = history.into_inner().map_err(|x| e(&x))?;
    let repo = backup::Repository::open(&*vfs, "backups".as_ref()).map_err(|x| e(&x))?;
    let complete: Vec<u64> = repo.complete().map(|m| m.id).collect();
    if let Some(m) = &incr
        && !complete.contains(&m.id)
    {
        return Err(format!(
            "backup {} was acknowledged but is not complete after the cut",
            m.id
        ));
    }
    if !complete.contains(&full.id) {
        return Err("the full backup did not survive".into());
    }
    let newest = *complete.last().ok_or("no backup")?;
    backup::verify(&vfs, "backups".as_ref(), Some(newest), &mut |_, _| {})
        .map_err(|x| format!("verify after the cut: {x}"))?;
    let end = repo.manifest(newest).map_err(|x| e(&x))?.end_lsn;

    // A cut inside the restore: a trial restore counts its calls.
    let calls = crash.io_calls();
    backup::restore(
        &vfs,
        "backups".as_ref(),
        "trial".as_ref(),
        &RestoreOptions::default(),
        &mut |_, _| {},
    )
    .map_err(|x| format!("trial restore: {x}"))?;
    let restore_calls = crash.io_calls() - calls;
    crash.inject(Fault {
        op: FaultOp::Any,
        nth: rng.below(restore_calls + restore_calls / 8),
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    let restored = backup::restore(
        &vfs,
        "backups".as_ref(),
        "to".as_ref(),
        &RestoreOptions::default(),
        &mut |_, _| {},
    )
    .is_ok();
    let report = crash.crash(CrashMode::from_index(rng.next_u64()));
    crash.clear_faults();
    outcome = outcome.and(Outcome::crash(report.pending, report.kept));
    let want = model_at(&history, end);
    match open_dir(&vfs, "to".as_ref()) {
        Ok(back) => {
            let got = contents(&back)?;
            if got != want {
                return Err(format!(
                    "a restore cut short opened with wrong contents (restore returned ok: {restored})"
                ));
            }
            drop(back);
        }
        Err(x) if restored => return Err(format!("a finished restore does not open: {x}")),
        Err(_) => {
            // Refused: restore again over it, then it must open.
            let opts = RestoreOptions {
                overwrite: true,
                ..RestoreOptions::default()
            };
            backup::restore(
                &vfs,
                "backups".as_ref(),
                "to".as_ref(),
                &opts,
                &mut |_, _| {},
            )
            .map_err(|x| format!("second restore: {x}"))?;
        }
    }
    // A cut inside the first open (its recovery replays the restored log); a trial open
    // of the trial restore counts the calls.
    let calls = crash.io_calls();
    drop(open_dir(&vfs, "trial".as_ref()).map_err(|x| format!("trial open: {x}"))?);
    let open_calls = crash.io_calls() - calls;
    crash.inject(Fault {
        op: FaultOp::Any,
        nth: rng.below(open_calls + open_calls / 8),
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    let first = open_dir(&vfs, "to".as_ref());
    drop(first);
    let report = crash.crash(CrashMode::from_index(rng.next_u64()));
    crash.clear_faults();
    outcome = outcome.and(Outcome::crash(report.pending, report.kept));
    let back =
        open_dir(&vfs, "to".as_ref()).map_err(|x| format!("open after a cut in recovery: {x}"))?;
    if contents(&back)? != want {
        return Err("the restored database lost commits through a cut in its recovery".into());
    }
    Ok(outcome)
}

#[test]
fn power_cuts_during_backup_restore_and_recovery_never_give_a_wrong_database() {
    let run = run_seeds("backup crashes", scaled(40), crash_scenario);
    assert_eq!(run.scenarios, scaled(40));
    run.assert_dropping(30);
    eprintln!("{run}");
}

/// Bytes written to backup `pages` files since their last sync, and the most seen.
#[derive(Debug, Default)]
struct Tally {
    unsynced: u64,
    most: u64,
    written: u64,
}

#[derive(Debug)]
struct TallyVfs {
    inner: MemVfs,
    tally: Arc<Mutex<Tally>>,
}

#[derive(Debug)]
struct TallyFile {
    inner: Box<dyn lightning_db::page::vfs::VfsFile>,
    tally: Option<Arc<Mutex<Tally>>>,
}

impl Vfs for TallyVfs {
    fn open(
        &self,
        path: &Path,
        mode: OpenMode,
    ) -> std::io::Result<Box<dyn lightning_db::page::vfs::VfsFile>> {
        let pages = path.file_name().is_some_and(|n| n == "pages");
        Ok(Box::new(TallyFile {
            inner: self.inner.open(path, mode)?,
            tally: pages.then(|| Arc::clone(&self.tally)),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.inner.exists(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<lightning_db::page::vfs::VfsLock> {
        self.inner.lock(path)
    }
}

impl lightning_db::page::vfs::VfsFile for TallyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(buf, offset)?;
        if let Some(t) = &self.tally {
            let mut t = t.lock().unwrap();
            t.unsynced += buf.len() as u64;
            t.written += buf.len() as u64;
            t.most = t.most.max(t.unsynced);
        }
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        self.inner.sync()?;
        if let Some(t) = &self.tally {
            t.lock().unwrap().unsynced = 0;
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
}

/// A backup sends its pages to the disk in bounded steps, so that the database's WAL fsyncs
/// on the same disk never queue behind the whole copy (a 436 ms commit stall was measured
/// with one sync at the end).
#[test]
fn a_backup_syncs_its_pages_in_bounded_steps() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let vfs: Arc<dyn Vfs> = Arc::new(TallyVfs {
        inner: MemVfs::new(),
        tally: Arc::clone(&tally),
    });
    let db = Database::open_with_vfs(Arc::clone(&vfs), "db".as_ref(), options()).unwrap();
    let ks = db.keyspace("k").unwrap();
    let tx_commit = |slot: &mut Option<lightning_db::WriteTx<'_>>| {
        if let Some(tx) = slot.take() {
            tx.commit().unwrap();
        }
    };
    let mut tx_slot = None;
    for i in 0..30_000u32 {
        if i % 10_000 == 0 {
            tx_commit(&mut tx_slot);
            tx_slot = Some(db.begin_write().unwrap());
        }
        let tx = tx_slot.as_mut().unwrap();
        tx.put(&ks, format!("k{i:08}").as_bytes(), &[9u8; 400])
            .unwrap();
    }
    tx_commit(&mut tx_slot);
    let m = db.backup("backups", false).unwrap();
    let t = tally.lock().unwrap();
    assert!(
        t.written > 3 * backup::PAGES_SYNC_BYTES,
        "the copy is several steps: {} bytes",
        t.written
    );
    assert_eq!(t.written, m.pages_len);
    assert!(
        t.most <= backup::PAGES_SYNC_BYTES + u64::from(m.page_size),
        "{} bytes written between two syncs",
        t.most
    );
}
