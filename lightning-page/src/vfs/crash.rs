//! A file system that simulates power cuts, torn writes and failing devices.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::mem::{apply_write, check_read, not_found, to_len};
use super::{OpenMode, Vfs, VfsFile, parent_dir};

/// The sector size at which [`CrashMode::TornWrite`] tears writes.
pub const SECTOR: usize = 512;

/// Which of the operations pending at a power cut survive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only what was synced survives.
    DropUnsynced,
    /// The first `n` pending operations (writes, length changes and directory operations
    /// in the order they were issued) survive; the rest are lost. `n` past the end keeps
    /// all of them.
    KeepPrefix(usize),
    /// A prefix of random length survives.
    RandomPrefix,
    /// Each pending write and length change survives with probability 1/2, independently,
    /// so a later write can survive an earlier one (reordering); survivors are applied in
    /// issue order. Directory operations survive as a random prefix, as journaling file
    /// systems keep metadata in order.
    RandomSubset,
    /// A random prefix survives and the next write after it is torn: each 512-byte sector
    /// it touches independently holds the new or the old bytes, or, with `garbage`, random
    /// bytes.
    TornWrite {
        /// Whether a torn sector may hold random bytes.
        garbage: bool,
    },
    /// All pending writes and length changes survive, but creates, renames and removes not
    /// covered by a `sync_dir` are lost.
    LoseDirOps,
}

impl CrashMode {
    /// One of the randomized modes (or `DropUnsynced`/`LoseDirOps`), chosen by `pick`.
    pub fn from_index(pick: u64) -> Self {
        match pick % 6 {
            0 => CrashMode::DropUnsynced,
            1 => CrashMode::RandomPrefix,
            2 => CrashMode::RandomSubset,
            3 => CrashMode::TornWrite { garbage: false },
            4 => CrashMode::TornWrite { garbage: true },
            _ => CrashMode::LoseDirOps,
        }
    }
}

/// What a simulated power cut kept, for test diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Operations pending when the power was cut.
    pub pending: usize,
    /// Operations that survived whole.
    pub kept: usize,
    /// Sectors of the torn write that kept their old bytes.
    pub torn_sectors: usize,
    /// Sectors of the torn write filled with random bytes.
    pub garbage_sectors: usize,
}

/// Which calls a [`Fault`] counts and fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// `read_at`.
    Read,
    /// `write_at`.
    Write,
    /// `set_len`.
    SetLen,
    /// `sync` and `sync_dir`.
    Sync,
    /// Any of the above.
    Any,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// An I/O error (EIO).
    Io,
    /// No space left on device (ENOSPC).
    NoSpace,
    /// The power goes out: the call fails and nothing after it reaches the device. Unlike
    /// an I/O error, a sync cut short this way does not drop the pending writes: what
    /// survives is decided by the [`CrashMode`] of the [`CrashVfs::crash`] that follows.
    /// Make it `permanent`, so every later call fails too, as on a dead machine.
    PowerCut,
}

/// A planned failure: the `nth` (0-based) matching call from the moment it is injected
/// fails, and with `permanent` every matching call after it too. A failed call has no
/// effect, except a failed sync, which drops the file's pending writes for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which calls count.
    pub op: FaultOp,
    /// How many matching calls succeed before the failure.
    pub nth: u64,
    /// Whether the failure persists.
    pub permanent: bool,
    /// The error returned.
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Ino(u64);

#[derive(Debug, Clone)]
enum LogOp {
    Write {
        ino: Ino,
        offset: usize,
        data: Vec<u8>,
    },
    SetLen {
        ino: Ino,
        len: usize,
    },
    Create {
        path: PathBuf,
        ino: Ino,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
}

impl LogOp {
    fn is_data(&self) -> bool {
        matches!(self, LogOp::Write { .. } | LogOp::SetLen { .. })
    }

