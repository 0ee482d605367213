//! A file system that simulates power cuts, torn writes and failing devices.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::mem::{apply_write, check_read, is_root, not_found, to_len};
use super::{OpenMode, Vfs, VfsFile, VfsLock, lock_held, parent_dir};

/// The sector size at which [`CrashMode::TornWrite`] and [`CrashMode::Arbitrary`] tear
/// writes.
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
    /// The power cut of DESIGN.md section 6 in full: an arbitrary subset of the pending
    /// writes and length changes survives, in any order, with any number of torn writes.
    /// Each one is independently lost, kept whole or torn (1/3 each; a length change is
    /// lost or kept, 1/2 each); a torn write's pieces — the parts of it within one
    /// 512-byte sector — each hold the new bytes, the bytes already there, or random
    /// bytes. The survivors are applied in a random order, not in issue order, so an
    /// earlier write may land over a later one it overlaps. Directory operations survive
    /// as a random prefix (journaled metadata stays ordered).
    Arbitrary,
}

impl CrashMode {
    /// How many distinct modes [`from_index`](Self::from_index) picks among: `from_index(i)`
    /// for `i` in `0..INDEXED` yields each of them once.
    pub const INDEXED: u64 = 7;

    /// One of the randomized modes (or `DropUnsynced`/`LoseDirOps`), chosen by `pick`.
    pub fn from_index(pick: u64) -> Self {
        match pick % Self::INDEXED {
            0 => CrashMode::DropUnsynced,
            1 => CrashMode::RandomPrefix,
            2 => CrashMode::RandomSubset,
            3 => CrashMode::TornWrite { garbage: false },
            4 => CrashMode::TornWrite { garbage: true },
            5 => CrashMode::Arbitrary,
            _ => CrashMode::LoseDirOps,
        }
    }
}

/// What a simulated power cut kept, for test diagnostics and for suites that must show
/// their cuts really lost data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Operations pending when the power was cut.
    pub pending: usize,
    /// Operations that survived whole (a torn write whose every piece landed counts).
    pub kept: usize,
    /// Writes that survived only in part: some piece kept its old bytes or got random ones.
    pub torn_writes: usize,
    /// Pieces of torn writes that kept their old bytes.
    pub torn_sectors: usize,
    /// Pieces of torn writes filled with random bytes.
    pub garbage_sectors: usize,
}

impl CrashReport {
    /// Pending operations that did not survive whole: lost, or torn.
    pub fn dropped(&self) -> usize {
        self.pending.saturating_sub(self.kept)
    }
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
    /// Namespace changes: an `open` that creates a file, `rename`, `remove` and
    /// `create_dir_all`.
    Namespace,
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
    CreateDir {
        path: PathBuf,
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

    /// Whether the operation changes an entry of `dir` (a new directory is an entry of
    /// its parent).
    fn touches_dir(&self, dir: &Path) -> bool {
        match self {
            LogOp::Create { path, .. } | LogOp::CreateDir { path } | LogOp::Remove { path } => {
                parent_dir(path) == dir
            }
            LogOp::Rename { from, to } => parent_dir(from) == dir || parent_dir(to) == dir,
            LogOp::Write { .. } | LogOp::SetLen { .. } => false,
        }
    }
}

/// The names of files and directories, live or durable.
#[derive(Debug, Clone, Default)]
struct Namespace {
    files: BTreeMap<PathBuf, Ino>,
    dirs: BTreeSet<PathBuf>,
}

impl Namespace {
    fn has_dir(&self, dir: &Path) -> bool {
        is_root(dir) || self.dirs.contains(dir)
    }

    /// Whether every directory above `path` exists.
    fn reachable(&self, path: &Path) -> bool {
        path.ancestors().skip(1).all(|dir| self.has_dir(dir))
    }

