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
        CrashMode::Arbitrary,
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

#[test]
fn crash_vfs_conforms() {
    let vfs = CrashVfs::new(13);
    super::super::conformance::run(&vfs, Path::new("/crash"));
    super::super::conformance::missing_directories(&vfs, Path::new("/crash/m"));
}

/// Sector `i` of `a`: `Some(b)` if all its bytes are `b`, `None` if it holds a mix
/// (random bytes).
fn sector(a: &[u8], i: usize) -> Option<u8> {
    let s = &a[i * SECTOR..(i + 1) * SECTOR];
    s.iter().all(|&b| b == s[0]).then_some(s[0])
}

#[test]
fn arbitrary_lands_an_earlier_write_over_a_later_one() {
    // Durable: two sectors of 0x11. Pending: w1 fills sector 0 with 0x22, then w2 fills
    // sectors 0 and 1 with 0x33. In issue order, w2 landing whole leaves 0x33 in both.
    let mut reordered = 0;
    for seed in 0..600 {
        let vfs = CrashVfs::new(seed);
        let a = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
        vfs.sync_dir(Path::new(".")).unwrap();
        a.write_at(&fill(1024, 0x11), 0).unwrap();
        a.sync().unwrap();
        a.write_at(&fill(512, 0x22), 0).unwrap();
        a.write_at(&fill(1024, 0x33), 0).unwrap();
        let report = vfs.crash(CrashMode::Arbitrary);
        let img = vfs.contents(Path::new("a")).unwrap();
        assert_eq!(img.len(), 1024);
        assert_eq!(report.pending, 2);
        assert!(report.kept + report.torn_writes <= 2);
        let (s0, s1) = (sector(&img, 0), sector(&img, 1));
        if report.garbage_sectors == 0 {
            assert!(
                matches!(s0, Some(0x11 | 0x22 | 0x33)),
                "seed {seed}: {s0:?}"
            );
            assert!(matches!(s1, Some(0x11 | 0x33)), "seed {seed}: {s1:?}");
        }
        // Both writes whole (nothing torn, nothing lost), yet the earlier one on top.
        if report.kept == 2 && s0 == Some(0x22) {
            assert_eq!(s1, Some(0x33));
            reordered += 1;
        }
    }
    assert!(
        reordered > 10,
        "the earlier write must land last sometimes ({reordered})"
    );
}

#[test]
fn arbitrary_keeps_any_subset_with_several_torn_writes() {
    // Durable: eight sectors of 0x11. Pending: eight writes, one per sector (value 0x20 + i),
    // each straddling into the next sector by 100 bytes (so each tears into two pieces),
    // and a length change.
    let mut subsets = BTreeSet::new();
    let (mut several_torn, mut garbage, mut all_kept, mut none_kept) = (0, 0, 0, 0);
    for seed in 0..800 {
        let vfs = CrashVfs::new(seed);
        let a = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
        vfs.sync_dir(Path::new(".")).unwrap();
        a.write_at(&fill(9 * SECTOR, 0x11), 0).unwrap();
        a.sync().unwrap();
        for i in 0..8u8 {
            let at = usize::from(i) * SECTOR + 100;
            a.write_at(&fill(SECTOR, 0x20 + i), at as u64).unwrap();
        }
        a.set_len(10 * SECTOR as u64).unwrap();
        let report = vfs.crash(CrashMode::Arbitrary);
        assert_eq!(report.pending, 9);
        let img = vfs.contents(Path::new("a")).unwrap();
        assert!(img.len() == 9 * SECTOR || img.len() == 10 * SECTOR);
        // Every piece holds the old bytes, one of the two writes over it, or random bytes.
        let mut landed = 0u8;
        for i in 0..8 {
            let at = i * SECTOR + 100;
            let head = &img[at..(i + 1) * SECTOR];
            let tail = &img[(i + 1) * SECTOR..at + SECTOR];
            let mine = 0x20 + u8::try_from(i).unwrap();
            for piece in [head, tail] {
                let uniform = piece.iter().all(|&b| b == piece[0]);
                if uniform && piece[0] == mine {
                    landed |= 1 << i;
                }
            }
        }
        assert!(
            img[..100].iter().all(|&b| b == 0x11),
            "seed {seed}: before the writes"
        );
        subsets.insert(landed);
        several_torn += usize::from(report.torn_writes >= 2);
        garbage += usize::from(report.garbage_sectors > 0);
        all_kept += usize::from(report.kept == 9);
        none_kept += usize::from(report.kept == 0 && report.torn_writes == 0);
    }
    assert!(
        several_torn > 200,
        "several torn writes in one cut ({several_torn})"
    );
    assert!(garbage > 200, "torn pieces hold random bytes ({garbage})");
    assert!(
        subsets.len() > 200,
        "any subset of the writes may land ({} seen)",
        subsets.len()
    );
    assert!(all_kept + none_kept < 40);
}

#[test]
fn arbitrary_keeps_directory_operations_as_a_prefix() {
    for seed in 0..200 {
        let vfs = scripted(seed);
        vfs.crash(CrashMode::Arbitrary);
        let img = image(&vfs);
        let names: Vec<&str> = img.keys().map(String::as_str).collect();
        assert!(
            matches!(names.as_slice(), ["a"] | ["a", "b" | "c"]),
            "seed {seed}: impossible namespace {names:?}"
        );
    }
}

