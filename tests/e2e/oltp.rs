//! Transactions made durable through the WAL, cut off by power failures.
//!
//! Threads move money between accounts in snapshot-isolated transactions whose commit log
//! is the WAL: under the commit ordering the write set (with its commit timestamp) is
//! appended without waiting, outside it the commit waits for the fsync and gets the
//! record's LSN, which the store is handed on apply. Meanwhile a checkpointer keeps taking
//! checkpoints of the store: its contents and the LSN of the last commit applied. The power
//! is cut at a random I/O call — mostly between a commit's log step and its apply, while it
//! waits for the fsync — and the machine reboots under a random crash mode.
//!
//! Checked every time: the recovered log holds its records in commit-timestamp order; every
//! commit whose `commit` returned is in the log, whole, at the LSN it reported; recovery
//! from every checkpoint — its contents plus the records above its LSN, in log order —
//! rebuilds exactly what replaying the whole log does, so no record the cut left durable is
//! missed (with log order not timestamp order, a durable record of a commit not yet applied
//! could sit below a checkpoint's LSN); the rebuilt balances add up to what the first
//! transaction deposited (no transfer is half there, none is lost from one side only); when
//! the cut came after the work, the rebuilt state equals the live store's. 300 scenarios by default (`LIGHTNING_TEST_SCALE=N` for N
//! times as many, `LIGHTNING_TEST_SEED=S` to replay one).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lightning_mvcc::{
    CommitLog, Error, Isolation, KeyRange, LogError, MemStore, Timestamp, TxnManager, VersionList,
    VersionScan, VersionStore, VersionValue, WriteSet,
};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};
use lightning_wal::{Appended, Durability, Lsn, Wal, WalOptions};

const ACCOUNTS: u64 = 8;
const OPENING: i64 = 100;
const RECORD: u8 = 1;
/// Records of some other keyspace, written when the power goes: never acknowledged.
const IN_FLIGHT: u8 = 2;

type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn account(i: u64) -> Vec<u8> {
    format!("account:{i}").into_bytes()
}

/// The log record of a commit: timestamp, then each write as key length, key, value
/// length (`u32::MAX` for a deletion) and value.
fn encode(ts: Timestamp, writes: &WriteSet) -> Vec<u8> {
    let mut out = ts.get().to_le_bytes().to_vec();
    for (k, v) in writes.iter() {
        out.extend_from_slice(&u32::try_from(k.len()).unwrap().to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.extend_from_slice(&u32::try_from(v.len()).unwrap().to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
    out
}

fn decode(mut p: &[u8]) -> Result<(u64, Writes), String> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        let (head, rest) = p.split_at_checked(n).ok_or("record cut short")?;
        *p = rest;
        Ok(head)
    }
    let u32_at = |p: &mut &[u8]| -> Result<u32, String> {
        Ok(u32::from_le_bytes(take(p, 4)?.try_into().unwrap()))
    };
    let ts = u64::from_le_bytes(take(&mut p, 8)?.try_into().unwrap());
    let mut writes = Vec::new();
    while !p.is_empty() {
        let klen = u32_at(&mut p)? as usize;
        let key = take(&mut p, klen)?.to_vec();
        let value = match u32_at(&mut p)? {
            u32::MAX => None,
            vlen => Some(take(&mut p, vlen as usize)?.to_vec()),
        };
        writes.push((key, value));
    }
    Ok((ts, writes))
}

fn balance(v: &[u8]) -> i64 {
    i64::from_le_bytes(v.try_into().unwrap())
}

/// The WAL as the commit log: the record is queued under the commit ordering
/// (`Durability::None`: no waiting there), and the commit waits for the group commit's
/// fsync outside it.
struct WalLog<'a> {
    wal: &'a Wal,
}

impl CommitLog for WalLog<'_> {
    type Ticket = Appended;

    fn log(&self, writes: &WriteSet, ts: Timestamp) -> Result<Appended, LogError> {
        Ok(self
            .wal
            .append(RECORD, &encode(ts, writes), Durability::None)?)
    }

    fn wait(&self, appended: Appended) -> Result<Lsn, LogError> {
        appended.wait()?;
        Ok(appended.lsn())
    }
}

/// Accounts and balances.
type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A checkpoint: the store's contents and the LSN they reach.
#[derive(Debug, Clone)]
struct Checkpoint {
    lsn: Lsn,
    state: State,
}

