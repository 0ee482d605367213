//! The writer: opening, segments, truncation, the background flusher; appends and group
//! commit are in [`commit`].

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lightning_page::vfs::{OpenMode, Vfs, VfsFile};

use crate::archive::{ArchivedSegment, archive_segment};
use crate::frame::{
    FRAME_HEADER, FrameMeta, Lsn, SEGMENT_HEADER, encode_frame, encode_segment_header,
    frame_header, frame_len,
};
use crate::scan::{RecordIter, SegmentInfo, TornTail, scan_dir, segment_name};
use crate::stats::{StatsInner, WalStats};
use crate::{Error, Result};

mod commit;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Return after the fsync that covers the record (group commit shares one fsync among
    /// concurrent appenders).
    #[default]
    Immediate,
    /// Return at once; the background flusher makes the record durable within
    /// [`WalOptions::flush_interval`].
    Eventual,
    /// Return at once; durable whenever a later sync covers it (bulk loads that are
    /// checkpointed anyway).
    None,
}

/// How a log is laid out and flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Target size of a segment file. A record that does not fit the rest of a segment
    /// starts the next one; a record larger than a whole segment gets one of its own.
    pub segment_size: u64,
    /// Write a new segment full of zeros before use, so appends do not allocate blocks and
    /// each fsync writes data only.
    pub preallocate: bool,
    /// Largest payload accepted.
    pub max_record_size: u32,
    /// Bound on how long an `Eventual` record waits for its fsync. Zero disables the
    /// background flusher.
    pub flush_interval: Duration,
    /// Buffered bytes of `Eventual`/`None` records that make an appender write them out.
    pub buffer_limit: usize,
    /// Move segments removed by [`Wal::truncate_before`] here instead of deleting them.
    pub archive_dir: Option<PathBuf>,
    /// How long an `Immediate` appender whose batch another thread is syncing may poll for
    /// it (yielding its core between looks) before it sleeps. It polls only when its
    /// expected wait, twice the recent fsync latency, fits in this bound: on a fast disk
    /// a sleeping thread's wake-up costs about as much as the fsync it waited for, on a
    /// slow one polling would only burn the core. Zero: always sleep.
    pub wait_spin: Duration,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 16 << 20,
            preallocate: true,
            max_record_size: 16 << 20,
            flush_interval: Duration::from_millis(10),
            buffer_limit: 1 << 20,
            archive_dir: None,
            wait_spin: Duration::from_micros(500),
        }
    }
}

/// What opening the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The first record still in the log (after truncations), or the next LSN if empty.
    pub first_lsn: Lsn,
    /// The last valid record ([`Lsn::ZERO`] for a log that never had one).
    pub last_lsn: Lsn,
    /// Segments holding the valid log.
    pub segments: usize,
    /// A torn tail that was cut off, if there was one.
    pub torn_tail: Option<TornTail>,
}

/// Payloads from this size up are written from their own buffer, not copied into the
/// batch's (see `write_batch`).
const DIRECT_PAYLOAD: usize = 256 << 10;

struct Queued {
    lsn: Lsn,
    record_type: u8,
    time_us: u64,
    payload: Payload,
}

/// Where a queued record's payload is.
enum Payload {
    /// In the queue's `bytes`, at `at`, `len` bytes long.
    Inline { at: usize, len: usize },
    /// In its own buffer: a payload of [`DIRECT_PAYLOAD`] bytes or more.
    Owned(Vec<u8>),
}

/// Records waiting to be written, oldest first. Payloads below [`DIRECT_PAYLOAD`] are
/// copied end to end into one buffer, so appending allocates nothing per record and the
/// thread that writes a batch frees nothing an appender allocated (with the system
/// allocator, frees across threads contend for the allocating thread's arena: that was
/// most of the futex calls of a stream of small commits). The writer hands the emptied
/// queue back as the next spare.
#[derive(Default)]
struct Queue {
    records: Vec<Queued>,
    bytes: Vec<u8>,
}

