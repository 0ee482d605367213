//! Integration suite of lightning-wal. One binary (`integration`) for nextest to select.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod basics;
mod corruption;
mod faults;
mod lifecycle;
mod segments;
mod truncation;

use std::path::Path;
use std::sync::Arc;

use lightning_page::vfs::Vfs;
use lightning_wal::{Lsn, Record, Wal, WalOptions};

pub(crate) const DIR: &str = "db/wal";

pub(crate) fn dir() -> &'static Path {
    Path::new(DIR)
}

/// Small segments so workloads rotate often; no background flusher (deterministic).
pub(crate) fn small() -> WalOptions {
    WalOptions {
        segment_size: 4096,
        flush_interval: std::time::Duration::ZERO,
        ..WalOptions::default()
    }
}

pub(crate) fn open(vfs: &Arc<impl Vfs + 'static>, opts: &WalOptions) -> lightning_wal::Result<Wal> {
    Wal::open(vfs.clone(), dir(), opts.clone())
}

pub(crate) fn all_records(wal: &Wal) -> Vec<Record> {
    wal.read_from(Lsn::new(1))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The payload of record `i`: its number, then bytes derived from it, exactly `len` long.
pub(crate) fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.extend(lightning_testkit::Rng::new(i).bytes(len.saturating_sub(8)));
    p.truncate(len);
    p
}