    fn data_ino(&self) -> Option<Ino> {
        match self {
            LogOp::Write { ino, .. } | LogOp::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    fn touches_dir(&self, dir: &Path) -> bool {
        match self {
            LogOp::Create { path, .. } | LogOp::Remove { path } => parent_dir(path) == dir,
            LogOp::Rename { from, to } => parent_dir(from) == dir || parent_dir(to) == dir,
            _ => false,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
struct ArmedFault {
    fault: Fault,
    seen: u64,
    fired: bool,
}

/// `SplitMix64`: tiny, fast, and good enough to drive test scenarios.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: usize) -> usize {
        let bound = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        usize::try_from(self.next() % bound).unwrap_or(max)
    }
}

#[derive(Debug)]
struct State {
    epoch: u64,
    next_ino: u64,
    live_ns: BTreeMap<PathBuf, Ino>,
    durable_ns: BTreeMap<PathBuf, Ino>,
    dirs: BTreeSet<PathBuf>,
    inodes: HashMap<Ino, Inode>,
    log: Vec<LogOp>,
    rng: Rng,
    faults: Vec<ArmedFault>,
    io_calls: u64,
    /// A power-cut fault fired: every call fails until the next `crash`.
    powered_off: bool,
}

/// An in-memory file system with simulated power cuts, torn writes and failing devices.
/// Cloning shares the same state.
///
/// [`CrashVfs`] keeps, for every file, its *live* contents (what reads see) and its
/// *durable* contents (what survives a power cut), plus one ordered log of the writes,
/// length changes and directory operations issued since they were last made durable:
///
/// - [`VfsFile::sync`] moves that file's pending writes and length changes into its durable
///   contents;
/// - [`Vfs::sync_dir`] makes the pending creates, renames and removes in that directory
///   durable, together with every namespace operation issued before them (journaled
///   metadata is ordered); a created file whose directory was never synced vanishes in a
///   power cut, even if its data was synced;
/// - [`CrashVfs::crash`] cuts the power: it builds a post-crash image from the durable state
///   plus a part of the log chosen by a [`CrashMode`], makes that image the new live and
///   durable state, and invalidates every open handle.
///
/// Every random choice comes from a seeded generator, so a scenario replays exactly from
/// its seed. Faults ([`Fault`]) fail the Nth read, write, length change or sync, once or
/// for good, as EIO or ENOSPC. A failed sync drops that file's pending writes for good:
/// they stay visible to reads but never become durable, even if a later sync succeeds (the
/// Linux behaviour studied in "Can Applications Recover from fsync Failures?", ATC 2020).
///
/// # Example
///
/// ```
/// use std::path::Path;
/// use lightning_page::vfs::{CrashMode, CrashVfs, OpenMode, Vfs};
///
/// let vfs = CrashVfs::new(7);
/// let f = vfs.open(Path::new("a"), OpenMode::CreateNew)?;
/// vfs.sync_dir(Path::new("."))?;
/// f.write_at(b"durable", 0)?;
/// f.sync()?;
/// f.write_at(b"LOST", 0)?;
/// vfs.crash(CrashMode::DropUnsynced);
/// assert_eq!(vfs.contents(Path::new("a")).as_deref(), Some(&b"durable"[..]));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CrashVfs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct CrashFile {
    state: Arc<Mutex<State>>,
    ino: Ino,
    epoch: u64,
    writable: bool,
}

fn injected(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::Io => io::Error::other("injected I/O error (EIO)"),
        FaultKind::NoSpace => io::Error::new(
            io::ErrorKind::StorageFull,
            "injected ENOSPC: no space left on device",
        ),
        FaultKind::PowerCut => io::Error::other("simulated power cut: the device is gone"),
    }
}

impl State {
    /// Counts an I/O call against the armed faults; `Err` with the fault's kind if one fires.
    fn fault(&mut self, op: FaultOp) -> Result<(), FaultKind> {
        self.io_calls += 1;
        if self.powered_off {
            return Err(FaultKind::PowerCut);
        }
        let mut fail = None;
        for armed in &mut self.faults {
            let f = armed.fault;
            if f.op != op && f.op != FaultOp::Any {
                continue;
            }
            if armed.fired {
                if f.permanent {
                    fail = Some(f.kind);
                }
                continue;
            }
            if armed.seen == f.nth {
                armed.fired = true;
                fail = Some(f.kind);
            }
            armed.seen += 1;
        }
        if fail == Some(FaultKind::PowerCut) {
            self.powered_off = true;
        }
        match fail {
            Some(kind) => Err(kind),
            None => Ok(()),
        }
    }

