//! Bit flips: in the last record they truncate the log, anywhere before it they are errors.

use std::sync::Arc;

use lightning_page::vfs::{CrashVfs, Vfs};
use lightning_testkit::Rng;
use lightning_wal::{Durability, Error, Lsn, WalOptions};

use crate::{all_records, dir, open, payload, small};

/// Where each record's checksummed bytes lie: (segment path, start, end) per LSN.
fn layout(vfs: &CrashVfs, lens: &[usize]) -> Vec<(std::path::PathBuf, u64, u64)> {
    let segs = vfs.list(dir()).unwrap();
    let first_of = |p: &std::path::PathBuf| -> u64 {
        p.file_stem().unwrap().to_str().unwrap().parse().unwrap()
    };
    let mut out = Vec::new();
    let mut at = 32u64;
    for (i, len) in lens.iter().enumerate() {
        let lsn = i as u64 + 1;
        let seg = segs.iter().rev().find(|p| first_of(p) <= lsn).unwrap();
        if first_of(seg) == lsn {
            at = 32;
        }
        let covered = 40 + *len as u64;
        out.push((seg.clone(), at, at + covered));
        at += covered.div_ceil(8) * 8;
    }
    out
}

#[test]
fn bit_flips_at_the_tail_truncate_and_mid_log_are_errors() {
    let mut rng = Rng::new(3);
    let (mut truncated, mut errors) = (0, 0);
    for round in 0..300u64 {
        let vfs = Arc::new(CrashVfs::new(round));
        let opts = WalOptions {
            preallocate: round % 2 == 0,
            ..small()
        };
        let wal = open(&vfs, &opts).unwrap();
        let lens: Vec<usize> = (0..12)
            .map(|_| usize::try_from(rng.below(900)).unwrap())
            .collect();
        for (i, len) in lens.iter().enumerate() {
            wal.append(1, &payload(i as u64 + 1, *len), Durability::Immediate)
                .unwrap();
        }
        drop(wal);
        let spots = layout(&vfs, &lens);
        let victim = usize::try_from(rng.below(12)).unwrap();
        let (seg, start, end) = &spots[victim];
        let offset = start + rng.below(end - start);
        let mut byte = vfs.contents(seg).unwrap()[usize::try_from(offset).unwrap()];
        byte ^= 1 << rng.below(8);
        vfs.corrupt(seg, offset, &[byte]).unwrap();

        match open(&vfs, &opts) {
            Ok(wal) => {
                assert_eq!(
                    victim,
                    11,
                    "round {round}: a mid-log flip of record {} went unnoticed",
                    victim + 1
                );
                let r = wal.recovery();
                assert_eq!(r.last_lsn, Lsn::new(11), "round {round}");
                assert!(r.torn_tail.is_some());
                assert_eq!(all_records(&wal).len(), 11);
                truncated += 1;
            }
            Err(Error::Corruption {
                file, offset: at, ..
            }) => {
                assert!(
                    victim < 11,
                    "round {round}: the last record's flip must truncate"
                );
                assert_eq!(
                    (&file, at),
                    (seg, *start),
                    "round {round}: error names segment and offset"
                );
                errors += 1;
            }
            Err(e) => panic!("round {round}: unexpected {e}"),
        }
    }
    assert!(
        truncated > 10 && errors > 200,
        "truncated {truncated}, errors {errors}"
    );
}

#[test]
fn a_damaged_segment_header_under_records_is_corruption() {
    let vfs = Arc::new(CrashVfs::new(9));
    let wal = open(&vfs, &small()).unwrap();
    wal.append(1, b"only record", Durability::Immediate)
        .unwrap();
    drop(wal);
    let seg = vfs.list(dir()).unwrap().remove(0);
    vfs.corrupt(&seg, 3, b"X").unwrap();
    let e = open(&vfs, &small()).unwrap_err();
    assert!(matches!(&e, Error::Corruption { offset: 0, .. }), "{e}");
    assert!(e.to_string().contains("00000000000000000001.wal"), "{e}");
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let vfs = Arc::new(CrashVfs::new(10));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=20u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    drop(wal);
    let segs = vfs.list(dir()).unwrap();
    assert!(segs.len() >= 4);
    vfs.remove(&segs[1]).unwrap();
    let e = open(&vfs, &small()).unwrap_err();
    assert!(
        e.is_corruption()
            && e.to_string()
                .contains("records missing before the next segment"),
        "{e}"
    );
    assert!(e.to_string().contains(&*segs[0].to_string_lossy()), "{e}");
}

#[test]
fn damage_before_a_later_segment_is_corruption_even_without_frames_to_prove_it() {
    let vfs = Arc::new(CrashVfs::new(11));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=12u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    drop(wal);
    let segs = vfs.list(dir()).unwrap();
    let (last, before) = (&segs[segs.len() - 1], &segs[segs.len() - 2]);
    // The newest segment keeps only its header (its first record torn away) ...
    vfs.open(last, lightning_page::vfs::OpenMode::ReadWrite)
        .unwrap()
        .set_len(32)
        .unwrap();
    // ... and the last record of the segment before it rots.
    let len = vfs
        .contents(before)
        .unwrap()
        .iter()
        .rposition(|b| *b != 0)
        .unwrap();
    vfs.corrupt(before, u64::try_from(len).unwrap() - 3, b"\xFF")
        .unwrap();
    let e = open(&vfs, &small()).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains(&*before.to_string_lossy()), "{e}");
}

