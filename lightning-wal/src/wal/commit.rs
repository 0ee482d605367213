//! Group commit: appenders queue, one leader writes and fsyncs the queue at a time, waiters
//! poll or sleep until their record is durable (ADR 005).

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{DIRECT_PAYLOAD, Durability, Inner, State, lock, now_us};
use crate::frame::{Lsn, frame_len};
use crate::{Error, Result};

/// What a short batch costs the poll credit while waiters poll, in sleeping waits.
const POLL_PENALTY: i64 = 256;
/// Upper bound of the poll credit.
const POLL_CREDIT_MAX: i64 = 16;

/// The condition variable the members of batch `batch` sleep on: `conds[batch % 2]`.
fn cond_of(conds: &[Condvar; 2], batch: u64) -> &Condvar {
    let [even, odd] = conds;
    if batch % 2 == 1 { odd } else { even }
}

/// `Eventual` and `None` records queued past `buffer_limit` are written by the background
/// flusher, which the appender that crossed the limit wakes; only past this many times the
/// limit (the flusher is behind) does an appender write them itself. Appenders are committers
/// holding the commit ordering: a write of the whole buffer there (a tenth of a single-key
/// commit's time) held every other committer up.
const WRITE_INLINE_AT: usize = 4;

impl Inner {
    /// Appends a record: a borrowed payload is copied (once it is known to fit), an owned
    /// one is kept as it is.
    #[expect(
        clippy::inline_always,
        reason = "two thin callers (a borrowed and an owned payload); without it the call and the Cow cost 6 % more instructions per append (icount wal_append)"
    )]
    #[inline(always)]
    pub(super) fn append(
        &self,
        record_type: u8,
        payload: Cow<'_, [u8]>,
        durability: Durability,
    ) -> Result<Lsn> {
        if payload.len() > self.opts.max_record_size as usize {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max: self.opts.max_record_size,
            });
        }
        let time_us = now_us();
        // A payload big enough to be written from its own buffer is made owned here, not
        // under the lock; a smaller one is copied into the queue under it.
        let payload = if payload.len() >= DIRECT_PAYLOAD {
            Cow::Owned(payload.into_owned())
        } else {
            payload
        };
        let frame = frame_len(payload.len());
        let mut st = lock(&self.state);
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let lsn = st.next_lsn;
        st.next_lsn = lsn.next();
        st.queued_bytes += frame;
        st.stats.appends += 1;
        st.stats.bytes += payload.len() as u64;
        st.queue.push(lsn, record_type, time_us, payload);
        // This record completes the batch a leader is gathering: write it now, from this
        // thread, which is already running, instead of waking the sleeping leader.
        if durability == Durability::Immediate
            && let Some(number) = st.collecting
            && st.queue.len() >= st.gather_target
        {
            st.collecting = None;
            st.gather_target = usize::MAX;
            // The gathering leader is a member now: wake it from its timed sleep so it
            // waits for the batch like the others, not on a timer firing mid-fsync.
            self.gather_cond.notify_one();
            st = self.run_batch(st, number, true)?;
        }
        match durability {
            Durability::Immediate => {
                self.wait_locked(st, lsn)?;
            }
            Durability::Eventual | Durability::None => {
                let flusher = !self.opts.flush_interval.is_zero();
                let limit = self.opts.buffer_limit;
                if st.queued_bytes < limit {
                    return Ok(lsn);
                }
                if flusher && st.queued_bytes < limit * WRITE_INLINE_AT {
                    // The flusher writes it, on another core if there is one, while this
                    // appender goes on; asked once per batch, also while a leader is at
                    // work (these records are not in its batch; the flusher waits for it).
                    if !st.write_requested {
                        st.write_requested = true;
                        drop(st);
                        let _stop = lock(&self.stop);
                        self.stop_cond.notify_one();
                    }
                } else if !st.leader {
                    drop(self.lead(st, false)?);
                }
            }
        }
        Ok(lsn)
    }

    /// The flusher's answer to an appender's request (see [`WRITE_INLINE_AT`]): writes the
    /// queued records without syncing them. `false` when a leader is at work: the request
    /// stands, to be served once it is done (or taken by its next batch).
    pub(super) fn write_requested_batch(&self) -> Result<bool> {
        let mut st = lock(&self.state);
        if !st.write_requested {
            return Ok(true);
        }
        if st.poisoned.is_some() {
            // Nothing more will be written; appends fail from now on.
            st.write_requested = false;
            return Ok(true);
        }
        if st.leader {
            return Ok(false);
        }
        drop(self.lead(st, false)?);
        Ok(true)
    }

    pub(super) fn wait_durable(&self, lsn: Lsn) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= lsn.get() {
            return Ok(());
        }
        let st = lock(&self.state);
        self.wait_locked(st, lsn)
    }

    pub(super) fn sync_all(&self) -> Result<()> {
        let st = lock(&self.state);
        let target = Lsn::new(st.next_lsn.get() - 1);
        self.wait_locked(st, target)
    }

    /// Waits until `lsn` is durable, leading a group commit whenever no one else is.
    fn wait_locked<'a>(&'a self, mut st: MutexGuard<'a, State>, lsn: Lsn) -> Result<()> {
        let mut may_poll = true;
        loop {
            // Durable first: a record a sync covered stays durable when a later batch
            // poisons the log. Reporting it as failed would tell the committer that it never
            // happened while recovery brings it back — and the committer of a later record
            // in the same sync, told the truth, would apply after it as if it were gone.
            if st.synced >= lsn {
                return Ok(());
            }
            if let Some(cause) = &st.poisoned {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if st.leader {
                // Counted under the lock, before it is released to poll or sleep: a
                // caller that sees a wait in the stats knows the waiter has chosen.
                st.stats.waits += 1;
                let expected = st.sync_estimate * 2;
                if may_poll
                    && !expected.is_zero()
                    && expected <= self.opts.wait_spin
                    && self.poll_credit.load(Ordering::Relaxed) >= 0
                {
                    st.stats.waits_polled += 1;
                    let epoch = self.epoch.load(Ordering::Acquire);
                    drop(st);
                    self.pollers.fetch_add(1, Ordering::Relaxed);
                    let polled = self.poll(lsn, epoch, expected);
                    self.pollers.fetch_sub(1, Ordering::Relaxed);
                    match polled {
                        Polled::Durable => return Ok(()),
                        Polled::BatchEnded => {}
                        Polled::GaveUp => may_poll = false,
                    }
                    st = lock(&self.state);
                    continue;
                }
                // The batch in flight covers `lsn` if it took it or is still gathering;
                // otherwise the next one will.
                let batch = if st.taken >= lsn || st.collecting.is_some() {
                    st.batches
                } else {
                    st.batches + 1
                };
                // Each sleep earns back some credit: polling is tried again now and then.
                if self.poll_credit.fetch_add(1, Ordering::Relaxed) >= POLL_CREDIT_MAX {
                    self.poll_credit.store(POLL_CREDIT_MAX, Ordering::Relaxed);
                }
                st.stats.waits_slept += 1;
                st = cond_of(&self.conds, batch)
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            } else {
                st = self.lead(st, true)?;
            }
        }
    }

    /// Polls, without the state lock, until `lsn` is durable, or a batch ends without making
    /// it so (the caller looks again under the lock, and may lead), or `budget` has passed
    /// (the caller sleeps). Between looks it yields its core, so a thread with work to do,
    /// the syncing leader's included, runs first.
    fn poll(&self, lsn: Lsn, epoch: u64, budget: Duration) -> Polled {
        let start = Instant::now();
        loop {
            if self.durable.load(Ordering::Acquire) >= lsn.get() {
                return Polled::Durable;
            }
            if self.epoch.load(Ordering::Acquire) != epoch {
                return Polled::BatchEnded;
            }
            if start.elapsed() > budget {
                return Polled::GaveUp;
            }
            std::thread::yield_now();
        }
    }

    /// Leads the next batch: gathers (when syncing), then writes everything queued and
    /// syncs if `sync`. If an arriving appender completes the gathering batch, that thread
    /// writes it instead and this one returns to waiting like any member.
    fn lead<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        sync: bool,
    ) -> Result<MutexGuard<'a, State>> {
        st.leader = true;
        // The batch gets its number before gathering: records queued meanwhile belong to it,
        // and their waiters must sleep on its condvar.
        st.batches += 1;
        let number = st.batches;
        if sync {
            st = self.gather(st, number);
            if st.collecting != Some(number) {
                // Handed off: another thread is writing batch `number`.
                return Ok(st);
            }
            st.collecting = None;
            st.gather_target = usize::MAX;
        }
        self.run_batch(st, number, sync)
    }

    /// Takes the queue as batch `number`, writes it (and syncs, if `sync`), publishes the
    /// result, and wakes the batch's members and, if records are queued, one waiter of the
    /// next batch to lead it. The caller holds the leader role.
    fn run_batch<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        number: u64,
        sync: bool,
    ) -> Result<MutexGuard<'a, State>> {
        let spare = std::mem::take(&mut st.spare);
        let mut batch = std::mem::replace(&mut st.queue, spare);
        st.write_requested = false;
        if sync {
            st.last_batch = batch.len();
        }
        if let Some(last) = batch.records.last() {
            st.taken = last.lsn;
        }
        st.queued_bytes = 0;
        let (written, synced) = (st.written, st.synced);
        drop(st);
        // If the write panics (a VFS implementation may), the guard poisons the log and
        // wakes everyone instead of leaving them waiting for a leader that is gone.
        let guard = PanicGuard { inner: self };
        let result = self.write_batch(&mut batch, written, synced, sync);
        std::mem::forget(guard);
        let mut st = lock(&self.state);
        st.spare = batch.recycle(2 * self.opts.buffer_limit);
        st.leader = false;
        match result {
            Ok(done) => {
                st.written = st.written.max(done.written);
                if done.synced > st.synced {
                    let covered = done.synced.get() - st.synced.get();
                    st.stats.record_sync(covered, done.sync_time);
                    st.synced = done.synced;
                    self.durable.store(done.synced.get(), Ordering::Release);
                }
                if let Some(t) = done.sync_time {
                    // Exponential moving average, 1/8 weight to the newest sample.
                    st.sync_estimate = (st.sync_estimate * 7 + t) / 8;
                }
                // Wake the batch after releasing the lock: woken members need it at once,
                // and notifying while holding it sends every one of them straight back to
                // sleep on the mutex (a context switch each, on the commit's critical path).
                let next = !st.queue.is_empty();
                // Under the lock, after `leader` is cleared: a poller that sees the new
                // epoch and looks again finds the leader role free.
                self.epoch.fetch_add(1, Ordering::AcqRel);
                drop(st);
                cond_of(&self.conds, number).notify_all();
                if next {
                    cond_of(&self.conds, number + 1).notify_one();
                }
                Ok(lock(&self.state))
            }
            Err(e) => {
                if st.poisoned.is_none() {
                    tracing::error!(error = %e, "WAL write or sync failed; refusing further appends");
                    st.poisoned = Some(e.to_string());
                }
                self.epoch.fetch_add(1, Ordering::AcqRel);
                // Everyone must see the poisoning, whichever batch they wait for.
                self.conds.iter().for_each(Condvar::notify_all);
                Err(e)
            }
        }
    }

    /// Before a syncing batch, give the appenders the last batch released a moment to
    /// come back: a closed loop of committers re-appends within microseconds, and without
    /// this the threads split into two alternating half-size groups. The leader waits
    /// until as many records are queued as the last batch held, or a quarter of a typical
    /// fsync has passed, whichever is first. A lone appender (last batch of one, nothing
    /// queued but its own record) goes straight on.
    fn gather<'a>(&'a self, mut st: MutexGuard<'a, State>, number: u64) -> MutexGuard<'a, State> {
        let budget = st.sync_estimate / 4;
        // The members of the last batch are coming back and those already queued are here;
        // the leader is usually both, so it is counted once.
        let target = (st.last_batch + st.queue.len()).saturating_sub(1).max(1);
        st.collecting = Some(number);
        if budget.is_zero() || st.queue.len() >= target {
            return st;
        }
        st.gather_target = target;
        // Whoever completes the batch takes it over (see `append`); the timeout bounds the
        // wait when nobody does. The leader sleeps on a condvar of its own, which the
        // appender taking the batch over signals: from then on it is a member like any
        // other, and no timer wakes it in the middle of the fsync.
        let (st, timeout) = self
            .gather_cond
            .wait_timeout(st, budget)
            .unwrap_or_else(PoisonError::into_inner);
        if timeout.timed_out()
            && st.collecting == Some(number)
            && st.queue.len() < st.gather_target
            && self.pollers.load(Ordering::Relaxed) > 0
            && self.poll_credit.load(Ordering::Relaxed) >= 0
        {
            // The batch goes out short while waiters poll: its members came back late,
            // kept off the cores by other work (a poller gets a core only when a busy
            // thread's time slice ends, a sleeper as soon as it is woken). Sleep for a while
            // instead.
            self.poll_credit.fetch_sub(POLL_PENALTY, Ordering::Relaxed);
        }
        st
    }
}

