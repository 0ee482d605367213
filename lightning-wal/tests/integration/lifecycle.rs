//! What a user of the log relies on around its edges: record times, the LSN accessors,
//! closing and dropping, the background flusher, `None` durability, poisoning of every
//! entry point, and what `Debug` shows.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, MemVfs, Vfs};
use lightning_wal::{Durability, Error, Lsn, WalOptions};

use crate::{all_records, dir, open, payload, small};

fn wall_clock_us() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn fail_next_sync(vfs: &CrashVfs) {
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: false,
        kind: FaultKind::Io,
    });
}

#[test]
fn records_carry_the_wall_clock_time_of_their_append() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        archive_dir: Some("db/wal-archive".into()),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    let before = wall_clock_us();
    for i in 1..=12u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    let after = wall_clock_us();
    for r in all_records(&wal) {
        assert!(
            (before..=after).contains(&r.time_us),
            "record {} stamped {} outside {before}..={after}",
            r.lsn,
            r.time_us
        );
    }
    // Point-in-time recovery finds segments by these times.
    assert!(wal.truncate_before(Lsn::new(10)).unwrap() > 0);
    let index = lightning_wal::load_index(&*vfs, "db/wal-archive".as_ref()).unwrap();
    for s in &index {
        assert!(
            before <= s.min_time_us && s.min_time_us <= s.max_time_us && s.max_time_us <= after
        );
    }
    assert_eq!(
        lightning_wal::last_lsn_at(&index, before.saturating_sub(1)),
        None
    );
    assert_eq!(
        lightning_wal::last_lsn_at(&index, after),
        Some(index.last().unwrap().last)
    );
}

#[test]
fn last_lsn_follows_appends_of_every_durability_and_survives_reopen() {
    let vfs = Arc::new(MemVfs::new());
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.last_lsn(), Lsn::ZERO);
    assert_eq!(wal.stats().last_lsn, Lsn::ZERO);
    wal.append(1, b"a", Durability::Immediate).unwrap();
    wal.append(1, b"b", Durability::None).unwrap();
    wal.append(1, b"c", Durability::Eventual).unwrap();
    assert_eq!(wal.last_lsn(), Lsn::new(3));
    let stats = wal.stats();
    assert_eq!(
        (stats.last_lsn, stats.durable_lsn),
        (Lsn::new(3), Lsn::new(1))
    );
    wal.close().unwrap();
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.last_lsn(), Lsn::new(3));
    assert_eq!(wal.stats().last_lsn, Lsn::new(3));
    assert_eq!(wal.durable_lsn(), Lsn::new(3));
}

#[test]
fn debug_output_names_the_directory_and_the_lsn() {
    let vfs = Arc::new(MemVfs::new());
    let wal = open(&vfs, &small()).unwrap();
    let a = wal.append(1, b"x", Durability::Immediate).unwrap();
    let shown = format!("{wal:?}");
    assert!(
        shown.contains("db/wal") && shown.contains("recovery"),
        "{shown}"
    );
    assert_eq!(format!("{a:?}"), "Appended { lsn: Lsn(1), .. }");
}

#[test]
fn close_makes_buffered_records_durable_and_reports_a_failed_final_sync() {
    let vfs = Arc::new(CrashVfs::new(1));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=3u64 {
        wal.append(1, &payload(i, 100), Durability::None).unwrap();
    }
    wal.close().unwrap();
    vfs.crash(CrashMode::DropUnsynced);
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::new(3));

    wal.append(1, b"never durable", Durability::None).unwrap();
    fail_next_sync(&vfs);
    let e = wal.close().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn dropping_the_log_makes_buffered_records_durable() {
    let vfs = Arc::new(CrashVfs::new(2));
    let opts = WalOptions {
        flush_interval: Duration::from_secs(3600),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    wal.append(1, b"buffered", Durability::None).unwrap();
    wal.append(1, b"eventual", Durability::Eventual).unwrap();
    drop(wal);
    vfs.crash(CrashMode::DropUnsynced);
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::new(2));
}

#[test]
fn a_long_flush_interval_neither_syncs_early_nor_holds_up_close() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        flush_interval: Duration::from_secs(3600),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    let a = wal.append(1, b"eventual", Durability::Eventual).unwrap();
    // The flusher sleeps for an hour: nothing else syncs the record before close.
    assert_eq!(wal.durable_lsn(), Lsn::ZERO);
    assert_eq!(wal.stats().syncs, 0);
    // Close wakes the flusher instead of waiting out its interval (a hang here is the bug).
    wal.close().unwrap();
    let wal = open(&vfs, &opts).unwrap();
    assert_eq!(wal.recovery().last_lsn, a.lsn());
}

#[test]
fn the_flusher_makes_every_pending_eventual_record_durable() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        flush_interval: Duration::from_millis(1),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for i in 1..=3u64 {
        wal.append(1, &payload(i, 50), Durability::Eventual)
            .unwrap();
    }
    // No deadline: a flusher that never syncs hangs here and the test runner stops it.
    while wal.durable_lsn() < Lsn::new(3) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(wal.stats().syncs >= 1);
}