/// The in-memory store, remembering the LSN of the last commit applied, so that a
/// checkpoint can say which LSN its contents reach (as the database's B+trees will).
#[derive(Debug, Default)]
struct CheckpointStore {
    inner: MemStore,
    /// Held while a commit is applied: a checkpoint sees none half applied.
    applied: Mutex<Lsn>,
}

impl CheckpointStore {
    fn checkpoint(&self) -> Result<Checkpoint, String> {
        let applied = self.applied.lock().unwrap();
        let mut state = BTreeMap::new();
        for row in self
            .inner
            .scan((std::ops::Bound::Unbounded, std::ops::Bound::Unbounded))
        {
            let (key, versions) = row.map_err(|e| e.to_string())?;
            match versions
                .into_visible(Timestamp::new(u64::MAX))
                .map(|v| v.value)
            {
                Some(VersionValue::Value(v)) => state.insert(key, v),
                Some(VersionValue::Tombstone) | None => None,
                Some(VersionValue::Overflow { .. }) => return Err("an overflow value".into()),
            };
        }
        Ok(Checkpoint {
            lsn: *applied,
            state,
        })
    }
}

impl VersionStore for CheckpointStore {
    fn versions(&self, key: &[u8]) -> lightning_mvcc::Result<VersionList> {
        self.inner.versions(key)
    }

    fn scan(&self, range: KeyRange) -> VersionScan<'_> {
        self.inner.scan(range)
    }

    fn apply(
        &self,
        commit_ts: Timestamp,
        lsn: Lsn,
        writes: &WriteSet,
        oldest_active: Timestamp,
    ) -> lightning_mvcc::Result<()> {
        let mut applied = self.applied.lock().unwrap();
        self.inner.apply(commit_ts, lsn, writes, oldest_active)?;
        *applied = lsn;
        Ok(())
    }
}

type Store = CheckpointStore;

/// Moves money until `transfers` commits or the log refuses; returns the timestamps and
/// LSNs of the commits that returned.
fn teller(mgr: &TxnManager<Store>, wal: &Wal, rng: &mut Rng, transfers: u64) -> Vec<(u64, Lsn)> {
    let log = WalLog { wal };
    let mut acked = Vec::new();
    let mut attempts = 0;
    while (acked.len() as u64) < transfers && attempts < transfers * 20 {
        attempts += 1;
        let (from, to) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
        if from == to {
            continue;
        }
        let amount = 1 + i64::try_from(rng.below(20)).unwrap();
        let mut t = mgr.begin(Isolation::Snapshot);
        let (Some(a), Some(b)) = (t.get(&account(from)).unwrap(), t.get(&account(to)).unwrap())
        else {
            return acked; // The opening deposit never became durable.
        };
        t.put(&account(from), &(balance(&a) - amount).to_le_bytes())
            .unwrap();
        t.put(&account(to), &(balance(&b) + amount).to_le_bytes())
            .unwrap();
        match t.commit(&log) {
            Ok(c) => acked.push((c.ts.get(), c.lsn.unwrap())),
            Err(Error::Conflict(_)) => {}
            Err(Error::LogFailed { .. } | Error::NotDurable { .. }) => return acked,
            Err(e) => panic!("{e}"),
        }
    }
    acked
}

/// Every commit in the recovered log, in log order: (LSN, commit timestamp, writes). Fails
/// if log order is not commit-timestamp order.
fn logged_commits(wal: &Wal) -> Result<Vec<(Lsn, u64, Writes)>, String> {
    let mut commits: Vec<(Lsn, u64, Writes)> = Vec::new();
    for r in wal.read_from(Lsn::new(1)).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        if r.record_type != RECORD {
            continue;
        }
        let (ts, writes) = decode(&r.payload)?;
        if let Some((lsn, before, _)) = commits.last()
            && *before >= ts
        {
            return Err(format!(
                "log order is not commit-timestamp order: commit {ts} at LSN {} follows \
                 commit {before} at LSN {lsn}",
                r.lsn
            ));
        }
        commits.push((r.lsn, ts, writes));
    }
    Ok(commits)
}

