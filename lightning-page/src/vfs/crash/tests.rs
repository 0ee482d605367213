//! The crash VFS's own tests: each crash mode yields exactly the images it promises.

use super::*;

type Image = BTreeMap<String, Vec<u8>>;

fn image(vfs: &CrashVfs) -> Image {
    vfs.list(Path::new("."))
        .unwrap()
        .into_iter()
        .map(|p| {
            let data = vfs.contents(&p).unwrap();
            (p.to_string_lossy().into_owned(), data)
        })
        .collect()
}

fn fill(len: usize, b: u8) -> Vec<u8> {
    vec![b; len]
}

/// Durable: `a` = 1024 x 0x11. Pending, in order:
/// 0 write a@0 512 x 0x22; 1 create b; 2 write b@0 "bbbb"; 3 write a@512 512 x 0x33;
/// 4 rename b -> c; 5 `set_len` a 2048.
fn scripted(seed: u64) -> CrashVfs {
    let vfs = CrashVfs::new(seed);
    let a = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    a.write_at(&fill(1024, 0x11), 0).unwrap();
    a.sync().unwrap();
    a.write_at(&fill(512, 0x22), 0).unwrap();
    let b = vfs.open(Path::new("b"), OpenMode::CreateNew).unwrap();
    b.write_at(b"bbbb", 0).unwrap();
    a.write_at(&fill(512, 0x33), 512).unwrap();
    vfs.rename(Path::new("b"), Path::new("c")).unwrap();
    a.set_len(2048).unwrap();
    assert_eq!(vfs.pending_ops(), 6);
    vfs
}

/// The images a prefix of `n` pending operations must give, written out by hand.
fn prefix_image(n: usize) -> Image {
    let mut a = fill(1024, 0x11);
    let mut img = Image::new();
    if n >= 1 {
        a[..512].fill(0x22);
    }
    if n >= 2 {
        img.insert("b".into(), Vec::new());
    }
    if n >= 3 {
        img.insert("b".into(), b"bbbb".to_vec());
    }
    if n >= 4 {
        a[512..].fill(0x33);
    }
    if n >= 5 {
        let b = img.remove("b").unwrap();
        img.insert("c".into(), b);
    }
    if n >= 6 {
        a.resize(2048, 0);
    }
    img.insert("a".into(), a);
    img
}

#[test]
fn drop_unsynced_keeps_only_synced_state() {
    let vfs = scripted(1);
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(image(&vfs), prefix_image(0));
    assert_eq!(vfs.pending_ops(), 0);
}

#[test]
fn keep_prefix_gives_each_prefix_exactly() {
    for n in 0..=7 {
        let vfs = scripted(2);
        let report = vfs.crash(CrashMode::KeepPrefix(n));
        assert_eq!(report.kept, n.min(6));
        assert_eq!(image(&vfs), prefix_image(n), "prefix {n}");
    }
}

#[test]
fn random_prefix_gives_only_prefix_images_and_all_of_them() {
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let vfs = scripted(seed);
        let report = vfs.crash(CrashMode::RandomPrefix);
        assert_eq!(image(&vfs), prefix_image(report.kept), "seed {seed}");
        seen.insert(report.kept);
    }
    assert_eq!(seen, (0..=6).collect::<BTreeSet<_>>());
}

#[test]
fn random_subset_keeps_whole_writes_in_any_combination() {
    let mut combos = BTreeSet::new();
    for seed in 0..400 {
        let vfs = scripted(seed);
        vfs.crash(CrashMode::RandomSubset);
        let img = image(&vfs);
        let a = &img["a"];
        // Each of the three data operations on `a` is all-or-nothing.
        let w0 = a[..512] == fill(512, 0x22)[..];
        assert!(
            w0 || a[..512] == fill(512, 0x11)[..],
            "seed {seed}: first write torn"
        );
        let w3 = a[512..1024] == fill(512, 0x33)[..];
        assert!(
            w3 || a[512..1024] == fill(512, 0x11)[..],
            "seed {seed}: second write torn"
        );
        let grown = a.len() == 2048;
        assert!(grown || a.len() == 1024);
        if grown {
            assert!(a[1024..].iter().all(|&b| b == 0));
        }
        // Directory operations form a prefix: nothing, b created, or b renamed to c.
        let names: Vec<&str> = img.keys().map(String::as_str).collect();
        let namespace = match names.as_slice() {
            ["a"] => 0,
            ["a", "b"] => 1,
            ["a", "c"] => 2,
            other => panic!("seed {seed}: impossible namespace {other:?}"),
        };
        if let Some(b) = img.get("b").or(img.get("c")) {
            assert!(b.is_empty() || b == b"bbbb");
        }
        combos.insert((w0, w3, grown, namespace));
    }
    // Reordering happens: the later write survives without the earlier one.
    assert!(combos.contains(&(false, true, false, 0)) || combos.iter().any(|c| !c.0 && c.1));
    assert!(
        combos.len() >= 16,
        "only {} combinations seen",
        combos.len()
    );
}