#[test]
fn none_appends_are_written_when_the_buffer_fills_but_not_fsynced() {
    let vfs = Arc::new(CrashVfs::new(3));
    let opts = WalOptions {
        segment_size: 1 << 16,
        buffer_limit: 1000,
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for i in 1..=50u64 {
        wal.append(1, &payload(i, 100), Durability::None).unwrap();
    }
    assert!(
        all_records(&wal).len() >= 40,
        "written out as the buffer filled"
    );
    let stats = wal.stats();
    assert_eq!(
        (stats.syncs, wal.durable_lsn()),
        (0, Lsn::ZERO),
        "{stats:?}"
    );
    // Nothing was promised durable, and nothing was made so.
    std::mem::forget(wal); // no final sync: the process dies here
    vfs.crash(CrashMode::DropUnsynced);
    let wal = open(&vfs, &opts).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::ZERO);
}

#[test]
fn a_poisoned_log_refuses_truncation_and_keeps_its_segments() {
    let vfs = Arc::new(CrashVfs::new(4));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=10u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    fail_next_sync(&vfs);
    assert!(wal.append(1, b"doomed", Durability::Immediate).is_err());
    let segments = vfs.list(dir()).unwrap();
    let e = wal.truncate_before(Lsn::new(9)).unwrap_err();
    assert!(matches!(e, Error::Poisoned { .. }), "{e}");
    assert_eq!(vfs.list(dir()).unwrap(), segments);
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(
        wal.append(1, b"x", Durability::Eventual),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn new_segments_are_preallocated_to_their_size_in_a_few_large_writes() {
    for preallocate in [true, false] {
        let vfs = Arc::new(CrashVfs::new(5));
        let opts = WalOptions {
            preallocate,
            ..WalOptions::default()
        };
        let wal = open(&vfs, &opts).unwrap();
        let calls = vfs.io_calls();
        wal.append(1, b"first", Durability::Immediate).unwrap();
        let calls = vfs.io_calls() - calls;
        let seg = dir().join("00000000000000000001.wal");
        let len = vfs.contents(&seg).unwrap().len();
        if preallocate {
            assert_eq!(len as u64, opts.segment_size);
            // 16 MiB in 1 MiB writes, a header, the record and three syncs.
            assert!(calls <= 24, "{calls} I/O calls to start a segment");
        } else {
            assert_eq!(len, 32 + 48);
        }
    }
}

#[test]
fn read_only_reads_the_log_and_changes_no_file() {
    use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, Vfs};
    use lightning_wal::{Durability, Wal, read_only};
    use std::path::Path;
    let vfs = Arc::new(CrashVfs::new(3));
    let dir = Path::new("db/wal");
    let opts = WalOptions {
        segment_size: 8192,
        ..WalOptions::default()
    };
    {
        let wal = Wal::open(vfs.clone(), dir, opts.clone()).unwrap();
        for i in 0..50u32 {
            wal.append(1, &i.to_le_bytes().repeat(20), Durability::Immediate)
                .unwrap();
        }
        wal.append(1, &[9; 3000], Durability::None).unwrap();
        drop(wal);
    }
    {
        // A last record written after the close, never synced: torn by the cut.
        let wal = Wal::open(vfs.clone(), dir, opts.clone()).unwrap();
        wal.append(1, &[7; 3000], Durability::None).unwrap();
        vfs.inject(Fault {
            op: FaultOp::Sync,
            nth: 0,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
        drop(wal);
    }
    vfs.crash(CrashMode::TornWrite { garbage: true });
    let files = |vfs: &CrashVfs| -> Vec<(std::path::PathBuf, Option<Vec<u8>>)> {
        let v: &dyn Vfs = vfs;
        v.list(dir)
            .unwrap()
            .into_iter()
            .map(|p| {
                let c = vfs.contents(&p);
                (p, c)
            })
            .collect()
    };
    let before = files(&vfs);
    let (recovery, records) =
        read_only(vfs.clone(), dir, opts.max_record_size, Lsn::new(10)).unwrap();
    let records: Vec<_> = records.collect::<Result<_, _>>().unwrap();
    assert_eq!(recovery.last_lsn, Lsn::new(51), "{recovery:?}");
    assert_eq!(records.len(), 42);
    assert_eq!(records[0].lsn, Lsn::new(10));
    assert_eq!(files(&vfs), before, "nothing written");
    assert_eq!(vfs.pending_ops(), 0);
    // A missing directory is an empty log.
    let (empty, mut none) = read_only(vfs, Path::new("nowhere"), 1 << 20, Lsn::new(1)).unwrap();
    assert_eq!(empty.last_lsn, Lsn::ZERO);
    assert!(none.next().is_none());
}