/// How a poll for durability ended.
enum Polled {
    Durable,
    /// A batch ended without making the record durable: look again under the lock.
    BatchEnded,
    /// Out of budget: sleep instead.
    GaveUp,
}

/// Poisons the log and wakes every waiter if dropped during unwinding from a leader's write.
struct PanicGuard<'a> {
    inner: &'a Inner,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.inner.state);
        st.leader = false;
        st.poisoned
            .get_or_insert_with(|| String::from("a panic while writing the log"));
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.conds.iter().for_each(Condvar::notify_all);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use lightning_page::vfs::MemVfs;

    use crate::{Durability, Error, Wal, WalOptions};

    /// A waiter that reaches the state lock only after a later batch has poisoned the log
    /// (it slept through the sync that covered its record) is told its record is durable;
    /// a record after the sync is told the log failed.
    #[test]
    fn a_record_a_sync_covered_is_durable_after_the_log_is_poisoned() {
        let wal = Wal::open(
            Arc::new(MemVfs::new()),
            Path::new("wal"),
            WalOptions::default(),
        )
        .unwrap();
        let first = wal.append(1, b"first", Durability::None).unwrap();
        let second = wal.append(1, b"second", Durability::Immediate).unwrap();
        let third = wal.append(1, b"third", Durability::None).unwrap();
        let inner = &wal.inner;
        super::lock(&inner.state).poisoned = Some("a later batch failed".into());
        for lsn in [first.lsn(), second.lsn()] {
            let st = super::lock(&inner.state);
            assert!(inner.wait_locked(st, lsn).is_ok(), "{lsn}");
        }
        let st = super::lock(&inner.state);
        assert!(matches!(
            inner.wait_locked(st, third.lsn()),
            Err(Error::Poisoned { .. })
        ));
    }
}