/// `state` with the commits applied in log order.
fn replay<'a>(
    mut state: State,
    commits: impl IntoIterator<Item = &'a (Lsn, u64, Writes)>,
) -> State {
    for (_, _, writes) in commits {
        for (k, v) in writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
    state
}

/// Recovery from `cp`: its contents, then every record above its LSN, in log order.
fn recover_from(cp: &Checkpoint, commits: &[(Lsn, u64, Writes)]) -> State {
    replay(
        cp.state.clone(),
        commits.iter().filter(|(lsn, _, _)| *lsn > cp.lsn),
    )
}

/// Checks the recovered log against what the run saw: every acknowledged commit at the LSN
/// it reported, and recovery from every checkpoint equal to replaying the whole log.
/// Returns the replayed state and how many records belong to commits that never returned.
fn check_recovery(
    commits: &[(Lsn, u64, Writes)],
    acked: &BTreeMap<u64, Lsn>,
    checkpoints: &BTreeMap<Lsn, Checkpoint>,
) -> Result<(State, u64), String> {
    let at: BTreeMap<Lsn, u64> = commits.iter().map(|(lsn, ts, _)| (*lsn, *ts)).collect();
    for (ts, lsn) in acked {
        match at.get(lsn) {
            Some(t) if t == ts => {}
            Some(t) => {
                return Err(format!(
                    "commit {ts} reported LSN {lsn}, which holds commit {t}"
                ));
            }
            None => {
                return Err(format!(
                    "acknowledged commit {ts} (LSN {lsn}) missing from the log"
                ));
            }
        }
    }
    let state = replay(BTreeMap::new(), commits);
    for cp in checkpoints.values() {
        if cp.lsn > Lsn::ZERO && !at.contains_key(&cp.lsn) {
            return Err(format!("the checkpoint's LSN {} is not in the log", cp.lsn));
        }
        if recover_from(cp, commits) != state {
            return Err(format!(
                "recovery from the checkpoint at LSN {} misses or repeats commits the log \
                 holds",
                cp.lsn
            ));
        }
    }
    let durable_unapplied = commits
        .iter()
        .filter(|(_, ts, _)| !acked.contains_key(ts))
        .count() as u64;
    Ok((state, durable_unapplied))
}

/// The tellers' transfers, with a checkpointer taking checkpoints until they are done.
/// Returns the acknowledged commits and the checkpoints.
fn work(
    mgr: &TxnManager<Store>,
    wal: &Wal,
    seed: u64,
    tellers: u64,
    transfers: u64,
) -> (Vec<(u64, Lsn)>, Vec<Checkpoint>) {
    let acked = Mutex::new(Vec::new());
    let taken = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let tellers: Vec<_> = (0..tellers)
            .map(|t| {
                let acked = &acked;
                s.spawn(move || {
                    let mut trng = Rng::new(seed * 131 + t);
                    let mine = teller(mgr, wal, &mut trng, transfers);
                    acked.lock().unwrap().extend(mine);
                })
            })
            .collect();
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let cp = mgr.store().checkpoint().unwrap();
                let mut taken = taken.lock().unwrap();
                if taken
                    .last()
                    .is_none_or(|last: &Checkpoint| last.lsn != cp.lsn)
                {
                    taken.push(cp);
                }
                drop(taken);
                std::thread::yield_now();
            }
        });
        for t in tellers {
            t.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    (acked.into_inner().unwrap(), taken.into_inner().unwrap())
}

/// Scenarios cut during the work, after it, and commits acknowledged in all.
#[derive(Debug, Default)]
struct Tally {
    during: u64,
    after: u64,
    acked: u64,
    /// Records the cut left durable whose commits never returned (never applied).
    durable_unapplied: u64,
    /// Checkpoints recovered from.
    checkpoints: u64,
}

/// The power goes out after the work, while later records that nobody waits for are being
/// written (a cut that finds nothing pending proves nothing about losing it).
fn power_cut_while_writing(wal: &Wal, vfs: &CrashVfs, rng: &mut Rng, seed: u64) {
    for i in 0..2 + rng.below(6) {
        let len = usize::try_from(200 + rng.below(600)).unwrap();
        if wal
            .append(IN_FLIGHT, &Rng::new(seed ^ i).bytes(len), Durability::None)
            .is_err()
        {
            break;
        }
    }
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth: 0,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
}