fn torn_setup(seed: u64) -> CrashVfs {
    let vfs = CrashVfs::new(seed);
    let a = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    a.write_at(&fill(2048, 0x11), 0).unwrap();
    a.sync().unwrap();
    // Spans four sectors partially: [256,512) [512,1024) [1024,1536) [1536,1792).
    a.write_at(&fill(1536, 0x22), 256).unwrap();
    vfs
}

const PIECES: [(usize, usize); 4] = [(256, 512), (512, 1024), (1024, 1536), (1536, 1792)];

#[test]
fn torn_write_tears_at_sector_boundaries_only() {
    let mut mixes = 0;
    for seed in 0..300 {
        let vfs = torn_setup(seed);
        let report = vfs.crash(CrashMode::TornWrite { garbage: false });
        let a = &image(&vfs)["a"];
        assert_eq!(a.len(), 2048);
        assert!(
            a[..256].iter().chain(&a[1792..]).all(|&b| b == 0x11),
            "outside the write"
        );
        let mut old = 0;
        for (s, e) in PIECES {
            let piece = &a[s..e];
            let is_new = piece.iter().all(|&b| b == 0x22);
            let is_old = piece.iter().all(|&b| b == 0x11);
            assert!(
                is_new || is_old,
                "seed {seed}: sector piece {s}..{e} mixed within"
            );
            old += usize::from(is_old);
        }
        if report.kept == 0 {
            assert_eq!(report.torn_sectors, old, "seed {seed}");
            mixes += usize::from(old > 0 && old < 4);
        } else {
            assert_eq!(old, 0, "write kept whole when the prefix covers it");
        }
        assert_eq!(report.garbage_sectors, 0);
    }
    assert!(
        mixes > 50,
        "torn writes should mix old and new sectors ({mixes})"
    );
}

#[test]
fn torn_write_with_garbage_fills_lost_sectors_with_other_bytes() {
    let mut garbage_seen = 0;
    for seed in 0..300 {
        let vfs = torn_setup(seed);
        let report = vfs.crash(CrashMode::TornWrite { garbage: true });
        let a = &image(&vfs)["a"];
        let (mut new, mut old, mut other) = (0, 0, 0);
        for (s, e) in PIECES {
            let piece = &a[s..e];
            if piece.iter().all(|&b| b == 0x22) {
                new += 1;
            } else if piece.iter().all(|&b| b == 0x11) {
                old += 1;
            } else {
                other += 1;
            }
        }
        assert_eq!(new + old + other, 4);
        if report.kept == 0 {
            assert_eq!(
                (old, other),
                (report.torn_sectors, report.garbage_sectors),
                "seed {seed}"
            );
        }
        garbage_seen += other;
    }
    assert!(garbage_seen > 100);
}

#[test]
fn lose_dir_ops_keeps_all_data_but_no_unsynced_names() {
    let vfs = scripted(3);
    vfs.crash(CrashMode::LoseDirOps);
    let mut a = fill(512, 0x22);
    a.extend(fill(512, 0x33));
    a.resize(2048, 0);
    assert_eq!(image(&vfs), Image::from([("a".to_string(), a)]));
}

#[test]
fn synced_data_of_an_unsynced_create_is_lost_and_unsynced_remove_is_undone() {
    let vfs = CrashVfs::new(4);
    let keep = vfs.open(Path::new("keep"), OpenMode::CreateNew).unwrap();
    keep.write_at(b"k", 0).unwrap();
    keep.sync().unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    let new = vfs.open(Path::new("new"), OpenMode::CreateNew).unwrap();
    new.write_at(b"n", 0).unwrap();
    new.sync().unwrap();
    vfs.remove(Path::new("keep")).unwrap();
    assert_eq!(vfs.durable_contents(Path::new("new")), None);
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(
        image(&vfs),
        Image::from([("keep".to_string(), b"k".to_vec())])
    );
}

#[test]
fn same_seed_same_image() {
    for mode in [
        CrashMode::RandomSubset,
        CrashMode::TornWrite { garbage: true },
        CrashMode::RandomPrefix,
    ] {
        let a = scripted(99);
        let b = scripted(99);
        assert_eq!(a.crash(mode), b.crash(mode));
        assert_eq!(image(&a), image(&b));
    }
}