    /// Applies a directory operation; data operations do not change names.
    fn apply(&mut self, op: &LogOp) {
        match op {
            LogOp::Create { path, ino } => {
                self.files.insert(path.clone(), *ino);
            }
            LogOp::CreateDir { path } => {
                self.dirs.insert(path.clone());
            }
            LogOp::Rename { from, to } => {
                if let Some(ino) = self.files.remove(from) {
                    self.files.insert(to.clone(), ino);
                }
            }
            LogOp::Remove { path } => {
                self.files.remove(path);
            }
            LogOp::Write { .. } | LogOp::SetLen { .. } => {}
        }
    }

    /// Forgets every directory and file whose parent directory does not exist: a
    /// directory lost in a crash takes what was created inside it along.
    fn prune(&mut self) {
        // A parent sorts before its children (paths compare by components), so one pass
        // in order sees each directory's parent decided.
        let mut kept = BTreeSet::new();
        for dir in std::mem::take(&mut self.dirs) {
            if dir.parent().is_none_or(|p| is_root(p) || kept.contains(p)) {
                kept.insert(dir);
            }
        }
        self.dirs = kept;
        let dirs = &self.dirs;
        self.files
            .retain(|path, _| path.parent().is_none_or(|p| is_root(p) || dirs.contains(p)));
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

    /// Puts `items` in a uniformly random order (Fisher-Yates).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.upto(i));
        }
    }
}

/// What a power cut does with one pending operation that survives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Applied whole.
    Whole,
    /// A write applied piece by piece, each piece new, old or (with `garbage`) random.
    Torn { garbage: bool },
}

#[derive(Debug)]
struct State {
    epoch: u64,
    next_ino: u64,
    live: Namespace,
    durable: Namespace,
    inodes: HashMap<Ino, Inode>,
    log: Vec<LogOp>,
    rng: Rng,
    faults: Vec<ArmedFault>,
    io_calls: u64,
    /// A power-cut fault fired: every call fails until the next `crash`.
    powered_off: bool,
    /// Names locked through [`Vfs::lock`], with the epoch they were taken in (a power
    /// cut releases them all: their holders died with the machine).
    locks: HashMap<PathBuf, u64>,
}

/// Releases a [`CrashVfs`] lock when dropped, unless a power cut already did.
#[derive(Debug)]
struct CrashLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    epoch: u64,
}

impl Drop for CrashLock {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if st.locks.get(&self.path) == Some(&self.epoch) {
            st.locks.remove(&self.path);
        }
    }
}

/// An in-memory file system with simulated power cuts, torn writes and failing devices.
/// Cloning shares the same state.
///
/// [`CrashVfs`] keeps, for every file, its *live* contents (what reads see) and its
/// *durable* contents (what survives a power cut), plus one ordered log of the writes,
/// length changes and directory operations (creates of files and directories, renames,
/// removes) issued since they were last made durable:
///
/// - [`VfsFile::sync`] moves that file's pending writes and length changes into its durable
///   contents;
/// - [`Vfs::sync_dir`] makes the pending creates, renames and removes in that directory
///   (a new directory is an entry of its parent) durable, together with every namespace
///   operation issued before them (journaled metadata is ordered); a created file whose
///   directory was never synced vanishes in a power cut, even if its data was synced, and
///   so does a created directory with everything in it;
/// - [`CrashVfs::crash`] cuts the power: it builds a post-crash image from the durable state
///   plus a part of the log chosen by a [`CrashMode`], makes that image the new live and
///   durable state, and invalidates every open handle.
///
/// As on a real file system, a file or directory can be created (or renamed) only in a
/// directory that exists: [`Vfs::create_dir_all`] first, unless it is `.` or a root.
///
/// Every random choice comes from a seeded generator, so a scenario replays exactly from
/// its seed. Faults ([`Fault`]) fail the Nth read, write, length change, sync or namespace
/// change, once or for good, as EIO or ENOSPC; a failed call has no effect. A failed sync
/// drops that file's pending writes for good: they stay visible to reads but never become
/// durable, even if a later sync succeeds (the Linux behaviour studied in "Can
/// Applications Recover from fsync Failures?", ATC 2020).
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
/// let report = vfs.crash(CrashMode::DropUnsynced);
/// assert_eq!(vfs.contents(Path::new("a")).as_deref(), Some(&b"durable"[..]));
/// assert_eq!((report.pending, report.dropped()), (1, 1));
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

