//! Randomized history checker: threads run random transactions against the in-memory
//! store; every committed history is checked. At Serializable the dependency graph (ww, wr,
//! rw edges) must be acyclic; at Snapshot every read must return the newest version at or
//! before its snapshot and no two concurrent committed transactions may write the same key.
//!
//! 1,000 histories by default (`LIGHTNING_TEST_SCALE=N` for N times as many).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use lightning_mvcc::{
    Isolation, MemStore, Timestamp, TxnManager, VersionStore, VersionValue, in_range,
};
use lightning_testkit::{Rng, run_seeds, scaled};

const KEYS: u64 = 6;

fn key(k: u64) -> Vec<u8> {
    format!("k{k}").into_bytes()
}

/// A value names its writer: "<tag>".
type Tag = u64;

#[derive(Debug, Clone)]
struct Committed {
    tag: Tag,
    read_ts: Timestamp,
    commit_ts: Timestamp,
    /// Reads from the snapshot (not own writes): key -> writer seen (None: absent).
    reads: Vec<(Vec<u8>, Option<Tag>)>,
    /// Keys written.
    writes: Vec<Vec<u8>>,
}

fn parse(v: Option<Vec<u8>>) -> Option<Tag> {
    v.map(|b| String::from_utf8(b).unwrap().parse().unwrap())
}

type Mgr = Arc<TxnManager<MemStore>>;

fn run_history(seed: u64, level: Isolation) -> (Mgr, Vec<Committed>) {
    let mgr = Arc::new(TxnManager::new(
        Arc::new(MemStore::keeping_all_versions()),
        Timestamp::new(0),
    ));
    let log: Mutex<Vec<Committed>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (mgr, log) = (&mgr, &log);
            s.spawn(move || {
                let mut rng = Rng::new(seed * 31 + t);
                for n in 0..6u64 {
                    let tag = 1 + t * 1000 + n;
                    let mut txn = mgr.begin(level);
                    let mut reads = Vec::new();
                    let mut writes: BTreeSet<Vec<u8>> = BTreeSet::new();
                    for _ in 0..=rng.below(4) {
                        // Let the other threads in between operations, so that
                        // transactions overlap instead of running one after another.
                        std::thread::yield_now();
                        let k = key(rng.below(KEYS));
                        match rng.below(10) {
                            0..=3 => {
                                let v = txn.get(&k).unwrap();
                                if !writes.contains(&k) {
                                    reads.push((k, parse(v)));
                                }
                            }
                            4..=6 => {
                                txn.put(&k, tag.to_string().as_bytes()).unwrap();
                                writes.insert(k);
                            }
                            7 => {
                                txn.delete(&k).unwrap();
                                writes.insert(k);
                            }
                            _ => {
                                let a = rng.below(KEYS);
                                let range = (
                                    Bound::Included(key(a)),
                                    Bound::Excluded(key(a + 1 + rng.below(3))),
                                );
                                let scanned: HashMap<Vec<u8>, Vec<u8>> =
                                    txn.scan(range.clone()).unwrap().into_iter().collect();
                                // A scan is a read of every key in its range.
                                for kk in (0..KEYS).map(key).filter(|kk| in_range(&range, kk)) {
                                    if !writes.contains(&kk) {
                                        reads.push((kk.clone(), parse(scanned.get(&kk).cloned())));
                                    }
                                }
                            }
                        }
                    }
                    let read_ts = txn.read_ts();
                    if let Ok(commit_ts) = txn.commit(&|_, _| Ok(())) {
                        log.lock().unwrap().push(Committed {
                            tag,
                            read_ts,
                            commit_ts,
                            reads,
                            writes: writes.into_iter().collect(),
                        });
                    }
                }
            });
        }
    });
    (mgr, log.into_inner().unwrap())
}

fn check(mgr: &TxnManager<MemStore>, txns: &[Committed], level: Isolation) -> Result<(), String> {
    // Version history of each key from the store: (commit_ts, writer tag or None for delete).
    let writer_at: HashMap<Timestamp, Tag> = txns
        .iter()
        .filter(|t| !t.writes.is_empty())
        .map(|t| (t.commit_ts, t.tag))
        .collect();
    let mut history: HashMap<Vec<u8>, Vec<(Timestamp, Option<Tag>)>> = HashMap::new();
    for k in (0..KEYS).map(key) {
        let versions = mgr.store().versions(&k).map_err(|e| e.to_string())?;
        let mut h: Vec<(Timestamp, Option<Tag>)> = versions
            .versions()
            .iter()
            .map(|v| {
                (
                    v.commit_ts,
                    if let VersionValue::Value(b) = &v.value {
                        parse(Some(b.clone()))
                    } else {
                        None
                    },
                )
            })
            .collect();
        h.reverse(); // oldest first
        for (ts, _) in &h {
            if !writer_at.contains_key(ts) {
                return Err(format!("a version at {ts} has no committed writer"));
            }
        }
        history.insert(k, h);
    }
    // Snapshot reads: every read saw the newest version at or before its snapshot.
    for t in txns {
        for (k, seen) in &t.reads {
            let visible = history[k]
                .iter()
                .rev()
                .find(|(ts, _)| *ts <= t.read_ts)
                .and_then(|(_, v)| *v);
            if visible != *seen {
                return Err(format!(
                    "txn {} read {:?} = {seen:?}, snapshot {} holds {visible:?}",
                    t.tag,
                    String::from_utf8_lossy(k),
                    t.read_ts
                ));
            }
        }
    }
    // First committer wins: no two concurrent committed transactions wrote the same key.
    for a in txns {
        for b in txns {
            let concurrent = a.tag < b.tag && a.read_ts < b.commit_ts && b.read_ts < a.commit_ts;
            if concurrent
                && !a.writes.is_empty()
                && !b.writes.is_empty()
                && a.writes.iter().any(|k| b.writes.contains(k))
            {
                return Err(format!(
                    "concurrent txns {} and {} both wrote a key",
                    a.tag, b.tag
                ));
            }
        }
    }
    if level == Isolation::Serializable {
        dependency_graph_is_acyclic(txns, &history, &writer_at)?;
    }
    Ok(())
}