#[test]
fn handles_go_stale_after_a_crash() {
    let vfs = CrashVfs::new(5);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.crash(CrashMode::DropUnsynced);
    assert!(f.write_at(b"x", 0).is_err());
    assert!(f.len().is_err());
    assert!(!vfs.exists(Path::new("a")).unwrap());
}

#[test]
fn nth_write_fails_once_then_works() {
    let vfs = CrashVfs::new(6);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Write,
        nth: 1,
        permanent: false,
        kind: FaultKind::Io,
    });
    f.write_at(b"1", 0).unwrap();
    assert!(f.write_at(b"2", 1).is_err());
    f.write_at(b"3", 2).unwrap();
    assert_eq!(vfs.contents(Path::new("a")).unwrap(), b"1\x003");
}

#[test]
fn permanent_fault_keeps_failing_and_enospc_is_storage_full() {
    let vfs = CrashVfs::new(7);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.inject(Fault {
        op: FaultOp::SetLen,
        nth: 0,
        permanent: true,
        kind: FaultKind::NoSpace,
    });
    for _ in 0..3 {
        assert_eq!(
            f.set_len(4096).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
    }
    f.write_at(b"w", 0).unwrap();
    assert_eq!(f.len().unwrap(), 1);
    vfs.clear_faults();
    f.set_len(10).unwrap();
}

#[test]
fn any_counts_every_io_call_kind() {
    let vfs = CrashVfs::new(8);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    let before = vfs.io_calls();
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth: 3,
        permanent: false,
        kind: FaultKind::Io,
    });
    f.write_at(b"abc", 0).unwrap();
    f.set_len(3).unwrap();
    f.read_at(&mut [0u8; 3], 0).unwrap();
    assert!(f.sync().is_err());
    assert_eq!(vfs.io_calls() - before, 4);
}

#[test]
fn failed_fsync_data_never_becomes_durable() {
    let vfs = CrashVfs::new(9);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    f.write_at(b"old!", 0).unwrap();
    f.sync().unwrap();
    f.write_at(b"new!", 0).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: false,
        kind: FaultKind::Io,
    });
    assert!(f.sync().is_err());
    // The later sync "succeeds", as Linux reports, but the data it should cover is gone.
    f.sync().unwrap();
    assert_eq!(
        vfs.contents(Path::new("a")).unwrap(),
        b"new!",
        "reads still see the page cache"
    );
    vfs.crash(CrashMode::LoseDirOps);
    assert_eq!(vfs.contents(Path::new("a")).unwrap(), b"old!");
}

#[test]
fn power_cut_fault_keeps_pending_writes_for_the_crash_to_decide() {
    let vfs = CrashVfs::new(10);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    f.write_at(b"pending", 0).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth: 0,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    assert!(f.sync().is_err());
    assert!(f.write_at(b"x", 0).is_err());
    assert!(vfs.sync_dir(Path::new(".")).is_err());
    assert_eq!(
        vfs.pending_ops(),
        1,
        "the cut sync must not drop the pending write"
    );
    vfs.crash(CrashMode::KeepPrefix(1));
    assert_eq!(vfs.contents(Path::new("a")).unwrap(), b"pending");
}

#[test]
fn a_power_cut_stops_every_later_call_until_the_crash() {
    let vfs = CrashVfs::new(11);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: false,
        kind: FaultKind::PowerCut,
    });
    assert!(f.sync().is_err());
    assert!(
        f.write_at(b"after", 0).is_err(),
        "writes after the cut must not land"
    );
    assert!(vfs.open(Path::new("b"), OpenMode::CreateNew).is_err());
    assert!(vfs.rename(Path::new("a"), Path::new("c")).is_err());
    assert!(vfs.remove(Path::new("a")).is_err());
    vfs.crash(CrashMode::LoseDirOps);
    let g = vfs.open(Path::new("b"), OpenMode::CreateNew).unwrap();
    g.write_at(b"works again", 0).unwrap();
}

#[test]
fn syncing_the_target_directory_of_a_rename_keeps_the_file() {
    let vfs = CrashVfs::new(12);
    vfs.create_dir_all(Path::new("wal")).unwrap();
    vfs.create_dir_all(Path::new("archive")).unwrap();
    let f = vfs.open(Path::new("wal/x"), OpenMode::CreateNew).unwrap();
    f.write_at(b"data", 0).unwrap();
    f.sync().unwrap();
    vfs.rename(Path::new("wal/x"), Path::new("archive/x"))
        .unwrap();
    vfs.sync_dir(Path::new("archive")).unwrap();
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(
        vfs.contents(Path::new("archive/x")).as_deref(),
        Some(&b"data"[..])
    );
    assert_eq!(vfs.contents(Path::new("wal/x")), None);
}