    /// Namespace operations are not counted as I/O calls, but fail once the power is off.
    fn check_power(&self) -> io::Result<()> {
        if self.powered_off {
            Err(injected(FaultKind::PowerCut))
        } else {
            Ok(())
        }
    }

    fn check_fault(&mut self, op: FaultOp) -> io::Result<()> {
        self.fault(op).map_err(injected)
    }

    fn inode(&mut self, ino: Ino) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }

    /// Applies a directory operation to a namespace.
    fn apply_dir_op(ns: &mut BTreeMap<PathBuf, Ino>, op: &LogOp) {
        match op {
            LogOp::Create { path, ino } => {
                ns.insert(path.clone(), *ino);
            }
            LogOp::Rename { from, to } => {
                if let Some(ino) = ns.remove(from) {
                    ns.insert(to.clone(), ino);
                }
            }
            LogOp::Remove { path } => {
                ns.remove(path);
            }
            LogOp::Write { .. } | LogOp::SetLen { .. } => {}
        }
    }

    fn apply_data_op(contents: &mut HashMap<Ino, Vec<u8>>, op: &LogOp) {
        match op {
            LogOp::Write { ino, offset, data } => {
                splice(contents.entry(*ino).or_default(), data, *offset);
            }
            LogOp::SetLen { ino, len } => contents.entry(*ino).or_default().resize(*len, 0),
            _ => {}
        }
    }