/// Depth-first search from `n`: `true` if it reaches a node on the current path.
fn visit(n: Tag, edges: &HashMap<Tag, Vec<Tag>>, state: &mut HashMap<Tag, u8>) -> bool {
    match state.get(&n) {
        Some(1) => return true,
        Some(2) => return false,
        _ => {}
    }
    state.insert(n, 1);
    for m in edges.get(&n).into_iter().flatten() {
        if visit(*m, edges, state) {
            return true;
        }
    }
    state.insert(n, 2);
    false
}

fn dependency_graph_is_acyclic(
    txns: &[Committed],
    history: &HashMap<Vec<u8>, Vec<(Timestamp, Option<Tag>)>>,
    writer_at: &HashMap<Timestamp, Tag>,
) -> Result<(), String> {
    let mut edges: HashMap<Tag, Vec<Tag>> = HashMap::new();
    let mut add = |a: Tag, b: Tag| {
        if a != b {
            edges.entry(a).or_default().push(b);
        }
    };
    for h in history.values() {
        // ww: consecutive versions.
        for pair in h.windows(2) {
            add(writer_at[&pair[0].0], writer_at[&pair[1].0]);
        }
    }
    for t in txns {
        for (k, _) in &t.reads {
            let h = &history[k];
            let pos = h.iter().rposition(|(ts, _)| *ts <= t.read_ts);
            // wr: the writer of the version read precedes the reader.
            if let Some(p) = pos {
                add(writer_at[&h[p].0], t.tag);
            }
            // rw: the reader precedes whoever wrote the next version.
            let next = pos.map_or(0, |p| p + 1);
            if let Some((ts, _)) = h.get(next) {
                add(t.tag, writer_at[ts]);
            }
        }
    }
    // Depth-first search for a cycle.
    let mut state: HashMap<Tag, u8> = HashMap::new(); // 1 on stack, 2 done
    for t in txns {
        if visit(t.tag, &edges, &mut state) {
            return Err(format!("dependency cycle through txn {}", t.tag));
        }
    }
    Ok(())
}

#[test]
fn serializable_histories_have_acyclic_dependency_graphs() {
    let mut total = 0;
    let mut conflicts = 0;
    let ran = run_seeds("serializable histories", scaled(1000), |seed| {
        let (mgr, txns) = run_history(seed, Isolation::Serializable);
        total += txns.len();
        let s = mgr.stats();
        conflicts += s.write_conflicts + s.read_conflicts + s.phantom_conflicts;
        check(&mgr, &txns, Isolation::Serializable)
    });
    println!(
        "{ran} serializable histories, {total} committed transactions checked, {conflicts} aborted by validation"
    );
    assert!(
        total > usize::try_from(ran).unwrap() * 5,
        "most transactions must commit: {total}"
    );
    assert!(
        conflicts > ran,
        "the histories must be concurrent enough to conflict: {conflicts}"
    );
}

#[test]
fn snapshot_histories_read_their_snapshot_and_first_committer_wins() {
    let mut conflicts = 0;
    run_seeds("snapshot histories", scaled(1000), |seed| {
        let (mgr, txns) = run_history(seed, Isolation::Snapshot);
        conflicts += mgr.stats().write_conflicts;
        check(&mgr, &txns, Isolation::Snapshot)
    });
    assert!(
        conflicts > 0,
        "first-committer-wins must have fired somewhere"
    );
}

#[test]
fn the_checker_finds_dependency_cycles_in_snapshot_histories() {
    // Snapshot isolation permits write skew, so over many histories the serializability
    // check must fail for some: otherwise it could not fail at all.
    let cycles = (0..300)
        .filter(|seed| {
            let (mgr, txns) = run_history(*seed, Isolation::Snapshot);
            check(&mgr, &txns, Isolation::Serializable).is_err()
        })
        .count();
    println!("{cycles} of 300 snapshot histories are not serializable");
    assert!(cycles > 0, "no snapshot history showed a dependency cycle");
}
