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
    /// Every commit up to this one is applied (the applied watermark).
    watermark: u64,
    /// Every commit up to this one is applied and, if it asked for durability, durable: new
    /// snapshots read here. The applied watermark, held back below the first commit in
    /// `undurable`; frozen for good once `stalled`.
    visible: u64,
    /// Applied commits whose log records are not yet known to be durable (ADR 017).
    undurable: BTreeSet<u64>,
    /// A commit could not be made durable: nothing after it may ever become visible.
    stalled: bool,
    /// Threads asleep in [`TimestampOracle::wait_applied`] or
    /// [`TimestampOracle::wait_visible`].
    sleepers: usize,
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
    /// Mirror of `Clock::visible`.
    visible: AtomicU64,
    /// Wakes the sleepers of `wait_applied` and `wait_visible` when either watermark moves
    /// or the clock stalls.
    moved: Condvar,
}

/// [`TimestampOracle::wait_visible`]'s error: a commit before the awaited one could not be
/// made durable, so it will never become visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled;

/// How long a commit polls for its turn (yielding its core to the commits before it) before
/// it sleeps. The commits it waits for are usually runnable, just not running: yielding
/// hands them the core at once, where sleeping costs a wake-up as long as a whole commit.
const TURN_POLL: Duration = Duration::from_micros(200);

/// Polls `ready` for up to [`TURN_POLL`], yielding the core between looks; whether it
/// became true (the caller sleeps if not).
fn poll(ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !ready() && start.elapsed() < TURN_POLL {
        std::thread::yield_now();
    }
    ready()
}

