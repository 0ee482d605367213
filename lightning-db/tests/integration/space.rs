//! Space: rewriting and deleting the whole data set, round after round, does not grow the
//! file — versions are collected and emptied pages reused, with no offline compaction —
//! and `compact()` packs it to within 1.5x of the bytes stored. (While a whole data set is
//! rewritten the file holds the retained images as well: ADR 012 gives the arithmetic.)

use std::path::Path;
use std::sync::Arc;

use lightning_db::page::vfs::MemVfs;
use lightning_db::{Database, Options, WriteBatch};

const KEYS: u32 = 10_000;
const VALUE: usize = 150;

fn key(i: u32) -> Vec<u8> {
    format!("user:{:020}", u64::from(i) * 2_654_435_761 % 1_000_000_007).into_bytes()
}

/// Writes (or, with `None`, deletes) every key, 500 per commit, with the background
/// work's GC and checkpoints every 4,000 writes (done here, so that sizes do not depend on
/// timing).
fn write_all(db: &Database, value: Option<u8>) {
    let ks = db.keyspace("data").unwrap();
    for (n, chunk) in (0..KEYS).collect::<Vec<_>>().chunks(500).enumerate() {
        let mut batch = WriteBatch::new();
        for i in chunk {
            match value {
                Some(v) => batch.put(&ks, &key(*i), &[v; VALUE]),
                None => batch.delete(&ks, &key(*i)),
            };
        }
        db.write(&batch).unwrap();
        if n % 8 == 7 {
            db.gc().unwrap();
            db.checkpoint().unwrap();
        }
    }
}

fn load(db: &Database, round: u8) {
    write_all(db, Some(round));
}

fn delete_all(db: &Database) {
    write_all(db, None);
}

/// What the background work does after a burst of writes: GC, then checkpoints (each
/// moves up to a sixteenth of the file's pages off its tail).
fn settle(db: &Database) {
    db.gc().unwrap();
    for _ in 0..4 {
        db.checkpoint().unwrap();
    }
}

#[test]
fn twenty_rounds_of_rewriting_and_deleting_keep_the_file_within_one_and_a_half_times_the_data() {
    let vfs = Arc::new(MemVfs::new());
    let opts = Options {
        page_size: 4096,
        cache_bytes: 64 << 20,
        checkpoint_interval_ms: 0,
        wal_segment_bytes: 1 << 20,
        ..Options::default()
    };
    let db = Database::open_with_vfs(vfs, Path::new("/db"), opts).unwrap();
    // Keys and values: what a user stored.
    let live = u64::from(KEYS) * (key(0).len() + VALUE) as u64;
    load(&db, 0);
    settle(&db);
    let mut rounds = Vec::new();
    for round in 1..=20u8 {
        load(&db, round); // every value rewritten
        settle(&db);
        let rewritten = db.stats().file.data_bytes;
        delete_all(&db);
        settle(&db);
        let emptied = db.stats().file.data_bytes;
        load(&db, round); // and everything again
        settle(&db);
        let reloaded = db.stats().file.data_bytes;
        let peak = db.stats().file.peak_data_bytes;
        println!(
            "round {round}: {rewritten} bytes after the rewrite, {emptied} emptied, \
             {reloaded} reloaded, peak {peak}"
        );
        rounds.push((rewritten, reloaded, peak));
    }
    // No growth, without any compaction: every round ends where the first did, within
    // half again (the peak is the high-water mark since the open, so it covers every
    // round).
    let (first_rewritten, first_reloaded, _) = rounds[0];
    let settled_bound = first_rewritten.max(first_reloaded) * 3 / 2;
    for (i, (rewritten, reloaded, _)) in rounds.iter().enumerate() {
        assert!(
            *rewritten <= settled_bound && *reloaded <= settled_bound,
            "round {}: the file grew to {rewritten} / {reloaded} bytes (round 1: {first_rewritten} / {first_reloaded})",
            i + 1
        );
    }
    // An explicit compaction packs the trees and shrinks the file to within 1.5x of what
    // the user stored.
    db.compact().unwrap();
    let compacted = db.stats().file.data_bytes;
    let peak = rounds.last().map_or(0, |r| r.2);
    let times = |b: u64| format!("{}.{:02}x", b / live, b % live * 100 / live);
    println!(
        "live {live} bytes; settled {}, peak {}, after compact() {compacted} bytes ({})",
        times(first_reloaded),
        times(peak),
        times(compacted)
    );
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
    assert!(
        compacted * 2 <= live * 3,
        "after compact() the file holds {compacted} bytes for {live} bytes of live data"
    );
    let ks = db.keyspace("data").unwrap();
    assert_eq!(
        db.begin_read()
            .unwrap()
            .range::<&[u8]>(&ks, ..)
            .unwrap()
            .count(),
        KEYS as usize
    );
}