fn no_dir(dir: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such directory: {}", dir.display()),
    )
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

    /// Lookups (`exists`, `list`, opening an existing file) are not counted as I/O calls,
    /// but fail once the power is off.
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

    fn apply_data_op(contents: &mut HashMap<Ino, Vec<u8>>, op: &LogOp) {
        match op {
            LogOp::Write { ino, offset, data } => {
                splice(contents.entry(*ino).or_default(), data, *offset);
            }
            LogOp::SetLen { ino, len } => contents.entry(*ino).or_default().resize(*len, 0),
            _ => {}
        }
    }

    /// The pending operations that survive a power cut under `mode`, as indices into
    /// `log` in the order they are applied, each with its fate.
    fn survivors(&mut self, mode: CrashMode) -> Vec<(usize, Fate)> {
        let log = &self.log;
        let rng = &mut self.rng;
        let whole = |range: std::ops::Range<usize>| range.map(|i| (i, Fate::Whole));
        // A random prefix of the directory operations, in issue order.
        let dir_prefix = |rng: &mut Rng| -> Vec<(usize, Fate)> {
            let dir_ops: Vec<usize> = log
                .iter()
                .enumerate()
                .filter(|(_, op)| !op.is_data())
                .map(|(i, _)| i)
                .collect();
            let n = rng.upto(dir_ops.len());
            dir_ops.iter().take(n).map(|&i| (i, Fate::Whole)).collect()
        };
        match mode {
            CrashMode::DropUnsynced => Vec::new(),
            CrashMode::KeepPrefix(n) => whole(0..n.min(log.len())).collect(),
            CrashMode::RandomPrefix => whole(0..rng.upto(log.len())).collect(),
            CrashMode::RandomSubset => {
                let mut plan = dir_prefix(rng);
                plan.extend(
                    log.iter()
                        .enumerate()
                        .filter(|(_, op)| op.is_data() && rng.next() & 1 == 1)
                        .map(|(i, _)| (i, Fate::Whole)),
                );
                // Names and contents are independent: only the data order matters, and
                // it is issue order.
                plan
            }
            CrashMode::TornWrite { garbage } => {
                let n = rng.upto(log.len());
                let torn = log
                    .iter()
                    .enumerate()
                    .skip(n)
                    .find(|(_, op)| matches!(op, LogOp::Write { .. }))
                    .map(|(i, _)| i);
                let mut plan: Vec<_> = whole(0..torn.unwrap_or(n)).collect();
                plan.extend(torn.map(|i| (i, Fate::Torn { garbage })));
                plan
            }
            CrashMode::LoseDirOps => log
                .iter()
                .enumerate()
                .filter(|(_, op)| op.is_data())
                .map(|(i, _)| (i, Fate::Whole))
                .collect(),
            CrashMode::Arbitrary => {
                let mut plan = dir_prefix(rng);
                let mut data = Vec::new();
                for (i, op) in log.iter().enumerate() {
                    let fate = match op {
                        LogOp::Write { .. } => match rng.next() % 3 {
                            0 => None,
                            1 => Some(Fate::Whole),
                            _ => Some(Fate::Torn { garbage: true }),
                        },
                        LogOp::SetLen { .. } => (rng.next() & 1 == 1).then_some(Fate::Whole),
                        _ => None,
                    };
                    data.extend(fate.map(|f| (i, f)));
                }
                rng.shuffle(&mut data);
                plan.extend(data);
                plan
            }
        }
    }

    fn crash(&mut self, mode: CrashMode) -> CrashReport {
        let plan = self.survivors(mode);
        let log = std::mem::take(&mut self.log);
        let mut report = CrashReport {
            pending: log.len(),
            ..CrashReport::default()
        };
        let mut ns = self.durable.clone();
        let mut contents: HashMap<Ino, Vec<u8>> = self
            .inodes
            .iter()
            .map(|(i, n)| (*i, n.durable.clone()))
            .collect();
        // What survives is applied here and only here, and counted as it is applied.
        for (i, fate) in plan {
            let Some(op) = log.get(i) else { continue };
            if let (Fate::Torn { garbage }, LogOp::Write { ino, offset, data }) = (fate, op) {
                let file = contents.entry(*ino).or_default();
                if tear(&mut self.rng, file, *offset, data, garbage, &mut report) {
                    report.kept += 1;
                } else {
                    report.torn_writes += 1;
                }
            } else {
                ns.apply(op);
                Self::apply_data_op(&mut contents, op);
                report.kept += 1;
            }
        }
        ns.prune();
        let reachable: BTreeSet<Ino> = ns.files.values().copied().collect();
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
        self.live = ns.clone();
        self.durable = ns;
        self.faults.clear();
        self.powered_off = false;
        self.epoch += 1;
        self.locks.clear();
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
                live: Namespace::default(),
                durable: Namespace::default(),
                inodes: HashMap::new(),
                log: Vec::new(),
                rng: Rng(seed),
                faults: Vec::new(),
                io_calls: 0,
                powered_off: false,
                locks: HashMap::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Cuts the power: keeps what `mode` says of the pending operations, makes the result
    /// the new durable and live state, clears injected faults, and turns every open handle
    /// stale (its calls then fail), as a reboot would.
    pub fn crash(&self, mode: CrashMode) -> CrashReport {
        let report = self.state().crash(mode);
        tracing::debug!(?mode, ?report, "simulated power cut");
        report
    }

    /// Arms a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push(ArmedFault {
            fault,
            seen: 0,
            fired: false,
        });
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// How many reads, writes, length changes, syncs and namespace changes were issued so
    /// far: the calls [`FaultOp::Any`] counts (to enumerate fault positions along a
    /// workload).
    pub fn io_calls(&self) -> u64 {
        self.state().io_calls
    }

    /// How many operations are pending (not yet durable).
    pub fn pending_ops(&self) -> usize {
        self.state().log.len()
    }

    /// The live contents of a file (what reads see), if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state();
        let ino = st.live.files.get(path)?;
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
        let st = self.state();
        if !st.durable.reachable(path) {
            return None;
        }
        let ino = st.durable.files.get(path)?;
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
        let mut st = self.state();
        let ino = *st.live.files.get(path).ok_or_else(|| not_found(path))?;
        let inode = st.inode(ino);
        apply_write(&mut inode.live, bytes, offset)?;
        apply_write(&mut inode.durable, bytes, offset)
    }
}

