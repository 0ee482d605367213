use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lightning_page::vfs::{MemVfs, OpenMode, Vfs, VfsFile};
use lightning_wal::{Durability, Error, Lsn, Wal, WalOptions, WalStats};

use crate::{all_records, dir, open, payload, small};

#[test]
fn records_round_trip_across_segments_and_reopen() {
    let vfs = Arc::new(MemVfs::new());
    let wal = open(&vfs, &small()).unwrap();
    let sizes = [0usize, 1, 7, 8, 100, 1000, 3000, 4000, 9000, 50];
    for (i, len) in sizes.iter().enumerate() {
        let a = wal
            .append(
                u8::try_from(i).unwrap(),
                &payload(i as u64 + 1, *len),
                Durability::Immediate,
            )
            .unwrap();
        assert_eq!(a.lsn(), Lsn::new(i as u64 + 1));
    }
    assert_eq!(wal.durable_lsn(), Lsn::new(10));
    wal.close().unwrap();
    let segments = vfs.list(dir()).unwrap();
    assert!(
        segments.len() >= 5,
        "4 KiB segments must rotate: {segments:?}"
    );

    let wal = open(&vfs, &small()).unwrap();
    let r = wal.recovery();
    assert_eq!(
        (r.first_lsn, r.last_lsn, r.torn_tail.is_none()),
        (Lsn::new(1), Lsn::new(10), true)
    );
    let records = all_records(&wal);
    assert_eq!(records.len(), 10);
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(rec.lsn, Lsn::new(i as u64 + 1));
        assert_eq!(rec.record_type, u8::try_from(i).unwrap());
        assert_eq!(rec.payload, payload(i as u64 + 1, sizes[i]));
    }
    // Reading from the middle starts at the right record, and appends continue numbering.
    let tail: Vec<_> = wal
        .read_from(Lsn::new(7))
        .unwrap()
        .map(|r| r.unwrap().lsn.get())
        .collect();
    assert_eq!(tail, vec![7, 8, 9, 10]);
    assert_eq!(
        wal.append(0, b"next", Durability::Immediate).unwrap().lsn(),
        Lsn::new(11)
    );
}

#[test]
fn eventual_and_none_become_durable_by_flusher_or_sync() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        flush_interval: Duration::from_millis(5),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    let a = wal.append(1, b"eventual", Durability::Eventual).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.durable_lsn() < a.lsn() {
        assert!(
            Instant::now() < deadline,
            "the flusher never synced an Eventual record"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let b = wal.append(1, b"none", Durability::None).unwrap();
    b.wait().unwrap();
    assert!(wal.durable_lsn() >= b.lsn());
    let stats = wal.stats();
    assert_eq!((stats.appends, stats.bytes), (2, 12));
    assert!(
        stats.syncs >= 2 && stats.records_per_sync.iter().sum::<u64>() >= 2,
        "{stats:?}"
    );
}

#[test]
fn buffered_records_are_written_when_the_buffer_fills() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        buffer_limit: 1000,
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for i in 0..50u64 {
        wal.append(1, &payload(i, 100), Durability::None).unwrap();
    }
    // Not all durable (only segment rotations synced), but most of it was written out by
    // appenders as the buffer filled.
    assert!(wal.durable_lsn() < Lsn::new(50));
    assert!(all_records(&wal).len() >= 40);
    wal.sync().unwrap();
    assert_eq!(wal.durable_lsn(), Lsn::new(50));
}

/// With a flusher, an appender that fills the buffer leaves the write to the flusher (it
/// is a committer holding the commit ordering): the flusher writes the records at once,
/// long before its next sync is due, and does not sync them. Past four times the limit
/// (the flusher behind) appenders write themselves.
#[test]
fn the_flusher_writes_a_full_buffer_when_an_appender_asks() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        buffer_limit: 1000,
        segment_size: 1 << 20,
        // No sync is due during the test: a record written meanwhile was written by the
        // flusher on an appender's request.
        flush_interval: Duration::from_secs(3600),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    // Each record fills the buffer on its own, so every record is asked for, whenever the
    // flusher takes the queue. Twice: the second time the flusher is surely asleep (the
    // first request may have been seen by a flusher not yet waiting), so only the
    // appender's wake-up can get the last records written (the first ones may be written by
    // an appender past four times the limit).
    for round in 1..=2usize {
        for i in 0..10u64 {
            wal.append(1, &payload(i, 1000), Durability::None).unwrap();
        }
        // Not a timing assertion: without the request the records would wait an hour, and
        // a broken hand-off fails here after half a minute.
        let want = 10 * round;
        let deadline = Instant::now() + Duration::from_secs(30);
        while all_records(&wal).len() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            all_records(&wal).len(),
            want,
            "the flusher wrote the full buffer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wal.stats().syncs, 0, "written, not synced");
    assert_eq!(wal.durable_lsn(), Lsn::ZERO);
    drop(wal);
}

