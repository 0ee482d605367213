//! The lock manager of pessimistic transactions: shared and exclusive key locks, FIFO
//! queues, upgrades, a lock-wait timeout, and deadlock detection on a wait-for graph.
//!
//! When a transaction starts to wait, its wait-for edges (to the holders and to the earlier
//! queued requests it conflicts with) are added and the graph is searched for a cycle through
//! it at that moment. Exactly one member of a cycle is chosen as victim — the youngest (the
//! highest transaction id) — and its wait fails with [`Error::Deadlock`]; the others proceed
//! once it releases its locks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Identifies a transaction (to the lock manager, and in [`Error::Deadlock`]); younger
/// transactions have higher ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(u64);

impl TxnId {
    /// A transaction id.
    pub const fn new(id: u64) -> Self {
        TxnId(id)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for TxnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a key is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders may read.
    Shared,
    /// One holder may write.
    Exclusive,
}

impl LockMode {
    fn compatible(self, other: LockMode) -> bool {
        self == LockMode::Shared && other == LockMode::Shared
    }
}

#[derive(Debug, Default)]
struct KeyLock {
    holders: Vec<(TxnId, LockMode)>,
    queue: VecDeque<(TxnId, LockMode)>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<Vec<u8>, KeyLock>,
    held: HashMap<TxnId, HashSet<Vec<u8>>>,
    waits_for: HashMap<TxnId, HashSet<TxnId>>,
    victims: HashSet<TxnId>,
    waits: u64,
    wait_time: Duration,
    deadlocks: u64,
    timeouts: u64,
}

/// Counters of the lock manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    /// Requests that had to wait. A request is counted when it joins the queue, under the
    /// same mutex that adds its wait-for edges and runs the deadlock check: once `waits`
    /// reads `n`, `n` requests have queued and been checked (tests poll it to know that a
    /// waiter is in line).
    pub waits: u64,
    /// Total time spent waiting.
    pub wait_time: Duration,
    /// Deadlocks detected (one victim each).
    pub deadlocks: u64,
    /// Waits that ran into the timeout.
    pub timeouts: u64,
}

/// Key locks with FIFO queues, upgrades, a lock-wait timeout and deadlock detection.
///
/// When a transaction starts to wait, its wait-for edges (to the holders and to the earlier
/// queued requests it conflicts with) are added and the graph is searched for a cycle through
/// it at that moment. Exactly one member of a cycle is chosen as victim — the youngest (the
/// highest transaction id) — and its wait fails with [`Error::Deadlock`]; the others proceed
/// once it releases its locks.
#[derive(Debug)]
pub struct LockManager {
    state: Mutex<State>,
    changed: Condvar,
    timeout: Duration,
}

impl LockManager {
    /// A lock manager whose waits give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        LockManager {
            state: Mutex::default(),
            changed: Condvar::new(),
            timeout,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counters so far.
    pub fn stats(&self) -> LockStats {
        let s = self.state();
        LockStats {
            waits: s.waits,
            wait_time: s.wait_time,
            deadlocks: s.deadlocks,
            timeouts: s.timeouts,
        }
    }