    fn crash(&mut self, mode: CrashMode) -> CrashReport {
        let log = std::mem::take(&mut self.log);
        let mut report = CrashReport {
            pending: log.len(),
            ..CrashReport::default()
        };
        let mut ns = self.durable_ns.clone();
        let mut contents: HashMap<Ino, Vec<u8>> = self
            .inodes
            .iter()
            .map(|(i, n)| (*i, n.durable.clone()))
            .collect();
        let mut apply = |op: &LogOp, ns: &mut BTreeMap<PathBuf, Ino>| {
            Self::apply_dir_op(ns, op);
            Self::apply_data_op(&mut contents, op);
        };
        match mode {
            CrashMode::DropUnsynced => {}
            CrashMode::KeepPrefix(n) => {
                report.kept = n.min(log.len());
                log.iter().take(n).for_each(|op| apply(op, &mut ns));
            }
            CrashMode::RandomPrefix => {
                let n = self.rng.upto(log.len());
                report.kept = n;
                log.iter().take(n).for_each(|op| apply(op, &mut ns));
            }
            CrashMode::RandomSubset => {
                let dir_ops = log.iter().filter(|op| !op.is_data()).count();
                let keep_dir = self.rng.upto(dir_ops);
                let mut seen_dir = 0;
                for op in &log {
                    let keep = if op.is_data() {
                        self.rng.next() & 1 == 1
                    } else {
                        seen_dir += 1;
                        seen_dir <= keep_dir
                    };
                    if keep {
                        report.kept += 1;
                        apply(op, &mut ns);
                    }
                }
            }
            CrashMode::TornWrite { garbage } => {
                let n = self.rng.upto(log.len());
                let torn = log
                    .iter()
                    .skip(n)
                    .position(|op| matches!(op, LogOp::Write { .. }));
                let keep = torn.map_or(n, |p| n + p);
                report.kept = keep;
                log.iter().take(keep).for_each(|op| apply(op, &mut ns));
                if let Some(LogOp::Write { ino, offset, data }) = log.get(keep) {
                    let file = contents.entry(*ino).or_default();
                    tear(&mut self.rng, file, *offset, data, garbage, &mut report);
                }
            }
            CrashMode::LoseDirOps => {
                for op in log.iter().filter(|op| op.is_data()) {
                    report.kept += 1;
                    apply(op, &mut ns);
                }
            }
        }
        let reachable: BTreeSet<Ino> = ns.values().copied().collect();
        self.inodes = reachable
            .iter()
            .map(|ino| {
                let data = contents.remove(ino).unwrap_or_default();
                (
                    *ino,
                    Inode {
                        live: data.clone(),
                        durable: data,
                    },
                )
            })
            .collect();
        self.live_ns = ns.clone();
        self.durable_ns = ns;
        self.faults.clear();
        self.powered_off = false;
        self.epoch += 1;
        report
    }
}

impl CrashVfs {
    /// An empty file system whose random choices come from `seed`.
    pub fn new(seed: u64) -> Self {
        CrashVfs {
            state: Arc::new(Mutex::new(State {
                epoch: 0,
                next_ino: 1,
                live_ns: BTreeMap::new(),
                durable_ns: BTreeMap::new(),
                dirs: BTreeSet::new(),
                inodes: HashMap::new(),
                log: Vec::new(),
                rng: Rng(seed),
                faults: Vec::new(),
                io_calls: 0,
                powered_off: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Cuts the power: keeps what `mode` says of the pending operations, makes the result
    /// the new durable and live state, clears injected faults, and turns every open handle
    /// stale (its calls then fail), as a reboot would.
    pub fn crash(&self, mode: CrashMode) -> CrashReport {
        let report = self.lock().crash(mode);
        tracing::debug!(?mode, ?report, "simulated power cut");
        report
    }

    /// Arms a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(ArmedFault {
            fault,
            seen: 0,
            fired: false,
        });
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many reads, writes, length changes and syncs were issued so far (to enumerate
    /// fault positions along a workload).
    pub fn io_calls(&self) -> u64 {
        self.lock().io_calls
    }

    /// How many operations are pending (not yet durable).
    pub fn pending_ops(&self) -> usize {
        self.lock().log.len()
    }

    /// The live contents of a file (what reads see), if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.lock();
        let ino = st.live_ns.get(path)?;
        Some(
            st.inodes
                .get(ino)
                .map(|i| i.live.clone())
                .unwrap_or_default(),
        )
    }

    /// The contents a [`CrashMode::DropUnsynced`] power cut would leave, if the file would
    /// exist afterwards.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.lock();
        let ino = st.durable_ns.get(path)?;
        Some(
            st.inodes
                .get(ino)
                .map(|i| i.durable.clone())
                .unwrap_or_default(),
        )
    }

    /// Overwrites bytes of a file in place, durably and without logging: models media
    /// corruption (bit rot) for corruption tests.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        let ino = *st.live_ns.get(path).ok_or_else(|| not_found(path))?;
        let inode = st.inode(ino);
        apply_write(&mut inode.live, bytes, offset)?;
        apply_write(&mut inode.durable, bytes, offset)
    }
}

/// Applies the write of `data` at `offset` to `file` torn at sector boundaries: each piece
/// within one sector holds the new bytes, keeps the old ones, or (with `garbage`) random ones.
fn tear(
    rng: &mut Rng,
    file: &mut Vec<u8>,
    offset: usize,
    data: &[u8],
    garbage: bool,
    report: &mut CrashReport,
) {
    let end = offset + data.len();
    let mut pos = offset;
    while pos < end {
        let piece_end = ((pos / SECTOR + 1) * SECTOR).min(end);
        let src = &data[pos - offset..piece_end - offset];
        match rng.next() % if garbage { 3 } else { 2 } {
            0 => splice(file, src, pos),
            1 => report.torn_sectors += 1,
            _ => {
                report.garbage_sectors += 1;
                let noise: Vec<u8> = src.iter().map(|_| rng.next().to_le_bytes()[0]).collect();
                splice(file, &noise, pos);
            }
        }
        pos = piece_end;
    }
}

/// Writes `buf` at `start`, growing `data` as needed. Offsets in the log were validated
/// when the operation was accepted, so this cannot fail.
fn splice(data: &mut Vec<u8>, buf: &[u8], start: usize) {
    let end = start + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(buf);
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every mutation keeps the maps consistent between statements, so a panicking test
    // thread cannot leave a state that later calls misread.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Vfs for CrashVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut st = self.lock();
        st.check_power()?;
        let ino = match (st.live_ns.get(path).copied(), mode) {
            (Some(_), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            (Some(ino), _) => ino,
            (None, OpenMode::ReadOnly | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, OpenMode::CreateNew | OpenMode::OpenOrCreate) => {
                let ino = Ino(st.next_ino);
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::default());
                st.live_ns.insert(path.to_path_buf(), ino);
                st.log.push(LogOp::Create {
                    path: path.to_path_buf(),
                    ino,
                });
                ino
            }
        };
        Ok(Box::new(CrashFile {
            state: Arc::clone(&self.state),
            ino,
            epoch: st.epoch,
            writable: mode.writable(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_power()?;
        let ino = st.live_ns.remove(from).ok_or_else(|| not_found(from))?;
        st.live_ns.insert(to.to_path_buf(), ino);
        st.log.push(LogOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_power()?;
        st.live_ns.remove(path).ok_or_else(|| not_found(path))?;
        st.log.push(LogOp::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let st = self.lock();
        st.check_power()?;
        Ok(st.live_ns.contains_key(path) || st.dirs.contains(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let st = self.lock();
        st.check_power()?;
        Ok(st
            .live_ns
            .keys()
            .filter(|p| parent_dir(p) == dir)
            .cloned()
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_power()?;
        st.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_fault(FaultOp::Sync)?;
        // Like a journaling file system, namespace operations become durable in the order
        // they were issued: syncing `dir` commits every pending namespace operation up to
        // the last one that touches it (so a rename into `dir` of a file created elsewhere
        // takes its create along). Data writes stay pending.
        let Some(last) = st.log.iter().rposition(|op| op.touches_dir(dir)) else {
            return Ok(());
        };
        let log = std::mem::take(&mut st.log);
        let mut rest = Vec::with_capacity(log.len());
        for (i, op) in log.into_iter().enumerate() {
            if i <= last && !op.is_data() {
                State::apply_dir_op(&mut st.durable_ns, &op);
            } else {
                rest.push(op);
            }
        }
        st.log = rest;
        Ok(())
    }
}

impl CrashFile {
    fn state(&self, write: bool) -> io::Result<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        if st.epoch != self.epoch {
            return Err(io::Error::other(
                "stale file handle: opened before a simulated power cut",
            ));
        }
        if write && !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file is open read-only",
            ));
        }
        Ok(st)
    }
}

impl VfsFile for CrashFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut st = self.state(false)?;
        st.check_fault(FaultOp::Read)?;
        let data = &st.inode(self.ino).live;
        let start = check_read(data, buf, offset)?;
        buf.copy_from_slice(&data[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.state(true)?;
        st.check_fault(FaultOp::Write)?;
        apply_write(&mut st.inode(self.ino).live, buf, offset)?;
        // apply_write accepted the offset, so it fits a usize.
        let offset =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        st.log.push(LogOp::Write {
            ino: self.ino,
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.state(false)?;
        let outcome = st.fault(FaultOp::Sync);
        if outcome == Err(FaultKind::PowerCut) {
            return Err(injected(FaultKind::PowerCut));
        }
        let outcome = outcome.map_err(injected);
        let log = std::mem::take(&mut st.log);
        let (mine, rest): (Vec<LogOp>, Vec<LogOp>) = log
            .into_iter()
            .partition(|op| op.data_ino() == Some(self.ino));
        st.log = rest;
        if outcome.is_ok() {
            let mut durable =
                HashMap::from([(self.ino, std::mem::take(&mut st.inode(self.ino).durable))]);
            for op in &mine {
                State::apply_data_op(&mut durable, op);
            }
            st.inode(self.ino).durable = durable.remove(&self.ino).unwrap_or_default();
        }
        // On failure the pending writes are dropped unapplied: they never become durable.
        outcome
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.state(true)?;
        st.check_fault(FaultOp::SetLen)?;
        let n = to_len(len)?;
        st.inode(self.ino).live.resize(n, 0);
        st.log.push(LogOp::SetLen {
            ino: self.ino,
            len: n,
        });
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.state(false)?;
        Ok(st.inode(self.ino).live.len() as u64)
    }
}

#[cfg(test)]
mod tests;
