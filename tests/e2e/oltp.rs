//! Transactions made durable through the WAL, cut off by power failures.
//!
//! Threads move money between accounts in snapshot-isolated transactions whose durability
//! step appends the write set (with its commit timestamp) to the WAL and waits for the
//! fsync. The power is cut at a random I/O call; the machine reboots under a random crash
//! mode; the state is rebuilt by replaying the recovered log in timestamp order.
//!
//! Checked every time: every commit whose `commit` returned is in the log, whole; the
//! rebuilt balances add up to what the first transaction deposited (no transfer is half
//! there, none is lost from one side only); when the cut came after the work, the rebuilt
//! state equals the live store's. 300 scenarios by default (`LIGHTNING_TEST_SCALE=N` for N
//! times as many, `LIGHTNING_TEST_SEED=S` to replay one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use lightning_mvcc::{
    Error, Isolation, MemStore, Timestamp, TxnManager, VersionStore, VersionValue,
};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};
use lightning_wal::{Durability, Lsn, Wal, WalOptions};

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
fn encode(ts: Timestamp, writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut out = ts.get().to_le_bytes().to_vec();
    for (k, v) in writes {
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

/// Moves money until `transfers` commits or the log refuses; returns the timestamps of the
/// commits that returned.
fn teller(mgr: &TxnManager<MemStore>, wal: &Wal, rng: &mut Rng, transfers: u64) -> Vec<u64> {
    let durable = |ts: Timestamp, writes: &[(Vec<u8>, Option<Vec<u8>>)]| {
        wal.append(RECORD, &encode(ts, writes), Durability::Immediate)
            .map(drop)
            .map_err(|e| e.to_string())
    };
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
        match t.commit(&durable) {
            Ok(ts) => acked.push(ts.get()),
            Err(Error::Conflict(_)) => {}
            Err(Error::Durability(_)) => return acked,
            Err(e) => panic!("{e}"),
        }
    }
    acked
}

/// Every commit in the recovered log, by timestamp.
fn logged_commits(wal: &Wal) -> Result<BTreeMap<u64, Writes>, String> {
    let mut commits = BTreeMap::new();
    for r in wal.read_from(Lsn::new(1)).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        if r.record_type == IN_FLIGHT {
            continue;
        }
        let (ts, writes) = decode(&r.payload)?;
        if commits.insert(ts, writes).is_some() {
            return Err(format!("commit {ts} logged twice"));
        }
    }
    Ok(commits)
}

/// The state the commits leave, applied in timestamp order (the log holds them in the
/// order they became durable, which may differ for commits that did not conflict).
fn replay(commits: &BTreeMap<u64, Writes>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut state = BTreeMap::new();
    for writes in commits.values() {
        for (k, v) in writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
    state
}

/// Scenarios cut during the work, after it, and commits acknowledged in all.
#[derive(Debug, Default)]
struct Tally {
    during: u64,
    after: u64,
    acked: u64,
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
    let mgr = TxnManager::new(Arc::new(MemStore::new()), Timestamp::new(0));
    let mut acked = BTreeSet::new();
    let mut cut_during_work = true;
    if let Ok(wal) = Wal::open(vfs.clone(), dir, opts.clone()) {
        let mut open = mgr.begin(Isolation::Snapshot);
        for i in 0..ACCOUNTS {
            open.put(&account(i), &OPENING.to_le_bytes()).unwrap();
        }
        let durable = |ts: Timestamp, writes: &[(Vec<u8>, Option<Vec<u8>>)]| {
            wal.append(RECORD, &encode(ts, writes), Durability::Immediate)
                .map(drop)
                .map_err(|e| e.to_string())
        };
        if let Ok(ts) = open.commit(&durable) {
            acked.insert(ts.get());
            let all = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for t in 0..tellers {
                    let (mgr, wal, all) = (&mgr, &wal, &all);
                    s.spawn(move || {
                        let mut trng = Rng::new(seed * 131 + t);
                        let mine = teller(mgr, wal, &mut trng, transfers);
                        all.lock().unwrap().extend(mine);
                    });
                }
            });
            acked.extend(all.into_inner().unwrap());
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
    if let Some(lost) = acked.iter().find(|ts| !commits.contains_key(ts)) {
        return Err(format!("acknowledged commit {lost} missing from the log"));
    }
    let state = replay(&commits);
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
    if cut_during_work {
        t.during += 1;
    } else {
        // Nothing was cut short: the log rebuilds exactly what the live store holds.
        t.after += 1;
        drop(t);
        for i in 0..ACCOUNTS {
            let live = mgr
                .store()
                .visible(&account(i), Timestamp::new(u64::MAX))
                .map_err(|e| e.to_string())?
                .and_then(|v| match v.value {
                    VersionValue::Value(b) => Some(b),
                    _ => None,
                });
            if live.as_ref() != state.get(&account(i)) {
                return Err(format!("account {i}: log and live store disagree"));
            }
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
    // The cuts lose unsynced WAL writes (the tail of a group commit, preallocation, a
    // segment's creation), not only land where nothing is pending.
    run.assert_dropping(30);
}