#[test]
fn concurrent_immediate_appenders_all_get_distinct_durable_lsns() {
    let stats = concurrent_immediate_appenders(WalOptions::default().wait_spin);
    // Whether waiters polled or slept depends on how the threads interleave; that every
    // wait did one or the other does not.
    assert_eq!(
        stats.waits,
        stats.waits_polled + stats.waits_slept,
        "{stats:?}"
    );
}

#[test]
fn concurrent_immediate_appenders_that_always_sleep() {
    let stats = concurrent_immediate_appenders(Duration::ZERO);
    assert_eq!(stats.waits_polled, 0, "{stats:?}");
    assert_eq!(stats.waits, stats.waits_slept, "{stats:?}");
}

/// A waiter whose batch another thread is syncing polls when the expected wait fits in
/// `wait_spin`, and never polls with `wait_spin` zero. Driven so that the waiter certainly
/// meets a leader stuck in its fsync: the fsync waits for a gate the test opens only after
/// the waiter has been counted.
#[test]
fn a_waiter_polls_for_a_leaders_fsync_unless_polling_is_off() {
    for (wait_spin, polls) in [(Duration::from_secs(3600), true), (Duration::ZERO, false)] {
        let vfs = Arc::new(GateVfs::default());
        let opts = WalOptions {
            segment_size: 1 << 16,
            wait_spin,
            ..small()
        };
        let wal = open(&vfs, &opts).unwrap();
        // One fsync that takes a while gives the log a nonzero fsync estimate.
        *vfs.gate.lock().unwrap() = Gate::Slow;
        wal.append(1, b"warm-up", Durability::Immediate).unwrap();
        assert_eq!(wal.stats().waits, 0);
        *vfs.gate.lock().unwrap() = Gate::Closed;
        std::thread::scope(|s| {
            let leader = s.spawn(|| wal.append(1, b"leader", Durability::Immediate).unwrap());
            vfs.await_gate(|g| *g == Gate::Entered);
            let waiter = s.spawn(|| wal.append(1, b"waiter", Durability::Immediate).unwrap());
            while wal.stats().waits == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The first wait polled (a poll that runs out of budget then sleeps) or slept.
            let stats = wal.stats();
            assert_eq!(stats.waits_polled > 0, polls, "{stats:?}");
            if !polls {
                assert!(stats.waits_slept > 0, "{stats:?}");
            }
            *vfs.gate.lock().unwrap() = Gate::Open;
            vfs.cond.notify_all();
            assert_eq!(leader.join().unwrap().lsn(), Lsn::new(2));
            assert_eq!(waiter.join().unwrap().lsn(), Lsn::new(3));
        });
        let stats = wal.stats();
        assert_eq!(
            stats.waits,
            stats.waits_polled + stats.waits_slept,
            "{stats:?}"
        );
        assert_eq!(stats.waits_polled > 0, polls, "{stats:?}");
        assert_eq!(wal.durable_lsn(), Lsn::new(3));
    }
}

