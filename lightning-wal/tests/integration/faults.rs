//! Failing the Nth write, sync or `set_len` along an append / rotate / truncate / reopen
//! workload: the log works or refuses with an error, and recovery yields a valid prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_wal::{Durability, Error, Lsn, WalOptions};

use crate::{all_records, open, payload, small};

fn options() -> WalOptions {
    WalOptions {
        archive_dir: Some("db/wal-archive".into()),
        ..small()
    }
}

/// The workload; returns the LSNs acknowledged durable with their payloads, stopping at the
/// first error (after checking the log then refuses further appends).
fn workload(vfs: &Arc<CrashVfs>) -> BTreeMap<Lsn, Vec<u8>> {
    let mut acked = BTreeMap::new();
    let Ok(wal) = open(vfs, &options()) else {
        return acked;
    };
    for i in 1..=24u64 {
        let p = payload(i, usize::try_from(i * 97 % 1300).unwrap());
        let durability = if i % 3 == 0 {
            Durability::Eventual
        } else {
            Durability::Immediate
        };
        match wal.append(1, &p, durability) {
            Ok(a) if durability == Durability::Immediate => {
                acked.insert(a.lsn(), p);
            }
            Ok(_) => {}
            Err(_) => {
                let again = wal.append(1, b"after failure", Durability::Immediate);
                assert!(
                    matches!(again, Err(Error::Poisoned { .. })),
                    "a failed log must refuse: {again:?}"
                );
                return acked;
            }
        }
        // A failed truncation or archiving leaves the log itself intact: appends go on (or
        // fail on their own if the device is still failing).
        if i % 8 == 0 {
            let _ignored = wal.truncate_before(Lsn::new(i - 4));
        }
    }
    drop(wal);
    // Reopen (recovery truncates nothing here, but runs its set_len/remove paths when a
    // fault left a torn tail), and append once more.
    if let Ok(wal) = open(vfs, &options())
        && let Ok(a) = wal.append(2, b"after reopen", Durability::Immediate)
    {
        acked.insert(a.lsn(), b"after reopen".to_vec());
    }
    acked
}

fn check_recovery(vfs: &Arc<CrashVfs>, acked: &BTreeMap<Lsn, Vec<u8>>, what: &str) {
    let wal = open(vfs, &options()).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let records = all_records(&wal);
    let first = wal.recovery().first_lsn;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.lsn,
            Lsn::new(first.get() + i as u64),
            "{what}: gap in the recovered log"
        );
    }
    for (lsn, p) in acked.range(first..) {
        let r = records
            .iter()
            .find(|r| r.lsn == *lsn)
            .unwrap_or_else(|| panic!("{what}: acknowledged {lsn} lost"));
        assert_eq!(&r.payload, p, "{what}: record {lsn} differs");
    }
}

#[test]
fn every_failing_io_call_along_the_workload_leaves_a_recoverable_log() {
    let clean = Arc::new(CrashVfs::new(0));
    let before = clean.io_calls();
    let acked = workload(&clean);
    let calls = clean.io_calls() - before;
    assert!(
        acked.len() >= 17,
        "the clean run acknowledges every Immediate append"
    );
    check_recovery(&clean, &acked, "clean run");

    let mut scenarios = 0;
    for op in [FaultOp::Write, FaultOp::Sync, FaultOp::SetLen] {
        for nth in 0..calls {
            for permanent in [false, true] {
                let vfs = Arc::new(CrashVfs::new(nth));
                vfs.inject(Fault {
                    op,
                    nth,
                    permanent,
                    kind: FaultKind::Io,
                });
                let acked = workload(&vfs);
                vfs.crash(CrashMode::from_index(nth));
                check_recovery(
                    &vfs,
                    &acked,
                    &format!("{op:?} #{nth} permanent={permanent}"),
                );
                scenarios += 1;
            }
        }
    }
    assert!(scenarios > 300, "{scenarios} fault scenarios");
}

#[test]
fn a_failed_fsync_poisons_the_log_and_loses_only_unacknowledged_records() {
    let vfs = Arc::new(CrashVfs::new(1));
    let wal = open(&vfs, &small()).unwrap();
    let kept = wal
        .append(1, b"acked", Durability::Immediate)
        .unwrap()
        .lsn();
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: false,
        kind: FaultKind::Io,
    });
    let e = wal.append(1, b"doomed", Durability::Immediate).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    // The device would now report success; the log must not believe it.
    for _ in 0..2 {
        assert!(matches!(
            wal.append(1, b"later", Durability::Immediate),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    }
    drop(wal);
    vfs.crash(CrashMode::LoseDirOps);
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(
        wal.recovery().last_lsn,
        kept,
        "the failed fsync's record never became durable"
    );
}