    /// Locks `key` for `txn` in `mode`, waiting in FIFO order behind conflicting requests.
    /// Holding a shared lock and asking for exclusive upgrades it. Fails with
    /// [`Error::Deadlock`] if this wait closes a cycle and `txn` is its youngest member (or
    /// another wait chose `txn` as victim), and with [`Error::LockTimeout`] after the timeout.
    pub fn lock(&self, txn: TxnId, key: &[u8], mode: LockMode) -> Result<()> {
        let mut st = self.state();
        let start = Instant::now();
        let mut queued = false;
        loop {
            if st.victims.remove(&txn) {
                Self::leave_queue(&mut st, txn, key);
                st.waits_for.remove(&txn);
                self.changed.notify_all();
                return Err(Error::Deadlock { txn });
            }
            let lock = st.keys.entry(key.to_vec()).or_default();
            let mine = lock.holders.iter().position(|(t, _)| *t == txn);
            if let Some(i) = mine
                // INVARIANT: `i < lock.holders.len()`: `position` over `lock.holders` found it.
                && (lock.holders[i].1 == LockMode::Exclusive || mode == LockMode::Shared)
            {
                return Ok(()); // already held strongly enough
            }
            let others_compatible = lock
                .holders
                .iter()
                .all(|(t, m)| *t == txn || m.compatible(mode));
            // FIFO: nobody queued ahead of us (an upgrade jumps the queue: it already holds).
            let first_in_line = mine.is_some()
                || lock
                    .queue
                    .iter()
                    .take_while(|(t, _)| *t != txn)
                    .next()
                    .is_none();
            if others_compatible && first_in_line {
                lock.queue.retain(|(t, _)| *t != txn);
                match mine {
                    // INVARIANT: `i < lock.holders.len()`: `position` found it, and nothing
                    // since has removed a holder (only the queue changed).
                    Some(i) => lock.holders[i].1 = mode,
                    None => lock.holders.push((txn, mode)),
                }
                let others_waiting = !lock.queue.is_empty();
                st.held.entry(txn).or_default().insert(key.to_vec());
                if st.waits_for.remove(&txn).is_some() {
                    st.wait_time += start.elapsed();
                }
                // Requests queued behind this one may be grantable now (two shared requests
                // behind an exclusive holder): let them look.
                if queued && others_waiting {
                    self.changed.notify_all();
                }
                return Ok(());
            }
            if !queued {
                if mine.is_some() {
                    lock.queue.push_front((txn, mode));
                } else {
                    lock.queue.push_back((txn, mode));
                }
                queued = true;
                st.waits += 1;
            }
            // Wait-for edges: holders that conflict, and conflicting requests ahead in line.
            // INVARIANT: `key` is in `st.keys`: `entry(..).or_default()` above put it there,
            // and the state lock has been held since, with no removal of keys in between.
            let lock = &st.keys[key];
            let mut blockers: HashSet<TxnId> = lock
                .holders
                .iter()
                .filter(|(t, m)| *t != txn && !m.compatible(mode))
                .map(|(t, _)| *t)
                .collect();
            for (t, m) in lock.queue.iter().take_while(|(t, _)| *t != txn) {
                if !m.compatible(mode) || !mode.compatible(*m) {
                    blockers.insert(*t);
                }
            }
            st.waits_for.insert(txn, blockers);
            if let Some(cycle) = Self::cycle_through(&st.waits_for, txn) {
                let victim = cycle.iter().copied().max().unwrap_or(txn);
                st.deadlocks += 1;
                tracing::debug!(%victim, members = cycle.len(), "deadlock detected");
                if victim == txn {
                    Self::leave_queue(&mut st, txn, key);
                    st.waits_for.remove(&txn);
                    self.changed.notify_all();
                    return Err(Error::Deadlock { txn });
                }
                // The victim's edges go now, so the same cycle is not found again before it
                // wakes up and leaves.
                st.waits_for.remove(&victim);
                st.victims.insert(victim);
                self.changed.notify_all();
            }
            let left = self.timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                Self::leave_queue(&mut st, txn, key);
                st.waits_for.remove(&txn);
                st.timeouts += 1;
                st.wait_time += start.elapsed();
                self.changed.notify_all();
                return Err(Error::LockTimeout {
                    waited: start.elapsed(),
                });
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn leave_queue(st: &mut State, txn: TxnId, key: &[u8]) {
        // Nobody waits for a request that is gone: drop the edges to it, or a later wait
        // could close a cycle that does not exist.
        for deps in st.waits_for.values_mut() {
            deps.remove(&txn);
        }
        if let Some(lock) = st.keys.get_mut(key) {
            lock.queue.retain(|(t, _)| *t != txn);
            if lock.holders.is_empty() && lock.queue.is_empty() {
                st.keys.remove(key);
            }
        }
    }

    /// A cycle in the wait-for graph through `start`, if any (its members).
    fn cycle_through(graph: &HashMap<TxnId, HashSet<TxnId>>, start: TxnId) -> Option<Vec<TxnId>> {
        // Iterative depth-first search keeping the path.
        let mut path = vec![start];
        let mut stack: Vec<Vec<TxnId>> = vec![
            graph
                .get(&start)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
        ];
        let mut seen: HashSet<TxnId> = HashSet::from([start]);
        while let Some(frontier) = stack.last_mut() {
            let Some(next) = frontier.pop() else {
                stack.pop();
                path.pop();
                continue;
            };
            if next == start {
                return Some(path);
            }
            if seen.insert(next) {
                path.push(next);
                stack.push(
                    graph
                        .get(&next)
                        .map(|s| s.iter().copied().collect())
                        .unwrap_or_default(),
                );
            }
        }
        None
    }

    /// Releases every lock `txn` holds or waits for, and wakes waiters.
    pub fn release_all(&self, txn: TxnId) {
        let mut st = self.state();
        let keys = st.held.remove(&txn).unwrap_or_default();
        for key in keys {
            if let Some(lock) = st.keys.get_mut(&key) {
                lock.holders.retain(|(t, _)| *t != txn);
                if lock.holders.is_empty() && lock.queue.is_empty() {
                    st.keys.remove(&key);
                }
            }
        }
        st.waits_for.remove(&txn);
        st.victims.remove(&txn);
        for deps in st.waits_for.values_mut() {
            deps.remove(&txn);
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_and_exclusive_waits() {
        let m = LockManager::new(Duration::from_millis(30));
        m.lock(TxnId::new(1), b"k", LockMode::Shared).unwrap();
        m.lock(TxnId::new(2), b"k", LockMode::Shared).unwrap();
        assert!(matches!(
            m.lock(TxnId::new(3), b"k", LockMode::Exclusive),
            Err(Error::LockTimeout { .. })
        ));
        m.release_all(TxnId::new(1));
        m.release_all(TxnId::new(2));
        m.lock(TxnId::new(3), b"k", LockMode::Exclusive).unwrap();
        assert_eq!(m.stats().timeouts, 1);
    }

    #[test]
    fn a_sole_shared_holder_upgrades() {
        let m = LockManager::new(Duration::from_millis(30));
        m.lock(TxnId::new(1), b"k", LockMode::Shared).unwrap();
        m.lock(TxnId::new(1), b"k", LockMode::Exclusive).unwrap();
        assert!(m.lock(TxnId::new(2), b"k", LockMode::Shared).is_err());
    }

    #[test]
    fn two_way_deadlock_picks_the_youngest() {
        let m = LockManager::new(Duration::from_secs(5));
        m.lock(TxnId::new(1), b"a", LockMode::Exclusive).unwrap();
        m.lock(TxnId::new(2), b"b", LockMode::Exclusive).unwrap();
        std::thread::scope(|s| {
            let older = s.spawn(|| m.lock(TxnId::new(1), b"b", LockMode::Exclusive));
            // 1 waits for `b` first: 2's request closes the cycle and is the victim at once.
            while m.stats().waits < 1 {
                std::thread::yield_now();
            }
            let e = m
                .lock(TxnId::new(2), b"a", LockMode::Exclusive)
                .unwrap_err();
            assert!(
                matches!(e, Error::Deadlock { txn } if txn == TxnId::new(2)),
                "{e}"
            );
            m.release_all(TxnId::new(2));
            older.join().unwrap().unwrap();
        });
        assert_eq!(m.stats().deadlocks, 1);
    }
}
