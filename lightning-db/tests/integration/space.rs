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

/// Loads `KEYS` keys, then deletes every other one, scattered over the key space (the keys
/// are scrambled): leaves end up about a third full, above the merge bound. Returns the
/// bytes of keys and values left.
fn load_then_delete_half(db: &Database) -> u64 {
    let ks = db.keyspace("data").unwrap();
    load(db, 1);
    settle(db);
    let mut batch = WriteBatch::new();
    for i in (0..KEYS).filter(|i| i % 2 != 0) {
        batch.delete(&ks, &key(i));
    }
    db.write(&batch).unwrap();
    u64::from(KEYS / 2) * (key(0).len() + VALUE) as u64
}

fn space_opts(checkpoint_interval_ms: u64) -> Options {
    Options {
        page_size: 4096,
        cache_bytes: 64 << 20,
        checkpoint_interval_ms,
        wal_segment_bytes: 1 << 20,
        ..Options::default()
    }
}

/// What is left after half the data is deleted at random settles within 1.5x of its
/// bytes, with no offline step: GC, then checkpoints, which repack the loose leaves and
/// move the tail of the file down (the background does the same with nothing written,
/// one checkpoint per interval; done here back to back so that sizes do not depend on
/// timing).
#[test]
fn deleting_half_the_data_at_random_settles_within_one_and_a_half_times_what_is_left() {
    let vfs = Arc::new(MemVfs::new());
    let db =
        Database::open_with_vfs(Arc::clone(&vfs) as _, Path::new("/db"), space_opts(0)).unwrap();
    let live = load_then_delete_half(&db);
    db.gc().unwrap();
    let before = db.stats().file.data_bytes;
    let (mut smallest, mut still, mut checkpoints) = (before, 0, 0);
    while still < 8 && checkpoints < 64 {
        db.checkpoint().unwrap();
        checkpoints += 1;
        let now = db.stats().file.data_bytes;
        if now < smallest {
            (smallest, still) = (now, 0);
        } else {
            still += 1;
        }
    }
    println!(
        "live {live} bytes: {before} bytes after the deletes, {smallest} after {checkpoints} checkpoints"
    );
    assert!(
        smallest * 2 <= live * 3,
        "settled at {smallest} bytes for {live} bytes of live data ({before} before)"
    );
    assert!(db.check().unwrap().is_empty(), "{:?}", db.check());
    let ks = db.keyspace("data").unwrap();
    let read = db.begin_read().unwrap();
    let left: Vec<Vec<u8>> = read
        .range::<&[u8]>(&ks, ..)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    let mut want: Vec<Vec<u8>> = (0..KEYS).filter(|i| i % 2 == 0).map(key).collect();
    want.sort();
    assert_eq!(left, want);
    drop(read);
    drop(db);
    let db = Database::open_with_vfs(vfs, Path::new("/db"), space_opts(0)).unwrap();
    let ks = db.keyspace("data").unwrap();
    assert_eq!(db.get(&ks, &key(0)).unwrap(), Some(vec![1; VALUE]));
    assert!(db.check().unwrap().is_empty());
}

/// With nothing written, the background still takes checkpoints while they give space
/// back: the file shrinks on its own after a mass delete, from about 8x what is left to
/// within 1.75x (the test above gets within 1.5x with the same steps back to back; here
/// they interleave with GC as the timing falls). Seen failing without repacking (3.6x) and
/// without the checkpoints taken with nothing written (11.2x: none was taken).
#[test]
fn an_idle_database_gives_the_space_of_a_mass_delete_back_by_itself() {
    let db =
        Database::open_with_vfs(Arc::new(MemVfs::new()), Path::new("/db"), space_opts(20)).unwrap();
    let live = load_then_delete_half(&db);
    let before = db.stats().file.data_bytes;
    let checkpoints = db.stats().checkpoint.count;
    // Waits for the background, however long it takes here (each pass is milliseconds;
    // the bound only keeps a broken build from hanging).
    let mut now = before;
    for _ in 0..1_500 {
        now = db.stats().file.data_bytes;
        if now * 4 <= live * 7 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        now * 4 <= live * 7,
        "after 30 s idle the file holds {now} bytes for {live} bytes of live data ({before} after the deletes; {} checkpoints since)",
        db.stats().checkpoint.count - checkpoints
    );
}