#[test]
fn numbering_survives_an_empty_last_segment_after_truncation() {
    let vfs = Arc::new(CrashVfs::new(12));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=10u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    wal.truncate_before(Lsn::new(10)).unwrap();
    // A record that does not fit starts a new segment; it is never synced.
    wal.append(1, &payload(11, 3000), Durability::None).unwrap();
    // The shutdown's flush creates segment 11 (file sync, directory sync); the power goes
    // at the sync of the record written into it.
    vfs.inject(lightning_page::vfs::Fault {
        op: lightning_page::vfs::FaultOp::Sync,
        nth: 2,
        permanent: true,
        kind: lightning_page::vfs::FaultKind::PowerCut,
    });
    drop(wal);
    vfs.crash(lightning_page::vfs::CrashMode::DropUnsynced);
    let names = vfs.list(dir()).unwrap();
    assert!(
        names
            .iter()
            .any(|p| p.ends_with("00000000000000000011.wal")),
        "{names:?}"
    );
    for _ in 0..2 {
        let wal = open(&vfs, &small()).unwrap();
        assert_eq!(
            wal.recovery().last_lsn,
            Lsn::new(10),
            "the log must not restart at 1"
        );
    }
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(
        wal.append(1, b"next", Durability::Immediate).unwrap().lsn(),
        Lsn::new(11)
    );
}

#[test]
fn recovery_cuts_a_torn_tail_so_that_a_second_open_finds_a_clean_end() {
    for preallocate in [false, true] {
        let vfs = Arc::new(CrashVfs::new(13));
        let opts = WalOptions {
            preallocate,
            ..small()
        };
        let wal = open(&vfs, &opts).unwrap();
        for i in 1..=3u64 {
            wal.append(1, &payload(i, 200), Durability::Immediate)
                .unwrap();
        }
        drop(wal);
        let seg = dir().join("00000000000000000001.wal");
        let file_len = vfs.contents(&seg).unwrap().len() as u64;
        // Record 3 (frames of 240 bytes from offset 32) loses a payload byte.
        let third = 32 + 2 * 240;
        vfs.corrupt(&seg, third + 100, b"\xA5").unwrap();
        let wal = open(&vfs, &opts).unwrap();
        let torn = wal.recovery().torn_tail.clone().expect("a torn tail");
        assert_eq!(
            (torn.segment.as_path(), torn.offset, torn.discarded_bytes),
            (seg.as_path(), third, file_len - third),
            "preallocate {preallocate}"
        );
        assert_eq!(wal.recovery().last_lsn, Lsn::new(2));
        assert_eq!(
            vfs.contents(&seg).unwrap().len() as u64,
            third,
            "the tail is cut"
        );
        drop(wal);
        let wal = open(&vfs, &opts).unwrap();
        assert_eq!(wal.recovery().torn_tail, None);
        assert_eq!(wal.recovery().last_lsn, Lsn::new(2));
    }
}

#[test]
fn a_gap_after_a_full_segment_is_corruption_naming_the_later_segment() {
    let vfs = Arc::new(CrashVfs::new(14));
    let opts = WalOptions {
        preallocate: false,
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for i in 1..=20u64 {
        wal.append(1, &payload(i, 1500), Durability::Immediate)
            .unwrap();
    }
    drop(wal);
    let segs = vfs.list(dir()).unwrap();
    assert!(segs.len() >= 4);
    vfs.remove(&segs[1]).unwrap();
    // Segment 0 ends exactly where its last frame does: nothing in it says records are
    // missing; the next segment's name does.
    let e = open(&vfs, &opts).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { file, offset: 0, what: "segment does not continue the log", .. } if file == &segs[2]),
        "{e}"
    );
}

/// Five records written and synced as one batch (each frame says the log was synced
/// through 0), then, with `vouch`, a sixth in a batch of its own (synced through 5). Record
/// 3 then rots.
fn damaged_batch(vouch: bool) -> (Arc<CrashVfs>, lightning_wal::Result<lightning_wal::Wal>) {
    let vfs = Arc::new(CrashVfs::new(15));
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=5u64 {
        wal.append(1, &payload(i, 100), Durability::None).unwrap();
    }
    wal.sync().unwrap();
    if vouch {
        wal.append(1, &payload(6, 100), Durability::Immediate)
            .unwrap();
    }
    drop(wal);
    let seg = dir().join("00000000000000000001.wal");
    vfs.corrupt(&seg, 32 + 2 * 144 + 60, b"\x5A").unwrap();
    let reopened = open(&vfs, &small());
    (vfs, reopened)
}

#[test]
fn damage_to_a_synced_batch_is_corruption_once_a_later_batch_vouches_for_it() {
    let (_vfs, opened) = damaged_batch(true);
    let e = opened.unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { offset: 320, .. })
            && e.to_string().contains("00000000000000000001.wal")
            && e.to_string().contains("record 6")
            && e.to_string().contains("synced through 5"),
        "{e}"
    );
}

#[test]
fn damage_to_the_last_synced_batch_reads_as_a_torn_tail() {
    // ADR 005, consequences: records 4 and 5 say nothing about record 3's durability.
    let (_vfs, opened) = damaged_batch(false);
    let wal = opened.unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::new(2));
    let torn = wal.recovery().torn_tail.clone().unwrap();
    assert_eq!(torn.offset, 320);
    assert_eq!(all_records(&wal).len(), 2);
}