#[test]
fn from_index_picks_every_mode() {
    let modes: Vec<CrashMode> = (0..CrashMode::INDEXED).map(CrashMode::from_index).collect();
    for (i, m) in modes.iter().enumerate() {
        assert!(!modes[..i].contains(m), "{m:?} twice");
    }
    assert!(modes.contains(&CrashMode::Arbitrary));
    assert_eq!(CrashMode::from_index(CrashMode::INDEXED), modes[0]);
}

/// Two files with pending writes; only `synced` is synced before the cut. Returns the
/// crash report and both files' contents afterwards.
fn one_of_two_synced(seed: u64, mode: CrashMode) -> (CrashReport, Vec<u8>, Vec<u8>) {
    let vfs = CrashVfs::new(seed);
    let synced = vfs.open(Path::new("synced"), OpenMode::CreateNew).unwrap();
    let other = vfs.open(Path::new("other"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    synced.write_at(&fill(1024, 0x11), 0).unwrap();
    other.write_at(&fill(1024, 0x11), 0).unwrap();
    synced.sync().unwrap();
    other.sync().unwrap();
    // Interleaved pending writes to both files, then a sync of one of them.
    synced.write_at(&fill(512, 0xA1), 0).unwrap();
    other.write_at(&fill(512, 0xB1), 0).unwrap();
    synced.write_at(&fill(512, 0xA2), 512).unwrap();
    other.write_at(&fill(512, 0xB2), 512).unwrap();
    other.set_len(1536).unwrap();
    synced.sync().unwrap();
    let report = vfs.crash(mode);
    (
        report,
        vfs.contents(Path::new("synced")).unwrap(),
        vfs.contents(Path::new("other")).unwrap(),
    )
}

#[test]
fn a_sync_makes_only_its_own_file_durable_and_dropping_modes_drop_the_others_writes() {
    let mut synced_image = fill(512, 0xA1);
    synced_image.extend(fill(512, 0xA2));
    let old = fill(1024, 0x11);
    let mut modes: Vec<CrashMode> = (0..CrashMode::INDEXED).map(CrashMode::from_index).collect();
    modes.push(CrashMode::KeepPrefix(0));
    for mode in modes {
        let mut dropped_all = 0;
        for seed in 0..64 {
            let (report, synced, other) = one_of_two_synced(seed, mode);
            let what = format!("{mode:?} seed {seed}");
            assert_eq!(
                synced, synced_image,
                "{what}: the synced file keeps everything"
            );
            if matches!(mode, CrashMode::DropUnsynced | CrashMode::KeepPrefix(0)) {
                assert_eq!(
                    other, old,
                    "{what}: the other file keeps only what it synced"
                );
            }
            assert_eq!(
                report.pending, 3,
                "{what}: the sync took only its own file's writes"
            );
            if report.kept == 0 && report.torn_writes == 0 {
                assert_eq!(
                    other, old,
                    "{what}: nothing kept, yet the other file changed"
                );
            }
            if mode == CrashMode::LoseDirOps {
                assert_eq!(report.kept, 3, "{what}");
            }
            dropped_all += usize::from(other == old);
        }
        // Every mode that may drop data does drop the other file's writes, entirely, for
        // some seeds.
        if mode != CrashMode::LoseDirOps {
            assert!(
                dropped_all > 0,
                "{mode:?} never dropped the unsynced writes"
            );
        }
    }
}

#[test]
fn a_new_directory_is_lost_with_everything_in_it_until_its_parent_is_synced() {
    let setup = |seed| {
        let vfs = CrashVfs::new(seed);
        vfs.create_dir_all(Path::new("d/e")).unwrap();
        let f = vfs.open(Path::new("d/e/x"), OpenMode::CreateNew).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.sync().unwrap();
        assert!(vfs.exists(Path::new("d")).unwrap());
        assert_eq!(vfs.pending_ops(), 3, "two directories and a file created");
        assert_eq!(vfs.durable_contents(Path::new("d/e/x")), None);
        vfs
    };
    let names = |vfs: &CrashVfs| {
        ["d", "d/e"]
            .map(|p| vfs.exists(Path::new(p)).unwrap())
            .into_iter()
            .chain([vfs.contents(Path::new("d/e/x")).is_some()])
            .collect::<Vec<_>>()
    };
    // Nothing synced: the directories go, and the file with its synced data.
    let vfs = setup(1);
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(names(&vfs), [false, false, false]);
    assert!(vfs.list(Path::new("d")).is_err(), "no such directory");
    let vfs = setup(1);
    vfs.crash(CrashMode::LoseDirOps);
    assert_eq!(names(&vfs), [false, false, false]);
    // Each prefix of the creations.
    for (n, want) in [
        [true, false, false],
        [true, true, false],
        [true, true, true],
    ]
    .into_iter()
    .enumerate()
    {
        let vfs = setup(2);
        vfs.crash(CrashMode::KeepPrefix(n + 1));
        assert_eq!(names(&vfs), want, "prefix {}", n + 1);
    }
    // Syncing the parent of `d` keeps `d` only.
    let vfs = setup(3);
    vfs.sync_dir(Path::new(".")).unwrap();
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(names(&vfs), [true, false, false]);
    // Syncing `d/e` commits what came before it too: metadata is journaled in order.
    let vfs = setup(4);
    vfs.sync_dir(Path::new("d/e")).unwrap();
    assert_eq!(
        vfs.durable_contents(Path::new("d/e/x")).as_deref(),
        Some(&b"x"[..])
    );
    vfs.crash(CrashMode::DropUnsynced);
    assert_eq!(names(&vfs), [true, true, true]);
    assert_eq!(vfs.contents(Path::new("d/e/x")).as_deref(), Some(&b"x"[..]));
    // A directory that already exists is not created again.
    vfs.create_dir_all(Path::new("d/e")).unwrap();
    assert_eq!(vfs.pending_ops(), 0);
}

#[test]
fn injected_faults_fail_namespace_operations_without_effect() {
    let vfs = CrashVfs::new(14);
    vfs.create_dir_all(Path::new("d")).unwrap();
    drop(vfs.open(Path::new("d/a"), OpenMode::CreateNew).unwrap());
    vfs.sync_dir(Path::new("d")).unwrap();
    let before = (vfs.io_calls(), vfs.pending_ops());
    vfs.inject(Fault {
        op: FaultOp::Namespace,
        nth: 0,
        permanent: true,
        kind: FaultKind::Io,
    });
    assert!(vfs.open(Path::new("d/b"), OpenMode::CreateNew).is_err());
    assert!(vfs.open(Path::new("d/b"), OpenMode::OpenOrCreate).is_err());
    assert!(vfs.rename(Path::new("d/a"), Path::new("d/c")).is_err());
    assert!(vfs.remove(Path::new("d/a")).is_err());
    assert_eq!(
        vfs.create_dir_all(Path::new("d/e")).unwrap_err().kind(),
        io::ErrorKind::Other
    );
    assert_eq!(
        vfs.io_calls() - before.0,
        5,
        "each namespace call is counted"
    );
    assert_eq!(vfs.pending_ops(), before.1, "a failed call logs nothing");
    assert_eq!(vfs.list(Path::new("d")).unwrap(), [PathBuf::from("d/a")]);
    assert!(!vfs.exists(Path::new("d/e")).unwrap());
    // Opening an existing file changes no name: it is not a namespace operation.
    drop(vfs.open(Path::new("d/a"), OpenMode::ReadWrite).unwrap());
    drop(vfs.open(Path::new("d/a"), OpenMode::OpenOrCreate).unwrap());
    vfs.clear_faults();
    vfs.rename(Path::new("d/a"), Path::new("d/c")).unwrap();

    // `Any` counts namespace calls too, and the nth of them fails.
    let vfs = CrashVfs::new(15);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth: 2,
        permanent: false,
        kind: FaultKind::NoSpace,
    });
    f.write_at(b"1", 0).unwrap();
    vfs.create_dir_all(Path::new("d")).unwrap();
    assert_eq!(
        vfs.open(Path::new("b"), OpenMode::CreateNew)
            .unwrap_err()
            .kind(),
        io::ErrorKind::StorageFull
    );
    assert!(!vfs.exists(Path::new("b")).unwrap());
    drop(vfs.open(Path::new("b"), OpenMode::CreateNew).unwrap());
}