/// Applies the write of `data` at `offset` to `file` torn at sector boundaries: each piece
/// within one sector holds the new bytes, keeps the old ones, or (with `garbage`) random
/// ones. Returns whether every piece got the new bytes (the write landed whole after all).
fn tear(
    rng: &mut Rng,
    file: &mut Vec<u8>,
    offset: usize,
    data: &[u8],
    garbage: bool,
    report: &mut CrashReport,
) -> bool {
    let end = offset + data.len();
    let mut pos = offset;
    let mut whole = true;
    while pos < end {
        let piece_end = ((pos / SECTOR + 1) * SECTOR).min(end);
        // INVARIANT: `offset <= pos < piece_end <= end = offset + data.len()`, so the range
        // lies in `0..data.len()`.
        let src = &data[pos - offset..piece_end - offset];
        match rng.next() % if garbage { 3 } else { 2 } {
            0 => splice(file, src, pos),
            1 => {
                whole = false;
                report.torn_sectors += 1;
            }
            _ => {
                whole = false;
                report.garbage_sectors += 1;
                let noise: Vec<u8> = src.iter().map(|_| rng.next().to_le_bytes()[0]).collect();
                splice(file, &noise, pos);
            }
        }
        pos = piece_end;
    }
    whole
}

/// Writes `buf` at `start`, growing `data` as needed. Offsets in the log were validated
/// when the operation was accepted, so this cannot fail.
fn splice(data: &mut Vec<u8>, buf: &[u8], start: usize) {
    let end = start + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    // INVARIANT: `data` was just grown to at least `end` bytes, and `start <= end`.
    data[start..end].copy_from_slice(buf);
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every mutation keeps the maps consistent between statements, so a panicking test
    // thread cannot leave a state that later calls misread.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Vfs for CrashVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut st = self.state();
        st.check_power()?;
        let ino = match (st.live.files.get(path).copied(), mode) {
            (Some(_), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            (Some(ino), _) => ino,
            (None, OpenMode::ReadOnly | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, OpenMode::CreateNew | OpenMode::OpenOrCreate) => {
                let dir = parent_dir(path);
                if !st.live.has_dir(&dir) {
                    return Err(no_dir(&dir));
                }
                if st.live.dirs.contains(path) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a directory", path.display()),
                    ));
                }
                st.check_fault(FaultOp::Namespace)?;
                let ino = Ino(st.next_ino);
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::default());
                st.live.files.insert(path.to_path_buf(), ino);
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
        let mut st = self.state();
        st.check_fault(FaultOp::Namespace)?;
        let ino = *st.live.files.get(from).ok_or_else(|| not_found(from))?;
        let dir = parent_dir(to);
        if !st.live.has_dir(&dir) {
            return Err(no_dir(&dir));
        }
        st.live.files.remove(from);
        st.live.files.insert(to.to_path_buf(), ino);
        st.log.push(LogOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.check_fault(FaultOp::Namespace)?;
        st.live.files.remove(path).ok_or_else(|| not_found(path))?;
        st.log.push(LogOp::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let st = self.state();
        st.check_power()?;
        Ok(st.live.files.contains_key(path) || st.live.has_dir(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let st = self.state();
        st.check_power()?;
        if !st.live.has_dir(dir) {
            return Err(no_dir(dir));
        }
        Ok(st
            .live
            .files
            .keys()
            .filter(|p| parent_dir(p) == dir)
            .cloned()
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.check_fault(FaultOp::Namespace)?;
        // The directories to create, outermost first; a file in the way is an error and
        // leaves nothing created.
        let mut missing = Vec::new();
        for a in dir.ancestors() {
            if st.live.has_dir(a) {
                break;
            }
            if st.live.files.contains_key(a) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", a.display()),
                ));
            }
            missing.push(a.to_path_buf());
        }
        for path in missing.into_iter().rev() {
            st.live.dirs.insert(path.clone());
            st.log.push(LogOp::CreateDir { path });
        }
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        let mut st = self.state();
        st.check_power()?;
        if st.locks.contains_key(path) {
            return Err(lock_held(path));
        }
        let epoch = st.epoch;
        st.locks.insert(path.to_path_buf(), epoch);
        Ok(VfsLock::new(CrashLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
            epoch,
        }))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.check_fault(FaultOp::Sync)?;
        if !st.live.has_dir(dir) {
            return Err(no_dir(dir));
        }
        // Like a journaling file system, namespace operations become durable in the order
        // they were issued: syncing `dir` commits every pending namespace operation up to
        // the last one that touches it (so a rename into `dir` of a file created elsewhere
        // takes its create along, and a file created in a new directory takes the
        // directory's creation along). Data writes stay pending.
        let Some(last) = st.log.iter().rposition(|op| op.touches_dir(dir)) else {
            return Ok(());
        };
        let log = std::mem::take(&mut st.log);
        let mut rest = Vec::with_capacity(log.len());
        for (i, op) in log.into_iter().enumerate() {
            if i <= last && !op.is_data() {
                st.durable.apply(&op);
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
        buf.copy_from_slice(check_read(data, buf, offset)?);
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
