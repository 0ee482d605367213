//! Timestamps: the oracle that hands out read and commit timestamps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A logical timestamp: snapshots read at one, commits are stamped with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp.
    pub const fn new(t: u64) -> Self {
        Timestamp(t)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Default)]
struct Clock {
    /// The last commit timestamp handed out.
    last_issued: u64,
    /// Every commit up to this one is applied and visible: new snapshots read here.
    watermark: u64,
    /// Issued commit timestamps not yet finished (applied or abandoned).
    in_flight: BTreeSet<u64>,
    /// Active snapshots: read timestamp -> how many.
    readers: BTreeMap<u64, usize>,
    /// Commits waiting for their turn to apply, each on its own condvar, so that finishing
    /// a commit wakes exactly the one whose turn it now is.
    turns: HashMap<u64, Arc<Condvar>>,
}

/// Hands out timestamps and keeps the watermark of fully applied commits, so that a new
/// snapshot never sees half of a commit, and the oldest active snapshot, for trimming.
#[derive(Debug, Default)]
pub struct TimestampOracle {
    clock: Mutex<Clock>,
    /// Mirror of `Clock::watermark`, for commits polling for their turn without the lock.
    watermark: AtomicU64,
}

/// How long a commit polls for its turn (yielding its core to the commits before it) before
/// it sleeps. The commits it waits for are usually runnable, just not running: yielding
/// hands them the core at once, where sleeping costs a wake-up as long as a whole commit.
const TURN_POLL: Duration = Duration::from_micros(200);

impl TimestampOracle {
    /// An oracle starting after `last_committed` (0 for a new database).
    pub fn new(last_committed: Timestamp) -> Self {
        let clock = Clock {
            last_issued: last_committed.0,
            watermark: last_committed.0,
            ..Clock::default()
        };
        TimestampOracle {
            clock: Mutex::new(clock),
            watermark: AtomicU64::new(last_committed.0),
        }
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a snapshot: returns the read timestamp (the watermark) and registers it.
    pub fn begin_read(&self) -> Timestamp {
        let mut c = self.clock();
        let ts = c.watermark;
        *c.readers.entry(ts).or_default() += 1;
        Timestamp(ts)
    }

    /// Ends a snapshot started by [`begin_read`](Self::begin_read).
    pub fn end_read(&self, ts: Timestamp) {
        let mut c = self.clock();
        if let Some(n) = c.readers.get_mut(&ts.0) {
            *n -= 1;
            if *n == 0 {
                c.readers.remove(&ts.0);
            }
        }
    }

    /// The oldest read timestamp any active snapshot holds, or the watermark if none.
    pub fn oldest_active(&self) -> Timestamp {
        let c = self.clock();
        Timestamp(c.readers.keys().next().copied().unwrap_or(c.watermark))
    }

    /// Issues the next commit timestamp.
    pub fn issue_commit(&self) -> Timestamp {
        self.issue_commit_oldest().0
    }

    /// Issues the next commit timestamp and reads [`oldest_active`](Self::oldest_active) under
    /// the same lock: one acquisition of the clock, not two, on the commit path.
    pub fn issue_commit_oldest(&self) -> (Timestamp, Timestamp) {
        let mut c = self.clock();
        c.last_issued += 1;
        let ts = c.last_issued;
        c.in_flight.insert(ts);
        let oldest = c.readers.keys().next().copied().unwrap_or(c.watermark);
        (Timestamp(ts), Timestamp(oldest))
    }

    /// Whether every commit before `ts` is finished (`ts`'s turn has come).
    pub fn is_turn(&self, ts: Timestamp) -> bool {
        self.watermark.load(Ordering::Acquire) >= ts.0.saturating_sub(1)
    }

    /// Waits until every commit before `ts` is finished: commits apply in timestamp order.
    pub fn wait_turn(&self, ts: Timestamp) {
        // `ts` is in flight, so the watermark is below it; it reaches `ts - 1` exactly when
        // every commit before `ts` is finished.
        let ready = || self.watermark.load(Ordering::Acquire) >= ts.0.saturating_sub(1);
        let start = Instant::now();
        while !ready() && start.elapsed() < TURN_POLL {
            std::thread::yield_now();
        }
        if ready() {
            return;
        }
        let mut c = self.clock();
        if c.in_flight.first().is_none_or(|first| *first >= ts.0) {
            return;
        }
        let turn = Arc::clone(c.turns.entry(ts.0).or_default());
        while c.in_flight.first().is_some_and(|first| *first < ts.0) {
            c = turn.wait(c).unwrap_or_else(PoisonError::into_inner);
        }
        c.turns.remove(&ts.0);
    }

    /// Marks commit `ts` finished (applied, or abandoned after a durability failure) and
    /// moves the watermark past every finished commit in order.
    pub fn finish(&self, ts: Timestamp) {
        let mut c = self.clock();
        c.in_flight.remove(&ts.0);
        c.watermark = c.in_flight.first().map_or(c.last_issued, |first| first - 1);
        self.watermark.store(c.watermark, Ordering::Release);
        // Wake the commit whose turn it is now, if it waits (one wake-up, not a herd).
        if let Some(next) = c.in_flight.first()
            && let Some(turn) = c.turns.get(next)
        {
            turn.notify_one();
        }
    }

    /// The read timestamp a snapshot started now would get.
    pub fn watermark(&self) -> Timestamp {
        Timestamp(self.clock().watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_never_passes_an_unfinished_commit() {
        let o = TimestampOracle::new(Timestamp(0));
        let (a, b, c) = (o.issue_commit(), o.issue_commit(), o.issue_commit());
        o.finish(b);
        assert_eq!(o.watermark(), Timestamp(0), "1 is still in flight");
        o.finish(a);
        assert_eq!(o.watermark(), Timestamp(2));
        o.finish(c);
        assert_eq!(o.watermark(), Timestamp(3));
    }

    #[test]
    fn a_commit_waits_for_its_turn_polling_or_sleeping() {
        use std::sync::atomic::AtomicBool;
        // The predecessor finishes well within the poll, then long after it (the waiter has
        // gone to sleep on its condvar by then).
        for delay in [Duration::from_micros(10), TURN_POLL * 20] {
            let o = Arc::new(TimestampOracle::new(Timestamp(0)));
            let (a, b) = (o.issue_commit(), o.issue_commit());
            let finished = Arc::new(AtomicBool::new(false));
            let waiter = {
                let (o, finished) = (Arc::clone(&o), Arc::clone(&finished));
                std::thread::spawn(move || {
                    o.wait_turn(b);
                    assert!(
                        finished.load(Ordering::SeqCst),
                        "turn taken before {a} finished"
                    );
                    o.finish(b);
                })
            };
            std::thread::sleep(delay);
            finished.store(true, Ordering::SeqCst);
            o.finish(a);
            waiter.join().expect("the waiter's assertion held");
            assert_eq!(o.watermark(), Timestamp(2));
        }
    }

    #[test]
    fn oldest_active_tracks_readers() {
        let o = TimestampOracle::new(Timestamp(5));
        let r1 = o.begin_read();
        let t = o.issue_commit();
        o.finish(t);
        let r2 = o.begin_read();
        assert_eq!(
            (r1, r2, o.oldest_active()),
            (Timestamp(5), Timestamp(6), Timestamp(5))
        );
        o.end_read(r1);
        assert_eq!(o.oldest_active(), Timestamp(6));
        o.end_read(r2);
        assert_eq!(o.oldest_active(), Timestamp(6));
    }
}