#[test]
fn a_power_cut_at_a_namespace_operation_stops_everything() {
    let vfs = CrashVfs::new(16);
    let f = vfs.open(Path::new("a"), OpenMode::CreateNew).unwrap();
    vfs.sync_dir(Path::new(".")).unwrap();
    f.write_at(b"pending", 0).unwrap();
    vfs.inject(Fault {
        op: FaultOp::Namespace,
        nth: 0,
        permanent: false,
        kind: FaultKind::PowerCut,
    });
    assert!(vfs.rename(Path::new("a"), Path::new("b")).is_err());
    assert!(
        f.sync().is_err(),
        "nothing reaches the device after the cut"
    );
    assert!(vfs.exists(Path::new("a")).is_err());
    assert_eq!(vfs.pending_ops(), 1);
    vfs.crash(CrashMode::KeepPrefix(1));
    assert_eq!(
        vfs.contents(Path::new("a")).as_deref(),
        Some(&b"pending"[..])
    );
    assert_eq!(vfs.contents(Path::new("b")), None);
}

/// A power cut releases the locks held before it (their holders died with the machine), and
/// a guard from before the cut, dropped after it, does not release a lock taken since.
#[test]
fn a_power_cut_releases_locks_and_old_guards_release_nothing_after_it() {
    let vfs = CrashVfs::new(3);
    let path = Path::new("LOCK");
    let before = vfs.lock(path).unwrap();
    vfs.crash(CrashMode::DropUnsynced);
    let after = vfs.lock(path).unwrap();
    drop(before);
    assert_eq!(
        vfs.lock(path).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(after);
    vfs.lock(path).unwrap();
}