fn scenario(seed: u64, tally: &Mutex<Tally>) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let opts = WalOptions {
        segment_size: [4096, 65536][usize::try_from(rng.below(2)).unwrap()],
        flush_interval: std::time::Duration::ZERO,
        // Non-durable records are written out (not fsynced) once 1 KiB of them waits.
        buffer_limit: 1024,
        ..WalOptions::default()
    };
    let tellers = 2 + rng.below(3);
    let transfers = 5 + rng.below(25);
    let nth = rng.below(tellers * transfers * 4);
    vfs.inject(Fault {
        op: FaultOp::Any,
        nth,
        permanent: true,
        kind: FaultKind::PowerCut,
    });
    let dir = Path::new("db/wal");
    let mgr = TxnManager::new(Arc::new(Store::default()), Timestamp::new(0));
    // Acknowledged commits: timestamp -> the LSN `commit` reported.
    let mut acked: BTreeMap<u64, Lsn> = BTreeMap::new();
    // Checkpoints taken while the tellers work, one per LSN reached.
    let mut checkpoints: BTreeMap<Lsn, Checkpoint> = BTreeMap::new();
    let mut cut_during_work = true;
    if let Ok(wal) = Wal::open(vfs.clone(), dir, opts.clone()) {
        let mut open = mgr.begin(Isolation::Snapshot);
        for i in 0..ACCOUNTS {
            open.put(&account(i), &OPENING.to_le_bytes()).unwrap();
        }
        let log = WalLog { wal: &wal };
        if let Ok(c) = open.commit(&log) {
            acked.insert(c.ts.get(), c.lsn.unwrap());
            let (tellers_acked, taken) = work(&mgr, &wal, seed, tellers, transfers);
            acked.extend(tellers_acked);
            for cp in taken {
                checkpoints.insert(cp.lsn, cp);
            }
        }
        // The fault fires at the `nth` call (0-based) after injection, which came first.
        cut_during_work = vfs.io_calls() > nth;
        if !cut_during_work {
            power_cut_while_writing(&wal, &vfs, &mut rng, seed);
        }
        // No clean shutdown reaches the device.
        drop(wal);
    }
    let report = vfs.crash(CrashMode::from_index(rng.next_u64()));

    let wal = Wal::open(vfs.clone(), dir, opts).map_err(|e| format!("reopen: {e}"))?;
    let commits = logged_commits(&wal)?;
    let (state, durable_unapplied) = check_recovery(&commits, &acked, &checkpoints)?;
    let total: i64 = state.values().map(|v| balance(v)).sum();
    let expected = if state.is_empty() {
        0
    } else {
        OPENING * i64::try_from(ACCOUNTS).unwrap()
    };
    if total != expected || (!state.is_empty() && state.len() as u64 != ACCOUNTS) {
        return Err(format!(
            "rebuilt balances add up to {total} over {} accounts (expected {expected})",
            state.len()
        ));
    }
    let mut t = tally.lock().unwrap();
    t.acked += acked.len() as u64;
    t.durable_unapplied += durable_unapplied;
    t.checkpoints += checkpoints.len() as u64;
    if cut_during_work {
        t.during += 1;
    } else {
        // Nothing was cut short: the log rebuilds exactly what the live store holds.
        t.after += 1;
        drop(t);
        if mgr.store().checkpoint()?.state != state {
            return Err("the log and the live store disagree".into());
        }
    }
    Ok(Outcome::crash(report.pending, report.kept))
}

#[test]
fn transfers_made_durable_through_the_wal_survive_power_cuts() {
    let tally = Mutex::new(Tally::default());
    let run = run_seeds("oltp crash", scaled(300), |seed| scenario(seed, &tally));
    let t = tally.into_inner().unwrap();
    println!("{run}; {t:?}");
    let ran = run.scenarios;
    assert_eq!(ran, scaled(300), "{run}");
    assert!(
        t.during > ran / 4 && t.after > 0,
        "both kinds of cut: {t:?}"
    );
    assert!(
        t.acked > ran * 5,
        "transfers must commit before the cuts: {t:?}"
    );
    // Cuts between a commit's log step and its apply leave records durable that were never
    // applied (nor acknowledged), and recovery from checkpoints must replay them.
    assert!(
        t.durable_unapplied > 0 && t.checkpoints > ran,
        "durable records of unapplied commits, and checkpoints, must occur: {t:?}"
    );
    // The cuts lose unsynced WAL writes (the tail of a group commit, preallocation, a
    // segment's creation), not only land where nothing is pending.
    run.assert_dropping(30);
}
