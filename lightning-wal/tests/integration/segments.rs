//! Segment files: which records each one holds, how large they get, and which file names
//! the log takes for its own.

use std::sync::Arc;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, MemVfs, OpenMode, Vfs};
use lightning_wal::{Durability, Error, Lsn, Wal, WalOptions};
use proptest::prelude::*;

use crate::{all_records, dir, open, payload, small};

/// Bytes a record with `len` payload bytes takes in a segment.
fn frame_len(len: usize) -> u64 {
    (40 + len as u64).div_ceil(8) * 8
}

/// The first LSN of each segment the log should create for these payload lengths: a
/// record starts the next segment when it does not fit the rest of the current one,
/// unless the current one holds no record yet.
fn model_starts(lens: &[usize], segment_size: u64) -> Vec<u64> {
    let mut starts = Vec::new();
    let mut used = 0;
    for (i, len) in lens.iter().enumerate() {
        let f = frame_len(*len);
        if starts.is_empty() || (used + f > segment_size && used > 32) {
            starts.push(i as u64 + 1);
            used = 32;
        }
        used += f;
    }
    starts
}

fn starts_on_disk(vfs: &MemVfs) -> Vec<u64> {
    vfs.list(dir())
        .unwrap()
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect()
}

fn check_segments(lens: &[usize], preallocate: bool, durability: Durability) {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        preallocate,
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for (i, len) in lens.iter().enumerate() {
        wal.append(1, &payload(i as u64 + 1, *len), durability)
            .unwrap();
    }
    wal.sync().unwrap();
    let starts = model_starts(lens, opts.segment_size);
    assert_eq!(starts_on_disk(&vfs), starts, "lengths {lens:?}");
    // Each segment is exactly its header and its frames, or preallocated to the segment
    // size when that is larger.
    for (k, first) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(lens.len() as u64 + 1, |n| *n);
        let used: u64 = 32
            + (*first..end)
                .map(|l| frame_len(lens[usize::try_from(l).unwrap() - 1]))
                .sum::<u64>();
        let path = dir().join(format!("{first:020}.wal"));
        let len = vfs.open(&path, OpenMode::ReadOnly).unwrap().len().unwrap();
        let want = if preallocate {
            used.max(opts.segment_size)
        } else {
            used
        };
        assert_eq!(len, want, "segment {first}, lengths {lens:?}");
    }
    assert_eq!(all_records(&wal).len(), lens.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn records_fill_segments_in_order_and_never_overfill_them(
        lens in proptest::collection::vec(prop_oneof![0usize..600, 0usize..5000], 1..30),
        preallocate in any::<bool>(),
        batched in any::<bool>(),
    ) {
        let durability = if batched { Durability::None } else { Durability::Immediate };
        check_segments(&lens, preallocate, durability);
    }
}

#[test]
fn a_record_that_exactly_fills_a_segment_stays_in_it() {
    // 32 + 40 + 4024 = 4096: the second record fills segment 1 to the byte; the third
    // starts segment 3.
    check_segments(&[0, 3984, 0, 4016, 8, 100], false, Durability::Immediate);
    check_segments(&[0, 3984, 0, 4016, 8, 100], true, Durability::None);
    // One byte more does not fit behind a record, but does fit an empty segment.
    check_segments(&[4025, 4025, 0, 9000, 9000], false, Durability::Immediate);
}

#[test]
fn a_reused_empty_segment_takes_a_record_larger_than_a_segment() {
    let vfs = Arc::new(CrashVfs::new(12));
    let wal = open(&vfs, &small()).unwrap();
    wal.append(1, &payload(1, 3000), Durability::Immediate)
        .unwrap();
    wal.append(1, &payload(2, 3000), Durability::None).unwrap();
    // The shutdown's flush creates segment 2 (file sync, directory sync); the power goes
    // at the sync of the record written into it.
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 2,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    drop(wal);
    vfs.crash(CrashMode::DropUnsynced);
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::new(1));
    assert_eq!(wal.recovery().segments, 2, "segment 2 is kept, empty");
    let big = payload(2, 9000);
    wal.append(1, &big, Durability::Immediate).unwrap();
    drop(wal);
    let names = vfs.list(dir()).unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    let wal = open(&vfs, &small()).unwrap();
    let records = all_records(&wal);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].payload, big);
}

#[test]
fn files_that_are_not_segment_names_are_ignored() {
    let vfs = Arc::new(MemVfs::new());
    let wal = open(&vfs, &small()).unwrap();
    wal.append(1, b"one", Durability::Immediate).unwrap();
    wal.close().unwrap();
    // Each would parse as an LSN if names were not held to exactly 20 digits + ".wal".
    for name in [
        "7.wal",
        "0000000000000000000007.wal",
        "+0000000000000000007.wal",
        "0000000000000000000x.wal",
        "00000000000000000007.wal.tmp",
        "00000000000000000007.WAL",
    ] {
        let f = vfs.open(&dir().join(name), OpenMode::CreateNew).unwrap();
        f.write_at(b"junk", 0).unwrap();
    }
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.recovery().segments, 1);
    assert_eq!(wal.recovery().last_lsn, Lsn::new(1));
    assert_eq!(
        wal.append(1, b"two", Durability::Immediate).unwrap().lsn(),
        Lsn::new(2)
    );
}

#[test]
fn a_segment_named_for_the_last_possible_lsn_is_corruption() {
    let vfs = Arc::new(MemVfs::new());
    vfs.create_dir_all(dir()).unwrap();
    let name = format!("{:020}.wal", u64::MAX);
    vfs.open(&dir().join(&name), OpenMode::CreateNew).unwrap();
    let e = Wal::open(vfs.clone(), dir(), small()).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { offset: 0, .. }) && e.to_string().contains(&name),
        "{e}"
    );
}
