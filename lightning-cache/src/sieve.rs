//! SIEVE (Zhang et al., NSDI 2024) over a fixed set of slots: the eviction order of the
//! buffer pool and of the policy simulator.
//!
//! Slots sit in a queue from newest (head) to oldest (tail). A hit only sets the slot's
//! visited bit, kept by the caller, so the hit path never touches this structure. To evict,
//! a hand walks from where it last stopped toward the head (wrapping to the tail): a visited
//! slot has its bit cleared and survives in place; the first unvisited, evictable slot goes.
//! New slots enter at the head unvisited, so a page read once (a scan) leaves before pages
//! read again, which is what keeps a sequential scan from flushing the hot set.

const NIL: u32 = u32::MAX;

/// What the caller says about a slot the hand reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Unvisited and evictable: take it.
    Evict,
    /// Visited: the caller cleared the bit; the slot stays.
    Spare,
    /// Pinned (in use): cannot go now.
    Pinned,
}

#[derive(Debug, Clone)]
pub(crate) struct SieveQueue {
    newer: Vec<u32>,
    older: Vec<u32>,
    queued: Vec<bool>,
    head: u32,
    tail: u32,
    hand: u32,
    len: usize,
}

impl SieveQueue {
    pub(crate) fn new(slots: usize) -> Self {
        SieveQueue {
            newer: vec![NIL; slots],
            older: vec![NIL; slots],
            queued: vec![false; slots],
            head: NIL,
            tail: NIL,
            hand: NIL,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Puts `slot` (below the `slots` of [`new`](Self::new)) at the head (newest).
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "slots are below the `slots` given to `new` (the caller's contract: the pool's
                  frames and the simulator's slots are numbered so), the three vectors have
                  that length, and every link is such a slot or `NIL`, checked before use"
    )]
    pub(crate) fn push(&mut self, slot: u32) {
        let s = slot as usize;
        if self.queued[s] {
            return;
        }
        self.queued[s] = true;
        self.older[s] = self.head;
        self.newer[s] = NIL;
        if self.head == NIL {
            self.tail = slot;
        } else {
            self.newer[self.head as usize] = slot;
        }
        self.head = slot;
        self.len += 1;
    }

    /// Takes `slot` (below the `slots` of [`new`](Self::new)) out of the queue.
    #[allow(
        clippy::allow_attributes,
        clippy::indexing_slicing,
        reason = "slots are below the `slots` given to `new` (the caller's contract: the pool's
                  frames and the simulator's slots are numbered so), the three vectors have
                  that length, and every link is such a slot or `NIL`, checked before use"
    )]
    pub(crate) fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        if !self.queued[s] {
            return;
        }
        let (newer, older) = (self.newer[s], self.older[s]);
        if self.hand == slot {
            self.hand = newer;
        }
        if newer == NIL {
            self.head = older;
        } else {
            self.older[newer as usize] = older;
        }
        if older == NIL {
            self.tail = newer;
        } else {
            self.newer[older as usize] = newer;
        }
        self.queued[s] = false;
        self.len -= 1;
    }

    /// Moves `slot` to the head (exact LRU uses this on every hit; SIEVE never does).
    pub(crate) fn touch(&mut self, slot: u32) {
        self.remove(slot);
        self.push(slot);
    }

    /// The oldest slot.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Runs the SIEVE hand and removes the slot it picks. `judge` is asked about each slot
    /// the hand reaches. Gives up (`None`) after two full turns find nothing to evict.
    pub(crate) fn evict(&mut self, mut judge: impl FnMut(u32) -> Verdict) -> Option<u32> {
        let mut slot = if self.hand == NIL {
            self.tail
        } else {
            self.hand
        };
        for _ in 0..=2 * self.len {
            if slot == NIL {
                slot = self.tail;
                if slot == NIL {
                    return None;
                }
            }
            // INVARIANT: `slot` is a queued slot (the tail, the hand or a `newer` link), not
            // `NIL` (checked above), so below the length of `newer`.
            let next = self.newer[slot as usize];
            if judge(slot) == Verdict::Evict {
                self.hand = next;
                self.remove(slot);
                return Some(slot);
            }
            slot = next;
        }
        self.hand = slot;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_and_removal() {
        let mut q = SieveQueue::new(4);
        for s in 0..4 {
            q.push(s);
        }
        assert_eq!(q.oldest(), Some(0));
        q.remove(0);
        assert_eq!(q.oldest(), Some(1));
        q.touch(1);
        assert_eq!(q.oldest(), Some(2));
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn visited_slots_survive_and_the_hand_stays_put() {
        let mut q = SieveQueue::new(4);
        for s in 0..4 {
            q.push(s);
        }
        let mut visited = [true, false, true, false];
        let mut judge = |s: u32| {
            let v = &mut visited[s as usize];
            if *v {
                *v = false;
                Verdict::Spare
            } else {
                Verdict::Evict
            }
        };
        assert_eq!(q.evict(&mut judge), Some(1));
        assert_eq!(q.evict(&mut judge), Some(3));
        // The hand wrapped to the tail; 0 and 2 lost their bits on the first pass.
        assert_eq!(q.evict(&mut judge), Some(0));
    }

    #[test]
    fn all_pinned_gives_up() {
        let mut q = SieveQueue::new(3);
        for s in 0..3 {
            q.push(s);
        }
        assert_eq!(q.evict(|_| Verdict::Pinned), None);
        assert_eq!(q.len(), 3);
    }
}