impl TimestampOracle {
    /// An oracle starting after `last_committed` (0 for a new database).
    pub fn new(last_committed: Timestamp) -> Self {
        let clock = Clock {
            last_issued: last_committed.0,
            watermark: last_committed.0,
            visible: last_committed.0,
            ..Clock::default()
        };
        TimestampOracle {
            clock: Mutex::new(clock),
            watermark: AtomicU64::new(last_committed.0),
            visible: AtomicU64::new(last_committed.0),
            moved: Condvar::new(),
        }
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a snapshot: returns the read timestamp (the visible watermark: every commit
    /// up to it applied and as durable as it asked to be) and registers it.
    pub fn begin_read(&self) -> Timestamp {
        let mut c = self.clock();
        let ts = c.visible;
        *c.readers.entry(ts).or_default() += 1;
        Timestamp(ts)
    }

    /// Starts a snapshot at the applied watermark, which may include commits whose log
    /// records are not durable yet, and registers it. For a transaction that holds the
    /// lock of every key it has read (ADR 017): whatever it commits is logged after, and
    /// so durable only after, the commits it reads.
    pub fn begin_read_applied(&self) -> Timestamp {
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

    /// The oldest read timestamp any active snapshot holds, or the visible watermark (where
    /// the next snapshot reads) if none.
    pub fn oldest_active(&self) -> Timestamp {
        let c = self.clock();
        Timestamp(c.readers.keys().next().copied().unwrap_or(c.visible))
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
        let oldest = c.readers.keys().next().copied().unwrap_or(c.visible);
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
        if poll(|| self.watermark.load(Ordering::Acquire) >= ts.0.saturating_sub(1)) {
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
    /// moves the watermarks past every finished commit in order.
    pub fn finish(&self, ts: Timestamp) {
        self.finish_as(ts, false);
    }

    /// Marks commit `ts` applied before its log record is known to be durable: the applied
    /// watermark moves past it, the visible one stays below it until
    /// [`durable`](Self::durable) covers it.
    pub fn finish_undurable(&self, ts: Timestamp) {
        self.finish_as(ts, true);
    }

    fn finish_as(&self, ts: Timestamp, undurable: bool) {
        let mut c = self.clock();
        c.in_flight.remove(&ts.0);
        if undurable {
            c.undurable.insert(ts.0);
        }
        c.watermark = c.in_flight.first().map_or(c.last_issued, |first| first - 1);
        self.watermark.store(c.watermark, Ordering::Release);
        self.publish(&mut c);
        // Wake the commit whose turn it is now, if it waits (one wake-up, not a herd).
        if let Some(next) = c.in_flight.first()
            && let Some(turn) = c.turns.get(next)
        {
            turn.notify_one();
        }
    }

    /// Moves the visible watermark up to the applied one, short of the first undurable
    /// commit (it only ever moves up: a commit becomes undurable above the applied
    /// watermark), and wakes the sleepers.
    fn publish(&self, c: &mut Clock) {
        if !c.stalled {
            let below_undurable = c.undurable.first().map_or(u64::MAX, |first| first - 1);
            c.visible = c.watermark.min(below_undurable);
            self.visible.store(c.visible, Ordering::Release);
        }
        if c.sleepers > 0 {
            self.moved.notify_all();
        }
    }

    /// Records that the log is durable through commit `ts`'s record: it and every commit
    /// before it (the log is durable as a prefix, and its order is the timestamps').
    pub fn durable(&self, ts: Timestamp) {
        let mut c = self.clock();
        let later = c.undurable.split_off(&(ts.0 + 1));
        c.undurable = later;
        self.publish(&mut c);
    }

    /// Records that a commit could not be made durable: the visible watermark stays where
    /// it is for good (what was applied after it may depend on it), and waiters for
    /// visibility give up.
    pub fn stall(&self) {
        let mut c = self.clock();
        c.stalled = true;
        self.publish(&mut c);
    }

    /// Whether every commit up to `ts` is applied (or abandoned).
    pub fn is_applied(&self, ts: Timestamp) -> bool {
        self.watermark.load(Ordering::Acquire) >= ts.0
    }

    /// Waits until every commit up to `ts` is applied (or abandoned).
    pub fn wait_applied(&self, ts: Timestamp) {
        if poll(|| self.is_applied(ts)) {
            return;
        }
        let mut c = self.clock();
        // Nothing at or below `ts` in flight: nothing left to wait for (also when `ts` was
        // never issued).
        c.sleepers += 1;
        while c.watermark < ts.0 && c.in_flight.first().is_some_and(|first| *first <= ts.0) {
            c = self.moved.wait(c).unwrap_or_else(PoisonError::into_inner);
        }
        c.sleepers -= 1;
    }

    /// Waits until commit `ts` (applied) is visible to new snapshots: every commit before
    /// it that asked for durability is durable. [`Stalled`] if one never will be.
    pub fn wait_visible(&self, ts: Timestamp) -> Result<(), Stalled> {
        if self.visible.load(Ordering::Acquire) >= ts.0 {
            return Ok(());
        }
        let mut c = self.clock();
        c.sleepers += 1;
        while c.visible < ts.0 && !c.stalled {
            c = self.moved.wait(c).unwrap_or_else(PoisonError::into_inner);
        }
        c.sleepers -= 1;
        if c.visible >= ts.0 {
            Ok(())
        } else {
            Err(Stalled)
        }
    }

    /// The read timestamp a snapshot started now would get (the visible watermark).
    pub fn watermark(&self) -> Timestamp {
        Timestamp(self.clock().visible)
    }

    /// The applied watermark: every commit up to it is applied, durable or not.
    pub fn applied(&self) -> Timestamp {
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
    fn new_snapshots_read_below_the_first_commit_not_yet_durable() {
        let o = TimestampOracle::new(Timestamp(0));
        let (a, b, c) = (o.issue_commit(), o.issue_commit(), o.issue_commit());
        o.finish(a);
        o.finish_undurable(b);
        o.finish(c);
        assert_eq!((o.applied(), o.watermark()), (Timestamp(3), Timestamp(1)));
        assert_eq!(o.begin_read(), Timestamp(1));
        assert_eq!(o.begin_read_applied(), Timestamp(3));
        // Collection keeps what a new snapshot would read, not what the applied one would.
        o.end_read(Timestamp(1));
        o.end_read(Timestamp(3));
        assert_eq!(o.oldest_active(), Timestamp(1));
        assert_eq!(o.issue_commit_oldest().1, Timestamp(1));
    }

    #[test]
    fn durability_covers_every_commit_up_to_the_one_made_durable() {
        let o = TimestampOracle::new(Timestamp(0));
        let (a, b, c) = (o.issue_commit(), o.issue_commit(), o.issue_commit());
        o.finish_undurable(a);
        o.finish_undurable(b);
        o.finish_undurable(c);
        assert_eq!(o.watermark(), Timestamp(0));
        // The log is durable as a prefix: b's record being durable makes a's durable too.
        o.durable(b);
        assert_eq!(o.watermark(), Timestamp(2));
        assert_eq!(o.wait_visible(b), Ok(()));
        o.durable(c);
        assert_eq!(o.watermark(), Timestamp(3));
    }

    #[test]
    fn a_stalled_clock_never_shows_what_follows_the_failed_commit() {
        let o = TimestampOracle::new(Timestamp(0));
        let (a, b) = (o.issue_commit(), o.issue_commit());
        o.finish_undurable(a);
        o.finish(b);
        o.stall();
        assert_eq!(o.wait_visible(b), Err(Stalled));
        // Not even once the failed commit's record turns out durable after all.
        o.durable(a);
        assert_eq!(o.watermark(), Timestamp(0));
        assert_eq!(o.applied(), Timestamp(2));
    }

    #[test]
    fn a_waiter_for_visibility_wakes_when_the_commit_before_it_is_durable() {
        let o = Arc::new(TimestampOracle::new(Timestamp(0)));
        let (a, b) = (o.issue_commit(), o.issue_commit());
        o.finish_undurable(a);
        o.finish(b);
        let waiter = {
            let o = Arc::clone(&o);
            std::thread::spawn(move || o.wait_visible(b))
        };
        o.durable(a);
        assert_eq!(waiter.join().ok(), Some(Ok(())));
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