impl Queue {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn push(&mut self, lsn: Lsn, record_type: u8, time_us: u64, payload: Cow<'_, [u8]>) {
        let payload = if payload.len() >= DIRECT_PAYLOAD {
            Payload::Owned(payload.into_owned())
        } else {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(&payload);
            Payload::Inline {
                at,
                len: payload.len(),
            }
        };
        self.records.push(Queued {
            lsn,
            record_type,
            time_us,
            payload,
        });
    }

    /// Empties it, keeping its buffers unless they grew past `keep` bytes.
    fn recycle(mut self, keep: usize) -> Queue {
        if self.bytes.capacity() > keep {
            return Queue::default();
        }
        self.records.clear();
        self.bytes.clear();
        self
    }
}

struct State {
    next_lsn: Lsn,
    queue: Queue,
    /// An empty queue with the buffers of an earlier batch, to take the next records.
    spare: Queue,
    queued_bytes: usize,
    written: Lsn,
    synced: Lsn,
    leader: bool,
    /// A syncing leader is gathering: records queued now join the current batch.
    collecting: Option<u64>,
    /// Records in the last batch a leader took; what it waits to see queued again.
    last_batch: usize,
    /// While a leader gathers: the queue length that should wake it (else `usize::MAX`).
    gather_target: usize,
    /// Recent fsync latency (moving average), bounding how long a leader gathers.
    sync_estimate: Duration,
    /// Batches started so far; batch `n` wakes its members on `conds[n % 2]`.
    batches: u64,
    /// The last LSN taken into a batch.
    taken: Lsn,
    poisoned: Option<String>,
    closed: bool,
    /// An appender found `buffer_limit` bytes queued and asked the flusher to write them
    /// (see [`WRITE_INLINE_AT`]); cleared when a batch takes the queue.
    write_requested: bool,
    stats: StatsInner,
}

impl State {
    /// A log whose last record (written and durable) is `last`.
    fn new(last: Lsn) -> State {
        State {
            next_lsn: last.next(),
            queue: Queue::default(),
            spare: Queue::default(),
            queued_bytes: 0,
            written: last,
            synced: last,
            leader: false,
            batches: 0,
            sync_estimate: Duration::ZERO,
            last_batch: 0,
            collecting: None,
            gather_target: usize::MAX,
            taken: last,
            poisoned: None,
            closed: false,
            write_requested: false,
            stats: StatsInner::default(),
        }
    }
}

struct Active {
    file: Box<dyn VfsFile>,
    /// Write offset.
    len: u64,
    unsynced: bool,
}

struct Io {
    active: Option<Active>,
    /// All segments of the log, oldest first; the last one is the active one if any.
    segments: Vec<SegmentInfo>,
}