/// 8 threads x 200 `Immediate` appends, fsyncs taking 100 µs: every LSN once, each durable
/// when its append returns, every record readable.
fn concurrent_immediate_appenders(wait_spin: Duration) -> WalStats {
    let vfs = Arc::new(SlowSyncVfs(MemVfs::new()));
    let wal = Arc::new(
        open(
            &vfs,
            &WalOptions {
                segment_size: 1 << 16,
                wait_spin,
                ..small()
            },
        )
        .unwrap(),
    );
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                (0..200u64)
                    .map(|i| {
                        let lsn = wal
                            .append(1, &payload(t * 1000 + i, 64), Durability::Immediate)
                            .unwrap()
                            .lsn();
                        assert!(wal.durable_lsn() >= lsn);
                        lsn
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut lsns: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .map(Lsn::get)
        .collect();
    lsns.sort_unstable();
    assert_eq!(lsns, (1..=1600).collect::<Vec<_>>());
    let records = all_records(&wal);
    assert_eq!(records.len(), 1600);
    let stats = wal.stats();
    assert_eq!(stats.records_per_sync.iter().sum::<u64>(), stats.syncs);
    stats
}

#[test]
fn bad_arguments_are_errors() {
    let vfs = Arc::new(MemVfs::new());
    let tiny = WalOptions {
        segment_size: 100,
        ..small()
    };
    assert!(matches!(open(&vfs, &tiny), Err(Error::InvalidOptions(_))));
    let wal = open(
        &vfs,
        &WalOptions {
            max_record_size: 10,
            ..small()
        },
    )
    .unwrap();
    assert!(matches!(
        wal.append(1, &[0u8; 11], Durability::Immediate),
        Err(Error::RecordTooLarge { len: 11, max: 10 })
    ));
    assert_eq!(
        wal.append(1, &[0u8; 10], Durability::Immediate)
            .unwrap()
            .lsn(),
        Lsn::new(1)
    );
}

#[test]
fn truncation_removes_covered_segments_and_numbering_continues() {
    let vfs = Arc::new(MemVfs::new());
    let wal = open(&vfs, &small()).unwrap();
    for i in 1..=40u64 {
        wal.append(1, &payload(i, 500), Durability::Immediate)
            .unwrap();
    }
    let before = vfs.list(dir()).unwrap().len();
    let gone = wal.truncate_before(Lsn::new(30)).unwrap();
    assert!(gone > 0 && vfs.list(dir()).unwrap().len() == before - gone);
    let first = all_records(&wal)[0].lsn;
    assert!(
        first <= Lsn::new(30) && first > Lsn::new(1),
        "first remaining record {first}"
    );
    // Truncating everything keeps the active segment.
    wal.truncate_before(Lsn::new(1000)).unwrap();
    assert!(!vfs.list(dir()).unwrap().is_empty());
    wal.close().unwrap();
    let wal = open(&vfs, &small()).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::new(40));
    assert!(wal.recovery().first_lsn > Lsn::new(30));
    assert_eq!(
        wal.append(1, b"x", Durability::Immediate).unwrap().lsn(),
        Lsn::new(41)
    );
}

#[test]
fn archived_segments_are_indexed_by_lsn_and_time() {
    let vfs = Arc::new(MemVfs::new());
    let opts = WalOptions {
        archive_dir: Some("db/wal-archive".into()),
        ..small()
    };
    let wal = open(&vfs, &opts).unwrap();
    for i in 1..=30u64 {
        wal.append(1, &payload(i, 700), Durability::Immediate)
            .unwrap();
    }
    let gone = wal.truncate_before(Lsn::new(25)).unwrap();
    let index = lightning_wal::load_index(&*vfs, "db/wal-archive".as_ref()).unwrap();
    assert_eq!(index.len(), gone);
    let mut next = Lsn::new(1);
    for seg in &index {
        assert_eq!(seg.first, next, "archived ranges are contiguous");
        assert!(seg.last >= seg.first && seg.max_time_us >= seg.min_time_us);
        assert!(vfs.exists(&seg.path).unwrap());
        next = seg.last.next();
    }
    // The archive plus the live log still hold every record.
    let live_first = all_records(&wal)[0].lsn;
    assert_eq!(live_first, next);
    let last_time = index.last().unwrap().max_time_us;
    assert_eq!(
        lightning_wal::last_lsn_at(&index, last_time),
        Some(index.last().unwrap().last)
    );
}

#[test]
fn opening_a_directory_of_foreign_files_ignores_them() {
    let vfs = Arc::new(MemVfs::new());
    vfs.create_dir_all(dir()).unwrap();
    let f = vfs
        .open(&dir().join("README.txt"), OpenMode::CreateNew)
        .unwrap();
    f.write_at(b"not a segment", 0).unwrap();
    let wal = Wal::open(vfs.clone(), dir(), small()).unwrap();
    assert_eq!(wal.recovery().last_lsn, Lsn::ZERO);
}

/// What a [`GateVfs`] file sync does.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Returns at once.
    #[default]
    Open,
    /// Takes a millisecond.
    Slow,
    /// Blocks until the gate is `Open` again (and says so by turning it `Entered`).
    Closed,
    /// A sync is blocked at the closed gate.
    Entered,
}

/// A `MemVfs` whose file syncs a test can hold up.
#[derive(Debug, Default)]
struct GateVfs {
    mem: MemVfs,
    gate: Arc<Mutex<Gate>>,
    cond: Arc<Condvar>,
}

impl GateVfs {
    fn await_gate(&self, done: impl Fn(&Gate) -> bool) {
        let mut g = self.gate.lock().unwrap();
        while !done(&g) {
            g = self.cond.wait(g).unwrap();
        }
    }
}

#[derive(Debug)]
struct GateFile {
    file: Box<dyn VfsFile>,
    gate: Arc<Mutex<Gate>>,
    cond: Arc<Condvar>,
}

impl Vfs for GateVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(GateFile {
            file: self.mem.open(path, mode)?,
            gate: Arc::clone(&self.gate),
            cond: Arc::clone(&self.cond),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.mem.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.mem.remove(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.mem.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.mem.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.mem.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.mem.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<lightning_page::vfs::VfsLock> {
        self.mem.lock(path)
    }
}

impl VfsFile for GateFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        let mut g = self.gate.lock().unwrap();
        match *g {
            Gate::Open => {}
            Gate::Slow => std::thread::sleep(Duration::from_millis(1)),
            Gate::Closed | Gate::Entered => {
                *g = Gate::Entered;
                self.cond.notify_all();
                while *g != Gate::Open {
                    g = self.cond.wait(g).unwrap();
                }
            }
        }
        drop(g);
        self.file.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
}

/// A `MemVfs` whose file syncs take 100 µs, like a fast disk's: appenders overlap, and
/// waiters have an fsync to wait for.
#[derive(Debug)]
struct SlowSyncVfs(MemVfs);

#[derive(Debug)]
struct SlowSyncFile(Box<dyn VfsFile>);

impl Vfs for SlowSyncVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(SlowSyncFile(self.0.open(path, mode)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.0.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<lightning_page::vfs::VfsLock> {
        self.0.lock(path)
    }
}

impl VfsFile for SlowSyncFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        std::thread::sleep(Duration::from_micros(100));
        self.0.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
}
