//! A WAL segment of hostile bytes: recovery must report corruption or a torn tail, never panic.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lightning_page::vfs::{MemVfs, OpenMode, Vfs};
use lightning_wal::{Lsn, Wal, WalOptions};

fuzz_target!(|data: &[u8]| {
    let vfs = Arc::new(MemVfs::new());
    let dir = std::path::Path::new("wal");
    let _ = vfs.create_dir_all(dir);
    let Ok(f) = vfs.open(&dir.join("00000000000000000001.wal"), OpenMode::CreateNew) else {
        return;
    };
    if f.write_at(data, 0).is_err() {
        return;
    }
    let opts = WalOptions {
        flush_interval: std::time::Duration::ZERO,
        ..WalOptions::default()
    };
    if let Ok(wal) = Wal::open(vfs, dir, opts) {
        if let Ok(records) = wal.read_from(Lsn::new(1)) {
            for r in records.take(10_000) {
                let _ = r;
            }
        }
    }
});