struct Inner {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    opts: WalOptions,
    state: Mutex<State>,
    /// Waiters for batch `n` sleep on `conds[n % 2]`: finishing a batch wakes its members
    /// and one waiter of the next batch (its leader), not every thread in the process.
    conds: [Condvar; 2],
    /// A leader gathering a batch sleeps here; the appender that completes it wakes it.
    gather_cond: Condvar,
    /// Mirror of `State::synced`, read by waiters polling without the lock.
    durable: AtomicU64,
    /// Bumped whenever a batch ends (or the log is poisoned): a polling waiter whose record
    /// is still not durable then looks at the state again under the lock.
    epoch: AtomicU64,
    /// Whether polling pays off: a gathered batch that times out short of its target while
    /// waiters poll costs `POLL_PENALTY`, every sleeping wait earns one back; waiters poll
    /// only while it is not negative.
    poll_credit: AtomicI64,
    /// Waiters polling now.
    pollers: AtomicUsize,
    io: Mutex<Io>,
    stop: Mutex<bool>,
    stop_cond: Condvar,
    /// Serializes truncations.
    truncating: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State is updated in whole steps under the lock; a panicked holder leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A write-ahead log in one directory: framed records in segments, group commit, recovery.
///
/// ```
/// use std::sync::Arc;
/// use lightning_page::vfs::MemVfs;
/// use lightning_wal::{Durability, Lsn, Wal, WalOptions};
///
/// let vfs = Arc::new(MemVfs::new());
/// let wal = Wal::open(vfs.clone(), "db/wal".as_ref(), WalOptions::default())?;
/// let a = wal.append(1, b"put alice", Durability::Immediate)?;
/// let b = wal.append(1, b"put bob", Durability::Eventual)?;
/// b.wait()?; // durable now
/// wal.close()?;
///
/// let wal = Wal::open(vfs, "db/wal".as_ref(), WalOptions::default())?;
/// assert_eq!(wal.recovery().last_lsn, b.lsn());
/// let records: Vec<_> = wal.read_from(Lsn::new(1))?.collect::<Result<_, _>>()?;
/// assert_eq!(records[0].payload, b"put alice");
/// assert_eq!(records[0].lsn, a.lsn());
/// # Ok::<(), lightning_wal::Error>(())
/// ```
pub struct Wal {
    inner: Arc<Inner>,
    recovery: Recovery,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

/// A record that was appended: its LSN, and a way to wait until it is durable.
#[derive(Clone)]
pub struct Appended {
    lsn: Lsn,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Appended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appended")
            .field("lsn", &self.lsn)
            .finish_non_exhaustive()
    }
}

/// Reads the log in `dir` without changing any file, for inspection and read-only opens:
/// validates it as [`Wal::open`] does — damage to a record that was durable is an error, a
/// torn tail is reported in [`Recovery::torn_tail`] but not cut — and returns what it found
/// and the records from `from` on, up to the last valid one. A missing directory is an
/// empty log.
pub fn read_only(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    max_record_size: u32,
    from: Lsn,
) -> Result<(Recovery, RecordIter)> {
    let exists = vfs.exists(dir).map_err(|e| Error::io("look for", dir, e))?;
    let layout = if exists {
        scan_dir(&*vfs, dir, max_record_size)?
    } else {
        crate::scan::Layout {
            segments: Vec::new(),
            last: Lsn::ZERO,
            torn: None,
        }
    };
    let recovery = Recovery {
        first_lsn: layout
            .segments
            .first()
            .map_or(layout.last.next(), |s| s.first),
        last_lsn: layout.last,
        segments: layout.segments.len(),
        torn_tail: layout.torn,
    };
    let segments = layout
        .segments
        .iter()
        .map(|s| (s.first, s.path.clone()))
        .collect();
    let records = RecordIter::new(vfs, segments, from, layout.last, max_record_size);
    Ok((recovery, records))
}

/// Replaces the file at `path` with one holding exactly `bytes`, durably and atomically:
/// written and synced under a temporary name, renamed over `path`, the directory synced.
/// A power cut at any point leaves the old file or the new one, whole. Returns the new
/// file, open for writing.
fn replace_durably(
    vfs: &dyn Vfs,
    dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<Box<dyn VfsFile>> {
    let tmp = path.with_extension("rewrite");
    // A leftover of a replacement cut short: never a segment (its name does not parse).
    if vfs
        .exists(&tmp)
        .map_err(|e| Error::io("look for", &tmp, e))?
    {
        vfs.remove(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    let f = vfs
        .open(&tmp, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_at(bytes, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync().map_err(|e| Error::io("sync", &tmp, e))?;
    drop(f);
    vfs.rename(&tmp, path)
        .map_err(|e| Error::io("rename over", path, e))?;
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    vfs.open(path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", path, e))
}

impl Appended {
    /// The record's LSN.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Blocks until the record is durable (joining or leading a group commit).
    pub fn wait(&self) -> Result<()> {
        self.inner.wait_durable(self.lsn)
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering it: the valid log is read,
    /// a torn tail is cut off, and corruption is an error.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: WalOptions) -> Result<Wal> {
        if opts.segment_size < 4096 {
            return Err(Error::InvalidOptions(
                "segment_size must be at least 4096 bytes",
            ));
        }
        vfs.create_dir_all(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
        let layout = scan_dir(&*vfs, dir, opts.max_record_size)?;
        let segments = layout.segments;
        // Make the last segment's valid bytes durable and cut what follows them. The bytes
        // are written again, not just fsynced: after a failed fsync the OS may hold pages
        // that read back fine but never reached the disk, and a later fsync skips them
        // (see the fsyncgate study, ATC 2020). They are written to a new file that then
        // replaces the segment, never over the segment itself: a power cut that tears an
        // in-place rewrite could destroy records that were already durable. Appends then
        // continue from a clean end.
        if let Some(seg) = segments.last()
            && seg.last.is_some()
        {
            let valid = usize::try_from(seg.end)
                .map_err(|_| Error::InvalidOptions("segment larger than memory"))?;
            let mut bytes = vec![0u8; valid];
            vfs.open(&seg.path, OpenMode::ReadOnly)
                .and_then(|f| f.read_at(&mut bytes, 0))
                .map_err(|e| Error::io("read", &seg.path, e))?;
            replace_durably(&*vfs, dir, &seg.path, &bytes)?;
        }
        // A last segment without records keeps the log's numbering (its name is the next
        // LSN, and truncation may have removed everything before it): it becomes the active
        // segment again, its header written anew (the same way) and anything after it cut.
        // The replacement's directory sync also makes its name durable, which its creation
        // may never have done.
        let mut active = None;
        if let Some(seg) = segments.last()
            && seg.last.is_none()
        {
            let f = replace_durably(&*vfs, dir, &seg.path, &encode_segment_header(seg.first))?;
            active = Some(Active {
                file: f,
                len: SEGMENT_HEADER as u64,
                unsynced: false,
            });
        }
        let recovery = Recovery {
            first_lsn: segments.first().map_or(layout.last.next(), |s| s.first),
            last_lsn: layout.last,
            segments: segments.len(),
            torn_tail: layout.torn,
        };
        tracing::info!(dir = %dir.display(), first = %recovery.first_lsn, last = %recovery.last_lsn, segments = recovery.segments, "WAL opened");
        let inner = Arc::new(Inner {
            vfs,
            dir: dir.to_path_buf(),
            state: Mutex::new(State::new(layout.last)),
            conds: [Condvar::new(), Condvar::new()],
            gather_cond: Condvar::new(),
            durable: AtomicU64::new(layout.last.get()),
            epoch: AtomicU64::new(0),
            poll_credit: AtomicI64::new(0),
            pollers: AtomicUsize::new(0),
            io: Mutex::new(Io { active, segments }),
            stop: Mutex::new(false),
            stop_cond: Condvar::new(),
            truncating: Mutex::new(()),
            opts,
        });
        let flusher = if inner.opts.flush_interval.is_zero() {
            None
        } else {
            let inner = Arc::clone(&inner);
            Some(
                std::thread::Builder::new()
                    .name("lightning-wal-flusher".into())
                    .spawn(move || inner.flusher())
                    .map_err(|e| Error::io("start the flusher thread for", PathBuf::new(), e))?,
            )
        };
        Ok(Wal {
            inner,
            recovery,
            flusher,
        })
    }

    /// What opening found.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Appends a record; with [`Durability::Immediate`] returns once it is durable.
    pub fn append(
        &self,
        record_type: u8,
        payload: &[u8],
        durability: Durability,
    ) -> Result<Appended> {
        let lsn = self
            .inner
            .append(record_type, Cow::Borrowed(payload), durability)?;
        Ok(Appended {
            lsn,
            inner: Arc::clone(&self.inner),
        })
    }

    /// [`append`](Self::append), taking the payload by value: a payload of 256 KiB or more
    /// (a bulk load's write set) is kept until it is written and written from its own
    /// buffer, with no copy; a smaller one is copied into the log's queue, as `append` does.
    pub fn append_owned(
        &self,
        record_type: u8,
        payload: Vec<u8>,
        durability: Durability,
    ) -> Result<Appended> {
        let lsn = self
            .inner
            .append(record_type, Cow::Owned(payload), durability)?;
        Ok(Appended {
            lsn,
            inner: Arc::clone(&self.inner),
        })
    }

    /// Makes every record appended so far durable.
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_all()
    }

    /// The LSN of the last record appended.
    pub fn last_lsn(&self) -> Lsn {
        Lsn::new(lock(&self.inner.state).next_lsn.get() - 1)
    }

    /// The LSN up to which every record is durable.
    pub fn durable_lsn(&self) -> Lsn {
        lock(&self.inner.state).synced
    }

    /// Counters and histograms of the log's work so far.
    pub fn stats(&self) -> WalStats {
        let st = lock(&self.inner.state);
        st.stats
            .snapshot(Lsn::new(st.next_lsn.get() - 1), st.synced)
    }

    /// Reads the records from `from` up to the last one written when called. A truncation
    /// running meanwhile may remove segments the iterator has not reached; it then yields an
    /// I/O error.
    pub fn read_from(&self, from: Lsn) -> Result<RecordIter> {
        let last = lock(&self.inner.state).written;
        let segs = lock(&self.inner.io)
            .segments
            .iter()
            .map(|s| (s.first, s.path.clone()))
            .collect();
        Ok(RecordIter::new(
            Arc::clone(&self.inner.vfs),
            segs,
            from,
            last,
            self.inner.opts.max_record_size,
        ))
    }

    /// Removes the segments whose records all precede `lsn` (a durable checkpoint covers
    /// them), or archives them when [`WalOptions::archive_dir`] is set. The active segment
    /// always stays. Returns how many segments went.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<usize> {
        self.inner.check_usable()?;
        // One truncation at a time: segments leave strictly oldest first, so the log
        // directory never has a gap (a later segment archived while an earlier one stays).
        let _one_at_a_time = lock(&self.inner.truncating);
        let candidates: Vec<SegmentInfo> = {
            let io = lock(&self.inner.io);
            // Segment `i` goes when the next one starts at or before `lsn`; the last
            // (active) one has no next, so it stays.
            let n = io
                .segments
                .iter()
                .skip(1)
                .take_while(|next| next.first <= lsn)
                .count();
            io.segments.iter().take(n).cloned().collect()
        };
        // Archive or delete outside the I/O lock, so commits go on meanwhile. A failure
        // leaves the log itself intact: it is returned, not poisoning, and the segments not
        // yet retired stay in the log for the next truncation.
        let mut retired = 0;
        let mut outcome = Ok(());
        for seg in candidates {
            if let Err(e) = self.inner.retire(seg) {
                outcome = Err(e);
                break;
            }
            retired += 1;
        }
        lock(&self.inner.io).segments.drain(..retired);
        outcome.map(|()| retired)
    }

    /// Makes everything durable, stops the flusher, and closes the log.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let synced = if lock(&self.inner.state).closed {
            Ok(())
        } else {
            self.inner.sync_all()
        };
        lock(&self.inner.state).closed = true;
        *lock(&self.inner.stop) = true;
        self.inner.stop_cond.notify_all();
        if let Some(h) = self.flusher.take() {
            // A panicked flusher already recorded nothing more to do.
            drop(h.join());
        }
        synced
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "WAL dropped with records that could not be made durable");
        }
    }
}

impl Inner {
    fn check_usable(&self) -> Result<()> {
        let st = lock(&self.state);
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if st.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn write_batch(
        &self,
        batch: &mut Queue,
        written: Lsn,
        synced: Lsn,
        sync: bool,
    ) -> Result<Progress> {
        let mut io = lock(&self.io);
        let mut done = Progress {
            written,
            synced,
            sync_time: None,
        };
        let mut buf = Vec::new();
        for rec in &mut batch.records {
            let payload_len = match &rec.payload {
                Payload::Inline { len, .. } => *len,
                Payload::Owned(p) => p.len(),
            };
            let flen = frame_len(payload_len) as u64;
            let rotate = match &io.active {
                None => true,
                Some(a) => {
                    let used = a.len + buf.len() as u64;
                    used + flen > self.opts.segment_size && used > SEGMENT_HEADER as u64
                }
            };
            if rotate {
                Self::flush(&mut io, &mut buf, &mut done, true)?;
                self.start_segment(&mut io, rec.lsn)?;
            }
            let meta = FrameMeta {
                lsn: rec.lsn,
                synced_through: done.synced,
                time_us: rec.time_us,
                record_type: rec.record_type,
            };
            let lsn = rec.lsn;
            if let Payload::Owned(payload) = &mut rec.payload {
                // A large record (a bulk load's write set) is written from its own buffer,
                // behind its header: copying it into `buf` would touch every byte twice
                // more (zero-filling fresh memory, then the copy). The padding goes in the
                // same write as the payload, so that a frame on disk is never whole
                // without it (recovery takes the frame's end as aligned).
                Self::flush(&mut io, &mut buf, &mut done, false)?;
                let header = frame_header(meta, payload);
                let mut payload = std::mem::take(payload);
                payload.resize(frame_len(payload.len()) - FRAME_HEADER, 0);
                Self::write_part(&mut io, &header)?;
                Self::write_part(&mut io, &payload)?;
            } else if let Payload::Inline { at, len } = rec.payload {
                // INVARIANT: `Queue::push` copied `len` bytes to `at` of `bytes`, which is
                // only cleared with the records.
                encode_frame(&mut buf, meta, &batch.bytes[at..at + len]);
            }
            if let Some(seg) = io.segments.last_mut() {
                seg.note_record(lsn, meta.time_us);
            }
            done.written = lsn;
        }
        Self::flush(&mut io, &mut buf, &mut done, sync)?;
        Ok(done)
    }

    /// Writes `part` at the end of the active segment.
    fn write_part(io: &mut Io, part: &[u8]) -> Result<()> {
        let Some(active) = io.active.as_mut() else {
            return Ok(());
        };
        if part.is_empty() {
            return Ok(());
        }
        let path = io.segments.last().map(|s| s.path.as_path());
        active
            .file
            .write_at(part, active.len)
            .map_err(|e| Error::io("append to", path.unwrap_or(Path::new("")), e))?;
        active.len += part.len() as u64;
        active.unsynced = true;
        Ok(())
    }

    /// Writes `buf` to the active segment and, with `sync`, fsyncs it.
    fn flush(io: &mut Io, buf: &mut Vec<u8>, done: &mut Progress, sync: bool) -> Result<()> {
        let Some(active) = io.active.as_mut() else {
            return Ok(());
        };
        let path = io
            .segments
            .last()
            .map(|s| s.path.clone())
            .unwrap_or_default();
        if !buf.is_empty() {
            active
                .file
                .write_at(buf, active.len)
                .map_err(|e| Error::io("append to", &path, e))?;
            active.len += buf.len() as u64;
            active.unsynced = true;
            buf.clear();
        }
        if sync && active.unsynced {
            let start = Instant::now();
            active
                .file
                .sync()
                .map_err(|e| Error::io("sync", &path, e))?;
            active.unsynced = false;
            done.synced = done.written;
            done.sync_time = Some(start.elapsed());
        }
        Ok(())
    }

    /// Creates the segment that starts at `first`: header, optional zero preallocation,
    /// fsync, directory fsync — all before any record goes in.
    fn start_segment(&self, io: &mut Io, first: Lsn) -> Result<()> {
        let path = self.dir.join(segment_name(first));
        let file = self
            .vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| Error::io("create segment", &path, e))?;
        file.write_at(&encode_segment_header(first), 0)
            .map_err(|e| Error::io("write header of", &path, e))?;
        if self.opts.preallocate {
            let zeros = vec![0u8; 1 << 20];
            let mut at = SEGMENT_HEADER as u64;
            while at < self.opts.segment_size {
                let n = usize::try_from((self.opts.segment_size - at).min(zeros.len() as u64))
                    .unwrap_or(zeros.len());
                // INVARIANT: `n <= zeros.len()`: the `min` above (or its fallback).
                file.write_at(&zeros[..n], at)
                    .map_err(|e| Error::io("preallocate", &path, e))?;
                at += n as u64;
            }
        }
        file.sync()
            .map_err(|e| Error::io("sync new segment", &path, e))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("sync directory", &self.dir, e))?;
        tracing::debug!(segment = %path.display(), "WAL segment started");
        io.active = Some(Active {
            file,
            len: SEGMENT_HEADER as u64,
            unsynced: false,
        });
        io.segments.push(SegmentInfo::new(first, path));
        Ok(())
    }

    /// Deletes or archives one closed segment, durably, before the next one is touched.
    fn retire(&self, seg: SegmentInfo) -> Result<()> {
        let Some(archive) = &self.opts.archive_dir else {
            self.vfs
                .remove(&seg.path)
                .map_err(|e| Error::io("remove", &seg.path, e))?;
            return self
                .vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync directory", &self.dir, e));
        };
        let entry = ArchivedSegment {
            first: seg.first,
            last: seg.last.unwrap_or(seg.first),
            min_time_us: seg.min_time_us.unwrap_or(0),
            max_time_us: seg.max_time_us.unwrap_or(0),
            path: seg.path,
        };
        archive_segment(&*self.vfs, archive, &entry)
    }

    /// The background flusher: every `flush_interval`, makes pending records durable.
    /// It never holds the stop lock while syncing, so shutdown is never held up by it.
    /// Between syncs it also writes (without syncing) the records an appender asked it to,
    /// so that the appender — a committer, under the commit ordering — does not.
    fn flusher(&self) {
        let mut next_sync = Instant::now() + self.opts.flush_interval;
        // A request found a leader at work: look again soon, not in a spin.
        let mut blocked = false;
        loop {
            let mut stop = lock(&self.stop);
            // Looked at under `stop`, which the appender takes before it notifies: a request
            // made after this look wakes the wait below.
            let requested = || lock(&self.state).write_requested;
            if !*stop && (blocked || !requested()) {
                let mut wait = next_sync.saturating_duration_since(Instant::now());
                if blocked {
                    wait = wait.min(Duration::from_millis(1));
                }
                stop = self
                    .stop_cond
                    .wait_timeout(stop, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if *stop {
                return;
            }
            drop(stop);
            if Instant::now() < next_sync {
                blocked = match self.write_requested_batch() {
                    Ok(served) => !served,
                    Err(e) => {
                        tracing::error!(error = %e, "background WAL write failed");
                        false
                    }
                };
                continue;
            }
            blocked = false;
            next_sync = Instant::now() + self.opts.flush_interval;
            let pending = {
                let st = lock(&self.state);
                st.poisoned.is_none() && st.synced.get() + 1 < st.next_lsn.get()
            };
            if pending && let Err(e) = self.sync_all() {
                tracing::error!(error = %e, "background WAL flush failed");
            }
        }
    }
}

/// What a leader achieved: the last LSN written and the last LSN durable.
struct Progress {
    written: Lsn,
    synced: Lsn,
    sync_time: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{DIRECT_PAYLOAD, Payload, Queue};
    use crate::frame::Lsn;

    /// Small payloads go end to end into the queue's buffer, a large one keeps its own; a
    /// recycled queue is empty and keeps its buffers' room, unless they grew past the limit.
    #[test]
    fn a_queue_packs_small_payloads_and_recycles_its_buffers() {
        let mut q = Queue::default();
        q.push(Lsn::new(1), 1, 0, Cow::Borrowed(&[1; 10]));
        q.push(Lsn::new(2), 1, 0, Cow::Owned(vec![2; 20]));
        q.push(Lsn::new(3), 1, 0, Cow::Owned(vec![3; DIRECT_PAYLOAD]));
        let places: Vec<(usize, usize)> = q
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Inline { at, len } => (*at, *len),
                Payload::Owned(p) => (usize::MAX, p.len()),
            })
            .collect();
        assert_eq!(places, [(0, 10), (10, 20), (usize::MAX, DIRECT_PAYLOAD)]);
        assert_eq!(q.bytes, [[1; 10].as_slice(), &[2; 20]].concat());
        let room = q.bytes.capacity();
        let q = q.recycle(room);
        assert!(q.is_empty() && q.bytes.is_empty(), "emptied");
        assert_eq!(q.bytes.capacity(), room, "its room kept");
        let mut q = q;
        q.push(Lsn::new(4), 1, 0, Cow::Borrowed(&[4; 100]));
        assert!(
            q.recycle(10).bytes.capacity() == 0,
            "grown past the limit: let go"
        );
    }
}
